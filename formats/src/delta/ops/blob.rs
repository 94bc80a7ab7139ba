//! How the decoder reads a part's blob: in memory or through a caller's storage.

use crate::checksum::Checksum;

/// Access to a part's blob for the decoder: in memory (`&[u8]`, the usual case), or
/// kept elsewhere by a caller that does not hold large payloads in memory (the caller
/// implements this over its storage; the decoder stays free of I/O).
pub trait Blob: Copy {
    /// How a checked range of the blob is handed out (`&[u8]` for a blob in memory).
    type Data: Copy + std::fmt::Debug + PartialEq + Eq;
    /// The blob's length in bytes.
    fn len(&self) -> usize;
    /// Whether the blob is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes `start..end`; the decoder has checked `start <= end <= len()`.
    fn range(&self, start: usize, end: usize) -> Option<Self::Data>;
    /// The 32 bytes at `start` as a checksum (the argument of a set-read-source); the
    /// decoder has checked that they lie within the blob. `None` if they cannot be read.
    fn checksum_at(&self, start: usize) -> Option<Checksum>;
}

impl<'a> Blob for &'a [u8] {
    type Data = &'a [u8];

    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn range(&self, start: usize, end: usize) -> Option<&'a [u8]> {
        self.get(start..end)
    }

    fn checksum_at(&self, start: usize) -> Option<Checksum> {
        let bytes = self.get(start..start.checked_add(32)?)?;
        Checksum::from_slice(bytes).ok()
    }
}
