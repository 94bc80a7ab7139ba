//! Mirrorlist bodies: `mirrorlist::entries` on any bytes. UTF-8 bodies always parse;
//! every entry is a trimmed, non-empty line of the body that is not a `#` comment, and
//! the entries come out in the order of their lines. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::mirrorlist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = mirrorlist::entries(data) else {
        assert!(std::str::from_utf8(data).is_err(), "UTF-8 body refused");
        return;
    };
    let text = std::str::from_utf8(data).expect("entries of a non-UTF-8 body");
    let mut lines = text.lines().map(str::trim);
    for entry in entries {
        assert!(!entry.is_empty() && !entry.starts_with('#'), "{entry:?}");
        assert_eq!(entry, entry.trim(), "{entry:?} not trimmed");
        assert!(
            lines.any(|l| l == entry),
            "{entry:?} is not a line of the body, in order"
        );
    }
    if let Some(rest) = text.strip_prefix(mirrorlist::PREFIX) {
        std::hint::black_box(rest);
    }
});
