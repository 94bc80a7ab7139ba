//! Type strings: validity, alignment and fixed size, and the members of a tuple type.

use super::{MAX_DEPTH, MAX_TYPE_LEN};

/// Alignment (as a mask: 0, 1, 3 or 7) and fixed size of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Info {
    pub(super) align: usize,
    pub(super) fixed: Option<usize>,
}

pub(super) const VARIABLE_1: Info = Info {
    align: 0,
    fixed: None,
};

fn is_basic(c: u8) -> bool {
    matches!(
        c,
        b'b' | b'y' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'h' | b'd' | b's' | b'o' | b'g'
    )
}

pub(super) fn basic_info(c: u8) -> Option<Info> {
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
pub(super) fn type_end(t: &[u8], pos: usize, depth: usize) -> Option<usize> {
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
pub(super) struct Members<'t> {
    t: &'t str,
    pub(super) pos: usize,
}

impl<'t> Members<'t> {
    /// `t` must be a valid tuple or dict-entry type.
    pub(super) fn new(t: &'t str) -> Option<Self> {
        match t.as_bytes().first() {
            Some(b'(' | b'{') => Some(Members { t, pos: 1 }),
            _ => None,
        }
    }

    /// Whether the member at the current position is the last one.
    pub(super) fn at_last(&self, end_of_current: usize) -> bool {
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

pub(super) fn align_up(pos: usize, mask: usize) -> Option<usize> {
    Some(pos.checked_add(mask)? & !mask)
}

/// Computes alignment and fixed size of a tuple from its members' infos.
/// Returns (info, number of framing offsets).
pub(super) fn tuple_info(members: impl Iterator<Item = Option<Info>>) -> Option<(Info, usize)> {
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
pub(super) fn info_of(t: &str) -> Option<Info> {
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
