//! The signed static-delta wrapper: `(taya{sv})` starting with the magic `OSTSGNDT`.
//!
//! `ostree static-delta generate --sign-type=… --sign=…` writes, in place of the plain
//! `superblock` file, `OSTREE_STATIC_DELTA_SIGNED_FORMAT`
//! (`src/libostree/ostree-repo-static-delta-private.h`):
//!
//! | # | type | field |
//! |---|---|---|
//! | 0 | `t` | `OSTREE_STATIC_DELTA_SIGNED_MAGIC` `0x4F535453474E4454` stored big-endian: the bytes `OSTSGNDT` |
//! | 1 | `ay` | the exact bytes of the unsigned superblock |
//! | 2 | `a{sv}` | `ostree.sign.<engine>` → `aay` of signatures over field 1 |
//!
//! A file is treated as signed exactly when ostree's `_ostree_repo_static_delta_is_signed`
//! (`ostree-repo-static-delta-core.c`) would: it parses as `(taya{sv})`, the magic matches
//! and some metadata key starts with `ostree.sign.`. Signatures are not checked here.

use crate::gvariant::{self, Value};
use crate::metadata::{self, MetadataRef};

use super::superblock::{SuperblockError, SuperblockRef};

/// GVariant type of the signed wrapper.
pub const SIGNED_TYPE: &str = "(taya{sv})";

/// The first 8 bytes of a signed superblock.
pub const SIGNED_MAGIC: [u8; 8] = *b"OSTSGNDT";

/// Prefix of the metadata keys that carry signatures.
pub const SIGN_KEY_PREFIX: &str = "ostree.sign.";

/// Why a signed superblock could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedError {
    /// Not a normal-form `(taya{sv})`.
    #[error("signed delta superblock: {0}")]
    Variant(#[from] gvariant::Error),
    /// The signature dictionary is invalid.
    #[error("signed delta superblock signatures: {0}")]
    Metadata(#[from] metadata::Error),
    /// The first 8 bytes are not `OSTSGNDT`.
    #[error("signed delta superblock has no OSTSGNDT magic")]
    Magic,
    /// No `ostree.sign.*` key.
    #[error("signed delta superblock has no ostree.sign.* signatures")]
    NoSignatures,
    /// The wrapped superblock is invalid.
    #[error("signed delta: {0}")]
    Superblock(#[from] SuperblockError),
}

/// A checked signed wrapper: the inner superblock bytes and the signature dictionary.
#[derive(Debug, Clone, Copy)]
pub struct SignedSuperblockRef<'a> {
    superblock: &'a [u8],
    signatures: MetadataRef<'a>,
}

impl<'a> SignedSuperblockRef<'a> {
    /// Parses the wrapper (the inner superblock is not parsed; see
    /// [`SignedSuperblockRef::superblock`]).
    ///
    /// Borrows `data`; allocates O(input length) (the signature dictionary's key check).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, SignedError> {
        if data.get(..8) != Some(&SIGNED_MAGIC[..]) {
            return Err(SignedError::Magic);
        }
        let v = Value::from_bytes(data, SIGNED_TYPE)?;
        let [magic, sb, sigs] = v.tuple_fields()?;
        if magic.as_u64_be()? != u64::from_be_bytes(SIGNED_MAGIC) {
            return Err(SignedError::Magic);
        }
        let signatures = MetadataRef::from_value(sigs)?;
        let mut any = false;
        for e in signatures.iter() {
            if e?.0.starts_with(SIGN_KEY_PREFIX) {
                any = true;
            }
        }
        if !any {
            return Err(SignedError::NoSignatures);
        }
        Ok(SignedSuperblockRef {
            superblock: sb.as_bytes()?,
            signatures,
        })
    }

    /// The exact bytes of the wrapped superblock (what the signatures cover).
    pub fn superblock_bytes(&self) -> &'a [u8] {
        self.superblock
    }

    /// Parses the wrapped superblock.
    pub fn superblock(&self) -> Result<SuperblockRef<'a>, SuperblockError> {
        SuperblockRef::from_bytes(self.superblock)
    }

    /// The whole signature dictionary.
    pub fn signatures(&self) -> MetadataRef<'a> {
        self.signatures
    }

    /// Names of the signing engines present (`ed25519`, `spki`, `dummy`, …: the part after
    /// `ostree.sign.`).
    pub fn engines(&self) -> Vec<&'a str> {
        self.signatures
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, _)| k.strip_prefix(SIGN_KEY_PREFIX))
            .collect()
    }

    /// Signatures of one engine (`aay` under `ostree.sign.<engine>`).
    pub fn engine_signatures(&self, engine: &str) -> Result<Option<Vec<&'a [u8]>>, SignedError> {
        Ok(self
            .signatures
            .get_bytes_array(&format!("{SIGN_KEY_PREFIX}{engine}"))?)
    }

    /// `ostree.sign.ed25519` signatures (64 bytes each when valid).
    pub fn ed25519(&self) -> Result<Option<Vec<&'a [u8]>>, SignedError> {
        self.engine_signatures("ed25519")
    }

    /// `ostree.gpgsigs` signatures, if a writer put any there.
    pub fn gpgsigs(&self) -> Result<Option<Vec<&'a [u8]>>, SignedError> {
        Ok(self.signatures.get_bytes_array(metadata::GPGSIGS)?)
    }
}

/// A superblock file as fetched: plain, or signed with the wrapper.
#[derive(Debug, Clone)]
pub struct SuperblockFile<'a> {
    /// The signed wrapper, when the file has one.
    pub signed: Option<SignedSuperblockRef<'a>>,
    /// The superblock itself (inside the wrapper for signed files).
    pub superblock: SuperblockRef<'a>,
}

/// Parses a superblock file, unwrapping the signed form when ostree would treat the file
/// as signed.
///
/// Allocates O(input length), as [`SuperblockRef::from_bytes`].
pub fn open_superblock(data: &[u8]) -> Result<SuperblockFile<'_>, SignedError> {
    if data.starts_with(&SIGNED_MAGIC)
        && let Ok(signed) = SignedSuperblockRef::from_bytes(data)
    {
        return Ok(SuperblockFile {
            superblock: signed.superblock()?,
            signed: Some(signed),
        });
    }
    Ok(SuperblockFile {
        signed: None,
        superblock: SuperblockRef::from_bytes(data)?,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::gvariant::OwnedValue;
    use crate::metadata::{Metadata, Variant};

    #[test]
    fn wrapper_round_trip_and_rejects() {
        let inner = b"not parsed here".to_vec();
        let mut sigs = Metadata::new();
        sigs.insert(
            "ostree.sign.ed25519",
            Variant::bytes_array(&[[5u8; 64]]).unwrap(),
        )
        .unwrap();
        let bytes = OwnedValue::Tuple(vec![
            OwnedValue::u64_be(u64::from_be_bytes(SIGNED_MAGIC)),
            OwnedValue::bytes(inner.clone()),
            sigs.to_owned_value(),
        ])
        .to_bytes()
        .unwrap();
        assert_eq!(&bytes[..8], b"OSTSGNDT");
        let s = SignedSuperblockRef::from_bytes(&bytes).unwrap();
        assert_eq!(s.superblock_bytes(), &inner[..]);
        assert_eq!(s.engines(), vec!["ed25519"]);
        assert_eq!(s.ed25519().unwrap().unwrap(), vec![&[5u8; 64][..]]);
        assert!(s.superblock().is_err());
        for n in 0..bytes.len() {
            assert!(
                SignedSuperblockRef::from_bytes(&bytes[..n]).is_err(),
                "prefix {n}"
            );
        }
        let unsigned = OwnedValue::Tuple(vec![
            OwnedValue::u64_be(u64::from_be_bytes(SIGNED_MAGIC)),
            OwnedValue::bytes(inner),
            Metadata::new().to_owned_value(),
        ])
        .to_bytes()
        .unwrap();
        assert_eq!(
            SignedSuperblockRef::from_bytes(&unsigned).unwrap_err(),
            SignedError::NoSignatures
        );
    }
}
