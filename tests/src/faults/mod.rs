//! A fault-injecting HTTP/1.1 server for tests, in front of a real repository directory.
//!
//! [`FaultServer::start`] serves the files under a root (keep-alive, `Content-Length`,
//! 404 for what is missing) and applies a plan to each request:
//!
//! - [`Rule`]s, each a path pattern (`*` matches any run of characters, `/` included),
//!   a window of request counts (the `from`-th matching request and the `times - 1` after
//!   it, counted per path or over all matching paths) and a [`Fault`];
//! - a seeded random mode ([`Random`]): for the `k`-th request of a path, a hash of
//!   `(seed, path, k)` decides whether and which fault applies, so a run is the same for
//!   a given seed whatever order concurrent requests arrive in. Faults stop after
//!   `max_per_path` requests of a path, so retrying clients get through.
//!   [`Random::first_request`] faults the first request of every path with one of
//!   seven kinds (503, 500, reset, truncate, flip, two stalls), rotating with the seed
//!   ([`Pick::Rotate`]), and leaves later requests clean.
//!
//! Every request is logged ([`FaultServer::log`]) with the fault it got, whether it
//! came on a fresh connection and whether it said `Cache-Control: no-cache`. Nothing here
//! sleeps to wait for a condition: a stalled answer blocks reading the connection until
//! the client hangs up or the server is dropped (which shuts every connection down); a
//! dripped body sleeps between chunks because slowness is the fault.

mod plan;
mod server;

pub use plan::{Count, Fault, Logged, Pick, Random, Rule, glob};
pub use server::FaultServer;
