//! Applying one staged part: reads its payload's layout, tables and operations, decodes
//! them ([`super::decode`]) and stores the objects ([`super::store`]), each verified.
//!
//! Blocking code (call it from `spawn_blocking`). The operations come decoded and
//! range-checked from [`cfsync_formats::delta::ops`]; this module supplies what the
//! decoder cannot check: reads from the read source (an object of the `from` commit,
//! checked against its actual length), the file headers built from the mode and xattr
//! tables, and the final sha256 of every object, computed while its content streams into
//! the composefs object store ([`crate::ingest::ingest_file`]). Nothing is kept unless it
//! hashes to its name.
//!
//! Order: all operations of a part are decoded and checked first (read sources are
//! located and their sizes checked, not read), so a malformed part is refused before
//! anything of it is stored; then [`super::store::store_workers`] threads store the
//! objects, largest first, each loading its own read sources while a few prefetch
//! threads read the next ones ahead.
//!
//! Memory: the part's payload stays in its staged file; an object made of `w` or `B`
//! operations is not assembled but streamed into the store from the blob, its read
//! source and, for `B`, a [`cfsync_formats::delta::bspatch::BspatchReader`] reading the
//! patch from the file as it applies it. What is held is the read source, read whole, at
//! most [`crate::limits::MAX_READ_SOURCE`] bytes (bspatch seeks anywhere in it), taken
//! from the delta memory budget while the object is stored.

use std::fs::File;
use std::ops::Range;

use cfsync_formats::delta::DeltaObjects;
use cfsync_formats::delta::ops::OpContextOf;
use cfsync_formats::delta::part::{PAYLOAD_TAIL, PartPayloadRef, payload_ranges};
use composefs::fsverity::FsVerityHashValue;

use super::blob::{BlobRange, FileBlob, read_range};
use super::decode::decode;
use super::job::ApplyTo;
use super::store::store_all;
use crate::error::PullError;

/// Most bytes of a part's mode and xattr tables and operations together, the part of its
/// payload read into memory (ostree's take a few kB per hundred objects).
pub const MAX_TABLES_AND_OPS: u64 = 64 * 1024 * 1024;

/// The part of a payload read into memory: its mode and xattr tables and operations,
/// and where its tables and blob lie.
struct Loaded {
    /// The payload from its start to the end of the xattr table.
    tables: Vec<u8>,
    /// The operations.
    ops: Vec<u8>,
    /// Where the mode table lies.
    modes: Range<u64>,
    /// Where the xattr table lies.
    xattrs: Range<u64>,
    /// Where the blob lies.
    blob: Range<u64>,
}

/// A malformed payload layout.
fn layout_err(e: &dyn std::fmt::Display) -> PullError {
    PullError::Hostile(format!("delta part payload: {e}"))
}

/// Reads the payload's layout from its tail, then its tables and operations (at most
/// [`MAX_TABLES_AND_OPS`] bytes together).
fn load(file: &File, len: u64) -> Result<Loaded, PullError> {
    let tail_len = len.min(PAYLOAD_TAIL as u64);
    let tail = read_range(
        file,
        BlobRange {
            start: len - tail_len,
            len: tail_len,
        },
    )?;
    let [m, x, b, o] = payload_ranges(len, &tail).map_err(|e| layout_err(&e))?;
    // What is read into memory: the mode and xattr tables and the operations. ostree's
    // are a few kB per hundred objects; a hostile part could declare gigabytes.
    let held = x.end.saturating_add(o.end.saturating_sub(o.start));
    if held > MAX_TABLES_AND_OPS {
        return Err(layout_err(&format!(
            "its tables and operations take {held} bytes, over the {MAX_TABLES_AND_OPS}-byte limit"
        )));
    }
    let tables = read_range(
        file,
        BlobRange {
            start: 0,
            len: x.end,
        },
    )?;
    let ops = read_range(
        file,
        BlobRange {
            start: o.start,
            len: o.end - o.start,
        },
    )?;
    Ok(Loaded {
        tables,
        ops,
        modes: m,
        xattrs: x,
        blob: b,
    })
}

/// Runs the operations of one part — its decompressed payload, `len` bytes in the
/// staged `file`, and the object list from its header — storing every object not already
/// held (`to.have` says which are) into `to.repo`, each verified against its name. Only
/// the payload's tables and ops are read into memory; object contents are read from the
/// file as they stream into the store. Objects are stored by
/// [`super::store::store_workers`] threads, largest first; the read sources they hold
/// come out of the delta memory budget (`to.budget`).
pub(crate) fn apply_part<ObjectID: FsVerityHashValue>(
    to: &ApplyTo<'_, ObjectID>,
    file: &File,
    len: u64,
    objects: DeltaObjects<'_>,
) -> Result<(), PullError> {
    let Loaded {
        tables,
        ops,
        modes: m,
        xattrs: x,
        blob: b,
    } = load(file, len)?;
    let modes = tables
        .get(m.start as usize..m.end as usize)
        .unwrap_or_default();
    let xattrs = tables
        .get(x.start as usize..x.end as usize)
        .unwrap_or_default();
    let payload = PartPayloadRef::from_tables(modes, xattrs, &ops).map_err(|e| layout_err(&e))?;
    let blob = FileBlob {
        file,
        start: b.start,
        len: usize::try_from(b.end - b.start).map_err(|_| layout_err(&"blob too large"))?,
    };
    let ctx = OpContextOf {
        objects,
        n_modes: payload.n_modes(),
        n_xattrs: payload.n_xattrs(),
        blob,
    };
    // All operations are decoded and checked first (quick: no content is read but
    // metadata objects'), then the objects are stored.
    let started = std::time::Instant::now();
    let jobs = decode(&payload, ctx, to)?;
    let decoded = started.elapsed();
    let n_jobs = jobs.len();
    store_all(to, file, &payload, jobs)?;
    tracing::debug!(
        "operations decoded in {decoded:.0?}, {n_jobs} objects stored in {:.0?}",
        started.elapsed() - decoded
    );
    if to.cancel.is_cancelled() {
        return Err(PullError::Cancelled);
    }
    Ok(())
}
