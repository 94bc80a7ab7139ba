//! Mirrorlists: the text files a `url` or `contenturl` of the form
//! `mirrorlist=<URL>` names, listing base URLs one per line.
//!
//! libostree's rules (`ostree-repo-pull.c`, `fetch_mirrorlist`): the body is UTF-8, each
//! line is trimmed, blank lines and lines starting with `#` are skipped. This module only
//! splits the body into candidate entries; which of them are usable `http`/`https` URLs
//! is for the caller to decide (it needs a URL parser, and this crate does no I/O and
//! knows no URLs).

/// The prefix that makes a `url` or `contenturl` value a mirrorlist
/// (`mirrorlist=https://example.com/mirrors.txt`), as libostree accepts it.
pub const PREFIX: &str = "mirrorlist=";

/// A mirrorlist body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body is not valid UTF-8.
    #[error("mirrorlist is not UTF-8")]
    NotUtf8,
}

/// The entries of a mirrorlist body, in order: every line trimmed, blank lines and `#`
/// comments skipped. The entries are not checked to be URLs.
pub fn entries(body: &[u8]) -> Result<impl Iterator<Item = &str>, Error> {
    let text = std::str::from_utf8(body).map_err(|_| Error::NotUtf8)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let body = b"# comment\n\nhttp://a/repo\r\nftp://b/\n  https://c/r/  \n\t\n  # indented\n";
        let got: Vec<&str> = entries(body).unwrap().collect();
        assert_eq!(got, ["http://a/repo", "ftp://b/", "https://c/r/"]);
    }

    #[test]
    fn empty_and_comment_only_bodies_have_no_entries() {
        assert_eq!(entries(b"").unwrap().count(), 0);
        assert_eq!(entries(b"# nothing\n\n   \n").unwrap().count(), 0);
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(entries(b"http://a/\xff\n").err(), Some(Error::NotUtf8));
        assert_eq!(Error::NotUtf8.to_string(), "mirrorlist is not UTF-8");
    }

    #[test]
    fn prefix_is_libostrees() {
        let value = "mirrorlist=https://m/list";
        assert_eq!(value.strip_prefix(PREFIX), Some("https://m/list"));
    }
}
