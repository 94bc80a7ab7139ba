//! Phase 3: the route to the content. A static delta when one helps (unless
//! `no_deltas`), then whatever is still missing object by object (after a delta: only
//! fallbacks the delta did not carry, normally nothing). Everything goes into the commit
//! table, and from the table into the resume journal: objects verified by an interrupted
//! pull of this commit seed it, and every object inserted by any route is journaled.

use std::sync::Arc;

use composefs::fsverity::FsVerityHashValue;

use super::options::{Context, PullStats};
use super::resolve::Target;
use super::verify::Commit;
use crate::delta::{Applied, DeltaRequest};
use crate::error::PullError;
use crate::fetch::SourceObjects;
use crate::progress::Event;
use crate::store::commit_stream::CommitStreamBuilder;
use crate::store::flush::BackgroundFlush;
use crate::store::index::ObjectIndex;
use crate::walk::{Reuse, walk};

/// The commit table the routes filled, and the object index it is added to.
pub(super) struct Table<ObjectID: FsVerityHashValue> {
    /// Every object of the commit, verified.
    pub(super) builder: CommitStreamBuilder<ObjectID>,
    /// Which stored commit holds which object.
    pub(super) index: ObjectIndex,
    /// Writes out the objects fetched while the image is built.
    pub(super) flush: BackgroundFlush,
}

/// A dry run's route: plans the delta (fetching no part) and records what it would
/// fetch; without a delta, nothing is estimated to be fetched.
pub(super) async fn estimate<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &Target,
    commit: &Commit,
    stats: &mut PullStats,
) -> Result<(), PullError> {
    let mut builder = CommitStreamBuilder::new(target.commit);
    builder.insert(target.commit, commit.bytes.clone(), None);
    let index = load_index(cx)?;
    match delta(cx, target, &index, &mut builder, true).await? {
        Some(applied) => record(stats, applied),
        None => stats.estimated_bytes = Some(0),
    }
    Ok(())
}

/// Brings every object of the commit into the store, verified: by a delta when one
/// helps, then object by object.
pub(super) async fn fetch<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &Target,
    commit: &Commit,
    stats: &mut PullStats,
) -> Result<Table<ObjectID>, PullError> {
    let (store, id) = (cx.store, target.commit);
    let (mut builder, resumed) = crate::store::resume::open_builder(store, id)?;
    if resumed.loaded > 0 || resumed.dropped > 0 {
        tracing::info!(
            "resuming commit {id}: {} objects from the journal, {} dropped{}",
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
    builder.insert(id, commit.bytes.clone(), None);
    let index = load_index(cx)?;

    if let Some(applied) = delta(cx, target, &index, &mut builder, false).await? {
        record(stats, applied);
    }

    cx.reporter.report(Event::Phase("objects"));
    let objects = Arc::new(SourceObjects {
        source: Arc::clone(&cx.source),
        repo: Arc::clone(store.repo()),
    });
    // Objects verified by interrupted pulls of other commits are reused too.
    let others = crate::store::journal::load_others(store, &id)?;
    let mut reuse = Reuse::new(store, &index).with_journaled(others);
    // Objects are written out while they are fetched, not all at the final barrier. (Not
    // during a delta: it would also write out the staged parts, deleted right after.)
    let flush = BackgroundFlush::start(store.path());
    let src_for_bytes = Arc::clone(&cx.source);
    let bytes = move || src_for_bytes.stats().bytes_received;
    let ws = walk(
        objects,
        &mut reuse,
        &mut builder,
        commit.root_tree,
        commit.root_meta,
        cx.opts.concurrency,
        &cx.tracker,
        &*cx.reporter,
        cx.cancel,
        &bytes,
    )
    .await?;
    stats.objects_fetched += ws.fetched;
    stats.objects_reused += ws.reused;
    // The commit streams reuse loaded are copied from; free them before the image.
    drop(reuse);
    tracing::debug!("{:.0?}: object walk done", cx.started.elapsed());
    Ok(Table {
        builder,
        index,
        flush,
    })
}

fn load_index<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
) -> Result<ObjectIndex, PullError> {
    let index = ObjectIndex::load(cx.store)?;
    tracing::debug!(
        "{:.0?}: commit verified, object index loaded",
        cx.started.elapsed()
    );
    Ok(index)
}

/// The delta route, unless `no_deltas`: with `plan_only`, finds and chooses the delta
/// and fetches no part.
async fn delta<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &Target,
    index: &ObjectIndex,
    builder: &mut CommitStreamBuilder<ObjectID>,
    plan_only: bool,
) -> Result<Option<Applied>, PullError> {
    if cx.opts.no_deltas {
        return Ok(None);
    }
    let req = DeltaRequest {
        store: cx.store,
        source: &cx.source,
        trust: cx.trust,
        held: &cx.held,
        summary: target.deltas.as_ref(),
        index,
        target: target.commit,
        previous: target.previous,
        dry_run: plan_only,
        tracker: &cx.tracker,
        reporter: &*cx.reporter,
        cancel: cx.cancel,
    };
    let applied = crate::delta::try_delta(req, builder).await?;
    tracing::debug!("{:.0?}: delta route done", cx.started.elapsed());
    Ok(applied)
}

/// Records what a delta did (or would do).
fn record(stats: &mut PullStats, applied: Applied) {
    stats.delta = Some(applied.name);
    stats.delta_parts = applied.parts;
    stats.objects_fetched += applied.objects;
    stats.estimated_bytes = applied.estimated_bytes;
}
