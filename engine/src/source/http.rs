//! HTTP(S) fetcher: one configured `reqwest` client, retries, mirrors, size caps and a
//! stall timeout.
//!
//! Request mechanics follow libostree's pull (`ostree-repo-pull.c`,
//! `ostree-fetcher-curl.c`; docs/ostree-formats.md §8.1): metadata paths are fetched from
//! `url`, content paths from `contenturl`; either may be `mirrorlist=<URL>`, a text file
//! listing base URLs one per line (`#` comments and blank lines skipped, only `http` and
//! `https` kept). Unlike libostree, mirrors are not probed with `GET config` up front: a
//! request walks the list from the mirror that last answered, and moves to the next one
//! on a transient failure (connection error, stall, 5xx, 408, 429). A 404 or 410 is a
//! definite "not found" and is not retried elsewhere. libostree's metalink is not
//! supported.
//!
//! Retries: at most [`SourceOptions::max_attempts`] requests per file, with exponential
//! backoff and jitter after each full pass over the mirrors, honouring `Retry-After`
//! (seconds form, capped). Other 4xx statuses and redirect failures are not retried.
//! Retrying is only possible before any body byte has been handed to the caller:
//! [`HttpSource::get_bytes`] and [`HttpSource::get_conditional`] buffer the body and so
//! also retry a body that breaks or stalls midway; [`HttpSource::get_stream`] retries
//! only until the response headers arrive, after which errors surface from the
//! [`BodyStream`] and the caller decides whether to fetch again (from the start).
//!
//! The clients are built here and nowhere else (never `Client::new()`): keep-alive pool
//! sized by [`SourceOptions::max_connections_per_host`], HTTP/2 when the server offers it
//! through ALPN, connect timeout, at most [`SourceOptions::max_redirects`] redirects that
//! keep the scheme or upgrade `http` to `https`, no automatic decompression (byte
//! counters measure what crossed the wire), no proxy from the environment, and the user
//! agent `cfsync/<version>`.
//!
//! There are two of them, so that a remote served over plain `http` never pays for
//! loading the system's CA roots (some 20 ms on a cold page cache): `http` URLs go
//! through a client with an empty root store, and `https` URLs through a client with the
//! platform verifier (plus [`SourceOptions::tls_ca_path`]), built on the first `https`
//! request. The plain client stops at a redirect from `http` to `https`, and the request
//! goes on from that `Location` with the TLS client; the redirect limit and scheme rules
//! apply to the whole chain as if one client had followed it, and the headers reqwest
//! drops on a cross-origin hop (`Authorization`, `Cookie`, ...) are dropped there too.
//! When the proxy itself is `https`, every request uses the TLS client.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cfsync_formats::checksum::Checksum;
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};
use futures::{Stream, StreamExt};
use reqwest::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::{Conditional, FetchError, PathKind, SourceOptions, SourceStats, validate_path};

/// The prefix that makes a `url` or `contenturl` value a mirrorlist
/// (`mirrorlist=https://example.com/mirrors.txt`), as libostree accepts it.
pub const MIRRORLIST_PREFIX: &str = "mirrorlist=";

/// Largest mirrorlist body accepted (1 MiB; a list of URLs has no reason to be larger).
pub const MAX_MIRRORLIST_SIZE: u64 = 1024 * 1024;

/// Initial buffer reservation for a body of unknown length, so a lying or missing
/// `Content-Length` cannot make us reserve the whole cap up front.
const INITIAL_RESERVE: u64 = 64 * 1024;

/// An HTTP(S) OSTree remote. Cheap to clone (shared client, pool and counters).
#[derive(Debug, Clone)]
pub struct HttpSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The client for `http` URLs, with no TLS roots loaded; `None` when the proxy is
    /// `https` (the TLS client then serves every URL).
    plain: Option<reqwest::Client>,
    /// The client for `https` URLs, built on first use (loading the CA roots is slow).
    tls: OnceCell<reqwest::Client>,
    /// Extra CA certificates for the TLS client ([`SourceOptions::tls_ca_path`]).
    extra_roots: Vec<reqwest::Certificate>,
    /// [`SourceOptions::extra_headers`], parsed; added to each request where it does not
    /// set the header itself.
    headers: HeaderMap,
    metadata: Base,
    /// `None` = content comes from the metadata base.
    content: Option<Base>,
    options: SourceOptions,
    counters: Arc<Counters>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    jitter_seed: AtomicU64,
}

#[derive(Debug, Default)]
struct Counters {
    bytes_received: AtomicU64,
    requests: AtomicU64,
}

/// A base URL: fixed, or a mirrorlist resolved on first use.
#[derive(Debug)]
struct Base {
    /// The mirrorlist URL, when this base is one.
    mirrorlist: Option<Url>,
    /// Base URLs (each ending in `/`); for a mirrorlist, filled on first use.
    urls: OnceCell<Vec<Url>>,
    /// Index of the mirror that last answered.
    preferred: AtomicUsize,
}

impl Base {
    fn parse(value: &str) -> Result<Base, FetchError> {
        if let Some(list) = value.strip_prefix(MIRRORLIST_PREFIX) {
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
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty();
        segments.extend(path.split('/'));
    }
    url
}

/// Parses a mirrorlist body (libostree's rules: one URL per line, `#` comments and blank
/// lines skipped, only `http`/`https` kept).
fn parse_mirrorlist(list_url: &Url, body: &[u8]) -> Result<Vec<Url>, FetchError> {
    let text = std::str::from_utf8(body).map_err(|_| FetchError::InvalidUrl {
        url: list_url.to_string(),
        reason: "mirrorlist is not UTF-8".to_owned(),
    })?;
    let urls: Vec<Url> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
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

/// Marker error our redirect policy returns, found again in the `reqwest` error chain.
#[derive(Debug)]
struct RedirectRefused(&'static str);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RedirectRefused {}

tokio::task_local! {
    /// The redirect chain of the request being sent, seen by the redirect policy (which
    /// runs while [`HttpSource::send`] polls the response future).
    static CHAIN: Arc<Chain>;
}

/// Per-request redirect state shared between [`HttpSource::send`] and the redirect
/// policy through [`CHAIN`].
#[derive(Debug)]
struct Chain {
    /// URLs requested earlier in this chain by the other client (0 for a new request).
    before: usize,
    /// Set by the plain client's policy when it stops at a redirect to `https`: the
    /// `Location`, and how many URLs the chain has requested so far.
    handover: Mutex<Option<(Url, usize)>>,
}

/// Why [`HttpSource::send`] failed.
enum SendError {
    /// The TLS client could not be built.
    Client(FetchError),
    /// The request failed (classified by [`classify_send_error`]).
    Request(reqwest::Error),
}

/// Headers reqwest drops when a redirect changes host, port or scheme.
fn is_sensitive(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::COOKIE
        || name.as_str() == "cookie2"
        || name == header::PROXY_AUTHORIZATION
        || name == header::WWW_AUTHENTICATE
}

/// What a request is for.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// Buffer the whole body.
    Body,
    /// Hand out the body as a stream.
    Stream,
    /// Buffer the body, sending these validators.
    Conditional {
        etag: Option<&'a str>,
        last_modified: Option<&'a str>,
    },
}

/// What a request produced.
enum Got {
    NotFound,
    NotModified,
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    Stream(BodyStream),
}

/// Outcome of one attempt that did not succeed.
enum Failure {
    /// Try again (next mirror, or after a backoff), waiting at least this long.
    Retry(FetchError, Option<Duration>),
    /// Give up now.
    Fatal(FetchError),
}

impl HttpSource {
    /// Creates a source for `url` (`http(s)://…` or `mirrorlist=<URL>`), with
    /// `options.contenturl` as the content base if set. Builds the HTTP client; does no
    /// network I/O (mirrorlists are fetched on first use).
    pub fn new(url: &str, options: SourceOptions) -> Result<HttpSource, FetchError> {
        let metadata = Base::parse(url)?;
        let content = options.contenturl.as_deref().map(Base::parse).transpose()?;
        let headers = extra_headers(&options)?;
        let extra_roots = extra_roots(&options)?;
        let plain = if proxy_needs_tls(&options) {
            None
        } else {
            Some(build_client(&options, None)?)
        };
        Ok(HttpSource {
            inner: Arc::new(Inner {
                plain,
                tls: OnceCell::new(),
                extra_roots,
                headers,
                metadata,
                content,
                options,
                counters: Arc::default(),
                hosts: Mutex::default(),
                jitter_seed: AtomicU64::new(0),
            }),
        })
    }

    /// Fetches `path` whole, refusing bodies over `max_size` bytes.
    ///
    /// `Ok(None)` for 404 and 410. A `Content-Length` over the cap is refused before the
    /// body is read; a body that grows past the cap is abandoned at that point (the
    /// buffer never grows beyond `max_size`), both as [`FetchError::TooLarge`]. Transient
    /// failures, including a body that breaks or stalls midway, are retried.
    pub async fn get_bytes(
        &self,
        path: &str,
        kind: PathKind,
        max_size: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        match self.fetch(path, kind, max_size, Want::Body).await? {
            Got::Body { body, .. } => Ok(Some(body)),
            _ => Ok(None),
        }
    }

    /// Opens `path` as a stream of body chunks, capped at `max_size` bytes.
    ///
    /// `Ok(None)` for 404 and 410. Retries happen only until the response headers
    /// arrive: the returned stream's errors ([`FetchError::Stall`],
    /// [`FetchError::Connect`] for a broken body, [`FetchError::TooLarge`],
    /// [`FetchError::Cancelled`]) are final for this call, and the caller may call again
    /// to restart from the first byte. The stream holds one of the host's connection
    /// slots until it ends or is dropped.
    pub async fn get_stream(
        &self,
        path: &str,
        kind: PathKind,
        max_size: u64,
    ) -> Result<Option<BodyStream>, FetchError> {
        match self.fetch(path, kind, max_size, Want::Stream).await? {
            Got::Stream(s) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    /// Conditional GET of a metadata `path` (the summary cache): sends `If-None-Match`
    /// and `If-Modified-Since` from the cached validators and returns
    /// [`Conditional::NotModified`] on 304.
    pub async fn get_conditional(
        &self,
        path: &str,
        max_size: u64,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Conditional, FetchError> {
        let want = Want::Conditional {
            etag,
            last_modified,
        };
        Ok(
            match self.fetch(path, PathKind::Metadata, max_size, want).await? {
                Got::NotFound | Got::Stream(_) => Conditional::NotFound,
                Got::NotModified => Conditional::NotModified,
                Got::Body {
                    body,
                    etag,
                    last_modified,
                } => Conditional::Fetched {
                    body,
                    etag,
                    last_modified,
                },
            },
        )
    }

    /// Opens the archive form of file object `checksum` (`objects/XX/REST.filez`, which
    /// libostree always requests over HTTP) as a raw stream; see
    /// [`super::FileObject::Filez`] for decoding.
    pub async fn get_filez(
        &self,
        checksum: &Checksum,
        max_size: u64,
    ) -> Result<Option<BodyStream>, FetchError> {
        let path = loose_path(checksum, ObjectType::File, RepoMode::Archive);
        self.get_stream(&path, PathKind::Content, max_size).await
    }

    /// Counters so far: body bytes received and requests made (including retries).
    #[must_use]
    pub fn stats(&self) -> SourceStats {
        SourceStats {
            bytes_received: self.inner.counters.bytes_received.load(Ordering::Relaxed),
            requests: self.inner.counters.requests.load(Ordering::Relaxed),
        }
    }

    /// The base URLs content is currently fetched from (the mirror list once resolved),
    /// for messages and diagnostics.
    #[must_use]
    pub fn content_bases(&self) -> Vec<String> {
        let base = self.inner.content.as_ref().unwrap_or(&self.inner.metadata);
        match base.urls.get() {
            Some(urls) => urls.iter().map(Url::to_string).collect(),
            None => base
                .mirrorlist
                .iter()
                .map(|u| format!("{MIRRORLIST_PREFIX}{u}"))
                .collect(),
        }
    }

    /// The base for `kind`, with its mirror list resolved.
    async fn base(&self, kind: PathKind) -> Result<(&Base, &[Url]), FetchError> {
        let base = match kind {
            PathKind::Content => self.inner.content.as_ref().unwrap_or(&self.inner.metadata),
            PathKind::Metadata => &self.inner.metadata,
        };
        let urls = base
            .urls
            .get_or_try_init(|| async {
                let Some(list) = &base.mirrorlist else {
                    // A fixed base is initialised in `Base::parse`.
                    return Err(FetchError::InvalidUrl {
                        url: String::new(),
                        reason: "base URL missing".to_owned(),
                    });
                };
                let single = [list.clone()];
                let preferred = AtomicUsize::new(0);
                match self
                    .run(&single, &preferred, None, MAX_MIRRORLIST_SIZE, Want::Body)
                    .await?
                {
                    Got::Body { body, .. } => parse_mirrorlist(list, &body),
                    _ => Err(FetchError::InvalidUrl {
                        url: list.to_string(),
                        reason: "mirrorlist not found (404)".to_owned(),
                    }),
                }
            })
            .await?;
        Ok((base, urls.as_slice()))
    }

    async fn fetch(
        &self,
        path: &str,
        kind: PathKind,
        max_size: u64,
        want: Want<'_>,
    ) -> Result<Got, FetchError> {
        validate_path(path)?;
        let (base, urls) = self.base(kind).await?;
        self.run(urls, &base.preferred, Some(path), max_size, want)
            .await
    }

    /// The retry loop: walks `bases` from `preferred`, one request per attempt, backing
    /// off after each full pass.
    async fn run(
        &self,
        bases: &[Url],
        preferred: &AtomicUsize,
        path: Option<&str>,
        max_size: u64,
        want: Want<'_>,
    ) -> Result<Got, FetchError> {
        let opts = &self.inner.options;
        let max_attempts = opts.max_attempts.max(1);
        let count = bases.len().max(1);
        let start = preferred.load(Ordering::Relaxed) % count;
        let mut attempts: u32 = 0;
        let mut rounds: u32 = 0;
        loop {
            let index = (start + attempts as usize) % count;
            let Some(base) = bases.get(index) else {
                return Err(FetchError::InvalidUrl {
                    url: String::new(),
                    reason: "no base URL".to_owned(),
                });
            };
            let url = match path {
                Some(p) => join(base, p),
                None => base.clone(),
            };
            attempts = attempts.saturating_add(1);
            match self.attempt(&url, attempts, max_size, want).await {
                Ok(got) => {
                    preferred.store(index, Ordering::Relaxed);
                    return Ok(got);
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e, retry_after)) => {
                    if attempts >= max_attempts {
                        return Err(e);
                    }
                    tracing::debug!(%url, attempts, error = %e, "retrying");
                    // Back off only after every mirror failed once in this pass.
                    if (attempts as usize).is_multiple_of(count) {
                        rounds = rounds.saturating_add(1);
                        let wait = self.backoff(rounds).max(retry_after.unwrap_or_default());
                        self.sleep(wait).await?;
                    }
                }
            }
        }
    }

    /// Nominal delay `base * 2^(round-1)` capped, drawn from its upper half.
    fn backoff(&self, round: u32) -> Duration {
        let opts = &self.inner.options;
        let factor = 1u32
            .checked_shl(round.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        let nominal = opts
            .retry_base_delay
            .saturating_mul(factor)
            .min(opts.retry_max_delay);
        let half = nominal / 2;
        let seed = self.inner.jitter_seed.fetch_add(1, Ordering::Relaxed);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(seed);
        let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let extra = hasher
            .finish()
            .checked_rem(span.saturating_add(1))
            .unwrap_or(0);
        half.saturating_add(Duration::from_nanos(extra))
    }

    async fn sleep(&self, wait: Duration) -> Result<(), FetchError> {
        match &self.inner.options.cancel {
            Some(token) => tokio::select! {
                () = token.cancelled() => Err(FetchError::Cancelled),
                () = tokio::time::sleep(wait) => Ok(()),
            },
            None => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }

    /// A connection slot for `url`'s host.
    async fn permit(&self, url: &Url) -> Result<OwnedSemaphorePermit, FetchError> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let semaphore = {
            let mut hosts = self
                .inner
                .hosts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(hosts.entry(key).or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.options.max_connections_per_host.max(1),
                ))
            }))
        };
        let acquire = semaphore.acquire_owned();
        let permit = match &self.inner.options.cancel {
            Some(token) => tokio::select! {
                () = token.cancelled() => return Err(FetchError::Cancelled),
                p = acquire => p,
            },
            None => acquire.await,
        };
        // The semaphore is never closed.
        permit.map_err(|_| FetchError::Cancelled)
    }

    /// The client for `url`: the plain one for `http` (when there is one), else the TLS
    /// one, built now if this is the first request that needs it.
    async fn client_for(&self, url: &Url) -> Result<&reqwest::Client, FetchError> {
        if url.scheme() == "http"
            && let Some(plain) = &self.inner.plain
        {
            return Ok(plain);
        }
        self.inner
            .tls
            .get_or_try_init(|| async {
                build_client(&self.inner.options, Some(&self.inner.extra_roots))
            })
            .await
    }

    /// Sends a GET for `url` and follows its redirects (through the redirect policy of
    /// [`build_client`]), handing the chain over from the plain client to the TLS one at
    /// a redirect from `http` to `https`. Returns the final response.
    async fn send(&self, url: &Url, want: Want<'_>) -> Result<reqwest::Response, SendError> {
        let mut target = url.clone();
        // URLs requested so far in this chain by an earlier client.
        let mut before = 0usize;
        loop {
            let client = self.client_for(&target).await.map_err(SendError::Client)?;
            let mut request = client.get(target.clone());
            if let Want::Conditional {
                etag,
                last_modified,
            } = want
            {
                if let Some(etag) = etag {
                    request = request.header(header::IF_NONE_MATCH, etag);
                }
                if let Some(lm) = last_modified {
                    request = request.header(header::IF_MODIFIED_SINCE, lm);
                }
            }
            let mut request = request.build().map_err(SendError::Request)?;
            // As default headers: only where the request does not set the header. A
            // hand-over is a change of scheme, after which reqwest would have dropped the
            // sensitive ones.
            let headers = request.headers_mut();
            for (name, value) in &self.inner.headers {
                if before > 0 && is_sensitive(name) {
                    continue;
                }
                if let Entry::Vacant(entry) = headers.entry(name) {
                    entry.insert(value.clone());
                }
            }
            let chain = Arc::new(Chain {
                before,
                handover: Mutex::new(None),
            });
            let response = CHAIN
                .scope(Arc::clone(&chain), client.execute(request))
                .await
                .map_err(SendError::Request)?;
            let handover = chain
                .handover
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            match handover {
                Some((next, requested)) if response.status().is_redirection() => {
                    tracing::debug!(from = %response.url(), to = %next, "redirect to https");
                    target = next;
                    before = requested;
                }
                _ => return Ok(response),
            }
        }
    }

    /// One request, classified.
    async fn attempt(
        &self,
        url: &Url,
        attempts: u32,
        max_size: u64,
        want: Want<'_>,
    ) -> Result<Got, Failure> {
        let opts = &self.inner.options;
        let permit = self.permit(url).await.map_err(Failure::Fatal)?;
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let stall = opts.stall_timeout;
        let send = tokio::time::timeout(
            opts.connect_timeout.saturating_add(stall),
            self.send(url, want),
        );
        let sent = match &opts.cancel {
            Some(token) => tokio::select! {
                () = token.cancelled() => return Err(Failure::Fatal(FetchError::Cancelled)),
                r = send => r,
            },
            None => send.await,
        };
        let response = match sent {
            Err(_elapsed) => {
                return Err(Failure::Retry(stall_error(url, stall, attempts), None));
            }
            Ok(Err(SendError::Client(e))) => return Err(Failure::Fatal(e)),
            Ok(Err(SendError::Request(e))) => return Err(classify_send_error(url, attempts, e)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let conditional = matches!(want, Want::Conditional { .. });
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(Got::NotFound);
        }
        if status == StatusCode::NOT_MODIFIED && conditional {
            return Ok(Got::NotModified);
        }
        if !status.is_success() {
            let error = FetchError::Http {
                url: url.to_string(),
                status: status.as_u16(),
                attempts,
            };
            let transient = status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS;
            return Err(if transient {
                let retry_after =
                    retry_after(response.headers()).map(|d| d.min(opts.retry_after_cap));
                Failure::Retry(error, retry_after)
            } else {
                Failure::Fatal(error)
            });
        }
        if response.content_length().is_some_and(|len| len > max_size) {
            return Err(Failure::Fatal(FetchError::TooLarge {
                url: url.to_string(),
                limit: max_size,
            }));
        }
        let header_string = |name: HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header_string(header::ETAG);
        let last_modified = header_string(header::LAST_MODIFIED);
        let content_length = response.content_length();
        let mut stream = BodyStream {
            url: url.to_string(),
            inner: Box::pin(response.bytes_stream()),
            stall: Box::pin(tokio::time::sleep(stall)),
            stall_timeout: stall,
            cancel: opts.cancel.clone().map(|t| Box::pin(t.cancelled_owned())),
            max_size,
            received: 0,
            content_length,
            attempts,
            counters: Arc::clone(&self.inner.counters),
            permit: Some(permit),
            done: false,
        };
        if matches!(want, Want::Stream) {
            return Ok(Got::Stream(stream));
        }
        // Buffer the body: grow towards the cap, never past it.
        let first = content_length.unwrap_or(INITIAL_RESERVE).min(max_size);
        let mut body = Vec::new();
        body.try_reserve_exact(usize::try_from(first).unwrap_or(0))
            .map_err(|_| Failure::Fatal(too_large(url, max_size)))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                if e.is_transient() {
                    Failure::Retry(e, None)
                } else {
                    Failure::Fatal(e)
                }
            })?;
            let needed = body.len().saturating_add(chunk.len());
            if needed > body.capacity() {
                let target = needed
                    .max(body.capacity().saturating_mul(2))
                    .min(usize::try_from(max_size).unwrap_or(usize::MAX));
                body.try_reserve_exact(target.saturating_sub(body.len()))
                    .map_err(|_| Failure::Fatal(too_large(url, max_size)))?;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Got::Body {
            body,
            etag,
            last_modified,
        })
    }
}

fn too_large(url: &Url, limit: u64) -> FetchError {
    FetchError::TooLarge {
        url: url.to_string(),
        limit,
    }
}

fn stall_error(url: &dyn std::fmt::Display, stall: Duration, attempts: u32) -> FetchError {
    let mut seconds = stall.as_secs();
    if stall.subsec_nanos() > 0 {
        seconds = seconds.saturating_add(1);
    }
    FetchError::Stall {
        url: url.to_string(),
        seconds,
        attempts,
    }
}

/// Maps a `send()` error: refused redirects and malformed requests are final, everything
/// else (connect, TLS, reset, protocol) is transient.
fn classify_send_error(url: &Url, attempts: u32, e: reqwest::Error) -> Failure {
    if e.is_redirect() {
        let mut reason = "too many redirects";
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<RedirectRefused>() {
                reason = refused.0;
                break;
            }
            source = s.source();
        }
        return Failure::Fatal(FetchError::Redirects {
            url: url.to_string(),
            reason,
        });
    }
    let builder = e.is_builder();
    let error = FetchError::Connect {
        url: url.to_string(),
        attempts,
        source: Box::new(e.without_url()),
    };
    if builder {
        Failure::Fatal(error)
    } else {
        Failure::Retry(error, None)
    }
}

/// `Retry-After` in its delay-seconds form (an HTTP date is ignored: backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The redirect policy: at most `max_redirects` hops over the whole chain, keeping the
/// scheme or going from `http` to `https`, never from `https` to `http`. Without `tls`
/// (the plain client) a hop to `https` stops the chain and is recorded in [`CHAIN`] for
/// [`HttpSource::send`] to continue with the TLS client.
fn redirect_policy(max_redirects: usize, tls: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let before = CHAIN.try_with(|chain| chain.before).unwrap_or(0);
        let requested = before.saturating_add(attempt.previous().len());
        if requested > max_redirects {
            return attempt.error(RedirectRefused("too many redirects"));
        }
        let from = attempt
            .previous()
            .last()
            .map(Url::scheme)
            .unwrap_or("https");
        let to = attempt.url().scheme();
        if from == to || (from == "http" && to == "https" && tls) {
            attempt.follow()
        } else if from == "http" && to == "https" {
            let next = attempt.url().clone();
            let recorded = CHAIN.try_with(|chain| {
                *chain
                    .handover
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((next, requested));
            });
            match recorded {
                Ok(()) => attempt.stop(),
                Err(_) => attempt.error(RedirectRefused("redirect to https cannot be followed")),
            }
        } else if from == "https" && to == "http" {
            attempt.error(RedirectRefused("redirect from https to http refused"))
        } else {
            attempt.error(RedirectRefused("redirect to an unsupported scheme refused"))
        }
    })
}

fn config_error(reason: String) -> FetchError {
    FetchError::InvalidUrl {
        url: "(source options)".to_owned(),
        reason,
    }
}

/// [`SourceOptions::extra_headers`] parsed, a later value of a name replacing an earlier
/// one (as `ClientBuilder::default_headers` does).
fn extra_headers(options: &SourceOptions) -> Result<HeaderMap, FetchError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &options.extra_headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| config_error(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| config_error(format!("header value for {name}: {e}")))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The certificates of [`SourceOptions::tls_ca_path`], read when the source is created so
/// that a bad bundle is reported then, not on the first `https` request.
fn extra_roots(options: &SourceOptions) -> Result<Vec<reqwest::Certificate>, FetchError> {
    let Some(path) = &options.tls_ca_path else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|source| FetchError::Io {
        path: path.clone(),
        source,
    })?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| config_error(format!("CA bundle {}: {e}", path.display())))
}

/// Whether the proxy is reached over TLS (then the plain client cannot be used).
fn proxy_needs_tls(options: &SourceOptions) -> bool {
    options.proxy.as_deref().is_some_and(|p| {
        p.trim()
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    })
}

/// Builds a client: with `roots` (the extra CA certificates, possibly none) a TLS client
/// using the platform verifier, which loads the system's CA roots; without, a plain
/// client with an empty root store, for `http` URLs.
fn build_client(
    options: &SourceOptions,
    roots: Option<&[reqwest::Certificate]>,
) -> Result<reqwest::Client, FetchError> {
    // reqwest is built without a crypto provider: rustls uses ring, installed once per
    // process (an error means a provider is installed already, which is as good).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("cfsync/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .pool_max_idle_per_host(options.max_connections_per_host.max(1))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .redirect(redirect_policy(options.max_redirects, roots.is_some()))
        .referer(false)
        .no_proxy();
    if !options.http2 {
        builder = builder.http1_only();
    }
    if let Some(proxy) = &options.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str()).map_err(|e| FetchError::InvalidUrl {
            url: proxy.clone(),
            reason: format!("proxy: {e}"),
        })?;
        builder = builder.proxy(proxy);
    }
    builder = match roots {
        // `tls_certs_only` keeps reqwest from building the platform verifier.
        None => builder.tls_certs_only(Vec::new()),
        Some([]) => builder,
        Some(roots) => builder.tls_certs_merge(roots.iter().cloned()),
    };
    builder
        .build()
        .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))
}

/// A response body as a stream of chunks, with the stall timeout, the size cap, the
/// byte counter and cancellation applied. Ends after its first error.
pub struct BodyStream {
    url: String,
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    stall: Pin<Box<tokio::time::Sleep>>,
    stall_timeout: Duration,
    cancel: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    max_size: u64,
    received: u64,
    content_length: Option<u64>,
    attempts: u32,
    counters: Arc<Counters>,
    permit: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("url", &self.url)
            .field("received", &self.received)
            .field("content_length", &self.content_length)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    /// The URL this body comes from.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `Content-Length` the server declared (already checked against the cap), if
    /// any. Untrusted: the stream may still end early (an error) but never yields more.
    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Body bytes received so far.
    #[must_use]
    pub fn received(&self) -> u64 {
        self.received
    }

    /// An [`AsyncRead`] over the body. Errors come out as `std::io::Error` of kind
    /// `Other` wrapping the [`FetchError`] (get it back with `get_ref()` and
    /// `downcast_ref`).
    #[must_use]
    pub fn into_reader(self) -> BodyReader {
        BodyReader {
            stream: self,
            chunk: Bytes::new(),
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.permit = None;
        self.cancel = None;
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, FetchError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(cancel) = this.cancel.as_mut()
            && cancel.as_mut().poll(cx).is_ready()
        {
            this.finish();
            return Poll::Ready(Some(Err(FetchError::Cancelled)));
        }
        loop {
            return match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                    this.received = this.received.saturating_add(len);
                    this.counters
                        .bytes_received
                        .fetch_add(len, Ordering::Relaxed);
                    if this.received > this.max_size {
                        this.finish();
                        return Poll::Ready(Some(Err(FetchError::TooLarge {
                            url: this.url.clone(),
                            limit: this.max_size,
                        })));
                    }
                    let deadline = tokio::time::Instant::now() + this.stall_timeout;
                    this.stall.as_mut().reset(deadline);
                    if chunk.is_empty() {
                        continue;
                    }
                    Poll::Ready(Some(Ok(chunk)))
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish();
                    Poll::Ready(Some(Err(FetchError::Connect {
                        url: this.url.clone(),
                        attempts: this.attempts,
                        source: Box::new(e.without_url()),
                    })))
                }
                Poll::Ready(None) => {
                    this.finish();
                    Poll::Ready(None)
                }
                Poll::Pending => {
                    if this.stall.as_mut().poll(cx).is_ready() {
                        this.finish();
                        let e = stall_error(&this.url, this.stall_timeout, this.attempts);
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Pending
                }
            };
        }
    }
}

/// [`AsyncRead`] adapter over a [`BodyStream`] (see [`BodyStream::into_reader`]).
#[derive(Debug)]
pub struct BodyReader {
    stream: BodyStream,
    chunk: Bytes,
}

impl AsyncRead for BodyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            match Pin::new(&mut this.stream).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.chunk = chunk,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.remaining().min(this.chunk.len());
        let part = this.chunk.split_to(n);
        buf.put_slice(&part);
        Poll::Ready(Ok(()))
    }
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
    }
}
