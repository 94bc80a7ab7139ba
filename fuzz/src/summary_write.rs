//! The summary writer's round trip (`cfsync_formats::summary::SummaryContents`, the
//! delta index writer and GLib's dictionary order), shared by the `summary_write` fuzz
//! target and the corpus replay in `formats/tests/fuzz_corpus.rs`: GLib order is a
//! permutation of the distinct keys; any commit bytes give a ref entry or an error; a
//! parsed summary's contents written back parse to the same refs, deltas and settings;
//! a delta index of its deltas parses back. Errors are fine; panics are bugs.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::index::{DeltaEntry, DeltaIndex, index_to_bytes};
use cfsync_formats::summary::{SummaryContents, SummaryRef, SummaryRefEntry, glib_order};

/// Checks the writer round trip on `data` (see the module's documentation).
pub fn summary_write_round_trip(data: &[u8]) {
    let keys: Vec<String> = data
        .split(|b| *b == b'\n')
        .take(512)
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let mut order = glib_order::dict_order(&keys);
    let distinct: Vec<usize> = (0..keys.len())
        .filter(|&i| !keys[..i].contains(&keys[i]))
        .collect();
    order.sort_unstable();
    assert_eq!(order, distinct);
    let _ = SummaryRefEntry::for_commit("fuzz/ref", Checksum([0; 32]), data);

    let Ok(s) = SummaryRef::from_bytes(data) else {
        return;
    };
    let Ok(refs) = s
        .refs()
        .iter()
        .map(|r| r.to_owned())
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let mut deltas: Vec<DeltaEntry> = s
        .static_deltas()
        .unwrap()
        .map(|d| d.entries().to_vec())
        .unwrap_or_default();
    let mut collection_map = Vec::new();
    for c in s.collection_map().unwrap() {
        let Ok(r) = c
            .refs
            .iter()
            .map(|r| r.to_owned())
            .collect::<Result<Vec<_>, _>>()
        else {
            return;
        };
        collection_map.push((c.collection_id.to_owned(), r));
    }
    let contents = SummaryContents {
        refs,
        static_deltas: deltas.clone(),
        last_modified: s.last_modified().unwrap().unwrap_or(0),
        mode: s.mode().unwrap().unwrap_or("bare").to_owned(),
        tombstone_commits: s.tombstone_commits().unwrap().unwrap_or(false),
        collection_id: s.collection_id().unwrap().map(str::to_owned),
        collection_map,
    };
    let bytes = contents.to_bytes().expect("parsed contents are writable");
    let back = SummaryRef::from_bytes(&bytes).expect("a written summary parses");
    let mut names: Vec<&str> = contents.refs.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let back_names: Vec<&str> = back.refs().iter().map(|r| r.name).collect();
    assert_eq!(names, back_names);
    assert_eq!(back.last_modified().unwrap(), Some(contents.last_modified));
    assert_eq!(back.mode().unwrap(), Some(contents.mode.as_str()));
    assert_eq!(
        back.collection_id().unwrap(),
        contents.collection_id.as_deref()
    );
    deltas.sort_by_key(|d| d.name);
    deltas.dedup_by_key(|d| d.name);
    let mut written: Vec<DeltaEntry> = back
        .static_deltas()
        .unwrap()
        .map(|d| d.entries().to_vec())
        .unwrap_or_default();
    written.sort_by_key(|d| d.name);
    assert_eq!(
        deltas.iter().map(|d| d.name).collect::<Vec<_>>(),
        written.iter().map(|d| d.name).collect::<Vec<_>>()
    );
    let idx = index_to_bytes(&deltas).expect("an index is writable");
    let idx = DeltaIndex::from_bytes(&idx).expect("a written index parses");
    assert_eq!(idx.deltas().len(), deltas.len());
}
