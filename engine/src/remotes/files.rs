//! The file side of the remote store: where a remote was read from ([`RemoteOrigin`]),
//! capped reads of configuration files, `*.conf` directory listings, the remotes of one
//! source, and the atomic writes and removals the store makes.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cfsync_formats::keyfile::KeyFile;

use super::MAX_CONFIG_FILE_SIZE;
use super::error::{RemoteError, io_err};
use super::remote::Remote;

/// Where a remote was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteOrigin {
    /// cfsync's own `<state_dir>/remotes.d/*.conf` (writable).
    Local(PathBuf),
    /// A `*.conf` file of an extra directory such as `/etc/ostree/remotes.d` (read-only).
    ConfigDir(PathBuf),
    /// An OSTree repository's `config` file (read-only).
    OstreeRepoConfig(PathBuf),
}

impl RemoteOrigin {
    /// The file the remote is defined in.
    pub fn path(&self) -> &Path {
        match self {
            RemoteOrigin::Local(p)
            | RemoteOrigin::ConfigDir(p)
            | RemoteOrigin::OstreeRepoConfig(p) => p,
        }
    }

    /// Whether cfsync may change this remote.
    pub fn is_writable(&self) -> bool {
        matches!(self, RemoteOrigin::Local(_))
    }
}

fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, RemoteError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut data = Vec::new();
    file.take(MAX_CONFIG_FILE_SIZE.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io_err("read", path))?;
    if u64::try_from(data.len()).unwrap_or(u64::MAX) > MAX_CONFIG_FILE_SIZE {
        return Err(RemoteError::TooLarge {
            path: path.to_owned(),
            limit: MAX_CONFIG_FILE_SIZE,
        });
    }
    Ok(Some(data))
}

pub(super) fn load_keyfile(path: &Path) -> Result<Option<KeyFile>, RemoteError> {
    match read_capped(path)? {
        None => Ok(None),
        Some(data) => KeyFile::parse_bytes(&data)
            .map(Some)
            .map_err(|source| RemoteError::Parse {
                path: path.to_owned(),
                source,
            }),
    }
}

pub(super) fn remotes_in(kf: &KeyFile, path: &Path) -> Result<Vec<Remote>, RemoteError> {
    Remote::all_from_keyfile(kf).map_err(|e| RemoteError::InvalidConfig {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// The `*.conf` regular files of `dir`, sorted; none if `dir` does not exist.
pub(super) fn conf_files(dir: &Path) -> Result<Vec<PathBuf>, RemoteError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let path = entry.path();
        if !entry.file_name().to_string_lossy().ends_with(".conf") {
            continue;
        }
        // Follow symlinks, as GLib's enumerator does without NOFOLLOW.
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("stat", &path)(e)),
        }
    }
    files.sort();
    Ok(files)
}

/// Remotes of one source, with the file each comes from; a name twice is an error.
pub(super) fn collect_source(
    files: &[PathBuf],
    origin: fn(PathBuf) -> RemoteOrigin,
) -> Result<Vec<(Remote, RemoteOrigin)>, RemoteError> {
    let mut out: Vec<(Remote, RemoteOrigin)> = Vec::new();
    for path in files {
        let Some(kf) = load_keyfile(path)? else {
            continue;
        };
        for r in remotes_in(&kf, path)? {
            if let Some((_, o)) = out.iter().find(|(x, _)| x.name == r.name) {
                return Err(RemoteError::Duplicate {
                    name: r.name,
                    first: o.path().to_owned(),
                    second: path.clone(),
                });
            }
            out.push((r, origin(path.clone())));
        }
    }
    Ok(out)
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), RemoteError> {
    crate::atomic::sync_dir(dir).map_err(io_err("sync directory", dir))
}

/// Writes `data` to `path` atomically and durably ([`crate::atomic`]); `clobber` false
/// fails with `AlreadyExists` (as an `io::Error`) if `path` exists.
pub(super) fn write_atomic(path: &Path, data: &[u8], clobber: bool) -> Result<(), RemoteError> {
    if clobber {
        crate::atomic::write(path, data).map_err(io_err("write", path))
    } else {
        crate::atomic::write_new(path, data).map_err(io_err("create", path))
    }
}

pub(super) fn remove_if_exists(path: &Path) -> Result<bool, RemoteError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}
