//! What a delta pull is given ([`DeltaRequest`]) and what it reports ([`Applied`]).

use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

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
