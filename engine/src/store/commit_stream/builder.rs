//! [`CommitStreamBuilder`]: a commit's objects collected in memory (and journaled, when
//! the pull has a resume journal), written out as a commit splitstream.

use std::collections::BTreeMap;
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use super::{
    HEADER_LEN, IMAGE_REF_KEY, INFO_LEN, MAX_OBJECTS, NO_EXTERNAL, OSTREE_COMMIT_CONTENT_TYPE,
    commit_stream_name,
};
use crate::store::StoreError;
use crate::store::journal::writer::JournalWriter;
use crate::store::object::{Entry, ObjectLookup};

/// Collects a commit's objects in memory and writes them as a commit splitstream.
///
/// A builder made by `store::resume::open_builder` (what a pull uses) also appends
/// every newly inserted object to the commit's resume journal, so that whatever route
/// fills it (object walker, reuse, static deltas) is resumable after an interruption.
#[derive(Debug)]
pub struct CommitStreamBuilder<ObjectID> {
    commit: Checksum,
    map: BTreeMap<Checksum, Entry<ObjectID>>,
    journal: Option<JournalWriter>,
}

impl<ObjectID: FsVerityHashValue> CommitStreamBuilder<ObjectID> {
    /// An empty table for commit `commit` (whose object must be inserted too).
    pub fn new(commit: Checksum) -> Self {
        Self {
            commit,
            map: BTreeMap::new(),
            journal: None,
        }
    }

    /// A table seeded with `entries` (already journaled) that journals every further
    /// insertion through `journal`.
    pub(crate) fn with_journal(
        commit: Checksum,
        entries: BTreeMap<Checksum, Entry<ObjectID>>,
        journal: JournalWriter,
    ) -> Self {
        Self {
            commit,
            map: entries,
            journal: Some(journal),
        }
    }

    /// Whether insertions are being journaled.
    #[cfg(test)]
    pub(crate) fn is_journaled(&self) -> bool {
        self.journal.is_some()
    }

    /// Writes journal records still buffered in memory to the journal file (no fsync),
    /// so that they survive the process being killed. Cheap when nothing is buffered;
    /// call it before waiting on the network for a while (the object walker does so
    /// whenever no fetch is ready; a delta applier should after each part).
    pub fn flush_journal(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.flush();
        }
    }

    /// Deletes the resume journal (call once the commit stream and ref are written);
    /// later insertions are not journaled.
    pub fn remove_journal(&mut self) -> Result<(), StoreError> {
        match self.journal.take() {
            Some(j) => j.remove(),
            None => Ok(()),
        }
    }

    /// The commit this table describes.
    pub fn commit(&self) -> &Checksum {
        &self.commit
    }

    /// Whether no object was collected yet.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `id` is already in the table.
    pub fn contains(&self, id: &Checksum) -> bool {
        self.map.contains_key(id)
    }

    /// Adds an object (the first insertion of an id wins). The object must already be
    /// verified: its bytes (or, for a file, header and content) hash to `id`, and
    /// `external` is stored in the repository.
    ///
    /// A new object is also appended to the resume journal when there is one; journal
    /// write errors are logged and end journaling, they never fail the insertion.
    pub fn insert(&mut self, id: Checksum, data: Vec<u8>, external: Option<ObjectID>) {
        if let std::collections::btree_map::Entry::Vacant(v) = self.map.entry(id) {
            if let Some(j) = self.journal.as_mut() {
                j.append(&id, &data, external.as_ref().map(|e| e.to_hex()).as_deref());
            }
            v.insert(Entry { data, external });
        }
    }

    /// Iterates the collected objects in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Checksum, &Entry<ObjectID>)> {
        self.map.iter()
    }

    /// Serializes the table into an unnamed splitstream writer and stores it as
    /// `ostree-commit-<hex>`, with `image` as its `composefs.image` named ref.
    ///
    /// Returns the fs-verity id of the stream object.
    pub fn write(
        &self,
        repo: &Arc<Repository<ObjectID>>,
        image: Option<&ObjectID>,
    ) -> Result<ObjectID, StoreError> {
        let n = self.map.len();
        if n >= NO_EXTERNAL as usize || n > MAX_OBJECTS {
            return Err(StoreError::TooManyObjects { count: n });
        }
        let commit_index =
            self.map
                .keys()
                .position(|k| *k == self.commit)
                .ok_or(StoreError::MissingObject {
                    id: self.commit,
                    what: "commit object",
                })?;
        let mut stream = repo
            .create_stream(OSTREE_COMMIT_CONTENT_TYPE)
            .map_err(|e| StoreError::composefs("creating commit stream", e))?;
        if let Some(image) = image {
            stream.add_named_stream_ref(IMAGE_REF_KEY, image);
        }

        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&(commit_index as u32).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        let mut buckets = [0u32; 256];
        for id in self.map.keys() {
            buckets[usize::from(id.0[0])] += 1;
        }
        let mut running = 0u32;
        for b in &mut buckets {
            running += *b;
            *b = running;
        }
        for b in buckets {
            header.extend_from_slice(&b.to_le_bytes());
        }
        stream.write_inline(&header);

        let mut ids = Vec::with_capacity(n * 32);
        for id in self.map.keys() {
            ids.extend_from_slice(&id.0);
        }
        stream.write_inline(&ids);

        let mut infos = Vec::with_capacity(n * INFO_LEN);
        let mut offset: u64 = 0;
        for entry in self.map.values() {
            let len = u32::try_from(entry.data.len()).map_err(|_| StoreError::TooLarge {
                what: "object data in commit stream",
                size: entry.data.len() as u64,
            })?;
            let block = u32::try_from(offset / 8).map_err(|_| StoreError::TooLarge {
                what: "commit stream data region",
                size: offset,
            })?;
            let ext = match &entry.external {
                Some(obj) => u32::try_from(stream.add_object_ref(obj))
                    .map_err(|_| StoreError::TooManyObjects { count: n })?,
                None => NO_EXTERNAL,
            };
            infos.extend_from_slice(&block.to_le_bytes());
            infos.extend_from_slice(&len.to_le_bytes());
            infos.extend_from_slice(&ext.to_le_bytes());
            offset += (entry.data.len() as u64).next_multiple_of(8);
        }
        stream.write_inline(&infos);

        const PAD: [u8; 7] = [0; 7];
        for entry in self.map.values() {
            stream.write_inline(&entry.data);
            let pad = entry.data.len().next_multiple_of(8) - entry.data.len();
            if pad > 0 {
                stream.write_inline(&PAD[..pad]);
            }
        }

        repo.write_stream(stream, &commit_stream_name(&self.commit), None)
            .map_err(|e| StoreError::composefs("writing commit stream", e))
    }
}

impl<ObjectID: FsVerityHashValue> ObjectLookup<ObjectID> for CommitStreamBuilder<ObjectID> {
    fn lookup(&self, id: &Checksum) -> Option<(&[u8], Option<&ObjectID>)> {
        self.map
            .get(id)
            .map(|e| (e.data.as_slice(), e.external.as_ref()))
    }
}
