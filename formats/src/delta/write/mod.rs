//! Writers for static delta files: superblocks and parts, in ostree's format — the inverse
//! of [`super::superblock`], [`super::signed`] and [`super::part`].
//!
//! - [`PartBuilder`] (`payload.rs`): a part's objects, as the payload
//!   `(a(uuu)aa(ayay)ayay)` and the 33-byte object list of its header; `S` for whole
//!   objects, `r o B c R` for a bsdiff against an old file.
//! - [`compress_part`] (`compress.rs`): the part file `(yay)`, one xz stream (CRC64, a
//!   bounded dictionary) or stored; [`stored_xz_part`] (`stored_xz.rs`): one xz stream
//!   of uncompressed LZMA2 chunks, for payloads xz cannot shrink.
//! - [`SuperblockWriter`] (`superblock.rs`): the superblock with its endianness marker,
//!   inline parts and commitmeta, in either byte order; [`signed_superblock`] wraps it
//!   in `OSTSGNDT` `(taya{sv})` with signatures.
//!
//! Everything here is bytes in, bytes out: reading the repository, pairing files and
//! running bsdiff belong to the engine (`engine/src/publish/delta`).

mod compress;
mod payload;
mod stored_xz;
mod superblock;

pub use compress::{
    MAX_DICT_SIZE, PartCompression, compress_part, compress_part_as, dict_size_for, stored_part,
};
pub use payload::{BuiltPart, PartBuilder, WriteError};
pub use stored_xz::stored_xz_part;
pub use superblock::{PartEntry, SuperblockWriter, signed_superblock};

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use crate::delta::DeltaName;
    use crate::delta::DeltaObjects;
    use crate::delta::ops::{Op, OpError};
    use crate::delta::part::{PartPayloadRef, decompress};
    use crate::delta::signed::SignedSuperblockRef;
    use crate::delta::superblock::{ByteOrder, Endianness, SuperblockRef};
    use crate::gvariant::OwnedValue;
    use crate::metadata::Metadata;
    use crate::object::ObjectType;

    fn commit() -> Vec<u8> {
        OwnedValue::Tuple(vec![
            OwnedValue::array("{sv}", vec![]),
            OwnedValue::bytes(vec![]),
            OwnedValue::array("(say)", vec![]),
            OwnedValue::str("s"),
            OwnedValue::str(""),
            OwnedValue::u64_be(1),
            OwnedValue::bytes(vec![1; 32]),
            OwnedValue::bytes(vec![2; 32]),
        ])
        .to_bytes()
        .unwrap()
    }

    fn part() -> BuiltPart {
        let mut b = PartBuilder::new();
        b.add_metadata(ObjectType::DirMeta, &Checksum([3; 32]), b"meta")
            .unwrap();
        let x = vec![(b"user.a\0".to_vec(), b"1".to_vec())];
        b.add_file(&Checksum([4; 32]), (0, 0, 0o100644), &x, b"hello", false);
        b.add_file(
            &Checksum([5; 32]),
            (0, 0, 0o120777),
            &vec![],
            b"target",
            true,
        );
        b.add_bsdiff(
            &Checksum([6; 32]),
            (1, 2, 0o100755),
            &x,
            &Checksum([4; 32]),
            9,
            b"patch",
        );
        assert_eq!(b.len(), 4);
        b.finish().unwrap()
    }

    #[test]
    fn payload_round_trips_through_the_parsers() {
        let built = part();
        assert_eq!(built.content_size, 4 + 5 + 9);
        let objects = DeltaObjects::new(&built.objects).unwrap();
        let pl = PartPayloadRef::from_bytes(&built.payload).unwrap();
        assert_eq!(pl.n_modes(), 3);
        assert_eq!(pl.n_xattrs(), 2);
        let ops: Vec<Result<Op<'_>, OpError>> = pl.ops(objects).collect();
        assert!(ops.iter().all(Result::is_ok), "{ops:?}");
        assert_eq!(ops.len(), 3 + 5);
        for file in [
            compress_part(&built.payload, 6, MAX_DICT_SIZE).unwrap(),
            stored_part(&built.payload),
        ] {
            assert_eq!(&*decompress(&file, 1 << 20).unwrap(), &built.payload[..]);
        }
    }

    #[test]
    fn x86_filtered_parts_decode_and_state_their_dictionary() {
        use crate::delta::part::{DecoderNeed, decoder_need};
        // Bytes that look like x86 calls (E8 + rel32), which the filter rewrites.
        let mut payload = Vec::new();
        for i in 0u32..20_000 {
            payload.push(0xe8);
            payload.extend_from_slice(&i.wrapping_mul(7).to_le_bytes());
        }
        let how = PartCompression {
            preset: 6,
            max_dict: 4 << 20,
            nice_len: Some(32),
            x86: true,
            hash_chain: false,
        };
        let file = compress_part_as(&payload, &how).unwrap();
        assert_eq!(&*decompress(&file, 1 << 20).unwrap(), &payload[..]);
        assert_eq!(
            decoder_need(&file).unwrap(),
            DecoderNeed::Dict(u64::from(dict_size_for(payload.len(), 4 << 20)))
        );
        let plain = compress_part(&payload, 6, 4 << 20).unwrap();
        assert_ne!(plain, file);
        assert!(how.encoder_memory(payload.len()) >= 12 * (64 << 10));
    }

    #[test]
    fn hash_chain_parts_decode_to_the_payload() {
        let payload: Vec<u8> = (0u32..200_000)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 29) as u8)
            .chain(std::iter::repeat_n(b'a', 50_000))
            .collect();
        let how = PartCompression {
            preset: 6,
            max_dict: 4 << 20,
            nice_len: Some(32),
            x86: false,
            hash_chain: true,
        };
        let file = compress_part_as(&payload, &how).unwrap();
        assert_eq!(&*decompress(&file, 1 << 20).unwrap(), &payload[..]);
        let trees = compress_part_as(
            &payload,
            &PartCompression {
                hash_chain: false,
                ..how
            },
        );
        assert_ne!(trees.unwrap(), file, "the match finder was not changed");
        assert!(
            how.encoder_memory(payload.len())
                < 12 * u64::from(dict_size_for(payload.len(), 4 << 20))
        );
    }

    #[test]
    fn dictionary_is_bounded_and_fits_the_payload() {
        assert_eq!(dict_size_for(10, MAX_DICT_SIZE), 64 << 10);
        assert_eq!(dict_size_for(3 << 20, MAX_DICT_SIZE), 4 << 20);
        assert_eq!(dict_size_for(100 << 20, MAX_DICT_SIZE), 8 << 20);
        assert_eq!(dict_size_for(100 << 20, 32 << 20), 8 << 20);
    }

    #[test]
    fn superblock_round_trips_in_both_orders_signed_and_inline() {
        let built = part();
        let file = compress_part(&built.payload, 6, MAX_DICT_SIZE).unwrap();
        for (order, marker, inline) in [
            (ByteOrder::Little, true, false),
            (ByteOrder::Big, true, true),
            (ByteOrder::Little, false, false),
            (ByteOrder::Big, false, false),
        ] {
            let w = SuperblockWriter {
                metadata: Metadata::new(),
                timestamp: 1_700_000_000,
                from: Some(Checksum([8; 32])),
                to: Checksum([9; 32]),
                commit: commit(),
                commitmeta: Some(Metadata::new().to_bytes().unwrap()),
                parts: vec![PartEntry {
                    checksum: Checksum::of(&file),
                    size: file.len() as u64,
                    uncompressed_size: built.payload.len() as u64,
                    objects: built.objects.clone(),
                    inline: inline.then(|| file.clone()),
                }],
                fallbacks: vec![(Checksum([7; 32]), 5000, 9000)],
                byte_order: order,
                endianness_marker: marker,
            };
            let bytes = w.to_bytes().unwrap();
            let sb = SuperblockRef::from_bytes(&bytes).unwrap();
            assert_eq!(
                sb.endianness().byte_order(),
                order,
                "{order:?} marker={marker}"
            );
            if marker {
                assert!(!matches!(sb.endianness(), Endianness::Heuristic(_)));
            }
            assert_eq!(
                sb.name(),
                DeltaName::new(Some(Checksum([8; 32])), Checksum([9; 32]))
            );
            assert_eq!(sb.timestamp(), 1_700_000_000);
            assert_eq!(sb.parts()[0].size, file.len() as u64);
            assert_eq!(sb.parts()[0].uncompressed_size, built.payload.len() as u64);
            assert_eq!(sb.fallbacks()[0].compressed_size, 5000);
            assert_eq!(sb.fallbacks()[0].uncompressed_size, 9000);
            assert_eq!(
                sb.inline_part(0).unwrap().map(<[u8]>::to_vec),
                inline.then(|| file.clone())
            );
            assert!(sb.commitmeta().unwrap().is_some());
            assert!(sb.commit().is_ok());
            let signed = signed_superblock(&bytes, &[("ed25519", vec![vec![0xAA; 64]])]).unwrap();
            let s = SignedSuperblockRef::from_bytes(&signed).unwrap();
            assert_eq!(s.superblock_bytes(), &bytes[..]);
            assert_eq!(s.engines(), vec!["ed25519"]);
        }
    }
}
