//! Background writeback during a pull.
//!
//! composefs makes a commit stream visible only after a `syncfs` of the repository (its
//! crash barrier: no stream may name objects that are not on disk). Left to the end, that
//! barrier writes out every object of the pull at once, with nothing else to do
//! meanwhile: tens of milliseconds per hundred MB, serial. A [`BackgroundFlush`] runs the
//! same `syncfs` every [`FLUSH_INTERVAL`] while content is being fetched, so the writeback
//! overlaps the network and the hashing, and the final barrier finds little left. It
//! changes no guarantee: the barrier still runs, and a flush only writes earlier what
//! would have been written anyway.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;

/// Time between two background flushes.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// A thread that flushes the repository's file system until dropped.
#[derive(Debug)]
pub struct BackgroundFlush {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl BackgroundFlush {
    /// Starts flushing `repo`'s file system every [`FLUSH_INTERVAL`]. When the thread
    /// cannot be started, nothing is flushed early (the final barrier still is).
    pub fn start<ObjectID: FsVerityHashValue>(repo: &Arc<Repository<ObjectID>>) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (repo, flag) = (Arc::clone(repo), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name("cfsync-flush".into())
            .spawn(move || {
                let (lock, cvar) = &*flag;
                let Ok(mut stopped) = lock.lock() else { return };
                loop {
                    match cvar.wait_timeout(stopped, FLUSH_INTERVAL) {
                        Ok((s, _)) => stopped = s,
                        Err(_) => return,
                    }
                    if *stopped {
                        return;
                    }
                    // Not under the lock: a flush may take a while.
                    drop(stopped);
                    if let Err(e) = repo.sync() {
                        tracing::debug!("background flush: {e:#}");
                    }
                    let Ok(s) = lock.lock() else { return };
                    stopped = s;
                }
            });
        if let Err(e) = spawned {
            tracing::debug!("background flush not started: {e}");
        }
        Self { stop }
    }
}

impl Drop for BackgroundFlush {
    /// Stops the thread (a flush under way finishes on its own; nothing waits for it).
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        if let Ok(mut s) = lock.lock() {
            *s = true;
        }
        cvar.notify_all();
    }
}
