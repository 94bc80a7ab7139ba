//! Fetching single objects for both routes: metadata objects checked against their
//! names, file objects decoded from `.filez` (or read from a local repository), verified
//! and stored as they stream. The object walk and the delta route's fallback objects
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
use crate::source::{FetchError, FileObject, PathKind, Source};
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
        Box::pin(async move {
            let path = loose_path(&id, objtype, RepoMode::Archive);
            get_metadata(&self.source, &id, objtype, path).await
        })
    }

    fn fetch_file(
        self: Arc<Self>,
        id: Checksum,
    ) -> BoxFuture<'static, Result<Entry<ObjectID>, PullError>> {
        Box::pin(async move {
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let obj = open_file(&self.source, id).await?;
                match fetch_file_once(obj, &self.repo, id).await {
                    // A body that broke mid-way cannot be resumed by the source: fetch the
                    // object again (nothing of it was kept).
                    Err(PullError::Fetch(e)) if e.is_transient() && attempt < FILE_ATTEMPTS => {
                        tracing::debug!("file object {id}: retrying after {e}");
                    }
                    Err(PullError::Ingest(IngestError::Read { source, .. }))
                        if attempt < FILE_ATTEMPTS
                            && source
                                .get_ref()
                                .and_then(|e| e.downcast_ref::<FetchError>())
                                .is_some_and(FetchError::is_transient) =>
                    {
                        tracing::debug!("file object {id}: retrying after {source}");
                    }
                    // A large body decoded as it streams breaks inside the composefs
                    // store's read, which wraps the error.
                    Err(PullError::Ingest(IngestError::Store { source, .. }))
                        if attempt < FILE_ATTEMPTS
                            && source.chain().any(crate::source::is_transient_error) =>
                    {
                        tracing::debug!("file object {id}: retrying after {source:#}");
                    }
                    other => return other,
                }
            }
        })
    }
}

/// Attempts per file object when its body breaks off mid-way.
const FILE_ATTEMPTS: u32 = 3;
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
) -> Result<Entry<ObjectID>, PullError> {
    let repo = Arc::clone(repo);
    let run = |f: Box<dyn FnOnce() -> Result<Entry<ObjectID>, PullError> + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| PullError::Internal(format!("ingest task failed: {e}")))?
    };
    match obj {
        FileObject::Split { header, content } => {
            run(Box::new(move || {
                Ok(ingest_file(&repo, &id, &header, content)?)
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

fn io_to_pull(e: std::io::Error, url: &str) -> PullError {
    let shown = e.to_string();
    match e.into_inner().map(|inner| inner.downcast::<FetchError>()) {
        Some(Ok(fe)) => PullError::Fetch(*fe),
        _ => PullError::Internal(format!("{url}: {shown}")),
    }
}

fn decode_filez<ObjectID: FsVerityHashValue>(
    repo: &composefs::repository::Repository<ObjectID>,
    id: &Checksum,
    raw: impl std::io::Read,
    url: &str,
) -> Result<Entry<ObjectID>, PullError> {
    let reader = FilezReader::new(raw).map_err(|e| filez_error(id, url, e))?;
    let header = reader.header().clone();
    let entry = ingest_file(repo, id, &header, reader)?;
    Ok(entry)
}

fn filez_error(id: &Checksum, url: &str, e: impl std::fmt::Display) -> PullError {
    PullError::Format {
        id: *id,
        what: "file object",
        error: format!("{e} ({url})"),
    }
}

/// Fetches a metadata object and checks its checksum.
pub(crate) async fn fetch_verified(
    source: &Source,
    id: &Checksum,
    objtype: ObjectType,
) -> Result<Vec<u8>, PullError> {
    let path = loose_path(id, objtype, RepoMode::Archive);
    let data = get_metadata(source, id, objtype, path.clone()).await?;
    let actual = Checksum::of(&data);
    if actual != *id {
        return Err(PullError::ChecksumMismatch {
            object: path,
            actual,
        });
    }
    Ok(data)
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
