//! OpenPGP (GPG) signatures on commits and summaries, verified with sequoia-openpgp.
//!
//! What ostree signs and stores (`docs/ostree-formats.md` §2.3, §2.4, §5.4): the
//! `ostree.gpgsigs` key of a `.commitmeta` or `summary.sig` is an `aay`; each element is
//! one binary detached OpenPGP signature (signature class 0x00) over the exact bytes of
//! the `.commit` object or `summary` file. libostree concatenates the elements and
//! hands them to GPGME together (`_ostree_repo_gpg_verify_with_metadata`, `ostree-repo.c`);
//! here each element is verified on its own, so one malformed element cannot hide the
//! others, and every signature is reported with the element it came from.
//!
//! A verification succeeds when at least one signature is *valid*, which, as in
//! libostree's `ostree_gpg_verify_result_count_valid` / `signature_is_valid`
//! (`ostree-gpg-verify-result.c`) on top of GnuPG's checks, means all of:
//!
//! - the signing key is in the [`Keyring`] (and bound to its certificate under
//!   sequoia's `StandardPolicy`),
//! - the signature is cryptographically good over the data,
//! - neither the certificate nor the signing key is revoked (any revocation, at the
//!   verification time),
//! - neither is expired **at the verification time** — like GnuPG, a signature made
//!   before the key expired stops counting once the key has expired,
//! - the signature itself has not expired at the verification time.
//!
//! A signature created up to [`CLOCK_SKEW_TOLERANCE`] after the verification time is
//! accepted (publisher clocks run ahead; this is sequoia's own default tolerance).
//!
//! When nothing is valid, the error describes the most telling failure, with
//! libostree's precedence (`ostree_gpg_verify_result_require_valid_signature`): a
//! signature from a key in the keyring beats unknown keys, and within it revoked beats
//! expired key beats expired signature beats bad signature. [`inspect_detached`] gives
//! the full per-signature report instead.
//!
//! Keyrings: see [`Keyring`] for the files and directories libostree reads.
//! Signing for publishers: [`GpgSigner`] / [`sign_detached`].
//!
//! The crypto backend is sequoia's pure-Rust one (`crypto-rust`, with
//! `allow-experimental-crypto` and `allow-variable-time-crypto`): no C library.

mod error;
mod keyring;
mod report;
mod sign;
mod verify;

pub use error::GpgError;
pub use keyring::{
    GLOBAL_KEYRING_DIR, Keyring, KeyringError, MAX_KEYRING_SIZE, REMOTES_D_DIR, RemoteKeyringPaths,
    global_keyring_dir_from_env,
};
pub use report::{GpgSignature, GpgVerification, SignatureStatus};
pub use sign::{GpgSigner, SignError, sign_detached};
pub use verify::{CLOCK_SKEW_TOLERANCE, METADATA_KEY, inspect_detached, verify_detached};
