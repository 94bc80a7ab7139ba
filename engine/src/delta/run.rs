//! Running a chosen delta: plan its parts ([`super::plan`]), check the space they need,
//! stage them ahead ([`super::stage`]: downloaded in order, decoded as they arrive, up
//! to [`parts_in_flight`] decoders at once within the memory budget) while the ready ones
//! are applied, up to two at once ([`super::apply`]), and their objects go into the commit
//! being built (and its resume journal) as each is stored; fetch the delta's fallback
//! objects beside the parts.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::superblock::SuperblockRef;
use cfsync_formats::delta::{DeltaName, DeltaObjects};
use cfsync_formats::object::ObjectType;
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;
use futures::StreamExt;

use super::apply::apply_part;
use super::budget::Gauge;
use super::budget::{APPLY_MIB, Budget, MIB, memory_budget_mib};
use super::find::{display_name, open_checked, superblock_err};
use super::job::{ApplyTo, Sink};
use super::plan::{PartFacts, PartPlan, choose_parts, fallbacks_to_fetch, held_objects};
use super::read_sources::ReadSources;
use super::request::{Applied, DeltaRequest};
use super::spool::Turn;
use super::stage::{DOWNLOADS, PartJob, StagedPart, Stager, part_err};
use crate::error::PullError;
use crate::progress::{Cancel, Event};
use crate::store::commit_stream::{CommitStreamBuilder, Entry};
use crate::tmpfiles::TmpfilePool;

/// Parts decoded at once at most (when their dictionaries fit the memory budget): one
/// per core, at least two (so that one is decoded while another is applied), at most
/// eight.
pub fn parts_in_flight() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

/// Parts applied at once at most: a small part ready while a large one is applied
/// starts at once. (Each has its own store workers; they take their objects' read
/// sources from the delta budget.)
const APPLYING: usize = 2;

/// Parts staged at once (downloading, decoding, or decoded and waiting to be applied):
/// enough for every decoder and download to be busy while one part is applied.
fn parts_staged() -> usize {
    parts_in_flight()
        .saturating_add(DOWNLOADS)
        .saturating_add(1)
}

/// Applies delta `name`, whose superblock file is `superblock_bytes`, filling `builder`
/// with the target commit's objects. `Ok(None)`: the delta is not worth it (a scratch
/// delta whose objects the store mostly holds), and the object route must fetch them.
pub(crate) async fn apply_delta<ObjectID: FsVerityHashValue>(
    req: &DeltaRequest<'_, ObjectID>,
    builder: &mut CommitStreamBuilder<ObjectID>,
    name: DeltaName,
    superblock_bytes: &[u8],
) -> Result<Option<Applied>, PullError> {
    let shown = display_name(&name);
    let file = open_checked(superblock_bytes, &name, &req.target, req.trust)?;
    let sb = &file.superblock;

    // Which parts are worth fetching.
    let have = |id: &Checksum| builder.contains(id) || req.index.find(id).is_some();
    let facts: Vec<PartFacts> = sb
        .parts()
        .iter()
        .map(|p| PartFacts {
            index: p.index,
            size: p.size,
            objects: p.objects.len() as u64,
            missing: p.objects.iter().filter(|o| !have(&o.checksum)).count() as u64,
        })
        .collect();
    let Some(plan) = choose_parts(name.from.is_some(), &facts) else {
        // Everything (or most of it) is held already: the object route is cheaper.
        req.reporter.report(Event::Message(format!(
            "skipping scratch delta {shown}: the store holds most of its objects"
        )));
        return Ok(None);
    };
    let mut applied = Applied {
        name: shown.clone(),
        parts: plan.chosen.len() as u64,
        objects: plan.objects_needed,
        estimated_bytes: Some(
            plan.part_bytes
                .saturating_add(superblock_bytes.len() as u64),
        ),
    };
    if req.dry_run {
        return Ok(Some(applied));
    }
    announce(req, sb, &plan, &shown)?;

    // Read sources come from the from-commit.
    let mut streams = Vec::new();
    if let Some(from) = name.from {
        let s = req.store.load_commit(&from)?.ok_or_else(|| {
            PullError::Internal(format!("delta from-commit {from} vanished from the store"))
        })?;
        streams.push(Arc::new(s));
    }
    let repo = Arc::clone(req.store.repo());
    let sources = ReadSources::new(Arc::clone(&repo), streams);
    // What the parts need not rebuild: objects held before the delta started.
    let held = held_objects(
        sb.parts()
            .iter()
            .flat_map(|p| p.objects.iter())
            .map(|o| o.checksum),
        have,
    );
    let jobs = part_jobs(sb, &plan, &name, &shown)?;

    let tmp = req.store.state_dir()?.join("tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| PullError::Internal(format!("{}: {e}", tmp.display())))?;
    // Parts are downloaded in order, decoded as they arrive and verified (into
    // anonymous files, not memory) by tasks of their own, several ahead; the loop below
    // applies them in the order they are ready, up to [`APPLYING`] at once (parts are
    // independent of each other: read sources come from the from-commit only, so a
    // small part is applied while a large one still decodes or applies). Decoding holds
    // the xz dictionary, applying the part's tables and read sources; the budget
    // decides how many may overlap.
    let budget = Arc::new(Budget::of_mib(
        memory_budget_mib(),
        APPLYING as u64 * APPLY_MIB * MIB,
    ));
    let decoding = Arc::new(Gauge::default());
    let stager = Arc::new(Stager {
        delta: shown.clone(),
        source: Arc::clone(req.source),
        tmp,
        budget: Arc::clone(&budget),
        cancel: req.cancel.clone(),
        turn: Turn::new(),
        downloads: tokio::sync::Semaphore::new(DOWNLOADS),
        decoders: Arc::new(tokio::sync::Semaphore::new(parts_in_flight())),
        decoding: Arc::clone(&decoding),
    });
    let mut staged = futures::stream::iter(jobs)
        .map(|job| {
            let stager = Arc::clone(&stager);
            tokio::spawn(async move { stager.stage(job).await })
        })
        .buffer_unordered(parts_staged());
    // Fallback objects (files the delta carries loose) are fetched beside the parts.
    let objects = Arc::new(crate::fetch::SourceObjects {
        source: Arc::clone(req.source),
        repo: Arc::clone(&repo),
    });
    let fallbacks: Vec<_> =
        fallbacks_to_fetch(sb.fallbacks().iter().map(|f| f.checksum), &held, have)
            .into_iter()
            .map(|id| {
                let objects = Arc::clone(&objects);
                tokio::spawn(async move {
                    crate::walk::ObjectSource::fetch_file(objects, id)
                        .await
                        .map(|e| (id, e))
                })
            })
            .collect();
    // Their tmpfiles are made while the parts download (and no more once the delta
    // ends, however it ends).
    let tmpfiles = TmpfilePool::start(Arc::clone(&repo), files_to_make(sb, &plan, &held));
    let applier = Arc::new(Applier {
        tmpfiles: Arc::clone(&tmpfiles.0),
        repo,
        sources,
        held,
        cancel: req.cancel.clone(),
        delta: shown.clone(),
        budget: Arc::clone(&budget),
    });
    // Parts are applied as they are ready, up to [`APPLYING`] at once (each on its own
    // store workers, whose read sources come out of the budget), so that a small part
    // is not kept waiting behind a large one; their objects come back on one channel and
    // go into the commit being built (and its resume journal) here, as each is stored.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut applying = tokio::task::JoinSet::new();
    let mut all_staged = false;
    let mut made = 0u64;
    while !(all_staged && applying.is_empty()) {
        tokio::select! {
            biased;
            Some(got) = rx.recv() => made += insert(builder, got),
            Some(done) = applying.join_next(), if !applying.is_empty() => {
                done.map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))??;
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
            next = staged.next(), if !all_staged && applying.len() < APPLYING => {
                let Some(part) = next else {
                    all_staged = true;
                    continue;
                };
                let part = part
                    .map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))??;
                let permit = budget.take(APPLY_MIB * MIB).await?;
                let (applier, tx) = (Arc::clone(&applier), tx.clone());
                applying.spawn(async move {
                    let done = applier.apply(part, tx).await;
                    drop(permit);
                    done
                });
            }
        }
    }
    drop(tx);
    while let Some(got) = rx.recv().await {
        made += insert(builder, got);
    }
    drop(tmpfiles);
    req.reporter.report(Event::Message(format!(
        "static delta {shown}: decoded up to {} parts at once",
        decoding.peak()
    )));
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

/// Refuses before fetching anything when the chosen parts cannot fit
/// ([`crate::space`]), then reports the delta and counts what it will do.
fn announce<ObjectID: FsVerityHashValue>(
    req: &DeltaRequest<'_, ObjectID>,
    sb: &SuperblockRef<'_>,
    plan: &PartPlan,
    shown: &str,
) -> Result<(), PullError> {
    let needed = crate::space::delta_needs(
        plan.chosen
            .iter()
            .filter_map(|&i| sb.parts().get(i))
            .map(|p| (p.size, p.uncompressed_size)),
    );
    crate::space::ensure(req.store.path(), needed, &format!("static delta {shown}"))?;
    req.reporter.report(Event::Phase("delta"));
    req.reporter.report(Event::Message(format!(
        "static delta {shown}: {} of {} parts, {} bytes",
        plan.chosen.len(),
        sb.parts().len(),
        plan.part_bytes
    )));
    req.tracker
        .parts_expected
        .fetch_add(plan.chosen.len() as u64, Ordering::Relaxed);
    req.tracker
        .objects_expected
        .fetch_add(plan.objects_needed, Ordering::Relaxed);
    req.tracker
        .bytes_expected
        .fetch_add(plan.part_bytes, Ordering::Relaxed);
    Ok(())
}

/// The chosen parts, as jobs to stage.
fn part_jobs(
    sb: &SuperblockRef<'_>,
    plan: &PartPlan,
    name: &DeltaName,
    shown: &str,
) -> Result<Vec<PartJob>, PullError> {
    let mut jobs = Vec::with_capacity(plan.chosen.len());
    for &i in &plan.chosen {
        let Some(p) = sb.parts().get(i) else { continue };
        let place = jobs.len();
        let inline = sb
            .inline_part(i)
            .map_err(|e| superblock_err(shown, &e))?
            .map(<[u8]>::to_vec);
        jobs.push(PartJob {
            place,
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
    Ok(jobs)
}

/// File objects the chosen parts will store (those not held already): the tmpfiles
/// worth making ahead (an over-estimate: small ones stay inline).
fn files_to_make(sb: &SuperblockRef<'_>, plan: &PartPlan, held: &HashSet<Checksum>) -> usize {
    plan.chosen
        .iter()
        .filter_map(|&i| sb.parts().get(i))
        .flat_map(|p| p.objects.iter())
        .filter(|o| o.object_type == ObjectType::File && !held.contains(&o.checksum))
        .count()
}

/// Puts a stored object into the commit being built; 1 when it was new to it.
fn insert<ObjectID: FsVerityHashValue>(
    builder: &mut CommitStreamBuilder<ObjectID>,
    (id, entry): (Checksum, Entry<ObjectID>),
) -> u64 {
    if builder.contains(&id) {
        return 0;
    }
    builder.insert(id, entry.data, entry.external);
    1
}

/// What applying the staged parts of one delta shares.
struct Applier<ObjectID: FsVerityHashValue> {
    repo: Arc<Repository<ObjectID>>,
    sources: ReadSources<ObjectID>,
    /// Objects held before the delta started (the parts need not rebuild them).
    held: HashSet<Checksum>,
    cancel: Cancel,
    /// The delta's name, as users see it.
    delta: String,
    /// The delta memory budget, which the read sources of the objects being stored
    /// come out of.
    budget: Arc<Budget>,
    /// Tmpfiles made ahead for the objects.
    tmpfiles: Arc<TmpfilePool>,
}

impl<ObjectID: FsVerityHashValue> Applier<ObjectID> {
    /// Applies a staged part on a blocking thread, sending its objects to `tx` as each
    /// is stored.
    async fn apply(
        self: Arc<Self>,
        part: StagedPart,
        tx: tokio::sync::mpsc::UnboundedSender<(Checksum, Entry<ObjectID>)>,
    ) -> Result<(), PullError> {
        tokio::task::spawn_blocking(move || {
            let sink = |id, entry| {
                let _ = tx.send((id, entry));
            };
            self.apply_staged(part, &sink)
        })
        .await
        .map_err(|e| PullError::Internal(format!("delta part task failed: {e}")))?
    }

    /// Applies a staged payload from its file.
    fn apply_staged(&self, part: StagedPart, sink: &Sink<'_, ObjectID>) -> Result<(), PullError> {
        let StagedPart { job, payload, len } = part;
        let objects = DeltaObjects::new(&job.objects)
            .map_err(|e| PullError::Internal(format!("part object list: {e}")))?;
        let have = |id: &Checksum| self.held.contains(id);
        tracing::debug!("{}: applying", job.path);
        let to = ApplyTo {
            repo: &self.repo,
            sources: &self.sources,
            have: &have,
            sink,
            cancel: &self.cancel,
            budget: &self.budget,
            tmpfiles: &self.tmpfiles,
        };
        apply_part(&to, &payload, len, objects).map_err(|e| match e {
            PullError::Hostile(m) => part_err(&job, &self.delta, m),
            other => other,
        })
    }
}
