//! Static-delta names and the repository paths derived from them.
//!
//! A delta is named in hex: `<from>-<to>`, or `<to>` for a delta from scratch
//! (`_ostree_parse_delta_name` in `src/libostree/ostree-core.c`). Its files live under a
//! directory spelled with OSTree's modified base64 (standard base64, `/` written `_`, no
//! `=`; see [`Checksum::to_modified_base64`]), split after two characters
//! (`static_delta_path_base`, `_ostree_get_relative_static_delta_*_path`):
//!
//! ```text
//! from scratch : deltas/<B(to)[0:2]>/<B(to)[2:]>
//! from → to    : deltas/<B(from)[0:2]>/<B(from)[2:]>-<B(to)>
//! superblock   : <dir>/superblock
//! part i       : <dir>/<i>            (decimal, no padding; also the inline-part key)
//! commitmeta   : <dir>/commitmeta     (a superblock metadata key, never a file)
//! delta index  : delta-indexes/<B(to)[0:2]>/<B(to)[2:]>.index
//! ```

use std::fmt;
use std::str::FromStr;

use crate::checksum::{Checksum, ParseChecksumError};

/// A delta name or delta path that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaNameError {
    /// A checksum in a hex delta name is invalid.
    #[error("invalid delta name {name:?}: {source}")]
    Checksum {
        /// The rejected name.
        name: String,
        /// What is wrong with the checksum.
        #[source]
        source: ParseChecksumError,
    },
    /// A delta directory path does not have the `deltas/XX/REST[-TO]` form.
    #[error("invalid static delta path {0:?}")]
    Path(String),
}

/// A static delta's identity: an optional source commit and the target commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeltaName {
    /// The commit the delta starts from, `None` for a delta from scratch.
    pub from: Option<Checksum>,
    /// The commit the delta produces.
    pub to: Checksum,
}

/// `deltas/` or `delta-indexes/` + `XX/REST` of a modified-base64 checksum.
fn split_b64(out: &mut String, c: &Checksum) {
    let b = c.to_modified_base64();
    let (head, tail) = b.split_at(b.char_indices().nth(2).map_or(b.len(), |(i, _)| i));
    out.push_str(head);
    out.push('/');
    out.push_str(tail);
}

impl DeltaName {
    /// A delta from `from` (or from scratch when `None`) to `to`.
    pub fn new(from: Option<Checksum>, to: Checksum) -> Self {
        DeltaName { from, to }
    }

    /// Whether this is a delta from scratch.
    pub fn is_from_scratch(&self) -> bool {
        self.from.is_none()
    }

    /// The delta's directory, relative to the repository root (no trailing slash).
    pub fn dir(&self) -> String {
        let mut s = String::with_capacity(100);
        s.push_str("deltas/");
        match &self.from {
            Some(from) => {
                split_b64(&mut s, from);
                s.push('-');
                s.push_str(&self.to.to_modified_base64());
            }
            None => split_b64(&mut s, &self.to),
        }
        s
    }

    /// `<dir>/superblock`.
    pub fn superblock_path(&self) -> String {
        format!("{}/superblock", self.dir())
    }

    /// `<dir>/<i>`: the part file, and also the superblock metadata key of an inline part.
    pub fn part_path(&self, i: usize) -> String {
        format!("{}/{i}", self.dir())
    }

    /// `<dir>/commitmeta`: the superblock metadata key holding the to-commit's detached
    /// metadata.
    pub fn commitmeta_key(&self) -> String {
        format!("{}/commitmeta", self.dir())
    }

    /// The path of the delta index listing deltas that end at this delta's `to` commit.
    pub fn index_path(&self) -> String {
        index_path(&self.to)
    }

    /// Parses a delta directory path `deltas/XX/REST` or `deltas/XX/REST-TO` (a trailing
    /// `/superblock` or `/` is not accepted: pass the directory).
    ///
    /// Allocates O(input length) (a joined copy of the first checksum, and the path
    /// itself in the error).
    pub fn from_dir(path: &str) -> Result<Self, DeltaNameError> {
        let bad = || DeltaNameError::Path(path.to_owned());
        let rest = path.strip_prefix("deltas/").ok_or_else(bad)?;
        let (head, tail) = rest.split_once('/').ok_or_else(bad)?;
        if head.len() != 2 {
            return Err(bad());
        }
        let (first, to) = match tail.split_once('-') {
            Some((f, t)) => (f, Some(t)),
            None => (tail, None),
        };
        let first = Checksum::from_modified_base64(&format!("{head}{first}")).map_err(|_| bad())?;
        match to {
            None => Ok(DeltaName::new(None, first)),
            Some(t) => {
                let to = Checksum::from_modified_base64(t).map_err(|_| bad())?;
                Ok(DeltaName::new(Some(first), to))
            }
        }
    }
}

/// `delta-indexes/<B(to)[0:2]>/<B(to)[2:]>.index`.
pub fn index_path(to: &Checksum) -> String {
    let mut s = String::with_capacity(64);
    s.push_str("delta-indexes/");
    split_b64(&mut s, to);
    s.push_str(".index");
    s
}

impl fmt::Display for DeltaName {
    /// The hex name: `<from>-<to>` or `<to>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{from}-{}", self.to),
            None => write!(f, "{}", self.to),
        }
    }
}

impl FromStr for DeltaName {
    type Err = DeltaNameError;

    /// Parses `<from>-<to>` or `<to>` (64 lowercase hex each).
    /// Allocates nothing on success; an error holds a copy of `s`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |source| DeltaNameError::Checksum {
            name: s.to_owned(),
            source,
        };
        match s.split_once('-') {
            Some((from, to)) => Ok(DeltaName::new(
                Some(from.parse().map_err(err)?),
                to.parse().map_err(err)?,
            )),
            None => Ok(DeltaName::new(None, s.parse().map_err(err)?)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const V1: &str = "873654cfb9ba81eed17d2c0f204f4bdebdc5b33669a18cfd36a4e49efc87c73d";
    const V2: &str = "6e908d2df405a0d95e107ed141be3e297f9e35cac99d9045c9bcab84784f5017";

    #[test]
    fn paths_match_the_fixture() {
        // docs/ostree-formats.md §10.5.
        let scratch: DeltaName = V2.parse().unwrap();
        assert_eq!(
            scratch.dir(),
            "deltas/bp/CNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc"
        );
        assert_eq!(
            scratch.index_path(),
            "delta-indexes/bp/CNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc.index"
        );
        let d: DeltaName = format!("{V1}-{V2}").parse().unwrap();
        assert_eq!(
            d.dir(),
            "deltas/hz/ZUz7m6ge7RfSwPIE9L3r3FszZpoYz9NqTknvyHxz0-bpCNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc"
        );
        assert_eq!(d.part_path(12), format!("{}/12", d.dir()));
        assert_eq!(d.superblock_path(), format!("{}/superblock", d.dir()));
        assert_eq!(d.commitmeta_key(), format!("{}/commitmeta", d.dir()));
        assert_eq!(d.to_string(), format!("{V1}-{V2}"));
        assert_eq!(scratch.to_string(), V2);
        assert_eq!(DeltaName::from_dir(&d.dir()).unwrap(), d);
        assert_eq!(DeltaName::from_dir(&scratch.dir()).unwrap(), scratch);
    }

    #[test]
    fn rejects_bad_names() {
        assert!("".parse::<DeltaName>().is_err());
        assert!(format!("-{V2}").parse::<DeltaName>().is_err());
        assert!(format!("{V1}-").parse::<DeltaName>().is_err());
        assert!(format!("{V1}-{V2}-{V2}").parse::<DeltaName>().is_err());
        assert!(V2.to_uppercase().parse::<DeltaName>().is_err());
        assert!(DeltaName::from_dir("deltas/bpCNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc").is_err());
        assert!(
            DeltaName::from_dir("deltas/bp/CNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc/").is_err()
        );
        assert!(
            DeltaName::from_dir("objects/bp/CNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc").is_err()
        );
    }
}
