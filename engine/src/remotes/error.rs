//! [`RemoteError`]: every error about remotes (validation, configuration files, the
//! store), and the helper that wraps an `io::Error` with its operation and path.

use std::io;
use std::path::{Path, PathBuf};

use cfsync_formats::keyfile::KeyFileError;

/// Errors about remotes: validation, configuration files and the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A remote name does not follow libostree's rules (see [`super::validate_remote_name`]).
    #[error("invalid remote name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A URL is not `http://`, `https://`, `file://` or `mirrorlist=` one of those.
    #[error("invalid remote url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A collection ID is not a D-Bus-interface-like name (see [`super::validate_collection_id`]).
    #[error("invalid collection id {id:?}: {reason}")]
    InvalidCollectionId {
        /// The ID.
        id: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A `--set` argument has no `=`.
    #[error("invalid --set argument {arg:?}: expected KEY=VALUE")]
    InvalidSetArgument {
        /// The argument.
        arg: String,
    },
    /// A key cannot be stored in a key file.
    #[error("remote {remote:?}: invalid key name {key:?}")]
    InvalidKey {
        /// The remote.
        remote: String,
        /// The key.
        key: String,
    },
    /// A value of a known key does not parse (boolean, escapes, list, key format).
    #[error("remote {remote:?}: invalid value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        /// The remote.
        remote: String,
        /// The key.
        key: String,
        /// The value as given (raw if read from a file).
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The remote has no `url` key.
    #[error("remote {name:?} has no url")]
    MissingUrl {
        /// The remote.
        name: String,
    },
    /// A configuration file is not a valid key file.
    #[error("cannot parse remote configuration {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The syntax error.
        #[source]
        source: KeyFileError,
    },
    /// A remote in a configuration file is invalid.
    #[error("invalid remote configuration in {path}")]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// What is invalid.
        #[source]
        source: Box<RemoteError>,
    },
    /// A configuration file is larger than the cap on configuration files (1 MiB).
    #[error("remote configuration {path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Two files of one source define the same remote (libostree refuses this too:
    /// "Multiple specifications found for remote").
    #[error("remote {name:?} is defined twice: in {first} and in {second}")]
    Duplicate {
        /// The remote.
        name: String,
        /// Where it was seen first.
        first: PathBuf,
        /// Where it was seen again.
        second: PathBuf,
    },
    /// No remote of that name exists.
    #[error("remote {name:?} not found")]
    NotFound {
        /// The remote.
        name: String,
    },
    /// A remote of that name exists already.
    #[error("remote {name:?} already exists in {path}")]
    AlreadyExists {
        /// The remote.
        name: String,
        /// Where it is defined.
        path: PathBuf,
    },
    /// The remote is defined only in a read-only source (`/etc/ostree/remotes.d`, an ostree
    /// repository `config`), which cfsync does not change.
    #[error(
        "remote {name:?} is defined in read-only {path}; change it there or add a cfsync remote of that name to override it"
    )]
    ReadOnly {
        /// The remote.
        name: String,
        /// Where it is defined.
        path: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "rename", ...).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> RemoteError + use<> {
    let path = path.to_owned();
    move |source| RemoteError::Io { op, path, source }
}
