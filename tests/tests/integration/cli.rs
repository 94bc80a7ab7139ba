//! "The user's day": every `cfsync` command run as a binary on real repositories (the
//! bundled signed demo repository, and trees committed by the real `ostree`), each result
//! checked against what `ostree` itself says about the same commits, every `--json`
//! output parsed and its fields checked against `docs/json.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_tests::{
    NO_ARGS, Nginx, Ostree, TreeBuilder, demo, run_cfsync, tempdir, workspace_root, xattrs,
};
use serde_json::Value;

/// `cfsync --repo REPO ARGS…`, whatever its status.
fn cfsync(repo: &Path, args: &[&str]) -> Output {
    let mut all: Vec<&OsStr> = vec![OsStr::new("--repo"), repo.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    run_cfsync(all)
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "cfsync {args:?} ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cfsync --repo REPO ARGS…`, which must succeed; its stdout.
fn ok(repo: &Path, args: &[&str]) -> String {
    let out = cfsync(repo, args);
    assert!(out.status.success(), "{}", describe(args, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cfsync --repo REPO ARGS… --json`, which must succeed and print JSON; the JSON, after
/// checking that `docs/json.md`'s section for `section` names every field in it.
fn json(repo: &Path, section: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(repo, &all);
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cfsync {all:?} printed invalid JSON ({e}):\n{text}"));
    assert_documented(section, &v);
    v
}

/// `cfsync --repo REPO ARGS…`, which must fail with exit code `code` and a message on
/// stderr containing `needle`.
fn fails(repo: &Path, args: &[&str], code: i32, needle: &str) {
    let out = cfsync(repo, args);
    assert_eq!(out.status.code(), Some(code), "{}", describe(args, &out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "expected {needle:?} in the error\n{}",
        describe(args, &out)
    );
}

/// The text of `docs/json.md`'s section `## \`cfsync SECTION\``.
fn doc_section(section: &str) -> String {
    let doc = fs::read_to_string(workspace_root().join("docs/json.md")).expect("docs/json.md");
    let head = format!("## `cfsync {section}`");
    let start = doc
        .find(&format!("{head}\n"))
        .unwrap_or_else(|| panic!("docs/json.md has no section {head:?}"));
    let rest = &doc[start + head.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// Every object key anywhere in `v` is documented (as `` `key` ``) in the section.
fn assert_documented(section: &str, v: &Value) {
    fn keys(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    out.insert(k.clone());
                    keys(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let text = doc_section(section);
    let mut all = BTreeSet::new();
    keys(v, &mut all);
    let missing: Vec<_> = all
        .iter()
        .filter(|k| !text.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/json.md section `cfsync {section}` does not document {missing:?}"
    );
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Everything `ls -lR` would compare, of one entry of a directory tree on disk.
#[derive(Debug, PartialEq, Eq)]
struct DiskEntry {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    target: Option<String>,
    content: Option<Vec<u8>>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// The xattrs of `path`, without SELinux labels (they come from the host policy, not
/// from the commit).
fn xattrs_of(path: &Path) -> BTreeMap<String, Vec<u8>> {
    xattrs(path, |name| name == "security.selinux")
}

/// The tree under `root`, keyed by path relative to it (`/` for the root itself).
fn walk(root: &Path) -> BTreeMap<String, DiskEntry> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, DiskEntry>) {
        let m = fs::symlink_metadata(dir).unwrap();
        let rel = format!("/{}", dir.strip_prefix(root).unwrap().display());
        let ft = m.file_type();
        let (kind, target, content) = if ft.is_dir() {
            ('d', None, None)
        } else if ft.is_symlink() {
            (
                'l',
                Some(fs::read_link(dir).unwrap().display().to_string()),
                None,
            )
        } else {
            ('-', None, Some(fs::read(dir).unwrap()))
        };
        out.insert(
            rel,
            DiskEntry {
                kind,
                mode: if kind == 'l' {
                    0
                } else {
                    m.permissions().mode() & 0o7777
                },
                uid: m.uid(),
                gid: m.gid(),
                target,
                content,
                xattrs: xattrs_of(dir),
            },
        );
        if ft.is_dir() {
            for e in fs::read_dir(dir).unwrap() {
                go(root, &e.unwrap().path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

fn assert_same_tree(ours: &Path, theirs: &Path) {
    let (a, b) = (walk(ours), walk(theirs));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "checkout paths differ"
    );
    for (path, x) in &a {
        let y = &b[path];
        // ostree gives the checkout's top directory the commit's root mode too.
        assert_eq!(x, y, "{path} differs (cfsync, ostree)");
    }
}

/// Every regular file under `dir`.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// Unmounts `dir` when dropped.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A day with the demo repository: init, pull v1 then v2 (through the delta), refs,
/// show, log, ls, cat, diff, checkout, mount, fsck, gc, inspect; text and JSON.
#[test]
fn a_day_with_the_demo_repository() {
    let d = demo();
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let src = d.repo.to_str().unwrap();
    let ostree = Ostree::open(&d.repo);

    assert!(ok(&repo, &["init"]).contains("created repository"));
    assert_eq!(ok(&repo, &["init"]).trim(), "repository exists");

    // Progress: plain lines on stderr when it is not a terminal; nothing with --quiet.
    let out = cfsync(&repo, &["pull", src, &d.refname, "--commit", &d.v1]);
    assert!(out.status.success(), "{}", describe(&["pull"], &out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l.starts_with("cfsync: ")),
        "no progress lines on stderr: {err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pulled commit {}", d.v1)));
    let p = json(&repo, "pull", &["--quiet", "pull", src, &d.refname]);
    assert_eq!(p["commit"], d.v2.as_str());
    assert_eq!(p["previous"], d.v1.as_str());
    assert_eq!(p["delta"], format!("{}-{}", d.v1, d.v2).as_str());
    assert!(p["up_to_date"] == false && p["objects_reused"].as_u64().unwrap() > 0);
    let again = cfsync(&repo, &["--quiet", "pull", src, &d.refname]);
    assert!(
        again.status.success() && again.stderr.is_empty(),
        "{}",
        describe(&["pull", "-q"], &again)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("already stored"));

    // refs
    let refs = json(&repo, "refs", &["refs"]);
    assert_eq!(
        refs,
        serde_json::json!([{"ref": d.refname, "commit": d.v2}])
    );
    assert_eq!(ok(&repo, &["refs"]), format!("{}\t{}\n", d.refname, d.v2));

    // show: the commit as ostree sees it.
    let s = json(&repo, "show", &["show", &d.refname]);
    assert_eq!(s["commit"], d.v2.as_str());
    assert_eq!(s["parent"], d.v1.as_str());
    assert_eq!(s["image"], p["image"]);
    assert_eq!(s["ref"], d.refname.as_str());
    assert_eq!(s["gpg_signatures"], 1);
    assert_eq!(s["signatures"][0]["valid"], Value::Null);
    assert!(
        s["signatures"][0]["status"]
            .as_str()
            .unwrap()
            .contains("not checked")
    );
    assert_eq!(s["ref_binding"], serde_json::json!([d.refname]));
    assert!(
        s["metadata_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "version")
    );
    let oshow = ostree.show(&d.v2);
    assert!(oshow.contains(s["subject"].as_str().unwrap()), "{oshow}");
    assert!(oshow.contains(&format!("Version: {}", s["version"].as_str().unwrap())));
    let short = ok(&repo, &["show", &d.v1[..12]]);
    assert!(short.starts_with(&format!("commit {}\n", d.v1)), "{short}");

    // log: both commits are stored.
    let l = json(&repo, "log", &["log", &d.refname]);
    let commits: Vec<_> = l["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["commit"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(commits, [d.v2.clone(), d.v1.clone()]);
    assert!(
        l["commits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["stored"] == true)
    );
    assert_eq!(l["next_parent"], Value::Null);
    let text = ok(&repo, &["log", &d.refname]);
    assert!(
        text.contains("cfsync demo 1.0") && text.contains("cfsync demo 2.0"),
        "{text}"
    );

    // ls -R: every path, type, mode, owner, size and target as `ostree ls -R -C`.
    let theirs = ostree.ls_entries(&d.v2);
    let ours = json(&repo, "ls", &["ls", "-R", &d.refname]);
    let ours: BTreeMap<String, &Value> = ours
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_owned(), e))
        .collect();
    let expected: BTreeSet<_> = theirs.keys().filter(|p| *p != "/").cloned().collect();
    assert_eq!(ours.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (path, e) in &ours {
        let o = &theirs[path];
        let kind = match e["type"].as_str().unwrap() {
            "dir" => 'd',
            "symlink" => 'l',
            _ => '-',
        };
        assert_eq!(kind, o.kind, "{path}");
        assert_eq!(e["mode"].as_u64().unwrap() as u32, o.mode, "{path}");
        assert_eq!(
            (
                e["uid"].as_u64().unwrap() as u32,
                e["gid"].as_u64().unwrap() as u32
            ),
            (o.uid, o.gid),
            "{path}"
        );
        assert_eq!(e["checksum"].as_str().unwrap(), o.checksum, "{path}");
        if kind == '-' {
            assert_eq!(e["size"].as_u64().unwrap(), o.size, "{path}");
        }
        assert_eq!(e["target"].as_str().map(str::to_owned), o.target, "{path}");
    }
    let usr_bin = ok(&repo, &["ls", &d.refname, "/usr/bin"]);
    assert!(
        usr_bin.lines().any(|l| l.ends_with(" /usr/bin/dash")),
        "{usr_bin}"
    );

    // cat: bytes equal to `ostree cat`, inline (small) and external (large) files.
    for path in ["/usr/lib/os-release", "/usr/bin/dash"] {
        let out = cfsync(&repo, &["cat", &d.refname, path]);
        assert!(out.status.success(), "{}", describe(&["cat", path], &out));
        assert_eq!(out.stdout, ostree.cat(&d.v2, path), "{path}");
    }
    fails(&repo, &["cat", &d.refname, "/usr"], 1, "is a directory");
    fails(&repo, &["cat", &d.refname, "/nope"], 1, "no such file");

    // diff v1 v2: exactly `ostree diff`'s lines; JSON agrees.
    let odiff = ostree.run(["diff", &d.v1, &d.v2]);
    assert_eq!(ok(&repo, &["diff", &d.v1, &d.refname]), odiff);
    let j = json(&repo, "diff", &["diff", &d.v1, &d.refname]);
    let mut lines = Vec::new();
    for (key, letter) in [("modified", "M"), ("removed", "D"), ("added", "A")] {
        for e in j[key].as_array().unwrap() {
            lines.push(format!("{letter}    {}", e["path"].as_str().unwrap()));
        }
    }
    assert_eq!(lines.join("\n") + "\n", odiff);
    let added_bytes: u64 = j["added"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "file")
        .map(|e| e["size"].as_u64().unwrap())
        .sum();
    assert_eq!(j["stats"]["added_bytes"].as_u64().unwrap(), added_bytes);
    let os_release = j["modified"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/usr/lib/os-release")
        .expect("os-release modified");
    assert_eq!(
        os_release["new_size"].as_u64().unwrap(),
        ostree.cat(&d.v2, "/usr/lib/os-release").len() as u64
    );
    assert_eq!(
        os_release["old_size"].as_u64().unwrap(),
        ostree.cat(&d.v1, "/usr/lib/os-release").len() as u64
    );
    assert!(ok(&repo, &["diff", "--stats", &d.v1, &d.refname]).contains(" modified ("));
    assert_eq!(ok(&repo, &["diff", &d.refname, &d.v2]), "");

    // checkout: the same tree as `ostree checkout`.
    let co = tmp.path().join("co");
    let c = json(
        &repo,
        "checkout",
        &["checkout", &d.refname, co.to_str().unwrap()],
    );
    assert_eq!(c["commit"], d.v2.as_str());
    let oco = tmp.path().join("ostree-co");
    ostree.checkout(&d.v2, &oco, NO_ARGS);
    assert_same_tree(&co, &oco);
    assert_eq!(
        c["files"].as_u64().unwrap() + c["symlinks"].as_u64().unwrap(),
        theirs.values().filter(|e| e.kind != 'd').count() as u64
    );
    fails(
        &repo,
        &["checkout", &d.refname, co.to_str().unwrap()],
        1,
        "not empty",
    );

    // fsck, gc (nothing to collect while the ref and v1's stream… v1 has no ref).
    let f = json(&repo, "fsck", &["fsck"]);
    assert_eq!(f["ok"], true);
    assert!(f["objects_checked"].as_u64().unwrap() > 0);
    let g = json(&repo, "gc", &["gc", "--dry-run"]);
    assert_eq!(g["dry_run"], true);

    // mount (root): the image shows the commit's files.
    if is_root() {
        let mnt = tmp.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        ok(&repo, &["mount", &d.refname, mnt.to_str().unwrap()]);
        let _m = Mounted(mnt.clone());
        assert_eq!(
            fs::read(mnt.join("usr/lib/os-release")).unwrap(),
            ostree.cat(&d.v2, "/usr/lib/os-release")
        );
    }

    // inspect needs no repository (its fields are checked by the `inspect` module).
    let obj = d
        .repo
        .join(format!("objects/{}/{}.commit", &d.v2[..2], &d.v2[2..]));
    let o: Value = serde_json::from_str(&ok(
        &repo,
        &["inspect", "object", obj.to_str().unwrap(), "--json"],
    ))
    .expect("inspect object --json parses");
    assert_eq!(
        (o["checksum"].as_str(), o["checksum_matches"].as_bool()),
        (Some(d.v2.as_str()), Some(true))
    );
    let delta_dir = fs::read_dir(d.repo.join("deltas"))
        .unwrap()
        .flat_map(|e| fs::read_dir(e.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().contains('-'))
        .expect("the v1-v2 delta");
    let dl: Value = serde_json::from_str(&ok(
        &repo,
        &["inspect", "delta", delta_dir.to_str().unwrap(), "--json"],
    ))
    .expect("inspect delta --json parses");
    assert_eq!(
        (dl["from"].as_str(), dl["to"].as_str()),
        (Some(d.v1.as_str()), Some(d.v2.as_str()))
    );
    let i: Value = serde_json::from_str(&ok(&repo, &["inspect", "summary", src, "--json"]))
        .expect("inspect summary --json parses");
    assert!(
        i["summary"]["refs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == d.refname.as_str())
    );
}

/// `log` shows what is stored; `--depth` fetches parent commit objects from `--from`,
/// verified by checksum, and refuses a forged one.
#[test]
fn log_depth_fetches_parents_and_checks_them() {
    let d = demo();
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let src = d.repo.to_str().unwrap();
    ok(&repo, &["-q", "pull", src, &d.refname]);

    let l = json(&repo, "log", &["log", &d.refname]);
    assert_eq!(l["commits"].as_array().unwrap().len(), 1);
    assert_eq!(l["next_parent"], d.v1.as_str());
    assert!(ok(&repo, &["log", &d.refname]).contains("not stored"));
    // A commit named by checksum has no recorded origin.
    fails(&repo, &["log", &d.v2, "--depth", "1"], 1, "--from");
    // A ref: by default, its parents come from where it was pulled from.
    let l = json(&repo, "log", &["log", &d.refname, "--depth", "1"]);
    assert_eq!(
        l["source"].as_str(),
        Some(d.repo.canonicalize().unwrap().to_str().unwrap())
    );
    assert_eq!(l["commits"][1]["commit"], d.v1.as_str());

    let l = json(
        &repo,
        "log",
        &["log", &d.refname, "--depth", "1", "--from", src],
    );
    let c = l["commits"].as_array().unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0]["commit"].as_str(), c[0]["stored"].as_bool()),
        (Some(d.v2.as_str()), Some(true))
    );
    assert_eq!(
        (c[1]["commit"].as_str(), c[1]["stored"].as_bool()),
        (Some(d.v1.as_str()), Some(false))
    );
    assert_eq!(c[1]["subject"], "cfsync demo 1.0");
    assert_eq!(c[1]["parent"], Value::Null);
    let l0 = json(
        &repo,
        "log",
        &["log", &d.refname, "--depth", "0", "--from", src],
    );
    assert_eq!(l0["commits"].as_array().unwrap().len(), 1);
    assert_eq!(l0["next_parent"], d.v1.as_str());

    // A source whose v1 commit object is not v1's bytes.
    let forged = tmp.path().join("forged");
    let obj = format!("objects/{}/{}.commit", &d.v1[..2], &d.v1[2..]);
    fs::create_dir_all(forged.join(&obj).parent().unwrap()).unwrap();
    fs::write(
        forged.join("config"),
        "[core]\nrepo_version=1\nmode=archive-z2\n",
    )
    .unwrap();
    let mut bytes = fs::read(d.repo.join(&obj)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(forged.join(&obj), bytes).unwrap();
    fails(
        &repo,
        &[
            "log",
            &d.refname,
            "--depth",
            "1",
            "--from",
            forged.to_str().unwrap(),
        ],
        1,
        "corrupt or forged",
    );
}

/// Two versions of an edge-case tree (modes, setuid, owners, xattrs, symlinks, odd
/// names) committed by ostree: `checkout` writes what `ostree checkout` writes, `diff`
/// says what `ostree diff` says, `ls` agrees with `ostree ls`.
#[test]
fn checkout_and_diff_match_ostree_on_edge_cases() {
    let tmp = tempdir();
    let v1 = TreeBuilder::new(tmp.path().join("v1"));
    v1.edge_cases();
    let v2 = TreeBuilder::copy_of(v1.root(), tmp.path().join("v2"));
    v2.edge_cases_update();
    let ostree = Ostree::init(tmp.path().join("src"), "archive");
    let c1 = ostree.commit("edge/v1", v1.root(), ["-s", "edge v1"]);
    let c2 = ostree.commit("edge/v2", v2.root(), ["-s", "edge v2"]);
    let repo = tmp.path().join("repo");
    let src = ostree.path().to_str().unwrap();
    ok(&repo, &["-q", "pull", src, "edge/v1"]);
    ok(&repo, &["-q", "pull", src, "edge/v2"]);

    for (rev, name) in [(&c1, "edge/v1"), (&c2, "edge/v2")] {
        let co = tmp.path().join(format!("co-{}", &rev[..8]));
        ok(&repo, &["checkout", name, co.to_str().unwrap()]);
        let oco = tmp.path().join(format!("oco-{}", &rev[..8]));
        ostree.checkout(rev, &oco, NO_ARGS);
        assert_same_tree(&co, &oco);
        // The comparison covers what matters: xattrs (also on symlinks and
        // directories), owners, setuid bits, long symlink targets.
        let t = walk(&co);
        assert_eq!(
            t["/xattr-file"].xattrs["user.binary"],
            (0..=255u8).collect::<Vec<_>>()
        );
        assert_eq!(t["/link-xattr"].xattrs["trusted.link"], b"l");
        assert_eq!(t["/xattr-dir"].xattrs["user.dir"], b"d");
        assert_eq!(t["/bin/setuid"].mode, 0o4755);
        assert_eq!(t["/sticky"].mode, 0o1777);
        assert_eq!(
            t["/link-long"].target.as_deref(),
            Some("t/".repeat(500).as_str())
        );
        if is_root() {
            let owner = if rev == &c1 { 1000 } else { 1001 };
            assert_eq!((t["/owned"].uid, t["/owned"].gid), (owner, owner));
        }
    }
    // --user-mode: no xattrs, no owners.
    let uco = tmp.path().join("user-co");
    ok(&repo, &["checkout", "-U", "edge/v1", uco.to_str().unwrap()]);
    let u = walk(&uco);
    assert!(u["/xattr-file"].xattrs.is_empty());
    assert_eq!(u["/bin/setuid"].mode, 0o4755);
    assert_eq!(
        fs::read(uco.join("big.bin")).unwrap(),
        fs::read(v1.root().join("big.bin")).unwrap()
    );

    // diff: xattr, mode, owner, symlink and content changes; added and removed.
    let odiff = ostree.run(["diff", &c1, &c2]);
    assert_eq!(ok(&repo, &["diff", "edge/v1", "edge/v2"]), odiff);
    for path in [
        "/xattr-file",
        "/bin/exec",
        "/owned",
        "/link-rel",
        "/big.bin",
    ] {
        assert!(
            odiff.contains(&format!("M    {path}\n")),
            "{path} not in {odiff}"
        );
    }
    let j = json(&repo, "diff", &["diff", "edge/v1", "edge/v2"]);
    assert_eq!(j["removed"][0]["path"], "/text.txt");
    assert_eq!(j["stats"]["removed_files"], 1);
    assert_eq!(j["stats"]["removed_bytes"], 24 * 40);
    assert_eq!(j["stats"]["added_bytes"], 12 * 10);

    // ls of a file; ls -R agrees with ostree on names ostree prints as they are.
    let f = json(&repo, "ls", &["ls", "edge/v1", "/bin/setuid"]);
    assert_eq!(f[0]["mode"], 0o4755);
    assert_eq!(f[0]["type"], "file");
    let ours = json(&repo, "ls", &["ls", "-R", "edge/v2"]);
    let theirs = ostree.ls_entries(&c2);
    assert_eq!(ours.as_array().unwrap().len(), theirs.len() - 1);
}

/// A remote file written by `ostree remote add` works unchanged from a `--remotes-dir`:
/// list, show-url, refs, a signature-verified pull; and cfsync's own remotes.
#[test]
fn remote_files_written_by_ostree() {
    let d = demo();
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let server = Nginx::serve(&d.repo);
    let url = server.url();

    // `ostree remote add` writes the [remote "demo"] group into a repository's config;
    // that file goes into a remotes directory as it is (libostree reads such files from
    // /etc/ostree/remotes.d).
    let scratch = Ostree::init(tmp.path().join("scratch"), "bare-user-only");
    scratch.run([
        "remote",
        "add",
        &format!("--set=gpgkeypath={}", d.public_key.display()),
        "demo",
        &url,
        &d.refname,
    ]);
    let remotes = tmp.path().join("remotes.d");
    fs::create_dir(&remotes).unwrap();
    fs::copy(scratch.path().join("config"), remotes.join("demo.conf")).unwrap();
    let rd = remotes.to_str().unwrap();

    let list = json(
        &repo,
        "remote list",
        &["--remotes-dir", rd, "remote", "list"],
    );
    let demo_remote = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "demo")
        .unwrap_or_else(|| panic!("no demo remote in {list}"));
    assert_eq!(demo_remote["url"], url.as_str());
    assert_eq!(demo_remote["gpg_verify"], true);
    assert_eq!(demo_remote["branches"], serde_json::json!([d.refname]));
    assert_eq!(
        ok(&repo, &["--remotes-dir", rd, "remote", "show-url", "demo"]).trim(),
        url
    );
    let refs = json(
        &repo,
        "remote refs",
        &["--remotes-dir", rd, "remote", "refs", "demo"],
    );
    assert_eq!(
        refs,
        serde_json::json!([{"ref": d.refname, "commit": d.v2}])
    );
    assert!(
        ok(&repo, &["--remotes-dir", rd, "remote", "refs", "demo"])
            .contains(&format!("demo:{}\t{}", d.refname, d.v2))
    );

    let p = json(
        &repo,
        "pull",
        &["--remotes-dir", rd, "pull", "demo", &d.refname],
    );
    assert_eq!(p["commit"], d.v2.as_str());
    let sigs = p["signatures"].as_array().unwrap();
    assert!(
        !sigs.is_empty() && sigs[0].as_str().unwrap().contains("valid"),
        "{p}"
    );

    // show --remote checks the stored signatures again with the remote's keys.
    let s = json(
        &repo,
        "show",
        &["--remotes-dir", rd, "show", &d.refname, "--remote", "demo"],
    );
    let sig = &s["signatures"][0];
    assert_eq!(
        (sig["type"].as_str(), sig["valid"].as_bool()),
        (Some("gpg"), Some(true)),
        "{s}"
    );
    assert_eq!(sig["status"], "valid");
    let key = sig["key"].as_str().unwrap();
    assert!(sigs[0].as_str().unwrap().contains(key), "{sig} vs {p}");

    // The same file without the key path: signatures required, no key, so no pull.
    let nokey = tmp.path().join("nokey.d");
    fs::create_dir(&nokey).unwrap();
    let conf = fs::read_to_string(remotes.join("demo.conf")).unwrap();
    let stripped: String = conf
        .lines()
        .filter(|l| !l.starts_with("gpgkeypath="))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(nokey.join("demo.conf"), stripped).unwrap();
    let repo2 = tmp.path().join("repo2");
    let out = cfsync(
        &repo2,
        &[
            "-q",
            "--remotes-dir",
            nokey.to_str().unwrap(),
            "pull",
            "demo",
            &d.refname,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe(&["pull without key"], &out)
    );

    // cfsync's own remotes: add, list, show-url, delete; read-only ones stay.
    ok(
        &repo,
        &[
            "--remotes-dir",
            rd,
            "remote",
            "add",
            "mine",
            &url,
            "--no-gpg-verify",
        ],
    );
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = json(
        &repo,
        "remote list",
        &["--remotes-dir", rd, "remote", "list"],
    );
    assert_eq!(names(&list), ["demo", "mine"]);
    assert_eq!(
        ok(&repo, &["--remotes-dir", rd, "remote", "list", "-u"]),
        format!("demo\t{url}\nmine\t{url}\n")
    );
    // A remote without keys cannot vouch for the commit.
    let out = cfsync(
        &repo,
        &["--remotes-dir", rd, "show", &d.refname, "--remote", "mine"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe(&["show --remote mine"], &out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no valid GPG signature"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("key not in the trusted keyring"));
    ok(&repo, &["--remotes-dir", rd, "remote", "delete", "mine"]);
    let list = json(
        &repo,
        "remote list",
        &["--remotes-dir", rd, "remote", "list"],
    );
    assert_eq!(names(&list), ["demo"]);
    fails(
        &repo,
        &["--remotes-dir", rd, "remote", "delete", "mine"],
        1,
        "no remote",
    );
    let out = cfsync(&repo, &["--remotes-dir", rd, "remote", "delete", "demo"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe(&["delete read-only"], &out)
    );
    assert!(remotes.join("demo.conf").exists());
}

/// `gc` after `refs --delete` removes what only that ref reached (commit stream, image,
/// its own files), keeps the other ref whole and mountable, and the repository pulls the
/// deleted ref again.
#[test]
fn gc_keeps_what_refs_reach() {
    let tmp = tempdir();
    let a = TreeBuilder::new(tmp.path().join("a"));
    a.random_file("usr/only-a", 100_000, 11)
        .file("usr/shared", "shared\n");
    let b = TreeBuilder::new(tmp.path().join("b"));
    b.random_file("usr/only-b", 100_000, 12)
        .file("usr/shared", "shared\n");
    let ostree = Ostree::init(tmp.path().join("src"), "archive");
    let ca = ostree.commit("a", a.root(), NO_ARGS);
    let cb = ostree.commit("b", b.root(), NO_ARGS);
    let repo = tmp.path().join("repo");
    let src = ostree.path().to_str().unwrap();
    ok(&repo, &["-q", "pull", src, "a"]);
    ok(&repo, &["-q", "pull", src, "b"]);

    let g = json(&repo, "gc", &["gc"]);
    assert_eq!(g["objects_removed"], 0, "gc removed what refs reach: {g}");
    assert_eq!(json(&repo, "fsck", &["fsck"])["ok"], true);

    let del = json(&repo, "refs", &["refs", "--delete", "a"]);
    assert_eq!(del["deleted"], "a");
    fails(&repo, &["refs", "--delete", "a"], 1, "no ref");
    let dry = json(&repo, "gc", &["gc", "--dry-run"]);
    // a's commit stream, its image and only-a's content object.
    assert_eq!(dry["objects_removed"], 3, "{dry}");
    let g = json(&repo, "gc", &["gc"]);
    assert_eq!(g["objects_removed"], 3, "{g}");
    assert_eq!(
        (g["images_pruned"].as_u64(), g["streams_pruned"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(g["objects_bytes"].as_u64().unwrap() >= 100_000);
    assert_eq!(json(&repo, "gc", &["gc"])["objects_removed"], 0);
    assert_eq!(
        json(&repo, "refs", &["refs"]),
        serde_json::json!([{"ref": "b", "commit": cb}])
    );
    fails(&repo, &["show", &ca], 1, "no ref or commit");
    assert_eq!(json(&repo, "fsck", &["fsck"])["ok"], true);
    let out = cfsync(&repo, &["cat", "b", "/usr/only-b"]);
    assert_eq!(out.stdout, b.read("usr/only-b"));
    if is_root() {
        let mnt = tmp.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        ok(&repo, &["mount", "b", mnt.to_str().unwrap()]);
        let _m = Mounted(mnt.clone());
        assert_eq!(
            fs::read(mnt.join("usr/only-b")).unwrap(),
            b.read("usr/only-b")
        );
        assert_eq!(fs::read(mnt.join("usr/shared")).unwrap(), b"shared\n");
    }
    // fsck finds a damaged content object (possible without fs-verity enforcement;
    // with it, the kernel refuses the write) and exits 1.
    let big = walk_files(&repo.join("objects"))
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() == 100_000)
        .expect("only-b's content object");
    let original = fs::read(&big).unwrap();
    if let Ok(mut f) = fs::OpenOptions::new().write(true).open(&big) {
        use std::io::{Seek, SeekFrom, Write};
        f.seek(SeekFrom::Start(100)).unwrap();
        f.write_all(&[original[100] ^ 0xff]).unwrap();
        drop(f);
        let out = cfsync(&repo, &["fsck", "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&["fsck"], &out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (v["ok"].as_bool(), v["objects_corrupted"].as_u64()),
            (Some(false), Some(1))
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("repository check failed"));
        fs::write(&big, &original).unwrap();
        assert_eq!(json(&repo, "fsck", &["fsck"])["ok"], true);
    }
    // Pull a again: the shared file is reused, only-a fetched again.
    let p = json(&repo, "pull", &["-q", "pull", src, "a"]);
    assert_eq!(p["commit"], ca.as_str());
    assert!(p["objects_reused"].as_u64().unwrap() >= 1, "{p}");
    assert_eq!(json(&repo, "fsck", &["fsck"])["ok"], true);
}

/// Completions and man pages come from the clap definitions and name every command.
#[test]
fn completions_and_man_pages() {
    let commands = [
        "init",
        "remote",
        "pull",
        "refs",
        "log",
        "show",
        "ls",
        "cat",
        "diff",
        "checkout",
        "mount",
        "fsck",
        "gc",
        "inspect",
        "delta",
        "demo",
        "completions",
        "man",
    ];
    let bash = String::from_utf8(run_cfsync(["completions", "bash"]).stdout).unwrap();
    assert!(
        bash.contains("complete -F") && bash.contains("cfsync"),
        "{bash}"
    );
    for c in commands {
        assert!(bash.contains(c), "bash completion lacks {c}");
    }
    for shell in ["zsh", "fish"] {
        let out = run_cfsync(["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let out = run_cfsync(["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));

    let man = String::from_utf8(run_cfsync(["man"]).stdout).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH cfsync"),
        "{man}"
    );
    assert!(
        man.contains("Exit codes"),
        "exit codes are not in the man page"
    );
    for c in commands {
        assert!(man.contains(c), "man page lacks {c}");
    }
    let tmp = tempdir();
    let dir = tmp.path().join("man1");
    let out = run_cfsync([OsStr::new("man"), OsStr::new("--dir"), dir.as_os_str()]);
    assert!(out.status.success());
    for c in commands {
        let page = fs::read_to_string(dir.join(format!("cfsync-{c}.1")))
            .unwrap_or_else(|e| panic!("cfsync-{c}.1: {e}"));
        assert!(page.contains(&format!(".TH cfsync-{c}")), "{page}");
    }
    let pull = fs::read_to_string(dir.join("cfsync-pull.1")).unwrap();
    assert!(pull.contains("no\\-deltas"), "{pull}");
}

/// Exit codes: 1 for a failure with a message saying what to do, 2 for bad usage.
#[test]
fn exit_codes_and_messages() {
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let out = run_cfsync(["refs"]);
    if std::env::var_os("CFSYNC_REPO").is_none() {
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--repo"));
    }
    fails(&repo, &["refs"], 1, "cfsync init");
    ok(&repo, &["init"]);
    fails(&repo, &["show", "nosuch"], 1, "cfsync refs");
    fails(&repo, &["log", "nosuch"], 1, "no ref or commit");
    fails(&repo, &["diff", "a", "b"], 1, "no ref or commit");
    fails(
        &repo,
        &["pull", "nowhere-remote", "x"],
        1,
        "cfsync remote add",
    );
    fails(&repo, &["frobnicate"], 2, "unrecognized subcommand");
    fails(&repo, &["log"], 2, "REF");
    fails(&repo, &["diff", "--depth", "1", "a", "b"], 2, "--depth");
}

/// A remote `flatpak remote-add` wrote (in flatpak's repository `config`, with the
/// remote's keyring beside it): read from a `--remotes-dir` unchanged, or in place with
/// `--ostree-repo`; its keyring imported with `remote gpg-import`, then a pull with
/// summary and commit signatures verified. Without the keys the pull is refused.
#[test]
fn flatpak_remote_file_and_keyring() {
    let d = demo();
    let tmp = tempdir();
    let flatpak = cfsync_tests::require("flatpak");
    let data = tmp.path().join("data");
    let url = format!("file://{}", d.repo.display());
    cfsync_tests::run_checked(
        Command::new(flatpak)
            .env("HOME", tmp.path())
            .env("XDG_DATA_HOME", &data)
            .args(["remote-add", "--user", "--if-not-exists"])
            .arg(format!("--gpg-import={}", d.public_key.display()))
            .args(["demo", &url]),
    );
    let fp_repo = data.join("flatpak/repo");
    let remotes = tmp.path().join("remotes.d");
    fs::create_dir(&remotes).unwrap();
    fs::copy(fp_repo.join("config"), remotes.join("flatpak.conf")).unwrap();
    let rd = remotes.to_str().unwrap();
    let repo = tmp.path().join("repo");

    let list = json(
        &repo,
        "remote list",
        &["--remotes-dir", rd, "remote", "list"],
    );
    assert_eq!(list[0]["name"], "demo");
    assert_eq!(list[0]["url"], url.as_str());
    assert_eq!(
        (&list[0]["gpg_verify"], &list[0]["gpg_verify_summary"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    fails(
        &repo,
        &["-q", "--remotes-dir", rd, "pull", "demo", &d.refname],
        1,
        "no trusted key",
    );
    fails(
        &repo,
        &[
            "--remotes-dir",
            rd,
            "remote",
            "gpg-import",
            "nosuch",
            "/dev/null",
        ],
        1,
        "no remote",
    );
    let keyring = fp_repo.join("demo.trustedkeys.gpg");
    let out = ok(
        &repo,
        &[
            "--remotes-dir",
            rd,
            "remote",
            "gpg-import",
            "demo",
            keyring.to_str().unwrap(),
        ],
    );
    assert!(out.contains("imported 1 GPG key"), "{out}");
    let p = json(
        &repo,
        "pull",
        &["--remotes-dir", rd, "pull", "demo", &d.refname],
    );
    assert_eq!(p["commit"], d.v2.as_str());
    assert!(!p["signatures"].as_array().unwrap().is_empty(), "{p}");
    // Or straight from flatpak's repository, with --ostree-repo.
    let fr = fp_repo.to_str().unwrap();
    let repo3 = tmp.path().join("repo3");
    let list = json(
        &repo3,
        "remote list",
        &["--ostree-repo", fr, "remote", "list"],
    );
    assert_eq!(list[0]["url"], url.as_str());
    ok(
        &repo3,
        &[
            "--ostree-repo",
            fr,
            "remote",
            "gpg-import",
            "demo",
            keyring.to_str().unwrap(),
        ],
    );
    let p = json(
        &repo3,
        "pull",
        &["--ostree-repo", fr, "pull", "demo", &d.refname],
    );
    assert_eq!(p["commit"], d.v2.as_str());
    fails(
        &repo3,
        &["--ostree-repo", rd, "remote", "list"],
        1,
        "not an OSTree repository",
    );
}

/// On a terminal, `pull` draws an indicatif bar: phase, bytes fetched, rate, objects.
/// (`script` gives the command a pseudo-terminal.)
#[test]
fn progress_bar_on_a_terminal() {
    let d = demo();
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let cmd = format!(
        "{} --repo {} pull {} {} --commit {} --no-deltas",
        cfsync_tests::cfsync_bin().display(),
        repo.display(),
        d.repo.display(),
        d.refname,
        d.v1
    );
    let out = cfsync_tests::run_checked(Command::new(cfsync_tests::require("script")).args([
        "-qec",
        &cmd,
        "/dev/null",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("pulled commit {}", d.v1)), "{text}");
    for needle in ["objects  [", " fetched (", "/s), objects "] {
        assert!(
            text.contains(needle),
            "no {needle:?} in the terminal output:\n{text}"
        );
    }
    assert!(
        !text.contains("cfsync: objects"),
        "plain lines on a terminal:\n{text}"
    );
}

/// `RUST_LOG` turns on the engine's tracing, on stderr, without colour codes when stderr
/// is not a terminal; stdout keeps only the data.
#[test]
fn tracing_with_rust_log() {
    let d = demo();
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    let out = cfsync_tests::output(
        cfsync_tests::cfsync_command()
            .env("RUST_LOG", "cfsync_engine=debug")
            .arg("--repo")
            .arg(&repo)
            .args(["-q", "pull", "--json"])
            .arg(&d.repo)
            .args([&d.refname, "--commit", &d.v1]),
    );
    assert!(
        out.status.success(),
        "{}",
        describe(&["pull with RUST_LOG"], &out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG") && err.contains("applying"), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a log file: {err}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is only the JSON");
    assert_eq!(v["commit"], d.v1.as_str());
}

/// `cfsync demo --json`: every field documented (the nested pulls as `cfsync pull`).
#[test]
fn demo_json_is_documented() {
    let out = run_cfsync(["demo", "--json", "--quiet"]);
    assert!(out.status.success(), "{}", describe(&["demo"], &out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("demo --json parses");
    let top: serde_json::Map<String, Value> = v
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), Value::Null))
        .collect();
    assert_documented("demo", &Value::Object(top));
    for pull in ["v1", "v2", "v2_objects"] {
        assert!(v[pull].is_object(), "{pull}: {v}");
        assert_documented("pull", &v[pull]);
    }
}
