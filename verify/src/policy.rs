//! Remote trust policy and the pure checks a pull applies to each commit.
//!
//! - [`RemotePolicy`] reads the verification keys of an ostree remote (a
//!   `[remote "NAME"]` group of a repo `config` or `/etc/ostree/remotes.d/*.conf`) with
//!   libostree's defaults: `gpg-verify=true`, `gpg-verify-summary=false`, sign API off
//!   (`ostree_repo_remote_get_gpg_verify{,_summary}` in `ostree-repo.c`,
//!   `verifiers_from_config` in `ostree-repo-pull-verify.c`; `docs/ostree-formats.md`
//!   §8.3).
//! - [`check_bindings`] (with its halves [`check_ref_binding`] and
//!   [`check_collection_binding`]) mirrors `_ostree_repo_verify_bindings`
//!   (`ostree-repo.c`; §8.5): a commit's `ostree.ref-binding` must contain the ref it was
//!   pulled through, and a remote with a collection ID requires both bindings.
//! - [`check_downgrade`] mirrors `_ostree_compare_timestamps` (`ostree-core.c`; §8.4).
//!
//! Nothing here touches the network or the filesystem.

use crate::timefmt::format_unix_utc;

/// Errors in a remote's configuration values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A boolean key holds something other than `true`/`false`/`1`/`0`.
    #[error(
        "invalid boolean value {value:?} for remote option {key}: expected true, false, 1 or 0"
    )]
    InvalidBoolean {
        /// The option.
        key: String,
        /// Its value.
        value: String,
    },
    /// `sign-verify` / `sign-verify-summary` names an engine that does not exist.
    #[error(
        "unknown signature engine {engine:?} in remote option {key}: known engines are ed25519 and spki"
    )]
    UnknownSignEngine {
        /// The option.
        key: String,
        /// The unknown name.
        engine: String,
    },
    /// A sign engine is required by an explicit list but has no keys configured.
    #[error(
        "remote option {key} requires {engine} signatures but neither verification-{engine}-key nor verification-{engine}-file is set"
    )]
    MissingSignKeys {
        /// The option (`sign-verify` or `sign-verify-summary`).
        key: String,
        /// The engine.
        engine: &'static str,
    },
    /// `gpgkeypath` mixes `;` and `,` separators, which libostree refuses.
    #[error("remote option gpgkeypath {value:?} mixes ';' and ',' separators")]
    MixedSeparators {
        /// The value.
        value: String,
    },
}

/// A sign API engine (`ostree.sign.<engine>` metadata key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignEngine {
    /// `ed25519` (`ostree.sign.ed25519`), see [`crate::ed25519`].
    Ed25519,
    /// `spki` (`ostree.sign.spki`, OpenSSL public keys; since libostree 2025.2). Not
    /// verified by this crate.
    Spki,
}

impl SignEngine {
    /// The engine's name as written in config (`ed25519`, `spki`).
    pub fn name(self) -> &'static str {
        match self {
            SignEngine::Ed25519 => "ed25519",
            SignEngine::Spki => "spki",
        }
    }

    /// The detached-metadata key holding this engine's signatures.
    pub fn metadata_key(self) -> &'static str {
        match self {
            SignEngine::Ed25519 => "ostree.sign.ed25519",
            SignEngine::Spki => "ostree.sign.spki",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(SignEngine::Ed25519),
            "spki" => Some(SignEngine::Spki),
            _ => None,
        }
    }
}

/// The value of `sign-verify` / `sign-verify-summary`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignVerify {
    /// Absent, empty, `false` or `0`: no sign API verification.
    #[default]
    Disabled,
    /// `true` or `1`: every engine, each with whatever keys it has configured (falling
    /// back to the system key files); a valid signature from any engine is required.
    AnyEngine,
    /// An explicit `;`-separated list: exactly these engines, each of which must have
    /// keys configured; a valid signature from any of them is required.
    Engines(Vec<SignEngine>),
}

impl SignVerify {
    /// Whether a valid sign API signature is required.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, SignVerify::Disabled)
    }
}

/// The verification settings of one remote.
///
/// [`RemotePolicy::default`] is libostree's behaviour for a remote with no options set.
/// (libostree also turns `gpg-verify` off when the *remote name* itself is a `file://`
/// URL, as `ostree pull-local` does; callers handle that case by not using a remote
/// policy at all.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePolicy {
    /// `gpg-verify` (default `true`): commits need a valid GPG signature.
    pub gpg_verify: bool,
    /// `gpg-verify-summary` (default `false`): the summary needs a valid GPG signature.
    pub gpg_verify_summary: bool,
    /// `gpgkeypath`: extra key files or directories, in order.
    pub gpgkeypath: Vec<String>,
    /// `sign-verify` (default disabled): sign API verification of commits.
    pub sign_verify: SignVerify,
    /// `sign-verify-summary` (default disabled): sign API verification of the summary.
    pub sign_verify_summary: SignVerify,
    /// `verification-ed25519-key`: an inline base64 public key.
    pub verification_ed25519_key: Option<String>,
    /// `verification-ed25519-file`: a file with one base64 public key per line.
    pub verification_ed25519_file: Option<String>,
    /// `verification-spki-key`: an inline PEM public key (spki engine).
    pub verification_spki_key: Option<String>,
    /// `verification-spki-file`: a file of PEM public keys (spki engine).
    pub verification_spki_file: Option<String>,
    /// `collection-id`: when set, commits must carry matching ref and collection
    /// bindings ([`check_bindings`]).
    pub collection_id: Option<String>,
}

impl Default for RemotePolicy {
    fn default() -> Self {
        Self {
            gpg_verify: true,
            gpg_verify_summary: false,
            gpgkeypath: Vec::new(),
            sign_verify: SignVerify::Disabled,
            sign_verify_summary: SignVerify::Disabled,
            verification_ed25519_key: None,
            verification_ed25519_file: None,
            verification_spki_key: None,
            verification_spki_file: None,
            collection_id: None,
        }
    }
}

impl RemotePolicy {
    /// Reads the policy from a remote's `(key, value)` options as they appear in the
    /// key file (values already unescaped). Unknown keys are ignored; a key given twice
    /// takes its last value, as GKeyFile does. Empty values count as unset.
    pub fn from_options<'a, I>(options: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut gpg_verify = None;
        let mut gpg_verify_summary = None;
        let mut gpgkeypath = None;
        let mut sign_verify = None;
        let mut sign_verify_summary = None;
        let mut ed_key = None;
        let mut ed_file = None;
        let mut spki_key = None;
        let mut spki_file = None;
        let mut collection_id = None;
        for (key, value) in options {
            let value = value.trim();
            match key.trim() {
                "gpg-verify" => gpg_verify = Some(parse_bool(key, value)?),
                "gpg-verify-summary" => gpg_verify_summary = Some(parse_bool(key, value)?),
                "gpgkeypath" => gpgkeypath = Some(value),
                "sign-verify" => sign_verify = Some(value),
                "sign-verify-summary" => sign_verify_summary = Some(value),
                "verification-ed25519-key" => ed_key = Some(value),
                "verification-ed25519-file" => ed_file = Some(value),
                "verification-spki-key" => spki_key = Some(value),
                "verification-spki-file" => spki_file = Some(value),
                "collection-id" => collection_id = Some(value),
                _ => {}
            }
        }
        let non_empty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
        let policy = Self {
            gpg_verify: gpg_verify.unwrap_or(true),
            gpg_verify_summary: gpg_verify_summary.unwrap_or(false),
            gpgkeypath: match gpgkeypath {
                Some(v) => parse_gpgkeypath(v)?,
                None => Vec::new(),
            },
            sign_verify: parse_sign_verify("sign-verify", sign_verify)?,
            sign_verify_summary: parse_sign_verify("sign-verify-summary", sign_verify_summary)?,
            verification_ed25519_key: non_empty(ed_key),
            verification_ed25519_file: non_empty(ed_file),
            verification_spki_key: non_empty(spki_key),
            verification_spki_file: non_empty(spki_file),
            collection_id: non_empty(collection_id),
        };
        for (key, sv) in [
            ("sign-verify", &policy.sign_verify),
            ("sign-verify-summary", &policy.sign_verify_summary),
        ] {
            if let SignVerify::Engines(engines) = sv {
                for engine in engines {
                    let has_keys = match engine {
                        SignEngine::Ed25519 => {
                            policy.verification_ed25519_key.is_some()
                                || policy.verification_ed25519_file.is_some()
                        }
                        SignEngine::Spki => {
                            policy.verification_spki_key.is_some()
                                || policy.verification_spki_file.is_some()
                        }
                    };
                    if !has_keys {
                        return Err(ConfigError::MissingSignKeys {
                            key: key.to_owned(),
                            engine: engine.name(),
                        });
                    }
                }
            }
        }
        Ok(policy)
    }

    /// Whether commits need any valid signature (GPG or sign API).
    pub fn requires_commit_signature(&self) -> bool {
        self.gpg_verify || self.sign_verify.is_enabled()
    }

    /// Whether the summary needs any valid signature (GPG or sign API).
    pub fn requires_summary_signature(&self) -> bool {
        self.gpg_verify_summary || self.sign_verify_summary.is_enabled()
    }
}

/// GKeyFile boolean parsing: exactly `true`/`1`/`false`/`0` (case-sensitive).
fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::InvalidBoolean {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// `ot_keyfile_get_string_list_with_separator_choice(";,")`: split on whichever of `;`
/// or `,` occurs (both is an error).
fn parse_gpgkeypath(value: &str) -> Result<Vec<String>, ConfigError> {
    let sep = match (value.contains(';'), value.contains(',')) {
        (true, true) => {
            return Err(ConfigError::MixedSeparators {
                value: value.to_owned(),
            });
        }
        (true, false) => ';',
        (false, true) => ',',
        (false, false) => {
            return Ok(if value.is_empty() {
                vec![]
            } else {
                vec![value.to_owned()]
            });
        }
    };
    Ok(value
        .split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

fn parse_sign_verify(key: &str, value: Option<&str>) -> Result<SignVerify, ConfigError> {
    let value = match value {
        None | Some("") => return Ok(SignVerify::Disabled),
        Some(v) => v,
    };
    match value {
        "true" | "1" => return Ok(SignVerify::AnyEngine),
        "false" | "0" => return Ok(SignVerify::Disabled),
        _ => {}
    }
    let mut engines = Vec::new();
    for name in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let engine = SignEngine::from_name(name).ok_or_else(|| ConfigError::UnknownSignEngine {
            key: key.to_owned(),
            engine: name.to_owned(),
        })?;
        if !engines.contains(&engine) {
            engines.push(engine);
        }
    }
    Ok(if engines.is_empty() {
        SignVerify::Disabled
    } else {
        SignVerify::Engines(engines)
    })
}

/// A commit refused by the binding checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The commit's `ostree.ref-binding` does not list the ref it was pulled through.
    #[error("commit {commit} is bound to refs {} and cannot be pulled as ref {requested_ref:?}", describe_refs(.bound_refs))]
    RefNotBound {
        /// The commit checksum (hex).
        commit: String,
        /// The ref that was requested.
        requested_ref: String,
        /// The refs the commit is bound to.
        bound_refs: Vec<String>,
    },
    /// The remote has a collection ID but the commit carries no `ostree.ref-binding`.
    #[error(
        "commit {commit} has no ref binding (ostree.ref-binding), which remote collection {collection_id:?} requires"
    )]
    MissingRefBinding {
        /// The commit checksum (hex).
        commit: String,
        /// The remote's collection ID.
        collection_id: String,
    },
    /// The remote has a collection ID but the commit carries no
    /// `ostree.collection-binding`.
    #[error(
        "commit {commit} has no collection binding (ostree.collection-binding), which remote collection {collection_id:?} requires"
    )]
    MissingCollectionBinding {
        /// The commit checksum (hex).
        commit: String,
        /// The remote's collection ID.
        collection_id: String,
    },
    /// The commit's collection binding names a different collection.
    #[error(
        "commit {commit} is bound to collection {bound:?} but the remote's collection is {collection_id:?}"
    )]
    CollectionMismatch {
        /// The commit checksum (hex).
        commit: String,
        /// The commit's `ostree.collection-binding`.
        bound: String,
        /// The remote's collection ID.
        collection_id: String,
    },
}

fn describe_refs(refs: &[String]) -> String {
    if refs.is_empty() {
        "(none)".to_owned()
    } else {
        refs.iter()
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The ref-binding half of [`check_bindings`].
///
/// - `bindings`: the commit's `ostree.ref-binding` (`None` when the key is absent).
/// - `requested_ref`: the ref the commit was pulled through (`None` when pulled by
///   checksum: nothing to match).
/// - `require_binding`: refuse commits without the key (libostree does when the remote
///   has a collection ID; pass that as `remote_collection_id`).
///
/// A present binding must contain `requested_ref`; an absent one is accepted unless
/// required.
pub fn check_ref_binding<S: AsRef<str>>(
    commit: &str,
    bindings: Option<&[S]>,
    requested_ref: Option<&str>,
    remote_collection_id: Option<&str>,
) -> Result<(), BindingError> {
    let Some(bindings) = bindings else {
        return match remote_collection_id {
            None => Ok(()),
            Some(cid) => Err(BindingError::MissingRefBinding {
                commit: commit.to_owned(),
                collection_id: cid.to_owned(),
            }),
        };
    };
    if let Some(wanted) = requested_ref
        && !bindings.iter().any(|b| b.as_ref() == wanted)
    {
        return Err(BindingError::RefNotBound {
            commit: commit.to_owned(),
            requested_ref: wanted.to_owned(),
            bound_refs: bindings.iter().map(|b| b.as_ref().to_owned()).collect(),
        });
    }
    Ok(())
}

/// The collection-binding half of [`check_bindings`]: when the remote has a collection
/// ID, the commit's `ostree.collection-binding` must exist and equal it; without one,
/// anything is accepted.
pub fn check_collection_binding(
    commit: &str,
    collection_binding: Option<&str>,
    remote_collection_id: Option<&str>,
) -> Result<(), BindingError> {
    let Some(cid) = remote_collection_id else {
        return Ok(());
    };
    match collection_binding {
        None => Err(BindingError::MissingCollectionBinding {
            commit: commit.to_owned(),
            collection_id: cid.to_owned(),
        }),
        Some(bound) if bound == cid => Ok(()),
        Some(bound) => Err(BindingError::CollectionMismatch {
            commit: commit.to_owned(),
            bound: bound.to_owned(),
            collection_id: cid.to_owned(),
        }),
    }
}

/// `_ostree_repo_verify_bindings`: ref binding first, then collection binding.
/// `commit` is the commit checksum (for messages).
pub fn check_bindings<S: AsRef<str>>(
    commit: &str,
    ref_bindings: Option<&[S]>,
    collection_binding: Option<&str>,
    requested_ref: Option<&str>,
    remote_collection_id: Option<&str>,
) -> Result<(), BindingError> {
    check_ref_binding(commit, ref_bindings, requested_ref, remote_collection_id)?;
    check_collection_binding(commit, collection_binding, remote_collection_id)
}

/// A commit refused by the downgrade check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DowngradeError {
    /// The new commit is older than the current one.
    #[error("commit {new_commit} with timestamp {} is older than current commit {current_commit} with timestamp {}; allow downgrades to accept it", format_unix_utc(ts_i64(*.new_timestamp)), format_unix_utc(ts_i64(*.current_timestamp)))]
    Downgrade {
        /// The commit currently deployed or referenced.
        current_commit: String,
        /// Its timestamp (seconds since the epoch).
        current_timestamp: u64,
        /// The commit being pulled.
        new_commit: String,
        /// Its timestamp.
        new_timestamp: u64,
    },
}

fn ts_i64(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// `_ostree_compare_timestamps`: accepts a newer or equally old commit, the same commit,
/// or anything when `allow_downgrade`; refuses an older one.
pub fn check_downgrade(
    current_commit: &str,
    current_timestamp: u64,
    new_commit: &str,
    new_timestamp: u64,
    allow_downgrade: bool,
) -> Result<(), DowngradeError> {
    if allow_downgrade || new_timestamp >= current_timestamp || current_commit == new_commit {
        return Ok(());
    }
    Err(DowngradeError::Downgrade {
        current_commit: current_commit.to_owned(),
        current_timestamp,
        new_commit: new_commit.to_owned(),
        new_timestamp,
    })
}
