//! Storing a part's decoded objects: worker threads load each [`Job`]'s read sources
//! and stream its segments (blob ranges, read-source ranges, bspatch output) into the
//! composefs object store, verified against the object's name
//! ([`crate::ingest::ingest_file`]), while prefetch threads start reading the next read
//! sources. Blocking code.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::bspatch;
use cfsync_formats::delta::part::PartPayloadRef;
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use super::blob::RangeReader;
use super::job::{ApplyTo, Job, Seg, header_for, job_memory};
use super::read_sources::ReadSources;
use crate::error::PullError;
use crate::ingest::ingest_file_ahead;
use crate::store::commit_stream::Entry;
use crate::tmpfiles::TmpfilePool;

/// Threads that open read sources and start their reads ahead of the store workers: on
/// a cold page cache each source costs an inode read and a data read.
const PREFETCH_THREADS: usize = 4;

/// Most read sources prefetched for one part (beyond them workers read on their own):
/// bounds the list however many set-read-source operations a hostile part repeats.
const MAX_PREFETCH: usize = 16 * 1024;

/// Threads storing the objects of one part (reading sources, bspatch, hashing and
/// writing), once its operations are decoded: two per core, at least four, since much
/// of their time is spent waiting for the disk (read sources and, on a cold cache, the
/// inode tables a new object's inode comes from) rather than computing.
pub(crate) fn store_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .saturating_mul(2)
        .clamp(4, 16)
}

/// Stores `jobs` with [`store_workers`] threads, largest first (so that the longest job
/// does not start last and run alone), giving each object to `to.sink` as it is stored,
/// while [`PREFETCH_THREADS`] threads start reading the read sources ahead. The read
/// sources the workers hold come out of the delta memory budget (`to.budget`, shared with
/// the decoders and every part applied at once). Returns the first error of any worker.
pub(crate) fn store_all<ObjectID: FsVerityHashValue>(
    to: &ApplyTo<'_, ObjectID>,
    file: &File,
    payload: &PartPayloadRef<'_>,
    mut jobs: Vec<Job>,
) -> Result<(), PullError> {
    let ApplyTo {
        repo,
        sources,
        sink: give,
        cancel,
        budget,
        tmpfiles,
        ..
    } = *to;
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
                        let done = budget.take_blocking(job_memory(job)).and_then(|share| {
                            let done = store_job(repo, file, payload, sources, tmpfiles, job);
                            drop(share);
                            done
                        });
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
    match worker_error.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
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
                            RangeReader::new(self.file, *patch),
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

/// Loads the job's read sources, then streams its segments into the store, verified.
fn store_job<ObjectID: FsVerityHashValue>(
    repo: &Repository<ObjectID>,
    file: &File,
    payload: &PartPayloadRef<'_>,
    sources: &ReadSources<ObjectID>,
    tmpfiles: &TmpfilePool,
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
    match ingest_file_ahead(repo, &job.id, &header, reader, Some(tmpfiles)) {
        Ok(entry) => {
            if job.size >= WRITEBACK_KICK
                && let Some(obj) = &entry.external
            {
                start_writeback(repo, obj);
            }
            Ok((job.id, entry))
        }
        Err(e) => Err(match bspatch_failure(&e) {
            Some(b) => PullError::Hostile(format!("delta object {}: bspatch: {b}", job.id)),
            None => e.into(),
        }),
    }
}

/// Objects at least this large have their writeback started as soon as they are
/// stored ([`start_writeback`]).
const WRITEBACK_KICK: u64 = 64 * 1024;

/// Starts writing stored object `obj` to disk now, without waiting (and lets its pages
/// leave the cache once written: nothing reads them during the pull). No background
/// flush runs during a delta (it would also write out the staged parts, deleted
/// unread), so without this the commit's final barrier would write every object the
/// delta made at once, after the last part. Best effort: a failure here is left for the
/// barrier to meet.
fn start_writeback<ObjectID: FsVerityHashValue>(repo: &Repository<ObjectID>, obj: &ObjectID) {
    if let Ok(fd) = repo.open_object(obj) {
        let _ = rustix::fs::fadvise(&fd, 0, None, rustix::fs::Advice::DontNeed);
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
