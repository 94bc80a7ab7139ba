//! The EROFS image of a commit: its composefs filesystem tree built from the commit's
//! objects, exactly as composefs-ostree builds it, and stored in the repository.

use cfsync_formats::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;
use composefs::fsverity::FsVerityHashValue;
use composefs::generic_tree::{LeafId, Stat};
use composefs::repository::Repository;
use composefs::tree::{Directory, FileSystem, Inode, LeafContent, RegularFile};

use super::StoreError;
use super::object::{ObjectLookup, parse_file_entry};

/// Deepest directory nesting accepted when building an image (libostree uses 256 too).
const MAX_TREE_DEPTH: usize = 256;
/// Directory entries an image may have beyond [`TREE_ENTRIES_PER_OBJECT`] per distinct
/// dirtree and file object it is built from. Dirtrees are shared by checksum, so 41
/// dirtrees that each hold the next one twice describe 2^40 paths: the image build
/// expands every path, and without this bound (checked before building) would run
/// until memory runs out.
const TREE_ENTRIES_BASE: usize = 1024 * 1024;
/// Directory entries allowed per distinct object met (real trees have about one path
/// per object, a few more where identical files or directories repeat).
const TREE_ENTRIES_PER_OBJECT: usize = 64;

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
fn build_filesystem<ObjectID: FsVerityHashValue, L: ObjectLookup<ObjectID>>(
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
pub(crate) fn create_image<ObjectID: FsVerityHashValue, L: ObjectLookup<ObjectID>>(
    repo: &Repository<ObjectID>,
    objects: &L,
    commit: &Checksum,
) -> Result<ObjectID, StoreError> {
    let fs = build_filesystem(objects, commit)?;
    fs.commit_image(repo, None)
        .map_err(|e| StoreError::composefs("writing EROFS image", e))
}
