//! The summary of an OSTree repository: refs, `ostree.static-deltas`, its signature and
//! `delta-indexes/`, as `ostree summary -u` writes them (`regenerate_metadata` and
//! `ostree_repo_static_delta_reindex` in libostree).
//!
//! Two steps, so that the caller signs in between with whatever keys it holds:
//! [`prepare`] reads the repository (`read`) and lays out every file in memory
//! ([`Prepared`]); [`write`] puts them in place (`write`): `core.indexed-deltas=true` in
//! `config` when it is not set, each delta index (stale ones removed), then `summary`,
//! then `summary.sig` (or removes a `summary.sig` that no longer matches), every file
//! replaced atomically ([`crate::atomic`]).
//!
//! Hold [`lock_shared`] across both, as ostree holds its repository lock.
//!
//! Not done (unlike `ostree summary -u`): the `ostree-metadata` commit that ostree makes
//! for a repository with a collection ID, and `--add-metadata`.

mod lock;
mod read;
mod write;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::index::{DeltaEntry, DeltaListError, index_to_bytes};
use cfsync_formats::summary::{SummaryContents, SummaryError, SummaryRefEntry};

pub use lock::{RepoLock, lock_shared};
pub use write::write;

/// Why a summary could not be updated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryUpdateError {
    /// The directory has no `config`.
    #[error("{} is not an OSTree repository (no config file)", .0.display())]
    NotARepo(PathBuf),
    /// A file or directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`reading`, `listing`, `writing`, `removing`).
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Another process holds the repository lock exclusive (`ostree prune`, …).
    #[error("{} is locked by another process (ostree prune or static-delta delete?); gave up after {seconds} s (core.lock-timeout-secs)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long it waited.
        seconds: i64,
    },
    /// The repository's `config` is not a valid key file.
    #[error("{}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A ref file is invalid.
    #[error("ref {}: {message}", path.display())]
    BadRef {
        /// The ref file (or directory).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A ref names a commit the repository does not hold.
    #[error("ref {name} points to commit {commit}, which is missing ({}: {source}); run `ostree fsck`", path.display())]
    MissingCommit {
        /// The ref.
        name: String,
        /// Its commit.
        commit: Checksum,
        /// Where the commit object should be.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A directory under `deltas/` is not named as a delta.
    #[error("static delta {}: {message}", path.display())]
    BadDelta {
        /// The delta directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The summary cannot be laid out (an invalid ref name, collection ID or commit).
    #[error("{0}")]
    Summary(#[from] SummaryError),
    /// A delta index cannot be laid out.
    #[error("{0}")]
    Index(#[from] DeltaListError),
}

/// Everything [`write`] puts in place, laid out.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The `summary` bytes (sign these).
    pub summary: Vec<u8>,
    /// Delta index files to write: the commit they are for, and their bytes.
    pub indexes: Vec<(Checksum, Vec<u8>)>,
    /// Delta index files to remove (no delta ends at their commit any more).
    pub stale_indexes: Vec<Checksum>,
    /// `config` with `core.indexed-deltas=true`, when it must be rewritten.
    pub config: Option<String>,
    /// Refs in the main map.
    pub refs: usize,
    /// Refs of other collections (`ostree.summary.collection-map`).
    pub collection_refs: usize,
    /// Static deltas listed.
    pub deltas: usize,
}

/// Builds one ref map from `refs` (name → commit), reading each commit.
fn ref_entries(
    repo: &Path,
    refs: &BTreeMap<String, Checksum>,
) -> Result<Vec<SummaryRefEntry>, SummaryUpdateError> {
    let mut out = Vec::with_capacity(refs.len());
    for (name, c) in refs {
        let data = read::commit(repo, name, c)?;
        out.push(SummaryRefEntry::for_commit(name, *c, &data)?);
    }
    Ok(out)
}

/// Reads the repository at `repo` and lays out its summary (with `last_modified` as
/// `ostree.summary.last-modified`, seconds since the epoch) and delta indexes.
pub fn prepare(repo: &Path, last_modified: u64) -> Result<Prepared, SummaryUpdateError> {
    let config = read::config(repo)?;
    let main_id = config.collection_id.as_deref();
    let refs_dir = repo.join("refs");

    // Per collection: its refs, later sources replacing earlier ones as ostree's table.
    let mut collections: BTreeMap<String, BTreeMap<String, Checksum>> = BTreeMap::new();
    let mut main = BTreeMap::new();
    match main_id {
        None => read::refs_under(&refs_dir.join("heads"), &mut main)?,
        Some(id) => read::refs_under(
            &refs_dir.join("heads"),
            collections.entry(id.to_owned()).or_default(),
        )?,
    }
    for cid in subdirs(&refs_dir.join("mirrors"))? {
        let dir = refs_dir.join("mirrors").join(&cid);
        read::refs_under(&dir, collections.entry(cid).or_default())?;
    }
    for (remote, cid) in &config.remote_collections {
        let dir = refs_dir.join("remotes").join(remote);
        read::refs_under(&dir, collections.entry(cid.clone()).or_default())?;
    }
    if let Some(id) = main_id {
        main = collections.remove(id).unwrap_or_default();
    }

    let refs = ref_entries(repo, &main)?;
    let mut collection_map = Vec::new();
    let mut collection_refs = 0;
    for (cid, map) in &collections {
        let entries = ref_entries(repo, map)?;
        collection_refs += entries.len();
        collection_map.push((cid.clone(), entries));
    }

    let all_deltas = read::deltas(repo)?;
    let contents = SummaryContents {
        refs,
        static_deltas: if config.no_deltas_in_summary {
            Vec::new()
        } else {
            all_deltas.clone()
        },
        last_modified,
        mode: config.mode.clone(),
        tombstone_commits: config.tombstone_commits,
        collection_id: config.collection_id.clone(),
        collection_map,
    };
    let summary = contents.to_bytes()?;

    let mut by_to: BTreeMap<Checksum, Vec<DeltaEntry>> = BTreeMap::new();
    for d in &all_deltas {
        by_to.entry(d.name.to).or_default().push(*d);
    }
    let mut indexes = Vec::with_capacity(by_to.len());
    for (to, entries) in &by_to {
        indexes.push((*to, index_to_bytes(entries)?));
    }
    let stale_indexes = read::delta_indexes(repo)?
        .into_iter()
        .filter(|c| !by_to.contains_key(c))
        .collect();

    let new_config = if config.indexed_deltas {
        None
    } else {
        let mut kf = config.keyfile.clone();
        kf.set_raw("core", "indexed-deltas", "true")
            .map_err(|e| SummaryUpdateError::Config {
                path: repo.join("config"),
                message: e.to_string(),
            })?;
        Some(kf.to_data())
    };

    Ok(Prepared {
        summary,
        indexes,
        stale_indexes,
        config: new_config,
        refs: contents.refs.len(),
        collection_refs,
        deltas: contents.static_deltas.len(),
    })
}

/// Names of the subdirectories of `dir` (none when it is missing).
fn subdirs(dir: &Path) -> Result<Vec<String>, SummaryUpdateError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SummaryUpdateError::Io {
                path: dir.to_owned(),
                what: "listing",
                source,
            });
        }
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| SummaryUpdateError::Io {
            path: dir.to_owned(),
            what: "listing",
            source,
        })?;
        if e.path().is_dir()
            && let Some(n) = e.file_name().to_str()
        {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::fs;

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("config"),
            "[core]\nrepo_version=1\nmode=archive-z2\n",
        )
        .unwrap();
        fs::create_dir_all(d.path().join("refs/heads")).unwrap();
        d
    }

    #[test]
    fn empty_repository_and_errors_that_name_the_fix() {
        let d = repo();
        let p = prepare(d.path(), 5).unwrap();
        assert_eq!((p.refs, p.deltas, p.indexes.len()), (0, 0, 0));
        assert!(p.config.as_deref().unwrap().contains("indexed-deltas=true"));
        write(d.path(), &p, None).unwrap();
        assert_eq!(fs::read(d.path().join("summary")).unwrap(), p.summary);
        // A second run leaves config alone.
        assert!(prepare(d.path(), 5).unwrap().config.is_none());

        let e = prepare(&d.path().join("nope"), 0).unwrap_err();
        assert!(matches!(e, SummaryUpdateError::NotARepo(_)), "{e}");

        fs::write(
            d.path().join("refs/heads/r"),
            format!("{}\n", "ab".repeat(32)),
        )
        .unwrap();
        let e = prepare(d.path(), 0).unwrap_err().to_string();
        assert!(
            e.contains("ref r points to commit abab") && e.contains("ostree fsck"),
            "{e}"
        );

        fs::write(d.path().join("refs/heads/r"), "not a checksum\n").unwrap();
        let e = prepare(d.path(), 0).unwrap_err().to_string();
        assert!(e.contains("not a commit checksum"), "{e}");
        fs::remove_file(d.path().join("refs/heads/r")).unwrap();

        fs::create_dir_all(d.path().join("deltas/xx/bad")).unwrap();
        fs::write(d.path().join("deltas/xx/bad/superblock"), b"").unwrap();
        let e = prepare(d.path(), 0).unwrap_err().to_string();
        assert!(
            e.contains("static delta") && e.contains("deltas/xx/bad"),
            "{e}"
        );
    }
}
