//! HTTP(S) fetcher: [`HttpSource`], with retries, mirrors, size caps and a stall
//! timeout.
//!
//! Request mechanics follow libostree's pull (`ostree-repo-pull.c`,
//! `ostree-fetcher-curl.c`; docs/ostree-formats.md §8.1): metadata paths are fetched from
//! `url`, content paths from `contenturl`; either may be `mirrorlist=<URL>`, a text file
//! listing base URLs one per line (`#` comments and blank lines skipped, only `http` and
//! `https` kept). Unlike libostree, mirrors are not probed with `GET config` up front: a
//! request walks the list from the mirror that last answered, and moves to the next one
//! on a transient failure. libostree's metalink is not supported.
//!
//! Retries: at most [`SourceOptions::max_attempts`] requests per file (see `request.rs`).
//! A copy made with [`HttpSource::with_fresh`] sends fresh requests, for a body that
//! arrived whole but damaged: `Cache-Control: no-cache` and `Pragma: no-cache`, through
//! a client that keeps no idle connection (so never the one that delivered the damaged
//! body), starting from the mirror after the one that last answered.
//! Retrying is only possible before any body byte has been handed to the caller:
//! [`HttpSource::get_bytes`] and [`HttpSource::get_conditional`] buffer the body and so
//! also retry a body that breaks or stalls midway; [`HttpSource::get_stream`] retries
//! only until the response headers arrive, after which errors surface from the
//! [`BodyStream`] and the caller decides whether to fetch again (from the start).
//!
//! Files, from the URL to the bytes: `base.rs` (base URLs, mirrorlists, joining paths),
//! `client.rs` (the two `reqwest` clients, TLS), `redirect.rs` (the redirect policy and
//! the hand-over from the plain client to the TLS one), `request.rs` (one request, its
//! classification and the retry loop), `body.rs` (streaming a body under its cap),
//! `scheduler.rs` (how many requests a host gets in flight: the fetch scheduler's
//! decisions, pure) and `gate.rs` (the scheduler at work: slots per host, and the
//! windows remembered between pulls in [`SourceOptions::scheduler_dir`]).

mod base;
mod body;
mod client;
mod gate;
mod redirect;
mod request;
mod scheduler;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};
use reqwest::Url;

use self::base::{Base, MAX_MIRRORLIST_SIZE, join, parse_mirrorlist};
pub use self::body::{BodyReader, BodyStream};
use self::client::Clients;
use self::gate::Gates;
use self::request::{Got, Want};
use super::{Conditional, FetchError, Fresh, PathKind, SourceOptions, SourceStats, validate_path};

/// An HTTP(S) OSTree remote. Cheap to clone (shared client, pool and counters).
#[derive(Debug, Clone)]
pub struct HttpSource {
    inner: Arc<Inner>,
    /// Whether this copy's requests are fresh ([`super::Fresh`]): sent with `no-cache`
    /// headers through a client that keeps no idle connection, from the next mirror.
    fresh: bool,
}

#[derive(Debug)]
struct Inner {
    clients: Clients,
    metadata: Base,
    /// `None` = content comes from the metadata base.
    content: Option<Base>,
    options: SourceOptions,
    counters: Arc<Counters>,
    /// The fetch scheduler's window per `host:port`.
    gates: Gates,
    jitter_seed: AtomicU64,
}

impl Drop for Inner {
    /// Remembers the windows learned, for the next pull (when a directory is set).
    fn drop(&mut self) {
        self.gates.save();
    }
}

/// What a source has moved so far (see [`SourceStats`]).
#[derive(Debug, Default)]
struct Counters {
    bytes_received: AtomicU64,
    requests: AtomicU64,
    refetched: AtomicU64,
}

impl HttpSource {
    /// Creates a source for `url` (`http(s)://…` or `mirrorlist=<URL>`), with
    /// `options.contenturl` as the content base if set. Builds the HTTP client; does no
    /// network I/O (mirrorlists are fetched on first use).
    pub fn new(url: &str, options: SourceOptions) -> Result<HttpSource, FetchError> {
        let metadata = Base::parse(url)?;
        let content = options.contenturl.as_deref().map(Base::parse).transpose()?;
        let clients = Clients::new(&options)?;
        let gates = Gates::new(&options);
        Ok(HttpSource {
            inner: Arc::new(Inner {
                clients,
                metadata,
                content,
                options,
                counters: Arc::default(),
                gates,
                jitter_seed: AtomicU64::new(0),
            }),
            fresh: false,
        })
    }

    /// This source with its requests made fresh or not (see [`super::Fresh`]): a cheap
    /// copy sharing the clients, mirrors and counters.
    #[must_use]
    pub fn with_fresh(&self, fresh: Fresh) -> HttpSource {
        HttpSource {
            inner: Arc::clone(&self.inner),
            fresh: fresh == Fresh::Yes,
        }
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
    pub(crate) async fn get_filez(
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
            refetched: self.inner.counters.refetched.load(Ordering::Relaxed),
        }
    }

    /// How many requests are worth keeping ready for this source: twice the fetch
    /// scheduler's current windows, so that each can fill and grow.
    #[must_use]
    pub fn wanted_in_flight(&self) -> usize {
        self.inner.gates.wanted()
    }

    /// Requests (and so bodies) per file at most: [`SourceOptions::max_attempts`].
    pub(crate) fn max_attempts(&self) -> u32 {
        self.inner.options.max_attempts.max(1)
    }

    /// Counts a body fetched again because it arrived damaged.
    pub(crate) fn note_refetch(&self) {
        self.inner
            .counters
            .refetched
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The URL `path` is fetched from now (the mirror that last answered), or the
    /// mirrorlist it will be fetched through, for messages.
    pub(crate) fn location(&self, path: &str, kind: PathKind) -> String {
        let base = match kind {
            PathKind::Content => self.inner.content.as_ref().unwrap_or(&self.inner.metadata),
            PathKind::Metadata => &self.inner.metadata,
        };
        match base.urls.get() {
            Some(urls) if !urls.is_empty() => {
                let i = base.preferred.load(Ordering::Relaxed) % urls.len();
                urls.get(i)
                    .map_or_else(String::new, |u| join(u, path).to_string())
            }
            _ => format!("{path} through {}", base.describe().join(", ")),
        }
    }

    /// The base URLs content is currently fetched from (the mirror list once resolved),
    /// for messages and diagnostics.
    #[must_use]
    pub fn content_bases(&self) -> Vec<String> {
        let base = self.inner.content.as_ref().unwrap_or(&self.inner.metadata);
        base.describe()
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
                    .run(
                        &single,
                        &preferred,
                        None,
                        MAX_MIRRORLIST_SIZE,
                        Want::Body,
                        false,
                    )
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
        self.run(
            urls,
            &base.preferred,
            Some(path),
            max_size,
            want,
            self.fresh,
        )
        .await
    }
}
