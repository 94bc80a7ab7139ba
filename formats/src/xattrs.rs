//! Extended attributes as OSTree stores them, GVariant type `a(ayay)`.
//!
//! Each entry is (name, value). The name is a GLib "bytestring": the attribute name
//! followed by **one NUL byte** (`g_variant_new_bytestring`); the value is raw bytes.
//! ostree sorts entries by name (strcmp) in dirmeta objects and, since 2025, before
//! hashing file headers (`_ostree_canonicalize_xattrs`, `src/libostree/ostree-core.c`);
//! archive headers keep the order they were written in. The [`Xattrs`] type used across
//! this crate keeps names exactly as stored, i.e. **with** the trailing NUL; use
//! [`name_without_nul`] for the attribute name itself.
//!
//! Limits enforced here (ostree has none): at most [`MAX_XATTRS`] entries, names of at
//! most [`MAX_NAME_LEN`] bytes (Linux `XATTR_NAME_MAX`), values of at most
//! [`MAX_VALUE_LEN`] bytes (`XATTR_SIZE_MAX`), no empty or repeated names.

use crate::gvariant::{self, OwnedValue, Value};

/// Owned xattrs: (name including its trailing NUL, value).
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Borrowed xattrs: (name including its trailing NUL, value).
pub type XattrRefs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// GVariant type string of an xattr list.
pub const XATTRS_TYPE: &str = "a(ayay)";

/// Most entries accepted in one xattr list.
pub const MAX_XATTRS: usize = 4096;
/// Longest attribute name accepted, without the NUL.
pub const MAX_NAME_LEN: usize = 255;
/// Longest attribute value accepted.
pub const MAX_VALUE_LEN: usize = 65536;

/// A rejected xattr list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The list is not a normal-form `a(ayay)`.
    #[error("xattrs: {0}")]
    Variant(#[from] gvariant::Error),
    /// More than [`MAX_XATTRS`] entries.
    #[error("{0} xattrs, at most {MAX_XATTRS} allowed")]
    TooMany(usize),
    /// A name is empty, not NUL-terminated exactly once, or too long.
    #[error("xattr {index}: invalid name: {why}")]
    BadName {
        /// Index of the entry.
        index: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// A value is longer than [`MAX_VALUE_LEN`].
    #[error("xattr {index}: value of {len} bytes, at most {MAX_VALUE_LEN} allowed")]
    ValueTooLong {
        /// Index of the entry.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// Entries are not strictly sorted by name, or a name repeats.
    #[error("xattr {index}: {why}")]
    Order {
        /// Index of the entry.
        index: usize,
        /// What is wrong.
        why: &'static str,
    },
}

/// The attribute name without the trailing NUL (`None` if `raw` does not end in NUL).
pub fn name_without_nul(raw: &[u8]) -> Option<&[u8]> {
    match raw.split_last() {
        Some((0, name)) => Some(name),
        _ => None,
    }
}

/// Whether the list must be sorted, or only free of repeated names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Sorted,
    Any,
}

fn check_entry(index: usize, name: &[u8], value: &[u8]) -> Result<(), Error> {
    let bad = |why| Error::BadName { index, why };
    let n = name_without_nul(name).ok_or_else(|| bad("not NUL-terminated"))?;
    if n.is_empty() {
        return Err(bad("empty"));
    }
    if n.contains(&0) {
        return Err(bad("interior NUL"));
    }
    if n.len() > MAX_NAME_LEN {
        return Err(bad("longer than 255 bytes"));
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLong {
            index,
            len: value.len(),
        });
    }
    Ok(())
}

/// Checks a list of (raw name, value) pairs.
pub(crate) fn check<'x>(
    entries: impl ExactSizeIterator<Item = (&'x [u8], &'x [u8])>,
    order: Order,
) -> Result<(), Error> {
    if entries.len() > MAX_XATTRS {
        return Err(Error::TooMany(entries.len()));
    }
    let mut names: Vec<&[u8]> = Vec::with_capacity(entries.len());
    for (index, (n, v)) in entries.enumerate() {
        check_entry(index, n, v)?;
        if order == Order::Sorted && names.last().is_some_and(|p| *p >= n) {
            return Err(Error::Order {
                index,
                why: "not strictly sorted by name",
            });
        }
        names.push(n);
    }
    if order == Order::Any {
        names.sort_unstable();
        if let Some(index) = names.windows(2).position(|w| w.first() == w.get(1)) {
            return Err(Error::Order {
                index,
                why: "name repeats",
            });
        }
    }
    Ok(())
}

/// Parses and checks an `a(ayay)` value, returning borrowed (raw name, value) pairs.
pub(crate) fn parse<'a>(v: Value<'a>, order: Order) -> Result<XattrRefs<'a>, Error> {
    let it = v.array_iter()?;
    if it.len() > MAX_XATTRS {
        return Err(Error::TooMany(it.len()));
    }
    let mut out = Vec::with_capacity(it.len());
    for e in it {
        let [n, val] = e?.tuple_fields()?;
        out.push((n.as_bytes()?, val.as_bytes()?));
    }
    check(out.iter().copied(), order)?;
    Ok(out)
}

/// Copies borrowed pairs into an owned list.
pub(crate) fn to_owned(x: &[(&[u8], &[u8])]) -> Xattrs {
    x.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

/// The writer value of an xattr list, in the given order.
pub(crate) fn to_value<'x>(x: impl Iterator<Item = &'x (Vec<u8>, Vec<u8>)>) -> OwnedValue {
    OwnedValue::array(
        "(ayay)",
        x.map(|(n, v)| {
            OwnedValue::Tuple(vec![
                OwnedValue::bytes(n.clone()),
                OwnedValue::bytes(v.clone()),
            ])
        })
        .collect(),
    )
}

/// The entries sorted by raw name (ostree's canonical order).
pub fn sorted(x: &[(Vec<u8>, Vec<u8>)]) -> Vec<&(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = x.iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn list(names: &[&[u8]]) -> Vec<u8> {
        let x: Xattrs = names.iter().map(|n| (n.to_vec(), b"v".to_vec())).collect();
        to_value(x.iter()).to_bytes().unwrap()
    }

    fn p(b: &[u8], o: Order) -> Result<usize, Error> {
        parse(Value::from_bytes(b, XATTRS_TYPE).unwrap(), o).map(|v| v.len())
    }

    #[test]
    fn rules() {
        assert_eq!(
            p(&list(&[b"user.a\0", b"user.b\0"]), Order::Sorted).unwrap(),
            2
        );
        assert!(p(&list(&[b"user.b\0", b"user.a\0"]), Order::Sorted).is_err());
        assert_eq!(
            p(&list(&[b"user.b\0", b"user.a\0"]), Order::Any).unwrap(),
            2
        );
        assert!(p(&list(&[b"user.a\0", b"user.a\0"]), Order::Any).is_err());
        assert!(p(&list(&[b"user.a"]), Order::Any).is_err());
        assert!(p(&list(&[b"\0"]), Order::Any).is_err());
        assert!(p(&list(&[b"a\0b\0"]), Order::Any).is_err());
        let long = [vec![b'x'; 256], vec![0]].concat();
        assert!(p(&list(&[&long]), Order::Any).is_err());
        assert_eq!(name_without_nul(b"user.a\0"), Some(&b"user.a"[..]));
    }
}
