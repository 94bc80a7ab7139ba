//! Remote configuration in OSTree's key-file format: a small GLib-compatible key-file
//! reader and writer ([`KeyFile`]), the typed view of one `[remote "NAME"]` group
//! ([`Remote`]) and the store that keeps cfsync's remotes as one file per remote
//! ([`RemoteStore`]), read beside the read-only remotes of `/etc/ostree/remotes.d` and of an
//! OSTree repository's `config`.
//!
//! The syntax is that of GLib's `GKeyFile` as libostree writes and reads it in a repository
//! `config` and in `remotes.d/*.conf` (checked against `ostree` 2022.7 / GLib 2.74, see
//! `engine/tests/remotes.rs`): `[group]` lines, `key=value` lines, `#` comments, the value
//! escapes `\s \n \t \r \\` (and `\;` inside lists), booleans `true`/`false`/`1`/`0`, string
//! lists separated by `;`. The remote keys and their defaults follow libostree
//! (`src/libostree/ostree-repo.c`, `ostree-repo-pull-verify.c`, `ostree-remote.c` and
//! `src/ostree/ot-remote-builtin-add.c`, ostreedev/ostree at `46204655`, the same in
//! `v2022.7`); each default below cites the function it comes from. Nothing here is async:
//! remote files are small and read once per command.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest configuration file (`config`, `*.conf`) that is read, in bytes. libostree has no
/// limit; real files are a few hundred bytes.
pub const MAX_CONFIG_FILE_SIZE: u64 = 1 << 20;

/// Longest remote name accepted, in bytes. libostree has no limit; this one keeps
/// `<name>.trustedkeys.gpg` within the 255-byte file-name limit of Linux file systems.
pub const MAX_REMOTE_NAME_LEN: usize = 200;

/// Longest URL accepted by [`parse_url_spec`], in bytes.
pub const MAX_URL_LEN: usize = 8192;

/// The directory libostree reads system-wide remotes from (`SYSCONF_REMOTES` in
/// `ostree-repo.c`), the default extra directory of [`RemoteStore::with_system_dirs`].
pub const SYSTEM_REMOTES_DIR: &str = "/etc/ostree/remotes.d";

// ---------------------------------------------------------------------------------------
// Key file
// ---------------------------------------------------------------------------------------

/// Errors from reading or editing a [`KeyFile`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// A line of the file is not a group, a key-value pair or a comment.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// A group name is empty or holds `[`, `]` or a control character.
    #[error("invalid group name {0:?}")]
    InvalidGroupName(String),
    /// A key name is empty, holds `=`, `[`, `]` (other than a `[locale]` suffix) or a
    /// control character, or starts or ends with a space.
    #[error("invalid key name {0:?}")]
    InvalidKeyName(String),
    /// A value cannot be read as the type asked for (bad escape, not a boolean), or a raw
    /// value to store holds a line break.
    #[error("value of key {key:?} in group {group:?} cannot be interpreted: {reason}")]
    InvalidValue {
        /// The group.
        group: String,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// One line inside a group: a comment (or blank line) kept verbatim, or a key and its raw
/// (still escaped) value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Comment(String),
    Pair { key: String, value: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    /// Comment and blank lines written before the `[name]` line.
    comments: Vec<String>,
    name: String,
    lines: Vec<Line>,
}

/// A GLib-style key file: groups in file order, each with its keys in file order.
///
/// Values are kept raw (escaped, exactly as in the file); [`KeyFile::get_string`],
/// [`KeyFile::get_bool`] and [`KeyFile::get_string_list`] interpret them as GLib does.
/// Comments and blank lines are preserved: a file that is parsed and written back without
/// edits comes out byte for byte the same, except that `\r\n` line ends become `\n`, a
/// duplicate group is merged into its first occurrence and a repeated key keeps only its
/// last value (at the position of its first occurrence), which is what GLib reads from such
/// files. Comments directly before a `[group]` line belong to that group and go away with
/// it when it is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFile {
    /// Comment and blank lines before the first group.
    preamble: Vec<String>,
    groups: Vec<Group>,
}

/// GLib's `g_ascii_isspace`.
fn is_gspace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// GLib's `g_key_file_is_group_name`: non-empty, no `[`, `]` or control character.
fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '[' || c == ']' || c.is_ascii_control())
}

/// GLib's `g_key_file_is_key_name`, plus: no control characters.
fn is_key_name(key: &str) -> bool {
    let base_end = key.find(['=', '[', ']']).unwrap_or(key.len());
    let (base, rest) = key.split_at(base_end);
    if base.is_empty() || base.starts_with(' ') || base.ends_with(' ') {
        return false;
    }
    if key.chars().any(|c| c.is_control()) {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    // Only a `[locale]` suffix may follow.
    let Some(locale) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    locale
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// If `line` (leading white space already removed) is a group line, its group name.
/// GLib's `g_key_file_line_is_group`: `[`, anything but `]`, `]`, then only spaces or tabs.
fn group_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let name = rest.get(..close)?;
    let after = rest.get(close.checked_add(1)?..)?;
    if after.chars().all(|c| c == ' ' || c == '\t') {
        Some(name)
    } else {
        None
    }
}

/// Escapes `value` as GLib's `g_key_file_set_string` does (`\s`/`\t` for leading spaces and
/// tabs, `\n`, `\r`, `\\` everywhere), so that [`unescape_value`] gives `value` back.
pub fn escape_value(value: &str) -> String {
    escape_inner(value, None)
}

fn escape_inner(value: &str, separator: Option<char>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut leading = true;
    for c in value.chars() {
        match c {
            ' ' if leading => out.push_str("\\s"),
            '\t' if leading => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if Some(c) == separator => {
                out.push('\\');
                out.push(c);
                leading = false;
            }
            c => {
                out.push(c);
                if c != ' ' && c != '\t' {
                    leading = false;
                }
            }
        }
    }
    out
}

/// Escapes a list as GLib's `g_key_file_set_string_list` does: every item escaped, the
/// separator inside an item written as `\<sep>`, every item followed by the separator
/// (`a;b;`).
pub fn escape_list<S: AsRef<str>>(items: &[S], separator: char) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&escape_inner(item.as_ref(), Some(separator)));
        out.push(separator);
    }
    out
}

/// Undoes [`escape_value`]: GLib's `g_key_file_get_string` on a raw value. Fails on an
/// unknown escape (GLib's "value that cannot be interpreted"), including `\;`, and on a
/// backslash at the end of the value.
pub fn unescape_value(raw: &str) -> Result<String, String> {
    let mut out = unescape_pieces(raw, None)?;
    Ok(out.pop().unwrap_or_default())
}

/// Reads a raw value as a list, as GLib's `g_key_file_get_string_list` does with list
/// separator `separator`: items split at unescaped separators, `\<sep>` is a literal
/// separator, empty items between separators are kept, an empty last item is not (so
/// `a;b;` and `a;b` are both `["a", "b"]`, and an empty value is an empty list).
pub fn unescape_list(raw: &str, separator: char) -> Result<Vec<String>, String> {
    unescape_pieces(raw, Some(separator))
}

/// Shared body of [`unescape_value`] (`separator` = `None`: one piece, always returned)
/// and [`unescape_list`].
fn unescape_pieces(raw: &str, separator: Option<char>) -> Result<Vec<String>, String> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('s') => cur.push(' '),
                Some('n') => cur.push('\n'),
                Some('t') => cur.push('\t'),
                Some('r') => cur.push('\r'),
                Some('\\') => cur.push('\\'),
                Some(e) if Some(e) == separator => cur.push(e),
                Some(e) => return Err(format!("invalid escape sequence \\{e}")),
                None => return Err("escape character at end of value".to_owned()),
            }
        } else if Some(c) == separator {
            pieces.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if separator.is_none() || !cur.is_empty() {
        pieces.push(cur);
    }
    Ok(pieces)
}

/// GLib's `g_key_file_get_boolean` on a raw value: `true`/`1` or `false`/`0`, trailing
/// white space ignored (leading white space never reaches a value).
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim_end_matches(is_gspace) {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

impl KeyFile {
    /// An empty key file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses key-file bytes, which must be UTF-8 (GLib rejects other files too).
    pub fn parse_bytes(data: &[u8]) -> Result<Self, KeyFileError> {
        match std::str::from_utf8(data) {
            Ok(text) => Self::parse(text),
            Err(e) => {
                let good = data.get(..e.valid_up_to()).unwrap_or_default();
                let line = good
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    .saturating_add(1);
                Err(KeyFileError::Syntax {
                    line,
                    reason: "line is not valid UTF-8".to_owned(),
                })
            }
        }
    }

    /// Parses key-file text with GLib's rules: leading white space of a line is ignored;
    /// blank lines and lines starting with `#` are comments; `[name]` (trailing spaces or
    /// tabs allowed) starts a group; `key=value` with white space around the key and before
    /// the value ignored, white space after the value kept; every key must be inside a
    /// group. Any other line is an error, as in GLib.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut kf = KeyFile::default();
        let mut current: Option<usize> = None;
        let mut pending: Vec<String> = Vec::new();
        let mut pieces = text.split('\n').peekable();
        let mut line_no: usize = 0;
        while let Some(piece) = pieces.next() {
            line_no = line_no.saturating_add(1);
            if piece.is_empty() && pieces.peek().is_none() {
                break; // the empty rest after the final '\n'
            }
            let line = piece.strip_suffix('\r').unwrap_or(piece);
            let trimmed = line.trim_start_matches(is_gspace);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                match current {
                    None => kf.preamble.push(line.to_owned()),
                    Some(_) => pending.push(line.to_owned()),
                }
                continue;
            }
            if let Some(name) = group_header(trimmed) {
                if !is_group_name(name) {
                    return Err(KeyFileError::Syntax {
                        line: line_no,
                        reason: format!("invalid group name {name:?}"),
                    });
                }
                if let Some(idx) = kf.group_index(name) {
                    // GLib merges a repeated group into the first one.
                    if let Some(g) = kf.groups.get_mut(idx) {
                        g.lines.extend(pending.drain(..).map(Line::Comment));
                    }
                    current = Some(idx);
                } else {
                    kf.groups.push(Group {
                        comments: std::mem::take(&mut pending),
                        name: name.to_owned(),
                        lines: Vec::new(),
                    });
                    current = Some(kf.groups.len().saturating_sub(1));
                }
                continue;
            }
            let Some(eq) = trimmed.find('=').filter(|&eq| eq > 0) else {
                return Err(KeyFileError::Syntax {
                    line: line_no,
                    reason: "line is not a key-value pair, group, or comment".to_owned(),
                });
            };
            let key = trimmed
                .get(..eq)
                .unwrap_or_default()
                .trim_end_matches(is_gspace);
            let value = trimmed.get(eq.saturating_add(1)..).unwrap_or_default();
            let value = value.trim_start_matches(is_gspace);
            if !is_key_name(key) {
                return Err(KeyFileError::Syntax {
                    line: line_no,
                    reason: format!("invalid key name {key:?}"),
                });
            }
            let Some(group) = current.and_then(|i| kf.groups.get_mut(i)) else {
                return Err(KeyFileError::Syntax {
                    line: line_no,
                    reason: "key file does not start with a group".to_owned(),
                });
            };
            group.lines.extend(pending.drain(..).map(Line::Comment));
            group.parsed_pair(key, value);
        }
        // Trailing comments stay at the end of the last group (or the preamble).
        match current.and_then(|i| kf.groups.get_mut(i)) {
            Some(g) => g.lines.extend(pending.into_iter().map(Line::Comment)),
            None => kf.preamble.extend(pending),
        }
        Ok(kf)
    }

    /// The key file as text, in GLib's syntax (also what `Display` prints).
    pub fn to_data(&self) -> String {
        self.to_string()
    }

    fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Group names, in file order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Whether the group exists.
    pub fn has_group(&self, group: &str) -> bool {
        self.group_index(group).is_some()
    }

    /// Keys of `group` with their raw values, in file order (empty if there is no group).
    pub fn entries(&self, group: &str) -> impl Iterator<Item = (&str, &str)> {
        self.group(group).into_iter().flat_map(|g| {
            g.lines.iter().filter_map(|l| match l {
                Line::Pair { key, value } => Some((key.as_str(), value.as_str())),
                Line::Comment(_) => None,
            })
        })
    }

    /// The raw (escaped) value of `key` in `group`.
    pub fn get_raw(&self, group: &str, key: &str) -> Option<&str> {
        self.group(group)?.get_raw(key)
    }

    fn invalid(group: &str, key: &str, reason: String) -> KeyFileError {
        KeyFileError::InvalidValue {
            group: group.to_owned(),
            key: key.to_owned(),
            reason,
        }
    }

    /// The value of `key` read as a string (escapes undone); `None` if the key is absent.
    pub fn get_string(&self, group: &str, key: &str) -> Result<Option<String>, KeyFileError> {
        self.get_raw(group, key)
            .map(|raw| unescape_value(raw).map_err(|r| Self::invalid(group, key, r)))
            .transpose()
    }

    /// The value of `key` read as a boolean (see [`parse_bool`]); `None` if absent.
    pub fn get_bool(&self, group: &str, key: &str) -> Result<Option<bool>, KeyFileError> {
        self.get_raw(group, key)
            .map(|raw| {
                parse_bool(raw)
                    .ok_or_else(|| Self::invalid(group, key, format!("{raw:?} is not a boolean")))
            })
            .transpose()
    }

    /// The value of `key` read as a `;`-separated list (see [`unescape_list`]).
    pub fn get_string_list(
        &self,
        group: &str,
        key: &str,
    ) -> Result<Option<Vec<String>>, KeyFileError> {
        self.get_string_list_with_separator(group, key, ';')
    }

    /// The value of `key` read as a list with another separator.
    pub fn get_string_list_with_separator(
        &self,
        group: &str,
        key: &str,
        separator: char,
    ) -> Result<Option<Vec<String>>, KeyFileError> {
        self.get_raw(group, key)
            .map(|raw| unescape_list(raw, separator).map_err(|r| Self::invalid(group, key, r)))
            .transpose()
    }

    /// Adds an empty group at the end unless it exists. A group added after others is
    /// preceded by a blank line, as GLib writes them.
    pub fn add_group(&mut self, group: &str) -> Result<(), KeyFileError> {
        if !is_group_name(group) {
            return Err(KeyFileError::InvalidGroupName(group.to_owned()));
        }
        if !self.has_group(group) {
            let comments = if self.groups.is_empty() {
                Vec::new()
            } else {
                vec![String::new()]
            };
            self.groups.push(Group {
                comments,
                name: group.to_owned(),
                lines: Vec::new(),
            });
        }
        Ok(())
    }

    /// Sets the raw (already escaped) value of `key`, creating the group if needed. An
    /// existing key keeps its place; a new one goes after the group's last key.
    pub fn set_raw(&mut self, group: &str, key: &str, raw: &str) -> Result<(), KeyFileError> {
        if !is_key_name(key) {
            return Err(KeyFileError::InvalidKeyName(key.to_owned()));
        }
        if raw.contains(['\n', '\r']) {
            return Err(Self::invalid(
                group,
                key,
                "raw value holds a line break".to_owned(),
            ));
        }
        self.add_group(group)?;
        if let Some(g) = self.groups.iter_mut().find(|g| g.name == group) {
            g.set_raw(key, raw);
        }
        Ok(())
    }

    /// Sets `key` to a string, escaped as GLib's `g_key_file_set_string` does.
    pub fn set_string(&mut self, group: &str, key: &str, value: &str) -> Result<(), KeyFileError> {
        self.set_raw(group, key, &escape_value(value))
    }

    /// Sets `key` to `true` or `false`.
    pub fn set_bool(&mut self, group: &str, key: &str, value: bool) -> Result<(), KeyFileError> {
        self.set_raw(group, key, if value { "true" } else { "false" })
    }

    /// Sets `key` to a `;`-separated list (see [`escape_list`]).
    pub fn set_string_list<S: AsRef<str>>(
        &mut self,
        group: &str,
        key: &str,
        items: &[S],
    ) -> Result<(), KeyFileError> {
        self.set_raw(group, key, &escape_list(items, ';'))
    }

    /// Removes `key` from `group`; returns whether it was there.
    pub fn remove_key(&mut self, group: &str, key: &str) -> bool {
        let Some(g) = self.groups.iter_mut().find(|g| g.name == group) else {
            return false;
        };
        let before = g.lines.len();
        g.lines
            .retain(|l| !matches!(l, Line::Pair { key: k, .. } if k == key));
        g.lines.len() != before
    }

    /// Removes `group` with its keys and the comments before it; returns whether it was
    /// there.
    pub fn remove_group(&mut self, group: &str) -> bool {
        let before = self.groups.len();
        self.groups.retain(|g| g.name != group);
        self.groups.len() != before
    }
}

impl Group {
    fn get_raw(&self, key: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Pair { key: k, value } if k == key => Some(value.as_str()),
            _ => None,
        })
    }

    /// A pair read from the file: a repeated key replaces the earlier value in place (GLib
    /// reads the last one), a new key goes at the end.
    fn parsed_pair(&mut self, key: &str, raw: &str) {
        if let Some(value) = self.value_mut(key) {
            raw.clone_into(value);
        } else {
            self.lines.push(Line::Pair {
                key: key.to_owned(),
                value: raw.to_owned(),
            });
        }
    }

    fn value_mut(&mut self, key: &str) -> Option<&mut String> {
        self.lines.iter_mut().find_map(|l| match l {
            Line::Pair { key: k, value } if k == key => Some(value),
            _ => None,
        })
    }

    fn set_raw(&mut self, key: &str, raw: &str) {
        if let Some(value) = self.value_mut(key) {
            raw.clone_into(value);
            return;
        }
        // Insert after the last pair, so trailing comments (which usually introduce the
        // next group) stay last.
        let at = self
            .lines
            .iter()
            .rposition(|l| matches!(l, Line::Pair { .. }))
            .map_or(0, |i| i.saturating_add(1));
        self.lines.insert(
            at,
            Line::Pair {
                key: key.to_owned(),
                value: raw.to_owned(),
            },
        );
    }
}

impl fmt::Display for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.preamble {
            writeln!(f, "{c}")?;
        }
        for g in &self.groups {
            for c in &g.comments {
                writeln!(f, "{c}")?;
            }
            writeln!(f, "[{}]", g.name)?;
            for l in &g.lines {
                match l {
                    Line::Comment(c) => writeln!(f, "{c}")?,
                    Line::Pair { key, value } => writeln!(f, "{key}={value}")?,
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Errors about remotes: validation, configuration files and the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A remote name does not follow libostree's rules (see [`validate_remote_name`]).
    #[error("invalid remote name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A URL is not `http://`, `https://`, `file://` or `mirrorlist=` one of those.
    #[error("invalid remote url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A collection ID is not a D-Bus-interface-like name (see [`validate_collection_id`]).
    #[error("invalid collection id {id:?}: {reason}")]
    InvalidCollectionId {
        /// The ID.
        id: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A `--set` argument has no `=`.
    #[error("invalid --set argument {arg:?}: expected KEY=VALUE")]
    InvalidSetArgument {
        /// The argument.
        arg: String,
    },
    /// A key cannot be stored in a key file.
    #[error("remote {remote:?}: invalid key name {key:?}")]
    InvalidKey {
        /// The remote.
        remote: String,
        /// The key.
        key: String,
    },
    /// A value of a known key does not parse (boolean, escapes, list, key format).
    #[error("remote {remote:?}: invalid value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        /// The remote.
        remote: String,
        /// The key.
        key: String,
        /// The value as given (raw if read from a file).
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The remote has no `url` key.
    #[error("remote {name:?} has no url")]
    MissingUrl {
        /// The remote.
        name: String,
    },
    /// A configuration file is not a valid key file.
    #[error("cannot parse remote configuration {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The syntax error.
        #[source]
        source: KeyFileError,
    },
    /// A remote in a configuration file is invalid.
    #[error("invalid remote configuration in {path}")]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// What is invalid.
        #[source]
        source: Box<RemoteError>,
    },
    /// A configuration file is larger than [`MAX_CONFIG_FILE_SIZE`].
    #[error("remote configuration {path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Two files of one source define the same remote (libostree refuses this too:
    /// "Multiple specifications found for remote").
    #[error("remote {name:?} is defined twice: in {first} and in {second}")]
    Duplicate {
        /// The remote.
        name: String,
        /// Where it was seen first.
        first: PathBuf,
        /// Where it was seen again.
        second: PathBuf,
    },
    /// No remote of that name exists.
    #[error("remote {name:?} not found")]
    NotFound {
        /// The remote.
        name: String,
    },
    /// A remote of that name exists already.
    #[error("remote {name:?} already exists in {path}")]
    AlreadyExists {
        /// The remote.
        name: String,
        /// Where it is defined.
        path: PathBuf,
    },
    /// The remote is defined only in a read-only source (`/etc/ostree/remotes.d`, an ostree
    /// repository `config`), which cfsync does not change.
    #[error(
        "remote {name:?} is defined in read-only {path}; change it there or add a cfsync remote of that name to override it"
    )]
    ReadOnly {
        /// The remote.
        name: String,
        /// Where it is defined.
        path: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "rename", ...).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RemoteError + use<> {
    let path = path.to_owned();
    move |source| RemoteError::Io { op, path, source }
}

/// Checks a remote name with libostree's rule (`ostree_validate_remote_name` in
/// `ostree-core.c`: the GRegex `^[\w\d][-._\w\d]*$`, where `\w` is Unicode-aware, so `é`
/// is accepted by `ostree remote add`) and cfsync's length cap [`MAX_REMOTE_NAME_LEN`].
/// Letters and digits here are Rust's `char::is_alphanumeric`. A valid name has no `/`, no
/// white space, no `:` and does not start with `.` or `-`, so it is a safe file name.
pub fn validate_remote_name(name: &str) -> Result<(), RemoteError> {
    let bad = |reason| {
        Err(RemoteError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("empty"),
        Some(c) if !word(c) => return bad("must start with a letter, digit or '_'"),
        Some(_) => {}
    }
    if !chars.all(|c| word(c) || matches!(c, '-' | '.')) {
        return bad("only letters, digits, '_', '-' and '.' are allowed");
    }
    if name.len() > MAX_REMOTE_NAME_LEN {
        return bad("longer than 200 bytes");
    }
    Ok(())
}

/// Checks a collection ID as libostree does (`ostree_validate_collection_id` uses
/// `g_dbus_is_interface_name`): at most 255 bytes, at least two `.`-separated elements,
/// each `[A-Za-z_][A-Za-z0-9_]*`.
pub fn validate_collection_id(id: &str) -> Result<(), RemoteError> {
    let bad = |reason| {
        Err(RemoteError::InvalidCollectionId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.len() > 255 {
        return bad("longer than 255 bytes");
    }
    let mut elements = 0usize;
    for element in id.split('.') {
        let mut chars = element.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return bad("each element must start with an ASCII letter or '_'"),
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return bad("only ASCII letters, digits, '_' and '.' are allowed");
        }
        elements = elements.saturating_add(1);
    }
    if elements < 2 {
        return bad("needs at least two '.'-separated elements");
    }
    Ok(())
}

/// A remote base URL as libostree understands it (`compute_effective_mirrorlist` in
/// `ostree-repo-pull.c`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlSpec {
    /// A base URL (`http`, `https` or `file`).
    Direct(String),
    /// `mirrorlist=URL`: URL names a text file with one base URL per line (libostree keeps
    /// only its `http`/`https` lines).
    Mirrorlist(String),
}

/// Parses and checks a `url`/`contenturl` value: `http://HOST…`, `https://HOST…`,
/// `file:///PATH` (the schemes `_ostree_fetcher_uri_validate` allows, case-insensitive), or
/// `mirrorlist=` followed by one of those. No white space or control characters; at most
/// [`MAX_URL_LEN`] bytes. `metalink=` is refused: cfsync does not implement metalinks.
/// (`ostree remote add` itself checks nothing; libostree fails at pull time.)
pub fn parse_url_spec(url: &str) -> Result<UrlSpec, RemoteError> {
    let bad = |reason| {
        Err(RemoteError::InvalidUrl {
            url: url.to_owned(),
            reason,
        })
    };
    if url.len() > MAX_URL_LEN {
        return bad("longer than 8192 bytes");
    }
    if url.starts_with("metalink=") {
        return bad("metalink is not supported");
    }
    let (mirrorlist, base) = match url.strip_prefix("mirrorlist=") {
        Some(rest) => (true, rest),
        None => (false, url),
    };
    if base.is_empty() {
        return bad("empty");
    }
    if base.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains white space or control characters");
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return bad("expected scheme://");
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            if host_end == 0 {
                return bad("no host");
            }
        }
        "file" => {
            if !rest.starts_with('/') {
                return bad("file URLs must be file:///absolute/path");
            }
        }
        _ => return bad("scheme must be http, https or file"),
    }
    Ok(if mirrorlist {
        UrlSpec::Mirrorlist(base.to_owned())
    } else {
        UrlSpec::Direct(base.to_owned())
    })
}

/// Splits a `--set KEY=VALUE` argument at its first `=` (as `ot_parse_keyvalue` does).
pub fn parse_set_argument(arg: &str) -> Result<(&str, &str), RemoteError> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(RemoteError::InvalidSetArgument {
            arg: arg.to_owned(),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// Remote
// ---------------------------------------------------------------------------------------

/// The value of `sign-verify` / `sign-verify-summary`, as `verifiers_from_config` in
/// libostree's `ostree-repo-pull-verify.c` reads it. The key is not a plain boolean.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignVerify {
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

impl SignVerify {
    /// Whether sign-API verification is required.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, SignVerify::Disabled)
    }

    /// Reads a raw key-file value (`verifiers_from_config`: the string value is compared
    /// exactly with `true`/`1`/`false`/`0`, anything else is a string list).
    fn from_raw(raw: &str) -> Result<Self, String> {
        // libostree first reads the key as a plain string, so `\;` is an error here too.
        let value = unescape_value(raw)?;
        match value.as_str() {
            "" | "false" | "0" => Ok(SignVerify::Disabled),
            "true" | "1" => Ok(SignVerify::AnyConfigured),
            _ => {
                let types = unescape_list(raw, ';')?;
                if types.is_empty() || types.iter().any(|t| t.is_empty()) {
                    return Err("empty signature type name".to_owned());
                }
                Ok(SignVerify::Types(types))
            }
        }
    }

    /// Parses a `--set` value (unescaped text).
    fn from_value(value: &str) -> Result<Self, String> {
        match value {
            "" | "false" | "0" => Ok(SignVerify::Disabled),
            "true" | "1" => Ok(SignVerify::AnyConfigured),
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
                    return Err(
                        "expected true, false or a ';'-separated list of signature types"
                            .to_owned(),
                    );
                }
                Ok(SignVerify::Types(types))
            }
        }
    }

    /// The raw value written to a key file. A single type is written bare (`ed25519`), as
    /// `ostree remote add --sign-verify` does.
    fn to_raw(&self) -> String {
        match self {
            SignVerify::Disabled => "false".to_owned(),
            SignVerify::AnyConfigured => "true".to_owned(),
            SignVerify::Types(types) => types
                .iter()
                .map(|t| escape_inner(t, Some(';')))
                .collect::<Vec<_>>()
                .join(";"),
        }
    }
}

/// Keys with a typed field in [`Remote`]; every other key goes to [`Remote::extra`].
pub const KNOWN_KEYS: &[&str] = &[
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

/// Keys kept in [`Remote::extra`] that [`Remote::apply_set`] still checks as booleans.
const EXTRA_BOOL_KEYS: &[&str] = &["tls-permissive", "http2"];

/// Default of `gpg-verify`: true. libostree `ostree_repo_remote_get_gpg_verify`
/// (`ostree-repo.c`) calls `ostree_repo_get_remote_boolean_option (…, "gpg-verify", TRUE,
/// …)`; only a remote *named* by a `file://` URL (pull-local compatibility) gets false,
/// which does not concern configured remotes.
pub const DEFAULT_GPG_VERIFY: bool = true;

/// Default of `gpg-verify-summary`: false. libostree
/// `ostree_repo_remote_get_gpg_verify_summary` (`ostree-repo.c`) calls
/// `ostree_repo_get_remote_boolean_option (…, "gpg-verify-summary", FALSE, …)`.
pub const DEFAULT_GPG_VERIFY_SUMMARY: bool = false;

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
pub fn remote_group_name(name: &str) -> String {
    format!("remote \"{name}\"")
}

/// The remote name inside a group name, if it is a remote group (`ostree-remote.c` matches
/// `^remote "(.+)"$`).
pub fn remote_name_from_group(group: &str) -> Option<&str> {
    group
        .strip_prefix("remote \"")?
        .strip_suffix('"')
        .filter(|n| !n.is_empty())
}

fn path_to_string(remote: &str, key: &str, p: &Path) -> Result<String, RemoteError> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| RemoteError::InvalidValue {
            remote: remote.to_owned(),
            key: key.to_owned(),
            value: p.to_string_lossy().into_owned(),
            reason: "path is not valid UTF-8".to_owned(),
        })
}

/// `gpgkeypath` as `ot_keyfile_get_string_list_with_separator_choice` reads it.
fn parse_gpgkeypath(raw: &str) -> Result<Vec<String>, String> {
    let has_semi = raw.contains(';');
    let has_comma = raw.contains(',');
    match (has_semi, has_comma) {
        (true, true) => Err("key value list contains more than one separator".to_owned()),
        (true, false) => unescape_list(raw, ';'),
        (false, true) => unescape_list(raw, ','),
        (false, false) => Ok(vec![unescape_value(raw)?]),
    }
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

    fn invalid(&self, key: &str, value: &str, reason: String) -> RemoteError {
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
                        SignVerify::from_raw(raw).map_err(|reason| r.invalid(key, raw, reason))?
                }
                "sign-verify-summary" => {
                    r.sign_verify_summary =
                        SignVerify::from_raw(raw).map_err(|reason| r.invalid(key, raw, reason))?
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
                        .map_err(|reason| r.invalid(key, raw, reason))?
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

    /// A key file holding only this remote (what [`RemoteStore`] writes to `<name>.conf`).
    pub fn to_keyfile(&self) -> Result<KeyFile, RemoteError> {
        let mut kf = KeyFile::new();
        self.write_to_keyfile(&mut kf)?;
        Ok(kf)
    }

    /// Writes this remote into its group of `kf`, editing in place: keys whose raw value
    /// already reads as the field's value are left untouched (so `1` stays `1`, `a;b`
    /// stays `a;b`), changed keys keep their position, keys absent from the remote are
    /// removed, comments stay. A boolean or sign key that is absent is written only when it
    /// differs from the default, except in a new group, where `gpg-verify` is always
    /// written. Unchanged remotes therefore leave the file byte for byte the same.
    pub fn write_to_keyfile(&self, kf: &mut KeyFile) -> Result<(), RemoteError> {
        validate_remote_name(&self.name)?;
        let group = self.group_name();
        let fresh = !kf.has_group(&group);
        let kerr = |key: &str| {
            let remote = self.name.clone();
            let key = key.to_owned();
            move |_: KeyFileError| RemoteError::InvalidKey { remote, key }
        };
        kf.add_group(&group).map_err(kerr(""))?;

        // Sets `key` to `new` unless the current raw value already reads the same.
        let put = |kf: &mut KeyFile,
                   key: &str,
                   new: Option<String>,
                   same: &dyn Fn(&str) -> bool|
         -> Result<(), RemoteError> {
            match new {
                None => {
                    kf.remove_key(&group, key);
                }
                Some(raw) => match kf.get_raw(&group, key) {
                    Some(cur) if same(cur) => {}
                    _ => kf.set_raw(&group, key, &raw).map_err(kerr(key))?,
                },
            }
            Ok(())
        };

        let opt_string = |v: Option<&str>| v.map(escape_value);
        let same_string = |want: Option<String>| {
            move |cur: &str| unescape_value(cur).ok().as_deref() == want.as_deref()
        };
        put(
            kf,
            "url",
            opt_string(self.url.as_deref()),
            &same_string(self.url.clone()),
        )?;
        put(
            kf,
            "contenturl",
            opt_string(self.contenturl.as_deref()),
            &same_string(self.contenturl.clone()),
        )?;

        let branches = self.branches.clone();
        let new = (!self.branches.is_empty()).then(|| escape_list(&self.branches, ';'));
        put(kf, "branches", new, &move |cur| {
            unescape_list(cur, ';').ok().as_ref() == Some(&branches)
        })?;

        for (key, value, default, always) in [
            ("gpg-verify", self.gpg_verify, DEFAULT_GPG_VERIFY, fresh),
            (
                "gpg-verify-summary",
                self.gpg_verify_summary,
                DEFAULT_GPG_VERIFY_SUMMARY,
                false,
            ),
        ] {
            let present = kf.get_raw(&group, key).is_some();
            let new = (present || always || value != default)
                .then(|| if value { "true" } else { "false" }.to_owned());
            put(kf, key, new, &|cur| parse_bool(cur) == Some(value))?;
        }

        for (key, value) in [
            ("sign-verify", &self.sign_verify),
            ("sign-verify-summary", &self.sign_verify_summary),
        ] {
            let present = kf.get_raw(&group, key).is_some();
            let new = (present || value.is_enabled()).then(|| value.to_raw());
            put(kf, key, new, &|cur| {
                SignVerify::from_raw(cur).ok().as_ref() == Some(value)
            })?;
        }

        put(
            kf,
            "verification-ed25519-key",
            opt_string(self.ed25519_key.as_deref()),
            &same_string(self.ed25519_key.clone()),
        )?;
        let file = match &self.ed25519_file {
            Some(p) => Some(path_to_string(&self.name, "verification-ed25519-file", p)?),
            None => None,
        };
        put(
            kf,
            "verification-ed25519-file",
            opt_string(file.as_deref()),
            &same_string(file.clone()),
        )?;
        put(
            kf,
            "collection-id",
            opt_string(self.collection_id.as_deref()),
            &same_string(self.collection_id.clone()),
        )?;

        let paths = self
            .gpgkeypath
            .iter()
            .map(|p| path_to_string(&self.name, "gpgkeypath", p))
            .collect::<Result<Vec<_>, _>>()?;
        let new = (!paths.is_empty()).then(|| escape_list(&paths, ';'));
        put(kf, "gpgkeypath", new, &|cur| {
            parse_gpgkeypath(cur).ok().as_ref() == Some(&paths)
        })?;

        // Extra keys: drop the ones no longer there, set the rest raw.
        let stale: Vec<String> = kf
            .entries(&group)
            .map(|(k, _)| k)
            .filter(|k| !KNOWN_KEYS.contains(k) && !self.extra.contains_key(*k))
            .map(str::to_owned)
            .collect();
        for k in stale {
            kf.remove_key(&group, &k);
        }
        for (k, raw) in &self.extra {
            if KNOWN_KEYS.contains(&k.as_str()) {
                return Err(self.invalid(k, raw, "typed key stored in extra".to_owned()));
            }
            if kf.get_raw(&group, k) != Some(raw.as_str()) {
                kf.set_raw(&group, k, raw).map_err(|e| match e {
                    KeyFileError::InvalidValue { reason, .. } => self.invalid(k, raw, reason),
                    _ => RemoteError::InvalidKey {
                        remote: self.name.clone(),
                        key: k.clone(),
                    },
                })?;
            }
        }
        Ok(())
    }

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
                self.sign_verify = SignVerify::from_value(value).map_err(|r| invalid(&r))?
            }
            "sign-verify-summary" => {
                self.sign_verify_summary = SignVerify::from_value(value).map_err(|r| invalid(&r))?
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

    /// Checks what [`RemoteStore::add`] requires: a valid name and a valid `url` (and
    /// `contenturl` if set), a valid collection ID, and extra keys that are valid key names
    /// with single-line raw values.
    pub fn validate(&self) -> Result<(), RemoteError> {
        validate_remote_name(&self.name)?;
        self.url_spec()?;
        if let Some(c) = &self.contenturl {
            parse_url_spec(c)?;
        }
        if let Some(id) = &self.collection_id {
            validate_collection_id(id)?;
        }
        // Writing checks the extra keys and values.
        self.to_keyfile().map(|_| ())
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

// ---------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------

/// Where a remote was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteOrigin {
    /// cfsync's own `<state_dir>/remotes.d/*.conf` (writable).
    Local(PathBuf),
    /// A `*.conf` file of an extra directory such as `/etc/ostree/remotes.d` (read-only).
    ConfigDir(PathBuf),
    /// An OSTree repository's `config` file (read-only).
    OstreeRepoConfig(PathBuf),
}

impl RemoteOrigin {
    /// The file the remote is defined in.
    pub fn path(&self) -> &Path {
        match self {
            RemoteOrigin::Local(p)
            | RemoteOrigin::ConfigDir(p)
            | RemoteOrigin::OstreeRepoConfig(p) => p,
        }
    }

    /// Whether cfsync may change this remote.
    pub fn is_writable(&self) -> bool {
        matches!(self, RemoteOrigin::Local(_))
    }
}

/// The remotes cfsync knows: its own, one file per remote at
/// `<state_dir>/remotes.d/<name>.conf` (libostree's `remotes.d` layout and syntax, so such a
/// file also works in `/etc/ostree/remotes.d`), then read-only ones from an OSTree
/// repository's `config` (if given) and from extra directories, in that order of
/// precedence: on a name clash the first source wins. Within one source a name defined
/// twice is an error, as in libostree. In a directory every regular `*.conf` file is read
/// (sorted by file name) and every `[remote "NAME"]` group in it counts; a missing
/// directory is empty.
///
/// Writes go to a temporary file in the same directory (not ending in `.conf`), which is
/// synced and then renamed (or, for [`RemoteStore::add`], hard-linked so an existing file
/// is never replaced) over the target; the directory is synced after.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    state_dir: PathBuf,
    extra_dirs: Vec<PathBuf>,
    ostree_repo: Option<PathBuf>,
}


fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, RemoteError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut data = Vec::new();
    file.take(MAX_CONFIG_FILE_SIZE.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(io_err("read", path))?;
    if u64::try_from(data.len()).unwrap_or(u64::MAX) > MAX_CONFIG_FILE_SIZE {
        return Err(RemoteError::TooLarge {
            path: path.to_owned(),
            limit: MAX_CONFIG_FILE_SIZE,
        });
    }
    Ok(Some(data))
}

fn load_keyfile(path: &Path) -> Result<Option<KeyFile>, RemoteError> {
    match read_capped(path)? {
        None => Ok(None),
        Some(data) => KeyFile::parse_bytes(&data)
            .map(Some)
            .map_err(|source| RemoteError::Parse {
                path: path.to_owned(),
                source,
            }),
    }
}

fn remotes_in(kf: &KeyFile, path: &Path) -> Result<Vec<Remote>, RemoteError> {
    Remote::all_from_keyfile(kf).map_err(|e| RemoteError::InvalidConfig {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// The `*.conf` regular files of `dir`, sorted; none if `dir` does not exist.
fn conf_files(dir: &Path) -> Result<Vec<PathBuf>, RemoteError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let path = entry.path();
        if !entry.file_name().to_string_lossy().ends_with(".conf") {
            continue;
        }
        // Follow symlinks, as GLib's enumerator does without NOFOLLOW.
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("stat", &path)(e)),
        }
    }
    files.sort();
    Ok(files)
}

/// Remotes of one source, with the file each comes from; a name twice is an error.
fn collect_source(
    files: &[PathBuf],
    origin: fn(PathBuf) -> RemoteOrigin,
) -> Result<Vec<(Remote, RemoteOrigin)>, RemoteError> {
    let mut out: Vec<(Remote, RemoteOrigin)> = Vec::new();
    for path in files {
        let Some(kf) = load_keyfile(path)? else {
            continue;
        };
        for r in remotes_in(&kf, path)? {
            if let Some((_, o)) = out.iter().find(|(x, _)| x.name == r.name) {
                return Err(RemoteError::Duplicate {
                    name: r.name,
                    first: o.path().to_owned(),
                    second: path.clone(),
                });
            }
            out.push((r, origin(path.clone())));
        }
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), RemoteError> {
    crate::atomic::sync_dir(dir).map_err(io_err("sync directory", dir))
}

/// Writes `data` to `path` atomically and durably ([`crate::atomic`]); `clobber` false
/// fails with `AlreadyExists` (as an `io::Error`) if `path` exists.
fn write_atomic(path: &Path, data: &[u8], clobber: bool) -> Result<(), RemoteError> {
    if clobber {
        crate::atomic::write(path, data).map_err(io_err("write", path))
    } else {
        crate::atomic::write_new(path, data).map_err(io_err("create", path))
    }
}

fn remove_if_exists(path: &Path) -> Result<bool, RemoteError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

impl RemoteStore {
    /// A store whose own remotes live in `<state_dir>/remotes.d`, with read-only remotes
    /// from `extra_dirs` (in order of precedence; pass `vec![SYSTEM_REMOTES_DIR.into()]`
    /// for libostree's system directory, or use [`RemoteStore::with_system_dirs`]).
    pub fn new(state_dir: impl Into<PathBuf>, extra_dirs: Vec<PathBuf>) -> Self {
        RemoteStore {
            state_dir: state_dir.into(),
            extra_dirs,
            ostree_repo: None,
        }
    }

    /// [`RemoteStore::new`] with `/etc/ostree/remotes.d` as the extra directory.
    pub fn with_system_dirs(state_dir: impl Into<PathBuf>) -> Self {
        Self::new(state_dir, vec![PathBuf::from(SYSTEM_REMOTES_DIR)])
    }

    /// Also reads the remotes of the OSTree repository at `repo` (its `config` file, which
    /// must exist), after cfsync's own and before the extra directories.
    pub fn with_ostree_repo(mut self, repo: impl Into<PathBuf>) -> Self {
        self.ostree_repo = Some(repo.into());
        self
    }

    /// `<state_dir>/remotes.d`, where cfsync's own remotes are kept.
    pub fn remotes_dir(&self) -> PathBuf {
        self.state_dir.join("remotes.d")
    }

    /// `<state_dir>/remotes.d/<name>.conf`, the file [`RemoteStore::add`] writes.
    pub fn remote_path(&self, name: &str) -> Result<PathBuf, RemoteError> {
        validate_remote_name(name)?;
        Ok(self.remotes_dir().join(format!("{name}.conf")))
    }

    /// `<state_dir>/remotes.d/<name>.trustedkeys.gpg`: the remote's GPG keyring, as
    /// libostree keeps `<repo>/<name>.trustedkeys.gpg`. [`RemoteStore::delete`] removes it.
    pub fn keyring_path(&self, name: &str) -> Result<PathBuf, RemoteError> {
        validate_remote_name(name)?;
        Ok(self.remotes_dir().join(format!("{name}.trustedkeys.gpg")))
    }

    /// `<state_dir>/remotes.d/<name>.ed25519`: a place for the remote's ed25519 public keys
    /// (base64, one per line, the `verification-ed25519-file` format).
    /// [`RemoteStore::delete`] removes it.
    pub fn ed25519_keys_path(&self, name: &str) -> Result<PathBuf, RemoteError> {
        validate_remote_name(name)?;
        Ok(self.remotes_dir().join(format!("{name}.ed25519")))
    }

    fn local_remotes(&self) -> Result<Vec<(Remote, RemoteOrigin)>, RemoteError> {
        collect_source(&conf_files(&self.remotes_dir())?, RemoteOrigin::Local)
    }

    fn sources(&self) -> Result<Vec<Vec<(Remote, RemoteOrigin)>>, RemoteError> {
        let mut sources = vec![self.local_remotes()?];
        if let Some(repo) = &self.ostree_repo {
            let config = repo.join("config");
            let kf = load_keyfile(&config)?.ok_or_else(|| RemoteError::Io {
                op: "read",
                path: config.clone(),
                source: io::Error::from(io::ErrorKind::NotFound),
            })?;
            let remotes = remotes_in(&kf, &config)?;
            let mut source: Vec<(Remote, RemoteOrigin)> = Vec::new();
            for r in remotes {
                // A key file merges repeated groups, so names are unique here.
                source.push((r, RemoteOrigin::OstreeRepoConfig(config.clone())));
            }
            sources.push(source);
        }
        for dir in &self.extra_dirs {
            sources.push(collect_source(&conf_files(dir)?, RemoteOrigin::ConfigDir)?);
        }
        Ok(sources)
    }

    /// Every remote with where it comes from, sorted by name; on a name clash the
    /// first source (cfsync's own, then the OSTree repository, then the extra directories
    /// in order) wins.
    pub fn list_with_origin(&self) -> Result<Vec<(Remote, RemoteOrigin)>, RemoteError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for source in self.sources()? {
            for (r, o) in source {
                if seen.insert(r.name.clone()) {
                    out.push((r, o));
                }
            }
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }

    /// Every remote, sorted by name (see [`RemoteStore::list_with_origin`]).
    pub fn list(&self) -> Result<Vec<Remote>, RemoteError> {
        Ok(self
            .list_with_origin()?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// The remote called `name` and where it comes from.
    pub fn locate(&self, name: &str) -> Result<Option<(Remote, RemoteOrigin)>, RemoteError> {
        for source in self.sources()? {
            if let Some(found) = source.into_iter().find(|(r, _)| r.name == name) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The remote called `name`.
    pub fn get(&self, name: &str) -> Result<Option<Remote>, RemoteError> {
        Ok(self.locate(name)?.map(|(r, _)| r))
    }

    /// Adds a cfsync remote as `<state_dir>/remotes.d/<name>.conf` after
    /// [`Remote::validate`]. If a remote of that name exists in any source, returns
    /// `Ok(false)` when `if_not_exists` is set (nothing is written, as
    /// `ostree remote add --if-not-exists` does) and [`RemoteError::AlreadyExists`]
    /// otherwise. Returns `Ok(true)` when the file was written.
    pub fn add(&self, remote: &Remote, if_not_exists: bool) -> Result<bool, RemoteError> {
        remote.validate()?;
        if let Some((_, origin)) = self.locate(&remote.name)? {
            if if_not_exists {
                return Ok(false);
            }
            return Err(RemoteError::AlreadyExists {
                name: remote.name.clone(),
                path: origin.path().to_owned(),
            });
        }
        let path = self.remote_path(&remote.name)?;
        let data = remote.to_keyfile()?.to_data();
        match write_atomic(&path, data.as_bytes(), false) {
            Err(RemoteError::Io { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                if if_not_exists {
                    Ok(false)
                } else {
                    Err(RemoteError::AlreadyExists {
                        name: remote.name.clone(),
                        path,
                    })
                }
            }
            Err(e) => Err(e),
            Ok(()) => Ok(true),
        }
    }

    /// Writes `remote` as a cfsync remote whether or not it exists (`ostree remote add
    /// --force`): an existing cfsync definition is edited in place (comments and unknown
    /// groups of its file stay), otherwise `<name>.conf` is written. A read-only remote of
    /// the same name is shadowed, not changed.
    pub fn replace(&self, remote: &Remote) -> Result<(), RemoteError> {
        remote.validate()?;
        let path = match self
            .local_remotes()?
            .into_iter()
            .find(|(r, _)| r.name == remote.name)
        {
            Some((_, origin)) => origin.path().to_owned(),
            None => self.remote_path(&remote.name)?,
        };
        let mut kf = load_keyfile(&path)?.unwrap_or_default();
        remote.write_to_keyfile(&mut kf)?;
        write_atomic(&path, kf.to_data().as_bytes(), true)
    }

    /// Applies `--set KEY=VALUE` to a cfsync remote (see [`Remote::apply_set`]) and writes
    /// its file, editing the group in place. Fails with [`RemoteError::ReadOnly`] for a
    /// remote that exists only in a read-only source and [`RemoteError::NotFound`] if there
    /// is none. Returns the updated remote.
    pub fn set(&self, name: &str, key: &str, value: &str) -> Result<Remote, RemoteError> {
        validate_remote_name(name)?;
        let Some((_, origin)) = self.locate(name)? else {
            return Err(RemoteError::NotFound {
                name: name.to_owned(),
            });
        };
        if !origin.is_writable() {
            return Err(RemoteError::ReadOnly {
                name: name.to_owned(),
                path: origin.path().to_owned(),
            });
        }
        let path = origin.path().to_owned();
        let mut kf = load_keyfile(&path)?.ok_or_else(|| RemoteError::NotFound {
            name: name.to_owned(),
        })?;
        let mut remote = Remote::from_keyfile_group(&kf, &remote_group_name(name))
            .map_err(|e| RemoteError::InvalidConfig {
                path: path.clone(),
                source: Box::new(e),
            })?
            .ok_or_else(|| RemoteError::NotFound {
                name: name.to_owned(),
            })?;
        remote.apply_set(key, value)?;
        remote.validate()?;
        remote.write_to_keyfile(&mut kf)?;
        write_atomic(&path, kf.to_data().as_bytes(), true)?;
        Ok(remote)
    }

    /// Deletes a cfsync remote: its group (and its file once no group is left), its
    /// keyring ([`RemoteStore::keyring_path`]) and its ed25519 key file, as libostree's
    /// remote delete also removes the keyring. Returns `Ok(false)` if no remote of that
    /// name exists anywhere and [`RemoteError::ReadOnly`] if it exists only in a read-only
    /// source. A read-only remote that the deleted one shadowed becomes visible again.
    pub fn delete(&self, name: &str) -> Result<bool, RemoteError> {
        validate_remote_name(name)?;
        let local = self
            .local_remotes()?
            .into_iter()
            .find(|(r, _)| r.name == name);
        let Some((_, origin)) = local else {
            return match self.locate(name)? {
                Some((_, origin)) => Err(RemoteError::ReadOnly {
                    name: name.to_owned(),
                    path: origin.path().to_owned(),
                }),
                None => Ok(false),
            };
        };
        let path = origin.path().to_owned();
        if let Some(mut kf) = load_keyfile(&path)? {
            kf.remove_group(&remote_group_name(name));
            if kf.groups().next().is_none() {
                remove_if_exists(&path)?;
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
            } else {
                write_atomic(&path, kf.to_data().as_bytes(), true)?;
            }
        }
        remove_if_exists(&self.keyring_path(name)?)?;
        remove_if_exists(&self.ed25519_keys_path(name)?)?;
        Ok(true)
    }
}
