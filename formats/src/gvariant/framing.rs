//! Framing: the width and reading of framing offsets, the framing of arrays of
//! variable-size elements and of tuples, NUL-terminated strings and variants. Shared by
//! validation and the accessors, which reject the same malformed framing the same way.

use super::types::{Info, align_up, is_valid_type};

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
pub(super) fn total_size(body: usize, n: usize) -> Option<usize> {
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

pub(super) type FrameResult<T> = Result<T, &'static str>;

/// Framing of an array of variable-size elements.
#[derive(Debug, Clone, Copy)]
pub(super) struct VarArrayFrame {
    pub(super) n: usize,
    osz: usize,
    /// Where the offset table starts (= end of the last element).
    table: usize,
}

pub(super) fn var_array_frame(data: &[u8]) -> FrameResult<VarArrayFrame> {
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
pub(super) fn var_array_child(
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
pub(super) struct TupleFrame {
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
    pub(super) fn new(data: &[u8], n_offsets: usize, fixed: Option<usize>) -> FrameResult<Self> {
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

    pub(super) fn member(
        &mut self,
        data: &[u8],
        info: Info,
        last: bool,
    ) -> FrameResult<(usize, usize)> {
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

    pub(super) fn finish(&self, data: &[u8]) -> FrameResult<()> {
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

pub(super) fn check_string(data: &[u8]) -> FrameResult<&str> {
    let (last, body) = data.split_last().ok_or("string without NUL terminator")?;
    if *last != 0 {
        return Err("string without NUL terminator");
    }
    if body.contains(&0) {
        return Err("interior NUL in string");
    }
    std::str::from_utf8(body).map_err(|_| "string is not valid UTF-8")
}

/// Splits a variant's bytes into (child bytes, type string).
pub(super) fn split_variant(data: &[u8]) -> Option<(&[u8], &str)> {
    let sep = data.iter().rposition(|&b| b == 0)?;
    let child = data.get(..sep)?;
    let ty = std::str::from_utf8(data.get(sep.checked_add(1)?..)?).ok()?;
    if !is_valid_type(ty) {
        return None;
    }
    Some((child, ty))
}
