//! One pull, end to end: resolve the ref, fetch and verify the commit before any content,
//! choose a route (a static delta or objects), bring every missing object into the store
//! verified, build the EROFS image, write the commit stream, and only then move the ref.
//!
//! A crash or cancellation at any point leaves the old ref untouched and keeps every
//! verified content object in the store; the next pull reuses them through the object
//! index and the commit streams already stored, and takes the objects an interrupted
//! pull of the same commit had verified from its resume journal
//! ([`crate::store::journal`]), fetching only the rest.

use std::sync::Arc;
use std::time::Instant;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};
use composefs::fsverity::FsVerityHashValue;

use crate::limits::MAX_METADATA_OBJECT;
use crate::progress::{Cancel, Event, NullReporter, Reporter, Tracker};
use crate::source::{PathKind, Source};
use crate::store::commit_stream::CommitStreamBuilder;
use crate::store::index::ObjectIndex;
use crate::store::{Store, StoreError};
use crate::trust::Trust;
use crate::error::PullError;
use crate::fetch::{SourceObjects, fetch_verified};
use crate::walk::{Reuse, walk};

/// What to pull and how.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The ref to pull and record.
    pub ref_name: String,
    /// Pull this commit instead of what the ref resolves to, recording it under the ref.
    pub commit: Option<Checksum>,
    /// Never use static deltas.
    pub no_deltas: bool,
    /// Resolve and plan, fetch no content, report what would be fetched.
    pub dry_run: bool,
    /// Accept a commit older than the one the ref points at.
    pub allow_downgrade: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Key under which the remote's summary is cached (a remote name or URL).
    pub cache_key: String,
}

impl PullOptions {
    /// Defaults for pulling `ref_name`.
    pub fn new(ref_name: impl Into<String>) -> Self {
        let ref_name = ref_name.into();
        Self {
            cache_key: String::new(),
            ref_name,
            commit: None,
            no_deltas: false,
            dry_run: false,
            allow_downgrade: false,
            concurrency: 16,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PullStats {
    /// The commit now under the ref.
    pub commit: String,
    /// The commit's EROFS image id (hex).
    pub image: String,
    /// The commit the ref pointed at before, if any.
    pub previous: Option<String>,
    /// Body bytes received.
    pub bytes_fetched: u64,
    /// HTTP requests (or local file reads) made.
    pub requests: u64,
    /// Objects fetched from the source (loose or reconstructed from a delta).
    pub objects_fetched: u64,
    /// Objects reused from the store.
    pub objects_reused: u64,
    /// Objects taken from the resume journal of an interrupted pull of this commit
    /// (verified again, not fetched again).
    pub objects_resumed: u64,
    /// Delta parts applied.
    pub delta_parts: u64,
    /// The delta used: "FROM-TO", "TO" for a scratch delta, or null.
    pub delta: Option<String>,
    /// Whether nothing had to be fetched (the commit was already stored).
    pub up_to_date: bool,
    /// Whether this was a dry run (nothing stored).
    pub dry_run: bool,
    /// Bytes a dry run estimates it would fetch.
    pub estimated_bytes: Option<u64>,
    /// Signatures that were verified, one line each.
    pub signatures: Vec<String>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Pulls `opts.ref_name` (or `opts.commit`) from `source` into `store`.
///
/// A failure caused by a full file system is restated with the space left
/// ([`crate::space::explain`]).
pub async fn pull<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    source: Arc<Source>,
    trust: &Trust,
    opts: &PullOptions,
    reporter: Option<Arc<dyn Reporter>>,
    cancel: &Cancel,
) -> Result<PullStats, PullError> {
    pull_inner(store, source, trust, opts, reporter, cancel)
        .await
        .map_err(|e| crate::space::explain(e, store.path()))
}

async fn pull_inner<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    source: Arc<Source>,
    trust: &Trust,
    opts: &PullOptions,
    reporter: Option<Arc<dyn Reporter>>,
    cancel: &Cancel,
) -> Result<PullStats, PullError> {
    let started = Instant::now();
    let reporter: Arc<dyn Reporter> = reporter.unwrap_or_else(|| Arc::new(NullReporter));
    let tracker = Tracker::default();
    let mut stats = PullStats {
        dry_run: opts.dry_run,
        ..PullStats::default()
    };
    let previous = store.resolve_ref(&opts.ref_name)?;
    stats.previous = previous.map(|c| c.to_hex());

    // 1. Resolve the ref (summary first, verified when the policy says so).
    reporter.report(Event::Phase("summary"));
    let resolved = crate::summary::resolve(store, &source, trust, opts).await?;
    let target = opts
        .commit
        .or(resolved.commit)
        .ok_or_else(|| PullError::RefNotFound {
            name: opts.ref_name.clone(),
        })?;
    stats.commit = target.to_hex();
    stats.signatures.extend(resolved.signatures.iter().cloned());
    if cancel.is_cancelled() {
        return Err(PullError::Cancelled);
    }

    // Already stored with its image: at most move the ref.
    if let Some(image) = store.commit_image(&target)? {
        if previous != Some(target) {
            let commit = store
                .load_commit(&target)?
                .ok_or_else(|| PullError::Internal("commit stream vanished".into()))?;
            let bytes = crate::store::ObjectLookup::lookup(&commit, &target)
                .map(|(d, _)| d.to_vec())
                .ok_or_else(|| {
                    PullError::Internal("commit object missing from its stream".into())
                })?;
            // Stored earlier (perhaps by an unverified pull): the signature is checked
            // now, as libostree does for a commit it already has, before the ref moves.
            // The saved .commitmeta first; if it does not verify (none saved, or signed
            // since), the source's.
            if trust.policy.requires_commit_signature() {
                let saved = crate::summary::load_commitmeta(store, &target)?;
                let sigs = match trust.verify_commit(&target, &bytes, saved.as_deref()) {
                    Ok(sigs) => sigs,
                    Err(first) => {
                        let path = loose_path(&target, ObjectType::CommitMeta, RepoMode::Archive);
                        let fetched = source
                            .get_bytes(&path, PathKind::Metadata, MAX_METADATA_OBJECT)
                            .await?;
                        if fetched.is_none() && saved.is_some() {
                            return Err(first.into());
                        }
                        let sigs = trust.verify_commit(&target, &bytes, fetched.as_deref())?;
                        if let Some(meta) = &fetched {
                            crate::summary::save_commitmeta(store, &target, meta)?;
                        }
                        sigs
                    }
                };
                stats.signatures.extend(sigs);
            }
            let prev_ts = previous_timestamp(store, previous)?;
            trust.check_commit_rules(
                &target,
                &bytes,
                &opts.ref_name,
                prev_ts,
                opts.allow_downgrade,
            )?;
            // A commit whose image was refused earlier is stored but never gets a ref.
            trust.check_composefs_digest(&target, &bytes, &image)?;
            if !opts.dry_run {
                store.set_ref(&opts.ref_name, &target)?;
            }
        }
        if !opts.dry_run {
            // A pull killed after storing the commit but before removing its journal.
            if let Err(e) = crate::store::journal::remove_stale(store, &target) {
                tracing::warn!("removing the stale resume journal of {target}: {e}");
            }
        }
        stats.image = image.to_hex();
        stats.up_to_date = true;
        finish(&mut stats, &source, started);
        return Ok(stats);
    }

    // 2. The commit and its detached metadata; signatures, binding and downgrade are
    //    checked before any content is fetched.
    reporter.report(Event::Phase("commit"));
    let commit_bytes = fetch_verified(&source, &target, ObjectType::Commit).await?;
    let commitmeta_path = loose_path(&target, ObjectType::CommitMeta, RepoMode::Archive);
    let commitmeta = source
        .get_bytes(&commitmeta_path, PathKind::Metadata, MAX_METADATA_OBJECT)
        .await?;
    let commit = CommitRef::from_bytes(&commit_bytes)
        .map_err(|e| PullError::object(&target, "commit", e))?;
    let sigs = trust.verify_commit(&target, &commit_bytes, commitmeta.as_deref())?;
    stats.signatures.extend(sigs);
    let prev_ts = previous_timestamp(store, previous)?;
    trust.check_commit_rules(
        &target,
        &commit_bytes,
        &opts.ref_name,
        prev_ts,
        opts.allow_downgrade,
    )?;
    let (root_tree, root_meta) = (commit.root_contents(), commit.root_metadata());

    // The resume journal: objects verified by an interrupted pull of this commit seed the
    // table, and everything inserted from here on (by any route) is journaled.
    let mut builder = if opts.dry_run {
        CommitStreamBuilder::new(target)
    } else {
        let (builder, resumed) = crate::store::journal::open_builder(store, target)?;
        if resumed.loaded > 0 || resumed.dropped > 0 {
            tracing::info!(
                "resuming commit {target}: {} objects from the journal, {} dropped{}",
                resumed.loaded,
                resumed.dropped,
                if resumed.rehashed {
                    " (re-hashed after a reboot)"
                } else {
                    ""
                }
            );
        }
        stats.objects_resumed = resumed.loaded;
        builder
    };
    builder.insert(target, commit_bytes.clone(), None);
    let mut index = ObjectIndex::load(store)?;
    tracing::debug!(
        "{:.0?}: commit verified, object index loaded",
        started.elapsed()
    );

    // 3. A static delta, when one helps.
    if !opts.no_deltas {
        let req = crate::delta::DeltaRequest {
            store,
            source: &source,
            trust,
            summary: resolved.summary.as_deref(),
            index: &index,
            target,
            previous,
            dry_run: opts.dry_run,
            tracker: &tracker,
            reporter: &*reporter,
            cancel,
        };
        let applied = crate::delta::try_delta(req, &mut builder).await?;
        tracing::debug!("{:.0?}: delta route done", started.elapsed());
        if let Some(applied) = applied {
            stats.delta = Some(applied.name);
            stats.delta_parts = applied.parts;
            stats.objects_fetched += applied.objects;
            stats.estimated_bytes = applied.estimated_bytes;
            if opts.dry_run {
                finish(&mut stats, &source, started);
                return Ok(stats);
            }
        }
    }

    if opts.dry_run {
        stats.estimated_bytes = stats.estimated_bytes.or(Some(0));
        finish(&mut stats, &source, started);
        return Ok(stats);
    }

    // 4. Whatever is still missing, object by object (after a delta: only fallbacks the
    //    delta did not carry, normally nothing).
    reporter.report(Event::Phase("objects"));
    let objects = Arc::new(SourceObjects {
        source: Arc::clone(&source),
        repo: Arc::clone(store.repo()),
    });
    // Objects verified by interrupted pulls of other commits are reused too.
    let others = crate::store::journal::load_others(store, &target)?;
    let mut reuse = Reuse::new(store, &index).with_journaled(others);
    // Objects are written out while they are fetched, not all at the final barrier. (Not
    // during a delta: it would also write out the staged parts, deleted right after.)
    let flush = crate::store::flush::BackgroundFlush::start(store.path());
    let src_for_bytes = Arc::clone(&source);
    let bytes = move || src_for_bytes.stats().bytes_received;
    let ws = walk(
        objects,
        &mut reuse,
        &mut builder,
        root_tree,
        root_meta,
        opts.concurrency,
        &tracker,
        &*reporter,
        cancel,
        &bytes,
    )
    .await?;
    stats.objects_fetched += ws.fetched;
    stats.objects_reused += ws.reused;
    // The commit streams reuse loaded are copied from; free them before the image.
    drop(reuse);
    tracing::debug!("{:.0?}: object walk done", started.elapsed());
    if let Some(meta) = &commitmeta {
        // Detached metadata is kept beside the commit stream for `cfsync show`.
        crate::summary::save_commitmeta(store, &target, meta)?;
    }

    // 5. Image, commit stream, index, and only then the ref.
    reporter.report(Event::Phase("image"));
    builder.flush_journal();
    // The background flush goes on while the image is built (CPU work), so that the
    // barrier before the commit stream finds little left to write.
    let image = store.store_image(&builder)?;
    flush
        .finish()
        .map_err(|e| PullError::Store(StoreError::io(store.path(), e)))?;
    store.store_commit_stream(&builder, &image)?;
    tracing::debug!("{:.0?}: image and commit stream written", started.elapsed());
    // The image stays in the store (content-addressed) but the ref only moves to it if it
    // matches the digest the commit declares.
    trust.check_composefs_digest(&target, &commit_bytes, &image)?;
    index.add_commit(target, builder.iter().map(|(id, _)| *id));
    index.save(store)?;
    store.set_ref(&opts.ref_name, &target)?;
    if let Err(e) = builder.remove_journal() {
        // The commit is stored and the ref moved; a stale journal is only wasted space
        // (the next pull of this commit finds it stored and removes it).
        tracing::warn!("commit {target} stored, but removing its resume journal failed: {e}");
    }
    stats.image = image.to_hex();
    finish(&mut stats, &source, started);
    tracing::debug!("{:.0?}: ref set, journal removed", started.elapsed());
    Ok(stats)
}

fn previous_timestamp<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    previous: Option<Checksum>,
) -> Result<Option<(Checksum, u64)>, PullError> {
    let Some(prev) = previous else {
        return Ok(None);
    };
    let Some(stream) = store.load_commit(&prev)? else {
        return Ok(None);
    };
    let Some((bytes, _)) = crate::store::ObjectLookup::lookup(&stream, &prev) else {
        return Ok(None);
    };
    Ok(CommitRef::from_bytes(bytes)
        .ok()
        .map(|c| (prev, c.timestamp())))
}

fn finish(stats: &mut PullStats, source: &Source, started: Instant) {
    stats.bytes_fetched = source.stats().bytes_received;
    stats.requests = source.stats().requests;
    stats.seconds = started.elapsed().as_secs_f64();
}
