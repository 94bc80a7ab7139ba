//! The repository summary (`summary`, `(a(s(taya{sv}))a{sv})`) and its signature file
//! (`summary.sig`, `a{sv}`).
//!
//! Layout (`OSTREE_SUMMARY_GVARIANT_STRING`, `src/libostree/ostree-core.h`; writer:
//! `regenerate_metadata` and `summary_add_ref_entry` in `src/libostree/ostree-repo.c`):
//!
//! | part | type | content |
//! |---|---|---|
//! | ref map | `a(s(taya{sv}))` | (ref name, (commit size, commit checksum, per-ref metadata)), sorted by name with `strcmp` |
//! | commit size | `t` | size of the `.commit` object, **little-endian** (host order, not swapped) |
//! | per-ref metadata | `a{sv}` | `ostree.commit.timestamp` (`t`, **big-endian**), `ostree.commit.version` (`s`) |
//! | repo metadata | `a{sv}` | `ostree.static-deltas`, `ostree.summary.*` (last-modified and expires are big-endian `t`) |
//!
//! `summary.sig` (`OSTREE_SUMMARY_SIG_GVARIANT_STRING`) is an `a{sv}` with
//! `ostree.gpgsigs` (`aay` of OpenPGP signatures) and/or `ostree.sign.<engine>` (`aay`,
//! e.g. 64-byte ed25519 signatures), all over the exact bytes of `summary`.
//!
//! [`SummaryRef`] checks the whole file once (normal form, ref names, checksum lengths,
//! metadata dictionaries, at most [`MAX_REFS`] refs). [`Summary::to_bytes`] writes refs
//! sorted and the metadata in stored order, so a parsed summary written back is
//! byte-identical to what `ostree summary -u` wrote (GVariant normal form is unique; the
//! `a{sv}` entry order, which ostree takes from a hash table, is kept).
//!
//! [`SummaryContents`] (in `build`) assembles a new summary as `ostree summary -u` does,
//! with the `a{sv}` entry order of libostree's hash tables ([`glib_order`]).

mod build;

pub use crate::delta::index::glib_order;

pub use build::{MAX_GLIB_TIMESTAMP, SummaryContents};

use crate::checksum::Checksum;
use crate::delta::index::{DeltaList, DeltaListError};
use crate::gvariant::{self, OwnedValue, Value};
use crate::metadata::{
    self, COMMIT_TIMESTAMP, COMMIT_VERSION, GPGSIGS, Metadata, MetadataRef, SIGN_ED25519,
    STATIC_DELTAS, SUMMARY_COLLECTION_ID, SUMMARY_COLLECTION_MAP, SUMMARY_EXPIRES,
    SUMMARY_INDEXED_DELTAS, SUMMARY_LAST_MODIFIED, SUMMARY_MODE, SUMMARY_TOMBSTONE_COMMITS,
};
use crate::names;

/// GVariant type of a summary.
pub const SUMMARY_TYPE: &str = "(a(s(taya{sv}))a{sv})";

/// GVariant type of the ref map.
pub const REF_MAP_TYPE: &str = "a(s(taya{sv}))";

/// GVariant type of `summary.sig`.
pub const SUMMARY_SIG_TYPE: &str = "a{sv}";

/// Prefix of the sign-API signature keys (`ostree.sign.ed25519`, …).
pub const SIGN_PREFIX: &str = "ostree.sign.";

/// Most refs accepted in one ref map (the main one or one collection's).
pub const MAX_REFS: usize = 1 << 20;

/// Why a summary (or summary.sig) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    /// Not a normal-form GVariant of the summary type.
    #[error("summary: {0}")]
    Variant(#[from] gvariant::Error),
    /// A metadata dictionary is invalid, or a key has the wrong type.
    #[error("summary metadata: {0}")]
    Metadata(#[from] metadata::Error),
    /// A ref name or collection ID is invalid.
    #[error("summary: {0}")]
    Name(#[from] names::Error),
    /// A commit checksum is not 32 bytes.
    #[error("summary ref {name:?} has a {len}-byte commit checksum, expected 32")]
    ChecksumLength {
        /// The ref.
        name: String,
        /// The checksum length.
        len: usize,
    },
    /// A `summary.sig` without any signature key.
    #[error("summary.sig has no ostree.gpgsigs or ostree.sign.* signatures")]
    NoSignatures,
    /// Too many refs.
    #[error("summary ref map has {0} refs, more than the limit")]
    TooManyRefs(usize),
    /// The delta list is invalid.
    #[error("summary: {0}")]
    Deltas(#[from] DeltaListError),
    /// A ref's commit object is invalid.
    #[error("commit {checksum}: {message}")]
    Commit {
        /// The commit.
        checksum: Checksum,
        /// What is wrong with it.
        message: String,
    },
}

/// One ref of a summary ref map.
#[derive(Debug, Clone, Copy)]
pub struct RefEntry<'a> {
    /// The ref name (validated with `ostree_validate_rev` rules).
    pub name: &'a str,
    /// Size of the commit object in bytes (the download cap for it).
    pub commit_size: u64,
    /// The commit the ref points to.
    pub checksum: Checksum,
    /// Per-ref metadata.
    pub metadata: MetadataRef<'a>,
}

impl<'a> RefEntry<'a> {
    /// `ostree.commit.timestamp` (big-endian `t`), if present.
    pub fn timestamp(&self) -> Result<Option<u64>, SummaryError> {
        Ok(self.metadata.get_u64_be(COMMIT_TIMESTAMP)?)
    }

    /// `ostree.commit.version`, if present.
    pub fn version(&self) -> Result<Option<&'a str>, SummaryError> {
        Ok(self.metadata.get_str(COMMIT_VERSION)?)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Result<SummaryRefEntry, SummaryError> {
        Ok(SummaryRefEntry {
            name: self.name.to_owned(),
            commit_size: self.commit_size,
            checksum: self.checksum,
            metadata: self.metadata.to_owned()?,
        })
    }
}

/// Parses and checks a ref map `a(s(taya{sv}))`.
fn parse_ref_map(v: Value<'_>) -> Result<Vec<RefEntry<'_>>, SummaryError> {
    let n = v.array_len()?;
    if n > MAX_REFS {
        return Err(SummaryError::TooManyRefs(n));
    }
    let mut out = Vec::with_capacity(n);
    for item in v.array_iter()? {
        let [name, inner] = item?.tuple_fields()?;
        let name = name.as_str()?;
        names::validate_rev(name)?;
        let [size, csum, meta] = inner.tuple_fields()?;
        let b = csum.as_bytes()?;
        let checksum = Checksum::from_slice(b).map_err(|_| SummaryError::ChecksumLength {
            name: name.to_owned(),
            len: b.len(),
        })?;
        out.push(RefEntry {
            name,
            commit_size: size.as_u64_le()?,
            checksum,
            metadata: MetadataRef::from_value(meta)?,
        });
    }
    Ok(out)
}

/// Binary search as ostree's `ot_variant_bsearch_str` does (byte-wise `strcmp` order),
/// falling back to a linear scan so that unsorted maps still resolve.
fn find<'s, 'a>(refs: &'s [RefEntry<'a>], name: &str) -> Option<&'s RefEntry<'a>> {
    match refs.binary_search_by(|r| r.name.as_bytes().cmp(name.as_bytes())) {
        Ok(i) => refs.get(i),
        Err(_) => refs.iter().find(|r| r.name == name),
    }
}

/// The refs of one collection in `ostree.summary.collection-map`.
#[derive(Debug, Clone)]
pub struct CollectionRefs<'a> {
    /// The collection ID (validated).
    pub collection_id: &'a str,
    /// Its refs.
    pub refs: Vec<RefEntry<'a>>,
}

impl<'a> CollectionRefs<'a> {
    /// The ref called `name`.
    pub fn lookup_ref(&self, name: &str) -> Option<&RefEntry<'a>> {
        find(&self.refs, name)
    }
}

/// A checked, borrowed summary.
#[derive(Debug, Clone)]
pub struct SummaryRef<'a> {
    data: &'a [u8],
    refs: Vec<RefEntry<'a>>,
    metadata: MetadataRef<'a>,
}

impl<'a> SummaryRef<'a> {
    /// Parses and checks a summary file.
    ///
    /// The view borrows `data`. It keeps one [`RefEntry`] per ref of the main map (at most
    /// [`MAX_REFS`], and the count comes from framing offsets, so at most one per input
    /// byte); the typed-key checks build the collection map the same way and drop it. In
    /// all, allocation for hostile input is O(input length).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, SummaryError> {
        let v = Value::from_bytes(data, SUMMARY_TYPE)?;
        let [refs, meta] = v.tuple_fields()?;
        let refs = parse_ref_map(refs)?;
        let metadata = MetadataRef::from_value(meta)?;
        let s = SummaryRef {
            data,
            refs,
            metadata,
        };
        // Check the typed keys now so that later accessors cannot fail on valid input.
        s.static_deltas()?;
        s.last_modified()?;
        s.expires()?;
        s.indexed_deltas()?;
        s.mode()?;
        s.tombstone_commits()?;
        s.collection_id()?;
        s.collection_map()?;
        Ok(s)
    }

    /// The summary bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The refs of the main map, in stored (sorted) order.
    pub fn refs(&self) -> &[RefEntry<'a>] {
        &self.refs
    }

    /// The ref called `name` in the main map.
    pub fn lookup_ref(&self, name: &str) -> Option<&RefEntry<'a>> {
        find(&self.refs, name)
    }

    /// The repository metadata.
    pub fn metadata(&self) -> MetadataRef<'a> {
        self.metadata
    }

    /// `ostree.static-deltas`: delta name → superblock digest.
    pub fn static_deltas(&self) -> Result<Option<DeltaList>, SummaryError> {
        match self.metadata.get_dict(STATIC_DELTAS)? {
            Some(d) => Ok(Some(DeltaList::from_metadata(d)?)),
            None => Ok(None),
        }
    }

    /// `ostree.summary.last-modified` (big-endian `t`, seconds).
    pub fn last_modified(&self) -> Result<Option<u64>, SummaryError> {
        Ok(self.metadata.get_u64_be(SUMMARY_LAST_MODIFIED)?)
    }

    /// `ostree.summary.expires` (big-endian `t`, seconds).
    pub fn expires(&self) -> Result<Option<u64>, SummaryError> {
        Ok(self.metadata.get_u64_be(SUMMARY_EXPIRES)?)
    }

    /// `ostree.summary.indexed-deltas`.
    pub fn indexed_deltas(&self) -> Result<Option<bool>, SummaryError> {
        Ok(self.metadata.get_bool(SUMMARY_INDEXED_DELTAS)?)
    }

    /// `ostree.summary.mode` (the server's `core.mode`, e.g. `archive-z2`).
    pub fn mode(&self) -> Result<Option<&'a str>, SummaryError> {
        Ok(self.metadata.get_str(SUMMARY_MODE)?)
    }

    /// `ostree.summary.tombstone-commits`.
    pub fn tombstone_commits(&self) -> Result<Option<bool>, SummaryError> {
        Ok(self.metadata.get_bool(SUMMARY_TOMBSTONE_COMMITS)?)
    }

    /// `ostree.summary.collection-id` (validated).
    pub fn collection_id(&self) -> Result<Option<&'a str>, SummaryError> {
        let id = self.metadata.get_str(SUMMARY_COLLECTION_ID)?;
        if let Some(id) = id {
            names::validate_collection_id(id)?;
        }
        Ok(id)
    }

    /// `ostree.summary.collection-map`: the refs of other collections.
    pub fn collection_map(&self) -> Result<Vec<CollectionRefs<'a>>, SummaryError> {
        let Some(v) = self.metadata.get(SUMMARY_COLLECTION_MAP)? else {
            return Ok(Vec::new());
        };
        if v.type_str() != "a{sa(s(taya{sv}))}" {
            return Err(metadata::Error::WrongType {
                key: SUMMARY_COLLECTION_MAP.to_owned(),
                expected: "a{sa(s(taya{sv}))}",
                actual: v.type_str().to_owned(),
            }
            .into());
        }
        let mut out = Vec::new();
        for e in v.array_iter()? {
            let [id, refs] = e?.tuple_fields()?;
            let id = id.as_str()?;
            names::validate_collection_id(id)?;
            out.push(CollectionRefs {
                collection_id: id,
                refs: parse_ref_map(refs)?,
            });
        }
        Ok(out)
    }

    /// The ref `name` of collection `collection_id`: the main map when the ID is the
    /// summary's own `ostree.summary.collection-id`, else the collection map.
    pub fn lookup_collection_ref(
        &self,
        collection_id: &str,
        name: &str,
    ) -> Result<Option<RefEntry<'a>>, SummaryError> {
        if self.collection_id()? == Some(collection_id) {
            return Ok(self.lookup_ref(name).copied());
        }
        Ok(self
            .collection_map()?
            .iter()
            .find(|c| c.collection_id == collection_id)
            .and_then(|c| c.lookup_ref(name).copied()))
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Result<Summary, SummaryError> {
        Ok(Summary {
            refs: self
                .refs
                .iter()
                .map(RefEntry::to_owned)
                .collect::<Result<_, _>>()?,
            metadata: self.metadata.to_owned()?,
        })
    }
}

/// One ref of an owned [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRefEntry {
    /// The ref name.
    pub name: String,
    /// Size of the commit object.
    pub commit_size: u64,
    /// The commit.
    pub checksum: Checksum,
    /// Per-ref metadata (`ostree.commit.timestamp` big-endian, `ostree.commit.version`).
    pub metadata: Metadata,
}

impl SummaryRefEntry {
    fn to_owned_value(&self) -> OwnedValue {
        OwnedValue::Tuple(vec![
            OwnedValue::str(self.name.as_str()),
            OwnedValue::Tuple(vec![
                OwnedValue::U64(self.commit_size),
                OwnedValue::bytes(self.checksum.0.to_vec()),
                self.metadata.to_owned_value(),
            ]),
        ])
    }
}

/// An owned summary, for writing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Refs (any order; written sorted by name).
    pub refs: Vec<SummaryRefEntry>,
    /// Repository metadata (written in this order).
    pub metadata: Metadata,
}

impl Summary {
    /// Serializes the summary: refs sorted by name (byte order, as `strcmp`), metadata in
    /// stored order. Fails on an invalid ref name.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SummaryError> {
        let mut refs: Vec<&SummaryRefEntry> = self.refs.iter().collect();
        refs.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        for r in &refs {
            names::validate_rev(&r.name)?;
        }
        let v = OwnedValue::Tuple(vec![
            OwnedValue::array(
                "(s(taya{sv}))",
                refs.iter().map(|r| r.to_owned_value()).collect(),
            ),
            self.metadata.to_owned_value(),
        ]);
        Ok(v.to_bytes()?)
    }
}

/// A checked `summary.sig`.
#[derive(Debug, Clone, Copy)]
pub struct SummarySigRef<'a> {
    metadata: MetadataRef<'a>,
}

impl<'a> SummarySigRef<'a> {
    /// Parses a `summary.sig` file (`a{sv}`): at least one of `ostree.gpgsigs` and
    /// `ostree.sign.<engine>` must be present, each an `aay`.
    ///
    /// Allocates O(input length) (the key check, and one borrowed slice per signature
    /// while checking each signature list).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, SummaryError> {
        let s = SummarySigRef {
            metadata: MetadataRef::from_bytes(data)?,
        };
        let mut any = false;
        for e in s.metadata.iter() {
            let (k, _) = e?;
            if k == GPGSIGS || k.starts_with(SIGN_PREFIX) {
                s.metadata.get_bytes_array(k)?;
                any = true;
            }
        }
        if !any {
            return Err(SummaryError::NoSignatures);
        }
        Ok(s)
    }

    /// The whole dictionary.
    pub fn metadata(&self) -> MetadataRef<'a> {
        self.metadata
    }

    /// `ostree.gpgsigs`: binary OpenPGP detached signatures over the summary bytes.
    pub fn gpgsigs(&self) -> Result<Option<Vec<&'a [u8]>>, SummaryError> {
        Ok(self.metadata.get_bytes_array(GPGSIGS)?)
    }

    /// `ostree.sign.ed25519`: ed25519 signatures over the summary bytes.
    pub fn ed25519(&self) -> Result<Option<Vec<&'a [u8]>>, SummaryError> {
        Ok(self.metadata.get_bytes_array(SIGN_ED25519)?)
    }

    /// `ostree.sign.<engine>` signatures.
    pub fn engine_signatures(&self, engine: &str) -> Result<Option<Vec<&'a [u8]>>, SummaryError> {
        Ok(self
            .metadata
            .get_bytes_array(&format!("{SIGN_PREFIX}{engine}"))?)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::metadata::Variant;

    fn entry(name: &str, c: u8, ts: u64) -> SummaryRefEntry {
        let mut m = Metadata::new();
        m.insert(COMMIT_TIMESTAMP, Variant::u64_be(ts)).unwrap();
        m.insert(COMMIT_VERSION, Variant::string("1").unwrap())
            .unwrap();
        SummaryRefEntry {
            name: name.into(),
            commit_size: 150 + u64::from(c),
            checksum: Checksum([c; 32]),
            metadata: m,
        }
    }

    #[test]
    fn build_parse_round_trip() {
        let mut meta = Metadata::new();
        meta.insert(SUMMARY_MODE, Variant::string("archive-z2").unwrap())
            .unwrap();
        meta.insert(SUMMARY_LAST_MODIFIED, Variant::u64_be(1234))
            .unwrap();
        meta.insert(SUMMARY_INDEXED_DELTAS, Variant::bool(true))
            .unwrap();
        let s = Summary {
            refs: vec![
                entry("os/x86_64/stable", 2, 20),
                entry("os/x86_64/old", 1, 10),
            ],
            metadata: meta,
        };
        let bytes = s.to_bytes().unwrap();
        let r = SummaryRef::from_bytes(&bytes).unwrap();
        assert_eq!(r.refs().len(), 2);
        assert_eq!(r.refs()[0].name, "os/x86_64/old");
        let st = r.lookup_ref("os/x86_64/stable").unwrap();
        assert_eq!(st.checksum, Checksum([2; 32]));
        assert_eq!(st.commit_size, 152);
        assert_eq!(st.timestamp().unwrap(), Some(20));
        assert_eq!(st.version().unwrap(), Some("1"));
        assert!(r.lookup_ref("nope").is_none());
        assert_eq!(r.mode().unwrap(), Some("archive-z2"));
        assert_eq!(r.last_modified().unwrap(), Some(1234));
        assert_eq!(r.indexed_deltas().unwrap(), Some(true));
        assert_eq!(r.expires().unwrap(), None);
        assert!(r.static_deltas().unwrap().is_none());
        assert_eq!(r.to_owned().unwrap().to_bytes().unwrap(), bytes);
        for n in 0..bytes.len() {
            assert!(SummaryRef::from_bytes(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn rejects_bad_ref_names_and_key_types() {
        let s = Summary {
            refs: vec![entry("../etc", 1, 1)],
            metadata: Metadata::new(),
        };
        assert!(matches!(s.to_bytes(), Err(SummaryError::Name(_))));
        let mut meta = Metadata::new();
        meta.insert(SUMMARY_MODE, Variant::bool(true)).unwrap();
        let s = Summary {
            refs: vec![],
            metadata: meta,
        };
        let b = s.to_bytes().unwrap();
        assert!(matches!(
            SummaryRef::from_bytes(&b),
            Err(SummaryError::Metadata(_))
        ));
    }
}
