//! Commit objects `(a{sv}aya(say)sstayay)` and tombstones: parse, every accessor and
//! typed metadata key, and `to_owned` → `to_bytes` must reproduce the input exactly.
//! Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::commit::{self, CommitRef};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = CommitRef::from_bytes(data) {
        cfsync_fuzz::exercise_commit(c);
    }
    black_box(commit::parse_tombstone(data).ok());
});
