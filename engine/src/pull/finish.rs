//! Phase 4: what a pull leaves behind. For a fetched commit: its detached metadata, the
//! EROFS image, the commit stream, the object index, and only then the ref (and the
//! resume journal removed). For a commit already stored: at most the ref moved. Last,
//! the totals of the source's traffic and the time taken.

use composefs::fsverity::FsVerityHashValue;

use super::options::{Context, PullStats};
use super::resolve::Target;
use super::route::Table;
use super::verify::Commit;
use crate::error::PullError;
use crate::progress::Event;
use crate::store::StoreError;

/// Stores a commit whose objects are all in `table`, then moves the ref to it.
pub(super) fn store<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &Target,
    commit: &Commit,
    table: Table<ObjectID>,
    stats: &mut PullStats,
) -> Result<(), PullError> {
    let (store, id) = (cx.store, target.commit);
    let Table {
        mut builder,
        mut index,
        flush,
    } = table;
    if let Some(meta) = &commit.meta {
        // Detached metadata is kept beside the commit stream for `cfsync show`, made
        // durable by the barrier before the commit stream.
        crate::summary::stage_commitmeta(store, &id, meta)?;
    }

    cx.reporter.report(Event::Phase("image"));
    builder.flush_journal();
    // The background flush goes on while the image is built (CPU work), so that the
    // barrier before the commit stream finds little left to write.
    let image = store.store_image(&builder)?;
    flush
        .finish()
        .map_err(|e| PullError::Store(StoreError::io(store.path(), e)))?;
    store.store_commit_stream(&builder, &image)?;
    tracing::debug!(
        "{:.0?}: image and commit stream written",
        cx.started.elapsed()
    );
    // The image stays in the store (content-addressed) but the ref only moves to it if it
    // matches the digest the commit declares.
    cx.trust
        .check_composefs_digest(&id, &commit.bytes, &image)?;
    index.add_commit(id, builder.iter().map(|(id, _)| *id));
    index.save(store)?;
    store.set_ref(&cx.opts.ref_name, &id)?;
    if let Err(e) = builder.remove_journal() {
        // The commit is stored and the ref moved; a stale journal is only wasted space
        // (the next pull of this commit finds it stored and removes it).
        tracing::warn!("commit {id} stored, but removing its resume journal failed: {e}");
    }
    stats.image = image.to_hex();
    tracing::debug!("{:.0?}: ref set, journal removed", cx.started.elapsed());
    Ok(())
}

/// A commit already stored (and checked, when the ref moves): moves the ref to it and
/// removes the resume journal a pull killed after storing it but before removing the
/// journal left behind.
pub(super) fn stored<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &Target,
    move_ref: bool,
) -> Result<(), PullError> {
    let id = target.commit;
    if move_ref {
        cx.store.set_ref(&cx.opts.ref_name, &id)?;
    }
    if let Err(e) = crate::store::journal::remove_stale(cx.store, &id) {
        tracing::warn!("removing the stale resume journal of {id}: {e}");
    }
    Ok(())
}

/// Records that the commit was already stored with `image`.
pub(super) fn up_to_date<ObjectID: FsVerityHashValue>(stats: &mut PullStats, image: &ObjectID) {
    stats.image = image.to_hex();
    stats.up_to_date = true;
}

/// Records the source's traffic and the time taken.
pub(super) fn totals<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    stats: &mut PullStats,
) {
    let source = cx.source.stats();
    stats.bytes_fetched = source.bytes_received;
    stats.requests = source.requests;
    stats.refetched = source.refetched;
    stats.seconds = cx.started.elapsed().as_secs_f64();
}
