//! Staging a part: download it into an anonymous file while hashing it (or take it from
//! the superblock when inline), check its sha256 against the superblock, then decompress
//! it into a second anonymous file, capped at the part's payload limit, within the
//! delta memory budget. Nothing of the part is held in memory. A downloaded part that
//! breaks off or arrives damaged is downloaded again ([`crate::refetch`]).

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::part;
use futures::StreamExt;

use super::budget::Budget;
use crate::error::PullError;
use crate::progress::Cancel;
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{PathKind, Source};

/// One part to fetch and apply.
#[derive(Debug)]
pub(crate) struct PartJob {
    /// Its index in the superblock.
    pub(crate) index: usize,
    /// Its path on the remote.
    pub(crate) path: String,
    /// The sha256 the superblock gives for it.
    pub(crate) checksum: Checksum,
    /// Its compressed size (the download cap).
    pub(crate) size: u64,
    /// The cap on its decompressed payload.
    pub(crate) cap: u64,
    /// Its object list, as the superblock holds it.
    pub(crate) objects: Vec<u8>,
    /// Its bytes, when the superblock carries it inline.
    pub(crate) inline: Option<Vec<u8>>,
    /// The payload size the superblock declares (for the memory budget only).
    pub(crate) estimate: u64,
}

/// A part verified and decompressed into an anonymous file.
#[derive(Debug)]
pub(crate) struct StagedPart {
    /// The part.
    pub(crate) job: PartJob,
    /// Its decompressed payload.
    pub(crate) payload: std::fs::File,
    /// The payload's length.
    pub(crate) len: u64,
}

/// What staging parts of one delta shares.
#[derive(Debug)]
pub(crate) struct Stager {
    /// The delta's name, as users see it.
    pub(crate) delta: String,
    /// Where parts are fetched from.
    pub(crate) source: Arc<Source>,
    /// Where the anonymous files are made.
    pub(crate) tmp: PathBuf,
    /// The delta memory budget (decompression takes its share).
    pub(crate) budget: Arc<Budget>,
    /// Cancellation.
    pub(crate) cancel: Cancel,
}

/// A hostile-input error naming the part and its delta.
pub(crate) fn part_err(job: &PartJob, delta: &str, what: impl std::fmt::Display) -> PullError {
    part_err_at(&job.path, job.index, delta, what)
}

/// [`part_err`] for the part at `path`, index `index`.
fn part_err_at(path: &str, index: usize, delta: &str, what: impl std::fmt::Display) -> PullError {
    PullError::Hostile(format!("{path} (part {index} of delta {delta}): {what}"))
}

fn tmp_err(dir: &Path, e: std::io::Error) -> PullError {
    PullError::Internal(format!("temporary file in {}: {e}", dir.display()))
}

impl Stager {
    /// Downloads a part into an anonymous file while hashing it (nothing is held in
    /// memory), checks its sha256 against the superblock, then decompresses it into a
    /// second anonymous file, capped at the part's payload limit. A part that breaks off,
    /// does not hash to what the superblock says or does not decompress is downloaded
    /// again (fresh when it arrived damaged), within the source's budget
    /// ([`crate::refetch`]); a part carried inline in the superblock is checked once.
    pub(crate) async fn stage(&self, job: PartJob) -> Result<StagedPart, PullError> {
        let tmp = self.tmp.as_path();
        if let Some(b) = &job.inline {
            let mut compressed = tempfile::tempfile_in(tmp).map_err(|e| tmp_err(tmp, e))?;
            compressed.write_all(b).map_err(|e| tmp_err(tmp, e))?;
            let actual = Checksum::of(b);
            if actual != job.checksum {
                return Err(self.mismatch(&job, actual));
            }
            let (payload, len) = self
                .decompress(&job, compressed)
                .await
                .map_err(Failed::into_error)?;
            return Ok(StagedPart { job, payload, len });
        }
        let what = format!("part {} of delta {}", job.index, self.delta);
        let named = Named {
            what: &what,
            path: &job.path,
            kind: PathKind::Content,
        };
        let (payload, len) = fetch_checked(&self.source, named, |fresh| {
            let job = &job;
            async move {
                let source = self.source.fresh(fresh);
                let mut compressed = tempfile::tempfile_in(tmp).map_err(|e| tmp_err(tmp, e))?;
                let actual = self.download(job, &mut compressed, &source).await?;
                tracing::debug!("{}: downloaded", job.path);
                if actual != job.checksum {
                    return Err(Failed::Damaged(self.mismatch(job, actual)));
                }
                self.decompress(job, compressed).await
            }
        })
        .await?;
        Ok(StagedPart { job, payload, len })
    }

    /// The error of a part that does not hash to what the superblock says.
    fn mismatch(&self, job: &PartJob, actual: Checksum) -> PullError {
        PullError::ChecksumMismatch {
            object: format!(
                "{} (part {} of delta {}; the superblock says {})",
                job.path, job.index, self.delta, job.checksum
            ),
            actual,
        }
    }

    /// Downloads the part from `source` into `compressed`; returns the sha256 of what
    /// was written. A body that breaks off is [`Failed::Broken`].
    async fn download(
        &self,
        job: &PartJob,
        compressed: &mut std::fs::File,
        source: &Source,
    ) -> Result<Checksum, Failed> {
        use sha2::Digest;
        let tmp = self.tmp.as_path();
        let mut stream = source
            .get_stream(&job.path, PathKind::Content, job.size)
            .await?
            .ok_or_else(|| PullError::NotFound {
                what: format!("part {} of static delta {}", job.index, self.delta),
                path: job.path.clone(),
            })?;
        compressed.set_len(0).map_err(|e| tmp_err(tmp, e))?;
        compressed.rewind().map_err(|e| tmp_err(tmp, e))?;
        let mut h = sha2::Sha256::new();
        while let Some(chunk) = stream.next().await {
            let c = chunk.map_err(Failed::streaming)?;
            h.update(&c);
            compressed.write_all(&c).map_err(|e| tmp_err(tmp, e))?;
            if self.cancel.is_cancelled() {
                return Err(PullError::Cancelled.into());
            }
        }
        Ok(Checksum(h.finalize().into()))
    }

    /// Decompresses the verified part into an anonymous file, on a blocking thread,
    /// once the budget has room for it; returns the file and the payload's length. A
    /// part that does not decompress is [`Failed::Damaged`].
    async fn decompress(
        &self,
        job: &PartJob,
        mut compressed: std::fs::File,
    ) -> Result<(std::fs::File, u64), Failed> {
        let tmp = self.tmp.clone();
        let delta = self.delta.clone();
        let (path, index, cap) = (job.path.clone(), job.index, job.cap);
        // The xz dictionary is as large as the payload, up to the stream's dictionary
        // size (at least one unit of the budget, however small the part says it is).
        let permit = self.budget.take(job.estimate.max(1)).await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            compressed.rewind().map_err(|e| tmp_err(&tmp, e))?;
            let mut payload = tempfile::tempfile_in(&tmp).map_err(|e| tmp_err(&tmp, e))?;
            let mut reader = part::PartPayloadReader::new(
                std::io::BufReader::with_capacity(256 * 1024, compressed),
                cap,
            );
            let len =
                std::io::copy(&mut reader, &mut payload).map_err(
                    |e| match part::PartError::from_io(&e) {
                        Some(pe) => Failed::Damaged(part_err_at(&path, index, &delta, pe)),
                        None => Failed::Final(tmp_err(&tmp, e)),
                    },
                )?;
            tracing::debug!("{path}: decompressed {len} bytes");
            Ok((payload, len))
        })
        .await
        .map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))?
    }
}
