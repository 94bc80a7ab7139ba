//! Helpers shared by the fixture tests (`pull_fixture.rs`, `crash.rs`): a cfsync
//! repository driven through the CLI, mounts that unmount themselves, tree snapshots
//! compared field by field, and a seeded random source.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_tests::{cfsctl, cfsync_command, output, run_checked, sha256_hex};

/// A cfsync repository on disk, driven through the `cfsync` binary.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The repository directory.
    pub path: PathBuf,
}

/// The text of a command's stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Repo {
    /// A repository at `path` (created by the first pull or `remote add`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `cfsync --repo PATH ARGS…` ready to run.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = cfsync_command();
        c.arg("--repo").arg(&self.path).args(args);
        c
    }

    /// Runs cfsync and returns its output, whatever the exit status.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output(&mut self.command(args))
    }

    /// Runs cfsync; panics with its output unless it succeeds; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        String::from_utf8_lossy(&run_checked(&mut self.command(args)).stdout).into_owned()
    }

    /// Adds remote `name` at `url` trusting the fixture key.
    pub fn add_remote(&self, name: &str, url: &str, key: &Path) {
        self.ok([
            OsStr::new("remote"),
            OsStr::new("add"),
            OsStr::new(name),
            OsStr::new(url),
            OsStr::new("--gpg-import"),
            key.as_os_str(),
        ]);
    }

    /// `pull --json EXTRA… REMOTE REF`; panics unless it succeeds; returns the stats.
    pub fn pull(&self, remote: &str, refname: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["pull", "--json"];
        args.extend_from_slice(extra);
        args.extend([remote, refname]);
        let out = self.ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("pull --json printed no JSON ({e}):\n{out}"))
    }

    /// `show REF --json`, or `None` when cfsync cannot show it.
    pub fn show(&self, rev: &str) -> Option<serde_json::Value> {
        let out = self.run(["show", rev, "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The image id of `rev` as `show --json` reports it; panics if it has none.
    pub fn image(&self, rev: &str) -> String {
        let v = self
            .show(rev)
            .unwrap_or_else(|| panic!("cfsync show {rev} failed in {}", self.path.display()));
        v["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{rev} has no image: {v}"))
            .to_owned()
    }

    /// Every ref and its commit (`refs --json`).
    pub fn refs(&self) -> BTreeMap<String, String> {
        let out = self.ok(["refs", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("refs --json");
        v.as_array()
            .expect("refs --json is an array")
            .iter()
            .map(|r| {
                (
                    r["ref"].as_str().unwrap().to_owned(),
                    r["commit"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// `fsck --json`; panics with the report unless the repository is sound.
    pub fn fsck(&self) {
        let out = self.run(["fsck", "--json"]);
        assert!(
            out.status.success(),
            "cfsync fsck failed:\n{}",
            describe(&out)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fsck --json");
        assert_eq!(v["ok"], true, "fsck: {v}");
    }
}

/// Number of a JSON field that must be a non-negative integer.
pub fn num(v: &serde_json::Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("field {field} missing or not a number in {v}"))
}

/// `cfsctl --repo R ARGS…`; panics with the output unless it succeeds; returns stdout.
pub fn cfsctl_ok<I, S>(repo: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(cfsctl());
    c.arg("--repo").arg(repo).args(args);
    String::from_utf8_lossy(&run_checked(&mut c).stdout).into_owned()
}

/// Creates an (insecure: this kernel has no fs-verity) cfsctl repository.
pub fn cfsctl_init(repo: &Path) {
    let mut c = Command::new(cfsctl());
    c.arg("init").arg("--insecure").arg(repo);
    run_checked(&mut c);
}

/// `cfsctl ostree pull URL REV` (`--no-delta` when asked); returns the printed image id.
pub fn cfsctl_pull(repo: &Path, url: &str, rev: &str, no_delta: bool) -> String {
    let mut args = vec!["ostree", "pull"];
    if no_delta {
        args.push("--no-delta");
    }
    args.extend([url, rev]);
    let out = cfsctl_ok(repo, &args);
    field_line(&out, "image")
        .unwrap_or_else(|| panic!("cfsctl ostree pull printed no image line:\n{out}"))
}

/// The value of a `NAME  VALUE` line.
pub fn field_line(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(name))
            .then(|| it.next().map(str::to_owned))
            .flatten()
    })
}

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

/// One entry of a tree, as compared between a mounted image and an `ostree checkout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// 'd', '-', 'l' or '?'.
    pub kind: char,
    /// Permission bits with setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Symlink target.
    pub target: Option<String>,
    /// Regular file: size and sha256 of the content.
    pub content: Option<(u64, String)>,
    /// Extended attributes (overlayfs's own `trusted.overlay.*` excluded).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

fn xattrs_of(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(e) => panic!("llistxattr {}: {e}", path.display()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(path, name.as_str(), &mut value)
            .unwrap_or_else(|e| panic!("lgetxattr {} {name}: {e}", path.display()));
        value.truncate(len);
        out.insert(name, value);
    }
    out
}

/// Every path under `root` (relative, "/" for the root itself) with its metadata,
/// content hash, symlink target and xattrs.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), "/".to_owned())];
    while let Some((path, rel)) = stack.pop() {
        let md =
            std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            '-'
        } else if ft.is_symlink() {
            'l'
        } else {
            '?'
        };
        let target = ft.is_symlink().then(|| {
            std::fs::read_link(&path)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        });
        let content = ft.is_file().then(|| {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (md.len(), sha256_hex(&data))
        });
        if ft.is_dir() {
            for ent in std::fs::read_dir(&path).unwrap() {
                let ent = ent.unwrap();
                let name = ent.file_name().to_string_lossy().into_owned();
                let child = if rel == "/" {
                    format!("/{name}")
                } else {
                    format!("{rel}/{name}")
                };
                stack.push((ent.path(), child));
            }
        }
        out.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                target,
                content,
                xattrs: xattrs_of(&path),
            },
        );
    }
    out
}

/// Panics with the first differences unless the two snapshots are equal.
pub fn assert_same_tree(what: &str, got: &BTreeMap<String, Node>, want: &BTreeMap<String, Node>) {
    let mut diffs = Vec::new();
    for (p, w) in want {
        match got.get(p) {
            None => diffs.push(format!("{p}: missing")),
            Some(g) if g != w => diffs.push(format!("{p}: got {g:?}, want {w:?}")),
            Some(_) => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        diffs.push(format!("{p}: unexpected"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences (of {} paths), first ones:\n{}",
        diffs.len(),
        want.len(),
        diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A small seeded generator (xorshift64*), so a failing run can be repeated with the
/// same seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced by a fixed constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Copies a directory tree with `cp -a` (modes, owners, xattrs, hard links kept).
pub fn copy_tree(from: &Path, to: &Path) {
    run_checked(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// A scratch directory for data that is never mounted from: on tmpfs (`/dev/shm`) when
/// there is one, else [`cfsync_tests::tempdir`]. Deleting thousands of files from a disk
/// mounted with `discard` takes seconds per repository, which the CI budget cannot pay;
/// EROFS images cannot be mounted from tmpfs, so repositories that are mounted stay on
/// disk ([`cfsync_tests::tempdir`]).
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("cfsync-test-")
            .tempdir_in(shm)
    {
        return d;
    }
    cfsync_tests::tempdir()
}
