//! The strict GVariant reader and the normal-form writer. Input: one length byte `n`, a
//! type string of `n` bytes, then the data. Whatever the reader accepts is walked with
//! every accessor, rebuilt structurally as an `OwnedValue` and written again: the writer
//! must reproduce the input bytes exactly. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::gvariant;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (ty, body) = rest.split_at(usize::from(n).min(rest.len()));
    let Ok(ty) = std::str::from_utf8(ty) else {
        return;
    };
    black_box(gvariant::fixed_size(ty));
    black_box(gvariant::alignment(ty));
    if !gvariant::is_valid_type(ty) {
        assert!(
            gvariant::Value::from_bytes(body, ty).is_err(),
            "invalid type accepted"
        );
        return;
    }
    let raw = gvariant::RawValue::new(ty, body.to_vec());
    assert_eq!(
        raw.is_ok(),
        gvariant::Value::from_bytes(body, ty).is_ok(),
        "RawValue::new disagrees"
    );
    if let Ok(r) = raw {
        assert_eq!(r.type_str(), ty);
        assert_eq!(r.bytes(), body);
        black_box(r.as_value().expect("a checked RawValue reads back"));
    }
    cfsync_fuzz::exercise_typed_bytes(body, ty);
});
