//! Progress events and cancellation for pulls.
//!
//! The engine prints nothing. It reports what it does as [`Event`]s to a [`Reporter`]
//! chosen by the caller (the CLI draws bars from them; a program may forward them as
//! JSON), and it stops with [`crate::error::PullError::Cancelled`] when the caller's
//! [`Cancel`] token fires, leaving everything verified so far reusable.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// What the engine is doing; totals may grow as trees are discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A phase started ("summary", "commit", "delta", "objects", "image", ...).
    Phase(&'static str),
    /// A human-readable note (e.g. which delta was chosen).
    Message(String),
    /// Counters after a change.
    Counters(Counters),
}

/// Running totals of a pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Body bytes received from the source so far.
    pub bytes_fetched: u64,
    /// Bytes expected in total, when known (delta pulls and dry runs know it).
    pub bytes_expected: Option<u64>,
    /// Objects obtained (fetched or reused) so far.
    pub objects_done: u64,
    /// Objects known to be needed so far.
    pub objects_expected: u64,
    /// Delta parts applied so far.
    pub parts_done: u64,
    /// Delta parts in the chosen delta.
    pub parts_expected: u64,
}

/// Receives progress events. Implementations must not block.
pub trait Reporter: Send + Sync + std::fmt::Debug {
    /// Called for every event.
    fn report(&self, event: Event);
}

/// A reporter that drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NullReporter;

impl Reporter for NullReporter {
    fn report(&self, _event: Event) {}
}

/// The engine's one cancellation token, shared between the caller, the sources (which
/// await it) and the worker threads (which poll it).
#[derive(Debug, Clone, Default)]
pub struct Cancel(CancellationToken);

impl Cancel {
    /// A token that has not fired.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the pull to stop as soon as possible.
    pub fn cancel(&self) {
        self.0.cancel();
    }
    /// Whether cancellation was requested.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
    /// Completes when cancellation is requested.
    pub(crate) async fn cancelled(&self) {
        self.0.cancelled().await;
    }
    /// [`Cancel::cancelled`] as an owned future, for streams that hold it.
    pub(crate) fn cancelled_owned(self) -> WaitForCancellationFutureOwned {
        self.0.cancelled_owned()
    }
}

/// Shared counters updated by concurrent tasks and sent as [`Event::Counters`].
#[derive(Debug, Default)]
pub struct Tracker {
    /// Objects obtained so far.
    pub(crate) objects_done: AtomicU64,
    /// Objects known to be needed so far.
    pub(crate) objects_expected: AtomicU64,
    /// Delta parts applied.
    pub(crate) parts_done: AtomicU64,
    /// Delta parts to apply.
    pub(crate) parts_expected: AtomicU64,
    /// Bytes expected in total (0 = unknown).
    pub(crate) bytes_expected: AtomicU64,
}

impl Tracker {
    /// The counters now, with `bytes_fetched` from the source.
    pub(crate) fn snapshot(&self, bytes_fetched: u64) -> Counters {
        let be = self.bytes_expected.load(Ordering::Relaxed);
        Counters {
            bytes_fetched,
            bytes_expected: (be > 0).then_some(be),
            objects_done: self.objects_done.load(Ordering::Relaxed),
            objects_expected: self.objects_expected.load(Ordering::Relaxed),
            parts_done: self.parts_done.load(Ordering::Relaxed),
            parts_expected: self.parts_expected.load(Ordering::Relaxed),
        }
    }
}
