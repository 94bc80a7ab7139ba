//! OSTree refs: composefs stream refs `streams/refs/ostree/<escaped ref>`, each a symlink
//! to the `ostree-commit-<hex>` stream of the commit it names.

use std::path::Path;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use super::commit_stream::{commit_stream_name, ostree_ref_name, unescape_ref_name};
use super::{Store, StoreError, dir_entries};

impl<ObjectID: FsVerityHashValue> Store<ObjectID> {
    /// The commit an OSTree ref points at, if the ref exists.
    pub fn resolve_ref(&self, name: &str) -> Result<Option<Checksum>, StoreError> {
        let link = self.path.join("streams/refs").join(ostree_ref_name(name));
        match std::fs::read_link(&link) {
            Ok(target) => {
                parse_commit_link(&target)
                    .map(Some)
                    .ok_or_else(|| StoreError::Repository {
                        path: link.clone(),
                        what: format!(
                            "ref does not point at a commit stream: {}",
                            target.display()
                        ),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(link, e)),
        }
    }

    /// Points OSTree ref `name` at `commit` (atomically replacing it). The commit stream
    /// must already be stored with its image.
    pub fn set_ref(&self, name: &str, commit: &Checksum) -> Result<(), StoreError> {
        self.repo
            .name_stream(&commit_stream_name(commit), &ostree_ref_name(name))
            .map_err(|e| StoreError::composefs("setting ref", e))
    }

    /// Removes OSTree ref `name`; returns whether it existed.
    pub fn delete_ref(&self, name: &str) -> Result<bool, StoreError> {
        let link = self.path.join("streams/refs").join(ostree_ref_name(name));
        match std::fs::remove_file(&link) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(link, e)),
        }
    }

    /// All OSTree refs in the repository, sorted by name.
    pub fn list_refs(&self) -> Result<Vec<(String, Checksum)>, StoreError> {
        let dir = self.path.join("streams/refs/ostree");
        let mut out = Vec::new();
        for ent in dir_entries(&dir)? {
            let name = ent.file_name().to_string_lossy().into_owned();
            if let Ok(target) = std::fs::read_link(ent.path())
                && let Some(c) = parse_commit_link(&target)
            {
                out.push((unescape_ref_name(&name), c));
            }
        }
        out.sort();
        Ok(out)
    }
}

fn parse_commit_link(target: &Path) -> Option<Checksum> {
    target
        .file_name()?
        .to_str()?
        .strip_prefix("ostree-commit-")?
        .parse()
        .ok()
}
