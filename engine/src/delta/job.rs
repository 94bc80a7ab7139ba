//! What decoding a part hands to storing it: for each file object to store a [`Job`], its
//! header's table indices and its content as [`Seg`]ments (runs of the blob, of a read
//! source, or a bspatch), with adjacent runs merged and their number bounded per part;
//! and what both steps work against ([`ApplyTo`]: the store, read sources, what is held,
//! the [`Sink`] objects go to).

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::part::PartPayloadRef;
use cfsync_formats::file::FileHeader;

use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

use super::blob::BlobRange;
use super::read_sources::ReadSources;
use crate::error::PullError;
use crate::progress::Cancel;
use crate::store::commit_stream::Entry;

/// Receives each verified object as soon as it is stored (from any thread).
pub(crate) type Sink<'s, ObjectID> = dyn Fn(Checksum, Entry<ObjectID>) + Sync + 's;

/// What a part is applied against: the store, where read sources come from, which
/// objects are already held, where stored objects go, and cancellation.
pub(crate) struct ApplyTo<'a, ObjectID: FsVerityHashValue> {
    /// The object store.
    pub(crate) repo: &'a Repository<ObjectID>,
    /// Where read sources come from.
    pub(crate) sources: &'a ReadSources<ObjectID>,
    /// Whether an object is already held (it is then not stored again).
    pub(crate) have: &'a (dyn Fn(&Checksum) -> bool + Sync),
    /// Receives each object as it is stored.
    pub(crate) sink: &'a Sink<'a, ObjectID>,
    /// The delta memory budget: each object's read sources take their share of it
    /// while the object is stored (parts applied at once and decoders share it).
    pub(crate) budget: &'a super::budget::Budget,
    /// Tmpfiles made ahead for the objects to store.
    pub(crate) tmpfiles: &'a crate::tmpfiles::TmpfilePool,
    /// Cancellation.
    pub(crate) cancel: &'a Cancel,
}

/// One piece of an object's content.
pub(crate) enum Seg {
    /// From the blob, in the staged payload file.
    Blob(BlobRange),
    /// From read source `.0` of the job (an index into [`Job::sources`]), `start..end`.
    Source(usize, usize, usize),
    /// `bspatch(old, patch)`, `size` bytes, `old` being read source `old` of the job,
    /// produced as the object streams into the store (the patch is read from the staged
    /// payload as it is applied).
    Patch {
        /// The read source patched (an index into [`Job::sources`]).
        old: usize,
        /// The patch, in the blob.
        patch: BlobRange,
        /// The size of the result.
        size: u64,
    },
}

/// One object ready to be stored: where its header comes from and its content as
/// segments. It holds no content: its read sources are loaded by the worker storing it.
pub(crate) struct Job {
    /// The object.
    pub(crate) id: Checksum,
    /// Its index into the part's mode table (checked).
    pub(crate) mode: usize,
    /// Its index into the xattr table (checked).
    pub(crate) xattrs: usize,
    /// Content size (0 for a symlink).
    pub(crate) size: u64,
    /// A symlink's target (at most 4 KiB).
    pub(crate) symlink: Option<String>,
    /// Its content, in order.
    pub(crate) segs: Vec<Seg>,
    /// Read sources its segments use: object and size.
    pub(crate) sources: Vec<(Checksum, u64)>,
}

impl Job {
    /// A job for object `id` with no content yet.
    pub(crate) fn new(id: Checksum, mode: usize, xattrs: usize, size: u64) -> Self {
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
    pub(crate) fn source(&mut self, src: (Checksum, u64)) -> usize {
        match self.sources.iter().position(|s| s.0 == src.0) {
            Some(i) => i,
            None => {
                self.sources.push(src);
                self.sources.len() - 1
            }
        }
    }
}

/// Memory a job holds while stored: its read sources (patches and their results are
/// streamed, never held).
pub(crate) fn job_memory(job: &Job) -> u64 {
    job.sources
        .iter()
        .fold(0u64, |a, (_, size)| a.saturating_add(*size))
}

/// The file header of object `id` from the part's mode and xattr tables (indices
/// `mode` and `xattrs`, checked here) and its content `size`.
pub(crate) fn header_for(
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

/// Most segments (runs of content from the blob, a read source or a bspatch) the
/// objects of one part may be made of together, after adjacent runs are merged; each
/// costs a few dozen bytes until its object is stored.
pub const MAX_SEGMENTS: usize = 1 << 20;

/// Appends `seg` to an object's segments, counting it against the part's `budget`:
/// empty runs are dropped and a run that continues the previous one (same blob or read
/// source, next offset) extends it.
pub(crate) fn push_seg(
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
