//! The round-trip chain of a pull, read from the fault server's log: which requests go
//! out together and which wait for an answer.
//!
//! Once the summary names the commit: the superblock of the delta it lists, alone (it
//! embeds the commit); without a listed delta, the commit, its detached metadata and the
//! delta route's first fetch (the delta index and then the superblock) together; parts only after the commit is accepted; a refused commit fetches
//! no part; an up-to-date pull makes one request; the small parts of a delta go out
//! together.
//!
//! Nothing here is timed: the server holds each of those answers [`HOLD`] before
//! sending its body, so an answer cannot end before its request arrived plus `HOLD`.
//! A request that arrived less than `HOLD` after another one was in flight while the
//! other's answer was still held (the two overlap); a request that arrived at least
//! `HOLD` after another one may have waited for it. The orders asserted follow from
//! that alone, whatever the machine's speed (a machine so loaded that requests issued
//! together arrive `HOLD` apart would fail the overlap checks, never pass them wrongly).

use std::path::Path;
use std::time::Duration;

use cfsync_tests::faults::{Fault, FaultServer, Logged, Rule};
use cfsync_tests::{
    Ostree, Repo, TreeBuilder, copy_tree, demo, describe, run_cfsync_ok, scratch_dir,
};

use crate::demo_pulls::{Kind, check_sound, json, pull_with, reference};

/// How long the server holds each answer that the checks below time against.
const HOLD: Duration = Duration::from_millis(400);

/// Holds every answer to paths matching one of `patterns` for [`HOLD`].
fn hold(server: &FaultServer, patterns: &[&str]) {
    for p in patterns {
        hold_for(server, p, HOLD);
    }
}

/// Holds every answer to paths matching `pattern` for `every`.
fn hold_for(server: &FaultServer, pattern: &str, every: Duration) {
    server.add(Rule::new(pattern, Fault::Drip { pieces: 1, every }));
}

/// The one request of the log whose path matches `pattern` (a glob).
fn one<'l>(log: &'l [Logged], pattern: &str) -> &'l Logged {
    let hits: Vec<&Logged> = log
        .iter()
        .filter(|l| cfsync_tests::faults::glob(pattern, &l.path))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one request for {pattern}, got {}: {:#?}",
        hits.len(),
        paths(log)
    );
    hits[0]
}

fn paths(log: &[Logged]) -> Vec<&str> {
    log.iter().map(|l| l.path.as_str()).collect()
}

/// `a` and `b` were in flight together: each arrived before the other's held answer
/// could have ended.
fn assert_overlap(a: &Logged, b: &Logged, log: &[Logged]) {
    let apart = if a.at > b.at {
        a.at - b.at
    } else {
        b.at - a.at
    };
    assert!(
        apart < HOLD,
        "{} and {} arrived {apart:?} apart: one waited for the other's answer; log: {:#?}",
        a.path,
        b.path,
        paths(log)
    );
}

/// Every request matching `pattern` arrived after `first`'s held answer could have
/// ended (so it waited for that answer).
fn assert_after(first: &Logged, pattern: &str, log: &[Logged]) {
    let later: Vec<&Logged> = log
        .iter()
        .filter(|l| cfsync_tests::faults::glob(pattern, &l.path))
        .collect();
    assert!(
        !later.is_empty(),
        "no request for {pattern}: {:#?}",
        paths(log)
    );
    for l in later {
        assert!(
            l.at >= first.at + HOLD,
            "{} was requested {:?} after {}, before its answer could have ended",
            l.path,
            l.at - first.at,
            first.path
        );
    }
}

/// The loose path of a commit's object of type `ext` (`commit`, `commitmeta`).
/// A v1 repository in `dir` pulls v2 from `server` through the delta: the image is
/// v2's and the delta was used.
fn pull_v2_by_delta(dir: &Path, server: &FaultServer) -> Repo {
    let r = Kind::Delta.setup(dir);
    let st = json(&pull_with(&r, &Kind::Delta.args(&server.url()), &[]));
    assert_eq!(st["image"], reference().v2_image.as_str(), "{st}");
    assert!(st["delta"].is_string(), "the delta was not used: {st}");
    r
}

fn object_path(commit: &str, ext: &str) -> String {
    format!("objects/{}/{}.{ext}", &commit[..2], &commit[2..])
}

/// v1 → v2 through the delta the summary lists: its superblock is the one request
/// after the summary (it embeds the commit and its detached metadata, which are not
/// asked for), the parts only once its answer is in, and each of them once.
#[test]
fn the_listed_superblock_brings_the_commit() {
    let d = demo();
    let server = FaultServer::start(&d.repo);
    hold(&server, &["deltas/*/superblock"]);
    let tmp = scratch_dir();
    let r = pull_v2_by_delta(tmp.path(), &server);

    let log = server.log();
    let s = one(&log, "deltas/*/superblock");
    for ext in ["commit", "commitmeta"] {
        let path = object_path(&d.v2, ext);
        assert!(
            !log.iter().any(|l| l.path == path),
            "{path} was asked for: {:#?}",
            paths(&log)
        );
    }
    // The parts wait for the superblock (and so for the commit's checks).
    assert_after(s, "deltas/*/0", &log);
    check_sound(&r, "delta pull");
}

/// The same pull when the superblock the summary lists is damaged in transit (its
/// digest does not match): the commit and its detached metadata are fetched as
/// objects, the superblock again, and the pull ends with the same image.
#[test]
fn a_damaged_listed_superblock_falls_back_to_the_commit_object() {
    let d = demo();
    let server = FaultServer::start(&d.repo);
    server.add(Rule::new("deltas/*/superblock", Fault::Flip(100)).times(1));
    let tmp = scratch_dir();
    let r = pull_v2_by_delta(tmp.path(), &server);
    let log = server.log();
    one(&log, &object_path(&d.v2, "commit"));
    check_sound(&r, "delta pull after a damaged superblock");
}

/// A remote without a summary, whose deltas are found through the delta index: the
/// index goes out with the commit, the superblock as soon as the index is in (while
/// the commit's answer, held twice as long, is still on its way), and the index is not
/// fetched twice.
#[test]
fn the_delta_index_and_its_superblock_go_out_with_the_commit() {
    let d = demo();
    let tmp = scratch_dir();
    let served = tmp.path().join("served");
    copy_tree(&d.repo, &served);
    for f in ["summary", "summary.sig"] {
        std::fs::remove_file(served.join(f)).unwrap();
    }
    let server = FaultServer::start(&served);
    let commit = object_path(&d.v2, "commit");
    hold_for(&server, &commit, HOLD * 2);
    hold(&server, &["delta-indexes/*"]);
    let r = pull_v2_by_delta(tmp.path(), &server);

    let log = server.log();
    let (c, i, s) = (
        one(&log, &commit),
        one(&log, "delta-indexes/*"),
        one(&log, "deltas/*/superblock"),
    );
    assert_overlap(c, i, &log);
    // The superblock waited for the index, not for the commit.
    assert_after(i, "deltas/*/superblock", &log);
    assert!(
        s.at < c.at + HOLD * 2,
        "the superblock waited for the commit ({:?} after it): {:#?}",
        s.at - c.at,
        paths(&log)
    );
    assert_after(c, "deltas/*/0", &log);
    check_sound(&r, "delta pull through the index");
}

/// A commit refused by the downgrade rule: its delta's superblock was requested with it
/// (fetching early), but no part and no object: nothing acted on before the refusal.
#[test]
fn a_refused_commit_fetches_no_part() {
    let d = demo();
    let server = FaultServer::start(&d.repo);
    let tmp = scratch_dir();
    let r = Repo::new(tmp.path().join("repo"));
    let st = json(&pull_with(&r, &Kind::Objects.args(&server.url()), &[]));
    assert_eq!(st["commit"], d.v2.as_str());
    server.reset_log();
    // v1 is older than the v2 the ref names; its commit is held so that the superblock
    // request surely goes out before the refusal.
    hold(&server, &[&object_path(&d.v1, "commit")]);
    let args: Vec<String> = [
        "pull",
        "--json",
        "--commit",
        &d.v1,
        &server.url(),
        &d.refname,
    ]
    .map(str::to_owned)
    .to_vec();
    let out = pull_with(&r, &args, &[]);
    assert!(
        !out.status.success(),
        "downgrade accepted: {}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allow-downgrade"), "{err}");
    let log = server.log();
    assert!(
        log.iter()
            .any(|l| cfsync_tests::faults::glob("deltas/*/superblock", &l.path)),
        "the superblock was not fetched ahead: {:#?}",
        paths(&log)
    );
    let acted: Vec<&str> = paths(&log)
        .into_iter()
        .filter(|p| {
            (p.starts_with("deltas/") && !p.ends_with("/superblock"))
                || p.ends_with(".filez")
                || p.ends_with(".dirtree")
                || p.ends_with(".dirmeta")
        })
        .collect();
    assert!(
        acted.is_empty(),
        "content fetched for a refused commit: {acted:?}"
    );
    check_sound(&r, "refused downgrade");
}

/// Pulling again when up to date: `summary.sig` and `summary`, asked together (one
/// round trip; each answered 304 or equal to the cached copy), nothing else.
#[test]
fn an_up_to_date_pull_asks_for_the_summary_and_its_signature_only() {
    let d = demo();
    let server = FaultServer::start(&d.repo);
    let tmp = scratch_dir();
    let r = Kind::Delta.setup(tmp.path());
    json(&pull_with(&r, &Kind::Delta.args(&server.url()), &[]));
    server.reset_log();
    let st = json(&pull_with(&r, &Kind::Delta.args(&server.url()), &[]));
    assert_eq!(st["up_to_date"], true, "{st}");
    let log = server.log();
    let mut asked = paths(&log);
    asked.sort_unstable();
    assert_eq!(
        asked,
        ["summary", "summary.sig"],
        "an up-to-date pull's requests"
    );
    check_sound(&r, "up-to-date pull");
}

/// A v1 → v2 delta of a few small parts (each far under the 512 KiB tail within which a
/// part hands on its turn): every part's request goes out without waiting for an answer
/// to the one before, so a run of small parts costs one round trip, not one each.
#[test]
fn the_small_parts_of_a_delta_go_out_together() {
    let tmp = scratch_dir();
    let v1 = TreeBuilder::new(tmp.path().join("t1"));
    v1.file("usr/share/doc/readme", "v1\n");
    let v2 = TreeBuilder::copy_of(v1.root(), tmp.path().join("t2"));
    // Three new files of ~0.9 MB that xz shrinks to almost nothing: with 1 MB parts,
    // one part each, every one a few kB on the wire.
    for f in 0..3 {
        let text: String = (0..30_000)
            .map(|i| format!("file {f} line {i:06}\n"))
            .collect();
        v2.file(&format!("usr/share/doc/big{f}.txt"), text);
    }
    let ostree = Ostree::init(tmp.path().join("served"), "archive");
    let c1 = ostree.commit("os/stable", v1.root(), ["--subject=v1"]);
    let c2 = ostree.commit("os/stable", v2.root(), ["--subject=v2"]);
    let served = ostree.path().to_str().unwrap().to_owned();
    run_cfsync_ok([
        "delta",
        "generate",
        &served,
        "--from",
        &c1,
        "--to",
        &c2,
        "--max-chunk-size",
        "1",
    ]);
    run_cfsync_ok(["summary", "update", &served]);

    let server = FaultServer::start(ostree.path());
    let r = Repo::new(tmp.path().join("store"));
    let url = server.url();
    let pull = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["pull".into(), "--json".into()];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a.extend([url.clone(), "os/stable".into()]);
        json(&pull_with(&r, &a, &[]))
    };
    pull(&["--no-deltas", "--commit", &c1]);
    hold(&server, &["deltas/*"]);
    server.reset_log();
    let st = pull(&[]);
    assert_eq!(st["commit"], c2.as_str(), "{st}");
    assert!(st["delta"].is_string(), "the delta was not used: {st}");

    let log = server.log();
    let mut parts: Vec<&Logged> = log
        .iter()
        .filter(|l| l.path.starts_with("deltas/") && !l.path.ends_with("/superblock"))
        .collect();
    parts.sort_by_key(|l| l.at);
    assert!(
        (2..=4).contains(&parts.len()),
        "expected two to four parts: {:#?}",
        paths(&log)
    );
    for p in &parts[1..] {
        assert_overlap(parts[0], p, &log);
    }
    r.fsck();
}
