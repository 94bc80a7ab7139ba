//! The file-object checksum: SHA-256 of `sized(bare header)` followed by the content.

use std::io;

use crate::checksum::{Checksum, Sha256Writer};

use super::error::Error;
use super::header::FileHeader;
use super::sized::encode_sized_bare_header;

/// Computes a file object's checksum incrementally: `sized(bare header)` then content.
#[derive(Debug, Clone)]
pub struct FileHasher {
    h: Sha256Writer,
    header_len: u64,
}

impl FileHasher {
    /// Starts hashing the object with this header (xattrs are sorted for hashing).
    pub fn new(header: &FileHeader) -> Result<Self, Error> {
        let mut h = Sha256Writer::new();
        let b = encode_sized_bare_header(header)?;
        h.update(&b);
        Ok(FileHasher {
            h,
            header_len: h_len(&b),
        })
    }

    /// Feeds content bytes.
    pub fn update(&mut self, content: &[u8]) {
        self.h.update(content);
    }

    /// Content bytes fed so far.
    pub fn content_len(&self) -> u64 {
        self.h.len().saturating_sub(self.header_len)
    }

    /// The object checksum.
    pub fn finish(self) -> Checksum {
        self.h.finish()
    }
}

fn h_len(b: &[u8]) -> u64 {
    u64::try_from(b.len()).unwrap_or(u64::MAX)
}

impl io::Write for FileHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The checksum of a file object with this header and content (empty for symlinks).
pub fn file_checksum(header: &FileHeader, content: &[u8]) -> Result<Checksum, Error> {
    let mut h = FileHasher::new(header)?;
    h.update(content);
    Ok(h.finish())
}
