//! Dirtree objects `(a(say)a(sayay))`: parse, iterate both lists, and check that
//! `to_owned` → `to_bytes` reproduces the input exactly. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::dirtree::DirTreeRef;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = DirTreeRef::from_bytes(data) else {
        return;
    };
    black_box(t.data());
    black_box(t.is_empty());
    let files: Vec<_> = t.files().collect();
    let dirs: Vec<_> = t.dirs().collect();
    assert_eq!(files.len(), t.files_len());
    assert_eq!(dirs.len(), t.dirs_len());
    assert_eq!(t.is_empty(), files.is_empty() && dirs.is_empty());
    let owned = t.to_owned().expect("to_owned of a parsed dirtree");
    let bytes = owned.to_bytes().expect("serialize a parsed dirtree");
    assert_eq!(bytes, data, "dirtree round trip changed the bytes");
    assert_eq!(
        owned.checksum().expect("checksum"),
        cfsync_formats::checksum::Checksum::of(data)
    );
    let again = DirTreeRef::from_bytes(&bytes).expect("re-parse a serialized dirtree");
    assert_eq!(again.to_owned().expect("to_owned"), owned);
});
