//! Trust: signatures, bindings, downgrades and composefs digests, end to end through the
//! `cfsync` binary against repositories served by nginx.
//!
//! Signatures are made by independent implementations, never only by cfsync's signer:
//! GPG by real `gpg` through `ostree commit --gpg-sign` and `ostree summary -u
//! --gpg-sign`; ed25519 by PyNaCl (libsodium) through `python3`, since Debian's ostree
//! is built without ed25519 (install it with `apt-get install python3-nacl` or
//! `python3 -m pip install pynacl`). The other way round, what `cfsync sign` makes is
//! checked by real ostree (GPG) and by PyNaCl (ed25519).
//!
//! Every refusal is checked the same way: the pull fails with a message naming what is
//! wrong, no ref is stored, and the nginx log shows that no content was requested (no
//! `.filez`, `.dirtree`, `.dirmeta` or delta part). A delta superblock or index may have
//! been fetched: they go out with the commit to save a round trip (engine/src/trust.rs,
//! `Held`), and are read only once the commit passes its checks.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsync_formats::gvariant::OwnedValue;
use cfsync_formats::metadata::{GPGSIGS, MetadataRef, SIGN_ED25519};
use cfsync_tests::{
    Gpg, Nginx, Ostree, TreeBuilder, cfsync_command, describe, output, run_checked,
};
use serde_json::Value as Json;

const REF: &str = "test/stable";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// An archive repository served by nginx, with a GPG key to sign with (also the
/// publisher of [`crate::summary_index`]'s flatpak repositories).
pub(crate) struct Publisher {
    tmp: tempfile::TempDir,
    pub(crate) repo: Ostree,
    pub(crate) gpg: Gpg,
    pub(crate) nginx: Nginx,
    commits: u32,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        let tmp = cfsync_tests::tempdir();
        let repo = Ostree::init(tmp.path().join("repo"), "archive");
        let nginx = Nginx::serve(repo.path());
        Self {
            tmp,
            repo,
            gpg: Gpg::new(),
            nginx,
            commits: 0,
        }
    }

    /// A tree with enough files that a pull has content to fetch; `seed` varies it.
    fn tree(&mut self, seed: u64) -> PathBuf {
        self.commits += 1;
        let t = TreeBuilder::new(self.tmp.path().join(format!("tree{}", self.commits)));
        t.dir("usr/bin")
            .random_file("usr/bin/tool", 20_000, seed)
            .random_file("usr/lib/libx.so", 50_000, seed + 1)
            .file("etc/motd", format!("version {seed}\n"));
        t.root().to_path_buf()
    }

    /// Commits a fresh tree to `branch` with `extra` ostree arguments.
    pub(crate) fn commit_with<S: AsRef<OsStr>>(
        &mut self,
        branch: &str,
        seed: u64,
        extra: &[S],
    ) -> String {
        let tree = self.tree(seed);
        self.repo.commit(branch, &tree, extra)
    }

    /// Commits to [`REF`], GPG-signed by ostree.
    fn signed_commit(&mut self, seed: u64) -> String {
        let args = self.gpg.sign_args();
        self.commit_with(REF, seed, &args)
    }

    /// `ostree summary -u --gpg-sign`.
    fn signed_summary(&self) {
        self.repo.summary_update(Some(&self.gpg));
    }

    fn url(&self) -> String {
        self.nginx.url()
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.repo.path().join(rel)
    }

    fn object(&self, commit: &str, ext: &str) -> PathBuf {
        self.path(&format!("objects/{}/{}.{ext}", &commit[..2], &commit[2..]))
    }

    /// The armored public key in a file.
    fn public_key(&self) -> PathBuf {
        self.gpg.write_public_key(self.tmp.path().join("key.asc"))
    }

    /// A fresh cfsync repository with remote `origin` trusting the publisher's key and
    /// verifying commits and the summary, plus `extra` `remote add` arguments.
    pub(crate) fn client(&self, extra: &[&str]) -> Client {
        let c = Client::new(self.tmp.path());
        let key = self.public_key();
        let mut args = vec![
            "remote".to_owned(),
            "add".to_owned(),
            "origin".to_owned(),
            self.url(),
            format!("--gpg-import={}", key.display()),
            "--set=gpg-verify-summary=true".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        c.ok(&args);
        c
    }
}

/// A cfsync repository driven through the binary.
pub(crate) struct Client {
    path: PathBuf,
}

impl Client {
    fn new(base: &Path) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            path: base.join(format!("client{n}")),
        }
    }

    /// `cfsync --repo PATH --quiet ARGS`, with an empty global keyring directory
    /// (`OSTREE_GPG_HOME`) and no system remotes, so only the keys a test imports count.
    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let empty = self.path.with_extension("empty");
        fs::create_dir_all(&empty).unwrap();
        let mut c = cfsync_command();
        c.env("OSTREE_GPG_HOME", &empty)
            .arg("--repo")
            .arg(&self.path)
            .arg("--remotes-dir")
            .arg(&empty)
            .arg("--quiet")
            .args(args);
        c
    }

    pub(crate) fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        output(&mut self.command(args))
    }

    pub(crate) fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        String::from_utf8_lossy(&run_checked(&mut self.command(args)).stdout).into_owned()
    }

    fn pull(&self, extra: &[&str]) -> Output {
        let mut args = vec!["pull", "--json"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["origin", REF]);
        self.run(&args)
    }

    /// Pulls; panics unless it succeeds; returns the JSON stats.
    fn pull_ok(&self, extra: &[&str]) -> Json {
        let out = self.pull(extra);
        assert!(out.status.success(), "pull failed: {}", describe(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `ref -> commit`.
    pub(crate) fn refs(&self) -> Vec<(String, String)> {
        let v: Json = serde_json::from_str(&self.ok(&["refs", "--json"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["ref"].as_str().unwrap().to_owned(),
                    r["commit"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn ref_target(&self) -> Option<String> {
        self.refs()
            .into_iter()
            .find(|(r, _)| r == REF)
            .map(|(_, c)| c)
    }
}

/// Requests for content (anything a pull fetches after the commit is accepted).
fn content_requests(nginx: &Nginx) -> Vec<String> {
    nginx
        .log()
        .into_iter()
        .map(|e| e.uri)
        .filter(|u| {
            u.ends_with(".filez")
                || u.ends_with(".file")
                || u.ends_with(".dirtree")
                || u.ends_with(".dirmeta")
                || (u.starts_with("/deltas/") && !u.ends_with("/superblock"))
        })
        .collect()
}

/// Pulls with `client` and checks the refusal: failure, every `needles` in the message,
/// no ref stored (or the ref still at `kept`), and no content requested from nginx.
fn assert_refused(
    p: &Publisher,
    client: &Client,
    extra: &[&str],
    kept: Option<&str>,
    needles: &[&str],
) -> String {
    p.nginx.reset_log();
    let out = client.pull(extra);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "pull succeeded: {}", describe(&out));
    for n in needles {
        assert!(
            stderr.contains(n),
            "message lacks {n:?}:\n{}",
            describe(&out)
        );
    }
    assert_eq!(
        client.ref_target().as_deref(),
        kept,
        "the ref moved after a refused pull: {stderr}"
    );
    let content = content_requests(&p.nginx);
    assert!(
        content.is_empty(),
        "content was fetched before the refusal: {content:?}\n{stderr}"
    );
    stderr
}

fn flip_byte(path: &Path, offset: usize) {
    let mut b = fs::read(path).unwrap();
    b[offset] ^= 0x01;
    fs::write(path, b).unwrap();
}

/// Offset of `part` (a slice of `whole`) inside `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    let off = part.as_ptr() as usize - whole.as_ptr() as usize;
    assert!(off + part.len() <= whole.len());
    off
}

/// Flips the last byte of the first signature under `key` in the `a{sv}` file at `path`
/// (inside the signature value, so the metadata still parses).
fn flip_signature_byte(path: &Path, key: &str) {
    let bytes = fs::read(path).unwrap();
    let meta = MetadataRef::from_bytes(&bytes).unwrap();
    let sigs = meta.get_bytes_array(key).unwrap().unwrap();
    let off = offset_in(&bytes, sigs[0]) + sigs[0].len() - 2;
    flip_byte(path, off);
}

/// The `a{sv}` detached metadata `{key: aay sigs}`.
fn signature_metadata(key: &str, sigs: &[Vec<u8>]) -> Vec<u8> {
    let items = sigs.iter().map(|s| OwnedValue::bytes(s.clone())).collect();
    OwnedValue::array(
        "{sv}",
        vec![OwnedValue::entry(
            OwnedValue::str(key),
            OwnedValue::Variant(Box::new(OwnedValue::array("ay", items))),
        )],
    )
    .to_bytes()
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// PyNaCl (an ed25519 implementation independent of cfsync's)
// ---------------------------------------------------------------------------------------

const PYNACL_HINT: &str = "install PyNaCl: `apt-get install python3-nacl` (Debian) or \
                           `python3 -m pip install pynacl`";

/// The first Python with PyNaCl importable: `python3` on `PATH`, else Debian's
/// `/usr/bin/python3` (where `python3-nacl` installs). Panics with the install hint.
fn python_with_nacl() -> &'static str {
    static PY: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        for py in ["python3", "/usr/bin/python3"] {
            let ok = Command::new(py)
                .args(["-c", "import nacl.signing"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return py;
            }
        }
        panic!("no python3 with PyNaCl found; {PYNACL_HINT}");
    })
}

fn python(script: &str, args: &[&str]) -> String {
    let out = output(
        Command::new(python_with_nacl())
            .arg("-c")
            .arg(script)
            .args(args),
    );
    assert!(
        out.status.success(),
        "python3 (PyNaCl) failed ({PYNACL_HINT}):\n{}",
        describe(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A PyNaCl key: (32-byte seed as hex, public key base64 as ostree writes it).
fn pynacl_keygen() -> (String, String) {
    let out = python(
        "import base64, nacl.signing\n\
         k = nacl.signing.SigningKey.generate()\n\
         print(k.encode().hex()); print(base64.b64encode(bytes(k.verify_key)).decode())",
        &[],
    );
    let mut lines = out.lines();
    (
        lines.next().unwrap().to_owned(),
        lines.next().unwrap().to_owned(),
    )
}

/// PyNaCl's 64-byte ed25519 signature of the file at `data`.
fn pynacl_sign(seed_hex: &str, data: &Path) -> Vec<u8> {
    let out = python(
        "import sys, nacl.signing\n\
         k = nacl.signing.SigningKey(bytes.fromhex(sys.argv[1]))\n\
         print(k.sign(open(sys.argv[2], 'rb').read()).signature.hex())",
        &[seed_hex, data.to_str().unwrap()],
    );
    let sig = hex::decode(out.trim()).unwrap();
    assert_eq!(sig.len(), 64);
    sig
}

/// Whether PyNaCl accepts `sig` over the file at `data` for the base64 public key.
fn pynacl_verifies(public_b64: &str, data: &Path, sig: &[u8]) -> bool {
    let out = python(
        "import sys, base64, nacl.signing, nacl.exceptions\n\
         k = nacl.signing.VerifyKey(base64.b64decode(sys.argv[1]))\n\
         try:\n    k.verify(open(sys.argv[2], 'rb').read(), bytes.fromhex(sys.argv[3])); print('ok')\n\
         except nacl.exceptions.BadSignatureError:\n    print('bad')",
        &[public_b64, data.to_str().unwrap(), &hex::encode(sig)],
    );
    match out.trim() {
        "ok" => true,
        "bad" => false,
        other => panic!("unexpected PyNaCl output {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// GPG, signed by ostree
// ---------------------------------------------------------------------------------------

/// Commits and summary signed by `ostree --gpg-sign` pass with an armored and with a
/// binary key import; the signatures are reported by fingerprint.
#[test]
fn gpg_signed_by_ostree_passes_with_armored_and_binary_keys() {
    let mut p = Publisher::new();
    let commit = p.signed_commit(1);
    p.signed_summary();

    let c = p.client(&[]);
    p.nginx.reset_log();
    let v = c.pull_ok(&[]);
    assert_eq!(v["commit"], commit.as_str());
    // The "no content" check of the refusals sees content when there is some.
    let content = content_requests(&p.nginx);
    assert!(
        content.iter().any(|u| u.ends_with(".filez"))
            && content.iter().any(|u| u.ends_with(".dirtree")),
        "{content:?}"
    );
    let sigs: Vec<&str> = v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    assert!(sigs.iter().all(|s| s.contains(p.gpg.key_id())), "{sigs:?}");
    assert_eq!(c.ref_target().as_deref(), Some(commit.as_str()));
    // The key is kept like ostree's per-remote keyring.
    let keyring = c.path.join("cfsync/remotes.d/origin.trustedkeys.gpg");
    assert!(keyring.is_file(), "no {}", keyring.display());

    // Binary key import.
    let bin = p.tmp.path().join("key.gpg");
    fs::write(&bin, p.gpg.public_key_binary()).unwrap();
    let c2 = Client::new(p.tmp.path());
    c2.ok(&[
        "remote",
        "add",
        "origin",
        &p.url(),
        &format!("--gpg-import={}", bin.display()),
        "--set=gpg-verify-summary=true",
    ]);
    assert_eq!(c2.pull_ok(&[])["commit"], commit.as_str());

    // Deleting the remote removes its keyring; without keys, verification cannot pass.
    c2.ok(&["remote", "delete", "origin"]);
    assert!(
        !c2.path
            .join("cfsync/remotes.d/origin.trustedkeys.gpg")
            .exists()
    );
    let c3 = Client::new(p.tmp.path());
    c3.ok(&["remote", "add", "origin", &p.url()]);
    assert_refused(
        &p,
        &c3,
        &[],
        None,
        &["no trusted key is configured", "--gpg-import"],
    );
}

/// A flipped byte in the commit object, in the commitmeta signature, or in the summary
/// is refused before any content is fetched.
#[test]
fn flipped_bytes_are_refused_before_content() {
    let mut p = Publisher::new();
    let commit = p.signed_commit(2);
    p.signed_summary();

    // commitmeta: the signature no longer matches.
    let meta = p.object(&commit, "commitmeta");
    let saved = fs::read(&meta).unwrap();
    flip_signature_byte(&meta, GPGSIGS);
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[
            &format!("commit {commit}"),
            "GPG verification failed",
            "bad gpg signature",
            p.gpg.key_id(),
        ],
    );
    fs::write(&meta, &saved).unwrap();

    // commit object: its bytes no longer hash to its name.
    let obj = p.object(&commit, "commit");
    let saved = fs::read(&obj).unwrap();
    let len = saved.len();
    flip_byte(&obj, len / 2);
    let c = p.client(&[]);
    assert_refused(&p, &c, &[], None, &[&commit[2..], "checksum mismatch"]);
    fs::write(&obj, &saved).unwrap();

    // summary: summary.sig no longer matches.
    let summary = p.path("summary");
    let saved = fs::read(&summary).unwrap();
    flip_byte(&summary, saved.len() / 2);
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &["summary: GPG verification failed", "bad gpg signature"],
    );
    fs::write(&summary, &saved).unwrap();

    // Restored, everything passes.
    let c = p.client(&[]);
    assert_eq!(c.pull_ok(&[])["commit"], commit.as_str());
}

/// A summary.sig from an earlier summary (validly signed, but over other bytes) is
/// refused; so is a summary without summary.sig.
#[test]
fn replaced_or_missing_summary_sig_is_refused() {
    let mut p = Publisher::new();
    p.signed_commit(3);
    p.signed_summary();
    let old_sig = fs::read(p.path("summary.sig")).unwrap();
    p.signed_commit(4);
    p.signed_summary();
    fs::write(p.path("summary.sig"), &old_sig).unwrap();
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &["summary: GPG verification failed", "bad gpg signature"],
    );
    fs::remove_file(p.path("summary.sig")).unwrap();
    let c = p.client(&[]);
    assert_refused(&p, &c, &[], None, &["summary", "no summary.sig"]);
}

/// A commit signed by a key outside the remote's keyring is refused, naming the key.
#[test]
fn signature_by_unknown_key_is_refused() {
    let mut p = Publisher::new();
    let other = Gpg::new();
    let commit = p.commit_with(REF, 5, &other.sign_args());
    p.signed_summary();
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[
            &format!("commit {commit}"),
            "no signature from a trusted key",
            other.key_id(),
        ],
    );
    // The summary signed by the unknown key is refused too.
    p.repo.summary_update(Some(&other));
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &["summary", "no signature from a trusted key", other.key_id()],
    );
}

/// An unsigned commit, and a signed commit whose .commitmeta is gone, are refused; with
/// gpg-verify=false the same commit pulls.
#[test]
fn missing_commit_signature_is_refused() {
    let mut p = Publisher::new();
    let commit = p.commit_with::<&str>(REF, 6, &[]);
    p.signed_summary();
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[&format!("commit {commit}"), "no signature found"],
    );
    let c = p.client(&["--set=gpg-verify=false"]);
    assert_eq!(c.pull_ok(&[])["commit"], commit.as_str());

    let commit = p.signed_commit(7);
    p.signed_summary();
    fs::remove_file(p.object(&commit, "commitmeta")).unwrap();
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[&format!("commit {commit}"), "no signature found"],
    );
}

/// A key that has expired since it signed (ostree signed while gpg's clock said the key
/// was valid) is refused with its fingerprint and expiry time.
#[test]
fn expired_key_is_refused() {
    let mut p = Publisher::new();
    let home = p.tmp.path().join("expired-gnupg");
    fs::create_dir(&home).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let past = now - 10 * 86400;
    let gpg = |args: &[&str]| {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(&home).args(["--batch", "--quiet"]);
        c.args(args);
        run_checked(&mut c)
    };
    gpg(&[
        "--faked-system-time",
        &past.to_string(),
        "--passphrase",
        "",
        "--quick-gen-key",
        "expired <expired@example.invalid>",
        "ed25519",
        "sign",
        "1d",
    ]);
    let listing = String::from_utf8(gpg(&["--with-colons", "--list-keys"]).stdout).unwrap();
    let field = |prefix: &str, n: usize| {
        listing
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split(':').nth(n))
            .unwrap()
            .to_owned()
    };
    let fpr = field("fpr:", 9);
    let expires: i64 = field("pub:", 6).parse().unwrap();
    // ostree signs through gpgme, which runs gpg with this home's gpg.conf.
    fs::write(
        home.join("gpg.conf"),
        format!("faked-system-time {}\n", past + 3600),
    )
    .unwrap();
    let args = [
        format!("--gpg-sign={fpr}"),
        format!("--gpg-homedir={}", home.display()),
    ];
    let commit = p.commit_with(REF, 8, &args);
    p.signed_summary();
    let key = p.tmp.path().join("expired.asc");
    fs::write(&key, gpg(&["--armor", "--export", &fpr]).stdout).unwrap();
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(&home)
        .args(["--kill", "all"])
        .status();

    let c = Client::new(p.tmp.path());
    c.ok(&[
        "remote",
        "add",
        "origin",
        &p.url(),
        &format!("--gpg-import={}", key.display()),
    ]);
    let expiry = cfsync_verify::format_unix_utc(expires);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[
            &format!("commit {commit}"),
            &format!("gpg key {fpr} expired at {expiry}"),
        ],
    );
}

/// A revoked key is refused, naming the key and the revocation.
#[test]
fn revoked_key_is_refused() {
    let mut p = Publisher::new();
    let commit = p.signed_commit(9);
    p.signed_summary();
    let fpr = p.gpg.key_id().to_owned();
    let rev = p
        .gpg
        .home()
        .join("openpgp-revocs.d")
        .join(format!("{fpr}.rev"));
    // gpg writes the certificate with the armor header line escaped by ':'.
    let text = fs::read_to_string(&rev)
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    let rev_clean = p.tmp.path().join("revocation.asc");
    fs::write(&rev_clean, text).unwrap();
    run_checked(p.gpg.command().arg("--import").arg(&rev_clean));
    let key = p.gpg.write_public_key(p.tmp.path().join("revoked.asc"));
    let c = Client::new(p.tmp.path());
    c.ok(&[
        "remote",
        "add",
        "origin",
        &p.url(),
        &format!("--gpg-import={}", key.display()),
    ]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[&format!("commit {commit}"), &fpr, "revoked"],
    );
}

// ---------------------------------------------------------------------------------------
// Bindings and downgrades
// ---------------------------------------------------------------------------------------

/// A commit served under a ref it is not bound to is refused before content.
#[test]
fn ref_binding_mismatch_is_refused() {
    let mut p = Publisher::new();
    let args = p.gpg.sign_args();
    let commit = p.commit_with("other/branch", 10, &args);
    p.repo.run(["refs", &format!("--create={REF}"), &commit]);
    p.signed_summary();
    let c = p.client(&[]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[&commit, "bound to refs", "other/branch", REF],
    );
}

/// With a collection ID on the remote, commits need a matching collection binding.
#[test]
fn collection_binding_is_checked() {
    let mut p = Publisher::new();
    let commit = p.signed_commit(11);
    p.signed_summary();
    // The commit has a ref binding but no collection binding.
    let c = p.client(&["--set=collection-id=org.example.Other"]);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[&commit, "no collection binding", "org.example.Other"],
    );

    // A repository with a collection ID binds its commits to it.
    let tmp = cfsync_tests::tempdir();
    let repo = Ostree::open(tmp.path().join("repo"));
    repo.run(["init", "--mode=archive", "--collection-id=org.example.Repo"]);
    let tree = p.tree(12);
    let commit = repo.commit(REF, &tree, p.gpg.sign_args());
    repo.summary_update(Some(&p.gpg));
    let nginx = Nginx::serve(repo.path());
    let key = p.public_key();
    for (cid, ok) in [("org.example.Repo", true), ("org.example.Other", false)] {
        let c = Client::new(p.tmp.path());
        c.ok(&[
            "remote",
            "add",
            "origin",
            &nginx.url(),
            &format!("--gpg-import={}", key.display()),
            &format!("--set=collection-id={cid}"),
        ]);
        let out = c.pull(&[]);
        if ok {
            assert!(out.status.success(), "{}", describe(&out));
            assert_eq!(c.ref_target().as_deref(), Some(commit.as_str()));
        } else {
            let msg = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{}", describe(&out));
            assert!(
                msg.contains("bound to collection \"org.example.Repo\"")
                    && msg.contains("org.example.Other"),
                "{msg}"
            );
            assert_eq!(c.ref_target(), None);
        }
    }
}

/// A commit older than the ref's current one is refused before content, the ref stays;
/// `--allow-downgrade` accepts it.
#[test]
fn downgrade_is_refused_unless_allowed() {
    let mut p = Publisher::new();
    let mut args = p.gpg.sign_args();
    args.push("--timestamp=2025-06-01T00:00:00Z".into());
    let newer = p.commit_with(REF, 13, &args);
    p.signed_summary();
    let c = p.client(&[]);
    assert_eq!(c.pull_ok(&[])["commit"], newer.as_str());

    let mut args = p.gpg.sign_args();
    args.push("--timestamp=2024-01-01T00:00:00Z".into());
    let older = p.commit_with(REF, 14, &args);
    p.signed_summary();
    assert_refused(
        &p,
        &c,
        &[],
        Some(&newer),
        &[
            &older,
            &newer,
            "older than current commit",
            "2024-01-01",
            "2025-06-01",
            "--allow-downgrade",
        ],
    );
    let v = c.pull_ok(&["--allow-downgrade"]);
    assert_eq!(v["commit"], older.as_str());
    assert_eq!(c.ref_target().as_deref(), Some(older.as_str()));
}

// ---------------------------------------------------------------------------------------
// ed25519, signed by PyNaCl
// ---------------------------------------------------------------------------------------

/// Writes PyNaCl's signatures of the commit and the summary as ostree's sign API
/// stores them.
fn pynacl_sign_commit_and_summary(p: &Publisher, commit: &str, seed: &str) {
    let sig = pynacl_sign(seed, &p.object(commit, "commit"));
    fs::write(
        p.object(commit, "commitmeta"),
        signature_metadata(SIGN_ED25519, &[sig]),
    )
    .unwrap();
    let sig = pynacl_sign(seed, &p.path("summary"));
    fs::write(
        p.path("summary.sig"),
        signature_metadata(SIGN_ED25519, &[sig]),
    )
    .unwrap();
}

fn ed25519_client(p: &Publisher, key_option: &str) -> Client {
    let c = Client::new(p.tmp.path());
    c.ok(&[
        "remote",
        "add",
        "origin",
        &p.url(),
        "--no-gpg-verify",
        "--set=sign-verify=ed25519",
        "--set=sign-verify-summary=ed25519",
        key_option,
    ]);
    c
}

/// PyNaCl-signed commit and summary pass with an inline key and with a key file; a
/// flipped signature byte, another key, or no signature are refused before content.
#[test]
fn ed25519_signed_by_pynacl() {
    let mut p = Publisher::new();
    let commit = p.commit_with::<&str>(REF, 15, &[]);
    p.repo.summary_update(None);
    let (seed, public) = pynacl_keygen();
    pynacl_sign_commit_and_summary(&p, &commit, &seed);

    let inline = format!("--set=verification-ed25519-key={public}");
    let c = ed25519_client(&p, &inline);
    let v = c.pull_ok(&[]);
    assert_eq!(v["commit"], commit.as_str());
    let sigs = v["signatures"].to_string();
    assert!(
        sigs.matches(&format!("ed25519: good signature by key {public}"))
            .count()
            == 2,
        "{sigs}"
    );

    let key_file = p.tmp.path().join("trusted.ed25519");
    let (_, other_public) = pynacl_keygen();
    fs::write(&key_file, format!("{other_public}\n{public}\n")).unwrap();
    let file_opt = format!("--set=verification-ed25519-file={}", key_file.display());
    let c = ed25519_client(&p, &file_opt);
    assert_eq!(c.pull_ok(&[])["commit"], commit.as_str());

    // Flipped byte in the commit's signature.
    let meta = p.object(&commit, "commitmeta");
    let saved = fs::read(&meta).unwrap();
    flip_signature_byte(&meta, SIGN_ED25519);
    let c = ed25519_client(&p, &inline);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[
            &format!("commit {commit}: ed25519 verification failed"),
            &public,
        ],
    );
    fs::write(&meta, &saved).unwrap();

    // Flipped byte in the summary's signature.
    let sig = p.path("summary.sig");
    let saved = fs::read(&sig).unwrap();
    flip_signature_byte(&sig, SIGN_ED25519);
    let c = ed25519_client(&p, &inline);
    assert_refused(&p, &c, &[], None, &["summary: ed25519 verification failed"]);
    fs::write(&sig, &saved).unwrap();

    // Flipped byte in the summary itself.
    let summary = p.path("summary");
    let saved = fs::read(&summary).unwrap();
    flip_byte(&summary, saved.len() / 2);
    let c = ed25519_client(&p, &inline);
    assert_refused(&p, &c, &[], None, &["summary: ed25519 verification failed"]);
    fs::write(&summary, &saved).unwrap();

    // Signed by a key the remote does not trust.
    let (other_seed, _) = pynacl_keygen();
    pynacl_sign_commit_and_summary(&p, &commit, &other_seed);
    let c = ed25519_client(&p, &inline);
    assert_refused(&p, &c, &[], None, &["ed25519 verification failed", &public]);
    // ...only the commit: the summary is fine, the commit is not.
    let sig = pynacl_sign(&seed, &p.path("summary"));
    fs::write(
        p.path("summary.sig"),
        signature_metadata(SIGN_ED25519, &[sig]),
    )
    .unwrap();
    let c = ed25519_client(&p, &inline);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[&format!("commit {commit}: ed25519 verification failed")],
    );

    // No signature at all on the commit.
    fs::remove_file(&meta).unwrap();
    let c = ed25519_client(&p, &inline);
    assert_refused(
        &p,
        &c,
        &[],
        None,
        &[&format!("commit {commit}"), "no signature found"],
    );
}

// ---------------------------------------------------------------------------------------
// cfsync sign, checked by ostree and PyNaCl
// ---------------------------------------------------------------------------------------

/// `cfsync sign` output: GPG signatures that real ostree accepts on pull (commit and
/// summary), ed25519 signatures that PyNaCl accepts, and both pass cfsync's own pull.
#[test]
fn cfsync_sign_is_accepted_by_ostree_and_pynacl() {
    let mut p = Publisher::new();
    let commit = p.commit_with::<&str>(REF, 16, &[]);
    p.repo.summary_update(None);
    let secret = p.tmp.path().join("secret.asc");
    let exported = run_checked(p.gpg.command().args([
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--armor",
        "--export-secret-keys",
        p.gpg.key_id(),
    ]));
    fs::write(&secret, exported.stdout).unwrap();
    let ed_key = p.tmp.path().join("ed25519.secret");
    let public = cfsync_tests::run_cfsync_ok([
        OsStr::new("sign"),
        OsStr::new("keygen"),
        OsStr::new("--secret-key"),
        ed_key.as_os_str(),
    ]);
    let public = public.trim().to_owned();
    let repo_s = p.repo.path().to_str().unwrap().to_owned();
    for what in [
        vec!["sign", "commit", &repo_s, REF],
        vec!["sign", "summary", &repo_s],
    ] {
        let mut args = what.clone();
        let (g, e) = (secret.to_str().unwrap(), ed_key.to_str().unwrap());
        args.extend(["--gpg-key", g, "--ed25519-key", e]);
        cfsync_tests::run_cfsync_ok(&args);
    }

    // PyNaCl verifies the ed25519 signatures.
    for (data, meta) in [
        (p.object(&commit, "commit"), p.object(&commit, "commitmeta")),
        (p.path("summary"), p.path("summary.sig")),
    ] {
        let bytes = fs::read(&meta).unwrap();
        let m = MetadataRef::from_bytes(&bytes).unwrap();
        let sigs = m.get_bytes_array(SIGN_ED25519).unwrap().unwrap();
        assert_eq!(sigs.len(), 1);
        assert!(
            pynacl_verifies(&public, &data, sigs[0]),
            "{}",
            meta.display()
        );
        assert!(!pynacl_verifies(&public, &meta, sigs[0]));
        assert_eq!(m.get_bytes_array(GPGSIGS).unwrap().unwrap().len(), 1);
    }

    // Real ostree pulls with gpg-verify and gpg-verify-summary.
    let tmp = cfsync_tests::tempdir();
    let client = Ostree::init(tmp.path().join("ostree-client"), "bare-user");
    let key = p.public_key();
    client.run([
        "remote",
        "add",
        &format!("--gpg-import={}", key.display()),
        "--set=gpg-verify=true",
        "--set=gpg-verify-summary=true",
        "origin",
        &p.url(),
    ]);
    client.run(["pull", "origin", REF]);
    assert_eq!(client.rev_parse(&format!("origin:{REF}")), commit);
    // ostree refuses when cfsync's signature is damaged (so the check above means it).
    let meta = p.object(&commit, "commitmeta");
    let saved = fs::read(&meta).unwrap();
    flip_signature_byte(&meta, GPGSIGS);
    let bad = Ostree::init(tmp.path().join("ostree-client2"), "bare-user");
    bad.run([
        "remote",
        "add",
        &format!("--gpg-import={}", key.display()),
        "origin",
        &p.url(),
    ]);
    let out = bad.try_run(["pull", "origin", REF]);
    assert!(!out.status.success(), "ostree accepted a damaged signature");
    fs::write(&meta, &saved).unwrap();

    // And cfsync pulls with either engine.
    let c = p.client(&[]);
    assert_eq!(c.pull_ok(&[])["commit"], commit.as_str());
    let c = ed25519_client(&p, &format!("--set=verification-ed25519-key={public}"));
    assert_eq!(c.pull_ok(&[])["commit"], commit.as_str());
}

// ---------------------------------------------------------------------------------------
// ostree.composefs.digest.v0
// ---------------------------------------------------------------------------------------

/// GVariant text of an `ay` for `ostree commit --add-metadata`.
fn ay_text(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    format!("@ay [byte {}]", items.join(", "))
}

/// A commit declaring the composefs digest cfsync's image has passes; a wrong digest is
/// refused in a sha256 repository and the ref is not moved, also on a second attempt
/// when the image is already stored. (sha512 repositories cannot compare and accept.)
#[test]
fn composefs_digest_is_checked_against_the_image() {
    let mut p = Publisher::new();
    let tree = p.tree(17);
    let plain = p.repo.commit(REF, &tree, p.gpg.sign_args());
    p.signed_summary();
    // The image cfsync builds for this tree, measured with sha256 fs-verity.
    let probe = Client::new(p.tmp.path());
    probe.ok(&["--hash", "sha256", "init"]);
    probe.ok(&[
        "remote",
        "add",
        "origin",
        &p.url(),
        &format!("--gpg-import={}", p.public_key().display()),
    ]);
    let v = probe.pull_ok(&[]);
    assert_eq!(v["commit"], plain.as_str());
    let digest = hex::decode(v["image"].as_str().unwrap()).unwrap();
    assert_eq!(digest.len(), 32);

    let mut args = p.gpg.sign_args();
    args.push(
        format!(
            "--add-metadata=ostree.composefs.digest.v0={}",
            ay_text(&digest)
        )
        .into(),
    );
    args.push("--timestamp=2030-01-01T00:00:00Z".into());
    let good = p.repo.commit(REF, &tree, &args);
    p.signed_summary();
    // sha512 repositories cannot compare (their images differ from the publisher's by
    // construction) and accept; sha256 ones compare and accept.
    for hash in ["sha256", "sha512"] {
        let c = Client::new(p.tmp.path());
        c.ok(&["--hash", hash, "init"]);
        c.ok(&[
            "remote",
            "add",
            "origin",
            &p.url(),
            &format!("--gpg-import={}", p.public_key().display()),
        ]);
        let v = c.pull_ok(&[]);
        assert_eq!(v["commit"], good.as_str(), "{hash}");
    }

    let mut wrong = digest.clone();
    wrong[0] ^= 0xff;
    let mut args = p.gpg.sign_args();
    args.push(
        format!(
            "--add-metadata=ostree.composefs.digest.v0={}",
            ay_text(&wrong)
        )
        .into(),
    );
    args.push("--timestamp=2031-01-01T00:00:00Z".into());
    let bad = p.repo.commit(REF, &tree, &args);
    p.signed_summary();
    let c = Client::new(p.tmp.path());
    c.ok(&["--hash", "sha256", "init"]);
    c.ok(&[
        "remote",
        "add",
        "origin",
        &p.url(),
        &format!("--gpg-import={}", p.public_key().display()),
    ]);
    for attempt in 0..2 {
        let out = c.pull(&[]);
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "attempt {attempt}: {}",
            describe(&out)
        );
        assert!(
            msg.contains(&format!(
                "commit {bad}: ostree.composefs.digest.v0 is {}",
                hex::encode(&wrong)
            )) && msg.contains(&hex::encode(&digest)),
            "attempt {attempt}: {msg}"
        );
        assert_eq!(c.ref_target(), None, "attempt {attempt}");
    }
}

// ---------------------------------------------------------------------------------------
// summary.idx.sig
// ---------------------------------------------------------------------------------------

/// `summary.idx.sig` is verified under the summary policy keys: a gpg signature (made by
/// `gpg` itself) and `cfsync sign summary --index` pass, a flipped byte or a missing file
/// fails, and gpg accepts what `cfsync sign` made.
#[test]
fn summary_index_signatures() {
    use cfsync_engine::trust::Trust;
    use cfsync_verify::gpg::Keyring;
    use cfsync_verify::policy::RemotePolicy;

    let mut p = Publisher::new();
    p.commit_with::<&str>(REF, 18, &[]);
    p.repo.summary_update(None);
    // Debian's ostree writes no summary.idx (flatpak does); any bytes stand in for one.
    let index = b"summary index stand-in\n".repeat(20);
    fs::write(p.path("summary.idx"), &index).unwrap();

    let trust = Trust {
        policy: RemotePolicy::from_options([("gpg-verify-summary", "true")]).unwrap(),
        gpg: Keyring::from_bytes(&p.gpg.public_key_binary()).unwrap(),
        ..Trust::default()
    };
    let by_gpg = signature_metadata(GPGSIGS, &[p.gpg.sign_detached(&index)]);
    let lines = trust.verify_summary_index(&index, Some(&by_gpg)).unwrap();
    assert!(lines[0].contains(p.gpg.key_id()), "{lines:?}");
    let mut flipped = index.clone();
    flipped[3] ^= 1;
    let err = trust
        .verify_summary_index(&flipped, Some(&by_gpg))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("summary index: GPG verification failed"),
        "{err}"
    );
    let err = trust
        .verify_summary_index(&index, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no summary.idx.sig"), "{err}");
    // With verification off nothing is required.
    assert!(
        Trust::unverified()
            .verify_summary_index(&flipped, None)
            .unwrap()
            .is_empty()
    );

    // cfsync sign summary --index.
    let secret = p.tmp.path().join("secret.gpg");
    let exported = run_checked(p.gpg.command().args([
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--export-secret-keys",
        p.gpg.key_id(),
    ]));
    fs::write(&secret, exported.stdout).unwrap();
    cfsync_tests::run_cfsync_ok([
        OsStr::new("sign"),
        OsStr::new("summary"),
        OsStr::new("--index"),
        p.repo.path().as_os_str(),
        OsStr::new("--gpg-key"),
        secret.as_os_str(),
    ]);
    let sig = fs::read(p.path("summary.idx.sig")).unwrap();
    trust.verify_summary_index(&index, Some(&sig)).unwrap();
    // gpg verifies the detached signature cfsync wrote.
    let m = MetadataRef::from_bytes(&sig).unwrap();
    let blob = m.get_bytes_array(GPGSIGS).unwrap().unwrap()[0].to_vec();
    let sig_file = p.tmp.path().join("idx.sig");
    fs::write(&sig_file, blob).unwrap();
    run_checked(
        p.gpg
            .command()
            .arg("--verify")
            .arg(&sig_file)
            .arg(p.path("summary.idx")),
    );
    // summary.sig was written too, and the summary verifies with it.
    let summary = fs::read(p.path("summary")).unwrap();
    let summary_sig = fs::read(p.path("summary.sig")).unwrap();
    trust.verify_summary(&summary, Some(&summary_sig)).unwrap();
}

/// A commit already in the repository (stored by an unverified pull by URL) is
/// verified before a verifying remote's pull moves another ref to it.
#[test]
fn stored_commit_is_verified_before_a_ref_moves_to_it() {
    let mut p = Publisher::new();
    // Unsigned and unbound, so only the signature check can refuse it.
    let commit = p.commit_with(REF, 19, &["--no-bindings"]);
    p.repo.run(["refs", "--create=other/ref", &commit]);
    p.signed_summary();
    let c = p.client(&[]);
    // The plain URL pull verifies no signature and stores the commit under REF.
    let out = c.run(&["pull", &p.url(), REF]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(c.ref_target().as_deref(), Some(commit.as_str()));

    let out = c.run(&["pull", "origin", "other/ref"]);
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        msg.contains(&format!("commit {commit}")) && msg.contains("no signature found"),
        "{msg}"
    );
    assert!(!c.refs().iter().any(|(r, _)| r == "other/ref"));

    // Signed now (by ostree), the same stored commit is accepted without refetching.
    p.repo.run([
        "gpg-sign",
        &format!("--gpg-homedir={}", p.gpg.home().display()),
        &commit,
        p.gpg.key_id(),
    ]);
    let out = c.run(&["pull", "--json", "origin", "other/ref"]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["up_to_date"], true, "{v}");
    assert!(v["signatures"].to_string().contains(p.gpg.key_id()), "{v}");
    assert!(
        c.refs()
            .iter()
            .any(|(r, x)| r == "other/ref" && *x == commit)
    );

    // Stored with a saved .commitmeta signed by an unknown key: refused; once the
    // server's copy carries a trusted signature too, accepted.
    let other = Gpg::new();
    let mut args = other.sign_args();
    args.push("--no-bindings".into());
    let commit = p.commit_with(REF, 20, &args);
    p.repo.run(["refs", "--create=third/ref", &commit]);
    p.signed_summary();
    let out = c.run(&["pull", &p.url(), REF]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = c.run(&["pull", "origin", "third/ref"]);
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        msg.contains("no signature from a trusted key") && msg.contains(other.key_id()),
        "{msg}"
    );
    p.repo.run([
        "gpg-sign",
        &format!("--gpg-homedir={}", p.gpg.home().display()),
        &commit,
        p.gpg.key_id(),
    ]);
    let out = c.run(&["pull", "--json", "origin", "third/ref"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        c.refs()
            .iter()
            .any(|(r, x)| r == "third/ref" && *x == commit)
    );
}

/// With the delta listed in the summary, the pull takes the commit and its detached
/// metadata from the delta's superblock (ostree embeds both): neither `.commit` nor
/// `.commitmeta` is requested, and the signature is verified as for a fetched commit. A
/// commit signed after its delta was made (its superblock carries no signature) still
/// verifies: its own `.commitmeta` is fetched then. A commit signed nowhere is refused
/// before any part is fetched.
#[test]
fn the_commit_and_its_signatures_come_with_the_delta_superblock() {
    let mut p = Publisher::new();
    let v1 = p.signed_commit(21);
    let v2 = p.signed_commit(22);
    p.repo
        .static_delta_generate(["--from", v1.as_str(), "--to", v2.as_str()]);
    // v3 is signed after its delta was generated.
    let v3 = p.commit_with::<&str>(REF, 23, &[]);
    p.repo
        .static_delta_generate(["--from", v2.as_str(), "--to", v3.as_str()]);
    let home = format!("--gpg-homedir={}", p.gpg.home().display());
    p.repo
        .run(["gpg-sign", home.as_str(), v3.as_str(), p.gpg.key_id()]);
    p.signed_summary();

    let c = p.client(&[]);
    assert_eq!(c.pull_ok(&["--commit", &v1])["commit"], v1.as_str());
    let requested = |commit: &str, ext: &str| {
        let path = format!("/objects/{}/{}.{ext}", &commit[..2], &commit[2..]);
        p.nginx.log().iter().any(|e| e.uri == path)
    };

    p.nginx.reset_log();
    let st = c.pull_ok(&["--commit", &v2]);
    assert_eq!(st["commit"], v2.as_str());
    assert!(st["delta"].is_string(), "the delta was not used: {st}");
    assert!(
        st["signatures"].as_array().is_some_and(|s| !s.is_empty()),
        "no signature verified: {st}"
    );
    assert!(!requested(&v2, "commit"), "the commit was fetched alone");
    assert!(
        !requested(&v2, "commitmeta"),
        "its signatures were fetched alone"
    );

    p.nginx.reset_log();
    let st = c.pull_ok(&[]);
    assert_eq!(st["commit"], v3.as_str());
    assert!(st["delta"].is_string(), "the delta was not used: {st}");
    assert!(!requested(&v3, "commit"), "the commit was fetched alone");
    assert!(
        requested(&v3, "commitmeta"),
        "the signature made after the delta was not fetched"
    );

    // A fourth commit, never signed: no signature in its superblock nor beside it;
    // refused, no part fetched.
    let v4 = p.commit_with::<&str>(REF, 24, &[]);
    p.repo
        .static_delta_generate(["--from", v3.as_str(), "--to", v4.as_str()]);
    p.signed_summary();
    assert_refused(
        &p,
        &c,
        &[],
        Some(&v3),
        &[&format!("commit {v4}"), "no signature found"],
    );
}
