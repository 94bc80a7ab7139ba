//! Repository-relative paths: which base URL serves them ([`PathKind`]) and the check
//! every path passes before it becomes a URL or is opened ([`validate_path`]).
//!
//! Which paths live under `url` and which under `contenturl` follows
//! `ostree-repo-pull.c` (docs/ostree-formats.md §8.1).

use super::FetchError;

/// Which base URL a path is fetched from (docs/ostree-formats.md §8.1).
///
/// Only [`super::HttpSource`] distinguishes the two; a local repository serves both from its
/// root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// From the metadata base (`url`): `summary`, `summary.sig`, `config`, `refs/…`,
    /// `objects/…/*.commitmeta`, and the mirrorlist probe.
    Metadata,
    /// From the content base (`contenturl`, defaulting to `url`): `objects/…` (commit,
    /// dirtree, dirmeta, `.filez`), `deltas/…` and `delta-indexes/…`.
    Content,
}

impl PathKind {
    /// The kind libostree uses for `path`: `objects/`, `deltas/` and `delta-indexes/`
    /// are content, except `*.commitmeta`, which libostree fetches from the metadata
    /// base; everything else is metadata.
    #[must_use]
    pub fn of(path: &str) -> PathKind {
        let content = (path.starts_with("objects/") && !path.ends_with(".commitmeta"))
            || path.starts_with("deltas/")
            || path.starts_with("delta-indexes/");
        if content {
            PathKind::Content
        } else {
            PathKind::Metadata
        }
    }
}

/// Checks a repository-relative path before it is turned into a URL or opened.
///
/// Accepted: non-empty `/`-separated components, none empty, `.` or `..`; no leading
/// `/`; no NUL, control characters, backslash, `%`, `?` or `#` (ref names are
/// `[\w\d][-._\w\d]*` per component, so nothing OSTree serves needs them). Non-ASCII
/// letters are allowed (ref names may be Unicode) and are percent-encoded in URLs.
pub(crate) fn validate_path(path: &str) -> Result<(), FetchError> {
    let refuse = |reason| {
        Err(FetchError::InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return refuse("empty path");
    }
    if path.starts_with('/') {
        return refuse("absolute path");
    }
    if path
        .chars()
        .any(|c| c.is_control() || matches!(c, '\\' | '%' | '?' | '#'))
    {
        return refuse("control character, backslash, '%', '?' or '#'");
    }
    for component in path.split('/') {
        match component {
            "" => return refuse("empty path component"),
            "." | ".." => return refuse("'.' or '..' component"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_kinds_follow_libostree() {
        assert_eq!(PathKind::of("summary"), PathKind::Metadata);
        assert_eq!(PathKind::of("refs/heads/main"), PathKind::Metadata);
        assert_eq!(PathKind::of("objects/ab/cd.commitmeta"), PathKind::Metadata);
        assert_eq!(PathKind::of("objects/ab/cd.dirtree"), PathKind::Content);
        assert_eq!(PathKind::of("objects/ab/cd.filez"), PathKind::Content);
        assert_eq!(PathKind::of("deltas/ab/cd/superblock"), PathKind::Content);
        assert_eq!(PathKind::of("delta-indexes/ab/cd.index"), PathKind::Content);
    }

    #[test]
    fn path_validation_refuses_escapes() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a%2e",
            "a?b",
            "a#b",
            "a\0b",
            "a\nb",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "summary",
            "refs/heads/é/ü",
            "deltas/Ab/c+d_e-f/superblock",
            "refs/heads/a..b",
        ] {
            assert!(validate_path(good).is_ok(), "{good:?} refused");
        }
    }
}
