//! libostree's repository lock, held shared while a summary is made (as
//! `regenerate_metadata` and `ostree_repo_static_delta_reindex` do) so that an `ostree
//! prune` or `static-delta delete`, which take it exclusive, cannot remove deltas or
//! commits half way. The lock is a whole-file `fcntl` read lock on `<repo>/.lock` (ostree
//! uses open-file-description locks there, which conflict with these). Waiting follows
//! `core.lock-timeout-secs`: a retry each second up to that many seconds (default 300),
//! `-1` waits without limit, below `-1` takes no lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use cfsync_formats::keyfile::KeyFile;
use rustix::fs::{FlockOperation, fcntl_lock};

use super::SummaryUpdateError as E;

/// ostree's default `core.lock-timeout-secs`.
const DEFAULT_TIMEOUT_SECS: i64 = 300;

/// A shared hold on a repository's lock; released when dropped.
#[derive(Debug)]
pub struct RepoLock {
    _file: Option<File>,
}

/// Takes the repository's lock shared, waiting as `core.lock-timeout-secs` says.
pub fn lock_shared(repo: &Path) -> Result<RepoLock, E> {
    let config = repo.join("config");
    let data = std::fs::read(&config).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            E::NotARepo(repo.to_owned())
        } else {
            E::Io {
                path: config.clone(),
                what: "reading",
                source,
            }
        }
    })?;
    let timeout = KeyFile::parse_bytes(&data)
        .ok()
        .and_then(|k| k.get_raw("core", "lock-timeout-secs").map(str::to_owned))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    if timeout < -1 {
        return Ok(RepoLock { _file: None });
    }
    let path = repo.join(".lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|source| E::Io {
            path: path.clone(),
            what: "opening",
            source,
        })?;
    let io_err = |e: rustix::io::Errno| E::Io {
        path: path.clone(),
        what: "locking",
        source: io::Error::from(e),
    };
    if timeout == -1 {
        fcntl_lock(&file, FlockOperation::LockShared).map_err(io_err)?;
        return Ok(RepoLock { _file: Some(file) });
    }
    let mut waited = 0;
    loop {
        match fcntl_lock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => return Ok(RepoLock { _file: Some(file) }),
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {}
            Err(e) => return Err(io_err(e)),
        }
        if waited >= timeout {
            return Err(E::Locked {
                path,
                seconds: waited,
            });
        }
        waited += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
}
