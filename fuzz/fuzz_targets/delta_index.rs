//! Delta index files (`delta-indexes/XX/REST.index`, `a{sv}` with
//! `ostree.static-deltas`): parse, every entry, lookups and delta-name round trips.
//! Also `DeltaList::from_metadata` on any `a{sv}`. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::delta::index::{DeltaIndex, DeltaList};
use cfsync_formats::metadata::MetadataRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = DeltaIndex::from_bytes(data) {
        cfsync_fuzz::exercise_delta_list(idx.deltas());
        cfsync_fuzz::exercise_metadata(idx.metadata());
    }
    if let Ok(m) = MetadataRef::from_bytes(data)
        && let Ok(d) = DeltaList::from_metadata(m)
    {
        cfsync_fuzz::exercise_delta_list(&d);
    }
});
