//! The `cfsync` binary under test: finding (and if stale, building) it, running it, and
//! a repository driven through it ([`Repo`]).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::command::{describe, output, run_checked, run_stdout};
use crate::dirs::workspace_root;
use crate::tools::is_executable;

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

/// A cfsync repository on disk, driven through the `cfsync` binary.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The repository directory.
    pub path: PathBuf,
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
