//! Commit objects, GVariant type `(a{sv}aya(say)sstayay)`, and tombstones.
//!
//! | # | type | field |
//! |---|---|---|
//! | 0 | `a{sv}` | metadata (see [`crate::metadata`] for keys) |
//! | 1 | `ay` | parent commit checksum: empty (no parent) or 32 bytes |
//! | 2 | `a(say)` | related objects (name, checksum) |
//! | 3 | `s` | subject |
//! | 4 | `s` | body |
//! | 5 | `t` | timestamp, seconds since the epoch, **big-endian** |
//! | 6 | `ay` | root dirtree checksum, 32 bytes |
//! | 7 | `ay` | root dirmeta checksum, 32 bytes |
//!
//! The commit's checksum is the SHA-256 of its serialized bytes. Parsing follows
//! `ostree_validate_structureof_commit` (`src/libostree/ostree-core.c`) and is stricter:
//! normal form, non-empty and unique metadata keys, 32-byte related checksums.
//! Tombstones (`a{sv}` `{"commit": ay}`) are written by `ostree-repo-commit.c`.

use crate::checksum::Checksum;
use crate::gvariant::{self, OwnedValue, Value};
use crate::metadata::{self, Metadata, MetadataRef};

/// GVariant type string of a commit object.
pub const COMMIT_TYPE: &str = "(a{sv}aya(say)sstayay)";

/// Errors parsing or building a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a normal-form commit.
    #[error("commit: {0}")]
    Variant(#[from] gvariant::Error),
    /// The metadata dictionary is invalid, or a key has an unexpected type.
    #[error("commit {0}")]
    Metadata(#[from] metadata::Error),
    /// A checksum field has the wrong length.
    #[error("commit {field} has {len} bytes, expected 32")]
    ChecksumLength {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A tombstone is missing its `commit` key or it is not a NUL-terminated checksum.
    #[error("invalid tombstone-commit object: {0}")]
    Tombstone(&'static str),
}

fn checksum_field(v: Value<'_>, field: &'static str) -> Result<Checksum, Error> {
    let b = v.as_bytes()?;
    Checksum::from_slice(b).map_err(|_| Error::ChecksumLength {
        field,
        len: b.len(),
    })
}

/// A borrowed, checked commit object.
#[derive(Debug, Clone, Copy)]
pub struct CommitRef<'a> {
    data: &'a [u8],
    metadata: MetadataRef<'a>,
    parent: Option<Checksum>,
    related: Value<'a>,
    subject: &'a str,
    body: &'a str,
    timestamp: u64,
    root_contents: Checksum,
    root_metadata: Checksum,
}

impl<'a> CommitRef<'a> {
    /// Parses and checks a serialized commit.
    ///
    /// The view borrows `data`. Allocation for hostile input is O(input length): the
    /// GVariant check keeps only type-tree nodes, and the metadata check a set of borrowed
    /// keys (one per entry).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, Error> {
        let v = Value::from_bytes(data, COMMIT_TYPE)?;
        let [
            meta,
            parent,
            related,
            subject,
            body,
            ts,
            root_tree,
            root_meta,
        ] = v.tuple_fields()?;
        let metadata = MetadataRef::from_value(meta)?;
        let parent_bytes = parent.as_bytes()?;
        let parent = if parent_bytes.is_empty() {
            None
        } else {
            Some(checksum_field(parent, "parent")?)
        };
        for item in related.array_iter()? {
            let [_, c] = item?.tuple_fields()?;
            checksum_field(c, "related object checksum")?;
        }
        Ok(CommitRef {
            data,
            metadata,
            parent,
            related,
            subject: subject.as_str()?,
            body: body.as_str()?,
            timestamp: ts.as_u64_be()?,
            root_contents: checksum_field(root_tree, "root dirtree")?,
            root_metadata: checksum_field(root_meta, "root dirmeta")?,
        })
    }

    /// The serialized bytes (whose SHA-256 is the commit's checksum).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The SHA-256 of the serialized bytes.
    pub fn checksum(&self) -> Checksum {
        Checksum::of(self.data)
    }

    /// The metadata dictionary.
    pub fn metadata(&self) -> MetadataRef<'a> {
        self.metadata
    }

    /// The parent commit, if any.
    pub fn parent(&self) -> Option<Checksum> {
        self.parent
    }

    /// The related objects (name, checksum), historically unused.
    pub fn related(&self) -> impl Iterator<Item = Result<(&'a str, Checksum), Error>> + 'a {
        let it = self.related.array_iter().map_err(Error::from);
        let (err, rest) = match it {
            Ok(it) => (None, Some(it)),
            Err(e) => (Some(Err(e)), None),
        };
        err.into_iter()
            .chain(rest.into_iter().flatten().map(|item| {
                let [n, c] = item?.tuple_fields()?;
                Ok((n.as_str()?, checksum_field(c, "related object checksum")?))
            }))
    }

    /// The subject line.
    pub fn subject(&self) -> &'a str {
        self.subject
    }

    /// The body.
    pub fn body(&self) -> &'a str {
        self.body
    }

    /// Commit time, seconds since the epoch (stored big-endian).
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The root directory's dirtree checksum.
    pub fn root_contents(&self) -> Checksum {
        self.root_contents
    }

    /// The root directory's dirmeta checksum.
    pub fn root_metadata(&self) -> Checksum {
        self.root_metadata
    }

    /// The content checksum shown by `ostree show` (SHA-256 of root dirtree ‖ dirmeta).
    pub fn content_checksum(&self) -> Checksum {
        crate::object::content_checksum(&self.root_contents, &self.root_metadata)
    }

    /// `version` metadata.
    pub fn version(&self) -> Result<Option<&'a str>, Error> {
        Ok(self.metadata.get_str(metadata::VERSION)?)
    }

    /// `ostree.ref-binding` metadata: refs this commit may be pulled through.
    pub fn ref_binding(&self) -> Result<Option<Vec<&'a str>>, Error> {
        Ok(self.metadata.get_strv(metadata::REF_BINDING)?)
    }

    /// `ostree.collection-binding` metadata.
    pub fn collection_binding(&self) -> Result<Option<&'a str>, Error> {
        Ok(self.metadata.get_str(metadata::COLLECTION_BINDING)?)
    }

    /// `ostree.composefs.digest.v0` metadata: fs-verity digest of the composefs image
    /// (must be 32 bytes).
    pub fn composefs_digest(&self) -> Result<Option<[u8; 32]>, Error> {
        match self.metadata.get_bytes(metadata::COMPOSEFS_DIGEST_V0)? {
            None => Ok(None),
            Some(b) => b.try_into().map(Some).map_err(|_| Error::ChecksumLength {
                field: "composefs digest",
                len: b.len(),
            }),
        }
    }

    /// `ostree.endoflife` metadata.
    pub fn endoflife(&self) -> Result<Option<&'a str>, Error> {
        Ok(self.metadata.get_str(metadata::ENDOFLIFE)?)
    }

    /// `ostree.endoflife-rebase` metadata.
    pub fn endoflife_rebase(&self) -> Result<Option<&'a str>, Error> {
        Ok(self.metadata.get_str(metadata::ENDOFLIFE_REBASE)?)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Result<Commit, Error> {
        Ok(Commit {
            metadata: self.metadata.to_owned()?,
            parent: self.parent,
            related: self
                .related()
                .map(|r| r.map(|(n, c)| (n.to_owned(), c)))
                .collect::<Result<_, _>>()?,
            subject: self.subject.to_owned(),
            body: self.body.to_owned(),
            timestamp: self.timestamp,
            root_contents: self.root_contents,
            root_metadata: self.root_metadata,
        })
    }
}

/// An owned commit, for building commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Metadata, in the order it is serialized.
    pub metadata: Metadata,
    /// Parent commit.
    pub parent: Option<Checksum>,
    /// Related objects.
    pub related: Vec<(String, Checksum)>,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Seconds since the epoch.
    pub timestamp: u64,
    /// Root dirtree checksum.
    pub root_contents: Checksum,
    /// Root dirmeta checksum.
    pub root_metadata: Checksum,
}

impl Commit {
    /// Serializes in normal form, as ostree does. Fails if a string contains NUL.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let v = OwnedValue::Tuple(vec![
            self.metadata.to_owned_value(),
            OwnedValue::bytes(self.parent.map(|c| c.0.to_vec()).unwrap_or_default()),
            OwnedValue::array(
                "(say)",
                self.related
                    .iter()
                    .map(|(n, c)| {
                        OwnedValue::Tuple(vec![OwnedValue::str(n.as_str()), OwnedValue::bytes(c.0)])
                    })
                    .collect(),
            ),
            OwnedValue::str(self.subject.as_str()),
            OwnedValue::str(self.body.as_str()),
            OwnedValue::u64_be(self.timestamp),
            OwnedValue::bytes(self.root_contents.0),
            OwnedValue::bytes(self.root_metadata.0),
        ]);
        Ok(v.to_bytes()?)
    }

    /// The checksum of the serialized commit.
    pub fn checksum(&self) -> Result<Checksum, Error> {
        Ok(Checksum::of(&self.to_bytes()?))
    }
}

/// Parses a `tombstone-commit` object: `a{sv}` with key `commit` holding the deleted
/// commit's hex checksum as a NUL-terminated `ay`. Returns that checksum.
///
/// Allocates at most O(input length) (the metadata key check).
pub fn parse_tombstone(data: &[u8]) -> Result<Checksum, Error> {
    let m = MetadataRef::from_bytes(data)?;
    let v = m.get("commit")?.ok_or(Error::Tombstone("no commit key"))?;
    if v.type_str() != "ay" {
        return Err(Error::Tombstone("commit key is not ay"));
    }
    let s = v
        .as_bytestring()
        .map_err(|_| Error::Tombstone("commit is not NUL-terminated"))?;
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Error::Tombstone("commit is not a checksum"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The fixture's v2 commit bytes (docs/ostree-formats.md §10.3), rebuilt.
    fn fixture_commit() -> Commit {
        let mut m = Metadata::new();
        m.insert("version", metadata::Variant::string("2").unwrap())
            .unwrap();
        m.insert(
            "ostree.ref-binding",
            metadata::Variant::strv(&["os/x86_64/stable"]).unwrap(),
        )
        .unwrap();
        Commit {
            metadata: m,
            parent: Some(
                "873654cfb9ba81eed17d2c0f204f4bdebdc5b33669a18cfd36a4e49efc87c73d"
                    .parse()
                    .unwrap(),
            ),
            related: vec![],
            subject: "v2".into(),
            body: String::new(),
            timestamp: 1_748_736_000,
            root_contents: "b7706d86838b579f5214c8cc47a2f470fdc8a5fc3f3ac41e8e7778098804efb2"
                .parse()
                .unwrap(),
            root_metadata: "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488"
                .parse()
                .unwrap(),
        }
    }

    #[test]
    fn layout_matches_fixture_description() {
        let b = fixture_commit().to_bytes().unwrap();
        assert_eq!(b.len(), 182);
        assert_eq!(&b[0x60..0x64], b"v2\0\0");
        assert_eq!(&b[0x68..0x70], &[0, 0, 0, 0, 0x68, 0x3b, 0x98, 0x00]);
        assert_eq!(&b[0xb0..], &[0x90, 0x64, 0x63, 0x60, 0x60, 0x40]);
        let c = CommitRef::from_bytes(&b).unwrap();
        assert_eq!(c.timestamp(), 1_748_736_000);
        assert_eq!(c.version().unwrap(), Some("2"));
        assert_eq!(c.ref_binding().unwrap().unwrap(), vec!["os/x86_64/stable"]);
        assert_eq!(c.subject(), "v2");
        assert!(c.composefs_digest().unwrap().is_none());
        assert_eq!(c.to_owned().unwrap().to_bytes().unwrap(), b);
    }

    #[test]
    fn rejects_bad_checksum_lengths() {
        let mut c = fixture_commit();
        c.parent = None;
        let b = c.to_bytes().unwrap();
        assert!(CommitRef::from_bytes(&b).unwrap().parent().is_none());
        // Hand-build a commit whose parent has 31 bytes.
        let v = OwnedValue::Tuple(vec![
            Metadata::new().to_owned_value(),
            OwnedValue::bytes(vec![1u8; 31]),
            OwnedValue::array("(say)", vec![]),
            OwnedValue::str("s"),
            OwnedValue::str("b"),
            OwnedValue::u64_be(1),
            OwnedValue::bytes([0u8; 32]),
            OwnedValue::bytes([0u8; 32]),
        ]);
        let b = v.to_bytes().unwrap();
        assert!(matches!(
            CommitRef::from_bytes(&b),
            Err(Error::ChecksumLength {
                field: "parent",
                len: 31
            })
        ));
    }

    #[test]
    fn tombstone() {
        let hex = "873654cfb9ba81eed17d2c0f204f4bdebdc5b33669a18cfd36a4e49efc87c73d";
        let mut m = Metadata::new();
        let mut s = hex.as_bytes().to_vec();
        s.push(0);
        m.insert("commit", metadata::Variant::bytes(&s)).unwrap();
        assert_eq!(
            parse_tombstone(&m.to_bytes().unwrap()).unwrap().to_hex(),
            hex
        );
        let mut m = Metadata::new();
        m.insert("commit", metadata::Variant::bytes(hex.as_bytes()))
            .unwrap();
        assert!(parse_tombstone(&m.to_bytes().unwrap()).is_err());
    }
}
