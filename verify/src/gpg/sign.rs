//! Making detached OpenPGP signatures for publishers (`cfsync sign`).
//!
//! The output is what `ostree commit --gpg-sign` / `ostree gpg-sign` append to
//! `ostree.gpgsigs`: one binary detached signature packet (class 0x00) over the exact
//! signed bytes. The secret key comes from an unencrypted key file such as
//! `gpg --export-secret-keys [--armor] FPR` writes (after
//! `gpg --quick-gen-key --passphrase ''`); password-protected keys are refused.

use std::fmt;
use std::io::Write;
use std::time::SystemTime;

use sequoia_openpgp::crypto::KeyPair;
use sequoia_openpgp::policy::StandardPolicy;
use sequoia_openpgp::serialize::stream::{Message, Signer};

use super::keyring::parse_cert_bytes;

/// Errors while loading a signing key or signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key data could not be parsed as OpenPGP certificates.
    #[error("invalid gpg secret key file: {reason}")]
    Parse {
        /// Why.
        reason: String,
    },
    /// No certificate has an unencrypted secret key that may sign now.
    #[error("no usable gpg signing key in the secret key file (certificates: {}): {reason}", describe(.certificates))]
    NoSigningKey {
        /// Primary fingerprints of the certificates found.
        certificates: Vec<String>,
        /// What was missing (no secret material, encrypted, expired, revoked, ...).
        reason: String,
    },
    /// The key file holds several certificates with signing keys; pick one.
    #[error("the secret key file holds several certificates with signing keys ({}); pass a file with exactly one", describe(.certificates))]
    Ambiguous {
        /// Their primary fingerprints.
        certificates: Vec<String>,
    },
    /// Signing failed.
    #[error("gpg signing with key {fingerprint} failed: {reason}")]
    Sign {
        /// The signing key.
        fingerprint: String,
        /// Why.
        reason: String,
    },
}

fn describe(certs: &[String]) -> String {
    if certs.is_empty() {
        "none".to_owned()
    } else {
        certs.join(", ")
    }
}

/// A loaded signing key.
pub struct GpgSigner {
    keypair: KeyPair,
    fingerprint: String,
    primary_fingerprint: String,
}

impl fmt::Debug for GpgSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpgSigner")
            .field("fingerprint", &self.fingerprint)
            .field("primary_fingerprint", &self.primary_fingerprint)
            .finish_non_exhaustive()
    }
}

impl GpgSigner {
    /// Loads the signing key from a secret key file's bytes (binary, or armored with any
    /// number of blocks). The
    /// file must hold exactly one certificate with an unencrypted secret key that is
    /// signing-capable, alive and unrevoked now (the newest such key is used).
    pub fn from_bytes(secret_key: &[u8]) -> Result<Self, SignError> {
        let policy = StandardPolicy::new();
        let now = SystemTime::now();
        let certs = parse_cert_bytes(secret_key).map_err(|reason| SignError::Parse { reason })?;
        let mut certificates = Vec::new();
        let mut candidates = Vec::new();
        let mut reasons = Vec::new();
        for cert in certs {
            let primary = cert.fingerprint().to_hex();
            certificates.push(primary.clone());
            let vc = match cert.with_policy(&policy, now) {
                Ok(vc) => vc,
                Err(e) => {
                    reasons.push(format!("{primary}: {e}"));
                    continue;
                }
            };
            let keys: Vec<_> = vc
                .keys()
                .secret()
                .for_signing()
                .alive()
                .revoked(false)
                .collect();
            if keys.is_empty() {
                reasons.push(format!(
                    "{primary}: no alive, unrevoked signing key with secret material"
                ));
                continue;
            }
            let newest = keys.into_iter().max_by_key(|ka| ka.key().creation_time());
            let Some(ka) = newest else { continue };
            let fingerprint = ka.key().fingerprint().to_hex();
            if ka.key().secret().is_encrypted() {
                reasons.push(format!(
                    "{primary}: signing key {fingerprint} is password-protected"
                ));
                continue;
            }
            match ka.key().clone().into_keypair() {
                Ok(keypair) => candidates.push(GpgSigner {
                    keypair,
                    fingerprint,
                    primary_fingerprint: primary,
                }),
                Err(e) => reasons.push(format!("{primary}: {e}")),
            }
        }
        match candidates.len() {
            0 => Err(SignError::NoSigningKey {
                certificates,
                reason: if reasons.is_empty() {
                    "no certificate".to_owned()
                } else {
                    reasons.join("; ")
                },
            }),
            1 => candidates.pop().ok_or(SignError::NoSigningKey {
                certificates,
                reason: String::new(),
            }),
            _ => Err(SignError::Ambiguous {
                certificates: candidates
                    .iter()
                    .map(|c| c.primary_fingerprint.clone())
                    .collect(),
            }),
        }
    }

    /// Fingerprint of the key that signs (a subkey if the certificate has a signing
    /// subkey).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Fingerprint of the certificate's primary key (what `ostree --gpg-sign` takes).
    pub fn primary_fingerprint(&self) -> &str {
        &self.primary_fingerprint
    }

    /// Signs `data`, returning one binary detached signature packet.
    pub fn sign_detached(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        let err = |e: &dyn fmt::Display| SignError::Sign {
            fingerprint: self.fingerprint.clone(),
            reason: e.to_string(),
        };
        let mut out = Vec::new();
        {
            let message = Message::new(&mut out);
            let mut signer = Signer::new(message, self.keypair.clone())
                .map_err(|e| err(&e))?
                .detached()
                .build()
                .map_err(|e| err(&e))?;
            signer.write_all(data).map_err(|e| err(&e))?;
            signer.finalize().map_err(|e| err(&e))?;
        }
        Ok(out)
    }
}

/// Signs `data` with the key in `secret_key` (see [`GpgSigner::from_bytes`]) and returns
/// the binary detached signature to append to `ostree.gpgsigs`.
pub fn sign_detached(data: &[u8], secret_key: &[u8]) -> Result<Vec<u8>, SignError> {
    GpgSigner::from_bytes(secret_key)?.sign_detached(data)
}
