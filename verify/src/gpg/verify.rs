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
use super::error::GpgError;
use super::report::{GpgSignature, GpgVerification, SignatureStatus};
use crate::timefmt::format_system_time;

/// The detached-metadata key holding GPG signatures (type `aay`).
pub const METADATA_KEY: &str = "ostree.gpgsigs";

/// How far in the future a signature's creation time may lie (sequoia's default).
pub const CLOCK_SKEW_TOLERANCE: Duration = Duration::from_secs(30 * 60);

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
