//! Hostile formats end to end: crafted objects (correct checksums, so only their
//! content is hostile) put into a copy of the demo repository, an unsigned commit
//! pointing at them, pulled by URL without verification (`--commit`, object route).
//!
//! - dirtrees with `..`, `.`, `/` in a name, an empty name, duplicate or unsorted names,
//!   a name both a file and a directory, a garbled offset table;
//! - a dirtree chain nesting past the depth bound, and a dirtree DAG whose paths double
//!   at every level (2^40 paths out of 41 objects);
//! - file objects declaring sizes far beyond their data;
//! - a summary of hundreds of megabytes (declared, and sent without a length).
//!
//! Each must fail with a clear error naming the problem, in bounded time and memory
//! (peak RSS measured with `/usr/bin/time`), leave no ref, pass `cfsync fsck`, and
//! write nothing outside the repository. (A static delta part that expands without
//! end is covered by the `delta` module; a commit chain cannot loop, since a commit names its
//! parent by a hash of the parent's bytes.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::gvariant::OwnedValue;
use cfsync_tests::faults::{Fault, FaultServer, Rule};
use cfsync_tests::{Repo, cfsync_bin, copy_tree, demo, describe, output, scratch_dir};

/// A copy of the demo repository that the tests add crafted objects to.
fn hostile_repo() -> &'static Path {
    static REPO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &REPO
        .get_or_init(|| {
            let dir = scratch_dir();
            let path = dir.path().join("repo");
            copy_tree(&demo().repo, &path);
            (dir, path)
        })
        .1
}

/// Writes a metadata object under its checksum (archive repositories store metadata
/// as is).
fn put(bytes: &[u8], ext: &str) -> Checksum {
    let c = Checksum::of(bytes);
    let hex = c.to_hex();
    let dir = hostile_repo().join("objects").join(&hex[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.{ext}", &hex[2..])), bytes).unwrap();
    c
}

fn csum(c: &Checksum) -> OwnedValue {
    OwnedValue::bytes(c.0.to_vec())
}

/// `(a(say)a(sayay))`, entries as given (not sorted, not checked).
fn dirtree(files: &[(&str, Checksum)], dirs: &[(&str, Checksum, Checksum)]) -> Vec<u8> {
    OwnedValue::Tuple(vec![
        OwnedValue::array(
            "(say)",
            files
                .iter()
                .map(|(n, c)| OwnedValue::Tuple(vec![OwnedValue::str(*n), csum(c)]))
                .collect(),
        ),
        OwnedValue::array(
            "(sayay)",
            dirs.iter()
                .map(|(n, c, m)| OwnedValue::Tuple(vec![OwnedValue::str(*n), csum(c), csum(m)]))
                .collect(),
        ),
    ])
    .to_bytes()
    .unwrap()
}

/// A root dirmeta: 0:0, 0755, no xattrs.
fn dirmeta() -> Checksum {
    let b = OwnedValue::Tuple(vec![
        OwnedValue::u32_be(0),
        OwnedValue::u32_be(0),
        OwnedValue::u32_be(0o40755),
        OwnedValue::array("(ayay)", vec![]),
    ])
    .to_bytes()
    .unwrap();
    put(&b, "dirmeta")
}

/// An unsigned commit of `root`.
fn commit(root: Checksum) -> Checksum {
    let b = OwnedValue::Tuple(vec![
        OwnedValue::array("{sv}", vec![]),
        OwnedValue::bytes(Vec::new()),
        OwnedValue::array("(say)", vec![]),
        OwnedValue::str("hostile"),
        OwnedValue::str(""),
        OwnedValue::u64_be(1_800_000_000),
        csum(&root),
        csum(&dirmeta()),
    ])
    .to_bytes()
    .unwrap();
    put(&b, "commit")
}

/// A file object of the demo (its checksum), to list in crafted dirtrees.
fn some_file() -> Checksum {
    let dir = hostile_repo().join("objects/00");
    let name = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".filez"))
        .unwrap();
    format!("00{}", name.trim_end_matches(".filez"))
        .parse()
        .unwrap()
}

/// A pull's output, its time and its peak RSS in KiB.
struct Run {
    out: Output,
    took: Duration,
    max_rss_kib: u64,
}

/// Pulls `commit` (or the ref) from `server` into a fresh repository under `dir`, with
/// a 60 s limit, under `/usr/bin/time`.
fn pull_under(dir: &Path, url: &str, commit: Option<&Checksum>) -> Run {
    let rss = dir.join("rss");
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "60", "/usr/bin/time", "-f", "%M", "-o"])
        .arg(&rss)
        .arg(cfsync_bin())
        .arg("--repo")
        .arg(dir.join("repo"))
        .args(["pull", "--json", "--no-deltas"]);
    if let Some(c) = commit {
        cmd.args(["--commit", &c.to_hex()]);
    }
    cmd.args([url, &demo().refname]);
    cmd.env("CFSYNC_HTTP_RETRY_DELAY_MS", "20");
    let started = Instant::now();
    let out = output(&mut cmd);
    let took = started.elapsed();
    let max_rss_kib = std::fs::read_to_string(&rss)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0);
    Run {
        out,
        took,
        max_rss_kib,
    }
}

/// Pulls the crafted `commit` and checks it is refused with one of `expect`, in bounded
/// time and memory, leaving a sound repository with no ref and nothing beside it.
fn refused(what: &str, commit: Option<&Checksum>, server: &FaultServer, expect: &[&str]) {
    let tmp = scratch_dir();
    let run = pull_under(tmp.path(), &server.url(), commit);
    let out = &run.out;
    eprintln!(
        "{what}: {:.1} s, {} MiB peak: {}",
        run.took.as_secs_f64(),
        run.max_rss_kib / 1024,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(!out.status.success(), "{what}: pulled:\n{}", describe(out));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: killed or crashed (status {:?}) after {:?}:\n{}",
        out.status,
        run.took,
        describe(out)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        expect.iter().any(|e| err.contains(&e.to_lowercase())),
        "{what}: error names none of {expect:?}:\n{}",
        describe(out)
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{what}: {}",
        describe(out)
    );
    assert!(
        run.took < Duration::from_secs(30),
        "{what}: took {:?}",
        run.took
    );
    assert!(
        run.max_rss_kib < 400 * 1024,
        "{what}: peak RSS {} MiB",
        run.max_rss_kib / 1024
    );
    // Nothing but the repository in its directory (and the RSS file).
    let mut beside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["repo", "rss"],
        "{what}: written beside the repository"
    );
    let repo = Repo::new(tmp.path().join("repo"));
    if repo.path.exists() {
        repo.fsck();
        assert!(repo.refs().is_empty(), "{what}: a ref was set");
    }
}

fn server() -> FaultServer {
    FaultServer::start(hostile_repo())
}

#[test]
fn dirtrees_with_bad_names_are_refused() {
    let f = some_file();
    let m = dirmeta();
    let empty = put(&dirtree(&[], &[]), "dirtree");
    let server = server();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("file named ..", dirtree(&[("..", f)], &[])),
        ("file named .", dirtree(&[(".", f)], &[])),
        ("directory named ..", dirtree(&[], &[("..", empty, m)])),
        ("name with a slash", dirtree(&[("etc/passwd", f)], &[])),
        ("absolute name", dirtree(&[("/etc", f)], &[])),
        ("empty name", dirtree(&[("", f)], &[])),
        ("duplicate names", dirtree(&[("a", f), ("a", f)], &[])),
        ("unsorted names", dirtree(&[("b", f), ("a", f)], &[])),
        (
            "a name both file and directory",
            dirtree(&[("a", f)], &[("a", empty, m)]),
        ),
        (
            "duplicate directories",
            dirtree(&[], &[("d", empty, m), ("d", empty, m)]),
        ),
        ("garbled offset table", {
            let mut b = dirtree(&[("a", f), ("b", f)], &[]);
            let n = b.len();
            b[n - 1] = 0xff;
            b
        }),
    ];
    for (what, tree) in cases {
        // As the root, and one level down.
        let bad = put(&tree, "dirtree");
        refused(what, Some(&commit(bad)), &server, &["dirtree", "malformed"]);
        let parent = put(&dirtree(&[], &[("sub", bad, m)]), "dirtree");
        refused(
            &format!("{what} (one level down)"),
            Some(&commit(parent)),
            &server,
            &["dirtree", "malformed"],
        );
    }
}

#[test]
fn nesting_past_the_depth_bound_is_refused() {
    let m = dirmeta();
    let mut tree = put(&dirtree(&[("f", some_file())], &[]), "dirtree");
    for _ in 0..300 {
        tree = put(&dirtree(&[], &[("d", tree, m)]), "dirtree");
    }
    refused(
        "300 nested directories",
        Some(&commit(tree)),
        &server(),
        &["deeper than"],
    );
}

#[test]
fn a_tree_whose_paths_double_at_every_level_is_refused() {
    // 41 dirtrees, 2^40 paths: every level holds the one below twice.
    let m = dirmeta();
    let mut tree = put(&dirtree(&[("f", some_file())], &[]), "dirtree");
    for _ in 0..40 {
        tree = put(&dirtree(&[], &[("a", tree, m), ("b", tree, m)]), "dirtree");
    }
    refused(
        "2^40 paths from 41 dirtrees",
        Some(&commit(tree)),
        &server(),
        &["entries", "paths", "hostile"],
    );
}

/// A `.filez` with an archive header declaring `size` and `content` after it (a raw
/// deflate stream of stored blocks). Its name is arbitrary (what it hashes to is
/// never reached).
fn lying_filez(size: u64, content: &[u8]) -> Checksum {
    let header = OwnedValue::Tuple(vec![
        OwnedValue::u64_be(size),
        OwnedValue::u32_be(0),
        OwnedValue::u32_be(0),
        OwnedValue::u32_be(0o100644),
        OwnedValue::u32_be(0),
        OwnedValue::str(""),
        OwnedValue::array("(ayay)", vec![]),
    ])
    .to_bytes()
    .unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&u32::try_from(header.len()).unwrap().to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&header);
    // One final stored block.
    let len = u16::try_from(content.len()).unwrap();
    b.push(1);
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&(!len).to_le_bytes());
    b.extend_from_slice(content);
    let name = Checksum::of(&[&b[..], &size.to_le_bytes()].concat());
    let hex = name.to_hex();
    let dir = hostile_repo().join("objects").join(&hex[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.filez", &hex[2..])), &b).unwrap();
    name
}

#[test]
fn sizes_far_beyond_the_data_are_refused() {
    let server = server();
    for (what, size) in [
        ("a file declaring 1 TiB", 1u64 << 40),
        ("a file declaring 1 GiB", 1 << 30),
        ("a file declaring u64::MAX", u64::MAX),
    ] {
        let f = lying_filez(size, b"only a few bytes");
        let root = put(&dirtree(&[("big", f)], &[]), "dirtree");
        refused(
            what,
            Some(&commit(root)),
            &server,
            &["too large", "truncated", "larger than", "size", "short"],
        );
    }
}

#[test]
fn summaries_of_hundreds_of_megabytes_are_refused() {
    let server = server();
    server.add(Rule::new("summary", Fault::Huge(400 << 20)));
    refused(
        "a summary declaring 400 MiB",
        None,
        &server,
        &["larger than the limit"],
    );
    server.clear();
    server.add(Rule::new("summary", Fault::Endless));
    refused(
        "a summary sent without end",
        None,
        &server,
        &["larger than the limit"],
    );
}
