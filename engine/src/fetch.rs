//! Fetching single objects for both routes: metadata objects checked against their
//! names, file objects decoded from `.filez` (or read from a local repository), verified
//! and stored as they stream; a body that arrives damaged is fetched again, fresh
//! ([`crate::refetch`]). The object walk and the delta route's fallback objects
//! both come through [`ObjectSource`], implemented for a [`Source`] by [`SourceObjects`];
//! the commit itself comes through [`fetch_verified`].

use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::FilezReader;
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};
use composefs::fsverity::FsVerityHashValue;
use futures::future::BoxFuture;

use crate::error::PullError;
use crate::ingest::{IngestError, ingest_file};
use crate::limits::MAX_METADATA_OBJECT;
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{FetchError, FileObject, PathKind, Source, is_transient_error};
use crate::store::commit_stream::Entry;

/// Where the object walk (and the delta route, for fallback objects) gets objects the
/// store does not hold.
pub(crate) trait ObjectSource<ObjectID: FsVerityHashValue>: Send + Sync + 'static {
    /// Fetches a metadata object's bytes (unverified; the walker checks them).
    fn fetch_metadata(
        self: Arc<Self>,
        id: Checksum,
        objtype: ObjectType,
    ) -> BoxFuture<'static, Result<Vec<u8>, PullError>>;
    /// Fetches, verifies and stores a file object; returns its commit-table entry.
    fn fetch_file(
        self: Arc<Self>,
        id: Checksum,
    ) -> BoxFuture<'static, Result<Entry<ObjectID>, PullError>>;
    /// How many fetches are worth keeping pending so that the source's request window
    /// stays full (the walk keeps at least its own `concurrency`). Default 0.
    fn wanted_in_flight(&self) -> usize {
        0
    }
}

/// Adapts a [`Source`] to the walker (and to the delta route, for fallback objects).
pub(crate) struct SourceObjects<ObjectID: FsVerityHashValue> {
    pub(crate) source: Arc<Source>,
    pub(crate) repo: Arc<composefs::repository::Repository<ObjectID>>,
}

impl<ObjectID: FsVerityHashValue> ObjectSource<ObjectID> for SourceObjects<ObjectID> {
    fn fetch_metadata(
        self: Arc<Self>,
        id: Checksum,
        objtype: ObjectType,
    ) -> BoxFuture<'static, Result<Vec<u8>, PullError>> {
        Box::pin(async move { fetch_verified(&self.source, &id, objtype).await })
    }

    fn fetch_file(
        self: Arc<Self>,
        id: Checksum,
    ) -> BoxFuture<'static, Result<Entry<ObjectID>, PullError>> {
        Box::pin(async move {
            let path = loose_path(&id, ObjectType::File, RepoMode::Archive);
            let what = format!("file object {id}");
            let named = Named {
                what: &what,
                path: &path,
                kind: PathKind::Content,
            };
            // A body that broke off mid-way cannot be resumed by the source, and one that
            // arrived damaged must not be kept: either is fetched again whole (nothing of
            // it was kept).
            fetch_checked(&self.source, named, |fresh| {
                let source = self.source.fresh(fresh);
                let repo = Arc::clone(&self.repo);
                async move {
                    let obj = open_file(&source, id).await?;
                    fetch_file_once(obj, &repo, id).await
                }
            })
            .await
        })
    }

    fn wanted_in_flight(&self) -> usize {
        self.source.wanted_in_flight()
    }
}

/// `.filez` bodies up to this size are read into memory before decoding; larger ones
/// are decoded as they stream.
const SMALL_FILEZ: u64 = 1024 * 1024;

/// Opens file object `id`. The source has already retried the request until its
/// headers arrived, so its errors are final (retrying them here would multiply the
/// source's attempts).
async fn open_file(source: &Source, id: Checksum) -> Result<FileObject, PullError> {
    source
        .open_file_object(&id, crate::limits::MAX_FILE_SIZE)
        .await?
        .ok_or_else(|| PullError::NotFound {
            what: format!("file object {id}"),
            path: loose_path(&id, ObjectType::File, RepoMode::Archive),
        })
}

/// Reads, verifies and stores an opened file object.
async fn fetch_file_once<ObjectID: FsVerityHashValue>(
    obj: FileObject,
    repo: &Arc<composefs::repository::Repository<ObjectID>>,
    id: Checksum,
) -> Result<Entry<ObjectID>, Failed> {
    let repo = Arc::clone(repo);
    let run = |f: Box<dyn FnOnce() -> Result<Entry<ObjectID>, Failed> + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| PullError::Internal(format!("ingest task failed: {e}")))?
    };
    match obj {
        FileObject::Split { header, content } => {
            run(Box::new(move || {
                ingest_file(&repo, &id, &header, content).map_err(ingest_failed)
            }))
            .await
        }
        FileObject::Filez(body) => {
            let url = body.url().to_owned();
            if body.content_length().is_some_and(|n| n <= SMALL_FILEZ) {
                let mut buf = Vec::new();
                let mut reader = body.into_reader();
                tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut buf)
                    .await
                    .map_err(|e| io_to_pull(e, &url))?;
                run(Box::new(move || {
                    decode_filez(&repo, &id, std::io::Cursor::new(buf), &url)
                }))
                .await
            } else {
                let reader = tokio_util::io::SyncIoBridge::new(body.into_reader());
                run(Box::new(move || decode_filez(&repo, &id, reader, &url))).await
            }
        }
    }
}

/// A body read that failed: a transient fetch error broke it off (fetch again),
/// anything else is final.
fn io_to_pull(e: std::io::Error, url: &str) -> Failed {
    let shown = e.to_string();
    match e.into_inner().map(|inner| inner.downcast::<FetchError>()) {
        Some(Ok(fe)) => Failed::streaming(*fe),
        _ => Failed::Final(PullError::Internal(format!("{url}: {shown}"))),
    }
}

/// Why storing a file object failed: a body that broke off mid-way, a body that does
/// not decode or hash to its name (damaged), or a failure of the store (final).
fn ingest_failed(e: IngestError) -> Failed {
    match e {
        IngestError::Read { ref source, .. } if is_transient_error(source) => {
            Failed::Broken(e.into())
        }
        IngestError::Store { ref source, .. } if source.chain().any(is_transient_error) => {
            Failed::Broken(e.into())
        }
        IngestError::Store { .. } => Failed::Final(e.into()),
        _ => Failed::Damaged(e.into()),
    }
}

/// Decodes a `.filez` body into the store. A decoding error met while the store reads
/// the content is reported as one (the store wraps it as its own failure otherwise).
fn decode_filez<ObjectID: FsVerityHashValue>(
    repo: &composefs::repository::Repository<ObjectID>,
    id: &Checksum,
    raw: impl std::io::Read,
    url: &str,
) -> Result<Entry<ObjectID>, Failed> {
    let reader = FilezReader::new(raw).map_err(|e| match e {
        cfsync_formats::file::Error::Io(io) if is_transient_error(&io) => Failed::Broken(
            FetchError::Connect {
                url: url.to_owned(),
                attempts: 1,
                source: Box::new(io),
            }
            .into(),
        ),
        e => Failed::Damaged(filez_error(id, url, e)),
    })?;
    let header = reader.header().clone();
    let mut watched = Watched {
        inner: reader,
        failed: None,
    };
    let stored = ingest_file(repo, id, &header, &mut watched);
    match (stored, watched.failed) {
        (Ok(entry), _) => Ok(entry),
        (Err(IngestError::Store { source, .. }), Some((kind, shown)))
            if !source.chain().any(is_transient_error) =>
        {
            Err(Failed::Damaged(
                IngestError::Read {
                    id: *id,
                    source: std::io::Error::new(kind, format!("{shown} ({url})")),
                }
                .into(),
            ))
        }
        (Err(e), _) => Err(ingest_failed(e)),
    }
}

/// A decoder whose first read error is kept, to tell a body that does not decode from a
/// failure of the store reading it.
struct Watched<R> {
    inner: R,
    failed: Option<(std::io::ErrorKind, String)>,
}

impl<R: std::io::Read> std::io::Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.failed.is_none() {
                self.failed = Some((e.kind(), e.to_string()));
            }
        })
    }
}

fn filez_error(id: &Checksum, url: &str, e: impl std::fmt::Display) -> PullError {
    PullError::Format {
        id: *id,
        what: "file object",
        error: format!("{e} ({url})"),
    }
}

/// Fetches a metadata object and checks its checksum; a body that does not hash to its
/// name is fetched again, fresh ([`crate::refetch`]).
pub(crate) async fn fetch_verified(
    source: &Source,
    id: &Checksum,
    objtype: ObjectType,
) -> Result<Vec<u8>, PullError> {
    let path = loose_path(id, objtype, RepoMode::Archive);
    let what = format!("{objtype} object {id}");
    let named = Named {
        what: &what,
        path: &path,
        kind: PathKind::Content,
    };
    fetch_checked(source, named, |fresh| {
        let source = source.fresh(fresh);
        let path = path.clone();
        async move {
            let data = get_metadata(&source, id, objtype, path.clone()).await?;
            let actual = Checksum::of(&data);
            if actual != *id {
                return Err(Failed::Damaged(PullError::ChecksumMismatch {
                    object: path,
                    actual,
                }));
            }
            Ok(data)
        }
    })
    .await
}

/// Metadata object `id` at `path` (its loose path), unverified.
async fn get_metadata(
    source: &Source,
    id: &Checksum,
    objtype: ObjectType,
    path: String,
) -> Result<Vec<u8>, PullError> {
    source
        .get_bytes(&path, PathKind::Content, MAX_METADATA_OBJECT)
        .await?
        .ok_or_else(|| PullError::NotFound {
            what: format!("{objtype:?} object {id}"),
            path,
        })
}
