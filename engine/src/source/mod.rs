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
//! [`Source::fresh`] gives a copy whose requests are [`Fresh`]: for a body that arrived
//! whole but damaged, fetched again past caches on a new connection (the engine decides
//! when, in `refetch.rs`).
//!
//! Nothing here parses OSTree metadata, plans, verifies or stores: every byte handed out
//! is untrusted and must pass `cfsync-verify` before use (docs/architecture.md, "fetchers
//! only move bytes"). Paths are always relative to the repository root, use `/`, and are
//! checked by `validate_path` before any request or file access.
//!
//! Which paths live under `url` and which under `contenturl` follows
//! `ostree-repo-pull.c` (docs/ostree-formats.md §8.1); see [`PathKind`].
//!
//! Files: `error.rs` ([`FetchError`]), `options.rs` ([`SourceOptions`]), `path.rs`
//! ([`PathKind`], path checks), `http/` ([`HttpSource`]), `local/` ([`LocalSource`]);
//! this file holds [`Source`], which dispatches to either, and the answers they share.

mod error;
mod http;
mod local;
mod options;
mod path;

use bytes::Bytes;
use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::FileHeader;
use cfsync_formats::mirrorlist;
use futures::Stream;

pub use error::FetchError;
pub(crate) use error::is_transient_error;
pub use http::{BodyReader, BodyStream, HttpSource};
pub use local::LocalSource;
pub use options::SourceOptions;
pub use path::PathKind;
pub(crate) use path::validate_path;

/// Counters for pull statistics, as a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Body bytes received (HTTP: as sent on the wire, i.e. compressed `.filez`; local:
    /// bytes read through this source's readers and buffers).
    pub bytes_received: u64,
    /// Requests made (HTTP: every request including retries and mirror switches, but
    /// not the hops of a followed redirect; local: files opened).
    pub requests: u64,
    /// Bodies fetched again because they arrived damaged (failed their checksum,
    /// decompression, parse or signature), as the engine counted them. Always 0 for a
    /// local source (never refetched).
    pub refetched: u64,
}

/// Whether a request must reach the origin afresh: over HTTP, `Cache-Control:
/// no-cache` and `Pragma: no-cache`, on a new connection (never one from the pool, so not
/// the one that delivered a damaged body), starting from the next mirror. Local sources
/// ignore it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fresh {
    /// An ordinary request: pooled connections, caches allowed.
    #[default]
    No,
    /// A request for a body that arrived damaged before.
    Yes,
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
            || lower.starts_with(mirrorlist::PREFIX)
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

    /// This source with its requests made [`Fresh`] or not: a cheap copy sharing the
    /// connections, mirrors and counters. Every method of the copy honours the flag.
    #[must_use]
    pub fn fresh(&self, fresh: Fresh) -> Source {
        match self {
            Source::Http(h) => Source::Http(h.with_fresh(fresh)),
            Source::Local(l) => Source::Local(l.clone()),
        }
    }

    /// Bodies fetched per file at most, damaged ones included: over HTTP
    /// [`SourceOptions::max_attempts`]; 1 for a local repository, whose corrupt file is
    /// reported at once (reading it again gives the same bytes).
    #[must_use]
    pub(crate) fn body_attempts(&self) -> u32 {
        match self {
            Source::Http(h) => h.max_attempts(),
            Source::Local(_) => 1,
        }
    }

    /// Counts a body fetched again because it arrived damaged ([`SourceStats::refetched`]).
    pub(crate) fn note_refetch(&self) {
        if let Source::Http(h) = self {
            h.note_refetch();
        }
    }

    /// Where `path` is read from, for messages: the URL of the mirror that last
    /// answered (or the mirrorlist), or the file in a local repository.
    #[must_use]
    pub(crate) fn location(&self, path: &str, kind: PathKind) -> String {
        match self {
            Source::Http(h) => h.location(path, kind),
            Source::Local(l) => l.shown(path),
        }
    }

    /// How many requests are worth keeping ready for this source (see
    /// [`HttpSource::wanted_in_flight`]); 0 for a local repository (no window).
    #[must_use]
    pub fn wanted_in_flight(&self) -> usize {
        match self {
            Source::Http(h) => h.wanted_in_flight(),
            Source::Local(_) => 0,
        }
    }

    /// Counters so far (bytes received, requests made, bodies refetched).
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
