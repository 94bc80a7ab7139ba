//! The figures `ostree static-delta show` prints about a delta.
//!
//! Mirrors `_ostree_repo_static_delta_dump` and `show_one_part`
//! (`src/libostree/ostree-repo-static-delta-core.c`): from, to, signedness, endianness,
//! timestamp, number of "parents" (recursive deltas), fallbacks with their total sizes,
//! per part the object count, part file size and uncompressed size, and — once the part
//! payload is supplied — the table sizes, blob and ops sizes and the count of each opcode.
//! [`DeltaSummary`]'s `Display` prints the same lines ostree does, including the
//! human-readable sizes in parentheses ([`format_size`], GLib's `g_format_size`).

use std::fmt;

use crate::checksum::Checksum;

use super::DeltaName;
use super::ops::{OpCode, OpCounts, OpError};
use super::part::{self, PartError, PartPayloadRef, PayloadError};
use super::signed::SuperblockFile;
use super::superblock::{Endianness, SuperblockRef};

/// Why a part could not be summarized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShowError {
    /// No such part in the superblock.
    #[error("delta has no part {0}")]
    NoSuchPart(usize),
    /// The part file could not be decompressed.
    #[error("delta part {part}: {source}")]
    Part {
        /// Part index.
        part: usize,
        /// What failed.
        #[source]
        source: PartError,
    },
    /// The payload is invalid.
    #[error("delta part {part}: {source}")]
    Payload {
        /// Part index.
        part: usize,
        /// What failed.
        #[source]
        source: PayloadError,
    },
    /// The operations are invalid.
    #[error("delta part {part}: {source}")]
    Ops {
        /// Part index.
        part: usize,
        /// What failed.
        #[source]
        source: OpError,
    },
}

/// Figures of a part's payload (`PartPayload<i>` and `PartPayloadOps<i>` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadSummary {
    /// Entries in the mode table.
    pub n_modes: usize,
    /// Entries in the xattr table.
    pub n_xattrs: usize,
    /// Size of the raw data blob.
    pub blob_size: usize,
    /// Size of the operations bytecode.
    pub ops_size: usize,
    /// Operations per opcode.
    pub ops: OpCounts,
}

/// Figures of one part (`PartMeta<i>` line, plus the payload once supplied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSummary {
    /// Part index.
    pub index: usize,
    /// Objects the part creates.
    pub n_objects: usize,
    /// Part file size.
    pub size: u64,
    /// Uncompressed size of the objects.
    pub uncompressed_size: u64,
    /// Payload figures, if the part was supplied.
    pub payload: Option<PayloadSummary>,
}

/// One fallback object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackSummary {
    /// The object's checksum.
    pub checksum: Checksum,
    /// `.filez` size.
    pub size: u64,
    /// Content size.
    pub uncompressed_size: u64,
}

/// Everything `ostree static-delta show` prints about a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaSummary {
    /// The delta.
    pub name: DeltaName,
    /// Whether the superblock file has the signed wrapper.
    pub signed: bool,
    /// The byte order (as declared or guessed).
    pub endianness: Endianness,
    /// Generation time.
    pub timestamp: u64,
    /// Number of "parents" (recursive delta pairs).
    pub n_parents: usize,
    /// Fallback objects.
    pub fallbacks: Vec<FallbackSummary>,
    /// Parts.
    pub parts: Vec<PartSummary>,
}

impl DeltaSummary {
    /// Figures from the superblock alone (payloads not yet supplied).
    pub fn from_superblock(sb: &SuperblockRef<'_>, signed: bool) -> Self {
        DeltaSummary {
            name: sb.name(),
            signed,
            endianness: sb.endianness(),
            timestamp: sb.timestamp(),
            n_parents: sb.recursive_deltas().len().checked_div(64).unwrap_or(0),
            fallbacks: sb
                .fallbacks()
                .iter()
                .map(|f| FallbackSummary {
                    checksum: f.checksum,
                    size: f.compressed_size,
                    uncompressed_size: f.uncompressed_size,
                })
                .collect(),
            parts: sb
                .parts()
                .iter()
                .map(|p| PartSummary {
                    index: p.index,
                    n_objects: p.objects.len(),
                    size: p.size,
                    uncompressed_size: p.uncompressed_size,
                    payload: None,
                })
                .collect(),
        }
    }

    /// Figures from a superblock file (plain or signed).
    pub fn from_file(file: &SuperblockFile<'_>) -> Self {
        Self::from_superblock(&file.superblock, file.signed.is_some())
    }

    /// Adds part `index`'s payload figures from its part file (or inline part bytes):
    /// decompresses with `cap` (see [`super::superblock::PartHeader::payload_cap`]),
    /// parses the payload and decodes every operation. The part checksum is not checked.
    pub fn add_part(
        &mut self,
        sb: &SuperblockRef<'_>,
        index: usize,
        part_file: &[u8],
        cap: u64,
    ) -> Result<(), ShowError> {
        let header = sb.parts().get(index).ok_or(ShowError::NoSuchPart(index))?;
        let payload = part::decompress(part_file, cap).map_err(|source| ShowError::Part {
            part: index,
            source,
        })?;
        let p = PartPayloadRef::from_bytes(&payload).map_err(|source| ShowError::Payload {
            part: index,
            source,
        })?;
        let ops = p
            .op_counts(header.objects)
            .map_err(|source| ShowError::Ops {
                part: index,
                source,
            })?;
        let slot = self
            .parts
            .get_mut(index)
            .ok_or(ShowError::NoSuchPart(index))?;
        slot.payload = Some(PayloadSummary {
            n_modes: p.n_modes(),
            n_xattrs: p.n_xattrs(),
            blob_size: p.blob().len(),
            ops_size: p.ops_bytes().len(),
            ops,
        });
        Ok(())
    }

    /// Sum of fallback `.filez` sizes.
    pub fn total_fallback_size(&self) -> u64 {
        self.fallbacks
            .iter()
            .fold(0u64, |a, f| a.saturating_add(f.size))
    }

    /// Sum of fallback content sizes.
    pub fn total_fallback_uncompressed_size(&self) -> u64 {
        self.fallbacks
            .iter()
            .fold(0u64, |a, f| a.saturating_add(f.uncompressed_size))
    }

    /// Sum of part file sizes.
    pub fn total_part_size(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.size))
    }

    /// Sum of part uncompressed sizes.
    pub fn total_part_uncompressed_size(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.uncompressed_size))
    }

    /// Parts plus fallbacks, compressed.
    pub fn total_size(&self) -> u64 {
        self.total_part_size()
            .saturating_add(self.total_fallback_size())
    }

    /// Parts plus fallbacks, uncompressed.
    pub fn total_uncompressed_size(&self) -> u64 {
        self.total_part_uncompressed_size()
            .saturating_add(self.total_fallback_uncompressed_size())
    }

    /// Operation counts summed over the parts whose payload was supplied.
    pub fn total_ops(&self) -> OpCounts {
        let mut t = OpCounts::default();
        for p in self.parts.iter().filter_map(|p| p.payload.as_ref()) {
            t.add(&p.ops);
        }
        t
    }
}

impl fmt::Display for DeltaSummary {
    /// The lines of `ostree static-delta show` (a part's payload lines appear only if it
    /// was supplied).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Delta: {}", self.name)?;
        writeln!(f, "Signed: {}", if self.signed { "yes" } else { "no" })?;
        match &self.name.from {
            Some(from) => writeln!(f, "From: {from}")?,
            None => writeln!(f, "From <scratch>")?,
        }
        writeln!(f, "To: {}", self.name.to)?;
        writeln!(f, "Endianness: {}", self.endianness.ostree_description())?;
        writeln!(f, "Timestamp: {}", self.timestamp)?;
        writeln!(f, "Number of parents: {}", self.n_parents)?;
        writeln!(f, "Number of fallback entries: {}", self.fallbacks.len())?;
        for fb in &self.fallbacks {
            writeln!(f, "  {}", fb.checksum)?;
        }
        size_line(f, "Total Fallback Size", self.total_fallback_size())?;
        size_line(
            f,
            "Total Fallback Uncompressed Size",
            self.total_fallback_uncompressed_size(),
        )?;
        writeln!(f, "Number of parts: {}", self.parts.len())?;
        for p in &self.parts {
            writeln!(
                f,
                "PartMeta{}: nobjects={} size={} usize={}",
                p.index, p.n_objects, p.size, p.uncompressed_size
            )?;
            if let Some(pl) = &p.payload {
                writeln!(
                    f,
                    "PartPayload{}: nmodes={} nxattrs={} blobsize={} opsize={}",
                    p.index, pl.n_modes, pl.n_xattrs, pl.blob_size, pl.ops_size
                )?;
                write!(f, "PartPayloadOps{}:", p.index)?;
                for op in OpCode::ALL {
                    write!(f, " {}={}", op.show_name(), pl.ops.get(op))?;
                }
                writeln!(f)?;
            }
        }
        size_line(f, "Total Part Size", self.total_part_size())?;
        size_line(
            f,
            "Total Part Uncompressed Size",
            self.total_part_uncompressed_size(),
        )?;
        size_line(f, "Total Size", self.total_size())?;
        size_line(f, "Total Uncompressed Size", self.total_uncompressed_size())
    }
}

/// Writes `label: N (human)` as `ostree static-delta show` does.
fn size_line(f: &mut fmt::Formatter<'_>, label: &str, n: u64) -> fmt::Result {
    writeln!(f, "{label}: {n} ({})", format_size(n))
}

/// A size as GLib's `g_format_size` writes it (SI units, one decimal, a no-break space
/// U+00A0 before the unit as GLib 2.74 writes it): `0 bytes`, `1 byte`, `999 bytes`,
/// `65.3 kB`, `2.9 MB`, … up to `EB`.
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n == 1 {
        return "1 byte".to_owned();
    }
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut factor: u64 = 1000;
    for (i, unit) in UNITS.iter().enumerate() {
        let next = factor.checked_mul(1000);
        let last = i.checked_add(1) == Some(UNITS.len());
        if last || next.is_none_or(|nx| n < nx) {
            #[allow(clippy::cast_precision_loss)]
            let v = n as f64 / factor as f64;
            return format!("{v:.1}\u{a0}{unit}");
        }
        factor = next.unwrap_or(u64::MAX);
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::format_size;

    /// Values seen in `ostree static-delta show` output (ostree 2022.7, GLib 2.74).
    #[test]
    fn sizes_as_glib_formats_them() {
        assert_eq!(format_size(0), "0 bytes");
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(999), "999 bytes");
        assert_eq!(format_size(1000), "1.0\u{a0}kB");
        assert_eq!(format_size(9625), "9.6\u{a0}kB");
        assert_eq!(format_size(65345), "65.3\u{a0}kB");
        assert_eq!(format_size(25188), "25.2\u{a0}kB");
        assert_eq!(format_size(2_868_937), "2.9\u{a0}MB");
        assert_eq!(format_size(u64::MAX), "18.4\u{a0}EB");
    }
}
