//! OSTree commits as composefs splitstreams, in the on-disk layout of `composefs-ostree`.
//!
//! A commit is stored as one splitstream named `ostree-commit-<sha256 hex>` with content
//! type [`OSTREE_COMMIT_CONTENT_TYPE`]. Its single inline region is a table of every OSTree
//! object the commit reaches (little-endian throughout):
//!
//! ```text
//! u32 index of the commit object in the id table
//! u32 flags (0)
//! [u32; 256] cumulative bucket ends by first id byte (the last one is the object count n)
//! n x [u8; 32] object ids, sorted
//! n x { u32 data offset / 8, u32 data length, u32 object-ref index or 0xFFFFFFFF }
//! data: each object's bytes in id order, zero-padded to a multiple of 8
//! ```
//!
//! Metadata objects are stored as their GVariant bytes. A file object is stored as the
//! 8-byte sized prefix plus the archive-style header `(tuuuusa(ayay))`, followed by its
//! content when the content is small (at most twice the object-id size); larger content
//! lives in the composefs object store, referenced from the splitstream's object table.
//! The named stream ref `composefs.image` points at the commit's EROFS image. This is the
//! layout `cfsctl ostree` reads and writes (see `docs/commit-splitstream.md`), so
//! repositories are shared in both directions.

use cfsync_formats::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;
use cfsync_formats::file::{FileHeader, decode_sized_archive_header};
use composefs::fsverity::FsVerityHashValue;
use composefs::generic_tree::{LeafId, Stat};
use composefs::repository::Repository;
use composefs::tree::{Directory, FileSystem, Inode, LeafContent, RegularFile};

use super::StoreError;
use super::journal::JournalWriter;

/// Splitstream content type of an OSTree commit (shared with composefs-ostree).
pub const OSTREE_COMMIT_CONTENT_TYPE: u64 = 0xAFE1_38C1_8C46_3EF1;
/// Named stream ref, inside a commit splitstream, to the commit's EROFS image.
pub const IMAGE_REF_KEY: &str = "composefs.image";
/// Marker in the object table for "no external object".
const NO_EXTERNAL: u32 = u32::MAX;
/// Size of the fixed header: commit index, flags, 256 bucket ends.
const HEADER_LEN: usize = 4 + 4 + 256 * 4;
/// Size of one object-info record.
const INFO_LEN: usize = 12;
/// Deepest directory nesting accepted when building an image (libostree uses 256 too).
pub const MAX_TREE_DEPTH: usize = 256;
/// Most objects one commit table may hold.
const MAX_OBJECTS: usize = 16 * 1024 * 1024;
/// Directory entries an image may have beyond [`TREE_ENTRIES_PER_OBJECT`] per distinct
/// dirtree and file object it is built from. Dirtrees are shared by checksum, so 41
/// dirtrees that each hold the next one twice describe 2^40 paths: the image build
/// expands every path, and without this bound (checked before building) would run
/// until memory runs out.
const TREE_ENTRIES_BASE: usize = 1024 * 1024;
/// Directory entries allowed per distinct object met (real trees have about one path
/// per object, a few more where identical files or directories repeat).
const TREE_ENTRIES_PER_OBJECT: usize = 64;


/// The name of the splitstream holding commit `commit`.
pub fn commit_stream_name(commit: &Checksum) -> String {
    format!("ostree-commit-{commit}")
}

/// The composefs stream ref (under `streams/refs/`) for OSTree ref `name`:
/// `ostree/` followed by the name with `%` written `%25` and `/` written `%2F`.
pub fn ostree_ref_name(name: &str) -> String {
    format!("ostree/{}", name.replace('%', "%25").replace('/', "%2F"))
}

/// Inverse of [`ostree_ref_name`] for the part after `ostree/`.
pub fn unescape_ref_name(escaped: &str) -> String {
    escaped.replace("%2F", "/").replace("%25", "%")
}

/// Whether a regular file of `size` bytes is stored inline in the commit stream (and
/// in the EROFS image) rather than as a composefs object.
pub fn is_inline_size<ObjectID: FsVerityHashValue>(size: u64) -> bool {
    size <= (2 * size_of::<ObjectID>()) as u64
}

/// One object of a commit: its stored bytes and, for large files, the composefs object
/// holding the content.
#[derive(Debug, Clone)]
pub struct Entry<ObjectID> {
    /// Stored bytes (metadata GVariant, or sized file header plus inline content).
    pub data: Vec<u8>,
    /// The composefs object holding a large file's content.
    pub external: Option<ObjectID>,
}

/// Collects a commit's objects in memory and writes them as a commit splitstream.
///
/// A builder made by [`super::journal::open_builder`] (what a pull uses) also appends
/// every newly inserted object to the commit's resume journal, so that whatever route
/// fills it (object walker, reuse, static deltas) is resumable after an interruption.
#[derive(Debug)]
pub struct CommitStreamBuilder<ObjectID> {
    commit: Checksum,
    map: BTreeMap<Checksum, Entry<ObjectID>>,
    journal: Option<JournalWriter>,
}

/// Read access to a commit's objects, whether being built or loaded from the repository.
pub trait ObjectLookup<ObjectID> {
    /// The stored bytes of `id` and the external content object, if any.
    fn lookup(&self, id: &Checksum) -> Option<(&[u8], Option<&ObjectID>)>;
}

impl<ObjectID: FsVerityHashValue> CommitStreamBuilder<ObjectID> {
    /// An empty table for commit `commit` (whose object must be inserted too).
    pub fn new(commit: Checksum) -> Self {
        Self {
            commit,
            map: BTreeMap::new(),
            journal: None,
        }
    }

    /// A table seeded with `entries` (already journaled) that journals every further
    /// insertion through `journal`.
    pub(crate) fn with_journal(
        commit: Checksum,
        entries: BTreeMap<Checksum, Entry<ObjectID>>,
        journal: JournalWriter,
    ) -> Self {
        Self {
            commit,
            map: entries,
            journal: Some(journal),
        }
    }

    /// Whether insertions are being journaled.
    pub fn is_journaled(&self) -> bool {
        self.journal.is_some()
    }

    /// Writes journal records still buffered in memory to the journal file (no fsync),
    /// so that they survive the process being killed. Cheap when nothing is buffered;
    /// call it before waiting on the network for a while (the object walker does so
    /// whenever no fetch is ready; a delta applier should after each part).
    pub fn flush_journal(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.flush();
        }
    }

    /// Deletes the resume journal (call once the commit stream and ref are written);
    /// later insertions are not journaled.
    pub fn remove_journal(&mut self) -> Result<(), StoreError> {
        match self.journal.take() {
            Some(j) => j.remove(),
            None => Ok(()),
        }
    }

    /// The commit this table describes.
    pub fn commit(&self) -> &Checksum {
        &self.commit
    }

    /// Number of objects collected so far.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no object was collected yet.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `id` is already in the table.
    pub fn contains(&self, id: &Checksum) -> bool {
        self.map.contains_key(id)
    }

    /// Adds an object (the first insertion of an id wins). The object must already be
    /// verified: its bytes (or, for a file, header and content) hash to `id`, and
    /// `external` is stored in the repository.
    ///
    /// A new object is also appended to the resume journal when there is one; journal
    /// write errors are logged and end journaling, they never fail the insertion.
    pub fn insert(&mut self, id: Checksum, data: Vec<u8>, external: Option<ObjectID>) {
        if let std::collections::btree_map::Entry::Vacant(v) = self.map.entry(id) {
            if let Some(j) = self.journal.as_mut() {
                j.append(&id, &data, external.as_ref().map(|e| e.to_hex()).as_deref());
            }
            v.insert(Entry { data, external });
        }
    }

    /// Iterates the collected objects in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Checksum, &Entry<ObjectID>)> {
        self.map.iter()
    }

    /// Serializes the table into an unnamed splitstream writer and stores it as
    /// `ostree-commit-<hex>`, with `image` as its `composefs.image` named ref.
    ///
    /// Returns the fs-verity id of the stream object.
    pub fn write(
        &self,
        repo: &Arc<Repository<ObjectID>>,
        image: Option<&ObjectID>,
    ) -> Result<ObjectID, StoreError> {
        let n = self.map.len();
        if n >= NO_EXTERNAL as usize || n > MAX_OBJECTS {
            return Err(StoreError::TooManyObjects { count: n });
        }
        let commit_index =
            self.map
                .keys()
                .position(|k| *k == self.commit)
                .ok_or(StoreError::MissingObject {
                    id: self.commit,
                    what: "commit object",
                })?;
        let mut stream = repo
            .create_stream(OSTREE_COMMIT_CONTENT_TYPE)
            .map_err(|e| StoreError::composefs("creating commit stream", e))?;
        if let Some(image) = image {
            stream.add_named_stream_ref(IMAGE_REF_KEY, image);
        }

        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&(commit_index as u32).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        let mut buckets = [0u32; 256];
        for id in self.map.keys() {
            buckets[usize::from(id.0[0])] += 1;
        }
        let mut running = 0u32;
        for b in &mut buckets {
            running += *b;
            *b = running;
        }
        for b in buckets {
            header.extend_from_slice(&b.to_le_bytes());
        }
        stream.write_inline(&header);

        let mut ids = Vec::with_capacity(n * 32);
        for id in self.map.keys() {
            ids.extend_from_slice(&id.0);
        }
        stream.write_inline(&ids);

        let mut infos = Vec::with_capacity(n * INFO_LEN);
        let mut offset: u64 = 0;
        for entry in self.map.values() {
            let len = u32::try_from(entry.data.len()).map_err(|_| StoreError::TooLarge {
                what: "object data in commit stream",
                size: entry.data.len() as u64,
            })?;
            let block = u32::try_from(offset / 8).map_err(|_| StoreError::TooLarge {
                what: "commit stream data region",
                size: offset,
            })?;
            let ext = match &entry.external {
                Some(obj) => u32::try_from(stream.add_object_ref(obj))
                    .map_err(|_| StoreError::TooManyObjects { count: n })?,
                None => NO_EXTERNAL,
            };
            infos.extend_from_slice(&block.to_le_bytes());
            infos.extend_from_slice(&len.to_le_bytes());
            infos.extend_from_slice(&ext.to_le_bytes());
            offset += (entry.data.len() as u64).next_multiple_of(8);
        }
        stream.write_inline(&infos);

        const PAD: [u8; 7] = [0; 7];
        for entry in self.map.values() {
            stream.write_inline(&entry.data);
            let pad = entry.data.len().next_multiple_of(8) - entry.data.len();
            if pad > 0 {
                stream.write_inline(&PAD[..pad]);
            }
        }

        repo.write_stream(stream, &commit_stream_name(&self.commit), None)
            .map_err(|e| StoreError::composefs("writing commit stream", e))
    }
}

impl<ObjectID: FsVerityHashValue> ObjectLookup<ObjectID> for CommitStreamBuilder<ObjectID> {
    fn lookup(&self, id: &Checksum) -> Option<(&[u8], Option<&ObjectID>)> {
        self.map
            .get(id)
            .map(|e| (e.data.as_slice(), e.external.as_ref()))
    }
}

#[derive(Debug, Clone)]
struct Info {
    offset: usize,
    len: usize,
    external: Option<usize>,
}

/// A commit splitstream loaded from the repository.
#[derive(Debug)]
pub struct CommitStream<ObjectID> {
    commit: Checksum,
    ids: Vec<Checksum>,
    infos: Vec<Info>,
    buckets: Box<[u32; 256]>,
    data: Vec<u8>,
    externals: Vec<ObjectID>,
    image: Option<ObjectID>,
}

impl<ObjectID: FsVerityHashValue> CommitStream<ObjectID> {
    /// Loads `ostree-commit-<commit>`; `Ok(None)` when the repository has no such stream.
    pub fn load(
        repo: &Repository<ObjectID>,
        commit: &Checksum,
    ) -> Result<Option<Self>, StoreError> {
        let name = commit_stream_name(commit);
        if repo
            .has_stream(&name)
            .map_err(|e| StoreError::composefs("looking up commit stream", e))?
            .is_none()
        {
            return Ok(None);
        }
        let corrupt = |what: &'static str| StoreError::CorruptStream {
            stream: name.clone(),
            what,
        };
        let mut reader = repo
            .open_stream(&name, None, Some(OSTREE_COMMIT_CONTENT_TYPE))
            .map_err(|e| StoreError::composefs("opening commit stream", e))?;
        let image = reader.lookup_named_ref(IMAGE_REF_KEY).cloned();
        let read = |reader: &mut composefs::splitstream::SplitStreamReader<ObjectID>,
                    buf: &mut [u8]|
         -> Result<(), StoreError> {
            match reader.read_inline_exact(buf) {
                Ok(true) => Ok(()),
                Ok(false) => Err(StoreError::CorruptStream {
                    stream: commit_stream_name(commit),
                    what: "external chunk where the object table was expected",
                }),
                Err(e) => Err(StoreError::composefs("reading commit stream", e)),
            }
        };
        let mut header = vec![0u8; HEADER_LEN];
        read(&mut reader, &mut header)?;
        let u32_at = |b: &[u8], at: usize| -> u32 {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[at..at + 4]);
            u32::from_le_bytes(a)
        };
        let commit_index = u32_at(&header, 0) as usize;
        let mut buckets = Box::new([0u32; 256]);
        for (i, b) in buckets.iter_mut().enumerate() {
            *b = u32_at(&header, 8 + 4 * i);
        }
        if buckets.windows(2).any(|w| w[0] > w[1]) {
            return Err(corrupt("bucket ends are not ascending"));
        }
        let n = buckets[255] as usize;
        if n > MAX_OBJECTS || commit_index >= n {
            return Err(corrupt("object count or commit index out of range"));
        }
        let mut id_bytes = vec![0u8; n * 32];
        read(&mut reader, &mut id_bytes)?;
        let ids: Vec<Checksum> = id_bytes
            .chunks_exact(32)
            .map(|c| {
                let mut a = [0u8; 32];
                a.copy_from_slice(c);
                Checksum(a)
            })
            .collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt("object ids are not sorted"));
        }
        if ids[commit_index] != *commit {
            return Err(corrupt("commit index does not name the commit"));
        }
        let mut info_bytes = vec![0u8; n * INFO_LEN];
        read(&mut reader, &mut info_bytes)?;
        let mut infos = Vec::with_capacity(n);
        let mut data_len = 0usize;
        for rec in info_bytes.chunks_exact(INFO_LEN) {
            let offset = u32_at(rec, 0) as usize * 8;
            let len = u32_at(rec, 4) as usize;
            let ext = u32_at(rec, 8);
            let end = offset
                .checked_add(len)
                .ok_or_else(|| corrupt("object data range overflows"))?;
            data_len = data_len.max(end.next_multiple_of(8));
            infos.push(Info {
                offset,
                len,
                external: (ext != NO_EXTERNAL).then_some(ext as usize),
            });
        }
        if data_len > 1 << 32 {
            return Err(corrupt("data region larger than 4 GiB"));
        }
        let mut data = vec![0u8; data_len];
        if data_len > 0 {
            read(&mut reader, &mut data)?;
        }
        let mut externals = Vec::new();
        for info in &infos {
            if let Some(idx) = info.external {
                if externals.len() <= idx {
                    // Collect refs lazily: the table is dense from 0.
                    while externals.len() <= idx {
                        let obj = reader
                            .lookup_external_ref(externals.len())
                            .ok_or_else(|| corrupt("object-ref index out of range"))?
                            .clone();
                        externals.push(obj);
                    }
                }
            }
        }
        Ok(Some(Self {
            commit: *commit,
            ids,
            infos,
            buckets,
            data,
            externals,
            image,
        }))
    }

    /// The commit this stream holds.
    pub fn commit(&self) -> &Checksum {
        &self.commit
    }

    /// The EROFS image linked from this commit, if one was built.
    pub fn image(&self) -> Option<&ObjectID> {
        self.image.as_ref()
    }

    /// Number of objects in the table.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table is empty (never true for a valid commit stream).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// All object ids, sorted.
    pub fn ids(&self) -> &[Checksum] {
        &self.ids
    }

    /// All external content objects this commit references.
    pub fn external_objects(&self) -> &[ObjectID] {
        &self.externals
    }

    fn index_of(&self, id: &Checksum) -> Option<usize> {
        let b = usize::from(id.0[0]);
        let start = if b == 0 {
            0
        } else {
            self.buckets[b - 1] as usize
        };
        let end = self.buckets[b] as usize;
        let slice = self.ids.get(start..end)?;
        slice.binary_search(id).ok().map(|i| i + start)
    }

    /// Copies every object into `builder` (used to rewrite a stream with an image ref).
    pub fn copy_into(&self, builder: &mut CommitStreamBuilder<ObjectID>) {
        for id in &self.ids {
            if let Some((data, ext)) = self.lookup(id) {
                builder.insert(*id, data.to_vec(), ext.cloned());
            }
        }
    }
}

impl<ObjectID: FsVerityHashValue> ObjectLookup<ObjectID> for CommitStream<ObjectID> {
    fn lookup(&self, id: &Checksum) -> Option<(&[u8], Option<&ObjectID>)> {
        let i = self.index_of(id)?;
        let info = self.infos.get(i)?;
        let data = self
            .data
            .get(info.offset..info.offset.checked_add(info.len)?)?;
        let ext = match info.external {
            Some(idx) => Some(self.externals.get(idx)?),
            None => None,
        };
        Some((data, ext))
    }
}

/// Parses a stored file object (sized archive header plus optional inline content).
pub fn parse_file_entry(data: &[u8]) -> Result<(FileHeader, &[u8]), StoreError> {
    decode_sized_archive_header(data).map_err(|e| StoreError::Format(e.to_string()))
}

fn xattr_map(xattrs: &[(Vec<u8>, Vec<u8>)]) -> BTreeMap<Box<OsStr>, Box<[u8]>> {
    xattrs
        .iter()
        .map(|(k, v)| {
            // OSTree stores xattr names NUL-terminated inside `ay`.
            let k = k.strip_suffix(b"\0").unwrap_or(k);
            (
                Box::from(OsStr::from_bytes(k)),
                v.clone().into_boxed_slice(),
            )
        })
        .collect()
}

fn stat(mode: u32, uid: u32, gid: u32, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Stat {
    Stat {
        st_mode: mode,
        st_uid: uid,
        st_gid: gid,
        st_mtim_sec: 0,
        st_mtim_nsec: 0,
        xattrs: xattr_map(xattrs),
    }
}

struct FsBuilder<'a, ObjectID: FsVerityHashValue, L: ObjectLookup<ObjectID>> {
    objects: &'a L,
    fs: FileSystem<ObjectID>,
    leaves: HashMap<Checksum, LeafId>,
}

impl<ObjectID: FsVerityHashValue, L: ObjectLookup<ObjectID>> FsBuilder<'_, ObjectID, L> {
    fn get(
        &self,
        id: &Checksum,
        what: &'static str,
    ) -> Result<(&[u8], Option<&ObjectID>), StoreError> {
        self.objects
            .lookup(id)
            .ok_or(StoreError::MissingObject { id: *id, what })
    }

    fn dirmeta(&self, id: &Checksum) -> Result<Stat, StoreError> {
        let (data, _) = self.get(id, "dirmeta")?;
        Checksum::of(data)
            .verify(id)
            .map_err(|e| StoreError::Format(format!("dirmeta {id}: {e}")))?;
        let meta = DirMetaRef::from_bytes(data)
            .map_err(|e| StoreError::Format(format!("dirmeta {id}: {e}")))?;
        let mode = (meta.mode() & !S_IFMT) | S_IFDIR;
        Ok(stat(mode, meta.uid(), meta.gid(), &meta.xattrs()))
    }

    fn leaf(&mut self, id: &Checksum) -> Result<LeafId, StoreError> {
        if let Some(leaf) = self.leaves.get(id) {
            return Ok(*leaf);
        }
        let (data, external) = self.get(id, "file")?;
        let external = external.cloned();
        let (header, rest) = parse_file_entry(data)?;
        let st = stat(header.mode, header.uid, header.gid, &header.xattrs);
        let content = match header.mode & S_IFMT {
            S_IFLNK => LeafContent::Symlink(Box::from(OsStr::new(&header.symlink_target))),
            S_IFREG => match external {
                Some(obj) => {
                    if !rest.is_empty() {
                        return Err(StoreError::Format(format!(
                            "file {id}: inline data beside an external object"
                        )));
                    }
                    LeafContent::Regular(RegularFile::External(obj, header.size))
                }
                None => {
                    if rest.len() as u64 != header.size {
                        return Err(StoreError::Format(format!(
                            "file {id}: {} inline bytes, header says {}",
                            rest.len(),
                            header.size
                        )));
                    }
                    LeafContent::Regular(RegularFile::Inline(rest.to_vec().into_boxed_slice()))
                }
            },
            other => {
                return Err(StoreError::Format(format!(
                    "file {id}: unsupported file type {other:o}"
                )));
            }
        };
        let leaf = self.fs.push_leaf(st, content);
        self.leaves.insert(*id, leaf);
        Ok(leaf)
    }

    /// The number of directory entries the tree of `tree` expands to, counting each
    /// shared dirtree once (`memo`), and the distinct file objects it names (`files`).
    /// Linear in the distinct dirtrees, so a tree of 2^40 paths is measured, not built.
    fn count(
        &self,
        tree: &Checksum,
        depth: usize,
        memo: &mut HashMap<Checksum, u64>,
        files: &mut std::collections::HashSet<Checksum>,
    ) -> Result<u64, StoreError> {
        if let Some(n) = memo.get(tree) {
            return Ok(*n);
        }
        if depth > MAX_TREE_DEPTH {
            return Err(StoreError::Format(format!(
                "dirtree {tree}: nesting deeper than {MAX_TREE_DEPTH}"
            )));
        }
        let (data, _) = self.get(tree, "dirtree")?;
        let bad = |e: &dyn std::fmt::Display| StoreError::Format(format!("dirtree {tree}: {e}"));
        let dt = DirTreeRef::from_bytes(data).map_err(|e| bad(&e))?;
        let mut n = 0u64;
        for f in dt.files() {
            let (_, id) = f.map_err(|e| bad(&e))?;
            files.insert(id);
            n = n.saturating_add(1);
        }
        for d in dt.dirs() {
            let (_, contents, _) = d.map_err(|e| bad(&e))?;
            let below = self.count(&contents, depth + 1, memo, files)?;
            n = n.saturating_add(1).saturating_add(below);
        }
        memo.insert(*tree, n);
        Ok(n)
    }

    fn dir(
        &mut self,
        tree: &Checksum,
        into: &mut Directory<ObjectID>,
        depth: usize,
    ) -> Result<(), StoreError> {
        if depth > MAX_TREE_DEPTH {
            return Err(StoreError::Format(format!(
                "dirtree {tree}: nesting deeper than {MAX_TREE_DEPTH}"
            )));
        }
        let (data, _) = self.get(tree, "dirtree")?;
        let data = data.to_vec();
        let dt = DirTreeRef::from_bytes(&data)
            .map_err(|e| StoreError::Format(format!("dirtree {tree}: {e}")))?;
        for f in dt.files() {
            let (name, id) = f.map_err(|e| StoreError::Format(format!("dirtree {tree}: {e}")))?;
            let leaf = self.leaf(&id)?;
            into.insert(OsStr::new(name), Inode::leaf(leaf));
        }
        for d in dt.dirs() {
            let (name, contents, meta) =
                d.map_err(|e| StoreError::Format(format!("dirtree {tree}: {e}")))?;
            let mut sub = Directory::new(self.dirmeta(&meta)?);
            self.dir(&contents, &mut sub, depth + 1)?;
            into.insert(OsStr::new(name), Inode::Directory(Box::new(sub)));
        }
        Ok(())
    }
}

/// Builds the composefs filesystem tree of commit `commit` from its objects, the way
/// composefs-ostree does (mtime 0, files with equal object ids become hard links), so
/// that both tools make the same image for the same commit.
pub fn build_filesystem<ObjectID: FsVerityHashValue, L: ObjectLookup<ObjectID>>(
    objects: &L,
    commit: &Checksum,
) -> Result<FileSystem<ObjectID>, StoreError> {
    let (data, _) = objects.lookup(commit).ok_or(StoreError::MissingObject {
        id: *commit,
        what: "commit",
    })?;
    let c = CommitRef::from_bytes(data)
        .map_err(|e| StoreError::Format(format!("commit {commit}: {e}")))?;
    let root_tree = c.root_contents();
    let root_meta = c.root_metadata();
    let mut b = FsBuilder {
        objects,
        fs: FileSystem::new(Stat::uninitialized()),
        leaves: HashMap::new(),
    };
    // Measure before building: shared dirtrees can describe far more paths than objects.
    let (mut memo, mut files) = (HashMap::new(), std::collections::HashSet::new());
    let entries = b.count(&root_tree, 0, &mut memo, &mut files)?;
    let distinct = memo.len().saturating_add(files.len());
    let limit = TREE_ENTRIES_BASE.saturating_add(distinct.saturating_mul(TREE_ENTRIES_PER_OBJECT));
    if entries > limit as u64 {
        return Err(StoreError::Format(format!(
            "commit {commit}: its tree has {entries} entries from only {distinct} distinct \
             objects (more than {limit}): shared dirtrees repeated over and over"
        )));
    }
    drop((memo, files));
    let mut root = Directory::new(b.dirmeta(&root_meta)?);
    b.dir(&root_tree, &mut root, 0)?;
    let mut fs = b.fs;
    fs.root = root;
    Ok(fs)
}

/// Builds the commit's EROFS image and stores it; returns the image's object id.
pub fn create_image<ObjectID: FsVerityHashValue, L: ObjectLookup<ObjectID>>(
    repo: &Repository<ObjectID>,
    objects: &L,
    commit: &Checksum,
) -> Result<ObjectID, StoreError> {
    let fs = build_filesystem(objects, commit)?;
    fs.commit_image(repo, None)
        .map_err(|e| StoreError::composefs("writing EROFS image", e))
}
