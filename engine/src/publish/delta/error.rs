//! [`DeltaError`]: why a delta could not be generated.

use std::path::PathBuf;

use cfsync_formats::checksum::Checksum;

use crate::source::FetchError;

/// Why `delta generate` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// Reading the repository failed.
    #[error(transparent)]
    Read(#[from] FetchError),
    /// A revision is neither a ref of the repository nor a 64-digit checksum.
    #[error("{repo}: no ref or commit {rev} (give a ref under refs/heads or a full checksum)")]
    NoRev {
        /// The repository.
        repo: PathBuf,
        /// What was asked for.
        rev: String,
    },
    /// An object the commit needs is missing (a partial commit cannot be a delta's end).
    #[error("{repo}: {what} {checksum} is missing; the commit is partial (pull it whole first)")]
    Missing {
        /// The repository.
        repo: PathBuf,
        /// Which kind of object.
        what: &'static str,
        /// Its checksum.
        checksum: Checksum,
    },
    /// An object does not parse.
    #[error("{repo}: {what} {checksum} is corrupt: {reason}")]
    Corrupt {
        /// The repository.
        repo: PathBuf,
        /// Which kind of object.
        what: &'static str,
        /// Its checksum.
        checksum: Checksum,
        /// What is wrong.
        reason: String,
    },
    /// Writing a part or the superblock failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Serializing a part or the superblock failed.
    #[error("encoding the delta: {0}")]
    Encode(#[from] cfsync_formats::delta::write::WriteError),
    /// A signer failed.
    #[error("signing the superblock: {0}")]
    Sign(String),
    /// A worker thread panicked (a bug).
    #[error("a delta worker thread failed: {0}")]
    Worker(String),
}
