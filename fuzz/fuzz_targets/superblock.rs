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
    if let Ok(s) = SuperblockRef::from_bytes(data) {
        cfsync_fuzz::exercise_superblock(&s);
    }
    if let Ok(f) = signed::open_superblock(data) {
        black_box(f);
    }
});
