//! Finding a delta to the target: what the summary or the delta index lists (else the
//! superblock paths ostree probes), fetching the first candidate superblock that exists
//! (checked against the digest its listing gives), and opening it with its trust
//! checks: signature, the delta its path names, the commit it embeds.

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::index::{DeltaIndex, DeltaList};
use cfsync_formats::delta::signed::{SuperblockFile, open_superblock};

use super::plan::{Candidate, SummaryFacts, Where, where_listed};
use crate::error::PullError;
use crate::limits::{MAX_DELTA_INDEX, MAX_SUPERBLOCK};
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{PathKind, Source};
use crate::summary::SummaryDeltas;
use crate::trust::Trust;

/// Name of a delta as users see it: "FROM-TO" or "TO".
pub(crate) fn display_name(name: &DeltaName) -> String {
    match name.from {
        Some(f) => format!("{}-{}", f.to_hex(), name.to.to_hex()),
        None => name.to.to_hex(),
    }
}

/// What the remote says about deltas to the target.
#[derive(Debug)]
pub(crate) enum Listed {
    /// A list (from the summary or a delta index) to pick from.
    List(DeltaList),
    /// The summary lists deltas and indexes none: there is no delta to the target.
    NoneToTarget,
    /// Nothing listed: probe for superblocks.
    Probe,
}

/// The deltas the remote lists as ending at `target` (with their superblock digests):
/// the summary's list, else the delta index when [`where_listed`] says to look there.
pub(crate) async fn listed_deltas(
    source: &Source,
    summary: Option<&SummaryDeltas>,
    target: &Checksum,
) -> Result<Listed, PullError> {
    let mut from_summary = None;
    let mut facts = None;
    if let Some(s) = summary {
        let listed = s
            .listed
            .as_ref()
            .map_err(|e| PullError::Hostile(format!("summary ostree.static-deltas: {e}")))?;
        from_summary = listed
            .as_ref()
            .filter(|l| l.ending_at(target).next().is_some())
            .cloned();
        facts = Some(SummaryFacts {
            lists_target: from_summary.is_some(),
            indexed: s.indexed,
        });
    }
    match (where_listed(facts), from_summary) {
        (Where::Summary, Some(list)) => Ok(Listed::List(list)),
        (Where::Nowhere, _) => Ok(Listed::NoneToTarget),
        _ => {
            let path = cfsync_formats::delta::names::index_path(target);
            let named = Named::path(&path, PathKind::Content);
            // An index that does not parse may have been damaged in transit.
            fetch_checked(source, named, |fresh| {
                let source = source.fresh(fresh);
                let path = &path;
                async move {
                    let Some(bytes) = source
                        .get_bytes(path, PathKind::Content, MAX_DELTA_INDEX)
                        .await?
                    else {
                        return Ok(Listed::Probe);
                    };
                    let idx = DeltaIndex::from_bytes(&bytes).map_err(|e| {
                        Failed::Damaged(PullError::Hostile(format!("delta index {path}: {e}")))
                    })?;
                    Ok(Listed::List(idx.deltas().clone()))
                }
            })
            .await
        }
    }
}

/// Fetches the superblock of the first candidate that has one, checked against the
/// digest its listing gives and opened with [`open_checked`] (its signature, the delta
/// it names, its commit). A superblock that fails any of these may have been damaged in
/// transit and is fetched again, fresh ([`crate::refetch`]); one whose signature never
/// verifies is refused as before. `None`: no candidate has a superblock.
pub(crate) async fn first_superblock(
    source: &Source,
    candidates: Vec<Candidate>,
    target: &Checksum,
    trust: &Trust,
) -> Result<Option<(DeltaName, Vec<u8>)>, PullError> {
    for Candidate { name, digest } in candidates {
        let path = name.superblock_path();
        let named = Named::path(&path, PathKind::Content);
        let fetched = fetch_checked(source, named, |fresh| {
            let source = source.fresh(fresh);
            let (path, name) = (&path, &name);
            async move {
                let Some(bytes) = source
                    .get_bytes(path, PathKind::Content, MAX_SUPERBLOCK)
                    .await?
                else {
                    return Ok(None);
                };
                if let Some(d) = digest {
                    let actual = Checksum::of(&bytes);
                    if actual != d {
                        return Err(Failed::Damaged(PullError::ChecksumMismatch {
                            object: format!("{path} (the summary lists {d})"),
                            actual,
                        }));
                    }
                }
                match open_checked(&bytes, name, target, trust) {
                    Ok(_) => Ok(Some(bytes)),
                    Err(e @ PullError::Trust(_)) => Err(Failed::Unverified(e)),
                    Err(e) => Err(Failed::Damaged(e)),
                }
            }
        })
        .await?;
        let Some(bytes) = fetched else {
            if digest.is_some() {
                tracing::warn!(
                    "delta {} is listed but its superblock is missing",
                    display_name(&name)
                );
            }
            continue;
        };
        return Ok(Some((name, bytes)));
    }
    Ok(None)
}

/// A superblock error of delta `shown`.
pub(crate) fn superblock_err(shown: &str, e: &dyn std::fmt::Display) -> PullError {
    PullError::Hostile(format!("delta {shown} superblock: {e}"))
}

/// Opens the superblock of delta `name`: its signature is verified (when it is signed),
/// it must describe the delta its path names, and its commit must hash to `target`.
pub(crate) fn open_checked<'b>(
    bytes: &'b [u8],
    name: &DeltaName,
    target: &Checksum,
    trust: &Trust,
) -> Result<SuperblockFile<'b>, PullError> {
    let shown = display_name(name);
    let bad = |e: &dyn std::fmt::Display| superblock_err(&shown, e);
    let file = open_superblock(bytes).map_err(|e| bad(&e))?;
    if let Some(signed) = &file.signed {
        trust.verify_delta_superblock(&shown, signed)?;
    }
    let sb = &file.superblock;
    if sb.to() != name.to || sb.from() != name.from {
        return Err(bad(&"it describes another delta than its path names"));
    }
    let commit_id = Checksum::of(sb.commit_bytes());
    if commit_id != *target {
        return Err(bad(&format!(
            "its commit hashes to {commit_id}, not to the target {target}"
        )));
    }
    Ok(file)
}
