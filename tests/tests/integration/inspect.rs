//! `cfsync inspect summary|delta|object` against repositories, deltas and summaries made
//! by the real `ostree` and `flatpak` command lines, on disk and over nginx.
//!
//! The expected figures always come from the tools themselves (`ostree static-delta
//! show`, `ostree summary --view`, `ostree refs`, `ostree rev-parse`, object file
//! names), never from cfsync's own parsers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_tests::{Gpg, NO_ARGS, Nginx, Ostree, TreeBuilder, run_cfsync, run_stdout, tempdir};
use serde_json::Value;

/// Runs `cfsync ARGS… --json`, expecting success, and parses the JSON.
fn inspect_json(args: &[&str]) -> Value {
    let mut all: Vec<&str> = vec!["inspect"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run_cfsync(&all);
    assert!(
        out.status.success(),
        "cfsync {all:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!(
            "cfsync {all:?} printed invalid JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
    }
}

fn inspect_raw(args: &[&str]) -> Output {
    let mut all: Vec<&str> = vec!["inspect"];
    all.extend_from_slice(args);
    run_cfsync(&all)
}

fn s(p: &Path) -> &str {
    match p.to_str() {
        Some(s) => s,
        None => panic!("non-UTF-8 path {}", p.display()),
    }
}

fn u(v: &Value) -> u64 {
    match v.as_u64() {
        Some(n) => n,
        None => panic!("expected a number, got {v}"),
    }
}

// ---------------------------------------------------------------------------------------
// ostree static-delta show, parsed
// ---------------------------------------------------------------------------------------

/// One part as `ostree static-delta show` prints it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ShowPart {
    nobjects: u64,
    size: u64,
    usize: u64,
    nmodes: u64,
    nxattrs: u64,
    blobsize: u64,
    opsize: u64,
    ops: BTreeMap<String, u64>,
}

/// The figures of `ostree static-delta show`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Show {
    signed: String,
    from: Option<String>,
    to: String,
    endianness: String,
    n_fallbacks: u64,
    fallbacks: Vec<String>,
    fallback_size: u64,
    fallback_usize: u64,
    parts: Vec<ShowPart>,
    part_size: u64,
    part_usize: u64,
    total_size: u64,
    total_usize: u64,
}

/// `key=value key=value …` after the `PartX:` prefix.
fn kv(rest: &str) -> BTreeMap<String, u64> {
    rest.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| match v.parse() {
            Ok(n) => (k.to_owned(), n),
            Err(e) => panic!("bad number in {rest:?}: {e}"),
        })
        .collect()
}

/// The leading number of `65345 (65.3 kB)`.
fn first_number(v: &str) -> u64 {
    match v.split_whitespace().next().map(str::parse) {
        Some(Ok(n)) => n,
        _ => panic!("no number in {v:?}"),
    }
}

fn part_mut(parts: &mut Vec<ShowPart>, key: &str, prefix: &str) -> usize {
    let i: usize = match key.trim_start_matches(prefix).parse() {
        Ok(i) => i,
        Err(e) => panic!("bad part index in {key:?}: {e}"),
    };
    if parts.len() <= i {
        parts.resize(i + 1, ShowPart::default());
    }
    i
}

/// Parses `ostree static-delta show NAME`; the flag says whether ostree completed.
/// (ostree 2022.7 cannot show `--inline` deltas: after the superblock figures and the
/// first `PartMeta` line it fails looking for the part file that inline deltas do not
/// have.)
fn ostree_show(repo: &Ostree, name: &str) -> (Show, bool, String) {
    let out = repo.try_run(["static-delta", "show", name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No such file or directory"),
            "`ostree static-delta show {name}` failed:\n{text}\n{err}"
        );
    }
    let mut show = Show::default();
    let mut in_fallbacks = false;
    for line in text.lines() {
        if in_fallbacks {
            if let Some(c) = line.strip_prefix("  ") {
                show.fallbacks.push(c.trim().to_owned());
                continue;
            }
            in_fallbacks = false;
        }
        if line == "From <scratch>" {
            show.from = None;
            continue;
        }
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        match key {
            "Signed" => show.signed = value.to_owned(),
            "From" => show.from = Some(value.to_owned()),
            "To" => show.to = value.to_owned(),
            "Endianness" => show.endianness = value.to_owned(),
            "Number of fallback entries" => {
                show.n_fallbacks = first_number(value);
                in_fallbacks = true;
            }
            "Total Fallback Size" => show.fallback_size = first_number(value),
            "Total Fallback Uncompressed Size" => show.fallback_usize = first_number(value),
            "Total Part Size" => show.part_size = first_number(value),
            "Total Part Uncompressed Size" => show.part_usize = first_number(value),
            "Total Size" => show.total_size = first_number(value),
            "Total Uncompressed Size" => show.total_usize = first_number(value),
            k if k.starts_with("PartMeta") => {
                let i = part_mut(&mut show.parts, k, "PartMeta");
                let m = kv(value);
                let p = &mut show.parts[i];
                p.nobjects = m["nobjects"];
                p.size = m["size"];
                p.usize = m["usize"];
            }
            k if k.starts_with("PartPayloadOps") => {
                let i = part_mut(&mut show.parts, k, "PartPayloadOps");
                show.parts[i].ops = kv(value);
            }
            k if k.starts_with("PartPayload") => {
                let i = part_mut(&mut show.parts, k, "PartPayload");
                let m = kv(value);
                let p = &mut show.parts[i];
                p.nmodes = m["nmodes"];
                p.nxattrs = m["nxattrs"];
                p.blobsize = m["blobsize"];
                p.opsize = m["opsize"];
            }
            _ => {}
        }
    }
    assert!(
        !show.to.is_empty(),
        "cannot parse `ostree static-delta show {name}`:\n{text}"
    );
    (show, out.status.success(), text)
}

/// `got` cut down to what an incomplete `ostree static-delta show` printed.
fn as_far_as(got: &Show, partial: &Show) -> Show {
    let mut g = got.clone();
    g.parts.truncate(partial.parts.len());
    for (gp, pp) in g.parts.iter_mut().zip(&partial.parts) {
        if pp.ops.is_empty() {
            *gp = ShowPart {
                nobjects: gp.nobjects,
                size: gp.size,
                usize: gp.usize,
                ..ShowPart::default()
            };
        }
    }
    g.part_size = 0;
    g.part_usize = 0;
    g.total_size = 0;
    g.total_usize = 0;
    g
}

/// The same figures, from `cfsync inspect delta --json`.
fn cfsync_show(v: &Value) -> Show {
    let ops = |o: &Value| -> BTreeMap<String, u64> {
        match o.as_object() {
            Some(m) => m.iter().map(|(k, v)| (k.clone(), u(v))).collect(),
            None => panic!("ops is not an object: {o}"),
        }
    };
    let parts = v["parts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| ShowPart {
                    nobjects: u(&p["n_objects"]),
                    size: u(&p["size"]),
                    usize: u(&p["uncompressed_size"]),
                    nmodes: u(&p["n_modes"]),
                    nxattrs: u(&p["n_xattrs"]),
                    blobsize: u(&p["blob_size"]),
                    opsize: u(&p["ops_size"]),
                    ops: ops(&p["ops"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let fallbacks: Vec<String> = v["fallbacks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["checksum"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let t = &v["totals"];
    Show {
        signed: if v["signed"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
        .to_owned(),
        from: v["from"].as_str().map(str::to_owned),
        to: v["to"].as_str().unwrap_or_default().to_owned(),
        endianness: v["endianness"].as_str().unwrap_or_default().to_owned(),
        n_fallbacks: fallbacks.len() as u64,
        fallbacks,
        fallback_size: u(&t["fallback_size"]),
        fallback_usize: u(&t["fallback_uncompressed_size"]),
        parts,
        part_size: u(&t["part_size"]),
        part_usize: u(&t["part_uncompressed_size"]),
        total_size: u(&t["size"]),
        total_usize: u(&t["uncompressed_size"]),
    }
}

/// Every `superblock` under `dir`.
fn superblocks(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "superblock") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Drops the fields that name where the bytes came from.
fn without_sources(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("source");
    }
    if let Some(parts) = v["parts"].as_array_mut() {
        for p in parts {
            if let Some(m) = p.as_object_mut() {
                m.remove("path");
            }
        }
    }
    v
}

/// Five commits of an archive repository and deltas between them that cover every
/// `ostree static-delta generate` flavour the issue lists; `inspect delta` must print
/// exactly the figures `ostree static-delta show` prints, on disk and over HTTP.
#[test]
fn delta_figures_match_ostree_static_delta_show() {
    let tmp = tempdir();
    let v1 = TreeBuilder::new(tmp.path().join("v1"));
    v1.edge_cases();
    let v2 = TreeBuilder::copy_of(v1.root(), tmp.path().join("v2"));
    v2.edge_cases_update();
    // v3: enough incompressible data for several 1 MiB parts.
    let v3 = TreeBuilder::copy_of(v2.root(), tmp.path().join("v3"));
    for i in 0..4u64 {
        v3.random_file(&format!("bulk/part{i}.bin"), 700 * 1024, 100 + i);
    }
    let v4 = TreeBuilder::copy_of(v3.root(), tmp.path().join("v4"));
    v4.scatter_patch("bulk/part0.bin", 5000)
        .file("v4.txt", "four\n".repeat(100));
    // v5: a new 1.5 MiB file, over --min-fallback-size=1: a fallback object.
    let v5 = TreeBuilder::copy_of(v4.root(), tmp.path().join("v5"));
    v5.random_file("huge.bin", 1536 * 1024, 7)
        .scatter_patch("patchme.bin", 1000);

    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let c: Vec<String> = [&v1, &v2, &v3, &v4, &v5]
        .iter()
        .map(|t| repo.commit("test/stable", t.root(), NO_ARGS))
        .collect();

    let flavours: Vec<Vec<String>> = vec![
        vec!["--empty".into(), format!("--to={}", c[0])],
        vec![format!("--from={}", c[0]), format!("--to={}", c[1])],
        vec![
            "--empty".into(),
            format!("--to={}", c[2]),
            "--max-chunk-size=1".into(),
        ],
        vec![
            format!("--from={}", c[1]),
            format!("--to={}", c[2]),
            "--inline".into(),
        ],
        vec![
            format!("--from={}", c[2]),
            format!("--to={}", c[3]),
            "--swap-endianness".into(),
        ],
        vec![
            format!("--from={}", c[3]),
            format!("--to={}", c[4]),
            "--disable-bsdiff".into(),
            "--min-fallback-size=1".into(),
        ],
        vec![
            "--empty".into(),
            format!("--to={}", c[4]),
            "--swap-endianness".into(),
            "--max-chunk-size=1".into(),
            "--min-fallback-size=1".into(),
        ],
    ];
    for f in &flavours {
        repo.static_delta_generate(f);
    }
    // Signed with ostree's test signer (the only engine this ostree build can sign with).
    run_stdout(
        repo.command()
            .env("OSTREE_DUMMY_SIGN_ENABLED", "1")
            .args([
                "static-delta",
                "generate",
                "--sign-type=dummy",
                "--sign=testkey",
            ])
            .arg(format!("--from={}", c[0]))
            .arg(format!("--to={}", c[2])),
    );
    repo.summary_update(None);

    let listed: BTreeSet<String> = repo
        .run(["static-delta", "list"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(listed.len(), flavours.len() + 1, "ostree lists {listed:?}");

    let deltas_dir = repo.path().join("deltas");
    let mut seen = BTreeSet::new();
    let mut local = BTreeMap::new();
    for sb in superblocks(&deltas_dir) {
        let dir = sb.parent().map(Path::to_path_buf).unwrap_or_default();
        // The directory and the superblock file name the same delta.
        let v = inspect_json(&["delta", s(&dir)]);
        let v_file = inspect_json(&["delta", s(&sb)]);
        assert_eq!(without_sources(v.clone()), without_sources(v_file));
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let (expected, complete, ostree_text) = ostree_show(&repo, &name);
        let got = cfsync_show(&v);
        if complete {
            assert_eq!(
                got, expected,
                "delta {name}: cfsync (left) vs ostree (right)"
            );
        } else {
            // Only inline deltas make ostree fail; compare what it printed.
            assert!(
                v["parts"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["inline"] == Value::Bool(true))),
                "ostree could not show non-inline delta {name}"
            );
            assert!(!expected.parts.is_empty());
            assert_eq!(
                as_far_as(&got, &expected),
                expected,
                "delta {name} (inline)"
            );
            assert!(got.parts.iter().all(|p| !p.ops.is_empty()));
        }
        // The human output is ostree's, line for line (for inline deltas, as far as
        // ostree gets).
        let out = inspect_raw(&["delta", s(&dir)]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        if complete {
            assert_eq!(
                text, ostree_text,
                "delta {name}: cfsync (left) vs ostree (right)"
            );
        } else {
            assert!(
                text.starts_with(&ostree_text),
                "delta {name}:\n{text}\ndoes not start with ostree's\n{ostree_text}"
            );
        }
        // Totals are the sums of the figures compared above.
        assert_eq!(got.part_size, got.parts.iter().map(|p| p.size).sum::<u64>());
        assert_eq!(
            got.part_usize,
            got.parts.iter().map(|p| p.usize).sum::<u64>()
        );
        assert_eq!(got.total_size, got.part_size + got.fallback_size);
        assert_eq!(
            got.from
                .as_ref()
                .map_or(got.to.clone(), |f| format!("{f}-{}", got.to)),
            name
        );
        for p in v["parts"].as_array().into_iter().flatten() {
            assert_eq!(p["checksum_matches"], Value::Bool(true), "{name}: {p}");
        }
        assert_eq!(v["commit"]["checksum_matches"], Value::Bool(true));
        seen.insert(name.clone());
        local.insert(name, (dir, v));
    }
    assert_eq!(seen, listed, "inspect found other deltas than ostree lists");

    // The flavours did what they were asked to: the test covers what it claims.
    let by = |from: Option<&str>, to: &str| -> &Value {
        let name = from.map_or(to.to_owned(), |f| format!("{f}-{to}"));
        match local.get(&name) {
            Some((_, v)) => v,
            None => panic!("no delta {name}"),
        }
    };
    let many = by(None, &c[2]);
    assert!(u(&many["totals"]["n_objects"]) > 0);
    assert!(
        many["parts"].as_array().map_or(0, Vec::len) >= 3,
        "--max-chunk-size=1 gave few parts: {many}"
    );
    let inline = by(Some(&c[1]), &c[2]);
    assert!(
        inline["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|p| p["inline"] == Value::Bool(true)),
        "--inline delta has non-inline parts: {inline}"
    );
    let signed = by(Some(&c[0]), &c[2]);
    assert_eq!(signed["signed"], Value::Bool(true));
    assert_eq!(signed["signatures"], serde_json::json!({"dummy": 1}));
    assert_eq!(by(Some(&c[0]), &c[1])["signed"], Value::Bool(false));
    assert_eq!(by(Some(&c[2]), &c[3])["endianness"], "big");
    assert_eq!(by(None, &c[0])["endianness"], "little");
    let fb = by(Some(&c[3]), &c[4]);
    assert!(
        !fb["fallbacks"].as_array().is_none_or(Vec::is_empty),
        "no fallback: {fb}"
    );
    assert_eq!(
        u(&fb["totals"]["ops"]["bspatch"]),
        0,
        "--disable-bsdiff used bspatch"
    );
    assert!(u(&by(Some(&c[0]), &c[1])["totals"]["ops"]["bspatch"]) > 0);

    // Over HTTP: the same figures, the parts fetched from the server.
    let server = Nginx::serve(repo.path());
    for (name, (dir, v)) in &local {
        let rel = match dir.strip_prefix(repo.path()) {
            Ok(r) => s(r).to_owned(),
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        let url = server.url_for(&rel);
        let remote = inspect_json(&["delta", &url]);
        assert_eq!(
            without_sources(remote.clone()),
            without_sources(v.clone()),
            "{name} over HTTP"
        );
        assert_eq!(remote["source"], format!("{url}/superblock"));
        let remote_sb = inspect_json(&["delta", &format!("{url}/superblock")]);
        assert_eq!(without_sources(remote_sb), without_sources(v.clone()));
    }
    let parts_fetched = server
        .log()
        .iter()
        .filter(|e| e.uri.ends_with("/0") || e.uri.ends_with("/1"))
        .count();
    assert!(parts_fetched > 0, "no part was fetched over HTTP");
}

/// A corrupted part is reported: exit status 1, `checksum_matches: false`, the path.
#[test]
fn delta_with_corrupt_part_fails() {
    let tmp = tempdir();
    let t = TreeBuilder::new(tmp.path().join("t"));
    t.random_file("a.bin", 50_000, 3).file("b.txt", "bee\n");
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let c1 = repo.commit("x", t.root(), NO_ARGS);
    repo.static_delta_generate(["--empty", &format!("--to={c1}")]);
    let sb = superblocks(&repo.path().join("deltas"));
    assert_eq!(sb.len(), 1);
    let dir = sb[0].parent().map(Path::to_path_buf).unwrap_or_default();
    let part = dir.join("0");
    let mut bytes = fs::read(&part).unwrap_or_default();
    assert!(bytes.len() > 100);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&part, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let out = inspect_raw(&["delta", s(&dir), "--json"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["parts"][0]["checksum_matches"], Value::Bool(false), "{v}");
    assert!(v["parts"][0]["error"].is_string(), "{v}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(s(&part)),
        "error does not name the part: {stderr}"
    );

    // The same delta under another delta's directory name: refused.
    let t2 = TreeBuilder::new(tmp.path().join("t2"));
    t2.file("other", "other\n");
    let c2 = repo.commit("y", t2.root(), NO_ARGS);
    repo.static_delta_generate(["--empty", &format!("--to={c2}")]);
    let other = superblocks(&repo.path().join("deltas"))
        .into_iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .find(|d| *d != dir);
    let Some(other) = other else {
        panic!("second delta not found")
    };
    assert!(inspect_raw(&["delta", s(&other)]).status.success());
    fs::remove_dir_all(&other).unwrap_or_else(|e| panic!("{e}"));
    fs::rename(&dir, &other).unwrap_or_else(|e| panic!("{e}"));
    let out = inspect_raw(&["delta", s(&other)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is the directory of delta"), "{stderr}");

    // A repository is not a delta: the error says where deltas are.
    let out = inspect_raw(&["delta", s(repo.path())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a repository"));

    let missing = inspect_raw(&["delta", s(&tmp.path().join("nope"))]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
}

// ---------------------------------------------------------------------------------------
// inspect summary
// ---------------------------------------------------------------------------------------

/// A ref as `ostree summary --view` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ViewRef {
    name: String,
    size: u64,
    commit: String,
    timestamp: Option<String>,
}

fn ostree_summary_view(repo: &Ostree) -> Vec<ViewRef> {
    let text = repo.run(["summary", "--view"]);
    let mut out: Vec<ViewRef> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("* ") {
            let size_line = lines.next().unwrap_or_default();
            let size = size_line
                .split('(')
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("cannot parse {size_line:?}"));
            let commit = lines.next().unwrap_or_default().trim().to_owned();
            let timestamp = lines
                .peek()
                .and_then(|l| {
                    l.trim()
                        .strip_prefix("Timestamp (ostree.commit.timestamp): ")
                })
                .map(str::to_owned);
            out.push(ViewRef {
                name: name.trim().to_owned(),
                size,
                commit,
                timestamp,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `date -u -d @SECS` in ostree's `summary --view` format.
fn ostree_date(secs: u64) -> String {
    run_stdout(Command::new("date").args([
        "-u",
        "-d",
        &format!("@{secs}"),
        "+%Y-%m-%dT%H:%M:%S+00",
    ]))
    .trim()
    .to_owned()
}

fn cfsync_refs(summary: &Value) -> Vec<ViewRef> {
    let mut out: Vec<ViewRef> = summary["refs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| ViewRef {
            name: r["name"].as_str().unwrap_or_default().to_owned(),
            size: u(&r["commit_size"]),
            commit: r["commit"].as_str().unwrap_or_default().to_owned(),
            timestamp: r["timestamp"].as_u64().map(ostree_date),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A GPG-signed `summary -u` with several refs and deltas: refs equal `ostree refs`
/// with `rev-parse`, and `ostree summary --view`; deltas equal `ostree static-delta list`;
/// one GPG signature; the same over HTTP and from the summary file itself.
#[test]
fn summary_matches_ostree() {
    let tmp = tempdir();
    let t = TreeBuilder::new(tmp.path().join("t"));
    t.file("a", "a\n").random_file("r.bin", 30_000, 9);
    let gpg = Gpg::new();
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let mut args = gpg.sign_args();
    args.push("--add-metadata-string=version=1.0".into());
    let a1 = repo.commit("os/x86_64/stable", t.root(), &args);
    t.file("b", "b\n");
    let a2 = repo.commit("os/x86_64/stable", t.root(), gpg.sign_args());
    repo.commit("os/aarch64/testing", t.root(), NO_ARGS);
    repo.commit("plain", t.root(), NO_ARGS);
    repo.static_delta_generate([format!("--from={a1}"), format!("--to={a2}")]);
    repo.static_delta_generate(["--empty".to_owned(), format!("--to={a2}")]);

    // Unsigned first.
    repo.summary_update(None);
    let v = inspect_json(&["summary", s(repo.path())]);
    assert!(v["signatures"].is_null(), "{}", v["signatures"]);
    assert!(v["index"].is_null());

    repo.summary_update(Some(&gpg));
    let v = inspect_json(&["summary", s(repo.path())]);
    let sm = &v["summary"];

    let refs = cfsync_refs(sm);
    let names: Vec<String> = refs.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, repo.refs());
    for r in &refs {
        assert_eq!(r.commit, repo.rev_parse(&r.name), "ref {}", r.name);
    }
    assert_eq!(refs, ostree_summary_view(&repo));
    let stable = sm["refs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "os/x86_64/stable");
    assert!(stable.is_some());

    let deltas: BTreeSet<String> = sm["static_deltas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let listed: BTreeSet<String> = repo
        .run(["static-delta", "list"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(deltas, listed);
    // Each listed digest is the SHA-256 of that delta's superblock.
    for d in sm["static_deltas"].as_array().into_iter().flatten() {
        let name = d["name"].as_str().unwrap_or_default();
        let sb_digest = d["superblock_sha256"].as_str().unwrap_or_default();
        let found = superblocks(&repo.path().join("deltas"))
            .into_iter()
            .any(|p| {
                cfsync_tests::sha256_hex(&fs::read(&p).unwrap_or_default()) == sb_digest
                    && inspect_json(&["delta", s(&p)])["name"] == name
            });
        assert!(found, "no superblock of {name} has digest {sb_digest}");
    }
    assert_eq!(sm["mode"], "archive-z2");
    let view = repo.run(["summary", "--view"]);
    let lm = u(&sm["last_modified"]);
    assert!(
        view.contains(&format!(
            "Last-Modified (ostree.summary.last-modified): {}",
            ostree_date(lm)
        )),
        "last-modified {lm} not in:\n{view}"
    );
    assert_eq!(
        sm["indexed_deltas"],
        Value::Bool(view.contains("indexed-deltas: true"))
    );
    assert_eq!(
        sm["size"],
        fs::metadata(repo.path().join("summary"))
            .map(|m| m.len())
            .unwrap_or(0)
    );
    assert_eq!(v["signatures"]["gpg"], 1);
    assert_eq!(v["signatures"]["total"], 1);

    // The summary file itself gives the same, and so does the server.
    let direct = inspect_json(&["summary", s(&repo.path().join("summary"))]);
    assert_eq!(direct["summary"], v["summary"]);
    assert_eq!(direct["signatures"]["gpg"], 1);
    let server = Nginx::serve(repo.path());
    for url in [
        server.url(),
        server.url_for("summary"),
        format!("{}/", server.url()),
    ] {
        let remote = inspect_json(&["summary", &url]);
        assert_eq!(remote["summary"], v["summary"], "{url}");
        assert_eq!(remote["signatures"]["gpg"], 1, "{url}");
    }

    // Human output lists every ref and its commit.
    let out = inspect_raw(&["summary", s(repo.path())]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for r in &refs {
        assert!(
            text.contains(&format!("* {}", r.name)) && text.contains(&r.commit),
            "{text}"
        );
    }

    // Not a repository: a clear failure naming the path.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap_or_else(|e| panic!("{e}"));
    let out = inspect_raw(&["summary", s(&empty)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(s(&empty)));
}

/// `flatpak build-update-repo` writes `summary.idx`, gzipped subsummaries and, on the
/// second update, a subsummary diff: all are read, checked and parsed.
#[test]
fn flatpak_summary_index() {
    cfsync_tests::require("flatpak");
    let tmp = tempdir();
    let app = TreeBuilder::new(tmp.path().join("app"));
    let metadata = "[Application]\nname=org.example.App\nruntime=org.example.Platform/x86_64/stable\nsdk=org.example.Sdk/x86_64/stable\ncommand=hello\n";
    app.file("metadata", metadata).file_with_mode(
        "files/bin/hello",
        "#!/bin/sh\necho hello\n",
        0o755,
    );
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let xa = format!("--add-metadata-string=xa.metadata={metadata}");
    let app_ref = "app/org.example.App/x86_64/stable";
    let arm_ref = "app/org.example.App/aarch64/stable";
    repo.commit(app_ref, app.root(), [&xa]);
    repo.commit(arm_ref, app.root(), [&xa]);
    let update = || {
        run_stdout(
            Command::new("flatpak")
                .args(["build-update-repo", "--no-update-appstream"])
                .arg(repo.path()),
        )
    };
    update();
    app.file("files/bin/hello", "#!/bin/sh\necho hello v2\n");
    repo.commit(app_ref, app.root(), [&xa]);
    update();
    assert!(
        repo.path().join("summary.idx").exists(),
        "flatpak wrote no summary.idx"
    );

    let v = inspect_json(&["summary", s(repo.path())]);
    let idx = &v["index"];
    assert!(!idx.is_null(), "index not read: {v}");
    let subs = idx["subsummaries"].as_array().cloned().unwrap_or_default();
    let names: BTreeSet<&str> = subs.iter().filter_map(|x| x["name"].as_str()).collect();
    assert_eq!(names, BTreeSet::from(["aarch64", "x86_64"]));
    let mut all_refs = BTreeMap::new();
    for sub in &subs {
        assert_eq!(sub["digest_matches"], Value::Bool(true), "{sub}");
        let gz = repo.path().join(sub["path"].as_str().unwrap_or_default());
        assert_eq!(
            u(&sub["compressed_size"]),
            fs::metadata(&gz).map(|m| m.len()).unwrap_or(0),
            "{}",
            gz.display()
        );
        for r in sub["summary"]["refs"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or_default().to_owned();
            assert!(name.contains(&format!("/{}/", sub["arch"].as_str().unwrap_or("?"))));
            all_refs.insert(name, r["commit"].as_str().unwrap_or_default().to_owned());
        }
    }
    for r in [app_ref, arm_ref] {
        assert_eq!(
            all_refs.get(r),
            Some(&repo.rev_parse(r)),
            "{r} in the subsummaries"
        );
    }
    // The x86_64 subsummary changed: flatpak wrote a diff from the old one.
    let x86 = subs.iter().find(|x| x["name"] == "x86_64");
    let diffs = x86
        .and_then(|x| x["diffs"].as_array())
        .cloned()
        .unwrap_or_default();
    assert!(!diffs.is_empty(), "no subsummary diff found: {x86:?}");
    for d in &diffs {
        assert!(
            repo.path()
                .join(d["path"].as_str().unwrap_or_default())
                .exists()
        );
        assert_ne!(d["applies"], Value::Bool(false), "{d}");
    }
    assert!(diffs.iter().any(|d| d["applies"] == Value::Bool(true)));
    // The plain summary is there too and agrees.
    let plain = cfsync_refs(&v["summary"]);
    assert_eq!(plain, ostree_summary_view(&repo));

    // summary.idx named directly, and over HTTP.
    let direct = inspect_json(&["summary", s(&repo.path().join("summary.idx"))]);
    assert_eq!(direct["index"], v["index"]);
    assert!(direct["summary"].is_null());
    let server = Nginx::serve(repo.path());
    let remote = inspect_json(&["summary", &server.url()]);
    assert_eq!(remote["index"], v["index"]);
    assert_eq!(remote["summary"], v["summary"]);
}

// ---------------------------------------------------------------------------------------
// inspect object
// ---------------------------------------------------------------------------------------

/// Every object file under `repo/objects`.
fn objects(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(repo.join("objects")) else {
        panic!("no objects/ in {}", repo.display())
    };
    for d in rd.flatten() {
        for f in fs::read_dir(d.path()).into_iter().flatten().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

/// The checksum an object path names (`objects/XX/REST.ext`).
fn name_of(p: &Path) -> String {
    let dir = p
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = p.file_stem().and_then(|n| n.to_str()).unwrap_or_default();
    format!("{dir}{stem}")
}

/// Inspects every object of `repo` and checks the computed checksum against the name;
/// returns the count per extension.
fn check_all_objects(repo: &Ostree) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for p in objects(repo.path()) {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_owned();
        let v = inspect_json(&["object", s(&p)]);
        let name = name_of(&p);
        assert_eq!(v["name"], name.as_str(), "{}", p.display());
        if ext == "commitmeta" {
            // Not content-addressed: named after its commit.
            assert!(v["checksum"].is_null());
            assert!(p.with_extension("commit").exists());
        } else {
            assert_eq!(v["checksum"], name.as_str(), "{}: {v}", p.display());
            assert_eq!(v["checksum_matches"], Value::Bool(true));
        }
        *counts.entry(ext).or_insert(0) += 1;
    }
    counts
}

/// Every object of an archive repository (with commitmeta from a GPG signature) and
/// of bare-user and bare repositories: the computed checksum is the file's name, and the
/// decoded content agrees with `ostree`.
#[test]
fn object_checksums_equal_names() {
    let tmp = tempdir();
    let t = TreeBuilder::new(tmp.path().join("t"));
    t.edge_cases();
    let gpg = Gpg::new();
    let archive = Ostree::init(tmp.path().join("archive"), "archive");
    let commit = archive.commit(
        "x",
        t.root(),
        [gpg.sign_args(), vec!["-s".into(), "subject line".into()]].concat(),
    );
    let counts = check_all_objects(&archive);
    for ext in ["commit", "commitmeta", "dirtree", "dirmeta", "filez"] {
        assert!(
            counts.get(ext).copied().unwrap_or(0) > 0,
            "no .{ext} in {counts:?}"
        );
    }

    // The commit's decoded fields are ostree's.
    let cpath = archive
        .path()
        .join(format!("objects/{}/{}.commit", &commit[..2], &commit[2..]));
    let v = inspect_json(&["object", s(&cpath)]);
    assert_eq!(v["type"], "commit");
    assert_eq!(v["content"]["subject"], "subject line");
    let ls_root = archive.run(["ls", "-C", "-d", &commit, "/"]);
    let root_tree = v["content"]["root_tree"].as_str().unwrap_or("?");
    let root_meta = v["content"]["root_meta"].as_str().unwrap_or("?");
    assert!(
        ls_root.contains(root_tree) && ls_root.contains(root_meta),
        "{ls_root}"
    );
    let meta = inspect_json(&["object", s(&cpath.with_extension("commitmeta"))]);
    assert_eq!(meta["content"]["gpg_signatures"], 1);

    // A file object's header is what ostree ls reports.
    let entries = archive.ls_entries(&commit);
    let xf = &entries["/xattr-file"];
    let fz = archive.path().join(format!(
        "objects/{}/{}.filez",
        &xf.checksum[..2],
        &xf.checksum[2..]
    ));
    let f = inspect_json(&["object", s(&fz)]);
    assert_eq!(u(&f["content"]["size"]), xf.size);
    assert_eq!(u(&f["content"]["mode"]) & 0o7777, u64::from(xf.mode));
    let xnames: BTreeSet<&str> = f["content"]["xattrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert!(
        xnames.contains("user.one") && xnames.contains("trusted.cfsync"),
        "{xnames:?}"
    );

    // Over HTTP: every kind of object, same answer as on disk.
    let server = Nginx::serve(archive.path());
    for p in objects(archive.path()).into_iter().step_by(5) {
        let rel = p
            .strip_prefix(archive.path())
            .map(|r| s(r).to_owned())
            .unwrap_or_default();
        let remote = inspect_json(&["object", &server.url_for(&rel)]);
        let local = inspect_json(&["object", s(&p)]);
        assert_eq!(remote["checksum"], local["checksum"], "{rel}");
        assert_eq!(remote["content"], local["content"], "{rel}");
    }

    // Bare modes: .file objects, whose header lives in the file system.
    for mode in ["bare-user", "bare"] {
        let repo = Ostree::init(tmp.path().join(mode), mode);
        repo.run([
            "pull-local".to_owned(),
            s(archive.path()).to_owned(),
            "x".to_owned(),
        ]);
        let counts = check_all_objects(&repo);
        assert!(
            counts.get("file").copied().unwrap_or(0) > 0,
            "{mode}: {counts:?}"
        );
    }

    // A corrupted copy: checksum mismatch, exit status 1, JSON still printed.
    let bad_dir = tmp.path().join("bad/objects").join(&xf.checksum[..2]);
    fs::create_dir_all(&bad_dir).unwrap_or_else(|e| panic!("{e}"));
    let bad = bad_dir.join(format!("{}.dirtree", &xf.checksum[2..]));
    let tree_src = archive.path().join(format!(
        "objects/{}/{}.dirtree",
        &root_tree[..2],
        &root_tree[2..]
    ));
    fs::copy(&tree_src, &bad).unwrap_or_else(|e| panic!("{e}"));
    let out = inspect_raw(&["object", s(&bad), "--json"]);
    assert!(!out.status.success(), "a misnamed object passed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["checksum_matches"], Value::Bool(false));
    assert_eq!(v["checksum"], root_tree);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));

    let out = inspect_raw(&["object", s(&tmp.path().join("x.unknown"))]);
    assert!(!out.status.success());

    // Errors name the URL that failed; a truncated object names the path and says why,
    // once.
    let missing = server.url_for("objects/00/nothing.commit");
    let out = inspect_raw(&["object", &missing]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&missing) && err.contains("does not exist"),
        "{err}"
    );
    let cut = tmp.path().join("cut.commit");
    let bytes = fs::read(&cpath).unwrap_or_default();
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let out = inspect_raw(&["object", s(&cut)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(s(&cut)), "{err}");
    let last = err.trim().rsplit(": ").next().unwrap_or_default();
    assert_eq!(err.matches(last).count(), 1, "cause repeated: {err}");
}

/// A repository with a collection ID and a mirrored ref of another collection: the
/// collection ID, the main refs and the collection map equal `ostree summary --view`,
/// whose refs read `(collection, ref)`.
#[test]
fn summary_collections_match_ostree() {
    let tmp = tempdir();
    let t = TreeBuilder::new(tmp.path().join("t"));
    t.file("a", "a\n");
    let repo = Ostree::open(tmp.path().join("repo"));
    repo.run(["init", "--mode=archive", "--collection-id=org.example.Main"]);
    let c = repo.commit("main", t.root(), NO_ARGS);
    repo.run([
        "refs".to_owned(),
        "--collections".to_owned(),
        "--create=org.example.Other:mirrored".to_owned(),
        c.clone(),
    ]);
    repo.summary_update(None);
    let v = inspect_json(&["summary", s(repo.path())]);
    let sm = &v["summary"];
    assert_eq!(sm["collection_id"], "org.example.Main");

    let mut ours: Vec<ViewRef> = cfsync_refs(sm)
        .into_iter()
        .map(|r| ViewRef {
            name: format!("(org.example.Main, {})", r.name),
            ..r
        })
        .collect();
    for coll in sm["collection_refs"].as_array().into_iter().flatten() {
        let id = coll["collection_id"].as_str().unwrap_or("?");
        for r in cfsync_refs(coll) {
            ours.push(ViewRef {
                name: format!("({id}, {})", r.name),
                ..r
            });
        }
    }
    ours.sort_by(|a, b| a.name.cmp(&b.name));
    let theirs = ostree_summary_view(&repo);
    assert!(
        theirs
            .iter()
            .any(|r| r.name == "(org.example.Other, mirrored)"),
        "{theirs:?}"
    );
    assert_eq!(ours, theirs);
}
