//! `--set KEY=VALUE` on a remote ([`parse_set_argument`], [`Remote::apply_set`]): the
//! value is plain text, checked per known key before it is stored.

use std::path::{Path, PathBuf};

use cfsync_formats::keyfile::{escape_value, is_key_name, parse_bool};

use super::SignVerify;
use super::error::RemoteError;
use super::remote::Remote;
use super::validate::{parse_url_spec, validate_collection_id};

/// Splits a `--set KEY=VALUE` argument at its first `=` (as `ot_parse_keyvalue` does).
pub fn parse_set_argument(arg: &str) -> Result<(&str, &str), RemoteError> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(RemoteError::InvalidSetArgument {
            arg: arg.to_owned(),
        }),
    }
}

/// Keys kept in [`Remote::extra`] that [`Remote::apply_set`] still checks as booleans.
const EXTRA_BOOL_KEYS: &[&str] = &["tls-permissive", "http2"];

impl Remote {
    /// Applies `--set KEY=VALUE` (VALUE is plain text, not escaped), checking known keys:
    ///
    /// - `url` must pass [`parse_url_spec`]; `contenturl` too, or be empty to unset it.
    /// - `gpg-verify`, `gpg-verify-summary`, `tls-permissive`, `http2`: `true`, `false`,
    ///   `1` or `0`.
    /// - `sign-verify`, `sign-verify-summary`: `true`/`1`, `false`/`0`/empty, or a
    ///   `;`-separated list of type names.
    /// - `verification-ed25519-key`: 44 base64 characters (one 32-byte key), or empty to
    ///   unset; `verification-ed25519-file`: an absolute path, or empty to unset.
    /// - `collection-id`: [`validate_collection_id`], or empty to unset.
    /// - `branches`, `gpgkeypath`: `;`-separated (also `,` for `gpgkeypath`, as libostree
    ///   reads it), no empty items; empty to clear.
    /// - any other key: stored escaped in [`Remote::extra`] (so `ostree` reads back exactly
    ///   VALUE); the key must be a valid key-file key.
    pub fn apply_set(&mut self, key: &str, value: &str) -> Result<(), RemoteError> {
        let invalid = |reason: &str| self.invalid(key, value, reason.to_owned());
        let bool_value = || parse_bool(value).ok_or_else(|| invalid("not a boolean"));
        match key {
            "url" => {
                parse_url_spec(value)?;
                self.url = Some(value.to_owned());
            }
            "contenturl" => {
                if value.is_empty() {
                    self.contenturl = None;
                } else {
                    parse_url_spec(value)?;
                    self.contenturl = Some(value.to_owned());
                }
            }
            "gpg-verify" => self.gpg_verify = bool_value()?,
            "gpg-verify-summary" => self.gpg_verify_summary = bool_value()?,
            "sign-verify" => {
                self.sign_verify =
                    SignVerify::from_value(value).map_err(|e| invalid(&e.to_string()))?
            }
            "sign-verify-summary" => {
                self.sign_verify_summary =
                    SignVerify::from_value(value).map_err(|e| invalid(&e.to_string()))?
            }
            "verification-ed25519-key" => {
                if value.is_empty() {
                    self.ed25519_key = None;
                } else if is_base64_ed25519_key(value) {
                    self.ed25519_key = Some(value.to_owned());
                } else {
                    return Err(invalid(
                        "expected one base64 ed25519 public key (44 characters)",
                    ));
                }
            }
            "verification-ed25519-file" => {
                if value.is_empty() {
                    self.ed25519_file = None;
                } else if Path::new(value).is_absolute() {
                    self.ed25519_file = Some(PathBuf::from(value));
                } else {
                    return Err(invalid("expected an absolute path"));
                }
            }
            "collection-id" => {
                if value.is_empty() {
                    self.collection_id = None;
                } else {
                    validate_collection_id(value)?;
                    self.collection_id = Some(value.to_owned());
                }
            }
            "branches" => self.branches = split_set_list(value, &[';']).map_err(&invalid)?,
            "gpgkeypath" => {
                if value.contains(';') && value.contains(',') {
                    return Err(invalid("use either ';' or ',' as separator, not both"));
                }
                self.gpgkeypath = split_set_list(value, &[';', ','])
                    .map_err(&invalid)?
                    .into_iter()
                    .map(PathBuf::from)
                    .collect();
            }
            _ => {
                if !is_key_name(key) || key.contains(['[', ']']) {
                    return Err(RemoteError::InvalidKey {
                        remote: self.name.clone(),
                        key: key.to_owned(),
                    });
                }
                if EXTRA_BOOL_KEYS.contains(&key) {
                    bool_value()?;
                }
                self.extra.insert(key.to_owned(), escape_value(value));
            }
        }
        Ok(())
    }
}

/// One base64 ed25519 public key: 32 bytes, so 43 base64 characters and one `=`.
fn is_base64_ed25519_key(s: &str) -> bool {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    s.len() == 44 && s.ends_with('=') && s.get(..43).is_some_and(|head| head.chars().all(b64))
}

/// Splits a `--set` list value; a trailing separator is allowed, empty items are not.
fn split_set_list(value: &str, seps: &[char]) -> Result<Vec<String>, &'static str> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let trimmed = value.strip_suffix(seps).unwrap_or(value);
    let items: Vec<String> = trimmed.split(seps).map(str::to_owned).collect();
    if items.iter().any(String::is_empty) {
        return Err("empty list item");
    }
    Ok(items)
}
