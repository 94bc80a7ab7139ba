//! The composefs side of cfsync: the repository, commit splitstreams, images, refs, the
//! object index and cfsync's own state (remotes, summary cache, keys) kept beside it.
//!
//! Everything on disk goes through the `composefs` crate; cfsync adds only a `cfsync/`
//! directory inside the repository for its configuration and caches. Refs are composefs
//! stream refs `streams/refs/ostree/<escaped ref>` pointing at `ostree-commit-<hex>`
//! streams, exactly as `cfsctl ostree` names them.
//!
//! Rooms: this file (the store, opening and creating it), `refs`, `commits` (listing,
//! loading and storing commits), `object` (one stored object), `commit_stream` (the commit table: reader and
//! builder), `image` (the EROFS image built from a table), `index` (which commit holds
//! an object), `journal` (the resume journal) and `resume` (a builder seeded from it),
//! `flush` (background writeback during a pull).

pub mod commit_stream;
mod commits;
pub(crate) mod flush;
mod image;
pub mod index;
pub mod journal;
mod object;
mod refs;
pub(crate) mod resume;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use composefs::erofs::format::{FormatConfig, FormatVersion};
use composefs::fsverity::{Algorithm, FsVerityHashValue, Sha256HashValue, Sha512HashValue};
use composefs::repository::{Repository, RepositoryConfig, read_repo_algorithm};
use rustix::fs::{Mode, OFlags};

pub use commit_stream::{
    CommitStream, CommitStreamBuilder, IMAGE_REF_KEY, OSTREE_COMMIT_CONTENT_TYPE, ObjectLookup,
    commit_stream_name, ostree_ref_name,
};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operation of the composefs crate failed.
    #[error("composefs repository: {context}: {source:#}")]
    Composefs {
        /// What cfsync was doing.
        context: &'static str,
        /// The composefs error.
        source: anyhow::Error,
    },
    /// A filesystem operation on cfsync's own state failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An object a commit needs is not in its table.
    #[error("{what} object {id} is missing from the commit table")]
    MissingObject {
        /// The object.
        id: Checksum,
        /// Its kind.
        what: &'static str,
    },
    /// A stored object does not parse.
    #[error("stored object is malformed: {0}")]
    Format(String),
    /// A commit splitstream is malformed.
    #[error(
        "commit stream {stream} is corrupt: {what}; run `cfsync fsck` and pull the commit again"
    )]
    CorruptStream {
        /// The stream name.
        stream: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A commit has more objects than the stream format can address.
    #[error("commit has too many objects ({count})")]
    TooManyObjects {
        /// How many.
        count: usize,
    },
    /// A size exceeds what the format can hold.
    #[error("{what} too large ({size} bytes)")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its size.
        size: u64,
    },
    /// The repository uses an fs-verity algorithm this build does not handle.
    #[error("repository {path}: {what}")]
    Repository {
        /// The repository path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl StoreError {
    pub(crate) fn composefs(context: &'static str, source: anyhow::Error) -> Self {
        Self::Composefs { context, source }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// The fs-verity digest algorithm of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashKind {
    /// fs-verity with SHA-256.
    Sha256,
    /// fs-verity with SHA-512 (cfsctl's default).
    #[default]
    Sha512,
}

impl std::str::FromStr for HashKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            _ => Err(format!("unknown hash {s:?}: expected sha256 or sha512")),
        }
    }
}

/// A composefs repository holding OSTree commits, plus cfsync's state directory.
#[derive(Debug)]
pub struct Store<ObjectID: FsVerityHashValue> {
    repo: Arc<Repository<ObjectID>>,
    path: PathBuf,
}

/// A store of either hash kind, as opened from disk.
#[derive(Debug)]
pub enum AnyStore {
    /// fs-verity SHA-256 repository.
    Sha256(Store<Sha256HashValue>),
    /// fs-verity SHA-512 repository.
    Sha512(Store<Sha512HashValue>),
}

/// Whether a repository was found, or created without kernel fs-verity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// The repository already existed.
    Existing,
    /// Created, with fs-verity required on every object.
    CreatedVerity,
    /// Created without fs-verity enforcement (the filesystem does not support it).
    CreatedInsecure,
}

impl AnyStore {
    /// Opens the repository at `path`, creating it (with `hash`) when it does not exist.
    pub fn open_or_init(path: &Path, hash: HashKind) -> Result<(Self, InitOutcome), StoreError> {
        let meta = path.join("meta.json");
        let mut outcome = InitOutcome::Existing;
        if !meta.exists() {
            outcome = init_repo(path, hash)?;
        }
        Ok((Self::open(path)?, outcome))
    }

    /// Opens an existing repository at `path`, whichever its hash kind.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| StoreError::io(path, e.into()))?;
        let alg = read_repo_algorithm(&fd)
            .map_err(|e| StoreError::composefs("reading meta.json", e))?
            .ok_or_else(|| StoreError::Repository {
                path: path.into(),
                what: "not a composefs repository (no meta.json); create it with `cfsync init`"
                    .into(),
            })?;
        match alg {
            Algorithm::Sha256 { .. } => Ok(Self::Sha256(Store::open(path)?)),
            Algorithm::Sha512 { .. } => Ok(Self::Sha512(Store::open(path)?)),
        }
    }
}

fn init_repo(path: &Path, hash: HashKind) -> Result<InitOutcome, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    }
    let algorithm = match hash {
        HashKind::Sha256 => Algorithm::SHA256,
        HashKind::Sha512 => Algorithm::SHA512,
    };
    let config = || {
        let mut c = RepositoryConfig::new(algorithm);
        c.erofs_formats = FormatConfig::single(FormatVersion::V1);
        c
    };
    let secure = match hash {
        HashKind::Sha256 => {
            Repository::<Sha256HashValue>::init_path(rustix::fs::CWD, path, config()).map(|_| ())
        }
        HashKind::Sha512 => {
            Repository::<Sha512HashValue>::init_path(rustix::fs::CWD, path, config()).map(|_| ())
        }
    };
    if secure.is_ok() {
        return Ok(InitOutcome::CreatedVerity);
    }
    // No fs-verity on this filesystem: the repository runs without kernel enforcement
    // (digests are still computed and checked by us).
    let _ = std::fs::remove_file(path.join("meta.json"));
    let insecure = match hash {
        HashKind::Sha256 => {
            Repository::<Sha256HashValue>::init_path(rustix::fs::CWD, path, config().set_insecure())
                .map(|_| ())
        }
        HashKind::Sha512 => {
            Repository::<Sha512HashValue>::init_path(rustix::fs::CWD, path, config().set_insecure())
                .map(|_| ())
        }
    };
    insecure.map_err(|e| StoreError::composefs("initializing repository", e))?;
    Ok(InitOutcome::CreatedInsecure)
}

impl<ObjectID: FsVerityHashValue> Store<ObjectID> {
    /// Opens an existing repository of this hash kind.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let repo = Repository::open_path(rustix::fs::CWD, path)
            .map_err(|e| StoreError::composefs("opening repository", anyhow::Error::new(e)))?;
        Ok(Self {
            repo: Arc::new(repo),
            path: path.to_path_buf(),
        })
    }

    /// The composefs repository.
    pub fn repo(&self) -> &Arc<Repository<ObjectID>> {
        &self.repo
    }

    /// The repository's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// cfsync's own state directory inside the repository (created on demand).
    pub fn state_dir(&self) -> Result<PathBuf, StoreError> {
        let d = self.path.join("cfsync");
        std::fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
        Ok(d)
    }
}

/// The entries of directory `dir`, none when it does not exist.
fn dir_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, StoreError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    rd.map(|ent| ent.map_err(|e| StoreError::io(dir, e)))
        .collect()
}
