//! What decoding a delta part needs, read from its first bytes
//! (`cfsync_formats::delta::part::decoder_need`): any prefix gives an answer or an error,
//! never a panic; "more" asks for more bytes than it was given and at most what the
//! xz headers can hold; a longer prefix never changes an answer already given.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cfsync_fuzz::part_dict::part_dict_prefixes(data);
});
