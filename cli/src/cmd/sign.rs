//! `cfsync sign`: signatures for people who publish OSTree repositories.
//!
//! - `cfsync sign keygen --secret-key FILE` makes an ed25519 key in ostree's format (the
//!   file holds the base64 of seed ‖ public key, what `ostree sign --keys-file` reads) and
//!   prints the public key (base64, for `verification-ed25519-key` or a
//!   `trusted.ed25519` file).
//! - `cfsync sign commit REPO REV` appends signatures to the commit's detached metadata
//!   (`objects/XX/REST.commitmeta`): GPG signatures to `ostree.gpgsigs`, ed25519 ones to
//!   `ostree.sign.ed25519`, keeping every other entry, like `ostree gpg-sign` and
//!   `ostree sign`.
//! - `cfsync sign summary REPO` does the same for `summary.sig` over `summary` (and with
//!   `--index`, `summary.idx.sig` over `summary.idx`), as `ostree summary -u --gpg-sign`
//!   and `ostree summary --sign` do. Run it after every `ostree summary -u`, which
//!   rewrites the summary.
//!
//! `cfsync summary update --gpg-sign/--sign` signs with the same [`Signers`]
//! ([`Signers::from_homedir_and_files`], [`Signers::signature_file`]).
//!
//! GPG keys come from a secret key file (`gpg --export-secret-keys KEY > FILE`, armored
//! or binary, without a passphrase); ed25519 keys from files with one base64 secret key
//! per line. Files are replaced atomically. A signature already present is not added
//! twice (ed25519 signatures are deterministic).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use cfsync_formats::checksum::Checksum;
use cfsync_formats::gvariant::OwnedValue;
use cfsync_formats::metadata::{GPGSIGS, MetadataRef, SIGN_ED25519};
use cfsync_verify::ed25519;
use cfsync_verify::gpg::GpgSigner;
use clap::{Args, Subcommand};

/// `cfsync sign` subcommands.
#[derive(Debug, Subcommand)]
pub enum SignCmd {
    /// Generate an ed25519 key in ostree's format; print its public key.
    Keygen {
        /// Where to write the secret key (base64 of seed and public key, mode 0600). It
        /// must not exist.
        #[arg(long = "secret-key", value_name = "FILE")]
        secret_key: PathBuf,
    },
    /// Print the public key (base64) of each ed25519 secret key in FILE.
    PublicKey {
        /// An ed25519 secret key file (one base64 key per line).
        file: PathBuf,
    },
    /// Sign a commit of an ostree repository (writes its .commitmeta).
    Commit {
        /// The ostree repository (any mode).
        repo: PathBuf,
        /// A ref (refs/heads/...) or a full commit checksum.
        rev: String,
        #[command(flatten)]
        keys: SignKeys,
    },
    /// Sign the summary of an ostree repository (writes summary.sig).
    Summary {
        /// The ostree repository.
        repo: PathBuf,
        /// Also sign summary.idx (writes summary.idx.sig).
        #[arg(long)]
        index: bool,
        #[command(flatten)]
        keys: SignKeys,
    },
}

/// The keys to sign with (at least one).
#[derive(Debug, Args)]
pub struct SignKeys {
    /// A GPG secret key file (`gpg --export-secret-keys`, armored or binary, no
    /// passphrase). Repeatable.
    #[arg(long = "gpg-key", value_name = "FILE")]
    pub gpg_key: Vec<PathBuf>,
    /// An ed25519 secret key file in ostree's format (one base64 key per line; every
    /// key signs). Repeatable.
    #[arg(long = "ed25519-key", value_name = "FILE")]
    pub ed25519_key: Vec<PathBuf>,
}

/// Runs a `cfsync sign` subcommand.
pub(crate) fn run(cmd: &SignCmd, quiet: bool) -> Result<()> {
    match cmd {
        SignCmd::Keygen { secret_key } => keygen(secret_key),
        SignCmd::PublicKey { file } => {
            for key in read_ed25519_secret_keys(file)? {
                println!("{}", ed25519::format_public_key(&key.verifying_key()));
            }
            Ok(())
        }
        SignCmd::Commit { repo, rev, keys } => {
            let signers = Signers::load(keys)?;
            let commit = resolve_rev(repo, rev)?;
            let (dir, rest) = commit_object_dir(repo, &commit);
            let commit_path = dir.join(format!("{rest}.commit"));
            let data = std::fs::read(&commit_path)
                .with_context(|| format!("reading commit {commit} ({})", commit_path.display()))?;
            if Checksum::of(&data) != commit {
                bail!(
                    "{} does not hash to {commit}; the repository is corrupt (run `ostree fsck`)",
                    commit_path.display()
                );
            }
            let meta_path = dir.join(format!("{rest}.commitmeta"));
            let lines = sign_into(&signers, &data, &meta_path)?;
            report(quiet, &format!("commit {commit}"), &lines);
            Ok(())
        }
        SignCmd::Summary { repo, index, keys } => {
            let signers = Signers::load(keys)?;
            let mut files = vec![("summary", "summary.sig")];
            if *index {
                files.push(("summary.idx", "summary.idx.sig"));
            }
            for (name, sig_name) in files {
                let path = repo.join(name);
                let data = std::fs::read(&path).with_context(|| {
                    format!("reading {} (run `ostree summary -u` first)", path.display())
                })?;
                let lines = sign_into(&signers, &data, &repo.join(sig_name))?;
                report(quiet, name, &lines);
            }
            Ok(())
        }
    }
}

fn report(quiet: bool, what: &str, lines: &[String]) {
    if !quiet {
        for l in lines {
            eprintln!("cfsync: signed {what}: {l}");
        }
    }
}

fn keygen(path: &Path) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = ed25519::generate_secret_key()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    writeln!(f, "{}", ed25519::format_secret_key(&key))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", ed25519::format_public_key(&key.verifying_key()));
    Ok(())
}

pub(crate) fn read_ed25519_secret_keys(path: &Path) -> Result<Vec<ed25519::SigningKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading ed25519 secret key file {}", path.display()))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        keys.push(ed25519::parse_secret_key(line).with_context(|| {
            format!(
                "{} line {}: not an ostree ed25519 secret key (base64 of 64 bytes; make one with `cfsync sign keygen`)",
                path.display(),
                n + 1
            )
        })?);
    }
    if keys.is_empty() {
        bail!("{} holds no ed25519 secret key", path.display());
    }
    Ok(keys)
}

/// Fresh signatures over one file, and one line per signature for the user.
struct Signatures {
    gpg: Vec<Vec<u8>>,
    ed25519: Vec<Vec<u8>>,
    lines: Vec<String>,
}

/// Every key given on the command line, loaded and checked before anything is written.
pub(crate) struct Signers {
    gpg: Vec<GpgSigner>,
    ed25519: Vec<ed25519::SigningKey>,
}

impl Signers {
    /// GPG keys by ID from a GnuPG home (as `ostree --gpg-sign KEYID --gpg-homedir DIR`:
    /// each is exported with `gpg --export-secret-keys`, so it must have no passphrase)
    /// and ed25519 secret key files (as `ostree --sign`, but from files).
    pub(crate) fn from_homedir_and_files(
        gpg_key_ids: &[String],
        gpg_homedir: Option<&Path>,
        ed25519_files: &[PathBuf],
    ) -> Result<Self> {
        let mut gpg = Vec::new();
        for id in gpg_key_ids {
            gpg.push(export_gpg_secret_key(id, gpg_homedir)?);
        }
        let mut ed = Vec::new();
        for path in ed25519_files {
            ed.extend(read_ed25519_secret_keys(path)?);
        }
        Ok(Self { gpg, ed25519: ed })
    }

    /// Whether no key is loaded.
    pub(crate) fn is_empty(&self) -> bool {
        self.gpg.is_empty() && self.ed25519.is_empty()
    }

    /// A fresh signature file over `data` (`summary.sig`: `ostree.gpgsigs` and
    /// `ostree.sign.ed25519`, in the entry order ostree writes), and one line per
    /// signature made.
    pub(crate) fn signature_file(&self, data: &[u8]) -> Result<(Vec<u8>, Vec<String>)> {
        let Signatures {
            gpg,
            ed25519: ed,
            lines,
        } = self.sign_all(data)?;
        let mut items = Vec::new();
        if !gpg.is_empty() {
            items.push((GPGSIGS, gpg));
        }
        if !ed.is_empty() {
            items.push((SIGN_ED25519, ed));
        }
        let items = cfsync_formats::summary::glib_order::in_dict_order(items);
        Ok((merge_signatures(None, &items)?, lines))
    }

    /// Signatures over `data` by every GPG key, then every ed25519 key, and one line per
    /// signature.
    fn sign_all(&self, data: &[u8]) -> Result<Signatures> {
        let mut lines = Vec::new();
        let mut new_gpg = Vec::new();
        for s in &self.gpg {
            new_gpg.push(s.sign_detached(data)?);
            lines.push(format!("gpg key {}", s.fingerprint()));
        }
        let mut new_ed = Vec::new();
        for k in &self.ed25519 {
            new_ed.push(ed25519::sign(data, k).to_vec());
            lines.push(format!(
                "ed25519 key {}",
                ed25519::format_public_key(&k.verifying_key())
            ));
        }
        Ok(Signatures {
            gpg: new_gpg,
            ed25519: new_ed,
            lines,
        })
    }

    fn load(keys: &SignKeys) -> Result<Self> {
        if keys.gpg_key.is_empty() && keys.ed25519_key.is_empty() {
            bail!("no key given: pass --gpg-key FILE and/or --ed25519-key FILE");
        }
        let mut gpg = Vec::new();
        for path in &keys.gpg_key {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading GPG secret key file {}", path.display()))?;
            gpg.push(GpgSigner::from_bytes(&bytes).with_context(|| {
                format!(
                    "{}: export an unprotected secret key with `gpg --export-secret-keys KEY`",
                    path.display()
                )
            })?);
        }
        let mut ed = Vec::new();
        for path in &keys.ed25519_key {
            ed.extend(read_ed25519_secret_keys(path)?);
        }
        Ok(Self { gpg, ed25519: ed })
    }
}

/// Signs `data` with every signer and merges the signatures into the `a{sv}` file at
/// `meta_path` (created if missing). Returns one line per signature added.
fn sign_into(signers: &Signers, data: &[u8], meta_path: &Path) -> Result<Vec<String>> {
    let existing = match std::fs::read(meta_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", meta_path.display())),
    };
    let meta = existing
        .as_deref()
        .map(MetadataRef::from_bytes)
        .transpose()
        .with_context(|| format!("{} is not valid detached metadata", meta_path.display()))?;
    let Signatures {
        gpg: new_gpg,
        ed25519: new_ed,
        lines,
    } = signers.sign_all(data)?;
    let bytes = merge_signatures(meta.as_ref(), &[(GPGSIGS, new_gpg), (SIGN_ED25519, new_ed)])
        .with_context(|| format!("updating {}", meta_path.display()))?;
    write_atomic(meta_path, &bytes)?;
    Ok(lines)
}

/// The `a{sv}` of `meta` (or an empty one) with `additions` appended to the `aay`
/// arrays under their keys; other entries are kept as they are.
fn merge_signatures(
    meta: Option<&MetadataRef<'_>>,
    additions: &[(&str, Vec<Vec<u8>>)],
) -> Result<Vec<u8>> {
    let mut entries = Vec::new();
    let mut done = Vec::new();
    if let Some(meta) = meta {
        for item in meta.iter() {
            let (key, value) = item?;
            let added = additions.iter().find(|(k, _)| *k == key);
            let value = match added {
                Some((_, new)) if !new.is_empty() => {
                    let mut sigs: Vec<Vec<u8>> = meta
                        .get_bytes_array(key)?
                        .ok_or_else(|| anyhow!("{key} vanished"))?
                        .into_iter()
                        .map(<[u8]>::to_vec)
                        .collect();
                    for s in new {
                        if !sigs.contains(s) {
                            sigs.push(s.clone());
                        }
                    }
                    done.push(key.to_owned());
                    aay(sigs)
                }
                _ => value.to_owned_value(),
            };
            entries.push(OwnedValue::entry(
                OwnedValue::str(key),
                OwnedValue::Variant(Box::new(value)),
            ));
        }
    }
    for (key, new) in additions {
        if new.is_empty() || done.iter().any(|d| d == key) {
            continue;
        }
        entries.push(OwnedValue::entry(
            OwnedValue::str(*key),
            OwnedValue::Variant(Box::new(aay(new.clone()))),
        ));
    }
    Ok(OwnedValue::array("{sv}", entries).to_bytes()?)
}

/// The secret key `key_id` exported from the GnuPG home `homedir` (or gpg's default).
fn export_gpg_secret_key(key_id: &str, homedir: Option<&Path>) -> Result<GpgSigner> {
    let mut cmd = std::process::Command::new("gpg");
    if let Some(h) = homedir {
        cmd.arg("--homedir").arg(h);
    }
    cmd.args([
        "--batch",
        "--quiet",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--export-secret-keys",
        key_id,
    ]);
    let where_ = homedir.map_or_else(
        || "gpg's default home".to_owned(),
        |h| h.display().to_string(),
    );
    let out = cmd
        .output()
        .with_context(|| format!("running gpg to export secret key {key_id} from {where_}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!(
            "gpg could not export secret key {key_id} from {where_} (does the key exist, without a passphrase?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    GpgSigner::from_bytes(&out.stdout).with_context(|| format!("secret key {key_id} from {where_}"))
}

fn aay(items: Vec<Vec<u8>>) -> OwnedValue {
    OwnedValue::array("ay", items.into_iter().map(OwnedValue::bytes).collect())
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    cfsync_engine::atomic::write(path, data)
        .with_context(|| format!("replacing {}", path.display()))
}

/// `objects/XX` and the rest of the checksum.
fn commit_object_dir(repo: &Path, commit: &Checksum) -> (PathBuf, String) {
    let hex = commit.to_hex();
    let (a, b) = hex.split_at(2);
    (repo.join("objects").join(a), b.to_owned())
}

/// A full checksum, or a ref under `refs/heads/` (or `refs/remotes/`).
fn resolve_rev(repo: &Path, rev: &str) -> Result<Checksum> {
    if let Ok(c) = rev.parse::<Checksum>() {
        return Ok(c);
    }
    if !repo.join("objects").is_dir() {
        bail!(
            "{} is not an ostree repository (no objects/)",
            repo.display()
        );
    }
    if rev
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("invalid ref {rev:?}");
    }
    for base in ["refs/heads", "refs/remotes"] {
        let path = repo.join(base).join(rev);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text
                .trim()
                .parse::<Checksum>()
                .map_err(|e| anyhow!("{}: not a commit checksum: {e}", path.display()));
        }
    }
    bail!(
        "no ref {rev:?} in {} (refs/heads or refs/remotes) and not a full commit checksum",
        repo.display()
    )
}
