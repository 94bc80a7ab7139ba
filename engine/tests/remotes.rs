//! Remote configuration against the real `ostree` CLI: files written by `ostree remote add`
//! (repo `config` and `remotes.d`) are read field by field, files written by cfsync are
//! read by `ostree` (`remote list`, `remote show-url`, `config get`, `pull`), GLib's key-file
//! syntax and escapes are compared with what `ostree` accepts and returns, and the store's
//! add/set/delete/precedence rules are checked on disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_engine::remotes::{
    KeyFile, KeyFileError, Remote, RemoteError, RemoteOrigin, RemoteStore, SignVerify, UrlSpec,
    parse_set_argument, parse_url_spec, validate_collection_id, validate_remote_name,
};
use cfsync_formats::keyfile::{escape_list, escape_value, unescape_list, unescape_value};
use tempfile::TempDir;

/// One inline ed25519 public key in the format libostree expects (32 bytes, base64).
const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn run(args: &[&str]) -> Output {
    Command::new("ostree")
        .args(args)
        .output()
        .expect("the ostree CLI must be installed")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "ostree {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "ostree {args:?} unexpectedly succeeded"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn repo_arg(repo: &Path) -> String {
    format!("--repo={}", repo.display())
}

fn init_repo(dir: &Path, mode: &str) -> PathBuf {
    let repo = dir.join(format!("repo-{mode}"));
    fs::create_dir_all(dir).unwrap();
    ok(&["init", &repo_arg(&repo), &format!("--mode={mode}")]);
    repo
}

/// A sysroot whose remotes libostree keeps in `<sysroot>/etc/ostree/remotes.d`: `ostree
/// admin init-fs`, plus a `sysroot` directory so that libostree does not take it for the
/// physical root (`ostree-sysroot.c` sets `is_physical` only without it), in which case
/// `get_remotes_d_dir` in `ostree-repo.c` uses `<sysroot>/etc/ostree/remotes.d` and the
/// system-repo default `core.add-remotes-config-dir=true` applies.
fn init_sysroot(dir: &Path) -> (PathBuf, PathBuf) {
    let sysroot = dir.join("sysroot");
    fs::create_dir_all(&sysroot).unwrap();
    ok(&["admin", "init-fs", s(&sysroot)]);
    fs::create_dir_all(sysroot.join("sysroot")).unwrap();
    let remotes_d = sysroot.join("etc/ostree/remotes.d");
    (sysroot, remotes_d)
}

/// An unsigned archive repository with one commit on `main`, served as `file://`.
fn unsigned_source_repo(dir: &Path) -> PathBuf {
    let repo = init_repo(dir, "archive");
    let tree = dir.join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("hello"), "hello\n").unwrap();
    ok(&[
        "commit",
        &repo_arg(&repo),
        "-b",
        "main",
        &format!("--tree=dir={}", tree.display()),
        "-s",
        "test",
    ]);
    repo
}

#[test]
fn reads_repo_config_written_by_ostree_remote_add() {
    let tmp = TempDir::new().unwrap();
    let repo = init_repo(tmp.path(), "archive");
    let r = repo_arg(&repo);
    ok(&[
        "remote",
        "add",
        &r,
        "--set=gpg-verify-summary=true",
        "--no-gpg-verify",
        "foo",
        "http://x/",
        "br1",
        "br2",
    ]);
    // Exists already: nothing changes.
    ok(&["remote", "add", &r, "--if-not-exists", "foo", "http://y/"]);
    let title = " lead; semi\\back\ttab";
    ok(&[
        "remote",
        "add",
        &r,
        "--contenturl=mirrorlist=http://m/list",
        "--collection-id=org.example.Os",
        "--set=sign-verify=ed25519",
        &format!("--set=verification-ed25519-key={KEY}"),
        "--set=verification-ed25519-file=/etc/keys.ed25519",
        "--set=gpgkeypath=/a.gpg,/b.gpg",
        &format!("--set=xa.title={title}"),
        "--set=tls-permissive=1",
        "bar",
        "mirrorlist=http://m/meta",
    ]);

    let config_path = repo.join("config");
    let config = fs::read_to_string(&config_path).unwrap();
    let store = RemoteStore::new(tmp.path().join("state"), vec![]).with_ostree_repo(&repo);
    let listed = store.list_with_origin().unwrap();
    let names: Vec<&str> = listed.iter().map(|(r, _)| r.name.as_str()).collect();
    assert_eq!(names, ["bar", "foo"]);
    for (_, origin) in &listed {
        assert_eq!(origin, &RemoteOrigin::OstreeRepoConfig(config_path.clone()));
        assert!(!origin.is_writable());
    }

    let foo = store.get("foo").unwrap().unwrap();
    assert_eq!(foo.url.as_deref(), Some("http://x/"));
    assert_eq!(foo.contenturl, None);
    assert!(!foo.gpg_verify);
    assert!(foo.gpg_verify_summary);
    assert_eq!(foo.sign_verify, SignVerify::Disabled);
    assert_eq!(foo.sign_verify_summary, SignVerify::Disabled);
    assert_eq!(foo.ed25519_key, None);
    assert_eq!(foo.ed25519_file, None);
    assert_eq!(foo.collection_id, None);
    assert_eq!(foo.branches, ["br1", "br2"]);
    assert!(foo.gpgkeypath.is_empty());
    assert!(foo.extra.is_empty());
    assert_eq!(foo.url_spec().unwrap(), UrlSpec::Direct("http://x/".into()));

    let bar = store.get("bar").unwrap().unwrap();
    assert_eq!(bar.url.as_deref(), Some("mirrorlist=http://m/meta"));
    assert_eq!(bar.contenturl.as_deref(), Some("mirrorlist=http://m/list"));
    assert_eq!(
        bar.url_spec().unwrap(),
        UrlSpec::Mirrorlist("http://m/meta".into())
    );
    assert_eq!(
        bar.content_url_spec().unwrap(),
        UrlSpec::Mirrorlist("http://m/list".into())
    );
    assert!(bar.gpg_verify, "gpg-verify absent means true");
    assert!(
        !bar.gpg_verify_summary,
        "gpg-verify-summary absent means false"
    );
    assert_eq!(bar.sign_verify, SignVerify::Types(vec!["ed25519".into()]));
    assert_eq!(bar.sign_verify_summary, SignVerify::Disabled);
    assert_eq!(bar.ed25519_key.as_deref(), Some(KEY));
    assert_eq!(
        bar.ed25519_file.as_deref(),
        Some(Path::new("/etc/keys.ed25519"))
    );
    assert_eq!(bar.collection_id.as_deref(), Some("org.example.Os"));
    assert!(bar.branches.is_empty());
    assert_eq!(
        bar.gpgkeypath,
        [PathBuf::from("/a.gpg"), PathBuf::from("/b.gpg")]
    );
    assert_eq!(
        bar.extra.keys().collect::<Vec<_>>(),
        ["tls-permissive", "xa.title"]
    );
    assert_eq!(bar.extra_bool("tls-permissive").unwrap(), Some(true));
    assert_eq!(
        bar.extra_string("xa.title").unwrap().as_deref(),
        Some(title)
    );
    // The same string `ostree config get` returns.
    let got = ok(&["config", &r, "get", "remote \"bar\".xa.title"]);
    assert_eq!(got, format!("{title}\n"));

    // `ostree remote list -u` agrees on names and URLs.
    let listing = ok(&["remote", "list", "-u", &r]);
    let theirs: Vec<(String, String)> = listing
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            (it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
        })
        .collect();
    let ours: Vec<(String, String)> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.url.unwrap()))
        .collect();
    assert_eq!(theirs, ours);

    // Parsing and writing back leaves ostree's file byte for byte the same, also after
    // writing every remote back into it unchanged.
    let mut kf = KeyFile::parse(&config).unwrap();
    assert_eq!(kf.to_data(), config);
    for remote in Remote::all_from_keyfile(&kf.clone()).unwrap() {
        remote.write_to_keyfile(&mut kf).unwrap();
    }
    assert_eq!(kf.to_data(), config);

    // The repository's remotes are read-only for cfsync.
    assert!(matches!(
        store.delete("foo"),
        Err(RemoteError::ReadOnly { .. })
    ));
    assert!(matches!(
        store.set("foo", "gpg-verify", "true"),
        Err(RemoteError::ReadOnly { .. })
    ));
    assert_eq!(fs::read_to_string(&config_path).unwrap(), config);
}

#[test]
fn reads_remotes_d_written_by_ostree_remote_add() {
    let tmp = TempDir::new().unwrap();
    let (sysroot, remotes_d) = init_sysroot(tmp.path());
    let sr = format!("--sysroot={}", sysroot.display());
    ok(&[
        "remote",
        "add",
        &sr,
        "--no-gpg-verify",
        "--set=gpg-verify-summary=true",
        "--collection-id=org.example.Sys",
        "sysr",
        "https://s.example/repo/",
        "b1",
    ]);
    ok(&[
        "remote",
        "add",
        &sr,
        "--if-not-exists",
        "sysr",
        "http://other/",
    ]);
    let conf = remotes_d.join("sysr.conf");
    let text = fs::read_to_string(&conf).unwrap();
    // ostree wrote the remote to remotes.d, not to the repository config.
    let repo_config = fs::read_to_string(sysroot.join("ostree/repo/config")).unwrap();
    assert!(!repo_config.contains("remote"), "{repo_config}");
    assert!(text.starts_with("[remote \"sysr\"]\n"), "{text}");

    let state = tmp.path().join("state");
    let store = RemoteStore::new(&state, vec![remotes_d.clone()]);
    let (remote, origin) = store.locate("sysr").unwrap().unwrap();
    assert_eq!(origin, RemoteOrigin::ConfigDir(conf.clone()));
    assert_eq!(remote.url.as_deref(), Some("https://s.example/repo/"));
    assert!(!remote.gpg_verify);
    assert!(remote.gpg_verify_summary);
    assert_eq!(remote.collection_id.as_deref(), Some("org.example.Sys"));
    assert_eq!(remote.branches, ["b1"]);
    // Writing it back into ostree's file changes nothing; our own rendering reads the same.
    let mut kf = KeyFile::parse(&text).unwrap();
    remote.write_to_keyfile(&mut kf).unwrap();
    assert_eq!(kf.to_data(), text);
    let again = KeyFile::parse(&remote.to_keyfile().unwrap().to_data()).unwrap();
    assert_eq!(
        Remote::all_from_keyfile(&again).unwrap(),
        std::slice::from_ref(&remote)
    );

    // Adding a cfsync remote of the same name is refused, or skipped with if_not_exists.
    let mine = Remote::new("sysr", "http://mine/").unwrap();
    match store.add(&mine, false) {
        Err(RemoteError::AlreadyExists { path, .. }) => assert_eq!(path, conf),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert!(!store.add(&mine, true).unwrap());
    assert!(!store.remote_path("sysr").unwrap().exists());
    // The read-only remote cannot be deleted or changed.
    let err = store.delete("sysr").unwrap_err();
    assert!(matches!(err, RemoteError::ReadOnly { .. }));
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(matches!(
        store.set("sysr", "url", "http://z/"),
        Err(RemoteError::ReadOnly { .. })
    ));

    // A cfsync remote of the same name shadows it; deleting that shows it again.
    store.replace(&mine).unwrap();
    let listed = store.list_with_origin().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0.url.as_deref(), Some("http://mine/"));
    assert!(listed[0].1.is_writable());
    assert!(store.delete("sysr").unwrap());
    assert_eq!(
        store.get("sysr").unwrap().unwrap().url.as_deref(),
        Some("https://s.example/repo/")
    );
    assert_eq!(fs::read_to_string(&conf).unwrap(), text);
}

#[test]
fn ostree_finds_remotes_d_file_written_by_cfsync() {
    let tmp = TempDir::new().unwrap();
    let (sysroot, remotes_d) = init_sysroot(tmp.path());
    let sr = format!("--sysroot={}", sysroot.display());
    let store = RemoteStore::new(tmp.path().join("state"), vec![]);
    let mut remote = Remote::new("ours", "http://o.example/").unwrap();
    remote.apply_set("gpg-verify", "false").unwrap();
    remote.apply_set("branches", "main;devel").unwrap();
    remote
        .apply_set("xa.note", "  spaced\\ and ; semi")
        .unwrap();
    assert!(store.add(&remote, false).unwrap());
    let ours = store.remote_path("ours").unwrap();
    let bytes = fs::read(&ours).unwrap();
    fs::create_dir_all(&remotes_d).unwrap();
    let placed = remotes_d.join("ours.conf");
    fs::copy(&ours, &placed).unwrap();

    // ostree parses the file and finds the remote by its group.
    let err = fails(&["remote", "add", &sr, "ours", "http://else/"]);
    assert!(
        err.contains("Remote configuration for \"ours\" already exists"),
        "{err}"
    );
    assert!(err.contains(s(&placed)), "{err}");
    ok(&[
        "remote",
        "add",
        &sr,
        "--if-not-exists",
        "ours",
        "http://else/",
    ]);
    assert_eq!(fs::read(&placed).unwrap(), bytes);

    // Control: ostree really reads that directory, and rejects a malformed file in it.
    let junk = remotes_d.join("junk.conf");
    fs::write(&junk, "[remote \"junk\"]\nnot a key value pair\n").unwrap();
    let err = fails(&["remote", "add", &sr, "other", "http://x/"]);
    assert!(err.contains("not a key-value pair"), "{err}");
    let ours_err = RemoteStore::new(tmp.path().join("state2"), vec![remotes_d.clone()])
        .list()
        .unwrap_err();
    assert!(matches!(ours_err, RemoteError::Parse { ref path, .. } if *path == junk));
    fs::remove_file(&junk).unwrap();

    ok(&["remote", "delete", &sr, "ours"]);
    assert!(!placed.exists(), "ostree removed the remote's file");
}

#[test]
fn ostree_reads_values_written_by_cfsync() {
    let tmp = TempDir::new().unwrap();
    let src = unsigned_source_repo(&tmp.path().join("src"));
    let client = init_repo(tmp.path(), "bare-user");
    let r = repo_arg(&client);
    let base_config = fs::read_to_string(client.join("config")).unwrap();
    let store = RemoteStore::new(tmp.path().join("state"), vec![]);
    let url = format!("file://{}", src.display());
    let mut remote = Remote::new("cf", &url).unwrap();
    remote.apply_set("branches", "main").unwrap();
    let title = "  two leading\tand \\back\nnew line; ";
    remote.apply_set("xa.title", title).unwrap();
    store.add(&remote, false).unwrap();
    let mut other = Remote::new("meta", "mirrorlist=https://m.example/list").unwrap();
    other
        .apply_set("collection-id", "org.example.Meta")
        .unwrap();
    other.apply_set("gpg-verify-summary", "1").unwrap();
    other.apply_set("sign-verify", "true").unwrap();
    store.add(&other, false).unwrap();

    // The repository config followed by the bytes of cfsync's remote files: GLib reads
    // the same file syntax in both places.
    let install = || {
        let mut config = base_config.clone();
        for name in ["cf", "meta"] {
            config.push_str(&fs::read_to_string(store.remote_path(name).unwrap()).unwrap());
        }
        fs::write(client.join("config"), config).unwrap();
    };
    install();

    assert_eq!(
        ok(&["remote", "list", "-u", &r]),
        format!("cf    {url}\nmeta  mirrorlist=https://m.example/list\n")
    );
    assert_eq!(ok(&["remote", "show-url", &r, "cf"]), format!("{url}\n"));
    let get = |key: &str| ok(&["config", &r, "get", key]);
    assert_eq!(get("remote \"cf\".xa.title"), format!("{title}\n"));
    assert_eq!(get("remote \"cf\".gpg-verify"), "true\n");
    assert_eq!(get("remote \"meta\".collection-id"), "org.example.Meta\n");
    assert_eq!(get("remote \"meta\".gpg-verify-summary"), "true\n");
    assert_eq!(get("remote \"meta\".sign-verify"), "true\n");

    // libostree acts on the booleans: gpg-verify=true refuses the unsigned commit ...
    let err = fails(&["pull", &r, "cf"]);
    assert!(
        err.contains("GPG verification enabled, but no signatures found"),
        "{err}"
    );
    // ... gpg-verify=false pulls the configured branch (no ref named on the command line) ...
    store.set("cf", "gpg-verify", "false").unwrap();
    install();
    assert_eq!(get("remote \"cf\".gpg-verify"), "false\n");
    ok(&["pull", &r, "cf"]);
    assert_eq!(ok(&["refs", &r]), "cf:main\n");
    // ... and gpg-verify-summary=true then needs a signed summary.
    store.set("cf", "gpg-verify-summary", "true").unwrap();
    install();
    let err = fails(&["pull", &r, "cf"]);
    assert!(
        err.contains("GPG verification enabled, but no summary found"),
        "{err}"
    );
}

#[test]
fn escapes_agree_with_glib_both_ways() {
    let tmp = TempDir::new().unwrap();
    let repo = init_repo(tmp.path(), "bare");
    let r = repo_arg(&repo);
    let values = [
        "plain",
        " one leading space",
        "\t\ttabs first",
        "trailing space ",
        "back\\slash and \\s literal",
        "semi;colon;",
        "line\nbreak\r\nand cr",
        "mid  spaces\tand tab",
        "ünïcødé ✓",
        "",
    ];
    // GLib writes (`ostree config set`), we read.
    for (i, v) in values.iter().enumerate() {
        ok(&["config", &r, "set", &format!("remote \"e\".k{i}"), v]);
    }
    let kf = KeyFile::parse(&fs::read_to_string(repo.join("config")).unwrap()).unwrap();
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        assert_eq!(
            kf.get_string("remote \"e\"", &key).unwrap().as_deref(),
            Some(*v)
        );
        // And our escaping is byte-identical to GLib's.
        assert_eq!(
            kf.get_raw("remote \"e\"", &key),
            Some(escape_value(v).as_str()),
            "{v:?}"
        );
    }
    // We write, GLib reads (`ostree config get`).
    let mut kf = KeyFile::parse(&fs::read_to_string(repo.join("config")).unwrap()).unwrap();
    for (i, v) in values.iter().enumerate() {
        kf.set_string("remote \"w\"", &format!("k{i}"), v).unwrap();
    }
    fs::write(repo.join("config"), kf.to_data()).unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            ok(&["config", &r, "get", &format!("remote \"w\".k{i}")]),
            format!("{v}\n")
        );
    }
}

#[test]
fn key_file_syntax_matches_what_ostree_accepts() {
    let tmp = TempDir::new().unwrap();
    let repo = init_repo(tmp.path(), "bare");
    let r = repo_arg(&repo);
    let head = "[core]\nrepo_version=1\nmode=bare\n";
    let samples = [
        ("  [r]  \nk=v\n", true),
        ("[r]\n  k  =  v  \n", true),
        ("[r]\r\nk=v\r\n", true),
        ("# c\n\n[r]\n#x\n", true),
        ("[r]\nk[de]=x\n", true),
        ("[r]\n c d = 1\n", true),
        ("[r]\nk=a\\xb\n", true), // a bad escape fails only when read as a string
        ("[r]\nk=\n", true),
        ("[r]\njunk\n", false),
        ("[r]\n=v\n", false),
        ("[r] x\nk=1\n", false),
        ("[r]]\nk=1\n", false),
        ("[]\nk=1\n", false),
        ("[r]\nk]=1\n", false),
        ("[r]\n[x]y=1\n", false),
    ];
    for (sample, expected) in samples {
        fs::write(repo.join("config"), format!("{head}{sample}")).unwrap();
        let glib = run(&["config", &r, "get", "core.mode"]).status.success();
        let ours = KeyFile::parse(&format!("{head}{sample}"));
        assert_eq!(glib, expected, "ostree on {sample:?}");
        assert_eq!(ours.is_ok(), expected, "ours on {sample:?}: {ours:?}");
    }
    // A key before any group (ostree refuses to open such a repository too).
    fs::write(repo.join("config"), format!("k=v\n{head}")).unwrap();
    assert!(!run(&["config", &r, "get", "core.mode"]).status.success());
    assert!(matches!(
        KeyFile::parse("k=v\n[g]\n"),
        Err(KeyFileError::Syntax { line: 1, .. })
    ));
    assert!(matches!(
        KeyFile::parse_bytes(b"[g]\nk=\xff\n"),
        Err(KeyFileError::Syntax { line: 2, .. })
    ));
}

#[test]
fn remote_names_are_judged_like_ostree() {
    let tmp = TempDir::new().unwrap();
    let repo = init_repo(tmp.path(), "bare");
    let r = repo_arg(&repo);
    let names = [
        "foo", "_x", "é", "a.b-c_9", "9lives", "x.", "ü-ß", "", "a/b", "a b", ".x", "x:y", "a\tb",
        "a\"b", "a]b", "a*b", "a+b", "x-",
    ];
    for name in names {
        let theirs = run(&["remote", "add", &r, name, "http://x/"])
            .status
            .success();
        let ours = validate_remote_name(name);
        assert_eq!(
            ours.is_ok(),
            theirs,
            "name {name:?}: ostree {theirs}, ours {ours:?}"
        );
    }
    // ostree's option parser takes "-x" for an option; the name rule refuses it as well.
    assert!(validate_remote_name("-x").is_err());
    assert!(validate_remote_name(&"a".repeat(200)).is_ok());
    assert!(validate_remote_name(&"a".repeat(201)).is_err());
}

#[test]
fn validation_of_urls_collection_ids_and_set_arguments() {
    for good in [
        "http://x/",
        "https://example.com:8443/repo",
        "HTTPS://Example.com",
        "file:///srv/repo",
        "mirrorlist=https://m/list",
        "mirrorlist=file:///srv/list",
    ] {
        assert!(parse_url_spec(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "ftp://x/",
        "http://",
        "http:///path",
        "file://relative",
        "x",
        "http://a b/",
        "mirrorlist=",
        "mirrorlist=ftp://x/",
        "metalink=http://m/",
        "http://x/\n",
    ] {
        assert!(
            matches!(parse_url_spec(bad), Err(RemoteError::InvalidUrl { .. })),
            "{bad:?}"
        );
    }
    for good in ["org.example.Os", "a.b", "_a._b1.C_2"] {
        assert!(validate_collection_id(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "single",
        "org..x",
        "org.1x",
        "org.ex-ample",
        ".org.x",
        "org.x.",
    ] {
        assert!(validate_collection_id(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_set_argument("a=b=c").unwrap(), ("a", "b=c"));
    assert_eq!(parse_set_argument("k=").unwrap(), ("k", ""));
    assert!(parse_set_argument("novalue").is_err());
    assert!(parse_set_argument("=v").is_err());
    assert!(Remote::new("a/b", "http://x/").is_err());
    assert!(Remote::new("ok", "ftp://x/").is_err());
}

#[test]
fn apply_set_checks_known_keys() {
    let mut r = Remote::new("r", "http://x/").unwrap();
    for (v, want) in [("true", true), ("false", false), ("1", true), ("0", false)] {
        r.apply_set("gpg-verify", v).unwrap();
        assert_eq!(r.gpg_verify, want);
        r.apply_set("gpg-verify-summary", v).unwrap();
        assert_eq!(r.gpg_verify_summary, want);
    }
    for bad in ["yes", "TRUE", "", "2"] {
        assert!(matches!(
            r.apply_set("gpg-verify", bad),
            Err(RemoteError::InvalidValue { .. })
        ));
        assert!(r.apply_set("tls-permissive", bad).is_err());
    }
    r.apply_set("tls-permissive", "true").unwrap();
    assert_eq!(r.extra_bool("tls-permissive").unwrap(), Some(true));

    r.apply_set("sign-verify", "true").unwrap();
    assert_eq!(r.sign_verify, SignVerify::AnyConfigured);
    r.apply_set("sign-verify", "ed25519").unwrap();
    assert_eq!(r.sign_verify, SignVerify::Types(vec!["ed25519".into()]));
    r.apply_set("sign-verify-summary", "ed25519;spki;").unwrap();
    assert_eq!(
        r.sign_verify_summary,
        SignVerify::Types(vec!["ed25519".into(), "spki".into()])
    );
    r.apply_set("sign-verify-summary", "0").unwrap();
    assert!(!r.sign_verify_summary.is_enabled());
    assert!(r.apply_set("sign-verify", "a;;b").is_err());

    r.apply_set("verification-ed25519-key", KEY).unwrap();
    assert_eq!(r.ed25519_key.as_deref(), Some(KEY));
    assert!(r.apply_set("verification-ed25519-key", "AAAA").is_err());
    assert!(
        r.apply_set("verification-ed25519-file", "relative/keys")
            .is_err()
    );
    r.apply_set("verification-ed25519-file", "/k").unwrap();
    r.apply_set("verification-ed25519-file", "").unwrap();
    assert_eq!(r.ed25519_file, None);

    assert!(r.apply_set("url", "ftp://x/").is_err());
    r.apply_set("contenturl", "mirrorlist=http://m/").unwrap();
    r.apply_set("contenturl", "").unwrap();
    assert_eq!(r.contenturl, None);
    assert!(r.apply_set("collection-id", "nodots").is_err());
    r.apply_set("branches", "a;b/c;").unwrap();
    assert_eq!(r.branches, ["a", "b/c"]);
    assert!(r.apply_set("branches", "a;;b").is_err());
    r.apply_set("gpgkeypath", "/a,/b").unwrap();
    assert_eq!(r.gpgkeypath, [PathBuf::from("/a"), PathBuf::from("/b")]);
    assert!(r.apply_set("gpgkeypath", "/a,/b;/c").is_err());
    assert!(matches!(
        r.apply_set("bad=key", "v"),
        Err(RemoteError::InvalidKey { .. })
    ));
    assert!(matches!(
        r.apply_set(" lead", "v"),
        Err(RemoteError::InvalidKey { .. })
    ));
    r.apply_set("xa.weird", " a;b\\c").unwrap();
    assert_eq!(r.extra["xa.weird"], "\\sa;b\\\\c");
    assert_eq!(
        r.extra_string("xa.weird").unwrap().as_deref(),
        Some(" a;b\\c")
    );
}

#[test]
fn sign_verify_and_lists_read_like_libostree() {
    let text = "[remote \"a\"]\nurl=http://x/\nsign-verify=1\nsign-verify-summary=\n\
                [remote \"b\"]\nurl=http://x/\nsign-verify=ed25519;spki\nsign-verify-summary=false\n\
                branches=x\\;y;z;;w\ngpgkeypath=/k1;/k2;\n\
                [remote \"c\"]\nurl=http://x/\nsign-verify=a\\;b\n\
                [remote \"d\"]\nurl=http://x/\ngpgkeypath=/k1;/k2,/k3\n\
                [remote \"e\"]\nurl=http://x/\ngpg-verify=yes\n";
    let kf = KeyFile::parse(text).unwrap();
    let a = Remote::from_keyfile_group(&kf, "remote \"a\"")
        .unwrap()
        .unwrap();
    assert_eq!(a.sign_verify, SignVerify::AnyConfigured);
    assert_eq!(a.sign_verify_summary, SignVerify::Disabled);
    let b = Remote::from_keyfile_group(&kf, "remote \"b\"")
        .unwrap()
        .unwrap();
    assert_eq!(
        b.sign_verify,
        SignVerify::Types(vec!["ed25519".into(), "spki".into()])
    );
    assert_eq!(b.sign_verify_summary, SignVerify::Disabled);
    assert_eq!(b.branches, ["x;y", "z", "", "w"]);
    assert_eq!(b.gpgkeypath, [PathBuf::from("/k1"), PathBuf::from("/k2")]);
    for bad in ["c", "d", "e"] {
        let err = Remote::from_keyfile_group(&kf, &format!("remote \"{bad}\"")).unwrap_err();
        assert!(
            matches!(err, RemoteError::InvalidValue { .. }),
            "{bad}: {err}"
        );
    }
    assert!(Remote::from_keyfile_group(&kf, "core").unwrap().is_none());
    assert_eq!(unescape_list("", ';').unwrap(), Vec::<String>::new());
    assert_eq!(unescape_list("a;b", ';').unwrap(), ["a", "b"]);
    assert_eq!(unescape_list(";", ';').unwrap(), [""]);
    assert!(unescape_value("a\\;b").is_err());
    assert!(unescape_value("ab\\").is_err());
    let items = [" lead", "semi;colon", "back\\slash", "", "tail"];
    assert_eq!(
        unescape_list(&escape_list(&items, ';'), ';').unwrap(),
        items
    );
}

#[test]
fn comments_order_and_unknown_keys_survive_edits() {
    let tmp = TempDir::new().unwrap();
    let store = RemoteStore::new(tmp.path().join("state"), vec![]);
    let dir = store.remotes_dir();
    fs::create_dir_all(&dir).unwrap();
    let original = "# managed by hand\r\n\
                    [remote \"hand\"]\n\
                    # the mirror\n\
                    url=http://hand.example/\n\
                    xa.list=one\\;two;three;\n\
                    gpg-verify=1\n\
                    custom-thing=  kept as is\n\
                    \n\
                    # other group, not a remote\n\
                    [flatpak]\n\
                    x=y\n";
    fs::write(dir.join("hand.conf"), original).unwrap();
    let hand = store.get("hand").unwrap().unwrap();
    assert!(hand.gpg_verify);
    assert_eq!(hand.extra["xa.list"], "one\\;two;three;");
    assert_eq!(hand.extra["custom-thing"], "kept as is");

    store.set("hand", "gpg-verify", "false").unwrap();
    store.set("hand", "branches", "main").unwrap();
    store.set("hand", "xa.new", " v").unwrap();
    let edited = fs::read_to_string(dir.join("hand.conf")).unwrap();
    assert_eq!(
        edited,
        "# managed by hand\n\
         [remote \"hand\"]\n\
         # the mirror\n\
         url=http://hand.example/\n\
         xa.list=one\\;two;three;\n\
         gpg-verify=false\n\
         custom-thing=kept as is\n\
         branches=main;\n\
         xa.new=\\sv\n\
         \n\
         # other group, not a remote\n\
         [flatpak]\n\
         x=y\n"
    );
    // Deleting the remote keeps the file while it has other groups.
    assert!(store.delete("hand").unwrap());
    assert_eq!(
        fs::read_to_string(dir.join("hand.conf")).unwrap(),
        "# managed by hand\n\n# other group, not a remote\n[flatpak]\nx=y\n"
    );
    assert!(store.get("hand").unwrap().is_none());

    // Duplicate groups merge and a repeated key keeps its last value, as GLib reads them.
    let kf = KeyFile::parse("[a]\nk=1\n[b]\n[a]\nk=2\nj=3\n").unwrap();
    assert_eq!(kf.groups().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(kf.get_raw("a", "k"), Some("2"));
    assert_eq!(kf.to_data(), "[a]\nk=2\nj=3\n[b]\n");
}

#[test]
fn store_add_list_delete_and_precedence() {
    let tmp = TempDir::new().unwrap();
    let system = tmp.path().join("etc-remotes.d");
    let vendor = tmp.path().join("vendor-remotes.d");
    fs::create_dir_all(&system).unwrap();
    fs::create_dir_all(&vendor).unwrap();
    fs::write(
        system.join("sys.conf"),
        "[remote \"sys\"]\nurl=http://sys/\n",
    )
    .unwrap();
    fs::write(
        system.join("shared.conf"),
        "[remote \"shared\"]\nurl=http://system/\n",
    )
    .unwrap();
    fs::write(
        vendor.join("shared.conf"),
        "[remote \"shared\"]\nurl=http://vendor/\n",
    )
    .unwrap();
    fs::write(
        vendor.join("ignored.txt"),
        "[remote \"ignored\"]\nurl=http://no/\n",
    )
    .unwrap();
    fs::create_dir_all(vendor.join("dir.conf")).unwrap();
    let store = RemoteStore::new(
        tmp.path().join("state"),
        vec![system.clone(), vendor.clone()],
    );

    let zeta = Remote::new("zeta", "https://z.example/").unwrap();
    let alpha = Remote::new("alpha", "file:///srv/alpha").unwrap();
    assert!(store.add(&zeta, false).unwrap());
    assert!(store.add(&alpha, true).unwrap());
    assert!(!store.add(&alpha, true).unwrap());
    assert!(matches!(
        store.add(&alpha, false),
        Err(RemoteError::AlreadyExists { .. })
    ));
    let written = fs::read_to_string(store.remote_path("alpha").unwrap()).unwrap();
    assert_eq!(
        written,
        "[remote \"alpha\"]\nurl=file:///srv/alpha\ngpg-verify=true\n"
    );

    let listed = store.list_with_origin().unwrap();
    let summary: Vec<(&str, &str, bool)> = listed
        .iter()
        .map(|(r, o)| (r.name.as_str(), r.url.as_deref().unwrap(), o.is_writable()))
        .collect();
    assert_eq!(
        summary,
        [
            ("alpha", "file:///srv/alpha", true),
            ("shared", "http://system/", false),
            ("sys", "http://sys/", false),
            ("zeta", "https://z.example/", true),
        ]
    );

    // Only `*.conf` files land in the directory; no temporary files are left.
    let mut files: Vec<String> = fs::read_dir(store.remotes_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["alpha.conf", "zeta.conf"]);

    // delete removes the file and the keyring; unknown names are not an error.
    let keyring = store.keyring_path("zeta").unwrap();
    assert_eq!(keyring, store.remotes_dir().join("zeta.trustedkeys.gpg"));
    fs::write(&keyring, b"keyring").unwrap();
    fs::write(store.ed25519_keys_path("zeta").unwrap(), KEY).unwrap();
    assert!(store.delete("zeta").unwrap());
    assert!(!keyring.exists());
    assert!(!store.remote_path("zeta").unwrap().exists());
    assert!(!store.ed25519_keys_path("zeta").unwrap().exists());
    assert!(!store.delete("zeta").unwrap());
    assert!(store.get("zeta").unwrap().is_none());
    assert!(matches!(
        store.set("zeta", "url", "http://z/"),
        Err(RemoteError::NotFound { .. })
    ));
    assert!(store.keyring_path("../evil").is_err());

    let updated = store.set("alpha", "url", "https://alpha.example/").unwrap();
    assert_eq!(updated.url.as_deref(), Some("https://alpha.example/"));
    assert_eq!(store.get("alpha").unwrap().unwrap(), updated);
    assert!(store.set("alpha", "gpg-verify", "maybe").is_err());
    assert!(
        store.get("alpha").unwrap().unwrap().gpg_verify,
        "a refused set changes nothing"
    );

    // A name defined twice in one source is an error, as in libostree.
    fs::write(
        system.join("again.conf"),
        "[remote \"sys\"]\nurl=http://dup/\n",
    )
    .unwrap();
    match store.list() {
        Err(RemoteError::Duplicate {
            name,
            first,
            second,
        }) => {
            assert_eq!(name, "sys");
            assert_eq!(first, system.join("again.conf"));
            assert_eq!(second, system.join("sys.conf"));
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
    fs::remove_file(system.join("again.conf")).unwrap();
    // A remote name cfsync cannot use safely is reported with its file.
    fs::write(system.join("bad.conf"), "[remote \"a/b\"]\nurl=http://x/\n").unwrap();
    let err = store.list().unwrap_err();
    assert!(
        matches!(&err, RemoteError::InvalidConfig { path, .. } if *path == system.join("bad.conf")),
        "{err}"
    );
}
