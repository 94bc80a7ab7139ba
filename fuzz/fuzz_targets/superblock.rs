//! Static-delta superblocks `(a{sv}tayay(commit)aya(uayttay)a(yaytt))`, little- and
//! big-endian (`ostree.endianness` or ostree's heuristic): parse, every accessor, the
//! embedded commit and commitmeta, part headers and fallbacks, and inline parts
//! (`--inline`) through bounded decompression, payload parsing and op decoding.
//! Also `open_superblock`, which accepts plain or signed files. Errors are fine; panics
//! are bugs.
#![no_main]
use cfsync_formats::delta::signed;
use cfsync_formats::delta::superblock::SuperblockRef;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let plain = SuperblockRef::from_bytes(data);
    if let Ok(s) = &plain {
        cfsync_fuzz::exercise_superblock(s);
    }
    let opened = signed::open_superblock(data);
    if !data.starts_with(&signed::SIGNED_MAGIC) {
        // Without the magic, open_superblock is exactly the plain parser.
        assert_eq!(opened.is_ok(), plain.is_ok(), "open_superblock disagrees");
        if let Ok(f) = &opened {
            assert!(f.signed.is_none());
            assert_eq!(f.superblock.data(), data);
        }
    }
    black_box(opened.ok());
});
