//! OSTree object types, repository modes, object names and loose-object paths.
//!
//! Object type numbers and names follow `OstreeObjectType` and
//! `ostree_object_type_to_string` (`src/libostree/ostree-core.h`, `ostree-core.c`); loose
//! paths follow `_ostree_loose_path` (`objects/XX/REST.<type>[z]`, the `z` only for file
//! objects in `archive` mode); mode names follow `ostree_repo_mode_from_string`
//! (`ostree-repo.c`), which accepts `archive-z2` as an alias of `archive`.

use std::fmt;
use std::str::FromStr;

use crate::checksum::{Checksum, ParseChecksumError};

/// The type of an OSTree object (`OstreeObjectType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ObjectType {
    /// Regular file or symlink: header plus content.
    File = 1,
    /// Directory listing `(a(say)a(sayay))`.
    DirTree = 2,
    /// Directory metadata `(uuua(ayay))`.
    DirMeta = 3,
    /// Commit `(a{sv}aya(say)sstayay)`.
    Commit = 4,
    /// Marker for a deleted commit.
    TombstoneCommit = 5,
    /// Detached commit metadata `a{sv}`.
    CommitMeta = 6,
    /// Bare repos: link named by the content-only checksum.
    PayloadLink = 7,
    /// `bare-split-xattrs`: an xattrs object.
    FileXattrs = 8,
    /// `bare-split-xattrs`: link from a file object to its xattrs object.
    FileXattrsLink = 9,
}

/// Errors parsing object types, modes and names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An object type number outside 1..=9.
    #[error("unknown object type {0}")]
    UnknownType(u8),
    /// An object type name that is not one of ostree's.
    #[error("unknown object type name {0:?}")]
    UnknownTypeName(String),
    /// A repository mode that ostree does not know.
    #[error("unknown repository mode {0:?}")]
    UnknownMode(String),
    /// An object name that is not `<64 hex>.<type>`.
    #[error("invalid object name {name:?}")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// A bad checksum inside an object name.
    #[error("invalid object name: {0}")]
    Checksum(#[from] ParseChecksumError),
}

impl ObjectType {
    /// All object types, in numeric order.
    pub const ALL: [ObjectType; 9] = [
        ObjectType::File,
        ObjectType::DirTree,
        ObjectType::DirMeta,
        ObjectType::Commit,
        ObjectType::TombstoneCommit,
        ObjectType::CommitMeta,
        ObjectType::PayloadLink,
        ObjectType::FileXattrs,
        ObjectType::FileXattrsLink,
    ];

    /// The type with number `v`.
    pub fn from_u8(v: u8) -> Result<Self, Error> {
        ObjectType::ALL
            .iter()
            .copied()
            .find(|t| t.as_u8() == v)
            .ok_or(Error::UnknownType(v))
    }

    /// The type number.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// ostree's name of the type (`ostree_object_type_to_string`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::TombstoneCommit => "tombstone-commit",
            ObjectType::CommitMeta => "commitmeta",
            ObjectType::PayloadLink => "payload-link",
            ObjectType::FileXattrs => "file-xattrs",
            ObjectType::FileXattrsLink => "file-xattrs-link",
        }
    }

    /// The loose-object file suffix in a repository of mode `mode` (without the dot):
    /// `filez` for file objects in archive repositories, the type name otherwise.
    pub fn extension(self, mode: RepoMode) -> &'static str {
        match (self, mode) {
            (ObjectType::File, RepoMode::Archive) => "filez",
            _ => self.as_str(),
        }
    }

    /// Whether this is a metadata type (2..=6, `OSTREE_OBJECT_TYPE_IS_META`).
    pub fn is_meta(self) -> bool {
        (2..=6).contains(&self.as_u8())
    }

    /// Whether this type may appear where a type byte comes from the network
    /// (delta object lists and fallbacks: 1..=4, `ostree_validate_structureof_objtype`).
    pub fn is_transferable(self) -> bool {
        (1..=4).contains(&self.as_u8())
    }

    /// The GVariant type string of metadata objects, `None` for the others.
    pub fn variant_type(self) -> Option<&'static str> {
        match self {
            ObjectType::DirTree => Some("(a(say)a(sayay))"),
            ObjectType::DirMeta => Some("(uuua(ayay))"),
            ObjectType::Commit => Some("(a{sv}aya(say)sstayay)"),
            ObjectType::TombstoneCommit | ObjectType::CommitMeta => Some("a{sv}"),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ObjectType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::UnknownTypeName(s.to_owned()))
    }
}

/// A repository mode (`OstreeRepoMode`, config key `core.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoMode {
    /// Real files with real ownership and xattrs.
    Bare,
    /// Compressed `.filez` objects with archive headers (`archive-z2` in configs).
    Archive,
    /// Regular files; metadata in the `user.ostreemeta` xattr.
    BareUser,
    /// Regular files or symlinks; only mode bits survive.
    BareUserOnly,
    /// Like bare-user, xattrs in separate objects.
    BareSplitXattrs,
}

impl RepoMode {
    /// ostree's spelling (as written by `ostree_repo_mode_to_string`: `archive-z2`).
    pub fn as_config_str(self) -> &'static str {
        match self {
            RepoMode::Archive => "archive-z2",
            other => other.as_str(),
        }
    }

    /// The canonical name (`archive` for archive mode).
    pub fn as_str(self) -> &'static str {
        match self {
            RepoMode::Bare => "bare",
            RepoMode::Archive => "archive",
            RepoMode::BareUser => "bare-user",
            RepoMode::BareUserOnly => "bare-user-only",
            RepoMode::BareSplitXattrs => "bare-split-xattrs",
        }
    }
}

impl fmt::Display for RepoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RepoMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "bare" => RepoMode::Bare,
            "archive" | "archive-z2" => RepoMode::Archive,
            "bare-user" => RepoMode::BareUser,
            "bare-user-only" => RepoMode::BareUserOnly,
            "bare-split-xattrs" => RepoMode::BareSplitXattrs,
            _ => return Err(Error::UnknownMode(s.to_owned())),
        })
    }
}

/// An object's identity: checksum and type (ostree's `(su)` object name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName {
    /// The object's checksum.
    pub checksum: Checksum,
    /// The object's type.
    pub objtype: ObjectType,
}

impl ObjectName {
    /// A name from its parts.
    pub fn new(checksum: Checksum, objtype: ObjectType) -> Self {
        ObjectName { checksum, objtype }
    }

    /// The loose path in a repository of mode `mode`.
    pub fn loose_path(&self, mode: RepoMode) -> String {
        loose_path(&self.checksum, self.objtype, mode)
    }
}

impl fmt::Display for ObjectName {
    /// `<hex>.<type>` (`ostree_object_to_string`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.checksum, self.objtype)
    }
}

impl FromStr for ObjectName {
    type Err = Error;
    /// Parses `<hex>.<type>`.
    /// Allocates nothing on success; an error may hold a copy of `s`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (c, t) = s
            .split_once('.')
            .ok_or_else(|| Error::BadName { name: s.to_owned() })?;
        Ok(ObjectName {
            checksum: c.parse()?,
            objtype: t.parse()?,
        })
    }
}

/// The loose path of an object relative to the repository root:
/// `objects/ab/cdef….<ext>` with the extension from [`ObjectType::extension`].
pub fn loose_path(checksum: &Checksum, objtype: ObjectType, mode: RepoMode) -> String {
    let hex = checksum.to_hex();
    let (head, rest) = hex.split_at(2);
    format!("objects/{head}/{rest}.{}", objtype.extension(mode))
}

/// The path of a local ref: `refs/heads/<ref>`. The ref is not validated here; see
/// [`crate::names::validate_rev`].
pub fn ref_path(ref_name: &str) -> String {
    format!("refs/heads/{ref_name}")
}

/// The path of a mirrored collection ref: `refs/mirrors/<collection-id>/<ref>`.
pub fn mirror_ref_path(collection_id: &str, ref_name: &str) -> String {
    format!("refs/mirrors/{collection_id}/{ref_name}")
}

/// The path of a remote's ref in a local repository: `refs/remotes/<remote>/<ref>`.
pub fn remote_ref_path(remote: &str, ref_name: &str) -> String {
    format!("refs/remotes/{remote}/{ref_name}")
}

/// The content checksum of a commit (informational, shown by `ostree show`): SHA-256 of
/// the root dirtree checksum followed by the root dirmeta checksum, raw bytes
/// (`ostree_commit_get_content_checksum`).
pub fn content_checksum(root_contents: &Checksum, root_metadata: &Checksum) -> Checksum {
    let mut h = crate::checksum::Sha256Writer::new();
    h.update(&root_contents.0);
    h.update(&root_metadata.0);
    h.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names() {
        let c = Checksum::EMPTY_DIRTREE;
        assert_eq!(
            loose_path(&c, ObjectType::DirTree, RepoMode::Archive),
            "objects/6e/340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d.dirtree"
        );
        assert!(loose_path(&c, ObjectType::File, RepoMode::Archive).ends_with(".filez"));
        assert!(loose_path(&c, ObjectType::File, RepoMode::BareUser).ends_with(".file"));
        assert_eq!(ref_path("os/x86_64/stable"), "refs/heads/os/x86_64/stable");
        let n: ObjectName = format!("{c}.tombstone-commit").parse().unwrap();
        assert_eq!(n.objtype, ObjectType::TombstoneCommit);
        assert_eq!(n.to_string(), format!("{c}.tombstone-commit"));
        assert!("abc.commit".parse::<ObjectName>().is_err());
        assert!(format!("{c}.nope").parse::<ObjectName>().is_err());
        for t in ObjectType::ALL {
            assert_eq!(ObjectType::from_u8(t.as_u8()).unwrap(), t);
            assert_eq!(t.as_str().parse::<ObjectType>().unwrap(), t);
        }
        assert!(ObjectType::from_u8(0).is_err());
        assert!(ObjectType::from_u8(10).is_err());
        assert!(ObjectType::Commit.is_meta() && !ObjectType::File.is_meta());
        assert!(!ObjectType::PayloadLink.is_meta());
        assert_eq!("archive-z2".parse::<RepoMode>().unwrap(), RepoMode::Archive);
        assert_eq!(RepoMode::Archive.as_config_str(), "archive-z2");
        assert!("Bare".parse::<RepoMode>().is_err());
        // Fixture commit content checksum (docs §10.3).
        let t: Checksum = "b7706d86838b579f5214c8cc47a2f470fdc8a5fc3f3ac41e8e7778098804efb2"
            .parse()
            .unwrap();
        let m: Checksum = "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
            .parse()
            .unwrap();
        assert_eq!(
            content_checksum(&t, &m).to_hex(),
            "a357aa3651218a52d96ced5a732af5fb9a1699336732ef5fdc4b210eb8f20725"
        );
    }
}
