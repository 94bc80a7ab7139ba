//! A strict reader and a normal-form writer for serialized GVariant data.
//!
//! Every OSTree metadata format (commit, dirtree, dirmeta, file headers, summary, summary
//! index, delta superblocks and parts) is a GVariant in *normal form*. GLib's own reader
//! turns malformed children into default values; this module instead rejects anything
//! that is not exactly the normal form of a value of the requested type: bad or
//! non-monotonic frame offsets, a wider offset width than the container needs, trailing
//! or missing bytes, nonzero padding, fixed-size values of the wrong size, booleans other
//! than 0/1, strings without their NUL, with an interior NUL or with invalid UTF-8, and
//! variants whose embedded type string is not one complete definite type.
//!
//! The rules mirror GLib's `glib/gvariant-serialiser.c` (`gvs_calculate_total_size`,
//! `gvs_*_is_normal`), which libostree calls through `g_variant_is_normal_form`
//! (`src/libostree/ostree-core.c`, `validate_variant`). Framing offsets are
//! little-endian; integer *values* are returned as stored, and OSTree's big-endian fields
//! are read with the `_be` accessors.
//!
//! # Reading
//!
//! [`Value::from_bytes`] checks the whole buffer once (linear time, bounded nesting
//! depth [`MAX_DEPTH`]) and returns a borrowed [`Value`]: the bytes plus the type string.
//! Every `Value` handed out by this module is therefore known to be in normal form;
//! accessors still check the type they are asked for and return [`Error::WrongType`]
//! on a mismatch instead of panicking.
//!
//! ```
//! use cfsync_formats::gvariant::Value;
//! // ("hi", 7u32) serialized by GLib: "hi\0", one padding byte, u32 7, framing offset 3.
//! let bytes = [b'h', b'i', 0, 0, 7, 0, 0, 0, 3];
//! let v = Value::from_bytes(&bytes, "(su)")?;
//! let [s, n] = v.tuple_fields()?;
//! assert_eq!(s.as_str()?, "hi");
//! assert_eq!(n.as_u32_le()?, 7);
//! # Ok::<(), cfsync_formats::gvariant::Error>(())
//! ```
//!
//! Containers: [`Value::tuple_fields`] / [`Value::tuple_iter`] for `(...)` and `{..}`,
//! [`Value::array_iter`] / [`Value::array_len`] for `a*`, [`Value::as_maybe`] for `m*`,
//! [`Value::as_variant`] for `v`, [`Value::lookup`] for arrays of string-keyed dict
//! entries. Leaves: [`Value::as_str`], [`Value::as_bytes`] (`ay`), `as_u32_le`,
//! `as_u32_be`, `as_u64_le`, `as_u64_be` and friends.
//!
//! # Writing
//!
//! [`OwnedValue`] is a small value tree (the "builder"): `to_bytes()` writes it in normal
//! form, byte-identical to `g_variant_get_data` of the same value built with GLib, and
//! re-reads the result with the strict reader before returning it. Already-serialized
//! values can be embedded with [`OwnedValue::Raw`] ([`RawValue`], checked on creation).

use std::fmt;

/// Deepest container nesting accepted (GLib allows 128; OSTree formats need about 6).
pub const MAX_DEPTH: usize = 64;

/// Longest type string accepted, for caller-provided types and those inside a `v`.
pub const MAX_TYPE_LEN: usize = 1024;

/// Errors of the strict reader and of the writer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A caller-provided type string is not one complete, definite GVariant type.
    #[error("invalid gvariant type string {ty:?}")]
    InvalidType {
        /// The rejected type string.
        ty: String,
    },
    /// The type string stored inside a variant (`v`) is invalid, indefinite or too long.
    #[error("invalid type string inside gvariant variant at offset {offset}")]
    InvalidVariantType {
        /// Offset of the variant value in the parsed buffer.
        offset: usize,
    },
    /// The bytes are not the normal-form serialization of a value of type `ty`.
    #[error("malformed gvariant {ty} at offset {offset}: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
        /// The type being read.
        ty: String,
        /// Offset of the value in the parsed buffer.
        offset: usize,
    },
    /// Containers are nested deeper than [`MAX_DEPTH`].
    #[error("gvariant nested deeper than {MAX_DEPTH} at offset {offset}")]
    TooDeep {
        /// Offset of the value in the parsed buffer.
        offset: usize,
    },
    /// An accessor was used on a value of another type.
    #[error("gvariant type mismatch at offset {offset}: expected {expected}, found {actual}")]
    WrongType {
        /// What the accessor needs.
        expected: &'static str,
        /// The value's type string.
        actual: String,
        /// Offset of the value in the parsed buffer.
        offset: usize,
    },
}

// ---------------------------------------------------------------------------------------
// Type strings
// ---------------------------------------------------------------------------------------

/// Alignment (as a mask: 0, 1, 3 or 7) and fixed size of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Info {
    align: usize,
    fixed: Option<usize>,
}

const VARIABLE_1: Info = Info {
    align: 0,
    fixed: None,
};

fn is_basic(c: u8) -> bool {
    matches!(
        c,
        b'b' | b'y' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'h' | b'd' | b's' | b'o' | b'g'
    )
}

fn basic_info(c: u8) -> Option<Info> {
    let (align, fixed) = match c {
        b'b' | b'y' => (0, Some(1)),
        b'n' | b'q' => (1, Some(2)),
        b'i' | b'u' | b'h' => (3, Some(4)),
        b'x' | b't' | b'd' => (7, Some(8)),
        b's' | b'o' | b'g' => (0, None),
        b'v' => (7, None),
        _ => return None,
    };
    Some(Info { align, fixed })
}

/// End (exclusive) of the one complete definite type that starts at `pos`.
fn type_end(t: &[u8], pos: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let c = *t.get(pos)?;
    let next = pos.checked_add(1)?;
    match c {
        b'v' => Some(next),
        c if is_basic(c) => Some(next),
        b'a' | b'm' => type_end(t, next, depth.saturating_add(1)),
        b'(' => {
            let mut p = next;
            loop {
                if *t.get(p)? == b')' {
                    return p.checked_add(1);
                }
                p = type_end(t, p, depth.saturating_add(1))?;
            }
        }
        b'{' => {
            if !is_basic(*t.get(next)?) {
                return None;
            }
            let p = type_end(t, next.checked_add(1)?, depth.saturating_add(1))?;
            if *t.get(p)? != b'}' {
                return None;
            }
            p.checked_add(1)
        }
        _ => None,
    }
}

/// Whether `ty` is exactly one complete, definite GVariant type (no `*`, `?`, `r`),
/// at most [`MAX_TYPE_LEN`] bytes long and nested at most [`MAX_DEPTH`] deep.
pub fn is_valid_type(ty: &str) -> bool {
    ty.len() <= MAX_TYPE_LEN && type_end(ty.as_bytes(), 0, 0) == Some(ty.len())
}

/// Iterates over the member types of a tuple or dict-entry type string.
#[derive(Debug, Clone)]
struct Members<'t> {
    t: &'t str,
    pos: usize,
}

impl<'t> Members<'t> {
    /// `t` must be a valid tuple or dict-entry type.
    fn new(t: &'t str) -> Option<Self> {
        match t.as_bytes().first() {
            Some(b'(' | b'{') => Some(Members { t, pos: 1 }),
            _ => None,
        }
    }

    /// Whether the member at the current position is the last one.
    fn at_last(&self, end_of_current: usize) -> bool {
        matches!(self.t.as_bytes().get(end_of_current), Some(b')' | b'}'))
    }
}

impl<'t> Iterator for Members<'t> {
    type Item = &'t str;
    fn next(&mut self) -> Option<&'t str> {
        let b = self.t.as_bytes();
        if matches!(b.get(self.pos), Some(b')' | b'}') | None) {
            return None;
        }
        let end = type_end(b, self.pos, 0)?;
        let m = self.t.get(self.pos..end)?;
        self.pos = end;
        Some(m)
    }
}

fn align_up(pos: usize, mask: usize) -> Option<usize> {
    Some(pos.checked_add(mask)? & !mask)
}

/// Computes alignment and fixed size of a tuple from its members' infos.
/// Returns (info, number of framing offsets).
fn tuple_info(members: impl Iterator<Item = Option<Info>>) -> Option<(Info, usize)> {
    let mut align = 0usize;
    let mut off = 0usize;
    let mut fixed = true;
    let mut n_offsets = 0usize;
    let mut last_variable = false;
    for m in members {
        let m = m?;
        align |= m.align;
        if last_variable {
            n_offsets = n_offsets.checked_add(1)?;
        }
        match m.fixed {
            Some(sz) => {
                last_variable = false;
                if fixed {
                    off = align_up(off, m.align)?.checked_add(sz)?;
                }
            }
            None => {
                last_variable = true;
                fixed = false;
            }
        }
    }
    let fixed = if fixed {
        let sz = align_up(off, align)?;
        Some(if sz == 0 { 1 } else { sz })
    } else {
        None
    };
    Some((Info { align, fixed }, n_offsets))
}

/// Type info of one valid complete type, computed from its string.
fn info_of(t: &str) -> Option<Info> {
    let b = t.as_bytes();
    let c = *b.first()?;
    if let Some(i) = basic_info(c) {
        return Some(i);
    }
    match c {
        b'a' | b'm' => Some(Info {
            align: info_of(t.get(1..)?)?.align,
            fixed: None,
        }),
        b'(' | b'{' => Some(tuple_info(Members::new(t)?.map(info_of))?.0),
        _ => None,
    }
}

/// The fixed serialized size of type `ty`, or `None` for variable-size types or an
/// invalid type string.
pub fn fixed_size(ty: &str) -> Option<usize> {
    if !is_valid_type(ty) {
        return None;
    }
    info_of(ty)?.fixed
}

/// The alignment in bytes (1, 2, 4 or 8) of type `ty`, or `None` for an invalid type.
pub fn alignment(ty: &str) -> Option<usize> {
    if !is_valid_type(ty) {
        return None;
    }
    info_of(ty)?.align.checked_add(1)
}

// ---------------------------------------------------------------------------------------
// Framing core, shared by validation and the accessors
// ---------------------------------------------------------------------------------------

/// Width of framing offsets in a container of `len` bytes.
pub(crate) fn offset_size(len: usize) -> usize {
    if len == 0 {
        0
    } else if len <= 0xff {
        1
    } else if len <= 0xffff {
        2
    } else if u64::try_from(len).is_ok_and(|l| l <= 0xffff_ffff) {
        4
    } else {
        8
    }
}

/// Total container size GLib produces for `body` bytes followed by `n` offsets
/// (`gvs_calculate_total_size`).
fn total_size(body: usize, n: usize) -> Option<usize> {
    for (w, max) in [(1usize, 0xffu64), (2, 0xffff), (4, 0xffff_ffff)] {
        let total = body.checked_add(n.checked_mul(w)?)?;
        if u64::try_from(total).ok()? <= max {
            return Some(total);
        }
    }
    body.checked_add(n.checked_mul(8)?)
}

pub(crate) fn read_offset(data: &[u8], at: usize, osz: usize) -> Option<usize> {
    let b = data.get(at..at.checked_add(osz)?)?;
    let mut buf = [0u8; 8];
    for (d, s) in buf.iter_mut().zip(b) {
        *d = *s;
    }
    usize::try_from(u64::from_le_bytes(buf)).ok()
}

fn all_zero(data: &[u8], from: usize, to: usize) -> bool {
    data.get(from..to)
        .is_some_and(|p| p.iter().all(|&b| b == 0))
}

type FrameResult<T> = Result<T, &'static str>;

/// Framing of an array of variable-size elements.
#[derive(Debug, Clone, Copy)]
struct VarArrayFrame {
    n: usize,
    osz: usize,
    /// Where the offset table starts (= end of the last element).
    table: usize,
}

fn var_array_frame(data: &[u8]) -> FrameResult<VarArrayFrame> {
    if data.is_empty() {
        return Ok(VarArrayFrame {
            n: 0,
            osz: 0,
            table: 0,
        });
    }
    let len = data.len();
    let osz = offset_size(len);
    let last_at = len
        .checked_sub(osz)
        .ok_or("container too small for its offset")?;
    let table = read_offset(data, last_at, osz).ok_or("frame offset out of range")?;
    if table > last_at {
        return Err("frame offset out of range");
    }
    let table_len = len.checked_sub(table).ok_or("frame offset out of range")?;
    if table_len.checked_rem(osz) != Some(0) {
        return Err("offset table size is not a multiple of the offset width");
    }
    let n = table_len.checked_div(osz).ok_or("bad offset width")?;
    if total_size(table, n) != Some(len) {
        return Err("framing offsets wider than normal form");
    }
    Ok(VarArrayFrame { n, osz, table })
}

/// Range of element `i` of a variable-element array, given the end of element `i-1`.
fn var_array_child(
    data: &[u8],
    f: &VarArrayFrame,
    i: usize,
    prev_end: usize,
    align: usize,
) -> FrameResult<(usize, usize)> {
    let at = f
        .table
        .checked_add(i.checked_mul(f.osz).ok_or("offset overflow")?)
        .ok_or("offset overflow")?;
    let end = read_offset(data, at, f.osz).ok_or("frame offset out of range")?;
    let start = align_up(prev_end, align).ok_or("offset overflow")?;
    if start > end || end > f.table {
        return Err("frame offsets out of order or out of range");
    }
    if !all_zero(data, prev_end, start) {
        return Err("nonzero padding");
    }
    Ok((start, end))
}

/// Framing state of a tuple or dict entry being walked member by member.
#[derive(Debug, Clone)]
struct TupleFrame {
    len: usize,
    osz: usize,
    /// Start of the framing offsets (or `len` when there are none).
    table: usize,
    /// Framing offsets consumed so far.
    used: usize,
    /// End of the previous member.
    pos: usize,
    fixed: Option<usize>,
}

impl TupleFrame {
    fn new(data: &[u8], n_offsets: usize, fixed: Option<usize>) -> FrameResult<Self> {
        let len = data.len();
        if let Some(sz) = fixed {
            if len != sz {
                return Err("fixed-size tuple has the wrong size");
            }
            return Ok(TupleFrame {
                len,
                osz: 0,
                table: len,
                used: 0,
                pos: 0,
                fixed,
            });
        }
        let osz = offset_size(len);
        let table_len = n_offsets.checked_mul(osz).ok_or("offset overflow")?;
        let table = len
            .checked_sub(table_len)
            .ok_or("container too small for its framing offsets")?;
        if total_size(table, n_offsets) != Some(len) {
            return Err("framing offsets wider than normal form");
        }
        Ok(TupleFrame {
            len,
            osz,
            table,
            used: 0,
            pos: 0,
            fixed,
        })
    }

    fn member(&mut self, data: &[u8], info: Info, last: bool) -> FrameResult<(usize, usize)> {
        let start = align_up(self.pos, info.align).ok_or("offset overflow")?;
        if start > self.table {
            return Err("member starts beyond the end of the container");
        }
        if !all_zero(data, self.pos, start) {
            return Err("nonzero padding");
        }
        let end = match info.fixed {
            Some(sz) => start.checked_add(sz).ok_or("offset overflow")?,
            None if last => self.table,
            None => {
                self.used = self.used.checked_add(1).ok_or("offset overflow")?;
                let back = self.used.checked_mul(self.osz).ok_or("offset overflow")?;
                let at = self
                    .len
                    .checked_sub(back)
                    .ok_or("frame offset out of range")?;
                read_offset(data, at, self.osz).ok_or("frame offset out of range")?
            }
        };
        if end < start || end > self.table {
            return Err("frame offset out of range");
        }
        self.pos = end;
        Ok((start, end))
    }

    fn finish(&self, data: &[u8]) -> FrameResult<()> {
        match self.fixed {
            Some(sz) => {
                if self.pos > sz || !all_zero(data, self.pos, sz) {
                    return Err("nonzero padding at the end of a fixed-size tuple");
                }
                if self.pos == 0 && data.first() != Some(&0) {
                    return Err("unit value is not a single zero byte");
                }
            }
            None => {
                if self.pos != self.table {
                    return Err("bytes between the last member and the framing offsets");
                }
            }
        }
        Ok(())
    }
}

fn check_string(data: &[u8]) -> FrameResult<&str> {
    let (last, body) = data.split_last().ok_or("string without NUL terminator")?;
    if *last != 0 {
        return Err("string without NUL terminator");
    }
    if body.contains(&0) {
        return Err("interior NUL in string");
    }
    std::str::from_utf8(body).map_err(|_| "string is not valid UTF-8")
}

fn is_object_path(s: &str) -> bool {
    if s == "/" {
        return true;
    }
    let Some(rest) = s.strip_prefix('/') else {
        return false;
    };
    rest.split('/')
        .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

fn is_signature(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > 255 {
        return false;
    }
    let mut p = 0;
    while p < b.len() {
        match type_end(b, p, 0) {
            Some(e) => p = e,
            None => return false,
        }
    }
    true
}

/// Splits a variant's bytes into (child bytes, type string).
fn split_variant(data: &[u8]) -> Option<(&[u8], &str)> {
    let sep = data.iter().rposition(|&b| b == 0)?;
    let child = data.get(..sep)?;
    let ty = std::str::from_utf8(data.get(sep.checked_add(1)?..)?).ok()?;
    if !is_valid_type(ty) {
        return None;
    }
    Some((child, ty))
}

// ---------------------------------------------------------------------------------------
// Validation over a parsed type tree (linear in the data)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct TNode {
    kind: u8,
    info: Info,
    /// Index of the node after this subtree.
    next: usize,
    /// Framing offsets of a tuple.
    n_offsets: usize,
    /// Fixed-size value whose bytes need checking (booleans, padding, unit).
    needs_check: bool,
    /// Byte range of this node's type in the type string.
    span: (usize, usize),
}

struct Tree<'t> {
    ty: &'t str,
    nodes: Vec<TNode>,
}

impl<'t> Tree<'t> {
    fn parse(ty: &'t str) -> Option<Self> {
        if !is_valid_type(ty) {
            return None;
        }
        let mut nodes = Vec::with_capacity(ty.len().min(64));
        let end = build(ty.as_bytes(), 0, &mut nodes)?;
        (end == ty.len()).then_some(Tree { ty, nodes })
    }

    fn node(&self, i: usize) -> Option<&TNode> {
        self.nodes.get(i)
    }

    fn type_of(&self, n: &TNode) -> String {
        self.ty.get(n.span.0..n.span.1).unwrap_or("?").to_owned()
    }
}

/// Appends the subtree for the type at `pos`; returns the end position in the string.
fn build(t: &[u8], pos: usize, nodes: &mut Vec<TNode>) -> Option<usize> {
    let idx = nodes.len();
    let c = *t.get(pos)?;
    nodes.push(TNode {
        kind: c,
        info: VARIABLE_1,
        next: 0,
        n_offsets: 0,
        needs_check: false,
        span: (pos, pos),
    });
    let mut n_offsets = 0;
    let mut needs_check = false;
    let (info, end) = if let Some(i) = basic_info(c) {
        needs_check = c == b'b';
        (i, pos.checked_add(1)?)
    } else {
        match c {
            b'a' | b'm' => {
                let child = nodes.len();
                let end = build(t, pos.checked_add(1)?, nodes)?;
                let ci = nodes.get(child)?.info;
                (
                    Info {
                        align: ci.align,
                        fixed: None,
                    },
                    end,
                )
            }
            b'(' | b'{' => {
                let mut p = pos.checked_add(1)?;
                let mut infos = Vec::new();
                let mut padded = false;
                let mut off = 0usize;
                while *t.get(p)? != b')' && *t.get(p)? != b'}' {
                    let child = nodes.len();
                    p = build(t, p, nodes)?;
                    let cn = nodes.get(child)?;
                    if let Some(sz) = cn.info.fixed {
                        let start = align_up(off, cn.info.align)?;
                        padded |= start != off;
                        needs_check |= cn.needs_check;
                        off = start.checked_add(sz)?;
                    }
                    infos.push(cn.info);
                }
                let (info, n) = tuple_info(infos.iter().map(|i| Some(*i)))?;
                n_offsets = n;
                if let Some(sz) = info.fixed {
                    needs_check |= padded || sz != off;
                }
                (info, p.checked_add(1)?)
            }
            _ => return None,
        }
    };
    let next = nodes.len();
    let node = nodes.get_mut(idx)?;
    node.info = info;
    node.next = next;
    node.n_offsets = n_offsets;
    node.needs_check = needs_check;
    node.span = (pos, end);
    Some(end)
}

struct Validator<'t> {
    tree: Tree<'t>,
}

impl Validator<'_> {
    fn malformed(&self, n: &TNode, what: &'static str, offset: usize) -> Error {
        Error::Malformed {
            what,
            ty: self.tree.type_of(n),
            offset,
        }
    }

    fn node(&self, i: usize) -> Result<&TNode, Error> {
        self.tree.node(i).ok_or(Error::InvalidType {
            ty: self.tree.ty.to_owned(),
        })
    }

    /// Validates `data` (at absolute offset `base`) as node `idx`.
    fn check(&self, idx: usize, data: &[u8], base: usize, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { offset: base });
        }
        let n = self.node(idx)?;
        if let Some(sz) = n.info.fixed {
            if data.len() != sz {
                return Err(self.malformed(n, "fixed-size value has the wrong size", base));
            }
            if n.needs_check {
                self.check_fixed(idx, data, base, depth)?;
            }
            return Ok(());
        }
        let child = idx.checked_add(1).ok_or(Error::TooDeep { offset: base })?;
        let sub_depth = depth.saturating_add(1);
        match n.kind {
            b's' | b'o' | b'g' => {
                let s = check_string(data).map_err(|w| self.malformed(n, w, base))?;
                if n.kind == b'o' && !is_object_path(s) {
                    return Err(self.malformed(n, "invalid object path", base));
                }
                if n.kind == b'g' && !is_signature(s) {
                    return Err(self.malformed(n, "invalid signature", base));
                }
                Ok(())
            }
            b'v' => {
                let (cdata, cty) =
                    split_variant(data).ok_or(Error::InvalidVariantType { offset: base })?;
                let sub = Validator {
                    tree: Tree::parse(cty).ok_or(Error::InvalidVariantType { offset: base })?,
                };
                sub.check(0, cdata, base, sub_depth)
            }
            b'm' => {
                let cn = self.node(child)?;
                if data.is_empty() {
                    return Ok(());
                }
                match cn.info.fixed {
                    Some(_) => self.check(child, data, base, sub_depth),
                    None => match data.split_last() {
                        Some((0, body)) => self.check(child, body, base, sub_depth),
                        _ => Err(self.malformed(n, "maybe value without its zero byte", base)),
                    },
                }
            }
            b'a' => {
                let cn = self.node(child)?;
                if let Some(sz) = cn.info.fixed {
                    if data.len().checked_rem(sz) != Some(0) {
                        return Err(self.malformed(
                            n,
                            "array size is not a multiple of the element size",
                            base,
                        ));
                    }
                    if cn.needs_check {
                        for (i, chunk) in data.chunks_exact(sz).enumerate() {
                            let off = base.saturating_add(i.saturating_mul(sz));
                            self.check(child, chunk, off, sub_depth)?;
                        }
                    }
                    return Ok(());
                }
                let f = var_array_frame(data).map_err(|w| self.malformed(n, w, base))?;
                let mut prev = 0;
                for i in 0..f.n {
                    let (s, e) = var_array_child(data, &f, i, prev, cn.info.align)
                        .map_err(|w| self.malformed(n, w, base))?;
                    let cdata = data
                        .get(s..e)
                        .ok_or_else(|| self.malformed(n, "frame offset out of range", base))?;
                    self.check(child, cdata, base.saturating_add(s), sub_depth)?;
                    prev = e;
                }
                Ok(())
            }
            b'(' | b'{' => self.check_tuple(idx, data, base, depth),
            _ => Err(Error::InvalidType {
                ty: self.tree.ty.to_owned(),
            }),
        }
    }

    fn check_tuple(&self, idx: usize, data: &[u8], base: usize, depth: usize) -> Result<(), Error> {
        let n = self.node(idx)?;
        let mut frame = TupleFrame::new(data, n.n_offsets, n.info.fixed)
            .map_err(|w| self.malformed(n, w, base))?;
        let mut c = idx.checked_add(1).ok_or(Error::TooDeep { offset: base })?;
        while c < n.next {
            let cn = self.node(c)?;
            let last = cn.next >= n.next;
            let (s, e) = frame
                .member(data, cn.info, last)
                .map_err(|w| self.malformed(n, w, base))?;
            let cdata = data
                .get(s..e)
                .ok_or_else(|| self.malformed(n, "frame offset out of range", base))?;
            self.check(c, cdata, base.saturating_add(s), depth.saturating_add(1))?;
            c = cn.next;
        }
        frame.finish(data).map_err(|w| self.malformed(n, w, base))
    }

    fn check_fixed(&self, idx: usize, data: &[u8], base: usize, depth: usize) -> Result<(), Error> {
        let n = self.node(idx)?;
        match n.kind {
            b'b' => match data {
                [0 | 1] => Ok(()),
                _ => Err(self.malformed(n, "boolean is not 0 or 1", base)),
            },
            b'(' | b'{' => self.check_tuple(idx, data, base, depth),
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Borrowed values
// ---------------------------------------------------------------------------------------

/// A borrowed GVariant value in normal form: its bytes and its type string.
///
/// Only this module creates `Value`s, always from checked bytes, so every accessor
/// works on normal-form data; accessors return [`Error::WrongType`] when asked for a
/// type the value does not have.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    data: &'a [u8],
    ty: &'a str,
    offset: usize,
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("ty", &self.ty)
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .finish()
    }
}

const PLACEHOLDER: Value<'static> = Value {
    data: &[0],
    ty: "()",
    offset: 0,
};

macro_rules! fixed_accessor {
    ($(#[$doc:meta])* $name:ident, $t:ty, $code:literal, $conv:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> Result<$t, Error> {
            let b: [u8; std::mem::size_of::<$t>()] = self.fixed_bytes($code)?;
            Ok(<$t>::$conv(b))
        }
    };
}

impl<'a> Value<'a> {
    /// Checks that `data` is the normal-form serialization of a value of type `ty` and
    /// returns a view of it. The whole buffer is checked, including nested variants.
    ///
    /// Allocation for hostile input: the view borrows `data`; the check builds a type
    /// tree of O(`ty.len()`) nodes and, for each variant on the current nesting path (at
    /// most [`MAX_DEPTH`]), one for its embedded type (at most [`MAX_TYPE_LEN`] bytes) —
    /// bounded independently of `data.len()`. Errors copy a type string.
    pub fn from_bytes(data: &'a [u8], ty: &'a str) -> Result<Self, Error> {
        let tree = Tree::parse(ty).ok_or_else(|| Error::InvalidType { ty: ty.to_owned() })?;
        Validator { tree }.check(0, data, 0, 0)?;
        Ok(Value {
            data,
            ty,
            offset: 0,
        })
    }

    /// The serialized bytes of this value.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The type string of this value.
    pub fn type_str(&self) -> &'a str {
        self.ty
    }

    /// Offset of this value in the buffer given to [`Value::from_bytes`].
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn wrong(&self, expected: &'static str) -> Error {
        Error::WrongType {
            expected,
            actual: self.ty.to_owned(),
            offset: self.offset,
        }
    }

    fn malformed(&self, what: &'static str) -> Error {
        Error::Malformed {
            what,
            ty: self.ty.to_owned(),
            offset: self.offset,
        }
    }

    /// Fails with [`Error::WrongType`] unless this value has type `ty`.
    pub fn expect_type(&self, ty: &'static str) -> Result<(), Error> {
        if self.ty == ty {
            Ok(())
        } else {
            Err(self.wrong(ty))
        }
    }

    fn child(&self, start: usize, end: usize, ty: &'a str) -> Result<Value<'a>, Error> {
        let data = self
            .data
            .get(start..end)
            .ok_or_else(|| self.malformed("child out of range"))?;
        Ok(Value {
            data,
            ty,
            offset: self.offset.saturating_add(start),
        })
    }

    fn fixed_bytes<const N: usize>(&self, code: &'static str) -> Result<[u8; N], Error> {
        if self.ty != code {
            return Err(self.wrong(code));
        }
        self.data
            .try_into()
            .map_err(|_| self.malformed("fixed-size value has the wrong size"))
    }

    /// A boolean (`b`).
    pub fn as_bool(&self) -> Result<bool, Error> {
        let [b] = self.fixed_bytes::<1>("b")?;
        match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.malformed("boolean is not 0 or 1")),
        }
    }

    /// A byte (`y`).
    pub fn as_u8(&self) -> Result<u8, Error> {
        let [b] = self.fixed_bytes::<1>("y")?;
        Ok(b)
    }

    fixed_accessor!(
        /// A `q` stored little-endian (GVariant's host order on every OSTree writer).
        as_u16_le, u16, "q", from_le_bytes);
    fixed_accessor!(
        /// An `n` stored little-endian.
        as_i16_le, i16, "n", from_le_bytes);
    fixed_accessor!(
        /// A `u` stored little-endian (host order: e.g. delta part counts).
        as_u32_le, u32, "u", from_le_bytes);
    fixed_accessor!(
        /// A `u` that OSTree byte-swapped to big-endian (uid, gid, mode).
        as_u32_be, u32, "u", from_be_bytes);
    fixed_accessor!(
        /// An `i` stored little-endian.
        as_i32_le, i32, "i", from_le_bytes);
    fixed_accessor!(
        /// A `t` stored little-endian (host order: e.g. summary commit size).
        as_u64_le, u64, "t", from_le_bytes);
    fixed_accessor!(
        /// A `t` that OSTree byte-swapped to big-endian (timestamps, file sizes).
        as_u64_be, u64, "t", from_be_bytes);
    fixed_accessor!(
        /// An `x` stored little-endian.
        as_i64_le, i64, "x", from_le_bytes);
    fixed_accessor!(
        /// A `d` stored little-endian.
        as_f64_le, f64, "d", from_le_bytes);

    /// A string (`s`, `o` or `g`), without its NUL terminator.
    pub fn as_str(&self) -> Result<&'a str, Error> {
        if !matches!(self.ty, "s" | "o" | "g") {
            return Err(self.wrong("s"));
        }
        check_string(self.data).map_err(|w| self.malformed(w))
    }

    /// A byte array (`ay`).
    pub fn as_bytes(&self) -> Result<&'a [u8], Error> {
        if self.ty != "ay" {
            return Err(self.wrong("ay"));
        }
        Ok(self.data)
    }

    /// A NUL-terminated byte string stored as `ay` (GLib's "bytestring"), without the
    /// NUL. Fails if the last byte is not NUL or if another NUL occurs.
    pub fn as_bytestring(&self) -> Result<&'a [u8], Error> {
        let b = self.as_bytes()?;
        match b.split_last() {
            Some((0, body)) if !body.contains(&0) => Ok(body),
            _ => Err(self.malformed("byte string is not NUL-terminated exactly once")),
        }
    }

    /// The value inside a variant (`v`), with its own type string.
    pub fn as_variant(&self) -> Result<Value<'a>, Error> {
        if self.ty != "v" {
            return Err(self.wrong("v"));
        }
        let (data, ty) = split_variant(self.data).ok_or(Error::InvalidVariantType {
            offset: self.offset,
        })?;
        Ok(Value {
            data,
            ty,
            offset: self.offset,
        })
    }

    /// The content of a maybe (`m*`): `None` for Nothing.
    pub fn as_maybe(&self) -> Result<Option<Value<'a>>, Error> {
        let ety = match self.ty.strip_prefix('m') {
            Some(t) => t,
            None => return Err(self.wrong("m*")),
        };
        if self.data.is_empty() {
            return Ok(None);
        }
        let info = info_of(ety).ok_or_else(|| self.wrong("m*"))?;
        let end = match info.fixed {
            Some(_) => self.data.len(),
            None => self
                .data
                .len()
                .checked_sub(1)
                .ok_or_else(|| self.malformed("empty maybe"))?,
        };
        Ok(Some(self.child(0, end, ety)?))
    }

    /// Number of elements of an array (`a*`).
    pub fn array_len(&self) -> Result<usize, Error> {
        Ok(self.array_iter()?.len())
    }

    /// Iterates over the elements of an array (`a*`).
    pub fn array_iter(&self) -> Result<ArrayIter<'a>, Error> {
        let ety = self.ty.strip_prefix('a').ok_or_else(|| self.wrong("a*"))?;
        let info = info_of(ety).ok_or_else(|| self.wrong("a*"))?;
        let kind = match info.fixed {
            Some(sz) => {
                if self.data.len().checked_rem(sz) != Some(0) {
                    return Err(self.malformed("array size is not a multiple of the element size"));
                }
                ArrayKind::Fixed { size: sz }
            }
            None => ArrayKind::Variable {
                frame: var_array_frame(self.data).map_err(|w| self.malformed(w))?,
                prev_end: 0,
            },
        };
        let n = match kind {
            ArrayKind::Fixed { size } => self.data.len().checked_div(size).unwrap_or(0),
            ArrayKind::Variable { frame, .. } => frame.n,
        };
        Ok(ArrayIter {
            array: *self,
            ety,
            align: info.align,
            kind,
            next: 0,
            n,
        })
    }

    /// Iterates over the members of a tuple (`(...)`) or dict entry (`{..}`).
    pub fn tuple_iter(&self) -> Result<TupleIter<'a>, Error> {
        let members = Members::new(self.ty).ok_or_else(|| self.wrong("tuple"))?;
        let (info, n_offsets) =
            tuple_info(members.clone().map(info_of)).ok_or_else(|| Error::InvalidType {
                ty: self.ty.to_owned(),
            })?;
        let frame =
            TupleFrame::new(self.data, n_offsets, info.fixed).map_err(|w| self.malformed(w))?;
        Ok(TupleIter {
            tuple: *self,
            members,
            frame,
            failed: false,
        })
    }

    /// The members of a tuple or dict entry with exactly `N` members.
    pub fn tuple_fields<const N: usize>(&self) -> Result<[Value<'a>; N], Error> {
        let mut out = [PLACEHOLDER; N];
        let mut it = self.tuple_iter()?;
        for slot in out.iter_mut() {
            *slot = it
                .next()
                .ok_or_else(|| self.wrong("tuple with more members"))??;
        }
        match it.next() {
            None => Ok(out),
            Some(Err(e)) => Err(e),
            Some(Ok(_)) => Err(self.wrong("tuple with fewer members")),
        }
    }

    /// For an array of dict entries with a string key (`a{s*}`): the value of the first
    /// entry whose key equals `key`.
    pub fn lookup(&self, key: &str) -> Result<Option<Value<'a>>, Error> {
        if !self.ty.starts_with("a{s") {
            return Err(self.wrong("a{s*}"));
        }
        for entry in self.array_iter()? {
            let [k, v] = entry?.tuple_fields()?;
            if k.as_str()? == key {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// An owned copy of this value, for embedding into an [`OwnedValue`].
    pub fn to_owned_value(&self) -> OwnedValue {
        OwnedValue::Raw(self.to_raw())
    }

    /// An owned copy of this value's type and bytes.
    pub fn to_raw(&self) -> RawValue {
        RawValue {
            ty: self.ty.to_owned(),
            bytes: self.data.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum ArrayKind {
    Fixed {
        size: usize,
    },
    Variable {
        frame: VarArrayFrame,
        prev_end: usize,
    },
}

/// Iterator over the elements of an array, from [`Value::array_iter`].
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    array: Value<'a>,
    ety: &'a str,
    align: usize,
    kind: ArrayKind,
    next: usize,
    n: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Result<Value<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.n {
            return None;
        }
        let i = self.next;
        self.next = self.next.saturating_add(1);
        let range = match &mut self.kind {
            ArrayKind::Fixed { size } => i
                .checked_mul(*size)
                .and_then(|s| Some((s, s.checked_add(*size)?)))
                .ok_or("offset overflow"),
            ArrayKind::Variable { frame, prev_end } => {
                var_array_child(self.array.data, frame, i, *prev_end, self.align).inspect(|r| {
                    *prev_end = r.1;
                })
            }
        };
        let item = match range {
            Ok((s, e)) => self.array.child(s, e, self.ety),
            Err(w) => Err(self.array.malformed(w)),
        };
        if item.is_err() {
            self.next = self.n;
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.n.saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for ArrayIter<'_> {}

/// Iterator over the members of a tuple, from [`Value::tuple_iter`].
#[derive(Debug, Clone)]
pub struct TupleIter<'a> {
    tuple: Value<'a>,
    members: Members<'a>,
    frame: TupleFrame,
    failed: bool,
}

impl<'a> Iterator for TupleIter<'a> {
    type Item = Result<Value<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let Some(mty) = self.members.next() else {
            if let Err(w) = self.frame.finish(self.tuple.data) {
                self.failed = true;
                return Some(Err(self.tuple.malformed(w)));
            }
            self.failed = true;
            return None;
        };
        let last = self.members.at_last(self.members.pos);
        let item = match info_of(mty) {
            None => Err(Error::InvalidType {
                ty: self.tuple.ty.to_owned(),
            }),
            Some(info) => match self.frame.member(self.tuple.data, info, last) {
                Ok((s, e)) => self.tuple.child(s, e, mty),
                Err(w) => Err(self.tuple.malformed(w)),
            },
        };
        if item.is_err() {
            self.failed = true;
        }
        Some(item)
    }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

/// An already-serialized normal-form value and its type, checked on creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawValue {
    ty: String,
    bytes: Vec<u8>,
}

impl RawValue {
    /// Checks `bytes` as a normal-form value of type `ty`.
    pub fn new(ty: impl Into<String>, bytes: Vec<u8>) -> Result<Self, Error> {
        let ty = ty.into();
        Value::from_bytes(&bytes, &ty)?;
        Ok(RawValue { ty, bytes })
    }

    /// For values that are valid by construction (fixed-size integers, `ay`): no check.
    pub(crate) fn trusted(ty: &str, bytes: Vec<u8>) -> Self {
        debug_assert!(Value::from_bytes(&bytes, ty).is_ok());
        RawValue {
            ty: ty.to_owned(),
            bytes,
        }
    }

    /// The type string.
    pub fn type_str(&self) -> &str {
        &self.ty
    }

    /// The serialized bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A borrowed view (always succeeds: the bytes were checked on creation).
    pub fn as_value(&self) -> Result<Value<'_>, Error> {
        Value::from_bytes(&self.bytes, &self.ty)
    }
}

/// A GVariant value to serialize (the writer side, GLib's `GVariantBuilder`).
///
/// Integers are written little-endian, as GLib does on the hosts OSTree runs on; for
/// OSTree's byte-swapped fields use [`OwnedValue::u32_be`] and [`OwnedValue::u64_be`],
/// which store the swapped value so that the bytes come out big-endian.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OwnedValue {
    /// `b`
    Bool(bool),
    /// `y`
    Byte(u8),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `d`
    F64(f64),
    /// `s` (must not contain NUL)
    Str(String),
    /// `o`
    ObjectPath(String),
    /// `g`
    Signature(String),
    /// `ay`, written as one block of bytes
    Bytes(Vec<u8>),
    /// `v`
    Variant(Box<OwnedValue>),
    /// `m<elem>`
    Maybe {
        /// Element type string.
        elem: String,
        /// `None` for Nothing.
        value: Option<Box<OwnedValue>>,
    },
    /// `a<elem>`; every item must have type `elem`.
    Array {
        /// Element type string.
        elem: String,
        /// The elements.
        items: Vec<OwnedValue>,
    },
    /// `(...)`
    Tuple(Vec<OwnedValue>),
    /// `{kv}`
    DictEntry(Box<OwnedValue>, Box<OwnedValue>),
    /// A value that is already serialized.
    Raw(RawValue),
}

impl OwnedValue {
    /// A `u` whose bytes are big-endian (uid, gid, mode in OSTree objects).
    pub fn u32_be(v: u32) -> Self {
        OwnedValue::U32(u32::from_le_bytes(v.to_be_bytes()))
    }

    /// A `t` whose bytes are big-endian (commit timestamp, archive file size).
    pub fn u64_be(v: u64) -> Self {
        OwnedValue::U64(u64::from_le_bytes(v.to_be_bytes()))
    }

    /// A `s`.
    pub fn str(s: impl Into<String>) -> Self {
        OwnedValue::Str(s.into())
    }

    /// An `ay`.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        OwnedValue::Bytes(b.into())
    }

    /// An array of type `a<elem>`.
    pub fn array(elem: impl Into<String>, items: Vec<OwnedValue>) -> Self {
        OwnedValue::Array {
            elem: elem.into(),
            items,
        }
    }

    /// A dict entry `{kv}`.
    pub fn entry(k: OwnedValue, v: OwnedValue) -> Self {
        OwnedValue::DictEntry(Box::new(k), Box::new(v))
    }

    /// The type string of this value.
    pub fn type_string(&self) -> String {
        let mut s = String::new();
        self.write_type(&mut s);
        s
    }

    fn write_type(&self, s: &mut String) {
        let code = match self {
            OwnedValue::Bool(_) => "b",
            OwnedValue::Byte(_) => "y",
            OwnedValue::I16(_) => "n",
            OwnedValue::U16(_) => "q",
            OwnedValue::I32(_) => "i",
            OwnedValue::U32(_) => "u",
            OwnedValue::I64(_) => "x",
            OwnedValue::U64(_) => "t",
            OwnedValue::F64(_) => "d",
            OwnedValue::Str(_) => "s",
            OwnedValue::ObjectPath(_) => "o",
            OwnedValue::Signature(_) => "g",
            OwnedValue::Bytes(_) => "ay",
            OwnedValue::Variant(_) => "v",
            OwnedValue::Maybe { elem, .. } => {
                s.push('m');
                elem
            }
            OwnedValue::Array { elem, .. } => {
                s.push('a');
                elem
            }
            OwnedValue::Tuple(items) => {
                s.push('(');
                for i in items {
                    i.write_type(s);
                }
                ")"
            }
            OwnedValue::DictEntry(k, v) => {
                s.push('{');
                k.write_type(s);
                v.write_type(s);
                "}"
            }
            OwnedValue::Raw(r) => &r.ty,
        };
        s.push_str(code);
    }

    fn info(&self) -> Info {
        let i = match self {
            OwnedValue::Maybe { elem, .. } | OwnedValue::Array { elem, .. } => {
                info_of(elem).map(|i| Info {
                    align: i.align,
                    fixed: None,
                })
            }
            OwnedValue::Tuple(items) => {
                tuple_info(items.iter().map(|i| Some(i.info()))).map(|t| t.0)
            }
            OwnedValue::DictEntry(k, v) => {
                tuple_info([Some(k.info()), Some(v.info())].into_iter()).map(|t| t.0)
            }
            OwnedValue::Raw(r) => info_of(&r.ty),
            other => {
                let mut s = String::new();
                other.write_type(&mut s);
                info_of(&s)
            }
        };
        i.unwrap_or(VARIABLE_1)
    }

    /// Serializes in normal form and checks the result with the strict reader
    /// (which catches, e.g., a string with an interior NUL or array items whose type
    /// differs from the array's element type).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.write(&mut out);
        let ty = self.type_string();
        Value::from_bytes(&out, &ty)?;
        Ok(out)
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            OwnedValue::Bool(b) => out.push(u8::from(*b)),
            OwnedValue::Byte(b) => out.push(*b),
            OwnedValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::Str(s) | OwnedValue::ObjectPath(s) | OwnedValue::Signature(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            OwnedValue::Bytes(b) => out.extend_from_slice(b),
            OwnedValue::Raw(r) => out.extend_from_slice(&r.bytes),
            OwnedValue::Variant(v) => {
                v.write(out);
                out.push(0);
                v.write_type_bytes(out);
            }
            OwnedValue::Maybe { value, .. } => {
                if let Some(v) = value {
                    v.write(out);
                    if v.info().fixed.is_none() {
                        out.push(0);
                    }
                }
            }
            OwnedValue::Array { elem, items } => {
                let einfo = info_of(elem).unwrap_or(VARIABLE_1);
                let start = out.len();
                let mut ends = Vec::new();
                for item in items {
                    pad(out, start, einfo.align);
                    item.write(out);
                    if einfo.fixed.is_none() {
                        ends.push(out.len().wrapping_sub(start));
                    }
                }
                write_offsets(out, start, &ends);
            }
            OwnedValue::Tuple(items) => write_tuple(out, items.iter()),
            OwnedValue::DictEntry(k, v) => write_tuple(out, [&**k, &**v].into_iter()),
        }
    }

    fn write_type_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.type_string().as_bytes());
    }
}

fn pad(out: &mut Vec<u8>, start: usize, mask: usize) {
    while out.len().wrapping_sub(start) & mask != 0 {
        out.push(0);
    }
}

fn write_offsets(out: &mut Vec<u8>, start: usize, ends: &[usize]) {
    if ends.is_empty() {
        return;
    }
    let body = out.len().wrapping_sub(start);
    let osz = total_size(body, ends.len()).map_or(8, offset_size);
    for e in ends {
        out.extend((*e as u64).to_le_bytes().iter().take(osz));
    }
}

fn write_tuple<'v>(out: &mut Vec<u8>, items: impl ExactSizeIterator<Item = &'v OwnedValue>) {
    let start = out.len();
    let n = items.len();
    let mut align = 0;
    let mut fixed = true;
    let mut ends = Vec::new();
    for (i, item) in items.enumerate() {
        let info = item.info();
        align |= info.align;
        pad(out, start, info.align);
        item.write(out);
        if info.fixed.is_none() {
            fixed = false;
            if i.saturating_add(1) < n {
                ends.push(out.len().wrapping_sub(start));
            }
        }
    }
    if fixed {
        if out.len() == start {
            out.push(0);
        }
        pad(out, start, align);
    } else {
        ends.reverse();
        write_offsets(out, start, &ends);
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
mod tests {
    use super::*;

    fn ok(data: &[u8], ty: &'static str) -> Value<'static> {
        let d: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
        Value::from_bytes(d, ty).unwrap_or_else(|e| panic!("{ty} {data:?}: {e}"))
    }

    fn bad(data: &[u8], ty: &str) {
        assert!(
            Value::from_bytes(data, ty).is_err(),
            "{ty} {data:?} should be rejected"
        );
    }

    #[test]
    fn type_strings() {
        for t in [
            "s",
            "ay",
            "a{sv}",
            "(a(s(taya{sv}))a{sv})",
            "()",
            "(a{sv}aya(say)sstayay)",
            "mv",
            "maay",
        ] {
            assert!(is_valid_type(t), "{t}");
        }
        for t in [
            "", "a", "(", "(s", "{vs}", "{s}", "{sss}", "r", "*", "?", "ss", "(s))", "z",
        ] {
            assert!(!is_valid_type(t), "{t}");
        }
        assert!(!is_valid_type(&"a".repeat(MAX_DEPTH + 2).to_string()));
        assert_eq!(fixed_size("(yt)"), Some(16));
        assert_eq!(fixed_size("(ty)"), Some(16));
        assert_eq!(fixed_size("()"), Some(1));
        assert_eq!(fixed_size("(uuu)"), Some(12));
        assert_eq!(fixed_size("(ayu)"), None);
        assert_eq!(alignment("(yt)"), Some(8));
        assert_eq!(alignment("as"), Some(1));
    }

    #[test]
    fn strings() {
        assert_eq!(ok(b"hi\0", "s").as_str().unwrap(), "hi");
        assert_eq!(ok(b"\0", "s").as_str().unwrap(), "");
        bad(b"hi", "s");
        bad(b"", "s");
        bad(b"h\0i\0", "s");
        bad(b"\xff\0", "s");
        ok(b"/a/b_1\0", "o");
        bad(b"/a/\0", "o");
        bad(b"a\0", "o");
        ok(b"a{sv}s\0", "g");
        bad(b"a{\0", "g");
    }

    #[test]
    fn fixed_values() {
        assert!(ok(&[1], "b").as_bool().unwrap());
        bad(&[2], "b");
        bad(&[1, 0], "u");
        bad(&[], "u");
        assert_eq!(ok(&[0, 0, 0, 5], "u").as_u32_be().unwrap(), 5);
        assert_eq!(ok(&[5, 0, 0, 0], "u").as_u32_le().unwrap(), 5);
        // (yt): y, 7 padding bytes, t
        let mut yt = vec![1u8, 0, 0, 0, 0, 0, 0, 0];
        yt.extend_from_slice(&9u64.to_le_bytes());
        let [y, t] = ok(&yt, "(yt)").tuple_fields().unwrap();
        assert_eq!(y.as_u8().unwrap(), 1);
        assert_eq!(t.as_u64_le().unwrap(), 9);
        let mut nz = yt.clone();
        nz[3] = 1;
        bad(&nz, "(yt)");
        // (ty): trailing padding must be zero
        let mut ty = 9u64.to_le_bytes().to_vec();
        ty.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        ok(&ty, "(ty)");
        let mut ty2 = ty.clone();
        ty2[15] = 7;
        bad(&ty2, "(ty)");
        ok(&[0], "()");
        bad(&[1], "()");
        bad(&[], "()");
        // wrong type asked
        assert!(ok(&[0, 0, 0, 5], "u").as_u64_be().is_err());
    }

    #[test]
    fn arrays() {
        let v = ok(b"a\0bc\0\x02\x05", "as");
        let items: Vec<_> = v
            .array_iter()
            .unwrap()
            .map(|x| x.unwrap().as_str().unwrap())
            .collect();
        assert_eq!(items, ["a", "bc"]);
        ok(b"", "as");
        bad(b"a\0bc\0\x05\x02", "as"); // offsets decreasing
        bad(b"a\0bc\0\x02\x09", "as"); // offset beyond table
        bad(b"a\0bc\0\x02\x05\x00", "as"); // last offset 0 -> table too large/bad
        bad(b"a\0", "as"); // no offsets
        bad(&[1, 2, 3], "au"); // not a multiple
        ok(&[1, 0, 0, 0, 2, 0, 0, 0], "au");
        bad(&[1, 2], "ab");
        // aay with empty elements
        let v = ok(&[0, 0], "aay");
        assert_eq!(v.array_len().unwrap(), 2);
        // misaligned (non-zero padding) children: a(ut)? use at-aligned variable tuples a(ts)
        let mut e = 1u64.to_le_bytes().to_vec();
        e.extend_from_slice(b"x\0"); // (ts) = 10 bytes, no offsets (s last)
        let one = OwnedValue::Tuple(vec![OwnedValue::U64(1), OwnedValue::str("x")]);
        let arr = OwnedValue::array("(ts)", vec![one.clone(), one])
            .to_bytes()
            .unwrap();
        assert_eq!(&arr[..10], &e[..]);
        assert_eq!(&arr[10..16], &[0u8; 6]);
        let mut bad_pad = arr.clone();
        bad_pad[12] = 1;
        bad(&bad_pad, "a(ts)");
        ok(&arr, "a(ts)");
    }

    #[test]
    fn offset_width_must_be_minimal() {
        // ["a"] as 'as' with 1-byte offset: "a\0" + 0x02
        ok(b"a\0\x02", "as");
        // same with a 2-byte offset: size 4 <= 255 so width would be 1 -> offsets read as
        // [0x02, 0x00] -> last offset 0 -> table 4 bytes -> n=4 and elements bogus
        bad(b"a\0\x02\x00", "as");
        // A body of 254 bytes + one element needs 1-byte offsets (255 total). Encoding it
        // with 2-byte offsets gives 256 bytes, which is consistent but not normal.
        let s = "x".repeat(253);
        let one = OwnedValue::array("s", vec![OwnedValue::str(s.clone())])
            .to_bytes()
            .unwrap();
        assert_eq!(one.len(), 255);
        let mut wide = one[..254].to_vec();
        wide.extend_from_slice(&254u16.to_le_bytes());
        bad(&wide, "as");
    }

    #[test]
    fn tuples_and_variants() {
        // (su) "hi" 7
        let v = ok(&[b'h', b'i', 0, 0, 7, 0, 0, 0, 3], "(su)");
        assert_eq!(v.tuple_fields::<2>().unwrap()[1].as_u32_le().unwrap(), 7);
        bad(&[b'h', b'i', 0, 0, 7, 0, 0, 0, 3, 0], "(su)"); // trailing byte
        bad(&[b'h', b'i', 0, 1, 7, 0, 0, 0, 3], "(su)"); // nonzero padding
        bad(&[b'h', b'i', 0, 0, 7, 0, 0, 0, 9], "(su)"); // offset out of range
        assert!(v.tuple_fields::<3>().is_err());
        // variant
        let v = ok(b"hi\0\0s", "v");
        let inner = v.as_variant().unwrap();
        assert_eq!(inner.type_str(), "s");
        assert_eq!(inner.as_str().unwrap(), "hi");
        bad(b"hi\0s", "v"); // child "hi" has no NUL
        bad(b"hi\0\0ss", "v"); // two types
        bad(b"hi\0\0", "v"); // empty type
        bad(b"hi", "v");
        bad(&[1, 0, 0, 0, 1, 0, b'u'], "v"); // fixed size mismatch (5 bytes for u)
        assert_eq!(
            ok(&[1, 0, 0, 0, 0, b'u'], "v")
                .as_variant()
                .unwrap()
                .as_u32_le()
                .unwrap(),
            1
        );
        // maybe
        assert!(ok(&[], "ms").as_maybe().unwrap().is_none());
        assert_eq!(
            ok(b"a\0\0", "ms")
                .as_maybe()
                .unwrap()
                .unwrap()
                .as_str()
                .unwrap(),
            "a"
        );
        bad(b"a\0", "ms");
        bad(&[1, 0, 0], "mu");
        ok(&[1, 0, 0, 0], "mu");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        // A chain of variants each holding a variant.
        let mut v = OwnedValue::Byte(1);
        for _ in 0..(MAX_DEPTH + 5) {
            v = OwnedValue::Variant(Box::new(v));
        }
        let mut out = Vec::new();
        v.write(&mut out);
        assert!(matches!(
            Value::from_bytes(&out, "v"),
            Err(Error::TooDeep { .. })
        ));
    }

    #[test]
    fn writer_matches_reader() {
        let meta = OwnedValue::array(
            "{sv}",
            vec![
                OwnedValue::entry(
                    OwnedValue::str("version"),
                    OwnedValue::Variant(Box::new(OwnedValue::str("2"))),
                ),
                OwnedValue::entry(
                    OwnedValue::str("ostree.ref-binding"),
                    OwnedValue::Variant(Box::new(OwnedValue::array(
                        "s",
                        vec![OwnedValue::str("os/x86_64/stable")],
                    ))),
                ),
            ],
        );
        let b = meta.to_bytes().unwrap();
        let v = Value::from_bytes(&b, "a{sv}").unwrap();
        assert_eq!(
            v.lookup("version")
                .unwrap()
                .unwrap()
                .as_variant()
                .unwrap()
                .as_str()
                .unwrap(),
            "2"
        );
        assert!(v.lookup("nope").unwrap().is_none());
        // Inconsistent arrays are caught.
        assert!(
            OwnedValue::array("u", vec![OwnedValue::str("x")])
                .to_bytes()
                .is_err()
        );
        assert!(OwnedValue::str("a\0b").to_bytes().is_err());
        assert_eq!(OwnedValue::Tuple(vec![]).to_bytes().unwrap(), vec![0]);
    }
}
