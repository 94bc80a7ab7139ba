//! Mounts in tests: whether this process may mount, and mount points that unmount
//! themselves.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{describe, output};

/// Whether this process may mount (root); tests print a loud notice and skip only the
/// mount comparisons when it may not.
pub fn can_mount() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! NOT ROOT: SKIPPING THE MOUNT COMPARISONS (EROFS + overlayfs need root).\n\
         !!! The image ids are still compared. Run as root (as CI does) for the rest.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    false
}

/// A mount point that is unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct Mounted {
    /// The mount point.
    pub dir: PathBuf,
}

impl Mounted {
    /// Runs `cmd` (which mounts something at `dir`) and checks that it did.
    pub fn by(mut cmd: Command, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = output(&mut cmd);
        assert!(
            out.status.success(),
            "mounting at {} failed:\n{}",
            dir.display(),
            describe(&out)
        );
        let m = Self {
            dir: dir.to_path_buf(),
        };
        let parent_dev = std::fs::metadata(dir.parent().unwrap()).unwrap().dev();
        let dev = std::fs::metadata(dir).unwrap().dev();
        assert_ne!(dev, parent_dev, "nothing is mounted at {}", dir.display());
        m
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::DETACH);
    }
}
