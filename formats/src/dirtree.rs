//! Dirtree objects, GVariant type `(a(say)a(sayay))`.
//!
//! | # | type | content |
//! |---|---|---|
//! | 0 | `a(say)` | files: (name, file object checksum, 32 bytes) |
//! | 1 | `a(sayay)` | subdirectories: (name, dirtree checksum, dirmeta checksum) |
//!
//! ostree's writer sorts both lists by name with `strcmp`
//! (`create_tree_variant_from_hashes`, `src/libostree/ostree-repo-commit.c`); its
//! validator (`ostree_validate_structureof_dirtree`, `ostree-core.c`) checks only names
//! and checksum lengths. This parser also requires each list to be strictly sorted (so
//! no duplicates) and no name to appear in both lists, and validates names with
//! [`crate::names::validate_filename`]. The empty dirtree is the single byte `00`.

use crate::checksum::Checksum;
use crate::gvariant::{self, ArrayIter, OwnedValue, Value};
use crate::names;

/// GVariant type string of a dirtree object.
pub const DIRTREE_TYPE: &str = "(a(say)a(sayay))";

/// Errors parsing or building a dirtree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a normal-form dirtree.
    #[error("dirtree: {0}")]
    Variant(#[from] gvariant::Error),
    /// An entry name is invalid.
    #[error("dirtree: {0}")]
    Name(#[from] names::Error),
    /// A checksum has the wrong length.
    #[error("dirtree entry {name:?}: checksum has {len} bytes, expected 32")]
    ChecksumLength {
        /// The entry.
        name: String,
        /// The length found.
        len: usize,
    },
    /// A list is not strictly sorted by name (or has a duplicate).
    #[error("dirtree {list} list is not strictly sorted at {name:?}")]
    Unsorted {
        /// `files` or `dirs`.
        list: &'static str,
        /// The entry out of order.
        name: String,
    },
    /// A name is both a file and a directory.
    #[error("dirtree name {name:?} is both a file and a directory")]
    Duplicate {
        /// The name.
        name: String,
    },
}

fn checksum(v: Value<'_>, name: &str) -> Result<Checksum, Error> {
    let b = v.as_bytes()?;
    Checksum::from_slice(b).map_err(|_| Error::ChecksumLength {
        name: name.to_owned(),
        len: b.len(),
    })
}

fn file_entry<'a>(v: Result<Value<'a>, gvariant::Error>) -> Result<(&'a str, Checksum), Error> {
    let [n, c] = v?.tuple_fields()?;
    let name = n.as_str()?;
    Ok((name, checksum(c, name)?))
}

fn dir_entry<'a>(
    v: Result<Value<'a>, gvariant::Error>,
) -> Result<(&'a str, Checksum, Checksum), Error> {
    let [n, c, m] = v?.tuple_fields()?;
    let name = n.as_str()?;
    Ok((name, checksum(c, name)?, checksum(m, name)?))
}

/// A borrowed, checked dirtree.
#[derive(Debug, Clone)]
pub struct DirTreeRef<'a> {
    data: &'a [u8],
    files: ArrayIter<'a>,
    dirs: ArrayIter<'a>,
}

impl<'a> DirTreeRef<'a> {
    /// Parses and fully validates a serialized dirtree (see the module docs).
    ///
    /// The view borrows `data`; allocation for hostile input is O(input length) at most.
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, Error> {
        let v = Value::from_bytes(data, DIRTREE_TYPE)?;
        let [files, dirs] = v.tuple_fields()?;
        let t = DirTreeRef {
            data,
            files: files.array_iter()?,
            dirs: dirs.array_iter()?,
        };
        t.validate()?;
        Ok(t)
    }

    fn validate(&self) -> Result<(), Error> {
        let mut prev: Option<&str> = None;
        for f in self.files() {
            let (name, _) = f?;
            names::validate_filename(name)?;
            if prev.is_some_and(|p| p >= name) {
                return Err(Error::Unsorted {
                    list: "files",
                    name: name.to_owned(),
                });
            }
            prev = Some(name);
        }
        prev = None;
        let mut files = self.files().peekable();
        for d in self.dirs() {
            let (name, _, _) = d?;
            names::validate_filename(name)?;
            if prev.is_some_and(|p| p >= name) {
                return Err(Error::Unsorted {
                    list: "dirs",
                    name: name.to_owned(),
                });
            }
            prev = Some(name);
            // Merge walk: both lists are sorted.
            while let Some(Ok((f, _))) = files.peek() {
                if *f < name {
                    files.next();
                } else {
                    if *f == name {
                        return Err(Error::Duplicate {
                            name: name.to_owned(),
                        });
                    }
                    break;
                }
            }
        }
        Ok(())
    }

    /// The serialized bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.files.len() == 0 && self.dirs.len() == 0
    }

    /// File entries (regular files and symlinks): (name, file object checksum), sorted.
    pub fn files(&self) -> Files<'a> {
        Files(self.files.clone())
    }

    /// Subdirectory entries: (name, dirtree checksum, dirmeta checksum), sorted.
    pub fn dirs(&self) -> Dirs<'a> {
        Dirs(self.dirs.clone())
    }

    /// Number of file entries.
    pub fn files_len(&self) -> usize {
        self.files.len()
    }

    /// Number of subdirectory entries.
    pub fn dirs_len(&self) -> usize {
        self.dirs.len()
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Result<DirTree, Error> {
        Ok(DirTree {
            files: self
                .files()
                .map(|r| r.map(|(n, c)| (n.to_owned(), c)))
                .collect::<Result<_, _>>()?,
            dirs: self
                .dirs()
                .map(|r| r.map(|(n, c, m)| (n.to_owned(), c, m)))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Iterator over file entries, from [`DirTreeRef::files`].
#[derive(Debug, Clone)]
pub struct Files<'a>(ArrayIter<'a>);

impl<'a> Iterator for Files<'a> {
    type Item = Result<(&'a str, Checksum), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(file_entry)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// Iterator over subdirectory entries, from [`DirTreeRef::dirs`].
#[derive(Debug, Clone)]
pub struct Dirs<'a>(ArrayIter<'a>);

impl<'a> Iterator for Dirs<'a> {
    type Item = Result<(&'a str, Checksum, Checksum), Error>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(dir_entry)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// An owned dirtree, for building trees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirTree {
    /// (name, file object checksum).
    pub files: Vec<(String, Checksum)>,
    /// (name, dirtree checksum, dirmeta checksum).
    pub dirs: Vec<(String, Checksum, Checksum)>,
}

impl DirTree {
    /// Serializes in normal form with both lists sorted by name, as ostree writes them.
    /// Fails on an invalid name, a duplicate within a list or a name in both lists.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut files: Vec<_> = self.files.iter().collect();
        files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut dirs: Vec<_> = self.dirs.iter().collect();
        dirs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let v = OwnedValue::Tuple(vec![
            OwnedValue::array(
                "(say)",
                files
                    .iter()
                    .map(|(n, c)| {
                        OwnedValue::Tuple(vec![OwnedValue::str(n.as_str()), OwnedValue::bytes(c.0)])
                    })
                    .collect(),
            ),
            OwnedValue::array(
                "(sayay)",
                dirs.iter()
                    .map(|(n, c, m)| {
                        OwnedValue::Tuple(vec![
                            OwnedValue::str(n.as_str()),
                            OwnedValue::bytes(c.0),
                            OwnedValue::bytes(m.0),
                        ])
                    })
                    .collect(),
            ),
        ]);
        let b = v.to_bytes()?;
        DirTreeRef::from_bytes(&b)?;
        Ok(b)
    }

    /// The checksum of the serialized dirtree.
    pub fn checksum(&self) -> Result<Checksum, Error> {
        Ok(Checksum::of(&self.to_bytes()?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(files: &[&str], dirs: &[&str]) -> Vec<u8> {
        OwnedValue::Tuple(vec![
            OwnedValue::array(
                "(say)",
                files
                    .iter()
                    .map(|n| {
                        OwnedValue::Tuple(vec![OwnedValue::str(*n), OwnedValue::bytes([1u8; 32])])
                    })
                    .collect(),
            ),
            OwnedValue::array(
                "(sayay)",
                dirs.iter()
                    .map(|n| {
                        OwnedValue::Tuple(vec![
                            OwnedValue::str(*n),
                            OwnedValue::bytes([2u8; 32]),
                            OwnedValue::bytes([3u8; 32]),
                        ])
                    })
                    .collect(),
            ),
        ])
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn empty_dirtree() {
        assert_eq!(DirTree::default().to_bytes().unwrap(), vec![0]);
        assert_eq!(
            DirTree::default().checksum().unwrap(),
            Checksum::EMPTY_DIRTREE
        );
        assert!(DirTreeRef::from_bytes(&[0]).unwrap().is_empty());
    }

    #[test]
    fn validation() {
        let ok = raw(&["a", "b"], &["c", "d"]);
        let t = DirTreeRef::from_bytes(&ok).unwrap();
        assert_eq!(t.files().count(), 2);
        assert_eq!(t.to_owned().unwrap().to_bytes().unwrap(), ok);
        assert!(matches!(
            DirTreeRef::from_bytes(&raw(&["b", "a"], &[])),
            Err(Error::Unsorted { .. })
        ));
        assert!(matches!(
            DirTreeRef::from_bytes(&raw(&["a", "a"], &[])),
            Err(Error::Unsorted { .. })
        ));
        assert!(matches!(
            DirTreeRef::from_bytes(&raw(&[], &["b", "a"])),
            Err(Error::Unsorted { .. })
        ));
        assert!(matches!(
            DirTreeRef::from_bytes(&raw(&["a", "x"], &["b", "x"])),
            Err(Error::Duplicate { .. })
        ));
        for bad in ["", ".", "..", "a/b"] {
            assert!(
                matches!(
                    DirTreeRef::from_bytes(&raw(&[bad], &[])),
                    Err(Error::Name(_))
                ),
                "{bad:?}"
            );
            assert!(
                matches!(
                    DirTreeRef::from_bytes(&raw(&[], &[bad])),
                    Err(Error::Name(_))
                ),
                "{bad:?}"
            );
        }
        let short = OwnedValue::Tuple(vec![
            OwnedValue::array(
                "(say)",
                vec![OwnedValue::Tuple(vec![
                    OwnedValue::str("a"),
                    OwnedValue::bytes([1u8; 31]),
                ])],
            ),
            OwnedValue::array("(sayay)", vec![]),
        ])
        .to_bytes()
        .unwrap();
        assert!(matches!(
            DirTreeRef::from_bytes(&short),
            Err(Error::ChecksumLength { len: 31, .. })
        ));
        // Owned builder sorts.
        let t = DirTree {
            files: vec![
                ("b".into(), Checksum([1; 32])),
                ("a".into(), Checksum([1; 32])),
            ],
            dirs: vec![],
        };
        assert_eq!(t.to_bytes().unwrap(), raw(&["a", "b"], &[]));
    }
}
