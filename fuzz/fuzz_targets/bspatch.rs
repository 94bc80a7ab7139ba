//! bspatch as static-delta `B` ops carry it. Input: declared output size (u32 LE), a
//! u16-LE-prefixed old file, then the patch. On success the output is exactly the
//! declared size; on failure `out` is left as it was; allocation is bounded by the patch
//! length. The streaming `BspatchReader` must give the same bytes, in reads of any size,
//! and fail exactly when and as `apply` fails (the same error). Errors are fine; panics are bugs.
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
    let applied = bspatch::apply(old, patch, &mut out, declared);
    // Streamed, in reads whose size comes from the input.
    // The last byte (not part of the declared size) picks the read size.
    let chunk = usize::from(data.last().copied().unwrap_or(1)).max(1);
    let streamed = bspatch::BspatchReader::new(old, patch, patch.len() as u64, declared)
        .map_err(|e| e.to_string())
        .and_then(|mut r| {
            let mut got = Vec::new();
            let mut buf = vec![0u8; chunk];
            loop {
                match std::io::Read::read(&mut r, &mut buf) {
                    Ok(0) => return Ok(got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        assert!(bspatch::BspatchError::from_io(&e).is_some(), "{e}");
                        return Err(e.to_string());
                    }
                }
            }
        });
    match &applied {
        Ok(()) => assert_eq!(streamed.as_deref(), Ok(&out[6..]), "streaming differs"),
        Err(e) => assert_eq!(streamed, Err(e.to_string()), "streaming failed otherwise"),
    }
    match applied {
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
