//! Opening a journal: take its lock, read back every record that still checks out,
//! compact the file (rewritten with only those records, under the current boot id) and
//! hand back the recovered objects with a [`JournalWriter`] appending to it. Also reads
//! the journals of other commits for reuse ([`load_others`]).

use std::collections::BTreeMap;
use std::io::Write;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::journal::{self, Header, MAGIC};
use composefs::fsverity::FsVerityHashValue;

use super::check::check_record;
use super::writer::JournalWriter;
use super::{DIR, journals, open_lock};
use crate::store::object::Entry;
use crate::store::{Store, StoreError};

/// What loading a journal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResumeStats {
    /// Objects taken from the journal into the builder.
    pub(crate) loaded: u64,
    /// Records that failed a check (or came after a torn record) and were dropped.
    pub(crate) dropped: u64,
    /// Whether the journal was written during an earlier boot, so external objects were
    /// re-hashed.
    pub(crate) rehashed: bool,
    /// Whether another process holds the journal, so this pull runs without one.
    pub(crate) busy: bool,
}

/// What opening the journal of a commit yields.
#[derive(Debug)]
pub(crate) struct Recovered<ObjectID> {
    /// Every journaled object that still checks out.
    pub(crate) entries: BTreeMap<Checksum, Entry<ObjectID>>,
    /// Appends to the compacted journal; `None` when another process holds it.
    pub(crate) writer: Option<JournalWriter>,
    /// What was loaded and dropped.
    pub(crate) stats: ResumeStats,
}

/// The boot id of the running system (empty when unknown).
pub(crate) fn current_boot_id() -> Vec<u8> {
    std::fs::read("/proc/sys/kernel/random/boot_id")
        .map(|mut b| {
            b.retain(|c| !c.is_ascii_whitespace());
            b.truncate(255);
            b
        })
        .unwrap_or_default()
}

/// Opens (or starts) the journal of a pull of `commit`, as if the machine's boot id were
/// `boot`: returns every journaled object that still checks out and a writer for what
/// comes next.
///
/// The journal is compacted on open (rewritten with only the records that passed, under
/// the current boot id) and then appended to.
pub(crate) fn open<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
    boot: &[u8],
) -> Result<Recovered<ObjectID>, StoreError> {
    let mut stats = ResumeStats::default();
    let mut entries: BTreeMap<Checksum, Entry<ObjectID>> = BTreeMap::new();
    let dir = store.state_dir()?.join(DIR);
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let path = dir.join(format!("{commit}.journal"));
    let (lock, lock_path) = open_lock(&dir, commit)?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            tracing::warn!(
                "{}: another cfsync process is pulling commit {commit} into this repository; pulling without a resume journal",
                lock_path.display()
            );
            stats.busy = true;
            return Ok(Recovered {
                entries,
                writer: None,
                stats,
            });
        }
        Err(e) => return Err(StoreError::io(&lock_path, e.into())),
    }

    match std::fs::read(&path) {
        Ok(bytes) => load_into(store, commit, &bytes, boot, &mut entries, &mut stats, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(&path, e)),
    }

    // Rewrite: header (this boot) plus every surviving record, then append to it.
    let mut out = Vec::with_capacity(
        64 + entries
            .values()
            .map(|e| journal::framed_len(e.data.len() + 200))
            .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    let algorithm = ObjectID::ALGORITHM.to_string();
    let header = Header {
        commit: *commit,
        algorithm: algorithm.as_bytes(),
        boot_id: boot,
    };
    let encoding = |e: journal::JournalError| StoreError::Format(e.to_string());
    journal::encode_record(&mut out, &journal::encode_header(&header)).map_err(encoding)?;
    for (id, e) in &entries {
        let hex = e.external.as_ref().map(|obj| obj.to_hex());
        let rec = journal::ObjectRecord {
            id: *id,
            external: hex.as_deref().map(str::as_bytes),
            data: &e.data,
        };
        // Every entry was decoded from such a record, so it encodes again.
        journal::encode_object(&mut out, &rec).map_err(encoding)?;
    }
    let file = crate::atomic::replace_with(&path, |f| f.write_all(&out))
        .map_err(|e| StoreError::io(&path, e))?;

    stats.loaded = entries.len() as u64;
    Ok(Recovered {
        entries,
        writer: Some(JournalWriter::new(file, path, lock_path, lock)),
        stats,
    })
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
    let algorithm = ObjectID::ALGORITHM.to_string();
    let Some(old_boot) = journal::next_record(&mut rest)
        .and_then(journal::decode_header)
        .filter(|h| h.commit == *commit && h.algorithm == algorithm.as_bytes())
        .map(|h| h.boot_id)
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
        let Some(p) = journal::next_record(&mut rest) else {
            // A torn tail: everything from here on is unreadable.
            stats.dropped += 1;
            break;
        };
        let Some(raw) = journal::decode_object(p) else {
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
pub(crate) fn load_others<ObjectID: FsVerityHashValue>(
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
