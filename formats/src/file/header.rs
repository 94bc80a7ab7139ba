//! The file header ([`FileHeader`]): parsing, validation and serialization of the bare
//! and archive headers, and the `user.ostreemeta` xattr of `bare-user` objects.

use crate::gvariant::{OwnedValue, Value};
use crate::mode::{PERMISSION_BITS, S_IFLNK, S_IFMT, S_IFREG};
use crate::xattrs::{self, Order, Xattrs};

use super::error::Error;
use super::{ARCHIVE_HEADER_TYPE, BARE_HEADER_TYPE, FILEMETA_TYPE, MAX_SYMLINK_TARGET};

/// A file object's header (the fields of the archive header).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FileHeader {
    /// Uncompressed content size (0 for symlinks; 0 when parsed from a bare header,
    /// which does not carry it).
    pub size: u64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Full mode, including `S_IFREG` or `S_IFLNK`.
    pub mode: u32,
    /// Device number; always 0 for valid objects.
    pub rdev: u32,
    /// Symlink target; empty for regular files.
    pub symlink_target: String,
    /// Xattrs as stored: (name with trailing NUL, value).
    pub xattrs: Xattrs,
}

impl FileHeader {
    /// Whether this is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// Whether this is a regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Checks the rules every valid file object satisfies: regular file or symlink, no
    /// mode bits outside `S_IFMT | 07777`, rdev 0, a non-empty target of at most
    /// [`MAX_SYMLINK_TARGET`] bytes for symlinks and none for regular files, content
    /// size 0 for symlinks, bounded unique xattrs.
    pub fn validate(&self) -> Result<(), Error> {
        let t = self.mode & S_IFMT;
        if (t != S_IFREG && t != S_IFLNK) || self.mode & !(S_IFMT | PERMISSION_BITS) != 0 {
            return Err(Error::Mode { mode: self.mode });
        }
        if self.rdev != 0 {
            return Err(Error::Rdev { rdev: self.rdev });
        }
        if t == S_IFLNK {
            if self.symlink_target.is_empty() {
                return Err(Error::Symlink("empty symlink target"));
            }
            if self.symlink_target.len() > MAX_SYMLINK_TARGET {
                return Err(Error::Symlink("symlink target longer than 4096 bytes"));
            }
            if self.size != 0 {
                return Err(Error::SymlinkSize { size: self.size });
            }
        } else if !self.symlink_target.is_empty() {
            return Err(Error::Symlink("regular file with a symlink target"));
        }
        if self.symlink_target.contains('\0') {
            return Err(Error::Symlink("NUL in symlink target"));
        }
        xattrs::check(
            self.xattrs
                .iter()
                .map(|(n, v)| (n.as_slice(), v.as_slice())),
            Order::Any,
        )?;
        Ok(())
    }

    fn from_fields(size: u64, f: [Value<'_>; 6]) -> Result<Self, Error> {
        let [uid, gid, mode, rdev, target, x] = f;
        let h = FileHeader {
            size,
            uid: uid.as_u32_be()?,
            gid: gid.as_u32_be()?,
            mode: mode.as_u32_be()?,
            rdev: rdev.as_u32_be()?,
            symlink_target: target.as_str()?.to_owned(),
            xattrs: xattrs::to_owned(&xattrs::parse(x, Order::Any)?),
        };
        h.validate()?;
        Ok(h)
    }

    /// Parses and validates a bare header `(uuuusa(ayay))` (no framing). `size` is 0.
    ///
    /// Copies the symlink target and xattrs: allocates O(input length).
    pub fn from_bare_bytes(data: &[u8]) -> Result<Self, Error> {
        let [uid, gid, mode, rdev, t, x] =
            Value::from_bytes(data, BARE_HEADER_TYPE)?.tuple_fields()?;
        Self::from_fields(0, [uid, gid, mode, rdev, t, x])
    }

    /// Parses and validates an archive header `(tuuuusa(ayay))` (no framing).
    ///
    /// Copies the symlink target and xattrs: allocates O(input length). The declared
    /// content `size` is only a number here; nothing is allocated from it.
    pub fn from_archive_bytes(data: &[u8]) -> Result<Self, Error> {
        let [size, uid, gid, mode, rdev, t, x] =
            Value::from_bytes(data, ARCHIVE_HEADER_TYPE)?.tuple_fields()?;
        Self::from_fields(size.as_u64_be()?, [uid, gid, mode, rdev, t, x])
    }

    fn fields(&self, sort: bool) -> Vec<OwnedValue> {
        let x = if sort {
            xattrs::to_value(xattrs::sorted(&self.xattrs).into_iter())
        } else {
            xattrs::to_value(self.xattrs.iter())
        };
        vec![
            OwnedValue::u32_be(self.uid),
            OwnedValue::u32_be(self.gid),
            OwnedValue::u32_be(self.mode),
            OwnedValue::u32_be(self.rdev),
            OwnedValue::str(self.symlink_target.as_str()),
            x,
        ]
    }

    /// The bare header `(uuuusa(ayay))` with xattrs sorted by name, as ostree hashes it.
    pub fn to_bare_bytes(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        Ok(OwnedValue::Tuple(self.fields(true)).to_bytes()?)
    }

    /// The archive header `(tuuuusa(ayay))`, xattrs in the order given.
    pub fn to_archive_bytes(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        let mut f = vec![OwnedValue::u64_be(self.size)];
        f.extend(self.fields(false));
        Ok(OwnedValue::Tuple(f).to_bytes()?)
    }

    /// Builds the header of a `bare-user` object from its `user.ostreemeta` xattr and,
    /// for symlinks, the object file's content (the target followed by one NUL byte).
    /// `content_size` is the object file's size for regular files.
    ///
    /// Allocates O(`meta.len()` + `content.len()`); nothing is allocated from
    /// `content_size`.
    pub fn from_ostreemeta(
        meta: &[u8],
        content: Option<&[u8]>,
        content_size: u64,
    ) -> Result<Self, Error> {
        let (uid, gid, mode, xattrs) = parse_ostreemeta(meta)?;
        let is_link = mode & S_IFMT == S_IFLNK;
        let symlink_target = if is_link {
            let c = content.ok_or(Error::Symlink("symlink object without its target"))?;
            let c = match c.split_last() {
                Some((0, t)) => t,
                _ => {
                    return Err(Error::Symlink(
                        "bare-user symlink content is not NUL-terminated",
                    ));
                }
            };
            std::str::from_utf8(c)
                .map_err(|_| Error::Symlink("symlink target is not UTF-8"))?
                .to_owned()
        } else {
            String::new()
        };
        let h = FileHeader {
            size: if is_link { 0 } else { content_size },
            uid,
            gid,
            mode,
            rdev: 0,
            symlink_target,
            xattrs,
        };
        h.validate()?;
        Ok(h)
    }
}

/// Parses the `user.ostreemeta` xattr of a `bare-user` object, `(uuua(ayay))`:
/// (uid, gid, mode, xattrs), integers big-endian.
///
/// Copies the xattrs: allocates O(input length).
pub fn parse_ostreemeta(data: &[u8]) -> Result<(u32, u32, u32, Xattrs), Error> {
    let [uid, gid, mode, x] = Value::from_bytes(data, FILEMETA_TYPE)?.tuple_fields()?;
    Ok((
        uid.as_u32_be()?,
        gid.as_u32_be()?,
        mode.as_u32_be()?,
        xattrs::to_owned(&xattrs::parse(x, Order::Any)?),
    ))
}
