//! Local fetcher: an OSTree repository on disk, in any of the `archive`, `bare`,
//! `bare-user` and `bare-user-only` modes (read from `config`, `[core] mode`).
//!
//! Summary, refs, deltas and metadata objects are the same files in every mode and are
//! served by [`LocalSource::get_bytes`] under the same relative paths as over HTTP. File
//! objects differ per mode; `object.rs` turns each into a header plus content
//! ([`LocalSource::open_file_object`]).
//!
//! Every path is resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! relative to the repository directory: `..`, absolute paths and symlinks that leave
//! the repository are refused by the kernel as well as by [`super::validate_path`].
//!
//! All methods do blocking I/O; [`super::Source`] runs them in `spawn_blocking`.

mod object;

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cfsync_formats::checksum::Checksum;
use cfsync_formats::object::RepoMode;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{ChunkStream, Conditional, FetchError, PathKind, SourceStats, validate_path};
use crate::progress::Cancel;

/// Largest `config` file read (the real one is a few lines).
const MAX_CONFIG_SIZE: u64 = 1024 * 1024;
/// Largest ref file read (64 hex digits and a newline, plus slack for whitespace).
const MAX_REF_SIZE: u64 = 4096;
/// Chunk size of [`LocalSource`] streams.
const STREAM_CHUNK: usize = 256 * 1024;

/// A local OSTree repository. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    dir: OwnedFd,
    mode: RepoMode,
    cancel: Option<Cancel>,
    bytes_read: Arc<AtomicU64>,
    opened: AtomicU64,
}

/// How an object file turned out to be stored.
enum Opened {
    /// A regular file, open for reading.
    Regular(File, rustix::fs::Stat),
    /// A symlink (the final component), as an `O_PATH` descriptor.
    Symlink(OwnedFd, rustix::fs::Stat),
}

impl LocalSource {
    /// Opens the repository at `path` and reads its mode from `config`.
    pub fn open(path: &Path, cancel: Option<Cancel>) -> Result<LocalSource, FetchError> {
        let io = |source: std::io::Error| FetchError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(e.into()))?;
        let mut source = LocalSource {
            inner: Arc::new(Inner {
                root: path.to_owned(),
                dir,
                mode: RepoMode::Bare,
                cancel,
                bytes_read: Arc::default(),
                opened: AtomicU64::new(0),
            }),
        };
        let config_path = path.join("config");
        let config = source
            .get_bytes("config", PathKind::Metadata, MAX_CONFIG_SIZE)?
            .ok_or_else(|| FetchError::Corrupt {
                path: path.to_owned(),
                reason: "not an OSTree repository (no config file)".to_owned(),
            })?;
        let mode = parse_core_mode(&config).map_err(|reason| FetchError::Corrupt {
            path: config_path,
            reason,
        })?;
        // `source` has not been shared yet, so this always finds the only reference.
        match Arc::get_mut(&mut source.inner) {
            Some(inner) => inner.mode = mode,
            None => {
                return Err(FetchError::Corrupt {
                    path: path.to_owned(),
                    reason: "repository handle shared while opening".to_owned(),
                });
            }
        }
        Ok(source)
    }

    /// The repository's mode (`core.mode`).
    #[must_use]
    pub fn mode(&self) -> RepoMode {
        self.inner.mode
    }

    /// Counters so far: bytes read through this source and files opened.
    #[must_use]
    pub(crate) fn stats(&self) -> SourceStats {
        SourceStats {
            bytes_received: self.inner.bytes_read.load(Ordering::Relaxed),
            requests: self.inner.opened.load(Ordering::Relaxed),
            refetched: 0,
        }
    }

    /// Reads the file at the repository-relative `path` whole; `Ok(None)` if it does
    /// not exist. A file over `max_size` bytes is [`FetchError::TooLarge`] (checked
    /// before reading, and again while reading in case it grows). `kind` is accepted
    /// for symmetry with HTTP and does not matter on disk.
    pub fn get_bytes(
        &self,
        path: &str,
        kind: PathKind,
        max_size: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let _ = kind;
        let Some((file, len, shown)) = self.open_reader(path, max_size)? else {
            return Ok(None);
        };
        self.read_capped(file, len, max_size, &shown).map(Some)
    }

    /// Opens the regular file at `path` for streaming: the file, its size (at most
    /// `max_size`) and its full path for messages. `Ok(None)` if it does not exist.
    /// Symlinks are followed as long as they stay inside the repository (as a web
    /// server serving the repository would).
    pub(crate) fn open_reader(
        &self,
        path: &str,
        max_size: u64,
    ) -> Result<Option<(File, u64, String)>, FetchError> {
        self.check_cancel()?;
        let Some(opened) = self.open_beneath(path, true)? else {
            return Ok(None);
        };
        let shown = self.shown(path);
        match opened {
            Opened::Regular(file, stat) => {
                let len = u64::try_from(stat.st_size).unwrap_or(0);
                if len > max_size {
                    return Err(FetchError::TooLarge {
                        url: shown,
                        limit: max_size,
                    });
                }
                Ok(Some((file, len, shown)))
            }
            Opened::Symlink(..) => Err(self.corrupt(path, "is a symlink, expected a file")),
        }
    }

    /// A stream of chunks over a file from [`LocalSource::open_reader`], read with
    /// tokio's file I/O (which uses the blocking pool), capped at `len` bytes.
    #[must_use]
    pub(crate) fn chunk_stream(&self, file: File, len: u64, shown: String) -> ChunkStream {
        use tokio::io::AsyncReadExt;
        let counter = Arc::clone(&self.inner.bytes_read);
        let cancel = self.inner.cancel.clone();
        let state = (tokio::fs::File::from_std(file), 0u64, false);
        Box::pin(futures::stream::unfold(
            state,
            move |(mut file, read, done)| {
                let counter = Arc::clone(&counter);
                let cancel = cancel.clone();
                let shown = shown.clone();
                async move {
                    if done {
                        return None;
                    }
                    if cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                        return Some((Err(FetchError::Cancelled), (file, read, true)));
                    }
                    // Read one byte past the size seen at open, to notice growth.
                    let left = len.saturating_add(1).saturating_sub(read);
                    let want = usize::try_from(left)
                        .unwrap_or(STREAM_CHUNK)
                        .min(STREAM_CHUNK);
                    let mut buf = vec![0u8; want];
                    match file.read(&mut buf).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            let n = n as u64;
                            counter.fetch_add(n, Ordering::Relaxed);
                            let read = read.saturating_add(n);
                            if read > len {
                                let e = FetchError::TooLarge {
                                    url: shown,
                                    limit: len,
                                };
                                return Some((Err(e), (file, read, true)));
                            }
                            Some((Ok(Bytes::from(buf)), (file, read, false)))
                        }
                        Err(source) => {
                            let e = FetchError::Io {
                                path: PathBuf::from(shown),
                                source,
                            };
                            Some((Err(e), (file, read, true)))
                        }
                    }
                }
            },
        ))
    }

    /// Conditional read for the summary cache. The validator is an opaque ETag-like
    /// string built from the file's mtime, size and inode: [`Conditional::NotModified`]
    /// when `etag` equals the current one. `last_modified` is ignored.
    pub(crate) fn get_conditional(
        &self,
        path: &str,
        max_size: u64,
        etag: Option<&str>,
    ) -> Result<Conditional, FetchError> {
        let Some((file, len, shown)) = self.open_reader(path, max_size)? else {
            return Ok(Conditional::NotFound);
        };
        let stat = rustix::fs::fstat(&file).map_err(|e| self.io_error(path, e))?;
        let current = format!(
            "\"{}.{:09}-{}-{}\"",
            stat.st_mtime, stat.st_mtime_nsec, stat.st_size, stat.st_ino
        );
        if etag == Some(current.as_str()) {
            return Ok(Conditional::NotModified);
        }
        let body = self.read_capped(file, len, max_size, &shown)?;
        Ok(Conditional::Fetched {
            body,
            etag: Some(current),
            last_modified: None,
        })
    }

    /// Resolves a ref to its commit checksum: `remote:ref` reads
    /// `refs/remotes/<remote>/<ref>`; a plain name reads `refs/heads/<name>`, then
    /// `refs/remotes/<name>` (so `remote/ref` works too). `Ok(None)` if no such ref.
    /// Symlinked refs (local aliases) are followed within the repository.
    pub fn resolve_ref(&self, name: &str) -> Result<Option<Checksum>, FetchError> {
        let candidates = match name.split_once(':') {
            Some((remote, rest)) => vec![format!("refs/remotes/{remote}/{rest}")],
            None => vec![format!("refs/heads/{name}"), format!("refs/remotes/{name}")],
        };
        for path in candidates {
            validate_path(&path)?;
            let opened = match self.open_beneath(&path, true) {
                Ok(Some(Opened::Regular(file, stat))) => Some((file, stat)),
                Ok(_) => None,
                // A directory at that path is a ref prefix, not a ref.
                Err(FetchError::Io { source, .. })
                    if source.raw_os_error() == Some(Errno::ISDIR.raw_os_error()) =>
                {
                    None
                }
                Err(e) => return Err(e),
            };
            let Some((file, stat)) = opened else { continue };
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                continue;
            }
            let len = u64::try_from(stat.st_size).unwrap_or(0);
            let shown = self.shown(&path);
            let body = self.read_capped(file, len.min(MAX_REF_SIZE), MAX_REF_SIZE, &shown)?;
            let text = std::str::from_utf8(&body)
                .map_err(|_| self.corrupt(&path, "ref file is not UTF-8"))?;
            let checksum = text.trim_end().parse::<Checksum>().map_err(|e| {
                self.corrupt(&path, &format!("ref file does not hold a checksum: {e}"))
            })?;
            return Ok(Some(checksum));
        }
        Ok(None)
    }

    /// Opens `path` beneath the repository. `Ok(None)` for a missing file or a missing
    /// directory on the way. With `follow`, a final symlink is followed (within the
    /// repository); without it, a final symlink is returned as [`Opened::Symlink`].
    fn open_beneath(&self, path: &str, follow: bool) -> Result<Option<Opened>, FetchError> {
        validate_path(path)?;
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        self.inner.opened.fetch_add(1, Ordering::Relaxed);
        let fd = match rustix::fs::openat2(&self.inner.dir, path, flags, Mode::empty(), resolve) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            Err(Errno::XDEV) => {
                return Err(FetchError::InvalidPath {
                    path: path.to_owned(),
                    reason: "a symlink leads outside the repository",
                });
            }
            Err(Errno::LOOP) if !follow => {
                let fd = rustix::fs::openat2(
                    &self.inner.dir,
                    path,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    resolve,
                )
                .map_err(|e| self.io_error(path, e))?;
                let stat = rustix::fs::fstat(&fd).map_err(|e| self.io_error(path, e))?;
                if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
                    return Err(self.corrupt(path, "changed while being opened"));
                }
                return Ok(Some(Opened::Symlink(fd, stat)));
            }
            Err(e) => return Err(self.io_error(path, e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| self.io_error(path, e))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Ok(Some(Opened::Regular(File::from(fd), stat))),
            FileType::Directory => Err(self.io_error(path, Errno::ISDIR)),
            _ => Err(self.corrupt(path, "is not a regular file")),
        }
    }

    /// Reads at most `max_size` bytes, failing if the file holds more.
    fn read_capped(
        &self,
        file: File,
        len: u64,
        max_size: u64,
        shown: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        body.try_reserve_exact(usize::try_from(len.min(max_size)).unwrap_or(0))
            .map_err(|_| FetchError::TooLarge {
                url: shown.to_owned(),
                limit: max_size,
            })?;
        file.take(max_size.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|source| FetchError::Io {
                path: PathBuf::from(shown),
                source,
            })?;
        self.inner
            .bytes_read
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        if body.len() as u64 > max_size {
            return Err(FetchError::TooLarge {
                url: shown.to_owned(),
                limit: max_size,
            });
        }
        Ok(body)
    }

    fn check_cancel(&self) -> Result<(), FetchError> {
        if self.inner.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
            return Err(FetchError::Cancelled);
        }
        Ok(())
    }

    /// The file at repository-relative `path`, for messages.
    pub(crate) fn shown(&self, path: &str) -> String {
        self.inner.root.join(path).display().to_string()
    }

    fn io(&self, path: &str, source: std::io::Error) -> FetchError {
        FetchError::Io {
            path: self.inner.root.join(path),
            source,
        }
    }

    fn io_error(&self, path: &str, errno: Errno) -> FetchError {
        self.io(path, errno.into())
    }

    fn corrupt(&self, path: &str, reason: &str) -> FetchError {
        FetchError::Corrupt {
            path: self.inner.root.join(path),
            reason: reason.to_owned(),
        }
    }
}

/// Reads `mode` from the `[core]` group of a GLib key file.
fn parse_core_mode(config: &[u8]) -> Result<RepoMode, String> {
    let text = std::str::from_utf8(config).map_err(|_| "config is not UTF-8".to_owned())?;
    let mut in_core = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_core = line == "[core]";
            continue;
        }
        if !in_core || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "mode"
        {
            return value
                .trim()
                .parse::<RepoMode>()
                .map_err(|e| format!("core.mode: {e}"));
        }
    }
    // libostree's default when the key is absent.
    Ok(RepoMode::Bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_mode_is_read_from_the_core_group() {
        let config = b"[core]\nrepo_version=1\nmode = archive-z2\n\n[remote \"x\"]\nmode=bare\n";
        assert_eq!(parse_core_mode(config), Ok(RepoMode::Archive));
        assert_eq!(
            parse_core_mode(b"[core]\nrepo_version=1\n"),
            Ok(RepoMode::Bare)
        );
        assert!(parse_core_mode(b"[core]\nmode=weird\n").is_err());
    }
}
