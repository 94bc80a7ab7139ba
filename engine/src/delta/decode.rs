//! Decoding a part's operations into what to store: metadata objects are read from the
//! blob, verified and handed over at once; every file object not already held becomes a
//! [`Job`] (its content as segments, nothing read), after its table indices, type, read
//! sources and ranges are checked. A malformed part is refused here, before anything of
//! it is stored.

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaObject;
use cfsync_formats::delta::ops::{OpContextOf, OpOf, OpsOf, WriteSourceOf};
use cfsync_formats::delta::part::PartPayloadRef;
use cfsync_formats::mode::{S_IFLNK, S_IFMT, S_IFREG};
use cfsync_formats::object::ObjectType;
use composefs::fsverity::FsVerityHashValue;

use super::blob::{BlobRange, FileBlob, read_range};
use super::job::{ApplyTo, Job, MAX_SEGMENTS, Seg, header_for, push_seg};
use crate::error::PullError;
use crate::store::commit_stream::Entry;

/// The object being written between `o` and `c`.
struct Open {
    job: Job,
    /// Already held: run the operations, keep nothing.
    skip: bool,
}

/// The decoder's state while it runs through a part's operations.
struct Decoder<'d, 'a, ObjectID: FsVerityHashValue> {
    to: &'d ApplyTo<'d, ObjectID>,
    payload: &'d PartPayloadRef<'a>,
    blob: FileBlob<'a>,
    /// Most jobs: one per object the part lists.
    max_jobs: usize,
    jobs: Vec<Job>,
    open: Option<Open>,
    /// The read source set by `r`: its object and size (its content is not read here).
    read_source: Option<(Checksum, u64)>,
    /// Segments the part may still add ([`MAX_SEGMENTS`] in all).
    budget: usize,
}

/// Decodes and checks the operations: metadata objects are verified here and given to
/// `to.sink`; every file object not already held becomes a [`Job`] (held ones are
/// skipped). At most one job per object the part lists.
pub(crate) fn decode<'a, ObjectID: FsVerityHashValue>(
    payload: &PartPayloadRef<'a>,
    ctx: OpContextOf<'a, FileBlob<'a>>,
    to: &ApplyTo<'_, ObjectID>,
) -> Result<Vec<Job>, PullError> {
    let mut d = Decoder {
        to,
        payload,
        blob: ctx.blob,
        max_jobs: ctx.objects.len(),
        jobs: Vec::new(),
        open: None,
        read_source: None,
        budget: MAX_SEGMENTS,
    };
    for op in OpsOf::new(payload.ops_bytes(), ctx) {
        if to.cancel.is_cancelled() {
            return Err(PullError::Cancelled);
        }
        let op = op.map_err(|e| PullError::Hostile(format!("delta part operations: {e}")))?;
        d.step(op)?;
    }
    Ok(d.jobs)
}

impl<ObjectID: FsVerityHashValue> Decoder<'_, '_, ObjectID> {
    /// Runs one operation.
    fn step(&mut self, op: OpOf<BlobRange>) -> Result<(), PullError> {
        match op {
            OpOf::SpliceMetadata { object, data } => self.splice_metadata(object, data),
            OpOf::SpliceFile {
                object,
                mode,
                xattrs,
                data,
            } => self.splice_file(object, mode, xattrs, data),
            OpOf::Open {
                object,
                mode,
                xattrs,
                size,
            } => self.open(object, mode, xattrs, size),
            OpOf::Write { size, source } => self.write(size, source),
            OpOf::SetReadSource { checksum } => self.set_read_source(checksum),
            OpOf::UnsetReadSource => {
                self.read_source = None;
                Ok(())
            }
            OpOf::Bspatch { patch, size } => self.bspatch(patch, size),
            OpOf::Close { object } => self.close(object),
            _ => Err(PullError::Internal("unknown delta operation".into())),
        }
    }

    /// Adds a job, at most one per object the part lists.
    fn add(&mut self, job: Job) -> Result<(), PullError> {
        if self.jobs.len() >= self.max_jobs {
            return Err(PullError::Hostile(format!(
                "delta part writes more objects than the {} it lists",
                self.max_jobs
            )));
        }
        self.jobs.push(job);
        Ok(())
    }

    /// `S` of a metadata object: read it from the blob, verify it, hand it over.
    fn splice_metadata(&mut self, object: DeltaObject, data: BlobRange) -> Result<(), PullError> {
        self.read_source = None;
        if !object.object_type.is_meta() {
            return Err(PullError::Hostile(format!(
                "delta splices {} as metadata but it is a {:?} object",
                object.checksum, object.object_type
            )));
        }
        if (self.to.have)(&object.checksum) {
            return Ok(());
        }
        if data.len > crate::limits::MAX_METADATA_OBJECT {
            return Err(PullError::Hostile(format!(
                "delta metadata object {} is {} bytes, over the limit",
                object.checksum, data.len
            )));
        }
        let data = read_range(self.blob.file, data)?;
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
        (self.to.sink)(object.checksum, entry);
        Ok(())
    }

    /// `S` of a file object: a regular file's content from the blob, or a symlink's
    /// target (read here, at most 4 KiB).
    fn splice_file(
        &mut self,
        object: DeltaObject,
        mode: usize,
        xattrs: usize,
        data: BlobRange,
    ) -> Result<(), PullError> {
        self.read_source = None;
        if (self.to.have)(&object.checksum) {
            return Ok(());
        }
        let id = object.checksum;
        // Checks the indices and the type; the worker builds the header again.
        let header = header_for(self.payload, &id, mode, xattrs, data.len)?;
        let mut job = Job::new(id, mode, xattrs, data.len);
        if header.mode & S_IFMT == S_IFLNK {
            if data.len > 4096 {
                return Err(PullError::Hostile(format!(
                    "delta object {id}: symlink target of {} bytes",
                    data.len
                )));
            }
            let target = String::from_utf8(read_range(self.blob.file, data)?).map_err(|_| {
                PullError::Hostile(format!("delta object {id}: symlink target is not UTF-8"))
            })?;
            job.size = 0;
            job.symlink = Some(target);
        } else {
            push_seg(&id, &mut job.segs, Seg::Blob(data), &mut self.budget)?;
        }
        self.add(job)
    }

    /// `o`: start a regular file written by the operations up to its `c`.
    fn open(
        &mut self,
        object: DeltaObject,
        mode: usize,
        xattrs: usize,
        size: u64,
    ) -> Result<(), PullError> {
        if object.object_type != ObjectType::File {
            return Err(PullError::Hostile(format!(
                "delta opens {} for writing but it is a {:?} object",
                object.checksum, object.object_type
            )));
        }
        let header = header_for(self.payload, &object.checksum, mode, xattrs, size)?;
        if header.mode & S_IFMT != S_IFREG {
            return Err(PullError::Hostile(format!(
                "delta object {}: only regular files can be written with open/write/close",
                object.checksum
            )));
        }
        self.open = Some(Open {
            job: Job::new(object.checksum, mode, xattrs, size),
            skip: (self.to.have)(&object.checksum),
        });
        Ok(())
    }

    /// `w`: content of the open object from the blob or from the read source (its range
    /// checked against the read source's size).
    fn write(&mut self, size: u64, source: WriteSourceOf<BlobRange>) -> Result<(), PullError> {
        let Some(o) = self.open.as_mut() else {
            return Err(PullError::Internal(
                "delta write with no object open".into(),
            ));
        };
        if o.skip {
            return Ok(());
        }
        let job = &mut o.job;
        match source {
            WriteSourceOf::Blob(b) => {
                push_seg(&job.id, &mut job.segs, Seg::Blob(b), &mut self.budget)?;
            }
            WriteSourceOf::ReadSource { offset } => {
                let Some(src) = self.read_source else {
                    return Err(PullError::Internal(
                        "delta write from an unset read source".into(),
                    ));
                };
                let range = offset
                    .checked_add(size)
                    .filter(|&e| e <= src.1)
                    .and_then(|e| Some((usize::try_from(offset).ok()?, usize::try_from(e).ok()?)));
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
                    &mut self.budget,
                )?;
            }
        }
        Ok(())
    }

    /// `r`: set the read source. Checked (a regular file of the from-commit, within the
    /// size limit) but read only by the worker storing an object that uses it.
    fn set_read_source(&mut self, checksum: Checksum) -> Result<(), PullError> {
        let needed = self.open.as_ref().is_none_or(|o| !o.skip);
        self.read_source = if needed {
            let (_, size, _) = self.to.sources.locate(&checksum)?;
            Some((checksum, size))
        } else {
            None
        };
        Ok(())
    }

    /// `B`: content of the open object as a bspatch of the read source.
    fn bspatch(&mut self, patch: BlobRange, size: u64) -> Result<(), PullError> {
        let Some(o) = self.open.as_mut() else {
            return Err(PullError::Internal(
                "delta bspatch with no object open".into(),
            ));
        };
        if o.skip {
            return Ok(());
        }
        let Some(src) = self.read_source else {
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
            &mut self.budget,
        )
    }

    /// `c`: the open object is complete.
    fn close(&mut self, object: DeltaObject) -> Result<(), PullError> {
        self.read_source = None;
        let Some(o) = self.open.take() else {
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
            return Ok(());
        }
        self.add(o.job)
    }
}
