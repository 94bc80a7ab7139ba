//! bspatch as static-delta `B` ops carry it. Input: declared output size (u32 LE), a
//! u16-LE-prefixed old file, then the patch. On success the output is exactly the
//! declared size; on failure `out` is left as it was; allocation is bounded by the patch
//! length. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::delta::bspatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((size, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let declared = u64::from(u32::from_le_bytes(*size));
    let (old, patch) = cfsync_fuzz::split_prefixed(rest);
    let mut out = b"prefix".to_vec();
    match bspatch::apply(old, patch, &mut out, declared) {
        Ok(()) => {
            assert_eq!(
                out.len() as u64,
                6 + declared,
                "output is not the declared size"
            );
            assert!(
                declared <= patch.len() as u64,
                "more output than patch bytes"
            );
        }
        Err(e) => {
            assert_eq!(out, b"prefix", "failed apply left output behind");
            std::hint::black_box(e.to_string());
        }
    }
    // Huge declared sizes must fail before allocating.
    let mut big = Vec::new();
    assert!(bspatch::apply(old, patch, &mut big, u64::MAX).is_err());
    assert!(big.is_empty());
});
