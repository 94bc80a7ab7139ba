//! Verified ingestion of file objects into the composefs object store.
//!
//! A file object arrives as its header and a content stream (from a `.filez` over HTTP, a
//! local repository, or a delta). Its OSTree checksum is computed while the content
//! streams into a composefs tmpfile; the object is linked into the store only when the
//! checksum equals the expected id, so nothing unverified is ever kept. Small contents
//! (at most twice the object-id size) stay inline in the commit stream, as
//! composefs-ostree stores them.

use cfsync_formats::mode::{S_IFLNK, S_IFMT, S_IFREG};
use std::io::Read;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::{FileHasher, FileHeader, encode_sized_archive_header};
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use crate::limits::MAX_FILE_SIZE;
use crate::store::commit_stream::{Entry, is_inline_size};
use crate::tmpfiles::TmpfilePool;

/// Why a file object was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The computed OSTree checksum differs from the object's name.
    #[error("file object {expected}: checksum mismatch (content hashes to {actual})")]
    Mismatch {
        /// The object's name.
        expected: Checksum,
        /// What its header and content hash to.
        actual: Checksum,
    },
    /// The content is longer or shorter than the header declares.
    #[error("file object {id}: content is {what} than the declared {declared} bytes")]
    SizeMismatch {
        /// The object.
        id: Checksum,
        /// "longer" or "shorter".
        what: &'static str,
        /// Declared size.
        declared: u64,
    },
    /// The header is not acceptable (type, size).
    #[error("file object {id}: {what}")]
    BadHeader {
        /// The object.
        id: Checksum,
        /// What is wrong.
        what: String,
    },
    /// Reading the content failed.
    #[error("file object {id}: reading content: {source}")]
    Read {
        /// The object.
        id: Checksum,
        /// The error.
        source: std::io::Error,
    },
    /// Storing into composefs failed.
    #[error("file object {id}: storing content: {source:#}")]
    Store {
        /// The object.
        id: Checksum,
        /// The composefs error.
        source: anyhow::Error,
    },
}

enum Failure {
    Long,
    Short,
    Mismatch(Checksum),
}

/// Hashes content as composefs reads it and fails the read at EOF unless the size and
/// the OSTree checksum are right.
struct VerifyingReader<'a, R> {
    inner: R,
    hasher: Option<FileHasher>,
    expected: &'a Checksum,
    declared: u64,
    seen: u64,
    failure: Option<Failure>,
}

impl<R: Read> Read for VerifyingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failure.is_some() {
            return Err(std::io::Error::other("content rejected"));
        }
        // Read at most one byte past the declared size, to detect overlong content.
        let room = self.declared.saturating_sub(self.seen).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            if self.seen < self.declared {
                self.failure = Some(Failure::Short);
                return Err(std::io::Error::other("content shorter than declared"));
            }
            if let Some(h) = self.hasher.take() {
                let actual = h.finish();
                if actual != *self.expected {
                    self.failure = Some(Failure::Mismatch(actual));
                    return Err(std::io::Error::other("checksum mismatch"));
                }
            }
            return Ok(0);
        }
        self.seen += n as u64;
        if self.seen > self.declared {
            self.failure = Some(Failure::Long);
            return Err(std::io::Error::other("content longer than declared"));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Verifies and stores one file object; returns its commit-stream entry.
///
/// Blocking: call from `spawn_blocking` in async code.
pub(crate) fn ingest_file<ObjectID: FsVerityHashValue>(
    repo: &Repository<ObjectID>,
    id: &Checksum,
    header: &FileHeader,
    content: impl Read,
) -> Result<Entry<ObjectID>, IngestError> {
    ingest_file_ahead(repo, id, header, content, None)
}

/// [`ingest_file`], writing into a tmpfile made ahead by `ahead` when it has one ready
/// (and the object is not inline).
pub(crate) fn ingest_file_ahead<ObjectID: FsVerityHashValue>(
    repo: &Repository<ObjectID>,
    id: &Checksum,
    header: &FileHeader,
    content: impl Read,
    ahead: Option<&TmpfilePool>,
) -> Result<Entry<ObjectID>, IngestError> {
    let kind = header.mode & S_IFMT;
    if kind != S_IFREG && kind != S_IFLNK {
        return Err(IngestError::BadHeader {
            id: *id,
            what: format!("unsupported file type {kind:o}"),
        });
    }
    if header.size > MAX_FILE_SIZE {
        return Err(IngestError::BadHeader {
            id: *id,
            what: format!("declared size {} is over the limit", header.size),
        });
    }
    let declared = if kind == S_IFLNK { 0 } else { header.size };
    let bad = |e: cfsync_formats::file::Error| IngestError::BadHeader {
        id: *id,
        what: e.to_string(),
    };
    let mut data = encode_sized_archive_header(header).map_err(bad)?;
    let hasher = FileHasher::new(header).map_err(bad)?;
    let mut reader = VerifyingReader {
        inner: content,
        hasher: Some(hasher),
        expected: id,
        declared,
        seen: 0,
        failure: None,
    };
    let map_failure = |reader: &VerifyingReader<'_, _>, err: std::io::Error| match &reader.failure {
        Some(Failure::Long) => IngestError::SizeMismatch {
            id: *id,
            what: "longer",
            declared,
        },
        Some(Failure::Short) => IngestError::SizeMismatch {
            id: *id,
            what: "shorter",
            declared,
        },
        Some(Failure::Mismatch(actual)) => IngestError::Mismatch {
            expected: *id,
            actual: *actual,
        },
        None => IngestError::Read {
            id: *id,
            source: err,
        },
    };
    if kind == S_IFLNK || is_inline_size::<ObjectID>(declared) {
        let mut inline = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        if let Err(e) = reader.read_to_end(&mut inline) {
            return Err(map_failure(&reader, e));
        }
        data.extend_from_slice(&inline);
        return Ok(Entry {
            data,
            external: None,
        });
    }
    if let Some(fd) = ahead.and_then(TmpfilePool::take) {
        return match write_verified(&mut reader, std::fs::File::from(fd)) {
            Ok(file) if reader.failure.is_none() && reader.hasher.is_none() => {
                match repo.finalize_object_tmpfile(file, declared) {
                    Ok((obj, _)) => Ok(Entry {
                        data,
                        external: Some(obj),
                    }),
                    Err(e) => Err(IngestError::Store { id: *id, source: e }),
                }
            }
            Ok(_) => Err(map_failure(
                &reader,
                std::io::Error::other("content not fully read"),
            )),
            Err(WriteFailed::Read(e)) => Err(map_failure(&reader, e)),
            Err(WriteFailed::Write(e)) => Err(IngestError::Store {
                id: *id,
                source: e.into(),
            }),
        };
    }
    match repo.ensure_object_from_reader(&mut reader, declared) {
        Ok(obj) if reader.failure.is_none() && reader.hasher.is_none() => Ok(Entry {
            data,
            external: Some(obj),
        }),
        Ok(_) => Err(map_failure(
            &reader,
            std::io::Error::other("content not fully read"),
        )),
        Err(e) => {
            if reader.failure.is_some() {
                Err(map_failure(&reader, std::io::Error::other("rejected")))
            } else {
                Err(IngestError::Store { id: *id, source: e })
            }
        }
    }
}

/// Why [`write_verified`] stopped.
enum WriteFailed {
    /// Reading (and so verifying) the content failed.
    Read(std::io::Error),
    /// Writing the tmpfile failed.
    Write(std::io::Error),
}

/// Size of the buffer content is copied into a tmpfile through.
const COPY_BUFFER: usize = 128 * 1024;

/// Copies `reader` to its end into `file` (a tmpfile made ahead); the reader verifies
/// the content as it goes, and fails the read at its end unless it matched.
fn write_verified(
    reader: &mut impl Read,
    mut file: std::fs::File,
) -> Result<std::fs::File, WriteFailed> {
    use std::io::Write;
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.resize(COPY_BUFFER, 0);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WriteFailed::Read(e)),
            };
            file.write_all(&buf[..n]).map_err(WriteFailed::Write)?;
        }
    })?;
    Ok(file)
}
