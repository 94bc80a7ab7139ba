//! Ref resolution through flatpak's summary index, for remotes that publish `summary.idx`
//! and per-architecture subsummaries but no legacy `summary` (the Flathub layout).
//!
//! `summary.idx` and `summary.idx.sig` are asked for at once, both conditionally with the
//! validators kept in the repository's cache (`cache.rs`), and the index is verified
//! under the summary policy keys (`gpg-verify-summary`, `sign-verify-summary`), exactly
//! as `summary.sig` is. The subsummary (see [`choose`]) comes from the copy kept at the
//! last check, a diff from it, or whole (`subsummary.rs`), always checked against the
//! digest the verified index names. So a no-op update check costs two conditional
//! requests answered 304 and no subsummary. A body that fails its checks is fetched
//! again, fresh (`refetch.rs`). `cfsync remote refs` lists the refs of every subsummary.

use cfsync_formats::checksum::Checksum;
use cfsync_formats::summary::SummaryRef;
use cfsync_formats::summary_index::SummaryIndexRef;

use super::cache::{Cache, Cached};
use super::subsummary::{self, Listed};
use super::{SummaryDeltas, SummaryRoute, conditional};
use crate::error::PullError;
use crate::limits::{MAX_SUMMARY_INDEX, MAX_SUMMARY_SIG};
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{Fresh, PathKind, Source};
use crate::trust::Trust;

/// What the subsummary says, from the one parse that checked it.
#[derive(Debug)]
pub(super) struct FromIndex {
    /// Valid `summary.idx.sig` signatures, one line each.
    pub(super) signatures: Vec<String>,
    /// The commit the ref points at (None when the subsummary does not list it).
    pub(super) commit: Option<Checksum>,
    /// The subsummary's delta facts.
    pub(super) deltas: SummaryDeltas,
    /// How the subsummary was obtained.
    pub(super) route: SummaryRoute,
}

/// What to resolve through the index, and where its files are kept.
#[derive(Clone, Copy)]
pub(super) struct IndexRequest<'a> {
    /// The ref.
    pub(super) ref_name: &'a str,
    /// The subsummary to read (`--subsummary`, else the remote's `subsummary` option).
    pub(super) subsummary: Option<&'a str>,
    /// The remote's cache, when it is used.
    pub(super) cache: Option<&'a Cache>,
}

/// A verified index: the files as fetched (for the cache), its signatures and its
/// subsummaries, in its order.
struct Index {
    index: Cached,
    sig: Cached,
    signatures: Vec<String>,
    subsummaries: Vec<Listed>,
}

/// The architecture of a flatpak ref (`app/ID/ARCH/BRANCH`, `runtime/ID/ARCH/BRANCH`).
fn flatpak_arch(ref_name: &str) -> Option<&str> {
    let parts: Vec<&str> = ref_name.split('/').collect();
    match parts.as_slice() {
        ["app" | "runtime", _, arch, _] if !arch.is_empty() => Some(arch),
        _ => None,
    }
}

/// This machine's architecture as flatpak names it (`x86_64`, `aarch64`, `i386`, …).
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "i386",
        other => other,
    }
}

/// Which of the index's subsummaries (by name) holds `ref_name`: the one `wanted` names
/// (`--subsummary`, else the remote's `subsummary` option), else the one named for the
/// flatpak ref's architecture, else the only one, else the one named for this machine's
/// architecture; otherwise an error naming the choices.
fn choose(names: &[&str], ref_name: &str, wanted: Option<&str>) -> Result<usize, PullError> {
    let arch = flatpak_arch(ref_name);
    let found = match (wanted, arch) {
        (Some(w), _) => names.iter().position(|n| *n == w),
        (None, Some(arch)) => names.iter().position(|n| *n == arch),
        (None, None) if names.len() == 1 => Some(0),
        (None, None) => names.iter().position(|n| *n == host_arch()),
    };
    found.ok_or_else(|| {
        let asked = match (wanted, arch) {
            (Some(w), _) => format!(
                "subsummary {w:?} (asked for by --subsummary or the remote's subsummary option)"
            ),
            (None, Some(arch)) => {
                format!("the subsummary for architecture {arch:?} of ref {ref_name:?}")
            }
            (None, None) => format!(
                "one subsummary for ref {ref_name:?}, which names no architecture (nor one for this machine's, {:?}),",
                host_arch()
            ),
        };
        let choices = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        };
        PullError::NotFound {
            what: format!(
                "{asked} (summary.idx lists: {choices}; choose one with --subsummary NAME)"
            ),
            path: "summary.idx".into(),
        }
    })
}

/// Asks for `summary.idx` and `summary.idx.sig` at once, both conditionally on `cached`
/// (unless `fresh`), and verifies the index. `Ok(None)`: the remote has no summary index.
async fn fetch_index(
    source: &Source,
    trust: &Trust,
    cached: (&Cached, &Cached),
    fresh: Fresh,
) -> Result<Option<Index>, Failed> {
    let none = Cached::default();
    let (cached_idx, cached_sig) = match fresh {
        Fresh::No => cached,
        Fresh::Yes => (&none, &none),
    };
    let source = source.fresh(fresh);
    let (index, sig) = futures::join!(
        conditional(&source, "summary.idx", MAX_SUMMARY_INDEX, cached_idx),
        conditional(&source, "summary.idx.sig", MAX_SUMMARY_SIG, cached_sig),
    );
    let (index, sig) = (index?, sig?);
    let Some(body) = &index.body else {
        return Ok(None);
    };
    let from_cache = index.body == cached_idx.body;
    let signatures = match trust.verify_summary_index(body, sig.body.as_deref()) {
        Ok(s) => s,
        Err(e) if sig.body.is_some() || from_cache => {
            return Err(Failed::Unverified(e.into()));
        }
        Err(e) => return Err(Failed::Final(e.into())),
    };
    let parsed = SummaryIndexRef::from_bytes(body)
        .map_err(|e| Failed::Damaged(PullError::Hostile(format!("summary.idx: {e}"))))?;
    let subsummaries = parsed
        .subsummaries()
        .iter()
        .map(|s| Listed {
            name: s.name.to_owned(),
            digest: s.checksum,
            history: s.history.clone(),
        })
        .collect();
    Ok(Some(Index {
        index,
        sig,
        signatures,
        subsummaries,
    }))
}

/// The remote's verified index, fetched again fresh if it arrives damaged.
async fn verified_index(
    source: &Source,
    trust: &Trust,
    cache: Option<&Cache>,
) -> Result<Option<Index>, PullError> {
    let (idx, sig) = match cache {
        Some(c) => (c.load("summary.idx"), c.load("summary.idx.sig")),
        None => (Cached::default(), Cached::default()),
    };
    let cached = (&idx, &sig);
    let named = Named::path("summary.idx", PathKind::Metadata);
    fetch_checked(source, named, move |fresh| {
        fetch_index(source, trust, cached, fresh)
    })
    .await
}

/// Resolves `req.ref_name` through the remote's verified summary index; `Ok(None)` when
/// the remote has none. With a cache, the index, its signature and the subsummary read
/// are kept for the next check.
pub(super) async fn resolve(
    source: &Source,
    trust: &Trust,
    req: IndexRequest<'_>,
) -> Result<Option<FromIndex>, PullError> {
    let Some(index) = verified_index(source, trust, req.cache).await? else {
        return Ok(None);
    };
    let names: Vec<&str> = index.subsummaries.iter().map(|s| s.name.as_str()).collect();
    let i = choose(&names, req.ref_name, req.subsummary)?;
    let sub = index
        .subsummaries
        .get(i)
        .ok_or_else(|| PullError::Internal("subsummary index out of range".into()))?;
    let kept = req.cache.and_then(|c| c.load_subsummary(&sub.name));
    let got = subsummary::obtain(source, sub, kept).await?;
    let parsed = SummaryRef::from_bytes(&got.raw)
        .map_err(|e| PullError::Hostile(format!("subsummary {}: {e}", sub.name)))?;
    let commit = parsed.lookup_ref(req.ref_name).map(|r| r.checksum);
    let deltas = SummaryDeltas::of(&parsed);
    if let Some(cache) = req.cache {
        if got.route != SummaryRoute::IndexCached {
            cache.save_subsummary(&sub.name, &got.raw)?;
        }
        cache.save(&[
            ("summary.idx", &index.index),
            ("summary.idx.sig", &index.sig),
        ])?;
    }
    Ok(Some(FromIndex {
        signatures: index.signatures,
        commit,
        deltas,
        route: got.route,
    }))
}

/// Every ref of every subsummary of the remote's verified index, sorted by name (a ref
/// listed by several subsummaries once); `Ok(None)` when the remote has no index.
pub(super) async fn remote_refs(
    source: &Source,
    trust: &Trust,
) -> Result<Option<Vec<(String, Checksum)>>, PullError> {
    let Some(index) = verified_index(source, trust, None).await? else {
        return Ok(None);
    };
    let mut refs = std::collections::BTreeMap::new();
    for sub in &index.subsummaries {
        let raw = subsummary::whole(source, &sub.name, &sub.digest).await?;
        let parsed = SummaryRef::from_bytes(&raw)
            .map_err(|e| PullError::Hostile(format!("subsummary {}: {e}", sub.name)))?;
        refs.extend(
            parsed
                .refs()
                .iter()
                .map(|r| (r.name.to_owned(), r.checksum)),
        );
    }
    Ok(Some(refs.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flatpak_ref_picks_its_architecture() {
        let names = ["aarch64", "x86_64", "gnome-x86_64"];
        assert_eq!(
            choose(&names, "runtime/org.example.Platform/x86_64/stable", None).unwrap(),
            1
        );
        assert_eq!(
            choose(&names, "app/org.example.App/aarch64/stable", None).unwrap(),
            0
        );
    }

    #[test]
    fn a_missing_architecture_names_the_choices() {
        let err = choose(
            &["aarch64", "x86_64"],
            "app/org.example.App/i386/stable",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"i386\""), "{err}");
        assert!(err.contains("aarch64, x86_64"), "{err}");
        assert!(err.contains("summary.idx"), "{err}");
    }

    #[test]
    fn another_ref_takes_the_only_subsummary_or_names_the_choices() {
        assert_eq!(choose(&["x86_64"], "test/stable", None).unwrap(), 0);
        let err = choose(&["sub-a", "sub-b"], "test/stable", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no architecture"), "{err}");
        assert!(err.contains("sub-a, sub-b"), "{err}");
        assert!(choose(&[], "test/stable", None).is_err());
    }

    #[test]
    fn a_named_subsummary_wins_and_the_host_arch_is_the_last_choice() {
        let names = ["aarch64", "gnome-x86_64", "x86_64"];
        let r = "runtime/org.example.Platform/x86_64/stable";
        assert_eq!(choose(&names, r, Some("gnome-x86_64")).unwrap(), 1);
        let err = choose(&names, r, Some("kde-x86_64"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"kde-x86_64\""), "{err}");
        assert!(err.contains("--subsummary"), "{err}");
        let host = [host_arch(), "s390x-not-a-host"];
        assert_eq!(choose(&host, "os/stable", None).unwrap(), 0);
    }

    #[test]
    fn only_four_part_app_and_runtime_refs_have_an_architecture() {
        assert_eq!(flatpak_arch("app/a/x86_64/stable"), Some("x86_64"));
        assert_eq!(flatpak_arch("appstream/x86_64"), None);
        assert_eq!(flatpak_arch("runtime/a/x86_64"), None);
        assert_eq!(flatpak_arch("os/a/x86_64/stable"), None);
    }
}
