//! A part's blob left in its staged payload file: checked ranges of it, the [`Blob`]
//! the operation decoder reads through, and readers of ranges (whole or streamed).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::ops::Blob;

use crate::error::PullError;

/// A checked range of a part's blob, in the staged payload file (absolute offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobRange {
    /// Offset in the payload file.
    pub(crate) start: u64,
    /// Length in bytes.
    pub(crate) len: u64,
}

/// A part's blob left in its staged payload file: the decoder gets ranges, and reads
/// only the 32-byte checksums of set-read-source operations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileBlob<'f> {
    /// The staged payload.
    pub(crate) file: &'f File,
    /// Where the blob starts in it.
    pub(crate) start: u64,
    /// The blob's length.
    pub(crate) len: usize,
}

impl Blob for FileBlob<'_> {
    type Data = BlobRange;

    fn len(&self) -> usize {
        self.len
    }

    fn range(&self, start: usize, end: usize) -> Option<BlobRange> {
        Some(BlobRange {
            start: self.start.checked_add(start as u64)?,
            len: end.checked_sub(start)? as u64,
        })
    }

    fn checksum_at(&self, start: usize) -> Option<Checksum> {
        let mut b = [0u8; 32];
        self.file
            .read_exact_at(&mut b, self.start.checked_add(start as u64)?)
            .ok()?;
        Some(Checksum(b))
    }
}

/// Reads `r` from `file` into a new buffer.
pub(crate) fn read_range(file: &File, r: BlobRange) -> Result<Vec<u8>, PullError> {
    let n =
        usize::try_from(r.len).map_err(|_| PullError::Hostile("delta range too large".into()))?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| PullError::Hostile(format!("cannot allocate {n} bytes for a delta range")))?;
    v.resize(n, 0);
    file.read_exact_at(&mut v, r.start)
        .map_err(|e| PullError::Internal(format!("reading the staged delta part: {e}")))?;
    Ok(v)
}

/// Reads a range of the staged payload file sequentially, with positioned reads.
pub(crate) struct RangeReader<'f> {
    file: &'f File,
    range: BlobRange,
    pos: u64,
}

impl<'f> RangeReader<'f> {
    /// Reads `range` of `file` from its start.
    pub(crate) fn new(file: &'f File, range: BlobRange) -> Self {
        Self {
            file,
            range,
            pos: 0,
        }
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.range.len.saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let got = self
            .file
            .read_at(&mut buf[..n], self.range.start.saturating_add(self.pos))
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("reading the staged delta part: {e}"))
            })?;
        self.pos = self.pos.saturating_add(got as u64);
        Ok(got)
    }
}
