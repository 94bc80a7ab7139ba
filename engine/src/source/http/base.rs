//! Base URLs: a remote's `url` or `contenturl`, fixed or `mirrorlist=<URL>`, and how a
//! repository-relative path is joined onto one.
//!
//! A mirrorlist body is split into entries by `cfsync_formats::mirrorlist` (libostree's
//! rules); only the entries that are absolute `http`/`https` URLs with a host are kept.

use std::sync::atomic::AtomicUsize;

use cfsync_formats::mirrorlist;
use reqwest::Url;
use tokio::sync::OnceCell;

use crate::source::FetchError;

/// Largest mirrorlist body accepted (1 MiB; a list of URLs has no reason to be larger).
pub(super) const MAX_MIRRORLIST_SIZE: u64 = 1024 * 1024;

/// A base URL: fixed, or a mirrorlist resolved on first use.
#[derive(Debug)]
pub(super) struct Base {
    /// The mirrorlist URL, when this base is one.
    pub(super) mirrorlist: Option<Url>,
    /// Base URLs (each ending in `/`); for a mirrorlist, filled on first use.
    pub(super) urls: OnceCell<Vec<Url>>,
    /// Index of the mirror that last answered.
    pub(super) preferred: AtomicUsize,
}

impl Base {
    /// Parses a `url`/`contenturl` value: an `http(s)` URL, or `mirrorlist=<URL>`.
    pub(super) fn parse(value: &str) -> Result<Base, FetchError> {
        if let Some(list) = value.strip_prefix(mirrorlist::PREFIX) {
            let url = parse_http_url(list)?;
            return Ok(Base {
                mirrorlist: Some(url),
                urls: OnceCell::new(),
                preferred: AtomicUsize::new(0),
            });
        }
        let url = as_base(parse_http_url(value)?);
        Ok(Base {
            mirrorlist: None,
            urls: OnceCell::new_with(Some(vec![url])),
            preferred: AtomicUsize::new(0),
        })
    }

    /// The base URLs as far as known: the mirrors once resolved, else the
    /// `mirrorlist=<URL>` value.
    pub(super) fn describe(&self) -> Vec<String> {
        match self.urls.get() {
            Some(urls) => urls.iter().map(Url::to_string).collect(),
            None => self
                .mirrorlist
                .iter()
                .map(|u| format!("{}{u}", mirrorlist::PREFIX))
                .collect(),
        }
    }
}

/// Parses an absolute `http`/`https` URL with a host.
fn parse_http_url(value: &str) -> Result<Url, FetchError> {
    let url = Url::parse(value.trim()).map_err(|e| FetchError::InvalidUrl {
        url: value.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::InvalidUrl {
            url: value.to_owned(),
            reason: "only http and https are supported here".to_owned(),
        });
    }
    if url.host_str().is_none() {
        return Err(FetchError::InvalidUrl {
            url: value.to_owned(),
            reason: "no host".to_owned(),
        });
    }
    Ok(url)
}

/// Makes `url` usable as a directory base: no query or fragment, path ending in `/`.
fn as_base(mut url: Url) -> Url {
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Appends a validated relative path to a base URL, segment by segment (each segment
/// percent-encoded, so nothing in it can change the scheme, host or query).
pub(super) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
        segments.extend(path.split('/'));
    }
    url
}

/// Parses a mirrorlist body (libostree's rules: one URL per line, `#` comments and blank
/// lines skipped, only `http`/`https` kept).
pub(super) fn parse_mirrorlist(list_url: &Url, body: &[u8]) -> Result<Vec<Url>, FetchError> {
    let entries = mirrorlist::entries(body).map_err(|e| FetchError::InvalidUrl {
        url: list_url.to_string(),
        reason: e.to_string(),
    })?;
    let urls: Vec<Url> = entries
        .filter_map(|l| parse_http_url(l).ok())
        .map(as_base)
        .collect();
    if urls.is_empty() {
        return Err(FetchError::InvalidUrl {
            url: list_url.to_string(),
            reason: "mirrorlist lists no http or https URL".to_owned(),
        });
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_percent_encodes_segments() {
        let base = as_base(Url::parse("http://h:8/repo").unwrap());
        assert_eq!(base.as_str(), "http://h:8/repo/");
        assert_eq!(join(&base, "summary").as_str(), "http://h:8/repo/summary");
        assert_eq!(
            join(&base, "refs/heads/é:x").as_str(),
            "http://h:8/repo/refs/heads/%C3%A9:x"
        );
    }

    #[test]
    fn mirrorlist_keeps_http_lines_only() {
        let list = Url::parse("http://h/list").unwrap();
        let body = b"# comment\n\nhttp://a/repo\nftp://b/\n  https://c/r/  \nnot a url\n";
        let urls = parse_mirrorlist(&list, body).unwrap();
        let urls: Vec<&str> = urls.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["http://a/repo/", "https://c/r/"]);
        assert!(parse_mirrorlist(&list, b"# nothing\n").is_err());
        let err = parse_mirrorlist(&list, b"http://a/\xff\n").unwrap_err();
        assert!(err.to_string().contains("mirrorlist is not UTF-8"), "{err}");
    }

    #[test]
    fn base_parses_fixed_urls_and_mirrorlists() {
        let fixed = Base::parse("https://h/repo?x#y").unwrap();
        assert_eq!(fixed.describe(), ["https://h/repo/"]);
        let list = Base::parse("mirrorlist=http://m/list").unwrap();
        assert_eq!(list.describe(), ["mirrorlist=http://m/list"]);
        assert!(Base::parse("mirrorlist=file:///x").is_err());
        assert!(Base::parse("ftp://h/").is_err());
    }
}
