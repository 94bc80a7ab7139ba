//! The commits of a store: listing them, loading a commit's table, finding its image,
//! storing a pulled commit (image first, then its stream) and unlinking those no ref
//! names.

use std::path::Path;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use super::commit_stream::{
    CommitStream, CommitStreamBuilder, IMAGE_REF_KEY, OSTREE_COMMIT_CONTENT_TYPE,
    commit_stream_name,
};
use super::{Store, StoreError, dir_entries, image};

impl<ObjectID: FsVerityHashValue> Store<ObjectID> {
    /// Every commit stored in the repository (whether or not a ref names it).
    pub fn list_commits(&self) -> Result<Vec<Checksum>, StoreError> {
        let dir = self.path.join("streams");
        let mut out = Vec::new();
        for ent in dir_entries(&dir)? {
            let name = ent.file_name();
            if let Some(hex) = name.to_str().and_then(|n| n.strip_prefix("ostree-commit-"))
                && let Ok(c) = hex.parse::<Checksum>()
            {
                out.push(c);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Unlinks the commit streams no ref names, each after the `images/` entry of its
    /// image, and returns how many commits went. Run before the composefs garbage
    /// collection (which deletes objects first and dangling links last): with the roots
    /// gone first, a collection killed half-way leaves only unreferenced objects, which
    /// the next one removes, never a stream or image whose objects are partly deleted.
    /// Returns the number of (stream, image) links removed.
    pub fn unlink_unreferenced_commits(&self) -> Result<(u64, u64), StoreError> {
        let live: std::collections::HashSet<Checksum> =
            self.list_refs()?.into_iter().map(|(_, c)| c).collect();
        let (mut streams, mut images) = (0, 0);
        for commit in self.list_commits()? {
            if live.contains(&commit) {
                continue;
            }
            // An unreadable stream has no image to find; its link goes all the same.
            if let Ok(Some(image)) = self.commit_image(&commit) {
                images += remove_link(&self.path.join("images").join(image.to_hex()))?;
            }
            streams += remove_link(&self.path.join("streams").join(commit_stream_name(&commit)))?;
        }
        Ok((streams, images))
    }

    /// Loads a stored commit's object table.
    pub fn load_commit(
        &self,
        commit: &Checksum,
    ) -> Result<Option<CommitStream<ObjectID>>, StoreError> {
        CommitStream::load(&self.repo, commit)
    }

    /// The image of a stored commit, when the commit and its image are complete.
    pub fn commit_image(&self, commit: &Checksum) -> Result<Option<ObjectID>, StoreError> {
        if self
            .repo
            .has_stream(&commit_stream_name(commit))
            .map_err(|e| StoreError::composefs("looking up commit stream", e))?
            .is_none()
        {
            return Ok(None);
        }
        let reader = self
            .repo
            .open_stream(
                &commit_stream_name(commit),
                None,
                Some(OSTREE_COMMIT_CONTENT_TYPE),
            )
            .map_err(|e| StoreError::composefs("opening commit stream", e))?;
        Ok(reader.lookup_named_ref(IMAGE_REF_KEY).cloned())
    }

    /// Stores a complete commit, first half: builds and stores its EROFS image (an
    /// object like any other: nothing names it yet). The ref is not touched.
    pub fn store_image(
        &self,
        builder: &CommitStreamBuilder<ObjectID>,
    ) -> Result<ObjectID, StoreError> {
        let started = std::time::Instant::now();
        let image = image::create_image(&self.repo, builder, builder.commit())?;
        tracing::debug!("{:.0?}: EROFS image written", started.elapsed());
        Ok(image)
    }

    /// Stores a complete commit, second half: writes the commit stream naming `image`
    /// (from [`Self::store_image`]), after composefs's barrier (everything written so far
    /// reaches the disk first).
    pub fn store_commit_stream(
        &self,
        builder: &CommitStreamBuilder<ObjectID>,
        image: &ObjectID,
    ) -> Result<ObjectID, StoreError> {
        let started = std::time::Instant::now();
        let stream = builder.write(&self.repo, Some(image))?;
        tracing::debug!("{:.0?}: commit stream written", started.elapsed());
        Ok(stream)
    }
}

/// Removes a symlink (1), or finds it already gone (0).
fn remove_link(path: &Path) -> Result<u64, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(1),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::io(path, e)),
    }
}
