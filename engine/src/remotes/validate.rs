//! The checks libostree applies to a remote's name, collection ID and URLs
//! ([`validate_remote_name`], [`validate_collection_id`], [`parse_url_spec`]).

use super::error::RemoteError;
use super::{MAX_REMOTE_NAME_LEN, MAX_URL_LEN};

/// `ostree-core.c`: the GRegex `^[\w\d][-._\w\d]*$`, where `\w` is Unicode-aware, so `é`
/// is accepted by `ostree remote add`) and cfsync's length cap (200 bytes).
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
/// 8192 bytes. `metalink=` is refused: cfsync does not implement metalinks.
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
    let (mirrorlist, base) = match url.strip_prefix(cfsync_formats::mirrorlist::PREFIX) {
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
