//! The demo repository pulled three ways by the `cfsync` binary, shared by the fault
//! matrix (`faults`) and the seed sweep (`sweep`): object by object into an empty
//! repository ([`Kind::Objects`]), through the v1 → v2 static delta into a repository
//! holding v1 ([`Kind::Delta`]), and through the scratch delta to v1 into an empty
//! repository ([`Kind::Scratch`]); the [`Reference`] images of clean pulls, computed
//! once; and [`check_sound`], the check after every pull.

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use cfsync_tests::faults::FaultServer;
use cfsync_tests::{Repo, copy_tree, demo, describe, output, scratch_dir};

/// What clean pulls of the demo give, and a repository holding v1 to copy.
pub(crate) struct Reference {
    pub(crate) v1_image: String,
    pub(crate) v2_image: String,
    pub(crate) v1_base: tempfile::TempDir,
    /// A `.filez` and a `.dirtree` that the object pull of v2 fetches (the middle ones
    /// by name): the targets of permanent faults on that route, so that the same object
    /// fails whatever order concurrent requests come in.
    pub(crate) one_filez: String,
    pub(crate) one_dirtree: String,
}

/// The reference images and the v1 repository, from clean pulls (once per run).
pub(crate) fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let d = demo();
        let server = FaultServer::start(&d.repo);
        let v1_base = scratch_dir();
        let base = Repo::new(v1_base.path().join("repo"));
        let st = json(&pull(&base, &Kind::Scratch.args(&server.url())));
        let v1_image = st["image"].as_str().unwrap().to_owned();
        let tmp = scratch_dir();
        let r = Repo::new(tmp.path().join("repo"));
        server.reset_log();
        let st = json(&pull(&r, &Kind::Objects.args(&server.url())));
        let v2_image = st["image"].as_str().unwrap().to_owned();
        assert_ne!(v1_image, v2_image);
        let middle = |ext: &str| {
            let mut paths: Vec<String> = server
                .log()
                .into_iter()
                .map(|l| l.path)
                .filter(|p| p.ends_with(ext))
                .collect();
            paths.sort();
            paths.swap_remove(paths.len() / 2)
        };
        Reference {
            v1_image,
            v2_image,
            v1_base,
            one_filez: middle(".filez"),
            one_dirtree: middle(".dirtree"),
        }
    })
}

/// Runs `cfsync --repo REPO ARGS…` with the environment variables `env` set.
pub(crate) fn pull_with(repo: &Repo, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = repo.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

fn pull(repo: &Repo, args: &[String]) -> Output {
    pull_with(repo, args, &[])
}

/// The JSON a successful pull printed; panics with its output otherwise.
pub(crate) fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "pull failed:\n{}", describe(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON from pull ({e}):\n{}", describe(out)))
}

/// The three ways of pulling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// v2 object by object into an empty repository.
    Objects,
    /// v2 through the v1 → v2 delta into a repository holding v1.
    Delta,
    /// v1 through its scratch delta into an empty repository.
    Scratch,
}

impl Kind {
    /// `pull --json …` from `url` (a URL or a remote name) for this kind.
    pub(crate) fn args(self, url: &str) -> Vec<String> {
        let d = demo();
        let mut a: Vec<String> = vec!["pull".into(), "--json".into()];
        match self {
            Kind::Objects => a.push("--no-deltas".into()),
            Kind::Delta => {}
            Kind::Scratch => a.extend(["--commit".into(), d.v1.clone()]),
        }
        a.extend([url.to_owned(), d.refname.clone()]);
        a
    }

    /// A fresh repository for this kind of pull (holding v1 for `Delta`).
    pub(crate) fn setup(self, dir: &Path) -> Repo {
        let path = dir.join("repo");
        if self == Kind::Delta {
            copy_tree(&reference().v1_base.path().join("repo"), &path);
        }
        Repo::new(path)
    }

    /// The commit and image id the pull must end with.
    pub(crate) fn want(self) -> (&'static str, &'static str) {
        let (d, r) = (demo(), reference());
        match self {
            Kind::Objects | Kind::Delta => (&d.v2, &r.v2_image),
            Kind::Scratch => (&d.v1, &r.v1_image),
        }
    }

    /// What the ref points at before the pull.
    pub(crate) fn before(self) -> Option<&'static str> {
        (self == Kind::Delta).then(|| demo().v1.as_str())
    }

    /// The kind's name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Objects => "objects",
            Kind::Delta => "delta",
            Kind::Scratch => "scratch",
        }
    }
}

/// The three kinds.
pub(crate) const KINDS: [Kind; 3] = [Kind::Objects, Kind::Delta, Kind::Scratch];

/// fsck passes and every ref names v1 or v2 with its reference image.
pub(crate) fn check_sound(r: &Repo, context: &str) {
    r.fsck();
    let (d, rf) = (demo(), reference());
    for (name, commit) in r.refs() {
        let want = if commit == d.v1 {
            &rf.v1_image
        } else if commit == d.v2 {
            &rf.v2_image
        } else {
            panic!("{context}: ref {name} names unknown commit {commit}");
        };
        assert_eq!(&r.image(&name), want, "{context}: ref {name}");
    }
}

/// What the demo's ref names now.
pub(crate) fn ref_now(r: &Repo) -> Option<String> {
    r.refs().get(&demo().refname).cloned()
}

/// Adds the remote `demo` at `url` to `r`, trusting the demo's key and verifying the
/// summary's signature too (so that summary, summary.sig and .commitmeta are all checked).
pub(crate) fn add_verifying_remote(r: &Repo, url: &str) {
    let key = demo().public_key.to_str().unwrap();
    r.ok([
        "remote",
        "add",
        "demo",
        url,
        "--gpg-import",
        key,
        "--set",
        "gpg-verify-summary=true",
    ]);
}
