//! Static-delta part files: the compression byte, bounded decompression, and the payload.
//!
//! A part file (`deltas/…/<i>`, or the value of the superblock metadata key of the same name
//! for `--inline` deltas) is the serialization of `(yay)`: one compression byte followed by
//! the (possibly compressed) payload. Byte `0x00` means "stored", `'x'` means one `.xz`
//! stream (LZMA2, what ostree always writes). Anything else is rejected, as
//! `_ostree_static_delta_part_open` in `src/libostree/ostree-repo-static-delta-core.c` does.
//!
//! The payload is `(a(uuu)aa(ayay)ayay)` (`OSTREE_STATIC_DELTA_PART_PAYLOAD_FORMAT_V0`,
//! `ostree-repo-static-delta-private.h`): a mode table whose `u` values are **big-endian**,
//! a table of xattr lists, the raw data blob that operations address by offset, and the
//! operation bytecode (see [`super::ops`]). GVariant framing is little-endian.
//!
//! The part header's "uncompressed size" is the sum of the *objects'* content sizes, not the
//! payload size (payloads of real deltas exceed it), so decompression takes an explicit cap;
//! [`super::superblock::PartHeader::payload_cap`] derives a generous one from the header.
//! Output past the cap is an error, never an allocation.

use std::borrow::Cow;
use std::io::{self, Read};

use thiserror::Error;

use crate::gvariant::{self, Value};

use super::DeltaObjects;
use super::ops::{OpContext, OpCounts, OpError, Ops};

/// Decoder memory limit for xz streams, as ostree HEAD (`OSTREE_LZMA_DECODER_MEMLIMIT`).
pub const XZ_MEMLIMIT: u64 = 100 * 1024 * 1024;

/// Size of the internal input/output chunks used while decompressing.
const CHUNK: usize = 64 * 1024;

/// How a part payload is stored (the first byte of the part file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Byte `0x00`: the payload follows as is.
    None,
    /// Byte `'x'`: the payload is one xz stream.
    Xz,
}

impl Compression {
    /// Interprets a compression byte.
    pub fn from_byte(b: u8) -> Result<Self, PartError> {
        match b {
            0 => Ok(Compression::None),
            b'x' => Ok(Compression::Xz),
            other => Err(PartError::UnknownCompression(other)),
        }
    }

    /// The byte that stands for this compression in a part file.
    pub fn to_byte(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Xz => b'x',
        }
    }
}

/// Why a part file could not be opened or decompressed.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PartError {
    /// The part file is empty (no compression byte).
    #[error("delta part is empty: no compression byte")]
    Empty,
    /// The compression byte is neither 0 nor `'x'`.
    #[error("delta part has unknown compression byte 0x{0:02x}")]
    UnknownCompression(u8),
    /// Decompression produced more than the cap.
    #[error("delta part payload exceeds the cap of {cap} bytes")]
    PayloadTooLarge {
        /// The cap given by the caller.
        cap: u64,
    },
    /// The xz decoder rejected the stream.
    #[error("delta part xz stream is invalid at compressed offset {offset}: {kind:?}")]
    Xz {
        /// Offset in the xz stream (after the compression byte) reached so far.
        offset: u64,
        /// liblzma's verdict.
        kind: xz2::stream::Error,
    },
    /// The xz stream ended before its end marker.
    #[error("delta part xz stream is truncated at compressed offset {offset}")]
    XzTruncated {
        /// Bytes of xz input consumed.
        offset: u64,
    },
    /// Bytes follow the end of the xz stream.
    #[error("delta part has trailing bytes after the xz stream at compressed offset {offset}")]
    TrailingData {
        /// Offset (after the compression byte) of the first trailing byte.
        offset: u64,
    },
    /// Output memory could not be reserved.
    #[error("delta part could not reserve {0} bytes for the payload")]
    Alloc(u64),
}

/// Splits a part file into its compression and the (still compressed) rest.
/// Allocates nothing.
pub fn split(part_file: &[u8]) -> Result<(Compression, &[u8]), PartError> {
    let (&b, rest) = part_file.split_first().ok_or(PartError::Empty)?;
    Ok((Compression::from_byte(b)?, rest))
}

/// Decompresses a whole part file held in memory, returning the payload bytes.
///
/// Stored payloads are borrowed from `part_file`. At most `cap` bytes are produced; a
/// payload longer than that is [`PartError::PayloadTooLarge`].
///
/// Allocation: at most `cap` bytes of output (grown as bytes are produced, never
/// reserved from a declared size), a fixed chunk buffer, and the xz decoder's state,
/// which liblzma caps at [`XZ_MEMLIMIT`] (a stream whose dictionary needs more is
/// rejected).
pub fn decompress(part_file: &[u8], cap: u64) -> Result<Cow<'_, [u8]>, PartError> {
    let (comp, rest) = split(part_file)?;
    match comp {
        Compression::None => {
            if rest.len() as u64 > cap {
                return Err(PartError::PayloadTooLarge { cap });
            }
            Ok(Cow::Borrowed(rest))
        }
        Compression::Xz => {
            let mut xz = XzState::new()?;
            let mut out = Vec::new();
            let mut input = rest;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let (n, done) = xz.step(&mut input, &mut buf, cap)?;
                let chunk = buf.get(..n).unwrap_or_default();
                out.try_reserve(n)
                    .map_err(|_| PartError::Alloc(xz.produced))?;
                out.extend_from_slice(chunk);
                if done {
                    break;
                }
            }
            if !input.is_empty() {
                return Err(PartError::TrailingData {
                    offset: xz.consumed(),
                });
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// An xz decoder that enforces the output cap and reports truncation.
struct XzState {
    stream: xz2::stream::Stream,
    produced: u64,
    finished: bool,
}

impl std::fmt::Debug for XzState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XzState")
            .field("produced", &self.produced)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl XzState {
    fn new() -> Result<Self, PartError> {
        let stream = xz2::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
            .map_err(|kind| PartError::Xz { offset: 0, kind })?;
        Ok(XzState {
            stream,
            produced: 0,
            finished: false,
        })
    }

    fn consumed(&self) -> u64 {
        self.stream.total_in()
    }

    /// Decodes from `input` (advancing it) into `out`; returns (bytes written, stream ended).
    ///
    /// `input` may be empty only when no more input exists: then a stalled decoder is a
    /// truncation error.
    fn step(
        &mut self,
        input: &mut &[u8],
        out: &mut [u8],
        cap: u64,
    ) -> Result<(usize, bool), PartError> {
        if self.finished {
            return Ok((0, true));
        }
        // Allow one byte past the cap so that an overlong payload is detected.
        let room = cap.saturating_sub(self.produced).saturating_add(1);
        let lim = usize::try_from(room).unwrap_or(usize::MAX).min(out.len());
        let out = out.get_mut(..lim).unwrap_or_default();
        let in_before = self.stream.total_in();
        let out_before = self.stream.total_out();
        let action = if input.is_empty() {
            xz2::stream::Action::Finish
        } else {
            xz2::stream::Action::Run
        };
        let status = self
            .stream
            .process(input, out, action)
            .map_err(|kind| PartError::Xz {
                offset: in_before,
                kind,
            })?;
        let used_in =
            usize::try_from(self.stream.total_in().saturating_sub(in_before)).unwrap_or(usize::MAX);
        let made = usize::try_from(self.stream.total_out().saturating_sub(out_before))
            .unwrap_or(usize::MAX);
        *input = input.get(used_in..).unwrap_or_default();
        self.produced = self.produced.saturating_add(made as u64);
        if self.produced > cap {
            return Err(PartError::PayloadTooLarge { cap });
        }
        match status {
            xz2::stream::Status::StreamEnd => {
                self.finished = true;
                Ok((made, true))
            }
            xz2::stream::Status::MemNeeded => Err(PartError::XzTruncated {
                offset: self.stream.total_in(),
            }),
            _ if used_in == 0 && made == 0 && input.is_empty() && !out.is_empty() => {
                Err(PartError::XzTruncated {
                    offset: self.stream.total_in(),
                })
            }
            _ => Ok((made, false)),
        }
    }
}

/// Streaming reader of a part payload: reads a part file from `R` and yields the payload.
///
/// The first byte read from `R` is the compression byte. At most `cap` payload bytes are
/// returned; producing more, an invalid or truncated xz stream, or bytes after the xz stream
/// make `read` fail with [`io::ErrorKind::InvalidData`] (or `UnexpectedEof` for truncation)
/// wrapping a [`PartError`] (get it back with [`PartError::from_io`]).
#[derive(Debug)]
pub struct PartPayloadReader<R> {
    inner: R,
    cap: u64,
    state: ReaderState,
}

#[derive(Debug)]
enum ReaderState {
    Start,
    Raw {
        produced: u64,
    },
    Xz {
        xz: Box<XzState>,
        inbuf: Vec<u8>,
        pos: usize,
        len: usize,
        eof: bool,
    },
    Done,
}

impl PartError {
    /// Extracts the [`PartError`] carried by an error from [`PartPayloadReader`], if any.
    pub fn from_io(e: &io::Error) -> Option<&PartError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<PartError>())
    }

    fn into_io(self) -> io::Error {
        let kind = match self {
            PartError::XzTruncated { .. } | PartError::Empty => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

impl<R: Read> PartPayloadReader<R> {
    /// Wraps a reader positioned at the start of a part file (its compression byte).
    ///
    /// Produces at most `cap` bytes in total. Allocation is fixed: an input buffer and the
    /// xz decoder's state (at most [`XZ_MEMLIMIT`]), independent of the input.
    pub fn new(inner: R, cap: u64) -> Self {
        PartPayloadReader {
            inner,
            cap,
            state: ReaderState::Start,
        }
    }

    /// Returns the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

impl<R: Read> Read for PartPayloadReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.state {
                ReaderState::Start => {
                    let mut b = [0u8; 1];
                    if self.read_inner(&mut b)? == 0 {
                        return Err(PartError::Empty.into_io());
                    }
                    self.state = match Compression::from_byte(b[0]).map_err(PartError::into_io)? {
                        Compression::None => ReaderState::Raw { produced: 0 },
                        Compression::Xz => ReaderState::Xz {
                            xz: Box::new(XzState::new().map_err(PartError::into_io)?),
                            inbuf: vec![0u8; CHUNK],
                            pos: 0,
                            len: 0,
                            eof: false,
                        },
                    };
                }
                ReaderState::Raw { produced } => {
                    let produced = *produced;
                    let room = self.cap.saturating_sub(produced).saturating_add(1);
                    let lim = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
                    let n = self.read_inner(buf.get_mut(..lim).unwrap_or_default())?;
                    let produced = produced.saturating_add(n as u64);
                    if produced > self.cap {
                        return Err(PartError::PayloadTooLarge { cap: self.cap }.into_io());
                    }
                    self.state = if n == 0 {
                        ReaderState::Done
                    } else {
                        ReaderState::Raw { produced }
                    };
                    return Ok(n);
                }
                ReaderState::Xz {
                    xz,
                    inbuf,
                    pos,
                    len,
                    eof,
                } => {
                    if xz.finished {
                        // The stream ended: anything after it is an error.
                        let offset = xz.consumed();
                        if *pos < *len {
                            return Err(PartError::TrailingData { offset }.into_io());
                        }
                        let mut probe = [0u8; 1];
                        let n = loop {
                            match self.inner.read(&mut probe) {
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                r => break r?,
                            }
                        };
                        if n != 0 {
                            return Err(PartError::TrailingData { offset }.into_io());
                        }
                        self.state = ReaderState::Done;
                        return Ok(0);
                    }
                    if *pos >= *len && !*eof {
                        let n = loop {
                            match self.inner.read(inbuf) {
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                r => break r?,
                            }
                        };
                        *pos = 0;
                        *len = n;
                        if n == 0 {
                            *eof = true;
                        }
                    }
                    let mut input = inbuf.get(*pos..*len).unwrap_or_default();
                    let before = input.len();
                    let (n, _done) = xz
                        .step(&mut input, buf, self.cap)
                        .map_err(PartError::into_io)?;
                    *pos = pos.saturating_add(before.saturating_sub(input.len()));
                    if n > 0 {
                        return Ok(n);
                    }
                }
                ReaderState::Done => return Ok(0),
            }
        }
    }
}

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
    /// Parses a decompressed payload (see [`decompress`]).
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
    /// ops with [`super::ops::OpsOf`] over the caller's own [`super::ops::Blob`].
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
        super::ops::count(self.ops, self.op_context(objects))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use std::io::Write;

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        let mut v = vec![b'x'];
        v.extend(e.finish().unwrap());
        v
    }

    /// A payload with `n_modes` modes, one xattr entry, a blob and ops, serialized.
    fn payload(blob_len: usize, ops: &[u8]) -> Vec<u8> {
        use crate::gvariant::OwnedValue as V;
        let modes = (0..3)
            .map(|i| V::Tuple(vec![V::u32_be(i), V::u32_be(i), V::u32_be(0o100644)]))
            .collect();
        let xattr = V::array(
            "(ayay)",
            vec![V::Tuple(vec![
                V::bytes(b"user.a\0".to_vec()),
                V::bytes(b"v".to_vec()),
            ])],
        );
        let blob: Vec<u8> = (0..blob_len).map(|i| (i * 7) as u8).collect();
        V::Tuple(vec![
            V::array("(uuu)", modes),
            V::array("a(ayay)", vec![xattr]),
            V::bytes(blob),
            V::bytes(ops.to_vec()),
        ])
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn payload_ranges_agree_with_the_parser_for_every_offset_width() {
        // Lengths that give 1-, 2- and 4-byte framing offsets.
        for blob_len in [10usize, 300, 70_000] {
            let ops = [b'R', b'R'];
            let data = payload(blob_len, &ops);
            let tail = &data[data.len().saturating_sub(PAYLOAD_TAIL)..];
            let [m, x, b, o] = payload_ranges(data.len() as u64, tail).unwrap();
            let whole = PartPayloadRef::from_bytes(&data).unwrap();
            let at = |r: &std::ops::Range<u64>| &data[r.start as usize..r.end as usize];
            assert_eq!(at(&b), whole.blob(), "blob of {blob_len}");
            assert_eq!(at(&o), whole.ops_bytes());
            let split = PartPayloadRef::from_tables(at(&m), at(&x), at(&o)).unwrap();
            assert_eq!(split.n_modes(), 3);
            assert_eq!(split.mode(2), whole.mode(2));
            assert_eq!(split.n_xattrs(), 1);
            assert_eq!(
                split.xattrs(0).unwrap().entries().unwrap(),
                whole.xattrs(0).unwrap().entries().unwrap()
            );
            assert!(split.blob().is_empty());
            // Every shorter tail that still covers the offsets works; a corrupt one fails.
            let mut bad = data.clone();
            let n = bad.len();
            bad[n - 1] = 0xff;
            let bt = &bad[n.saturating_sub(PAYLOAD_TAIL)..];
            assert!(
                payload_ranges(n as u64, bt).is_err(),
                "corrupt tail of {blob_len}"
            );
        }
        assert!(payload_ranges(2, &[0, 0]).is_err());
        assert!(payload_ranges(100, &[]).is_err());
    }

    fn read_all<R: Read>(mut r: R) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn stored_and_xz_round_trip_with_exact_cap() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut stored = vec![0u8];
        stored.extend_from_slice(&data);
        let packed = xz(&data);
        for file in [&stored, &packed] {
            assert_eq!(
                decompress(file, data.len() as u64).unwrap().as_ref(),
                &data[..]
            );
            assert_eq!(
                read_all(PartPayloadReader::new(&file[..], data.len() as u64)).unwrap(),
                data
            );
            let cap = data.len() as u64 - 1;
            assert_eq!(
                decompress(file, cap).unwrap_err(),
                PartError::PayloadTooLarge { cap }
            );
            let e = read_all(PartPayloadReader::new(&file[..], cap)).unwrap_err();
            assert_eq!(
                PartError::from_io(&e),
                Some(&PartError::PayloadTooLarge { cap })
            );
        }
    }

    #[test]
    fn rejects_bad_compression_truncation_and_trailing_bytes() {
        assert_eq!(decompress(b"", 10).unwrap_err(), PartError::Empty);
        assert_eq!(
            decompress(b"0abc", 10).unwrap_err(),
            PartError::UnknownCompression(b'0')
        );
        let packed = xz(b"hello hello hello");
        for n in 1..packed.len() {
            assert!(decompress(&packed[..n], 100).is_err(), "prefix {n}");
            assert!(
                read_all(PartPayloadReader::new(&packed[..n], 100)).is_err(),
                "prefix {n}"
            );
        }
        let mut trailing = packed.clone();
        trailing.push(0);
        assert!(matches!(
            decompress(&trailing, 100),
            Err(PartError::TrailingData { .. })
        ));
        let e = read_all(PartPayloadReader::new(&trailing[..], 100)).unwrap_err();
        assert!(matches!(
            PartError::from_io(&e),
            Some(PartError::TrailingData { .. })
        ));
    }
}
