//! Fetchers: the layer that only moves bytes.
//!
//! A [`Source`] is where a pull reads an OSTree repository from: an HTTP(S) server
//! ([`HttpSource`]) or a repository on disk ([`LocalSource`], any of the `archive`,
//! `bare`, `bare-user` and `bare-user-only` modes). Both answer the same questions
//! with the same semantics:
//!
//! - [`Source::get_bytes`]: a whole small file (summary, `summary.sig`, `config`, ref
//!   files, metadata objects, delta superblocks and indexes) under a caller-given size
//!   cap; `Ok(None)` when the file does not exist (HTTP 404 or 410, `ENOENT` on disk);
//! - [`Source::get_stream`]: a large body (`.filez` objects, delta parts) as a stream of
//!   chunks, still under a size cap;
//! - [`Source::get_conditional`]: a conditional GET for the summary cache;
//! - [`Source::open_file_object`]: a file object, either as the raw `.filez` stream
//!   (HTTP; the engine decodes it) or already split into header and content (local
//!   repositories, whose bare modes have no `.filez` to serve).
//!
//! Nothing here parses OSTree metadata, plans, verifies or stores: every byte handed out
//! is untrusted and must pass `cfsync-verify` before use (docs/architecture.md, "fetchers
//! only move bytes"). Paths are always relative to the repository root, use `/`, and are
//! checked by [`validate_path`] before any request or file access.
//!
//! Which paths live under `url` and which under `contenturl` follows
//! `ostree-repo-pull.c` (docs/ostree-formats.md §8.1); see [`PathKind`].

pub mod http;
pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::FileHeader;
use futures::Stream;

pub use http::{BodyReader, BodyStream, HttpSource};
pub use local::LocalSource;


/// Which base URL a path is fetched from (docs/ostree-formats.md §8.1).
///
/// Only [`HttpSource`] distinguishes the two; a local repository serves both from its
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

/// Why a fetch failed. Not-found is not an error: methods return `Ok(None)` (or
/// [`Conditional::NotFound`]) for it.
///
/// Messages name the URL or path, the HTTP status and the number of attempts where they
/// apply, and say what the user can do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a status that is neither success nor not-found, on the
    /// last of `attempts` attempts.
    #[error("{url} answered HTTP {status} after {attempts} attempt(s); {}", status_hint(*status))]
    Http {
        /// The URL of the last attempt.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// How many requests were made for this file.
        attempts: u32,
    },
    /// The connection could not be made or broke before the body was complete.
    #[error(
        "cannot fetch {url} after {attempts} attempt(s): {source}; check the URL, the \
         network and any proxy setting"
    )]
    Connect {
        /// The URL of the last attempt.
        url: String,
        /// How many requests were made for this file.
        attempts: u32,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No byte arrived for the stall timeout (while waiting for the response headers or
    /// between two body chunks).
    #[error(
        "{url} sent nothing for {seconds} s (attempt {attempts}); the server or network is \
         stalled: try again later or raise the stall timeout"
    )]
    Stall {
        /// The URL that stalled.
        url: String,
        /// The stall timeout, in whole seconds (rounded up).
        seconds: u64,
        /// How many requests were made for this file.
        attempts: u32,
    },
    /// The body (or its declared `Content-Length`) is larger than the caller's cap.
    #[error(
        "{url} is larger than the limit of {limit} bytes; the server is misbehaving or the \
         limit is too small"
    )]
    TooLarge {
        /// The URL or path.
        url: String,
        /// The cap that was exceeded, in bytes.
        limit: u64,
    },
    /// A redirect was refused: too many, or from `https` to `http`.
    #[error("{url}: {reason}; fix the remote URL to point at the final location")]
    Redirects {
        /// The URL that was requested.
        url: String,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// A configured URL, mirrorlist or option is unusable.
    #[error("invalid remote URL {url}: {reason}")]
    InvalidUrl {
        /// The offending URL (or mirrorlist URL).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A local repository or file in it is not what OSTree writes (unknown mode, bad
    /// ref file, object of an unexpected file type, malformed `user.ostreemeta`).
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file or repository.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A requested path was refused before any access: absolute, `..` or `.`
    /// components, characters that are not safe in a URL, or a symlink leaving the
    /// repository.
    #[error("refusing path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The operation was cancelled through [`SourceOptions::cancel`].
    #[error("fetch cancelled")]
    Cancelled,
}

/// A short hint on what to do about an HTTP status.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 407 => "the server wants credentials: check the remote's authentication",
        403 => "access is forbidden: check the URL and the server's permissions",
        408 | 429 => "the server is overloaded or rate-limiting: try again later",
        400..=499 => "check the remote URL",
        500..=599 => "the server is failing: try again later or use another mirror",
        _ => "the server's answer is not usable",
    }
}

impl FetchError {
    /// Whether this error says the network or the server failed in a way that may pass
    /// (connection errors, stalls, 5xx, 408, 429), as opposed to a definite answer or a
    /// local problem.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            FetchError::Connect { .. } | FetchError::Stall { .. } => true,
            _ => false,
        }
    }
}

/// Whether `e` is a transient [`FetchError`], directly or wrapped in a
/// `std::io::Error` (as [`BodyReader`] hands them out). For walking the chain of an
/// error that a consumer of a body (a decoder, the composefs store) wrapped:
/// `error.chain().any(is_transient_error)`.
#[must_use]
pub fn is_transient_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(f) = e.downcast_ref::<FetchError>() {
        return f.is_transient();
    }
    e.downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<FetchError>())
        .is_some_and(FetchError::is_transient)
}

/// Checks a repository-relative path before it is turned into a URL or opened.
///
/// Accepted: non-empty `/`-separated components, none empty, `.` or `..`; no leading
/// `/`; no NUL, control characters, backslash, `%`, `?` or `#` (ref names are
/// `[\w\d][-._\w\d]*` per component, so nothing OSTree serves needs them). Non-ASCII
/// letters are allowed (ref names may be Unicode) and are percent-encoded in URLs.
pub fn validate_path(path: &str) -> Result<(), FetchError> {
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

/// Options for opening a [`Source`]. Defaults follow libostree where it has one
/// (docs/ostree-formats.md §8.1).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceOptions {
    /// Base URL for content (`contenturl`), or `mirrorlist=<URL>`; `None` = the main URL.
    /// Ignored for local repositories.
    pub contenturl: Option<String>,
    /// How long to wait for a TCP (and TLS) connection. Default 30 s.
    pub connect_timeout: Duration,
    /// How long a request may go without receiving a byte (response headers or body)
    /// before it fails with [`FetchError::Stall`]. This is not a total timeout: a slow
    /// but moving download never times out. Default 30 s (libostree aborts below 1000 B/s
    /// for 30 s). The wait for response headers is allowed `connect_timeout +
    /// stall_timeout`, since it includes connecting.
    pub stall_timeout: Duration,
    /// Requests per file at most, counting the first (and, with mirrors, one per mirror
    /// tried). Default 5. At least 1 is used.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further attempt, with jitter
    /// (each wait is uniformly drawn from the upper half of the nominal delay). Default
    /// 500 ms.
    pub retry_base_delay: Duration,
    /// Cap on the backoff delay. Default 10 s.
    pub retry_max_delay: Duration,
    /// Cap on a server's `Retry-After` (seconds form). Default 60 s.
    pub retry_after_cap: Duration,
    /// Concurrent requests to one host (`host:port`) at most; further requests wait.
    /// Also the idle keep-alive pool size per host. Default 8 (libostree's
    /// `max-outstanding-fetcher-requests`). At least 1 is used.
    pub max_connections_per_host: usize,
    /// Redirects followed per request at most. Default 10.
    pub max_redirects: usize,
    /// Offer HTTP/2 (negotiated by ALPN on `https`). `false` forces HTTP/1.1 (the
    /// remote's `http2=false`). Default true.
    pub http2: bool,
    /// Proxy URL for all requests (the remote's `proxy`). Default none; the environment
    /// is not consulted.
    pub proxy: Option<String>,
    /// PEM bundle of extra CA certificates to trust (the remote's `tls-ca-path`).
    pub tls_ca_path: Option<PathBuf>,
    /// Extra request headers (libostree's `http-headers` pull option).
    pub extra_headers: Vec<(String, String)>,
    /// When cancelled, waits (backoff, stalled reads, queued requests) end with
    /// [`FetchError::Cancelled`].
    pub cancel: Option<crate::progress::Cancel>,
}

/// Environment variables that override the HTTP timing defaults, in milliseconds (or a
/// count for [`ENV_MAX_ATTEMPTS`]): for tests that provoke stalls and retries, and for
/// links slow or flaky enough to need other values. Unset, empty or unparsable values
/// keep the default. They are read by [`SourceOptions::default`].
pub const ENV_STALL_TIMEOUT_MS: &str = "CFSYNC_HTTP_STALL_TIMEOUT_MS";
/// Overrides [`SourceOptions::connect_timeout`] (milliseconds).
pub const ENV_CONNECT_TIMEOUT_MS: &str = "CFSYNC_HTTP_CONNECT_TIMEOUT_MS";
/// Overrides [`SourceOptions::retry_base_delay`] (milliseconds).
pub const ENV_RETRY_BASE_DELAY_MS: &str = "CFSYNC_HTTP_RETRY_DELAY_MS";
/// Overrides [`SourceOptions::retry_max_delay`] (milliseconds).
pub const ENV_RETRY_MAX_DELAY_MS: &str = "CFSYNC_HTTP_RETRY_MAX_DELAY_MS";
/// Overrides [`SourceOptions::retry_after_cap`] (milliseconds).
pub const ENV_RETRY_AFTER_CAP_MS: &str = "CFSYNC_HTTP_RETRY_AFTER_CAP_MS";
/// Overrides [`SourceOptions::max_attempts`] (a count).
pub const ENV_MAX_ATTEMPTS: &str = "CFSYNC_HTTP_MAX_ATTEMPTS";

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn env_millis(name: &str, default: Duration) -> Duration {
    env_u64(name).map_or(default, Duration::from_millis)
}

impl Default for SourceOptions {
    /// libostree's defaults, with the timing overrides of the `CFSYNC_HTTP_*`
    /// environment variables ([`ENV_STALL_TIMEOUT_MS`] and the others) applied.
    fn default() -> Self {
        SourceOptions {
            connect_timeout: env_millis(ENV_CONNECT_TIMEOUT_MS, Duration::from_secs(30)),
            stall_timeout: env_millis(ENV_STALL_TIMEOUT_MS, Duration::from_secs(30)),
            max_attempts: env_u64(ENV_MAX_ATTEMPTS)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(5),
            retry_base_delay: env_millis(ENV_RETRY_BASE_DELAY_MS, Duration::from_millis(500)),
            retry_max_delay: env_millis(ENV_RETRY_MAX_DELAY_MS, Duration::from_secs(10)),
            retry_after_cap: env_millis(ENV_RETRY_AFTER_CAP_MS, Duration::from_secs(60)),
            ..SourceOptions::libostree()
        }
    }
}

impl SourceOptions {
    /// libostree's defaults, ignoring the environment.
    #[must_use]
    pub fn libostree() -> Self {
        SourceOptions {
            contenturl: None,
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            max_attempts: 5,
            retry_base_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(60),
            max_connections_per_host: 8,
            max_redirects: 10,
            http2: true,
            proxy: None,
            tls_ca_path: None,
            extra_headers: Vec::new(),
            cancel: None,
        }
    }
}

/// Counters for pull statistics, as a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Body bytes received (HTTP: as sent on the wire, i.e. compressed `.filez`; local:
    /// bytes read through this source's readers and buffers).
    pub bytes_received: u64,
    /// Requests made (HTTP: every request including retries and mirror switches, but
    /// not the hops of a followed redirect; local: files opened).
    pub requests: u64,
}

/// The answer to [`Source::get_conditional`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional {
    /// The server said `304 Not Modified`: the cached copy is current.
    NotModified,
    /// The file does not exist (404/410, or missing on disk).
    NotFound,
    /// The file, with the validators to store next to the cached copy.
    Fetched {
        /// The body.
        body: Vec<u8>,
        /// The `ETag` header, if any (for a local file: none).
        etag: Option<String>,
        /// The `Last-Modified` header, if any (for a local file: its mtime in HTTP
        /// date form).
        last_modified: Option<String>,
    },
}

/// The content of a file object from a local repository: blocking reads.
pub type FileContent = Box<dyn std::io::Read + Send>;

/// A file object as a source provides it.
pub enum FileObject {
    /// The raw archive `.filez` bytes (docs/ostree-formats.md §1.4), as served over
    /// HTTP. The engine decodes them with `cfsync_formats::file::FilezReader`; inflating
    /// is CPU work, so run the decoder in `spawn_blocking` (for example behind
    /// `tokio_util::io::SyncIoBridge` over [`BodyStream::into_reader`]).
    Filez(BodyStream),
    /// Header and content, already split (local repositories). The reader is blocking
    /// file I/O (or an inflater for a local archive repository): read it in
    /// `spawn_blocking`. For symlinks the content is empty.
    Split {
        /// The object's header (uid, gid, mode, symlink target, xattrs).
        header: FileHeader,
        /// The content bytes.
        content: FileContent,
    },
}

impl std::fmt::Debug for FileObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileObject::Filez(s) => f.debug_tuple("Filez").field(s).finish(),
            FileObject::Split { header, .. } => f
                .debug_struct("Split")
                .field("header", header)
                .finish_non_exhaustive(),
        }
    }
}

/// A stream of body chunks from either kind of source.
pub type ChunkStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, FetchError>> + Send>>;

/// Where a pull reads from: an HTTP(S) server or a repository on disk.
#[derive(Debug, Clone)]
pub enum Source {
    /// An HTTP or HTTPS remote (with optional `contenturl` and mirrorlists).
    Http(HttpSource),
    /// A local OSTree repository (any mode).
    Local(LocalSource),
}

impl Source {
    /// Opens a source from a URL or a path: `http://`, `https://` or
    /// `mirrorlist=<http URL>` gives [`Source::Http`]; `file:///path` or a plain path
    /// gives [`Source::Local`] (whose `config` is read now). Other schemes are refused.
    pub fn open(url_or_path: &str, options: SourceOptions) -> Result<Source, FetchError> {
        let lower = url_or_path.to_ascii_lowercase();
        if lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with(http::MIRRORLIST_PREFIX)
        {
            return Ok(Source::Http(HttpSource::new(url_or_path, options)?));
        }
        if lower.starts_with("file://") {
            let url = reqwest::Url::parse(url_or_path).map_err(|e| FetchError::InvalidUrl {
                url: url_or_path.to_owned(),
                reason: e.to_string(),
            })?;
            let path = url.to_file_path().map_err(|()| FetchError::InvalidUrl {
                url: url_or_path.to_owned(),
                reason: "not a local absolute path".to_owned(),
            })?;
            return Ok(Source::Local(LocalSource::open(&path, options.cancel)?));
        }
        if let Some((scheme, _)) = url_or_path.split_once("://") {
            return Err(FetchError::InvalidUrl {
                url: url_or_path.to_owned(),
                reason: format!("unsupported scheme {scheme:?} (use http, https or file)"),
            });
        }
        Ok(Source::Local(LocalSource::open(
            std::path::Path::new(url_or_path),
            options.cancel,
        )?))
    }

    /// Fetches a whole file of at most `max_size` bytes; `Ok(None)` if it does not
    /// exist. See [`HttpSource::get_bytes`] and [`LocalSource::get_bytes`].
    pub async fn get_bytes(
        &self,
        path: &str,
        kind: PathKind,
        max_size: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        match self {
            Source::Http(h) => h.get_bytes(path, kind, max_size).await,
            Source::Local(l) => {
                let (l, path) = (l.clone(), path.to_owned());
                blocking(move || l.get_bytes(&path, kind, max_size)).await
            }
        }
    }

    /// Opens a large file as a stream of chunks, capped at `max_size` bytes; `Ok(None)`
    /// if it does not exist. Over HTTP, retries happen only until the response headers
    /// arrive: once this returns, a failure mid-body is the caller's to retry (it can
    /// call again; nothing is resumed). Locally the chunks come from a file read in
    /// `spawn_blocking`.
    pub async fn get_stream(
        &self,
        path: &str,
        kind: PathKind,
        max_size: u64,
    ) -> Result<Option<ChunkStream>, FetchError> {
        match self {
            Source::Http(h) => Ok(h
                .get_stream(path, kind, max_size)
                .await?
                .map(|s| Box::pin(s) as ChunkStream)),
            Source::Local(l) => {
                let (l2, path) = (l.clone(), path.to_owned());
                let opened = blocking(move || l2.open_reader(&path, max_size)).await?;
                Ok(opened.map(|(file, len, shown)| l.chunk_stream(file, len, shown)))
            }
        }
    }

    /// Conditional fetch for the summary cache: `If-None-Match` / `If-Modified-Since`
    /// over HTTP; locally `etag` is compared with a validator made from the file's
    /// mtime, size and inode (see [`LocalSource::get_conditional`]).
    pub async fn get_conditional(
        &self,
        path: &str,
        max_size: u64,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Conditional, FetchError> {
        match self {
            Source::Http(h) => h.get_conditional(path, max_size, etag, last_modified).await,
            Source::Local(l) => {
                let (l, path) = (l.clone(), path.to_owned());
                let etag = etag.map(str::to_owned);
                blocking(move || l.get_conditional(&path, max_size, etag.as_deref())).await
            }
        }
    }

    /// Opens file object `checksum`; `Ok(None)` if it does not exist. HTTP gives the raw
    /// `objects/XX/REST.filez` stream capped at `max_size` (the engine decodes it);
    /// a local repository gives header and content (see [`FileObject`]).
    pub async fn open_file_object(
        &self,
        checksum: &Checksum,
        max_size: u64,
    ) -> Result<Option<FileObject>, FetchError> {
        match self {
            Source::Http(h) => Ok(h
                .get_filez(checksum, max_size)
                .await?
                .map(FileObject::Filez)),
            Source::Local(l) => {
                let (l, checksum) = (l.clone(), *checksum);
                let opened = blocking(move || l.open_file_object(&checksum)).await?;
                Ok(opened.map(|(header, content)| FileObject::Split { header, content }))
            }
        }
    }

    /// Counters so far (bytes received, requests made).
    #[must_use]
    pub fn stats(&self) -> SourceStats {
        match self {
            Source::Http(h) => h.stats(),
            Source::Local(l) => l.stats(),
        }
    }
}

/// Runs blocking file I/O off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FetchError> + Send + 'static,
) -> Result<T, FetchError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(FetchError::Cancelled),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
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
