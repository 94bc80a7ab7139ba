//! Read sources: the file objects of commits already in the store that a delta's
//! operations read from (the `from` commit's), located and size-checked while a part is
//! decoded, read whole by the worker storing an object that uses one.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::mode::{S_IFMT, S_IFREG};
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use crate::error::PullError;
use crate::limits::MAX_READ_SOURCE;
use crate::store::commit_stream::{CommitStream, ObjectLookup, parse_file_entry};

/// Where read sources come from: file objects of commits already in the store.
pub(crate) struct ReadSources<ObjectID: FsVerityHashValue> {
    repo: Arc<Repository<ObjectID>>,
    /// Commit streams that may hold read sources (the delta's `from` commit first).
    streams: Vec<Arc<CommitStream<ObjectID>>>,
}

impl<ObjectID: FsVerityHashValue> std::fmt::Debug for ReadSources<ObjectID> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSources")
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl<ObjectID: FsVerityHashValue> ReadSources<ObjectID> {
    /// Read sources from `streams` (in order of preference) in `repo`.
    pub(crate) fn new(
        repo: Arc<Repository<ObjectID>>,
        streams: Vec<Arc<CommitStream<ObjectID>>>,
    ) -> Self {
        Self { repo, streams }
    }

    /// The stored object and declared size of read source `id`, or an error naming it
    /// when it is not a regular file of these commits (`None`: its content is inline).
    pub(crate) fn locate(
        &self,
        id: &Checksum,
    ) -> Result<(Option<&ObjectID>, u64, &[u8]), PullError> {
        let missing = || {
            PullError::Hostile(format!(
                "delta read source {id} is not a file object of the delta's from-commit"
            ))
        };
        let (data, external) = self
            .streams
            .iter()
            .find_map(|s| s.lookup(id))
            .ok_or_else(missing)?;
        let (header, inline) = parse_file_entry(data).map_err(|_| missing())?;
        if header.mode & S_IFMT != S_IFREG {
            return Err(missing());
        }
        if header.size > MAX_READ_SOURCE {
            return Err(PullError::Hostile(format!(
                "delta read source {id} is {} bytes, over the {MAX_READ_SOURCE}-byte limit",
                header.size
            )));
        }
        Ok((external, header.size, inline))
    }

    /// The content of file object `id`, read whole.
    pub(crate) fn content(&self, id: &Checksum) -> Result<Arc<Vec<u8>>, PullError> {
        let (external, size, inline) = self.locate(id)?;
        let Some(obj) = external else {
            return Ok(Arc::new(inline.to_vec()));
        };
        let stored = |e: &dyn std::fmt::Display| {
            PullError::Internal(format!("reading stored object for read source {id}: {e}"))
        };
        let fd = self
            .repo
            .open_object(obj)
            .map_err(|e| stored(&format!("{e:#}")))?;
        let mut file = File::from(fd);
        // The size is the header's (bounded above); the file must match it exactly.
        let n = usize::try_from(size).map_err(|e| stored(&e))?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(n).map_err(|e| stored(&e))?;
        bytes.resize(n, 0);
        let mut extra = [0u8; 1];
        let exact = match file.read_exact(&mut bytes) {
            Ok(()) => matches!(file.read(&mut extra).map_err(|e| stored(&e))?, 0),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Err(e) => return Err(stored(&e)),
        };
        if !exact {
            return Err(PullError::Internal(format!(
                "stored content of {id} is not the {size} bytes its header says; run `cfsync fsck`"
            )));
        }
        Ok(Arc::new(bytes))
    }

    /// Asks the kernel to start reading stored read source `id` into the page cache
    /// (best effort: errors are left for [`Self::content`] to report).
    pub(crate) fn prefetch(&self, id: &Checksum) {
        if let Ok((Some(obj), _, _)) = self.locate(id)
            && let Ok(fd) = self.repo.open_object(obj)
        {
            let _ = rustix::fs::fadvise(&fd, 0, None, rustix::fs::Advice::WillNeed);
        }
    }
}
