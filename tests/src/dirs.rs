//! Where tests put things: the workspace root, temporary directories (on disk or tmpfs)
//! and copies of trees.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::command::run_checked;

/// The root of the cfsync workspace (the directory holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Makes a fresh temporary directory on a file system that keeps xattrs (under
/// `/var/tmp` unless `TMPDIR` says otherwise), removed when dropped.
pub fn tempdir() -> TempDir {
    let base = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    match tempfile::Builder::new()
        .prefix("cfsync-test-")
        .tempdir_in(&base)
    {
        Ok(d) => d,
        Err(e) => panic!(
            "cannot create a temporary directory in {}: {e}",
            base.display()
        ),
    }
}

/// Copies a directory tree with `cp -a` (modes, owners, xattrs, hard links kept).
pub fn copy_tree(from: &Path, to: &Path) {
    run_checked(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// A scratch directory for data that is never mounted from: on tmpfs (`/dev/shm`) when
/// there is one, else [`tempdir`]. Deleting thousands of files from a disk
/// mounted with `discard` takes seconds per repository, which the CI budget cannot pay;
/// EROFS images cannot be mounted from tmpfs, so repositories that are mounted stay on
/// disk ([`tempdir`]).
pub fn scratch_dir() -> TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("cfsync-test-")
            .tempdir_in(shm)
    {
        return d;
    }
    tempdir()
}
