//! A remote's verification policy applied to what a pull receives.
//!
//! [`Trust`] holds the policy (`gpg-verify`, `gpg-verify-summary`, `sign-verify`,
//! `sign-verify-summary`, `collection-id`) and the keys (a GPG keyring, ed25519 keys).
//! The pull calls it at each point where data enters: the summary before any ref is
//! resolved from it, the commit (with its detached metadata) before any content is
//! fetched, then the ref binding and the downgrade rule. Every decision itself is made
//! by `cfsync-verify`; this module extracts the signed bytes and signature arrays.
//!
//! A file fetched before the check it depends on has passed (a delta superblock requested
//! together with the commit whose signature decides whether it is wanted) waits unread in
//! the pull's [`crate::held::Held`] until this check accepts the commit.

use std::time::SystemTime;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::metadata::{GPGSIGS, MetadataRef, SIGN_ED25519};
use cfsync_verify::ed25519::{Ed25519Error, Ed25519Keys};
use cfsync_verify::gpg::{GpgError, Keyring};
use cfsync_verify::policy::{BindingError, DowngradeError, RemotePolicy};

/// Why a summary or commit was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A GPG signature was required and none is valid.
    #[error("{what}: GPG verification failed: {source}")]
    Gpg {
        /// What was verified (`"commit <id>"`, `"summary"`).
        what: String,
        /// Why.
        source: GpgError,
    },
    /// An ed25519 signature was required and none is valid.
    #[error("{what}: ed25519 verification failed: {source}")]
    Ed25519 {
        /// What was verified.
        what: String,
        /// Why.
        source: Ed25519Error,
    },
    /// A signature was required but the metadata that should carry it is missing.
    #[error(
        "{what}: no signature found ({detail}); the remote requires signed content (gpg-verify / sign-verify); add the publisher's key or, if you trust the transport, disable verification for this remote"
    )]
    Missing {
        /// What was verified.
        what: String,
        /// Which file or key was missing.
        detail: String,
    },
    /// Verification is required but no key is configured.
    #[error(
        "{what}: verification is required but no trusted key is configured; import one with `cfsync remote add NAME URL --gpg-import KEYFILE` or set verification-ed25519-key"
    )]
    NoKeys {
        /// What was verified.
        what: String,
    },
    /// Signed metadata does not parse.
    #[error("{what}: malformed signature metadata: {detail}")]
    Malformed {
        /// What was verified.
        what: String,
        /// The parser's message.
        detail: String,
    },
    /// Ref or collection binding refused the commit.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// The commit is older than the one the ref points at.
    #[error("{0}; pass --allow-downgrade to accept it")]
    Downgrade(#[from] DowngradeError),
    /// The commit's `ostree.composefs.digest.v0` does not match the image built.
    #[error(
        "commit {commit}: ostree.composefs.digest.v0 is {expected} but the image built has fs-verity digest {actual}"
    )]
    ComposefsDigest {
        /// The commit.
        commit: Checksum,
        /// The digest the commit declares.
        expected: String,
        /// The digest of cfsync's image.
        actual: String,
    },
}

/// The verification settings and keys for one pull.
#[derive(Debug, Default)]
pub struct Trust {
    /// The policy (what must be signed).
    pub policy: RemotePolicy,
    /// Trusted GPG keys.
    pub gpg: Keyring,
    /// Trusted (and revoked) ed25519 keys.
    pub ed25519: Ed25519Keys,
}

impl Trust {
    /// No signature required (a plain URL or path pull with verification off); ref
    /// binding and downgrade checks still apply.
    pub fn unverified() -> Self {
        Self {
            policy: RemotePolicy {
                gpg_verify: false,
                ..RemotePolicy::default()
            },
            gpg: Keyring::new(),
            ed25519: Ed25519Keys::new(),
        }
    }

    /// Whether the summary must carry a valid signature.
    pub fn requires_summary_signature(&self) -> bool {
        self.policy.requires_summary_signature()
    }

    /// Verifies `summary.sig` over the summary when the policy requires it. Returns one
    /// line per valid signature.
    pub fn verify_summary(
        &self,
        summary: &[u8],
        sig: Option<&[u8]>,
    ) -> Result<Vec<String>, TrustError> {
        self.verify_summary_file("summary", "summary.sig", summary, sig)
    }

    /// Verifies `summary.idx.sig` over a summary index (`summary.idx`, flatpak's
    /// per-architecture subsummaries) under the same policy keys as the summary
    /// (`gpg-verify-summary`, `sign-verify-summary`), as libostree does. Returns one line
    /// per valid signature.
    pub fn verify_summary_index(
        &self,
        index: &[u8],
        sig: Option<&[u8]>,
    ) -> Result<Vec<String>, TrustError> {
        self.verify_summary_file("summary index", "summary.idx.sig", index, sig)
    }

    /// A summary-like file and its detached `a{sv}` signature file, under the summary
    /// policy keys.
    fn verify_summary_file(
        &self,
        what: &str,
        sig_name: &str,
        data: &[u8],
        sig: Option<&[u8]>,
    ) -> Result<Vec<String>, TrustError> {
        let (gpg, sign) = (
            self.policy.gpg_verify_summary,
            self.policy.sign_verify_summary.is_enabled(),
        );
        if !gpg && !sign {
            return Ok(Vec::new());
        }
        let Some(sig) = sig else {
            return Err(TrustError::Missing {
                what: what.to_owned(),
                detail: format!("the server has no {sig_name}"),
            });
        };
        let meta = MetadataRef::from_bytes(sig).map_err(|e| TrustError::Malformed {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
        self.verify_with(what, data, &meta, gpg, sign)
    }

    /// Verifies a commit's signatures (from its detached metadata) when the policy
    /// requires them. Returns one line per valid signature.
    pub fn verify_commit(
        &self,
        id: &Checksum,
        commit: &[u8],
        commitmeta: Option<&[u8]>,
    ) -> Result<Vec<String>, TrustError> {
        let (gpg, sign) = (self.policy.gpg_verify, self.policy.sign_verify.is_enabled());
        if !gpg && !sign {
            return Ok(Vec::new());
        }
        let what = format!("commit {id}");
        let Some(meta) = commitmeta else {
            return Err(TrustError::Missing {
                what,
                detail: "the commit has no detached metadata (.commitmeta)".into(),
            });
        };
        let meta = MetadataRef::from_bytes(meta).map_err(|e| TrustError::Malformed {
            what: what.clone(),
            detail: e.to_string(),
        })?;
        self.verify_with(&what, commit, &meta, gpg, sign)
    }

    /// Verifies the signatures of a signed delta superblock (`OSTSGNDT` wrapper) with the
    /// remote's ed25519 keys, when the remote verifies with the sign API or has ed25519
    /// keys at all. Unsigned superblocks are bound to the verified commit instead (the
    /// caller checks that the superblock's commit hashes to the target).
    pub fn verify_delta_superblock(
        &self,
        delta: &str,
        signed: &cfsync_formats::delta::signed::SignedSuperblockRef<'_>,
    ) -> Result<Vec<String>, TrustError> {
        if !self.policy.sign_verify.is_enabled() && self.ed25519.usable().next().is_none() {
            return Ok(Vec::new());
        }
        let what = format!("static delta {delta} superblock");
        self.verify_with(
            &what,
            signed.superblock_bytes(),
            &signed.signatures(),
            false,
            true,
        )
    }

    fn verify_with(
        &self,
        what: &str,
        data: &[u8],
        meta: &MetadataRef<'_>,
        gpg: bool,
        sign: bool,
    ) -> Result<Vec<String>, TrustError> {
        let malformed = |e: cfsync_formats::metadata::Error| TrustError::Malformed {
            what: what.to_owned(),
            detail: e.to_string(),
        };
        let mut lines = Vec::new();
        if gpg {
            if self.gpg.is_empty() {
                return Err(TrustError::NoKeys { what: what.into() });
            }
            let sigs = meta
                .get_bytes_array(GPGSIGS)
                .map_err(malformed)?
                .unwrap_or_default();
            if sigs.is_empty() {
                return Err(TrustError::Missing {
                    what: what.into(),
                    detail: format!("no {GPGSIGS}"),
                });
            }
            let v = cfsync_verify::gpg::verify_detached(data, &sigs, &self.gpg, SystemTime::now())
                .map_err(|source| TrustError::Gpg {
                    what: what.into(),
                    source,
                })?;
            for s in v.valid_signatures() {
                lines.push(format!("gpg: {s}"));
            }
        }
        if sign {
            if self.ed25519.usable().next().is_none() {
                return Err(TrustError::NoKeys { what: what.into() });
            }
            let sigs = meta
                .get_bytes_array(SIGN_ED25519)
                .map_err(malformed)?
                .unwrap_or_default();
            if sigs.is_empty() {
                return Err(TrustError::Missing {
                    what: what.into(),
                    detail: format!("no {SIGN_ED25519}"),
                });
            }
            let v =
                cfsync_verify::ed25519::verify(data, &sigs, &self.ed25519).map_err(|source| {
                    TrustError::Ed25519 {
                        what: what.into(),
                        source,
                    }
                })?;
            lines.push(format!("ed25519: good signature by key {}", v.key_base64()));
        }
        Ok(lines)
    }

    /// Checks the commit's `ostree.composefs.digest.v0`, when present, against the
    /// composefs image cfsync built for it (call it after the image is stored and before
    /// the ref moves). The metadata holds a SHA-256 fs-verity digest, and an image names
    /// its file objects by the repository's digest, so the comparison is made in sha256
    /// repositories (`cfsync --hash sha256 init`), where the image id is that digest.
    /// In a sha512 repository the image necessarily differs from the one the publisher
    /// measured; the key is then not checked (logged at info level). Commits without the
    /// key pass.
    pub fn check_composefs_digest<ObjectID: composefs::fsverity::FsVerityHashValue>(
        &self,
        id: &Checksum,
        commit: &[u8],
        image: &ObjectID,
    ) -> Result<(), TrustError> {
        let c = CommitRef::from_bytes(commit).map_err(|e| TrustError::Malformed {
            what: format!("commit {id}"),
            detail: e.to_string(),
        })?;
        let expected = c.composefs_digest().map_err(|e| TrustError::Malformed {
            what: format!("commit {id}"),
            detail: e.to_string(),
        })?;
        let Some(expected) = expected.map(hex::encode) else {
            return Ok(());
        };
        let actual = image.to_hex();
        if actual.len() != expected.len() {
            tracing::info!(
                "commit {id}: ostree.composefs.digest.v0 not checked: it is a sha256 digest and this repository uses {} fs-verity digests",
                ObjectID::ALGORITHM.hash_name()
            );
            return Ok(());
        }
        if actual != expected {
            return Err(TrustError::ComposefsDigest {
                commit: *id,
                expected,
                actual,
            });
        }
        Ok(())
    }

    /// Ref binding, collection binding and the downgrade rule for a commit about to be
    /// put under `ref_name`, given the timestamp of the commit the ref points at now.
    pub fn check_commit_rules(
        &self,
        id: &Checksum,
        commit: &[u8],
        ref_name: &str,
        previous: Option<(Checksum, u64)>,
        allow_downgrade: bool,
    ) -> Result<(), TrustError> {
        let c = CommitRef::from_bytes(commit).map_err(|e| TrustError::Malformed {
            what: format!("commit {id}"),
            detail: e.to_string(),
        })?;
        let malformed = |e: cfsync_formats::commit::Error| TrustError::Malformed {
            what: format!("commit {id}"),
            detail: e.to_string(),
        };
        let bindings = c.ref_binding().map_err(malformed)?;
        let collection = c.collection_binding().map_err(malformed)?;
        cfsync_verify::policy::check_bindings(
            &id.to_hex(),
            bindings.as_deref(),
            collection,
            Some(ref_name),
            self.policy.collection_id.as_deref(),
        )?;
        if let Some((prev, prev_ts)) = previous {
            cfsync_verify::policy::check_downgrade(
                &prev.to_hex(),
                prev_ts,
                &id.to_hex(),
                c.timestamp(),
                allow_downgrade,
            )?;
        }
        Ok(())
    }
}

/// Why a remote's verification settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The remote's configuration is invalid.
    #[error(transparent)]
    Remote(#[from] crate::remotes::RemoteError),
    /// A verification option is invalid.
    #[error(transparent)]
    Policy(#[from] cfsync_verify::policy::ConfigError),
    /// A GPG keyring could not be read.
    #[error(transparent)]
    Keyring(#[from] cfsync_verify::gpg::KeyringError),
    /// An ed25519 key could not be read.
    #[error(transparent)]
    Ed25519(#[from] cfsync_verify::ed25519::KeyError),
    /// Writing the remote's keyring failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Builds the verification settings of `remote` as libostree would: its policy keys,
/// its keyring (the per-remote keyring `<state>/remotes.d/<name>.trustedkeys.gpg` that
/// `--gpg-import` writes, else `/etc/ostree/remotes.d/<name>.trustedkeys.gpg`; plus every
/// `gpgkeypath` entry; plus, only when no per-remote keyring exists, the global
/// `$OSTREE_GPG_HOME` or `/usr/share/ostree/trusted.gpg.d/*.gpg`), and its ed25519 keys
/// (inline `verification-ed25519-key` and `verification-ed25519-file`, or when neither is
/// set and `sign-verify` is on, the system `trusted.ed25519` files minus
/// `revoked.ed25519`). See `docs/trust.md`.
pub fn for_remote(
    remote: &crate::remotes::Remote,
    remotes: &crate::remotes::RemoteStore,
    _repo: &std::path::Path,
) -> Result<Trust, SetupError> {
    // The remote's options, raw as in its file, read by the one option reader
    // (`cfsync_verify::policy::options`) that also parsed `remote` itself.
    let kf = remote.to_keyfile()?;
    let policy = RemotePolicy::from_options(kf.entries(&remote.group_name()))?;
    let keyring_file = remotes.keyring_path(&remote.name)?;
    let paths = cfsync_verify::gpg::RemoteKeyringPaths {
        repo: keyring_file
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        remote: remote.name.clone(),
        remotes_d: Some(std::path::PathBuf::from(crate::remotes::SYSTEM_REMOTES_DIR)),
        gpgkeypath: remote.gpgkeypath.clone(),
        global_dir: Some(cfsync_verify::gpg::global_keyring_dir_from_env()),
    };
    let gpg = Keyring::for_remote(&paths)?;
    let ed = Ed25519Keys::from_remote_options(
        remote.ed25519_key.as_deref(),
        remote.ed25519_file.as_deref(),
    )?;
    let ed25519 = match ed {
        Some(k) => k,
        None if policy.sign_verify.is_enabled() || policy.sign_verify_summary.is_enabled() => {
            let dirs: Vec<&std::path::Path> = cfsync_verify::ed25519::SYSTEM_KEY_DIRS
                .iter()
                .map(std::path::Path::new)
                .collect();
            Ed25519Keys::from_system_dirs(&dirs)?
        }
        None => Ed25519Keys::new(),
    };
    Ok(Trust {
        policy,
        gpg,
        ed25519,
    })
}

/// Imports the GPG keys of `file` (armored or binary) for remote `name`, as
/// `ostree remote gpg-import` does: they are merged into the remote's binary keyring
/// `<state>/remotes.d/<name>.trustedkeys.gpg` ([`crate::remotes::RemoteStore::keyring_path`],
/// removed with the remote), which is then trusted instead of the global
/// `trusted.gpg.d`. Returns how many certificates `file` holds. Nothing is written unless
/// the file parses.
pub fn import_gpg_keys(
    remotes: &crate::remotes::RemoteStore,
    name: &str,
    file: &std::path::Path,
) -> Result<usize, SetupError> {
    let mut keyring = Keyring::new();
    let n = keyring.add_file(file)?;
    let dest = remotes.keyring_path(name)?;
    match std::fs::read(&dest) {
        Ok(existing) => {
            keyring.add_bytes(&existing, &dest.display().to_string())?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(SetupError::Io { path: dest, source }),
    }
    let bytes = keyring.to_binary()?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SetupError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    crate::atomic::write(&dest, &bytes).map_err(|source| SetupError::Io { path: dest, source })?;
    Ok(n)
}
