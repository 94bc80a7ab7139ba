//! Delta names: `FROM-TO` / `TO` in modified base64 (`DeltaName::from_str`), delta
//! directory paths (`DeltaName::from_dir`), and the path helpers; parse → display/dir
//! → parse must round-trip. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::delta::DeltaName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = s.parse::<DeltaName>() {
        cfsync_fuzz::exercise_delta_name(&n);
    }
    if let Ok(n) = DeltaName::from_dir(s) {
        cfsync_fuzz::exercise_delta_name(&n);
    }
    std::hint::black_box(cfsync_formats::delta::names::index_path(
        &cfsync_formats::checksum::Checksum::of(data),
    ));
});
