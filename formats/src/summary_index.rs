//! flatpak's summary index (`summary.idx`, `(a{s(ayaaya{sv})}a{sv})`), subsummary files
//! and subsummary diffs.
//!
//! This lives in flatpak, not ostree (`FLATPAK_SUMMARY_INDEX_GVARIANT_STRING`,
//! `common/flatpak-repo-utils-private.h`; writer `generate_summary_index` and diff format
//! `diff_encode` / `flatpak_summary_apply_diff` in `common/flatpak-repo-utils.c`;
//! compression `flatpak_zlib_compress_bytes` in `common/flatpak-utils.c`):
//!
//! | part | type | content |
//! |---|---|---|
//! | subsummaries | `a{s(ayaaya{sv})}` | name (`<arch>` or `<subset>-<arch>`) → (current SHA-256, older SHA-256s newest first, metadata) |
//! | metadata | `a{sv}` | `ostree.summary.mode`, `…tombstone-commits`, `…indexed-deltas`, `…last-modified` (big-endian `t`), `…collection-id`, `xa.*` |
//!
//! A subsummary with digest `D` is served gzip-compressed (RFC 1952) at
//! `summaries/<D>.gz`, `D` being the SHA-256 of the *uncompressed* bytes, which are an
//! ordinary summary ([`crate::summary::SummaryRef`]). A diff from an older subsummary `O`
//! is `summaries/<O>-<D>.delta`, gzip of:
//!
//! ```text
//! "xadf"              magic
//! u32 LE n_ops
//! n_ops × u32 LE op   kind = op >> 28 (0 reuse old, 1 skip old, 2 data), size = op & 0x0fffffff
//! data                literal bytes consumed by kind-2 ops, in order
//! ```
//!
//! Decompression and diff application are bounded by caller-given caps.

use std::io::Read;

use crate::checksum::Checksum;
use crate::gvariant::{self, Value};
use crate::metadata::{
    self, MetadataRef, SUMMARY_COLLECTION_ID, SUMMARY_INDEXED_DELTAS, SUMMARY_LAST_MODIFIED,
    SUMMARY_MODE, SUMMARY_TOMBSTONE_COMMITS,
};

/// GVariant type of `summary.idx`.
pub const SUMMARY_INDEX_TYPE: &str = "(a{s(ayaaya{sv})}a{sv})";

/// Magic at the start of a decompressed subsummary diff.
pub const DIFF_MAGIC: [u8; 4] = *b"xadf";

/// Most subsummaries accepted in one index.
pub const MAX_SUBSUMMARIES: usize = 1 << 16;

/// Most history entries accepted per subsummary.
pub const MAX_HISTORY: usize = 1 << 12;

/// Why a summary index, subsummary or diff is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryIndexError {
    /// Not a normal-form GVariant of the index type.
    #[error("summary index: {0}")]
    Variant(#[from] gvariant::Error),
    /// A metadata dictionary is invalid, or a key has the wrong type.
    #[error("summary index metadata: {0}")]
    Metadata(#[from] metadata::Error),
    /// A digest is not 32 bytes.
    #[error("summary index subsummary {name:?} has a {len}-byte digest, expected 32")]
    DigestLength {
        /// The subsummary.
        name: String,
        /// The digest length.
        len: usize,
    },
    /// An empty subsummary name.
    #[error("summary index has a subsummary with an empty name")]
    EmptyName,
    /// Too many subsummaries or history entries.
    #[error("summary index has {count} {what}, more than the limit")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// How many.
        count: usize,
    },
    /// The gzip data is invalid.
    #[error("{what}: invalid gzip data: {msg}")]
    Gzip {
        /// Which file.
        what: &'static str,
        /// The decoder's message.
        msg: String,
    },
    /// Decompressed data or diff output exceeds the cap.
    #[error("{what} exceeds the cap of {cap} bytes")]
    TooLarge {
        /// Which data.
        what: &'static str,
        /// The cap.
        cap: u64,
    },
    /// Bytes after the gzip member.
    #[error("{what}: trailing bytes after the gzip data")]
    TrailingData {
        /// Which file.
        what: &'static str,
    },
    /// The diff is malformed.
    #[error("subsummary diff invalid: {0}")]
    Diff(&'static str),
}

/// One subsummary of the index.
#[derive(Debug, Clone)]
pub struct SubsummaryRef<'a> {
    /// Its name: `<arch>` or `<subset>-<arch>`.
    pub name: &'a str,
    /// SHA-256 of the current (uncompressed) subsummary.
    pub checksum: Checksum,
    /// Older digests, newest first (for finding a cached base for a diff).
    pub history: Vec<Checksum>,
    /// Per-subsummary metadata (empty in flatpak 1.14).
    pub metadata: MetadataRef<'a>,
}

impl<'a> SubsummaryRef<'a> {
    /// The architecture part of the name (after the last `-`, or the whole name).
    pub fn arch(&self) -> &'a str {
        self.name.rsplit_once('-').map_or(self.name, |(_, a)| a)
    }

    /// The subset part of the name (before the last `-`), `None` for a plain arch.
    pub fn subset(&self) -> Option<&'a str> {
        self.name.rsplit_once('-').map(|(s, _)| s)
    }

    /// `summaries/<current>.gz`.
    pub fn path(&self) -> String {
        subsummary_path(&self.checksum)
    }
}

/// A checked, borrowed `summary.idx`.
#[derive(Debug, Clone)]
pub struct SummaryIndexRef<'a> {
    data: &'a [u8],
    subsummaries: Vec<SubsummaryRef<'a>>,
    metadata: MetadataRef<'a>,
}

fn digest(name: &str, v: &Value<'_>) -> Result<Checksum, SummaryIndexError> {
    let b = v.as_bytes()?;
    Checksum::from_slice(b).map_err(|_| SummaryIndexError::DigestLength {
        name: name.to_owned(),
        len: b.len(),
    })
}

impl<'a> SummaryIndexRef<'a> {
    /// Parses and checks a `summary.idx` (every digest must be 32 bytes).
    ///
    /// Allocates one entry per subsummary (at most [`MAX_SUBSUMMARIES`]) and one checksum
    /// per history entry (at most [`MAX_HISTORY`] each); both counts come from framing
    /// offsets, so allocation is also O(input length).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, SummaryIndexError> {
        let v = Value::from_bytes(data, SUMMARY_INDEX_TYPE)?;
        let [subs, meta] = v.tuple_fields()?;
        let n = subs.array_len()?;
        if n > MAX_SUBSUMMARIES {
            return Err(SummaryIndexError::TooMany {
                what: "subsummaries",
                count: n,
            });
        }
        let mut subsummaries = Vec::with_capacity(n);
        for e in subs.array_iter()? {
            let [name, body] = e?.tuple_fields()?;
            let name = name.as_str()?;
            if name.is_empty() {
                return Err(SummaryIndexError::EmptyName);
            }
            let [current, history, m] = body.tuple_fields()?;
            let hn = history.array_len()?;
            if hn > MAX_HISTORY {
                return Err(SummaryIndexError::TooMany {
                    what: "history entries",
                    count: hn,
                });
            }
            let mut hist = Vec::with_capacity(hn);
            for h in history.array_iter()? {
                hist.push(digest(name, &h?)?);
            }
            subsummaries.push(SubsummaryRef {
                name,
                checksum: digest(name, &current)?,
                history: hist,
                metadata: MetadataRef::from_value(m)?,
            });
        }
        let s = SummaryIndexRef {
            data,
            subsummaries,
            metadata: MetadataRef::from_value(meta)?,
        };
        s.mode()?;
        s.tombstone_commits()?;
        s.indexed_deltas()?;
        s.last_modified()?;
        s.collection_id()?;
        Ok(s)
    }

    /// The index bytes (their SHA-256 names `summaries/<sha256>.idx.sig`).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The subsummaries, in stored (sorted) order.
    pub fn subsummaries(&self) -> &[SubsummaryRef<'a>] {
        &self.subsummaries
    }

    /// The subsummary called `name`.
    pub fn lookup(&self, name: &str) -> Option<&SubsummaryRef<'a>> {
        self.subsummaries.iter().find(|s| s.name == name)
    }

    /// Repository metadata.
    pub fn metadata(&self) -> MetadataRef<'a> {
        self.metadata
    }

    /// `ostree.summary.mode`.
    pub fn mode(&self) -> Result<Option<&'a str>, SummaryIndexError> {
        Ok(self.metadata.get_str(SUMMARY_MODE)?)
    }

    /// `ostree.summary.tombstone-commits`.
    pub fn tombstone_commits(&self) -> Result<Option<bool>, SummaryIndexError> {
        Ok(self.metadata.get_bool(SUMMARY_TOMBSTONE_COMMITS)?)
    }

    /// `ostree.summary.indexed-deltas`.
    pub fn indexed_deltas(&self) -> Result<Option<bool>, SummaryIndexError> {
        Ok(self.metadata.get_bool(SUMMARY_INDEXED_DELTAS)?)
    }

    /// `ostree.summary.last-modified` (big-endian `t`).
    pub fn last_modified(&self) -> Result<Option<u64>, SummaryIndexError> {
        Ok(self.metadata.get_u64_be(SUMMARY_LAST_MODIFIED)?)
    }

    /// `ostree.summary.collection-id`.
    pub fn collection_id(&self) -> Result<Option<&'a str>, SummaryIndexError> {
        Ok(self.metadata.get_str(SUMMARY_COLLECTION_ID)?)
    }
}

/// `summaries/<hex>.gz`: the compressed subsummary whose uncompressed SHA-256 is `digest`.
pub fn subsummary_path(digest: &Checksum) -> String {
    format!("summaries/{digest}.gz")
}

/// `summaries/<from>-<to>.delta`: the diff from subsummary `from` to `to`.
pub fn subsummary_diff_path(from: &Checksum, to: &Checksum) -> String {
    format!("summaries/{from}-{to}.delta")
}

/// `summaries/<sha256(index)>.idx.sig`: the index signature file.
pub fn index_sig_path(index_digest: &Checksum) -> String {
    format!("summaries/{index_digest}.idx.sig")
}

/// Gunzips one gzip member of at most `cap` bytes; trailing bytes are an error.
///
/// Allocates at most `cap` bytes of output plus a 64 KiB buffer and the inflate state.
pub fn gunzip(data: &[u8], cap: u64, what: &'static str) -> Result<Vec<u8>, SummaryIndexError> {
    let mut dec = flate2::bufread::GzDecoder::new(data);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = dec.read(&mut buf).map_err(|e| SummaryIndexError::Gzip {
            what,
            msg: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if (out.len() as u64).saturating_add(n as u64) > cap {
            return Err(SummaryIndexError::TooLarge { what, cap });
        }
        out.try_reserve(n)
            .map_err(|_| SummaryIndexError::TooLarge { what, cap })?;
        out.extend_from_slice(chunk);
    }
    if !dec.into_inner().is_empty() {
        return Err(SummaryIndexError::TrailingData { what });
    }
    Ok(out)
}

/// Gunzips a `summaries/<D>.gz` subsummary (at most `cap` bytes). The caller checks that
/// its SHA-256 is `D`. Allocates at most `cap` bytes of output (see [`gunzip`]).
pub fn decompress_subsummary(gz: &[u8], cap: u64) -> Result<Vec<u8>, SummaryIndexError> {
    gunzip(gz, cap, "subsummary")
}

/// Applies an uncompressed subsummary diff to `old`, producing at most `cap` bytes.
///
/// Exactly flatpak's `flatpak_summary_apply_diff` after its gunzip: any op whose size
/// exceeds what remains of `old` or of the data, or an unknown kind, is an error; data
/// bytes not consumed by the ops are ignored.
///
/// Allocates at most `cap` bytes (the output); output is reserved only as ops copy real
/// bytes, never from the declared op count.
pub fn apply_diff(old: &[u8], diff: &[u8], cap: u64) -> Result<Vec<u8>, SummaryIndexError> {
    let bad = SummaryIndexError::Diff;
    if diff.get(..4) != Some(&DIFF_MAGIC[..]) {
        return Err(bad("missing xadf magic"));
    }
    let n_ops = diff
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or(bad("truncated header"))?;
    let ops_len = usize::try_from(n_ops)
        .ok()
        .and_then(|n| n.checked_mul(4))
        .ok_or(bad("op count overflows"))?;
    let data_start = ops_len.checked_add(8).ok_or(bad("op count overflows"))?;
    let ops = diff.get(8..data_start).ok_or(bad("ops past the end"))?;
    let mut data = diff.get(data_start..).unwrap_or_default();
    let mut old = old;
    let mut out = Vec::new();
    for chunk in ops.chunks_exact(4) {
        let op = u32::from_le_bytes(<[u8; 4]>::try_from(chunk).map_err(|_| bad("short op"))?);
        let kind = op >> 28;
        let size = usize::try_from(op & 0x0fff_ffff).map_err(|_| bad("size overflows"))?;
        match kind {
            0 | 1 => {
                let (head, tail) = old.split_at_checked(size).ok_or(bad("op reads past old"))?;
                if kind == 0 {
                    push_capped(&mut out, head, cap)?;
                }
                old = tail;
            }
            2 => {
                let (head, tail) = data
                    .split_at_checked(size)
                    .ok_or(bad("op reads past data"))?;
                push_capped(&mut out, head, cap)?;
                data = tail;
            }
            _ => return Err(bad("unknown op kind")),
        }
    }
    Ok(out)
}

fn push_capped(out: &mut Vec<u8>, bytes: &[u8], cap: u64) -> Result<(), SummaryIndexError> {
    let too_large = SummaryIndexError::TooLarge {
        what: "subsummary diff output",
        cap,
    };
    if (out.len() as u64).saturating_add(bytes.len() as u64) > cap {
        return Err(too_large);
    }
    out.try_reserve(bytes.len()).map_err(|_| too_large)?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Gunzips a `summaries/<O>-<D>.delta` file (at most `diff_cap` bytes) and applies it to
/// the old subsummary (output at most `cap` bytes). The caller checks that the result's
/// SHA-256 is `D`.
///
/// Allocates at most `diff_cap + cap` bytes plus the gunzip buffer.
pub fn apply_subsummary_diff(
    old: &[u8],
    delta_gz: &[u8],
    diff_cap: u64,
    cap: u64,
) -> Result<Vec<u8>, SummaryIndexError> {
    let diff = gunzip(delta_gz, diff_cap, "subsummary diff")?;
    apply_diff(old, &diff, cap)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use std::io::Write;

    fn diff(ops: &[(u32, u32)], data: &[u8]) -> Vec<u8> {
        let mut v = b"xadf".to_vec();
        v.extend_from_slice(&(ops.len() as u32).to_le_bytes());
        for (k, s) in ops {
            v.extend_from_slice(&((k << 28) | s).to_le_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn applies_flatpak_diffs() {
        let old = b"hello cruel world";
        let d = diff(&[(0, 6), (1, 6), (2, 4), (0, 5)], b"big ");
        assert_eq!(apply_diff(old, &d, 100).unwrap(), b"hello big world");
        assert!(matches!(
            apply_diff(old, &d, 14),
            Err(SummaryIndexError::TooLarge { .. })
        ));
        assert!(apply_diff(old, &diff(&[(0, 18)], b""), 100).is_err());
        assert!(apply_diff(old, &diff(&[(1, 18)], b""), 100).is_err());
        assert!(apply_diff(old, &diff(&[(2, 1)], b""), 100).is_err());
        assert!(apply_diff(old, &diff(&[(3, 0)], b""), 100).is_err());
        for n in 0..d.len() {
            assert!(apply_diff(old, &d[..n], 100).is_err(), "prefix {n}");
        }
        let mut huge = b"xadf".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(apply_diff(old, &huge, 100).is_err());
    }

    #[test]
    fn gunzip_caps_and_trailing() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&[7u8; 1000]).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(decompress_subsummary(&gz, 1000).unwrap(), vec![7u8; 1000]);
        assert!(matches!(
            decompress_subsummary(&gz, 999),
            Err(SummaryIndexError::TooLarge { .. })
        ));
        let mut t = gz.clone();
        t.push(1);
        assert!(matches!(
            decompress_subsummary(&t, 1000),
            Err(SummaryIndexError::TrailingData { .. })
        ));
        for n in 0..gz.len() {
            assert!(decompress_subsummary(&gz[..n], 1000).is_err(), "prefix {n}");
        }
    }
}
