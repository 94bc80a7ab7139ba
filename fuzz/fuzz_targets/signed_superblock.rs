//! Signed superblocks: the `OSTSGNDT` wrapper `(taya{sv})` written by
//! `ostree static-delta generate --sign`: parse, signatures per engine, the inner
//! superblock, and `open_superblock`. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::delta::signed::{self, SignedSuperblockRef};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = SignedSuperblockRef::from_bytes(data) {
        black_box(s.superblock_bytes());
        let engines = s.engines();
        assert!(!engines.is_empty(), "accepted without a signature engine");
        for e in &engines {
            black_box(s.engine_signatures(e).ok());
        }
        black_box(s.ed25519().ok());
        black_box(s.gpgsigs().ok());
        cfsync_fuzz::exercise_metadata(s.signatures());
        if let Ok(sb) = s.superblock() {
            cfsync_fuzz::exercise_superblock(&sb);
            let f = signed::open_superblock(data).expect("open_superblock of a valid signed file");
            assert!(f.signed.is_some(), "signed file opened as unsigned");
            assert_eq!(f.superblock.data(), s.superblock_bytes());
        }
    }
    if let Ok(f) = signed::open_superblock(data) {
        black_box(f);
    }
});
