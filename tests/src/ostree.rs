//! The `ostree` command line bound to one repository, and its `ls -R -C` output parsed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::command::{command_line, output, run_checked, run_stdout};
use crate::gpg::Gpg;
use crate::tools::require;

/// An empty argument list, for the `extra` parameters of [`Ostree`] methods.
pub const NO_ARGS: [&str; 0] = [];

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
            command_line(&cmd)
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
}
