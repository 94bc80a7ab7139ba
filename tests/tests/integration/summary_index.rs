//! Pulls from a flatpak-style remote that publishes `summary.idx` (signed by
//! `summary.idx.sig`) and per-architecture subsummaries under `summaries/<sha256>.gz`,
//! the Flathub layout (issue 12). The repository holds a runtime for two architectures
//! (x86_64 and aarch64), is made by real `ostree commit` and `flatpak build-update-repo
//! --gpg-sign`, and most tests then delete its legacy `summary` and `summary.sig`; nginx
//! serves it, and its access log says what each update check cost.
//!
//! Published files get distinct modification times an hour in the past, so their
//! validators are not "racy" (`engine/src/summary/cache.rs`) and a second check can be
//! answered 304.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_tests::faults::{Fault, FaultServer, Rule};
use cfsync_tests::{Gpg, LogEntry, cfsync_command, describe, require, run_checked};

use crate::trust::{Client, Publisher};

const REF: &str = "runtime/org.example.Platform/x86_64/stable";
/// The same runtime for the other architecture, in the `aarch64` subsummary.
const ARM_REF: &str = "runtime/org.example.Platform/aarch64/stable";

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

    /// Commits a small tree to [`REF`] and [`ARM_REF`], signed, and publishes them with
    /// `flatpak build-update-repo` signed by `other` (else the publisher's key), without
    /// a legacy summary. Returns the commit of [`REF`].
    fn publish(&mut self, other: Option<&Gpg>) -> String {
        let commit = self.publish_keeping_summary(other);
        for f in ["summary", "summary.sig"] {
            fs::remove_file(self.path(f)).unwrap();
        }
        commit
    }

    /// [`Flatpak::publish`] keeping the legacy summary flatpak writes too.
    fn publish_keeping_summary(&mut self, other: Option<&Gpg>) -> String {
        self.commits += 1;
        let args = self.p.gpg.sign_args();
        let commit = self.p.commit_with(REF, self.commits, &args);
        self.p.commit_with(ARM_REF, self.commits + 1000, &args);
        let signer = other.unwrap_or(&self.p.gpg);
        let mut cmd = Command::new("flatpak");
        cmd.arg("build-update-repo")
            .arg(format!("--gpg-sign={}", signer.key_id()))
            .arg(format!("--gpg-homedir={}", signer.home().display()))
            .arg(self.p.repo.path());
        run_checked(&mut cmd);
        assert!(self.path("summary.idx").is_file());
        assert!(self.path("summary.idx.sig").is_file());
        self.age();
        commit
    }

    /// Sets the modification time of the files a check reads to an hour ago plus a
    /// minute per publication: distinct per version, and old enough to be cached.
    fn age(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let when = format!("@{}", now - 3600 + self.commits * 60);
        let mut cmd = Command::new("touch");
        cmd.arg("-d").arg(&when);
        for f in ["summary", "summary.sig", "summary.idx", "summary.idx.sig"] {
            if self.path(f).exists() {
                cmd.arg(self.path(f));
            }
        }
        run_checked(&mut cmd);
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.p.path(rel)
    }

    /// A client trusting the publisher's key and verifying commits and the summary.
    fn client(&self) -> Client {
        self.p.client(&[])
    }

    /// The URIs nginx served.
    fn uris(&self) -> Vec<String> {
        self.p.nginx.log().into_iter().map(|e| e.uri).collect()
    }

    /// The requests nginx served since it had served `from`.
    fn log_since(&self, from: usize) -> Vec<LogEntry> {
        self.p.nginx.log().into_iter().skip(from).collect()
    }

    /// How many requests nginx has served.
    fn served(&self) -> usize {
        self.p.nginx.log().len()
    }

    /// `summaries/<name>` for a digest.
    fn summaries(&self, name: &str) -> PathBuf {
        self.path(&format!("summaries/{name}"))
    }
}

/// The subsummaries `summary.idx` names, `(name, digest hex, history hex)` (read by
/// cfsync's formats crate: neither ostree nor flatpak prints an index).
fn index_entries(fp: &Flatpak) -> Vec<(String, String, Vec<String>)> {
    let data = fs::read(fp.path("summary.idx")).unwrap();
    let idx = cfsync_formats::summary_index::SummaryIndexRef::from_bytes(&data).unwrap();
    idx.subsummaries()
        .iter()
        .map(|s| {
            (
                s.name.to_owned(),
                s.checksum.to_hex(),
                s.history.iter().map(|h| h.to_hex()).collect(),
            )
        })
        .collect()
}

/// The x86_64 subsummary's current digest and history.
fn x86_entry(fp: &Flatpak) -> (String, Vec<String>) {
    let e = index_entries(fp);
    let (_, d, h) = e.into_iter().find(|(n, _, _)| n == "x86_64").unwrap();
    (d, h)
}

/// Body bytes nginx sent in `log`.
fn bytes(log: &[LogEntry]) -> u64 {
    log.iter().map(|e| e.bytes).sum()
}

/// `(uri, status)` of each request in `log`, for messages.
fn shown(log: &[LogEntry]) -> Vec<(String, u16, u64)> {
    log.iter()
        .map(|e| (e.uri.clone(), e.status, e.bytes))
        .collect()
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
    assert_eq!(v["summary_route"], "index+subsummary", "{v}");
    assert_eq!(ref_target(&client).as_deref(), Some(commit.as_str()));
    let names: Vec<String> = index_entries(&fp).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["aarch64", "x86_64"]);
    let uris = fp.uris();
    assert!(uris.iter().any(|u| u.ends_with("/summary.idx")), "{uris:?}");
    assert!(
        uris.iter().any(|u| u.ends_with("/summary.idx.sig")),
        "{uris:?}"
    );
    // Only the x86_64 subsummary was fetched, not the aarch64 one.
    let subs: Vec<&String> = uris.iter().filter(|u| u.contains("/summaries/")).collect();
    let (digest, _) = x86_entry(&fp);
    assert_eq!(subs.len(), 1, "{uris:?}");
    assert!(
        subs[0].ends_with(&format!("/summaries/{digest}.gz")),
        "{uris:?}"
    );
    // The same commit as ostree has under the ref.
    assert_eq!(fp.p.repo.rev_parse(REF), commit);
    // `remote refs` lists it from the subsummaries too, as `origin:REF<tab>COMMIT`
    // (beside the appstream refs flatpak build-update-repo adds).
    let listed = client.ok(&["remote", "refs", "origin"]);
    let want = format!("origin:{REF}\t{commit}");
    assert!(listed.lines().any(|l| l == want), "{listed}");
    let arm = format!("origin:{ARM_REF}\t{}", fp.p.repo.rev_parse(ARM_REF));
    assert!(listed.lines().any(|l| l == arm), "{listed}");
}

#[test]
fn the_aarch64_runtime_comes_through_its_own_subsummary_or_the_one_named() {
    let mut fp = Flatpak::new();
    fp.publish(None);
    let client = fp.client();
    let arm = fp.p.repo.rev_parse(ARM_REF);
    let out = client.run(&["pull", "--json", "--dry-run", "origin", ARM_REF]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["commit"], arm.as_str(), "{v}");
    assert_eq!(v["summary_route"], "index+subsummary", "{v}");
    assert!(v["summary_bytes"].as_u64().unwrap() > 0, "{v}");
    // --subsummary names another subsummary, which does not list the ref.
    let out = client.run(&["pull", "--subsummary", "x86_64", "origin", ARM_REF]);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(ARM_REF), "{err}");
    // A subsummary the index does not list is named with the choices.
    let out = client.run(&["pull", "--subsummary", "gnome-x86_64", "origin", ARM_REF]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"gnome-x86_64\""), "{err}");
    assert!(err.contains("aarch64, x86_64"), "{err}");
    // The remote's `subsummary` option names the subsummary; --subsummary overrides it.
    let named = fp.p.client(&["--set=subsummary=gnome-x86_64"]);
    let out = named.run(&["pull", "--dry-run", "origin", REF]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("\"gnome-x86_64\""),
        "{err}"
    );
    let out = named.run(&["pull", "--dry-run", "--subsummary", "x86_64", "origin", REF]);
    assert!(out.status.success(), "{}", describe(&out));
    // The human-readable dry run says the route.
    let out = client.run(&["pull", "--dry-run", "origin", REF]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ref resolved through index+"), "{text}");
}

#[test]
fn a_tampered_subsummary_is_refused_and_no_ref_moves() {
    let mut fp = Flatpak::new();
    let first = fp.publish(None);
    let client = fp.client();
    pull_ok(&client);
    assert_eq!(ref_target(&client).as_deref(), Some(first.as_str()));

    let second = fp.publish(None);
    assert_ne!(first, second);
    let (digest, history) = x86_entry(&fp);
    // Without the diff from the kept subsummary, the whole new one is fetched: tampered.
    fs::remove_file(fp.summaries(&format!("{}-{digest}.delta", history[0]))).unwrap();
    let current = &fp.summaries(&format!("{digest}.gz"));
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

#[test]
fn the_second_update_check_applies_the_subsummary_delta() {
    let mut fp = Flatpak::new();
    let first = fp.publish(None);
    let client = fp.client();
    let v = pull_ok(&client);
    assert_eq!(v["commit"], first.as_str());
    let (d1, _) = x86_entry(&fp);

    // A no-op check: the index and its signature, both answered 304, nothing else.
    let from = fp.served();
    let v = pull_ok(&client);
    let log = fp.log_since(from);
    assert_eq!(v["summary_route"], "index+kept-subsummary", "{v}");
    assert_eq!(v["up_to_date"], true, "{v}");
    let uris: Vec<&str> = log.iter().map(|e| e.uri.as_str()).collect();
    assert_eq!(uris.len(), 2, "{:?}", shown(&log));
    assert!(uris.contains(&"/summary.idx") && uris.contains(&"/summary.idx.sig"));
    assert!(log.iter().all(|e| e.status == 304), "{:?}", shown(&log));

    // A new version: the delta from the kept subsummary, not the whole new one.
    let second = fp.publish(None);
    let (d2, history) = x86_entry(&fp);
    assert_eq!(history.first(), Some(&d1), "{history:?}");
    let delta = format!("/summaries/{d1}-{d2}.delta");
    assert!(fp.path(&delta[1..]).is_file());
    let from = fp.served();
    let v = pull_ok(&client);
    let log = fp.log_since(from);
    assert_eq!(v["commit"], second.as_str(), "{v}");
    assert_eq!(v["summary_route"], "index+subsummary-delta", "{v}");
    assert_eq!(ref_target(&client).as_deref(), Some(second.as_str()));
    let summary_log: Vec<LogEntry> = log
        .iter()
        .filter(|e| e.uri.starts_with("/summar"))
        .cloned()
        .collect();
    let uris: Vec<&str> = summary_log.iter().map(|e| e.uri.as_str()).collect();
    assert!(uris.contains(&delta.as_str()), "{uris:?}");
    assert!(!uris.iter().any(|u| u.ends_with(".gz")), "{uris:?}");
    assert_eq!(uris.len(), 3, "{uris:?}");
    let delta_bytes = summary_log.iter().find(|e| e.uri == delta).unwrap().bytes;
    let whole = fs::metadata(fp.summaries(&format!("{d2}.gz")))
        .unwrap()
        .len();
    assert!(
        delta_bytes < whole,
        "delta {delta_bytes} bytes, whole {whole}"
    );
    assert_eq!(
        v["summary_bytes"],
        bytes(&summary_log),
        "{v} {:?}",
        shown(&log)
    );
    assert_eq!(v["summary_requests"], 3, "{v}");
    eprintln!(
        "update check through the subsummary delta: {:?}; whole subsummary {whole} bytes",
        shown(&summary_log)
    );

    // A missing delta: the whole subsummary instead.
    let third = fp.publish(None);
    let (d3, _) = x86_entry(&fp);
    fs::remove_file(fp.summaries(&format!("{d2}-{d3}.delta"))).unwrap();
    let from = fp.served();
    let v = pull_ok(&client);
    let uris: Vec<String> = fp.log_since(from).into_iter().map(|e| e.uri).collect();
    assert_eq!(v["commit"], third.as_str(), "{v}");
    assert_eq!(v["summary_route"], "index+subsummary", "{v}");
    assert!(uris.contains(&format!("/summaries/{d3}.gz")), "{uris:?}");

    // A damaged delta (valid gzip, wrong content): the whole subsummary instead.
    let fourth = fp.publish(None);
    let (d4, _) = x86_entry(&fp);
    tamper(&fp.summaries(&format!("{d3}-{d4}.delta")));
    let v = pull_ok(&client);
    assert_eq!(v["commit"], fourth.as_str(), "{v}");
    assert_eq!(v["summary_route"], "index+subsummary", "{v}");
    assert_eq!(ref_target(&client).as_deref(), Some(fourth.as_str()));
}

/// Issue 12's closing figures: a no-op update check through the index and through the
/// legacy summary, on the same repository (both published by one `flatpak
/// build-update-repo`), from nginx's log. Printed with `--nocapture`.
#[test]
fn a_no_op_update_check_costs_two_304s_through_either_route() {
    let mut fp = Flatpak::new();
    fp.publish_keeping_summary(None);
    let legacy = fp.client();
    let mut figures = Vec::new();
    {
        let (what, client) = ("summary", &legacy);
        let from = fp.served();
        let v = pull_ok(client);
        assert_eq!(v["summary_route"], what, "{v}");
        let cold = fp.log_since(from);
        let from = fp.served();
        let v = pull_ok(client);
        let warm = fp.log_since(from);
        assert_eq!(v["summary_route"], what, "{v}");
        assert_eq!(warm.len(), 2, "{:?}", shown(&warm));
        assert!(warm.iter().all(|e| e.status == 304), "{:?}", shown(&warm));
        figures.push((what, shown(&cold), shown(&warm)));
    }
    // Without the legacy summary, the same repository's index.
    for f in ["summary", "summary.sig"] {
        fs::remove_file(fp.path(f)).unwrap();
    }
    let client = fp.client();
    let from = fp.served();
    pull_ok(&client);
    let cold = fp.log_since(from);
    let from = fp.served();
    let v = pull_ok(&client);
    let warm = fp.log_since(from);
    assert_eq!(v["summary_route"], "index+kept-subsummary", "{v}");
    assert_eq!(warm.len(), 2, "{:?}", shown(&warm));
    assert!(warm.iter().all(|e| e.status == 304), "{:?}", shown(&warm));
    figures.push(("index", shown(&cold), shown(&warm)));
    for (what, cold, warm) in &figures {
        let sum = |l: &[(String, u16, u64)]| l.iter().map(|e| e.2).sum::<u64>();
        eprintln!(
            "{what}: first check {} requests {} bytes {cold:?}; no-op check {} requests {} bytes {warm:?}",
            cold.len(),
            sum(cold),
            warm.len(),
            sum(warm)
        );
    }
}

#[test]
fn a_wrong_digest_in_a_signed_index_is_refused_and_no_ref_moves() {
    let mut fp = Flatpak::new();
    let first = fp.publish(None);
    let client = fp.client();
    pull_ok(&client);
    fp.publish_keeping_summary(None);
    // The index names digest W for x86_64, and summaries/W.gz holds the real subsummary
    // (which hashes to D); the index is signed again by the publisher's own key.
    let (d, _) = x86_entry(&fp);
    let wrong = cfsync_formats::checksum::Checksum::of(b"not the subsummary");
    let mut idx = fs::read(fp.path("summary.idx")).unwrap();
    let real = hex_bytes(&d);
    let at = idx.windows(32).position(|w| w == real).unwrap();
    idx[at..at + 32].copy_from_slice(wrong.as_bytes());
    fs::write(fp.path("summary.idx"), &idx).unwrap();
    fs::copy(
        fp.summaries(&format!("{d}.gz")),
        fp.summaries(&format!("{wrong}.gz")),
    )
    .unwrap();
    fs::remove_file(fp.path("summary.idx.sig")).unwrap();
    let dir = cfsync_tests::tempdir();
    let secret = dir.path().join("secret.asc");
    let exported = run_checked(fp.p.gpg.command().args([
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--armor",
        "--export-secret-keys",
        fp.p.gpg.key_id(),
    ]));
    fs::write(&secret, exported.stdout).unwrap();
    cfsync_tests::run_cfsync_ok([
        OsStr::new("sign"),
        OsStr::new("summary"),
        fp.p.repo.path().as_os_str(),
        OsStr::new("--index"),
        OsStr::new("--gpg-key"),
        secret.as_os_str(),
    ]);
    for f in ["summary", "summary.sig"] {
        fs::remove_file(fp.path(f)).unwrap();
    }
    fp.age();
    let err = pull_refused(&client);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&format!("summary.idx says {wrong}")), "{err}");
    assert_eq!(ref_target(&client).as_deref(), Some(first.as_str()));
}

/// The 32 bytes of a hex digest.
fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Whether the pull asks for `other` while the fault server holds its answer to `held`
/// (the request is read, never answered): then the two are in flight at once, one
/// round trip, where asking one after the other never gets to `other`. The wait for
/// the requests to arrive is bounded; the process is killed after.
fn asked_while_held(root: &Path, held: &str, other: &str) -> bool {
    let server = FaultServer::start(root);
    server.add(Rule::new(held, Fault::StallHeaders));
    let dir = cfsync_tests::tempdir();
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let mut child = cfsync_command()
        .arg("--repo")
        .arg(dir.path().join("repo"))
        .arg("--remotes-dir")
        .arg(&empty)
        .args(["--quiet", "pull", "--dry-run", &server.url(), REF])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut both = false;
    for _ in 0..1200 {
        let log = server.log();
        let held_open = log.iter().any(|l| l.path == held && l.status == 0);
        if held_open && log.iter().any(|l| l.path == other) {
            both = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    both
}

#[test]
fn the_update_check_asks_for_the_file_and_its_signature_at_once() {
    let mut fp = Flatpak::new();
    fp.publish_keeping_summary(None);
    let root = fp.p.repo.path().to_path_buf();
    assert!(asked_while_held(&root, "summary.sig", "summary"));
    for f in ["summary", "summary.sig"] {
        fs::remove_file(fp.path(f)).unwrap();
    }
    assert!(asked_while_held(&root, "summary.idx", "summary.idx.sig"));
    assert!(asked_while_held(&root, "summary.idx.sig", "summary.idx"));
}

/// A remote with neither summary nor index (an archive repository after plain `ostree
/// commit`): the first check learns it (summary, index, then the ref file); the next one
/// asks for `summary`, `summary.idx` and `refs/heads/<ref>` at once, without signatures.
#[test]
fn a_remote_with_neither_summary_nor_index_costs_three_requests_after_the_first() {
    let mut p = Publisher::new();
    let args = p.gpg.sign_args();
    let first = p.commit_with(REF, 1, &args);
    let client = p.client(&["--set=gpg-verify-summary=false"]);
    let v = pull_ok(&client);
    assert_eq!(v["commit"], first.as_str(), "{v}");
    assert_eq!(v["summary_route"], "refs/heads", "{v}");
    let second = p.commit_with(REF, 2, &args);
    let from = p.nginx.log().len();
    let v = pull_ok(&client);
    assert_eq!(v["commit"], second.as_str(), "{v}");
    assert_eq!(v["summary_route"], "refs/heads", "{v}");
    assert_eq!(v["summary_requests"], 3, "{v}");
    let asked: Vec<String> = p
        .nginx
        .log()
        .into_iter()
        .skip(from)
        .map(|e| e.uri)
        .filter(|u| u.starts_with("/summar") || u.starts_with("/refs/"))
        .collect();
    let mut sorted = asked.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "/refs/heads/".to_owned() + REF,
            "/summary".into(),
            "/summary.idx".into()
        ],
        "{asked:?}"
    );
    // A summary published later is found and used.
    p.repo.summary_update(None);
    let v = pull_ok(&client);
    assert_eq!(v["summary_route"], "summary", "{v}");
}
