//! The static-delta operation bytecode, decoded as an iterator of typed, range-checked ops.
//!
//! Each operation is one opcode byte followed by unsigned LEB128 varints (at most 10 bytes,
//! `_ostree_read_varuint64` in `src/libostree/ostree-varint.c`). Semantics follow
//! `src/libostree/ostree-repo-static-delta-processing.c`:
//!
//! | op | byte | arguments |
//! |---|---|---|
//! | open-splice-and-close | `S` | metadata object: `size, offset`; file object: `mode, xattr, size, offset` |
//! | open | `o` | `mode, xattr, size` |
//! | write | `w` | `size, offset` (into the read source if one is set, else into the blob) |
//! | set-read-source | `r` | `offset` of a 32-byte checksum in the blob |
//! | unset-read-source | `R` | — |
//! | close | `c` | — |
//! | bspatch | `B` | `offset, size` of the patch in the blob |
//!
//! Objects are created in the order of the part header's object list; `S` and `c` move to
//! the next one, and both also clear the read source.
//!
//! The decoder is stricter than ostree where ostree would abort (`g_assert`) or silently
//! produce a wrong object: mode and xattr indices are checked against the tables (ostree
//! does not check them), `o`/`S` while an object is open, `w`/`B`/`c` with no object open,
//! `B` without a read source or after a `w`, writes that exceed or fall short of the size
//! given to `o`, and a stream that ends with an object open or with objects of the list
//! not produced are all errors. Blob ranges are checked as ostree's `validate_ofs` does;
//! ranges into a read source cannot be checked here (the executor must).
//!
//! Layout: `opcode.rs` (the opcode bytes), `op.rs` (a decoded operation), `error.rs`
//! ([`OpError`]), `blob.rs` (how the decoder reads the part's blob), `decode.rs` (the
//! decoder [`OpsOf`] and the varint encoding), `counts.rs` (opcode counts of a part).

mod blob;
mod counts;
mod decode;
mod error;
mod op;
mod opcode;

pub use blob::Blob;
pub use counts::{OpCounts, count};
pub use decode::{OpContext, OpContextOf, Ops, OpsOf, write_varint};
pub use error::OpError;
pub use op::{Op, OpOf, WriteSource, WriteSourceOf};
pub use opcode::OpCode;

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::delta::DeltaObjects;

    fn objects(types: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, t) in types.iter().enumerate() {
            v.push(*t);
            v.extend_from_slice(&[i as u8; 32]);
        }
        v
    }

    fn ops(parts: &[(u8, &[u64])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (op, args) in parts {
            v.push(*op);
            for a in *args {
                write_varint(&mut v, *a);
            }
        }
        v
    }

    #[test]
    fn decodes_every_opcode() {
        let list = objects(&[2, 1, 1, 1]);
        let blob: Vec<u8> = (0..100u8).collect();
        let ctx = OpContext {
            objects: DeltaObjects::new(&list).unwrap(),
            n_modes: 2,
            n_xattrs: 1,
            blob: &blob,
        };
        let stream = ops(&[
            (b'S', &[3, 10]),      // dirtree = blob[10..13]
            (b'S', &[1, 0, 4, 0]), // file 1 = blob[0..4]
            (b'r', &[50]),
            (b'o', &[0, 0, 6]),
            (b'w', &[2, 90]), // from the read source at 90
            (b'R', &[]),
            (b'w', &[4, 96]), // from the blob
            (b'c', &[]),
            (b'r', &[20]),
            (b'o', &[1, 0, 300]),
            (b'B', &[60, 5]),
            (b'c', &[]),
            (b'R', &[]),
        ]);
        let got: Vec<Op<'_>> = Ops::new(&stream, ctx).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 13);
        assert!(
            matches!(got[0], Op::SpliceMetadata { data, object } if data == &blob[10..13] && object.index == 0)
        );
        assert!(
            matches!(got[1], Op::SpliceFile { mode: 1, xattrs: 0, data, .. } if data == &blob[0..4])
        );
        assert!(matches!(got[2], Op::SetReadSource { checksum } if checksum.0[..] == blob[50..82]));
        assert!(matches!(
            got[4],
            Op::Write {
                size: 2,
                source: WriteSource::ReadSource { offset: 90 }
            }
        ));
        assert!(
            matches!(got[6], Op::Write { size: 4, source: WriteSource::Blob(b) } if b == &blob[96..100])
        );
        assert!(matches!(got[7], Op::Close { object } if object.index == 2));
        assert!(matches!(got[10], Op::Bspatch { patch, size: 300 } if patch == &blob[60..65]));
        let c = count(&stream, ctx).unwrap();
        assert_eq!(c.0, [2, 2, 2, 2, 2, 2, 1]);
        assert_eq!(c.total(), 13);
    }

    #[test]
    fn rejects_invalid_streams() {
        let list = objects(&[1, 1]);
        let blob = [0u8; 40];
        let ctx = OpContext {
            objects: DeltaObjects::new(&list).unwrap(),
            n_modes: 1,
            n_xattrs: 1,
            blob: &blob,
        };
        let bad = |s: Vec<u8>| count(&s, ctx).unwrap_err();
        assert!(matches!(
            bad(ops(&[(b'S', &[1, 0, 1, 0])])),
            OpError::ModeIndex { index: 1, .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 3, 1, 0])])),
            OpError::XattrIndex { index: 3, .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, 10, 35])])),
            OpError::BlobRange { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, u64::MAX, 2])])),
            OpError::BlobRange { .. }
        ));
        assert!(matches!(
            bad(vec![b'x']),
            OpError::UnknownOpcode { byte: b'x', .. }
        ));
        assert!(matches!(
            bad(vec![b'S', 0x80]),
            OpError::TruncatedVarint { .. }
        ));
        assert!(matches!(
            bad(vec![
                b'r', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02
            ]),
            OpError::VarintOverflow { .. }
        ));
        assert!(matches!(
            bad(vec![
                b'r', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0
            ]),
            OpError::VarintOverflow { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'w', &[1, 0])])),
            OpError::NotOpen { .. }
        ));
        assert!(matches!(bad(ops(&[(b'c', &[])])), OpError::NotOpen { .. }));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 1]), (b'o', &[0, 0, 1])])),
            OpError::AlreadyOpen { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 1]), (b'w', &[2, 0])])),
            OpError::Overflow { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 2]), (b'w', &[1, 0]), (b'c', &[])])),
            OpError::ShortObject { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'o', &[0, 0, 2]), (b'B', &[0, 4])])),
            OpError::NoReadSource { .. }
        ));
        assert!(matches!(
            bad(ops(&[
                (b'r', &[0]),
                (b'o', &[0, 0, 2]),
                (b'w', &[1, 0]),
                (b'B', &[0, 4])
            ])),
            OpError::Overflow { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'r', &[9])])),
            OpError::BlobRange { .. }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, 1, 0])])),
            OpError::Unfinished {
                produced: 1,
                count: 2,
                open: false
            }
        ));
        assert!(matches!(
            bad(ops(&[(b'S', &[0, 0, 1, 0]), (b'o', &[0, 0, 0])])),
            OpError::Unfinished { open: true, .. }
        ));
        assert!(matches!(
            bad(ops(&[
                (b'S', &[0, 0, 1, 0]),
                (b'S', &[0, 0, 1, 0]),
                (b'S', &[0, 0, 1, 0])
            ])),
            OpError::NoMoreObjects {
                index: 2,
                count: 2,
                ..
            }
        ));
        let meta = objects(&[3]);
        let mctx = OpContext {
            objects: DeltaObjects::new(&meta).unwrap(),
            ..ctx
        };
        assert!(matches!(
            count(&ops(&[(b'o', &[0, 0, 0])]), mctx),
            Err(OpError::OpenNonFile { .. })
        ));
        // The iterator stops after the first error.
        let s = vec![b'x', b'R'];
        let mut it = Ops::new(&s, ctx);
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }
}
