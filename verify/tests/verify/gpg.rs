//! `cfsync_verify::gpg` against keys and signatures made by the real `gpg`, and against
//! the verdicts of the real `ostree pull` on commits signed by `ostree commit --gpg-sign`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cfsync_verify::gpg::{
    GpgError, GpgSigner, Keyring, KeyringError, RemoteKeyringPaths, SignError, SignatureStatus,
    inspect_detached, sign_detached, verify_detached,
};

use crate::util::{gpg, output, parse_aay_text, run, stdout};

const DAY: u64 = 86_400;

struct Key {
    /// Primary fingerprint.
    fpr: String,
    /// Fingerprint of the key that signs (the subkey for `sub`).
    signing_fpr: String,
    /// Expiration time of the primary key (Unix seconds), if any.
    expires: Option<u64>,
    /// `gpg --export` (binary), taken after any revocation.
    public: Vec<u8>,
    /// `gpg --export --armor`.
    armored: Vec<u8>,
}

struct CommitCase {
    checksum: String,
    /// The exact bytes of the `.commit` object.
    bytes: Vec<u8>,
    /// The elements of `ostree.gpgsigs` in its `.commitmeta`.
    sigs: Vec<Vec<u8>>,
    /// Whether `ostree pull` accepted the commit.
    ostree_ok: bool,
    ostree_stderr: String,
}

struct Fixture {
    data: Vec<u8>,
    /// `now - 10 days`: creation time of the `exp` and `se` keys.
    past: u64,
    keys: BTreeMap<&'static str, Key>,
    /// `gpg --detach-sign` of `data` by each key.
    sigs: BTreeMap<&'static str, Vec<u8>>,
    /// Public export of `rev` before its revocation was imported.
    rev_unrevoked: Vec<u8>,
    commits: BTreeMap<&'static str, CommitCase>,
    /// `<client>/origin.trustedkeys.gpg` as written by `ostree remote gpg-import`.
    client_keyring_file: Vec<u8>,
    /// The same keyring loaded through `Keyring::for_remote`.
    client_keyring: Keyring,
    /// A GnuPG keybox file (`gpg --keyring new.gpg --import`).
    keybox: Vec<u8>,
    /// `gpg --export-secret-keys --armor` of `ed` (unprotected).
    secret_ed_armored: Vec<u8>,
    /// `gpg --export-secret-keys` of `sub` (unprotected, binary).
    secret_sub: Vec<u8>,
    /// The same, armored.
    secret_sub_armored: Vec<u8>,
    /// `gpg --export-secret-keys` of a passphrase-protected key.
    secret_protected: Vec<u8>,
}

/// The fixture is built once; if building fails, every test reports the same failure
/// instead of rebuilding it.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Result<Fixture, String>> = OnceLock::new();
    let built = F.get_or_init(|| {
        std::panic::catch_unwind(build_fixture).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned())
        })
    });
    match built {
        Ok(f) => f,
        Err(e) => panic!("building the gpg fixture failed: {e}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn colons(home: &Path, who: &str) -> Vec<Vec<String>> {
    stdout(gpg(home).args(["--with-colons", "--list-keys", who]))
        .lines()
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect()
}

/// (primary fingerprint, last fingerprint listed, primary expiration)
fn key_info(home: &Path, who: &str) -> (String, String, Option<u64>) {
    let rows = colons(home, who);
    let fprs: Vec<String> = rows
        .iter()
        .filter(|r| r[0] == "fpr")
        .map(|r| r[9].clone())
        .collect();
    let expires = rows
        .iter()
        .find(|r| r[0] == "pub")
        .and_then(|r| r[6].parse().ok());
    (fprs[0].clone(), fprs.last().unwrap().clone(), expires)
}

fn build_fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("gnupg");
    fs::create_dir(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let past = unix_now() - 10 * DAY;
    let faked = |t: u64| vec!["--faked-system-time".to_owned(), t.to_string()];

    let gen_key =
        |uid: &str, algo: &str, usage: &str, expire: &str, extra: &[String], pass: &str| {
            run(gpg(&home).args(extra).args([
                "--passphrase",
                pass,
                "--quick-gen-key",
                uid,
                algo,
                usage,
                expire,
            ]));
        };
    gen_key(
        "Ed Test <ed@example.com>",
        "ed25519",
        "sign",
        "never",
        &[],
        "",
    );
    gen_key(
        "Rsa Test <rsa@example.com>",
        "rsa2048",
        "sign",
        "never",
        &[],
        "",
    );
    gen_key(
        "Sub Test <sub@example.com>",
        "ed25519",
        "cert",
        "never",
        &[],
        "",
    );
    gen_key(
        "Unknown Test <unknown@example.com>",
        "ed25519",
        "sign",
        "never",
        &[],
        "",
    );
    gen_key(
        "Rev Test <rev@example.com>",
        "ed25519",
        "sign",
        "never",
        &[],
        "",
    );
    gen_key(
        "Exp Test <exp@example.com>",
        "ed25519",
        "sign",
        "1d",
        &faked(past),
        "",
    );
    gen_key(
        "SigExp Test <se@example.com>",
        "ed25519",
        "sign",
        "never",
        &faked(past),
        "",
    );
    gen_key(
        "Prot Test <prot@example.com>",
        "ed25519",
        "sign",
        "never",
        &[],
        "secret",
    );
    let (sub_fpr, _, _) = key_info(&home, "sub@example.com");
    run(gpg(&home).args([
        "--passphrase",
        "",
        "--quick-add-key",
        &sub_fpr,
        "ed25519",
        "sign",
        "never",
    ]));

    let names = [
        ("ed", "ed@example.com"),
        ("rsa", "rsa@example.com"),
        ("sub", "sub@example.com"),
        ("unknown", "unknown@example.com"),
        ("rev", "rev@example.com"),
        ("exp", "exp@example.com"),
        ("se", "se@example.com"),
    ];
    let info: BTreeMap<&str, (String, String, Option<u64>)> = names
        .iter()
        .map(|(n, uid)| (*n, key_info(&home, uid)))
        .collect();

    // Detached signatures over `data`.
    let data = b"cfsync-verify test data\n".repeat(100);
    let data_path = tmp.path().join("data");
    fs::write(&data_path, &data).unwrap();
    let mut sigs = BTreeMap::new();
    for (name, _) in names {
        let signer = format!("{}!", info[name].1);
        let out = tmp.path().join(format!("{name}.sig"));
        let mut cmd = gpg(&home);
        match name {
            "exp" => {
                cmd.args(faked(past + 3600));
            }
            "se" => {
                cmd.args(faked(past + 3600)).args([
                    "--ask-sig-expire",
                    "--default-sig-expire",
                    "1d",
                ]);
            }
            _ => {}
        }
        if name == "se" {
            // Also a non-expiring signature made a day after the key was created.
            let plain = tmp.path().join("se-plain.sig");
            run(gpg(&home)
                .args(faked(past + DAY))
                .args(["--local-user", &signer, "--detach-sign", "-o"])
                .arg(&plain)
                .arg(&data_path));
            sigs.insert("se-plain", fs::read(&plain).unwrap());
        }
        run(cmd
            .args(["--local-user", &signer, "--detach-sign", "-o"])
            .arg(&out)
            .arg(&data_path));
        sigs.insert(name, fs::read(&out).unwrap());
    }

    // A source repository with one branch per case, signed by `ostree commit --gpg-sign`.
    let src = tmp.path().join("src");
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("file"), b"content\n").unwrap();
    run(Command::new("ostree")
        .arg(format!("--repo={}", src.display()))
        .args(["init", "--mode=archive"]));
    let gpg_conf = home.join("gpg.conf");
    let branches = ["ed", "rsa", "sub", "unknown", "rev", "exp", "se", "both"];
    for branch in branches {
        let key = if branch == "both" { "unknown" } else { branch };
        match branch {
            "exp" => fs::write(&gpg_conf, format!("faked-system-time {}\n", past + 3600)).unwrap(),
            "se" => fs::write(
                &gpg_conf,
                format!(
                    "faked-system-time {}\nask-sig-expire\ndefault-sig-expire 1d\n",
                    past + 3600
                ),
            )
            .unwrap(),
            _ => {}
        }
        run(Command::new("ostree")
            .arg(format!("--repo={}", src.display()))
            .args(["commit", "-b", branch])
            .arg(format!("--gpg-sign={}", info[key].0))
            .arg(format!("--gpg-homedir={}", home.display()))
            .arg(&tree));
        let _ = fs::remove_file(&gpg_conf);
    }
    run(Command::new("ostree")
        .arg(format!("--repo={}", src.display()))
        .args(["gpg-sign", "both", &info["ed"].0])
        .arg(format!("--gpg-homedir={}", home.display())));

    // Revoke `rev` after it signed.
    let rev_unrevoked = run(gpg(&home).args(["--export", &info["rev"].0])).stdout;
    let rev_cert = fs::read_to_string(
        home.join("openpgp-revocs.d")
            .join(format!("{}.rev", info["rev"].0)),
    )
    .unwrap()
    .replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    );
    let rev_path = tmp.path().join("rev.asc");
    fs::write(&rev_path, rev_cert).unwrap();
    run(gpg(&home).arg("--import").arg(&rev_path));

    let mut keys = BTreeMap::new();
    for (name, _) in names {
        let (fpr, signing_fpr, expires) = info[name].clone();
        let public = run(gpg(&home).args(["--export", &fpr])).stdout;
        let armored = run(gpg(&home).args(["--export", "--armor", &fpr])).stdout;
        keys.insert(
            name,
            Key {
                fpr,
                signing_fpr,
                expires,
                public,
                armored,
            },
        );
    }

    // A client repository trusting every key but `unknown`, via `ostree remote gpg-import`.
    let trusted = tmp.path().join("trusted.gpg");
    let mut all = Vec::new();
    for name in ["ed", "rsa", "sub", "rev", "exp", "se"] {
        all.extend_from_slice(&keys[name].public);
    }
    fs::write(&trusted, &all).unwrap();
    let cli = tmp.path().join("cli");
    let cli_repo = format!("--repo={}", cli.display());
    run(Command::new("ostree").args([&cli_repo, "init", "--mode=archive"]));
    run(Command::new("ostree")
        .args([&cli_repo, "remote", "add", "origin"])
        .arg(format!("file://{}", src.display())));
    run(Command::new("ostree")
        .env("GNUPGHOME", &home)
        .args([&cli_repo, "remote", "gpg-import", "origin", "-k"])
        .arg(&trusted));

    let mut commits = BTreeMap::new();
    for branch in branches {
        let repo = format!("--repo={}", src.display());
        let checksum = stdout(Command::new("ostree").args([&repo, "rev-parse", branch]))
            .trim()
            .to_owned();
        let bytes = fs::read(
            src.join("objects")
                .join(&checksum[..2])
                .join(format!("{}.commit", &checksum[2..])),
        )
        .unwrap();
        let sigs = parse_aay_text(&stdout(Command::new("ostree").args([
            &repo,
            "show",
            "--print-detached-metadata-key=ostree.gpgsigs",
            &checksum,
        ])));
        let pull = output(Command::new("ostree").args([&cli_repo, "pull", "origin", branch]));
        commits.insert(
            branch,
            CommitCase {
                checksum,
                bytes,
                sigs,
                ostree_ok: pull.status.success(),
                ostree_stderr: String::from_utf8_lossy(&pull.stderr).into_owned(),
            },
        );
    }
    let client_keyring_file = fs::read(cli.join("origin.trustedkeys.gpg")).unwrap();
    let client_keyring = Keyring::for_remote(&RemoteKeyringPaths {
        repo: cli.clone(),
        remote: "origin".into(),
        remotes_d: None,
        gpgkeypath: vec![],
        global_dir: None,
    })
    .unwrap();

    // gpg exits 2 here because of trustdb warnings; the keybox is written regardless.
    let kbx = tmp.path().join("new-keyring.gpg");
    output(
        gpg(&home)
            .arg("--no-default-keyring")
            .arg("--keyring")
            .arg(&kbx)
            .arg("--import")
            .arg(tmp.path().join("trusted.gpg")),
    );
    let keybox = fs::read(&kbx).unwrap();
    assert_eq!(&keybox[8..12], b"KBXf");

    let secret_ed_armored =
        run(gpg(&home).args(["--export-secret-keys", "--armor", &keys["ed"].fpr])).stdout;
    let secret_sub = run(gpg(&home).args(["--export-secret-keys", &keys["sub"].fpr])).stdout;
    let secret_sub_armored =
        run(gpg(&home).args(["--export-secret-keys", "--armor", &keys["sub"].fpr])).stdout;
    let secret_protected = run(gpg(&home).args([
        "--passphrase",
        "secret",
        "--export-secret-keys",
        "prot@example.com",
    ]))
    .stdout;

    let _ = output(
        Command::new("gpgconf")
            .env("GNUPGHOME", &home)
            .args(["--kill", "gpg-agent"]),
    );
    Fixture {
        data,
        past,
        keys,
        sigs,
        rev_unrevoked,
        commits,
        client_keyring_file,
        client_keyring,
        keybox,
        secret_ed_armored,
        secret_sub,
        secret_sub_armored,
        secret_protected,
    }
}

fn keyring(names: &[&str]) -> Keyring {
    let f = fixture();
    let mut k = Keyring::new();
    for n in names {
        k.add_bytes(&f.keys[n].public, n).unwrap();
    }
    k
}

fn refs(sigs: &[Vec<u8>]) -> Vec<&[u8]> {
    sigs.iter().map(Vec::as_slice).collect()
}

/// The heart of the GPG tests: for every case, our verdict equals `ostree pull`'s, and the
/// error is the one libostree reports.
#[test]
fn agrees_with_ostree_pull_on_every_case() {
    let f = fixture();
    let now = SystemTime::now();
    for (branch, case) in &f.commits {
        let ours = verify_detached(&case.bytes, &refs(&case.sigs), &f.client_keyring, now);
        assert_eq!(
            ours.is_ok(),
            case.ostree_ok,
            "branch {branch} ({}): ours {ours:?}, ostree stderr: {}",
            case.checksum,
            case.ostree_stderr
        );
        match (*branch, &ours) {
            ("ed" | "rsa" | "sub", Ok(v)) => assert_eq!(v.signatures.len(), 1),
            ("both", Ok(v)) => {
                // ostree appended the second signature; one unknown, one valid.
                assert_eq!(v.signatures.len(), 2);
                assert_eq!(v.signatures[0].status, SignatureStatus::UnknownKey);
                assert_eq!(
                    v.signatures[0].fingerprint.as_deref(),
                    Some(&*f.keys["unknown"].fpr)
                );
                assert!(v.signatures[1].is_valid());
                assert_eq!(v.signatures[1].index, 1);
            }
            ("unknown", Err(GpgError::NoTrustedKey { fingerprints })) => {
                assert_eq!(fingerprints, &vec![f.keys["unknown"].fpr.clone()]);
            }
            ("rev", Err(GpgError::RevokedKey { fingerprint, .. })) => {
                assert_eq!(fingerprint, &f.keys["rev"].fpr);
                assert!(
                    case.ostree_stderr.contains("Key revoked"),
                    "{}",
                    case.ostree_stderr
                );
            }
            (
                "exp",
                Err(GpgError::ExpiredKey {
                    fingerprint,
                    expired_at,
                }),
            ) => {
                assert_eq!(fingerprint, &f.keys["exp"].fpr);
                assert_eq!(*expired_at, at(f.keys["exp"].expires.unwrap()));
                assert!(
                    case.ostree_stderr.contains("Key expired"),
                    "{}",
                    case.ostree_stderr
                );
            }
            (
                "se",
                Err(GpgError::ExpiredSignature {
                    fingerprint,
                    created,
                    expired_at,
                }),
            ) => {
                assert_eq!(fingerprint, &f.keys["se"].fpr);
                assert_eq!(*expired_at, created.unwrap() + Duration::from_secs(DAY));
                assert!(
                    case.ostree_stderr.contains("Expired signature"),
                    "{}",
                    case.ostree_stderr
                );
            }
            (b, r) => panic!("unexpected result for branch {b}: {r:?}"),
        }
    }
}

#[test]
fn flipped_byte_in_a_signed_commit_is_a_bad_signature() {
    let f = fixture();
    for branch in ["ed", "rsa", "sub"] {
        let case = &f.commits[branch];
        let mut bytes = case.bytes.clone();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        let err = verify_detached(
            &bytes,
            &refs(&case.sigs),
            &f.client_keyring,
            SystemTime::now(),
        )
        .unwrap_err();
        let GpgError::BadSignature { fingerprint, .. } = &err else {
            panic!("{branch}: expected BadSignature, got {err:?}");
        };
        assert_eq!(fingerprint, &f.keys[branch].signing_fpr);
        assert!(err.to_string().contains(fingerprint.as_str()), "{err}");
    }
}

#[test]
fn detached_signatures_from_ed25519_and_rsa_keys_verify() {
    let f = fixture();
    let k = keyring(&["ed", "rsa"]);
    let before = SystemTime::now();
    for name in ["ed", "rsa"] {
        let v = verify_detached(&f.data, &[&f.sigs[name]], &k, SystemTime::now()).unwrap();
        let s = &v.signatures[0];
        assert!(s.is_valid());
        assert_eq!(s.fingerprint.as_deref(), Some(&*f.keys[name].fpr));
        assert_eq!(s.primary_fingerprint.as_deref(), Some(&*f.keys[name].fpr));
        let created = s.created.unwrap();
        assert!(created <= before && created + Duration::from_secs(600) > before);
        assert_eq!(s.expires, None);
        assert_eq!(s.key_expires, None);
    }
}

#[test]
fn subkey_signature_names_subkey_and_primary() {
    let f = fixture();
    let key = &f.keys["sub"];
    assert_ne!(key.fpr, key.signing_fpr);
    let v = verify_detached(
        &f.data,
        &[&f.sigs["sub"]],
        &keyring(&["sub"]),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        v.signatures[0].fingerprint.as_deref(),
        Some(&*key.signing_fpr)
    );
    assert_eq!(
        v.signatures[0].primary_fingerprint.as_deref(),
        Some(&*key.fpr)
    );
}

#[test]
fn flipped_byte_in_data_fails() {
    let f = fixture();
    let mut data = f.data.clone();
    data[0] ^= 0x80;
    let err = verify_detached(
        &data,
        &[&f.sigs["ed"]],
        &keyring(&["ed"]),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, GpgError::BadSignature { fingerprint, .. } if *fingerprint == f.keys["ed"].fpr),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("bad gpg signature from key {}", f.keys["ed"].fpr))
    );
}

#[test]
fn unknown_key_fails_and_is_named() {
    let f = fixture();
    let err = verify_detached(
        &f.data,
        &[&f.sigs["unknown"]],
        &keyring(&["ed", "rsa"]),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no signature from a trusted key: signed by {}, not in the trusted keyring",
            f.keys["unknown"].fpr
        )
    );
    // An empty keyring trusts nothing.
    let err = verify_detached(
        &f.data,
        &[&f.sigs["ed"]],
        &Keyring::new(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, GpgError::NoTrustedKey { .. }), "{err:?}");
}

#[test]
fn expired_key_fails_now_but_was_valid_before_it_expired() {
    let f = fixture();
    let k = keyring(&["exp"]);
    let expires = f.keys["exp"].expires.unwrap();
    assert!(expires <= f.past + DAY + 60);
    let err = verify_detached(&f.data, &[&f.sigs["exp"]], &k, SystemTime::now()).unwrap_err();
    let GpgError::ExpiredKey {
        fingerprint,
        expired_at,
    } = &err
    else {
        panic!("expected ExpiredKey, got {err:?}");
    };
    assert_eq!(fingerprint, &f.keys["exp"].fpr);
    assert_eq!(*expired_at, at(expires));
    assert_eq!(
        err.to_string(),
        format!(
            "gpg key {} expired at {}",
            f.keys["exp"].fpr,
            cfsync_verify::format_unix_utc(expires as i64)
        )
    );
    // Judged at a time before the expiry, the same signature is valid.
    let v = verify_detached(&f.data, &[&f.sigs["exp"]], &k, at(f.past + 2 * 3600)).unwrap();
    assert_eq!(v.signatures[0].key_expires, Some(at(expires)));
}

#[test]
fn revoked_key_fails_but_was_valid_without_the_revocation() {
    let f = fixture();
    let err = verify_detached(
        &f.data,
        &[&f.sigs["rev"]],
        &keyring(&["rev"]),
        SystemTime::now(),
    )
    .unwrap_err();
    let GpgError::RevokedKey {
        fingerprint,
        revoked_at,
        reason,
    } = &err
    else {
        panic!("expected RevokedKey, got {err:?}");
    };
    assert_eq!(fingerprint, &f.keys["rev"].fpr);
    assert!(revoked_at.is_some());
    // gpg's pre-made revocation certificate has reason 0 and this comment.
    assert!(reason.contains("No reason specified"), "{reason}");
    assert!(err.to_string().contains(&f.keys["rev"].fpr), "{err}");

    let unrevoked = Keyring::from_bytes(&f.rev_unrevoked).unwrap();
    verify_detached(&f.data, &[&f.sigs["rev"]], &unrevoked, SystemTime::now()).unwrap();

    // The revocation in a second file is merged into the certificate from the first.
    let mut merged = Keyring::from_bytes(&f.rev_unrevoked).unwrap();
    merged
        .add_bytes(&f.keys["rev"].public, "revocation")
        .unwrap();
    assert_eq!(merged.len(), 1);
    assert!(matches!(
        verify_detached(&f.data, &[&f.sigs["rev"]], &merged, SystemTime::now()),
        Err(GpgError::RevokedKey { .. })
    ));
}

/// `to_binary` (what `remote add --gpg-import` stores) keeps every certificate and merged
/// revocations, and gpg reads it.
#[test]
fn binary_export_round_trips_with_revocations() {
    let f = fixture();
    let mut k = Keyring::from_bytes(&f.rev_unrevoked).unwrap();
    k.add_bytes(&f.keys["rev"].public, "revocation").unwrap();
    k.add_bytes(&f.keys["ed"].armored, "ed").unwrap();
    let bin = k.to_binary().unwrap();
    let back = Keyring::from_bytes(&bin).unwrap();
    let (mut a, mut b) = (k.fingerprints(), back.fingerprints());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(matches!(
        verify_detached(&f.data, &[&f.sigs["rev"]], &back, SystemTime::now()),
        Err(GpgError::RevokedKey { .. })
    ));
    verify_detached(&f.data, &[&f.sigs["ed"]], &back, SystemTime::now()).unwrap();
    // gpg lists both keys from the file, the revoked one as revoked.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.gpg");
    fs::write(&file, &bin).unwrap();
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(dir.path())
        .args(["--batch", "--with-colons", "--show-keys"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing.lines().filter(|l| l.starts_with("pub:")).count(), 2);
    assert!(
        listing.lines().any(|l| l.starts_with("pub:r:")),
        "{listing}"
    );
}

#[test]
fn expired_signature_fails_now_but_was_valid_before() {
    let f = fixture();
    let k = keyring(&["se"]);
    let err = verify_detached(&f.data, &[&f.sigs["se"]], &k, SystemTime::now()).unwrap_err();
    let GpgError::ExpiredSignature {
        fingerprint,
        created,
        expired_at,
    } = &err
    else {
        panic!("expected ExpiredSignature, got {err:?}");
    };
    assert_eq!(fingerprint, &f.keys["se"].fpr);
    let created = created.unwrap();
    assert_eq!(*expired_at, created + Duration::from_secs(DAY));
    let msg = err.to_string();
    assert!(
        msg.contains(&cfsync_verify::format_system_time(*expired_at)),
        "{msg}"
    );
    assert!(
        msg.contains(&cfsync_verify::format_system_time(created)),
        "{msg}"
    );
    verify_detached(
        &f.data,
        &[&f.sigs["se"]],
        &k,
        created + Duration::from_secs(3600),
    )
    .unwrap();
}

#[test]
fn missing_and_malformed_signatures() {
    let f = fixture();
    let k = keyring(&["ed"]);
    let now = SystemTime::now();
    assert!(matches!(
        verify_detached(&f.data, &[], &k, now),
        Err(GpgError::NoSignatures)
    ));
    assert_eq!(
        GpgError::NoSignatures.to_string(),
        "gpg verification enabled, but no signatures found"
    );
    let err = verify_detached(&f.data, &[b"not a signature"], &k, now).unwrap_err();
    assert!(
        matches!(err, GpgError::Malformed { index: 0, .. }),
        "{err:?}"
    );
    let err = verify_detached(&f.data, &[b""], &k, now).unwrap_err();
    assert!(
        matches!(err, GpgError::Malformed { index: 0, .. }),
        "{err:?}"
    );
    // A truncated signature packet.
    let sig = &f.sigs["ed"];
    let err = verify_detached(&f.data, &[&sig[..sig.len() - 5]], &k, now).unwrap_err();
    assert!(
        matches!(
            err,
            GpgError::Malformed { .. } | GpgError::BadSignature { .. }
        ),
        "{err:?}"
    );
    // Every strict prefix of a good signature is refused (and nothing panics).
    for n in 0..sig.len() {
        assert!(
            verify_detached(&f.data, &[&sig[..n]], &k, now).is_err(),
            "prefix {n}"
        );
    }
    // Garbage next to a good signature does not hide it (each element stands alone).
    let v = verify_detached(&f.data, &[b"garbage", sig], &k, now).unwrap();
    assert!(matches!(
        v.signatures[0].status,
        SignatureStatus::Malformed { .. }
    ));
    assert!(v.signatures[1].is_valid());
}

#[test]
fn precedence_prefers_a_known_key_failure_over_unknown_keys() {
    let f = fixture();
    let k = keyring(&["exp"]);
    let err = verify_detached(
        &f.data,
        &[&f.sigs["exp"], &f.sigs["unknown"]],
        &k,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, GpgError::ExpiredKey { .. }), "{err:?}");
    let report = inspect_detached(
        &f.data,
        &[&f.sigs["exp"], &f.sigs["unknown"]],
        &k,
        SystemTime::now(),
    );
    assert_eq!(report.signatures.len(), 2);
    assert_eq!(report.signatures[1].status, SignatureStatus::UnknownKey);
    assert!(!report.is_valid());
}

#[test]
fn small_clock_skew_is_tolerated_large_is_not() {
    let f = fixture();
    let k = keyring(&["se"]);
    let sig = &f.sigs["se-plain"];
    let created = verify_detached(&f.data, &[sig], &k, SystemTime::now())
        .unwrap()
        .signatures[0]
        .created
        .unwrap();
    assert!(created >= at(f.past + DAY) && created < at(f.past + DAY + 600));
    // Ten minutes in the future: a publisher clock running ahead, accepted.
    verify_detached(&f.data, &[sig], &k, created - Duration::from_secs(600)).unwrap();
    // Two hours in the future: refused, naming the key.
    let err =
        verify_detached(&f.data, &[sig], &k, created - Duration::from_secs(2 * 3600)).unwrap_err();
    let GpgError::BadSignature {
        fingerprint,
        reason,
    } = &err
    else {
        panic!("expected BadSignature, got {err:?}");
    };
    assert_eq!(fingerprint, &f.keys["se"].fpr);
    assert!(reason.contains("Not live until"), "{reason}");
}

#[test]
fn armored_binary_and_multi_block_keyrings_load() {
    let f = fixture();
    let bin = Keyring::from_bytes(&f.keys["ed"].public).unwrap();
    let arm = Keyring::from_bytes(&f.keys["ed"].armored).unwrap();
    assert_eq!(bin.fingerprints(), vec![f.keys["ed"].fpr.clone()]);
    assert_eq!(arm.fingerprints(), bin.fingerprints());

    // Two armored exports concatenated (what `cat a.asc b.asc > keys.asc` gives).
    let mut two = f.keys["ed"].armored.clone();
    two.extend_from_slice(&f.keys["rsa"].armored);
    let k = Keyring::from_bytes(&two).unwrap();
    assert_eq!(k.len(), 2);
    assert!(k.contains(&f.keys["rsa"].fpr));
    verify_detached(&f.data, &[&f.sigs["rsa"]], &k, SystemTime::now()).unwrap();

    // The keyring file ostree wrote holds all six trusted certificates.
    let client = Keyring::from_bytes(&f.client_keyring_file).unwrap();
    assert_eq!(client.len(), 6);
    assert_eq!(f.client_keyring.len(), 6);
    assert!(!client.contains(&f.keys["unknown"].fpr));
    // Lookup by subkey fingerprint and by key ID, with gpg's spacing.
    assert!(client.contains(&f.keys["sub"].signing_fpr));
    let keyid = &f.keys["ed"].fpr[24..];
    assert!(client.contains(&format!("{} {}", &keyid[..8], &keyid[8..])));
}

#[test]
fn keybox_and_garbage_are_refused_with_clear_errors() {
    let f = fixture();
    let err = Keyring::from_bytes(&f.keybox).unwrap_err();
    assert!(matches!(err, KeyringError::Keybox { .. }), "{err:?}");
    assert!(err.to_string().contains("gpg --export"), "{err}");
    let err = Keyring::from_bytes(b"hello world").unwrap_err();
    assert!(
        matches!(err, KeyringError::Parse { .. } | KeyringError::Empty { .. }),
        "{err:?}"
    );
    let err = Keyring::from_bytes(b"").unwrap_err();
    assert!(err.to_string().contains("<memory>"), "{err}");
}

#[test]
fn secret_key_exports_load_as_public_keyrings() {
    let f = fixture();
    let k = Keyring::from_bytes(&f.secret_ed_armored).unwrap();
    assert_eq!(k.fingerprints(), vec![f.keys["ed"].fpr.clone()]);
    verify_detached(&f.data, &[&f.sigs["ed"]], &k, SystemTime::now()).unwrap();
}

#[test]
fn keyring_directories_follow_libostree() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    // trusted.gpg.d: only *.gpg, not trustdb.gpg / secring.gpg, and not subdirectories.
    let global = tmp.path().join("trusted.gpg.d");
    fs::create_dir_all(global.join("sub.gpg")).unwrap();
    fs::write(global.join("ed.gpg"), &f.keys["ed"].public).unwrap();
    fs::write(global.join("rsa.gpg"), &f.keys["rsa"].armored).unwrap();
    fs::write(global.join("trustdb.gpg"), b"not a keyring").unwrap();
    fs::write(global.join("secring.gpg"), b"not a keyring").unwrap();
    fs::write(global.join("README"), b"not a keyring").unwrap();
    let k = Keyring::from_dir(&global).unwrap();
    assert_eq!(k.len(), 2);

    // A per-remote keyring disables the global directory; gpgkeypath always applies.
    let repo = tmp.path().join("repo");
    fs::create_dir(&repo).unwrap();
    let keypath_dir = tmp.path().join("keys");
    fs::create_dir(&keypath_dir).unwrap();
    fs::write(keypath_dir.join("anything.asc"), &f.keys["se"].armored).unwrap();
    let paths = RemoteKeyringPaths {
        repo: repo.clone(),
        remote: "origin".into(),
        remotes_d: Some(tmp.path().join("remotes.d")),
        gpgkeypath: vec![keypath_dir.clone()],
        global_dir: Some(global.clone()),
    };
    let without_remote = Keyring::for_remote(&paths).unwrap();
    assert_eq!(without_remote.len(), 3, "global + gpgkeypath");
    fs::write(repo.join("origin.trustedkeys.gpg"), &f.keys["exp"].public).unwrap();
    let with_remote = Keyring::for_remote(&paths).unwrap();
    let mut fprs = with_remote.fingerprints();
    fprs.sort();
    let mut want = vec![f.keys["exp"].fpr.clone(), f.keys["se"].fpr.clone()];
    want.sort();
    assert_eq!(fprs, want);

    // remotes.d is the fallback for the per-remote keyring.
    fs::remove_file(repo.join("origin.trustedkeys.gpg")).unwrap();
    fs::create_dir(tmp.path().join("remotes.d")).unwrap();
    fs::write(
        tmp.path().join("remotes.d/origin.trustedkeys.gpg"),
        &f.keys["rev"].public,
    )
    .unwrap();
    let from_remotes_d = Keyring::for_remote(&paths).unwrap();
    assert!(from_remotes_d.contains(&f.keys["rev"].fpr));
    assert!(
        !from_remotes_d.contains(&f.keys["ed"].fpr),
        "global must be skipped"
    );

    // A missing gpgkeypath entry is an error, as in libostree.
    let mut bad = paths.clone();
    bad.gpgkeypath = vec![tmp.path().join("missing.asc")];
    let err = Keyring::for_remote(&bad).unwrap_err();
    assert!(err.to_string().contains("missing.asc"), "{err}");
}

#[test]
fn our_signatures_verify_with_gpg_and_with_us() {
    let f = fixture();
    let signer = GpgSigner::from_bytes(&f.secret_ed_armored).unwrap();
    assert_eq!(signer.fingerprint(), f.keys["ed"].fpr);
    let sig = signer.sign_detached(&f.data).unwrap();
    // A binary signature packet (old or new format tag 2), not armor.
    assert!(
        matches!(sig[0], 0x88..=0x8b | 0xc2),
        "first byte {:#x}",
        sig[0]
    );
    let v = verify_detached(&f.data, &[&sig], &keyring(&["ed"]), SystemTime::now()).unwrap();
    assert_eq!(
        v.signatures[0].fingerprint.as_deref(),
        Some(&*f.keys["ed"].fpr)
    );

    // The subkey-signing certificate signs with its subkey.
    let sub_sig = sign_detached(&f.data, &f.secret_sub).unwrap();
    let v = verify_detached(&f.data, &[&sub_sig], &keyring(&["sub"]), SystemTime::now()).unwrap();
    assert_eq!(
        v.signatures[0].fingerprint.as_deref(),
        Some(&*f.keys["sub"].signing_fpr)
    );

    // Independent check with the real gpg.
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("g");
    fs::create_dir(&home).unwrap();
    let key = tmp.path().join("ed.gpg");
    fs::write(&key, &f.keys["ed"].public).unwrap();
    run(gpg(&home).arg("--import").arg(&key));
    let (data, sigf, bad) = (
        tmp.path().join("data"),
        tmp.path().join("data.sig"),
        tmp.path().join("bad"),
    );
    fs::write(&data, &f.data).unwrap();
    fs::write(&sigf, &sig).unwrap();
    let mut tampered = f.data.clone();
    tampered[3] ^= 1;
    fs::write(&bad, tampered).unwrap();
    let good = output(gpg(&home).arg("--verify").arg(&sigf).arg(&data));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stderr).contains("Good signature"));
    let refused = output(gpg(&home).arg("--verify").arg(&sigf).arg(&bad));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("BAD signature"));
    let _ = output(
        Command::new("gpgconf")
            .env("GNUPGHOME", &home)
            .args(["--kill", "gpg-agent"]),
    );
}

#[test]
fn signing_refuses_protected_and_public_only_keys() {
    let f = fixture();
    let err = GpgSigner::from_bytes(&f.secret_protected).unwrap_err();
    assert!(matches!(err, SignError::NoSigningKey { .. }), "{err:?}");
    assert!(err.to_string().contains("password-protected"), "{err}");
    let err = sign_detached(b"x", &f.keys["ed"].public).unwrap_err();
    assert!(err.to_string().contains(&f.keys["ed"].fpr), "{err}");
    // Two usable certificates in one file: the signer refuses to guess.
    let mut two = f.secret_ed_armored.clone();
    two.extend_from_slice(&f.secret_sub_armored);
    let err = GpgSigner::from_bytes(&two).unwrap_err();
    let SignError::Ambiguous { certificates } = &err else {
        panic!("expected Ambiguous, got {err:?}");
    };
    assert_eq!(
        certificates,
        &vec![f.keys["ed"].fpr.clone(), f.keys["sub"].fpr.clone()]
    );
}
