//! The fault matrix: the demo repository behind [`FaultServer`], pulled by the `cfsync`
//! binary three ways — object by object into an empty repository (`objects`), through
//! the v1 → v2 static delta into a repository holding v1 (`delta`), and through the
//! scratch delta to v1 into an empty repository (`scratch`).
//!
//! - transient faults (5xx, 429 with `Retry-After`, truncated, reset, stalled, dripped
//!   and over-declared bodies, and a seeded random mix of them) end in a successful
//!   pull with the reference image id;
//! - permanent faults (5xx for ever, 403, 404, redirect loops, flipped bytes, short
//!   `Content-Length`, huge and endless bodies, stalls for ever, another object's bytes
//!   under a name) end in a clear error within a bound; the ref stays where it was,
//!   and once the fault is gone the next pull succeeds and fetches no object that the
//!   failed pull had received whole;
//! - after every pull, `cfsync fsck` passes and every ref names a commit whose image is
//!   the reference one.
//!
//! The HTTP timings are shortened through the `CFSYNC_HTTP_*` environment variables
//! (1 s stall and connect timeouts, 20 ms first backoff). `CFSYNC_FAULT_SEED` replays
//! the random runs with another seed; the seed is printed.

use std::process::Output;
use std::time::{Duration, Instant};

use cfsync_tests::faults::{Fault, FaultServer, Logged, Pick, Random, Rule};
use cfsync_tests::{Repo, copy_tree, demo, describe, scratch_dir};

use crate::demo_pulls::{
    KINDS, Kind, add_verifying_remote, check_sound, json, pull_with, ref_now, reference,
};

/// Shortened HTTP timings for every pull of this suite.
const ENV: [(&str, &str); 6] = [
    ("CFSYNC_HTTP_STALL_TIMEOUT_MS", "1000"),
    ("CFSYNC_HTTP_CONNECT_TIMEOUT_MS", "1000"),
    ("CFSYNC_HTTP_RETRY_DELAY_MS", "20"),
    ("CFSYNC_HTTP_RETRY_MAX_DELAY_MS", "200"),
    ("CFSYNC_HTTP_RETRY_AFTER_CAP_MS", "3000"),
    ("CFSYNC_HTTP_MAX_ATTEMPTS", "5"),
];

/// A permanent fault must be reported within this time.
const BOUND: Duration = Duration::from_secs(40);

fn pull(repo: &Repo, args: &[String]) -> Output {
    pull_with(repo, args, &ENV)
}

/// The fault matrix's targets on each kind of pull.
impl Kind {
    /// The bulk content requests of this kind: `.filez` objects or delta parts.
    fn content(self) -> &'static str {
        match self {
            Kind::Objects => "objects/*.filez",
            Kind::Delta | Kind::Scratch => "deltas/*/0",
        }
    }

    /// Metadata fetched whole: dirtrees, or the delta superblock.
    fn metadata(self) -> &'static str {
        match self {
            Kind::Objects => "objects/*.dirtree",
            Kind::Delta | Kind::Scratch => "deltas/*/superblock",
        }
    }

    /// The one content path a permanent fault targets: a given `.filez` of v2 (so that
    /// others come through first, whatever the order), or the delta's part.
    fn one_content(self) -> String {
        match self {
            Kind::Objects => reference().one_filez.clone(),
            Kind::Delta | Kind::Scratch => self.content().to_owned(),
        }
    }

    /// The one metadata path a permanent fault targets: a given dirtree of v2, or the
    /// delta's superblock.
    fn one_metadata(self) -> String {
        match self {
            Kind::Objects => reference().one_dirtree.clone(),
            Kind::Delta | Kind::Scratch => self.metadata().to_owned(),
        }
    }
}

/// One pull under `rules` that must succeed with the reference image. Returns the log.
fn transient(kind: Kind, rules: Vec<Rule>) -> Vec<Logged> {
    let server = FaultServer::start(&demo().repo);
    for rule in rules {
        server.add(rule);
    }
    let tmp = scratch_dir();
    let r = kind.setup(tmp.path());
    let out = pull(&r, &kind.args(&server.url()));
    let context = format!("{} pull", kind.name());
    let st = json(&out);
    let (commit, image) = kind.want();
    assert_eq!(st["commit"], commit, "{context}: {st}");
    assert_eq!(st["image"], image, "{context}: {st}");
    match kind {
        Kind::Objects => assert!(st["delta"].is_null(), "{context}: {st}"),
        Kind::Delta | Kind::Scratch => assert!(st["delta"].is_string(), "{context}: {st}"),
    }
    let log = server.log();
    assert!(
        log.iter().any(|l| l.fault.is_some()),
        "{context}: no fault was injected (the rule matched nothing)"
    );
    check_sound(&r, &context);
    log
}

/// A pull under `rules` that must fail with a message containing one of `expect`, in
/// bounded time, leaving the repository sound and the ref where it was; then the same
/// pull without faults must succeed and fetch no object the failed pull received whole.
fn permanent(kind: Kind, rules: Vec<Rule>, expect: &[&str]) {
    let server = FaultServer::start(&demo().repo);
    for rule in rules {
        server.add(rule);
    }
    let tmp = scratch_dir();
    let r = kind.setup(tmp.path());
    let started = Instant::now();
    let out = pull(&r, &kind.args(&server.url()));
    let took = started.elapsed();
    let context = format!("{} pull", kind.name());
    assert!(
        !out.status.success(),
        "{context}: succeeded despite the fault:\n{}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        expect.iter().any(|e| err.contains(&e.to_lowercase())),
        "{context}: error names none of {expect:?}:\n{}",
        describe(&out)
    );
    assert!(
        !err.contains("internal error") && !err.contains("panicked"),
        "{context}: {}",
        describe(&out)
    );
    assert!(took < BOUND, "{context}: took {took:?}");
    assert!(
        server.log().iter().any(|l| l.fault.is_some()),
        "{context}: no fault was injected"
    );
    // Bounded retries: no path was requested more than the source's 5 attempts (a
    // retry layer above the source's must not multiply them). Redirect hops are one
    // attempt.
    let mut per_path = std::collections::BTreeMap::<String, u64>::new();
    for l in server.log().into_iter().filter(|l| l.status != 302) {
        *per_path.entry(l.path).or_default() += 1;
    }
    if let Some((worst, n)) = per_path.iter().max_by_key(|(_, n)| **n) {
        assert!(*n <= 5, "{context}: {worst} requested {n} times");
    }
    check_sound(&r, &context);
    assert_eq!(
        ref_now(&r).as_deref(),
        kind.before(),
        "{context}: the ref moved"
    );

    // Fault gone: the next pull completes, refetching nothing received whole before.
    let whole: std::collections::BTreeSet<String> = server
        .log()
        .into_iter()
        .filter(|l| l.fault.is_none() && l.status == 200 && l.path.starts_with("objects/"))
        .filter(|l| !l.path.ends_with(".commit") && !l.path.ends_with(".commitmeta"))
        .map(|l| l.path)
        .collect();
    server.clear();
    server.reset_log();
    let st = json(&pull(&r, &kind.args(&server.url())));
    let (commit, image) = kind.want();
    assert_eq!(st["commit"], commit, "{context} again: {st}");
    assert_eq!(st["image"], image, "{context} again: {st}");
    let again: Vec<String> = server
        .log()
        .into_iter()
        .map(|l| l.path)
        .filter(|p| whole.contains(p))
        .collect();
    assert!(
        again.is_empty(),
        "{context} again: fetched {} object(s) the failed pull had received whole: {:?}",
        again.len(),
        &again[..again.len().min(5)]
    );
    check_sound(&r, &format!("{context} again"));
}

/// A drip of about 1.8 s whatever the size, with pauses far below the 1 s stall
/// timeout: slow but moving, so it must not time out.
fn drip() -> Fault {
    Fault::Drip {
        pieces: 12,
        every: Duration::from_millis(150),
    }
}

// ---------------------------------------------------------------------------------------
// Transient faults: the pull succeeds.
// ---------------------------------------------------------------------------------------

fn each_kind(f: impl Fn(Kind)) {
    for kind in KINDS {
        f(kind);
    }
}

#[test]
fn server_errors_are_retried() {
    each_kind(|kind| {
        // Every content request fails once with 500, every metadata request once with
        // 502 and the first 503 twice: retried with backoff.
        let log = transient(
            kind,
            vec![
                Rule::new(kind.content(), Fault::Status(500)).times(1),
                Rule::new(kind.metadata(), Fault::Status(502)).times(1),
                Rule::new("objects/*.commit", Fault::Status(503)).times(2),
            ],
        );
        let faults = log.iter().filter(|l| l.fault.is_some()).count();
        // A delta the summary lists brings the commit in its superblock: no `.commit`
        // is asked for, so only the part and the superblock meet their faults.
        let want = match kind {
            Kind::Objects => 4,
            Kind::Delta | Kind::Scratch => 2,
        };
        assert!(faults >= want, "{}: {faults} faults", kind.name());
    });
}

#[test]
fn rate_limits_are_honoured() {
    each_kind(|kind| {
        let log = transient(
            kind,
            vec![
                Rule::new(kind.content(), Fault::RetryAfter(429, 1))
                    .times(1)
                    .total(),
            ],
        );
        // The retry of the limited path came no sooner than Retry-After said.
        let limited = log.iter().find(|l| l.fault.is_some()).unwrap();
        let retry = log
            .iter()
            .find(|l| l.path == limited.path && l.nth == limited.nth + 1)
            .unwrap_or_else(|| panic!("{}: {} never retried", kind.name(), limited.path));
        let waited = retry.at.duration_since(limited.at);
        assert!(
            waited >= Duration::from_millis(950),
            "{}: retried after {waited:?} despite Retry-After: 1",
            kind.name()
        );
    });
}

#[test]
fn broken_bodies_are_fetched_again() {
    each_kind(|kind| {
        // Truncated (FIN), reset (RST) and over-declared bodies of every content
        // request once, and of the metadata too.
        transient(
            kind,
            vec![
                Rule::new(kind.content(), Fault::Truncate(100)).times(1),
                Rule::new(kind.content(), Fault::Reset(50)).from(2).times(1),
                Rule::new(kind.metadata(), Fault::LieLength(4096)).times(1),
            ],
        );
    });
}

#[test]
fn stalls_time_out_and_are_retried() {
    each_kind(|kind| {
        let started = Instant::now();
        transient(
            kind,
            vec![
                Rule::new(kind.content(), Fault::StallHeaders)
                    .times(1)
                    .total(),
                Rule::new(kind.content(), Fault::StallBody(10))
                    .from(2)
                    .times(1)
                    .total(),
                Rule::new(kind.metadata(), Fault::StallBody(3))
                    .times(1)
                    .total(),
            ],
        );
        // Three stalls of the 1 s timeout, not 30 s ones.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "{}: {took:?}", kind.name());
    });
}

#[test]
fn slow_moving_bodies_do_not_time_out() {
    each_kind(|kind| {
        let log = transient(
            kind,
            vec![
                Rule::new(kind.content(), drip()).times(1).total(),
                Rule::new(kind.metadata(), drip()).times(1).total(),
            ],
        );
        // Two requests, each dripped for longer than the stall timeout, not retried.
        let dripped: Vec<&Logged> = log.iter().filter(|l| l.fault.is_some()).collect();
        assert_eq!(dripped.len(), 2, "{}: {dripped:?}", kind.name());
        for l in dripped {
            assert!(
                !log.iter().any(|o| o.path == l.path && o.nth > l.nth),
                "{}: {} was fetched again",
                kind.name(),
                l.path
            );
        }
    });
}

#[test]
fn seeded_random_faults_end_in_success() {
    let seeds: Vec<u64> = match std::env::var("CFSYNC_FAULT_SEED") {
        Ok(s) => vec![s.parse().expect("CFSYNC_FAULT_SEED is a number")],
        Err(_) => vec![1, 2],
    };
    for seed in seeds {
        each_kind(|kind| {
            eprintln!("random faults: {} pull, seed {seed}", kind.name());
            let log = transient_random(kind, seed);
            let n = log.iter().filter(|l| l.fault.is_some()).count();
            assert!(n > 0, "seed {seed}: no fault drawn");
            // Deterministic: the same seed draws the same faults for the same requests.
            let again = transient_random(kind, seed);
            let set = |log: &[Logged]| {
                let mut v: Vec<(String, u64, String)> = log
                    .iter()
                    .filter_map(|l| l.fault.as_ref().map(|f| (l.path.clone(), l.nth, f.name())))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(set(&log), set(&again), "seed {seed}: not deterministic");
        });
    }
}

fn transient_random(kind: Kind, seed: u64) -> Vec<Logged> {
    let server = FaultServer::start(&demo().repo);
    server.random(Random {
        seed,
        percent: if kind == Kind::Objects { 15 } else { 60 },
        faults: vec![
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(502),
            Fault::Truncate(7),
            Fault::Reset(20),
            Fault::LieLength(1000),
            Fault::StallBody(1),
        ],
        max_per_path: 2,
        pattern: "*".into(),
        pick: Pick::Uniform,
    });
    let tmp = scratch_dir();
    let r = kind.setup(tmp.path());
    let st = json(&pull(&r, &kind.args(&server.url())));
    let (commit, image) = kind.want();
    assert_eq!(st["commit"], commit, "seed {seed}: {st}");
    assert_eq!(st["image"], image, "seed {seed}: {st}");
    check_sound(&r, &format!("{} pull, seed {seed}", kind.name()));
    server.log()
}

// ---------------------------------------------------------------------------------------
// Permanent faults: a clear error in bounded time, nothing lost.
// ---------------------------------------------------------------------------------------

#[test]
fn server_errors_for_ever_fail_clearly() {
    each_kind(|kind| {
        permanent(
            kind,
            vec![Rule::new(&kind.one_content(), Fault::Status(503))],
            &["HTTP 503 after 5 attempt"],
        );
    });
    permanent(
        Kind::Objects,
        vec![Rule::new(&Kind::Objects.one_metadata(), Fault::Status(403))],
        &["HTTP 403 after 1 attempt"],
    );
    permanent(
        Kind::Delta,
        vec![Rule::new(Kind::Delta.content(), Fault::Status(404))],
        &["not found at the source"],
    );
}

#[test]
fn redirect_loops_fail_clearly() {
    each_kind(|kind| {
        permanent(
            kind,
            vec![Rule::new(&kind.one_content(), Fault::RedirectLoop)],
            &["too many redirects"],
        );
    });
}

#[test]
fn corrupt_bodies_fail_clearly() {
    each_kind(|kind| {
        // A flipped byte in the content, then in the metadata.
        permanent(
            kind,
            vec![Rule::new(&kind.one_content(), Fault::Flip(40))],
            &[
                "checksum",
                "corrupt",
                "invalid",
                "does not match",
                "deflate",
            ],
        );
        permanent(
            kind,
            vec![Rule::new(&kind.one_metadata(), Fault::Flip(2))],
            &["checksum", "corrupt", "invalid", "does not match"],
        );
        // A body cut short by a Content-Length that says less than there is.
        permanent(
            kind,
            vec![Rule::new(&kind.one_content(), Fault::LieLength(-9))],
            &[
                "checksum",
                "corrupt",
                "invalid",
                "does not match",
                "unexpected end",
                "truncated",
                "eof",
            ],
        );
    });
}

#[test]
fn huge_and_endless_bodies_fail_clearly() {
    each_kind(|kind| {
        permanent(
            kind,
            vec![Rule::new(&kind.one_content(), Fault::Huge(1 << 50))],
            &["larger than the limit"],
        );
        permanent(
            kind,
            vec![Rule::new(&kind.one_content(), Fault::Endless)],
            &["larger than the limit", "invalid", "corrupt", "header"],
        );
    });
    permanent(
        Kind::Objects,
        vec![Rule::new(
            &Kind::Objects.one_metadata(),
            Fault::Huge(1 << 40),
        )],
        &["larger than the limit"],
    );
}

#[test]
fn stalls_for_ever_fail_clearly() {
    for kind in [Kind::Objects, Kind::Delta] {
        permanent(
            kind,
            vec![Rule::new(&kind.one_metadata(), Fault::StallBody(2))],
            &["sent nothing for 1 s"],
        );
    }
    // A file object that never answers: the source's 5 attempts of 1 s, not more (the
    // per-path request bound in `permanent` checks it).
    permanent(
        Kind::Objects,
        vec![Rule::new(&Kind::Objects.one_content(), Fault::StallHeaders)],
        &["sent nothing for 1 s (attempt 5)"],
    );
}

#[test]
fn another_object_under_a_name_fails_clearly() {
    let d = demo();
    // The bytes of another file object served as one of v2's; and each delta's part
    // served as the other's.
    let other = std::fs::read_dir(d.repo.join("objects/00"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "filez") && !p.ends_with(Kind::Objects.one_content())
        })
        .expect("a .filez under objects/00");
    permanent(
        Kind::Objects,
        vec![Rule::new(&Kind::Objects.one_content(), Fault::File(other))],
        &["checksum mismatch", "hashes to"],
    );
    let mut parts = Vec::new();
    for a in std::fs::read_dir(d.repo.join("deltas")).unwrap().flatten() {
        for b in std::fs::read_dir(a.path()).unwrap().flatten() {
            parts.push(b.path().join("0"));
        }
    }
    for kind in [Kind::Delta, Kind::Scratch] {
        let wrong = parts
            .iter()
            .find(|p| {
                // A scratch delta's directory is `REST`, a from-to one's `ROM-TO`: look at
                // the name only (the checkout's path may hold a `-`).
                let dir = p.parent().and_then(|d| d.file_name()).unwrap();
                let scratch = !dir.to_string_lossy().contains('-');
                scratch != (kind == Kind::Scratch)
            })
            .unwrap()
            .clone();
        permanent(
            kind,
            vec![Rule::new(kind.content(), Fault::File(wrong))],
            // The other part is larger than this one's declared size, or hashes wrong.
            &["checksum mismatch", "larger than the limit"],
        );
    }
}

// ---------------------------------------------------------------------------------------
// Stale summaries.
// ---------------------------------------------------------------------------------------

/// A mirror that serves the summary of an older state of the repository (the ref at v1)
/// next to the current signature: a verified pull refuses it; served with its own
/// (unsigned) state to an unverified pull of a repository that holds v2, the downgrade
/// is refused; the ref never moves back.
#[test]
fn stale_summaries_are_refused() {
    let d = demo();
    let tmp = scratch_dir();
    // The stale state: a copy of the demo with the ref reset to v1 and a new summary.
    let stale_repo = tmp.path().join("stale");
    copy_tree(&d.repo, &stale_repo);
    let ostree = cfsync_tests::Ostree::open(&stale_repo);
    ostree.run(["reset", d.refname.as_str(), d.v1.as_str()]);
    ostree.run(["summary", "-u"]);
    let stale = std::fs::read(stale_repo.join("summary")).unwrap();
    assert_ne!(stale, std::fs::read(d.repo.join("summary")).unwrap());
    let args = |source: &str| -> Vec<String> {
        vec![
            "pull".into(),
            "--json".into(),
            source.into(),
            d.refname.clone(),
        ]
    };

    // A remote verifying summaries, nothing cached: the stale summary does not match
    // summary.sig. (Without gpg-verify-summary, as in libostree, a fresh repository
    // would take the stale ref's signed commit.)
    // (With a cached summary whose summary.sig is unchanged, the stale one is not even
    // fetched, as in libostree.)
    let server = FaultServer::start(&d.repo);
    server.add(Rule::new("summary", Fault::Body(stale.clone())));
    let r = Repo::new(tmp.path().join("verified"));
    add_verifying_remote(&r, &server.url());
    let out = pull(&r, &args("demo"));
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("signature"), "{}", describe(&out));
    assert_eq!(ref_now(&r), None);
    check_sound(&r, "verified pull of a stale summary");
    server.clear();
    let st = json(&pull(&r, &args("demo")));
    assert_eq!(st["commit"], d.v2.as_str());

    // Unverified pull by URL of a consistent but stale mirror: a downgrade, refused.
    let mirror = FaultServer::start(&stale_repo);
    let out = pull(&r, &args(&mirror.url()));
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("older") || err.contains("downgrade"),
        "{}",
        describe(&out)
    );
    assert_eq!(ref_now(&r).as_deref(), Some(d.v2.as_str()));
    check_sound(&r, "unverified pull of a stale mirror");
}

// ---------------------------------------------------------------------------------------
// The fixture: large bodies, decoded as they stream, broken mid-way.
// ---------------------------------------------------------------------------------------

/// The real fixture, whose largest files (over 1 MiB as `.filez`) are decoded while they
/// stream rather than buffered: each such body is cut off half-way on its first request
/// and stalls three quarters in on its second, and the v1 → v2 delta's parts are reset
/// half-way once. The object pull of v1 and the delta pull to v2 both end with the
/// images of clean pulls.
#[test]
fn fixture_bodies_broken_mid_stream() {
    let fx = cfsync_tests::fixture();
    let server = FaultServer::start(&fx.repo);
    let url = server.url();
    let mut large = Vec::new();
    for d in std::fs::read_dir(fx.repo.join("objects"))
        .unwrap()
        .flatten()
    {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let len = f.metadata().unwrap().len();
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".filez") && len > 1024 * 1024 {
                let path = format!("objects/{}/{name}", d.file_name().to_string_lossy());
                large.push((path, usize::try_from(len).unwrap()));
            }
        }
    }
    assert!(!large.is_empty(), "no .filez over 1 MiB in the fixture");
    for (path, len) in &large {
        server.add(Rule::new(path, Fault::Truncate(len / 2)).times(1));
        server.add(
            Rule::new(path, Fault::StallBody(len * 3 / 4))
                .from(2)
                .times(1),
        );
    }
    let tmp = scratch_dir();
    let r = Repo::new(tmp.path().join("repo"));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["pull".into(), "--json".into()];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a.extend([url.clone(), fx.refname.clone()]);
        a
    };
    let v1 = json(&pull(&r, &args(&["--no-deltas", "--commit", &fx.v1])));
    assert_eq!(v1["commit"], fx.v1.as_str());
    let log = server.log();
    let broken: Vec<&Logged> = log.iter().filter(|l| l.fault.is_some()).collect();
    assert!(!broken.is_empty(), "v1 has none of the large files");
    for l in &broken {
        // Each broken body was fetched again until whole, and no more.
        let n = log.iter().filter(|o| o.path == l.path).count();
        assert_eq!(n, 3, "{} requested {n} times", l.path);
    }

    server.clear();
    server.reset_log();
    for p in ["0", "1", "2", "3"] {
        let rule = Rule::new(&format!("deltas/*-*/{p}"), Fault::Reset(100_000)).times(1);
        server.add(rule);
    }
    let v2 = json(&pull(&r, &args(&[])));
    assert_eq!(v2["commit"], fx.v2.as_str());
    assert!(v2["delta"].is_string(), "{v2}");
    let resets = server.faulted().len();
    assert!(resets >= 1, "no delta part was reset");
    check_fixture(&r, &fx.v1, &fx.v2);

    // The same images as clean pulls.
    for (commit, got) in [(&fx.v1, &v1), (&fx.v2, &v2)] {
        server.clear();
        let tmp = scratch_dir();
        let clean = Repo::new(tmp.path().join("repo"));
        let st = json(&pull(&clean, &args(&["--no-deltas", "--commit", commit])));
        assert_eq!(st["image"], got["image"], "{commit}");
    }
}

fn check_fixture(r: &Repo, v1: &str, v2: &str) {
    r.fsck();
    for (name, commit) in r.refs() {
        assert!(commit == v1 || commit == v2, "ref {name} names {commit}");
    }
}

// ---------------------------------------------------------------------------------------
// Signed metadata: summary, summary.sig, commit, commitmeta.
// ---------------------------------------------------------------------------------------

/// A remote that verifies commit and summary signatures, over a network that breaks
/// every metadata file once (summary truncated, summary.sig reset, commit 502,
/// commitmeta over-declared, the delta superblock stalled): the pull succeeds with the
/// signatures verified. When the summary fails for ever, the pull fails clearly and
/// fetches no content.
#[test]
fn signed_metadata_survives_flaky_fetches() {
    let d = demo();
    let server = FaultServer::start(&d.repo);
    for rule in [
        Rule::new("summary", Fault::Truncate(100)).times(1),
        Rule::new("summary.sig", Fault::Reset(10)).times(1),
        Rule::new("objects/*.commit", Fault::Status(502)).times(1),
        Rule::new("objects/*.commitmeta", Fault::LieLength(50)).times(1),
        Rule::new("deltas/*/superblock", Fault::StallBody(5)).times(1),
    ] {
        server.add(rule);
    }
    let tmp = scratch_dir();
    let r = Repo::new(tmp.path().join("repo"));
    let key = d.public_key.to_str().unwrap();
    let url = server.url();
    r.ok([
        "remote",
        "add",
        "demo",
        &url,
        "--gpg-import",
        key,
        "--set",
        "gpg-verify-summary=true",
    ]);
    let pull_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["pull".into(), "--json".into()];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a.extend(["demo".to_owned(), d.refname.clone()]);
        a
    };
    // v1 first, object by object (its commit and commitmeta fetched as objects, where
    // their faults wait), then v2 through the v1 -> v2 delta, whose superblock brings the
    // commit and its signatures.
    let st = json(&pull(&r, &pull_args(&["--commit", &d.v1, "--no-deltas"])));
    assert_eq!(st["image"], reference().v1_image.as_str());
    let st = json(&pull(&r, &pull_args(&[])));
    assert_eq!(st["image"], reference().v2_image.as_str());
    assert!(st["delta"].is_string(), "{st}");
    assert!(
        !st["signatures"].as_array().unwrap().is_empty(),
        "no signature verified: {st}"
    );
    let faulted: std::collections::BTreeSet<String> = server
        .faulted()
        .iter()
        .map(|l| l.fault.as_ref().unwrap().name())
        .collect();
    assert_eq!(faulted.len(), 5, "not every fault was met: {faulted:?}");
    check_sound(&r, "signed pulls");

    // The summary failing for ever: a clear error, no content requested, nothing moved.
    server.clear();
    server.reset_log();
    // (summary.sig too: with it unchanged, the cached summary would serve.)
    server.add(Rule::new("summary*", Fault::Status(500)));
    let started = Instant::now();
    let out = pull(&r, &pull_args(&["--commit", &d.v1, "--allow-downgrade"]));
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(started.elapsed() < BOUND);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("summary") && err.contains("HTTP 500"), "{err}");
    assert!(
        !server
            .log()
            .iter()
            .any(|l| l.path.starts_with("objects/") || l.path.starts_with("deltas/")),
        "content requested without a summary: {:?}",
        server.log()
    );
    assert_eq!(ref_now(&r).as_deref(), Some(d.v2.as_str()));
    check_sound(&r, "summary failing for ever");
}
