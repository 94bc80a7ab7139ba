//! Pure, bounds-checked parsers and serializers for every OSTree format cfsync reads.
//!
//! Bytes in, typed views out: no I/O, no panics on any input, typed errors that say
//! what is wrong and where. See `docs/` and each module's header for the format.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
