//! The static-delta operation bytecode, decoded as an iterator of typed, range-checked ops.
//!
//! Each operation is one opcode byte followed by unsigned LEB128 varints (at most 10 bytes,
//! `_ostree_read_varuint64` in `src/libostree/ostree-varint.c`). Semantics follow
//! `src/libostree/ostree-repo-static-delta-processing.c`:
//!
//! | op | byte | arguments |
//! |---|---|---|
//! | open-splice-and-close | `S` | metadata object: `size, offset`; file object: `mode, xattr, size, offset` |
//! | open | `o` | `mode, xattr, size` |
//! | write | `w` | `size, offset` (into the read source if one is set, else into the blob) |
//! | set-read-source | `r` | `offset` of a 32-byte checksum in the blob |
//! | unset-read-source | `R` | — |
//! | close | `c` | — |
//! | bspatch | `B` | `offset, size` of the patch in the blob |
//!
//! Objects are created in the order of the part header's object list; `S` and `c` move to
//! the next one, and both also clear the read source.
//!
//! The decoder is stricter than ostree where ostree would abort (`g_assert`) or silently
//! produce a wrong object: mode and xattr indices are checked against the tables (ostree
//! does not check them), `o`/`S` while an object is open, `w`/`B`/`c` with no object open,
//! `B` without a read source or after a `w`, writes that exceed or fall short of the size
//! given to `o`, and a stream that ends with an object open or with objects of the list
//! not produced are all errors. Blob ranges are checked as ostree's `validate_ofs` does;
//! ranges into a read source cannot be checked here (the executor must).

use crate::checksum::Checksum;

use crate::object::ObjectType;

use super::{DeltaObject, DeltaObjects};

/// An opcode of the delta bytecode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// `S`: create a whole object from the blob.
    OpenSpliceAndClose,
    /// `o`: start a file object.
    Open,
    /// `w`: append bytes.
    Write,
    /// `r`: select an existing file object as read source.
    SetReadSource,
    /// `R`: clear the read source.
    UnsetReadSource,
    /// `c`: finish the open object.
    Close,
    /// `B`: produce the content with a bspatch against the read source.
    Bspatch,
}

impl OpCode {
    /// All opcodes, in the order `ostree static-delta show` counts them.
    pub const ALL: [OpCode; 7] = [
        OpCode::OpenSpliceAndClose,
        OpCode::Open,
        OpCode::Write,
        OpCode::SetReadSource,
        OpCode::UnsetReadSource,
        OpCode::Close,
        OpCode::Bspatch,
    ];

    /// Decodes an opcode byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'S' => OpCode::OpenSpliceAndClose,
            b'o' => OpCode::Open,
            b'w' => OpCode::Write,
            b'r' => OpCode::SetReadSource,
            b'R' => OpCode::UnsetReadSource,
            b'c' => OpCode::Close,
            b'B' => OpCode::Bspatch,
            _ => return None,
        })
    }

    /// The opcode byte.
    pub fn to_byte(self) -> u8 {
        match self {
            OpCode::OpenSpliceAndClose => b'S',
            OpCode::Open => b'o',
            OpCode::Write => b'w',
            OpCode::SetReadSource => b'r',
            OpCode::UnsetReadSource => b'R',
            OpCode::Close => b'c',
            OpCode::Bspatch => b'B',
        }
    }

    /// Position in [`OpCode::ALL`] (ostree's `delta_opcode_index`).
    pub fn index(self) -> usize {
        match self {
            OpCode::OpenSpliceAndClose => 0,
            OpCode::Open => 1,
            OpCode::Write => 2,
            OpCode::SetReadSource => 3,
            OpCode::UnsetReadSource => 4,
            OpCode::Close => 5,
            OpCode::Bspatch => 6,
        }
    }

    /// The name `ostree static-delta show` uses for it.
    pub fn show_name(self) -> &'static str {
        match self {
            OpCode::OpenSpliceAndClose => "openspliceclose",
            OpCode::Open => "open",
            OpCode::Write => "write",
            OpCode::SetReadSource => "setread",
            OpCode::UnsetReadSource => "unsetread",
            OpCode::Close => "close",
            OpCode::Bspatch => "bspatch",
        }
    }
}

/// Where a `w` operation takes its bytes from; `D` is how the blob hands out ranges
/// (see [`Blob`]).
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

/// One decoded operation; `D` is how the blob hands out ranges (see [`Blob`]).
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

/// Why an operation stream is invalid. `offset` is the position of the opcode byte in the
/// operations bytecode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// An unknown opcode byte.
    #[error("delta op at offset {offset}: unknown opcode 0x{byte:02x}")]
    UnknownOpcode {
        /// Opcode position.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The stream ended inside a varint.
    #[error("delta op {op:?} at offset {offset}: unexpected end of ops reading a varint")]
    TruncatedVarint {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
    },
    /// A varint is longer than 10 bytes or exceeds 64 bits.
    #[error("delta op {op:?} at offset {offset}: varint overflows 64 bits")]
    VarintOverflow {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
    },
    /// `S` or `o` past the end of the part's object list.
    #[error(
        "delta op {op:?} at offset {offset}: object index {index} past the {count} listed objects"
    )]
    NoMoreObjects {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
        /// Index it would create.
        index: usize,
        /// Objects in the list.
        count: usize,
    },
    /// `o` on an object that is not a file object.
    #[error("delta op open at offset {offset}: object {index} is a {kind}, not a file")]
    OpenNonFile {
        /// Opcode position.
        offset: usize,
        /// The object's index.
        index: usize,
        /// Its type name.
        kind: &'static str,
    },
    /// A mode table index out of range.
    #[error("delta op {op:?} at offset {offset}: mode index {index} out of range ({count} modes)")]
    ModeIndex {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
        /// The index.
        index: u64,
        /// Table size.
        count: usize,
    },
    /// An xattr table index out of range.
    #[error(
        "delta op {op:?} at offset {offset}: xattr index {index} out of range ({count} entries)"
    )]
    XattrIndex {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
        /// The index.
        index: u64,
        /// Table size.
        count: usize,
    },
    /// A blob range outside the blob.
    #[error(
        "delta op {op:?} at offset {offset}: blob range {start}+{len} outside the {blob_len}-byte blob"
    )]
    BlobRange {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
        /// Range start.
        start: u64,
        /// Range length.
        len: u64,
        /// Blob length.
        blob_len: usize,
    },
    /// `S` or `o` while an object opened by `o` is still open.
    #[error("delta op {op:?} at offset {offset}: object {index} is still open")]
    AlreadyOpen {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
        /// The open object's index.
        index: usize,
    },
    /// `w`, `B` or `c` with no open object.
    #[error("delta op {op:?} at offset {offset}: no object is open")]
    NotOpen {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
    },
    /// `B` with no read source.
    #[error("delta op bspatch at offset {offset}: no read source is set")]
    NoReadSource {
        /// Opcode position.
        offset: usize,
    },
    /// Writes add up to more than the open object's declared size, or `B` after writes.
    #[error(
        "delta op {op:?} at offset {offset}: output would reach {total} bytes, object declared {declared}"
    )]
    Overflow {
        /// Opcode position.
        offset: usize,
        /// The operation.
        op: OpCode,
        /// Bytes the object would have.
        total: u64,
        /// Size declared by `o`.
        declared: u64,
    },
    /// `c` before the declared size was written.
    #[error("delta op close at offset {offset}: object {index} has {written} of {declared} bytes")]
    ShortObject {
        /// Opcode position.
        offset: usize,
        /// The object's index.
        index: usize,
        /// Bytes written.
        written: u64,
        /// Size declared by `o`.
        declared: u64,
    },
    /// The stream ended with an object open or with listed objects not produced.
    #[error("delta ops end after producing {produced} of {count} objects{}", if *.open { " (one left open)" } else { "" })]
    Unfinished {
        /// Objects completed.
        produced: usize,
        /// Objects listed.
        count: usize,
        /// Whether an object was left open.
        open: bool,
    },
}

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

/// The tables and in-memory blob that ops refer to, plus the part's object list.
pub type OpContext<'a> = OpContextOf<'a, &'a [u8]>;

/// The tables and blob that ops refer to, plus the part's object list.
#[derive(Debug, Clone, Copy)]
pub struct OpContextOf<'a, B> {
    /// The part header's object list.
    pub objects: DeltaObjects<'a>,
    /// Number of entries in the payload's mode table.
    pub n_modes: usize,
    /// Number of entries in the payload's xattr table.
    pub n_xattrs: usize,
    /// The payload's raw data blob.
    pub blob: B,
}

#[derive(Debug, Clone, Copy)]
struct OpenObject {
    object: DeltaObject,
    declared: u64,
    written: u64,
}

/// Iterator over the operations of a part with its blob in memory.
pub type Ops<'a> = OpsOf<'a, &'a [u8]>;

/// Iterator over the operations of a part; yields `Err` once and then stops on the first
/// invalid operation (or at the end if the stream is unfinished).
#[derive(Debug, Clone)]
pub struct OpsOf<'a, B> {
    ctx: OpContextOf<'a, B>,
    ops: &'a [u8],
    pos: usize,
    next_object: usize,
    open: Option<OpenObject>,
    read_source: bool,
    done: bool,
}

impl<'a, B: Blob> OpsOf<'a, B> {
    /// Decodes `ops` (the payload's operations bytecode) against `ctx`.
    ///
    /// Allocates nothing: ops borrow the blob, sizes are only numbers, and each step is
    /// O(1) apart from reading its varints.
    pub fn new(ops: &'a [u8], ctx: OpContextOf<'a, B>) -> Self {
        OpsOf {
            ctx,
            ops,
            pos: 0,
            next_object: 0,
            open: None,
            read_source: false,
            done: false,
        }
    }

    /// Position of the next opcode in the bytecode.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn varint(&mut self, offset: usize, op: OpCode) -> Result<u64, OpError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let b = *self
                .ops
                .get(self.pos)
                .ok_or(OpError::TruncatedVarint { offset, op })?;
            self.pos = self.pos.saturating_add(1);
            let bits = u64::from(b & 0x7f);
            let shift = i.saturating_mul(7);
            // The 10th byte may only carry the top bit of a u64.
            if i == 9 && bits > 1 {
                return Err(OpError::VarintOverflow { offset, op });
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(OpError::VarintOverflow { offset, op })
    }

    fn blob(&self, offset: usize, op: OpCode, start: u64, len: u64) -> Result<B::Data, OpError> {
        let err = OpError::BlobRange {
            offset,
            op,
            start,
            len,
            blob_len: self.ctx.blob.len(),
        };
        let s = usize::try_from(start).map_err(|_| err.clone())?;
        let l = usize::try_from(len).map_err(|_| err.clone())?;
        let e = s.checked_add(l).ok_or_else(|| err.clone())?;
        if e > self.ctx.blob.len() {
            return Err(err);
        }
        self.ctx.blob.range(s, e).ok_or(err)
    }

    fn next_listed(&self, offset: usize, op: OpCode) -> Result<DeltaObject, OpError> {
        if let Some(o) = &self.open {
            return Err(OpError::AlreadyOpen {
                offset,
                op,
                index: o.object.index,
            });
        }
        self.ctx
            .objects
            .get(self.next_object)
            .ok_or(OpError::NoMoreObjects {
                offset,
                op,
                index: self.next_object,
                count: self.ctx.objects.len(),
            })
    }

    fn mode_xattrs(&mut self, offset: usize, op: OpCode) -> Result<(usize, usize), OpError> {
        let m = self.varint(offset, op)?;
        let x = self.varint(offset, op)?;
        let mode = usize::try_from(m)
            .ok()
            .filter(|&m| m < self.ctx.n_modes)
            .ok_or(OpError::ModeIndex {
                offset,
                op,
                index: m,
                count: self.ctx.n_modes,
            })?;
        let xattrs = usize::try_from(x)
            .ok()
            .filter(|&x| x < self.ctx.n_xattrs)
            .ok_or(OpError::XattrIndex {
                offset,
                op,
                index: x,
                count: self.ctx.n_xattrs,
            })?;
        Ok((mode, xattrs))
    }

    fn finish_object(&mut self) {
        self.next_object = self.next_object.saturating_add(1);
        self.read_source = false;
        self.open = None;
    }

    fn step(&mut self) -> Result<Option<OpOf<B::Data>>, OpError> {
        let offset = self.pos;
        let Some(&byte) = self.ops.get(offset) else {
            let count = self.ctx.objects.len();
            if self.open.is_some() || self.next_object != count {
                return Err(OpError::Unfinished {
                    produced: self.next_object,
                    count,
                    open: self.open.is_some(),
                });
            }
            return Ok(None);
        };
        let op = OpCode::from_byte(byte).ok_or(OpError::UnknownOpcode { offset, byte })?;
        self.pos = self.pos.saturating_add(1);
        let out = match op {
            OpCode::OpenSpliceAndClose => {
                let object = self.next_listed(offset, op)?;
                let out = if object.object_type.is_meta() {
                    let size = self.varint(offset, op)?;
                    let start = self.varint(offset, op)?;
                    let data = self.blob(offset, op, start, size)?;
                    OpOf::SpliceMetadata { object, data }
                } else {
                    let (mode, xattrs) = self.mode_xattrs(offset, op)?;
                    let size = self.varint(offset, op)?;
                    let start = self.varint(offset, op)?;
                    let data = self.blob(offset, op, start, size)?;
                    OpOf::SpliceFile {
                        object,
                        mode,
                        xattrs,
                        data,
                    }
                };
                self.finish_object();
                out
            }
            OpCode::Open => {
                let object = self.next_listed(offset, op)?;
                if object.object_type != ObjectType::File {
                    return Err(OpError::OpenNonFile {
                        offset,
                        index: object.index,
                        kind: object.object_type.as_str(),
                    });
                }
                let (mode, xattrs) = self.mode_xattrs(offset, op)?;
                let size = self.varint(offset, op)?;
                self.open = Some(OpenObject {
                    object,
                    declared: size,
                    written: 0,
                });
                OpOf::Open {
                    object,
                    mode,
                    xattrs,
                    size,
                }
            }
            OpCode::Write => {
                let size = self.varint(offset, op)?;
                let start = self.varint(offset, op)?;
                let source = if self.read_source {
                    WriteSourceOf::ReadSource { offset: start }
                } else {
                    WriteSourceOf::Blob(self.blob(offset, op, start, size)?)
                };
                let open = self.open.as_mut().ok_or(OpError::NotOpen { offset, op })?;
                let total = open.written.saturating_add(size);
                if total > open.declared {
                    return Err(OpError::Overflow {
                        offset,
                        op,
                        total,
                        declared: open.declared,
                    });
                }
                open.written = total;
                OpOf::Write { size, source }
            }
            OpCode::SetReadSource => {
                let start = self.varint(offset, op)?;
                let range_err = OpError::BlobRange {
                    offset,
                    op,
                    start,
                    len: 32,
                    blob_len: self.ctx.blob.len(),
                };
                self.blob(offset, op, start, 32)?;
                let s = usize::try_from(start).map_err(|_| range_err.clone())?;
                let checksum = self.ctx.blob.checksum_at(s).ok_or(range_err)?;
                self.read_source = true;
                OpOf::SetReadSource { checksum }
            }
            OpCode::UnsetReadSource => {
                self.read_source = false;
                OpOf::UnsetReadSource
            }
            OpCode::Close => {
                let open = self.open.ok_or(OpError::NotOpen { offset, op })?;
                if open.written != open.declared {
                    return Err(OpError::ShortObject {
                        offset,
                        index: open.object.index,
                        written: open.written,
                        declared: open.declared,
                    });
                }
                self.finish_object();
                OpOf::Close {
                    object: open.object,
                }
            }
            OpCode::Bspatch => {
                let start = self.varint(offset, op)?;
                let len = self.varint(offset, op)?;
                let patch = self.blob(offset, op, start, len)?;
                let read_source = self.read_source;
                let open = self.open.as_mut().ok_or(OpError::NotOpen { offset, op })?;
                if !read_source {
                    return Err(OpError::NoReadSource { offset });
                }
                if open.written != 0 {
                    return Err(OpError::Overflow {
                        offset,
                        op,
                        total: open.written.saturating_add(open.declared),
                        declared: open.declared,
                    });
                }
                open.written = open.declared;
                OpOf::Bspatch {
                    patch,
                    size: open.declared,
                }
            }
        };
        Ok(Some(out))
    }
}

impl<B: Blob> Iterator for OpsOf<'_, B> {
    type Item = Result<OpOf<B::Data>, OpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(op)) => Some(Ok(op)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<B: Blob> std::iter::FusedIterator for OpsOf<'_, B> {}

/// Number of operations of each opcode in a part (what `ostree static-delta show` prints
/// as `PartPayloadOps<i>`), indexed by [`OpCode::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts(pub [u64; 7]);

impl OpCounts {
    /// The count for one opcode.
    pub fn get(&self, op: OpCode) -> u64 {
        self.0.get(op.index()).copied().unwrap_or(0)
    }

    /// Total number of operations.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &OpCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }
}

/// Decodes a whole operation stream, checking every operation, and counts the opcodes.
/// Allocates nothing; linear in `ops.len()`.
pub fn count(ops: &[u8], ctx: OpContext<'_>) -> Result<OpCounts, OpError> {
    let mut counts = OpCounts::default();
    for op in Ops::new(ops, ctx) {
        if let Some(c) = counts.0.get_mut(op?.opcode().index()) {
            *c = c.saturating_add(1);
        }
    }
    Ok(counts)
}

/// Appends `v` as an unsigned LEB128 varint (the encoding ops use; for building test
/// streams and fuzz seeds).
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn objects(types: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, t) in types.iter().enumerate() {
            v.push(*t);
            v.extend_from_slice(&[i as u8; 32]);
        }
        v
    }

    fn ops(parts: &[(u8, &[u64])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (op, args) in parts {
            v.push(*op);
            for a in *args {
                write_varint(&mut v, *a);
            }
        }
        v
    }

    #[test]
    fn decodes_every_opcode() {
        let list = objects(&[2, 1, 1, 1]);
        let blob: Vec<u8> = (0..100u8).collect();
        let ctx = OpContext {
            objects: DeltaObjects::new(&list).unwrap(),
            n_modes: 2,
            n_xattrs: 1,
            blob: &blob,
        };
        let stream = ops(&[
            (b'S', &[3, 10]),      // dirtree = blob[10..13]
            (b'S', &[1, 0, 4, 0]), // file 1 = blob[0..4]
            (b'r', &[50]),
            (b'o', &[0, 0, 6]),
            (b'w', &[2, 90]), // from the read source at 90
            (b'R', &[]),
            (b'w', &[4, 96]), // from the blob
            (b'c', &[]),
            (b'r', &[20]),
            (b'o', &[1, 0, 300]),
            (b'B', &[60, 5]),
            (b'c', &[]),
            (b'R', &[]),
        ]);
        let got: Vec<Op<'_>> = Ops::new(&stream, ctx).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 13);
        assert!(
            matches!(got[0], Op::SpliceMetadata { data, object } if data == &blob[10..13] && object.index == 0)
        );
        assert!(
            matches!(got[1], Op::SpliceFile { mode: 1, xattrs: 0, data, .. } if data == &blob[0..4])
        );
        assert!(matches!(got[2], Op::SetReadSource { checksum } if checksum.0[..] == blob[50..82]));
        assert!(matches!(
            got[4],
            Op::Write {
                size: 2,
                source: WriteSource::ReadSource { offset: 90 }
            }
        ));
        assert!(
            matches!(got[6], Op::Write { size: 4, source: WriteSource::Blob(b) } if b == &blob[96..100])
        );
        assert!(matches!(got[7], Op::Close { object } if object.index == 2));
        assert!(matches!(got[10], Op::Bspatch { patch, size: 300 } if patch == &blob[60..65]));
        let c = count(&stream, ctx).unwrap();
        assert_eq!(c.0, [2, 2, 2, 2, 2, 2, 1]);
        assert_eq!(c.total(), 13);
    }

    #[test]
    fn rejects_invalid_streams() {
        let list = objects(&[1, 1]);
        let blob = [0u8; 40];
        let ctx = OpContext {
            objects: DeltaObjects::new(&list).unwrap(),
            n_modes: 1,
            n_xattrs: 1,
            blob: &blob,
        };
        let bad = |s: Vec<u8>| count(&s, ctx).unwrap_err();
        assert!(matches!(
            bad(ops(&[(b'S', &[1, 0, 1, 0])])),
            OpError::ModeIndex { index: 1, .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 3, 1, 0])])),
            OpError::XattrIndex { index: 3, .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, 10, 35])])),
            OpError::BlobRange { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, u64::MAX, 2])])),
            OpError::BlobRange { .. }
        ));
        assert!(matches!(
            bad(vec![b'x']),
            OpError::UnknownOpcode { byte: b'x', .. }
        ));
        assert!(matches!(
            bad(vec![b'S', 0x80]),
            OpError::TruncatedVarint { .. }
        ));
        assert!(matches!(
            bad(vec![
                b'r', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02
            ]),
            OpError::VarintOverflow { .. }
        ));
        assert!(matches!(
            bad(vec![
                b'r', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0
            ]),
            OpError::VarintOverflow { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'w', &[1, 0])])),
            OpError::NotOpen { .. }
        ));
        assert!(matches!(bad(ops(&[(b'c', &[])])), OpError::NotOpen { .. }));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 1]), (b'o', &[0, 0, 1])])),
            OpError::AlreadyOpen { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 1]), (b'w', &[2, 0])])),
            OpError::Overflow { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 2]), (b'w', &[1, 0]), (b'c', &[])])),
            OpError::ShortObject { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 2]), (b'B', &[0, 4])])),
            OpError::NoReadSource { .. }
        ));
        assert!(matches!(
            bad(ops(&[
                (b'r', &[0]),
                (b'o', &[0, 0, 2]),
                (b'w', &[1, 0]),
                (b'B', &[0, 4])
            ])),
            OpError::Overflow { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'r', &[9])])),
            OpError::BlobRange { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, 1, 0])])),
            OpError::Unfinished {
                produced: 1,
                count: 2,
                open: false
            }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, 1, 0]), (b'o', &[0, 0, 0])])),
            OpError::Unfinished { open: true, .. }
        ));
        assert!(matches!(
            bad(ops(&[
                (b'S', &[0, 0, 1, 0]),
                (b'S', &[0, 0, 1, 0]),
                (b'S', &[0, 0, 1, 0])
            ])),
            OpError::NoMoreObjects {
                index: 2,
                count: 2,
                ..
            }
        ));
        let meta = objects(&[3]);
        let mctx = OpContext {
            objects: DeltaObjects::new(&meta).unwrap(),
            ..ctx
        };
        assert!(matches!(
            count(&ops(&[(b'o', &[0, 0, 0])]), mctx),
            Err(OpError::OpenNonFile { .. })
        ));
        // The iterator stops after the first error.
        let s = vec![b'x', b'R'];
        let mut it = Ops::new(&s, ctx);
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }

    #[test]
    fn varint_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut s = vec![b'r'];
            write_varint(&mut s, v);
            let list = [];
            let ctx = OpContext {
                objects: DeltaObjects::new(&list).unwrap(),
                n_modes: 0,
                n_xattrs: 0,
                blob: &[],
            };
            let mut it = Ops::new(&s, ctx);
            assert_eq!(it.varint_for_test(), Ok(v));
        }
    }

    impl Ops<'_> {
        fn varint_for_test(&mut self) -> Result<u64, OpError> {
            self.pos = 1;
            self.varint(0, OpCode::SetReadSource)
        }
    }
}
