//! Reading what a summary describes from an OSTree repository on disk: its `config`, its
//! refs (`refs/heads`, `refs/mirrors/<collection>`, `refs/remotes/<remote>` of remotes
//! with a `collection-id`), the commit objects they name, the static deltas under
//! `deltas/` and the delta indexes under `delta-indexes/`, as libostree lists them
//! (`ostree_repo_list_refs`, `ostree_repo_list_collection_refs`,
//! `ostree_repo_list_static_delta_names`, `ostree_repo_list_static_delta_indexes`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::index::DeltaEntry;
use cfsync_formats::delta::names::DeltaName;
use cfsync_formats::keyfile::KeyFile;
use sha2::{Digest, Sha256};

use super::SummaryUpdateError as E;

/// Deepest ref directory nesting followed (a loop of symlinked directories stops here).
const MAX_REF_DEPTH: usize = 64;

/// Largest commit object read (ostree's `OSTREE_MAX_METADATA_SIZE` is 128 MiB).
const MAX_COMMIT_SIZE: u64 = 128 << 20;

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> E + 'a {
    move |source| E::Io {
        path: path.to_owned(),
        what,
        source,
    }
}

/// The `config` settings a summary depends on.
#[derive(Debug, Clone, Default)]
pub(super) struct RepoConfig {
    pub mode: String,
    pub tombstone_commits: bool,
    pub collection_id: Option<String>,
    pub no_deltas_in_summary: bool,
    pub indexed_deltas: bool,
    /// Remote name → its `collection-id`, for remotes that have one.
    pub remote_collections: BTreeMap<String, String>,
    /// The file as read, for the `core.indexed-deltas` edit.
    pub keyfile: KeyFile,
}

/// Reads `repo/config`.
pub(super) fn config(repo: &Path) -> Result<RepoConfig, E> {
    let path = repo.join("config");
    let data = fs::read(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            E::NotARepo(repo.to_owned())
        } else {
            E::Io {
                path: path.clone(),
                what: "reading",
                source,
            }
        }
    })?;
    let bad = |message: String| E::Config {
        path: path.clone(),
        message,
    };
    let kf = KeyFile::parse_bytes(&data).map_err(|e| bad(e.to_string()))?;
    let s = |k: &str| kf.get_string("core", k).map_err(|e| bad(e.to_string()));
    let b = |k: &str| {
        kf.get_bool("core", k)
            .map(|v| v.unwrap_or(false))
            .map_err(|e| bad(e.to_string()))
    };
    let mut remote_collections = BTreeMap::new();
    for g in kf.groups() {
        let Some(name) = g
            .strip_prefix("remote \"")
            .and_then(|r| r.strip_suffix('"'))
        else {
            continue;
        };
        // As `ostree_repo_list_collection_refs`: a remote without a valid ID is skipped.
        if let Ok(Some(id)) = kf.get_string(g, "collection-id")
            && cfsync_formats::names::validate_collection_id(&id).is_ok()
        {
            remote_collections.insert(name.to_owned(), id);
        }
    }
    Ok(RepoConfig {
        mode: s("mode")?.unwrap_or_else(|| "bare".to_owned()),
        tombstone_commits: b("tombstone-commits")?,
        collection_id: s("collection-id")?.filter(|c| !c.is_empty()),
        no_deltas_in_summary: b("no-deltas-in-summary")?,
        indexed_deltas: b("indexed-deltas")?,
        remote_collections,
        keyfile: kf,
    })
}

/// Every ref under `dir` (recursively; a missing directory has none): name → commit.
/// Entries are added to `out`, replacing a ref of the same name (as a later
/// `g_hash_table_insert` does).
pub(super) fn refs_under(dir: &Path, out: &mut BTreeMap<String, Checksum>) -> Result<(), E> {
    walk_refs(dir, String::new(), 0, out)
}

fn walk_refs(
    dir: &Path,
    prefix: String,
    depth: usize,
    out: &mut BTreeMap<String, Checksum>,
) -> Result<(), E> {
    if depth > MAX_REF_DEPTH {
        return Err(E::BadRef {
            path: dir.to_owned(),
            message: format!("ref directories nested more than {MAX_REF_DEPTH} deep"),
        });
    }
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound && depth == 0 => return Ok(()),
        Err(e) => return Err(io_err(dir, "listing")(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_err(dir, "listing"))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(E::BadRef {
                path,
                message: "ref name is not UTF-8".to_owned(),
            });
        };
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        // Follows symlinks, as `openat` does for ref aliases.
        let meta = fs::metadata(&path).map_err(io_err(&path, "reading"))?;
        if meta.is_dir() {
            walk_refs(&path, full, depth + 1, out)?;
        } else if meta.is_file() {
            let text = fs::read_to_string(&path).map_err(io_err(&path, "reading"))?;
            let commit = text.trim().parse::<Checksum>().map_err(|e| E::BadRef {
                path: path.clone(),
                message: format!("not a commit checksum: {e}"),
            })?;
            out.insert(full, commit);
        }
    }
    Ok(())
}

/// The object path of commit `c`.
pub(super) fn commit_path(repo: &Path, c: &Checksum) -> PathBuf {
    let hex = c.to_hex();
    let (a, b) = hex.split_at(2);
    repo.join("objects").join(a).join(format!("{b}.commit"))
}

/// The bytes of commit `c`, for ref `name`.
pub(super) fn commit(repo: &Path, name: &str, c: &Checksum) -> Result<Vec<u8>, E> {
    let path = commit_path(repo, c);
    let f = fs::File::open(&path).map_err(|source| E::MissingCommit {
        name: name.to_owned(),
        commit: *c,
        path: path.clone(),
        source,
    })?;
    let mut data = Vec::new();
    f.take(MAX_COMMIT_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io_err(&path, "reading"))?;
    if data.len() as u64 > MAX_COMMIT_SIZE {
        return Err(E::BadRef {
            path,
            message: format!("commit object over {MAX_COMMIT_SIZE} bytes"),
        });
    }
    Ok(data)
}

fn utf8_name(path: &Path, name: &std::ffi::OsStr) -> Result<String, E> {
    name.to_str().map(str::to_owned).ok_or_else(|| E::BadDelta {
        path: path.to_owned(),
        message: "name is not UTF-8".to_owned(),
    })
}

/// SHA-256 of a file, streamed.
fn sha256_file(path: &Path) -> Result<Checksum, E> {
    let mut f = fs::File::open(path).map_err(io_err(path, "reading"))?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).map_err(io_err(path, "reading"))?;
    Ok(Checksum(h.finalize().into()))
}

/// The entries of directory `top`, or `None` when it does not exist.
fn list_dir(top: &Path) -> Result<Option<fs::ReadDir>, E> {
    match fs::read_dir(top) {
        Ok(rd) => Ok(Some(rd)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(top, "listing")(e)),
    }
}

/// Every delta `deltas/XX/REST/` that has a `superblock`, in directory order, with the
/// SHA-256 of that superblock.
pub(super) fn deltas(repo: &Path) -> Result<Vec<DeltaEntry>, E> {
    let top = repo.join("deltas");
    let Some(rd) = list_dir(&top)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for d in rd {
        let d = d.map_err(io_err(&top, "listing"))?;
        if !d.file_type().map_err(io_err(&top, "listing"))?.is_dir() {
            continue;
        }
        let dir = d.path();
        let head = utf8_name(&dir, &d.file_name())?;
        for s in fs::read_dir(&dir).map_err(io_err(&dir, "listing"))? {
            let s = s.map_err(io_err(&dir, "listing"))?;
            if !s.file_type().map_err(io_err(&dir, "listing"))?.is_dir() {
                continue;
            }
            let sub = s.path();
            let superblock = sub.join("superblock");
            if !superblock.exists() {
                continue;
            }
            let rest = utf8_name(&sub, &s.file_name())?;
            let name =
                DeltaName::from_dir(&format!("deltas/{head}/{rest}")).map_err(|e| E::BadDelta {
                    path: sub.clone(),
                    message: e.to_string(),
                })?;
            out.push(DeltaEntry {
                name,
                superblock_digest: sha256_file(&superblock)?,
            });
        }
    }
    Ok(out)
}

/// The commits that have a delta index file (`delta-indexes/XX/REST.index`), skipping
/// names that are not one, as ostree does.
pub(super) fn delta_indexes(repo: &Path) -> Result<Vec<Checksum>, E> {
    let top = repo.join("delta-indexes");
    let Some(rd) = list_dir(&top)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for d in rd {
        let d = d.map_err(io_err(&top, "listing"))?;
        let Some(head) = d.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if head.len() != 2 || !d.file_type().map_err(io_err(&top, "listing"))?.is_dir() {
            continue;
        }
        let dir = d.path();
        for f in fs::read_dir(&dir).map_err(io_err(&dir, "listing"))? {
            let f = f.map_err(io_err(&dir, "listing"))?;
            let Some(name) = f.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(rest) = name.strip_suffix(".index") else {
                continue;
            };
            if rest.len() != 41 || !f.file_type().map_err(io_err(&dir, "listing"))?.is_file() {
                continue;
            }
            if let Ok(c) = Checksum::from_modified_base64(&format!("{head}{rest}")) {
                out.push(c);
            }
        }
    }
    Ok(out)
}
