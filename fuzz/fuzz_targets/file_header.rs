//! File object headers without content: bare `(uuuusa(ayay))`, archive
//! `(tuuuusa(ayay))`, their `sized()` framings, and the bare-user `user.ostreemeta`
//! `(uuua(ayay))`. Accepted headers must re-encode to headers that parse back equal.
//! Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::file::{self, FileHeader};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fn check(h: &FileHeader, archive: bool) {
    black_box(h.is_symlink());
    black_box(h.is_regular());
    h.validate().expect("a parsed header validates");
    let bare = h.to_bare_bytes().expect("to_bare_bytes");
    let b = FileHeader::from_bare_bytes(&bare).expect("re-parse bare header");
    assert_eq!(
        (b.uid, b.gid, b.mode, b.rdev),
        (h.uid, h.gid, h.mode, h.rdev)
    );
    assert_eq!(b.symlink_target, h.symlink_target);
    let sized = file::encode_sized_bare_header(h).expect("sized bare header");
    let (b2, rest) = file::decode_sized_bare_header(&sized).expect("decode sized bare");
    assert_eq!(b2, b);
    assert!(rest.is_empty());
    if archive {
        let a = h.to_archive_bytes().expect("to_archive_bytes");
        assert_eq!(
            &FileHeader::from_archive_bytes(&a).expect("re-parse archive"),
            h
        );
    }
    black_box(file::file_checksum(h, b"").ok());
    let mut hs = file::FileHasher::new(h).expect("hasher");
    hs.update(b"x");
    black_box(hs.content_len());
    black_box(hs.finish());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = FileHeader::from_bare_bytes(data) {
        check(&h, true);
    }
    if let Ok(h) = FileHeader::from_archive_bytes(data) {
        check(&h, true);
    }
    if let Ok((h, rest)) = file::decode_sized_bare_header(data) {
        check(&h, true);
        black_box(rest);
    }
    if let Ok((h, rest)) = file::decode_sized_archive_header(data) {
        check(&h, true);
        black_box(rest);
    }
    if let Ok(m) = file::parse_ostreemeta(data) {
        black_box(m);
        // A symlink's target is the object content plus a NUL; try a few contents.
        for content in [&b""[..], b"\0", b"target\0", b"no-nul", data] {
            if let Ok(h) = FileHeader::from_ostreemeta(data, Some(content), 7) {
                check(&h, true);
            }
        }
        if let Ok(h) = FileHeader::from_ostreemeta(data, None, u64::MAX) {
            check(&h, true);
        }
    }
});
