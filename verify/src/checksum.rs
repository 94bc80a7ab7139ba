//! SHA-256 checks for everything that enters the repository.
//!
//! OSTree names every object, delta part, superblock and summary by the SHA-256 of its
//! bytes (for file objects: of the canonical header plus content; see
//! `docs/ostree-formats.md` §1.3). This module holds the comparison and the streaming
//! helpers; deciding *which* bytes to hash is the caller's job.
//!
//! - [`sha256`] / [`verify_sha256`] for data already in memory.
//! - [`Hashing`] (as [`HashingReader`] / [`HashingWriter`]) hashes while copying, so
//!   large payloads are checked without buffering them; call `finish()` (or
//!   `finish_verify()`) at the end.
//!
//! A mismatch is [`ChecksumError::Mismatch`], whose message reads
//! `checksum mismatch for {what}: expected X, got Y`.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// Errors from checksum checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChecksumError {
    /// The data hashed to something other than the expected digest.
    #[error(
        "checksum mismatch for {what}: expected {}, got {}",
        hex::encode(expected),
        hex::encode(actual)
    )]
    Mismatch {
        /// What was checked (object name, URL, file name).
        what: String,
        /// The digest the data was supposed to have.
        expected: Sha256Digest,
        /// The digest the data actually has.
        actual: Sha256Digest,
    },
    /// A string that should be a 64-character hex SHA-256 is not.
    #[error("invalid sha256 checksum {value:?} for {what}: expected 64 hex characters")]
    InvalidHex {
        /// What the checksum names.
        what: String,
        /// The offending text (truncated to 100 characters).
        value: String,
    },
    /// A binary checksum has the wrong length.
    #[error("invalid sha256 checksum for {what}: expected 32 bytes, got {len}")]
    InvalidLength {
        /// What the checksum names.
        what: String,
        /// The length found.
        len: usize,
    },
}

/// Returns the SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256::digest(data).into()
}

/// Checks that `data` hashes to `expected`; `what` names the data in the error.
pub fn verify_sha256(
    expected: &Sha256Digest,
    data: &[u8],
    what: &str,
) -> Result<(), ChecksumError> {
    check_digest(expected, &sha256(data), what)
}

/// Compares two digests; `what` names the data in the error.
pub fn check_digest(
    expected: &Sha256Digest,
    actual: &Sha256Digest,
    what: &str,
) -> Result<(), ChecksumError> {
    if expected == actual {
        Ok(())
    } else {
        Err(ChecksumError::Mismatch {
            what: what.to_owned(),
            expected: *expected,
            actual: *actual,
        })
    }
}

/// Parses a 64-character hex SHA-256 (either case); `what` names it in the error.
pub fn parse_sha256_hex(value: &str, what: &str) -> Result<Sha256Digest, ChecksumError> {
    let mut out = [0u8; 32];
    if value.len() != 64 || hex::decode_to_slice(value, &mut out).is_err() {
        return Err(ChecksumError::InvalidHex {
            what: what.to_owned(),
            value: value.chars().take(100).collect(),
        });
    }
    Ok(out)
}

/// Converts a binary checksum of any length (as found in `ay` fields) to a digest,
/// failing unless it is exactly 32 bytes.
pub fn sha256_from_slice(bytes: &[u8], what: &str) -> Result<Sha256Digest, ChecksumError> {
    Sha256Digest::try_from(bytes).map_err(|_| ChecksumError::InvalidLength {
        what: what.to_owned(),
        len: bytes.len(),
    })
}

/// An adapter that hashes every byte read or written through it: a reader when `T` is
/// [`Read`], a writer when `T` is [`Write`] ([`HashingReader`], [`HashingWriter`]).
///
/// ```
/// use std::io::Read;
/// use cfsync_verify::checksum::{sha256, HashingReader};
///
/// let mut r = HashingReader::new(&b"hello"[..]);
/// let mut buf = Vec::new();
/// r.read_to_end(&mut buf).unwrap();
/// let (digest, len, _inner) = r.finish();
/// assert_eq!((digest, len), (sha256(b"hello"), 5));
/// ```
#[derive(Debug)]
pub struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    len: u64,
}

/// A reader adapter that hashes every byte read through it.
pub type HashingReader<R> = Hashing<R>;

/// A writer adapter that hashes every byte written through it.
pub type HashingWriter<W> = Hashing<W>;

impl<T> Hashing<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Number of bytes read or written (and hashed) so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.len
    }

    /// Returns the digest of everything read or written, the byte count and the inner
    /// reader or writer. Does not flush a writer; flush before if the inner writer
    /// buffers.
    pub fn finish(self) -> (Sha256Digest, u64, T) {
        (self.hasher.finalize().into(), self.len, self.inner)
    }

    /// Checks the digest of everything read or written against `expected` and returns
    /// the inner reader or writer. Does not read any remaining input: drain a reader
    /// first if the whole stream must be covered.
    pub fn finish_verify(self, expected: &Sha256Digest, what: &str) -> Result<T, ChecksumError> {
        let (actual, _, inner) = self.finish();
        check_digest(expected, &actual, what)?;
        Ok(inner)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // `n <= buf.len()` per the Read contract; `get` keeps a broken reader from panicking us.
        let read = buf.get(..n).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "reader returned more bytes than asked",
            )
        })?;
        self.hasher.update(read);
        self.len = self.len.saturating_add(n as u64);
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "writer claimed more bytes than given",
            )
        })?;
        self.hasher.update(written);
        self.len = self.len.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
