//! The seed sweep: seeds × the three routes of the demo repository (object route,
//! scratch delta to v1, v1 → v2 delta), each pulled through a verifying remote (commit
//! and summary signatures) behind a [`FaultServer`] in first-request mode
//! ([`Random::first_request`]): the first request of every path — summary, summary.sig,
//! commit, commitmeta, dirtrees, file objects, delta index, superblock, delta parts —
//! gets a fault (503, 500, reset, truncated body, flipped byte, stalled headers, stalled
//! body) rotating with the seed, so seven consecutive seeds give every path every kind;
//! later requests are clean.
//!
//! Each pull must end with the reference commit and image id on its route, verified
//! signatures, a sound repository (`fsck`), and `refetched` in `pull --json` at least the
//! number of flipped bodies the server sent whole and the client then asked for again
//! (each such request must come on a fresh connection with `Cache-Control: no-cache`).
//! A flipped body of a file whose every byte is hashed or signed (commit, dirtree,
//! dirmeta, superblock, delta part, the signed summary) must be asked for again; flips
//! elsewhere (a file object's header padding, a signature's unhashed fields) may be
//! harmless, and are counted as such. A clean pull reports `refetched` 0.
//!
//! Environment: `CFSYNC_SWEEP_SEEDS` (default 20) seeds from `CFSYNC_SWEEP_FIRST`
//! (default 1), or the one seed `CFSYNC_FAULT_SEED`; `CFSYNC_SWEEP_ROUTE` (objects,
//! scratch, delta) for one route; `CFSYNC_SWEEP_JOBS` pulls at once (default 3: they
//! mostly wait on stalls). One summary line at the end (see it with `--nocapture`);
//! failures name the seed, the route and the command that replays them. The 20 seeds
//! take about a minute on two cores.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Instant;

use cfsync_tests::faults::{Fault, FaultServer, Logged, Random, glob};
use cfsync_tests::{Repo, demo, describe, scratch_dir};

use crate::demo_pulls::{KINDS, Kind, add_verifying_remote, check_sound, pull_with};

/// HTTP timings of the sweep's pulls: a stalled body costs 200 ms, stalled headers
/// 400 ms (the client waits the connect plus the stall timeout for them; loopback
/// connects at once), retries 10–100 ms. A healthy answer that a loaded machine delays
/// past them costs one more attempt, of the five. The client logs its transport retries
/// (`retrying`, with the URL and the error), so that a flipped body the server sent whole
/// but the client stopped reading before its end (its stall timer fired on a loaded
/// machine) is told from one it read and refused.
const ENV: [(&str, &str); 7] = [
    ("CFSYNC_HTTP_STALL_TIMEOUT_MS", "200"),
    ("CFSYNC_HTTP_CONNECT_TIMEOUT_MS", "200"),
    ("CFSYNC_HTTP_RETRY_DELAY_MS", "10"),
    ("CFSYNC_HTTP_RETRY_MAX_DELAY_MS", "100"),
    ("CFSYNC_HTTP_RETRY_AFTER_CAP_MS", "1000"),
    ("CFSYNC_HTTP_MAX_ATTEMPTS", "5"),
    (
        "RUST_LOG",
        "warn,cfsync_engine::source::http::request=debug,cfsync_engine::refetch=debug",
    ),
];

/// Whether every byte of the file at `path` is checked (hashed, or signed as a whole:
/// commit, dirtree, dirmeta, delta superblock and parts, the signed summary), so that a
/// flip in it cannot be harmless.
fn hashed(path: &str) -> bool {
    let part = path.starts_with("deltas/")
        && path
            .rsplit('/')
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let metadata = ["objects/*.commit", "objects/*.dirtree", "objects/*.dirmeta"];
    part || path == "summary"
        || glob("deltas/*/superblock", path)
        || metadata.iter().any(|p| glob(p, path))
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

/// The seeds to run: `CFSYNC_FAULT_SEED`, or `CFSYNC_SWEEP_SEEDS` from
/// `CFSYNC_SWEEP_FIRST`.
fn seeds() -> Vec<u64> {
    if let Some(s) = env_u64("CFSYNC_FAULT_SEED") {
        return vec![s];
    }
    let first = env_u64("CFSYNC_SWEEP_FIRST").unwrap_or(1);
    let n = env_u64("CFSYNC_SWEEP_SEEDS").unwrap_or(20);
    (first..first.saturating_add(n)).collect()
}

fn routes() -> Vec<Kind> {
    match std::env::var("CFSYNC_SWEEP_ROUTE") {
        Ok(name) => {
            let k = KINDS.into_iter().find(|k| k.name() == name.trim());
            vec![
                k.unwrap_or_else(|| panic!("CFSYNC_SWEEP_ROUTE={name}: objects, scratch or delta")),
            ]
        }
        Err(_) => KINDS.to_vec(),
    }
}

/// What one pull met.
#[derive(Debug, Default)]
struct Run {
    /// Flipped bodies sent whole.
    flips: u64,
    /// … of which the client asked for again.
    flips_refetched: u64,
    /// … of which the client never read whole: it gave the request up (stall timeout on
    /// a loaded machine) and retried it as a transport failure, as it should.
    flips_unread: u64,
    /// `refetched` as the pull reported it.
    refetched: u64,
}

/// The tally of the sweep.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    faults: BTreeMap<String, u64>,
    /// Per route, the fault kinds met.
    kinds_by_route: BTreeMap<&'static str, BTreeMap<String, u64>>,
    flips: u64,
    flips_refetched: u64,
    flips_unread: u64,
    refetched: u64,
    failures: Vec<String>,
}

/// The length of the demo's file at `path`, if there is one.
fn file_len(path: &str) -> Option<usize> {
    let meta = std::fs::metadata(demo().repo.join(path)).ok()?;
    usize::try_from(meta.len()).ok().filter(|&n| n > 0)
}

/// Whether the pull's `stderr` shows that the client gave up reading `path` before
/// judging its body: a transport retry (`retrying`, naming its URL) or a body that broke
/// off while it streamed (`fetching again after`, naming the object or file).
fn retried_in_transit(stderr: &str, path: &str) -> bool {
    let path = path.trim_start_matches('/');
    let url_end = format!("/{path}");
    let name = client_name(path);
    stderr.lines().any(|l| {
        (l.contains("retrying") && l.split_whitespace().any(|w| w.ends_with(&url_end)))
            || (l.contains(" fetching again after ") && l.contains(&name))
    })
}

/// What the client's log calls the file at `path`: an object by its checksum
/// (objects/ab/cdef….filez is abcdef…), anything else by its path.
fn client_name(path: &str) -> String {
    let path = path.trim_start_matches('/');
    match path
        .strip_prefix("objects/")
        .and_then(|p| p.split_once('/'))
    {
        Some((dir, rest)) => format!("{dir}{}", rest.split('.').next().unwrap_or(rest)),
        None => path.to_owned(),
    }
}

/// Checks one pull's log against its reported `refetched` and the transport retries
/// its `stderr` shows; returns what it met.
fn account(log: &[Logged], refetched: u64, stderr: &str) -> Result<Run, String> {
    let mut run = Run {
        refetched,
        ..Run::default()
    };
    let mut problems = Vec::new();
    for l in log {
        let Some(Fault::Flip(at)) = &l.fault else {
            continue;
        };
        // A flip of a file that exists is sent whole (status 200 once written).
        let Some(len) = file_len(&l.path).filter(|_| l.status == 200) else {
            continue;
        };
        run.flips += 1;
        let again = log.iter().find(|o| o.path == l.path && o.nth == l.nth + 1);
        match again {
            // Not fetched again for its content: the client gave up reading it (and
            // so never saw the flip), then retried it like any transport failure.
            Some(o) if !o.no_cache && retried_in_transit(stderr, &l.path) => {
                run.flips_unread += 1;
            }
            Some(o) => {
                run.flips_refetched += 1;
                if !o.no_cache || o.on_connection != 1 {
                    problems.push(format!(
                        "{} (byte {} of {len} flipped) was fetched again {}{}",
                        l.path,
                        at % len,
                        if o.no_cache {
                            ""
                        } else {
                            "without Cache-Control: no-cache "
                        },
                        if o.on_connection == 1 {
                            String::new()
                        } else {
                            format!("as request {} of a reused connection", o.on_connection)
                        },
                    ));
                    // What the client said about it, for the diagnosis.
                    let name = client_name(&l.path);
                    for line in stderr
                        .lines()
                        .filter(|x| x.contains(&name) || x.contains(&l.path))
                        .take(4)
                    {
                        problems.push(format!("client: {line}"));
                    }
                }
            }
            None if hashed(&l.path) => problems.push(format!(
                "{}: byte {} of {len} flipped, and the body was accepted without being \
                 fetched again",
                l.path,
                at % len
            )),
            None => {}
        }
    }
    if refetched < run.flips_refetched {
        problems.push(format!(
            "refetched {refetched} < {} flipped bodies the server sent whole and the \
             client fetched again",
            run.flips_refetched
        ));
    }
    if problems.is_empty() {
        Ok(run)
    } else {
        Err(problems.join("; "))
    }
}

/// Faulted requests of `log` by fault name.
fn faults_of(log: &[Logged]) -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    for f in log.iter().filter_map(|l| l.fault.as_ref()) {
        *by.entry(f.name()).or_default() += 1;
    }
    by
}

/// One pull of `kind` under first-request faults drawn by `seed` (none if `None`):
/// the faults the server injected, and the outcome.
fn pull_once(kind: Kind, seed: Option<u64>) -> (BTreeMap<String, u64>, Result<Run, String>) {
    let server = FaultServer::start(&demo().repo);
    let outcome = catch_unwind(AssertUnwindSafe(|| pull_through(&server, kind, seed)))
        .unwrap_or_else(|p| Err(panic_text(p)));
    (faults_of(&server.log()), outcome)
}

/// The pull of [`pull_once`], through `server`.
fn pull_through(server: &FaultServer, kind: Kind, seed: Option<u64>) -> Result<Run, String> {
    let tmp = scratch_dir();
    let r = Repo::new(tmp.path().join("repo"));
    add_verifying_remote(&r, &server.url());
    if kind == Kind::Delta {
        // v1 through the same remote, so that the pull of v2 starts from it.
        let out = pull_with(&r, &Kind::Scratch.args("demo"), &ENV);
        if !out.status.success() {
            return Err(format!("the clean pull of v1 failed:\n{}", describe(&out)));
        }
    }
    server.reset_log();
    if let Some(seed) = seed {
        server.random(Random::first_request(seed));
    }
    let out = pull_with(&r, &kind.args("demo"), &ENV);
    let log = server.log();
    if !out.status.success() {
        let faulted: Vec<String> = log
            .iter()
            .filter_map(|l| l.fault.as_ref().map(|f| format!("{} {}", f.name(), l.path)))
            .collect();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error = stderr
            .lines()
            .rfind(|l| l.starts_with("error"))
            .unwrap_or("");
        return Err(format!(
            "pull failed: {error}\nunder {} fault(s): {}\n{}",
            faulted.len(),
            faulted.join(", "),
            describe(&out)
        ));
    }
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("no JSON from pull ({e}):\n{}", describe(&out)))?;
    let (commit, image) = kind.want();
    if st["commit"] != commit || st["image"] != image {
        return Err(format!("wanted commit {commit} image {image}, got {st}"));
    }
    let delta_ok = match kind {
        Kind::Objects => st["delta"].is_null(),
        Kind::Delta | Kind::Scratch => st["delta"].is_string(),
    };
    if !delta_ok {
        return Err(format!("left its route: delta {}", st["delta"]));
    }
    if st["signatures"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!("no signature verified: {st}"));
    }
    catch_unwind(AssertUnwindSafe(|| check_sound(&r, kind.name()))).map_err(panic_text)?;
    let Some(refetched) = st["refetched"].as_u64() else {
        return Err(format!("pull --json has no number `refetched`: {st}"));
    };
    if seed.is_none() && refetched != 0 {
        return Err(format!("a clean pull refetched {refetched} bodies: {st}"));
    }
    account(&log, refetched, &String::from_utf8_lossy(&out.stderr))
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".into())
}

#[test]
fn seeds_times_routes_end_in_the_reference_image() {
    let started = Instant::now();
    let (seeds, routes) = (seeds(), routes());
    // The reference images, computed before the pulls run in parallel.
    let _ = crate::demo_pulls::reference();
    let mut work: VecDeque<(Kind, Option<u64>)> = routes.iter().map(|&k| (k, None)).collect();
    for &seed in &seeds {
        work.extend(routes.iter().map(|&k| (k, Some(seed))));
    }
    let work = Mutex::new(work);
    let tally = Mutex::new(Tally::default());
    let jobs = env_u64("CFSYNC_SWEEP_JOBS").unwrap_or(3).max(1);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let Some((kind, seed)) = work.lock().unwrap().pop_front() else {
                        return;
                    };
                    let (faults, result) = pull_once(kind, seed);
                    let mut t = tally.lock().unwrap();
                    t.runs += 1;
                    let by_route = t.kinds_by_route.entry(kind.name()).or_default();
                    for (name, n) in &faults {
                        *by_route.entry(name.clone()).or_default() += n;
                    }
                    for (name, n) in faults {
                        *t.faults.entry(name).or_default() += n;
                    }
                    match result {
                        Ok(run) => {
                            t.flips += run.flips;
                            t.flips_refetched += run.flips_refetched;
                            t.flips_unread += run.flips_unread;
                            t.refetched += run.refetched;
                        }
                        Err(e) => {
                            let replay = match seed {
                                Some(n) => format!(
                                    "replay: CFSYNC_FAULT_SEED={n} CFSYNC_SWEEP_ROUTE={} \
                                     cargo test -p cfsync-tests --test integration -- \
                                     sweep:: --nocapture",
                                    kind.name()
                                ),
                                None => "(clean pull, no faults)".into(),
                            };
                            let seed = seed.map_or("none".into(), |n| n.to_string());
                            let head = format!("seed {seed}, {} route", kind.name());
                            let first = e.lines().next().unwrap_or_default();
                            eprintln!("sweep FAILURE: {head}: {first}\n  {replay}");
                            t.failures.push(format!("{head}: {e}\n  {replay}"));
                        }
                    }
                }
            });
        }
    });
    let t = tally.into_inner().unwrap();
    let faults: Vec<String> = t.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
    eprintln!(
        "sweep: {} runs ({} seeds × {} routes + {} clean), faults injected: {} ({}); \
         flips sent whole {} (fetched again {}, not read whole by a loaded client {}, \
         accepted as harmless {}); refetched reported {}; failures {}; {:.1} s",
        t.runs,
        seeds.len(),
        routes.len(),
        routes.len(),
        t.faults.values().sum::<u64>(),
        faults.join(", "),
        t.flips,
        t.flips_refetched,
        t.flips_unread,
        t.flips - t.flips_refetched - t.flips_unread,
        t.refetched,
        t.failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        t.failures.is_empty(),
        "{} of {} sweep runs failed:\n{}",
        t.failures.len(),
        t.runs,
        t.failures.join("\n")
    );
    // Seven consecutive seeds give every path every kind: every route met them all.
    if seeds.len() >= Random::first_request_faults().len() {
        let all: Vec<String> = Random::first_request_faults()
            .iter()
            .map(Fault::name)
            .collect();
        for kind in &routes {
            let met = t
                .kinds_by_route
                .get(kind.name())
                .cloned()
                .unwrap_or_default();
            let missing: Vec<&String> = all.iter().filter(|k| !met.contains_key(*k)).collect();
            assert!(
                missing.is_empty(),
                "{} route never met {missing:?}",
                kind.name()
            );
        }
        assert!(t.flips > 0, "no flipped body was sent whole");
    }
}

/// The pull's own lines (as `RUST_LOG` in [`ENV`] makes it print them) tell a request
/// given up in transit from a body refused for its content.
#[test]
fn transit_retries_are_read_from_the_pull_log() {
    let log = "\
2026-12-07T19:24:05.350874Z DEBUG cfsync_engine::source::http::request: retrying \
url=http://127.0.0.1:43901/objects/23/22fdda68f227c81ccce303df682d468ac171368b4c1f0711fc1358162421b1.commit \
attempts=1 error=http://127.0.0.1:43901/objects/23/22fd….commit sent nothing for 1 s
2026-12-07T19:24:05.360000Z DEBUG cfsync_engine::refetch: file object \
368804e473327301456f42b11a51a798baf9965be32eec8a28f7aa021701a9f7: fetching again after \
a body that broke off
2026-12-07T19:24:05.423203Z  INFO cfsync_engine::refetch: dirmeta object \
446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488: fetching again, fresh, \
after a damaged body: checksum mismatch";
    let commit = "objects/23/22fdda68f227c81ccce303df682d468ac171368b4c1f0711fc1358162421b1.commit";
    let filez = "objects/36/8804e473327301456f42b11a51a798baf9965be32eec8a28f7aa021701a9f7.filez";
    let dirmeta =
        "objects/44/6a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488.dirmeta";
    assert!(retried_in_transit(log, commit));
    assert!(retried_in_transit(log, filez));
    // Refetched fresh for its content: not a transit retry.
    assert!(!retried_in_transit(log, dirmeta));
    assert!(!retried_in_transit(log, "objects/23/22fdda.dirtree"));
    assert!(!retried_in_transit(log, "summary"));
}
