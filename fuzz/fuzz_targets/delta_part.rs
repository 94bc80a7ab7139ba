//! Static-delta part files: `split`, `decompress` capped at 4 MiB, the streaming
//! `PartPayloadReader` (which must agree with `decompress`), the payload
//! `(a(uuu)aa(ayay)ayay)`, and the op stream with its counts.
//!
//! Input: a u16-LE length, that many bytes of the part header's object list (n × 33
//! bytes: type, checksum), then the part file. Seeds are real parts with their object
//! lists (see scripts/fuzz-seeds.sh). An invalid object list is replaced by an empty one.
//! Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::delta::DeltaObjects;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (objects, part_file) = cfsync_fuzz::split_prefixed(data);
    let objects = DeltaObjects::new(objects).unwrap_or(DeltaObjects::new(&[]).expect("empty list"));
    cfsync_fuzz::exercise_part_file(part_file, objects, cfsync_fuzz::PAYLOAD_CAP);
});
