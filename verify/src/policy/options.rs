//! How a remote option's raw key-file value is read: the one set of rules for
//! `sign-verify` / `sign-verify-summary`, `gpgkeypath` and the boolean options, shared by
//! the engine's typed remote and by [`super::RemotePolicy`].
//!
//! Values are raw (escaped, as in the file); the rules are libostree's:
//! `verifiers_from_config` (`ostree-repo-pull-verify.c`) for the sign keys,
//! `ot_keyfile_get_string_list_with_separator_choice` (`ot-keyfile-utils.c`) for
//! `gpgkeypath`, GLib's `g_key_file_get_boolean` for booleans (ostreedev/ostree at
//! `46204655`, the same in `v2022.7`).

use cfsync_formats::keyfile::{escape_list, unescape_list, unescape_value};

pub use cfsync_formats::keyfile::parse_bool;

/// Why a raw option value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    /// A bad escape sequence (GLib's "value that cannot be interpreted").
    #[error("{0}")]
    Escape(String),
    /// A boolean option holds something other than `true`/`false`/`1`/`0`.
    #[error("not a boolean")]
    NotBoolean,
    /// A `sign-verify` list has an empty item.
    #[error("empty signature type name")]
    EmptySignType,
    /// `gpgkeypath` holds both `;` and `,`.
    #[error("key value list contains more than one separator")]
    MixedSeparators,
    /// A `--set` value of `sign-verify` is neither a boolean nor a list of type names.
    #[error("expected true, false or a ';'-separated list of signature types")]
    BadSignVerifyValue,
}

/// Reads a boolean option as GLib does ([`parse_bool`]: `true`/`1`/`false`/`0`, trailing
/// white space ignored).
pub fn read_bool(raw: &str) -> Result<bool, OptionError> {
    parse_bool(raw).ok_or(OptionError::NotBoolean)
}

/// The value of `sign-verify` / `sign-verify-summary`, as `verifiers_from_config` in
/// libostree's `ostree-repo-pull-verify.c` reads it. The key is not a plain boolean.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignVerifyOption {
    /// Key absent, empty, `false` or `0`: no sign-API verification (libostree's default).
    #[default]
    Disabled,
    /// `true` or `1`: accept a signature from any signature type that has keys configured
    /// (keys are optional per type).
    AnyConfigured,
    /// Any other value: a `;`-separated list of signature types (e.g. `ed25519`); each must
    /// be known and have keys configured, and one of them must verify. Note that
    /// `ostree remote add --sign-verify` joins several types with `,`, which libostree then
    /// reads back as one unknown type name; that is kept as is here.
    Types(Vec<String>),
}

impl SignVerifyOption {
    /// Whether sign-API verification is required.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, SignVerifyOption::Disabled)
    }

    /// Reads a raw key-file value (`verifiers_from_config`: the string value is compared
    /// exactly with `true`/`1`/`false`/`0`, anything else is a string list).
    pub fn from_raw(raw: &str) -> Result<Self, OptionError> {
        // libostree first reads the key as a plain string, so `\;` is an error here too.
        let value = unescape_value(raw).map_err(OptionError::Escape)?;
        match value.as_str() {
            "" | "false" | "0" => Ok(SignVerifyOption::Disabled),
            "true" | "1" => Ok(SignVerifyOption::AnyConfigured),
            _ => {
                let types = unescape_list(raw, ';').map_err(OptionError::Escape)?;
                if types.is_empty() || types.iter().any(|t| t.is_empty()) {
                    return Err(OptionError::EmptySignType);
                }
                Ok(SignVerifyOption::Types(types))
            }
        }
    }

    /// Parses a `--set` value (unescaped text).
    pub fn from_value(value: &str) -> Result<Self, OptionError> {
        match value {
            "" | "false" | "0" => Ok(SignVerifyOption::Disabled),
            "true" | "1" => Ok(SignVerifyOption::AnyConfigured),
            _ => {
                let types: Vec<String> = value.split(';').map(str::to_owned).collect();
                let types: Vec<String> = match types.split_last() {
                    Some((last, init)) if last.is_empty() => init.to_vec(),
                    _ => types,
                };
                if types.is_empty()
                    || types
                        .iter()
                        .any(|t| t.is_empty() || t.contains(char::is_whitespace))
                {
                    return Err(OptionError::BadSignVerifyValue);
                }
                Ok(SignVerifyOption::Types(types))
            }
        }
    }

    /// The raw value written to a key file. A single type is written bare (`ed25519`), as
    /// `ostree remote add --sign-verify` does.
    pub fn to_raw(&self) -> String {
        match self {
            SignVerifyOption::Disabled => "false".to_owned(),
            SignVerifyOption::AnyConfigured => "true".to_owned(),
            SignVerifyOption::Types(types) => {
                let mut raw = escape_list(types, ';');
                raw.pop(); // the separator after the last item
                raw
            }
        }
    }
}

/// Reads a raw `gpgkeypath` value as `ot_keyfile_get_string_list_with_separator_choice`
/// does with separators `;,`: split on whichever of `;` or `,` occurs (both is an error);
/// with neither, the whole value is one path.
pub fn parse_gpgkeypath(raw: &str) -> Result<Vec<String>, OptionError> {
    let has_semi = raw.contains(';');
    let has_comma = raw.contains(',');
    match (has_semi, has_comma) {
        (true, true) => Err(OptionError::MixedSeparators),
        (true, false) => unescape_list(raw, ';').map_err(OptionError::Escape),
        (false, true) => unescape_list(raw, ',').map_err(OptionError::Escape),
        (false, false) => Ok(vec![unescape_value(raw).map_err(OptionError::Escape)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_values() {
        use SignVerifyOption::*;
        for (raw, want) in [("", Disabled), ("0", Disabled), ("false", Disabled)] {
            assert_eq!(SignVerifyOption::from_raw(raw).unwrap(), want);
        }
        assert_eq!(SignVerifyOption::from_raw("1").unwrap(), AnyConfigured);
        let two = Types(vec!["ed25519".into(), "spki".into()]);
        assert_eq!(SignVerifyOption::from_raw("ed25519;spki;").unwrap(), two);
        assert_eq!(SignVerifyOption::from_raw(&two.to_raw()).unwrap(), two);
        assert_eq!(two.to_raw(), "ed25519;spki");
        assert_eq!(
            SignVerifyOption::from_raw("ed25519;;spki"),
            Err(OptionError::EmptySignType)
        );
        assert!(SignVerifyOption::from_raw("a\\;b").is_err());
        assert_eq!(
            SignVerifyOption::from_value("ed25519;").unwrap().to_raw(),
            "ed25519"
        );
        assert_eq!(
            SignVerifyOption::from_value("a b"),
            Err(OptionError::BadSignVerifyValue)
        );
    }

    #[test]
    fn gpgkeypath_and_bools() {
        assert_eq!(parse_gpgkeypath("/a;/b").unwrap(), ["/a", "/b"]);
        assert_eq!(parse_gpgkeypath("/a,/b,").unwrap(), ["/a", "/b"]);
        assert_eq!(parse_gpgkeypath("/a").unwrap(), ["/a"]);
        assert_eq!(
            parse_gpgkeypath("/a;/b,/c"),
            Err(OptionError::MixedSeparators)
        );
        assert_eq!(read_bool("true  "), Ok(true));
        assert_eq!(read_bool("1"), Ok(true));
        assert_eq!(read_bool("False"), Err(OptionError::NotBoolean));
    }
}
