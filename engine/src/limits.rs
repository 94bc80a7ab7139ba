//! Every size and count cap the engine applies to what a source sends, in one place,
//! each with one meaning. A body over its cap is refused before it is read whole.

/// Largest metadata *object* accepted: commit, dirtree, dirmeta and `.commitmeta`
/// (libostree's `OSTREE_MAX_METADATA_SIZE` for objects, 10 MiB).
pub(crate) const MAX_METADATA_OBJECT: u64 = 10 * 1024 * 1024;
/// Largest metadata *file* that is not an object and has no cap of its own below:
/// `config`, ref files, summary indexes and subsummaries read by the inspection
/// commands (128 MiB, docs/ostree-formats.md §9).
pub const MAX_METADATA_FILE: u64 = 128 * 1024 * 1024;
/// Largest `summary` accepted.
pub(crate) const MAX_SUMMARY: u64 = 64 * 1024 * 1024;
/// Largest `summary.sig` (or `summary.idx.sig`) accepted.
pub(crate) const MAX_SUMMARY_SIG: u64 = 1024 * 1024;
/// Largest `summary.idx` accepted by a pull (Flathub's is a few KiB; its subsummaries,
/// served gzip-compressed, are capped as summaries, compressed and uncompressed).
pub(crate) const MAX_SUMMARY_INDEX: u64 = 16 * 1024 * 1024;
/// Largest static-delta superblock accepted.
pub(crate) const MAX_SUPERBLOCK: u64 = 256 * 1024 * 1024;
/// Largest `delta-indexes/` file accepted.
pub(crate) const MAX_DELTA_INDEX: u64 = 16 * 1024 * 1024;
/// Largest file object accepted (uncompressed content).
pub(crate) const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024 * 1024;
/// Largest delta read source (an old object a part reads from).
pub(crate) const MAX_READ_SOURCE: u64 = 1024 * 1024 * 1024;
/// Most objects one commit may reach (a bound against hostile trees).
pub(crate) const MAX_COMMIT_OBJECTS: usize = 8 * 1024 * 1024;
