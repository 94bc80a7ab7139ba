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
//! was resumed) reuses the objects of such journals too ([`load_others`]); `gc` deletes
//! the journals nobody resumes ([`prune`]).
//!
//! # For the routes that fill a builder
//! Nothing to do: [`CommitStreamBuilder::insert`] journals. Insert only verified objects,
//! skip what [`CommitStreamBuilder::contains`] already holds (resumed from the journal),
//! and call [`CommitStreamBuilder::flush_journal`] after a batch (a delta part) to put
//! it on disk at once rather than within [`FLUSH_INTERVAL`].
//!
//! # On disk
//! ```text
//! "CFSJRNL1"                                   magic (format version 1)
//! record(header)                                commit id, fs-verity algorithm, boot id
//! record(object)*                               one per object, in insertion order
//!
//! record  := u32 LE payload length, payload, [u8; 8] first 8 bytes of
//!            sha256(length ‖ payload)
//! header  := [u8; 32] commit, u8 n, n bytes algorithm ("fsverity-sha512-12"),
//!            u8 m, m bytes boot id (/proc/sys/kernel/random/boot_id, may be empty)
//! object  := u8 kind (0: no external object, 1: external), [u8; 32] OSTree id,
//!            for kind 1: u8 n, n bytes external object id (hex), then the stored bytes
//! ```
//! A record whose length or checksum does not hold ends the journal: a torn tail left by
//! `kill -9` (or a crash mid-write) is dropped, and so is everything after it.
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
//! thread every [`FLUSH_INTERVAL`], when the buffer exceeds [`FLUSH_BYTES`], when the
//! caller calls [`CommitStreamBuilder::flush_journal`] (the walker does before it waits
//! for the network), and when the builder is dropped. Written records are in the page
//! cache, so they survive the death of the process (`kill -9`, a panic, an abort): at
//! most the last [`FLUSH_INTERVAL`] of records is lost, and those objects are fetched
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

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::{FileHasher, decode_sized_archive_header, file_checksum};
use composefs::fsverity::FsVerityHashValue;
use composefs::repository::Repository;
use sha2::{Digest, Sha256};

use super::commit_stream::{CommitStreamBuilder, Entry, is_inline_size};
use super::{Store, StoreError};

const MAGIC: &[u8; 8] = b"CFSJRNL1";
/// Directory under cfsync's state directory holding the journals.
const DIR: &str = "partial";
/// Largest record accepted when loading (a metadata object is at most 10 MiB; a file
/// header with xattrs at most 10 MiB plus 128 bytes of inline content).
const MAX_RECORD: usize = 24 * 1024 * 1024;
/// Buffered bytes that trigger a write.
pub const FLUSH_BYTES: usize = 256 * 1024;
/// Longest time records stay buffered in memory.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
const KIND_INLINE: u8 = 0;
const KIND_EXTERNAL: u8 = 1;

/// The journal file of a pull of `commit` into `store`.
pub fn journal_path<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
) -> Result<PathBuf, StoreError> {
    Ok(store
        .state_dir()?
        .join(DIR)
        .join(format!("{commit}.journal")))
}

/// What loading a journal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeStats {
    /// Objects taken from the journal into the builder.
    pub loaded: u64,
    /// Records that failed a check (or came after a torn record) and were dropped.
    pub dropped: u64,
    /// Whether the journal was written during an earlier boot, so external objects were
    /// re-hashed.
    pub rehashed: bool,
    /// Whether another process holds the journal, so this pull runs without one.
    pub busy: bool,
}

/// The append side of a journal, owned by a [`CommitStreamBuilder`].
///
/// Records are encoded into a buffer; a small thread writes the buffer to the file every
/// [`FLUSH_INTERVAL`] (so that records never sit in memory longer than that, whatever
/// the caller does next), and so does an append that fills [`FLUSH_BYTES`], an explicit
/// flush, and dropping the writer.
///
/// Errors while appending never fail the pull: the journal is then abandoned (and
/// deleted), the pull goes on without it, and a warning is logged.
#[derive(Debug)]
pub struct JournalWriter {
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
        let ext = external_hex.unwrap_or("");
        let Ok(ext_len) = u8::try_from(ext.len()) else {
            self.fail("external object id too long");
            return;
        };
        let ext_part = if external_hex.is_some() {
            1 + ext.len()
        } else {
            0
        };
        let Ok(len) = u32::try_from(1 + 32 + ext_part + data.len()) else {
            self.fail("object too large for a journal record");
            return;
        };
        let start = self.buf.len();
        self.buf.extend_from_slice(&len.to_le_bytes());
        if external_hex.is_some() {
            self.buf.push(KIND_EXTERNAL);
            self.buf.extend_from_slice(&id.0);
            self.buf.push(ext_len);
            self.buf.extend_from_slice(ext.as_bytes());
        } else {
            self.buf.push(KIND_INLINE);
            self.buf.extend_from_slice(&id.0);
        }
        self.buf.extend_from_slice(data);
        let sum = record_sum(&self.buf[start..]);
        self.buf.extend_from_slice(&sum);
        if self.buf.len() >= FLUSH_BYTES {
            self.write_out();
        }
    }
}

impl JournalWriter {
    fn new(file: File, path: PathBuf, lock_path: PathBuf, lock_file: File) -> Self {
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

fn remove_file_if_exists(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn record_sum(len_and_payload: &[u8]) -> [u8; 8] {
    let d = Sha256::digest(len_and_payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    let start = out.len();
    // Payloads are bounded well below 4 GiB by the callers.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let sum = record_sum(&out[start..]);
    out.extend_from_slice(&sum);
}

/// Splits the next record off `rest`; `None` at the end or at a torn/corrupt record.
fn next_record<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD {
        return None;
    }
    let end = 4usize.checked_add(len)?;
    let sum = rest.get(end..end.checked_add(8)?)?;
    let framed = rest.get(..end)?;
    if record_sum(framed) != sum {
        return None;
    }
    let payload = framed.get(4..)?;
    *rest = rest.get(end + 8..)?;
    Some(payload)
}

fn current_boot_id() -> Vec<u8> {
    std::fs::read("/proc/sys/kernel/random/boot_id")
        .map(|mut b| {
            b.retain(|c| !c.is_ascii_whitespace());
            b.truncate(255);
            b
        })
        .unwrap_or_default()
}

fn header_payload<ObjectID: FsVerityHashValue>(commit: &Checksum, boot: &[u8]) -> Vec<u8> {
    let alg = ObjectID::ALGORITHM.to_string();
    let mut p = Vec::with_capacity(32 + 2 + alg.len() + boot.len());
    p.extend_from_slice(&commit.0);
    p.push(alg.len().min(255) as u8);
    p.extend_from_slice(&alg.as_bytes()[..alg.len().min(255)]);
    p.push(boot.len().min(255) as u8);
    p.extend_from_slice(&boot[..boot.len().min(255)]);
    p
}

/// Parses a header payload; returns the boot id when the commit and algorithm match.
fn parse_header<ObjectID: FsVerityHashValue>(p: &[u8], commit: &Checksum) -> Option<Vec<u8>> {
    let alg = ObjectID::ALGORITHM.to_string();
    if p.get(..32)? != commit.0.as_slice() {
        return None;
    }
    let n = usize::from(*p.get(32)?);
    if p.get(33..33 + n)? != alg.as_bytes() {
        return None;
    }
    let m = usize::from(*p.get(33 + n)?);
    let boot = p.get(34 + n..34 + n + m)?;
    if p.len() != 34 + n + m {
        return None;
    }
    Some(boot.to_vec())
}

/// One record as loaded, before it is checked.
struct Raw<'a> {
    id: Checksum,
    external: Option<&'a [u8]>,
    data: &'a [u8],
}

fn parse_object(p: &[u8]) -> Option<Raw<'_>> {
    let kind = *p.first()?;
    let id = Checksum::from_slice(p.get(1..33)?).ok()?;
    match kind {
        KIND_INLINE => Some(Raw {
            id,
            external: None,
            data: p.get(33..)?,
        }),
        KIND_EXTERNAL => {
            let n = usize::from(*p.get(33)?);
            Some(Raw {
                id,
                external: Some(p.get(34..34 + n)?),
                data: p.get(34 + n..)?,
            })
        }
        _ => None,
    }
}

/// Checks one record; returns the entry to seed the builder with, or why not.
fn check_record<ObjectID: FsVerityHashValue>(
    repo: &Repository<ObjectID>,
    objects_dir: &Path,
    raw: &Raw<'_>,
    rehash: bool,
) -> Result<Entry<ObjectID>, String> {
    let Some(ext_hex) = raw.external else {
        // Metadata (or the commit): its bytes hash to its id.
        if Checksum::of(raw.data) == raw.id {
            return Ok(Entry {
                data: raw.data.to_vec(),
                external: None,
            });
        }
        // A file stored inline: sized header plus content.
        let (header, content) = decode_sized_archive_header(raw.data)
            .map_err(|e| format!("not metadata, nor a file entry: {e}"))?;
        let inline_ok = header.is_symlink() && content.is_empty()
            || header.is_regular() && content.len() as u64 == header.size;
        if !inline_ok {
            return Err("inline file entry with a wrong content length".into());
        }
        let sum = file_checksum(&header, content).map_err(|e| e.to_string())?;
        if sum != raw.id {
            return Err(format!("content hashes to {sum}"));
        }
        return Ok(Entry {
            data: raw.data.to_vec(),
            external: None,
        });
    };
    let hex =
        std::str::from_utf8(ext_hex).map_err(|_| "external object id is not hex".to_owned())?;
    let obj = ObjectID::from_hex(hex).map_err(|e| format!("external object id {hex:?}: {e}"))?;
    let (header, rest) =
        decode_sized_archive_header(raw.data).map_err(|e| format!("file header: {e}"))?;
    if !header.is_regular() || !rest.is_empty() || is_inline_size::<ObjectID>(header.size) {
        return Err("external content recorded for a file that must be inline".into());
    }
    let fd = repo
        .open_object(&obj)
        .map_err(|e| format!("composefs object {hex}: {e:#}"))?;
    let mut file = File::from(fd);
    let size = file
        .metadata()
        .map_err(|e| format!("composefs object {hex}: {e}"))?
        .len();
    if size != header.size {
        unlink_damaged(objects_dir, &obj);
        return Err(format!(
            "composefs object {hex} holds {size} bytes, the header says {}",
            header.size
        ));
    }
    if rehash {
        let mut h = FileHasher::new(&header).map_err(|e| e.to_string())?;
        std::io::copy(&mut (&mut file).take(header.size), &mut h)
            .map_err(|e| format!("composefs object {hex}: reading: {e}"))?;
        let sum = h.finish();
        if sum != raw.id {
            unlink_damaged(objects_dir, &obj);
            return Err(format!("composefs object {hex}: content hashes to {sum}"));
        }
    }
    Ok(Entry {
        data: raw.data.to_vec(),
        external: Some(obj),
    })
}

/// Removes a composefs object whose content is not what its name says (lost writes after
/// a power failure), so that storing the right content again recreates it.
fn unlink_damaged<ObjectID: FsVerityHashValue>(objects_dir: &Path, obj: &ObjectID) {
    let path = objects_dir.join(obj.to_object_pathname());
    tracing::warn!("removing damaged composefs object {}", path.display());
    let _ = std::fs::remove_file(path);
}

/// Opens (or starts) the journal of a pull of `commit`: returns a builder seeded with
/// every journaled object that still checks out, which journals everything inserted
/// from now on.
///
/// The journal is compacted on open (rewritten with only the records that passed, under
/// the current boot id) and then appended to.
pub fn open_builder<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: Checksum,
) -> Result<(CommitStreamBuilder<ObjectID>, ResumeStats), StoreError> {
    open_builder_in_boot(store, commit, &current_boot_id())
}

/// [`open_builder`] as if the machine's boot id were `boot` (tests simulate a reboot).
fn open_builder_in_boot<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: Checksum,
    boot: &[u8],
) -> Result<(CommitStreamBuilder<ObjectID>, ResumeStats), StoreError> {
    let mut stats = ResumeStats::default();
    let dir = store.state_dir()?.join(DIR);
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let path = dir.join(format!("{commit}.journal"));
    let lock_path = dir.join(format!("{commit}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::io(&lock_path, e))?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            tracing::warn!(
                "{}: another cfsync process is pulling commit {commit} into this repository; pulling without a resume journal",
                lock_path.display()
            );
            stats.busy = true;
            return Ok((CommitStreamBuilder::new(commit), stats));
        }
        Err(e) => return Err(StoreError::io(&lock_path, e.into())),
    }

    let mut entries: BTreeMap<Checksum, Entry<ObjectID>> = BTreeMap::new();
    match std::fs::read(&path) {
        Ok(bytes) => load_into(store, &commit, &bytes, boot, &mut entries, &mut stats, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(&path, e)),
    }

    // Rewrite: header (this boot) plus every surviving record, then append to it.
    let mut out =
        Vec::with_capacity(64 + entries.values().map(|e| e.data.len() + 200).sum::<usize>());
    out.extend_from_slice(MAGIC);
    encode_record(&mut out, &header_payload::<ObjectID>(&commit, boot));
    let mut payload = Vec::new();
    for (id, e) in &entries {
        payload.clear();
        match &e.external {
            Some(obj) => {
                let hex = obj.to_hex();
                payload.push(KIND_EXTERNAL);
                payload.extend_from_slice(&id.0);
                payload.push(hex.len() as u8);
                payload.extend_from_slice(hex.as_bytes());
            }
            None => {
                payload.push(KIND_INLINE);
                payload.extend_from_slice(&id.0);
            }
        }
        payload.extend_from_slice(&e.data);
        encode_record(&mut out, &payload);
    }
    let file = crate::atomic::replace_with(&path, |f| f.write_all(&out))
        .map_err(|e| StoreError::io(&path, e))?;

    stats.loaded = entries.len() as u64;
    let writer = JournalWriter::new(file, path, lock_path, lock);
    Ok((
        CommitStreamBuilder::with_journal(commit, entries, writer),
        stats,
    ))
}

fn load_into<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
    bytes: &[u8],
    boot: &[u8],
    entries: &mut BTreeMap<Checksum, Entry<ObjectID>>,
    stats: &mut ResumeStats,
    may_rehash: bool,
) {
    let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        tracing::warn!("resume journal of {commit}: not a journal; starting over");
        return;
    };
    let Some(old_boot) = next_record(&mut rest).and_then(|h| parse_header::<ObjectID>(h, commit))
    else {
        tracing::warn!(
            "resume journal of {commit}: header is torn or for another commit/algorithm; starting over"
        );
        return;
    };
    let rehash = boot.is_empty() || old_boot != boot;
    if rehash && !may_rehash {
        return;
    }
    stats.rehashed = rehash;
    let objects_dir = store.path().join("objects");
    let repo = store.repo();
    while !rest.is_empty() {
        let Some(p) = next_record(&mut rest) else {
            // A torn tail: everything from here on is unreadable.
            stats.dropped += 1;
            break;
        };
        let Some(raw) = parse_object(p) else {
            stats.dropped += 1;
            continue;
        };
        if entries.contains_key(&raw.id) {
            continue;
        }
        match check_record(repo, &objects_dir, &raw, rehash) {
            Ok(entry) => {
                entries.insert(raw.id, entry);
            }
            Err(why) => {
                tracing::info!(
                    "resume journal of {commit}: dropping object {}: {why}",
                    raw.id
                );
                stats.dropped += 1;
            }
        }
    }
}

/// Objects verified by interrupted pulls of other commits than `except` (for instance a
/// pull of v2 killed, then the remote moved on to v3 before the next pull): a pull of
/// `except` reuses them instead of fetching them again. They are checked as on resume
/// (the journals are read, never written or locked; a record being appended by another
/// process is torn and ignored). Journals written during an earlier boot are skipped
/// rather than re-hashed on every pull; `gc` prunes them.
pub fn load_others<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    except: &Checksum,
) -> Result<BTreeMap<Checksum, Entry<ObjectID>>, StoreError> {
    let mut entries = BTreeMap::new();
    let boot = current_boot_id();
    if boot.is_empty() {
        return Ok(entries);
    }
    for (commit, path) in journals(store)? {
        if commit == *except {
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut stats = ResumeStats::default();
                load_into(
                    store,
                    &commit,
                    &bytes,
                    &boot,
                    &mut entries,
                    &mut stats,
                    false,
                );
            }
            Err(e) => tracing::debug!("{}: {e}", path.display()),
        }
    }
    Ok(entries)
}

/// Deletes the journal of `commit` if no process holds it (e.g. left behind when a pull
/// was killed after the commit was stored but before the journal was removed).
pub fn remove_stale<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
) -> Result<(), StoreError> {
    let dir = store.state_dir()?.join(DIR);
    let path = dir.join(format!("{commit}.journal"));
    if !path.exists() {
        return Ok(());
    }
    let lock_path = dir.join(format!("{commit}.lock"));
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::io(&lock_path, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let mut out = Vec::new();
        encode_record(&mut out, b"first");
        encode_record(&mut out, b"second");
        let whole = out.len();
        encode_record(&mut out, b"third, torn");
        for cut in whole..out.len() {
            let mut rest = &out[..cut];
            assert_eq!(next_record(&mut rest), Some(&b"first"[..]));
            assert_eq!(next_record(&mut rest), Some(&b"second"[..]));
            assert_eq!(next_record(&mut rest), None, "cut at {cut}");
        }
        let mut rest = &out[..];
        let mut n = 0;
        while next_record(&mut rest).is_some() {
            n += 1;
        }
        assert_eq!((n, rest.len()), (3, 0));
    }

    #[test]
    fn a_flipped_byte_ends_the_journal() {
        let mut out = Vec::new();
        encode_record(&mut out, b"payload one");
        encode_record(&mut out, b"payload two");
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            let mut rest = &bad[..];
            let first = next_record(&mut rest);
            let second = next_record(&mut rest);
            // Either record may be lost, but nothing wrong is ever returned.
            assert!(
                first.is_none() || first == Some(&b"payload one"[..]),
                "flip at {i}"
            );
            assert!(
                second.is_none() || second == Some(&b"payload two"[..]),
                "flip at {i}"
            );
            assert!(
                first.is_none() || second.is_none(),
                "flip at {i} went unnoticed"
            );
        }
    }

    use cfsync_formats::file::FileHeader;
    use composefs::fsverity::Sha256HashValue;

    use crate::store::{AnyStore, HashKind, ObjectLookup};

    fn store(dir: &Path) -> Store<Sha256HashValue> {
        match AnyStore::open_or_init(&dir.join("repo"), HashKind::Sha256)
            .unwrap()
            .0
        {
            AnyStore::Sha256(s) => s,
            AnyStore::Sha512(_) => unreachable!(),
        }
    }

    fn header(size: u64) -> FileHeader {
        FileHeader {
            size,
            uid: 0,
            gid: 0,
            mode: 0o100_644,
            ..FileHeader::default()
        }
    }

    /// Inserts a metadata object, an inline file and an external file; returns their
    /// ids (external last) and the external content.
    fn fill(
        s: &Store<Sha256HashValue>,
        b: &mut CommitStreamBuilder<Sha256HashValue>,
    ) -> Vec<Checksum> {
        let meta = b"a metadata object".to_vec();
        let meta_id = Checksum::of(&meta);
        b.insert(meta_id, meta, None);
        let small = b"tiny".to_vec();
        let small_id = file_checksum(&header(4), &small).unwrap();
        let e = crate::ingest::ingest_file(s.repo(), &small_id, &header(4), &small[..]).unwrap();
        assert!(e.external.is_none());
        b.insert(small_id, e.data, e.external);
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let big_id = file_checksum(&header(big.len() as u64), &big).unwrap();
        let e = crate::ingest::ingest_file(s.repo(), &big_id, &header(big.len() as u64), &big[..])
            .unwrap();
        assert!(e.external.is_some());
        b.insert(big_id, e.data, e.external);
        vec![meta_id, small_id, big_id]
    }

    #[test]
    fn a_journal_seeds_the_next_builder_and_is_removed_at_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let commit = Checksum::of(b"commit");
        let (mut b, st) = open_builder(&s, commit).unwrap();
        assert_eq!(st, ResumeStats::default());
        assert!(b.is_journaled());
        let ids = fill(&s, &mut b);
        drop(b); // as a failed pull does: buffered records are written

        let (mut b, st) = open_builder(&s, commit).unwrap();
        assert_eq!((st.loaded, st.dropped, st.rehashed), (3, 0, false));
        for id in &ids {
            assert!(b.contains(id), "{id} not resumed");
        }
        let path = journal_path(&s, &commit).unwrap();
        assert!(path.exists());
        b.remove_journal().unwrap();
        assert!(!path.exists());
        let (b, st) = open_builder(&s, commit).unwrap();
        assert_eq!(st.loaded, 0);
        assert!(b.is_empty());
    }

    #[test]
    fn a_second_process_gets_no_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let commit = Checksum::of(b"commit");
        let (_held, _) = open_builder(&s, commit).unwrap();
        // flock locks belong to the open file description, so a second open conflicts
        // even within one process.
        let (b, st) = open_builder(&s, commit).unwrap();
        assert!(st.busy);
        assert!(!b.is_journaled());
    }

    #[test]
    fn torn_tails_bad_records_and_missing_objects_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let commit = Checksum::of(b"commit");
        let (mut b, _) = open_builder(&s, commit).unwrap();
        let ids = fill(&s, &mut b);
        let ext = b.lookup(&ids[2]).unwrap().1.unwrap().clone();
        drop(b);
        let path = journal_path(&s, &commit).unwrap();
        let whole = std::fs::read(&path).unwrap();

        // A torn tail: the last record (the external file) is cut anywhere.
        for cut in [whole.len() - 1, whole.len() - 8, whole.len() - 100] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (b, st) = open_builder(&s, commit).unwrap();
            assert_eq!((st.loaded, st.dropped), (2, 1), "cut at {cut}");
            assert!(!b.contains(&ids[2]));
            drop(b);
        }

        // A record whose bytes no longer hash to its id, with a valid frame.
        let mut forged = Vec::new();
        forged.extend_from_slice(MAGIC);
        encode_record(
            &mut forged,
            &header_payload::<Sha256HashValue>(&commit, &current_boot_id()),
        );
        let mut p = vec![KIND_INLINE];
        p.extend_from_slice(&Checksum::of(b"something else").0);
        p.extend_from_slice(b"not those bytes");
        encode_record(&mut forged, &p);
        std::fs::write(&path, &forged).unwrap();
        let (b, st) = open_builder(&s, commit).unwrap();
        assert_eq!((st.loaded, st.dropped), (0, 1));
        drop(b);

        // The external object was removed (e.g. by a gc) after it was journaled.
        std::fs::write(&path, &whole).unwrap();
        let obj = s.path().join("objects").join(ext.to_object_pathname());
        std::fs::remove_file(&obj).unwrap();
        let (b, st) = open_builder(&s, commit).unwrap();
        assert_eq!((st.loaded, st.dropped), (2, 1));
        assert!(!b.contains(&ids[2]));
        drop(b);

        // A journal of another commit is ignored.
        std::fs::write(journal_path(&s, &Checksum::of(b"other")).unwrap(), &whole).unwrap();
        let (b, st) = open_builder(&s, Checksum::of(b"other")).unwrap();
        assert_eq!(st.loaded, 0);
        assert!(b.is_empty());
    }

    #[test]
    fn after_a_reboot_external_content_is_rehashed_and_damage_unlinked() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let commit = Checksum::of(b"commit");
        let (mut b, _) = open_builder_in_boot(&s, commit, b"boot-1").unwrap();
        let ids = fill(&s, &mut b);
        let ext = b.lookup(&ids[2]).unwrap().1.unwrap().clone();
        drop(b);

        // Same boot: cheap checks only.
        let (b, st) = open_builder_in_boot(&s, commit, b"boot-1").unwrap();
        assert_eq!((st.loaded, st.rehashed), (3, false));
        drop(b);
        // The compacted journal carries boot-2 after this open, and the content is fine.
        let (b, st) = open_builder_in_boot(&s, commit, b"boot-2").unwrap();
        assert_eq!((st.loaded, st.dropped, st.rehashed), (3, 0, true));
        drop(b);

        // Lost writes: same size, other bytes. Only a rehash can tell.
        let obj = s.path().join("objects").join(ext.to_object_pathname());
        std::fs::remove_file(&obj).unwrap();
        std::fs::write(&obj, vec![0u8; 10_000]).unwrap();
        let (b, st) = open_builder_in_boot(&s, commit, b"boot-2").unwrap();
        assert_eq!(
            (st.loaded, st.rehashed),
            (3, false),
            "same boot trusts the page cache"
        );
        drop(b);
        let (b, st) = open_builder_in_boot(&s, commit, b"boot-3").unwrap();
        assert_eq!((st.loaded, st.dropped, st.rehashed), (2, 1, true));
        assert!(!b.contains(&ids[2]));
        assert!(
            !obj.exists(),
            "the damaged object must be unlinked so that it is stored again"
        );
    }

    #[test]
    fn prune_removes_unheld_journals_except_the_kept_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let (a, b, c) = (Checksum::of(b"a"), Checksum::of(b"b"), Checksum::of(b"c"));
        for x in [a, b, c] {
            let (mut bl, _) = open_builder(&s, x).unwrap();
            bl.insert(Checksum::of(b"m"), b"m".to_vec(), None);
        }
        let (_held, _) = open_builder(&s, c).unwrap();
        assert_eq!(prune(&s, &[a]).unwrap(), 1);
        assert!(journal_path(&s, &a).unwrap().exists());
        assert!(!journal_path(&s, &b).unwrap().exists());
        assert!(
            journal_path(&s, &c).unwrap().exists(),
            "a journal in use must stay"
        );
    }

    #[test]
    fn other_commits_journals_are_loaded_for_reuse_within_one_boot() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let (old, new) = (Checksum::of(b"old"), Checksum::of(b"new"));
        let (mut b, _) = open_builder(&s, old).unwrap();
        let ids = fill(&s, &mut b);
        drop(b);
        let (mut b, _) = open_builder(&s, new).unwrap();
        b.insert(Checksum::of(b"n"), b"n".to_vec(), None);
        drop(b);
        let others = load_others(&s, &new).unwrap();
        assert_eq!(others.keys().copied().collect::<Vec<_>>(), {
            let mut v = ids.clone();
            v.sort();
            v
        });
        assert!(others[&ids[2]].external.is_some());
        assert!(
            load_others(&s, &old)
                .unwrap()
                .contains_key(&Checksum::of(b"n"))
        );
        // Written during another boot: skipped, not re-hashed on every pull.
        let (b, _) = open_builder_in_boot(&s, old, b"some other boot").unwrap();
        drop(b);
        assert!(load_others(&s, &new).unwrap().is_empty());
    }
}
