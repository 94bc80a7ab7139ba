//! cfsync's integration tests, as one test binary: each module drives the built `cfsync`
//! (and where they check compatibility, the `ostree` command line, cfsctl, GnuPG, nginx
//! and a fault-injecting server) against real repositories. The helpers they share are
//! the `cfsync_tests` library (`tests/src`).
//!
//! Run one module with `cargo test -p cfsync-tests --test integration MODULE::`.

mod chain;
mod cli;
mod crash;
mod delta;
mod demo;
mod demo_pulls;
mod diskfull;
mod faults;
mod harness;
mod hostile;
mod https;
mod inspect;
mod link;
mod publish_delta;
mod publish_summary;
mod pull_fixture;
mod summary_index;
mod sweep;
mod trust;
