//! The byte format of cfsync's resume journal (`<repo>/cfsync/partial/<commit>.journal`):
//! an append-only file of checksummed records, one per verified object of a pull.
//!
//! ```text
//! "CFSJRNL1"                                   magic (format version 1)
//! record(header)                                commit id, fs-verity algorithm, boot id
//! record(object)*                               one per object, in insertion order
//!
//! record  := u32 LE payload length, payload, [u8; 8] first 8 bytes of
//!            sha256(length ‖ payload)
//! header  := [u8; 32] commit, u8 n, n bytes algorithm ("fsverity-sha512-12"),
//!            u8 m, m bytes boot id (/proc/sys/kernel/random/boot_id, may be empty)
//! object  := u8 kind (0: no external object, 1: external), [u8; 32] OSTree id,
//!            for kind 1: u8 n, n bytes external object id (hex), then the stored bytes
//! ```
//! A record whose length or checksum does not hold ends the journal ([`next_record`]
//! returns `None`): a torn tail left by `kill -9` (or a crash mid-write) is dropped, and
//! so is everything after it. Checking what the records say (hashes, external objects)
//! is the engine's business; this module only frames and splits bytes.

use sha2::{Digest, Sha256};

use crate::checksum::Checksum;

/// The magic at the start of a journal file (format version 1).
pub const MAGIC: &[u8; 8] = b"CFSJRNL1";
/// Largest record payload accepted when decoding (a metadata object is at most 10 MiB; a
/// file header with xattrs at most 10 MiB plus 128 bytes of inline content).
pub const MAX_RECORD: usize = 24 * 1024 * 1024;
/// Object kind: the stored bytes are the whole object.
const KIND_INLINE: u8 = 0;
/// Object kind: a large file whose content is an external (composefs) object.
const KIND_EXTERNAL: u8 = 1;
/// Length prefix plus checksum suffix of a record.
const FRAME_LEN: usize = 4 + 8;

/// Why an object cannot be encoded as a journal record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The external object id is longer than 255 bytes.
    #[error("external object id too long")]
    ExternalIdTooLong,
    /// The record payload does not fit a `u32` length.
    #[error("object too large for a journal record")]
    RecordTooLarge,
}

/// The header record: which commit, fs-verity algorithm and boot the journal is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The commit being pulled.
    pub commit: Checksum,
    /// The repository's fs-verity algorithm, e.g. `fsverity-sha512-12`.
    pub algorithm: &'a [u8],
    /// The boot id of the machine when the journal was (re)written; may be empty.
    pub boot_id: &'a [u8],
}

/// One object record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRecord<'a> {
    /// The OSTree object id.
    pub id: Checksum,
    /// The external object id (hex), for a large file.
    pub external: Option<&'a [u8]>,
    /// The stored bytes (metadata GVariant, or sized file header plus inline content).
    pub data: &'a [u8],
}

fn record_sum(len_and_payload: &[u8]) -> [u8; 8] {
    let d = Sha256::digest(len_and_payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(d.get(..8).unwrap_or_default());
    out
}

/// Appends `len ‖ parts… ‖ sum` to `out`, the payload being the concatenation of `parts`.
fn frame(out: &mut Vec<u8>, parts: &[&[u8]]) -> Result<(), JournalError> {
    let len = parts
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.len()))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(JournalError::RecordTooLarge)?;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    let sum = record_sum(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&sum);
    Ok(())
}

/// Appends one record holding `payload` to `out`.
pub fn encode_record(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), JournalError> {
    frame(out, &[payload])
}

/// Splits the next record off `rest`; `None` at the end or at a torn/corrupt record
/// (then `rest` is left as it was).
pub fn next_record<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD {
        return None;
    }
    let end = 4usize.checked_add(len)?;
    let sum = rest.get(end..end.checked_add(8)?)?;
    let framed = rest.get(..end)?;
    if record_sum(framed) != sum {
        return None;
    }
    let payload = framed.get(4..)?;
    *rest = rest.get(end.checked_add(8)?..)?;
    Some(payload)
}

/// The payload of a header record. The algorithm and boot id are cut to 255 bytes.
pub fn encode_header(h: &Header<'_>) -> Vec<u8> {
    let alg = h.algorithm.get(..255).unwrap_or(h.algorithm);
    let boot = h.boot_id.get(..255).unwrap_or(h.boot_id);
    let mut p = Vec::with_capacity(34usize.saturating_add(alg.len()).saturating_add(boot.len()));
    p.extend_from_slice(&h.commit.0);
    p.push(alg.len() as u8);
    p.extend_from_slice(alg);
    p.push(boot.len() as u8);
    p.extend_from_slice(boot);
    p
}

/// Parses a header payload; `None` when it is malformed.
pub fn decode_header(p: &[u8]) -> Option<Header<'_>> {
    let commit = Checksum::from_slice(p.get(..32)?).ok()?;
    let n = usize::from(*p.get(32)?);
    let alg_end = 33usize.checked_add(n)?;
    let algorithm = p.get(33..alg_end)?;
    let m = usize::from(*p.get(alg_end)?);
    let boot_start = alg_end.checked_add(1)?;
    let boot_end = boot_start.checked_add(m)?;
    let boot_id = p.get(boot_start..boot_end)?;
    if p.len() != boot_end {
        return None;
    }
    Some(Header {
        commit,
        algorithm,
        boot_id,
    })
}

/// Appends the whole record (frame included) of one object to `out`.
pub fn encode_object(out: &mut Vec<u8>, rec: &ObjectRecord<'_>) -> Result<(), JournalError> {
    match rec.external {
        Some(ext) => {
            let ext_len = u8::try_from(ext.len()).map_err(|_| JournalError::ExternalIdTooLong)?;
            frame(
                out,
                &[&[KIND_EXTERNAL], &rec.id.0, &[ext_len], ext, rec.data],
            )
        }
        None => frame(out, &[&[KIND_INLINE], &rec.id.0, rec.data]),
    }
}

/// Parses an object payload; `None` when it is malformed.
pub fn decode_object(p: &[u8]) -> Option<ObjectRecord<'_>> {
    let kind = *p.first()?;
    let id = Checksum::from_slice(p.get(1..33)?).ok()?;
    match kind {
        KIND_INLINE => Some(ObjectRecord {
            id,
            external: None,
            data: p.get(33..)?,
        }),
        KIND_EXTERNAL => {
            let n = usize::from(*p.get(33)?);
            let end = 34usize.checked_add(n)?;
            Some(ObjectRecord {
                id,
                external: Some(p.get(34..end)?),
                data: p.get(end..)?,
            })
        }
        _ => None,
    }
}

/// The bytes of a record's frame around a payload of `len` bytes (for sizing buffers).
pub const fn framed_len(len: usize) -> usize {
    len.saturating_add(FRAME_LEN)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn record(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let mut out = Vec::new();
        encode_record(&mut out, b"first").unwrap();
        encode_record(&mut out, b"second").unwrap();
        let whole = out.len();
        encode_record(&mut out, b"third, torn").unwrap();
        for cut in whole..out.len() {
            let mut rest = &out[..cut];
            assert_eq!(next_record(&mut rest), Some(&b"first"[..]));
            assert_eq!(next_record(&mut rest), Some(&b"second"[..]));
            assert_eq!(next_record(&mut rest), None, "cut at {cut}");
        }
        let mut rest = &out[..];
        let mut n = 0;
        while next_record(&mut rest).is_some() {
            n += 1;
        }
        assert_eq!((n, rest.len()), (3, 0));
        assert_eq!(record(b"first").len(), framed_len(5));
    }

    #[test]
    fn a_flipped_byte_ends_the_journal() {
        let mut out = Vec::new();
        encode_record(&mut out, b"payload one").unwrap();
        encode_record(&mut out, b"payload two").unwrap();
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            let mut rest = &bad[..];
            let first = next_record(&mut rest);
            let second = next_record(&mut rest);
            // Either record may be lost, but nothing wrong is ever returned.
            assert!(
                first.is_none() || first == Some(&b"payload one"[..]),
                "flip at {i}"
            );
            assert!(
                second.is_none() || second == Some(&b"payload two"[..]),
                "flip at {i}"
            );
            assert!(
                first.is_none() || second.is_none(),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn an_oversized_length_is_refused() {
        let mut out = record(&[0u8; 16]);
        out[..4].copy_from_slice(&((MAX_RECORD + 1) as u32).to_le_bytes());
        assert_eq!(next_record(&mut &out[..]), None);
    }

    #[test]
    fn headers_round_trip_and_reject_trailing_bytes() {
        let h = Header {
            commit: Checksum::of(b"commit"),
            algorithm: b"fsverity-sha512-12",
            boot_id: b"0b8f2b3c",
        };
        let p = encode_header(&h);
        assert_eq!(decode_header(&p), Some(h));
        let mut longer = p.clone();
        longer.push(0);
        assert_eq!(decode_header(&longer), None);
        assert_eq!(decode_header(&p[..p.len() - 1]), None);
        let empty = Header { boot_id: b"", ..h };
        assert_eq!(decode_header(&encode_header(&empty)), Some(empty));
        let long = vec![b'x'; 300];
        let cut = Header {
            boot_id: &long,
            ..h
        };
        assert_eq!(
            decode_header(&encode_header(&cut)).unwrap().boot_id.len(),
            255
        );
    }

    #[test]
    fn objects_round_trip() {
        for rec in [
            ObjectRecord {
                id: Checksum::of(b"meta"),
                external: None,
                data: b"some gvariant",
            },
            ObjectRecord {
                id: Checksum::of(b"file"),
                external: Some(b"00ff"),
                data: b"header",
            },
        ] {
            let mut out = Vec::new();
            encode_object(&mut out, &rec).unwrap();
            let mut rest = &out[..];
            let p = next_record(&mut rest).unwrap();
            assert!(rest.is_empty());
            assert_eq!(decode_object(p), Some(rec));
        }
        assert_eq!(decode_object(&[2; 40]), None);
        assert_eq!(decode_object(&[0; 32]), None);
        let long = vec![b'0'; 256];
        let rec = ObjectRecord {
            id: Checksum::of(b"x"),
            external: Some(&long),
            data: b"",
        };
        assert_eq!(
            encode_object(&mut Vec::new(), &rec),
            Err(JournalError::ExternalIdTooLong)
        );
    }

    /// Writes the seed corpus of the `journal` fuzz target when `CFSYNC_WRITE_CORPUS`
    /// names the fuzz directory (`CFSYNC_WRITE_CORPUS=$PWD/fuzz cargo test -p
    /// cfsync-formats --lib journal::tests::seed_corpus`).
    #[test]
    fn seed_corpus() {
        let mut journal = MAGIC.to_vec();
        let header = Header {
            commit: Checksum::of(b"commit"),
            algorithm: b"fsverity-sha512-12",
            boot_id: b"4f6c3b0e-1a2b-4c5d-8e9f-0a1b2c3d4e5f",
        };
        encode_record(&mut journal, &encode_header(&header)).unwrap();
        let header_only = journal.clone();
        encode_object(
            &mut journal,
            &ObjectRecord {
                id: Checksum::of(b"metadata"),
                external: None,
                data: b"a metadata object",
            },
        )
        .unwrap();
        let ext = "ab".repeat(64);
        encode_object(
            &mut journal,
            &ObjectRecord {
                id: Checksum::of(b"large file"),
                external: Some(ext.as_bytes()),
                data: &[0, 0, 0, 12, 0, 0, 0, 0, 1, 2, 3, 4],
            },
        )
        .unwrap();
        let mut torn = journal.clone();
        torn.truncate(torn.len() - 5);
        let Some(dir) = std::env::var_os("CFSYNC_WRITE_CORPUS") else {
            return;
        };
        let dir = std::path::Path::new(&dir).join("corpus/journal");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in [
            ("header-only", header_only),
            ("two-objects", journal),
            ("torn-tail", torn),
        ] {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
