//! The byte format of cfsync's object index (`<repo>/cfsync/object-index`): which stored
//! commit holds each OSTree object. Little-endian:
//!
//! ```text
//! "CFSYNCX1"  u32 commit count c  u32 0  c x [u8; 32] commit ids (sorted)
//! u64 record count n   n x { [u8; 32] object id, u32 commit ordinal }  (sorted by id)
//! ```
//! The file is a cache, not trusted input: [`IndexTable::decode`] refuses anything that
//! does not hold (the engine then rebuilds the index from the commit streams).

use std::collections::BTreeMap;

use crate::checksum::Checksum;

/// The magic at the start of the file.
pub const MAGIC: &[u8; 8] = b"CFSYNCX1";
/// Refuse index files claiming more records than this.
pub const MAX_RECORDS: u64 = 64 * 1024 * 1024;
/// Bytes of one record: object id and commit ordinal.
const RECORD_LEN: usize = 32 + 4;

/// The decoded contents of an object index file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexTable {
    /// The commits the index covers (sorted when written by cfsync).
    pub commits: Vec<Checksum>,
    /// Object id → ordinal in `commits` of a commit holding it.
    pub records: BTreeMap<Checksum, u32>,
}

impl IndexTable {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let cap = self
            .commits
            .len()
            .saturating_mul(32)
            .saturating_add(self.records.len().saturating_mul(RECORD_LEN))
            .saturating_add(24);
        let mut out = Vec::with_capacity(cap);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.commits.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for c in &self.commits {
            out.extend_from_slice(&c.0);
        }
        out.extend_from_slice(&(self.records.len() as u64).to_le_bytes());
        for (id, ord) in &self.records {
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&ord.to_le_bytes());
        }
        out
    }

    /// Parses the file; `None` when it is not a well-formed index (wrong magic, counts
    /// that do not match the length, an ordinal naming no commit).
    pub fn decode(b: &[u8]) -> Option<Self> {
        let rest = b.strip_prefix(MAGIC.as_slice())?;
        let c = u32::from_le_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
        let mut rest = rest.get(8..)?;
        let mut commits = Vec::with_capacity(c.min(1 << 20));
        for _ in 0..c {
            commits.push(Checksum::from_slice(rest.get(..32)?).ok()?);
            rest = rest.get(32..)?;
        }
        let n = u64::from_le_bytes(rest.get(0..8)?.try_into().ok()?);
        let expected = n
            .checked_mul(RECORD_LEN as u64)
            .and_then(|r| r.checked_add(8))?;
        if n > MAX_RECORDS || rest.len() as u64 != expected {
            return None;
        }
        let mut records = BTreeMap::new();
        for rec in rest.get(8..)?.chunks_exact(RECORD_LEN) {
            let id = Checksum::from_slice(rec.get(..32)?).ok()?;
            let ord = u32::from_le_bytes(rec.get(32..36)?.try_into().ok()?);
            if ord as usize >= commits.len() {
                return None;
            }
            records.insert(id, ord);
        }
        Some(Self { commits, records })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn sample() -> IndexTable {
        let commits = vec![Checksum::of(b"a"), Checksum::of(b"b")];
        let records = [(b"x", 0u32), (b"y", 1), (b"z", 1)]
            .into_iter()
            .map(|(id, ord)| (Checksum::of(id), ord))
            .collect();
        IndexTable { commits, records }
    }

    #[test]
    fn round_trips() {
        let t = sample();
        let bytes = t.encode();
        assert_eq!(bytes.len(), 24 + 2 * 32 + 3 * 36);
        assert_eq!(IndexTable::decode(&bytes), Some(t));
        let empty = IndexTable::default();
        assert_eq!(IndexTable::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn refuses_what_does_not_hold() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert_eq!(IndexTable::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(IndexTable::decode(&longer), None);
        let mut bad_magic = bytes.clone();
        bad_magic[0] ^= 1;
        assert_eq!(IndexTable::decode(&bad_magic), None);
        // The last record's ordinal names a third commit.
        let mut bad_ord = bytes.clone();
        let at = bad_ord.len() - 4;
        bad_ord[at..].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(IndexTable::decode(&bad_ord), None);
        // A record count that overflows when multiplied.
        let mut huge = bytes;
        let at = 16 + 2 * 32;
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(IndexTable::decode(&huge), None);
    }

    /// Writes the seed corpus of the `object_index` fuzz target when
    /// `CFSYNC_WRITE_CORPUS` names the fuzz directory.
    #[test]
    fn seed_corpus() {
        let Some(dir) = std::env::var_os("CFSYNC_WRITE_CORPUS") else {
            return;
        };
        let dir = std::path::Path::new(&dir).join("corpus/object_index");
        std::fs::create_dir_all(&dir).unwrap();
        let one = IndexTable {
            commits: vec![Checksum::of(b"c")],
            records: [(Checksum::of(b"o"), 0)].into_iter().collect(),
        };
        for (name, t) in [
            ("empty", IndexTable::default()),
            ("one", one),
            ("two-commits", sample()),
        ] {
            std::fs::write(dir.join(name), t.encode()).unwrap();
        }
    }
}
