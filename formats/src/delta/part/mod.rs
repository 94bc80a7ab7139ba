//! Static-delta part files: the compression byte, bounded decompression, and the payload.
//!
//! A part file (`deltas/…/<i>`, or the value of the superblock metadata key of the same name
//! for `--inline` deltas) is the serialization of `(yay)`: one compression byte followed by
//! the (possibly compressed) payload. Byte `0x00` means "stored", `'x'` means one `.xz`
//! stream (LZMA2, what ostree always writes). Anything else is rejected, as
//! `_ostree_static_delta_part_open` in `src/libostree/ostree-repo-static-delta-core.c` does.
//!
//! The payload is `(a(uuu)aa(ayay)ayay)` (`OSTREE_STATIC_DELTA_PART_PAYLOAD_FORMAT_V0`,
//! `ostree-repo-static-delta-private.h`): a mode table whose `u` values are **big-endian**,
//! a table of xattr lists, the raw data blob that operations address by offset, and the
//! operation bytecode (see [`super::ops`]). GVariant framing is little-endian.
//!
//! The part header's "uncompressed size" is the sum of the *objects'* content sizes, not the
//! payload size (payloads of real deltas exceed it), so decompression takes an explicit cap;
//! [`super::superblock::PartHeader::payload_cap`] derives a generous one from the header.
//! Output past the cap is an error, never an allocation.
//!
//! Layout: `compression.rs` (the compression byte, whole-buffer and streaming
//! decompression under a cap), `dict.rs` (the dictionary a part's decoder needs, read
//! from the part's first bytes) and `payload.rs` (the payload's tables, blob and ops).

mod compression;
mod dict;
mod payload;

pub use compression::{Compression, PartError, PartPayloadReader, XZ_MEMLIMIT, decompress, split};
pub(crate) use dict::XZ_MAGIC;
pub use dict::{DICT_PROBE_MAX, DecoderNeed, decoder_need};
pub use payload::{
    FileMode, MAX_XATTR_TABLE, PAYLOAD_TAIL, PAYLOAD_TYPE, PartPayloadRef, PayloadError, Xattr,
    XattrsRef, payload_ranges,
};

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use std::io::{self, Read, Write};

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        let mut v = vec![b'x'];
        v.extend(e.finish().unwrap());
        v
    }

    /// A payload with `n_modes` modes, one xattr entry, a blob and ops, serialized.
    fn payload(blob_len: usize, ops: &[u8]) -> Vec<u8> {
        use crate::gvariant::OwnedValue as V;
        let modes = (0..3)
            .map(|i| V::Tuple(vec![V::u32_be(i), V::u32_be(i), V::u32_be(0o100644)]))
            .collect();
        let xattr = V::array(
            "(ayay)",
            vec![V::Tuple(vec![
                V::bytes(b"user.a\0".to_vec()),
                V::bytes(b"v".to_vec()),
            ])],
        );
        let blob: Vec<u8> = (0..blob_len).map(|i| (i * 7) as u8).collect();
        V::Tuple(vec![
            V::array("(uuu)", modes),
            V::array("a(ayay)", vec![xattr]),
            V::bytes(blob),
            V::bytes(ops.to_vec()),
        ])
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn payload_ranges_agree_with_the_parser_for_every_offset_width() {
        // Lengths that give 1-, 2- and 4-byte framing offsets.
        for blob_len in [10usize, 300, 70_000] {
            let ops = [b'R', b'R'];
            let data = payload(blob_len, &ops);
            let tail = &data[data.len().saturating_sub(PAYLOAD_TAIL)..];
            let [m, x, b, o] = payload_ranges(data.len() as u64, tail).unwrap();
            let whole = PartPayloadRef::from_bytes(&data).unwrap();
            let at = |r: &std::ops::Range<u64>| &data[r.start as usize..r.end as usize];
            assert_eq!(at(&b), whole.blob(), "blob of {blob_len}");
            assert_eq!(at(&o), whole.ops_bytes());
            let split = PartPayloadRef::from_tables(at(&m), at(&x), at(&o)).unwrap();
            assert_eq!(split.n_modes(), 3);
            assert_eq!(split.mode(2), whole.mode(2));
            assert_eq!(split.n_xattrs(), 1);
            assert_eq!(
                split.xattrs(0).unwrap().entries().unwrap(),
                whole.xattrs(0).unwrap().entries().unwrap()
            );
            assert!(split.blob().is_empty());
            // Every shorter tail that still covers the offsets works; a corrupt one fails.
            let mut bad = data.clone();
            let n = bad.len();
            bad[n - 1] = 0xff;
            let bt = &bad[n.saturating_sub(PAYLOAD_TAIL)..];
            assert!(
                payload_ranges(n as u64, bt).is_err(),
                "corrupt tail of {blob_len}"
            );
        }
        assert!(payload_ranges(2, &[0, 0]).is_err());
        assert!(payload_ranges(100, &[]).is_err());
    }

    fn read_all<R: Read>(mut r: R) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn stored_and_xz_round_trip_with_exact_cap() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut stored = vec![0u8];
        stored.extend_from_slice(&data);
        let packed = xz(&data);
        for file in [&stored, &packed] {
            assert_eq!(
                decompress(file, data.len() as u64).unwrap().as_ref(),
                &data[..]
            );
            assert_eq!(
                read_all(PartPayloadReader::new(&file[..], data.len() as u64)).unwrap(),
                data
            );
            let cap = data.len() as u64 - 1;
            assert_eq!(
                decompress(file, cap).unwrap_err(),
                PartError::PayloadTooLarge { cap }
            );
            let e = read_all(PartPayloadReader::new(&file[..], cap)).unwrap_err();
            assert_eq!(
                PartError::from_io(&e),
                Some(&PartError::PayloadTooLarge { cap })
            );
        }
    }

    #[test]
    fn rejects_bad_compression_truncation_and_trailing_bytes() {
        assert_eq!(decompress(b"", 10).unwrap_err(), PartError::Empty);
        assert_eq!(
            decompress(b"0abc", 10).unwrap_err(),
            PartError::UnknownCompression(b'0')
        );
        let packed = xz(b"hello hello hello");
        for n in 1..packed.len() {
            assert!(decompress(&packed[..n], 100).is_err(), "prefix {n}");
            assert!(
                read_all(PartPayloadReader::new(&packed[..n], 100)).is_err(),
                "prefix {n}"
            );
        }
        let mut trailing = packed.clone();
        trailing.push(0);
        assert!(matches!(
            decompress(&trailing, 100),
            Err(PartError::TrailingData { .. })
        ));
        let e = read_all(PartPayloadReader::new(&trailing[..], 100)).unwrap_err();
        assert!(matches!(
            PartError::from_io(&e),
            Some(PartError::TrailingData { .. })
        ));
    }
}
