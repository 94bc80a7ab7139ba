//! Tests of the test harness itself: each helper of `cfsync_tests` is driven against the
//! real tools (ostree, gpg, nginx, curl), so a broken helper or a missing tool fails here
//! first, with a clear message, rather than inside a cfsync test.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use cfsync_tests::{
    Gpg, LsEntry, NO_ARGS, Nginx, Ostree, TreeBuilder, demo, long_name, require, run_checked,
    run_stdout, tempdir,
};

fn entry<'a>(tree: &'a BTreeMap<String, LsEntry>, path: &str) -> &'a LsEntry {
    match tree.get(path) {
        Some(e) => e,
        None => panic!("{path} missing from the commit; have: {:?}", tree.keys()),
    }
}

/// Builds v1 and v2 of the edge-case tree, commits both (signed) into an archive repo,
/// generates a delta and checks what ostree recorded: modes, owners, symlinks, hard
/// links, names, xattrs, and that the delta really uses bsdiff and rollsum.
#[test]
fn tree_builder_and_ostree_record_every_edge_case() {
    let tmp = tempdir();
    let v1 = TreeBuilder::new(tmp.path().join("v1"));
    v1.edge_cases();
    let v2 = TreeBuilder::copy_of(v1.root(), tmp.path().join("v2"));
    v2.edge_cases_update();

    let gpg = Gpg::new();
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let mut args = gpg.sign_args();
    args.push("--timestamp=2025-01-01T00:00:00Z".into());
    let c1 = repo.commit("test/stable", v1.root(), &args);
    let c2 = repo.commit("test/stable", v2.root(), gpg.sign_args());
    assert_ne!(c1, c2);
    assert_eq!(repo.refs(), vec!["test/stable".to_owned()]);
    assert_eq!(repo.rev_parse("test/stable"), c2);
    assert!(
        repo.show(&c2).contains(&format!("Parent:  {c1}")),
        "v2's parent must be v1"
    );

    let t1 = repo.ls_entries(&c1);
    assert_eq!(entry(&t1, "/empty").size, 0);
    assert_eq!(entry(&t1, "/small-64").size, 64);
    assert_eq!(entry(&t1, "/big.bin").size, 256 * 1024);
    assert_eq!(entry(&t1, "/bin/setuid").mode, 0o4755);
    assert_eq!(entry(&t1, "/bin/setgid").mode, 0o2755);
    assert_eq!(entry(&t1, "/private").mode, 0o600);
    assert_eq!(entry(&t1, "/sticky").mode, 0o1777);
    assert_eq!(entry(&t1, "/sticky").kind, 'd');
    assert_eq!(
        (entry(&t1, "/owned").uid, entry(&t1, "/owned").gid),
        (1000, 1000)
    );
    assert_eq!(entry(&t1, "/link-rel").target.as_deref(), Some("text.txt"));
    assert_eq!(
        entry(&t1, "/link-abs").target.as_deref(),
        Some("/etc/passwd")
    );
    assert_eq!(
        entry(&t1, "/link-long").target.as_ref().map(String::len),
        Some(1000)
    );
    assert_eq!(
        entry(&t1, "/hardlink-a").checksum,
        entry(&t1, "/hardlink-b").checksum
    );
    for name in [
        "café",
        "日本語",
        "with space",
        ".hidden",
        "-dash",
        &long_name(),
    ] {
        assert_eq!(entry(&t1, &format!("/names/{name}")).kind, '-', "{name}");
    }
    assert_eq!(entry(&t1, "/emptydir").kind, 'd');
    assert_eq!(entry(&t1, "/deep/a/b/c/d/e/f/g/h/leaf").size, 5);
    assert_eq!(repo.cat(&c1, "/small-65"), vec![b'5'; 65]);

    let xattrs = repo.ls(&c1, "/xattr-file", ["-X"]);
    assert!(xattrs.contains("(b'user.one', [0x31])"), "{xattrs}");
    assert!(xattrs.contains("b'trusted.cfsync'"), "{xattrs}");
    assert!(xattrs.contains("b'user.binary'"), "{xattrs}");
    let xattrs = repo.ls(&c1, "/link-xattr", ["-X"]);
    assert!(xattrs.contains("b'trusted.link'"), "{xattrs}");

    let t2 = repo.ls_entries(&c2);
    assert!(!t2.contains_key("/text.txt"));
    assert!(t2.contains_key("/added.txt"));
    assert_eq!(entry(&t2, "/link-rel").target.as_deref(), Some("small-64"));
    assert_eq!(entry(&t2, "/bin/exec").mode, 0o700);
    assert_eq!(entry(&t2, "/owned").uid, 1001);
    assert_ne!(
        entry(&t1, "/patchme.bin").checksum,
        entry(&t2, "/patchme.bin").checksum
    );
    assert_eq!(entry(&t2, "/patchme.bin").size, 64 * 1024);
    assert_eq!(entry(&t2, "/big.bin").size, 256 * 1024 + 15);

    // A checkout gives back the same bytes, modes and xattrs.
    let out = tmp.path().join("checkout");
    repo.checkout(&c1, &out, NO_ARGS);
    let back = TreeBuilder::new(&out);
    assert_eq!(back.read("big.bin"), v1.read("big.bin"));
    let mode = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().permissions().mode();
    assert_eq!(mode(&back.path("bin/setuid")) & 0o7777, 0o4755);
    let xattr = run_stdout(
        Command::new(require("getfattr"))
            .args(["--only-values", "-n", "user.one"])
            .arg(back.path("xattr-file")),
    );
    assert_eq!(xattr, "1");

    let report = repo.static_delta_generate(["--from", &c1, "--to", &c2]);
    assert!(report.contains("bsdiff=1 objects"), "{report}");
    // big.bin (appended to) and the files whose metadata alone changed reuse old bytes
    let rollsum: u32 = report
        .lines()
        .find_map(|l| l.strip_prefix("rollsum=")?.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(rollsum >= 1, "{report}");
    repo.static_delta_generate(["--empty", "--to", &c2]);
    repo.summary_update(Some(&gpg));
    repo.fsck();
    let deltas = repo.run(["static-delta", "list"]);
    assert!(deltas.contains(&format!("{c1}-{c2}")), "{deltas}");
}

/// Serves a repository with nginx, fetches its summary with curl, and checks that the
/// access log counts exactly those requests and bytes; then a real `ostree pull` over
/// HTTP with GPG verification of the commit and the summary.
#[test]
fn nginx_serves_a_repo_and_logs_what_it_sent() {
    require("curl");
    let tmp = tempdir();
    let tree = TreeBuilder::new(tmp.path().join("tree"));
    tree.file("usr/bin/tool", b"#!/bin/sh\n")
        .random_file("usr/lib/data.bin", 100_000, 7)
        .symlink("usr/lib/link", "data.bin");
    let gpg = Gpg::new();
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let commit = repo.commit("test/stable", tree.root(), gpg.sign_args());
    repo.summary_update(Some(&gpg));
    let summary_len = std::fs::metadata(repo.path().join("summary"))
        .unwrap()
        .len();
    let sig_len = std::fs::metadata(repo.path().join("summary.sig"))
        .unwrap()
        .len();

    let server = Nginx::serve(repo.path());
    assert_eq!(server.bytes_and_requests(), (0, 0), "log must start empty");

    // Two URLs in one curl run: one keep-alive connection.
    let body = run_checked(
        Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", "-o", "-"])
            .arg(server.url_for("summary.sig"))
            .arg(server.url_for("/summary")),
    )
    .stdout;
    assert_eq!(body, std::fs::read(repo.path().join("summary")).unwrap());
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((log[0].uri.as_str(), log[0].status), ("/summary.sig", 200));
    assert_eq!(
        (log[1].uri.as_str(), log[1].bytes),
        ("/summary", summary_len)
    );
    assert_eq!(log[0].connection, log[1].connection, "keep-alive expected");
    assert_eq!(server.bytes_and_requests(), (summary_len + sig_len, 2));

    // A range request and a 404 are logged as such.
    run_checked(
        Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", "-r", "0-9"])
            .arg(server.url_for("summary")),
    );
    let missing = run_stdout(
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(server.url_for("no/such/file")),
    );
    assert_eq!(missing, "404");
    let log = server.log();
    assert_eq!(log.len(), 4);
    assert_eq!((log[2].status, log[2].bytes), (206, 10));
    assert_eq!(log[2].range.as_deref(), Some("bytes=0-9"));
    assert_eq!((log[3].status, log[3].uri.as_str()), (404, "/no/such/file"));

    server.reset_log();
    assert_eq!(server.bytes_and_requests(), (0, 0));

    // The real ostree pulls it over HTTP and verifies both signatures.
    let key = gpg.write_public_key(tmp.path().join("key.asc"));
    let client = Ostree::init(tmp.path().join("client"), "bare-user");
    client.run([
        "remote",
        "add",
        "--set=gpg-verify-summary=true",
        &format!("--gpg-import={}", key.display()),
        "origin",
        &server.url(),
    ]);
    client.run(["pull", "origin", "test/stable"]);
    assert_eq!(client.rev_parse("origin:test/stable"), commit);
    let (bytes, requests) = server.bytes_and_requests();
    assert!(
        requests >= 5,
        "summary, sig, commit, dirtree, files: {requests}"
    );
    assert!(
        bytes > 100_000,
        "the 100 kB file must have been sent: {bytes}"
    );
    let log = server.log();
    assert!(
        log.iter().all(|e| e.status == 200 || e.status == 404),
        "{log:?}"
    );
}

/// A server whose extra config breaks a path answers 500 there.
#[test]
fn nginx_extra_config_simulates_failures() {
    require("curl");
    let tmp = tempdir();
    let tree = TreeBuilder::new(tmp.path());
    tree.file("ok", b"fine\n")
        .file("deltas/x", b"never served\n");
    let server = Nginx::serve_with(tree.root(), "location /deltas/ { return 500; }");
    let code = |p: &str| {
        run_stdout(
            Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(server.url_for(p)),
        )
    };
    assert_eq!(code("ok"), "200");
    assert_eq!(code("deltas/x"), "500");
    let log = server.log();
    assert_eq!(
        log.iter().map(|e| e.status).collect::<Vec<_>>(),
        vec![200, 500]
    );
}

/// Two servers run side by side on different ports, each with its own log.
#[test]
fn nginx_servers_are_independent() {
    require("curl");
    let tmp = tempdir();
    let tree = TreeBuilder::new(tmp.path());
    tree.file("a", b"a\n");
    let s1 = Nginx::serve(tree.root());
    let s2 = Nginx::serve(tree.root());
    assert_ne!(s1.port(), s2.port());
    run_checked(
        Command::new("curl")
            .args(["-fsS", "-o", "/dev/null"])
            .arg(s1.url_for("a")),
    );
    assert_eq!(s1.bytes_and_requests(), (2, 1));
    assert_eq!(s2.bytes_and_requests(), (0, 0));
    let port = s1.port();
    drop(s1);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nginx must be stopped when dropped"
    );
}

/// A detached signature made by the helper verifies with gpg, and fails once the data
/// changes.
#[test]
fn gpg_signs_and_exports() {
    let gpg = Gpg::new();
    assert_eq!(gpg.key_id().len(), 40, "{}", gpg.key_id());
    assert!(
        gpg.public_key_armored()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    assert!(!gpg.public_key_binary().is_empty());
    let tmp = tempdir();
    let data = tmp.path().join("data");
    let sig = tmp.path().join("data.sig");
    std::fs::write(&data, b"signed bytes").unwrap();
    std::fs::write(&sig, gpg.sign_detached(b"signed bytes")).unwrap();
    run_checked(gpg.command().arg("--verify").arg(&sig).arg(&data));
    std::fs::write(&data, b"signed bytez").unwrap();
    let out = cfsync_tests::output(gpg.command().arg("--verify").arg(&sig).arg(&data));
    assert!(!out.status.success(), "a changed file must not verify");

    let second = gpg.add_key("second <second@example.invalid>", "rsa2048");
    assert_ne!(second, gpg.key_id());
    let listed = run_stdout(gpg.command().args(["--list-keys", "--with-colons"]));
    assert!(listed.contains(&second) && listed.contains(gpg.key_id()));
}

/// The bundled demo repository is what demo/README.md says: two signed commits, the ref
/// at v2, deltas v1 -> v2 (with bsdiff) and empty -> v1, a signed summary; and the real
/// ostree pulls it over HTTP, verifying everything against demo.asc.
#[test]
fn demo_repository_is_valid_and_pullable() {
    let d = demo();
    let repo = Ostree::open(&d.repo);
    assert_eq!(repo.refs(), vec![d.refname.clone()]);
    assert_eq!(repo.rev_parse(&d.refname), d.v2);
    assert!(repo.show(&d.v2).contains(&format!("Parent:  {}", d.v1)));
    let deltas = repo.run(["static-delta", "list"]);
    assert!(deltas.contains(&format!("{}-{}", d.v1, d.v2)), "{deltas}");
    assert!(deltas.lines().any(|l| l.trim() == d.v1), "{deltas}");
    let t1 = repo.ls_entries(&d.v1);
    let t2 = repo.ls_entries(&d.v2);
    assert!(t1.values().filter(|e| e.kind == '-').count() >= 300);
    assert_eq!(entry(&t1, "/usr/sbin/demo-helper").mode, 0o4755);
    assert_eq!(
        entry(&t1, "/usr/lib/demo/current").target.as_deref(),
        Some("releases/1")
    );
    assert_eq!(
        entry(&t2, "/usr/lib/demo/current").target.as_deref(),
        Some("releases/2")
    );
    assert_eq!(entry(&t2, "/usr/bin/demo-tool-07").mode, 0o750);

    let tmp = tempdir();
    let server = Nginx::serve(&d.repo);
    let client = Ostree::init(tmp.path().join("client"), "bare-user");
    client.run([
        "remote",
        "add",
        "--set=gpg-verify-summary=true",
        &format!("--gpg-import={}", d.public_key.display()),
        "demo",
        &server.url(),
    ]);
    // v1 through the scratch delta, then v2 through the v1 -> v2 delta.
    client.run(["pull", "demo", &format!("{}@{}", d.refname, d.v1)]);
    server.reset_log();
    client.run(["pull", "demo", &d.refname]);
    assert_eq!(client.rev_parse(&format!("demo:{}", d.refname)), d.v2);
    let log = server.log();
    assert!(
        log.iter()
            .any(|e| e.uri.starts_with("/deltas/") && e.uri.ends_with("/superblock")),
        "the update must use the delta: {log:?}"
    );
    client.fsck();
}

/// `require` fails (never skips) with the install command.
#[test]
#[should_panic(expected = "install with `apt-get install -y cfsync-no-such-tool`")]
fn require_fails_with_install_hint() {
    require("cfsync-no-such-tool");
}

/// The `cfsync` binary is built next to the tests and runs.
#[test]
fn cfsync_binary_is_built() {
    let bin = cfsync_tests::cfsync_bin();
    assert!(bin.ends_with("cfsync"), "{}", bin.display());
    let out = cfsync_tests::run_cfsync(["--help"]);
    assert!(
        out.status.success(),
        "cfsync --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The mkfixture fixture (`$CFSYNC_FIXTURE`, or built on first use) is complete: the
/// ref points at v2, v1 is its parent, the delta v1 -> v2 exists and the trees are there.
#[test]
fn fixture_is_complete() {
    let f = cfsync_tests::fixture();
    let repo = Ostree::open(&f.repo);
    assert_eq!(repo.rev_parse(&f.refname), f.v2);
    assert!(repo.show(&f.v2).contains(&format!("Parent:  {}", f.v1)));
    let deltas = repo.run(["static-delta", "list"]);
    assert!(deltas.contains(&format!("{}-{}", f.v1, f.v2)), "{deltas}");
    assert!(f.public_key.is_file());
    assert!(f.trees.iter().all(|t| t.join("usr/bin").is_dir()));
}
