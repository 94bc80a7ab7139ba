//! Pure, bounds-checked parsers and serializers for every OSTree format cfsync reads.
//!
//! Bytes in, typed views out: no I/O, no panics on any input, typed errors that say
//! what is wrong and where. See `docs/` and each module's header for the format.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

pub mod checksum;
pub mod commit;
pub mod delta;
pub mod dirmeta;
pub mod dirtree;
pub mod file;
pub mod gvariant;
pub mod journal;
pub mod keyfile;
pub mod metadata;
pub mod mirrorlist;
pub mod mode;
pub mod names;
pub mod object;
pub mod object_index;
pub mod summary;
pub mod summary_index;
pub mod xattrs;
