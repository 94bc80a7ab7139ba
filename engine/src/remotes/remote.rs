//! [`Remote`]: the typed view of one `[remote "NAME"]` group, read with libostree's rules
//! and defaults (the option values through [`cfsync_verify::policy::options`], the one
//! reader shared with the trust policy).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cfsync_formats::keyfile::{KeyFile, parse_bool, unescape_list, unescape_value};
use cfsync_verify::policy::options::parse_gpgkeypath;

use super::SignVerify;
use super::error::RemoteError;
use super::validate::{UrlSpec, parse_url_spec, validate_collection_id, validate_remote_name};

/// Keys with a typed field in [`Remote`]; every other key goes to [`Remote::extra`].
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "url",
    "contenturl",
    "branches",
    "gpg-verify",
    "gpg-verify-summary",
    "sign-verify",
    "sign-verify-summary",
    "verification-ed25519-key",
    "verification-ed25519-file",
    "collection-id",
    "gpgkeypath",
];

/// Default of `gpg-verify`: true. libostree `ostree_repo_remote_get_gpg_verify`
/// (`ostree-repo.c`) calls `ostree_repo_get_remote_boolean_option (…, "gpg-verify", TRUE,
/// …)`; only a remote *named* by a `file://` URL (pull-local compatibility) gets false,
/// which does not concern configured remotes.
pub(crate) const DEFAULT_GPG_VERIFY: bool = true;

/// Default of `gpg-verify-summary`: false. libostree
/// `ostree_repo_remote_get_gpg_verify_summary` (`ostree-repo.c`) calls
/// `ostree_repo_get_remote_boolean_option (…, "gpg-verify-summary", FALSE, …)`.
pub(crate) const DEFAULT_GPG_VERIFY_SUMMARY: bool = false;

/// One remote: the typed view of a `[remote "NAME"]` group.
///
/// Defaults when a key is absent (see the constants for the libostree functions they come
/// from): `gpg-verify` true, `gpg-verify-summary` false, `sign-verify` and
/// `sign-verify-summary` [`SignVerify::Disabled`] (`verifiers_from_config` returns no
/// verifiers for an absent or empty key), no `contenturl` (content then comes from `url`),
/// no branches, keys or collection ID.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remote {
    /// The name, from the group name `remote "NAME"` (the file name does not matter).
    pub name: String,
    /// `url`: the metadata base URL or `mirrorlist=URL`; `None` if the key is absent
    /// (libostree then refuses to pull: "No \"url\" option in remote").
    pub url: Option<String>,
    /// `contenturl`: the content base URL or `mirrorlist=URL`; `None` means `url`.
    pub contenturl: Option<String>,
    /// `gpg-verify`: commits must carry a valid GPG signature.
    pub gpg_verify: bool,
    /// `gpg-verify-summary`: the summary must carry a valid GPG signature.
    pub gpg_verify_summary: bool,
    /// `sign-verify`: sign-API (ed25519) verification of commits.
    pub sign_verify: SignVerify,
    /// `sign-verify-summary`: sign-API verification of the summary.
    pub sign_verify_summary: SignVerify,
    /// `verification-ed25519-key`: one inline base64 ed25519 public key (libostree reads
    /// it as a single string and decodes exactly one 32-byte key from it).
    pub ed25519_key: Option<String>,
    /// `verification-ed25519-file`: a file with base64 ed25519 public keys, one per line.
    pub ed25519_file: Option<PathBuf>,
    /// `collection-id`.
    pub collection_id: Option<String>,
    /// `branches`: refs pulled when none are named (a `;` list, written `a;b;`).
    pub branches: Vec<String>,
    /// `gpgkeypath`: extra keyring or key files; libostree splits on `;` or on `,`
    /// (`ot_keyfile_get_string_list_with_separator_choice`; both in one value is an error).
    pub gpgkeypath: Vec<PathBuf>,
    /// Every other key, with its raw (still escaped) value exactly as in the file, so it
    /// round-trips unchanged; read one with [`Remote::extra_string`] or
    /// [`Remote::extra_bool`].
    pub extra: BTreeMap<String, String>,
}

/// The group name of a remote: `remote "NAME"`.
pub(crate) fn remote_group_name(name: &str) -> String {
    format!("remote \"{name}\"")
}

/// The remote name inside a group name, if it is a remote group (`ostree-remote.c` matches
/// `^remote "(.+)"$`).
fn remote_name_from_group(group: &str) -> Option<&str> {
    group
        .strip_prefix("remote \"")?
        .strip_suffix('"')
        .filter(|n| !n.is_empty())
}

pub(crate) fn path_to_string(remote: &str, key: &str, p: &Path) -> Result<String, RemoteError> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| RemoteError::InvalidValue {
            remote: remote.to_owned(),
            key: key.to_owned(),
            value: p.to_string_lossy().into_owned(),
            reason: "path is not valid UTF-8".to_owned(),
        })
}

impl Remote {
    /// A remote with libostree's defaults. Checks the name and the URL.
    pub fn new(name: &str, url: &str) -> Result<Self, RemoteError> {
        validate_remote_name(name)?;
        parse_url_spec(url)?;
        let mut r = Self::with_defaults(name);
        r.url = Some(url.to_owned());
        Ok(r)
    }

    fn with_defaults(name: &str) -> Self {
        Remote {
            name: name.to_owned(),
            url: None,
            contenturl: None,
            gpg_verify: DEFAULT_GPG_VERIFY,
            gpg_verify_summary: DEFAULT_GPG_VERIFY_SUMMARY,
            sign_verify: SignVerify::Disabled,
            sign_verify_summary: SignVerify::Disabled,
            ed25519_key: None,
            ed25519_file: None,
            collection_id: None,
            branches: Vec::new(),
            gpgkeypath: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The key-file group of this remote: `remote "NAME"`.
    pub fn group_name(&self) -> String {
        remote_group_name(&self.name)
    }

    /// The metadata base URL, checked.
    pub fn url_spec(&self) -> Result<UrlSpec, RemoteError> {
        match &self.url {
            Some(u) => parse_url_spec(u),
            None => Err(RemoteError::MissingUrl {
                name: self.name.clone(),
            }),
        }
    }

    /// The content base URL, checked: `contenturl`, else `url`.
    pub fn content_url_spec(&self) -> Result<UrlSpec, RemoteError> {
        match &self.contenturl {
            Some(u) => parse_url_spec(u),
            None => self.url_spec(),
        }
    }

    /// An extra key read as a string (escapes undone).
    pub fn extra_string(&self, key: &str) -> Result<Option<String>, RemoteError> {
        self.extra
            .get(key)
            .map(|raw| unescape_value(raw).map_err(|reason| self.invalid(key, raw, reason)))
            .transpose()
    }

    /// An extra key read as a boolean (e.g. `tls-permissive`, `http2`).
    pub fn extra_bool(&self, key: &str) -> Result<Option<bool>, RemoteError> {
        self.extra
            .get(key)
            .map(|raw| {
                parse_bool(raw).ok_or_else(|| self.invalid(key, raw, "not a boolean".to_owned()))
            })
            .transpose()
    }

    pub(crate) fn invalid(&self, key: &str, value: &str, reason: String) -> RemoteError {
        RemoteError::InvalidValue {
            remote: self.name.clone(),
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        }
    }

    /// Reads the remote of `group`; `Ok(None)` if `group` is not a `remote "…"` group.
    /// Values are read as libostree reads them; URLs are not checked here (see
    /// [`Remote::url_spec`]), the name and the collection ID are.
    pub fn from_keyfile_group(kf: &KeyFile, group: &str) -> Result<Option<Self>, RemoteError> {
        let Some(name) = remote_name_from_group(group) else {
            return Ok(None);
        };
        validate_remote_name(name)?;
        let mut r = Self::with_defaults(name);
        for (key, raw) in kf.entries(group) {
            let string = || unescape_value(raw).map_err(|reason| r.invalid(key, raw, reason));
            let boolean =
                || parse_bool(raw).ok_or_else(|| r.invalid(key, raw, "not a boolean".to_owned()));
            match key {
                "url" => r.url = Some(string()?),
                "contenturl" => r.contenturl = Some(string()?),
                "gpg-verify" => r.gpg_verify = boolean()?,
                "gpg-verify-summary" => r.gpg_verify_summary = boolean()?,
                "sign-verify" => {
                    r.sign_verify =
                        SignVerify::from_raw(raw).map_err(|e| r.invalid(key, raw, e.to_string()))?
                }
                "sign-verify-summary" => {
                    r.sign_verify_summary =
                        SignVerify::from_raw(raw).map_err(|e| r.invalid(key, raw, e.to_string()))?
                }
                "verification-ed25519-key" => r.ed25519_key = Some(string()?),
                "verification-ed25519-file" => r.ed25519_file = Some(PathBuf::from(string()?)),
                "collection-id" => {
                    let id = string()?;
                    if id.is_empty() {
                        r.collection_id = None;
                    } else {
                        validate_collection_id(&id)?;
                        r.collection_id = Some(id);
                    }
                }
                "branches" => {
                    r.branches =
                        unescape_list(raw, ';').map_err(|reason| r.invalid(key, raw, reason))?
                }
                "gpgkeypath" => {
                    r.gpgkeypath = parse_gpgkeypath(raw)
                        .map_err(|e| r.invalid(key, raw, e.to_string()))?
                        .into_iter()
                        .map(PathBuf::from)
                        .collect()
                }
                _ => {
                    r.extra.insert(key.to_owned(), raw.to_owned());
                }
            }
        }
        Ok(Some(r))
    }

    /// Every remote group of a key file, in file order; other groups (`[core]`, …) are
    /// ignored, as libostree does.
    pub fn all_from_keyfile(kf: &KeyFile) -> Result<Vec<Self>, RemoteError> {
        let mut out = Vec::new();
        for g in kf.groups() {
            if let Some(r) = Self::from_keyfile_group(kf, g)? {
                out.push(r);
            }
        }
        Ok(out)
    }
}
