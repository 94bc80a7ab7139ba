//! The one-pass normal-form check: a parsed type tree walked over the data, linear in
//! the data and bounded in depth ([`MAX_DEPTH`](super::MAX_DEPTH)).

use super::MAX_DEPTH;
use super::error::Error;
use super::framing::{TupleFrame, check_string, split_variant, var_array_child, var_array_frame};
use super::types::{Info, VARIABLE_1, align_up, basic_info, is_valid_type, tuple_info, type_end};

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

/// Checks that `data` is the normal-form serialization of a value of type `ty`
/// (the check behind [`Value::from_bytes`](super::Value::from_bytes)).
pub(super) fn validate(data: &[u8], ty: &str) -> Result<(), Error> {
    let tree = Tree::parse(ty).ok_or_else(|| Error::InvalidType { ty: ty.to_owned() })?;
    Validator { tree }.check(0, data, 0, 0)
}

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
