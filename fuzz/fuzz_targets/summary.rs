//! Summary files `(a(s(taya{sv}))a{sv})`: parse, every ref and its metadata, every typed
//! metadata key (static-deltas, last-modified, expires, indexed-deltas, mode,
//! tombstone-commits, collection-id, collection-map), lookups, and the owned round trip:
//! re-serializing gives the same refs (sorted by name) and the same metadata, and the
//! same bytes when the refs were already sorted. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::summary::{RefEntry, SummaryRef};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fn exercise_ref(s: &SummaryRef<'_>, r: &RefEntry<'_>, lookup: bool) {
    black_box(r.timestamp().ok());
    black_box(r.version().ok());
    black_box(r.to_owned().ok());
    cfsync_fuzz::exercise_metadata(r.metadata);
    // Lookups in an unsorted map are linear: only the first refs are looked up.
    if lookup {
        let found = s.lookup_ref(r.name).expect("a listed ref is found");
        assert_eq!(found.name, r.name);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = SummaryRef::from_bytes(data) else {
        return;
    };
    black_box(s.data());
    for (i, r) in s.refs().iter().enumerate() {
        exercise_ref(&s, r, i < 64);
    }
    black_box(s.lookup_ref(""));
    // from_bytes checked every typed key, so these cannot fail now.
    let deltas = s.static_deltas().expect("static_deltas after from_bytes");
    if let Some(d) = &deltas {
        cfsync_fuzz::exercise_delta_list(d);
    }
    black_box(s.last_modified().expect("last_modified"));
    black_box(s.expires().expect("expires"));
    black_box(s.indexed_deltas().expect("indexed_deltas"));
    black_box(s.mode().expect("mode"));
    black_box(s.tombstone_commits().expect("tombstone_commits"));
    let own_id = s.collection_id().expect("collection_id");
    let map = s.collection_map().expect("collection_map");
    // lookup_collection_ref rebuilds the collection map on each call, so look up a
    // bounded number of refs (the exerciser itself must stay linear).
    for c in map.iter().take(8) {
        for r in c.refs.iter().take(8) {
            black_box(
                c.lookup_ref(r.name)
                    .expect("a listed collection ref is found"),
            );
            black_box(r.timestamp().ok());
            black_box(r.version().ok());
            cfsync_fuzz::exercise_metadata(r.metadata);
            let got = s
                .lookup_collection_ref(c.collection_id, r.name)
                .expect("lookup_collection_ref");
            if own_id != Some(c.collection_id) {
                assert!(got.is_some(), "collection ref not found");
            }
        }
    }
    if let Some(id) = own_id {
        for r in s.refs().iter().take(64) {
            let got = s
                .lookup_collection_ref(id, r.name)
                .expect("lookup own collection");
            assert!(got.is_some(), "own collection ref not found");
        }
    }
    cfsync_fuzz::exercise_metadata(s.metadata());

    let owned = s.to_owned().expect("to_owned of a parsed summary");
    let bytes = owned.to_bytes().expect("serialize a parsed summary");
    let again = SummaryRef::from_bytes(&bytes).expect("re-parse a serialized summary");
    let owned2 = again.to_owned().expect("to_owned");
    let mut sorted = owned.refs.clone();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    assert_eq!(owned2.refs, sorted, "summary round trip changed the refs");
    assert_eq!(
        owned2.metadata, owned.metadata,
        "summary round trip changed the metadata"
    );
    if owned.refs == sorted {
        assert_eq!(bytes, data, "summary round trip changed the bytes");
    }
});
