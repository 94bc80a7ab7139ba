//! A remote's verification policy: [`RemotePolicy`] with libostree's defaults
//! (`gpg-verify=true`, `gpg-verify-summary=false`, sign API off:
//! `ostree_repo_remote_get_gpg_verify{,_summary}` in `ostree-repo.c`,
//! `verifiers_from_config` in `ostree-repo-pull-verify.c`; `docs/ostree-formats.md` §8.3),
//! read from a remote's options with the rules of [`super::options`].

use cfsync_formats::keyfile::unescape_value;

use super::options::{OptionError, SignVerifyOption, parse_gpgkeypath, read_bool};

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
    /// Any other value that cannot be read (a bad escape, an empty signature type name).
    #[error("invalid value {value:?} for remote option {key}: {source}")]
    InvalidValue {
        /// The option.
        key: String,
        /// Its raw value.
        value: String,
        /// Why.
        source: OptionError,
    },
}

impl ConfigError {
    fn from_option(key: &str, value: &str, source: OptionError) -> Self {
        let (key, value) = (key.to_owned(), value.to_owned());
        match source {
            OptionError::NotBoolean => ConfigError::InvalidBoolean { key, value },
            OptionError::MixedSeparators => ConfigError::MixedSeparators { value },
            source => ConfigError::InvalidValue { key, value, source },
        }
    }
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

    /// The engine called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(SignEngine::Ed25519),
            "spki" => Some(SignEngine::Spki),
            _ => None,
        }
    }
}

/// The value of `sign-verify` / `sign-verify-summary` with its type names resolved to
/// engines (the option itself is read by [`SignVerifyOption`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignVerify {
    /// Absent, empty, `false` or `0`: no sign API verification.
    #[default]
    Disabled,
    /// `true` or `1`: every engine, each with whatever keys it has configured (falling
    /// back to the system key files); a valid signature from any engine is required.
    AnyEngine,
    /// An explicit `;`-separated list: exactly these engines (each once, in order), each of which must have
    /// keys configured; a valid signature from any of them is required.
    Engines(Vec<SignEngine>),
}

impl SignVerify {
    /// Whether a valid sign API signature is required.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, SignVerify::Disabled)
    }

    /// Resolves the type names of the option `key` to engines; an unknown name is an
    /// error, as `ostree_sign_get_by_name` makes it in libostree.
    pub fn from_option(key: &str, option: &SignVerifyOption) -> Result<Self, ConfigError> {
        Ok(match option {
            SignVerifyOption::AnyConfigured => SignVerify::AnyEngine,
            SignVerifyOption::Types(names) => {
                let mut engines = Vec::new();
                for name in names {
                    let engine = SignEngine::from_name(name).ok_or_else(|| {
                        ConfigError::UnknownSignEngine {
                            key: key.to_owned(),
                            engine: name.clone(),
                        }
                    })?;
                    if !engines.contains(&engine) {
                        engines.push(engine);
                    }
                }
                SignVerify::Engines(engines)
            }
            _ => SignVerify::Disabled,
        })
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
    /// bindings ([`super::check_bindings`]).
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
    /// Reads the policy from a remote's `(key, raw value)` options as they appear in the
    /// key file (still escaped, e.g. [`cfsync_formats::keyfile::KeyFile::entries`]), with
    /// the rules of [`super::options`]. Unknown keys are ignored; a key given twice takes
    /// its last value, as GKeyFile does. Empty string values count as unset.
    pub fn from_options<'a, I>(options: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut policy = Self::default();
        for (key, raw) in options {
            let err = |e| ConfigError::from_option(key, raw, e);
            let string = || {
                unescape_value(raw)
                    .map(|s| (!s.is_empty()).then_some(s))
                    .map_err(|e| err(OptionError::Escape(e)))
            };
            match key {
                "gpg-verify" => policy.gpg_verify = read_bool(raw).map_err(err)?,
                "gpg-verify-summary" => policy.gpg_verify_summary = read_bool(raw).map_err(err)?,
                "gpgkeypath" => policy.gpgkeypath = parse_gpgkeypath(raw).map_err(err)?,
                "sign-verify" => {
                    let option = SignVerifyOption::from_raw(raw).map_err(err)?;
                    policy.sign_verify = SignVerify::from_option(key, &option)?;
                }
                "sign-verify-summary" => {
                    let option = SignVerifyOption::from_raw(raw).map_err(err)?;
                    policy.sign_verify_summary = SignVerify::from_option(key, &option)?;
                }
                "verification-ed25519-key" => policy.verification_ed25519_key = string()?,
                "verification-ed25519-file" => policy.verification_ed25519_file = string()?,
                "verification-spki-key" => policy.verification_spki_key = string()?,
                "verification-spki-file" => policy.verification_spki_file = string()?,
                "collection-id" => policy.collection_id = string()?,
                _ => {}
            }
        }
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
