//! What a pull is given and what it returns: [`PullOptions`] from the caller,
//! [`PullStats`] back to it, and the [`Context`] every phase reads (options flow down
//! from here; no phase hands anything back up but its result).

use std::sync::Arc;
use std::time::Instant;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use crate::held::Held;
use crate::progress::{Cancel, Reporter, Tracker};
use crate::source::Source;
use crate::store::Store;
use crate::summary::SummaryRoute;
use crate::trust::Trust;

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
    /// The subsummary of the remote's `summary.idx` to read the ref from (`--subsummary`,
    /// else the remote's `subsummary` option); `None`: the flatpak ref's architecture,
    /// else the only subsummary, else the one for this machine's architecture.
    pub subsummary: Option<String>,
}

impl PullOptions {
    /// Defaults for pulling `ref_name`.
    pub fn new(ref_name: impl Into<String>) -> Self {
        let ref_name = ref_name.into();
        Self {
            cache_key: String::new(),
            subsummary: None,
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
    /// Bodies fetched again because they arrived damaged (failed their checksum,
    /// decompression, parse or signature).
    pub refetched: u64,
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
    /// How the ref was resolved: `summary`, `index+subsummary`,
    /// `index+subsummary-delta`, `index+kept-subsummary`, `refs/heads`, or `commit`
    /// (the commit was given and the remote has no summary).
    pub summary_route: Option<SummaryRoute>,
    /// Body bytes received while resolving the ref (summary, index, signatures,
    /// subsummary or its diff, ref file); included in `bytes_fetched`.
    pub summary_bytes: u64,
    /// Requests made while resolving the ref; included in `requests`.
    pub summary_requests: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// One pull's inputs as every phase sees them.
pub(super) struct Context<'a, ObjectID: FsVerityHashValue> {
    /// The composefs repository pulled into.
    pub(super) store: &'a Store<ObjectID>,
    /// Where objects, deltas and the summary come from.
    pub(super) source: Arc<Source>,
    /// The remote's verification policy.
    pub(super) trust: &'a Trust,
    /// What this pull fetched ahead of the checks it waits on (dropped with the pull).
    pub(super) held: Held,
    /// The caller's options.
    pub(super) opts: &'a PullOptions,
    /// Progress sink.
    pub(super) reporter: Arc<dyn Reporter>,
    /// Counters shared by the routes.
    pub(super) tracker: Tracker,
    /// Cancellation.
    pub(super) cancel: &'a Cancel,
    /// When the pull started (for `seconds` and the debug timings).
    pub(super) started: Instant,
}
