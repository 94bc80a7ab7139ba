//! `a{sv}` metadata dictionaries: commit metadata, detached metadata (`commitmeta`),
//! `summary.sig`, summary repository metadata and per-ref metadata, delta metadata.
//!
//! GVariant type `a{sv}`. OSTree writes these from hash tables, so entries are **not**
//! sorted; lookups are linear. This module is strict where GLib is lenient: a dictionary
//! with an empty key or with the same key twice is rejected ([`MetadataRef::from_bytes`]),
//! and a typed getter on a key whose value has another type is an error, not `None`.
//!
//! Integer endianness is per key, not per dictionary: OSTree byte-swaps some `t` values
//! to big-endian before storing them and leaves others in host (little-endian) order.
//! The key constants below document which getter to use:
//! - big-endian `t` ([`MetadataRef::get_u64_be`]): [`COMMIT_TIMESTAMP`],
//!   [`SUMMARY_LAST_MODIFIED`], [`SUMMARY_EXPIRES`];
//! - there is no little-endian `t` among the standard keys; [`MetadataRef::get_u64_le`]
//!   exists for completeness.
//!
//! Mirrors `src/libostree/ostree-core.h` (key names), `ostree-repo.c`
//! (`regenerate_metadata`), `ostree-repo-commit.c` and `ostree-sign*.c`.

use std::collections::HashSet;

use crate::gvariant::{self, OwnedValue, RawValue, Value};

/// Commit metadata: free-form version string (`s`).
pub const VERSION: &str = "version";
/// Commit metadata: refs the commit may be pulled through (`as`).
pub const REF_BINDING: &str = "ostree.ref-binding";
/// Commit metadata: collection ID the commit belongs to (`s`).
pub const COLLECTION_BINDING: &str = "ostree.collection-binding";
/// Commit metadata: end-of-life message (`s`).
pub const ENDOFLIFE: &str = "ostree.endoflife";
/// Commit metadata: refspec to rebase to at end of life (`s`).
pub const ENDOFLIFE_REBASE: &str = "ostree.endoflife-rebase";
/// Commit metadata: short human-readable origin (`s`).
pub const SOURCE_TITLE: &str = "ostree.source-title";
/// Commit metadata: CPU architecture (`s`).
pub const ARCHITECTURE: &str = "ostree.architecture";
/// Commit metadata: per-object sizes (`aay`).
pub const SIZES: &str = "ostree.sizes";
/// Commit metadata: fs-verity digest of the composefs image ostree would build (`ay`,
/// 32 bytes).
pub const COMPOSEFS_DIGEST_V0: &str = "ostree.composefs.digest.v0";
/// Commit metadata: the tree contains a kernel (`b`).
pub const BOOTABLE: &str = "ostree.bootable";
/// Commit metadata: kernel release (`s`).
pub const LINUX: &str = "ostree.linux";
/// Repo metadata: collection ID clients should adopt (`s`).
pub const DEPLOY_COLLECTION_ID: &str = "ostree.deploy-collection-id";

/// Detached metadata / `summary.sig`: binary OpenPGP signatures (`aay`).
pub const GPGSIGS: &str = "ostree.gpgsigs";
/// Detached metadata / `summary.sig`: 64-byte Ed25519 signatures (`aay`).
pub const SIGN_ED25519: &str = "ostree.sign.ed25519";
/// Detached metadata / `summary.sig`: SPKI signatures (`aay`).
pub const SIGN_SPKI: &str = "ostree.sign.spki";

/// Summary per-ref metadata: commit timestamp (`t`, **big-endian**).
pub const COMMIT_TIMESTAMP: &str = "ostree.commit.timestamp";
/// Summary per-ref metadata: the commit's `version` (`s`).
pub const COMMIT_VERSION: &str = "ostree.commit.version";
/// Summary metadata: static deltas, name -> `v` of `ay` superblock checksum (`a{sv}`).
pub const STATIC_DELTAS: &str = "ostree.static-deltas";
/// Summary metadata: deltas are listed in `delta-indexes/` (`b`).
pub const SUMMARY_INDEXED_DELTAS: &str = "ostree.summary.indexed-deltas";
/// Summary metadata: the server repository mode (`s`).
pub const SUMMARY_MODE: &str = "ostree.summary.mode";
/// Summary metadata: tombstone commits enabled (`b`).
pub const SUMMARY_TOMBSTONE_COMMITS: &str = "ostree.summary.tombstone-commits";
/// Summary metadata: generation time, seconds (`t`, **big-endian**).
pub const SUMMARY_LAST_MODIFIED: &str = "ostree.summary.last-modified";
/// Summary metadata: expiry time, seconds (`t`, **big-endian**).
pub const SUMMARY_EXPIRES: &str = "ostree.summary.expires";
/// Summary metadata: main collection ID (`s`).
pub const SUMMARY_COLLECTION_ID: &str = "ostree.summary.collection-id";
/// Summary metadata: refs of other collections (`a{sa(s(taya{sv}))}`).
pub const SUMMARY_COLLECTION_MAP: &str = "ostree.summary.collection-map";
/// Delta superblock metadata: writer byte order, `l` or `B` (`y`).
pub const DELTA_ENDIANNESS: &str = "ostree.endianness";

/// Errors reading or building metadata dictionaries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a normal-form `a{sv}`.
    #[error("metadata: {0}")]
    Variant(#[from] gvariant::Error),
    /// A key is the empty string.
    #[error("metadata entry at offset {offset} has an empty key")]
    EmptyKey {
        /// Offset of the entry.
        offset: usize,
    },
    /// The same key occurs twice.
    #[error("metadata key {key:?} occurs more than once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// A key's value has another type than the getter expects.
    #[error("metadata key {key:?} has type {actual}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The type the getter reads.
        expected: &'static str,
        /// The value's type.
        actual: String,
    },
}

/// A borrowed, checked `a{sv}` dictionary.
#[derive(Debug, Clone, Copy)]
pub struct MetadataRef<'a> {
    value: Value<'a>,
}

impl<'a> MetadataRef<'a> {
    /// Parses `data` as a normal-form `a{sv}` with non-empty, unique keys.
    ///
    /// The view borrows `data`; the duplicate-key check keeps one borrowed key per entry,
    /// so allocation is O(input length).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, Error> {
        Self::from_value(Value::from_bytes(data, "a{sv}")?)
    }

    /// Wraps an `a{sv}` value (e.g. a tuple field), checking keys as
    /// [`MetadataRef::from_bytes`] does. Allocates O(number of entries).
    pub fn from_value(value: Value<'a>) -> Result<Self, Error> {
        value.expect_type("a{sv}")?;
        let mut seen = HashSet::new();
        for entry in value.array_iter()? {
            let entry = entry?;
            let [k, _] = entry.tuple_fields()?;
            let key = k.as_str()?;
            if key.is_empty() {
                return Err(Error::EmptyKey {
                    offset: entry.offset(),
                });
            }
            if !seen.insert(key) {
                return Err(Error::DuplicateKey {
                    key: key.to_owned(),
                });
            }
        }
        Ok(MetadataRef { value })
    }

    /// The underlying `a{sv}` value.
    pub fn as_value(&self) -> Value<'a> {
        self.value
    }

    /// The serialized bytes.
    pub fn data(&self) -> &'a [u8] {
        self.value.data()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.value.array_len().unwrap_or(0)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.value.data().is_empty()
    }

    /// Iterates over (key, value inside the variant) in stored order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(&'a str, Value<'a>), Error>> + 'a {
        let it = self.value.array_iter();
        let (first_err, rest) = match it {
            Ok(it) => (None, Some(it)),
            Err(e) => (Some(Err(Error::from(e))), None),
        };
        first_err
            .into_iter()
            .chain(rest.into_iter().flatten().map(|entry| {
                let [k, v] = entry?.tuple_fields()?;
                Ok((k.as_str()?, v.as_variant()?))
            }))
    }

    /// The value stored under `key` (already unwrapped from its variant).
    pub fn get(&self, key: &str) -> Result<Option<Value<'a>>, Error> {
        match self.value.lookup(key)? {
            Some(v) => Ok(Some(v.as_variant()?)),
            None => Ok(None),
        }
    }

    fn typed(&self, key: &str, ty: &'static str) -> Result<Option<Value<'a>>, Error> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) if v.type_str() == ty => Ok(Some(v)),
            Some(v) => Err(Error::WrongType {
                key: key.to_owned(),
                expected: ty,
                actual: v.type_str().to_owned(),
            }),
        }
    }

    /// A string value (`s`).
    pub fn get_str(&self, key: &str) -> Result<Option<&'a str>, Error> {
        Ok(self.typed(key, "s")?.map(|v| v.as_str()).transpose()?)
    }

    /// A `t` stored big-endian (see the module docs for which keys are).
    pub fn get_u64_be(&self, key: &str) -> Result<Option<u64>, Error> {
        Ok(self.typed(key, "t")?.map(|v| v.as_u64_be()).transpose()?)
    }

    /// A `t` stored little-endian (host order).
    pub fn get_u64_le(&self, key: &str) -> Result<Option<u64>, Error> {
        Ok(self.typed(key, "t")?.map(|v| v.as_u64_le()).transpose()?)
    }

    /// A boolean (`b`).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        Ok(self.typed(key, "b")?.map(|v| v.as_bool()).transpose()?)
    }

    /// A byte (`y`).
    pub fn get_u8(&self, key: &str) -> Result<Option<u8>, Error> {
        Ok(self.typed(key, "y")?.map(|v| v.as_u8()).transpose()?)
    }

    /// A byte array (`ay`).
    pub fn get_bytes(&self, key: &str) -> Result<Option<&'a [u8]>, Error> {
        Ok(self.typed(key, "ay")?.map(|v| v.as_bytes()).transpose()?)
    }

    /// An array of byte arrays (`aay`), e.g. [`GPGSIGS`] or [`SIGN_ED25519`].
    pub fn get_bytes_array(&self, key: &str) -> Result<Option<Vec<&'a [u8]>>, Error> {
        let Some(v) = self.typed(key, "aay")? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(v.array_len()?.min(1024));
        for item in v.array_iter()? {
            out.push(item?.as_bytes()?);
        }
        Ok(Some(out))
    }

    /// An array of strings (`as`), e.g. [`REF_BINDING`].
    pub fn get_strv(&self, key: &str) -> Result<Option<Vec<&'a str>>, Error> {
        let Some(v) = self.typed(key, "as")? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(v.array_len()?.min(1024));
        for item in v.array_iter()? {
            out.push(item?.as_str()?);
        }
        Ok(Some(out))
    }

    /// A nested dictionary (`a{sv}`), e.g. [`STATIC_DELTAS`].
    pub fn get_dict(&self, key: &str) -> Result<Option<MetadataRef<'a>>, Error> {
        self.typed(key, "a{sv}")?
            .map(MetadataRef::from_value)
            .transpose()
    }

    /// An owned copy, keeping the entry order.
    pub fn to_owned(&self) -> Result<Metadata, Error> {
        let mut m = Metadata::new();
        for e in self.iter() {
            let (k, v) = e?;
            m.entries.push((k.to_owned(), Variant::from_value(&v)));
        }
        Ok(m)
    }
}

/// An owned metadata value: its type string and normal-form bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Variant(RawValue);

impl Variant {
    /// Checks `bytes` as a normal-form value of type `ty`.
    pub fn raw(ty: impl Into<String>, bytes: Vec<u8>) -> Result<Self, Error> {
        Ok(Variant(RawValue::new(ty, bytes)?))
    }

    /// Copies a borrowed value.
    pub fn from_value(v: &Value<'_>) -> Self {
        Variant(v.to_raw())
    }

    /// Serializes `v`.
    pub fn from_owned(v: &OwnedValue) -> Result<Self, Error> {
        Self::raw(v.type_string(), v.to_bytes()?)
    }

    /// A string (`s`); fails if `s` contains NUL.
    pub fn string(s: &str) -> Result<Self, Error> {
        Self::from_owned(&OwnedValue::str(s))
    }

    /// A `t` stored big-endian.
    pub fn u64_be(v: u64) -> Self {
        Variant(RawValue::trusted("t", v.to_be_bytes().to_vec()))
    }

    /// A `t` stored little-endian.
    pub fn u64_le(v: u64) -> Self {
        Variant(RawValue::trusted("t", v.to_le_bytes().to_vec()))
    }

    /// A boolean (`b`).
    pub fn bool(b: bool) -> Self {
        Variant(RawValue::trusted("b", vec![u8::from(b)]))
    }

    /// A byte (`y`).
    pub fn byte(b: u8) -> Self {
        Variant(RawValue::trusted("y", vec![b]))
    }

    /// A byte array (`ay`).
    pub fn bytes(b: &[u8]) -> Self {
        Variant(RawValue::trusted("ay", b.to_vec()))
    }

    /// An array of byte arrays (`aay`).
    pub fn bytes_array<B: AsRef<[u8]>>(items: &[B]) -> Result<Self, Error> {
        Self::from_owned(&OwnedValue::array(
            "ay",
            items
                .iter()
                .map(|b| OwnedValue::bytes(b.as_ref()))
                .collect(),
        ))
    }

    /// An array of strings (`as`); fails if a string contains NUL.
    pub fn strv<S: AsRef<str>>(items: &[S]) -> Result<Self, Error> {
        Self::from_owned(&OwnedValue::array(
            "s",
            items.iter().map(|s| OwnedValue::str(s.as_ref())).collect(),
        ))
    }

    /// A nested dictionary (`a{sv}`).
    pub fn dict(m: &Metadata) -> Result<Self, Error> {
        Self::raw("a{sv}", m.to_bytes()?)
    }

    /// The type string.
    pub fn type_str(&self) -> &str {
        self.0.type_str()
    }

    /// The serialized bytes.
    pub fn bytes_data(&self) -> &[u8] {
        self.0.bytes()
    }

    /// A borrowed view.
    pub fn as_value(&self) -> Result<Value<'_>, Error> {
        Ok(self.0.as_value()?)
    }
}

/// An owned `a{sv}` dictionary that keeps insertion order (so a parsed dictionary
/// serializes back to the same bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, Variant)>,
}

impl Metadata {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses and copies a serialized `a{sv}`. Allocates O(input length) (a copy of each
    /// key and value).
    pub fn from_bytes(data: &[u8]) -> Result<Self, Error> {
        MetadataRef::from_bytes(data)?.to_owned()
    }

    /// Sets `key` (replacing an existing value in place, else appending). Fails on an
    /// empty key or a key containing NUL.
    pub fn insert(&mut self, key: &str, value: Variant) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::EmptyKey { offset: 0 });
        }
        if key.contains('\0') {
            return Err(gvariant::Error::Malformed {
                what: "interior NUL in string",
                ty: "s".to_owned(),
                offset: 0,
            }
            .into());
        }
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key.to_owned(), value)),
        }
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Variant> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Variant> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Variant)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// As a writer value (for embedding into a larger GVariant).
    pub fn to_owned_value(&self) -> OwnedValue {
        OwnedValue::array(
            "{sv}",
            self.entries
                .iter()
                .map(|(k, v)| {
                    OwnedValue::entry(
                        OwnedValue::str(k.as_str()),
                        OwnedValue::Variant(Box::new(OwnedValue::Raw(v.0.clone()))),
                    )
                })
                .collect(),
        )
    }

    /// Serializes in normal form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(self.to_owned_value().to_bytes()?)
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
mod tests {
    use super::*;

    #[test]
    fn build_parse_round_trip() {
        let mut m = Metadata::new();
        m.insert(VERSION, Variant::string("2").unwrap()).unwrap();
        m.insert(REF_BINDING, Variant::strv(&["os/x86_64/stable"]).unwrap())
            .unwrap();
        m.insert(SUMMARY_LAST_MODIFIED, Variant::u64_be(1_764_092_559))
            .unwrap();
        m.insert(
            GPGSIGS,
            Variant::bytes_array(&[b"sig1".as_slice(), b"".as_slice()]).unwrap(),
        )
        .unwrap();
        m.insert(BOOTABLE, Variant::bool(true)).unwrap();
        let b = m.to_bytes().unwrap();
        let r = MetadataRef::from_bytes(&b).unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!(r.get_str(VERSION).unwrap(), Some("2"));
        assert_eq!(
            r.get_strv(REF_BINDING).unwrap().unwrap(),
            vec!["os/x86_64/stable"]
        );
        assert_eq!(
            r.get_u64_be(SUMMARY_LAST_MODIFIED).unwrap(),
            Some(1_764_092_559)
        );
        assert_eq!(
            r.get_bytes_array(GPGSIGS).unwrap().unwrap(),
            vec![&b"sig1"[..], &b""[..]]
        );
        assert_eq!(r.get_bool(BOOTABLE).unwrap(), Some(true));
        assert_eq!(r.get_str("missing").unwrap(), None);
        assert!(matches!(r.get_str(BOOTABLE), Err(Error::WrongType { .. })));
        assert_eq!(r.to_owned().unwrap().to_bytes().unwrap(), b);
        assert!(m.insert("", Variant::bool(true)).is_err());
        assert!(Variant::string("a\0b").is_err());
    }

    #[test]
    fn rejects_duplicate_and_empty_keys() {
        let e = |k: &str| {
            OwnedValue::entry(
                OwnedValue::str(k),
                OwnedValue::Variant(Box::new(OwnedValue::Byte(1))),
            )
        };
        let dup = OwnedValue::array("{sv}", vec![e("a"), e("a")])
            .to_bytes()
            .unwrap();
        assert!(matches!(
            MetadataRef::from_bytes(&dup),
            Err(Error::DuplicateKey { .. })
        ));
        let empty = OwnedValue::array("{sv}", vec![e("")]).to_bytes().unwrap();
        assert!(matches!(
            MetadataRef::from_bytes(&empty),
            Err(Error::EmptyKey { .. })
        ));
        assert!(MetadataRef::from_bytes(&[]).unwrap().is_empty());
    }
}
