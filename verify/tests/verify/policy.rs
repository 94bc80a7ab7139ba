//! `cfsync_verify::policy` on remote configs written by `ostree remote add` and on the
//! bindings `ostree commit` records.

use std::fs;
use std::path::Path;
use std::process::Command;

use cfsync_verify::policy::{
    BindingError, ConfigError, DowngradeError, RemotePolicy, SignEngine, SignVerify,
    check_bindings, check_collection_binding, check_downgrade, check_ref_binding,
};

use crate::util::{output, run, stdout};

/// The `(key, value)` pairs of `[remote "NAME"]` in an ostree repo config.
fn remote_options(repo: &Path, name: &str) -> Vec<(String, String)> {
    let config = fs::read_to_string(repo.join("config")).unwrap();
    let header = format!("[remote \"{name}\"]");
    let mut in_group = false;
    let mut out = Vec::new();
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_group = line == header;
        } else if in_group && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    assert!(!out.is_empty(), "no group {header} in config:\n{config}");
    out
}

fn policy_of(repo: &Path, name: &str) -> Result<RemotePolicy, ConfigError> {
    let opts = remote_options(repo, name);
    RemotePolicy::from_options(opts.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[test]
fn remote_configs_written_by_ostree() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let r = format!("--repo={}", repo.display());
    run(Command::new("ostree").args([&r, "init", "--mode=archive"]));
    let key = "mZxte0BOVY0+bFR7qoj0nqh0zgTO8XQ2q4v2bbmefVE=";
    run(Command::new("ostree").args([&r, "remote", "add", "plain", "https://example.com/repo"]));
    run(Command::new("ostree").args([
        &r,
        "remote",
        "add",
        "--no-gpg-verify",
        "--set=gpg-verify-summary=true",
        "--set=sign-verify=ed25519",
        &format!("--set=verification-ed25519-key={key}"),
        "--set=gpgkeypath=/a.gpg;/b.gpg",
        "--collection-id=org.example.Os",
        "signed",
        "https://example.com/repo",
    ]));
    run(Command::new("ostree").args([
        &r,
        "remote",
        "add",
        "--set=sign-verify=true",
        "--set=sign-verify-summary=false",
        "anysign",
        "https://example.com/repo",
    ]));

    // `ostree remote add` writes only url (and gpg-verify when told): libostree defaults.
    let plain = policy_of(&repo, "plain").unwrap();
    assert_eq!(plain, RemotePolicy::default());
    assert!(plain.gpg_verify && !plain.gpg_verify_summary);
    assert_eq!(plain.sign_verify, SignVerify::Disabled);
    assert!(plain.requires_commit_signature() && !plain.requires_summary_signature());

    let signed = policy_of(&repo, "signed").unwrap();
    assert!(!signed.gpg_verify);
    assert!(signed.gpg_verify_summary);
    assert_eq!(
        signed.sign_verify,
        SignVerify::Engines(vec![SignEngine::Ed25519])
    );
    assert_eq!(signed.verification_ed25519_key.as_deref(), Some(key));
    assert_eq!(signed.gpgkeypath, vec!["/a.gpg", "/b.gpg"]);
    assert_eq!(signed.collection_id.as_deref(), Some("org.example.Os"));
    assert!(signed.requires_commit_signature());

    let anysign = policy_of(&repo, "anysign").unwrap();
    assert_eq!(anysign.sign_verify, SignVerify::AnyEngine);
    assert_eq!(anysign.sign_verify_summary, SignVerify::Disabled);
}

#[test]
fn invalid_values_are_refused_like_libostree() {
    let err = RemotePolicy::from_options([("gpg-verify", "yes")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid boolean value \"yes\" for remote option gpg-verify: expected true, false, 1 or 0"
    );
    assert!(matches!(
        RemotePolicy::from_options([("sign-verify", "ed25519;rsa")]),
        Err(ConfigError::UnknownSignEngine { .. })
    ));
    // An explicit engine list needs keys for that engine.
    assert!(matches!(
        RemotePolicy::from_options([("sign-verify", "ed25519")]),
        Err(ConfigError::MissingSignKeys {
            engine: "ed25519",
            ..
        })
    ));
    assert!(matches!(
        RemotePolicy::from_options([("gpgkeypath", "/a;/b,/c")]),
        Err(ConfigError::MixedSeparators { .. })
    ));
    let p = RemotePolicy::from_options([("gpgkeypath", "/a,/b"), ("gpg-verify", "0")]).unwrap();
    assert_eq!(p.gpgkeypath, vec!["/a", "/b"]);
    assert!(!p.gpg_verify);
}

fn print_metadata(repo: &str, rev: &str, key: &str) -> Option<String> {
    let out = output(Command::new("ostree").args([
        repo,
        "show",
        &format!("--print-metadata-key={key}"),
        rev,
    ]));
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// GLib text of an `as` (`['a', 'b']`) or an `s` (`'a'`).
fn strings(text: &str) -> Vec<String> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().trim_matches('\'').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn bindings_recorded_by_ostree_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    let r = format!("--repo={}", repo.display());
    run(Command::new("ostree").args([
        &r,
        "init",
        "--mode=archive",
        "--collection-id=org.example.Os",
    ]));
    let commit = stdout(
        Command::new("ostree")
            .args([&r, "commit", "-b", "os/stable", "--bind-ref=os/latest"])
            .arg(&tree),
    )
    .trim()
    .to_owned();
    let refs = strings(&print_metadata(&r, &commit, "ostree.ref-binding").unwrap());
    // ostree stores the bindings sorted.
    assert_eq!(refs, vec!["os/latest", "os/stable"]);
    let coll = strings(&print_metadata(&r, &commit, "ostree.collection-binding").unwrap());
    assert_eq!(coll, vec!["org.example.Os"]);
    let coll = coll[0].as_str();

    let cid = Some("org.example.Os");
    check_bindings(&commit, Some(&refs), Some(coll), Some("os/stable"), cid).unwrap();
    check_bindings(&commit, Some(&refs), Some(coll), Some("os/latest"), cid).unwrap();
    check_bindings(&commit, Some(&refs), Some(coll), None, cid).unwrap();
    let err = check_bindings(&commit, Some(&refs), Some(coll), Some("os/old"), cid).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "commit {commit} is bound to refs \"os/latest\", \"os/stable\" and cannot be pulled as ref \"os/old\""
        )
    );
    let err = check_bindings(
        &commit,
        Some(&refs),
        Some(coll),
        Some("os/stable"),
        Some("org.other"),
    )
    .unwrap_err();
    assert!(
        matches!(err, BindingError::CollectionMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("org.example.Os") && err.to_string().contains("org.other"));
}

#[test]
fn absent_bindings_are_fine_unless_the_remote_has_a_collection() {
    let none: Option<&[String]> = None;
    check_ref_binding("c", none, Some("main"), None).unwrap();
    let err = check_ref_binding("c", none, Some("main"), Some("org.x")).unwrap_err();
    assert!(
        matches!(err, BindingError::MissingRefBinding { .. }),
        "{err:?}"
    );
    // Pulled by checksum with bindings present: nothing to match.
    check_ref_binding("c", Some(&["main"][..]), None, None).unwrap();
    check_collection_binding("c", None, None).unwrap();
    let err = check_collection_binding("c", None, Some("org.x")).unwrap_err();
    assert!(
        matches!(err, BindingError::MissingCollectionBinding { .. }),
        "{err:?}"
    );
    // An empty binding list binds to nothing.
    let err = check_ref_binding("c", Some(&[] as &[&str]), Some("main"), None).unwrap_err();
    assert!(err.to_string().contains("(none)"), "{err}");
}

#[test]
fn downgrade_rules_follow_ostree_compare_timestamps() {
    let (old, new) = (1_700_000_000u64, 1_700_003_600u64);
    check_downgrade("aaa", old, "bbb", new, false).unwrap();
    check_downgrade("aaa", old, "bbb", old, false).unwrap(); // equal: any rev
    check_downgrade("aaa", new, "aaa", old, false).unwrap(); // same rev
    check_downgrade("aaa", new, "bbb", old, true).unwrap(); // allowed
    let err = check_downgrade("aaa", new, "bbb", old, false).unwrap_err();
    let DowngradeError::Downgrade {
        current_timestamp,
        new_timestamp,
        ..
    } = &err
    else {
        unreachable!()
    };
    assert_eq!((*current_timestamp, *new_timestamp), (new, old));
    assert_eq!(
        err.to_string(),
        "commit bbb with timestamp 2023-11-14T22:13:20Z is older than current commit aaa \
         with timestamp 2023-11-14T23:13:20Z; allow downgrades to accept it"
    );
}

/// Options are read raw, as in the key file, with libostree's rules (the one reader in
/// `policy::options`, also used by the engine's remotes).
#[test]
fn raw_option_values_follow_libostree() {
    // GLib ignores trailing white space after a boolean.
    let p = RemotePolicy::from_options([("gpg-verify", "false \t"), ("gpg-verify-summary", "1")])
        .unwrap();
    assert!(!p.gpg_verify && p.gpg_verify_summary);
    // Escapes are undone; an empty string counts as unset.
    let p = RemotePolicy::from_options([
        ("verification-ed25519-file", "/keys/a\\sb"),
        ("collection-id", ""),
        ("gpgkeypath", "/a\\\\b"),
    ])
    .unwrap();
    assert_eq!(p.verification_ed25519_file.as_deref(), Some("/keys/a b"));
    assert_eq!(p.collection_id, None);
    assert_eq!(p.gpgkeypath, vec!["/a\\b"]);
    // `ostree_sign_get_by_name("")` fails, and so does an empty type name here.
    assert!(matches!(
        RemotePolicy::from_options([("sign-verify", "ed25519;;spki")]),
        Err(ConfigError::InvalidValue { .. })
    ));
    // A type named twice counts once.
    let p = RemotePolicy::from_options([
        ("sign-verify", "ed25519;ed25519"),
        ("verification-ed25519-key", "k"),
    ])
    .unwrap();
    assert_eq!(
        p.sign_verify,
        SignVerify::Engines(vec![SignEngine::Ed25519])
    );
}
