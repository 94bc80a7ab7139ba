//! `cfsync summary update` against the real `ostree`: repositories made by `ostree commit`
//! (archive mode) with static deltas from `ostree static-delta generate`. The summary and
//! delta indexes cfsync writes must equal, byte for byte, what `ostree summary -u` writes
//! for a copy of the same repository once `ostree.summary.last-modified` (the clock) is
//! the same; with a collection ID (where ostree also makes an `ostree-metadata` commit,
//! which cfsync does not) they are compared field by field. Stock `ostree pull` verifies
//! cfsync's GPG and ed25519 signatures and uses the deltas through nginx; `cfsync remote
//! refs` and `cfsync pull` read the result.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_formats::delta::DeltaName;
use cfsync_formats::metadata::{SUMMARY_LAST_MODIFIED, Variant};
use cfsync_formats::summary::{SummaryRef, SummarySigRef};
use cfsync_tests::{
    Gpg, Nginx, Ostree, TreeBuilder, cfsync_command, describe, output, run_cfsync_ok, run_checked,
    tempdir,
};
use serde_json::Value as Json;
use tempfile::TempDir;

const REF: &str = "os/x86_64/stable";

/// A publisher's archive repository: `REF` at v1 then v2 (GPG-signed commits, v1 with a
/// `version`), a second ref, and the deltas v1→v2 and scratch→v2.
struct Publisher {
    tmp: TempDir,
    gpg: Gpg,
    repo: Ostree,
    v1: String,
    v2: String,
}

impl Publisher {
    fn new(collection_id: Option<&str>) -> Self {
        let tmp = tempdir();
        let gpg = Gpg::new();
        let path = tmp.path().join("repo");
        let repo = match collection_id {
            None => Ostree::init(&path, "archive"),
            Some(id) => {
                let o = Ostree::open(&path);
                fs::create_dir_all(&path).unwrap();
                o.run(["init", "--mode=archive", &format!("--collection-id={id}")]);
                o
            }
        };
        let tree = TreeBuilder::new(tmp.path().join("tree"));
        tree.edge_cases();
        let mut args = gpg.sign_args();
        args.push("--add-metadata-string=version=1.0".into());
        let v1 = repo.commit(REF, tree.root(), &args);
        tree.edge_cases_update();
        let mut args = gpg.sign_args();
        args.push("--add-metadata-string=version=2.0".into());
        let v2 = repo.commit(REF, tree.root(), &args);
        repo.commit("os/x86_64/devel", tree.root(), gpg.sign_args());
        repo.static_delta_generate(["--from", &v1, "--to", &v2]);
        repo.static_delta_generate(["--empty", "--to", &v2]);
        Publisher {
            tmp,
            gpg,
            repo,
            v1,
            v2,
        }
    }

    /// A copy of the repository, at `name`.
    fn copy(&self, name: &str) -> Ostree {
        let dst = self.tmp.path().join(name);
        run_checked(Command::new("cp").arg("-a").arg(self.repo.path()).arg(&dst));
        Ostree::open(dst)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
}

fn summary_update<S: AsRef<OsStr>>(repo: &Path, extra: &[S]) -> String {
    let mut cmd = cfsync_command();
    cmd.args(["summary", "update"]).arg(repo).args(extra);
    String::from_utf8_lossy(&run_checked(&mut cmd).stderr).into_owned()
}

/// `summary` with `ostree.summary.last-modified` set to `other`'s, written back in place.
fn with_last_modified_of(summary: &[u8], other: &[u8]) -> Vec<u8> {
    let theirs = SummaryRef::from_bytes(other).unwrap();
    let mut ours = SummaryRef::from_bytes(summary).unwrap().to_owned().unwrap();
    let t = theirs.last_modified().unwrap().unwrap();
    ours.metadata
        .insert(SUMMARY_LAST_MODIFIED, Variant::u64_be(t))
        .unwrap();
    ours.to_bytes().unwrap()
}

/// Every file under `repo/delta-indexes`, relative path → bytes.
fn delta_indexes(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let top = repo.join("delta-indexes");
    for d in fs::read_dir(&top).into_iter().flatten() {
        let d = d.unwrap();
        for f in fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            let rel = f.path().strip_prefix(&top).unwrap().display().to_string();
            out.insert(rel, fs::read(f.path()).unwrap());
        }
    }
    out
}

fn assert_same_as_ostree(ostree: &Ostree, ours: &Ostree) {
    let theirs = fs::read(ostree.path().join("summary")).unwrap();
    let mine = fs::read(ours.path().join("summary")).unwrap();
    assert_eq!(theirs.len(), mine.len(), "summary sizes differ");
    assert!(
        with_last_modified_of(&mine, &theirs) == theirs,
        "summaries differ beyond last-modified:\nostree: {}\ncfsync: {}",
        ostree.run(["summary", "--raw"]),
        ours.run(["summary", "--raw"])
    );
    let (a, b) = (delta_indexes(ostree.path()), delta_indexes(ours.path()));
    assert!(!a.is_empty());
    assert_eq!(a, b, "delta-indexes differ");
}

#[test]
fn summary_and_indexes_equal_ostree_summary_u() {
    let p = Publisher::new(None);
    // A stale index (no delta ends at that commit) that both must remove.
    let stale = DeltaName::new(None, p.v1.parse().unwrap()).index_path();
    let by_ostree = p.copy("by-ostree");
    let by_cfsync = p.copy("by-cfsync");
    for o in [&by_ostree, &by_cfsync] {
        let f = o.path().join(&stale);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, b"stale").unwrap();
    }
    by_ostree.run(["summary", "-u"]);
    let report = summary_update(by_cfsync.path(), &[] as &[&str]);
    assert!(
        report.contains("2 refs") && report.contains("2 static deltas"),
        "{report}"
    );
    assert_same_as_ostree(&by_ostree, &by_cfsync);
    assert!(!by_cfsync.path().join(&stale).exists());
    assert!(!by_cfsync.path().join("summary.sig").exists());
    let config = fs::read_to_string(by_cfsync.path().join("config")).unwrap();
    assert!(config.contains("indexed-deltas=true"), "{config}");

    // ostree reads it: refs, the version, both deltas.
    let v = by_cfsync.run(["summary", "-v"]);
    for needle in [REF, "os/x86_64/devel", &p.v2, "2.0", "ostree.static-deltas"] {
        assert!(
            v.contains(needle),
            "`ostree summary -v` lacks {needle}:\n{v}"
        );
    }
}

#[test]
fn many_refs_and_deltas_equal_ostree_summary_u() {
    // More than 8 deltas and refs: GLib's hash table grows, which reorders entries.
    let tmp = tempdir();
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let tree = TreeBuilder::new(tmp.path().join("tree"));
    let mut commits = Vec::new();
    for i in 0..11 {
        tree.file("counter", format!("{i}\n"));
        tree.file(&format!("f{i}"), vec![i as u8; 100 + i]);
        commits.push(repo.commit(
            &format!("r/{i:02}"),
            tree.root(),
            ["--timestamp=2025-01-01T00:00:00Z"],
        ));
    }
    for w in commits.windows(2) {
        repo.static_delta_generate(["--from", &w[0], "--to", &w[1]]);
    }
    repo.static_delta_generate(["--empty", "--to", &commits[10]]);
    let dst = tmp.path().join("copy");
    run_checked(Command::new("cp").arg("-a").arg(repo.path()).arg(&dst));
    let copy = Ostree::open(dst);
    repo.run(["summary", "-u"]);
    summary_update(copy.path(), &[] as &[&str]);
    assert_same_as_ostree(&repo, &copy);
    let s = fs::read(copy.path().join("summary")).unwrap();
    let s = SummaryRef::from_bytes(&s).unwrap();
    assert_eq!(s.refs().len(), 11);
    assert_eq!(s.static_deltas().unwrap().unwrap().len(), 11);
}

#[test]
fn collection_id_summary_matches_ostree_field_by_field() {
    let p = Publisher::new(Some("org.example.Os"));
    // A mirrored ref of another collection.
    let mirror = p
        .repo
        .path()
        .join("refs/mirrors/org.example.Other/other/ref");
    fs::create_dir_all(mirror.parent().unwrap()).unwrap();
    fs::write(&mirror, format!("{}\n", p.v1)).unwrap();
    let by_ostree = p.copy("by-ostree");
    let by_cfsync = p.copy("by-cfsync");
    by_ostree.run(["summary", "-u"]);
    summary_update(by_cfsync.path(), &[] as &[&str]);
    let theirs = fs::read(by_ostree.path().join("summary")).unwrap();
    let ours = fs::read(by_cfsync.path().join("summary")).unwrap();
    let (t, o) = (
        SummaryRef::from_bytes(&theirs).unwrap(),
        SummaryRef::from_bytes(&ours).unwrap(),
    );
    // ostree also commits `ostree-metadata` for a repository with a collection ID.
    let t_refs: Vec<_> = t
        .refs()
        .iter()
        .filter(|r| r.name != "ostree-metadata")
        .map(|r| r.to_owned().unwrap())
        .collect();
    let o_refs: Vec<_> = o.refs().iter().map(|r| r.to_owned().unwrap()).collect();
    assert_eq!(t_refs, o_refs);
    assert_eq!(o_refs.len(), 2);
    assert_eq!(o.collection_id().unwrap(), Some("org.example.Os"));
    assert_eq!(t.collection_id().unwrap(), o.collection_id().unwrap());
    let map = |s: &SummaryRef<'_>| -> Vec<(String, Vec<String>)> {
        s.collection_map()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c.collection_id.to_owned(),
                    c.refs
                        .iter()
                        .map(|r| format!("{} {}", r.name, r.checksum))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(map(&t), map(&o));
    assert_eq!(
        map(&o),
        vec![(
            "org.example.Other".to_owned(),
            vec![format!("other/ref {}", p.v1)]
        )]
    );
    // Every other key: same value (last-modified aside), same order.
    let keys = |s: &SummaryRef<'_>| -> Vec<(String, Variant)> {
        s.metadata()
            .iter()
            .map(|e| e.unwrap())
            .filter(|(k, _)| *k != SUMMARY_LAST_MODIFIED)
            .map(|(k, v)| (k.to_owned(), Variant::from_value(&v)))
            .collect()
    };
    assert_eq!(keys(&t), keys(&o));
    assert_eq!(
        delta_indexes(by_ostree.path()),
        delta_indexes(by_cfsync.path())
    );
    let v = by_cfsync.run(["summary", "-v"]);
    assert!(
        v.contains("org.example.Other") && v.contains("other/ref"),
        "{v}"
    );
}

/// A bare-user repository pulling from `url` with stock ostree; `remote_args` go to
/// `ostree remote add`.
fn ostree_client(dir: &Path, url: &str, remote_args: &[String]) -> Ostree {
    let c = Ostree::init(dir, "bare-user");
    let mut cmd = c.command();
    cmd.args(["remote", "add"])
        .args(remote_args)
        .args(["origin", url]);
    run_checked(&mut cmd);
    c
}

fn ostree_pull(c: &Ostree, rev: &str) -> Output {
    output(c.command().args(["pull", "origin", rev]))
}

fn delta_requests(server: &Nginx) -> Vec<String> {
    server
        .log()
        .into_iter()
        .filter(|e| e.uri.starts_with("/deltas/") && e.status == 200)
        .map(|e| e.uri)
        .collect()
}

#[test]
fn stock_ostree_pull_verifies_gpg_summary_and_uses_deltas() {
    let p = Publisher::new(None);
    let server = Nginx::serve(p.repo.path());
    let key = p.gpg.write_public_key(p.path("key.asc"));
    let remote_args = vec![
        format!("--gpg-import={}", key.display()),
        "--set=gpg-verify-summary=true".to_owned(),
    ];

    // Unsigned: a client that verifies the summary refuses it.
    summary_update(p.repo.path(), &[] as &[&str]);
    let c0 = ostree_client(&p.path("client0"), &server.url(), &remote_args);
    let out = ostree_pull(&c0, REF);
    assert!(
        !out.status.success(),
        "pulled an unsigned summary: {}",
        describe(&out)
    );

    let mut args: Vec<std::ffi::OsString> = vec!["--gpg-sign".into(), p.gpg.key_id().into()];
    args.push("--gpg-homedir".into());
    args.push(p.gpg.home().into());
    let report = summary_update(p.repo.path(), &args);
    assert!(report.contains("signed summary: gpg key"), "{report}");
    let s = fs::metadata(p.repo.path().join("summary")).unwrap();
    let sig = fs::metadata(p.repo.path().join("summary.sig")).unwrap();
    assert_eq!(s.modified().unwrap(), sig.modified().unwrap());

    // From scratch: the scratch delta.
    let c = ostree_client(&p.path("client1"), &server.url(), &remote_args);
    server.reset_log();
    let out = ostree_pull(&c, &format!("{REF}@{}", p.v1));
    assert!(out.status.success(), "ostree pull v1: {}", describe(&out));
    server.reset_log();
    let out = ostree_pull(&c, REF);
    assert!(out.status.success(), "ostree pull v2: {}", describe(&out));
    let from = DeltaName::new(Some(p.v1.parse().unwrap()), p.v2.parse().unwrap());
    let reqs = delta_requests(&server);
    assert!(
        reqs.iter()
            .any(|u| u.starts_with(&format!("/{}/", from.dir()))),
        "ostree pull v1→v2 fetched no part of the v1→v2 delta: {reqs:?}"
    );
    assert_eq!(c.rev_parse(&format!("origin:{REF}")), p.v2);
    c.fsck();

    let c2 = ostree_client(&p.path("client2"), &server.url(), &remote_args);
    server.reset_log();
    let out = ostree_pull(&c2, REF);
    assert!(out.status.success(), "ostree pull: {}", describe(&out));
    let scratch = DeltaName::new(None, p.v2.parse().unwrap());
    let reqs = delta_requests(&server);
    assert!(
        reqs.iter()
            .any(|u| u.starts_with(&format!("/{}/", scratch.dir()))),
        "a fresh ostree pull fetched no part of the scratch delta: {reqs:?}"
    );
    c2.fsck();

    // A damaged signature is refused.
    let sig_path = p.repo.path().join("summary.sig");
    let mut bytes = fs::read(&sig_path).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 0x55;
    fs::write(&sig_path, &bytes).unwrap();
    let c3 = ostree_client(&p.path("client3"), &server.url(), &remote_args);
    let out = ostree_pull(&c3, REF);
    assert!(
        !out.status.success(),
        "pulled with a damaged summary.sig: {}",
        describe(&out)
    );
}

/// Whether PyNaCl (an ed25519 implementation independent of cfsync's, through Debian's
/// `/usr/bin/python3` and `python3-nacl`) accepts `sig` over the file `data`.
fn pynacl_verifies(public_b64: &str, data: &Path, sig: &[u8]) -> bool {
    let script = "import sys, base64, nacl.signing, nacl.exceptions\n\
         k = nacl.signing.VerifyKey(base64.b64decode(sys.argv[1]))\n\
         try:\n    k.verify(open(sys.argv[2], 'rb').read(), bytes.fromhex(sys.argv[3])); print('ok')\n\
         except nacl.exceptions.BadSignatureError:\n    print('bad')";
    let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
    let mut last = None;
    for py in ["python3", "/usr/bin/python3"] {
        let out = output(
            Command::new(py)
                .args(["-c", script, public_b64])
                .arg(data)
                .arg(&hex),
        );
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim() == "ok";
        }
        last = Some(out);
    }
    panic!(
        "no python3 with PyNaCl (apt-get install python3-nacl): {}",
        describe(&last.unwrap())
    );
}

fn keygen(path: &Path) -> String {
    run_cfsync_ok([
        OsStr::new("sign"),
        OsStr::new("keygen"),
        OsStr::new("--secret-key"),
        path.as_os_str(),
    ])
    .trim()
    .to_owned()
}

/// Debian's ostree 2022.7 is built without ed25519 ("Requested signature type is not
/// implemented"), so the signature is checked by PyNaCl and by a cfsync client with
/// `sign-verify-summary`; where the installed ostree has `sign-ed25519`, stock `ostree
/// pull` with `sign-verify=true` checks it too.
#[test]
fn ed25519_signature_verified() {
    let p = Publisher::new(None);
    let secret = p.path("ed25519.secret");
    let public = keygen(&secret);
    let other = keygen(&p.path("other.secret"));
    let report = summary_update(p.repo.path(), &[OsStr::new("--sign"), secret.as_os_str()]);
    assert!(report.contains("signed summary: ed25519 key"), "{report}");
    let sig_bytes = fs::read(p.repo.path().join("summary.sig")).unwrap();
    let sig = SummarySigRef::from_bytes(&sig_bytes).unwrap();
    assert!(sig.gpgsigs().unwrap().is_none());
    let sigs = sig.ed25519().unwrap().unwrap();
    assert_eq!(sigs.len(), 1);
    let summary = p.repo.path().join("summary");
    assert!(pynacl_verifies(&public, &summary, sigs[0]));
    assert!(!pynacl_verifies(&other, &summary, sigs[0]));

    let server = Nginx::serve(p.repo.path());
    let store = p.path("store");
    let empty = p.path("empty");
    fs::create_dir_all(&empty).unwrap();
    let client = |store: &Path, args: &[&str]| -> Output {
        let mut cmd = cfsync_command();
        cmd.env("OSTREE_GPG_HOME", &empty)
            .arg("--repo")
            .arg(store)
            .arg("--remotes-dir")
            .arg(&empty)
            .args(args);
        output(&mut cmd)
    };
    for (dir, key) in [(&store, &public), (&p.path("store2"), &other)] {
        let out = client(
            dir,
            &[
                "remote",
                "add",
                "origin",
                &server.url(),
                "--no-gpg-verify",
                "--set=sign-verify-summary=ed25519",
                &format!("--set=verification-ed25519-key={key}"),
            ],
        );
        assert!(out.status.success(), "{}", describe(&out));
    }
    let out = client(&store, &["remote", "refs", "origin"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(REF));
    let out = client(&p.path("store2"), &["remote", "refs", "origin"]);
    assert!(
        !out.status.success(),
        "read a summary signed by another key: {}",
        describe(&out)
    );

    let features =
        String::from_utf8_lossy(&run_checked(Command::new("ostree").arg("--version")).stdout)
            .into_owned();
    if features.contains("sign-ed25519") {
        let args = |key: &str| {
            vec![
                "--no-gpg-verify".to_owned(),
                format!("--sign-verify=ed25519=inline:{key}"),
                "--set=sign-verify-summary=true".to_owned(),
            ]
        };
        let c = ostree_client(&p.path("client"), &server.url(), &args(&public));
        let out = ostree_pull(&c, REF);
        assert!(out.status.success(), "ostree pull: {}", describe(&out));
        let c2 = ostree_client(&p.path("client2"), &server.url(), &args(&other));
        assert!(!ostree_pull(&c2, REF).status.success());
    }
}

#[test]
fn cfsync_reads_and_pulls_through_its_summary() {
    let p = Publisher::new(None);
    let args: Vec<std::ffi::OsString> = vec![
        "--gpg-sign".into(),
        p.gpg.key_id().into(),
        "--gpg-homedir".into(),
        p.gpg.home().into(),
    ];
    summary_update(p.repo.path(), &args);
    let server = Nginx::serve(p.repo.path());
    let key = p.gpg.write_public_key(p.path("key.asc"));
    let store = p.path("store");
    let empty = p.path("empty");
    fs::create_dir_all(&empty).unwrap();
    let cfsync = |a: &[&OsStr]| -> String {
        let mut cmd = cfsync_command();
        cmd.env("OSTREE_GPG_HOME", &empty)
            .arg("--repo")
            .arg(&store)
            .arg("--remotes-dir")
            .arg(&empty)
            .args(a);
        String::from_utf8_lossy(&run_checked(&mut cmd).stdout).into_owned()
    };
    let url = server.url();
    cfsync(&[
        "remote".as_ref(),
        "add".as_ref(),
        "origin".as_ref(),
        url.as_ref(),
        OsStr::new("--gpg-import"),
        key.as_os_str(),
        "--set=gpg-verify-summary=true".as_ref(),
    ]);
    let refs = cfsync(&["remote".as_ref(), "refs".as_ref(), "origin".as_ref()]);
    assert!(
        refs.contains(REF) && refs.contains("os/x86_64/devel") && refs.contains(&p.v2),
        "{refs}"
    );

    let v1 = cfsync(&[
        "pull".as_ref(),
        "--json".as_ref(),
        "--commit".as_ref(),
        p.v1.as_ref(),
        "origin".as_ref(),
        REF.as_ref(),
    ]);
    let _: Json = serde_json::from_str(&v1).unwrap();
    server.reset_log();
    let v2: Json = serde_json::from_str(&cfsync(&[
        "pull".as_ref(),
        "--json".as_ref(),
        "origin".as_ref(),
        REF.as_ref(),
    ]))
    .unwrap();
    assert!(
        !v2["delta"].is_null(),
        "cfsync did not use the v1→v2 delta: {v2}"
    );
    assert!(!delta_requests(&server).is_empty());
    let shown: Json =
        serde_json::from_str(&cfsync(&["show".as_ref(), REF.as_ref(), "--json".as_ref()])).unwrap();
    assert_eq!(shown["commit"].as_str(), Some(p.v2.as_str()));
}

/// ostree's lock (an open-file-description write lock on `.lock`, as `ostree prune`
/// takes it) held by another process: `cfsync summary update` waits
/// `core.lock-timeout-secs`, then fails without writing; once released, it succeeds.
#[test]
fn waits_for_ostree_repository_lock() {
    let p = Publisher::new(None);
    let config = p.repo.path().join("config");
    let mut text = fs::read_to_string(&config).unwrap();
    text = text.replace("[core]\n", "[core]\nlock-timeout-secs=1\n");
    fs::write(&config, text).unwrap();
    let script = "import fcntl, struct, sys\n\
        f = open(sys.argv[1], 'a+')\n\
        fcntl.fcntl(f, 38, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0))\n\
        print('locked', flush=True)\n\
        sys.stdin.read()";
    let mut holder = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(p.repo.path().join(".lock"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let mut cmd = cfsync_command();
    cmd.args(["summary", "update"]).arg(p.repo.path());
    let out = output(&mut cmd);
    assert!(
        !out.status.success(),
        "updated a locked repository: {}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked by another process"), "{err}");
    assert!(!p.repo.path().join("summary").exists());
    drop(holder.stdin.take());
    holder.wait().unwrap();
    summary_update(p.repo.path(), &[] as &[&str]);
    assert!(p.repo.path().join("summary").exists());
}
