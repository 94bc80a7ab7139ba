//! Static delta generation: `deltas/…/{superblock,0,1,…}` in ostree's format, made on
//! every core.
//!
//! [`generate`] reads the repository (`tree`: any mode, through the local source),
//! lists the objects the to-commit has and the from-commit lacks, pairs new files with
//! old ones (`pair`), runs bsdiff and xz on every core within a memory budget (`pack`),
//! and writes the parts and the superblock (optionally signed) into a temporary
//! directory that replaces `deltas/…` at the end.
//!
//! Choices where ostree's format leaves room (docs/ostree-formats.md §7):
//! - parts of about [`GenerateOptions::part_size`] payload bytes, each one xz stream
//!   whose dictionary is at most [`GenerateOptions::max_dict`] (4 MiB by default, 8 at
//!   most) and never larger than the payload, so a client decodes several parts at
//!   once within its 38 MiB budget; parts of x86 machine code run the x86 branch
//!   filter first (every liblzma decoder undoes it, ostree's included); whole-file
//!   parts use xz's hash-chain match finder (a fifth less CPU than the preset's binary
//!   trees);
//! - bsdiff (`bsdiff.rs`) on a divsufsort suffix array; already-compressed files too
//!   when a probe finds them related to their base and the patch beats the file;
//! - a part header's "uncompressed size" is at least its payload's length, so clients
//!   that cap decompression by that field (ostree 2026.3) accept every part;
//! - the to-commit travels in the superblock only, as ostree's pull writes it from there.

mod bsdiff;
mod compress;
mod error;
mod options;
mod pack;
mod pair;
mod tree;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::write::{SuperblockWriter, signed_superblock};
use cfsync_formats::metadata::Metadata;
use cfsync_formats::object::ObjectType;

pub use error::DeltaError;
pub use options::{DeltaSigner, From, GenerateOptions};
pub use pack::PackStats;

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    /// The delta's name.
    pub name: DeltaName,
    /// The delta's directory.
    pub dir: PathBuf,
    /// Number of parts.
    pub parts: usize,
    /// Sum of the part file sizes (inline parts included).
    pub part_bytes: u64,
    /// Whether the parts are inside the superblock.
    pub inline: bool,
    /// Size of the superblock file.
    pub superblock_bytes: u64,
    /// Sum of the fallback objects' stored sizes.
    pub fallback_bytes: u64,
    /// Object counts and sizes.
    pub stats: PackStats,
    /// Wall time.
    pub elapsed: Duration,
}

impl GenerateReport {
    /// What a pull downloads: superblock, parts and fallbacks.
    pub fn total_bytes(&self) -> u64 {
        let parts = if self.inline { 0 } else { self.part_bytes };
        self.superblock_bytes
            .saturating_add(parts)
            .saturating_add(self.fallback_bytes)
    }
}

/// Generates the delta `opts.from` → `opts.to` in the repository at `repo`.
pub fn generate(repo: &Path, opts: &GenerateOptions) -> Result<GenerateReport, DeltaError> {
    let start = Instant::now();
    let r = tree::Repo::open(repo)?;
    let to = r.resolve(&opts.to)?;
    let to_bytes = r.metadata(ObjectType::Commit, &to)?;
    let to_commit =
        CommitRef::from_bytes(&to_bytes).map_err(|e| r.corrupt("commit", &to, &e.to_string()))?;
    let from = match &opts.from {
        From::Empty => None,
        From::Rev(rev) => Some(r.resolve(rev)?),
        From::Parent => Some(to_commit.parent().ok_or_else(|| DeltaError::NoRev {
            repo: repo.to_owned(),
            rev: format!(
                "{}^ (the commit has no parent; use --empty or --from)",
                to.to_hex()
            ),
        })?),
    };
    let to_tree = r.walk(&to_bytes, &to)?;
    let from_tree = match &from {
        Some(f) => {
            let bytes = r.metadata(ObjectType::Commit, f)?;
            let mut t = r.walk(&bytes, f)?;
            t.meta = Vec::new();
            Some(t)
        }
        None => None,
    };
    let have = |c: &Checksum| from_tree.as_ref().is_some_and(|t| t.all.contains(c));
    let meta: Vec<_> = to_tree
        .meta
        .into_iter()
        .filter(|(_, c, _)| !have(c))
        .collect();
    let index = from_tree.as_ref().map(tree::PathIndex::new);
    let mut jobs: Vec<(String, pack::Job)> = to_tree
        .files
        .iter()
        .filter(|(_, c)| !have(c))
        .map(|(path, c)| {
            let mut bases = Vec::new();
            if let Some(idx) = &index {
                if let Some(old) = idx.by_path.get(path) {
                    bases.push(*old);
                }
                let name = path.rsplit('/').next().unwrap_or(path);
                if let Some(list) = idx.by_name.get(&pair::stem(name)) {
                    for c in list {
                        if bases.len() >= pair::MAX_CANDIDATES {
                            break;
                        }
                        if !bases.contains(c) {
                            bases.push(*c);
                        }
                    }
                }
            }
            (
                path.clone(),
                pack::Job {
                    checksum: *c,
                    bases,
                },
            )
        })
        .collect();
    // Files without a bsdiff base first, similar ones next to each other (by extension,
    // then path), which compress better: they fill parts at once, so xz runs on those
    // while the workers go on with bsdiff. Then files with a base, largest first (by the
    // stored object's size): the long bsdiffs and their parts' xz start while the small
    // ones keep both cores busy, instead of one large patch compressed alone at the end
    // (v1 -> v2 of the small fixture: 6.8 s -> 5.5 s wall on two cores, same bytes).
    let ext = |p: &str| {
        p.rsplit('/')
            .next()
            .and_then(|n| n.rsplit_once('.'))
            .map(|x| x.1.to_owned())
    };
    let mut keyed: Vec<_> = jobs
        .drain(..)
        .map(|(path, job)| {
            let size = if job.bases.is_empty() {
                0
            } else {
                r.stored_size(&job.checksum, 0)
            };
            (!job.bases.is_empty(), size, ext(&path), path, job)
        })
        .collect();
    keyed.sort_by(|a, b| {
        (a.0.cmp(&b.0))
            .then(b.1.cmp(&a.1))
            .then_with(|| a.2.cmp(&b.2))
            .then_with(|| a.3.cmp(&b.3))
    });
    let jobs: Vec<pack::Job> = keyed.into_iter().map(|k| k.4).collect();

    let name = DeltaName::new(from, to);
    let final_dir = repo.join(name.dir());
    let tmp_dir = repo.join(format!("{}.tmp-{}", name.dir(), std::process::id()));
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| DeltaError::Write { path, source }
    };
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir).map_err(write_err(&tmp_dir))?;
    }
    std::fs::create_dir_all(&tmp_dir).map_err(write_err(&tmp_dir))?;
    let result = write_delta(&r, opts, &meta, &jobs, &tmp_dir, from, to, &to_bytes);
    let (packed, superblock_bytes) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp_dir);
            return Err(e);
        }
    };
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(write_err(&final_dir))?;
    }
    std::fs::rename(&tmp_dir, &final_dir).map_err(write_err(&final_dir))?;
    Ok(GenerateReport {
        name,
        dir: final_dir,
        parts: packed.parts.len(),
        part_bytes: packed.parts.iter().map(|p| p.size).sum(),
        superblock_bytes,
        inline: opts.inline,
        fallback_bytes: packed.fallbacks.iter().map(|f| f.1).sum(),
        stats: packed.stats,
        elapsed: start.elapsed(),
    })
}

#[allow(clippy::too_many_arguments)]
fn write_delta(
    r: &tree::Repo,
    opts: &GenerateOptions,
    meta: &[(ObjectType, Checksum, Vec<u8>)],
    jobs: &[pack::Job],
    dir: &Path,
    from: Option<Checksum>,
    to: Checksum,
    commit: &[u8],
) -> Result<(pack::Packed, u64), DeltaError> {
    let packed = pack::run(r, meta, jobs, opts, dir)?;
    let writer = SuperblockWriter {
        metadata: Metadata::new(),
        timestamp: opts.timestamp,
        from,
        to,
        commit: commit.to_vec(),
        commitmeta: r.commitmeta(&to)?,
        parts: packed.parts.clone(),
        fallbacks: packed.fallbacks.clone(),
        byte_order: opts.byte_order,
        endianness_marker: opts.endianness_marker,
    };
    let mut bytes = writer.to_bytes()?;
    if !opts.signers.is_empty() {
        let mut sigs: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        for s in &opts.signers {
            let (engine, sig) = s(&bytes).map_err(DeltaError::Sign)?;
            match sigs.iter_mut().find(|(e, _)| *e == engine) {
                Some((_, v)) => v.push(sig),
                None => sigs.push((engine, vec![sig])),
            }
        }
        let refs: Vec<(&str, Vec<Vec<u8>>)> =
            sigs.iter().map(|(e, v)| (e.as_str(), v.clone())).collect();
        bytes = signed_superblock(&bytes, &refs)?;
    }
    let path = dir.join("superblock");
    std::fs::write(&path, &bytes).map_err(|source| DeltaError::Write { path, source })?;
    Ok((packed, bytes.len() as u64))
}
