//! Pulls from a flatpak-style remote that publishes only `summary.idx` (signed by
//! `summary.idx.sig`) and per-architecture subsummaries under `summaries/<sha256>.gz`,
//! the Flathub layout (issue 12). The repository is made by real `ostree commit` and
//! `flatpak build-update-repo --gpg-sign`, then its legacy `summary` and `summary.sig`
//! are deleted; nginx serves it.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_tests::{Gpg, describe, require, run_checked};

use crate::trust::{Client, Publisher};

const REF: &str = "runtime/org.example.Platform/x86_64/stable";

/// A flatpak repository: trust's [`Publisher`] (an archive repository served by nginx,
/// with a GPG key) published by `flatpak build-update-repo`.
struct Flatpak {
    p: Publisher,
    commits: u64,
}

impl Flatpak {
    fn new() -> Self {
        require("flatpak");
        require("gzip");
        Self {
            p: Publisher::new(),
            commits: 0,
        }
    }

    /// Commits a small tree to [`REF`], signed, and publishes it with
    /// `flatpak build-update-repo` signed by `other` (else the publisher's key), without
    /// a legacy summary.
    fn publish(&mut self, other: Option<&Gpg>) -> String {
        self.commits += 1;
        let args = self.p.gpg.sign_args();
        let commit = self.p.commit_with(REF, self.commits, &args);
        let signer = other.unwrap_or(&self.p.gpg);
        let mut cmd = Command::new("flatpak");
        cmd.arg("build-update-repo")
            .arg(format!("--gpg-sign={}", signer.key_id()))
            .arg(format!("--gpg-homedir={}", signer.home().display()))
            .arg(self.p.repo.path());
        run_checked(&mut cmd);
        for f in ["summary", "summary.sig"] {
            fs::remove_file(self.path(f)).unwrap();
        }
        assert!(self.path("summary.idx").is_file());
        assert!(self.path("summary.idx.sig").is_file());
        commit
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.p.path(rel)
    }

    /// The `summaries/*.gz` files.
    fn subsummaries(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.path("summaries"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension() == Some(OsStr::new("gz")))
            .collect();
        v.sort();
        v
    }

    /// A client trusting the publisher's key and verifying commits and the summary.
    fn client(&self) -> Client {
        self.p.client(&[])
    }

    /// The URIs nginx served.
    fn uris(&self) -> Vec<String> {
        self.p.nginx.log().into_iter().map(|e| e.uri).collect()
    }
}

fn pull(c: &Client) -> Output {
    c.run(&["pull", "--json", "origin", REF])
}

fn pull_ok(c: &Client) -> serde_json::Value {
    let out = pull(c);
    assert!(out.status.success(), "pull failed: {}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fails unless the pull is refused; returns its stderr.
fn pull_refused(c: &Client) -> String {
    let out = pull(c);
    assert!(!out.status.success(), "pull succeeded: {}", describe(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ref_target(c: &Client) -> Option<String> {
    c.refs().into_iter().find(|(r, _)| r == REF).map(|(_, c)| c)
}

/// Replaces the gzip file `path` with a valid gzip of other bytes.
fn tamper(path: &Path) {
    let script = format!(
        "printf 'not the subsummary' | gzip -nc > '{}'",
        path.display()
    );
    run_checked(Command::new("sh").args(["-c", &script]));
}

#[test]
fn a_pull_resolves_the_ref_through_the_signed_summary_index() {
    let mut fp = Flatpak::new();
    let commit = fp.publish(None);
    assert!(!fp.path("summary").exists());
    let client = fp.client();
    let v = pull_ok(&client);
    assert_eq!(v["commit"], commit.as_str(), "{v}");
    assert_eq!(ref_target(&client).as_deref(), Some(commit.as_str()));
    let uris = fp.uris();
    assert!(uris.iter().any(|u| u.ends_with("/summary.idx")), "{uris:?}");
    assert!(
        uris.iter().any(|u| u.ends_with("/summary.idx.sig")),
        "{uris:?}"
    );
    let sub = fp.subsummaries();
    assert_eq!(sub.len(), 1, "{sub:?}");
    let name = sub[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(uris.iter().any(|u| u.ends_with(&name)), "{uris:?}");
    // The same commit as ostree has under the ref.
    assert_eq!(fp.p.repo.rev_parse(REF), commit);
    // `remote refs` lists it from the subsummaries too, as `origin:REF<tab>COMMIT`
    // (beside the appstream refs flatpak build-update-repo adds).
    let listed = client.ok(&["remote", "refs", "origin"]);
    let want = format!("origin:{REF}\t{commit}");
    assert!(listed.lines().any(|l| l == want), "{listed}");
}

#[test]
fn a_tampered_subsummary_is_refused_and_no_ref_moves() {
    let mut fp = Flatpak::new();
    let first = fp.publish(None);
    let client = fp.client();
    pull_ok(&client);
    assert_eq!(ref_target(&client).as_deref(), Some(first.as_str()));

    let before = fp.subsummaries();
    let second = fp.publish(None);
    assert_ne!(first, second);
    let subs = fp.subsummaries();
    let new: Vec<&PathBuf> = subs.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "{subs:?}");
    let current = new[0];
    tamper(current);
    let err = pull_refused(&client);
    let name = current.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&name), "{err}");
    assert!(err.contains("summary.idx says"), "{err}");
    assert!(err.contains("arrived damaged"), "{err}");
    assert_eq!(ref_target(&client).as_deref(), Some(first.as_str()));
}

#[test]
fn an_index_signed_by_an_unknown_key_is_refused() {
    let mut fp = Flatpak::new();
    let stranger = Gpg::new();
    fp.publish(Some(&stranger));
    let client = fp.client();
    let err = pull_refused(&client);
    assert!(
        err.contains("summary index: GPG verification failed"),
        "{err}"
    );
    assert_eq!(ref_target(&client), None);
    let content: Vec<String> = fp
        .uris()
        .into_iter()
        .filter(|u| u.contains("/objects/") || u.contains("/summaries/"))
        .collect();
    assert!(content.is_empty(), "{content:?}");
}
