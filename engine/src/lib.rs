//! The cfsync sync engine: plans a pull, fetches over HTTP or from a local repository,
//! verifies every object and stores it in a composefs repository.
//!
//! The engine prints nothing: it reports [`progress::Event`]s, honours a
//! [`progress::Cancel`] token and returns typed errors. Modules, from the wire inwards,
//! one room each:
//!
//! - [`source`]: fetchers that only move bytes (HTTP with retries and stall timeouts,
//!   local repositories of every mode);
//! - [`limits`]: every size and count cap applied to what a source sends;
//! - [`summary`]: the remote's summary and signature, cached with conditional requests;
//! - [`trust`]: the verification policy of a remote applied to summaries and commits;
//! - `refetch`: a body that arrives damaged fetched again, fresh, within the budget;
//! - `fetch`: single objects fetched and verified, for both routes;
//! - `held`: bodies fetched ahead of the check they wait on, read only once it passes;
//! - [`ingest`]: file objects verified as they stream into the composefs object store;
//! - `walk`: the object-by-object route over a commit's trees;
//! - [`delta`]: static deltas found, chosen and applied straight into the store;
//! - [`space`]: free-space checks before writing, and out-of-space errors explained;
//! - [`store`]: the composefs repository, commit streams, images, refs, object index;
//! - [`mod@pull`]: one pull end to end, phase by phase;
//! - [`error`]: [`PullError`], the one error of every phase and route;
//! - [`progress`]: progress events, counters and cancellation;
//! - [`publish`]: the publisher's side, static deltas and summaries written for `ostree`;
//! - [`remotes`]: remote configuration; [`atomic`]: the one atomic file write.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod atomic;
pub mod delta;
pub mod error;
pub(crate) mod fetch;
pub(crate) mod held;
pub mod ingest;
pub mod limits;
pub mod progress;
pub mod publish;
pub mod pull;
pub(crate) mod refetch;
pub mod remotes;
pub mod source;
pub mod space;
pub mod store;
pub mod summary;
pub(crate) mod tmpfiles;
pub mod trust;
pub(crate) mod walk;

/// The composefs crate this engine stores into (re-exported so callers use the same version).
pub use composefs;
pub use error::PullError;
pub use pull::{PullOptions, PullStats, pull};
