//! Ref resolution through flatpak's summary index, for remotes that publish `summary.idx`
//! and per-architecture subsummaries but no legacy `summary` (the Flathub layout).
//!
//! `summary.idx` is verified with `summary.idx.sig` under the summary policy keys
//! (`gpg-verify-summary`, `sign-verify-summary`), exactly as `summary.sig` is; the
//! subsummary for the ref's architecture (`app/ID/ARCH/BRANCH`, `runtime/ID/ARCH/BRANCH`;
//! else the only one) is fetched from `summaries/<sha256>.gz`, gunzipped (capped) and
//! checked against the digest the verified index names, then read as a summary. A body
//! that fails its checks is fetched again, fresh (`refetch.rs`). `cfsync remote refs`
//! lists the refs of every subsummary. Neither file is cached, and subsummary diffs are
//! not used.

use cfsync_formats::checksum::Checksum;
use cfsync_formats::summary::SummaryRef;
use cfsync_formats::summary_index::{self, SummaryIndexRef};

use super::SummaryDeltas;
use crate::error::PullError;
use crate::limits::{MAX_SUMMARY, MAX_SUMMARY_INDEX, MAX_SUMMARY_SIG};
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{PathKind, Source};
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
}

/// A verified index: its signatures and its subsummaries (name, digest), in its order.
struct Index {
    signatures: Vec<String>,
    subsummaries: Vec<(String, Checksum)>,
}

/// The architecture of a flatpak ref (`app/ID/ARCH/BRANCH`, `runtime/ID/ARCH/BRANCH`).
fn flatpak_arch(ref_name: &str) -> Option<&str> {
    let parts: Vec<&str> = ref_name.split('/').collect();
    match parts.as_slice() {
        ["app" | "runtime", _, arch, _] if !arch.is_empty() => Some(arch),
        _ => None,
    }
}

/// Which of the index's subsummaries (by name) holds `ref_name`: the one named for the
/// ref's architecture, else the only one; otherwise an error naming the choices.
fn choose(names: &[&str], ref_name: &str) -> Result<usize, PullError> {
    let found = match flatpak_arch(ref_name) {
        Some(arch) => names.iter().position(|n| *n == arch),
        None if names.len() == 1 => Some(0),
        None => None,
    };
    found.ok_or_else(|| {
        let wanted = match flatpak_arch(ref_name) {
            Some(arch) => format!("the subsummary for architecture {arch:?} of ref {ref_name:?}"),
            None => format!("one subsummary for ref {ref_name:?}, which names no architecture,"),
        };
        let choices = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        };
        PullError::NotFound {
            what: format!("{wanted} (summary.idx lists: {choices})"),
            path: "summary.idx".into(),
        }
    })
}

/// Fetches `summary.idx` and `summary.idx.sig` and verifies the index. `Ok(None)`: the
/// remote has no summary index.
async fn fetch_index(source: &Source, trust: &Trust) -> Result<Option<Index>, Failed> {
    let Some(index) = source
        .get_bytes("summary.idx", PathKind::Metadata, MAX_SUMMARY_INDEX)
        .await?
    else {
        return Ok(None);
    };
    let sig = source
        .get_bytes("summary.idx.sig", PathKind::Metadata, MAX_SUMMARY_SIG)
        .await?;
    let signatures = match trust.verify_summary_index(&index, sig.as_deref()) {
        Ok(s) => s,
        Err(e) if sig.is_some() => return Err(Failed::Unverified(e.into())),
        Err(e) => return Err(Failed::Final(e.into())),
    };
    let parsed = SummaryIndexRef::from_bytes(&index)
        .map_err(|e| Failed::Damaged(PullError::Hostile(format!("summary.idx: {e}"))))?;
    let subsummaries = parsed
        .subsummaries()
        .iter()
        .map(|s| (s.name.to_owned(), s.checksum))
        .collect();
    Ok(Some(Index {
        signatures,
        subsummaries,
    }))
}

/// The remote's verified index, fetched again fresh if it arrives damaged.
async fn verified_index(source: &Source, trust: &Trust) -> Result<Option<Index>, PullError> {
    let named = Named::path("summary.idx", PathKind::Metadata);
    fetch_checked(source, named, |fresh| {
        let source = source.fresh(fresh);
        async move { fetch_index(&source, trust).await }
    })
    .await
}

/// Fetches subsummary `name` (`summaries/<digest>.gz`), gunzips it, checks its SHA-256
/// against the index's `digest` and reads it with `read`; a body that fails is fetched
/// again, fresh.
async fn read_subsummary<T>(
    source: &Source,
    name: &str,
    digest: &Checksum,
    read: impl Fn(&SummaryRef<'_>) -> T,
) -> Result<T, PullError> {
    let path = summary_index::subsummary_path(digest);
    let what = format!("subsummary {name} ({path})");
    let named = Named {
        what: &what,
        path: &path,
        kind: PathKind::Metadata,
    };
    let read = &read;
    fetch_checked(source, named, |fresh| {
        let source = source.fresh(fresh);
        let path = &path;
        async move {
            let gz = source
                .get_bytes(path, PathKind::Metadata, MAX_SUMMARY)
                .await?
                .ok_or_else(|| PullError::NotFound {
                    what: "the subsummary named by summary.idx".into(),
                    path: path.to_owned(),
                })?;
            let damaged =
                |msg: String| Failed::Damaged(PullError::Hostile(format!("{path}: {msg}")));
            let raw = summary_index::decompress_subsummary(&gz, MAX_SUMMARY)
                .map_err(|e| damaged(e.to_string()))?;
            let actual = Checksum::of(&raw);
            if actual != *digest {
                return Err(damaged(format!(
                    "checksum mismatch (content hashes to {actual}, summary.idx says {digest})"
                )));
            }
            let parsed = SummaryRef::from_bytes(&raw).map_err(|e| damaged(e.to_string()))?;
            Ok(read(&parsed))
        }
    })
    .await
}

/// Resolves `ref_name` through the remote's verified summary index; `Ok(None)` when the
/// remote has none.
pub(super) async fn resolve(
    source: &Source,
    trust: &Trust,
    ref_name: &str,
) -> Result<Option<FromIndex>, PullError> {
    let Some(index) = verified_index(source, trust).await? else {
        return Ok(None);
    };
    let names: Vec<&str> = index.subsummaries.iter().map(|(n, _)| n.as_str()).collect();
    let i = choose(&names, ref_name)?;
    let (name, digest) = index
        .subsummaries
        .get(i)
        .ok_or_else(|| PullError::Internal("subsummary index out of range".into()))?;
    let (commit, deltas) = read_subsummary(source, name, digest, |parsed| {
        (
            parsed.lookup_ref(ref_name).map(|r| r.checksum),
            SummaryDeltas::of(parsed),
        )
    })
    .await?;
    Ok(Some(FromIndex {
        signatures: index.signatures,
        commit,
        deltas,
    }))
}

/// Every ref of every subsummary of the remote's verified index, sorted by name (a ref
/// listed by several subsummaries once); `Ok(None)` when the remote has no index.
pub(super) async fn remote_refs(
    source: &Source,
    trust: &Trust,
) -> Result<Option<Vec<(String, Checksum)>>, PullError> {
    let Some(index) = verified_index(source, trust).await? else {
        return Ok(None);
    };
    let mut refs = std::collections::BTreeMap::new();
    for (name, digest) in &index.subsummaries {
        let listed = read_subsummary(source, name, digest, |parsed| {
            parsed
                .refs()
                .iter()
                .map(|r| (r.name.to_owned(), r.checksum))
                .collect::<Vec<_>>()
        })
        .await?;
        refs.extend(listed);
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
            choose(&names, "runtime/org.example.Platform/x86_64/stable").unwrap(),
            1
        );
        assert_eq!(
            choose(&names, "app/org.example.App/aarch64/stable").unwrap(),
            0
        );
    }

    #[test]
    fn a_missing_architecture_names_the_choices() {
        let err = choose(&["aarch64", "x86_64"], "app/org.example.App/i386/stable")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"i386\""), "{err}");
        assert!(err.contains("aarch64, x86_64"), "{err}");
        assert!(err.contains("summary.idx"), "{err}");
    }

    #[test]
    fn another_ref_takes_the_only_subsummary_or_names_the_choices() {
        assert_eq!(choose(&["x86_64"], "test/stable").unwrap(), 0);
        let err = choose(&["aarch64", "x86_64"], "test/stable")
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no architecture"), "{err}");
        assert!(err.contains("aarch64, x86_64"), "{err}");
        assert!(choose(&[], "test/stable").is_err());
    }

    #[test]
    fn only_four_part_app_and_runtime_refs_have_an_architecture() {
        assert_eq!(flatpak_arch("app/a/x86_64/stable"), Some("x86_64"));
        assert_eq!(flatpak_arch("appstream/x86_64"), None);
        assert_eq!(flatpak_arch("runtime/a/x86_64"), None);
        assert_eq!(flatpak_arch("os/a/x86_64/stable"), None);
    }
}
