//! The delta planner: pure decisions, no I/O. Given what the remote lists (summary,
//! delta index), what the store holds and what a superblock contains, it decides where
//! to look for deltas, which deltas to try in which order, which parts to fetch and
//! which fallback objects to fetch loose. The executor ([`super::run`]) carries the
//! decisions out.

use std::collections::HashSet;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::index::DeltaEntry;

/// Where the deltas to the target are listed, from what the summary says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Where {
    /// The summary's `ostree.static-deltas` lists deltas to the target: pick from it.
    Summary,
    /// Look in the delta index (there is no summary, or it says
    /// `ostree.summary.indexed-deltas`); probe for superblocks when there is none.
    Index,
    /// The summary lists deltas and indexes none: there is no delta to the target.
    Nowhere,
}

/// What the summary says about deltas, when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SummaryFacts {
    /// Its `ostree.static-deltas` lists a delta ending at the target.
    pub(crate) lists_target: bool,
    /// It sets `ostree.summary.indexed-deltas`.
    pub(crate) indexed: bool,
}

/// Where to look for deltas to the target, given the summary's facts (`None`: the
/// remote has no summary).
pub(crate) fn where_listed(summary: Option<SummaryFacts>) -> Where {
    match summary {
        None => Where::Index,
        Some(s) if s.lists_target => Where::Summary,
        Some(s) if s.indexed => Where::Index,
        // A summary that lists deltas but none to the target: there are none.
        Some(_) => Where::Nowhere,
    }
}

/// A delta to try: its name, and the superblock digest its listing gives (`None` when
/// it was not listed but is probed for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The delta.
    pub(crate) name: DeltaName,
    /// The digest its superblock must have.
    pub(crate) digest: Option<Checksum>,
}

/// The deltas to try, best first: from the ref's commit (`previous`), from any other
/// commit the store holds, from scratch. `listed` is the remote's list (`None`: nothing
/// is listed, probe for the superblocks of a delta from `previous` and from scratch).
pub(crate) fn candidates(
    listed: Option<&[DeltaEntry]>,
    stored: &HashSet<Checksum>,
    previous: Option<Checksum>,
    target: Checksum,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    match listed {
        Some(list) => {
            let ending = || list.iter().filter(|e| e.name.to == target);
            let mut from: Vec<_> = ending()
                .filter(|e| e.name.from.is_some_and(|f| stored.contains(&f)))
                .map(listed_candidate)
                .collect();
            from.sort_by_key(|c| c.name.from != previous);
            candidates.extend(from);
            candidates.extend(
                ending()
                    .filter(|e| e.name.from.is_none())
                    .map(listed_candidate),
            );
        }
        None => {
            if let Some(prev) = previous.filter(|p| stored.contains(p)) {
                candidates.push(Candidate {
                    name: DeltaName::new(Some(prev), target),
                    digest: None,
                });
            }
            candidates.push(Candidate {
                name: DeltaName::new(None, target),
                digest: None,
            });
        }
    }
    candidates
}

fn listed_candidate(e: &DeltaEntry) -> Candidate {
    Candidate {
        name: e.name,
        digest: Some(e.superblock_digest),
    }
}

/// What the planner knows of one part of a superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartFacts {
    /// Its index in the superblock.
    pub(crate) index: usize,
    /// Its compressed size (what fetching it costs).
    pub(crate) size: u64,
    /// Objects it creates.
    pub(crate) objects: u64,
    /// Of those, objects the store (or the commit being built) does not hold.
    pub(crate) missing: u64,
}

/// The parts of a delta to fetch and apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartPlan {
    /// Indices of the parts to fetch, in superblock order.
    pub(crate) chosen: Vec<usize>,
    /// Objects the chosen parts make that are missing.
    pub(crate) objects_needed: u64,
    /// Compressed bytes of the chosen parts.
    pub(crate) part_bytes: u64,
}

/// Which parts of a delta to use, or `None` when a scratch delta is not worth it (the
/// store holds all or most of the objects of every part: the object route is cheaper).
///
/// A from-delta's parts rebuild objects from what the store holds, so each part with a
/// missing object is fetched; a scratch delta's part only pays off when at least half
/// of its objects are missing. Parts whose objects are all held are never fetched.
pub(crate) fn choose_parts(from_delta: bool, parts: &[PartFacts]) -> Option<PartPlan> {
    let mut chosen = Vec::new();
    let mut objects_needed = 0u64;
    for p in parts {
        let worth = p.missing > 0 && (from_delta || p.missing.saturating_mul(2) >= p.objects);
        if worth {
            chosen.push(p.index);
            objects_needed += p.missing;
        }
    }
    if !from_delta && chosen.is_empty() && !parts.is_empty() {
        return None;
    }
    let part_bytes = chosen
        .iter()
        .filter_map(|&i| parts.iter().find(|p| p.index == i))
        .fold(0u64, |a, p| a.saturating_add(p.size));
    Some(PartPlan {
        chosen,
        objects_needed,
        part_bytes,
    })
}

/// What the parts need not rebuild: the objects of all parts held before the delta
/// starts.
pub(crate) fn held_objects(
    objects: impl IntoIterator<Item = Checksum>,
    have: impl Fn(&Checksum) -> bool,
) -> HashSet<Checksum> {
    objects.into_iter().filter(|id| have(id)).collect()
}

/// The fallback objects (files the delta carries loose) to fetch: those neither held
/// before the delta started nor held now.
pub(crate) fn fallbacks_to_fetch(
    fallbacks: impl IntoIterator<Item = Checksum>,
    held: &HashSet<Checksum>,
    have: impl Fn(&Checksum) -> bool,
) -> Vec<Checksum> {
    fallbacks
        .into_iter()
        .filter(|id| !held.contains(id) && !have(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u8) -> Checksum {
        Checksum([n; 32])
    }

    #[test]
    fn where_deltas_are_listed() {
        let facts = |lists_target, indexed| {
            Some(SummaryFacts {
                lists_target,
                indexed,
            })
        };
        let table = [
            (None, Where::Index),
            (facts(true, false), Where::Summary),
            (facts(true, true), Where::Summary),
            (facts(false, true), Where::Index),
            (facts(false, false), Where::Nowhere),
        ];
        for (summary, want) in table {
            assert_eq!(where_listed(summary), want, "{summary:?}");
        }
    }

    fn entry(from: Option<u8>, to: u8, digest: u8) -> DeltaEntry {
        DeltaEntry {
            name: DeltaName::new(from.map(c), c(to)),
            superblock_digest: c(digest),
        }
    }

    /// Candidates as (from, digest) pairs (the target is always 9).
    fn names(cs: &[Candidate]) -> Vec<(Option<u8>, Option<u8>)> {
        cs.iter()
            .map(|x| {
                assert_eq!(x.name.to, c(9));
                (x.name.from.map(|f| f.0[0]), x.digest.map(|d| d.0[0]))
            })
            .collect()
    }

    #[test]
    fn candidates_best_first() {
        let list = [
            entry(Some(1), 9, 101),
            entry(None, 9, 100),
            entry(Some(2), 9, 102),
            entry(Some(3), 9, 103), // 3 is not stored
            entry(Some(2), 8, 182), // ends elsewhere
            entry(None, 8, 180),
            entry(Some(4), 9, 104),
        ];
        let stored: HashSet<_> = [1, 2, 4].map(c).into_iter().collect();
        #[allow(clippy::type_complexity)]
        let table: &[(
            Option<&[DeltaEntry]>,
            Option<u8>,
            &[(Option<u8>, Option<u8>)],
        )] = &[
            // Listed: the ref's commit first, then other stored commits in listed order,
            // then scratch; deltas from commits not stored are left out.
            (
                Some(&list),
                Some(2),
                &[
                    (Some(2), Some(102)),
                    (Some(1), Some(101)),
                    (Some(4), Some(104)),
                    (None, Some(100)),
                ],
            ),
            (
                Some(&list),
                None,
                &[
                    (Some(1), Some(101)),
                    (Some(2), Some(102)),
                    (Some(4), Some(104)),
                    (None, Some(100)),
                ],
            ),
            (
                Some(&list),
                Some(3),
                &[
                    (Some(1), Some(101)),
                    (Some(2), Some(102)),
                    (Some(4), Some(104)),
                    (None, Some(100)),
                ],
            ),
            (Some(&list[4..6]), Some(2), &[]),
            // Probed: from the ref's commit when it is stored, then scratch.
            (None, Some(1), &[(Some(1), None), (None, None)]),
            (None, Some(3), &[(None, None)]),
            (None, None, &[(None, None)]),
        ];
        for (listed, previous, want) in table {
            let got = candidates(*listed, &stored, previous.map(c), c(9));
            assert_eq!(
                names(&got),
                *want,
                "listed {listed:?}, previous {previous:?}"
            );
        }
    }

    fn part(index: usize, size: u64, objects: u64, missing: u64) -> PartFacts {
        PartFacts {
            index,
            size,
            objects,
            missing,
        }
    }

    #[test]
    fn parts_worth_fetching() {
        let parts = [
            part(0, 1000, 10, 10), // all missing
            part(1, 2000, 10, 5),  // half missing
            part(2, 4000, 10, 4),  // most held
            part(3, 8000, 10, 0),  // all held
        ];
        let plan = |chosen: &[usize], objects_needed, part_bytes| {
            Some(PartPlan {
                chosen: chosen.to_vec(),
                objects_needed,
                part_bytes,
            })
        };
        let table: &[(bool, &[PartFacts], Option<PartPlan>)] = &[
            // A scratch delta: parts at least half missing.
            (false, &parts, plan(&[0, 1], 15, 3000)),
            // A from-delta: every part with something missing.
            (true, &parts, plan(&[0, 1, 2], 19, 7000)),
            // A scratch delta whose objects are mostly held is not worth it...
            (false, &parts[2..], None),
            // ...a from-delta still runs (its fallbacks may be needed).
            (true, &parts[3..], plan(&[], 0, 0)),
            // No parts at all: nothing to skip.
            (false, &[], plan(&[], 0, 0)),
            (true, &[], plan(&[], 0, 0)),
            // Sizes saturate.
            (
                false,
                &[part(0, u64::MAX, 1, 1), part(1, 5, 1, 1)],
                plan(&[0, 1], 2, u64::MAX),
            ),
        ];
        for (from, parts, want) in table {
            assert_eq!(choose_parts(*from, parts), *want, "from {from}, {parts:?}");
        }
    }

    #[test]
    fn held_objects_and_fallbacks() {
        let have_before: HashSet<_> = [1, 2].map(c).into_iter().collect();
        let held = held_objects([1, 3, 2, 4].map(c), |id| have_before.contains(id));
        assert_eq!(held, have_before);
        let table: &[(&[u8], &[u8], &[u8])] = &[
            // (fallbacks, held now, fetched)
            (&[5, 6], &[], &[5, 6]),
            (&[1, 5], &[], &[5]),
            (&[5, 6], &[6], &[5]),
            (&[], &[1], &[]),
        ];
        for (fallbacks, now, want) in table {
            let now: HashSet<_> = now.iter().map(|&n| c(n)).collect();
            let got = fallbacks_to_fetch(fallbacks.iter().map(|&n| c(n)), &held, |id| {
                now.contains(id) || have_before.contains(id)
            });
            assert_eq!(got, want.iter().map(|&n| c(n)).collect::<Vec<_>>());
        }
    }
}
