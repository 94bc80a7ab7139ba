//! Signing and verifying: pure Ed25519 over the exact signed bytes, tried in
//! libostree's order.

use ed25519_dalek::{Signature, Signer as _};

use super::SIGNATURE_LEN;
use super::error::Ed25519Error;
use super::keys::format_public_key;
use super::keyset::Ed25519Keys;
use super::{SigningKey, VerifyingKey};

/// Signs `data` (pure Ed25519), returning the 64-byte signature ostree stores.
pub fn sign(data: &[u8], key: &SigningKey) -> [u8; SIGNATURE_LEN] {
    key.sign(data).to_bytes()
}

/// A successful ed25519 verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519Verification {
    /// The trusted key that verified.
    pub key: VerifyingKey,
    /// Index of the verifying signature in the signature array.
    pub signature_index: usize,
}

impl Ed25519Verification {
    /// The verifying key, base64 (for messages).
    pub fn key_base64(&self) -> String {
        format_public_key(&self.key)
    }
}

/// Verifies `data` against ostree ed25519 signatures (the elements of
/// `ostree.sign.ed25519`). Succeeds when at least one signature verifies with a trusted,
/// non-revoked key; see the module docs for the exact order and error rules.
pub fn verify(
    data: &[u8],
    signatures: &[&[u8]],
    keys: &Ed25519Keys,
) -> Result<Ed25519Verification, Ed25519Error> {
    if signatures.is_empty() {
        return Err(Ed25519Error::NoSignatures);
    }
    let usable: Vec<&VerifyingKey> = keys.usable().collect();
    if usable.is_empty() {
        return Err(Ed25519Error::NoTrustedKeys {
            revoked: keys.trusted.len(),
        });
    }
    let mut revoked_hit: Option<(usize, &VerifyingKey)> = None;
    for (index, raw) in signatures.iter().enumerate() {
        let bytes: &[u8; SIGNATURE_LEN] =
            (*raw)
                .try_into()
                .map_err(|_| Ed25519Error::InvalidSignatureLength {
                    index,
                    len: raw.len(),
                })?;
        let sig = Signature::from_bytes(bytes);
        if let Some(key) = usable.iter().find(|k| k.verify_strict(data, &sig).is_ok()) {
            return Ok(Ed25519Verification {
                key: **key,
                signature_index: index,
            });
        }
        if revoked_hit.is_none() {
            revoked_hit = keys
                .revoked
                .iter()
                .find(|k| k.verify_strict(data, &sig).is_ok())
                .map(|k| (index, k));
        }
    }
    if let Some((index, key)) = revoked_hit {
        return Err(Ed25519Error::RevokedKey {
            index,
            key: format_public_key(key),
        });
    }
    Err(Ed25519Error::NoValidSignature {
        signatures: signatures.len(),
        tried_keys: usable.iter().map(|k| format_public_key(k)).collect(),
    })
}
