//! composefs-rs's `cfsctl`, the reference the compatibility tests compare cfsync with.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::run_checked;
use crate::tools::{is_executable, require};

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
