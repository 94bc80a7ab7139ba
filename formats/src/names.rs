//! Validation of names that come from the network: refs, remote names, refspecs,
//! collection IDs, checksum strings and directory-entry file names.
//!
//! Mirrors `ostree_validate_rev`, `ostree_validate_remote_name`, `ostree_parse_refspec`,
//! `ostree_validate_collection_id` and `ostree_validate_structureof_checksum_string`
//! (`src/libostree/ostree-core.c`) and `ot_util_filename_validate`
//! (`src/libotutil/ot-unix-utils.c`). Ref components follow the GRegex
//! `[\w\d][-._\w\d]*`, which is Unicode-aware; here `\w` is a Unicode alphanumeric
//! character (Rust's `char::is_alphanumeric`) or `_`. File names are checked more
//! strictly than ostree does (also non-empty and at most [`MAX_FILENAME_LEN`] bytes).

use crate::checksum::Checksum;

/// Longest directory-entry name accepted, in bytes (Linux `NAME_MAX`).
pub const MAX_FILENAME_LEN: usize = 255;

/// Longest ref name accepted, in bytes (ostree has no limit; refs are paths on disk).
pub const MAX_REF_LEN: usize = 4096;

/// Longest collection ID (D-Bus name limit).
pub const MAX_COLLECTION_ID_LEN: usize = 255;

/// A rejected name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a valid ref name.
    #[error("invalid ref name {name:?}: {why}")]
    Ref {
        /// The name.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Not a valid remote name.
    #[error("invalid remote name {name:?}")]
    Remote {
        /// The name.
        name: String,
    },
    /// Not a valid collection ID.
    #[error("invalid collection id {id:?}: {why}")]
    CollectionId {
        /// The ID.
        id: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Not a valid checksum string.
    #[error("invalid checksum string {s:?}")]
    Checksum {
        /// The string.
        s: String,
    },
    /// Not a valid directory-entry name.
    #[error("invalid file name {name:?}: {why}")]
    FileName {
        /// The name (lossily decoded).
        name: String,
        /// What is wrong.
        why: &'static str,
    },
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One ref component: `[\w\d][-._\w\d]*`.
fn is_component(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_word(c) => chars.all(|c| is_word(c) || matches!(c, '-' | '.')),
        _ => false,
    }
}

/// Validates a ref name: one or more components separated by `/`
/// (`^(?:F/)*F$`, `F = [\w\d][-._\w\d]*`).
///
/// Allocates nothing on success; an error holds a copy of the input (O(input length)).
pub fn validate_rev(name: &str) -> Result<(), Error> {
    let err = |why| Error::Ref {
        name: name.to_owned(),
        why,
    };
    if name.is_empty() {
        return Err(err("empty"));
    }
    if name.len() > MAX_REF_LEN {
        return Err(err("too long"));
    }
    if !name.split('/').all(is_component) {
        return Err(err(
            "each /-separated component must start with a letter, digit or _ and contain only those and -._",
        ));
    }
    Ok(())
}

/// Validates a ref name that is about to be written: [`validate_rev`], and not itself a
/// 64-hex checksum (ostree refuses such refs in `write_checksum_file_at`).
///
/// Allocates nothing on success; an error holds a copy of the input (O(input length)).
pub fn validate_rev_for_write(name: &str) -> Result<(), Error> {
    validate_rev(name)?;
    if name.parse::<Checksum>().is_ok() {
        return Err(Error::Ref {
            name: name.to_owned(),
            why: "a ref may not be a checksum",
        });
    }
    Ok(())
}

/// Validates a remote name: a single ref component.
///
/// Allocates nothing on success; an error holds a copy of the input (O(input length)).
pub fn validate_remote_name(name: &str) -> Result<(), Error> {
    if is_component(name) && name.len() <= MAX_REF_LEN {
        Ok(())
    } else {
        Err(Error::Remote {
            name: name.to_owned(),
        })
    }
}

/// Splits a refspec `[REMOTE:]REF` and validates both parts.
///
/// Allocates nothing on success; an error holds a copy of the input (O(input length)).
pub fn parse_refspec(spec: &str) -> Result<(Option<&str>, &str), Error> {
    match spec.split_once(':') {
        Some((remote, r)) => {
            validate_remote_name(remote)?;
            validate_rev(r)?;
            Ok((Some(remote), r))
        }
        None => {
            validate_rev(spec)?;
            Ok((None, spec))
        }
    }
}

/// Validates a collection ID with D-Bus interface-name rules: at least two
/// `.`-separated elements, each `[A-Za-z_][A-Za-z0-9_]*`, at most 255 bytes.
///
/// Allocates nothing on success; an error holds a copy of the input (O(input length)).
pub fn validate_collection_id(id: &str) -> Result<(), Error> {
    let err = |why| Error::CollectionId {
        id: id.to_owned(),
        why,
    };
    if id.is_empty() {
        return Err(err("empty"));
    }
    if id.len() > MAX_COLLECTION_ID_LEN {
        return Err(err("longer than 255 bytes"));
    }
    let mut n = 0usize;
    for el in id.split('.') {
        let mut b = el.bytes();
        match b.next() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
            _ => return Err(err("each element must start with a letter or _")),
        }
        if !b.all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(err("elements may contain only A-Z, a-z, 0-9 and _"));
        }
        n = n.saturating_add(1);
    }
    if n < 2 {
        return Err(err("needs at least two elements"));
    }
    Ok(())
}

/// Validates a checksum string: exactly 64 lowercase hex characters.
///
/// Allocates nothing on success; an error holds a copy of the input (O(input length)).
pub fn validate_checksum_string(s: &str) -> Result<Checksum, Error> {
    s.parse().map_err(|_| Error::Checksum { s: s.to_owned() })
}

/// Validates the name of a directory entry in a dirtree: not empty, not `.` or `..`,
/// no `/`, no NUL, valid UTF-8 (implied by `&str`), at most [`MAX_FILENAME_LEN`] bytes.
///
/// Allocates nothing on success; an error holds a copy of the input (O(input length)).
pub fn validate_filename(name: &str) -> Result<(), Error> {
    let err = |why| Error::FileName {
        name: name.to_owned(),
        why,
    };
    if name.is_empty() {
        return Err(err("empty"));
    }
    if name == "." || name == ".." {
        return Err(err("is . or .."));
    }
    if name.contains('/') {
        return Err(err("contains /"));
    }
    if name.contains('\0') {
        return Err(err("contains NUL"));
    }
    if name.len() > MAX_FILENAME_LEN {
        return Err(err("longer than 255 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        for ok in [
            "os/x86_64/stable",
            "a",
            "a..b",
            "é/ü",
            "Ⅳ",
            "٣x",
            "_x",
            "1.0-rc_1",
        ] {
            assert!(validate_rev(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "-a", ".a", "a/.b", "a b", "a:b", "a\0", "a/-",
        ] {
            assert!(validate_rev(bad).is_err(), "{bad:?}");
        }
        let hex = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
        assert!(validate_rev(hex).is_ok());
        assert!(validate_rev_for_write(hex).is_err());
        assert!(validate_remote_name("origin").is_ok());
        assert!(validate_remote_name("a/b").is_err());
        assert_eq!(
            parse_refspec("origin:os/x").ok(),
            Some((Some("origin"), "os/x"))
        );
        assert_eq!(parse_refspec("os/x").ok(), Some((None, "os/x")));
        assert!(parse_refspec("origin:").is_err());
    }

    #[test]
    fn collection_ids() {
        assert!(validate_collection_id("org.example.Os").is_ok());
        assert!(validate_collection_id("_a._b1").is_ok());
        for bad in ["", "org", "org.", ".org", "org.1a", "org.ex-ample", "a..b"] {
            assert!(validate_collection_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_collection_id(&format!("a.{}", "b".repeat(254))).is_err());
    }

    #[test]
    fn filenames() {
        assert!(validate_filename("ok.txt").is_ok());
        assert!(validate_filename("ünïcödé").is_ok());
        assert!(validate_filename(&"x".repeat(255)).is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(validate_filename(bad).is_err(), "{bad:?}");
        }
        assert!(validate_filename(&"x".repeat(256)).is_err());
        assert!(validate_checksum_string("ABC").is_err());
    }
}
