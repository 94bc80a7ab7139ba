//! Delta lists: the `ostree.static-deltas` dictionary and the delta index file.
//!
//! `ostree.static-deltas` (in the summary's repository metadata, and the only key of a
//! delta index `delta-indexes/XX/REST.index`) is an `a{sv}`: hex delta name
//! (`<from>-<to>` or `<to>`) → `v` holding an `ay` of the 32-byte SHA-256 of that delta's
//! superblock file. Written by `regenerate_metadata` and `ostree_repo_static_delta_reindex`
//! (`src/libostree/ostree-repo.c`, `ostree-repo-static-delta-core.c`); the index lists every
//! delta that ends at the index's `to` commit. Entry order is not significant.

use crate::checksum::Checksum;
use crate::metadata::{self, MetadataRef, STATIC_DELTAS};

use super::names::{DeltaName, DeltaNameError};

/// Why a delta list or index is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaListError {
    /// The dictionary is invalid or a value has the wrong type.
    #[error("static delta list: {0}")]
    Metadata(#[from] metadata::Error),
    /// A key is not a delta name.
    #[error("static delta list: {0}")]
    Name(#[from] DeltaNameError),
    /// A superblock digest is not 32 bytes.
    #[error("static delta list entry {name} has a {len}-byte digest, expected 32")]
    DigestLength {
        /// The delta name.
        name: String,
        /// The digest length.
        len: usize,
    },
    /// A delta index has no `ostree.static-deltas` key.
    #[error("delta index has no ostree.static-deltas key")]
    MissingKey,
}

/// One listed delta: its name and its superblock digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeltaEntry {
    /// The delta.
    pub name: DeltaName,
    /// SHA-256 of its superblock file.
    pub superblock_digest: Checksum,
}

/// A checked `ostree.static-deltas` dictionary.
#[derive(Debug, Clone)]
pub struct DeltaList {
    entries: Vec<DeltaEntry>,
}

impl DeltaList {
    /// Checks every entry of a `ostree.static-deltas` dictionary.
    ///
    /// Allocates one [`DeltaEntry`] per entry of `dict`: O(length of its bytes).
    pub fn from_metadata(dict: MetadataRef<'_>) -> Result<Self, DeltaListError> {
        let mut entries = Vec::with_capacity(dict.len().min(4096));
        for e in dict.iter() {
            let (k, v) = e?;
            let name: DeltaName = k.parse()?;
            if v.type_str() != "ay" {
                return Err(metadata::Error::WrongType {
                    key: k.to_owned(),
                    expected: "ay",
                    actual: v.type_str().to_owned(),
                }
                .into());
            }
            let b = v.as_bytes().map_err(metadata::Error::from)?;
            let superblock_digest =
                Checksum::from_slice(b).map_err(|_| DeltaListError::DigestLength {
                    name: k.to_owned(),
                    len: b.len(),
                })?;
            entries.push(DeltaEntry {
                name,
                superblock_digest,
            });
        }
        Ok(DeltaList { entries })
    }

    /// The entries, in stored order.
    pub fn entries(&self) -> &[DeltaEntry] {
        &self.entries
    }

    /// Number of deltas listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no delta is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The superblock digest of delta `name`.
    pub fn get(&self, name: &DeltaName) -> Option<Checksum> {
        self.entries
            .iter()
            .find(|e| &e.name == name)
            .map(|e| e.superblock_digest)
    }

    /// Deltas that end at `to`.
    pub fn ending_at<'s>(&'s self, to: &'s Checksum) -> impl Iterator<Item = &'s DeltaEntry> + 's {
        self.entries.iter().filter(move |e| &e.name.to == to)
    }
}

/// A delta index file (`delta-indexes/XX/REST.index`): `a{sv}` with `ostree.static-deltas`.
#[derive(Debug, Clone)]
pub struct DeltaIndex<'a> {
    metadata: MetadataRef<'a>,
    deltas: DeltaList,
}

impl<'a> DeltaIndex<'a> {
    /// Parses an index file. A missing `ostree.static-deltas` key is an error (ostree
    /// always writes it, possibly empty).
    ///
    /// Allocates O(input length) (see [`DeltaList::from_metadata`]).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, DeltaListError> {
        let metadata = MetadataRef::from_bytes(data)?;
        let dict = metadata
            .get_dict(STATIC_DELTAS)?
            .ok_or(DeltaListError::MissingKey)?;
        Ok(DeltaIndex {
            metadata,
            deltas: DeltaList::from_metadata(dict)?,
        })
    }

    /// The whole dictionary.
    pub fn metadata(&self) -> MetadataRef<'a> {
        self.metadata
    }

    /// The deltas listed.
    pub fn deltas(&self) -> &DeltaList {
        &self.deltas
    }
}
