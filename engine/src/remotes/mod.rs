//! Remote configuration in OSTree's key-file format: the typed view of one
//! `[remote "NAME"]` group ([`Remote`]) and the store that keeps cfsync's remotes as one
//! file per remote ([`RemoteStore`]), read beside the read-only remotes of
//! `/etc/ostree/remotes.d` and of an OSTree repository's `config`.
//!
//! The syntax is GLib's key file ([`cfsync_formats::keyfile`]); option values are read by
//! [`cfsync_verify::policy::options`], the reader the trust policy uses too. The remote keys
//! and their defaults follow libostree (`src/libostree/ostree-repo.c`,
//! `ostree-repo-pull-verify.c`, `ostree-remote.c` and `src/ostree/ot-remote-builtin-add.c`,
//! ostreedev/ostree at `46204655`, the same in `v2022.7`); each default cites the function
//! it comes from. Nothing here is async: remote files are small and read once per command.
//!
//! - `error.rs`: [`RemoteError`]; `validate.rs`: names, collection IDs, URLs.
//! - `remote.rs`: [`Remote`] read from a key file; `write.rs`: written back in place;
//!   `set.rs`: `--set KEY=VALUE`.
//! - `files.rs`: [`RemoteOrigin`] and the file reads/writes; `store.rs`: [`RemoteStore`].

mod error;
mod files;
mod remote;
mod set;
mod store;
mod validate;
mod write;

pub use cfsync_formats::keyfile::{KeyFile, KeyFileError};
pub use cfsync_verify::policy::SignVerifyOption as SignVerify;
pub use error::RemoteError;
pub use files::RemoteOrigin;
pub use remote::Remote;
pub use set::parse_set_argument;
pub use store::RemoteStore;
pub use validate::{UrlSpec, parse_url_spec, validate_collection_id, validate_remote_name};

/// Largest configuration file (`config`, `*.conf`) that is read, in bytes. libostree has no
/// limit; real files are a few hundred bytes.
const MAX_CONFIG_FILE_SIZE: u64 = 1 << 20;

/// Longest remote name accepted, in bytes. libostree has no limit; this one keeps
/// `<name>.trustedkeys.gpg` within the 255-byte file-name limit of Linux file systems.
const MAX_REMOTE_NAME_LEN: usize = 200;

/// Longest URL accepted by [`parse_url_spec`], in bytes.
const MAX_URL_LEN: usize = 8192;

/// The directory libostree reads system-wide remotes from (`SYSCONF_REMOTES` in
/// `ostree-repo.c`); pass it to [`RemoteStore::new`] as an extra directory.
pub const SYSTEM_REMOTES_DIR: &str = "/etc/ostree/remotes.d";
