//! The part payload `(a(uuu)aa(ayay)ayay)`: mode table, xattr table, blob and ops.

use crate::delta::DeltaObjects;
use crate::delta::ops::{OpContext, OpCounts, OpError, Ops};
use crate::gvariant::{self, Value};

/// GVariant type of a part payload (`OSTREE_STATIC_DELTA_PART_PAYLOAD_FORMAT_V0`).
pub const PAYLOAD_TYPE: &str = "(a(uuu)aa(ayay)ayay)";

/// Most entries accepted in a payload's xattr table (ostree deduplicates the table; real
/// parts have a handful of entries).
pub const MAX_XATTR_TABLE: usize = 1 << 20;

/// Why a part payload is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Not a normal-form `(a(uuu)aa(ayay)ayay)`.
    #[error("delta part payload: {0}")]
    Variant(#[from] gvariant::Error),
    /// The xattr table has more than [`MAX_XATTR_TABLE`] entries.
    #[error("delta part payload xattr table has {0} entries, more than the limit")]
    TooManyXattrs(usize),
    /// The payload's framing offsets are out of order or out of range.
    #[error("delta part payload of {len} bytes: {what}")]
    Layout {
        /// The payload's length.
        len: u64,
        /// What is wrong.
        what: &'static str,
    },
}

/// Bytes at the end of a payload that hold its framing offsets (three offsets of at most
/// eight bytes): what [`payload_ranges`] needs.
pub const PAYLOAD_TAIL: usize = 24;

/// Where the four fields of a payload lie — the mode table, the xattr table, the blob and
/// the ops — from the payload's length and its last bytes (`tail`: the last
/// `min(len, PAYLOAD_TAIL)` bytes or more), for callers that keep a large payload's blob
/// out of memory. The ranges are checked to be in order and within the payload; the
/// fields themselves are checked by [`PartPayloadRef::from_tables`]. Allocates nothing.
pub fn payload_ranges(len: u64, tail: &[u8]) -> Result<[std::ops::Range<u64>; 4], PayloadError> {
    let bad = |what| PayloadError::Layout { len, what };
    let n = usize::try_from(len).map_err(|_| bad("too large for this platform"))?;
    let osz = gvariant::offset_size(n);
    let table = n
        .checked_sub(osz.saturating_mul(3))
        .ok_or_else(|| bad("too short for its framing offsets"))?;
    let tail_start = n
        .checked_sub(tail.len())
        .ok_or_else(|| bad("tail longer than the payload"))?;
    if tail_start > table {
        return Err(bad("tail does not cover the framing offsets"));
    }
    let end = |i: usize| -> Result<usize, PayloadError> {
        let at = n
            .checked_sub(osz.saturating_mul(i))
            .and_then(|a| a.checked_sub(tail_start))
            .ok_or_else(|| bad("framing offset out of range"))?;
        gvariant::read_offset(tail, at, osz).ok_or_else(|| bad("framing offset out of range"))
    };
    let (e0, e1, e2) = (end(1)?, end(2)?, end(3)?);
    if !(e0 <= e1 && e1 <= e2 && e2 <= table) {
        return Err(bad("framing offsets out of order or past the ops"));
    }
    let r = |a: usize, b: usize| a as u64..b as u64;
    Ok([r(0, e0), r(e0, e1), r(e1, e2), r(e2, table)])
}

/// One entry of the mode table (values converted from big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileMode {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
}

/// One extended attribute: (name with its trailing NUL, value).
pub type Xattr<'a> = (&'a [u8], &'a [u8]);

/// One entry of the xattr table: an `a(ayay)` list of (name with trailing NUL, value).
#[derive(Debug, Clone, Copy)]
pub struct XattrsRef<'a> {
    value: Value<'a>,
}

impl<'a> XattrsRef<'a> {
    /// The `a(ayay)` value (for building a bare file header).
    pub fn as_value(&self) -> Value<'a> {
        self.value
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.value.data().is_empty()
    }

    /// The (name, value) pairs in stored order; names keep their trailing NUL.
    pub fn entries(&self) -> Result<Vec<Xattr<'a>>, gvariant::Error> {
        let mut out = Vec::new();
        for e in self.value.array_iter()? {
            let [k, v] = e?.tuple_fields()?;
            out.push((k.as_bytes()?, v.as_bytes()?));
        }
        Ok(out)
    }
}

/// A checked, borrowed part payload.
#[derive(Debug, Clone)]
pub struct PartPayloadRef<'a> {
    modes: &'a [u8],
    xattrs: Vec<Value<'a>>,
    blob: &'a [u8],
    ops: &'a [u8],
}

impl<'a> PartPayloadRef<'a> {
    /// Parses a decompressed payload (see [`decompress`](super::decompress)).
    ///
    /// Borrows `data`; keeps one value per xattr table entry (at most
    /// [`MAX_XATTR_TABLE`], and at most one per input byte): O(input length).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, PayloadError> {
        let v = Value::from_bytes(data, PAYLOAD_TYPE)?;
        let [modes, xattrs, blob, ops] = v.tuple_fields()?;
        modes.expect_type("a(uuu)")?;
        Self::assemble(modes, xattrs, blob.as_bytes()?, ops.as_bytes()?)
    }

    /// Checks the xattr table's size and collects its entries.
    fn assemble(
        modes: Value<'a>,
        xattrs: Value<'a>,
        blob: &'a [u8],
        ops: &'a [u8],
    ) -> Result<Self, PayloadError> {
        let n = xattrs.array_len()?;
        if n > MAX_XATTR_TABLE {
            return Err(PayloadError::TooManyXattrs(n));
        }
        let mut table = Vec::with_capacity(n);
        for x in xattrs.array_iter()? {
            table.push(x?);
        }
        Ok(PartPayloadRef {
            modes: modes.data(),
            xattrs: table,
            blob,
            ops,
        })
    }

    /// A payload whose blob is kept elsewhere: the mode table, xattr table and ops as
    /// located by [`payload_ranges`]. [`PartPayloadRef::blob`] is then empty; decode the
    /// ops with [`crate::delta::ops::OpsOf`] over the caller's own [`crate::delta::ops::Blob`].
    /// Allocates one entry per xattr table entry, at most [`MAX_XATTR_TABLE`].
    pub fn from_tables(
        modes: &'a [u8],
        xattrs: &'a [u8],
        ops: &'a [u8],
    ) -> Result<Self, PayloadError> {
        let modes = Value::from_bytes(modes, "a(uuu)")?;
        let xattrs = Value::from_bytes(xattrs, "aa(ayay)")?;
        Self::assemble(modes, xattrs, &[], ops)
    }

    /// Number of mode table entries.
    pub fn n_modes(&self) -> usize {
        self.modes.len().checked_div(12).unwrap_or(0)
    }

    /// Mode table entry `i` (uid, gid, mode, converted from big-endian).
    pub fn mode(&self, i: usize) -> Option<FileMode> {
        let start = i.checked_mul(12)?;
        let e = self.modes.get(start..start.checked_add(12)?)?;
        let word = |k: usize| -> Option<u32> {
            let b: [u8; 4] = e.get(k..k.checked_add(4)?)?.try_into().ok()?;
            Some(u32::from_be_bytes(b))
        };
        Some(FileMode {
            uid: word(0)?,
            gid: word(4)?,
            mode: word(8)?,
        })
    }

    /// Number of xattr table entries.
    pub fn n_xattrs(&self) -> usize {
        self.xattrs.len()
    }

    /// Xattr table entry `i`.
    pub fn xattrs(&self, i: usize) -> Option<XattrsRef<'a>> {
        self.xattrs.get(i).map(|&value| XattrsRef { value })
    }

    /// The raw data blob.
    pub fn blob(&self) -> &'a [u8] {
        self.blob
    }

    /// The operations bytecode.
    pub fn ops_bytes(&self) -> &'a [u8] {
        self.ops
    }

    /// The context ops are decoded against, for the part whose header lists `objects`.
    pub fn op_context(&self, objects: DeltaObjects<'a>) -> OpContext<'a> {
        OpContext {
            objects,
            n_modes: self.n_modes(),
            n_xattrs: self.n_xattrs(),
            blob: self.blob,
        }
    }

    /// Decodes the operations of the part whose header lists `objects`.
    pub fn ops(&self, objects: DeltaObjects<'a>) -> Ops<'a> {
        Ops::new(self.ops, self.op_context(objects))
    }

    /// Decodes and checks all operations, counting them per opcode.
    pub fn op_counts(&self, objects: DeltaObjects<'a>) -> Result<OpCounts, OpError> {
        crate::delta::ops::count(self.ops, self.op_context(objects))
    }
}
