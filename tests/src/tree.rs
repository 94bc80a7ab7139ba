//! Test trees on disk ([`TreeBuilder`]): files, symlinks, hard links, modes, owners and
//! xattrs, with the edge cases cfsync must carry.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::data::pseudo_random;
use crate::dirs::copy_tree;

/// Writes test trees: files, symlinks, hard links, modes, owners and xattrs.
///
/// Paths are relative to the root; parent directories are created as needed (mode
/// 0755). Every method panics with the path on failure and returns `&Self` for chaining.
#[derive(Debug, Clone)]
pub struct TreeBuilder {
    root: PathBuf,
}

/// What [`TreeBuilder::edge_cases`] puts at its long-name path: a 255-byte file name.
pub fn long_name() -> String {
    "n".repeat(251) + ".txt"
}

impl TreeBuilder {
    /// Creates the directory `root` (and its parents) and builds inside it.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        if let Err(e) = fs::create_dir_all(&root) {
            panic!("cannot create {}: {e}", root.display());
        }
        Self { root }
    }

    /// Copies the tree at `src` to `dest` (`cp -a`: modes, owners, xattrs and hard links
    /// kept) and builds on the copy — how a test makes v2 from v1.
    pub fn copy_of(src: &Path, dest: impl Into<PathBuf>) -> Self {
        let dest = dest.into();
        copy_tree(src, &dest);
        Self { root: dest }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    fn parent_dirs(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent()
            && let Err(e) = fs::create_dir_all(parent)
        {
            panic!("cannot create {}: {e}", parent.display());
        }
        p
    }

    /// Creates the directory `rel` (and parents).
    pub fn dir(&self, rel: &str) -> &Self {
        let p = self.path(rel);
        if let Err(e) = fs::create_dir_all(&p) {
            panic!("cannot create {}: {e}", p.display());
        }
        self
    }

    /// Writes `contents` to the file `rel` (created with mode 0644, or truncated).
    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.parent_dirs(rel);
        if let Err(e) = fs::write(&p, contents.as_ref()) {
            panic!("cannot write {}: {e}", p.display());
        }
        self
    }

    /// Writes `contents` to `rel` and sets its mode (see [`TreeBuilder::chmod`]).
    pub fn file_with_mode(&self, rel: &str, contents: impl AsRef<[u8]>, mode: u32) -> &Self {
        self.file(rel, contents).chmod(rel, mode)
    }

    /// Creates the empty file `rel`.
    pub fn empty_file(&self, rel: &str) -> &Self {
        self.file(rel, [])
    }

    /// Writes `len` bytes of [`pseudo_random`]`(seed, len)` to `rel`.
    pub fn random_file(&self, rel: &str, len: usize, seed: u64) -> &Self {
        self.file(rel, pseudo_random(seed, len))
    }

    /// Makes `rel` a symlink to `target` (replacing whatever is at `rel`).
    pub fn symlink(&self, rel: &str, target: impl AsRef<Path>) -> &Self {
        let p = self.parent_dirs(rel);
        if fs::symlink_metadata(&p).is_ok() {
            self.remove(rel);
        }
        if let Err(e) = std::os::unix::fs::symlink(target.as_ref(), &p) {
            panic!("cannot create symlink {}: {e}", p.display());
        }
        self
    }

    /// Makes `rel` a hard link to the existing file `existing`.
    pub fn hardlink(&self, rel: &str, existing: &str) -> &Self {
        let p = self.parent_dirs(rel);
        if let Err(e) = fs::hard_link(self.path(existing), &p) {
            panic!("cannot hard-link {} to {existing}: {e}", p.display());
        }
        self
    }

    /// Sets the permission bits of `rel`, including setuid (0o4000), setgid (0o2000) and
    /// sticky (0o1000).
    pub fn chmod(&self, rel: &str, mode: u32) -> &Self {
        let p = self.path(rel);
        if let Err(e) = fs::set_permissions(&p, fs::Permissions::from_mode(mode)) {
            panic!("cannot chmod {:o} {}: {e}", mode, p.display());
        }
        self
    }

    /// Sets the owner of `rel` without following a symlink (needs root).
    pub fn chown(&self, rel: &str, uid: u32, gid: u32) -> &Self {
        let p = self.path(rel);
        if let Err(e) = std::os::unix::fs::lchown(&p, Some(uid), Some(gid)) {
            panic!("cannot chown {uid}:{gid} {} (needs root): {e}", p.display());
        }
        self
    }

    /// Sets the extended attribute `name` (e.g. `user.foo`; `trusted.*` needs root and
    /// is the only namespace a symlink takes) on `rel`, without following a symlink.
    pub fn xattr(&self, rel: &str, name: &str, value: impl AsRef<[u8]>) -> &Self {
        let p = self.path(rel);
        if let Err(e) =
            rustix::fs::lsetxattr(&p, name, value.as_ref(), rustix::fs::XattrFlags::empty())
        {
            panic!("cannot set xattr {name} on {}: {e}", p.display());
        }
        self
    }

    /// Overwrites bytes of the existing file `rel` at `offset` (the file grows if needed).
    pub fn patch(&self, rel: &str, offset: usize, bytes: &[u8]) -> &Self {
        let mut data = self.read(rel);
        let end = offset + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset..end].copy_from_slice(bytes);
        self.write_keep_mode(rel, &data)
    }

    /// Overwrites one byte in every `every` bytes of `rel` (starting at `every / 2`), so
    /// that no rolling-checksum chunk survives but bsdiff finds a tiny patch: ostree's
    /// delta compiler then emits a bspatch op for the file.
    pub fn scatter_patch(&self, rel: &str, every: usize) -> &Self {
        assert!(every > 0, "scatter_patch: every must be > 0");
        let mut data = self.read(rel);
        let mut off = every / 2;
        while off < data.len() {
            data[off] = data[off].wrapping_add(0x5a);
            off += every;
        }
        self.write_keep_mode(rel, &data)
    }

    /// Appends `bytes` to the existing file `rel`.
    pub fn append(&self, rel: &str, bytes: &[u8]) -> &Self {
        let p = self.path(rel);
        let r = OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| f.write_all(bytes));
        if let Err(e) = r {
            panic!("cannot append to {}: {e}", p.display());
        }
        self
    }

    /// Removes `rel`: a file, a symlink or a whole directory.
    pub fn remove(&self, rel: &str) -> &Self {
        let p = self.path(rel);
        let r = match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&p),
            Ok(_) => fs::remove_file(&p),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            panic!("cannot remove {}: {e}", p.display());
        }
        self
    }

    /// Reads the file `rel`.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        let p = self.path(rel);
        match fs::read(&p) {
            Ok(d) => d,
            Err(e) => panic!("cannot read {}: {e}", p.display()),
        }
    }

    fn write_keep_mode(&self, rel: &str, data: &[u8]) -> &Self {
        // fs::write truncates in place: mode, owner, xattrs and hard links are kept.
        let p = self.path(rel);
        if let Err(e) = fs::write(&p, data) {
            panic!("cannot write {}: {e}", p.display());
        }
        self
    }

    /// Fills the tree with one of each thing a pull must reproduce (needs root for the
    /// owner and `trusted.*` xattrs):
    ///
    /// | path | what |
    /// |---|---|
    /// | `empty` | 0-byte file |
    /// | `small-64`, `small-65` | 64 and 65 bytes (either side of the inline limit) |
    /// | `text.txt` | text |
    /// | `big.bin` | 256 KiB pseudo-random |
    /// | `patchme.bin` | 64 KiB pseudo-random (v2 patches it: bspatch) |
    /// | `bin/setuid`, `bin/setgid`, `bin/exec` | modes 04755, 02755, 0755 |
    /// | `private` | mode 0600 |
    /// | `sticky/` | directory mode 01777 |
    /// | `owned` | owner 1000:1000 |
    /// | `hardlink-a`, `hardlink-b` | one inode, two names |
    /// | `xattr-file` | `user.one`="1", `user.binary`=bytes 0..=255, `trusted.cfsync`="t" |
    /// | `xattr-dir/` | directory with `user.dir`="d" |
    /// | `link-rel` → `text.txt`, `link-abs` → `/etc/passwd`, `link-dangling` → `nowhere`, `link-dir` → `bin` | symlinks |
    /// | `link-xattr` → `text.txt` | symlink with `trusted.link`="l" |
    /// | `link-long` → 1000-byte target | symlink |
    /// | `names/café`, `names/日本語`, `names/with space`, `names/.hidden`, `names/-dash`, `names/`[`long_name`] | names |
    /// | `emptydir/` | empty directory |
    /// | `deep/a/b/c/d/e/f/g/h/leaf` | nesting |
    pub fn edge_cases(&self) -> &Self {
        self.empty_file("empty")
            .file("small-64", [b'6'; 64])
            .file("small-65", [b'5'; 65])
            .file("text.txt", "hello from cfsync tests\n".repeat(40))
            .random_file("big.bin", 256 * 1024, 1)
            .random_file("patchme.bin", 64 * 1024, 2)
            .file_with_mode("bin/setuid", b"#!/bin/sh\necho setuid\n", 0o4755)
            .file_with_mode("bin/setgid", b"#!/bin/sh\necho setgid\n", 0o2755)
            .file_with_mode("bin/exec", b"#!/bin/sh\necho exec\n", 0o755)
            .file_with_mode("private", b"secret\n", 0o600)
            .dir("sticky")
            .chmod("sticky", 0o1777)
            .file("owned", b"owned by 1000\n")
            .chown("owned", 1000, 1000)
            .file("hardlink-a", b"two names, one inode\n")
            .hardlink("hardlink-b", "hardlink-a")
            .file("xattr-file", b"has xattrs\n")
            .xattr("xattr-file", "user.one", b"1")
            .xattr(
                "xattr-file",
                "user.binary",
                (0..=255u8).collect::<Vec<u8>>(),
            )
            .xattr("xattr-file", "trusted.cfsync", b"t")
            .dir("xattr-dir")
            .xattr("xattr-dir", "user.dir", b"d")
            .symlink("link-rel", "text.txt")
            .symlink("link-abs", "/etc/passwd")
            .symlink("link-dangling", "nowhere")
            .symlink("link-dir", "bin")
            .symlink("link-xattr", "text.txt")
            .xattr("link-xattr", "trusted.link", b"l")
            .symlink("link-long", "t/".repeat(500))
            .file("names/café", b"cafe\n")
            .file("names/日本語", b"nihongo\n")
            .file("names/with space", b"space\n")
            .file("names/.hidden", b"hidden\n")
            .file("names/-dash", b"dash\n")
            .file(&format!("names/{}", long_name()), b"long\n")
            .dir("emptydir")
            .file("deep/a/b/c/d/e/f/g/h/leaf", b"leaf\n")
    }

    /// Applies an update to a tree made by [`TreeBuilder::edge_cases`] (typically on a
    /// [`TreeBuilder::copy_of`] it), so that a v1 → v2 delta has every kind of change:
    /// `patchme.bin` scatter-patched (bspatch), `big.bin` appended to (rollsum),
    /// `text.txt` removed and `added.txt` added, `link-rel` retargeted to `small-64`,
    /// `bin/exec` changed to mode 0700, `xattr-file`'s `user.one` set to "2", `owned`
    /// given to 1001:1001.
    pub fn edge_cases_update(&self) -> &Self {
        self.scatter_patch("patchme.bin", 2000)
            .append("big.bin", b"appended in v2\n")
            .remove("text.txt")
            .file("added.txt", "added in v2\n".repeat(10))
            .symlink("link-rel", "small-64")
            .chmod("bin/exec", 0o700)
            .xattr("xattr-file", "user.one", b"2")
            .chown("owned", 1001, 1001)
    }
}
