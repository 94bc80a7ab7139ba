//! Detached-signature verification (see the [`crate::gpg`] module docs for the rules).

use std::fmt;
use std::time::{Duration, SystemTime};

use sequoia_openpgp::cert::prelude::*;
use sequoia_openpgp::packet::Signature;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::parse::stream::{
    DetachedVerifierBuilder, GoodChecksum, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper, VerificationResult,
};
use sequoia_openpgp::policy::{Policy, StandardPolicy};
use sequoia_openpgp::types::RevocationStatus;
use sequoia_openpgp::{Cert, Fingerprint, KeyHandle};

use super::Keyring;
use crate::timefmt::format_system_time;

/// The detached-metadata key holding GPG signatures (type `aay`).
pub const METADATA_KEY: &str = "ostree.gpgsigs";

/// How far in the future a signature's creation time may lie (sequoia's default).
pub const CLOCK_SKEW_TOLERANCE: Duration = Duration::from_secs(30 * 60);

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

/// Verifies `data` against detached OpenPGP signatures (the elements of
/// `ostree.gpgsigs`), trusting the keys in `keyring`, at time `now`. Succeeds when at
/// least one signature is valid.
pub fn verify_detached(
    data: &[u8],
    signatures: &[&[u8]],
    keyring: &Keyring,
    now: SystemTime,
) -> Result<GpgVerification, GpgError> {
    if signatures.is_empty() {
        return Err(GpgError::NoSignatures);
    }
    inspect_detached(data, signatures, keyring, now).require_valid()
}

/// Like [`verify_detached`] but returns the per-signature report whatever the outcome
/// (for display, e.g. `cfsync show`). Never fails: unparsable elements are reported as
/// [`SignatureStatus::Malformed`].
pub fn inspect_detached(
    data: &[u8],
    signatures: &[&[u8]],
    keyring: &Keyring,
    now: SystemTime,
) -> GpgVerification {
    let policy = StandardPolicy::new();
    let mut out = Vec::new();
    for (index, blob) in signatures.iter().enumerate() {
        out.extend(verify_element(data, blob, index, keyring, &policy, now));
    }
    GpgVerification { signatures: out }
}

fn malformed(index: usize, reason: impl fmt::Display) -> GpgSignature {
    GpgSignature {
        index,
        fingerprint: None,
        primary_fingerprint: None,
        created: None,
        expires: None,
        key_expires: None,
        status: SignatureStatus::Malformed {
            reason: reason.to_string(),
        },
    }
}

/// Verifies one element of `ostree.gpgsigs` with its own sequoia verifier.
fn verify_element(
    data: &[u8],
    blob: &[u8],
    index: usize,
    keyring: &Keyring,
    policy: &StandardPolicy<'_>,
    now: SystemTime,
) -> Vec<GpgSignature> {
    if blob.is_empty() {
        return vec![malformed(index, "empty signature element")];
    }
    let helper = Helper {
        keyring,
        policy,
        now,
        index,
        reports: Vec::new(),
    };
    let verifier = DetachedVerifierBuilder::from_bytes(blob)
        .and_then(|b| b.with_policy(policy, Some(now), helper));
    let mut verifier = match verifier {
        Ok(v) => v,
        Err(e) => return vec![malformed(index, e)],
    };
    let outcome = verifier.verify_bytes(data);
    let mut reports = verifier.into_helper().reports;
    if reports.is_empty() {
        let reason = match outcome {
            Err(e) => e.to_string(),
            Ok(()) => "no signature packets".to_owned(),
        };
        return vec![malformed(index, reason)];
    }
    // The helper's `check` only returns Ok when a report is valid; if sequoia still
    // failed the stream, no report may count.
    if let Err(e) = outcome {
        for r in reports.iter_mut().filter(|r| r.is_valid()) {
            r.status = SignatureStatus::BadSignature {
                reason: format!("verifier rejected the data: {e}"),
            };
        }
    }
    reports
}

/// The sequoia verification helper: supplies keyring certificates and turns each
/// verification result into a [`GpgSignature`]. Its `check` requires at least one
/// valid signature.
struct Helper<'a> {
    keyring: &'a Keyring,
    policy: &'a StandardPolicy<'a>,
    now: SystemTime,
    index: usize,
    reports: Vec<GpgSignature>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> sequoia_openpgp::Result<Vec<Cert>> {
        Ok(self
            .keyring
            .certs()
            .iter()
            .filter(|c| c.keys().key_handles(ids.iter()).next().is_some())
            .cloned()
            .collect())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> sequoia_openpgp::Result<()> {
        for layer in structure {
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    for result in results {
                        let report = self.classify(result);
                        self.reports.push(report);
                    }
                }
                _ => self.reports.push(malformed(
                    self.index,
                    "unexpected layer in a detached signature",
                )),
            }
        }
        if self.reports.iter().any(GpgSignature::is_valid) {
            Ok(())
        } else {
            Err(sequoia_openpgp::Error::BadSignature(
                "no valid signature from a trusted key".into(),
            )
            .into())
        }
    }
}

/// What is wrong with a key at the verification time, if anything.
struct KeyStateNow {
    key_expires: Option<SystemTime>,
    problem: Option<SignatureStatus>,
}

impl Helper<'_> {
    fn report(
        &self,
        sig: &Signature,
        cert: Option<&Cert>,
        key: Option<&Fingerprint>,
    ) -> GpgSignature {
        let fingerprint = match key {
            Some(fp) => Some(fp.to_hex()),
            None => issuer_label(sig),
        };
        GpgSignature {
            index: self.index,
            fingerprint,
            primary_fingerprint: cert.map(|c| c.fingerprint().to_hex()),
            created: sig.signature_creation_time(),
            expires: sig.signature_expiration_time(),
            key_expires: None,
            status: SignatureStatus::Valid,
        }
    }

    fn classify(&self, result: VerificationResult<'_>) -> GpgSignature {
        match result {
            Ok(GoodChecksum { sig, ka, .. }) => {
                let fp = ka.key().fingerprint();
                let mut r = self.report(sig, Some(ka.cert()), Some(&fp));
                let state = self.key_state_now(ka.cert(), &fp);
                r.key_expires = state.key_expires;
                r.status = state.problem.unwrap_or(SignatureStatus::Valid);
                r
            }
            Err(VerificationError::MissingKey { sig, .. }) => {
                let mut r = self.report(sig, None, None);
                r.status = SignatureStatus::UnknownKey;
                r
            }
            Err(VerificationError::UnboundKey {
                sig, cert, error, ..
            }) => {
                let key = cert
                    .keys()
                    .key_handles(sig.get_issuers())
                    .next()
                    .map(|ka| ka.key().clone());
                let fp = key.as_ref().map(|k| k.fingerprint());
                let mut r = self.report(sig, Some(cert), fp.as_ref());
                r.status = match (&key, &fp) {
                    (Some(key), Some(fp)) => match sig.verify_document(key) {
                        Err(e) => bad(e),
                        Ok(()) => {
                            let state = self.key_state_now(cert, fp);
                            r.key_expires = state.key_expires;
                            state.problem.unwrap_or_else(|| unusable(&error))
                        }
                    },
                    _ => unusable(&error),
                };
                r
            }
            Err(VerificationError::BadKey { sig, ka, error, .. }) => {
                let fp = ka.key().fingerprint();
                let mut r = self.report(sig, Some(ka.cert()), Some(&fp));
                r.status = match sig.verify_document(ka.key()) {
                    Err(e) => bad(e),
                    Ok(()) => {
                        let state = self.key_state_now(ka.cert(), &fp);
                        r.key_expires = state.key_expires;
                        state.problem.unwrap_or_else(|| unusable(&error))
                    }
                };
                r
            }
            Err(VerificationError::BadSignature { sig, ka, error, .. }) => {
                let fp = ka.key().fingerprint();
                let mut r = self.report(sig, Some(ka.cert()), Some(&fp));
                r.status = match sig.verify_document(ka.key()) {
                    Err(e) => bad(e),
                    Ok(()) => {
                        let state = self.key_state_now(ka.cert(), &fp);
                        r.key_expires = state.key_expires;
                        if let Some(problem) = state.problem {
                            problem
                        } else if let Some(t) = sig.signature_expiration_time()
                            && t <= self.now
                        {
                            SignatureStatus::ExpiredSignature { expired_at: t }
                        } else if sig.signature_alive(self.now, CLOCK_SKEW_TOLERANCE).is_ok()
                            && self.policy.signature(sig, Default::default()).is_ok()
                        {
                            // sequoia's only objection was a creation time slightly in
                            // the future (it applies no tolerance to an explicit time).
                            SignatureStatus::Valid
                        } else {
                            bad(error)
                        }
                    }
                };
                r
            }
            Err(VerificationError::MalformedSignature { sig, error, .. }) => {
                let mut r = self.report(sig, None, None);
                r.status = SignatureStatus::Malformed {
                    reason: error.to_string(),
                };
                r
            }
            Err(VerificationError::UnknownSignature { sig, .. }) => {
                malformed(self.index, sig.error())
            }
            Err(other) => malformed(self.index, other),
        }
    }

    /// Revocation and expiry of `cert` and its key `fp` at the verification time, with
    /// libostree/GnuPG semantics (any revocation counts; expiry is judged now, not at
    /// signing time).
    fn key_state_now(&self, cert: &Cert, fp: &Fingerprint) -> KeyStateNow {
        let vc = match cert.with_policy(self.policy, self.now) {
            Ok(vc) => vc,
            Err(e) => {
                return KeyStateNow {
                    key_expires: None,
                    problem: Some(SignatureStatus::UnusableKey {
                        reason: format!(
                            "certificate {} is not valid at {}: {e}",
                            cert.fingerprint().to_hex(),
                            format_system_time(self.now)
                        ),
                    }),
                };
            }
        };
        let cert_expires = vc.primary_key().key_expiration_time();
        if let RevocationStatus::Revoked(sigs) = vc.revocation_status() {
            return KeyStateNow {
                key_expires: cert_expires,
                problem: Some(revoked(&sigs)),
            };
        }
        let Some(ka) = vc.keys().key_handle(fp.clone()).next() else {
            return KeyStateNow {
                key_expires: cert_expires,
                problem: Some(SignatureStatus::UnusableKey {
                    reason: format!(
                        "key {} is not bound to certificate {} at {}",
                        fp.to_hex(),
                        cert.fingerprint().to_hex(),
                        format_system_time(self.now)
                    ),
                }),
            };
        };
        let key_expires = match (cert_expires, ka.key_expiration_time()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let RevocationStatus::Revoked(sigs) = ka.revocation_status() {
            return KeyStateNow {
                key_expires,
                problem: Some(revoked(&sigs)),
            };
        }
        let expired = |exp: Option<SystemTime>, e: &dyn fmt::Display| match exp {
            Some(t) if t <= self.now => SignatureStatus::ExpiredKey { expired_at: t },
            _ => SignatureStatus::UnusableKey {
                reason: e.to_string(),
            },
        };
        if let Err(e) = vc.alive() {
            return KeyStateNow {
                key_expires,
                problem: Some(expired(cert_expires, &e)),
            };
        }
        if let Err(e) = ka.alive() {
            return KeyStateNow {
                key_expires,
                problem: Some(expired(ka.key_expiration_time(), &e)),
            };
        }
        KeyStateNow {
            key_expires,
            problem: None,
        }
    }
}

fn bad(e: impl fmt::Display) -> SignatureStatus {
    SignatureStatus::BadSignature {
        reason: e.to_string(),
    }
}

fn unusable(e: impl fmt::Display) -> SignatureStatus {
    SignatureStatus::UnusableKey {
        reason: e.to_string(),
    }
}

fn revoked(sigs: &[&Signature]) -> SignatureStatus {
    let first = sigs.first();
    let reason = first
        .and_then(|s| s.reason_for_revocation())
        .map(|(code, msg)| {
            let msg = String::from_utf8_lossy(msg);
            if msg.trim().is_empty() {
                code.to_string()
            } else {
                format!("{code}: {}", msg.trim())
            }
        })
        .unwrap_or_else(|| "no reason given".to_owned());
    SignatureStatus::RevokedKey {
        revoked_at: first.and_then(|s| s.signature_creation_time()),
        reason,
    }
}

/// The issuer named by a signature: its issuer fingerprint if present, else its key ID.
fn issuer_label(sig: &Signature) -> Option<String> {
    let issuers = sig.get_issuers();
    issuers
        .iter()
        .find(|h| matches!(h, KeyHandle::Fingerprint(_)))
        .or_else(|| issuers.first())
        .map(|h| h.to_hex())
}
