//! A persistent index from OSTree object id to a stored commit that holds the object.
//!
//! Any object of any commit pulled before (by cfsync or by `cfsctl ostree pull`) can be
//! reused without fetching it again: the index says which commit stream holds it, and
//! that stream holds its bytes and, for large files, the composefs object of its content.
//!
//! On disk (`<repo>/cfsync/object-index`) in the format of
//! [`cfsync_formats::object_index`].
//!
//! The index is a cache: it is rebuilt from the commit streams whenever it is missing,
//! unreadable, or lists a different set of commits than the repository holds (after a
//! gc, or a pull by another tool). It is replaced atomically (write + rename).

use std::path::PathBuf;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::object_index::IndexTable;
use composefs::fsverity::FsVerityHashValue;

use super::{Store, StoreError};

const FILE_NAME: &str = "object-index";

/// Maps OSTree object ids to a stored commit containing them.
#[derive(Debug, Default, Clone)]
pub struct ObjectIndex {
    table: IndexTable,
}

impl ObjectIndex {
    /// Loads the index of `store`, rebuilding it when it is stale or missing.
    pub fn load<ObjectID: FsVerityHashValue>(store: &Store<ObjectID>) -> Result<Self, StoreError> {
        let commits = store.list_commits()?;
        let path = Self::path(store)?;
        if let Ok(bytes) = std::fs::read(&path)
            && let Some(table) = IndexTable::decode(&bytes)
            && table.commits == commits
        {
            return Ok(Self { table });
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
        &self.table.commits
    }

    /// Number of objects indexed.
    pub fn len(&self) -> usize {
        self.table.records.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.table.records.is_empty()
    }

    /// A stored commit holding object `id`.
    pub fn find(&self, id: &Checksum) -> Option<Checksum> {
        let ord = *self.table.records.get(id)?;
        self.table.commits.get(ord as usize).copied()
    }

    /// Records that `commit` holds `ids`.
    pub fn add_commit(&mut self, commit: Checksum, ids: impl Iterator<Item = Checksum>) {
        let ord = match self.table.commits.binary_search(&commit) {
            Ok(i) => i,
            Err(i) => {
                // Keep commit ordinals stable for existing records by renumbering.
                self.table.commits.insert(i, commit);
                for v in self.table.records.values_mut() {
                    if *v as usize >= i {
                        *v += 1;
                    }
                }
                i
            }
        } as u32;
        for id in ids {
            self.table.records.entry(id).or_insert(ord);
        }
    }

    /// Writes the index atomically.
    pub fn save<ObjectID: FsVerityHashValue>(
        &self,
        store: &Store<ObjectID>,
    ) -> Result<(), StoreError> {
        let path = Self::path(store)?;
        crate::atomic::write(&path, &self.table.encode()).map_err(|e| StoreError::io(&path, e))
    }
}
