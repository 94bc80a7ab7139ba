//! Pulls into a small file system (an ext4 image on a loop device, filled up to leave
//! a chosen amount free):
//!
//! - the scratch delta to v1 declares its size: the pull refuses before fetching any
//!   part, saying how much it needs and how much is available; nothing is written but
//!   the repository's own files, `cfsync fsck` passes, and once there is room the same
//!   pull completes with the reference image;
//! - the object route cannot know its size: it runs out of space mid-way, fails with a
//!   clear "no space" error naming what it was writing and the space left, leaves the
//!   repository sound, and once there is room the next pull completes with the
//!   reference image, taking what was verified before from the resume journal.
//!
//! Needs root (mount); without it the tests say so loudly and return.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_tests::faults::FaultServer;
use cfsync_tests::{Repo, demo, describe, output, run_checked, tempdir};

/// An ext4 image mounted on a loop device; unmounted when dropped.
struct SmallFs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl SmallFs {
    /// A `mib` MiB file system, or `None` (with a notice) when this process may not
    /// mount.
    fn new(mib: u64) -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("!!! NOT ROOT: skipping the disk-full tests (they mount a loop device)");
            return None;
        }
        let dir = tempdir();
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        std::fs::File::create(&img)
            .unwrap()
            .set_len(mib * 1024 * 1024)
            .unwrap();
        run_checked(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0"])
                .arg(&img),
        );
        run_checked(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&img)
                .arg(&mnt),
        );
        Some(Self { _dir: dir, mnt })
    }

    fn free(&self) -> u64 {
        cfsync_engine::space::available(&self.mnt).unwrap()
    }

    /// Fills the file system with a file `filler` until `left` bytes remain free.
    fn fill_leaving(&self, left: u64) {
        let filler = self.mnt.join("filler");
        let _ = std::fs::remove_file(&filler);
        let free = self.free();
        assert!(free > left, "only {free} bytes free");
        // Block-sized steps; ext4 may hold a little back for metadata.
        let len = (free - left) / 4096 * 4096;
        run_checked(
            Command::new("fallocate")
                .args(["-l", &len.to_string()])
                .arg(&filler),
        );
        let now = self.free();
        assert!(
            now <= left + 64 * 1024 && now + 64 * 1024 >= left,
            "{now} free, wanted {left}"
        );
    }

    fn make_room(&self) {
        std::fs::remove_file(self.mnt.join("filler")).unwrap();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

fn pull(repo: &Repo, args: &[&str]) -> Output {
    output(&mut repo.command(args))
}

fn err_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_lowercase()
}

/// Files under `dir`, recursively.
fn files(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                n += files(&e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn a_delta_that_cannot_fit_is_refused_before_fetching() {
    let Some(fs) = SmallFs::new(16) else { return };
    let d = demo();
    let server = FaultServer::start(&d.repo);
    let url = server.url();
    let repo = Repo::new(fs.mnt.join("repo"));
    // The scratch delta to v1 declares 649813 uncompressed bytes in one part of 183097:
    // it needs 1482723 bytes; leave a little over half of that.
    fs.fill_leaving(800 * 1024);
    let args = ["pull", "--json", "--commit", &d.v1, &url, &d.refname];
    let out = pull(&repo, &args);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = err_of(&out);
    eprintln!("refused: {}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "static delta",
        "needs 1.4 mib (1482723 bytes) of free space",
        "is available",
    ] {
        assert!(err.contains(want), "no {want:?} in:\n{}", describe(&out));
    }
    // Refused before any part was requested; nothing stored.
    let log = server.log();
    assert!(
        !log.iter()
            .any(|l| l.path.starts_with("deltas/") && !l.path.ends_with("superblock")),
        "a part was fetched: {log:?}"
    );
    assert!(
        files(&repo.path.join("objects")) <= 1,
        "{} files under objects/",
        files(&repo.path.join("objects"))
    );
    repo.fsck();
    assert!(repo.refs().is_empty());

    fs.make_room();
    let out = pull(&repo, &args);
    assert!(out.status.success(), "{}", describe(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["commit"], d.v1.as_str());
    assert!(st["delta"].is_string(), "{st}");
    repo.fsck();
    // The same image as a pull with room to spare.
    let tmp = tempdir();
    let reference = Repo::new(tmp.path().join("repo"));
    let st2: serde_json::Value =
        serde_json::from_slice(&run_checked(&mut reference.command(args)).stdout).unwrap();
    assert_eq!(st["image"], st2["image"]);
}

#[test]
fn running_out_of_space_mid_pull_keeps_the_repository_usable() {
    let Some(fs) = SmallFs::new(16) else { return };
    let d = demo();
    let server = FaultServer::start(&d.repo);
    let url = server.url();
    let repo = Repo::new(fs.mnt.join("repo"));
    // v2 takes about 1.7 MB as a cfsync repository: leave 700 KB.
    fs.fill_leaving(700 * 1024);
    let args = ["pull", "--json", "--no-deltas", &url, &d.refname];
    let out = pull(&repo, &args);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = err_of(&out);
    eprintln!("failed: {}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "no space left on device",
        "left on this file system",
        "pull again",
    ] {
        assert!(
            err.contains(want),
            "not a clear no-space error (no {want:?}):\n{}",
            describe(&out)
        );
    }
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{}",
        describe(&out)
    );
    assert!(repo.refs().is_empty());

    // With room again: fsck passes on what the failed pull left, the pull completes and
    // resumes from what was verified.
    fs.make_room();
    repo.fsck();
    server.reset_log();
    let out = pull(&repo, &args);
    assert!(out.status.success(), "{}", describe(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["commit"], d.v2.as_str());
    // What was verified before the disk filled up comes from the resume journal (whose
    // last, torn write is cut off rather than the whole journal dropped).
    eprintln!(
        "after room was made: {} objects resumed, {} fetched",
        st["objects_resumed"], st["objects_fetched"]
    );
    let resumed = st["objects_resumed"].as_u64().unwrap();
    assert!(resumed > 0, "nothing taken from the resume journal: {st}");
    repo.fsck();
    let tmp = tempdir();
    let reference = Repo::new(tmp.path().join("repo"));
    let st2: serde_json::Value =
        serde_json::from_slice(&run_checked(&mut reference.command(args)).stdout).unwrap();
    assert_eq!(st["image"], st2["image"]);
}
