//! What `ostree summary -u` puts in a summary, assembled as libostree does
//! (`summary_add_ref_entry` and `regenerate_metadata` in `src/libostree/ostree-repo.c`):
//! the pure half of `cfsync summary update`, whose engine side reads the repository.
//!
//! Per ref: the commit object's size, its checksum, and `{ostree.commit.timestamp (t,
//! big-endian, when it is a valid GLib date), ostree.commit.version (s, when the commit's
//! `version` is a string)}`. Repository metadata, inserted in this order and written in
//! `GVariantDict` order ([`glib_order`]): `ostree.static-deltas` (when there are
//! deltas), `ostree.summary.last-modified`, `.mode`, `.tombstone-commits`,
//! `.indexed-deltas` (always true), `.collection-id` (when the repository has one) and
//! `.collection-map` (when refs of other collections exist, ids and refs sorted).

use crate::checksum::Checksum;
use crate::commit::CommitRef;
use crate::delta::index::{DeltaEntry, glib_order, static_deltas_dict};
use crate::gvariant::OwnedValue;
use crate::metadata::{
    COMMIT_TIMESTAMP, COMMIT_VERSION, Metadata, STATIC_DELTAS, SUMMARY_COLLECTION_ID,
    SUMMARY_COLLECTION_MAP, SUMMARY_INDEXED_DELTAS, SUMMARY_LAST_MODIFIED, SUMMARY_MODE,
    SUMMARY_TOMBSTONE_COMMITS, Variant,
};
use crate::names;

use super::{Summary, SummaryError, SummaryRefEntry};

/// The last second `g_date_time_new_from_unix_utc` accepts (9999-12-31T23:59:59Z): later
/// commit timestamps are left out of the ref's metadata, as ostree does.
pub const MAX_GLIB_TIMESTAMP: u64 = 253_402_300_799;

impl SummaryRefEntry {
    /// The entry `summary_add_ref_entry` writes for ref `name` pointing at commit
    /// `checksum`, whose object bytes are `commit` (its size is the object's size).
    pub fn for_commit(name: &str, checksum: Checksum, commit: &[u8]) -> Result<Self, SummaryError> {
        names::validate_rev(name)?;
        let c = CommitRef::from_bytes(commit).map_err(|e| SummaryError::Commit {
            checksum,
            message: e.to_string(),
        })?;
        let mut items = Vec::new();
        if c.timestamp() <= MAX_GLIB_TIMESTAMP {
            items.push((COMMIT_TIMESTAMP, Variant::u64_be(c.timestamp())));
        }
        // `g_variant_lookup (…, "&s", …)`: a `version` of another type is ignored.
        if let Ok(Some(v)) = c.version() {
            items.push((COMMIT_VERSION, Variant::string(v)?));
        }
        let mut metadata = Metadata::new();
        for (k, v) in glib_order::in_dict_order(items) {
            metadata.insert(k, v)?;
        }
        Ok(SummaryRefEntry {
            name: name.to_owned(),
            commit_size: commit.len() as u64,
            checksum,
            metadata,
        })
    }
}

/// Everything `regenerate_metadata` puts in a summary, before it is laid out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryContents {
    /// The main ref map: `refs/heads` (or, with a collection ID, every ref of that
    /// collection). Any order; written sorted.
    pub refs: Vec<SummaryRefEntry>,
    /// Every static delta, in `deltas/` directory order (empty: no key).
    pub static_deltas: Vec<DeltaEntry>,
    /// `ostree.summary.last-modified`: seconds since the epoch.
    pub last_modified: u64,
    /// `ostree.summary.mode`: the repository's `core.mode` (`bare` when unset).
    pub mode: String,
    /// `ostree.summary.tombstone-commits`: `core.tombstone-commits`.
    pub tombstone_commits: bool,
    /// `ostree.summary.collection-id`: `core.collection-id`.
    pub collection_id: Option<String>,
    /// Refs of other collections (`refs/mirrors`, remotes with a `collection-id`):
    /// (collection ID, refs). Any order; written sorted.
    pub collection_map: Vec<(String, Vec<SummaryRefEntry>)>,
}

fn ref_map(refs: &[SummaryRefEntry]) -> Result<OwnedValue, SummaryError> {
    let mut sorted: Vec<&SummaryRefEntry> = refs.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for r in &sorted {
        names::validate_rev(&r.name)?;
    }
    Ok(OwnedValue::array(
        "(s(taya{sv}))",
        sorted.iter().map(|r| r.to_owned_value()).collect(),
    ))
}

impl SummaryContents {
    /// The summary, laid out as libostree lays it out.
    pub fn to_summary(&self) -> Result<Summary, SummaryError> {
        let mut items: Vec<(&str, Variant)> = Vec::new();
        if !self.static_deltas.is_empty() {
            items.push((
                STATIC_DELTAS,
                Variant::dict(&static_deltas_dict(&self.static_deltas))?,
            ));
        }
        items.push((SUMMARY_LAST_MODIFIED, Variant::u64_be(self.last_modified)));
        items.push((SUMMARY_MODE, Variant::string(&self.mode)?));
        items.push((
            SUMMARY_TOMBSTONE_COMMITS,
            Variant::bool(self.tombstone_commits),
        ));
        items.push((SUMMARY_INDEXED_DELTAS, Variant::bool(true)));
        if let Some(id) = &self.collection_id {
            names::validate_collection_id(id)?;
            items.push((SUMMARY_COLLECTION_ID, Variant::string(id)?));
        }
        let mut collections: Vec<&(String, Vec<SummaryRefEntry>)> = self
            .collection_map
            .iter()
            .filter(|(_, refs)| !refs.is_empty())
            .collect();
        collections.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if !collections.is_empty() {
            let mut entries = Vec::with_capacity(collections.len());
            for (id, refs) in collections {
                names::validate_collection_id(id)?;
                entries.push(OwnedValue::entry(
                    OwnedValue::str(id.as_str()),
                    ref_map(refs)?,
                ));
            }
            let map = OwnedValue::array("{sa(s(taya{sv}))}", entries);
            items.push((
                SUMMARY_COLLECTION_MAP,
                Variant::from_owned(&map).map_err(SummaryError::Metadata)?,
            ));
        }
        let mut metadata = Metadata::new();
        for (k, v) in glib_order::in_dict_order(items) {
            metadata.insert(k, v)?;
        }
        // Validate the main map's names now (to_bytes sorts and checks them again).
        ref_map(&self.refs)?;
        Ok(Summary {
            refs: self.refs.clone(),
            metadata,
        })
    }

    /// The summary's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SummaryError> {
        self.to_summary()?.to_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::super::SummaryRef;
    use super::*;
    use crate::delta::names::DeltaName;

    #[test]
    fn contents_parse_back() {
        let e = SummaryRefEntry {
            name: "b".into(),
            commit_size: 10,
            checksum: Checksum([1; 32]),
            metadata: Metadata::new(),
        };
        let mut a = e.clone();
        a.name = "a".into();
        let c = SummaryContents {
            refs: vec![e.clone(), a],
            static_deltas: vec![DeltaEntry {
                name: DeltaName::new(None, Checksum([1; 32])),
                superblock_digest: Checksum([2; 32]),
            }],
            last_modified: 77,
            mode: "archive-z2".into(),
            tombstone_commits: false,
            collection_id: Some("org.example.Main".into()),
            collection_map: vec![("org.example.Other".into(), vec![e])],
        };
        let bytes = c.to_bytes().unwrap();
        let s = SummaryRef::from_bytes(&bytes).unwrap();
        assert_eq!(s.refs()[0].name, "a");
        assert_eq!(s.last_modified().unwrap(), Some(77));
        assert_eq!(s.mode().unwrap(), Some("archive-z2"));
        assert_eq!(s.indexed_deltas().unwrap(), Some(true));
        assert_eq!(s.tombstone_commits().unwrap(), Some(false));
        assert_eq!(s.collection_id().unwrap(), Some("org.example.Main"));
        assert_eq!(s.static_deltas().unwrap().unwrap().len(), 1);
        let map = s.collection_map().unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map[0].collection_id, "org.example.Other");
        assert!(
            s.lookup_collection_ref("org.example.Other", "b")
                .unwrap()
                .is_some()
        );
        let mut bad = c.clone();
        bad.collection_id = Some("no".into());
        assert!(bad.to_bytes().is_err());
    }
}
