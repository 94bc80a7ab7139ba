//! Static deltas: find the cheapest delta to the target commit, fetch its parts ahead
//! while earlier ones are applied, and reconstruct objects straight into the store.
//!
//! Finding: the summary's `ostree.static-deltas`, else the delta index
//! (`delta-indexes/XX/REST.index`, when the summary says `ostree.summary.indexed-deltas`
//! or there is no summary), else probing `deltas/<from>-<to>/superblock` and
//! `deltas/<to>/superblock` as ostree does. A delta from a commit is usable when the store
//! holds that commit (any commit, not only the ref's current one; the ref's is preferred).
//!
//! Choosing: a from-delta when one is usable; otherwise a scratch delta, part by part:
//! a part is fetched when at least half of its objects are missing from the store (or it
//! is the only way to get them cheaply), and skipped when the store already holds all or
//! most of its objects, which the object route then fetches loose or reuses. Parts whose
//! objects are all held are never fetched (this is also how an interrupted delta pull
//! resumes).
//!
//! Trust: the superblock's sha256 must equal the digest the summary lists (when it lists
//! one); a signed superblock is verified with the remote's ed25519 keys when the remote
//! has any; the commit embedded in the superblock must hash to the target commit (which
//! was verified before any content was fetched); each part's sha256 is checked against
//! the superblock before it is decompressed; each object's sha256 before it is kept.
//!
//! Memory: at most [`parts_in_flight`] parts are held at once (each its compressed bytes
//! until decompressed, then its payload); decompression is capped per part.

pub mod apply;
pub mod offline;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::index::{DeltaIndex, DeltaList};
use cfsync_formats::delta::part;
use cfsync_formats::delta::signed::open_superblock;
use cfsync_formats::summary::SummaryRef;
use composefs::fsverity::FsVerityHashValue;
use futures::StreamExt;

use crate::limits::{MAX_DELTA_INDEX, MAX_SUPERBLOCK};
use crate::progress::{Cancel, Event, Reporter, Tracker};
use crate::error::PullError;
use crate::source::{PathKind, Source};
use crate::store::Store;
use crate::store::commit_stream::CommitStreamBuilder;
use crate::store::index::ObjectIndex;
use crate::trust::Trust;

use apply::{ReadSources, apply_part};


/// Everything a delta pull needs to know.
#[derive(Debug)]
pub struct DeltaRequest<'a, ObjectID: FsVerityHashValue> {
    /// The store (holds possible `from` commits and reusable objects).
    pub store: &'a Store<ObjectID>,
    /// Where deltas are fetched from.
    pub source: &'a Arc<Source>,
    /// Verification policy (signed superblocks).
    pub trust: &'a Trust,
    /// The remote's summary, when it has one (lists deltas).
    pub summary: Option<&'a [u8]>,
    /// Which stored commit holds which object.
    pub index: &'a ObjectIndex,
    /// The commit to reach.
    pub target: Checksum,
    /// The commit the ref points at now, preferred as the delta's `from`.
    pub previous: Option<Checksum>,
    /// Plan only: fetch no parts, report sizes.
    pub dry_run: bool,
    /// Shared counters.
    pub tracker: &'a Tracker,
    /// Progress sink.
    pub reporter: &'a dyn Reporter,
    /// Cancellation.
    pub cancel: &'a Cancel,
}

/// What a delta did (or would do, on a dry run).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// "FROM-TO", or "TO" for a scratch delta.
    pub name: String,
    /// Parts applied (or to apply).
    pub parts: u64,
    /// Objects reconstructed (or to reconstruct).
    pub objects: u64,
    /// Bytes the delta costs to fetch (parts chosen, plus the superblock).
    pub estimated_bytes: Option<u64>,
}

/// Parts fetched and applied at once: one per core, at least two (so that one is being
/// fetched while another is applied), at most four.
pub fn parts_in_flight() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
}

/// Name of a delta as users see it: "FROM-TO" or "TO".
fn display_name(name: &DeltaName) -> String {
    match name.from {
        Some(f) => format!("{}-{}", f.to_hex(), name.to.to_hex()),
        None => name.to.to_hex(),
    }
}

/// What the remote says about deltas to the target.
enum Listed {
    /// A list (from the summary or a delta index) to pick from.
    List(DeltaList),
    /// The summary lists deltas and indexes none: there is no delta to the target.
    NoneToTarget,
    /// Nothing listed: probe for superblocks.
    Probe,
}

/// The deltas the remote lists as ending at `target` (with their superblock digests).
async fn listed_deltas(
    source: &Source,
    summary: Option<&[u8]>,
    target: &Checksum,
) -> Result<Listed, PullError> {
    let mut use_index = summary.is_none();
    if let Some(bytes) = summary {
        let s = SummaryRef::from_bytes(bytes)
            .map_err(|e| PullError::Hostile(format!("summary: {e}")))?;
        let listed = s
            .static_deltas()
            .map_err(|e| PullError::Hostile(format!("summary ostree.static-deltas: {e}")))?;
        if let Some(list) = listed.filter(|l| l.ending_at(target).next().is_some()) {
            return Ok(Listed::List(list));
        }
        use_index = s.indexed_deltas().ok().flatten().unwrap_or(false);
        if !use_index {
            // A summary that lists deltas but none to the target: there are none.
            return Ok(Listed::NoneToTarget);
        }
    }
    if use_index {
        let path = cfsync_formats::delta::names::index_path(target);
        if let Some(bytes) = source
            .get_bytes(&path, PathKind::Content, MAX_DELTA_INDEX)
            .await?
        {
            let idx = DeltaIndex::from_bytes(&bytes)
                .map_err(|e| PullError::Hostile(format!("delta index {path}: {e}")))?;
            return Ok(Listed::List(idx.deltas().clone()));
        }
    }
    Ok(Listed::Probe)
}

/// Uses a static delta to fill `builder` with the target commit's objects, when a delta
/// exists and costs less than fetching objects. `Ok(None)`: no delta was used, and the
/// object route must fetch everything.
pub async fn try_delta<ObjectID: FsVerityHashValue>(
    req: DeltaRequest<'_, ObjectID>,
    builder: &mut CommitStreamBuilder<ObjectID>,
) -> Result<Option<Applied>, PullError> {
    let target = req.target;
    let stored: HashSet<Checksum> = req.index.commits().iter().copied().collect();
    let listed = listed_deltas(req.source, req.summary, &target).await?;

    // Candidates, best first: from the ref's commit, from any stored commit, from scratch.
    let mut candidates: Vec<(DeltaName, Option<Checksum>)> = Vec::new();
    match &listed {
        Listed::NoneToTarget => return Ok(None),
        Listed::List(list) => {
            let mut from: Vec<_> = list
                .ending_at(&target)
                .filter(|e| e.name.from.is_some_and(|f| stored.contains(&f)))
                .map(|e| (e.name, Some(e.superblock_digest)))
                .collect();
            from.sort_by_key(|(n, _)| n.from != req.previous);
            candidates.extend(from);
            candidates.extend(
                list.ending_at(&target)
                    .filter(|e| e.name.from.is_none())
                    .map(|e| (e.name, Some(e.superblock_digest))),
            );
        }
        Listed::Probe => {
            if let Some(prev) = req.previous.filter(|p| stored.contains(p)) {
                candidates.push((DeltaName::new(Some(prev), target), None));
            }
            candidates.push((DeltaName::new(None, target), None));
        }
    }

    for (name, digest) in candidates {
        let path = name.superblock_path();
        let Some(bytes) = req
            .source
            .get_bytes(&path, PathKind::Content, MAX_SUPERBLOCK)
            .await?
        else {
            if digest.is_some() {
                tracing::warn!(
                    "delta {} is listed but its superblock is missing",
                    display_name(&name)
                );
            }
            continue;
        };
        if let Some(d) = digest {
            let actual = Checksum::of(&bytes);
            if actual != d {
                return Err(PullError::ChecksumMismatch {
                    object: format!("{path} (the summary lists {d})"),
                    actual,
                });
            }
        }
        return apply_delta(&req, builder, name, &bytes).await;
    }
    Ok(None)
}

async fn apply_delta<ObjectID: FsVerityHashValue>(
    req: &DeltaRequest<'_, ObjectID>,
    builder: &mut CommitStreamBuilder<ObjectID>,
    name: DeltaName,
    superblock_bytes: &[u8],
) -> Result<Option<Applied>, PullError> {
    let shown = display_name(&name);
    let bad =
        |e: &dyn std::fmt::Display| PullError::Hostile(format!("delta {shown} superblock: {e}"));
    let file = open_superblock(superblock_bytes).map_err(|e| bad(&e))?;
    if let Some(signed) = &file.signed {
        req.trust.verify_delta_superblock(&shown, signed)?;
    }
    let sb = &file.superblock;
    if sb.to() != name.to || sb.from() != name.from {
        return Err(bad(&"it describes another delta than its path names"));
    }
    let commit_id = Checksum::of(sb.commit_bytes());
    if commit_id != req.target {
        return Err(bad(&format!(
            "its commit hashes to {commit_id}, not to the target {}",
            req.target
        )));
    }

    // Which parts are worth fetching.
    let have = |id: &Checksum| builder.contains(id) || req.index.find(id).is_some();
    let mut chosen = Vec::new();
    let mut objects_needed = 0u64;
    for p in sb.parts() {
        let n = p.objects.len() as u64;
        let missing = p.objects.iter().filter(|o| !have(&o.checksum)).count() as u64;
        // A from-delta's parts rebuild objects from what the store holds; a scratch
        // delta's part only pays off when most of its objects are missing.
        let worth = missing > 0 && (name.from.is_some() || missing.saturating_mul(2) >= n);
        if worth {
            chosen.push(p.index);
            objects_needed += missing;
        }
    }
    if name.from.is_none() && chosen.is_empty() && !sb.parts().is_empty() {
        // Everything (or most of it) is held already: the object route is cheaper.
        req.reporter.report(Event::Message(format!(
            "skipping scratch delta {shown}: the store holds most of its objects"
        )));
        return Ok(None);
    }
    let part_bytes: u64 = chosen
        .iter()
        .filter_map(|&i| sb.parts().get(i))
        .fold(0u64, |a, p| a.saturating_add(p.size));
    let mut applied = Applied {
        name: shown.clone(),
        parts: chosen.len() as u64,
        objects: objects_needed,
        estimated_bytes: Some(part_bytes.saturating_add(superblock_bytes.len() as u64)),
    };
    if req.dry_run {
        return Ok(Some(applied));
    }
    // Refuse before fetching anything when the parts cannot fit (crate::space).
    let needed = crate::space::delta_needs(
        chosen
            .iter()
            .filter_map(|&i| sb.parts().get(i))
            .map(|p| (p.size, p.uncompressed_size)),
    );
    crate::space::ensure(req.store.path(), needed, &format!("static delta {shown}"))?;
    req.reporter.report(Event::Phase("delta"));
    req.reporter.report(Event::Message(format!(
        "static delta {shown}: {} of {} parts, {} bytes",
        chosen.len(),
        sb.parts().len(),
        part_bytes
    )));
    req.tracker
        .parts_expected
        .fetch_add(chosen.len() as u64, Ordering::Relaxed);
    req.tracker
        .objects_expected
        .fetch_add(objects_needed, Ordering::Relaxed);
    req.tracker
        .bytes_expected
        .fetch_add(part_bytes, Ordering::Relaxed);

    // Read sources come from the from-commit.
    let mut streams = Vec::new();
    if let Some(from) = name.from {
        let s = req.store.load_commit(&from)?.ok_or_else(|| {
            PullError::Internal(format!("delta from-commit {from} vanished from the store"))
        })?;
        streams.push(Arc::new(s));
    }
    let sources = Arc::new(ReadSources::new(Arc::clone(req.store.repo()), streams));
    // What the parts need not rebuild: objects held before the delta started.
    let held: Arc<HashSet<Checksum>> = Arc::new(
        sb.parts()
            .iter()
            .flat_map(|p| p.objects.iter())
            .map(|o| o.checksum)
            .filter(|id| have(id))
            .collect(),
    );

    let mut jobs = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let Some(p) = sb.parts().get(i) else { continue };
        let inline = sb.inline_part(i).map_err(|e| bad(&e))?.map(<[u8]>::to_vec);
        jobs.push(PartJob {
            index: i,
            path: name.part_path(i),
            checksum: p.checksum,
            size: p.size,
            cap: p.payload_cap(),
            objects: p.objects.data().to_vec(),
            inline,
            estimate: p.uncompressed_size,
        });
    }

    let source = Arc::clone(req.source);
    let repo = Arc::clone(req.store.repo());
    let cancel = req.cancel.clone();
    let tmp = req.store.state_dir()?.join("tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| PullError::Internal(format!("{}: {e}", tmp.display())))?;
    // Parts are downloaded, verified and decompressed (into anonymous files, not memory)
    // by tasks of their own, up to `parts_in_flight` ahead; this loop applies one at a
    // time, on every core, in the order they are ready (parts are independent of each
    // other, so a small part is applied while a large one still decompresses).
    // Decompressing (the xz dictionary) and applying (the payload) each hold memory
    // about the size of the part's payload; the budget decides how many may overlap.
    let budget = Arc::new(Budget::new(memory_budget_mib()));
    let mut staged = futures::stream::iter(jobs)
        .map(|job| {
            let (source, cancel, shown, tmp, budget) = (
                Arc::clone(&source),
                cancel.clone(),
                shown.clone(),
                tmp.clone(),
                Arc::clone(&budget),
            );
            tokio::spawn(
                async move { stage_part(job, &shown, &source, &tmp, &budget, &cancel).await },
            )
        })
        .buffer_unordered(parts_in_flight());
    // Fallback objects (files the delta carries loose) are fetched beside the parts.
    let objects = Arc::new(crate::fetch::SourceObjects {
        source: Arc::clone(&source),
        repo: Arc::clone(&repo),
    });
    let fallbacks: Vec<_> = sb
        .fallbacks()
        .iter()
        .filter(|f| !held.contains(&f.checksum) && !have(&f.checksum))
        .map(|f| {
            let (objects, id) = (Arc::clone(&objects), f.checksum);
            tokio::spawn(async move {
                crate::walk::ObjectSource::fetch_file(objects, id)
                    .await
                    .map(|e| (id, e))
            })
        })
        .collect();
    let mut made = 0u64;
    while let Some(part) = staged.next().await {
        let part =
            part.map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))??;
        let permit = budget.take(APPLY_MIB * 1024 * 1024).await?;
        let (repo, sources, held, cancel, shown) = (
            Arc::clone(&repo),
            Arc::clone(&sources),
            Arc::clone(&held),
            cancel.clone(),
            shown.clone(),
        );
        // Objects go into the table (and its resume journal) as each is stored, so a
        // pull interrupted mid-part keeps them.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut task = tokio::task::spawn_blocking(move || {
            let sink = |id, entry| {
                let _ = tx.send((id, entry));
            };
            apply_staged(part, &shown, &repo, &sources, &held, &sink, &cancel)
        });
        let mut insert = |(id, entry): (Checksum, crate::store::commit_stream::Entry<ObjectID>)| {
            if !builder.contains(&id) {
                builder.insert(id, entry.data, entry.external);
                made += 1;
            }
        };
        let done = loop {
            tokio::select! {
                Some(got) = rx.recv() => insert(got),
                r = &mut task => break r,
            }
        };
        while let Ok(got) = rx.try_recv() {
            insert(got);
        }
        done.map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))??;
        drop(permit);
        builder.flush_journal();
        req.tracker.parts_done.fetch_add(1, Ordering::Relaxed);
        req.tracker.objects_done.store(made, Ordering::Relaxed);
        req.reporter.report(Event::Counters(
            req.tracker.snapshot(req.source.stats().bytes_received),
        ));
        if req.cancel.is_cancelled() {
            return Err(PullError::Cancelled);
        }
    }
    for f in fallbacks {
        let (id, entry) = f
            .await
            .map_err(|e| PullError::Internal(format!("fallback task failed: {e}")))??;
        if !builder.contains(&id) {
            builder.insert(id, entry.data, entry.external);
            made += 1;
        }
    }
    applied.objects = made;
    Ok(Some(applied))
}

/// One part to fetch and apply.
struct PartJob {
    index: usize,
    path: String,
    checksum: Checksum,
    size: u64,
    cap: u64,
    objects: Vec<u8>,
    inline: Option<Vec<u8>>,
    /// The payload size the superblock declares (for the memory budget only).
    estimate: u64,
}

/// Memory, in MiB, that decompressing and applying parts may hold at once (beyond a
/// few MiB of buffers), by default: the xz dictionary of one part of ostree's default
/// 32 MiB chunks beside the part being applied ([`APPLY_MIB`]), or several smaller
/// parts. A part larger than the budget runs alone. [`ENV_MEMORY_BUDGET`] changes it.
pub const MEMORY_BUDGET_MIB: u64 = 48;

/// Environment variable that sets the delta memory budget in MiB (at least 16, at most
/// 65536). Each xz stream of an ostree delta part is a single block, decoded by one
/// thread with a dictionary as large as the part (32 MiB for ostree's default chunks):
/// a budget of 96 lets two parts decompress at once on two cores, for about 32 MB more
/// peak memory.
pub const ENV_MEMORY_BUDGET: &str = "CFSYNC_DELTA_MEMORY_MIB";

/// The delta memory budget in MiB: [`ENV_MEMORY_BUDGET`] when set to a number, else
/// [`MEMORY_BUDGET_MIB`].
pub fn memory_budget_mib() -> u64 {
    budget_from(std::env::var(ENV_MEMORY_BUDGET).ok().as_deref())
}

/// The budget a value of [`ENV_MEMORY_BUDGET`] asks for (the default when it is unset
/// or not a number), within 16..=65536 MiB.
fn budget_from(value: Option<&str>) -> u64 {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(MEMORY_BUDGET_MIB, |m| m.clamp(16, 65536))
}

/// What applying a part holds: its tables, operations and object list (a few kB per
/// hundred objects in ostree's deltas; at most [`apply::MAX_TABLES_AND_OPS`] and
/// [`apply::MAX_SEGMENTS`] runs from a hostile one) and the read sources its workers
/// load ([`apply::OBJECT_MEMORY`]); the payload itself stays in its file.
pub const APPLY_MIB: u64 = 16;

/// The delta memory budget, in MiB units: decompressing and applying parts take their
/// share and give it back when done.
struct Budget {
    units: Arc<tokio::sync::Semaphore>,
    mib: u64,
}

impl Budget {
    fn new(mib: u64) -> Self {
        Self {
            units: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(mib).unwrap_or(usize::MAX),
            )),
            mib,
        }
    }

    /// Waits for the share of `bytes` (at most the whole budget: larger runs alone).
    async fn take(&self, bytes: u64) -> Result<tokio::sync::OwnedSemaphorePermit, PullError> {
        Arc::clone(&self.units)
            .acquire_many_owned(budget_units(bytes, self.mib))
            .await
            .map_err(|e| PullError::Internal(format!("delta memory budget: {e}")))
    }
}

/// Budget units (MiB, rounded up, at most the whole budget of `budget_mib`) for `bytes`
/// of memory.
fn budget_units(bytes: u64, budget_mib: u64) -> u32 {
    let mib = bytes.div_ceil(1024 * 1024).clamp(1, budget_mib.max(1));
    u32::try_from(mib).unwrap_or(1)
}

/// A part verified and decompressed into an anonymous file.
struct StagedPart {
    job: PartJob,
    payload: std::fs::File,
    len: u64,
}

/// Attempts per part when its body breaks off mid-way.
const PART_ATTEMPTS: u32 = 3;

fn part_err(job: &PartJob, delta: &str, what: impl std::fmt::Display) -> PullError {
    PullError::Hostile(format!(
        "{} (part {} of delta {delta}): {what}",
        job.path, job.index
    ))
}

fn tmp_err(dir: &std::path::Path, e: std::io::Error) -> PullError {
    PullError::Internal(format!("temporary file in {}: {e}", dir.display()))
}

/// Downloads a part into an anonymous file while hashing it (nothing is held in memory),
/// checks its sha256 against the superblock, then decompresses it into a second
/// anonymous file, capped at the part's payload limit.
async fn stage_part(
    job: PartJob,
    delta: &str,
    source: &Source,
    tmp: &std::path::Path,
    budget: &Budget,
    cancel: &Cancel,
) -> Result<StagedPart, PullError> {
    use sha2::Digest;
    use std::io::{Seek, Write};
    let mut compressed = tempfile::tempfile_in(tmp).map_err(|e| tmp_err(tmp, e))?;
    let actual = match &job.inline {
        Some(b) => {
            compressed.write_all(b).map_err(|e| tmp_err(tmp, e))?;
            Checksum::of(b)
        }
        None => {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut stream = source
                    .get_stream(&job.path, PathKind::Content, job.size)
                    .await?
                    .ok_or_else(|| PullError::NotFound {
                        what: format!("part {} of static delta {delta}", job.index),
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
                    if cancel.is_cancelled() {
                        return Err(PullError::Cancelled);
                    }
                }
                match broken {
                    None => break Checksum(h.finalize().into()),
                    Some(e) if e.is_transient() && attempt < PART_ATTEMPTS => {
                        tracing::debug!("{}: retrying after {e}", job.path);
                    }
                    Some(e) => return Err(e.into()),
                }
            }
        }
    };
    tracing::debug!("{}: downloaded and verified", job.path);
    if actual != job.checksum {
        return Err(PullError::ChecksumMismatch {
            object: format!(
                "{} (part {} of delta {delta}; the superblock says {})",
                job.path, job.index, job.checksum
            ),
            actual,
        });
    }
    let tmp = tmp.to_owned();
    let delta = delta.to_owned();
    // The xz dictionary is as large as the payload, up to the stream's dictionary size.
    let permit = budget.take(job.estimate).await?;
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

/// Applies a staged payload from its file.
fn apply_staged<ObjectID: FsVerityHashValue>(
    part: StagedPart,
    delta: &str,
    repo: &composefs::repository::Repository<ObjectID>,
    sources: &ReadSources<ObjectID>,
    held: &HashSet<Checksum>,
    sink: &apply::Sink<'_, ObjectID>,
    cancel: &Cancel,
) -> Result<apply::PartResult, PullError> {
    let StagedPart { job, payload, len } = part;
    let objects = cfsync_formats::delta::DeltaObjects::new(&job.objects)
        .map_err(|e| PullError::Internal(format!("part object list: {e}")))?;
    let have = |id: &Checksum| held.contains(id);
    tracing::debug!("{}: applying", job.path);
    apply_part(repo, &payload, len, objects, sources, &have, sink, cancel).map_err(|e| match e {
        PullError::Hostile(m) => part_err(&job, delta, m),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_budget_is_read_within_bounds() {
        assert_eq!(budget_from(None), MEMORY_BUDGET_MIB);
        assert_eq!(budget_from(Some("96")), 96);
        assert_eq!(budget_from(Some(" 96\n")), 96);
        assert_eq!(budget_from(Some("1")), 16);
        assert_eq!(budget_from(Some("99999999")), 65536);
        assert_eq!(budget_from(Some("lots")), MEMORY_BUDGET_MIB);
    }

    #[test]
    fn a_part_takes_at_most_the_whole_budget() {
        assert_eq!(budget_units(0, 48), 1);
        assert_eq!(budget_units(32 * 1024 * 1024, 48), 32);
        assert_eq!(budget_units(32 * 1024 * 1024 + 1, 48), 33);
        assert_eq!(budget_units(u64::MAX, 48), 48);
        assert_eq!(budget_units(u64::MAX, 96), 96);
    }
}
