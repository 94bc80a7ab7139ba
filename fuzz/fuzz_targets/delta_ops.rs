//! The static-delta op stream decoder alone (no payload framing to get past):
//! input is `n_modes: u8`, `n_xattrs: u8`, a u16-LE-prefixed object list (n × 33 bytes), a
//! u16-LE-prefixed blob, then the ops bytecode. Every decoded op must respect the tables
//! and blob it was checked against, the iterator fuses, and `count` agrees with it.
//! Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::delta::DeltaObjects;
use cfsync_formats::delta::ops::OpContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[n_modes, n_xattrs], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let (objects, rest) = cfsync_fuzz::split_prefixed(rest);
    let (blob, ops) = cfsync_fuzz::split_prefixed(rest);
    let Ok(objects) = DeltaObjects::new(objects) else {
        return;
    };
    for o in objects.iter() {
        std::hint::black_box(o);
    }
    std::hint::black_box(objects.get(usize::MAX));
    let ctx = OpContext {
        objects,
        n_modes: usize::from(n_modes),
        n_xattrs: usize::from(n_xattrs),
        blob,
    };
    cfsync_fuzz::exercise_ops(ops, ctx);
});
