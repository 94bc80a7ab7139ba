//! Self-contained delta directories for offline and USB updates.
//!
//! `ostree static-delta generate --filename=DIR` writes a delta as a directory holding
//! `superblock` and the parts `0`, `1`, …; the superblock embeds the target commit and
//! its detached metadata. [`stage_delta_dir`] lays such a directory out as a minimal
//! archive repository (config, the commit and its commitmeta as loose objects, the delta
//! under `deltas/`, and a delta index naming it), so the ordinary pull — with every check
//! it makes: commit signatures, ref binding, downgrade, part and object checksums — applies
//! it from a local source. Nothing outside the staging directory is written, and the
//! delta directory is only read.

use crate::limits::MAX_SUPERBLOCK;
use std::path::Path;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::signed::open_superblock;
use cfsync_formats::gvariant::OwnedValue;
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};

/// Why a delta directory cannot be staged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OfflineError {
    /// Reading the delta directory or writing the staging directory failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The superblock does not parse, or is too large.
    #[error("{path}: not a static delta superblock: {detail}")]
    Superblock {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// What a staged delta leads to.
#[derive(Debug, Clone, Copy)]
pub struct StagedDelta {
    /// The delta (from, to).
    pub name: DeltaName,
    /// The commit it produces.
    pub to: Checksum,
}

fn io(path: &Path, source: std::io::Error) -> OfflineError {
    OfflineError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write(path: &Path, data: &[u8]) -> Result<(), OfflineError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    std::fs::write(path, data).map_err(|e| io(path, e))
}

/// Stages a delta as an archive repository in the empty directory `into`. `delta` is a
/// directory holding `superblock` and the part files, or a superblock file (parts inline,
/// as `ostree static-delta generate --filename=FILE` writes it, or beside it). Part files
/// are hard-linked when possible, else copied.
pub fn stage_delta_dir(delta: &Path, into: &Path) -> Result<StagedDelta, OfflineError> {
    let (dir, sb_path) = if delta.is_dir() {
        (delta.to_path_buf(), delta.join("superblock"))
    } else {
        let parent = delta.parent().unwrap_or(Path::new(".")).to_path_buf();
        (parent, delta.to_path_buf())
    };
    let len = std::fs::metadata(&sb_path)
        .map_err(|e| io(&sb_path, e))?
        .len();
    let bad = |detail: String| OfflineError::Superblock {
        path: sb_path.display().to_string(),
        detail,
    };
    if len > MAX_SUPERBLOCK {
        return Err(bad(format!(
            "{len} bytes, over the {MAX_SUPERBLOCK}-byte limit"
        )));
    }
    let bytes = std::fs::read(&sb_path).map_err(|e| io(&sb_path, e))?;
    let file = open_superblock(&bytes).map_err(|e| bad(e.to_string()))?;
    let sb = &file.superblock;
    let name = sb.name();
    let to = sb.to();

    write(
        &into.join("config"),
        b"[core]\nrepo_version=1\nmode=archive-z2\n",
    )?;
    write(
        &into.join(loose_path(&to, ObjectType::Commit, RepoMode::Archive)),
        sb.commit_bytes(),
    )?;
    if let Some(meta) = sb.commitmeta().map_err(|e| bad(e.to_string()))? {
        write(
            &into.join(loose_path(&to, ObjectType::CommitMeta, RepoMode::Archive)),
            meta.data(),
        )?;
    }
    let delta_dir = into.join(name.dir());
    write(&delta_dir.join("superblock"), &bytes)?;
    for p in sb.parts() {
        if sb
            .inline_part(p.index)
            .map_err(|e| bad(e.to_string()))?
            .is_some()
        {
            continue;
        }
        let (src, dst) = (
            dir.join(p.index.to_string()),
            delta_dir.join(p.index.to_string()),
        );
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    // No summary: the pull looks for a delta index, which names this delta.
    let index = OwnedValue::array(
        "{sv}",
        vec![OwnedValue::entry(
            OwnedValue::str("ostree.static-deltas"),
            OwnedValue::Variant(Box::new(OwnedValue::array(
                "{sv}",
                vec![OwnedValue::entry(
                    OwnedValue::str(name.to_string()),
                    OwnedValue::Variant(Box::new(OwnedValue::bytes(
                        Checksum::of(&bytes).0.to_vec(),
                    ))),
                )],
            ))),
        )],
    )
    .to_bytes()
    .map_err(|e| bad(format!("writing the delta index: {e}")))?;
    write(
        &into.join(cfsync_formats::delta::names::index_path(&to)),
        &index,
    )?;
    Ok(StagedDelta { name, to })
}
