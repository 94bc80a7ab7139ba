//! bspatch in exactly the form static-delta `B` operations carry.
//!
//! ostree bundles Matthew Endsley's bsdiff library (`bsdiff/bspatch.c`, the `bsdiff`
//! submodule of `ostreedev/ostree`) and feeds it the raw patch bytes from the part blob
//! (`dispatch_bspatch` in `src/libostree/ostree-repo-static-delta-processing.c`). The patch
//! therefore has **no** `BSDIFF40`/`ENDSLEY/BSDIFF43` header, no lengths and no bzip2: it is a
//! plain sequence of records, read until the output reaches the size the preceding `o`
//! operation declared:
//!
//! ```text
//! x: 8 bytes   length of the diff run        } "offtin": magnitude little-endian in the
//! y: 8 bytes   length of the extra run       } low 63 bits, sign in bit 7 of byte 7
//! z: 8 bytes   old-position adjustment       }
//! x bytes      added (mod 256) to old[oldpos..oldpos+x]; old bytes outside `old` count as 0
//! y bytes      copied literally
//! oldpos += x + z
//! ```
//!
//! `x` and `y` must be in `0..=i32::MAX` and must not take the output past the declared size.
//! Bytes of the patch left over once the output is complete are ignored, as in ostree.
//! The crates.io `bsdiff` crate reads the same records but stops at the end of the patch
//! instead of at a declared size and rejects old positions outside `old`, so it is not used.

use thiserror::Error;

/// Why a bspatch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BspatchError {
    /// The declared output size cannot be produced from a patch this short (every output byte
    /// comes from one patch byte), or does not fit in memory.
    #[error(
        "bspatch declared output size {declared} exceeds what a {patch_len}-byte patch can produce"
    )]
    DeclaredSizeTooLarge {
        /// Output size declared by the `o` operation.
        declared: u64,
        /// Length of the patch.
        patch_len: usize,
    },
    /// The patch ended inside a control record or a data run.
    #[error("bspatch patch truncated at offset {offset}: {needed} more bytes needed")]
    Truncated {
        /// Offset in the patch where the missing bytes should start.
        offset: usize,
        /// Number of bytes needed there.
        needed: u64,
    },
    /// A diff or extra length is negative or above `i32::MAX`.
    #[error("bspatch control value {value} out of range at patch offset {offset}")]
    BadControl {
        /// Offset of the offending 8-byte field in the patch.
        offset: usize,
        /// The decoded value.
        value: i64,
    },
    /// A run would take the output past the declared size.
    #[error(
        "bspatch run of {len} bytes at patch offset {offset} overruns the declared output size {declared}"
    )]
    Overrun {
        /// Offset of the control record in the patch.
        offset: usize,
        /// Length of the run.
        len: u64,
        /// Declared output size.
        declared: u64,
    },
    /// The old position left the signed 64-bit range.
    #[error("bspatch old position overflows at patch offset {offset}")]
    OldPosOverflow {
        /// Offset of the control record in the patch.
        offset: usize,
    },
    /// The output buffer could not be grown.
    #[error("bspatch could not reserve {0} bytes of output")]
    Alloc(u64),
}

/// Decodes one bsdiff "offtin" (sign-magnitude, little-endian) integer.
fn offtin(b: [u8; 8]) -> i64 {
    let raw = u64::from_le_bytes(b);
    let magnitude = raw & !(1u64 << 63);
    // magnitude < 2^63, so it fits and negating it cannot overflow.
    let m = i64::try_from(magnitude).unwrap_or(i64::MAX);
    if raw & (1u64 << 63) != 0 {
        m.wrapping_neg()
    } else {
        m
    }
}

/// Reads 8 bytes at `pos`.
fn read8(patch: &[u8], pos: usize) -> Result<[u8; 8], BspatchError> {
    let end = pos.checked_add(8).ok_or(BspatchError::Truncated {
        offset: pos,
        needed: 8,
    })?;
    let s = patch.get(pos..end).ok_or(BspatchError::Truncated {
        offset: pos,
        needed: 8,
    })?;
    let mut out = [0u8; 8];
    out.copy_from_slice(s);
    Ok(out)
}

/// Applies `patch` to `old`, appending exactly `declared_new_size` bytes to `out`.
///
/// Fails, leaving `out` truncated back to its original length, when a control value is out
/// of range, the patch is short, or the output would exceed `declared_new_size`. Nothing is
/// allocated beyond `min(declared_new_size, patch.len())`: the size is checked against the
/// patch length before any reservation.
pub fn apply(
    old: &[u8],
    patch: &[u8],
    out: &mut Vec<u8>,
    declared_new_size: u64,
) -> Result<(), BspatchError> {
    let start = out.len();
    let r = apply_inner(old, patch, out, declared_new_size);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn apply_inner(
    old: &[u8],
    patch: &[u8],
    out: &mut Vec<u8>,
    declared_new_size: u64,
) -> Result<(), BspatchError> {
    let too_large = BspatchError::DeclaredSizeTooLarge {
        declared: declared_new_size,
        patch_len: patch.len(),
    };
    let newsize = usize::try_from(declared_new_size).map_err(|_| too_large.clone())?;
    if newsize > patch.len() || i64::try_from(declared_new_size).is_err() {
        return Err(too_large);
    }
    out.try_reserve(newsize)
        .map_err(|_| BspatchError::Alloc(declared_new_size))?;
    let start = out.len();
    let mut newpos: usize = 0;
    let mut oldpos: i64 = 0;
    let mut pos: usize = 0;
    let max_run = i64::from(i32::MAX);

    while newpos < newsize {
        let rec = pos;
        let x = offtin(read8(patch, pos)?);
        let y = offtin(read8(patch, pos.saturating_add(8))?);
        let z = offtin(read8(patch, pos.saturating_add(16))?);
        pos = pos.saturating_add(24);
        for (i, v) in [x, y].into_iter().enumerate() {
            if !(0..=max_run).contains(&v) {
                return Err(BspatchError::BadControl {
                    offset: rec.saturating_add(i.saturating_mul(8)),
                    value: v,
                });
            }
        }
        // Both are in 0..=i32::MAX, so they fit in usize on every supported target.
        let xu = usize::try_from(x).map_err(|_| BspatchError::BadControl {
            offset: rec,
            value: x,
        })?;
        let yu = usize::try_from(y).map_err(|_| BspatchError::BadControl {
            offset: rec,
            value: y,
        })?;

        // Diff run.
        let overrun = |len: usize| BspatchError::Overrun {
            offset: rec,
            len: len as u64,
            declared: declared_new_size,
        };
        if newpos.checked_add(xu).is_none_or(|e| e > newsize) {
            return Err(overrun(xu));
        }
        let diff = take(patch, pos, xu)?;
        pos = pos.saturating_add(xu);
        out.extend_from_slice(diff);
        if let Some(added) = out.get_mut(start.saturating_add(newpos)..) {
            add_old(added, old, oldpos);
        }
        newpos = newpos.saturating_add(xu);
        oldpos = oldpos
            .checked_add(x)
            .ok_or(BspatchError::OldPosOverflow { offset: rec })?;

        // Extra run.
        if newpos.checked_add(yu).is_none_or(|e| e > newsize) {
            return Err(overrun(yu));
        }
        let extra = take(patch, pos, yu)?;
        pos = pos.saturating_add(yu);
        out.extend_from_slice(extra);
        newpos = newpos.saturating_add(yu);
        oldpos = oldpos
            .checked_add(z)
            .ok_or(BspatchError::OldPosOverflow { offset: rec })?;
    }
    Ok(())
}

/// `patch[pos..pos+len]`, or a truncation error.
fn take(patch: &[u8], pos: usize, len: usize) -> Result<&[u8], BspatchError> {
    pos.checked_add(len)
        .and_then(|end| patch.get(pos..end))
        .ok_or(BspatchError::Truncated {
            offset: pos,
            needed: len as u64,
        })
}

/// Adds `old[oldpos + i]` to `dst[i]` (mod 256) wherever `oldpos + i` is inside `old`.
fn add_old(dst: &mut [u8], old: &[u8], oldpos: i64) {
    // Split dst into the part before old starts (oldpos negative), the overlap, and the rest.
    let skip = if oldpos < 0 {
        usize::try_from(oldpos.unsigned_abs()).unwrap_or(usize::MAX)
    } else {
        0
    };
    let old_start = usize::try_from(oldpos.max(0)).unwrap_or(usize::MAX);
    let Some(dst) = dst.get_mut(skip.min(dst.len())..) else {
        return;
    };
    let Some(src) = old.get(old_start.min(old.len())..) else {
        return;
    };
    for (d, s) in dst.iter_mut().zip(src) {
        *d = d.wrapping_add(*s);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn ctrl(x: i64, y: i64, z: i64) -> Vec<u8> {
        let mut v = Vec::new();
        for n in [x, y, z] {
            let mut b = n.unsigned_abs().to_le_bytes();
            if n < 0 {
                b[7] |= 0x80;
            }
            v.extend_from_slice(&b);
        }
        v
    }

    #[test]
    fn applies_diff_and_extra_runs() {
        let old = b"hello world";
        let mut patch = ctrl(5, 3, -5);
        patch.extend_from_slice(&[0, 0, 0, 0, 1]); // "hellp"
        patch.extend_from_slice(b"XYZ");
        patch.extend_from_slice(&ctrl(2, 0, 0));
        patch.extend_from_slice(&[0, 0]); // old[5..7]? no: oldpos = 5 - 5 = 0 -> "he"
        let mut out = b"pre".to_vec();
        apply(old, &patch, &mut out, 10).unwrap();
        assert_eq!(&out, b"prehellpXYZhe");
    }

    #[test]
    fn old_outside_range_counts_as_zero() {
        let old = b"ab";
        let mut patch = ctrl(4, 0, 0);
        patch.extend_from_slice(&[1, 1, 7, 7]);
        let mut out = Vec::new();
        apply(old, &patch, &mut out, 4).unwrap();
        assert_eq!(out, vec![b'a' + 1, b'b' + 1, 7, 7]);
        // Negative old position.
        let mut patch = ctrl(0, 0, -1);
        patch.extend_from_slice(&ctrl(2, 0, 0));
        patch.extend_from_slice(&[5, 5]);
        patch.extend_from_slice(&ctrl(0, 0, 0)); // never read: output complete
        let mut out = Vec::new();
        // First record produces nothing; the loop goes on because output is not full.
        apply(old, &patch, &mut out, 2).unwrap();
        assert_eq!(out, vec![5, 5 + b'a']);
    }

    #[test]
    fn rejects_bad_controls_and_overruns() {
        let mut out = vec![9];
        let mut patch = ctrl(-1, 0, 0);
        patch.extend_from_slice(&[0; 8]);
        assert!(matches!(
            apply(b"", &patch, &mut out, 1),
            Err(BspatchError::BadControl { .. })
        ));
        assert_eq!(out, vec![9]);
        let mut patch = ctrl(3, 0, 0);
        patch.extend_from_slice(&[0; 3]);
        assert!(matches!(
            apply(b"", &patch, &mut out, 2),
            Err(BspatchError::Overrun { .. })
        ));
        let mut patch = ctrl(1, 2, 0);
        patch.extend_from_slice(&[0; 3]);
        assert!(matches!(
            apply(b"", &patch, &mut out, 2),
            Err(BspatchError::Overrun { .. })
        ));
        assert!(matches!(
            apply(b"", &[0; 30], &mut out, u64::MAX),
            Err(BspatchError::DeclaredSizeTooLarge { .. })
        ));
        let mut patch = ctrl(0, 0, i64::MAX);
        patch.extend_from_slice(&ctrl(0, 0, 1));
        patch.extend_from_slice(&[0; 40]);
        assert!(matches!(
            apply(b"", &patch, &mut out, 1),
            Err(BspatchError::OldPosOverflow { .. })
        ));
    }

    #[test]
    fn every_truncation_fails() {
        let mut patch = ctrl(2, 2, 0);
        patch.extend_from_slice(b"\x01\x01zz");
        let mut out = Vec::new();
        apply(b"ab", &patch, &mut out, 4).unwrap();
        assert_eq!(out, b"bczz");
        for n in 0..patch.len() {
            let mut out = Vec::new();
            assert!(
                apply(b"ab", &patch[..n], &mut out, 4).is_err(),
                "prefix {n}"
            );
            assert!(out.is_empty());
        }
    }
}
