//! The resume journal: an append-only record of every verified object of a commit that
//! is being pulled, so that an interrupted pull (error, Ctrl-C, `kill -9`) resumes where
//! it stopped instead of fetching everything again.
//!
//! While a pull of commit `C` runs, every object inserted into its
//! [`CommitStreamBuilder`] (by the object walker, by reuse from stored commits, or by the
//! static-delta route) is appended to `<repo>/cfsync/partial/<C>.journal`: the object's
//! stored bytes (metadata GVariant, or sized file header plus inline content) and, for a
//! large file, the id of the composefs object holding its content. The next pull of `C`
//! loads the journal, checks every record again, seeds the builder with what passes and
//! fetches only the rest. The journal is deleted once the commit stream and the ref are
//! written. A pull of another commit (the remote moved on before the interrupted pull
//! was resumed) reuses the objects of such journals too (`load_others`); `gc` deletes
//! the journals nobody resumes ([`prune`]).
//!
//! # Rooms
//! `load.rs` opens a journal and recovers its objects (checked by `check.rs`), returning
//! them with a `writer.rs` `JournalWriter` for what comes next; the journal knows
//! nothing of the commit table, which `store::resume` seeds from them.
//!
//! # For the routes that fill a builder
//! Nothing to do: [`CommitStreamBuilder::insert`] journals. Insert only verified objects,
//! skip what [`CommitStreamBuilder::contains`] already holds (resumed from the journal),
//! and call [`CommitStreamBuilder::flush_journal`] after a batch (a delta part) to put
//! it on disk at once rather than within `FLUSH_INTERVAL`.
//!
//! # On disk
//! `"CFSJRNL1"`, a header record (commit, fs-verity algorithm, boot id), then one record
//! per object in insertion order; each record carries its length and a checksum. The
//! byte format is [`cfsync_formats::journal`]. A record whose length or checksum does not
//! hold ends the journal: a torn tail left by `kill -9` (or a crash mid-write) is
//! dropped, and so is everything after it.
//!
//! # What is checked when a journal is loaded
//! - header: same commit, same fs-verity algorithm as the repository;
//! - metadata and inline files: the sha256 of the bytes (for a file: of its bare header
//!   and inline content) must equal the object id, exactly as when fetched;
//! - files with external content: the header must parse as a regular file too large to
//!   be inline, and the composefs object must exist (opened through the repository, so
//!   fs-verity is enforced when the repository requires it) with the declared size. When
//!   the journal was written during an earlier boot (or the boot id is unknown), the
//!   content is also read back and its OSTree checksum recomputed; a mismatch unlinks the
//!   damaged composefs object so that the refetch stores it again.
//!
//! # Durability
//! Records are buffered in memory and written to the file (without fsync) by a flusher
//! thread every `FLUSH_INTERVAL`, when the buffer exceeds `FLUSH_BYTES`, when the
//! caller calls [`CommitStreamBuilder::flush_journal`] (the walker does before it waits
//! for the network), and when the builder is dropped. Written records are in the page
//! cache, so they survive the death of the process (`kill -9`, a panic, an abort): at
//! most the last `FLUSH_INTERVAL` of records is lost, and those objects are fetched
//! again.
//!
//! Nothing is fsynced, neither the journal nor the composefs objects it names (the
//! `composefs` crate syncs objects only when a stream is written). After a power loss
//! or kernel crash, the file system may hold a journal whose tail is missing or torn
//! (dropped by the record checksums) or composefs objects whose data never reached the
//! disk (a size of 0, or garbage). The boot id in the header detects that a reboot
//! happened in between, and then every external object is read back and re-hashed
//! before it is trusted, so such damage costs a refetch, never a wrong image. Within one
//! boot, the page cache is the single source of truth and the cheap checks suffice.
//!
//! # Concurrency
//! An exclusive `flock` on `<C>.lock` is held while the journal is open. A second
//! process pulling the same commit into the same repository finds it taken and pulls
//! without a journal (it neither reads nor writes the other's records).
//!
//! [`CommitStreamBuilder`]: crate::store::CommitStreamBuilder
//! [`CommitStreamBuilder::insert`]: crate::store::CommitStreamBuilder::insert
//! [`CommitStreamBuilder::contains`]: crate::store::CommitStreamBuilder::contains
//! [`CommitStreamBuilder::flush_journal`]: crate::store::CommitStreamBuilder::flush_journal

mod check;
pub(crate) mod load;
pub(crate) mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use super::{Store, StoreError};

pub(crate) use load::load_others;

/// Directory under cfsync's state directory holding the journals.
const DIR: &str = "partial";

/// The journal file of a pull of `commit` into `store`.
#[cfg(test)]
pub(crate) fn journal_path<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
) -> Result<PathBuf, StoreError> {
    Ok(store
        .state_dir()?
        .join(DIR)
        .join(format!("{commit}.journal")))
}

/// Opens (creating it) the lock file of `commit`'s journal in `dir`; a pull holds an
/// exclusive `flock` on it while it appends to the journal.
pub(super) fn open_lock(dir: &Path, commit: &Checksum) -> Result<(File, PathBuf), StoreError> {
    let path = dir.join(format!("{commit}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    Ok((lock, path))
}

fn remove_file_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Deletes the journal of `commit` if no process holds it (e.g. left behind when a pull
/// was killed after the commit was stored but before the journal was removed).
pub(crate) fn remove_stale<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
) -> Result<(), StoreError> {
    let dir = store.state_dir()?.join(DIR);
    let path = dir.join(format!("{commit}.journal"));
    if !path.exists() {
        return Ok(());
    }
    let (lock, lock_path) = open_lock(&dir, commit)?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(());
    }
    remove_file_if_exists(&path)?;
    remove_file_if_exists(&lock_path)
}

/// Deletes every journal no process holds, except those of `keep`; returns how many were
/// deleted. For `gc`: a journal of a commit that will not be pulled again (the remote
/// moved on) is dead weight, and its content objects are unreferenced anyway.
pub fn prune<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    keep: &[Checksum],
) -> Result<u64, StoreError> {
    let mut removed = 0;
    for (commit, path) in journals(store)? {
        if keep.contains(&commit) {
            continue;
        }
        remove_stale(store, &commit)?;
        if !path.exists() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The journals in the repository: (commit, path), in directory order.
fn journals<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
) -> Result<Vec<(Checksum, PathBuf)>, StoreError> {
    let dir = store.state_dir()?.join(DIR);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(&dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| StoreError::io(&dir, e))?;
        let name = ent.file_name();
        if let Some(commit) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".journal"))
            .and_then(|h| h.parse::<Checksum>().ok())
        {
            out.push((commit, ent.path()));
        }
    }
    Ok(out)
}
