//! The downgrade rule of a pull, as `_ostree_compare_timestamps` (`ostree-core.c`;
//! `docs/ostree-formats.md` §8.4) applies it.

use crate::timefmt::format_unix_utc;

/// A commit refused by the downgrade check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DowngradeError {
    /// The new commit is older than the current one.
    #[error("commit {new_commit} with timestamp {} is older than current commit {current_commit} with timestamp {}; allow downgrades to accept it", format_unix_utc(ts_i64(*.new_timestamp)), format_unix_utc(ts_i64(*.current_timestamp)))]
    Downgrade {
        /// The commit currently deployed or referenced.
        current_commit: String,
        /// Its timestamp (seconds since the epoch).
        current_timestamp: u64,
        /// The commit being pulled.
        new_commit: String,
        /// Its timestamp.
        new_timestamp: u64,
    },
}

fn ts_i64(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// `_ostree_compare_timestamps`: accepts a newer or equally old commit, the same commit,
/// or anything when `allow_downgrade`; refuses an older one.
pub fn check_downgrade(
    current_commit: &str,
    current_timestamp: u64,
    new_commit: &str,
    new_timestamp: u64,
    allow_downgrade: bool,
) -> Result<(), DowngradeError> {
    if allow_downgrade || new_timestamp >= current_timestamp || current_commit == new_commit {
        return Ok(());
    }
    Err(DowngradeError::Downgrade {
        current_commit: current_commit.to_owned(),
        current_timestamp,
        new_commit: new_commit.to_owned(),
        new_timestamp,
    })
}
