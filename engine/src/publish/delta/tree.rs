//! The repository side: revisions resolved, commits read, trees walked into the lists
//! of objects a delta carries (`Repo`, `Tree`).
//!
//! Reads through the engine's [`LocalSource`], so every repository mode ostree makes
//! (archive, bare, bare-user, bare-user-only) works the same.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::dirtree::DirTreeRef;
use cfsync_formats::file::FileHeader;
use cfsync_formats::object::{ObjectType, loose_path};

use super::error::DeltaError;
use crate::source::LocalSource;
use crate::source::{FileContent, PathKind};

/// Largest metadata object read (ostree's `OSTREE_MAX_METADATA_SIZE`).
const MAX_METADATA: u64 = 128 << 20;

/// A repository opened for reading.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) source: LocalSource,
    pub(crate) path: PathBuf,
}

/// The objects of one commit's tree.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// Dirtree and dirmeta objects with their bytes, in walk order, each once.
    pub(crate) meta: Vec<(ObjectType, Checksum, Vec<u8>)>,
    /// File objects, each once, with the first path found for it.
    pub(crate) files: Vec<(String, Checksum)>,
    /// Every object's checksum (metadata and files).
    pub(crate) all: HashSet<Checksum>,
}

impl Repo {
    pub(crate) fn open(path: &Path) -> Result<Repo, DeltaError> {
        Ok(Repo {
            source: LocalSource::open(path, None)?,
            path: path.to_owned(),
        })
    }

    /// A ref (`refs/heads/…`, `remote:ref`) or a 64-digit checksum.
    pub(crate) fn resolve(&self, rev: &str) -> Result<Checksum, DeltaError> {
        if rev.len() == 64
            && let Ok(c) = rev.parse::<Checksum>()
        {
            return Ok(c);
        }
        self.source
            .resolve_ref(rev)?
            .ok_or_else(|| DeltaError::NoRev {
                repo: self.path.clone(),
                rev: rev.to_owned(),
            })
    }

    /// A metadata object's bytes, checked against its checksum.
    pub(crate) fn metadata(
        &self,
        ty: ObjectType,
        checksum: &Checksum,
    ) -> Result<Vec<u8>, DeltaError> {
        let what = ty.as_str();
        let path = loose_path(checksum, ty, self.source.mode());
        let bytes = self
            .source
            .get_bytes(&path, PathKind::Content, MAX_METADATA)?
            .ok_or_else(|| DeltaError::Missing {
                repo: self.path.clone(),
                what,
                checksum: *checksum,
            })?;
        if Checksum::of(&bytes) != *checksum {
            return Err(self.corrupt(what, checksum, "its SHA-256 differs from its name"));
        }
        Ok(bytes)
    }

    /// The detached metadata of a commit, if any.
    pub(crate) fn commitmeta(&self, commit: &Checksum) -> Result<Option<Vec<u8>>, DeltaError> {
        let path = loose_path(commit, ObjectType::CommitMeta, self.source.mode());
        Ok(self
            .source
            .get_bytes(&path, PathKind::Metadata, MAX_METADATA)?)
    }

    /// A file object's header and whole content (a symlink's content is empty).
    pub(crate) fn file(&self, checksum: &Checksum) -> Result<(FileHeader, Vec<u8>), DeltaError> {
        let (header, reader) = self.open_file(checksum)?;
        let content = self.content(checksum, &header, reader)?;
        Ok((header, content))
    }

    /// The whole content of file object `checksum`, read from `reader` as
    /// [`Self::open_file`] returned it with `header` (empty for a symlink).
    pub(crate) fn content(
        &self,
        checksum: &Checksum,
        header: &FileHeader,
        mut reader: FileContent,
    ) -> Result<Vec<u8>, DeltaError> {
        // The size comes from the repository's file: reserve at most 1 MiB up front.
        let mut content =
            Vec::with_capacity(usize::try_from(header.size.min(1 << 20)).unwrap_or(0));
        if header.is_regular() {
            reader
                .by_ref()
                .take(header.size.saturating_add(1))
                .read_to_end(&mut content)
                .map_err(|e| self.corrupt("file", checksum, &e.to_string()))?;
            if u64::try_from(content.len()).ok() != Some(header.size) {
                return Err(self.corrupt("file", checksum, "content length differs from header"));
            }
        }
        Ok(content)
    }

    /// A file object's header only.
    pub(crate) fn header(&self, checksum: &Checksum) -> Result<FileHeader, DeltaError> {
        Ok(self.open_file(checksum)?.0)
    }

    /// Opens file object `checksum`: its header and a reader of its content.
    pub(crate) fn open_file(
        &self,
        checksum: &Checksum,
    ) -> Result<(FileHeader, FileContent), DeltaError> {
        self.source
            .open_file_object(checksum)?
            .ok_or_else(|| DeltaError::Missing {
                repo: self.path.clone(),
                what: "file",
                checksum: *checksum,
            })
    }

    /// The size of the object file a pull would fetch for a fallback (`.filez` in an
    /// archive repository; the content size otherwise).
    pub(crate) fn stored_size(&self, checksum: &Checksum, content: u64) -> u64 {
        let path = loose_path(checksum, ObjectType::File, self.source.mode());
        match self.source.open_reader(&path, u64::MAX) {
            Ok(Some((_, len, _))) => len,
            _ => content,
        }
    }

    pub(crate) fn corrupt(
        &self,
        what: &'static str,
        checksum: &Checksum,
        reason: &str,
    ) -> DeltaError {
        DeltaError::Corrupt {
            repo: self.path.clone(),
            what,
            checksum: *checksum,
            reason: reason.to_owned(),
        }
    }

    /// Walks the tree of `commit` (bytes already read), breadth first.
    pub(crate) fn walk(&self, commit_bytes: &[u8], commit: &Checksum) -> Result<Tree, DeltaError> {
        let c = CommitRef::from_bytes(commit_bytes)
            .map_err(|e| self.corrupt("commit", commit, &e.to_string()))?;
        let mut tree = Tree::default();
        let mut queue = std::collections::VecDeque::new();
        queue.push_back((String::new(), c.root_contents(), c.root_metadata()));
        while let Some((dir, contents, meta)) = queue.pop_front() {
            if tree.all.insert(meta) {
                let bytes = self.metadata(ObjectType::DirMeta, &meta)?;
                tree.meta.push((ObjectType::DirMeta, meta, bytes));
            }
            if !tree.all.insert(contents) {
                continue;
            }
            let bytes = self.metadata(ObjectType::DirTree, &contents)?;
            {
                let dt = DirTreeRef::from_bytes(&bytes)
                    .map_err(|e| self.corrupt("dirtree", &contents, &e.to_string()))?;
                for f in dt.files() {
                    let (name, csum) =
                        f.map_err(|e| self.corrupt("dirtree", &contents, &e.to_string()))?;
                    if tree.all.insert(csum) {
                        tree.files.push((format!("{dir}/{name}"), csum));
                    }
                }
                for d in dt.dirs() {
                    let (name, c, m) =
                        d.map_err(|e| self.corrupt("dirtree", &contents, &e.to_string()))?;
                    queue.push_back((format!("{dir}/{name}"), c, m));
                }
            }
            tree.meta.push((ObjectType::DirTree, contents, bytes));
        }
        Ok(tree)
    }
}

/// Paths of a tree's files: path → checksum, and basename → checksums.
#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    pub(crate) by_path: HashMap<String, Checksum>,
    pub(crate) by_name: HashMap<String, Vec<Checksum>>,
}

impl PathIndex {
    pub(crate) fn new(tree: &Tree) -> Self {
        let mut idx = PathIndex::default();
        for (path, csum) in &tree.files {
            idx.by_path.insert(path.clone(), *csum);
            let name = path.rsplit('/').next().unwrap_or(path);
            idx.by_name
                .entry(super::pair::stem(name))
                .or_default()
                .push(*csum);
        }
        idx
    }
}
