//! OSTree commits as composefs splitstreams, in the on-disk layout of `composefs-ostree`.
//!
//! A commit is stored as one splitstream named `ostree-commit-<sha256 hex>` with content
//! type [`OSTREE_COMMIT_CONTENT_TYPE`]. Its single inline region is a table of every OSTree
//! object the commit reaches (little-endian throughout):
//!
//! ```text
//! u32 index of the commit object in the id table
//! u32 flags (0)
//! [u32; 256] cumulative bucket ends by first id byte (the last one is the object count n)
//! n x [u8; 32] object ids, sorted
//! n x { u32 data offset / 8, u32 data length, u32 object-ref index or 0xFFFFFFFF }
//! data: each object's bytes in id order, zero-padded to a multiple of 8
//! ```
//!
//! Metadata objects are stored as their GVariant bytes. A file object is stored as the
//! 8-byte sized prefix plus the archive-style header `(tuuuusa(ayay))`, followed by its
//! content when the content is small (at most twice the object-id size); larger content
//! lives in the composefs object store, referenced from the splitstream's object table.
//! The named stream ref `composefs.image` points at the commit's EROFS image. This is the
//! layout `cfsctl ostree` reads and writes (see `docs/commit-splitstream.md`), so
//! repositories are shared in both directions.
//!
//! [`CommitStream`] (`reader.rs`) loads a stored table; [`CommitStreamBuilder`]
//! (`builder.rs`) collects one in memory and writes it. Both serve objects through
//! [`ObjectLookup`] (`super::object`), which the image builder (`super::image`) reads.

use cfsync_formats::checksum::Checksum;

mod builder;
mod reader;

pub(crate) use crate::store::object::is_inline_size;
pub use crate::store::object::{Entry, ObjectLookup, parse_file_entry};
pub use builder::CommitStreamBuilder;
pub use reader::CommitStream;

/// Splitstream content type of an OSTree commit (shared with composefs-ostree).
pub const OSTREE_COMMIT_CONTENT_TYPE: u64 = 0xAFE1_38C1_8C46_3EF1;
/// Named stream ref, inside a commit splitstream, to the commit's EROFS image.
pub const IMAGE_REF_KEY: &str = "composefs.image";
/// Marker in the object table for "no external object".
const NO_EXTERNAL: u32 = u32::MAX;
/// Size of the fixed header: commit index, flags, 256 bucket ends.
const HEADER_LEN: usize = 4 + 4 + 256 * 4;
/// Size of one object-info record.
const INFO_LEN: usize = 12;
/// Most objects one commit table may hold.
const MAX_OBJECTS: usize = 16 * 1024 * 1024;

/// The name of the splitstream holding commit `commit`.
pub fn commit_stream_name(commit: &Checksum) -> String {
    format!("ostree-commit-{commit}")
}

/// The composefs stream ref (under `streams/refs/`) for OSTree ref `name`:
/// `ostree/` followed by the name with `%` written `%25` and `/` written `%2F`.
pub fn ostree_ref_name(name: &str) -> String {
    format!("ostree/{}", name.replace('%', "%25").replace('/', "%2F"))
}

/// Inverse of [`ostree_ref_name`] for the part after `ostree/`.
pub(crate) fn unescape_ref_name(escaped: &str) -> String {
    escaped.replace("%2F", "/").replace("%25", "%")
}
