//! The parallel pipeline: file jobs (read, pair, bsdiff) on every core, objects packed
//! into parts in job order, parts compressed on every core and written as they finish.
//!
//! ```text
//!  jobs ──► workers (N) ──► reorder (window) ──► packer ──► compressors (N) ──► part files
//! ```
//!
//! The packer fills one part per [`Class`] of object (plain, x86 code, already
//! compressed, bsdiff patch) and each class is compressed its own way (`compress.rs`):
//! xz finds more in like data side by side, the x86 filter helps only machine code, and
//! compressed files are not worth a slow preset (nor, when xz saves under 3 % of them,
//! the client's LZMA decoding: such parts go as uncompressed LZMA2 chunks).
//!
//! Memory bound: the heavy steps take their estimate from one [`Budget`] before they
//! allocate (bsdiff: 5 bytes per old byte plus twice the new file; xz: 12 × dictionary
//! plus the payload) and run alone when one is larger than the whole budget. Besides
//! that, finished objects wait for the packer within a window of 4 jobs per core, or
//! beyond it up to 64 MiB (so one slow bsdiff does not stall the other cores), one part
//! per class is being filled and one waits per compressor. With the defaults (8 MiB
//! parts, 4 MiB dictionaries, so two encoders of 56 MiB fit the 192 MiB budget side by
//! side; bsdiff up to 24 MiB, fallbacks above 4 MB) peak memory stays near the budget
//! plus about 2 × N parts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Condvar, Mutex};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::write::{PartBuilder, PartEntry, compress_part};
use cfsync_formats::object::ObjectType;
use cfsync_formats::xattrs::Xattrs;

use super::bsdiff;
use super::compress::{Budget, Compressed, PartMsg, compress_loop};
use super::error::DeltaError;
use super::options::GenerateOptions;
use super::pair::{self, Class};
use super::tree::Repo;

/// One new file object to put into the delta.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) checksum: Checksum,
    /// Old file objects to try as a bsdiff base, best first.
    pub(crate) bases: Vec<Checksum>,
}

/// What a worker made of a job.
enum Item {
    Whole {
        checksum: Checksum,
        mode: (u32, u32, u32),
        xattrs: Xattrs,
        content: Vec<u8>,
        symlink: bool,
        class: Class,
    },
    Bsdiff {
        checksum: Checksum,
        mode: (u32, u32, u32),
        xattrs: Xattrs,
        old: Checksum,
        size: u64,
        patch: Vec<u8>,
    },
    Fallback {
        checksum: Checksum,
        stored: u64,
        size: u64,
    },
}

/// Counts for the report.
#[derive(Debug, Default, Clone)]
pub struct PackStats {
    /// Dirtree and dirmeta objects.
    pub metadata: u64,
    /// Files sent whole.
    pub whole: u64,
    /// Files rebuilt with bsdiff.
    pub bsdiff: u64,
    /// Files left to fallbacks.
    pub fallback: u64,
    /// New files' content bytes sent as bsdiff patches instead.
    pub bsdiff_bytes: u64,
    /// Already-compressed files with a base that went whole (the probe found them
    /// unrelated, or the patch lost).
    pub compressed_skipped: u64,
    /// Already-compressed files sent as bsdiff patches.
    pub compressed_bsdiff: u64,
    /// Files whose bsdiff patch lost to the whole file.
    pub patch_rejected: u64,
    /// The largest part payload (uncompressed).
    pub max_payload: u64,
    /// The largest dictionary used.
    pub max_dict: u32,
    /// Parts of already-compressed files sent as uncompressed LZMA2 chunks (xz saved
    /// under 3 % of them).
    pub stored_parts: u64,
}

/// What the pipeline produced.
pub(crate) struct Packed {
    pub(crate) parts: Vec<PartEntry>,
    pub(crate) fallbacks: Vec<(Checksum, u64, u64)>,
    pub(crate) stats: PackStats,
}

/// Job hand-out with a window: a worker may start job `i` only while
/// `i < emitted + window`, so finished objects waiting for the packer stay few.
struct Dispatch {
    state: Mutex<DispatchState>,
    cv: Condvar,
    window: usize,
    failed: AtomicBool,
}

/// Jobs handed out, jobs packed, and bytes of finished objects waiting for the packer.
#[derive(Default)]
struct DispatchState {
    next: usize,
    emitted: usize,
    pending: u64,
}

/// Finished objects may wait for the packer up to this many bytes: beyond the window,
/// workers keep going while they fit, so one slow bsdiff does not stall every core.
const PENDING_MAX: u64 = 64 << 20;
/// Never more than this many jobs ahead of the packer.
const MAX_AHEAD: usize = 4096;

impl Dispatch {
    fn take(&self, n_jobs: usize) -> Option<usize> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.failed.load(Ordering::Relaxed) || s.next >= n_jobs {
                return None;
            }
            let ahead = s.next.saturating_sub(s.emitted);
            if ahead < self.window || (s.pending < PENDING_MAX && ahead < MAX_AHEAD) {
                let i = s.next;
                s.next = s.next.saturating_add(1);
                return Some(i);
            }
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finished(&self, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.pending = s.pending.saturating_add(bytes);
    }

    fn emitted(&self, n: usize, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.emitted = n;
        s.pending = s.pending.saturating_sub(bytes);
        self.cv.notify_all();
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
        let _g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }
}

fn item_len(item: &Item) -> usize {
    match item {
        Item::Whole { content, .. } => content.len(),
        Item::Bsdiff { patch, .. } => patch.len(),
        Item::Fallback { .. } => 0,
    }
}

/// Counters the workers bump.
#[derive(Default)]
struct Counters {
    compressed_skipped: std::sync::atomic::AtomicU64,
    compressed_bsdiff: std::sync::atomic::AtomicU64,
    patch_rejected: std::sync::atomic::AtomicU64,
}

fn work(
    repo: &Repo,
    job: &Job,
    opts: &GenerateOptions,
    budget: &Budget,
    counters: &Counters,
) -> Result<Item, DeltaError> {
    let (header, reader) = repo.open_file(&job.checksum)?;
    // A large file that bsdiff will not run on goes as a fallback object: decided from
    // its header, without reading the content (a 110 MB library into memory for
    // nothing).
    let bsdiff_possible =
        !job.bases.is_empty() && header.size > 0 && header.size <= opts.max_bsdiff_size;
    if header.is_regular()
        && !bsdiff_possible
        && opts.min_fallback_size > 0
        && header.size > opts.min_fallback_size
    {
        return Ok(Item::Fallback {
            checksum: job.checksum,
            stored: repo.stored_size(&job.checksum, header.size),
            size: header.size,
        });
    }
    let content = repo.content(&job.checksum, &header, reader)?;
    let mode = (header.uid, header.gid, header.mode);
    if header.is_symlink() {
        return Ok(Item::Whole {
            checksum: job.checksum,
            mode,
            xattrs: header.xattrs,
            content: header.symlink_target.into_bytes(),
            symlink: true,
            class: Class::Plain,
        });
    }
    let size = header.size;
    // Already-compressed files differ from their old version everywhere after the first
    // change, unless (zip, jar, some gzip) unchanged members survive: bsdiff runs only
    // when a probe of the new file finds long runs in the old one.
    let compressed = pair::is_compressed(&content);
    if !job.bases.is_empty() && size > 0 && size <= opts.max_bsdiff_size {
        let mut sized = Vec::new();
        for b in &job.bases {
            if let Ok(h) = repo.header(b)
                && h.is_regular()
            {
                sized.push((*b, h.size));
            }
        }
        if let Some(base) = pair::closest(&sized, size, opts.max_bsdiff_size) {
            let (_, old) = repo.file(&base)?;
            let got = budget.acquire(bsdiff::memory(old.len() as u64, size));
            let patch = bsdiff::diff(&old, &content, compressed);
            drop(old);
            budget.release(got);
            if let Some(patch) = patch
                && worth_patch(&patch, &content)
            {
                if compressed {
                    counters.compressed_bsdiff.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(Item::Bsdiff {
                    checksum: job.checksum,
                    mode,
                    xattrs: header.xattrs,
                    old: base,
                    size,
                    patch,
                });
            }
            if compressed {
                counters.compressed_skipped.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.patch_rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if opts.min_fallback_size > 0 && size > opts.min_fallback_size {
        return Ok(Item::Fallback {
            checksum: job.checksum,
            stored: repo.stored_size(&job.checksum, size),
            size,
        });
    }
    let class = pair::classify(&content);
    Ok(Item::Whole {
        checksum: job.checksum,
        mode,
        xattrs: header.xattrs,
        content,
        symlink: false,
        class,
    })
}

/// Whether a bsdiff patch beats sending `content` whole. Patches are mostly zero bytes
/// where old and new agree; when few bytes are nonzero that settles it, otherwise both
/// are compressed with a fast xz preset and the smaller wins.
fn worth_patch(patch: &[u8], content: &[u8]) -> bool {
    if pair::clearly_worth_patch(patch, content.len() as u64) {
        return true;
    }
    let estimate = |b: &[u8]| compress_part(b, 1, 1 << 20).map_or(usize::MAX, |f| f.len());
    estimate(patch) < estimate(content)
}

/// Runs the pipeline: `meta` objects first, then `jobs` in order; part files go into
/// `dir` (unless inline).
pub(crate) fn run(
    repo: &Repo,
    meta: &[(ObjectType, Checksum, Vec<u8>)],
    jobs: &[Job],
    opts: &GenerateOptions,
    dir: &Path,
) -> Result<Packed, DeltaError> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    };
    let budget = Budget::new(opts.memory_budget.max(1));
    let dispatch = Dispatch {
        state: Mutex::new(DispatchState::default()),
        cv: Condvar::new(),
        window: threads.saturating_mul(4).max(4),
        failed: AtomicBool::new(false),
    };
    let (item_tx, item_rx) =
        sync_channel::<(usize, Result<Item, DeltaError>)>(threads.saturating_mul(2));
    let (part_tx, part_rx) = sync_channel::<PartMsg>(1);
    let counters = Counters::default();
    let part_rx = Mutex::new(part_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel();

    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = item_tx.clone();
            let (dispatch, budget, counters) = (&dispatch, &budget, &counters);
            s.spawn(move || {
                while let Some(i) = dispatch.take(jobs.len()) {
                    let Some(job) = jobs.get(i) else { return };
                    let r = work(repo, job, opts, budget, counters);
                    if let Ok(item) = &r {
                        dispatch.finished(item_len(item) as u64);
                    }
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(item_tx);
        for _ in 0..threads {
            let (rx, tx, budget) = (&part_rx, done_tx.clone(), &budget);
            s.spawn(move || compress_loop(rx, &tx, opts, dir, budget));
        }
        drop(done_tx);

        let packed = pack(meta, jobs.len(), &item_rx, &part_tx, &dispatch, opts);
        if packed.is_err() {
            dispatch.fail();
        }
        drop(item_rx);
        drop(part_tx);
        let (n_parts, fallbacks, mut stats) = packed?;
        stats.compressed_skipped = counters.compressed_skipped.load(Ordering::Relaxed);
        stats.patch_rejected = counters.patch_rejected.load(Ordering::Relaxed);
        stats.compressed_bsdiff = counters.compressed_bsdiff.load(Ordering::Relaxed);
        let mut parts: Vec<Option<PartEntry>> = vec![None; n_parts];
        let mut first_err = None;
        for r in done_rx.iter() {
            match r {
                Ok(Compressed {
                    idx,
                    entry,
                    dict,
                    stored,
                }) => {
                    stats.max_dict = stats.max_dict.max(dict);
                    stats.stored_parts += u64::from(stored);
                    if let Some(slot) = parts.get_mut(idx) {
                        *slot = Some(entry);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let parts = parts
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| DeltaError::Worker("a part was not compressed".to_owned()))?;
        Ok(Packed {
            parts,
            fallbacks,
            stats,
        })
    })
}

type Packing = (usize, Vec<(Checksum, u64, u64)>, PackStats);

fn pack(
    meta: &[(ObjectType, Checksum, Vec<u8>)],
    n_jobs: usize,
    items: &Receiver<(usize, Result<Item, DeltaError>)>,
    parts: &SyncSender<PartMsg>,
    dispatch: &Dispatch,
    opts: &GenerateOptions,
) -> Result<Packing, DeltaError> {
    let mut stats = PackStats::default();
    let mut fallbacks = Vec::new();
    // One part being filled per class; metadata goes with the plain files.
    let mut builders: [PartBuilder; 4] = Default::default();
    let mut n_parts = 0usize;
    let mut flush =
        |b: &mut PartBuilder, class: Class, stats: &mut PackStats| -> Result<(), DeltaError> {
            if b.is_empty() {
                return Ok(());
            }
            let built = std::mem::take(b).finish()?;
            tracing::debug!(
                part = n_parts,
                ?class,
                payload = built.payload.len(),
                "delta part filled"
            );
            stats.max_payload = stats.max_payload.max(built.payload.len() as u64);
            parts
                .send((n_parts, built, class))
                .map_err(|_| DeltaError::Worker("compressors stopped".to_owned()))?;
            n_parts = n_parts.saturating_add(1);
            Ok(())
        };
    let plain = Class::Plain.index();
    for (ty, c, bytes) in meta {
        let Some(builder) = builders.get_mut(plain) else {
            break;
        };
        builder.add_metadata(*ty, c, bytes)?;
        stats.metadata = stats.metadata.saturating_add(1);
        if builder.approx_len() >= opts.part_size {
            flush(builder, Class::Plain, &mut stats)?;
        }
    }
    let mut pending: BTreeMap<usize, Item> = BTreeMap::new();
    let mut next = 0usize;
    while next < n_jobs {
        let (i, r) = items
            .recv()
            .map_err(|_| DeltaError::Worker("workers stopped".to_owned()))?;
        pending.insert(i, r?);
        while let Some(item) = pending.remove(&next) {
            next = next.saturating_add(1);
            let len = item_len(&item);
            dispatch.emitted(next, len as u64);
            let class = match &item {
                Item::Whole { class, .. } => *class,
                Item::Bsdiff { .. } => Class::Patch,
                Item::Fallback { .. } => Class::Plain,
            };
            let Some(builder) = builders.get_mut(class.index()) else {
                continue;
            };
            if !matches!(item, Item::Fallback { .. })
                && (len >= opts.part_size
                    || builder.approx_len().saturating_add(len) > opts.part_size)
            {
                flush(builder, class, &mut stats)?;
            }
            match item {
                Item::Whole {
                    checksum,
                    mode,
                    xattrs,
                    content,
                    symlink,
                    ..
                } => {
                    builder.add_file(&checksum, mode, &xattrs, &content, symlink);
                    stats.whole = stats.whole.saturating_add(1);
                }
                Item::Bsdiff {
                    checksum,
                    mode,
                    xattrs,
                    old,
                    size,
                    patch,
                } => {
                    builder.add_bsdiff(&checksum, mode, &xattrs, &old, size, &patch);
                    stats.bsdiff = stats.bsdiff.saturating_add(1);
                    stats.bsdiff_bytes = stats.bsdiff_bytes.saturating_add(size);
                }
                Item::Fallback {
                    checksum,
                    stored,
                    size,
                } => {
                    fallbacks.push((checksum, stored, size));
                    stats.fallback = stats.fallback.saturating_add(1);
                }
            }
            if builder.approx_len() >= opts.part_size {
                flush(builder, class, &mut stats)?;
            }
        }
    }
    for (builder, class) in builders.iter_mut().zip(Class::ALL) {
        flush(builder, class, &mut stats)?;
    }
    Ok((n_parts, fallbacks, stats))
}
