//! Why a GPG verification failed ([`GpgError`]).

use std::time::SystemTime;

use crate::timefmt::format_system_time;

/// Why a GPG verification failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpgError {
    /// No signature at all (`ostree.gpgsigs` absent or empty).
    #[error("gpg verification enabled, but no signatures found")]
    NoSignatures,
    /// Every signature was made by a key outside the keyring.
    #[error("no signature from a trusted key: signed by {}, not in the trusted keyring", .fingerprints.join(", "))]
    NoTrustedKey {
        /// Fingerprints (or key IDs) of the signing keys.
        fingerprints: Vec<String>,
    },
    /// A signature does not match the data.
    #[error("bad gpg signature from key {fingerprint}: {reason}")]
    BadSignature {
        /// The signing key.
        fingerprint: String,
        /// Why.
        reason: String,
    },
    /// The signing key has expired.
    #[error("gpg key {fingerprint} expired at {}", format_system_time(*.expired_at))]
    ExpiredKey {
        /// The signing key.
        fingerprint: String,
        /// When it expired.
        expired_at: SystemTime,
    },
    /// The signing key is revoked.
    #[error("gpg key {fingerprint} is revoked{} ({reason})", .revoked_at.map(|t| format!(" since {}", format_system_time(t))).unwrap_or_default())]
    RevokedKey {
        /// The signing key.
        fingerprint: String,
        /// When the revocation was issued, if known.
        revoked_at: Option<SystemTime>,
        /// The revocation reason.
        reason: String,
    },
    /// The signature has expired.
    #[error("gpg signature by key {fingerprint}{} expired at {}", .created.map(|t| format!(" made {}", format_system_time(t))).unwrap_or_default(), format_system_time(*.expired_at))]
    ExpiredSignature {
        /// The signing key.
        fingerprint: String,
        /// When the signature was made.
        created: Option<SystemTime>,
        /// When it expired.
        expired_at: SystemTime,
    },
    /// The key is in the keyring but unusable for this signature.
    #[error("gpg key {fingerprint} cannot be used: {reason}")]
    UnusableKey {
        /// The signing key.
        fingerprint: String,
        /// Why.
        reason: String,
    },
    /// No signature could be parsed.
    #[error("malformed gpg signature at index {index}: {reason}")]
    Malformed {
        /// Index of the element in `ostree.gpgsigs`.
        index: usize,
        /// Why.
        reason: String,
    },
}
