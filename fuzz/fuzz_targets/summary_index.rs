//! Summary index `summary.idx` `(a{s(ayaaya{sv})}a{sv})` as flatpak writes it: parse,
//! every subsummary and its metadata, every typed key, lookups and paths. Errors are
//! fine; panics are bugs.
#![no_main]
use cfsync_formats::summary_index::{self, SummaryIndexRef};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(idx) = SummaryIndexRef::from_bytes(data) else {
        return;
    };
    black_box(idx.data());
    for (i, s) in idx.subsummaries().iter().enumerate() {
        black_box(s.arch());
        black_box(s.subset());
        black_box(s.path());
        // lookup is linear: check the first entries only.
        if i < 64 {
            assert!(idx.lookup(s.name).is_some(), "listed subsummary not found");
        }
        for h in &s.history {
            black_box(summary_index::subsummary_diff_path(h, &s.checksum));
        }
        cfsync_fuzz::exercise_metadata(s.metadata);
    }
    black_box(idx.lookup(""));
    // from_bytes checked the typed keys.
    black_box(idx.mode().expect("mode"));
    black_box(idx.tombstone_commits().expect("tombstone_commits"));
    black_box(idx.indexed_deltas().expect("indexed_deltas"));
    black_box(idx.last_modified().expect("last_modified"));
    black_box(idx.collection_id().expect("collection_id"));
    black_box(summary_index::index_sig_path(
        &cfsync_formats::checksum::Checksum::of(data),
    ));
    cfsync_fuzz::exercise_metadata(idx.metadata());
});
