//! Delta lists: the `ostree.static-deltas` dictionary and the delta index file.
//!
//! `ostree.static-deltas` (in the summary's repository metadata, and the only key of a
//! delta index `delta-indexes/XX/REST.index`) is an `a{sv}`: hex delta name
//! (`<from>-<to>` or `<to>`) → `v` holding an `ay` of the 32-byte SHA-256 of that delta's
//! superblock file. Written by `regenerate_metadata` and `ostree_repo_static_delta_reindex`
//! (`src/libostree/ostree-repo.c`, `ostree-repo-static-delta-core.c`); the index lists every
//! delta that ends at the index's `to` commit. Entry order is not significant to readers;
//! the writers here ([`static_deltas_dict`], [`index_to_bytes`]) put entries in the order
//! libostree's `GVariantDict` does ([`glib_order`], also used by the summary writer), so
//! their bytes equal ostree's.

use crate::checksum::Checksum;
use crate::metadata::{self, Metadata, MetadataRef, STATIC_DELTAS, Variant};

pub mod glib_order;

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

/// The `ostree.static-deltas` dictionary for `entries` (delta name → `ay` superblock
/// digest), as libostree writes it when the entries are inserted in the given order (the
/// summary inserts them in `deltas/` directory order, an index sorted by `from`).
/// Entries listed twice are kept once.
pub fn static_deltas_dict(entries: &[DeltaEntry]) -> Metadata {
    let items: Vec<(String, Checksum)> = entries
        .iter()
        .map(|e| (e.name.to_string(), e.superblock_digest))
        .collect();
    let mut m = Metadata::new();
    for (name, digest) in glib_order::in_dict_order(items) {
        // Delta names are hex and '-': never empty, never NUL.
        let _ = m.insert(&name, Variant::bytes(&digest.0));
    }
    m
}

/// A delta index file (`delta-indexes/XX/REST.index`) listing `entries`, which should all
/// end at the index's commit: `{'ostree.static-deltas': <static_deltas_dict(sorted)>}`.
/// Entries are inserted sorted by `from` (scratch first), as ostree means to.
pub fn index_to_bytes(entries: &[DeltaEntry]) -> Result<Vec<u8>, DeltaListError> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| e.name.from.map(|c| c.to_hex()));
    let mut top = Metadata::new();
    top.insert(STATIC_DELTAS, Variant::dict(&static_deltas_dict(&sorted))?)?;
    Ok(top.to_bytes()?)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::delta::names::DeltaName;

    #[test]
    fn index_round_trips() {
        let to = Checksum([7; 32]);
        let entries = [
            DeltaEntry {
                name: DeltaName::new(Some(Checksum([1; 32])), to),
                superblock_digest: Checksum([9; 32]),
            },
            DeltaEntry {
                name: DeltaName::new(None, to),
                superblock_digest: Checksum([8; 32]),
            },
        ];
        let bytes = index_to_bytes(&entries).unwrap();
        let idx = DeltaIndex::from_bytes(&bytes).unwrap();
        assert_eq!(idx.deltas().len(), 2);
        assert_eq!(idx.deltas().get(&entries[0].name), Some(Checksum([9; 32])));
        assert_eq!(idx.deltas().get(&entries[1].name), Some(Checksum([8; 32])));
        assert_eq!(idx.deltas().ending_at(&to).count(), 2);
        let empty = index_to_bytes(&[]).unwrap();
        assert!(DeltaIndex::from_bytes(&empty).unwrap().deltas().is_empty());
    }
}
