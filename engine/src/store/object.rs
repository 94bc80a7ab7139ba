//! One stored OSTree object of a commit, as the commit table, the resume journal and the
//! image builder all see it: its stored bytes (metadata GVariant, or sized file header plus
//! inline content) and, for a large file, the composefs object holding its content.

use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::{FileHeader, decode_sized_archive_header};
use composefs::fsverity::FsVerityHashValue;

use super::StoreError;

/// Whether a regular file of `size` bytes is stored inline in the commit stream (and
/// in the EROFS image) rather than as a composefs object.
pub(crate) fn is_inline_size<ObjectID: FsVerityHashValue>(size: u64) -> bool {
    size <= (2 * size_of::<ObjectID>()) as u64
}

/// One object of a commit: its stored bytes and, for large files, the composefs object
/// holding the content.
#[derive(Debug, Clone)]
pub struct Entry<ObjectID> {
    /// Stored bytes (metadata GVariant, or sized file header plus inline content).
    pub data: Vec<u8>,
    /// The composefs object holding a large file's content.
    pub external: Option<ObjectID>,
}

/// Read access to a commit's objects, whether being built or loaded from the repository.
pub trait ObjectLookup<ObjectID> {
    /// The stored bytes of `id` and the external content object, if any.
    fn lookup(&self, id: &Checksum) -> Option<(&[u8], Option<&ObjectID>)>;
}

/// Parses a stored file object (sized archive header plus optional inline content).
pub fn parse_file_entry(data: &[u8]) -> Result<(FileHeader, &[u8]), StoreError> {
    decode_sized_archive_header(data).map_err(|e| StoreError::Format(e.to_string()))
}
