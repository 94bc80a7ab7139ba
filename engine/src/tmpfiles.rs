//! Object tmpfiles made ahead of the objects that will fill them.
//!
//! Every object a pull stores starts as an anonymous tmpfile (`O_TMPFILE`) in the
//! composefs objects directory, and making one is not free: the file system allocates an
//! inode, and ext4 without a journal scans its inode table past every inode freed in the
//! last half minute to find one (after a large repository was deleted nearby, that scan
//! is the largest single cost of storing a small object). A delta's objects are known
//! from its superblock long before its parts are decoded, so a [`TmpfilePool`] makes
//! their tmpfiles on a thread of its own while the parts download (the network, not the
//! CPU, is the limit then), and the workers that store the objects take them ready-made.
//! A tmpfile never used is closed unlinked, and the file system frees it; a worker that
//! finds the pool empty makes its own, as before.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

/// Tmpfiles made ahead at most (each holds a file descriptor until it is used).
pub(crate) const MAX_AHEAD: usize = 1024;

/// Tmpfiles of one repository's objects directory, made ahead by a thread of their own.
#[derive(Debug, Default)]
pub(crate) struct TmpfilePool {
    ready: Mutex<Vec<OwnedFd>>,
    stop: AtomicBool,
}

impl TmpfilePool {
    /// A pool that makes nothing (every [`Self::take`] finds it empty).
    pub(crate) fn empty() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts making `want` tmpfiles (at most [`MAX_AHEAD`], and at most a quarter of
    /// the file descriptors this process may open) in `repo`'s objects directory. The
    /// thread stops at the first failure, or when the [`Filling`] returned is dropped
    /// (which also closes the tmpfiles not taken).
    pub(crate) fn start<ObjectID: FsVerityHashValue>(
        repo: Arc<Repository<ObjectID>>,
        want: usize,
    ) -> Filling {
        let pool = Self::empty();
        let want = want.min(MAX_AHEAD).min(fd_room());
        if want == 0 {
            return Filling(pool);
        }
        let filler = Arc::clone(&pool);
        let spawned = std::thread::Builder::new()
            .name("cfsync-tmpfiles".into())
            .spawn(move || {
                for _ in 0..want {
                    if filler.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match repo.create_object_tmpfile() {
                        Ok(fd) => filler.lock().push(fd),
                        Err(e) => {
                            tracing::debug!("making object tmpfiles ahead: {e:#}");
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::debug!("object tmpfiles not made ahead: {e}");
        }
        Filling(pool)
    }

    /// A tmpfile made ahead, if one is ready.
    pub(crate) fn take(&self) -> Option<OwnedFd> {
        self.lock().pop()
    }

    /// Makes no more, and closes those not taken (the file system frees them).
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<OwnedFd>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A pool being filled: dropping it stops the filling and closes what was not taken.
#[derive(Debug)]
pub(crate) struct Filling(pub(crate) Arc<TmpfilePool>);

impl Drop for Filling {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// How many descriptors the pool may hold: a quarter of the soft limit on open files
/// (the rest is the pull's: connections, staged parts, objects being written).
fn fd_room() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map_or(MAX_AHEAD, |n| usize::try_from(n / 4).unwrap_or(MAX_AHEAD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use composefs::fsverity::Sha256HashValue;

    fn repo(dir: &std::path::Path) -> Arc<Repository<Sha256HashValue>> {
        let (repo, _) = Repository::<Sha256HashValue>::init_path(
            rustix::fs::CWD,
            dir,
            composefs::repository::RepositoryConfig::default().set_insecure(),
        )
        .unwrap();
        Arc::new(repo)
    }

    #[test]
    fn makes_what_is_asked_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let filling = TmpfilePool::start(repo(dir.path()), 5);
        let pool = Arc::clone(&filling.0);
        let mut got = 0;
        for _ in 0..1000 {
            if pool.take().is_some() {
                got += 1;
            }
            if got == 5 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(got, 5, "the pool made {got} of 5 tmpfiles");
        assert!(pool.take().is_none(), "the pool made more than asked");
        drop(filling);
        assert!(TmpfilePool::empty().take().is_none());
    }
}
