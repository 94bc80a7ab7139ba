//! Background writeback during a pull.
//!
//! composefs makes a commit stream visible only after a `syncfs` of the repository (its
//! crash barrier: no stream may name objects that are not on disk). Left to the end, that
//! barrier writes out every object of the pull at once, with nothing else to do
//! meanwhile: tens of milliseconds per hundred MB, serial. A [`BackgroundFlush`] runs
//! `syncfs` every [`FLUSH_INTERVAL`] while objects are fetched, so the writeback overlaps
//! the network and the hashing, and the final barrier finds little left. It changes no
//! guarantee: the barrier still runs, and a flush only writes earlier what would have
//! been written anyway.
//!
//! The flushes use a descriptor of their own: the kernel reports a writeback error once
//! per open file, so sharing composefs's descriptor would let a background flush consume
//! the error the barrier must see. A flush error is also kept and returned by
//! [`BackgroundFlush::finish`], so the pull fails before the barrier.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

/// Time between two background flushes.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct State {
    stop: bool,
    error: Option<std::io::Error>,
}

/// A thread that flushes the repository's file system until finished or dropped.
#[derive(Debug)]
pub(crate) struct BackgroundFlush {
    state: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundFlush {
    /// Starts flushing the file system of the repository at `path`: at once, then every
    /// [`FLUSH_INTERVAL`]. When the directory cannot be opened or the thread cannot be
    /// started, nothing is flushed early (the final barrier still is).
    pub(crate) fn start(path: &Path) -> Self {
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let fd = match rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::debug!("background flush not started: {}: {e}", path.display());
                return Self {
                    state,
                    thread: None,
                };
            }
        };
        let shared = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("cfsync-flush".into())
            .spawn(move || {
                let (lock, cvar) = &*shared;
                loop {
                    // First at once: started after a delta, whose objects wait to be
                    // written, the flush overlaps the image build that follows.
                    // Not under the lock: a flush may take a while.
                    if let Err(e) = rustix::fs::syncfs(&fd) {
                        if let Ok(mut s) = lock.lock() {
                            s.error.get_or_insert(e.into());
                        }
                        return;
                    }
                    let Ok(guard) = lock.lock() else { return };
                    let Ok((guard, _)) =
                        cvar.wait_timeout_while(guard, FLUSH_INTERVAL, |s| !s.stop)
                    else {
                        return;
                    };
                    if guard.stop {
                        return;
                    }
                }
            });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::debug!("background flush not started: {e}");
                None
            }
        };
        Self { state, thread }
    }

    /// Stops the thread (waiting for a flush under way) and returns the error of a
    /// failed flush, if any: the data it was writing may not be on disk.
    pub(crate) fn finish(mut self) -> Result<(), std::io::Error> {
        self.stop();
        let (lock, _) = &*self.state;
        match lock.lock() {
            Ok(mut s) => s.error.take().map_or(Ok(()), Err),
            Err(_) => Ok(()),
        }
    }

    fn stop(&mut self) {
        let (lock, cvar) = &*self.state;
        if let Ok(mut s) = lock.lock() {
            s.stop = true;
        }
        cvar.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BackgroundFlush {
    /// Stops the thread, waiting for a flush under way (the thread holds no lock of the
    /// repository, but nothing should outlive the pull that started it).
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        let flush = BackgroundFlush::start(dir.path());
        std::thread::sleep(FLUSH_INTERVAL * 3);
        flush.finish().unwrap();
    }

    #[test]
    fn a_missing_directory_flushes_nothing_and_fails_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let flush = BackgroundFlush::start(&dir.path().join("absent"));
        assert!(flush.thread.is_none());
        flush.finish().unwrap();
    }
}
