//! File objects of a local repository: [`LocalSource::open_file_object`] turns the
//! object file of each repository mode into a header plus content
//! (docs/ostree-formats.md §1.4, §1.5; `ostree-repo.c`/`ostree-repo-commit.c` in
//! libostree):
//!
//! | mode | object file | header from |
//! |---|---|---|
//! | `archive` | `.filez` | the archive header, decoded with `FilezReader` |
//! | `bare` | `.file`, a real regular file or symlink | `stat` (mode, uid, gid), `readlink`, all xattrs |
//! | `bare-user` | `.file`, always a regular file; a symlink object holds its target plus a NUL | xattr `user.ostreemeta` = `(uuua(ayay))`, uid/gid/mode big-endian |
//! | `bare-user-only` | `.file`, regular file or symlink | `stat` mode; uid = gid = 0; no xattrs |
//!
//! `bare-split-xattrs` repositories can serve metadata but not file objects.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::file::{FileHeader, FilezReader, parse_ostreemeta};
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};
use cfsync_formats::xattrs::Xattrs;
use rustix::fs::FileType;
use rustix::io::Errno;

use super::{LocalSource, Opened};
use crate::source::{FetchError, FileContent};

/// Longest symlink target accepted (Linux `PATH_MAX`, including the NUL).
const MAX_SYMLINK_TARGET: u64 = 4096;
/// Linux's `XATTR_LIST_MAX` and `XATTR_SIZE_MAX`: buffers this large always suffice.
const XATTR_MAX: usize = 65536;
impl LocalSource {
    /// Opens file object `checksum` as header and content (see the module table);
    /// `Ok(None)` if the repository does not have it. The content reader is blocking
    /// I/O; for an archive repository it inflates as it reads. Nothing is verified here:
    /// the caller hashes header and content against `checksum`.
    pub fn open_file_object(
        &self,
        checksum: &Checksum,
    ) -> Result<Option<(FileHeader, FileContent)>, FetchError> {
        self.check_cancel()?;
        let mode = self.inner.mode;
        let path = loose_path(checksum, ObjectType::File, mode);
        let Some(opened) = self.open_beneath(&path, false)? else {
            return Ok(None);
        };
        let result: Result<(FileHeader, FileContent), FetchError> = match mode {
            RepoMode::Archive => match opened {
                Opened::Regular(file, _) => {
                    let reader = FilezReader::new(self.counting(file))
                        .map_err(|e| self.corrupt(&path, &format!("bad .filez: {e}")))?;
                    let header = reader.header().clone();
                    Ok((header, Box::new(reader) as FileContent))
                }
                Opened::Symlink(..) => Err(self.corrupt(&path, "archive object is a symlink")),
            },
            RepoMode::Bare => match opened {
                Opened::Regular(file, stat) => {
                    let xattrs = read_xattrs_fd(&file).map_err(|e| self.io_error(&path, e))?;
                    let header = regular_header(&stat, stat.st_uid, stat.st_gid, xattrs);
                    Ok((header, Box::new(self.counting(file)) as FileContent))
                }
                Opened::Symlink(fd, stat) => {
                    let target = self.read_link(&fd, &path)?;
                    let full = self.inner.root.join(&path);
                    let xattrs = read_xattrs_link(&full).map_err(|e| self.io_error(&path, e))?;
                    let header = symlink_header(&stat, stat.st_uid, stat.st_gid, target, xattrs);
                    Ok((header, Box::new(std::io::empty()) as FileContent))
                }
            },
            RepoMode::BareUserOnly => match opened {
                Opened::Regular(file, stat) => {
                    let header = regular_header(&stat, 0, 0, Vec::new());
                    Ok((header, Box::new(self.counting(file)) as FileContent))
                }
                Opened::Symlink(fd, stat) => {
                    let target = self.read_link(&fd, &path)?;
                    let header = symlink_header(&stat, 0, 0, target, Vec::new());
                    Ok((header, Box::new(std::io::empty()) as FileContent))
                }
            },
            RepoMode::BareUser => {
                let Opened::Regular(mut file, stat) = opened else {
                    return Err(self.corrupt(&path, "bare-user object is a symlink"));
                };
                let mut buf = vec![0u8; XATTR_MAX];
                let n = match rustix::fs::fgetxattr(&file, "user.ostreemeta", &mut buf[..]) {
                    Ok(n) => n,
                    Err(Errno::NODATA) => {
                        return Err(self.corrupt(&path, "missing xattr user.ostreemeta"));
                    }
                    Err(e) => return Err(self.io_error(&path, e)),
                };
                let meta = buf.get(..n).unwrap_or_default();
                let bad_meta = |e: cfsync_formats::file::Error| {
                    self.corrupt(&path, &format!("bad user.ostreemeta: {e}"))
                };
                let (_, _, st_mode, _) = parse_ostreemeta(meta).map_err(bad_meta)?;
                if FileType::from_raw_mode(st_mode) == FileType::Symlink {
                    // The content is the target followed by one NUL.
                    let mut target = Vec::new();
                    (&mut file)
                        .take(MAX_SYMLINK_TARGET.saturating_add(2))
                        .read_to_end(&mut target)
                        .map_err(|source| self.io(&path, source))?;
                    self.inner
                        .bytes_read
                        .fetch_add(target.len() as u64, Ordering::Relaxed);
                    let header =
                        FileHeader::from_ostreemeta(meta, Some(&target), 0).map_err(bad_meta)?;
                    Ok((header, Box::new(std::io::empty()) as FileContent))
                } else {
                    let size = u64::try_from(stat.st_size).unwrap_or(0);
                    let header = FileHeader::from_ostreemeta(meta, None, size).map_err(bad_meta)?;
                    Ok((header, Box::new(self.counting(file)) as FileContent))
                }
            }
            RepoMode::BareSplitXattrs => Err(FetchError::Corrupt {
                path: self.inner.root.clone(),
                reason: "bare-split-xattrs repositories are not supported as a source".to_owned(),
            }),
        };
        let (header, content) = result?;
        // Headers built from stat are checked like parsed ones: a device node or a
        // mode with stray bits in the object store is corruption, not a file object.
        header
            .validate()
            .map_err(|e| self.corrupt(&path, &format!("invalid file object: {e}")))?;
        Ok(Some((header, content)))
    }

    fn read_link(&self, fd: &OwnedFd, path: &str) -> Result<String, FetchError> {
        let target =
            rustix::fs::readlinkat(fd, "", Vec::new()).map_err(|e| self.io_error(path, e))?;
        let target = target
            .into_string()
            .map_err(|_| self.corrupt(path, "symlink target is not UTF-8"))?;
        if target.is_empty() || target.len() as u64 >= MAX_SYMLINK_TARGET {
            return Err(self.corrupt(path, "symlink target is empty or too long"));
        }
        Ok(target)
    }

    fn counting(&self, file: File) -> CountingReader {
        CountingReader {
            file,
            counter: Arc::clone(&self.inner.bytes_read),
        }
    }
}

/// A file reader that adds what it reads to the source's byte counter.
struct CountingReader {
    file: File,
    counter: Arc<AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn regular_header(stat: &rustix::fs::Stat, uid: u32, gid: u32, xattrs: Xattrs) -> FileHeader {
    FileHeader {
        size: u64::try_from(stat.st_size).unwrap_or(0),
        uid,
        gid,
        mode: stat.st_mode,
        rdev: 0,
        symlink_target: String::new(),
        xattrs,
    }
}

fn symlink_header(
    stat: &rustix::fs::Stat,
    uid: u32,
    gid: u32,
    target: String,
    xattrs: Xattrs,
) -> FileHeader {
    FileHeader {
        size: 0,
        uid,
        gid,
        mode: stat.st_mode,
        rdev: 0,
        symlink_target: target,
        xattrs,
    }
}

/// An xattr name as OSTree stores it: with its trailing NUL.
fn with_nul(name: &[u8]) -> Vec<u8> {
    let mut n = Vec::with_capacity(name.len().saturating_add(1));
    n.extend_from_slice(name);
    n.push(0);
    n
}

/// Splits a NUL-separated xattr name list.
fn split_names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == 0).filter(|n| !n.is_empty())
}

/// All xattrs of an open regular file, sorted by name (names with their NUL).
fn read_xattrs_fd(file: &File) -> Result<Xattrs, Errno> {
    let mut list = vec![0u8; XATTR_MAX];
    let n = rustix::fs::flistxattr(file, &mut list[..])?;
    let mut out = Vec::new();
    let mut value = vec![0u8; XATTR_MAX];
    for name in split_names(list.get(..n).unwrap_or_default()) {
        let len = rustix::fs::fgetxattr(file, OsStr::from_bytes(name), &mut value[..])?;
        out.push((
            with_nul(name),
            value.get(..len).unwrap_or_default().to_vec(),
        ));
    }
    out.sort();
    Ok(out)
}

/// All xattrs of a symlink (not its target), sorted by name (names with their NUL).
fn read_xattrs_link(path: &Path) -> Result<Xattrs, Errno> {
    let mut list = vec![0u8; XATTR_MAX];
    let n = rustix::fs::llistxattr(path, &mut list[..])?;
    let mut out = Vec::new();
    let mut value = vec![0u8; XATTR_MAX];
    for name in split_names(list.get(..n).unwrap_or_default()) {
        let len = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..])?;
        out.push((
            with_nul(name),
            value.get(..len).unwrap_or_default().to_vec(),
        ));
    }
    out.sort();
    Ok(out)
}
