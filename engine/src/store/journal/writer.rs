//! [`JournalWriter`]: appends records to an open journal, buffered in memory and written
//! out by a small flusher thread (see the module header of `super` on durability).

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::journal;

use super::remove_file_if_exists;
use crate::store::StoreError;

/// Buffered bytes that trigger a write.
pub(crate) const FLUSH_BYTES: usize = 256 * 1024;
/// Longest time records stay buffered in memory.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// The append side of a journal (owned by the commit's
/// [`crate::store::CommitStreamBuilder`], which knows nothing else of the journal).
///
/// Records are encoded into a buffer; a small thread writes the buffer to the file every
/// [`FLUSH_INTERVAL`] (so that records never sit in memory longer than that, whatever
/// the caller does next), and so does an append that fills [`FLUSH_BYTES`], an explicit
/// flush, and dropping the writer.
///
/// Errors while appending never fail the pull: the journal is then abandoned (and
/// deleted), the pull goes on without it, and a warning is logged.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    sink: Arc<Mutex<Sink>>,
    flusher: Arc<Flusher>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    lock_path: PathBuf,
    // Held for the flock; closed (unlocking) when the writer is dropped.
    _lock: File,
}

/// The buffer and the file, shared with the flusher thread.
#[derive(Debug)]
struct Sink {
    file: Option<File>,
    path: PathBuf,
    buf: Vec<u8>,
    /// Bytes of the file known to hold whole records (where a failed write is cut back
    /// to).
    good: u64,
}

#[derive(Debug, Default)]
struct Flusher {
    stop: Mutex<bool>,
    wake: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sink {
    fn write_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Some(file) = self.file.as_mut() {
            match file.write_all(&self.buf) {
                Ok(()) => self.good = self.good.saturating_add(self.buf.len() as u64),
                // A write that failed half-way (a full disk) leaves a torn record at the
                // end: cut it off and keep the records before it, which the next pull
                // resumes from; journal nothing more.
                Err(e) if file.set_len(self.good).is_ok() => {
                    tracing::warn!(
                        "resume journal {}: writing: {e}; keeping the {} bytes of records \
                         written before, journaling nothing more (an interruption now \
                         refetches what is verified from here on)",
                        self.path.display(),
                        self.good
                    );
                    self.file = None;
                }
                Err(e) => self.fail(&format!("writing: {e}")),
            }
        }
        self.buf.clear();
    }

    fn fail(&mut self, why: &str) {
        tracing::warn!(
            "resume journal {}: {why}; continuing without it (an interruption now restarts this commit's fetch)",
            self.path.display()
        );
        self.file = None;
        self.buf.clear();
        // A write that failed half-way may have left a torn record in the middle of the
        // file, which would hide every record after it: remove the journal.
        let _ = std::fs::remove_file(&self.path);
    }

    fn append(&mut self, id: &Checksum, data: &[u8], external_hex: Option<&str>) {
        if self.file.is_none() {
            return;
        }
        let rec = journal::ObjectRecord {
            id: *id,
            external: external_hex.map(str::as_bytes),
            data,
        };
        if let Err(e) = journal::encode_object(&mut self.buf, &rec) {
            self.fail(&e.to_string());
            return;
        }
        if self.buf.len() >= FLUSH_BYTES {
            self.write_out();
        }
    }
}

impl JournalWriter {
    pub(super) fn new(file: File, path: PathBuf, lock_path: PathBuf, lock_file: File) -> Self {
        // Appends go to the end of what was written so far.
        let good = file.metadata().map(|m| m.len()).unwrap_or(0);
        let sink = Arc::new(Mutex::new(Sink {
            file: Some(file),
            path: path.clone(),
            buf: Vec::with_capacity(FLUSH_BYTES + 64 * 1024),
            good,
        }));
        let flusher = Arc::new(Flusher::default());
        let thread = {
            let (sink, flusher) = (Arc::clone(&sink), Arc::clone(&flusher));
            std::thread::Builder::new()
                .name("cfsync-journal".into())
                .spawn(move || {
                    let mut stop = lock(&flusher.stop);
                    while !*stop {
                        stop = flusher
                            .wake
                            .wait_timeout(stop, FLUSH_INTERVAL)
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .0;
                        lock(&sink).write_out();
                    }
                })
        };
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                // Records are then written when the buffer fills, on explicit flushes
                // and at the end: a kill loses more, nothing else changes.
                tracing::warn!("resume journal {}: no flusher thread: {e}", path.display());
                None
            }
        };
        Self {
            sink,
            flusher,
            thread,
            path,
            lock_path,
            _lock: lock_file,
        }
    }

    /// Appends one object (buffered).
    pub(crate) fn append(&mut self, id: &Checksum, data: &[u8], external_hex: Option<&str>) {
        lock(&self.sink).append(id, data, external_hex);
    }

    /// Writes the buffered records to the file (no fsync).
    pub(crate) fn flush(&mut self) {
        lock(&self.sink).write_out();
    }

    fn stop_flusher(&mut self) {
        if let Some(t) = self.thread.take() {
            *lock(&self.flusher.stop) = true;
            self.flusher.wake.notify_all();
            let _ = t.join();
        }
    }

    /// Deletes the journal (the commit is stored).
    pub(crate) fn remove(mut self) -> Result<(), StoreError> {
        self.stop_flusher();
        {
            let mut sink = lock(&self.sink);
            sink.file = None;
            sink.buf.clear();
        }
        remove_file_if_exists(&self.path)?;
        // Unlink the lock file while holding the lock: a process that opened it before
        // the unlink locks an orphaned inode and then finds no journal, which is fine.
        remove_file_if_exists(&self.lock_path)
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.stop_flusher();
        lock(&self.sink).write_out();
    }
}
