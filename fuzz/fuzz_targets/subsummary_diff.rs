//! Subsummaries and their deltas: bounded gunzip of a `.gz` subsummary, and applying an
//! `xadf` diff (raw and gzip'd) to an old subsummary. Input: u16-LE-prefixed old bytes,
//! then the diff (or gzip) bytes. Outputs never exceed their caps. Errors are fine;
//! panics are bugs.
#![no_main]
use cfsync_formats::summary_index;
use libfuzzer_sys::fuzz_target;

const CAP: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = summary_index::decompress_subsummary(data, CAP) {
        assert!(s.len() as u64 <= CAP);
        // The cap is exact.
        let len = s.len() as u64;
        assert_eq!(
            summary_index::decompress_subsummary(data, len).expect("cap = length"),
            s
        );
        if len > 0 {
            assert!(summary_index::decompress_subsummary(data, len - 1).is_err());
        }
        if let Ok(sm) = cfsync_formats::summary::SummaryRef::from_bytes(&s) {
            std::hint::black_box(sm.refs().len());
        }
    }
    let (old, diff) = cfsync_fuzz::split_prefixed(data);
    if let Ok(out) = summary_index::apply_diff(old, diff, CAP) {
        assert!(out.len() as u64 <= CAP);
        let len = out.len() as u64;
        assert_eq!(
            summary_index::apply_diff(old, diff, len).expect("cap = length"),
            out
        );
        if len > 0 {
            assert!(summary_index::apply_diff(old, diff, len - 1).is_err());
        }
    }
    // A tiny cap must be enforced, not overrun.
    if let Ok(out) = summary_index::apply_diff(old, diff, 16) {
        assert!(out.len() <= 16);
    }
    if let Ok(out) = summary_index::apply_subsummary_diff(old, diff, CAP, CAP) {
        assert!(out.len() as u64 <= CAP);
    }
});
