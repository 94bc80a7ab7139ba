//! One decoded operation ([`OpOf`]) and where a write takes its bytes from.

use crate::checksum::Checksum;
use crate::delta::DeltaObject;

use super::opcode::OpCode;

/// Where a `w` operation takes its bytes from; `D` is how the blob hands out ranges
/// (see [`Blob`](super::Blob)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteSourceOf<D> {
    /// From the part's blob (already range-checked).
    Blob(D),
    /// From the current read source's content, at `offset` (not checkable here).
    ReadSource {
        /// Offset into the read source's content.
        offset: u64,
    },
}

/// Where a `w` operation takes its bytes from, with the blob in memory.
pub type WriteSource<'a> = WriteSourceOf<&'a [u8]>;

/// One decoded operation, with the blob in memory.
pub type Op<'a> = OpOf<&'a [u8]>;

/// One decoded operation; `D` is how the blob hands out ranges (see [`Blob`](super::Blob)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpOf<D> {
    /// `S` on a metadata object: `data` is the whole object.
    SpliceMetadata {
        /// The object created.
        object: DeltaObject,
        /// Its serialized bytes (from the blob).
        data: D,
    },
    /// `S` on a file object: content (regular file) or target (symlink) from the blob.
    SpliceFile {
        /// The object created.
        object: DeltaObject,
        /// Index into the part's mode table (checked).
        mode: usize,
        /// Index into the part's xattr table (checked).
        xattrs: usize,
        /// The content or symlink target bytes (from the blob).
        data: D,
    },
    /// `o`: start file object `object` with content length `size`.
    Open {
        /// The object being created.
        object: DeltaObject,
        /// Index into the part's mode table (checked).
        mode: usize,
        /// Index into the part's xattr table (checked).
        xattrs: usize,
        /// Final content length.
        size: u64,
    },
    /// `w`: append `size` bytes to the open object.
    Write {
        /// Number of bytes.
        size: u64,
        /// Where they come from.
        source: WriteSourceOf<D>,
    },
    /// `r`: the file object `checksum` (which must exist locally) becomes the read source.
    SetReadSource {
        /// The source object.
        checksum: Checksum,
    },
    /// `R`: no read source.
    UnsetReadSource,
    /// `c`: the open object is complete and must hash to its name.
    Close {
        /// The object completed.
        object: DeltaObject,
    },
    /// `B`: the open object's content is `bspatch(read source, patch)`, `size` bytes.
    Bspatch {
        /// The patch (from the blob).
        patch: D,
        /// The content length declared by the `o` that opened the object.
        size: u64,
    },
}

impl<D> OpOf<D> {
    /// The opcode of this operation.
    pub fn opcode(&self) -> OpCode {
        match self {
            OpOf::SpliceMetadata { .. } | OpOf::SpliceFile { .. } => OpCode::OpenSpliceAndClose,
            OpOf::Open { .. } => OpCode::Open,
            OpOf::Write { .. } => OpCode::Write,
            OpOf::SetReadSource { .. } => OpCode::SetReadSource,
            OpOf::UnsetReadSource => OpCode::UnsetReadSource,
            OpOf::Close { .. } => OpCode::Close,
            OpOf::Bspatch { .. } => OpCode::Bspatch,
        }
    }
}
