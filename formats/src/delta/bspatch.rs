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

/// Where a [`BspatchReader`] is in the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Next comes a control record (or the end, once the output is complete).
    Control,
    /// Inside a diff run: `left` bytes to go, then an extra run of `extra` bytes and an
    /// old-position adjustment of `seek` (all checked when the record was read).
    Diff { left: u64, extra: u64, seek: i64 },
    /// Inside an extra run: `left` bytes to go, then the adjustment `seek`.
    Extra { left: u64, seek: i64 },
    /// The declared size has been produced.
    Done,
    /// An error was returned; every later read fails.
    Failed,
}

/// Streaming bspatch: the same records, checks and errors as [`apply`], but the patch is
/// read sequentially from `patch` and the output produced in the caller's buffers, so
/// nothing but `old` is held in memory whatever the object's size.
///
/// Each record is checked whole when it is read, in [`apply`]'s order and against the
/// patch length given to [`BspatchReader::new`], so the reader fails exactly where and as
/// `apply` fails. Errors come out of [`std::io::Read::read`] as an [`std::io::Error`] of
/// kind `InvalidData` wrapping the [`BspatchError`] (see [`BspatchError::from_io`]); an
/// error of `patch` itself is passed through. The output is exactly the declared size:
/// the reader then returns end of file, leaving the rest of the patch unread, as ostree
/// does.
#[derive(Debug)]
pub struct BspatchReader<'o, R> {
    old: &'o [u8],
    patch: R,
    patch_len: u64,
    declared: u64,
    produced: u64,
    oldpos: i64,
    /// Offset in the patch of the next byte to read.
    pos: u64,
    stage: Stage,
}

impl<'o, R: std::io::Read> BspatchReader<'o, R> {
    /// A reader producing `declared` bytes from `old` and the `patch_len` bytes of
    /// `patch`. Fails like [`apply`] when the declared size cannot come from a patch that
    /// long (every output byte comes from one patch byte).
    pub fn new(
        old: &'o [u8],
        patch: R,
        patch_len: u64,
        declared: u64,
    ) -> Result<Self, BspatchError> {
        if declared > patch_len || i64::try_from(declared).is_err() {
            return Err(BspatchError::DeclaredSizeTooLarge {
                declared,
                patch_len: usize::try_from(patch_len).unwrap_or(usize::MAX),
            });
        }
        Ok(Self {
            old,
            patch,
            patch_len,
            declared,
            produced: 0,
            oldpos: 0,
            pos: 0,
            stage: if declared == 0 {
                Stage::Done
            } else {
                Stage::Control
            },
        })
    }

    fn offset(v: u64) -> usize {
        usize::try_from(v).unwrap_or(usize::MAX)
    }

    fn fail(e: BspatchError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    /// The error for `len` bytes wanted at `at` when the patch ends first.
    fn truncated(at: u64, len: u64) -> BspatchError {
        BspatchError::Truncated {
            offset: Self::offset(at),
            needed: len,
        }
    }

    /// Whether `len` bytes from `at` lie within the patch.
    fn within(&self, at: u64, len: u64) -> bool {
        at.checked_add(len).is_some_and(|e| e <= self.patch_len)
    }

    /// Reads exactly `buf.len()` patch bytes (checked to exist beforehand: a shorter
    /// stream is reported as a truncated patch).
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            match self.patch.read(rest) {
                Ok(0) => {
                    return Err(Self::fail(Self::truncated(self.pos, rest.len() as u64)));
                }
                Ok(n) => {
                    got = got.saturating_add(n);
                    self.pos = self.pos.saturating_add(n as u64);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads and checks a control record and both of its runs, as [`apply`] does.
    fn control(&mut self) -> Result<Stage, std::io::Error> {
        let rec = self.pos;
        // As apply reads them: the first of the three fields that is cut off.
        for field_at in [rec, rec.saturating_add(8), rec.saturating_add(16)] {
            if !self.within(field_at, 8) {
                return Err(Self::fail(Self::truncated(field_at, 8)));
            }
        }
        let mut b = [0u8; 24];
        self.fill(&mut b)?;
        let field = |range: std::ops::Range<usize>| {
            let mut f = [0u8; 8];
            if let Some(s) = b.get(range) {
                f.copy_from_slice(s);
            }
            offtin(f)
        };
        let (x, y, z) = (field(0..8), field(8..16), field(16..24));
        let max_run = i64::from(i32::MAX);
        for (i, v) in [x, y].into_iter().enumerate() {
            if !(0..=max_run).contains(&v) {
                return Err(Self::fail(BspatchError::BadControl {
                    offset: Self::offset(rec).saturating_add(i.saturating_mul(8)),
                    value: v,
                }));
            }
        }
        // Both are in 0..=i32::MAX.
        let (xu, yu) = (x.unsigned_abs(), y.unsigned_abs());
        let overrun = |len: u64| {
            Self::fail(BspatchError::Overrun {
                offset: Self::offset(rec),
                len,
                declared: self.declared,
            })
        };
        let old_overflow = || {
            Self::fail(BspatchError::OldPosOverflow {
                offset: Self::offset(rec),
            })
        };
        let diff_at = self.pos;
        if self.produced.saturating_add(xu) > self.declared {
            return Err(overrun(xu));
        }
        if !self.within(diff_at, xu) {
            return Err(Self::fail(Self::truncated(diff_at, xu)));
        }
        let after_diff = self.oldpos.checked_add(x).ok_or_else(old_overflow)?;
        if self.produced.saturating_add(xu).saturating_add(yu) > self.declared {
            return Err(overrun(yu));
        }
        let extra_at = diff_at.saturating_add(xu);
        if !self.within(extra_at, yu) {
            return Err(Self::fail(Self::truncated(extra_at, yu)));
        }
        after_diff.checked_add(z).ok_or_else(old_overflow)?;
        Ok(Stage::Diff {
            left: xu,
            extra: yu,
            seek: z,
        })
    }

    /// Produces into `buf` until it is full or the output is complete.
    fn produce(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0usize;
        loop {
            let Some(room) = buf.get_mut(filled..).filter(|r| !r.is_empty()) else {
                return Ok(filled);
            };
            match self.stage {
                Stage::Done => return Ok(filled),
                Stage::Failed => {
                    return Err(std::io::Error::other("bspatch failed earlier"));
                }
                Stage::Control if self.produced >= self.declared => self.stage = Stage::Done,
                Stage::Control => self.stage = self.control()?,
                Stage::Diff {
                    left: 0,
                    extra,
                    seek,
                } => self.stage = Stage::Extra { left: extra, seek },
                Stage::Extra { left: 0, seek } => {
                    // Checked with the record.
                    self.oldpos = self.oldpos.saturating_add(seek);
                    self.stage = Stage::Control;
                }
                Stage::Diff { left, extra, seek } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(room.len());
                    let chunk = room.get_mut(..n).unwrap_or_default();
                    self.fill(chunk)?;
                    add_old(chunk, self.old, self.oldpos);
                    // n <= left <= i32::MAX, and oldpos + left was checked.
                    self.oldpos = self
                        .oldpos
                        .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
                    self.produced = self.produced.saturating_add(n as u64);
                    filled = filled.saturating_add(n);
                    self.stage = Stage::Diff {
                        left: left.saturating_sub(n as u64),
                        extra,
                        seek,
                    };
                }
                Stage::Extra { left, seek } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(room.len());
                    self.fill(room.get_mut(..n).unwrap_or_default())?;
                    self.produced = self.produced.saturating_add(n as u64);
                    filled = filled.saturating_add(n);
                    self.stage = Stage::Extra {
                        left: left.saturating_sub(n as u64),
                        seek,
                    };
                }
            }
        }
    }
}

impl<R: std::io::Read> std::io::Read for BspatchReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.produce(buf);
        if r.is_err() {
            self.stage = Stage::Failed;
        }
        r
    }
}

impl BspatchError {
    /// The bspatch error inside an I/O error from a [`BspatchReader`], if it is one.
    pub fn from_io(e: &std::io::Error) -> Option<&BspatchError> {
        e.get_ref()?.downcast_ref::<BspatchError>()
    }
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

    /// Runs the streaming reader, in reads of `chunk` bytes.
    fn stream(old: &[u8], patch: &[u8], declared: u64, chunk: usize) -> Result<Vec<u8>, String> {
        let mut r = BspatchReader::new(old, patch, patch.len() as u64, declared)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match std::io::Read::read(&mut r, &mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    assert!(BspatchError::from_io(&e).is_some(), "{e}");
                    return Err(e.to_string());
                }
            }
        }
    }

    #[test]
    fn streaming_equals_apply() {
        let old: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let mut patch = Vec::new();
            let mut declared = 0u64;
            for _ in 0..(next() % 4) {
                let x = (next() % 40) as i64 - 2;
                let y = (next() % 20) as i64 - 1;
                let z = (next() % 300) as i64 - 150;
                patch.extend_from_slice(&ctrl(x, y, z));
                let data = (next() % 70) as usize;
                for _ in 0..data {
                    patch.push(next() as u8);
                }
                declared += (x.max(0) + y.max(0)) as u64;
            }
            declared = match next() % 3 {
                0 => declared,
                1 => declared.saturating_sub(next() % 5),
                _ => declared + next() % 5,
            };
            let mut want = Vec::new();
            let applied = apply(&old, &patch, &mut want, declared);
            for chunk in [1, 3, 64, 4096] {
                let got = stream(&old, &patch, declared, chunk);
                match &applied {
                    Ok(()) => assert_eq!(got.as_deref(), Ok(&want[..]), "chunk {chunk}"),
                    // The same error, word for word.
                    Err(e) => assert_eq!(got, Err(e.to_string()), "chunk {chunk}"),
                }
            }
        }
        // The cases above, streamed.
        let mut patch = ctrl(5, 3, -5);
        patch.extend_from_slice(&[0, 0, 0, 0, 1]);
        patch.extend_from_slice(b"XYZ");
        patch.extend_from_slice(&ctrl(2, 0, 0));
        patch.extend_from_slice(&[0, 0]);
        assert_eq!(
            stream(b"hello world", &patch, 10, 2).unwrap(),
            b"hellpXYZhe"
        );
        assert!(stream(b"", &[0; 30], u64::MAX, 8).is_err());
        assert_eq!(stream(b"", &[], 0, 8).unwrap(), b"");
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
