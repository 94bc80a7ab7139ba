//! The decoder: an iterator of typed, range-checked operations over the bytecode, and
//! the varint encoding the bytecode uses.

use crate::delta::{DeltaObject, DeltaObjects};
use crate::object::ObjectType;

use super::blob::Blob;
use super::error::OpError;
use super::op::{OpOf, WriteSourceOf};
use super::opcode::OpCode;

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
    use crate::delta::DeltaObjects;

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
