//! Staging a part: download it while hashing it (or take it from the superblock when
//! inline) and decode it as its bytes arrive, into an anonymous file, capped at the
//! part's payload limit; the part is staged only once its sha256 matches the
//! superblock. Nothing of the part is held in memory beyond the decoder.
//!
//! The compressed bytes go through a [`spool`] file: the download appends, the decoder
//! (a blocking thread) follows, and it sees the end of the part only after the download
//! has checked the part's sha256. A damaged part (wrong sha256, or bytes that do not
//! decode) abandons its decoder and is downloaded again ([`crate::refetch`]); nothing
//! decoded from a bad copy is staged, so nothing of it is applied.
//!
//! Memory: a decoder takes from the delta budget what it will hold, read from the part's
//! first bytes ([`part::decoder_need`]): its xz dictionary, or the part's payload when
//! that is smaller (the dictionary is only touched as far as the payload goes); liblzma
//! is held to the dictionary it was charged for. So parts with small dictionaries decode
//! at once on every core while ostree's 32 MiB ones decode one at a time.
//!
//! Order: parts start downloading in the delta's order ([`Turn`]), at most
//! [`DOWNLOADS`] at once; the next one starts when this one's body is nearly in
//! ([`TURN_TAIL`]: at once, with its request, for a part no larger than that), or as soon
//! as this one's decoder is at work and the budget has room for another like it (so two
//! parts whose decoders cannot both run do not share the link).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::part::{self, DICT_PROBE_MAX, DecoderNeed, PartError};
use futures::StreamExt;
use tokio::sync::Semaphore;

use super::budget::{Budget, Gauge};
use super::spool::{Turn, TurnGuard, spool};
use crate::error::PullError;
use crate::progress::Cancel;
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{PathKind, Source};

/// Part bodies downloading at once. Large parts hand on their turn only near their end,
/// so at most two of them share the link; this bound matters for runs of small parts
/// (a v1→v2 delta's), each of which would otherwise cost a round trip of its own.
pub(crate) const DOWNLOADS: usize = 4;

/// Bytes of a part still to come when the next part's download starts anyway: about
/// what a 100 Mbit/s link carries in one 40 ms round trip, so the next part's request
/// travels while this one's last bytes arrive, and the link does not idle between parts.
/// A part no larger than this lets the next one start with its own request.
const TURN_TAIL: u64 = 512 * 1024;

/// What an xz decoder holds beside its dictionary (its state and buffers), in the
/// memory limit liblzma is given.
const DECODER_STATE: u64 = 1024 * 1024;

/// One part to fetch and apply.
#[derive(Debug)]
pub(crate) struct PartJob {
    /// Its place among the parts to fetch (the order downloads start in).
    pub(crate) place: usize,
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
    /// The delta memory budget (decoders take their share).
    pub(crate) budget: Arc<Budget>,
    /// Cancellation.
    pub(crate) cancel: Cancel,
    /// The order parts start downloading in.
    pub(crate) turn: Turn,
    /// Bodies downloading at once ([`DOWNLOADS`]).
    pub(crate) downloads: Semaphore,
    /// Decoders at work at once (one per core).
    pub(crate) decoders: Arc<Semaphore>,
    /// Decoders at work now, and the most at once.
    pub(crate) decoding: Arc<Gauge>,
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

/// What a decoder takes from the budget, and the memory liblzma may use, for a part
/// that needs `need` and declares `estimate` bytes of payload: the dictionary, or a
/// quarter more than the estimate (and 64 KiB) when that is less, since only as much of
/// the dictionary is touched as the payload fills.
fn decoder_cost(need: DecoderNeed, estimate: u64) -> (u64, u64) {
    match need {
        DecoderNeed::Dict(dict) => {
            let payload = estimate
                .saturating_add(estimate / 4)
                .saturating_add(64 * 1024);
            (
                dict.min(payload),
                dict.saturating_add(DECODER_STATE).min(part::XZ_MEMLIMIT),
            )
        }
        _ => (0, DECODER_STATE),
    }
}

/// The error of a part file shorter than its header.
fn too_short(head: &[u8]) -> PartError {
    if head.is_empty() {
        PartError::Empty
    } else {
        PartError::XzTruncated {
            offset: (head.len() as u64).saturating_sub(1),
        }
    }
}

/// The buffer a part's payload is decoded through on its way to its file: `std::io::copy`
/// writes a buffered reader's whole buffer at once, where its own 8 KiB buffer made a
/// write call per 8 KiB (a full pull of the small fixture's scratch delta took 3-4 %
/// more CPU).
const DECODE_BUFFER: usize = 256 * 1024;

/// A part's decoder at work on a blocking thread (or waiting for its share of the
/// budget); dropped, it is abandoned.
struct Decoder {
    task: tokio::task::JoinHandle<Result<(std::fs::File, u64), Failed>>,
    /// Set once the decoder has its share and started.
    started: Arc<AtomicBool>,
    /// Its share of the budget, in bytes.
    cost: u64,
}

impl Drop for Decoder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Decoder {
    /// The decoded payload and its length.
    async fn join(mut self) -> Result<(std::fs::File, u64), Failed> {
        (&mut self.task)
            .await
            .map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))?
    }
}

impl Stager {
    /// Stages a part: downloads it while decoding it, checks its sha256 against the
    /// superblock, and returns the decoded payload once it matches. A part that breaks
    /// off, does not hash to what the superblock says or does not decode is downloaded
    /// again (fresh when it arrived damaged), within the source's budget
    /// ([`crate::refetch`]); a part carried inline in the superblock is checked once.
    pub(crate) async fn stage(&self, job: PartJob) -> Result<StagedPart, PullError> {
        if let Some(b) = &job.inline {
            self.turn.pass(job.place);
            let actual = Checksum::of(b);
            if actual != job.checksum {
                return Err(self.mismatch(&job, actual));
            }
            let head = b.get(..DICT_PROBE_MAX).unwrap_or(b);
            let need = match part::decoder_need(head) {
                Ok(DecoderNeed::More(_)) => Err(too_short(head)),
                other => other,
            }
            .map_err(|e| part_err(&job, &self.delta, e))?;
            let reader = std::io::Cursor::new(b.clone());
            let (payload, len) = self
                .start_decoder(&job, need, reader)
                .join()
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
            async move { self.attempt(job, &self.source.fresh(fresh)).await }
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

    /// One download of the part from `source`, decoded as it arrives; the payload once
    /// the part's sha256 matches. A body that breaks off is [`Failed::Broken`], a
    /// damaged one [`Failed::Damaged`].
    async fn attempt(
        &self,
        job: &PartJob,
        source: &Source,
    ) -> Result<(std::fs::File, u64), Failed> {
        use sha2::Digest;
        let tmp = self.tmp.as_path();
        let turn = TurnGuard::new(&self.turn, job.place);
        self.turn.wait(job.place).await;
        let downloading = self
            .downloads
            .acquire()
            .await
            .map_err(|e| PullError::Internal(format!("delta downloads: {e}")))?;
        if job.size <= TURN_TAIL {
            // Its whole body is a tail: the next request travels beside this one.
            turn.pass();
        }
        let mut stream = source
            .get_stream(&job.path, PathKind::Content, job.size)
            .await?
            .ok_or_else(|| PullError::NotFound {
                what: format!("part {} of static delta {}", job.index, self.delta),
                path: job.path.clone(),
            })?;
        let file = tempfile::tempfile_in(tmp).map_err(|e| tmp_err(tmp, e))?;
        let (mut writer, reader) = spool(file).map_err(|e| tmp_err(tmp, e))?;
        let mut reader = Some(reader);
        let mut head = Vec::new();
        let mut bad_header = None;
        let mut decoder = None;
        let mut h = sha2::Sha256::new();
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            let c = chunk.map_err(Failed::streaming)?;
            h.update(&c);
            received = received.saturating_add(c.len() as u64);
            writer.append(&c).map_err(|e| tmp_err(tmp, e))?;
            if decoder.is_none() && bad_header.is_none() {
                let want = DICT_PROBE_MAX.saturating_sub(head.len()).min(c.len());
                head.extend_from_slice(c.get(..want).unwrap_or_default());
                match part::decoder_need(&head) {
                    Ok(DecoderNeed::More(_)) => {}
                    Ok(need) => {
                        if let Some(r) = reader.take() {
                            decoder = Some(self.start_decoder(job, need, r));
                        }
                    }
                    Err(e) => bad_header = Some(e),
                }
            }
            let decoder_fits = decoder
                .as_ref()
                .is_some_and(|d| d.started.load(Ordering::Acquire) && self.budget.has_room(d.cost));
            if decoder_fits || job.size.saturating_sub(received) <= TURN_TAIL {
                turn.pass();
            }
            if self.cancel.is_cancelled() {
                return Err(PullError::Cancelled.into());
            }
        }
        // The body is in: the next part may start.
        drop(downloading);
        drop(turn);
        tracing::debug!("{}: downloaded", job.path);
        let actual = Checksum(h.finalize().into());
        if actual != job.checksum {
            // Dropping the writer and the decoder abandons what was decoded.
            return Err(Failed::Damaged(self.mismatch(job, actual)));
        }
        let decoder = match (bad_header, decoder) {
            (Some(e), _) => return Err(self.damaged(job, e)),
            (None, Some(d)) => d,
            (None, None) => return Err(self.damaged(job, too_short(&head))),
        };
        writer.finish();
        decoder.join().await
    }

    /// The failure of a part whose checked bytes do not decode.
    fn damaged(&self, job: &PartJob, e: PartError) -> Failed {
        Failed::Damaged(part_err(job, &self.delta, e))
    }

    /// Starts decoding the part read from `reader` (from its compression byte), which
    /// needs `need`: once the budget has its share and a core is free, on a blocking
    /// thread, into an anonymous file. A part that does not decode is
    /// [`Failed::Damaged`].
    fn start_decoder<R: Read + Send + 'static>(
        &self,
        job: &PartJob,
        need: DecoderNeed,
        reader: R,
    ) -> Decoder {
        let (cost, memlimit) = decoder_cost(need, job.estimate);
        let started = Arc::new(AtomicBool::new(false));
        let tmp = self.tmp.clone();
        let delta = self.delta.clone();
        let (path, index, cap) = (job.path.clone(), job.index, job.cap);
        let budget = Arc::clone(&self.budget);
        let decoders = Arc::clone(&self.decoders);
        let gauge = Arc::clone(&self.decoding);
        let flag = Arc::clone(&started);
        let task = tokio::spawn(async move {
            let core = decoders
                .acquire_owned()
                .await
                .map_err(|e| PullError::Internal(format!("delta decoders: {e}")))?;
            let share = budget.take(cost).await?;
            tokio::task::spawn_blocking(move || {
                let _held = (core, share, gauge.enter());
                flag.store(true, Ordering::Release);
                tracing::debug!("{path}: decoding ({need:?}, {cost} bytes of the budget)");
                let mut payload = tempfile::tempfile_in(&tmp).map_err(|e| tmp_err(&tmp, e))?;
                let mut decoded = std::io::BufReader::with_capacity(
                    DECODE_BUFFER,
                    part::PartPayloadReader::with_memlimit(
                        std::io::BufReader::with_capacity(256 * 1024, reader),
                        cap,
                        memlimit,
                    ),
                );
                let len =
                    std::io::copy(&mut decoded, &mut payload).map_err(
                        |e| match PartError::from_io(&e) {
                            Some(pe) => Failed::Damaged(part_err_at(&path, index, &delta, pe)),
                            None => Failed::Final(tmp_err(&tmp, e)),
                        },
                    )?;
                tracing::debug!("{path}: decoded {len} bytes");
                Ok((payload, len))
            })
            .await
            .map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))?
        });
        Decoder {
            task,
            started,
            cost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoder_is_charged_its_dictionary_or_its_payload() {
        const MIB: u64 = 1024 * 1024;
        let table = [
            // ostree's 32 MiB dictionary on a full part: the dictionary.
            (DecoderNeed::Dict(32 * MIB), 32 * MIB, 32 * MIB, 33 * MIB),
            // On a 2 MiB part: what the payload fills.
            (
                DecoderNeed::Dict(32 * MIB),
                2 * MIB,
                2 * MIB + MIB / 2 + 64 * 1024,
                33 * MIB,
            ),
            // A 1 MiB dictionary on a large part: the dictionary.
            (DecoderNeed::Dict(MIB), 40 * MIB, MIB, 2 * MIB),
            // A dictionary past liblzma's limit: charged whole, refused by liblzma.
            (
                DecoderNeed::Dict(1 << 32),
                u64::MAX,
                1 << 32,
                part::XZ_MEMLIMIT,
            ),
            (DecoderNeed::Stored, 40 * MIB, 0, DECODER_STATE),
            (DecoderNeed::NoBlocks, 0, 0, DECODER_STATE),
        ];
        for (need, estimate, cost, memlimit) in table {
            assert_eq!(
                decoder_cost(need, estimate),
                (cost, memlimit),
                "{need:?} {estimate}"
            );
        }
    }
}
