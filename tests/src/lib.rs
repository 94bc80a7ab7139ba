//! Shared helpers for cfsync's integration tests: real `ostree` repositories, real GPG
//! keys and a real HTTP server (nginx) on loopback.
//!
//! Everything here drives the real tools — the `ostree` and `gpg` command lines, nginx,
//! the mkfixture script — so that tests check cfsync against data those tools made. A
//! missing tool is a test failure with an install hint ([`require`]), never a silent
//! skip: a skipped test would hide a missing install step in CI.
//!
//! The helpers panic with the failing command, its exit status and its output: they are
//! for tests, where a panic with context is the most useful error.
//!
//! ```no_run
//! use cfsync_tests::{Gpg, Nginx, Ostree, TreeBuilder, NO_ARGS};
//!
//! let tmp = tempfile::tempdir().unwrap();
//! let tree = TreeBuilder::new(tmp.path().join("tree"));
//! tree.edge_cases();
//! let gpg = Gpg::new();
//! let repo = Ostree::init(tmp.path().join("repo"), "archive");
//! let commit = repo.commit("test/stable", tree.root(), gpg.sign_args());
//! repo.summary_update(Some(&gpg));
//! let server = Nginx::serve(repo.path());
//! let out = cfsync_tests::run_cfsync(["pull", &server.url(), "test/stable"]);
//! let (bytes, requests) = server.bytes_and_requests();
//! # let _ = (commit, out, bytes, requests, NO_ARGS);
//! ```

pub mod faults;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// An empty argument list, for the `extra` parameters of [`Ostree`] methods.
pub const NO_ARGS: [&str; 0] = [];

/// Environment variable naming a ready fixture directory (output of `mkfixture.sh`).
pub const FIXTURE_ENV: &str = "CFSYNC_FIXTURE";

/// Where [`fixture`] builds the small fixture when [`FIXTURE_ENV`] is unset.
pub const FIXTURE_CACHE: &str = "/var/tmp/cfsync-fixture-small";

// ---------------------------------------------------------------------------------------
// Tools and commands
// ---------------------------------------------------------------------------------------

/// The Debian package (or other install step) that provides `tool`.
fn install_hint(tool: &str) -> String {
    let package = match tool {
        "gpg" | "gpgconf" | "gpg-agent" => "gnupg",
        "setfattr" | "getfattr" => "attr",
        "xz" => "xz-utils",
        "mkfs.erofs" | "dump.erofs" | "fsck.erofs" => "erofs-utils",
        "dpkg-deb" => "dpkg",
        "cfsctl" => {
            return "install with `cargo install composefs-ctl --version 0.9.4 \
                    --no-default-features --features ostree,http,pre-6.15 --locked` \
                    or point CFSCTL at the binary"
                .to_owned();
        }
        other => other,
    };
    format!("install with `apt-get install -y {package}`")
}

/// Finds `tool` on `PATH`.
fn which(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Returns the path of `tool` on `PATH`, or panics with the command that installs it.
///
/// Tests call this for every external tool they need, so that a machine without the
/// tool fails the test with a clear message instead of skipping it.
pub fn require(tool: &str) -> PathBuf {
    match which(tool) {
        Some(p) => p,
        None => panic!(
            "required tool `{tool}` is not on PATH: {}",
            install_hint(tool)
        ),
    }
}

/// Formats a command line for error messages.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion with captured output; panics if it cannot be started.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run `{}`: {e}", describe(cmd)),
    }
}

/// Runs `cmd` and returns its output; panics, showing the command, its exit status,
/// stdout and stderr, unless it exits successfully.
pub fn run_checked(cmd: &mut Command) -> Output {
    let out = output(cmd);
    if !out.status.success() {
        panic!(
            "`{}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs `cmd` like [`run_checked`] and returns its stdout as UTF-8 (lossily).
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_checked(cmd).stdout).into_owned()
}

/// Hex SHA-256 of `data`, lowercase.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `len` bytes of a fixed pseudo-random stream (xorshift64*), the same for the same
/// `seed` on every machine. Such content does not compress, and small edits to it are
/// found by bsdiff but not by a rolling checksum.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    if x == 0 {
        x = 1;
    }
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&v.to_le_bytes()[..take]);
    }
    out
}

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

// ---------------------------------------------------------------------------------------
// The cfsync binary and cfsctl
// ---------------------------------------------------------------------------------------

/// Path of the built `cfsync` binary: `$CFSYNC_BIN` if set, else `cfsync` in the cargo
/// profile directory of the running test (`target/<profile>/cfsync`, next to `deps/`).
///
/// `cargo test --workspace` builds the binary only when the cli package has integration
/// tests of its own. So when the binary is missing, or older than any source or manifest
/// of the workspace crates, and the test runs under cargo (or nextest, which also sets
/// `$CARGO`), this runs `cargo build -p cfsync` for that profile first, once per process.
/// Panics with a hint if the binary still cannot be found.
pub fn cfsync_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CFSYNC_BIN") {
            return PathBuf::from(p);
        }
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => panic!("cannot find the running test executable: {e}"),
        };
        let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let bin = dir.join("cfsync");
        if binary_is_stale(&bin)
            && let Some(cargo) = std::env::var_os("CARGO")
        {
            let mut cmd = Command::new(cargo);
            cmd.current_dir(workspace_root())
                .args(["build", "--quiet", "-p", "cfsync", "--bin", "cfsync"]);
            if let Some(target_dir) = dir.parent() {
                cmd.arg("--target-dir").arg(target_dir);
            }
            match dir.file_name().and_then(OsStr::to_str) {
                Some("debug") | None => {}
                Some("release") => {
                    cmd.arg("--release");
                }
                Some(profile) => {
                    cmd.args(["--profile", profile]);
                }
            }
            run_checked(&mut cmd);
        }
        if !is_executable(&bin) {
            panic!(
                "cfsync binary not found at {}: build it with `cargo build -p cfsync` (the \
                 same profile as the tests) or set CFSYNC_BIN",
                bin.display()
            );
        }
        bin
    })
    .clone()
}

/// Whether `bin` is missing or older than a source file or manifest of the crates it is
/// built from.
fn binary_is_stale(bin: &Path) -> bool {
    let Ok(built) = fs::metadata(bin).and_then(|m| m.modified()) else {
        return true;
    };
    let root = workspace_root();
    let mut stack: Vec<PathBuf> = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    for krate in ["formats", "verify", "engine", "cli"] {
        stack.push(root.join(krate).join("Cargo.toml"));
        stack.push(root.join(krate).join("src"));
    }
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::metadata(&p) else { continue };
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if meta.modified().is_ok_and(|m| m > built) {
            return true;
        }
    }
    false
}

/// A [`Command`] for the built `cfsync` binary ([`cfsync_bin`]), with stdin closed.
pub fn cfsync_command() -> Command {
    let mut cmd = Command::new(cfsync_bin());
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs the built `cfsync` with `args` and returns its output, whatever its exit status.
pub fn run_cfsync<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    output(cfsync_command().args(args))
}

/// Runs the built `cfsync` with `args`; panics with its output unless it succeeds, and
/// returns its stdout.
pub fn run_cfsync_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_stdout(cfsync_command().args(args))
}

/// Path of `cfsctl` (composefs-rs's command line, for compatibility tests): `$CFSCTL`
/// if set, else `cfsctl` on `PATH`; panics with the install command if neither exists.
pub fn cfsctl() -> PathBuf {
    if let Some(p) = std::env::var_os("CFSCTL") {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return p;
        }
        panic!("CFSCTL={} is not an executable file", p.display());
    }
    require("cfsctl")
}

// ---------------------------------------------------------------------------------------
// ostree
// ---------------------------------------------------------------------------------------

/// The `ostree` command line, bound to one repository.
#[derive(Debug, Clone)]
pub struct Ostree {
    repo: PathBuf,
}

/// One line of `ostree ls -R -C`: an entry of a committed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsEntry {
    /// `'d'` directory, `'-'` regular file, `'l'` symlink.
    pub kind: char,
    /// Permission bits including setuid/setgid/sticky (no file-type bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Content size (0 for directories and symlinks).
    pub size: u64,
    /// Object checksum: the file object, or for a directory its dirtree.
    pub checksum: String,
    /// For a directory, its dirmeta checksum.
    pub meta_checksum: Option<String>,
    /// Absolute path in the commit, e.g. `/usr/bin/sh`.
    pub path: String,
    /// For a symlink, its target.
    pub target: Option<String>,
}

impl Ostree {
    /// Creates a repository at `repo` with `ostree init --mode=<mode>` (`archive`,
    /// `bare`, `bare-user`, `bare-user-only`).
    pub fn init(repo: impl Into<PathBuf>, mode: &str) -> Self {
        require("ostree");
        let o = Self { repo: repo.into() };
        o.run(["init", &format!("--mode={mode}")]);
        o
    }

    /// Uses the existing repository at `repo`.
    pub fn open(repo: impl Into<PathBuf>) -> Self {
        require("ostree");
        Self { repo: repo.into() }
    }

    /// The repository directory.
    pub fn path(&self) -> &Path {
        &self.repo
    }

    /// A [`Command`] running `ostree --repo=<repo>`, ready for more arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("ostree");
        cmd.arg(format!("--repo={}", self.repo.display()));
        cmd
    }

    /// Runs `ostree --repo=<repo> ARGS…`; panics with its output on failure; returns
    /// stdout.
    pub fn run<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_stdout(self.command().args(args))
    }

    /// Runs `ostree --repo=<repo> ARGS…` and returns its output, even on failure.
    pub fn try_run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output(self.command().args(args))
    }

    /// Commits the directory `tree` to `branch` and returns the new commit id.
    ///
    /// `extra` goes to `ostree commit` as is, e.g. `["--timestamp=2025-01-01T00:00:00Z",
    /// "-s", "v1"]` or [`Gpg::sign_args`].
    pub fn commit<I, S>(&self, branch: &str, tree: &Path, extra: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.arg("commit")
            .arg(format!("--branch={branch}"))
            .arg(format!("--tree=dir={}", tree.display()))
            .args(extra);
        let id = run_stdout(&mut cmd).trim().to_owned();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "`{}` printed {id:?}, not a commit id",
            describe(&cmd)
        );
        id
    }

    /// `ostree summary -u`, signed with `gpg`'s key when given.
    pub fn summary_update(&self, gpg: Option<&Gpg>) {
        let mut cmd = self.command();
        cmd.args(["summary", "-u"]);
        if let Some(g) = gpg {
            cmd.args(g.sign_args());
        }
        run_checked(&mut cmd);
    }

    /// `ostree static-delta generate ARGS…`, e.g. `["--from", a, "--to", b]` or
    /// `["--empty", "--to", b]`; returns ostree's report (stdout, then stderr), which
    /// includes lines such as `bsdiff=1 objects` and `rollsum=1 objects, N bytes`.
    pub fn static_delta_generate<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = run_checked(self.command().args(["static-delta", "generate"]).args(args));
        let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
        report.push_str(&String::from_utf8_lossy(&out.stderr));
        report
    }

    /// The repository's refs (`ostree refs`), sorted.
    pub fn refs(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .run(["refs"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    /// The commit id `rev` (a ref or a commit id) resolves to.
    pub fn rev_parse(&self, rev: &str) -> String {
        self.run(["rev-parse", rev]).trim().to_owned()
    }

    /// `ostree show REV` (commit header, subject, signature status).
    pub fn show(&self, rev: &str) -> String {
        self.run(["show", rev])
    }

    /// `ostree checkout REV DEST` plus `extra` (e.g. `["-U"]` for a user-mode checkout).
    pub fn checkout<I, S>(&self, rev: &str, dest: &Path, extra: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_checked(
            self.command()
                .arg("checkout")
                .args(extra)
                .arg(rev)
                .arg(dest),
        );
    }

    /// `ostree ls EXTRA… REV PATH` as text, e.g. `extra = ["-R", "-X"]`.
    pub fn ls<I, S>(&self, rev: &str, path: &str, extra: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_stdout(self.command().arg("ls").args(extra).arg(rev).arg(path))
    }

    /// The whole tree of `rev`, parsed from `ostree ls -R -C REV /`, keyed by path.
    pub fn ls_entries(&self, rev: &str) -> BTreeMap<String, LsEntry> {
        let text = self.ls(rev, "/", ["-R", "-C"]);
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| match parse_ls_line(l) {
                Some(e) => (e.path.clone(), e),
                None => panic!("cannot parse `ostree ls` line {l:?}"),
            })
            .collect()
    }

    /// The content of file `path` in `rev` (`ostree cat`).
    pub fn cat(&self, rev: &str, path: &str) -> Vec<u8> {
        run_checked(self.command().args(["cat", rev, path])).stdout
    }

    /// `ostree fsck`; panics with its output when it finds a problem.
    pub fn fsck(&self) {
        run_checked(self.command().args(["fsck", "--quiet"]));
    }
}

/// Parses one line of `ostree ls -C` output:
/// `d00755 0 0      0 <dirtree> <dirmeta> /path`, `-00644 0 0     12 <file> /path`,
/// `l00777 0 0      0 <file> /path -> target`.
fn parse_ls_line(line: &str) -> Option<LsEntry> {
    let mut rest = line;
    let mut field = || -> Option<&str> {
        let t = rest.trim_start();
        let end = t.find(' ').unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        Some(f).filter(|f| !f.is_empty())
    };
    let kind_mode = field()?;
    let kind = kind_mode.chars().next()?;
    let mode = u32::from_str_radix(kind_mode.get(1..)?, 8).ok()?;
    let uid = field()?.parse().ok()?;
    let gid = field()?.parse().ok()?;
    let size = field()?.parse().ok()?;
    let checksum = field()?.to_owned();
    let meta_checksum = if kind == 'd' {
        Some(field()?.to_owned())
    } else {
        None
    };
    let tail = rest.strip_prefix(' ')?;
    let (path, target) = if kind == 'l' {
        let (p, t) = tail.split_once(" -> ")?;
        (p.to_owned(), Some(t.to_owned()))
    } else {
        (tail.to_owned(), None)
    };
    Some(LsEntry {
        kind,
        mode,
        uid,
        gid,
        size,
        checksum,
        meta_checksum,
        path,
        target,
    })
}

// ---------------------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------------------

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
        run_checked(Command::new("cp").arg("-a").arg(src).arg(&dest));
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

// ---------------------------------------------------------------------------------------
// GPG
// ---------------------------------------------------------------------------------------

/// A throwaway GnuPG home with one signing key (no passphrase), deleted when dropped
/// (its gpg-agent is stopped first).
#[derive(Debug)]
pub struct Gpg {
    home: TempDir,
    fingerprint: String,
}

impl Gpg {
    /// A new home with a fresh ed25519 signing key.
    pub fn new() -> Self {
        Self::with_algo("ed25519")
    }

    /// A new home with a fresh signing key of `algo` as `gpg --quick-gen-key` names it
    /// (`ed25519`, `rsa2048`, `rsa4096`, `nistp256`, …).
    pub fn with_algo(algo: &str) -> Self {
        require("gpg");
        // gpg-agent's socket path must stay short: keep the home under /tmp.
        let home = match tempfile::Builder::new()
            .prefix("cfsync-gpg-")
            .tempdir_in("/tmp")
        {
            Ok(h) => h,
            Err(e) => panic!("cannot create a GnuPG home: {e}"),
        };
        let mut g = Self {
            home,
            fingerprint: String::new(),
        };
        g.fingerprint = g.add_key("cfsync test key <test@example.invalid>", algo);
        g
    }

    /// A `gpg` command using this home, in batch mode.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--quiet"]);
        cmd
    }

    /// Generates one more signing key with user id `uid`; returns its fingerprint.
    pub fn add_key(&self, uid: &str, algo: &str) -> String {
        run_checked(self.command().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algo,
            "sign",
            "never",
        ]));
        let listing = run_stdout(self.command().args(["--with-colons", "--list-keys", uid]));
        // The newest key with this uid is the last primary fingerprint listed.
        let mut last = None;
        let mut after_pub = false;
        for line in listing.lines() {
            if line.starts_with("pub:") {
                after_pub = true;
            } else if after_pub && line.starts_with("fpr:") {
                last = line.split(':').nth(9).map(str::to_owned);
                after_pub = false;
            }
        }
        match last {
            Some(f) if !f.is_empty() => f,
            _ => panic!("no fingerprint for {uid} in:\n{listing}"),
        }
    }

    /// The GnuPG home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The full fingerprint (40 hex digits, uppercase) of the first key.
    pub fn key_id(&self) -> &str {
        &self.fingerprint
    }

    /// The first key's public key, ASCII-armored.
    pub fn public_key_armored(&self) -> String {
        run_stdout(
            self.command()
                .args(["--armor", "--export", &self.fingerprint]),
        )
    }

    /// The first key's public key, binary.
    pub fn public_key_binary(&self) -> Vec<u8> {
        run_checked(self.command().args(["--export", &self.fingerprint])).stdout
    }

    /// Writes the armored public key to `path` and returns `path`.
    pub fn write_public_key(&self, path: impl Into<PathBuf>) -> PathBuf {
        let path = path.into();
        if let Err(e) = fs::write(&path, self.public_key_armored()) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }

    /// The `ostree` arguments that sign with the first key:
    /// `--gpg-sign=<fingerprint> --gpg-homedir=<home>`.
    pub fn sign_args(&self) -> Vec<OsString> {
        self.sign_args_for(&self.fingerprint)
    }

    /// Like [`Gpg::sign_args`], for any key of this home.
    pub fn sign_args_for(&self, fingerprint: &str) -> Vec<OsString> {
        let mut homedir = OsString::from("--gpg-homedir=");
        homedir.push(self.home.path());
        vec![OsString::from(format!("--gpg-sign={fingerprint}")), homedir]
    }

    /// A binary detached OpenPGP signature of `data` by the first key.
    pub fn sign_detached(&self, data: &[u8]) -> Vec<u8> {
        let mut child = match self
            .command()
            .args([
                "--local-user",
                &self.fingerprint,
                "--detach-sign",
                "--output",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("cannot run gpg: {e}"),
        };
        let written = child.stdin.take().map(|mut s| s.write_all(data));
        let out = match child.wait_with_output() {
            Ok(o) => o,
            Err(e) => panic!("gpg --detach-sign: {e}"),
        };
        if !out.status.success() || !matches!(written, Some(Ok(()))) {
            panic!(
                "gpg --detach-sign failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.stdout
    }
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------

/// One access-log line of an [`Nginx`] server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// HTTP status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// nginx's connection serial number: equal numbers mean a reused (keep-alive)
    /// connection.
    pub connection: u64,
    /// Request method.
    pub method: String,
    /// Request URI, as sent (e.g. `/objects/ab/cd….filez`).
    pub uri: String,
    /// The `Range` request header, if any.
    pub range: Option<String>,
}

/// nginx serving a directory on a free loopback port, the way a static mirror would
/// (keep-alive, range requests, ETag/Last-Modified), with an access log the test can
/// read. One worker process; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    state: TempDir,
    port: u16,
    root: PathBuf,
}

/// The URI of the log barrier: answered 204 and never logged.
const BARRIER: &str = "/.cfsync-log-barrier";

impl Nginx {
    /// Serves `root` over HTTP on 127.0.0.1 (a free port).
    pub fn serve(root: &Path) -> Self {
        Self::serve_with(root, "")
    }

    /// Serves `root` with `extra` added inside the `server { }` block, e.g.
    /// `"location /deltas/ { return 500; }"` to simulate a broken mirror.
    pub fn serve_with(root: &Path, extra: &str) -> Self {
        require("nginx");
        let root = match root.canonicalize() {
            Ok(r) => r,
            Err(e) => panic!("cannot serve {}: {e}", root.display()),
        };
        let mut last_error = String::new();
        // A port found free can be taken before nginx binds it: retry with another.
        for _attempt in 0..5 {
            let state = match tempfile::Builder::new().prefix("cfsync-nginx-").tempdir() {
                Ok(s) => s,
                Err(e) => panic!("cannot create nginx state dir: {e}"),
            };
            let mut server = Self {
                child: None,
                state,
                port: free_port(),
                root: root.clone(),
            };
            match server.start(extra) {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn start(&mut self, extra: &str) -> Result<(), String> {
        let st = self.state.path();
        let tmp = st.join("tmp");
        let _ = fs::create_dir_all(&tmp);
        let pid_file = st.join("nginx.pid");
        let _ = fs::remove_file(&pid_file);
        let _ = File::create(st.join("access.log"));
        // Running as root, workers would switch to `nobody`, who cannot read a test's
        // 0700 temporary directories.
        let user = if rustix::process::geteuid().is_root() {
            "user root root;"
        } else {
            ""
        };
        let conf = format!(
            r#"{user}
worker_processes 1;
daemon off;
master_process on;
pid {pid};
error_log {st}/error.log;
events {{ worker_connections 1024; }}
http {{
  default_type application/octet-stream;
  log_format cfsync '$status $body_bytes_sent $connection $request_method $request_uri "$http_range"';
  access_log {st}/access.log cfsync;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  sendfile on; tcp_nopush on; keepalive_requests 100000; keepalive_timeout 65s;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location = {BARRIER} {{ access_log off; return 204; }}
    {extra}
  }}
}}
"#,
            pid = pid_file.display(),
            st = st.display(),
            tmp = tmp.display(),
            port = self.port,
            root = self.root.display(),
        );
        let conf_path = st.join("nginx.conf");
        fs::write(&conf_path, conf).map_err(|e| format!("writing nginx.conf: {e}"))?;
        self.child = Some(spawn_nginx(&conf_path, st, &[self.port])?);
        Ok(())
    }

    /// The base URL, without a trailing slash: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL of `path` (relative to the served directory).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}/{}", self.url(), path.trim_start_matches('/'))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes sure every request whose response a client has fully received is in the
    /// access log: sends a request through the single worker and waits for its answer;
    /// by then the worker has logged everything it finished before.
    fn barrier(&self) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let r = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(format!("GET {BARRIER} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf)?;
            Ok(buf)
        });
        match r {
            Ok(buf) if buf.starts_with(b"HTTP/1.1 204") => {}
            Ok(buf) => panic!(
                "nginx log barrier got {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(200)])
            ),
            Err(e) => panic!("nginx log barrier on port {}: {e}", self.port),
        }
    }

    /// Every request served since start or the last [`Nginx::reset_log`], in order.
    pub fn log(&self) -> Vec<LogEntry> {
        self.barrier();
        let path = self.state.path().join("access.log");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        };
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| match parse_log_line(l) {
                Some(e) => e,
                None => panic!("cannot parse nginx log line {l:?}"),
            })
            .collect()
    }

    /// Total body bytes sent and number of requests since start or the last
    /// [`Nginx::reset_log`].
    pub fn bytes_and_requests(&self) -> (u64, u64) {
        let log = self.log();
        (log.iter().map(|e| e.bytes).sum(), log.len() as u64)
    }

    /// Empties the access log (after logging everything already answered).
    pub fn reset_log(&self) {
        self.barrier();
        let path = self.state.path().join("access.log");
        if let Err(e) = File::create(&path) {
            panic!("cannot truncate {}: {e}", path.display());
        }
    }

    /// Stops nginx (also done on drop).
    pub fn stop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

/// Starts nginx in the foreground with `conf` and prefix `state` (where the config puts
/// its pid file `nginx.pid`, `error.log` and where stderr goes to `stderr.log`), and waits
/// until it is ready: its master wrote its pid file (it does so after binding) and every
/// port in `ports` accepts connections. Bounded: 10 s, then it is stopped.
pub fn spawn_nginx(conf: &Path, state: &Path, ports: &[u16]) -> Result<Child, String> {
    let stderr = File::create(state.join("stderr.log"))
        .map_err(|e| format!("creating nginx's stderr log: {e}"))?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(conf)
        .arg("-p")
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run nginx: {e}"))?;
    let pid = child.id();
    let mut child = Some(child);
    let pid_file = state.join("nginx.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            let err = fs::read_to_string(state.join("stderr.log")).unwrap_or_default();
            let log = fs::read_to_string(state.join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}): {err}{log}"));
        }
        let up = |port: u16| {
            TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                Duration::from_millis(200),
            )
            .is_ok()
        };
        if fs::read_to_string(&pid_file).is_ok_and(|s| s.trim() == pid.to_string())
            && ports.iter().all(|&p| up(p))
        {
            return child.ok_or_else(|| "nginx vanished".to_owned());
        }
        if Instant::now() > deadline {
            stop_nginx(&mut child);
            return Err("nginx did not become ready within 10 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops an nginx master started in the foreground, if still running: SIGTERM (fast
/// shutdown of the master and its workers), then SIGKILL after 5 s.
pub fn stop_nginx(child: &mut Option<Child>) {
    let Some(mut child) = child.take() else {
        return;
    };
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses `status bytes connection method uri "range"`.
fn parse_log_line(line: &str) -> Option<LogEntry> {
    let mut it = line.splitn(5, ' ');
    let status = it.next()?.parse().ok()?;
    let bytes = it.next()?.parse().ok()?;
    let connection = it.next()?.parse().ok()?;
    let method = it.next()?.to_owned();
    let rest = it.next()?;
    let (uri, range) = rest.rsplit_once(" \"")?;
    let range = range.strip_suffix('"')?;
    Some(LogEntry {
        status,
        bytes,
        connection,
        method,
        uri: uri.to_owned(),
        range: (range != "-" && !range.is_empty()).then(|| range.to_owned()),
    })
}

/// A loopback port that was free a moment ago (the kernel picks it).
pub fn free_port() -> u16 {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("cannot find a free port: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A repository made by `shared/bench/mkfixture.sh` (real Debian packages, two versions).
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The fixture directory.
    pub dir: PathBuf,
    /// The archive repository (`dir/repo`).
    pub repo: PathBuf,
    /// The ref, pointing at v2: `os/x86_64/stable`.
    pub refname: String,
    /// The first commit (v2's parent).
    pub v1: String,
    /// The second commit (the ref's target).
    pub v2: String,
    /// The signing key's public half, armored (`dir/fixture.asc`).
    pub public_key: PathBuf,
    /// The unpacked trees: `dir/v1` and `dir/v2`.
    pub trees: [PathBuf; 2],
}

/// Reads `v1 <id>` / `v2 <id>` lines.
fn read_commits(path: &Path) -> Option<(String, String)> {
    let text = fs::read_to_string(path).ok()?;
    let mut v1 = None;
    let mut v2 = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("v1", id)) => v1 = Some(id.trim().to_owned()),
            Some(("v2", id)) => v2 = Some(id.trim().to_owned()),
            _ => {}
        }
    }
    Some((v1?, v2?))
}

/// The small mkfixture fixture: `$CFSYNC_FIXTURE` if set (it must be complete), else
/// [`FIXTURE_CACHE`], built there on first use by `../shared/bench/mkfixture.sh DIR small`
/// (about 3 minutes; downloads Debian packages) under a file lock, so parallel test
/// processes build it once.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = match std::env::var_os(FIXTURE_ENV) {
            Some(d) => PathBuf::from(d),
            None => {
                let dir = PathBuf::from(FIXTURE_CACHE);
                build_fixture(&dir);
                dir
            }
        };
        load_fixture(&dir)
    })
}

fn load_fixture(dir: &Path) -> Fixture {
    let repo = dir.join("repo");
    let Some((v1, v2)) = read_commits(&dir.join("commits")) else {
        panic!(
            "{} is not a complete mkfixture fixture (no `commits` file); build it with \
             `bash shared/bench/mkfixture.sh {} small`",
            dir.display(),
            dir.display()
        );
    };
    assert!(
        repo.join("config").is_file(),
        "{} has no repository",
        dir.display()
    );
    Fixture {
        repo,
        refname: "os/x86_64/stable".to_owned(),
        v1,
        v2,
        public_key: dir.join("fixture.asc"),
        trees: [dir.join("v1"), dir.join("v2")],
        dir: dir.to_path_buf(),
    }
}

fn build_fixture(dir: &Path) {
    let done = |d: &Path| d.join("repo/.done").exists() && d.join("commits").exists();
    if done(dir) {
        return;
    }
    let lock_path = dir.with_extension("lock");
    let lock = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
    {
        Ok(f) => f,
        Err(e) => panic!("cannot open {}: {e}", lock_path.display()),
    };
    if let Err(e) = rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive) {
        panic!("cannot lock {}: {e}", lock_path.display());
    }
    if done(dir) {
        return;
    }
    let script = std::env::var_os("CFSYNC_MKFIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/bench/mkfixture.sh"));
    assert!(
        script.is_file(),
        "cannot build the fixture: {} not found (set {FIXTURE_ENV} to a built fixture or \
         CFSYNC_MKFIXTURE to the script)",
        script.display()
    );
    eprintln!(
        "building the small fixture in {} (takes minutes)",
        dir.display()
    );
    run_checked(Command::new("bash").arg(&script).arg(dir).arg("small"));
    // the lock is released when `lock` is closed
}

/// The bundled demo repository (`demo/` in the workspace; see `demo/README.md`).
#[derive(Debug, Clone)]
pub struct Demo {
    /// The archive repository, `demo/repo`.
    pub repo: PathBuf,
    /// The ref, pointing at v2: `demo/x86_64/stable`.
    pub refname: String,
    /// The first commit (v2's parent).
    pub v1: String,
    /// The second commit.
    pub v2: String,
    /// The signing key's public half, armored (`demo/demo.asc`).
    pub public_key: PathBuf,
}

/// The bundled demo repository. Creates the empty directories git does not keep
/// (`tmp`, `refs/remotes`, …) so that the `ostree` command line can read it.
pub fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = workspace_root().join("demo");
        let repo = dir.join("repo");
        for sub in [
            "tmp/cache",
            "refs/remotes",
            "refs/mirrors",
            "state",
            "extensions",
        ] {
            let p = repo.join(sub);
            if let Err(e) = fs::create_dir_all(&p) {
                panic!("cannot create {}: {e}", p.display());
            }
        }
        let Some((v1, v2)) = read_commits(&dir.join("commits")) else {
            panic!("{} has no commits file", dir.display());
        };
        Demo {
            repo,
            refname: "demo/x86_64/stable".to_owned(),
            v1,
            v2,
            public_key: dir.join("demo.asc"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lines_parse() {
        let d = parse_ls_line("d00755 0 0      0 aa bb /usr/a b").unwrap();
        assert_eq!((d.kind, d.mode, d.path.as_str()), ('d', 0o755, "/usr/a b"));
        assert_eq!(d.meta_checksum.as_deref(), Some("bb"));
        let f = parse_ls_line("-04755 1000 10     3 cc /a/f").unwrap();
        assert_eq!((f.mode, f.uid, f.gid, f.size), (0o4755, 1000, 10, 3));
        let l = parse_ls_line("l00777 0 0      0 dd /a/l -> x y").unwrap();
        assert_eq!(l.target.as_deref(), Some("x y"));
        assert!(parse_ls_line("garbage").is_none());
    }

    #[test]
    fn log_lines_parse() {
        let e = parse_log_line(r#"206 10 3 GET /a/b "bytes=0-9""#).unwrap();
        assert_eq!((e.status, e.bytes, e.connection), (206, 10, 3));
        assert_eq!(e.range.as_deref(), Some("bytes=0-9"));
        let e = parse_log_line(r#"200 5 4 GET /summary "-""#).unwrap();
        assert_eq!((e.uri.as_str(), e.range), ("/summary", None));
    }

    #[test]
    fn pseudo_random_is_stable() {
        assert_eq!(pseudo_random(1, 20), pseudo_random(1, 20));
        assert_ne!(pseudo_random(1, 20), pseudo_random(2, 20));
        assert_eq!(pseudo_random(1, 13).len(), 13);
        assert_eq!(&pseudo_random(1, 16)[..8], &pseudo_random(1, 8)[..]);
    }
}
