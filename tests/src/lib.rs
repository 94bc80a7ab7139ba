//! Shared helpers for cfsync's integration tests: real `ostree` repositories, real GPG
//! keys and a real HTTP server (nginx) on loopback.
//!
//! Everything here drives the real tools — the `ostree` and `gpg` command lines, nginx,
//! the mkfixture script — so that tests check cfsync against data those tools made. A
//! missing tool is a test failure with an install hint ([`require`]), never a silent
//! skip: a skipped test would hide a missing install step in CI.
//!
//! The helpers panic with the failing command, its exit status and its output: they are
//! for tests, where a panic with context is the most useful error.
//!
//! ```no_run
//! use cfsync_tests::{Gpg, Nginx, Ostree, TreeBuilder, NO_ARGS};
//!
//! let tmp = tempfile::tempdir().unwrap();
//! let tree = TreeBuilder::new(tmp.path().join("tree"));
//! tree.edge_cases();
//! let gpg = Gpg::new();
//! let repo = Ostree::init(tmp.path().join("repo"), "archive");
//! let commit = repo.commit("test/stable", tree.root(), gpg.sign_args());
//! repo.summary_update(Some(&gpg));
//! let server = Nginx::serve(repo.path());
//! let out = cfsync_tests::run_cfsync(["pull", &server.url(), "test/stable"]);
//! let (bytes, requests) = server.bytes_and_requests();
//! # let _ = (commit, out, bytes, requests, NO_ARGS);
//! ```

pub mod faults;

mod cfsctl;
mod cfsync;
mod command;
mod data;
mod dirs;
mod fixture;
mod gpg;
pub mod linkproxy;
mod mount;
mod nginx;
mod ostree;
mod snapshot;
mod tools;
mod tree;

pub use cfsctl::{cfsctl, cfsctl_init, cfsctl_ok, cfsctl_pull, field_line};
pub use cfsync::{Repo, cfsync_bin, cfsync_command, num, run_cfsync, run_cfsync_ok};
pub use command::{describe, output, run_checked, run_stdout};
pub use data::{Rng, pseudo_random, sha256_hex};
pub use dirs::{copy_tree, scratch_dir, tempdir, workspace_root};
pub use fixture::{Demo, FIXTURE_CACHE, FIXTURE_ENV, Fixture, demo, fixture};
pub use gpg::Gpg;
pub use mount::{Mounted, can_mount};
pub use nginx::{LogEntry, Nginx, free_port, start_nginx, stop_nginx};
pub use ostree::{LsEntry, NO_ARGS, Ostree};
pub use snapshot::{Node, assert_same_tree, snapshot, xattrs};
pub use tools::require;
pub use tree::{TreeBuilder, long_name};
