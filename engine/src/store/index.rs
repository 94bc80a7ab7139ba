//! A persistent index from OSTree object id to a stored commit that holds the object.
//!
//! Any object of any commit pulled before (by cfsync or by `cfsctl ostree pull`) can be
//! reused without fetching it again: the index says which commit stream holds it, and
//! that stream holds its bytes and, for large files, the composefs object of its content.
//!
//! On disk (`<repo>/cfsync/object-index`), little-endian:
//! ```text
//! "CFSYNCX1"  u32 commit count c  u32 0  c x [u8; 32] commit ids (sorted)
//! u64 record count n   n x { [u8; 32] object id, u32 commit ordinal }  (sorted by id)
//! ```
//! The index is a cache: it is rebuilt from the commit streams whenever it is missing,
//! unreadable, or lists a different set of commits than the repository holds (after a
//! gc, or a pull by another tool). It is replaced atomically (write + rename).

use std::collections::BTreeMap;
use std::path::PathBuf;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use super::{Store, StoreError};

const MAGIC: &[u8; 8] = b"CFSYNCX1";
const FILE_NAME: &str = "object-index";
/// Refuse index files claiming more records than this (a cache, not trusted input).
const MAX_RECORDS: u64 = 64 * 1024 * 1024;

/// Maps OSTree object ids to a stored commit containing them.
#[derive(Debug, Default, Clone)]
pub struct ObjectIndex {
    commits: Vec<Checksum>,
    records: BTreeMap<Checksum, u32>,
}

impl ObjectIndex {
    /// Loads the index of `store`, rebuilding it when it is stale or missing.
    pub fn load<ObjectID: FsVerityHashValue>(store: &Store<ObjectID>) -> Result<Self, StoreError> {
        let commits = store.list_commits()?;
        let path = Self::path(store)?;
        if let Ok(bytes) = std::fs::read(&path) {
            if let Some(idx) = Self::decode(&bytes) {
                if idx.commits == commits {
                    return Ok(idx);
                }
            }
        }
        let idx = Self::rebuild(store, &commits)?;
        idx.save(store)?;
        Ok(idx)
    }

    fn path<ObjectID: FsVerityHashValue>(store: &Store<ObjectID>) -> Result<PathBuf, StoreError> {
        Ok(store.state_dir()?.join(FILE_NAME))
    }

    fn rebuild<ObjectID: FsVerityHashValue>(
        store: &Store<ObjectID>,
        commits: &[Checksum],
    ) -> Result<Self, StoreError> {
        let mut idx = Self::default();
        for c in commits {
            // A stream that does not load (e.g. half-written by a crash of another tool)
            // simply contributes nothing; fsck reports it.
            match store.load_commit(c) {
                Ok(Some(stream)) => idx.add_commit(*c, stream.ids().iter().copied()),
                Ok(None) | Err(_) => idx.add_commit(*c, std::iter::empty()),
            }
        }
        Ok(idx)
    }

    /// The commits the index covers.
    pub fn commits(&self) -> &[Checksum] {
        &self.commits
    }

    /// Number of objects indexed.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A stored commit holding object `id`.
    pub fn find(&self, id: &Checksum) -> Option<Checksum> {
        let ord = *self.records.get(id)?;
        self.commits.get(ord as usize).copied()
    }

    /// Records that `commit` holds `ids`.
    pub fn add_commit(&mut self, commit: Checksum, ids: impl Iterator<Item = Checksum>) {
        let ord = match self.commits.binary_search(&commit) {
            Ok(i) => i,
            Err(i) => {
                // Keep commit ordinals stable for existing records by renumbering.
                self.commits.insert(i, commit);
                for v in self.records.values_mut() {
                    if *v as usize >= i {
                        *v += 1;
                    }
                }
                i
            }
        } as u32;
        for id in ids {
            self.records.entry(id).or_insert(ord);
        }
    }

    /// Writes the index atomically.
    pub fn save<ObjectID: FsVerityHashValue>(
        &self,
        store: &Store<ObjectID>,
    ) -> Result<(), StoreError> {
        let path = Self::path(store)?;
        let mut out = Vec::with_capacity(24 + self.commits.len() * 32 + self.records.len() * 36);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.commits.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for c in &self.commits {
            out.extend_from_slice(&c.0);
        }
        out.extend_from_slice(&(self.records.len() as u64).to_le_bytes());
        for (id, ord) in &self.records {
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&ord.to_le_bytes());
        }
        crate::atomic::write(&path, &out).map_err(|e| StoreError::io(&path, e))
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let rest = b.strip_prefix(MAGIC.as_slice())?;
        let c = u32::from_le_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
        let mut rest = rest.get(8..)?;
        let mut commits = Vec::with_capacity(c.min(1 << 20));
        for _ in 0..c {
            commits.push(Checksum::from_slice(rest.get(..32)?).ok()?);
            rest = rest.get(32..)?;
        }
        let n = u64::from_le_bytes(rest.get(0..8)?.try_into().ok()?);
        if n > MAX_RECORDS || rest.len() as u64 != 8 + n * 36 {
            return None;
        }
        let mut records = BTreeMap::new();
        for rec in rest.get(8..)?.chunks_exact(36) {
            let id = Checksum::from_slice(rec.get(..32)?).ok()?;
            let ord = u32::from_le_bytes(rec.get(32..36)?.try_into().ok()?);
            if ord as usize >= commits.len() {
                return None;
            }
            records.insert(id, ord);
        }
        Some(Self { commits, records })
    }
}
