//! `cfsync mount`: mounts a commit's composefs image.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::Store;

use super::resolve::resolve_commit;

/// Mounts the image of the commit `name` names at `dir` (read-only).
pub(super) fn mount<O: FsVerityHashValue>(store: &Store<O>, name: &str, dir: &Path) -> Result<()> {
    let commit = resolve_commit(store, name)?;
    let image = store
        .commit_image(&commit)?
        .ok_or_else(|| anyhow!("commit {commit} has no image; pull it again"))?;
    store
        .repo()
        .mount_at(&image.to_hex(), dir, &Default::default())
        .with_context(|| format!("mounting image {} at {}", image.to_hex(), dir.display()))?;
    println!("mounted {name} ({commit}) at {}", dir.display());
    Ok(())
}
