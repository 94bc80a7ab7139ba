//! Resuming a pull: the commit table of a pull seeded from what the commit's resume
//! journal recovered, journaling everything inserted from now on. Data flows one way:
//! the journal recovers objects and a writer (`journal::load`), and this room hands
//! both to a [`CommitStreamBuilder`].

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use crate::store::commit_stream::CommitStreamBuilder;
use crate::store::journal::load::{self, Recovered, ResumeStats};
use crate::store::{Store, StoreError};

/// Opens (or starts) the journal of a pull of `commit`: returns a builder seeded with
/// every journaled object that still checks out, which journals everything inserted
/// from now on (or, when another process holds the journal, an empty builder that
/// journals nothing).
///
/// The journal is compacted on open (rewritten with only the records that passed, under
/// the current boot id) and then appended to.
pub(crate) fn open_builder<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: Checksum,
) -> Result<(CommitStreamBuilder<ObjectID>, ResumeStats), StoreError> {
    open_builder_in_boot(store, commit, &load::current_boot_id())
}

/// [`open_builder`] as if the machine's boot id were `boot` (tests simulate a reboot).
fn open_builder_in_boot<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: Checksum,
    boot: &[u8],
) -> Result<(CommitStreamBuilder<ObjectID>, ResumeStats), StoreError> {
    let Recovered {
        entries,
        writer,
        stats,
    } = load::open(store, &commit, boot)?;
    let builder = match writer {
        Some(writer) => CommitStreamBuilder::with_journal(commit, entries, writer),
        None => CommitStreamBuilder::new(commit),
    };
    Ok((builder, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;

    use cfsync_formats::file::{FileHeader, file_checksum};
    use cfsync_formats::journal::{self, Header, MAGIC, ObjectRecord};
    use composefs::fsverity::Sha256HashValue;

    use crate::store::journal::{journal_path, load_others, prune};
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
        let mut forged = MAGIC.to_vec();
        let algorithm = Sha256HashValue::ALGORITHM.to_string();
        let boot = load::current_boot_id();
        let header = Header {
            commit,
            algorithm: algorithm.as_bytes(),
            boot_id: &boot,
        };
        journal::encode_record(&mut forged, &journal::encode_header(&header)).unwrap();
        let rec = ObjectRecord {
            id: Checksum::of(b"something else"),
            external: None,
            data: b"not those bytes",
        };
        journal::encode_object(&mut forged, &rec).unwrap();
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
