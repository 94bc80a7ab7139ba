//! `summary.sig` (`a{sv}` with `ostree.gpgsigs` / `ostree.sign.<engine>` `aay` keys):
//! parse and every accessor. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::summary::SummarySigRef;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = SummarySigRef::from_bytes(data) else {
        return;
    };
    let g = s.gpgsigs().expect("gpgsigs was checked by from_bytes");
    let e = s.ed25519().expect("ed25519 was checked by from_bytes");
    assert!(
        g.is_some()
            || s.metadata()
                .iter()
                .any(|k| k.is_ok_and(|(k, _)| k.starts_with("ostree.sign.")))
    );
    black_box(e);
    for engine in ["ed25519", "spki", "dummy", "", "\0"] {
        black_box(s.engine_signatures(engine).ok());
    }
    cfsync_fuzz::exercise_metadata(s.metadata());
});
