//! The delta executor: runs one part's operations and turns them into verified objects.
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
//! anything of it is stored; then [`store_workers`] threads store the objects, largest
//! first, each loading its own read sources while a few prefetch threads read the
//! next ones ahead.
//!
//! Memory: the part's payload stays in its staged file; an object made of `w` or `B`
//! operations is not assembled but streamed into the store from the blob, its read
//! source and, for `B`, a [`cfsync_formats::delta::bspatch::BspatchReader`] reading the
//! patch from the file as it applies it. What is held is the read source, read whole, at
//! most [`MAX_READ_SOURCE`] bytes (bspatch seeks anywhere in it), within
//! [`OBJECT_MEMORY`].

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaObjects;
use cfsync_formats::delta::bspatch;
use cfsync_formats::delta::ops::{Blob, OpContextOf, OpOf, OpsOf, WriteSourceOf};
use cfsync_formats::delta::part::{PAYLOAD_TAIL, PartPayloadRef, payload_ranges};
use cfsync_formats::file::FileHeader;
use cfsync_formats::object::ObjectType;
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use cfsync_formats::mode::{S_IFLNK, S_IFMT, S_IFREG};
use crate::limits::MAX_READ_SOURCE;
use crate::ingest::ingest_file;
use crate::progress::Cancel;
use crate::error::PullError;
use crate::store::commit_stream::{CommitStream, Entry, ObjectLookup, parse_file_entry};



/// Where read sources come from: file objects of commits already in the store.
pub struct ReadSources<ObjectID: FsVerityHashValue> {
    repo: Arc<Repository<ObjectID>>,
    /// Commit streams that may hold read sources (the delta's `from` commit first).
    streams: Vec<Arc<CommitStream<ObjectID>>>,
}

impl<ObjectID: FsVerityHashValue> std::fmt::Debug for ReadSources<ObjectID> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSources")
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl<ObjectID: FsVerityHashValue> ReadSources<ObjectID> {
    /// Read sources from `streams` (in order of preference) in `repo`.
    pub fn new(repo: Arc<Repository<ObjectID>>, streams: Vec<Arc<CommitStream<ObjectID>>>) -> Self {
        Self { repo, streams }
    }

    /// The stored object and declared size of read source `id`, or an error naming it
    /// when it is not a regular file of these commits (`None`: its content is inline).
    fn locate(&self, id: &Checksum) -> Result<(Option<&ObjectID>, u64, &[u8]), PullError> {
        let missing = || {
            PullError::Hostile(format!(
                "delta read source {id} is not a file object of the delta's from-commit"
            ))
        };
        let (data, external) = self
            .streams
            .iter()
            .find_map(|s| s.lookup(id))
            .ok_or_else(missing)?;
        let (header, inline) = parse_file_entry(data).map_err(|_| missing())?;
        if header.mode & S_IFMT != S_IFREG {
            return Err(missing());
        }
        if header.size > MAX_READ_SOURCE {
            return Err(PullError::Hostile(format!(
                "delta read source {id} is {} bytes, over the {MAX_READ_SOURCE}-byte limit",
                header.size
            )));
        }
        Ok((external, header.size, inline))
    }

    /// The content of file object `id`, read whole.
    fn content(&self, id: &Checksum) -> Result<Arc<Vec<u8>>, PullError> {
        let (external, size, inline) = self.locate(id)?;
        let Some(obj) = external else {
            return Ok(Arc::new(inline.to_vec()));
        };
        let stored = |e: &dyn std::fmt::Display| {
            PullError::Internal(format!("reading stored object for read source {id}: {e}"))
        };
        let fd = self
            .repo
            .open_object(obj)
            .map_err(|e| stored(&format!("{e:#}")))?;
        let mut file = File::from(fd);
        // The size is the header's (bounded above); the file must match it exactly.
        let n = usize::try_from(size).map_err(|e| stored(&e))?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(n).map_err(|e| stored(&e))?;
        bytes.resize(n, 0);
        let mut extra = [0u8; 1];
        let exact = match file.read_exact(&mut bytes) {
            Ok(()) => matches!(file.read(&mut extra).map_err(|e| stored(&e))?, 0),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Err(e) => return Err(stored(&e)),
        };
        if !exact {
            return Err(PullError::Internal(format!(
                "stored content of {id} is not the {size} bytes its header says; run `cfsync fsck`"
            )));
        }
        Ok(Arc::new(bytes))
    }

    /// Asks the kernel to start reading stored read source `id` into the page cache
    /// (best effort: errors are left for [`Self::content`] to report).
    fn prefetch(&self, id: &Checksum) {
        if let Ok((Some(obj), _, _)) = self.locate(id)
            && let Ok(fd) = self.repo.open_object(obj)
        {
            let _ = rustix::fs::fadvise(&fd, 0, None, rustix::fs::Advice::WillNeed);
        }
    }
}

/// Threads that open read sources and start their reads ahead of the store workers: on
/// a cold page cache each source costs an inode read and a data read.
const PREFETCH_THREADS: usize = 4;

/// Most read sources prefetched for one part (beyond them workers read on their own):
/// bounds the list however many set-read-source operations a hostile part repeats.
const MAX_PREFETCH: usize = 16 * 1024;

/// A checked range of a part's blob, in the staged payload file (absolute offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRange {
    /// Offset in the payload file.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A part's blob left in its staged payload file: the decoder gets ranges, and reads
/// only the 32-byte checksums of set-read-source operations.
#[derive(Debug, Clone, Copy)]
pub struct FileBlob<'f> {
    /// The staged payload.
    pub file: &'f File,
    /// Where the blob starts in it.
    pub start: u64,
    /// The blob's length.
    pub len: usize,
}

impl Blob for FileBlob<'_> {
    type Data = BlobRange;

    fn len(&self) -> usize {
        self.len
    }

    fn range(&self, start: usize, end: usize) -> Option<BlobRange> {
        Some(BlobRange {
            start: self.start.checked_add(start as u64)?,
            len: end.checked_sub(start)? as u64,
        })
    }

    fn checksum_at(&self, start: usize) -> Option<Checksum> {
        let mut b = [0u8; 32];
        self.file
            .read_exact_at(&mut b, self.start.checked_add(start as u64)?)
            .ok()?;
        Some(Checksum(b))
    }
}

/// Reads `r` from `file` into a new buffer.
fn read_range(file: &File, r: BlobRange) -> Result<Vec<u8>, PullError> {
    let n =
        usize::try_from(r.len).map_err(|_| PullError::Hostile("delta range too large".into()))?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| PullError::Hostile(format!("cannot allocate {n} bytes for a delta range")))?;
    v.resize(n, 0);
    file.read_exact_at(&mut v, r.start)
        .map_err(|e| PullError::Internal(format!("reading the staged delta part: {e}")))?;
    Ok(v)
}

/// One piece of an object's content.
enum Seg {
    /// From the blob, in the staged payload file.
    Blob(BlobRange),
    /// From read source `.0` of the job (an index into [`Job::sources`]), `start..end`.
    Source(usize, usize, usize),
    /// `bspatch(old, patch)`, `size` bytes, `old` being read source `old` of the job,
    /// produced as the object streams into the store (the patch is read from the staged
    /// payload as it is applied).
    Patch {
        old: usize,
        patch: BlobRange,
        size: u64,
    },
}

/// Reads a range of the staged payload file sequentially, with positioned reads.
struct RangeReader<'f> {
    file: &'f File,
    range: BlobRange,
    pos: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.range.len.saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let got = self
            .file
            .read_at(&mut buf[..n], self.range.start.saturating_add(self.pos))
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("reading the staged delta part: {e}"))
            })?;
        self.pos = self.pos.saturating_add(got as u64);
        Ok(got)
    }
}

/// Reads a list of segments in order, without copying them together first.
struct SegReader<'s> {
    file: &'s File,
    segs: &'s [Seg],
    /// The job's read sources, loaded.
    sources: &'s [Arc<Vec<u8>>],
    seg: usize,
    pos: usize,
    /// The bspatch under way, for a [`Seg::Patch`] (its patch read through a buffer:
    /// control records are 24 bytes each).
    patch: Option<bspatch::BspatchReader<'s, std::io::BufReader<RangeReader<'s>>>>,
}

/// Buffer for reading a patch from the staged payload.
const PATCH_BUFFER: usize = 64 * 1024;

impl Read for SegReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while let Some(s) = self.segs.get(self.seg) {
            let n = match s {
                Seg::Blob(r) => {
                    let left = (r.len as usize).saturating_sub(self.pos);
                    let n = left.min(buf.len());
                    if n > 0 {
                        self.file
                            .read_exact_at(&mut buf[..n], r.start + self.pos as u64)?;
                    }
                    n
                }
                Seg::Source(src, start, end) => {
                    let v = self
                        .sources
                        .get(*src)
                        .map(|v| v.as_slice())
                        .unwrap_or_default();
                    copy_from(v.get(*start..*end).unwrap_or_default(), self.pos, buf)
                }
                Seg::Patch { old, patch, size } => {
                    if self.patch.is_none() {
                        let old = self
                            .sources
                            .get(*old)
                            .map(|v| v.as_slice())
                            .unwrap_or_default();
                        let reader = std::io::BufReader::with_capacity(
                            PATCH_BUFFER,
                            RangeReader {
                                file: self.file,
                                range: *patch,
                                pos: 0,
                            },
                        );
                        let r = bspatch::BspatchReader::new(old, reader, patch.len, *size)
                            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                        self.patch = Some(r);
                    }
                    match self.patch.as_mut() {
                        Some(r) => r.read(buf)?,
                        None => 0,
                    }
                }
            };
            if n == 0 {
                self.seg += 1;
                self.pos = 0;
                self.patch = None;
                continue;
            }
            self.pos += n;
            return Ok(n);
        }
        Ok(0)
    }
}

fn copy_from(src: &[u8], pos: usize, buf: &mut [u8]) -> usize {
    let rest = src.get(pos..).unwrap_or_default();
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    n
}

/// The object being written between `o` and `c`.
struct Open {
    job: Job,
    /// Already held: run the operations, keep nothing.
    skip: bool,
}

/// What one part produced.
#[derive(Debug)]
pub struct PartResult {
    /// Objects stored and handed to the sink.
    pub stored: u64,
    /// Objects the part carries that were already held (not stored again).
    pub skipped: u64,
}

/// Receives each verified object as soon as it is stored (from any thread).
pub type Sink<'s, ObjectID> = dyn Fn(Checksum, Entry<ObjectID>) + Sync + 's;

fn header_for(
    payload: &PartPayloadRef<'_>,
    id: &Checksum,
    mode: usize,
    xattrs: usize,
    size: u64,
) -> Result<FileHeader, PullError> {
    let bad = |what: String| PullError::Hostile(format!("delta object {id}: {what}"));
    let m = payload
        .mode(mode)
        .ok_or_else(|| bad(format!("mode index {mode} out of range")))?;
    let x = payload
        .xattrs(xattrs)
        .ok_or_else(|| bad(format!("xattr index {xattrs} out of range")))?;
    let xattrs = x
        .entries()
        .map_err(|e| bad(format!("xattrs: {e}")))?
        .into_iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    Ok(FileHeader {
        size,
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
        rdev: 0,
        symlink_target: String::new(),
        xattrs,
    })
}

/// One object ready to be stored: where its header comes from and its content as
/// segments. It holds no content: its read sources are loaded by the worker storing it.
struct Job {
    id: Checksum,
    /// Indices into the part's mode and xattr tables (checked).
    mode: usize,
    xattrs: usize,
    /// Content size (0 for a symlink).
    size: u64,
    /// A symlink's target (at most 4 KiB).
    symlink: Option<String>,
    segs: Vec<Seg>,
    /// Read sources its segments use: object and size.
    sources: Vec<(Checksum, u64)>,
}

impl Job {
    fn new(id: Checksum, mode: usize, xattrs: usize, size: u64) -> Self {
        Self {
            id,
            mode,
            xattrs,
            size,
            symlink: None,
            segs: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// The index of read source `src` in [`Self::sources`], added if new.
    fn source(&mut self, src: (Checksum, u64)) -> usize {
        match self.sources.iter().position(|s| s.0 == src.0) {
            Some(i) => i,
            None => {
                self.sources.push(src);
                self.sources.len() - 1
            }
        }
    }
}

/// Memory the store workers of one part may hold at once for the read sources of the
/// objects queued and being stored. A job larger than this runs alone.
pub const OBJECT_MEMORY: u64 = 16 * 1024 * 1024;

/// A counting gate over the read sources that running store jobs hold (blocking: the
/// workers are plain threads). A worker acquires a job's share before loading its
/// sources and releases it when the job is done.
struct MemGate {
    used: Mutex<u64>,
    freed: Condvar,
    limit: u64,
}

impl MemGate {
    /// Waits until `n` (at most the limit) fits; returns what was taken.
    fn acquire(&self, n: u64) -> u64 {
        let n = n.min(self.limit);
        if n == 0 {
            return 0;
        }
        let Ok(mut used) = self.used.lock() else {
            return 0;
        };
        while *used + n > self.limit {
            match self.freed.wait(used) {
                Ok(u) => used = u,
                Err(_) => return 0,
            }
        }
        *used += n;
        n
    }

    fn release(&self, n: u64) {
        if n > 0
            && let Ok(mut used) = self.used.lock()
        {
            *used = used.saturating_sub(n);
            self.freed.notify_all();
        }
    }
}

/// Memory a job holds while stored: its read sources (patches and their results are
/// streamed, never held).
fn job_memory(job: &Job) -> u64 {
    job.sources
        .iter()
        .fold(0u64, |a, (_, size)| a.saturating_add(*size))
}

/// Loads the job's read sources, then streams its segments into the store, verified.
fn store_job<ObjectID: FsVerityHashValue>(
    repo: &Repository<ObjectID>,
    file: &File,
    payload: &PartPayloadRef<'_>,
    sources: &ReadSources<ObjectID>,
    job: &Job,
) -> Result<(Checksum, Entry<ObjectID>), PullError> {
    let mut header = header_for(payload, &job.id, job.mode, job.xattrs, job.size)?;
    if let Some(target) = &job.symlink {
        header.size = 0;
        header.symlink_target = target.clone();
    }
    let loaded = job
        .sources
        .iter()
        .map(|(id, _)| sources.content(id))
        .collect::<Result<Vec<_>, _>>()?;
    let reader = SegReader {
        file,
        segs: &job.segs,
        sources: &loaded,
        seg: 0,
        pos: 0,
        patch: None,
    };
    match ingest_file(repo, &job.id, &header, reader) {
        Ok(entry) => Ok((job.id, entry)),
        Err(e) => Err(match bspatch_failure(&e) {
            Some(b) => PullError::Hostile(format!("delta object {}: bspatch: {b}", job.id)),
            None => e.into(),
        }),
    }
}

/// The bspatch error behind a failed ingestion, if that is what failed it.
fn bspatch_failure(e: &crate::ingest::IngestError) -> Option<String> {
    use crate::ingest::IngestError;
    match e {
        IngestError::Read { source, .. } => {
            bspatch::BspatchError::from_io(source).map(|b| b.to_string())
        }
        IngestError::Store { source, .. } => source.chain().find_map(|c| {
            c.downcast_ref::<std::io::Error>()
                .and_then(bspatch::BspatchError::from_io)
                .map(|b| b.to_string())
        }),
        _ => None,
    }
}

/// Most bytes of a part's mode and xattr tables and operations together, the part of its
/// payload read into memory (ostree's take a few kB per hundred objects).
pub const MAX_TABLES_AND_OPS: u64 = 64 * 1024 * 1024;

/// Most segments (runs of content from the blob, a read source or a bspatch) the
/// objects of one part may be made of together, after adjacent runs are merged; each
/// costs a few dozen bytes until its object is stored.
pub const MAX_SEGMENTS: usize = 1 << 20;

/// Appends `seg` to an object's segments, counting it against the part's `budget`:
/// empty runs are dropped and a run that continues the previous one (same blob or read
/// source, next offset) extends it.
fn push_seg(
    id: &Checksum,
    segs: &mut Vec<Seg>,
    seg: Seg,
    budget: &mut usize,
) -> Result<(), PullError> {
    match (segs.last_mut(), &seg) {
        (_, Seg::Blob(r)) if r.len == 0 => return Ok(()),
        (_, Seg::Source(_, start, end)) if start == end => return Ok(()),
        (Some(Seg::Blob(prev)), Seg::Blob(r))
            if prev.start.checked_add(prev.len) == Some(r.start) =>
        {
            prev.len = prev.len.saturating_add(r.len);
            return Ok(());
        }
        (Some(Seg::Source(prev, _, prev_end)), Seg::Source(src, start, end))
            if prev == src && *prev_end == *start =>
        {
            *prev_end = *end;
            return Ok(());
        }
        _ => {}
    }
    if *budget == 0 {
        return Err(PullError::Hostile(format!(
            "delta part writes its objects in more than {MAX_SEGMENTS} separate runs (at object {id})"
        )));
    }
    *budget -= 1;
    segs.push(seg);
    Ok(())
}

/// Threads storing the objects of one part (reading sources, bspatch, hashing and
/// writing), once its operations are decoded.
pub fn store_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
}

/// Runs the operations of one part — its decompressed payload, `len` bytes in the
/// staged `file`, and the object list from its header — storing every object not already
/// held (`have` says which are) into `repo`, each verified against its name. Only the
/// payload's tables and ops are read into memory; object contents are read from the file
/// as they stream into the store. Objects are stored by [`store_workers`] threads,
/// largest first; the read sources they hold are bounded by [`OBJECT_MEMORY`].
pub fn apply_part<ObjectID: FsVerityHashValue>(
    repo: &Repository<ObjectID>,
    file: &File,
    len: u64,
    objects: DeltaObjects<'_>,
    sources: &ReadSources<ObjectID>,
    have: &(dyn Fn(&Checksum) -> bool + Sync),
    sink: &Sink<'_, ObjectID>,
    cancel: &Cancel,
) -> Result<PartResult, PullError> {
    let layout = |e: &dyn std::fmt::Display| PullError::Hostile(format!("delta part payload: {e}"));
    let tail_len = len.min(PAYLOAD_TAIL as u64);
    let tail = read_range(
        file,
        BlobRange {
            start: len - tail_len,
            len: tail_len,
        },
    )?;
    let [m, x, b, o] = payload_ranges(len, &tail).map_err(|e| layout(&e))?;
    // What is read into memory: the mode and xattr tables and the operations. ostree's
    // are a few kB per hundred objects; a hostile part could declare gigabytes.
    let held = x.end.saturating_add(o.end.saturating_sub(o.start));
    if held > MAX_TABLES_AND_OPS {
        return Err(layout(&format!(
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
    let modes = tables
        .get(m.start as usize..m.end as usize)
        .unwrap_or_default();
    let xattrs = tables
        .get(x.start as usize..x.end as usize)
        .unwrap_or_default();
    let payload = PartPayloadRef::from_tables(modes, xattrs, &ops).map_err(|e| layout(&e))?;
    let blob = FileBlob {
        file,
        start: b.start,
        len: usize::try_from(b.end - b.start).map_err(|_| layout(&"blob too large"))?,
    };
    let ctx = OpContextOf {
        objects,
        n_modes: payload.n_modes(),
        n_xattrs: payload.n_xattrs(),
        blob,
    };
    let stored = AtomicU64::new(0);
    let give = |id: Checksum, e: Entry<ObjectID>| {
        stored.fetch_add(1, Ordering::Relaxed);
        sink(id, e);
    };
    // All operations are decoded and checked first (quick: no content is read but
    // metadata objects'), then the objects are stored largest first, so that the
    // longest job does not start last and run alone.
    let (mut jobs, skipped) = decode(&payload, ctx, sources, have, cancel, &give)?;
    jobs.sort_by_key(|j| std::cmp::Reverse(j.size));
    let mut seen = HashSet::new();
    let wanted: Vec<Checksum> = jobs
        .iter()
        .flat_map(|j| j.sources.iter().map(|(id, _)| *id))
        .filter(|id| seen.insert(*id))
        .take(MAX_PREFETCH)
        .collect();
    drop(seen);

    let workers = store_workers();
    let failed = AtomicBool::new(false);
    let worker_error: Mutex<Option<PullError>> = Mutex::new(None);
    let gate = MemGate {
        used: Mutex::new(0),
        freed: Condvar::new(),
        limit: OBJECT_MEMORY,
    };
    let next_job = AtomicUsize::new(0);
    let next_prefetch = AtomicUsize::new(0);
    let done_jobs = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..PREFETCH_THREADS.min(wanted.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed)
                    && !done_jobs.load(Ordering::Relaxed)
                    && !cancel.is_cancelled()
                {
                    let i = next_prefetch.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = wanted.get(i) else { return };
                    sources.prefetch(id);
                }
            });
        }
        let stores: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) && !cancel.is_cancelled() {
                        let i = next_job.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { return };
                        let mem = gate.acquire(job_memory(job));
                        let done = store_job(repo, file, &payload, sources, job);
                        gate.release(mem);
                        match done {
                            Ok((id, entry)) => give(id, entry),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                if let Ok(mut slot) = worker_error.lock() {
                                    slot.get_or_insert(e);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for t in stores {
            let _ = t.join();
        }
        done_jobs.store(true, Ordering::Relaxed);
    });
    if let Some(e) = worker_error.into_inner().ok().flatten() {
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(PullError::Cancelled);
    }
    Ok(PartResult {
        stored: stored.into_inner(),
        skipped,
    })
}

/// Decodes and checks the operations: metadata objects are verified here and given to
/// `give`; every file object not already held becomes a [`Job`]. Returns the jobs and
/// the count of objects skipped. At most one job per object the part lists.
fn decode<'a, ObjectID: FsVerityHashValue>(
    payload: &PartPayloadRef<'a>,
    ctx: OpContextOf<'a, FileBlob<'a>>,
    sources: &ReadSources<ObjectID>,
    have: &(dyn Fn(&Checksum) -> bool + Sync),
    cancel: &Cancel,
    give: &(dyn Fn(Checksum, Entry<ObjectID>) + Sync),
) -> Result<(Vec<Job>, u64), PullError> {
    let blob = ctx.blob;
    let max_jobs = ctx.objects.len();
    let mut jobs: Vec<Job> = Vec::new();
    let mut skipped = 0u64;
    let mut open: Option<Open> = None;
    // The read source set by `r`: its object and size (its content is not read here).
    let mut read_source: Option<(Checksum, u64)> = None;
    let mut budget = MAX_SEGMENTS;
    let add = |jobs: &mut Vec<Job>, job: Job| -> Result<(), PullError> {
        if jobs.len() >= max_jobs {
            return Err(PullError::Hostile(format!(
                "delta part writes more objects than the {max_jobs} it lists"
            )));
        }
        jobs.push(job);
        Ok(())
    };

    for op in OpsOf::new(payload.ops_bytes(), ctx) {
        if cancel.is_cancelled() {
            return Err(PullError::Cancelled);
        }
        let op = op.map_err(|e| PullError::Hostile(format!("delta part operations: {e}")))?;
        match op {
            OpOf::SpliceMetadata { object, data } => {
                read_source = None;
                if !object.object_type.is_meta() {
                    return Err(PullError::Hostile(format!(
                        "delta splices {} as metadata but it is a {:?} object",
                        object.checksum, object.object_type
                    )));
                }
                if have(&object.checksum) {
                    skipped += 1;
                    continue;
                }
                if data.len > crate::limits::MAX_METADATA_OBJECT {
                    return Err(PullError::Hostile(format!(
                        "delta metadata object {} is {} bytes, over the limit",
                        object.checksum, data.len
                    )));
                }
                let data = read_range(blob.file, data)?;
                let actual = Checksum::of(&data);
                if actual != object.checksum {
                    return Err(PullError::ChecksumMismatch {
                        object: format!(
                            "{}.{} (from a delta part)",
                            object.checksum,
                            object.object_type.as_str()
                        ),
                        actual,
                    });
                }
                let entry = Entry {
                    data,
                    external: None,
                };
                give(object.checksum, entry);
            }
            OpOf::SpliceFile {
                object,
                mode,
                xattrs,
                data,
            } => {
                read_source = None;
                if have(&object.checksum) {
                    skipped += 1;
                    continue;
                }
                let id = object.checksum;
                // Checks the indices and the type; the worker builds the header again.
                let header = header_for(payload, &id, mode, xattrs, data.len)?;
                let mut job = Job::new(id, mode, xattrs, data.len);
                if header.mode & S_IFMT == S_IFLNK {
                    if data.len > 4096 {
                        return Err(PullError::Hostile(format!(
                            "delta object {id}: symlink target of {} bytes",
                            data.len
                        )));
                    }
                    let target = String::from_utf8(read_range(blob.file, data)?).map_err(|_| {
                        PullError::Hostile(format!(
                            "delta object {id}: symlink target is not UTF-8"
                        ))
                    })?;
                    job.size = 0;
                    job.symlink = Some(target);
                } else {
                    push_seg(&id, &mut job.segs, Seg::Blob(data), &mut budget)?;
                }
                add(&mut jobs, job)?;
            }
            OpOf::Open {
                object,
                mode,
                xattrs,
                size,
            } => {
                if object.object_type != ObjectType::File {
                    return Err(PullError::Hostile(format!(
                        "delta opens {} for writing but it is a {:?} object",
                        object.checksum, object.object_type
                    )));
                }
                let header = header_for(payload, &object.checksum, mode, xattrs, size)?;
                if header.mode & S_IFMT != S_IFREG {
                    return Err(PullError::Hostile(format!(
                        "delta object {}: only regular files can be written with open/write/close",
                        object.checksum
                    )));
                }
                open = Some(Open {
                    job: Job::new(object.checksum, mode, xattrs, size),
                    skip: have(&object.checksum),
                });
            }
            OpOf::Write { size, source } => {
                let Some(o) = open.as_mut() else {
                    return Err(PullError::Internal(
                        "delta write with no object open".into(),
                    ));
                };
                if o.skip {
                    continue;
                }
                let job = &mut o.job;
                match source {
                    WriteSourceOf::Blob(b) => {
                        push_seg(&job.id, &mut job.segs, Seg::Blob(b), &mut budget)?;
                    }
                    WriteSourceOf::ReadSource { offset } => {
                        let Some(src) = read_source else {
                            return Err(PullError::Internal(
                                "delta write from an unset read source".into(),
                            ));
                        };
                        let range =
                            offset
                                .checked_add(size)
                                .filter(|&e| e <= src.1)
                                .and_then(|e| {
                                    Some((usize::try_from(offset).ok()?, usize::try_from(e).ok()?))
                                });
                        let Some((start, end)) = range else {
                            return Err(PullError::Hostile(format!(
                                "delta object {}: write of {size} bytes at {offset} is past the end of its {}-byte read source",
                                job.id, src.1
                            )));
                        };
                        let idx = job.source(src);
                        push_seg(
                            &job.id,
                            &mut job.segs,
                            Seg::Source(idx, start, end),
                            &mut budget,
                        )?;
                    }
                }
            }
            OpOf::SetReadSource { checksum } => {
                // Checked (a regular file of the from-commit, within the size limit)
                // but read only by the worker storing an object that uses it.
                let needed = open.as_ref().is_none_or(|o| !o.skip);
                read_source = if needed {
                    let (_, size, _) = sources.locate(&checksum)?;
                    Some((checksum, size))
                } else {
                    None
                };
            }
            OpOf::UnsetReadSource => read_source = None,
            OpOf::Bspatch { patch, size } => {
                let Some(o) = open.as_mut() else {
                    return Err(PullError::Internal(
                        "delta bspatch with no object open".into(),
                    ));
                };
                if o.skip {
                    continue;
                }
                let Some(src) = read_source else {
                    return Err(PullError::Internal(
                        "delta bspatch with no read source".into(),
                    ));
                };
                let job = &mut o.job;
                let old = job.source(src);
                push_seg(
                    &job.id,
                    &mut job.segs,
                    Seg::Patch { old, patch, size },
                    &mut budget,
                )?;
            }
            OpOf::Close { object } => {
                read_source = None;
                let Some(o) = open.take() else {
                    return Err(PullError::Internal(
                        "delta close with no object open".into(),
                    ));
                };
                if o.job.id != object.checksum {
                    return Err(PullError::Internal(
                        "delta closed another object than it opened".into(),
                    ));
                }
                if o.skip {
                    skipped += 1;
                    continue;
                }
                add(&mut jobs, o.job)?;
            }
            _ => {
                return Err(PullError::Internal("unknown delta operation".into()));
            }
        }
    }
    Ok((jobs, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(start: u64, len: u64) -> Seg {
        Seg::Blob(BlobRange { start, len })
    }

    fn ranges(segs: &[Seg]) -> Vec<(char, u64, u64)> {
        segs.iter()
            .map(|s| match s {
                Seg::Blob(r) => ('b', r.start, r.len),
                Seg::Source(i, a, b) => (char::from(b'0' + *i as u8), *a as u64, *b as u64),
                Seg::Patch { size, .. } => ('p', 0, *size),
            })
            .collect()
    }

    #[test]
    fn adjacent_runs_merge_and_empty_ones_vanish() {
        let id = Checksum([1; 32]);
        let mut segs = Vec::new();
        let mut budget = MAX_SEGMENTS;
        for seg in [
            blob(10, 5),
            blob(15, 5),
            blob(20, 0),
            blob(30, 1),
            Seg::Source(0, 0, 10),
            Seg::Source(0, 10, 20),
            Seg::Source(0, 20, 20),
            Seg::Source(1, 20, 30),
            Seg::Source(0, 40, 50),
            blob(31, 2),
        ] {
            push_seg(&id, &mut segs, seg, &mut budget).unwrap();
        }
        assert_eq!(
            ranges(&segs),
            [
                ('b', 10, 10),
                ('b', 30, 1),
                ('0', 0, 20),
                ('1', 20, 30),
                ('0', 40, 50),
                ('b', 31, 2),
            ]
        );
        assert_eq!(budget, MAX_SEGMENTS - 6);
    }

    #[test]
    fn a_part_of_too_many_runs_is_refused() {
        let id = Checksum([2; 32]);
        let mut segs = Vec::new();
        let mut budget = 3;
        // Every other byte: nothing merges.
        for i in 0..3 {
            push_seg(&id, &mut segs, blob(i * 2, 1), &mut budget).unwrap();
        }
        let err = push_seg(&id, &mut segs, blob(100, 1), &mut budget).unwrap_err();
        assert!(err.to_string().contains("separate runs"), "{err}");
        // Zero-length and merged runs never count.
        push_seg(&id, &mut segs, blob(7, 0), &mut budget).unwrap();
        push_seg(&id, &mut segs, blob(5, 3), &mut budget).unwrap();
    }

    #[test]
    fn a_job_names_each_read_source_once() {
        let mut job = Job::new(Checksum([3; 32]), 0, 0, 10);
        let a = (Checksum([4; 32]), 5);
        let b = (Checksum([5; 32]), 7);
        assert_eq!(job.source(a), 0);
        assert_eq!(job.source(b), 1);
        assert_eq!(job.source(a), 0);
        assert_eq!(job_memory(&job), 12);
    }
}
