//! The delta writers' round trip (`cfsync_formats::delta::write`): the input describes a
//! delta (byte order, endianness marker, parts of metadata, whole files, symlinks and
//! bsdiff entries, stored or xz part files, inline or not, fallbacks, signatures); what the
//! writers produce must parse back with the readers to the same fields, every part must
//! decompress within its header's size and its ops must decode. Any failure is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cfsync_fuzz::superblock_write::superblock_write_round_trip(data);
});
