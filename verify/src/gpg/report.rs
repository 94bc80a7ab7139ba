//! The verification report: the verdict on each signature ([`SignatureStatus`],
//! [`GpgSignature`]), all of them ([`GpgVerification`]), and which failure
//! [`GpgVerification::require_valid`] reports when none is valid.

use std::fmt;
use std::time::SystemTime;

use super::error::GpgError;
use crate::timefmt::format_system_time;

/// The verdict on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureStatus {
    /// Good signature from a trusted, unexpired, unrevoked key.
    Valid,
    /// The signing key is not in the keyring.
    UnknownKey,
    /// The signature does not match the data (or the policy rejects it).
    BadSignature {
        /// Why.
        reason: String,
    },
    /// The signing key (or its certificate) has expired.
    ExpiredKey {
        /// When it expired.
        expired_at: SystemTime,
    },
    /// The signing key (or its certificate) is revoked.
    RevokedKey {
        /// When the revocation was issued, if known.
        revoked_at: Option<SystemTime>,
        /// The revocation reason.
        reason: String,
    },
    /// The signature has expired.
    ExpiredSignature {
        /// When it expired.
        expired_at: SystemTime,
    },
    /// The key is in the keyring but cannot be used for this signature (not bound under
    /// the policy at the signature time, not signing-capable, created after the
    /// signature, ...).
    UnusableKey {
        /// Why.
        reason: String,
    },
    /// The signature element could not be parsed, or lacks required fields.
    Malformed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureStatus::Valid => f.write_str("valid"),
            SignatureStatus::UnknownKey => f.write_str("key not in the trusted keyring"),
            SignatureStatus::BadSignature { reason } => write!(f, "bad signature: {reason}"),
            SignatureStatus::ExpiredKey { expired_at } => {
                write!(f, "key expired at {}", format_system_time(*expired_at))
            }
            SignatureStatus::RevokedKey { revoked_at, reason } => {
                f.write_str("key revoked")?;
                if let Some(t) = revoked_at {
                    write!(f, " at {}", format_system_time(*t))?;
                }
                write!(f, " ({reason})")
            }
            SignatureStatus::ExpiredSignature { expired_at } => {
                write!(
                    f,
                    "signature expired at {}",
                    format_system_time(*expired_at)
                )
            }
            SignatureStatus::UnusableKey { reason } => write!(f, "unusable key: {reason}"),
            SignatureStatus::Malformed { reason } => write!(f, "malformed signature: {reason}"),
        }
    }
}

/// The report on one OpenPGP signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpgSignature {
    /// Index of the element of `ostree.gpgsigs` the signature came from.
    pub index: usize,
    /// Fingerprint (uppercase hex) of the signing key (a subkey, if a subkey signed)
    /// when it is in the keyring; otherwise the issuer fingerprint, or the 16-digit key
    /// ID, named by the signature; `None` when the signature names no issuer.
    pub fingerprint: Option<String>,
    /// Fingerprint of the certificate's primary key, when the key is in the keyring.
    pub primary_fingerprint: Option<String>,
    /// Signature creation time.
    pub created: Option<SystemTime>,
    /// Signature expiration time.
    pub expires: Option<SystemTime>,
    /// Earliest expiration time of the signing key and its certificate (when known).
    pub key_expires: Option<SystemTime>,
    /// The verdict.
    pub status: SignatureStatus,
}

impl GpgSignature {
    /// Whether this signature counts.
    pub fn is_valid(&self) -> bool {
        self.status == SignatureStatus::Valid
    }

    /// The key fingerprint for messages (`unknown issuer` when absent).
    pub fn key_label(&self) -> String {
        self.fingerprint
            .clone()
            .unwrap_or_else(|| "unknown issuer".to_owned())
    }
}

impl fmt::Display for GpgSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signature {} by key {}", self.index, self.key_label())?;
        if let Some(c) = self.created {
            write!(f, " made {}", format_system_time(c))?;
        }
        write!(f, ": {}", self.status)
    }
}

/// Every signature found, with its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpgVerification {
    /// One entry per OpenPGP signature, in order (an element holding several signature
    /// packets contributes several entries with the same index).
    pub signatures: Vec<GpgSignature>,
}

impl GpgVerification {
    /// Whether at least one signature is valid.
    pub fn is_valid(&self) -> bool {
        self.signatures.iter().any(GpgSignature::is_valid)
    }

    /// The valid signatures.
    pub fn valid_signatures(&self) -> impl Iterator<Item = &GpgSignature> {
        self.signatures.iter().filter(|s| s.is_valid())
    }

    /// Returns `self` if a signature is valid, else the error describing the failure
    /// (see the module docs for which signature the error names).
    pub fn require_valid(self) -> Result<Self, GpgError> {
        if self.is_valid() {
            return Ok(self);
        }
        if self.signatures.is_empty() {
            return Err(GpgError::NoSignatures);
        }
        let from_known_key = self.signatures.iter().rev().find(|s| {
            !matches!(
                s.status,
                SignatureStatus::UnknownKey | SignatureStatus::Malformed { .. }
            )
        });
        if let Some(s) = from_known_key {
            let fingerprint = s.key_label();
            return Err(match &s.status {
                SignatureStatus::ExpiredKey { expired_at } => GpgError::ExpiredKey {
                    fingerprint,
                    expired_at: *expired_at,
                },
                SignatureStatus::RevokedKey { revoked_at, reason } => GpgError::RevokedKey {
                    fingerprint,
                    revoked_at: *revoked_at,
                    reason: reason.clone(),
                },
                SignatureStatus::ExpiredSignature { expired_at } => GpgError::ExpiredSignature {
                    fingerprint,
                    created: s.created,
                    expired_at: *expired_at,
                },
                SignatureStatus::UnusableKey { reason } => GpgError::UnusableKey {
                    fingerprint,
                    reason: reason.clone(),
                },
                SignatureStatus::BadSignature { reason } => GpgError::BadSignature {
                    fingerprint,
                    reason: reason.clone(),
                },
                // Excluded by the search above; kept total without panicking.
                SignatureStatus::Valid
                | SignatureStatus::UnknownKey
                | SignatureStatus::Malformed { .. } => GpgError::BadSignature {
                    fingerprint,
                    reason: s.status.to_string(),
                },
            });
        }
        let unknown: Vec<String> = self
            .signatures
            .iter()
            .filter(|s| s.status == SignatureStatus::UnknownKey)
            .map(GpgSignature::key_label)
            .collect();
        if !unknown.is_empty() {
            return Err(GpgError::NoTrustedKey {
                fingerprints: unknown,
            });
        }
        let last = self.signatures.last();
        Err(GpgError::Malformed {
            index: last.map_or(0, |s| s.index),
            reason: last.map_or_else(String::new, |s| match &s.status {
                SignatureStatus::Malformed { reason } => reason.clone(),
                other => other.to_string(),
            }),
        })
    }
}
