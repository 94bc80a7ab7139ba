//! The object-by-object route: walk a commit's trees, reuse what the store holds, fetch
//! the rest with many requests in flight, verify each object, collect the commit table.
//!
//! Metadata objects are fetched before content, dirtrees first (each one names the next
//! level), then dirmetas (leaves), so that the tree is discovered quickly and the
//! in-flight window stays full; an HTTP source also lets them overtake file requests
//! waiting for a slot (its urgent lane). A dirtree's children are queued as soon as it
//! arrives.
//!
//! File sizes are not known before the fetch (archive dirtrees carry names only), so file
//! objects are ordered by what the names say ([`FileQueue`]): those likely large (shared
//! libraries, programs in `bin`, `sbin`, `libexec`, message catalogs, kernels) are
//! interleaved with the others in proportion, so that every window of requests carries
//! some bulk for the link while the many small files pay their round trips, and neither
//! kind is left for a tail of its own (small files alone leave a fast link idle, large
//! ones alone the window).
//!
//! Each object's sha256 is checked before it enters the table; content goes straight
//! into the composefs object store through [`crate::ingest`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::dirtree::DirTreeRef;
use cfsync_formats::object::ObjectType;
use composefs::fsverity::FsVerityHashValue;
use futures::future::BoxFuture;

use crate::error::PullError;
use crate::limits::MAX_COMMIT_OBJECTS;
use crate::progress::{Cancel, Event, Reporter, Tracker};
use crate::store::Store;
use crate::store::commit_stream::{CommitStream, CommitStreamBuilder, Entry, ObjectLookup};
use crate::store::index::ObjectIndex;

/// Where the walker gets objects it does not hold (defined with the fetching itself;
/// the delta route's fallback objects come through it too).
pub(crate) use crate::fetch::ObjectSource;

/// What the walk did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WalkStats {
    /// Objects fetched from the source.
    pub(crate) fetched: u64,
    /// Objects found in the store and reused.
    pub(crate) reused: u64,
}

enum Done<ObjectID> {
    Meta(Checksum, ObjectType, Vec<u8>),
    File(Checksum, Entry<ObjectID>),
}

/// Reuse of objects held by commits already in the store.
pub(crate) struct Reuse<'a, ObjectID: FsVerityHashValue> {
    store: &'a Store<ObjectID>,
    index: &'a ObjectIndex,
    loaded: HashMap<Checksum, Arc<CommitStream<ObjectID>>>,
    /// Objects from the resume journals of other commits.
    journaled: BTreeMap<Checksum, Entry<ObjectID>>,
}

impl<ObjectID: FsVerityHashValue> std::fmt::Debug for Reuse<'_, ObjectID> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reuse")
            .field("indexed", &self.index.len())
            .field("loaded", &self.loaded.len())
            .field("journaled", &self.journaled.len())
            .finish()
    }
}

impl<'a, ObjectID: FsVerityHashValue> Reuse<'a, ObjectID> {
    /// Reuse through `index` from `store`.
    pub(crate) fn new(store: &'a Store<ObjectID>, index: &'a ObjectIndex) -> Self {
        Self {
            store,
            index,
            loaded: HashMap::new(),
            journaled: BTreeMap::new(),
        }
    }

    /// Also reuses `objects`, verified by interrupted pulls of other commits (see
    /// [`crate::store::journal::load_others`]).
    pub(crate) fn with_journaled(mut self, objects: BTreeMap<Checksum, Entry<ObjectID>>) -> Self {
        self.journaled = objects;
        self
    }

    /// Copies object `id` from a stored commit, or from another commit's resume journal,
    /// into `builder`; false when neither holds it.
    pub(crate) fn copy(
        &mut self,
        id: &Checksum,
        builder: &mut CommitStreamBuilder<ObjectID>,
    ) -> Result<bool, PullError> {
        if self.copy_stored(id, builder)? {
            return Ok(true);
        }
        match self.journaled.remove(id) {
            Some(e) => {
                builder.insert(*id, e.data, e.external);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Copies `id` from a stored commit, when the index names one that holds it.
    fn copy_stored(
        &mut self,
        id: &Checksum,
        builder: &mut CommitStreamBuilder<ObjectID>,
    ) -> Result<bool, PullError> {
        let Some(commit) = self.index.find(id) else {
            return Ok(false);
        };
        let stream = match self.loaded.get(&commit) {
            Some(s) => Arc::clone(s),
            None => {
                let Some(s) = self.store.load_commit(&commit)? else {
                    return Ok(false);
                };
                // Keep few streams in memory: they can be several MB each.
                if self.loaded.len() >= 4 {
                    self.loaded.clear();
                }
                let s = Arc::new(s);
                self.loaded.insert(commit, Arc::clone(&s));
                s
            }
        };
        match stream.lookup(id) {
            Some((data, ext)) => {
                builder.insert(*id, data.to_vec(), ext.cloned());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Whether a file named `name` is likely large: a shared library (`.so`, `.so.N`), a
/// message catalog (`.mo`, tens of kB each and many of them), a kernel or kernel module,
/// or anything in a `bin`, `sbin` or `libexec` directory (`in_bin_dir`).
fn likely_large(name: &str, in_bin_dir: bool) -> bool {
    in_bin_dir
        || name.ends_with(".so")
        || name.ends_with(".mo")
        || name.contains(".so.")
        || name.ends_with(".ko")
        || name.contains(".ko.")
        || name.starts_with("vmlinuz")
        || name.starts_with("initramfs")
}

/// Whether a directory named `name` holds programs (see [`likely_large`]).
fn is_bin_dir(name: &str) -> bool {
    matches!(name, "bin" | "sbin" | "libexec")
}

/// File objects waiting to be fetched, in two classes: likely large and other (see
/// [`likely_large`]). Each class keeps its order of discovery; [`FileQueue::pop`] takes
/// from the class with the larger share of its objects still waiting, so both drain in
/// proportion (a likely-large one first on a tie).
#[derive(Debug, Default)]
struct FileQueue {
    large: VecDeque<Checksum>,
    other: VecDeque<Checksum>,
    taken_large: usize,
    taken_other: usize,
}

impl FileQueue {
    fn push(&mut self, id: Checksum, large: bool) {
        if large {
            self.large.push_back(id);
        } else {
            self.other.push_back(id);
        }
    }

    fn pop(&mut self) -> Option<Checksum> {
        let (l, o) = (self.large.len(), self.other.len());
        // l / (l + taken_large) >= o / (o + taken_other), without division.
        let take_large = l > 0
            && (o == 0
                || (l as u128) * ((o + self.taken_other) as u128)
                    >= (o as u128) * ((l + self.taken_large) as u128));
        if take_large {
            self.taken_large += 1;
            self.large.pop_front()
        } else {
            let id = self.other.pop_front()?;
            self.taken_other += 1;
            Some(id)
        }
    }
}

struct Walker<'r, 'a, ObjectID: FsVerityHashValue, S> {
    source: Arc<S>,
    reuse: &'r mut Reuse<'a, ObjectID>,
    builder: &'r mut CommitStreamBuilder<ObjectID>,
    seen: HashSet<Checksum>,
    /// Dirtrees to fetch (asked for first: they name the rest).
    tree_queue: VecDeque<Checksum>,
    /// Dirmetas to fetch.
    meta_queue: VecDeque<Checksum>,
    file_queue: FileQueue,
    /// Dirtrees of directories named like [`is_bin_dir`].
    bin_trees: HashSet<Checksum>,
    stats: WalkStats,
    tracker: &'r Tracker,
}

impl<ObjectID: FsVerityHashValue, S: ObjectSource<ObjectID>> Walker<'_, '_, ObjectID, S> {
    /// Takes object `id` from the table or the store, or queues it; `large` says whether
    /// a file object is likely large (see [`FileQueue`]).
    fn need(&mut self, id: Checksum, objtype: ObjectType, large: bool) -> Result<(), PullError> {
        if !self.seen.insert(id) {
            return Ok(());
        }
        if self.seen.len() > MAX_COMMIT_OBJECTS {
            return Err(PullError::Hostile(format!(
                "commit reaches more than {MAX_COMMIT_OBJECTS} objects"
            )));
        }
        self.tracker
            .objects_expected
            .fetch_add(1, Ordering::Relaxed);
        let held = self.builder.contains(&id);
        if held || self.reuse.copy(&id, self.builder)? {
            if !held {
                self.stats.reused += 1;
            }
            self.tracker.objects_done.fetch_add(1, Ordering::Relaxed);
            if objtype == ObjectType::DirTree {
                self.expand(&id)?;
            }
            return Ok(());
        }
        match objtype {
            ObjectType::File => self.file_queue.push(id, large),
            ObjectType::DirTree => self.tree_queue.push_back(id),
            _ => self.meta_queue.push_back(id),
        }
        Ok(())
    }

    /// Queues the children of a dirtree already in the table.
    fn expand(&mut self, tree: &Checksum) -> Result<(), PullError> {
        let data = match self.builder.lookup(tree) {
            Some((d, _)) => d.to_vec(),
            None => {
                return Err(PullError::Internal(format!(
                    "dirtree {tree} vanished from the table"
                )));
            }
        };
        let dt =
            DirTreeRef::from_bytes(&data).map_err(|e| PullError::object(tree, "dirtree", e))?;
        let in_bin_dir = self.bin_trees.contains(tree);
        let mut files = Vec::new();
        for f in dt.files() {
            let (name, id) = f.map_err(|e| PullError::object(tree, "dirtree", e))?;
            files.push((id, likely_large(name, in_bin_dir)));
        }
        let mut dirs = Vec::new();
        for d in dt.dirs() {
            let (name, contents, meta) = d.map_err(|e| PullError::object(tree, "dirtree", e))?;
            if is_bin_dir(name) {
                self.bin_trees.insert(contents);
            }
            dirs.push((contents, meta));
        }
        for (contents, meta) in dirs {
            self.need(contents, ObjectType::DirTree, false)?;
            self.need(meta, ObjectType::DirMeta, false)?;
        }
        for (id, large) in files {
            self.need(id, ObjectType::File, large)?;
        }
        Ok(())
    }

    /// Checks and records one fetched object; with `expand`, queues a new dirtree's
    /// children.
    fn accept(&mut self, done: Done<ObjectID>, expand: bool) -> Result<(), PullError> {
        self.stats.fetched += 1;
        self.tracker.objects_done.fetch_add(1, Ordering::Relaxed);
        match done {
            Done::Meta(id, t, data) => {
                let actual = Checksum::of(&data);
                if actual != id {
                    return Err(PullError::ChecksumMismatch {
                        object: format!(
                            "{id}.{}",
                            t.extension(cfsync_formats::object::RepoMode::Archive)
                        ),
                        actual,
                    });
                }
                self.builder.insert(id, data, None);
                if expand && t == ObjectType::DirTree {
                    self.expand(&id)?;
                }
            }
            Done::File(id, entry) => {
                self.builder.insert(id, entry.data, entry.external);
            }
        }
        Ok(())
    }

    fn next_task(&mut self) -> Option<BoxFuture<'static, Result<Done<ObjectID>, PullError>>> {
        let meta = match self.tree_queue.pop_front() {
            Some(id) => Some((id, ObjectType::DirTree)),
            None => self
                .meta_queue
                .pop_front()
                .map(|id| (id, ObjectType::DirMeta)),
        };
        if let Some((id, t)) = meta {
            let src = Arc::clone(&self.source);
            return Some(Box::pin(async move {
                let data = src.fetch_metadata(id, t).await?;
                Ok(Done::Meta(id, t, data))
            }));
        }
        let id = self.file_queue.pop()?;
        let src = Arc::clone(&self.source);
        Some(Box::pin(async move {
            let entry = src.fetch_file(id).await?;
            Ok(Done::File(id, entry))
        }))
    }
}

/// How long fetches still in flight are awaited after another one failed.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// After a failure: lets the fetches in flight finish (up to [`DRAIN_TIMEOUT`], or until
/// cancelled) and keeps every object among them that verifies, so that the next pull
/// does not fetch it again. Their own errors are dropped: the first error is reported.
async fn drain<ObjectID: FsVerityHashValue, S: ObjectSource<ObjectID>>(
    w: &mut Walker<'_, '_, ObjectID, S>,
    pending: &mut tokio::task::JoinSet<Result<Done<ObjectID>, PullError>>,
    cancel: &Cancel,
) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while !cancel.is_cancelled() {
        match tokio::time::timeout_at(deadline, pending.join_next()).await {
            Ok(Some(Ok(Ok(done)))) => {
                let _ = w.accept(done, false);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    pending.abort_all();
    w.builder.flush_journal();
}

/// Fetches every object of the tree rooted at (`root_tree`, `root_meta`) that `builder`
/// and the store do not hold, keeping at least `concurrency` fetches pending, or more
/// when the source's request window wants more ([`ObjectSource::wanted_in_flight`]: the
/// source's fetch scheduler decides how many are actually in flight).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn walk<ObjectID: FsVerityHashValue, S: ObjectSource<ObjectID>>(
    source: Arc<S>,
    reuse: &mut Reuse<'_, ObjectID>,
    builder: &mut CommitStreamBuilder<ObjectID>,
    root_tree: Checksum,
    root_meta: Checksum,
    concurrency: usize,
    tracker: &Tracker,
    reporter: &dyn Reporter,
    cancel: &Cancel,
    bytes: &(dyn Fn() -> u64 + Send + Sync),
) -> Result<WalkStats, PullError> {
    let mut w = Walker {
        source,
        reuse,
        builder,
        seen: HashSet::new(),
        tree_queue: VecDeque::new(),
        meta_queue: VecDeque::new(),
        file_queue: FileQueue::default(),
        bin_trees: HashSet::new(),
        stats: WalkStats::default(),
        tracker,
    };
    w.need(root_tree, ObjectType::DirTree, false)?;
    w.need(root_meta, ObjectType::DirMeta, false)?;
    // After an error, fetches still in flight are awaited this long, so that what they
    // verify is kept (and journaled) for the next pull.
    // Dropping the set (on cancellation) aborts the tasks still in flight.
    let mut pending = tokio::task::JoinSet::new();
    let concurrency = concurrency.max(1);
    let mut last_report = std::time::Instant::now();
    loop {
        if cancel.is_cancelled() {
            return Err(PullError::Cancelled);
        }
        let target = concurrency.max(w.source.wanted_in_flight());
        while pending.len() < target {
            match w.next_task() {
                Some(t) => {
                    pending.spawn(t);
                }
                None => break,
            }
        }
        let joined = match pending.try_join_next() {
            Some(j) => j,
            None => {
                // About to wait for the network: put what is verified so far on disk,
                // so that a kill during the wait loses nothing.
                w.builder.flush_journal();
                match pending.join_next().await {
                    Some(j) => j,
                    None => break,
                }
            }
        };
        let result = joined
            .map_err(|e| PullError::Internal(format!("fetch task failed: {e}")))
            .and_then(|done| done)
            .and_then(|done| w.accept(done, true));
        if let Err(e) = result {
            drain(&mut w, &mut pending, cancel).await;
            return Err(e);
        }
        if last_report.elapsed() >= std::time::Duration::from_millis(100) {
            last_report = std::time::Instant::now();
            reporter.report(Event::Counters(tracker.snapshot(bytes())));
        }
    }
    reporter.report(Event::Counters(tracker.snapshot(bytes())));
    Ok(w.stats)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use cfsync_formats::dirmeta::DirMeta;
    use cfsync_formats::dirtree::DirTree;
    use cfsync_formats::file::{FileHeader, encode_sized_archive_header, file_checksum};
    use composefs::fsverity::Sha256HashValue;

    use super::*;
    use crate::progress::NullReporter;
    use crate::store::{AnyStore, HashKind};

    /// Objects in memory; records what is fetched; fails the objects in `broken`.
    #[derive(Default)]
    struct Memory {
        meta: HashMap<Checksum, Vec<u8>>,
        files: HashMap<Checksum, Vec<u8>>,
        broken: HashSet<Checksum>,
        fetched: Mutex<Vec<Checksum>>,
    }

    impl ObjectSource<Sha256HashValue> for Memory {
        fn fetch_metadata(
            self: Arc<Self>,
            id: Checksum,
            _objtype: ObjectType,
        ) -> BoxFuture<'static, Result<Vec<u8>, PullError>> {
            Box::pin(async move {
                self.fetched.lock().unwrap().push(id);
                let mut data = self.meta[&id].clone();
                if self.broken.contains(&id) {
                    data.push(0);
                }
                Ok(data)
            })
        }

        fn fetch_file(
            self: Arc<Self>,
            id: Checksum,
        ) -> BoxFuture<'static, Result<Entry<Sha256HashValue>, PullError>> {
            Box::pin(async move {
                self.fetched.lock().unwrap().push(id);
                if self.broken.contains(&id) {
                    return Err(PullError::Internal(format!("file {id} is broken")));
                }
                Ok(Entry {
                    data: self.files[&id].clone(),
                    external: None,
                })
            })
        }
    }

    struct Tree {
        mem: Memory,
        root: Checksum,
        meta: Checksum,
        sub: Checksum,
        files: Vec<Checksum>,
    }

    /// `/a`, `/b`, `/sub/c`, `/sub/d` (inline files), one dirmeta for both directories.
    fn tree() -> Tree {
        let mut mem = Memory::default();
        let mut file = |content: &[u8]| {
            let h = FileHeader {
                size: content.len() as u64,
                mode: 0o100_644,
                ..FileHeader::default()
            };
            let id = file_checksum(&h, content).unwrap();
            let mut data = encode_sized_archive_header(&h).unwrap();
            data.extend_from_slice(content);
            mem.files.insert(id, data);
            id
        };
        let files = vec![file(b"a"), file(b"b"), file(b"c"), file(b"d")];
        let meta_bytes = DirMeta {
            uid: 0,
            gid: 0,
            mode: 0o40_755,
            xattrs: Vec::new(),
        }
        .to_bytes()
        .unwrap();
        let meta = Checksum::of(&meta_bytes);
        mem.meta.insert(meta, meta_bytes);
        let sub_bytes = DirTree {
            files: vec![("c".into(), files[2]), ("d".into(), files[3])],
            dirs: vec![],
        }
        .to_bytes()
        .unwrap();
        let sub = Checksum::of(&sub_bytes);
        mem.meta.insert(sub, sub_bytes);
        let root_bytes = DirTree {
            files: vec![("a".into(), files[0]), ("b".into(), files[1])],
            dirs: vec![("sub".into(), sub, meta)],
        }
        .to_bytes()
        .unwrap();
        let root = Checksum::of(&root_bytes);
        mem.meta.insert(root, root_bytes);
        Tree {
            mem,
            root,
            meta,
            sub,
            files,
        }
    }

    fn store(dir: &std::path::Path) -> Store<Sha256HashValue> {
        match AnyStore::open_or_init(&dir.join("repo"), HashKind::Sha256)
            .unwrap()
            .0
        {
            AnyStore::Sha256(s) => s,
            AnyStore::Sha512(_) => unreachable!(),
        }
    }

    async fn run(
        t: &Arc<Memory>,
        s: &Store<Sha256HashValue>,
        b: &mut CommitStreamBuilder<Sha256HashValue>,
        root: Checksum,
        meta: Checksum,
    ) -> Result<WalkStats, PullError> {
        let index = ObjectIndex::default();
        let mut reuse = Reuse::new(s, &index);
        walk(
            Arc::clone(t),
            &mut reuse,
            b,
            root,
            meta,
            4,
            &Tracker::default(),
            &NullReporter,
            &Cancel::new(),
            &|| 0,
        )
        .await
    }

    #[test]
    fn names_that_are_likely_large() {
        for name in [
            "libc.so.6",
            "libfoo.so",
            "e1000.ko",
            "e1000.ko.zst",
            "vmlinuz-6.1",
        ] {
            assert!(likely_large(name, false), "{name}");
        }
        for name in ["README", "so", "x.sop", "copyright", "x.mod", "x.kobj"] {
            assert!(!likely_large(name, false), "{name}");
        }
        assert!(likely_large("bash", true));
        assert!(is_bin_dir("sbin") && is_bin_dir("libexec") && !is_bin_dir("binaries"));
    }

    #[test]
    fn file_classes_are_interleaved_in_proportion() {
        let id = |n: u8| Checksum::of(&[n]);
        let mut q = FileQueue::default();
        // 2 likely large, 6 others: one large per three others, a large one first.
        for n in 0..2 {
            q.push(id(n), true);
        }
        for n in 10..16 {
            q.push(id(n), false);
        }
        let order: Vec<bool> = std::iter::from_fn(|| q.pop())
            .map(|c| (0..2).any(|n| id(n) == c))
            .collect();
        assert_eq!(
            order,
            [true, false, false, false, true, false, false, false]
        );
        // Each class keeps its own order; objects queued later join in proportion.
        q.push(id(20), false);
        q.push(id(21), true);
        q.push(id(22), false);
        assert_eq!(q.pop(), Some(id(21)));
        assert_eq!(q.pop(), Some(id(20)));
        assert_eq!(q.pop(), Some(id(22)));
        assert_eq!(q.pop(), None);
    }

    #[tokio::test]
    async fn dirtrees_are_fetched_before_dirmetas_before_files() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let t = tree();
        let (root, meta, sub) = (t.root, t.meta, t.sub);
        let mem = Arc::new(t.mem);
        let mut b = CommitStreamBuilder::new(Checksum::of(b"commit"));
        let index = ObjectIndex::default();
        let mut reuse = Reuse::new(&s, &index);
        // One fetch at a time: the order asked is the order fetched.
        walk(
            Arc::clone(&mem),
            &mut reuse,
            &mut b,
            root,
            meta,
            1,
            &Tracker::default(),
            &NullReporter,
            &Cancel::new(),
            &|| 0,
        )
        .await
        .unwrap();
        let fetched = mem.fetched.lock().unwrap().clone();
        assert_eq!(fetched[..3], [root, sub, meta], "{fetched:?}");
        assert_eq!(fetched.len(), 7);
    }

    #[tokio::test]
    async fn dirtrees_already_held_are_descended_into() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let t = tree();
        let (root, meta, sub) = (t.root, t.meta, t.sub);
        let mut b = CommitStreamBuilder::new(Checksum::of(b"commit"));
        // As resumed from a journal: the root dirtree, its dirmeta and one file, but not
        // the subdirectory or the other files.
        b.insert(root, t.mem.meta[&root].clone(), None);
        b.insert(meta, t.mem.meta[&meta].clone(), None);
        b.insert(t.files[0], t.mem.files[&t.files[0]].clone(), None);
        let files = t.files.clone();
        let mem = Arc::new(t.mem);
        let st = run(&mem, &s, &mut b, root, meta).await.unwrap();
        let mut fetched = mem.fetched.lock().unwrap().clone();
        fetched.sort();
        let mut want = vec![sub, files[1], files[2], files[3]];
        want.sort();
        assert_eq!(fetched, want);
        assert_eq!(st.fetched, 4);
        for id in [root, meta, sub].iter().chain(&files) {
            assert!(b.contains(id), "{id} missing from the table");
        }
    }

    #[tokio::test]
    async fn after_a_failure_the_objects_in_flight_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let mut t = tree();
        let (root, meta, sub) = (t.root, t.meta, t.sub);
        t.mem.broken.insert(t.files[0]);
        let files = t.files.clone();
        let mem = Arc::new(t.mem);
        let mut b = CommitStreamBuilder::new(Checksum::of(b"commit"));
        let err = run(&mem, &s, &mut b, root, meta).await.unwrap_err();
        assert!(err.to_string().contains(&files[0].to_hex()), "{err}");
        // Everything fetched, except the broken file, made it into the table.
        let fetched = mem.fetched.lock().unwrap().clone();
        assert!(
            fetched.contains(&files[1]),
            "the walk stopped early: {fetched:?}"
        );
        for id in fetched.iter().filter(|id| **id != files[0]) {
            assert!(b.contains(id), "{id} was fetched but not kept");
        }
        assert!(!b.contains(&files[0]));
        assert!(b.contains(&sub) && b.contains(&root));
    }

    #[tokio::test]
    async fn a_corrupt_dirtree_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let mut t = tree();
        let (root, meta, sub) = (t.root, t.meta, t.sub);
        t.mem.broken.insert(sub);
        let mem = Arc::new(t.mem);
        let mut b = CommitStreamBuilder::new(Checksum::of(b"commit"));
        let err = run(&mem, &s, &mut b, root, meta).await.unwrap_err();
        assert!(
            matches!(&err, PullError::ChecksumMismatch { object, .. } if object == &format!("{sub}.dirtree")),
            "{err}"
        );
        assert!(!b.contains(&sub));
    }
}
