//! `cfsync checkout REF DIR`: writes a stored commit's tree to a directory, as
//! `ostree checkout` does for an archive repository: every file is a copy (no hard links
//! into the repository), with its mode, symlink target and xattrs, and, as root, its
//! owner. Files get mtime 0, as in the composefs image and OSTree bare repositories.
//! `--user-mode` writes neither owners nor xattrs
//! (`ostree checkout -U`); without it, a non-root user keeps its own ownership.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::commit_stream::{CommitStream, parse_file_entry};
use cfsync_engine::store::{ObjectLookup, Store};
use cfsync_formats::checksum::Checksum;
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;

/// Deepest directory nesting written (libostree's limit).
const MAX_DEPTH: usize = 256;

/// What a checkout wrote.
#[derive(Debug, Default)]
struct Counts {
    dirs: u64,
    files: u64,
    symlinks: u64,
    bytes: u64,
}

struct Writer<'a, O: FsVerityHashValue> {
    store: &'a Store<O>,
    stream: &'a CommitStream<O>,
    owners: bool,
    xattrs: bool,
    counts: Counts,
}

fn set_xattrs_path(path: &Path, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    for (k, v) in xattrs {
        // OSTree stores xattr names NUL-terminated.
        let raw = k.strip_suffix(b"\0").unwrap_or(k);
        let name = std::ffi::OsStr::from_bytes(raw);
        rustix::fs::lsetxattr(path, name, v, rustix::fs::XattrFlags::empty()).with_context(
            || {
                format!(
                    "setting xattr {} on {} (run as root, or pass --user-mode to skip xattrs)",
                    String::from_utf8_lossy(raw),
                    path.display()
                )
            },
        )?;
    }
    Ok(())
}

impl<'a, O: FsVerityHashValue> Writer<'a, O> {
    fn data(&self, id: &Checksum, what: &str) -> Result<&'a [u8]> {
        self.stream
            .lookup(id)
            .map(|(d, _)| d)
            .ok_or_else(|| anyhow!("{what} {id} missing from the commit stream; run `cfsync fsck`"))
    }

    /// Creates `path` (which must not exist) and fills it; its metadata is applied
    /// last so that a read-only directory can be filled.
    fn dir(&mut self, path: &Path, tree: &Checksum, meta: &Checksum, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            bail!("{}: nesting deeper than {MAX_DEPTH}", path.display());
        }
        let m = DirMetaRef::from_bytes(self.data(meta, "dirmeta")?)
            .with_context(|| format!("dirmeta {meta}"))?;
        let (mode, uid, gid, xattrs) = (m.mode(), m.uid(), m.gid(), m.xattrs());
        match fs::create_dir(path) {
            Ok(()) => {}
            // The top directory may exist empty (checked by the caller).
            Err(e) if depth == 0 && e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", path.display()))?;
        self.counts.dirs += 1;
        let dt = DirTreeRef::from_bytes(self.data(tree, "dirtree")?)
            .with_context(|| format!("dirtree {tree}"))?;
        for f in dt.files() {
            let (name, id) = f?;
            self.file(&path.join(name), &id)?;
        }
        for d in dt.dirs() {
            let (name, t, mm) = d?;
            self.dir(&path.join(name), &t, &mm, depth + 1)?;
        }
        if self.owners {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        if self.xattrs {
            set_xattrs_path(path, &xattrs)?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .with_context(|| format!("chmod {}", path.display()))?;
        Ok(())
    }

    fn file(&mut self, path: &Path, id: &Checksum) -> Result<()> {
        let (stored, external) = self.stream.lookup(id).ok_or_else(|| {
            anyhow!("file {id} missing from the commit stream; run `cfsync fsck`")
        })?;
        let (h, inline) = parse_file_entry(stored).with_context(|| format!("file {id}"))?;
        match h.mode & 0o170_000 {
            0o120_000 => {
                std::os::unix::fs::symlink(&h.symlink_target, path)
                    .with_context(|| format!("creating symlink {}", path.display()))?;
                if self.owners {
                    std::os::unix::fs::lchown(path, Some(h.uid), Some(h.gid))
                        .with_context(|| format!("chown {}", path.display()))?;
                }
                if self.xattrs {
                    set_xattrs_path(path, &h.xattrs)?;
                }
                let zero = rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                rustix::fs::utimensat(
                    rustix::fs::CWD,
                    path,
                    &rustix::fs::Timestamps {
                        last_access: zero,
                        last_modification: zero,
                    },
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .with_context(|| format!("setting the mtime of {}", path.display()))?;
                self.counts.symlinks += 1;
            }
            0o100_000 => {
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                match external {
                    None => out.write_all(inline)?,
                    Some(obj) => {
                        let fd = self.store.repo().open_object(obj).with_context(|| {
                            format!("opening the content of {}", path.display())
                        })?;
                        let n = std::io::copy(&mut File::from(fd), &mut out)
                            .with_context(|| format!("writing {}", path.display()))?;
                        if n != h.size {
                            bail!(
                                "{}: content object has {n} bytes, the file header says {}; run `cfsync fsck`",
                                path.display(),
                                h.size
                            );
                        }
                    }
                }
                if self.owners {
                    std::os::unix::fs::fchown(&out, Some(h.uid), Some(h.gid))
                        .with_context(|| format!("chown {}", path.display()))?;
                }
                if self.xattrs {
                    set_xattrs_path(path, &h.xattrs)?;
                }
                out.set_permissions(fs::Permissions::from_mode(h.mode & 0o7777))
                    .with_context(|| format!("chmod {}", path.display()))?;
                out.set_times(fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH))
                    .with_context(|| format!("setting the mtime of {}", path.display()))?;
                self.counts.files += 1;
                self.counts.bytes += h.size;
            }
            other => bail!("file {id}: unsupported file type {other:o}"),
        }
        Ok(())
    }
}

/// `cfsync checkout REF DIR`.
pub(crate) fn checkout<O: FsVerityHashValue>(
    store: &Store<O>,
    name: &str,
    dest: &Path,
    user_mode: bool,
    json: bool,
) -> Result<()> {
    let (commit, stream) = super::resolve::load_named(store, name)?;
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            if fs::read_dir(dest)
                .with_context(|| format!("reading {}", dest.display()))?
                .next()
                .is_some()
            {
                bail!(
                    "{} exists and is not empty; check out into a new or empty directory",
                    dest.display()
                );
            }
        }
        Ok(_) => bail!("{} exists and is not a directory", dest.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", dest.display())),
    }
    let c = super::resolve::stored_commit(&stream, &commit)?;
    let mut w = Writer {
        store,
        stream: &stream,
        owners: !user_mode && rustix::process::geteuid().is_root(),
        xattrs: !user_mode,
        counts: Counts::default(),
    };
    w.dir(dest, &c.root_contents(), &c.root_metadata(), 0)?;
    let n = w.counts;
    if json {
        let v = serde_json::json!({
            "commit": commit.to_hex(),
            "path": dest.display().to_string(),
            "dirs": n.dirs,
            "files": n.files,
            "symlinks": n.symlinks,
            "bytes": n.bytes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "checked out {commit} at {}: {} directories, {} files ({} bytes), {} symlinks",
            dest.display(),
            n.dirs,
            n.files,
            n.bytes,
            n.symlinks
        );
    }
    Ok(())
}
