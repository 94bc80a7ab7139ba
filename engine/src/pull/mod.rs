//! One pull, end to end, in the order of its phases (one file each): `resolve` the ref,
//! `verify` the commit before any content, take a `route` (a static delta or objects)
//! that brings every missing object into the store verified, and `finish`: the EROFS
//! image, the commit stream, and only then the ref. `options` holds what flows down.
//!
//! A crash or cancellation at any point leaves the old ref untouched and keeps every
//! verified content object in the store; the next pull reuses them through the object
//! index and the commit streams already stored, and takes the objects an interrupted
//! pull of the same commit had verified from its resume journal
//! ([`crate::store::journal`]), fetching only the rest.

mod finish;
mod options;
mod resolve;
mod route;
mod verify;

use std::sync::Arc;
use std::time::Instant;

use composefs::fsverity::FsVerityHashValue;

use crate::error::PullError;
use crate::held::Held;
use crate::progress::{Cancel, NullReporter, Reporter, Tracker};
use crate::source::Source;
use crate::store::Store;
use crate::trust::Trust;
use options::Context;
pub use options::{PullOptions, PullStats};
use verify::Verified;

/// Pulls `opts.ref_name` (or `opts.commit`) from `source` into `store`.
///
/// A failure caused by a full file system is restated with the space left
/// (`space::explain`).
pub async fn pull<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    source: Arc<Source>,
    trust: &Trust,
    opts: &PullOptions,
    reporter: Option<Arc<dyn Reporter>>,
    cancel: &Cancel,
) -> Result<PullStats, PullError> {
    let cx = Context {
        store,
        source,
        trust,
        held: Held::default(),
        opts,
        reporter: reporter.unwrap_or_else(|| Arc::new(NullReporter)),
        tracker: Tracker::default(),
        cancel,
        started: Instant::now(),
    };
    run(&cx)
        .await
        .map_err(|e| crate::space::explain(e, store.path()))
}

async fn run<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
) -> Result<PullStats, PullError> {
    let mut stats = PullStats {
        dry_run: cx.opts.dry_run,
        ..PullStats::default()
    };
    let mut target = resolve::resolve(cx, &mut stats).await?;
    if cx.cancel.is_cancelled() {
        return Err(PullError::Cancelled);
    }
    let verified = verify::verify(cx, &target, &mut stats).await?;
    if let Verified::Fetched(_) = verified {
        verify::take_listing(cx, &mut target).await;
    }
    // The one place a dry run parts from a real pull: every phase above only reads;
    // below, a dry run plans the route and stores nothing.
    match (cx.opts.dry_run, verified) {
        (true, Verified::Stored { image, .. }) => finish::up_to_date(&mut stats, &image),
        (false, Verified::Stored { image, move_ref }) => {
            finish::stored(cx, &target, move_ref)?;
            finish::up_to_date(&mut stats, &image);
        }
        (true, Verified::Fetched(commit)) => {
            route::estimate(cx, &target, &commit, &mut stats).await?;
        }
        (false, Verified::Fetched(commit)) => {
            let table = route::fetch(cx, &target, &commit, &mut stats).await?;
            finish::store(cx, &target, &commit, table, &mut stats)?;
        }
    }
    finish::totals(cx, &mut stats);
    Ok(stats)
}
