//! Errors in file headers and `.filez` streams.

use std::io;

use crate::{gvariant, xattrs};

/// Errors in file headers and `.filez` streams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A header is not a normal-form GVariant of its type.
    #[error("file header: {0}")]
    Variant(#[from] gvariant::Error),
    /// The xattrs are invalid.
    #[error("file header {0}")]
    Xattrs(#[from] xattrs::Error),
    /// Neither a regular file nor a symlink, or bits outside `S_IFMT | 07777`.
    #[error("file header mode {mode:o} is not a valid regular file or symlink mode")]
    Mode {
        /// The mode found.
        mode: u32,
    },
    /// rdev is not 0.
    #[error("file header rdev is {rdev}, expected 0")]
    Rdev {
        /// The rdev found.
        rdev: u32,
    },
    /// A symlink target is empty or too long, or a regular file has one.
    #[error("file header: {0}")]
    Symlink(&'static str),
    /// A symlink declares a content size.
    #[error("symlink file header declares {size} content bytes")]
    SymlinkSize {
        /// The size found.
        size: u64,
    },
    /// The sized framing is bad (length 0 or too large, nonzero padding).
    #[error("file header framing at offset {offset}: {what}")]
    Framing {
        /// What is wrong.
        what: &'static str,
        /// Offset in the object.
        offset: usize,
    },
    /// The object ends before its header does.
    #[error("file object truncated: {0}")]
    Truncated(&'static str),
    /// A header too large to frame (over 4 GiB).
    #[error("file header of {0} bytes is too large")]
    HeaderTooLarge(usize),
    /// Reading the underlying stream failed.
    #[error("reading file object: {0}")]
    Io(#[from] io::Error),
}
