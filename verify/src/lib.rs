//! Every trust decision cfsync makes: object checksums, GPG and ed25519 signatures,
//! ref binding and downgrade rules.
//!
//! The crate works on raw bytes. Callers (engine/) extract the signed bytes (the exact
//! bytes of a `.commit` object or of the `summary` file) and the signature blobs (the
//! elements of the `ostree.gpgsigs` or `ostree.sign.ed25519` `aay` arrays in a
//! `.commitmeta` or `summary.sig`) and pass them here:
//!
//! - [`gpg`]: OpenPGP keyrings and detached-signature verification with sequoia, with
//!   libostree's rules for expired and revoked keys (`ostree-gpg-verify-result.c`);
//!   signing for publishers.
//! - [`ed25519`]: ostree's sign API for ed25519 (`ostree-sign-ed25519.c`): base64 keys,
//!   key files, revoked keys, 64-byte signatures; key generation and signing.
//! - [`checksum`]: SHA-256 checks and hashing readers/writers.
//! - [`policy`]: remote options (`gpg-verify`, `sign-verify`, ...: the one reader of their
//!   values, shared with the engine), the remote policy and the pure
//!   ref-binding, collection-binding and downgrade checks of a pull.
//!
//! Nothing here performs network I/O. The only file reads are the keyring and key-file
//! loaders, which mirror the paths libostree reads (documented on each loader).
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod checksum;
pub mod ed25519;
pub mod gpg;
pub mod policy;
mod timefmt;

pub use timefmt::{format_system_time, format_unix_utc};
