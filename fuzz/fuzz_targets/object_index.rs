//! cfsync's object index (`<repo>/cfsync/object-index`): `IndexTable::decode`. What
//! decodes re-encodes to an equal table (the reserved word and duplicate ids may differ
//! in bytes, never in value), and a table decoded from cfsync's own encoding is
//! byte-exact. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::object_index::IndexTable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(table) = IndexTable::decode(data) else {
        return;
    };
    let bytes = table.encode();
    let again = IndexTable::decode(&bytes).expect("an encoded table decodes");
    assert_eq!(again, table, "value round trip");
    assert_eq!(again.encode(), bytes, "byte-exact after one round");
});
