//! Free-space checks before a pull writes what it knows it will need.
//!
//! A static delta declares the uncompressed size of every part: applying the chosen
//! parts writes at most that much into the store, plus the staging files of the parts
//! in flight (the downloaded part and its decompressed payload, in anonymous files under
//! the repository's state directory). [`ensure`] refuses to start when the file system
//! holding the repository has less room than that, saying how much is needed and how
//! much is available, so that a pull into a small file system fails before it has
//! fetched or written anything. The object route cannot know its size in advance (a
//! commit declares none); there the store's own `ENOSPC` error ends the pull, restated
//! by [`explain`] with the space left, and everything verified before it is kept for
//! the next pull.

use std::path::Path;

use crate::error::PullError;
use crate::store::StoreError;

/// Bytes available to an unprivileged writer on the file system holding `path`.
pub fn available(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// What applying delta parts needs, from each part's `(size, uncompressed_size)`:
/// every uncompressed payload, plus staging room for the largest part (its download
/// and its payload at once).
pub(crate) fn delta_needs(parts: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    let mut total = 0u64;
    let mut staging = 0u64;
    for (size, uncompressed) in parts {
        total = total.saturating_add(uncompressed);
        staging = staging.max(size.saturating_add(uncompressed));
    }
    total.saturating_add(staging)
}

/// Fails with a message naming `what`, the bytes needed and the bytes available when
/// the file system holding `repo` has less than `needed` bytes free. A file system
/// whose free space cannot be read is not refused (the writes will tell).
pub(crate) fn ensure(repo: &Path, needed: u64, what: &str) -> Result<(), StoreError> {
    let Ok(free) = available(repo) else {
        return Ok(());
    };
    if free >= needed {
        return Ok(());
    }
    // `Repository` rather than `Io`: its message carries no source error, so the
    // explanation is printed once by error-chain printers.
    Err(StoreError::Repository {
        path: repo.to_owned(),
        what: format!(
            "{what} needs {} of free space but only {} is available; free at least {} on \
             this file system (or pull with --no-deltas, which fetches only the missing \
             objects)",
            human(needed),
            human(free),
            human(needed - free),
        ),
    })
}

/// Whether `e` or one of its causes is an `ENOSPC` / `EDQUOT` (as a `std::io::Error`
/// or a `rustix` errno).
fn out_of_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        // composefs reports some failures as a bare errno.
        if let Some(errno) = c.downcast_ref::<rustix::io::Errno>()
            && (*errno == rustix::io::Errno::NOSPC || *errno == rustix::io::Errno::DQUOT)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// A pull error caused by a full file system, restated with the space left on the file
/// system holding `repo` and what to do; any other error unchanged. The object route
/// cannot know how much a commit needs in advance, but it keeps what it verified.
pub(crate) fn explain(e: PullError, repo: &Path) -> PullError {
    if !out_of_space(&e) {
        return e;
    }
    let free = available(repo).map_or_else(|_| "unknown".to_owned(), human);
    PullError::Store(StoreError::Repository {
        path: repo.to_owned(),
        what: format!(
            "out of space ({e:#}); {free} left on this file system. Free some space and \
             pull again: everything verified so far is kept and not fetched again"
        ),
    })
}

/// `12345678` → `"11.8 MiB (12345678 bytes)"`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit} ({bytes} bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_sum_payloads_and_stage_the_largest_part() {
        assert_eq!(delta_needs([]), 0);
        assert_eq!(delta_needs([(10, 100), (50, 60), (1, 5)]), 165 + 110);
        assert_eq!(delta_needs([(u64::MAX, 1)]), u64::MAX);
    }

    #[test]
    fn refuses_what_does_not_fit_and_says_how_much() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure(dir.path(), 1, "x").is_ok());
        let e = ensure(dir.path(), u64::MAX, "static delta A-B").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("static delta A-B needs "), "{msg}");
        assert!(msg.contains(&format!("({} bytes)", u64::MAX)), "{msg}");
        assert!(msg.contains("is available"), "{msg}");
    }

    #[test]
    fn out_of_space_errors_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let enospc = |e: anyhow::Error| {
            PullError::Store(StoreError::Composefs {
                context: "storing",
                source: e.context("creating object parent directory"),
            })
        };
        for e in [
            enospc(anyhow::Error::new(rustix::io::Errno::NOSPC)),
            enospc(anyhow::Error::new(std::io::Error::from_raw_os_error(28))),
        ] {
            let msg = explain(e, dir.path()).to_string();
            assert!(msg.contains("left on this file system"), "{msg}");
            assert!(msg.contains("pull again"), "{msg}");
        }
        let other = enospc(anyhow::Error::new(rustix::io::Errno::PERM));
        let msg = explain(other, dir.path()).to_string();
        assert!(!msg.contains("left on this file system"), "{msg}");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(10), "10 bytes");
        assert_eq!(human(2048), "2.0 KiB (2048 bytes)");
        assert_eq!(human(5 * 1024 * 1024 + 1), "5.0 MiB (5242881 bytes)");
    }
}
