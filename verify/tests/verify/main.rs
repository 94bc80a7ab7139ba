//! Integration tests of cfsync-verify against data made by real tools: `gpg`, `ostree`,
//! `openssl` and `sha256sum`. Modules mirror `src/`.
//!
//! The tools are required: a missing tool fails the test with an install hint rather
//! than skipping it.

mod checksum;
mod ed25519;
mod gpg;
mod policy;
mod util;
