//! Staging a part: download it into an anonymous file while hashing it (or take it from
//! the superblock when inline), check its sha256 against the superblock, then decompress
//! it into a second anonymous file, capped at the part's payload limit, within the
//! delta memory budget. Nothing of the part is held in memory.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::part;
use futures::StreamExt;

use super::budget::Budget;
use crate::error::PullError;
use crate::progress::Cancel;
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

/// Attempts per part when its body breaks off mid-way.
const PART_ATTEMPTS: u32 = 3;

/// A hostile-input error naming the part and its delta.
pub(crate) fn part_err(job: &PartJob, delta: &str, what: impl std::fmt::Display) -> PullError {
    PullError::Hostile(format!(
        "{} (part {} of delta {delta}): {what}",
        job.path, job.index
    ))
}

fn tmp_err(dir: &Path, e: std::io::Error) -> PullError {
    PullError::Internal(format!("temporary file in {}: {e}", dir.display()))
}

impl Stager {
    /// Downloads a part into an anonymous file while hashing it (nothing is held in
    /// memory), checks its sha256 against the superblock, then decompresses it into a
    /// second anonymous file, capped at the part's payload limit.
    pub(crate) async fn stage(&self, job: PartJob) -> Result<StagedPart, PullError> {
        let tmp = self.tmp.as_path();
        let mut compressed = tempfile::tempfile_in(tmp).map_err(|e| tmp_err(tmp, e))?;
        let actual = match &job.inline {
            Some(b) => {
                compressed.write_all(b).map_err(|e| tmp_err(tmp, e))?;
                Checksum::of(b)
            }
            None => self.download(&job, &mut compressed).await?,
        };
        tracing::debug!("{}: downloaded and verified", job.path);
        if actual != job.checksum {
            return Err(PullError::ChecksumMismatch {
                object: format!(
                    "{} (part {} of delta {}; the superblock says {})",
                    job.path, job.index, self.delta, job.checksum
                ),
                actual,
            });
        }
        self.decompress(job, compressed).await
    }

    /// Downloads the part into `compressed`, retrying a body that breaks off
    /// ([`PART_ATTEMPTS`] in all); returns the sha256 of what was written.
    async fn download(
        &self,
        job: &PartJob,
        compressed: &mut std::fs::File,
    ) -> Result<Checksum, PullError> {
        use sha2::Digest;
        let tmp = self.tmp.as_path();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut stream = self
                .source
                .get_stream(&job.path, PathKind::Content, job.size)
                .await?
                .ok_or_else(|| PullError::NotFound {
                    what: format!("part {} of static delta {}", job.index, self.delta),
                    path: job.path.clone(),
                })?;
            compressed.set_len(0).map_err(|e| tmp_err(tmp, e))?;
            compressed.rewind().map_err(|e| tmp_err(tmp, e))?;
            let mut h = sha2::Sha256::new();
            let mut broken = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => {
                        h.update(&c);
                        compressed.write_all(&c).map_err(|e| tmp_err(tmp, e))?;
                    }
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
                if self.cancel.is_cancelled() {
                    return Err(PullError::Cancelled);
                }
            }
            match broken {
                None => return Ok(Checksum(h.finalize().into())),
                Some(e) if e.is_transient() && attempt < PART_ATTEMPTS => {
                    tracing::debug!("{}: retrying after {e}", job.path);
                }
                Some(e) => return Err(e.into()),
            }
        }
    }

    /// Decompresses the verified part into an anonymous file, on a blocking thread,
    /// once the budget has room for it.
    async fn decompress(
        &self,
        job: PartJob,
        mut compressed: std::fs::File,
    ) -> Result<StagedPart, PullError> {
        let tmp = self.tmp.clone();
        let delta = self.delta.clone();
        // The xz dictionary is as large as the payload, up to the stream's dictionary
        // size (at least one unit of the budget, however small the part says it is).
        let permit = self.budget.take(job.estimate.max(1)).await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            compressed.rewind().map_err(|e| tmp_err(&tmp, e))?;
            let mut payload = tempfile::tempfile_in(&tmp).map_err(|e| tmp_err(&tmp, e))?;
            let mut reader = part::PartPayloadReader::new(
                std::io::BufReader::with_capacity(256 * 1024, compressed),
                job.cap,
            );
            let len =
                std::io::copy(&mut reader, &mut payload).map_err(
                    |e| match part::PartError::from_io(&e) {
                        Some(pe) => part_err(&job, &delta, pe),
                        None => tmp_err(&tmp, e),
                    },
                )?;
            tracing::debug!("{}: decompressed {len} bytes", job.path);
            Ok(StagedPart { job, payload, len })
        })
        .await
        .map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))?
    }
}
