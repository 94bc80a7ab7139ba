//! What a delta pull is given ([`DeltaRequest`]) and what it reports ([`Applied`]);
//! and what the pull may start before it has a request to give (the delta route's
//! first fetches, [`DeltaRequest::look_ahead`], while the commit is being verified).

use std::collections::HashSet;
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::index::DeltaList;
use composefs::fsverity::FsVerityHashValue;

use super::find::Ahead;
use crate::error::PullError;
use crate::held::Held;
use crate::progress::{Cancel, Reporter, Tracker};
use crate::source::Source;
use crate::store::Store;
use crate::store::index::ObjectIndex;
use crate::summary::SummaryDeltas;
use crate::trust::Trust;

/// Everything a delta pull needs to know.
#[derive(Debug)]
pub struct DeltaRequest<'a, ObjectID: FsVerityHashValue> {
    /// The store (holds possible `from` commits and reusable objects).
    pub store: &'a Store<ObjectID>,
    /// Where deltas are fetched from.
    pub source: &'a Arc<Source>,
    /// Verification policy (signed superblocks).
    pub trust: &'a Trust,
    /// What the pull fetched ahead (a superblock taken as its first attempt).
    pub(crate) held: &'a Held,
    /// What the remote's summary says about deltas, when it has one.
    pub summary: Option<&'a SummaryDeltas>,
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

impl<ObjectID: FsVerityHashValue> DeltaRequest<'_, ObjectID> {
    /// Starts the delta route's first fetches for `target` now, before the commit is
    /// verified, into the pull's `held`: the delta index when the summary
    /// points there, the first candidate's superblock. The route takes them as its first
    /// attempts after the commit is accepted, with every check it makes on a body it
    /// fetches itself; a refused commit drops them unread. No part is fetched ahead.
    /// `Some`: the superblock held is one the summary lists with its digest, from which
    /// [`Self::commit_from_held`] can take the commit.
    pub(crate) fn look_ahead(
        store: &Store<ObjectID>,
        source: &Arc<Source>,
        held: &Held,
        summary: Option<&SummaryDeltas>,
        previous: Option<Checksum>,
        target: Checksum,
    ) -> Result<Option<Ahead>, PullError> {
        // The commits the route will see as stored (the object index covers exactly
        // these), so that the same delta is tried first.
        let stored: HashSet<Checksum> = store.list_commits()?.into_iter().collect();
        Ok(super::find::look_ahead(
            held, source, summary, stored, previous, target,
        ))
    }

    /// The target commit and its detached metadata, taken from the superblock
    /// [`Self::look_ahead`] is fetching (`ahead`), which embeds both: one request instead
    /// of three. The commit hashes to `target`; its signatures are still to be checked.
    /// `None`: fetch them as objects.
    pub(crate) async fn commit_from_held(
        held: &Held,
        ahead: &Ahead,
        target: &Checksum,
    ) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        super::find::commit_from_held(held, ahead, target).await
    }

    /// The deltas to `target` that the delta index fetched by [`Self::look_ahead`]
    /// lists, once the commit is accepted: the pull hands them to the route as the
    /// summary's list, so that the route does not fetch the index again. `None`: no index
    /// was held, or it is missing or unusable (the route fetches it itself).
    pub(crate) async fn held_listing(held: &Held, target: &Checksum) -> Option<DeltaList> {
        super::find::held_listing(held, target).await
    }
}
