//! Why an operation stream is invalid.

use super::opcode::OpCode;

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
