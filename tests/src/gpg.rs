//! A throwaway GnuPG home with one signing key ([`Gpg`]).

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::command::{run_checked, run_stdout};
use crate::tools::require;

/// A throwaway GnuPG home with one signing key (no passphrase), deleted when dropped
/// (its gpg-agent is stopped first).
#[derive(Debug)]
pub struct Gpg {
    home: TempDir,
    fingerprint: String,
}

impl Gpg {
    /// A new home with a fresh ed25519 signing key.
    pub fn new() -> Self {
        Self::with_algo("ed25519")
    }

    /// A new home with a fresh signing key of `algo` as `gpg --quick-gen-key` names it
    /// (`ed25519`, `rsa2048`, `rsa4096`, `nistp256`, …).
    pub fn with_algo(algo: &str) -> Self {
        require("gpg");
        // gpg-agent's socket path must stay short: keep the home under /tmp.
        let home = match tempfile::Builder::new()
            .prefix("cfsync-gpg-")
            .tempdir_in("/tmp")
        {
            Ok(h) => h,
            Err(e) => panic!("cannot create a GnuPG home: {e}"),
        };
        let mut g = Self {
            home,
            fingerprint: String::new(),
        };
        g.fingerprint = g.add_key("cfsync test key <test@example.invalid>", algo);
        g
    }

    /// A `gpg` command using this home, in batch mode.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--quiet"]);
        cmd
    }

    /// Generates one more signing key with user id `uid`; returns its fingerprint.
    pub fn add_key(&self, uid: &str, algo: &str) -> String {
        run_checked(self.command().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algo,
            "sign",
            "never",
        ]));
        let listing = run_stdout(self.command().args(["--with-colons", "--list-keys", uid]));
        // The newest key with this uid is the last primary fingerprint listed.
        let mut last = None;
        let mut after_pub = false;
        for line in listing.lines() {
            if line.starts_with("pub:") {
                after_pub = true;
            } else if after_pub && line.starts_with("fpr:") {
                last = line.split(':').nth(9).map(str::to_owned);
                after_pub = false;
            }
        }
        match last {
            Some(f) if !f.is_empty() => f,
            _ => panic!("no fingerprint for {uid} in:\n{listing}"),
        }
    }

    /// The GnuPG home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The full fingerprint (40 hex digits, uppercase) of the first key.
    pub fn key_id(&self) -> &str {
        &self.fingerprint
    }

    /// The first key's public key, ASCII-armored.
    pub fn public_key_armored(&self) -> String {
        run_stdout(
            self.command()
                .args(["--armor", "--export", &self.fingerprint]),
        )
    }

    /// The first key's public key, binary.
    pub fn public_key_binary(&self) -> Vec<u8> {
        run_checked(self.command().args(["--export", &self.fingerprint])).stdout
    }

    /// Writes the armored public key to `path` and returns `path`.
    pub fn write_public_key(&self, path: impl Into<PathBuf>) -> PathBuf {
        let path = path.into();
        if let Err(e) = fs::write(&path, self.public_key_armored()) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }

    /// The `ostree` arguments that sign with the first key:
    /// `--gpg-sign=<fingerprint> --gpg-homedir=<home>`.
    pub fn sign_args(&self) -> Vec<OsString> {
        self.sign_args_for(&self.fingerprint)
    }

    /// Like [`Gpg::sign_args`], for any key of this home.
    pub fn sign_args_for(&self, fingerprint: &str) -> Vec<OsString> {
        let mut homedir = OsString::from("--gpg-homedir=");
        homedir.push(self.home.path());
        vec![OsString::from(format!("--gpg-sign={fingerprint}")), homedir]
    }

    /// A binary detached OpenPGP signature of `data` by the first key.
    pub fn sign_detached(&self, data: &[u8]) -> Vec<u8> {
        let mut child = match self
            .command()
            .args([
                "--local-user",
                &self.fingerprint,
                "--detach-sign",
                "--output",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("cannot run gpg: {e}"),
        };
        let written = child.stdin.take().map(|mut s| s.write_all(data));
        let out = match child.wait_with_output() {
            Ok(o) => o,
            Err(e) => panic!("gpg --detach-sign: {e}"),
        };
        if !out.status.success() || !matches!(written, Some(Ok(()))) {
            panic!(
                "gpg --detach-sign failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.stdout
    }
}

impl Default for Gpg {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
