//! Phase 1: the ref to the commit to pull, through the remote's summary (verified when
//! the policy says so) or `refs/heads/<ref>`, and the commit the ref points at now.

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use super::options::{Context, PullStats};
use crate::error::PullError;
use crate::progress::Event;
use crate::summary::{RefRequest, SummaryDeltas};

/// The commit to pull.
pub(super) struct Target {
    /// The commit.
    pub(super) commit: Checksum,
    /// The commit the ref points at in the store now, if any.
    pub(super) previous: Option<Checksum>,
    /// What the remote's summary says about deltas, when it has one (the delta route
    /// reads its list).
    pub(super) deltas: Option<SummaryDeltas>,
}

/// Resolves `opts.ref_name` (or takes `opts.commit`); records the commit, the previous
/// one, the summary's signatures and the summary route with its bytes and requests in
/// `stats`.
pub(super) async fn resolve<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    stats: &mut PullStats,
) -> Result<Target, PullError> {
    let opts = cx.opts;
    let previous = cx.store.resolve_ref(&opts.ref_name)?;
    stats.previous = previous.map(|c| c.to_hex());

    cx.reporter.report(Event::Phase("summary"));
    let req = RefRequest {
        ref_name: &opts.ref_name,
        commit_given: opts.commit.is_some(),
        cache_key: &opts.cache_key,
        subsummary: opts.subsummary.as_deref(),
    };
    let before = cx.source.stats();
    let resolved = crate::summary::resolve(cx.store, &cx.source, cx.trust, req).await?;
    let after = cx.source.stats();
    stats.summary_route = resolved.route;
    stats.summary_bytes = after.bytes_received.saturating_sub(before.bytes_received);
    stats.summary_requests = after.requests.saturating_sub(before.requests);
    let commit = opts
        .commit
        .or(resolved.commit)
        .ok_or_else(|| PullError::RefNotFound {
            name: opts.ref_name.clone(),
        })?;
    stats.commit = commit.to_hex();
    stats.signatures.extend(resolved.signatures);
    Ok(Target {
        commit,
        previous,
        deltas: resolved.deltas,
    })
}
