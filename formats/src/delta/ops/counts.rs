//! How many operations of each opcode a part holds.

use super::decode::{OpContext, Ops};
use super::error::OpError;
use super::opcode::OpCode;

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
