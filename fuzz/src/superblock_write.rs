//! The delta writers' round trip, shared by the fuzz target `superblock_write` and the
//! corpus replay (`formats/tests/fuzz_corpus.rs` includes this file by path).
//!
//! The input drives the writer (byte order, marker, from/to, parts made of metadata,
//! whole files, symlinks and bsdiff entries, part files stored, xz-compressed or xz of
//! uncompressed LZMA2 chunks, inline or not, fallbacks, signatures); whatever it writes
//! must parse back with the readers to the same fields: the superblock in both byte
//! orders, the signed wrapper, every part file through bounded decompression (capped at
//! the header's size, as ostree 2026.3 caps it), the payload and its ops. Any failure
//! is a bug.

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaObjects;
use cfsync_formats::delta::part::{PartPayloadRef, decompress};
use cfsync_formats::delta::signed::SignedSuperblockRef;
use cfsync_formats::delta::superblock::{ByteOrder, Endianness, SuperblockRef};
use cfsync_formats::delta::write::{
    MAX_DICT_SIZE, PartBuilder, PartEntry, SuperblockWriter, compress_part, signed_superblock,
    stored_part, stored_xz_part,
};
use cfsync_formats::gvariant::OwnedValue;
use cfsync_formats::metadata::Metadata;
use cfsync_formats::object::ObjectType;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        u64::from_le_bytes(b)
    }
    fn checksum(&mut self) -> Checksum {
        let mut c = [0u8; 32];
        c[0] = self.byte();
        c[31] = self.byte();
        Checksum(c)
    }
}

fn commit() -> Vec<u8> {
    OwnedValue::Tuple(vec![
        OwnedValue::array("{sv}", vec![]),
        OwnedValue::bytes(vec![]),
        OwnedValue::array("(say)", vec![]),
        OwnedValue::str("subject"),
        OwnedValue::str(""),
        OwnedValue::u64_be(1),
        OwnedValue::bytes(vec![1; 32]),
        OwnedValue::bytes(vec![2; 32]),
    ])
    .to_bytes()
    .expect("a fixed commit serializes")
}

/// Writes a delta described by `data`, reads it back, and checks every field.
pub fn superblock_write_round_trip(data: &[u8]) {
    let mut r = Input(data);
    let order = if r.byte() & 1 == 0 {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let marker = r.byte() & 1 == 0;
    let timestamp = r.u64();
    let from = (r.byte() & 1 == 1).then(|| r.checksum());
    let to = r.checksum();
    let mut parts = Vec::new();
    let mut payloads = Vec::new();
    for _ in 0..r.byte() % 6 {
        let mut b = PartBuilder::new();
        for _ in 0..r.byte() % 5 {
            let c = r.checksum();
            let len = usize::from(r.byte());
            let content = r.bytes(len);
            let mode = (u32::from(r.byte()), 0, 0o100000 | u32::from(r.byte()));
            let xattrs = if r.byte() & 1 == 1 {
                vec![(b"user.x\0".to_vec(), r.bytes(3))]
            } else {
                Vec::new()
            };
            match r.byte() % 4 {
                0 => b
                    .add_metadata(ObjectType::DirMeta, &c, &content)
                    .expect("dirmeta"),
                1 => b.add_file(&c, mode, &xattrs, &content, false),
                2 => b.add_file(&c, (0, 0, 0o120777), &Vec::new(), &content, true),
                _ => b.add_bsdiff(&c, mode, &xattrs, &r.checksum(), r.u64() >> 40, &content),
            }
        }
        let built = b.finish().expect("a part serializes");
        let file = match r.byte() % 3 {
            0 => compress_part(&built.payload, 0, MAX_DICT_SIZE).expect("xz"),
            1 => stored_xz_part(&built.payload),
            _ => stored_part(&built.payload),
        };
        parts.push(PartEntry {
            checksum: Checksum::of(&file),
            size: file.len() as u64,
            uncompressed_size: built.content_size.max(built.payload.len() as u64),
            objects: built.objects,
            inline: (r.byte() & 1 == 1).then(|| file.clone()),
        });
        payloads.push((built.payload, file));
    }
    let fallbacks: Vec<_> = (0..r.byte() % 4)
        .map(|_| (r.checksum(), r.u64() >> 16, r.u64() >> 16))
        .collect();
    let w = SuperblockWriter {
        metadata: Metadata::new(),
        timestamp,
        from,
        to,
        commit: commit(),
        commitmeta: (r.byte() & 1 == 1).then(|| Metadata::new().to_bytes().expect("a{sv}")),
        parts,
        fallbacks,
        byte_order: order,
        endianness_marker: marker,
    };
    let bytes = w.to_bytes().expect("the superblock serializes");
    let sb = SuperblockRef::from_bytes(&bytes).expect("the written superblock parses");
    assert_eq!(sb.timestamp(), timestamp);
    assert_eq!(sb.from(), from);
    assert_eq!(sb.to(), to);
    assert_eq!(sb.commit_bytes(), &w.commit[..]);
    assert_eq!(
        sb.commitmeta().expect("commitmeta").is_some(),
        w.commitmeta.is_some()
    );
    assert_eq!(sb.parts().len(), w.parts.len());
    assert_eq!(sb.fallbacks().len(), w.fallbacks.len());
    if marker {
        assert!(!matches!(sb.endianness(), Endianness::Heuristic(_)));
    }
    // Sizes below 1 PiB in a delta with at least one part or fallback: the byte order is
    // found even without the marker.
    let any = !w.parts.is_empty() || !w.fallbacks.is_empty();
    let plausible = w
        .parts
        .iter()
        .all(|p| p.size & 0xff != 0 && p.uncompressed_size & 0xff != 0)
        && w.fallbacks
            .iter()
            .all(|f| f.1 > 0 && f.2 > 0 && f.1 & 0xff != 0 && f.2 & 0xff != 0);
    if marker || (any && plausible) {
        assert_eq!(sb.endianness().byte_order(), order, "byte order");
        for (p, e) in sb.parts().iter().zip(&w.parts) {
            assert_eq!(p.size, e.size);
            assert_eq!(p.uncompressed_size, e.uncompressed_size);
            assert_eq!(p.checksum, e.checksum);
            assert_eq!(p.objects.data(), &e.objects[..]);
        }
        for (f, e) in sb.fallbacks().iter().zip(&w.fallbacks) {
            assert_eq!((f.checksum, f.compressed_size, f.uncompressed_size), *e);
        }
    }
    for (i, (p, e)) in sb.parts().iter().zip(&w.parts).enumerate() {
        assert_eq!(
            sb.inline_part(i).expect("inline part").map(<[u8]>::to_vec),
            e.inline
        );
        let (payload, file) = &payloads[i];
        let out =
            decompress(file, e.uncompressed_size).expect("the part decompresses within its size");
        assert_eq!(&out[..], &payload[..]);
        let objects = DeltaObjects::new(&e.objects).expect("object list");
        let pl = PartPayloadRef::from_bytes(&out).expect("the payload parses");
        pl.op_counts(objects).expect("the ops decode");
        let _ = p;
    }
    let sigs = vec![r.bytes(64)];
    let signed = signed_superblock(&bytes, &[("ed25519", sigs.clone())]).expect("signed");
    let s = SignedSuperblockRef::from_bytes(&signed).expect("the signed wrapper parses");
    assert_eq!(s.superblock_bytes(), &bytes[..]);
    let got = s
        .engine_signatures("ed25519")
        .expect("sigs")
        .expect("ed25519");
    assert_eq!(got, sigs.iter().map(Vec::as_slice).collect::<Vec<_>>());
}
