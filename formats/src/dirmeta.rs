//! Dirmeta objects, GVariant type `(uuua(ayay))`.
//!
//! | # | type | content |
//! |---|---|---|
//! | 0 | `u` | uid, **big-endian** |
//! | 1 | `u` | gid, **big-endian** |
//! | 2 | `u` | mode, **big-endian**; `S_IFDIR` plus permission bits `07777` only |
//! | 3 | `a(ayay)` | xattrs, strictly sorted by name (see [`crate::xattrs`]) |
//!
//! Mirrors `ostree_validate_structureof_dirmeta` and `validate_stat_mode_perms`
//! (`src/libostree/ostree-core.c`). The same type, without the directory requirement,
//! is the `user.ostreemeta` xattr of `bare-user` file objects (see
//! [`crate::file::parse_ostreemeta`]).

use crate::checksum::Checksum;
use crate::gvariant::{self, OwnedValue, Value};
use crate::xattrs::{self, Order, XattrRefs, Xattrs};

/// GVariant type string of a dirmeta object.
pub const DIRMETA_TYPE: &str = "(uuua(ayay))";

pub use crate::mode::{PERMISSION_BITS, S_IFDIR, S_IFMT};

/// Errors parsing or building a dirmeta.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a normal-form dirmeta.
    #[error("dirmeta: {0}")]
    Variant(#[from] gvariant::Error),
    /// The xattrs are invalid.
    #[error("dirmeta {0}")]
    Xattrs(#[from] xattrs::Error),
    /// The mode is not a directory or has bits outside `S_IFMT | 07777`.
    #[error("dirmeta mode {mode:o} is not a valid directory mode")]
    Mode {
        /// The mode found.
        mode: u32,
    },
}

/// A borrowed, checked dirmeta.
#[derive(Debug, Clone)]
pub struct DirMetaRef<'a> {
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: XattrRefs<'a>,
}

/// Parses `(uuua(ayay))` without mode checks.
pub(crate) fn parse_uuua<'a>(
    data: &'a [u8],
    order: Order,
) -> Result<(u32, u32, u32, XattrRefs<'a>), Error> {
    let v = Value::from_bytes(data, DIRMETA_TYPE)?;
    let [uid, gid, mode, x] = v.tuple_fields()?;
    Ok((
        uid.as_u32_be()?,
        gid.as_u32_be()?,
        mode.as_u32_be()?,
        xattrs::parse(x, order)?,
    ))
}

impl<'a> DirMetaRef<'a> {
    /// Parses and checks a serialized dirmeta.
    ///
    /// Allocates one borrowed (name, value) pair per xattr: O(input length), and at most
    /// [`crate::xattrs::MAX_XATTRS`] entries.
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, Error> {
        let (uid, gid, mode, xattrs) = parse_uuua(data, Order::Sorted)?;
        if mode & S_IFMT != S_IFDIR || mode & !(S_IFMT | PERMISSION_BITS) != 0 {
            return Err(Error::Mode { mode });
        }
        Ok(DirMetaRef {
            uid,
            gid,
            mode,
            xattrs,
        })
    }

    /// Owner uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Owner gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Full mode, including `S_IFDIR`.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// Xattrs as stored: (name with trailing NUL, value), sorted by name.
    pub fn xattrs_ref(&self) -> &[(&'a [u8], &'a [u8])] {
        &self.xattrs
    }

    /// An owned copy of the xattrs (names with trailing NUL).
    pub fn xattrs(&self) -> Xattrs {
        xattrs::to_owned(&self.xattrs)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> DirMeta {
        DirMeta {
            uid: self.uid,
            gid: self.gid,
            mode: self.mode,
            xattrs: self.xattrs(),
        }
    }
}

/// An owned dirmeta, for building trees.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirMeta {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Full mode, including `S_IFDIR`.
    pub mode: u32,
    /// (name with trailing NUL, value); serialized sorted by name.
    pub xattrs: Xattrs,
}

impl DirMeta {
    /// Serializes in normal form (xattrs sorted), and checks the result.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let v = OwnedValue::Tuple(vec![
            OwnedValue::u32_be(self.uid),
            OwnedValue::u32_be(self.gid),
            OwnedValue::u32_be(self.mode),
            xattrs::to_value(xattrs::sorted(&self.xattrs).into_iter()),
        ]);
        let b = v.to_bytes()?;
        DirMetaRef::from_bytes(&b)?;
        Ok(b)
    }

    /// The checksum of the serialized dirmeta.
    pub fn checksum(&self) -> Result<Checksum, Error> {
        Ok(Checksum::of(&self.to_bytes()?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixture_dirmeta() {
        // docs/ostree-formats.md §10.4: uid 0, gid 0, mode 040755, no xattrs.
        let b = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0xed];
        let d = DirMetaRef::from_bytes(&b).unwrap();
        assert_eq!((d.uid(), d.gid(), d.mode()), (0, 0, 0o40755));
        assert_eq!(
            Checksum::of(&b).to_hex(),
            "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
        );
        assert_eq!(d.to_owned().to_bytes().unwrap(), b);
    }

    #[test]
    fn rejects_bad_modes() {
        for mode in [0o100644, 0o40755 | 0o10000, 0o755] {
            let d = DirMeta {
                uid: 0,
                gid: 0,
                mode,
                xattrs: vec![],
            };
            assert!(d.to_bytes().is_err(), "{mode:o}");
        }
        let d = DirMeta {
            uid: 1,
            gid: 2,
            mode: 0o41777,
            xattrs: vec![
                (b"user.b\0".to_vec(), b"1".to_vec()),
                (b"user.a\0".to_vec(), vec![]),
            ],
        };
        let b = d.to_bytes().unwrap();
        let r = DirMetaRef::from_bytes(&b).unwrap();
        assert_eq!(r.xattrs_ref().first().unwrap().0, b"user.a\0");
    }
}
