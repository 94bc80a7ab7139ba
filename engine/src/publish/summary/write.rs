//! Putting a [`Prepared`] summary in place, in ostree's order: `config`, delta indexes
//! (stale ones removed), `summary`, then `summary.sig` (or the old one removed), each
//! file replaced atomically. When signed, `summary` gets `summary.sig`'s modification
//! time, as ostree does, so HTTP caches expire both together.

use std::fs;
use std::io;
use std::path::Path;

use cfsync_formats::delta::names::index_path;

use super::{Prepared, SummaryUpdateError as E};
use crate::atomic;

fn put(path: &Path, data: &[u8]) -> Result<(), E> {
    atomic::write(path, data).map_err(|source| E::Io {
        path: path.to_owned(),
        what: "writing",
        source,
    })
}

fn remove_if_exists(path: &Path) -> Result<bool, E> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(E::Io {
            path: path.to_owned(),
            what: "removing",
            source,
        }),
    }
}

/// Writes `prepared` into the repository at `repo`, with `signature` as `summary.sig`
/// (an `a{sv}` of signatures over `prepared.summary`), or none.
pub fn write(repo: &Path, prepared: &Prepared, signature: Option<&[u8]>) -> Result<(), E> {
    if let Some(config) = &prepared.config {
        put(&repo.join("config"), config.as_bytes())?;
    }
    for (to, bytes) in &prepared.indexes {
        put(&repo.join(index_path(to)), bytes)?;
    }
    for to in &prepared.stale_indexes {
        remove_if_exists(&repo.join(index_path(to)))?;
    }
    let summary = repo.join("summary");
    let sig = repo.join("summary.sig");
    put(&summary, &prepared.summary)?;
    match signature {
        Some(s) => {
            put(&sig, s)?;
            let times = fs::metadata(&sig).and_then(|m| m.modified()).and_then(|t| {
                let f = fs::File::options().write(true).open(&summary)?;
                f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            });
            times.map_err(|source| E::Io {
                path: summary.clone(),
                what: "setting the modification time of",
                source,
            })?;
        }
        None => {
            remove_if_exists(&sig)?;
        }
    }
    Ok(())
}
