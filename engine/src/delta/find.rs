//! Finding a delta to the target: what the summary or the delta index lists (else the
//! superblock paths ostree probes), fetching the first candidate superblock that exists
//! (checked against the digest its listing gives), and opening it with its trust
//! checks: signature, the delta its path names, the commit it embeds.
//!
//! The first of these requests (the delta index when the summary points there, then the
//! first candidate's superblock) can start before the commit is verified
//! ([`look_ahead`]): their answers are held by the pull ([`crate::held`]), unread, and the
//! functions here take them as their first attempt once the route runs, so the same
//! checks apply to them, in the same order, as to a body fetched then.

use std::collections::HashSet;
use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::index::{DeltaIndex, DeltaList};
use cfsync_formats::delta::signed::{SuperblockFile, open_superblock};

use super::plan::{self, Candidate, SummaryFacts, Where, where_listed};
use crate::error::PullError;
use crate::held::Held;
use crate::limits::{MAX_DELTA_INDEX, MAX_SUPERBLOCK};
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{Fresh, PathKind, Source};
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

/// Where the deltas to `target` are listed, from the summary's facts, with the
/// summary's list when it lists some to `target`.
fn listing(
    summary: Option<&SummaryDeltas>,
    target: &Checksum,
) -> Result<(Where, Option<DeltaList>), PullError> {
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
    Ok((where_listed(facts), from_summary))
}

/// The deltas the remote lists as ending at `target` (with their superblock digests):
/// the summary's list, else the delta index when [`where_listed`] says to look there.
pub(crate) async fn listed_deltas(
    source: &Source,
    summary: Option<&SummaryDeltas>,
    target: &Checksum,
) -> Result<Listed, PullError> {
    match listing(summary, target)? {
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

/// What the delta route needs before anything else, started now and held in `held`:
/// the delta index when the summary points there (and, as soon as the index arrives,
/// the superblock of the first delta it offers), else the superblock of the first
/// delta the summary lists (or that a probe tries first). `stored` are the commits the
/// store holds and `previous` the ref's, as the route will see them, so that the same
/// first candidate is chosen. Nothing held is parsed for anything but choosing what to
/// fetch next; no part is ever fetched ahead.
pub(crate) fn look_ahead(
    held: &Held,
    source: &Arc<Source>,
    summary: Option<&SummaryDeltas>,
    stored: HashSet<Checksum>,
    previous: Option<Checksum>,
    target: Checksum,
) -> Option<Ahead> {
    let Ok(found) = listing(summary, &target) else {
        // A malformed list is reported by the route, which reads it again.
        return None;
    };
    match found {
        (Where::Summary, Some(list)) => {
            let first = plan::candidates(Some(list.entries()), &stored, previous, target);
            hold_superblock(held, source, first.first());
            // Only a superblock the (verified) summary lists with its digest is worth
            // waiting on for the commit: a probed one may well not exist.
            first.into_iter().next().and_then(|c| {
                c.digest.map(|digest| Ahead {
                    path: c.name.superblock_path(),
                    digest,
                })
            })
        }
        (Where::Nowhere, _) => None,
        _ => {
            let path = cfsync_formats::delta::names::index_path(&target);
            let (source, weak) = (Arc::clone(source), held.downgrade());
            let fetch_path = path.clone();
            held.hold(path, async move {
                let got = source
                    .get_bytes(&fetch_path, PathKind::Content, MAX_DELTA_INDEX)
                    .await;
                // What the route will list: the index's deltas, or none (probe). A
                // failed or damaged index is fetched again by the route, which then
                // chooses for itself.
                let list = match &got {
                    Ok(Some(bytes)) => DeltaIndex::from_bytes(bytes)
                        .ok()
                        .map(|i| Some(i.deltas().clone())),
                    Ok(None) => Some(None),
                    Err(_) => None,
                };
                if let (Some(list), Some(held)) = (list, weak.upgrade()) {
                    let entries = list.as_ref().map(DeltaList::entries);
                    let first = plan::candidates(entries, &stored, previous, target);
                    hold_superblock(&held, &source, first.first());
                }
                got
            });
            None
        }
    }
}

/// A superblock [`look_ahead`] is fetching that the summary lists with its digest: it
/// embeds the target commit and (as ostree writes it) the commit's detached metadata, so
/// the pull can take both from it instead of asking for them ([`commit_from_held`]).
#[derive(Debug, Clone)]
pub(crate) struct Ahead {
    /// Its path at the source (its key in the pull's [`Held`]).
    path: String,
    /// The digest the summary lists for it.
    digest: Checksum,
}

/// The target commit and its detached metadata as the superblock held for `ahead`
/// embeds them (waiting for it), the superblock left held for the delta route, which
/// opens it again with all its checks. The commit bytes hash to `target` and the
/// superblock to the digest the summary lists; nothing else is trusted here (the caller
/// verifies the commit's signatures as for a commit fetched alone). `None` when the
/// superblock did not arrive, does not match or does not parse: fetch the commit then.
pub(crate) async fn commit_from_held(
    held: &Held,
    ahead: &Ahead,
    target: &Checksum,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let got = held.take(&ahead.path).await?;
    let found = match &got {
        Ok(Some(bytes)) if Checksum::of(bytes) == ahead.digest => embedded_commit(bytes, target),
        _ => None,
    };
    // The route takes the same answer as its first attempt (and judges it itself).
    held.hold(ahead.path.clone(), async move { got });
    found
}

/// The commit `target` and its detached metadata out of superblock `bytes`.
fn embedded_commit(bytes: &[u8], target: &Checksum) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let file = open_superblock(bytes).ok()?;
    let sb = &file.superblock;
    let commit = sb.commit_bytes();
    if sb.to() != *target || Checksum::of(commit) != *target {
        return None;
    }
    let meta = match sb.commitmeta() {
        Ok(m) => m.map(|m| m.data().to_vec()),
        Err(_) => return None,
    };
    Some((commit.to_vec(), meta))
}

/// Starts fetching `candidate`'s superblock into `held`.
fn hold_superblock(held: &Held, source: &Arc<Source>, candidate: Option<&Candidate>) {
    let Some(c) = candidate else {
        return;
    };
    let path = c.name.superblock_path();
    let (source, fetch_path) = (Arc::clone(source), path.clone());
    held.hold(path, async move {
        source
            .get_bytes(&fetch_path, PathKind::Content, MAX_SUPERBLOCK)
            .await
    });
}

/// The deltas the delta index held by [`look_ahead`] lists (waiting for it if it is
/// still on its way), for the route to take as if the summary had listed them; `None`
/// when no index is held, or it is missing, failed or does not parse (the route then
/// fetches it itself, as without a look ahead).
pub(crate) async fn held_listing(held: &Held, target: &Checksum) -> Option<DeltaList> {
    let path = cfsync_formats::delta::names::index_path(target);
    let bytes = held.take(&path).await?.ok()??;
    DeltaIndex::from_bytes(&bytes)
        .ok()
        .map(|i| i.deltas().clone())
}

/// Fetches the superblock of the first candidate that has one, checked against the
/// digest its listing gives and opened with [`open_checked`] (its signature, the delta
/// it names, its commit). A superblock that fails any of these may have been damaged in
/// transit and is fetched again, fresh ([`crate::refetch`]); one whose signature never
/// verifies is refused as before. A superblock [`look_ahead`] fetched is taken from
/// `held` as the first attempt. `None`: no candidate has a superblock.
pub(crate) async fn first_superblock(
    source: &Source,
    candidates: Vec<Candidate>,
    target: &Checksum,
    trust: &Trust,
    held: &Held,
) -> Result<Option<(DeltaName, Vec<u8>)>, PullError> {
    for Candidate { name, digest } in candidates {
        let path = name.superblock_path();
        let named = Named::path(&path, PathKind::Content);
        let mut early = held.take(&path).await;
        let fetched = fetch_checked(source, named, |fresh| {
            let early = early.take().filter(|_| fresh == Fresh::No);
            let source = source.fresh(fresh);
            let (path, name) = (&path, &name);
            async move {
                let got = match early {
                    Some(got) => got,
                    None => {
                        source
                            .get_bytes(path, PathKind::Content, MAX_SUPERBLOCK)
                            .await
                    }
                };
                let Some(bytes) = got? else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceOptions;

    /// The demo repository (`demo/repo`: v1, v2, the scratch delta to v1, the v1 → v2
    /// delta, their delta indexes), read as a local source.
    fn demo() -> (Arc<Source>, Checksum, Checksum) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo");
        let commits = std::fs::read_to_string(format!("{dir}/commits")).unwrap();
        let commit = |v: &str| -> Checksum {
            let line = commits.lines().find(|l| l.starts_with(v)).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let source = Source::open(&format!("{dir}/repo"), SourceOptions::default()).unwrap();
        (Arc::new(source), commit("v1 "), commit("v2 "))
    }

    #[tokio::test]
    async fn without_a_summary_the_index_and_then_the_first_superblock_are_held() {
        let (source, v1, v2) = demo();
        let held = Held::default();
        let stored = HashSet::from([v1]);
        look_ahead(&held, &source, None, stored, Some(v1), v2);
        let list = held_listing(&held, &v2).await.expect("the index is held");
        assert!(list.get(&DeltaName::new(Some(v1), v2)).is_some());
        // Held as soon as the index was in: the v1 -> v2 delta's superblock.
        let path = DeltaName::new(Some(v1), v2).superblock_path();
        let bytes = held.take(&path).await.expect("held").unwrap().unwrap();
        let trust = Trust::unverified();
        open_checked(&bytes, &DeltaName::new(Some(v1), v2), &v2, &trust).unwrap();
    }

    #[tokio::test]
    async fn the_index_leads_to_the_scratch_superblock_when_no_from_commit_is_stored() {
        let (source, v1, _) = demo();
        let held = Held::default();
        let index = cfsync_formats::delta::names::index_path(&v1);
        look_ahead(&held, &source, None, HashSet::new(), None, v1);
        assert!(held_listing(&held, &v1).await.is_some());
        assert!(held.take(&index).await.is_none(), "the index is taken once");
        let path = DeltaName::new(None, v1).superblock_path();
        assert!(matches!(held.take(&path).await, Some(Ok(Some(_)))));
    }

    #[tokio::test]
    async fn a_summary_listing_nothing_to_the_target_holds_nothing() {
        let (source, v1, v2) = demo();
        let held = Held::default();
        let summary = SummaryDeltas {
            listed: Ok(None),
            indexed: false,
        };
        look_ahead(
            &held,
            &source,
            Some(&summary),
            HashSet::from([v1]),
            Some(v1),
            v2,
        );
        assert!(held_listing(&held, &v2).await.is_none());
        let path = DeltaName::new(Some(v1), v2).superblock_path();
        assert!(held.take(&path).await.is_none(), "a superblock was fetched");
    }
}
