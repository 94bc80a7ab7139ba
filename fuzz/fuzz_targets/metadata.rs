//! `a{sv}` metadata (commitmeta, ref metadata, summary and index metadata): parse, every
//! typed getter for every known key (version, ref-binding, collection-binding, gpgsigs,
//! ed25519, composefs digest, endoflife, …) and every stored key, and the owned round
//! trip must reproduce the bytes. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::metadata::MetadataRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = MetadataRef::from_bytes(data) {
        cfsync_fuzz::exercise_metadata(m);
    }
});
