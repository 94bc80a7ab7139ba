//! The summary writer's round trip: any bytes as GLib dictionary keys and as commit
//! bytes, and a parsed summary written back through `SummaryContents` and the delta index
//! writer must parse back the same (`src/summary_write.rs`). Any failure is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cfsync_fuzz::summary_write::summary_write_round_trip(data);
});
