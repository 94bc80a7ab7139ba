//! Interrupted and failing pulls of the real fixture over nginx (object route,
//! `--no-deltas`):
//!
//! - a corrupt `.dirtree` and a corrupt `.filez` on the server fail the pull naming the
//!   object, leave the ref where it was, and once fixed the next pull fetches only what
//!   no earlier pull had verified (checked against nginx's access log);
//! - `kill -9` at seeded random points (at least 30 kills on the object route, 10 on
//!   the default, static-delta route, 10 during `cfsync gc`): afterwards `cfsync fsck`
//!   passes, every ref names a complete commit with the right image, and pulling again
//!   completes with the right image id;
//! - a kill late in a pull: the resumed pull takes what was verified from the resume
//!   journal and fetches only the rest, every object exactly once overall.
//!
//! Set `CFSYNC_CRASH_SEED` to replay a run of the random kills (the seed is printed).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cfsync_tests::{
    Fixture, LogEntry, Nginx, Ostree, Repo, Rng, copy_tree, describe, fixture, num, run_checked,
    scratch_dir, tempdir,
};

const REMOTE: &str = "fx";

/// What a clean pull of the fixture gives.
#[derive(Debug)]
struct Reference {
    v1_image: String,
    v2_image: String,
    /// `objects_fetched` of a pull of v2 into an empty repository (the commit object is
    /// fetched besides and not counted).
    full_fetched: u64,
    /// Seconds that pull took.
    full_seconds: f64,
    /// Number of files under `objects/` after it (content objects, image, stream).
    object_files: usize,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let fx = fixture();
        let nginx = Nginx::serve(&fx.repo);
        let tmp = scratch_dir();
        let r = Repo::new(tmp.path().join("reference"));
        r.add_remote(REMOTE, &nginx.url(), &fx.public_key);
        let started = Instant::now();
        let st = r.pull(REMOTE, &fx.refname, &["--no-deltas"]);
        let full_seconds = started.elapsed().as_secs_f64();
        let object_files = count_object_files(&r.path);
        let v2_image = r.image(&fx.refname);
        r.pull(
            REMOTE,
            &fx.refname,
            &["--no-deltas", "--commit", &fx.v1, "--allow-downgrade"],
        );
        let v1_image = r.image(&fx.v1);
        assert_ne!(v1_image, v2_image);
        Reference {
            v1_image,
            v2_image,
            full_fetched: num(&st, "objects_fetched"),
            full_seconds,
            object_files,
        }
    })
}

fn count_object_files(repo: &Path) -> usize {
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(repo.join("objects")) else {
        return 0;
    };
    for d in rd.flatten() {
        if let Ok(inner) = std::fs::read_dir(d.path()) {
            n += inner.count();
        }
    }
    n
}

fn pull_args(fx: &Fixture, deltas: bool) -> Vec<String> {
    let mut args = vec!["pull", "--json"];
    if !deltas {
        args.push("--no-deltas");
    }
    args.extend([REMOTE, &fx.refname]);
    args.into_iter().map(str::to_owned).collect()
}

fn spawn_pull(r: &Repo, fx: &Fixture, deltas: bool) -> Child {
    r.command(pull_args(fx, deltas))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning cfsync pull")
}

fn read_all(child: &mut Child) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (out, err)
}

/// Checks a successful pull's output: v2 stored under the ref with the right image.
fn check_completed(r: &Repo, fx: &Fixture, status: ExitStatus, out: &str, err: &str) {
    assert!(status.success(), "pull failed ({status}):\n{out}\n{err}");
    let v: serde_json::Value =
        serde_json::from_str(out).unwrap_or_else(|e| panic!("no JSON from pull ({e}):\n{out}"));
    assert_eq!(v["commit"], fx.v2.as_str(), "{v}");
    assert_eq!(v["image"], reference().v2_image.as_str(), "{v}");
    assert_eq!(r.image(&fx.refname), reference().v2_image);
}

/// Every ref names v1 or v2, stored with its right image, and either still what it was
/// before the pull or v2.
fn check_refs(r: &Repo, fx: &Fixture, before: &BTreeMap<String, String>, context: &str) {
    let refs = r.refs();
    for (name, commit) in &refs {
        let want_image = if *commit == fx.v2 {
            &reference().v2_image
        } else if *commit == fx.v1 {
            &reference().v1_image
        } else {
            panic!("{context}: ref {name} points at unknown commit {commit}");
        };
        assert!(
            before.get(name) == Some(commit) || *commit == fx.v2,
            "{context}: ref {name} moved from {:?} to {commit}",
            before.get(name)
        );
        assert_eq!(
            &r.image(name),
            want_image,
            "{context}: ref {name} -> {commit} has the wrong image"
        );
    }
    for name in before.keys() {
        assert!(refs.contains_key(name), "{context}: ref {name} vanished");
    }
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("waiting for cfsync") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn sigkill(child: &mut Child) -> ExitStatus {
    let _ = child.kill();
    child.wait().expect("reaping cfsync")
}

#[test]
fn kill_9_at_random_points_leaves_a_sound_repository_and_the_pull_completes() {
    let seed = std::env::var("CFSYNC_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026_u64);
    eprintln!("kill -9 test: seed {seed} (set CFSYNC_CRASH_SEED to replay)");
    kill_rounds(30, false, 1.1, seed);
}

/// The same on the default route: static deltas (empty -> v2 and v1 -> v2 in the
/// fixture) feed the same journaled builder.
#[test]
fn kill_9_during_delta_pulls_leaves_a_sound_repository_and_the_pull_completes() {
    let seed = std::env::var("CFSYNC_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xDE17A_u64);
    eprintln!("kill -9 delta test: seed {seed} (set CFSYNC_CRASH_SEED to replay)");
    kill_rounds(10, true, 0.8, seed);
}

/// Kills pulls of v2 at random points until `wanted` kills happened, in rounds starting
/// from an empty repository or from v1, each round ending with a pull that completes.
/// The kill window is `window_factor` times the duration of a reference object pull.
fn kill_rounds(wanted: u32, deltas: bool, window_factor: f64, seed: u64) {
    let fx = fixture();
    let refr = reference();
    let mut rng = Rng::new(seed);
    let nginx = Nginx::serve(&fx.repo);
    let tmp = scratch_dir();

    // Half of the rounds update from v1 (the ref must then stay at v1 or move to v2).
    let template = Repo::new(tmp.path().join("template-v1"));
    template.add_remote(REMOTE, &nginx.url(), &fx.public_key);
    template.pull(REMOTE, &fx.refname, &["--no-deltas", "--commit", &fx.v1]);

    const MAX_KILLS_PER_ROUND: u32 = 3;
    let window = refr.full_seconds * window_factor;
    let mut kills = 0u32;
    let mut spawns = 0u32;
    let mut round = 0u32;
    let mut resumed_kills = 0u32;
    while kills < wanted {
        round += 1;
        let r = Repo::new(tmp.path().join(format!("round-{round}")));
        // An update from v1 fetches about a fifth of the objects: a narrower window.
        let round_window = if round.is_multiple_of(2) {
            copy_tree(&template.path, &r.path);
            window * 0.4
        } else {
            r.add_remote(REMOTE, &nginx.url(), &fx.public_key);
            window
        };
        let before = r.refs();
        let mut attempt = 0u32;
        loop {
            spawns += 1;
            attempt += 1;
            assert!(
                spawns <= 100,
                "{spawns} pulls but only {kills} kills: the kill window ({window:.2}s) is wrong"
            );
            // A resumed pull has less to do: narrower windows make kills of resumed
            // pulls (and of pulls resumed twice) likely too. The fourth pull of a round
            // runs to its end, so that every round completes.
            let mut child = spawn_pull(&r, fx, deltas);
            let status = if attempt <= MAX_KILLS_PER_ROUND {
                let delay = Duration::from_secs_f64(
                    round_window / f64::from(attempt) * rng.below(1000) as f64 / 1000.0,
                );
                match wait_until(&mut child, Instant::now() + delay) {
                    Some(s) => s,
                    None => sigkill(&mut child),
                }
            } else {
                child.wait().expect("waiting for cfsync")
            };
            if status.signal() == Some(9) {
                kills += 1;
                if attempt > 1 {
                    resumed_kills += 1;
                }
                let context = format!("round {round}, kill {kills} (pull {attempt} of the round)");
                r.fsck();
                check_refs(&r, fx, &before, &context);
                continue;
            }
            let (out, err) = read_all(&mut child);
            check_completed(&r, fx, status, &out, &err);
            break;
        }
        r.fsck();
        check_refs(&r, fx, &before, &format!("round {round} completed"));
        assert_eq!(r.refs().get(&fx.refname), Some(&fx.v2));
        std::fs::remove_dir_all(&r.path).unwrap();
    }
    eprintln!(
        "kill -9 test (deltas: {deltas}): {kills} kills ({resumed_kills} of resumed pulls) in {round} rounds, {spawns} pulls"
    );
}

#[test]
fn kill_9_during_gc_leaves_a_sound_repository_and_pulls_complete() {
    let seed = std::env::var("CFSYNC_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()));
    eprintln!("kill -9 gc test: seed {seed} (set CFSYNC_CRASH_SEED to replay)");
    let fx = fixture();
    let refr = reference();
    let mut rng = Rng::new(seed);
    let nginx = Nginx::serve(&fx.repo);
    let tmp = scratch_dir();
    // v1 pulled, then v2: v1's stream, image and the objects only it uses are garbage.
    let template = Repo::new(tmp.path().join("template"));
    template.add_remote(REMOTE, &nginx.url(), &fx.public_key);
    template.pull(REMOTE, &fx.refname, &["--no-deltas", "--commit", &fx.v1]);
    template.pull(REMOTE, &fx.refname, &["--no-deltas"]);
    let timing = Repo::new(tmp.path().join("timing"));
    copy_tree(&template.path, &timing.path);
    let started = Instant::now();
    let report = timing.ok(["gc", "--json"]);
    let gc_seconds = started.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_str(&report).expect("gc --json");
    assert!(num(&v, "objects_removed") > 0, "gc removed nothing: {v}");

    let (mut kills, mut round) = (0u32, 0u32);
    while kills < 10 {
        round += 1;
        assert!(round <= 60, "{round} gc runs but only {kills} kills");
        let r = Repo::new(tmp.path().join(format!("gc-{round}")));
        copy_tree(&template.path, &r.path);
        let mut child = r
            .command(["gc"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning cfsync gc");
        let delay = Duration::from_secs_f64(gc_seconds * rng.below(1000) as f64 / 1000.0);
        let status = match wait_until(&mut child, Instant::now() + delay) {
            Some(s) => s,
            None => sigkill(&mut child),
        };
        let context = format!("gc round {round}");
        if status.signal() == Some(9) {
            kills += 1;
        } else {
            assert!(status.success(), "{context}: gc failed ({status})");
        }
        r.fsck();
        assert_eq!(r.refs().get(&fx.refname), Some(&fx.v2), "{context}");
        assert_eq!(r.image(&fx.refname), refr.v2_image, "{context}");
        // The next pulls complete: v2 is up to date, and v1 (collected or not) comes
        // back with its image.
        let up = r.pull(REMOTE, &fx.refname, &["--no-deltas"]);
        assert_eq!(up["commit"], fx.v2.as_str(), "{context}: {up}");
        if round % 3 == 1 {
            let back = r.pull(
                REMOTE,
                &fx.refname,
                &["--no-deltas", "--commit", &fx.v1, "--allow-downgrade"],
            );
            assert_eq!(back["image"], refr.v1_image.as_str(), "{context}: {back}");
            r.fsck();
        }
        std::fs::remove_dir_all(&r.path).unwrap();
    }
    eprintln!("kill -9 gc test: {kills} kills in {round} gc runs (gc takes {gc_seconds:.3}s)");
}

/// Waits until `repo` holds `late` object files, then returns (the pull still runs);
/// panics if the pull ends first.
fn wait_for_objects(child: &mut Child, repo: &Path, late: usize) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let (out, err) = read_all(child);
            panic!(
                "the pull ended ({status}) before {late} objects were stored; \
                 it cannot be killed late on this machine:\n{out}\n{err}"
            );
        }
        if count_object_files(repo) >= late {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_pull_killed_late_resumes_from_its_journal_fetching_each_object_once() {
    let fx = fixture();
    let refr = reference();
    let nginx = Nginx::serve(&fx.repo);
    let tmp = scratch_dir();
    let r = Repo::new(tmp.path().join("late"));
    r.add_remote(REMOTE, &nginx.url(), &fx.public_key);
    let journal = r
        .path
        .join("cfsync/partial")
        .join(format!("{}.journal", fx.v2));

    // Late: well over half of the content objects are stored (metadata comes first).
    let mut child = spawn_pull(&r, fx, false);
    wait_for_objects(&mut child, &r.path, refr.object_files * 3 / 5);
    let status = sigkill(&mut child);
    assert_eq!(status.signal(), Some(9), "cfsync was not killed: {status}");
    assert!(journal.is_file(), "no journal at {}", journal.display());
    r.fsck();
    assert!(r.refs().is_empty(), "a ref appeared after the kill");

    let st = r.pull(REMOTE, &fx.refname, &["--no-deltas"]);
    assert_eq!(st["image"], refr.v2_image.as_str(), "{st}");
    let fetched = num(&st, "objects_fetched");
    let resumed = num(&st, "objects_resumed");
    assert!(
        resumed > refr.full_fetched / 2,
        "only {resumed} of {} objects came from the journal: {st}",
        refr.full_fetched + 1
    );
    assert!(fetched < refr.full_fetched, "{st}");
    // The commit object is journaled too but never counted as fetched.
    assert_eq!(
        fetched + resumed + num(&st, "objects_reused"),
        refr.full_fetched + 1,
        "objects fetched again or missed: {st}"
    );
    assert!(!journal.exists(), "the journal outlived the pull");
    r.fsck();
}

/// A pull of v1 killed late, then a pull of v2 (the remote moved on): v2 reuses what the
/// interrupted v1 pull verified, from v1's journal, though v1 was never stored.
#[test]
fn a_pull_of_another_commit_reuses_what_an_interrupted_pull_verified() {
    let fx = fixture();
    let refr = reference();
    let nginx = Nginx::serve(&fx.repo);
    let tmp = scratch_dir();
    let r = Repo::new(tmp.path().join("moved-on"));
    r.add_remote(REMOTE, &nginx.url(), &fx.public_key);
    let mut args = pull_args(fx, false);
    args.extend(["--commit".to_owned(), fx.v1.clone()]);
    let mut child = r
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning cfsync pull");
    wait_for_objects(&mut child, &r.path, refr.object_files / 2);
    let status = sigkill(&mut child);
    assert_eq!(status.signal(), Some(9), "cfsync was not killed: {status}");
    assert!(r.refs().is_empty());

    let st = r.pull(REMOTE, &fx.refname, &["--no-deltas"]);
    assert_eq!(st["image"], refr.v2_image.as_str(), "{st}");
    let reused = num(&st, "objects_reused");
    assert!(
        reused > refr.full_fetched / 4,
        "v2 reused only {reused} objects from the interrupted v1 pull: {st}"
    );
    assert_eq!(num(&st, "objects_resumed"), 0, "{st}");
    assert_eq!(
        num(&st, "objects_fetched") + reused,
        refr.full_fetched,
        "objects fetched twice or missed: {st}"
    );
    r.fsck();
}

/// Object URIs (under `/objects/`, commit and commitmeta excluded) of a log.
fn object_uris(log: &[LogEntry], status: Option<u16>) -> Vec<&str> {
    log.iter()
        .filter(|e| status.is_none_or(|s| e.status == s))
        .map(|e| e.uri.as_str())
        .filter(|u| {
            u.starts_with("/objects/") && !u.ends_with(".commit") && !u.ends_with(".commitmeta")
        })
        .collect()
}

fn object_rel(id: &str, ext: &str) -> String {
    format!("objects/{}/{}.{ext}", &id[..2], &id[2..])
}

/// Replaces the file `rel` under `root` (a hard link into the fixture) by a copy with
/// four bytes in its middle inverted; the fixture itself is not touched.
fn corrupt(root: &Path, rel: &str) -> Vec<u8> {
    let path = root.join(rel);
    let orig = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut bad = orig.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid.saturating_sub(2)..(mid + 2).min(orig.len())] {
        *b ^= 0xFF;
    }
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bad).unwrap();
    orig
}

fn restore(root: &Path, rel: &str, orig: &[u8]) {
    let path = root.join(rel);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, orig).unwrap();
}

/// A dirtree new in v2 with many entries (not the root) and a large file new in v2
/// outside it.
fn pick_victims(fx: &Fixture) -> (String, String) {
    let os = Ostree::open(&fx.repo);
    let t1 = os.ls_entries(&fx.v1);
    let t2 = os.ls_entries(&fx.v2);
    let in_v1: HashSet<&str> = t1
        .values()
        .flat_map(|e| std::iter::once(e.checksum.as_str()).chain(e.meta_checksum.as_deref()))
        .collect();
    let children = |dir: &str| {
        t2.keys()
            .filter(|p| Path::new(p.as_str()).parent() == Some(Path::new(dir)))
            .count()
    };
    let dir = t2
        .values()
        .filter(|e| e.kind == 'd' && e.path != "/" && !in_v1.contains(e.checksum.as_str()))
        .max_by_key(|e| (children(&e.path), e.path.clone()))
        .expect("v2 has a new directory");
    let file = t2
        .values()
        .filter(|e| {
            e.kind == '-'
                && (4096..1 << 20).contains(&e.size)
                && !in_v1.contains(e.checksum.as_str())
                && !e.path.starts_with(&format!("{}/", dir.path))
        })
        .max_by_key(|e| (e.size, e.path.clone()))
        .expect("v2 has a new file");
    eprintln!(
        "corrupting dirtree {} ({}, {} entries) and file {} ({}, {} bytes)",
        dir.checksum,
        dir.path,
        children(&dir.path),
        file.checksum,
        file.path,
        file.size
    );
    (dir.checksum.clone(), file.checksum.clone())
}

#[test]
fn corrupt_objects_fail_the_pull_by_name_and_the_fixed_pull_fetches_only_the_rest() {
    let fx = fixture();
    let refr = reference();
    let (dirtree, filez) = pick_victims(fx);
    // The served copy: hard links into the fixture (cheap), corrupted files replaced.
    let served_dir = tempdir();
    let served = served_dir.path().join("repo");
    run_checked(
        std::process::Command::new("cp")
            .arg("-al")
            .arg(&fx.repo)
            .arg(&served),
    );
    let nginx = Nginx::serve(&served);
    let tmp = scratch_dir();
    let r = Repo::new(tmp.path().join("r"));
    r.add_remote(REMOTE, &nginx.url(), &fx.public_key);
    r.pull(REMOTE, &fx.refname, &["--no-deltas", "--commit", &fx.v1]);
    let base_refs = r.refs();
    assert_eq!(base_refs.get(&fx.refname), Some(&fx.v1));

    let victims: [(String, PathBuf); 2] = [
        (
            dirtree.clone(),
            PathBuf::from(object_rel(&dirtree, "dirtree")),
        ),
        (filez.clone(), PathBuf::from(object_rel(&filez, "filez"))),
    ];
    let mut originals: Vec<Vec<u8>> = victims
        .iter()
        .map(|(_, rel)| corrupt(&served, rel.to_str().unwrap()))
        .collect();

    let mut verified_before: BTreeSet<String> = BTreeSet::new();
    let mut failed_on: Vec<usize> = Vec::new();
    for attempt in 1..=2 {
        nginx.reset_log();
        let out = r.run(pull_args(fx, false));
        assert!(
            !out.status.success(),
            "pull {attempt} succeeded with corrupt objects"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let named: Vec<usize> = (0..2)
            .filter(|i| !failed_on.contains(i) && err.contains(victims[*i].0.as_str()))
            .collect();
        assert_eq!(
            named.len(),
            1,
            "pull {attempt} must fail naming exactly one still-corrupt object ({} or {}):\n{}",
            victims[0].0,
            victims[1].0,
            describe(&out)
        );
        let i = named[0];
        failed_on.push(i);
        check_refs(&r, fx, &base_refs, &format!("after failed pull {attempt}"));
        assert_eq!(r.refs(), base_refs, "the ref moved");
        r.fsck();
        let log = nginx.log();
        let bad: Vec<String> = victims
            .iter()
            .map(|(_, rel)| format!("/{}", rel.display()))
            .collect();
        verified_before.extend(
            object_uris(&log, Some(200))
                .into_iter()
                .filter(|u| !bad.iter().any(|b| b == u))
                .map(str::to_owned),
        );
        let (_, rel) = &victims[i];
        restore(&served, rel.to_str().unwrap(), &originals[i]);
        originals[i].clear();
    }
    assert_eq!(failed_on.len(), 2);
    eprintln!(
        "the failed pulls verified {} objects",
        verified_before.len()
    );
    assert!(
        verified_before.len() >= 20,
        "the failed pulls verified almost nothing ({}), so the check below means little",
        verified_before.len()
    );

    nginx.reset_log();
    let st = r.pull(REMOTE, &fx.refname, &["--no-deltas"]);
    assert_eq!(st["image"], refr.v2_image.as_str(), "{st}");
    let log = nginx.log();
    let fetched_now: Vec<&str> = object_uris(&log, None);
    let again: Vec<&&str> = fetched_now
        .iter()
        .filter(|u| verified_before.contains(**u))
        .collect();
    assert!(
        again.is_empty(),
        "{} objects verified by the failed pulls were fetched again, e.g. {:?}",
        again.len(),
        again.iter().take(5).collect::<Vec<_>>()
    );
    let last_fixed = format!("/{}", victims[failed_on[1]].1.display());
    assert!(
        fetched_now.contains(&last_fixed.as_str()),
        "the object fixed last ({last_fixed}) was not fetched"
    );
    assert_eq!(
        num(&st, "objects_fetched"),
        fetched_now.len() as u64,
        "objects_fetched disagrees with nginx's log: {st}"
    );
    assert_eq!(
        num(&st, "requests"),
        log.len() as u64,
        "requests disagrees with nginx's log: {st}"
    );
    assert!(num(&st, "objects_resumed") > 0, "{st}");
    assert_eq!(
        num(&st, "objects_fetched") + num(&st, "objects_resumed") + num(&st, "objects_reused"),
        refr.full_fetched + 1,
        "{st}"
    );
    assert_eq!(r.refs().get(&fx.refname), Some(&fx.v2));
    r.fsck();
}
