//! One subsummary of a verified `summary.idx`, obtained the cheapest way that checks out
//! against the digest the index names: the copy kept from the last update check; else a
//! diff `summaries/<old>-<new>.delta` from that copy when the index lists it in the
//! subsummary's history; else the whole `summaries/<new>.gz`.
//!
//! A diff that is missing (404), does not gunzip or apply, or whose result does not hash
//! to the index's digest is not an error: the whole subsummary is fetched instead (and a
//! damaged whole subsummary is fetched again, fresh, as every body is: `refetch.rs`).

use cfsync_formats::checksum::Checksum;
use cfsync_formats::summary::SummaryRef;
use cfsync_formats::summary_index;

use super::SummaryRoute;
use crate::error::PullError;
use crate::limits::MAX_SUMMARY;
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{PathKind, Source};

/// One subsummary as the verified index lists it.
#[derive(Debug, Clone)]
pub(super) struct Listed {
    /// Its name (`<arch>` or `<subset>-<arch>`).
    pub(super) name: String,
    /// SHA-256 of the current uncompressed subsummary.
    pub(super) digest: Checksum,
    /// Older digests, newest first.
    pub(super) history: Vec<Checksum>,
}

/// A subsummary's checked bytes and how they were obtained.
pub(super) struct Obtained {
    /// The uncompressed subsummary; its SHA-256 is the index's digest and it parses.
    pub(super) raw: Vec<u8>,
    /// [`SummaryRoute::IndexCached`], [`SummaryRoute::IndexDelta`] or
    /// [`SummaryRoute::IndexSubsummary`].
    pub(super) route: SummaryRoute,
}

/// The subsummary `sub`, from `kept` (the last copy of it, if any) when it is current,
/// else through a diff from `kept`, else whole.
pub(super) async fn obtain(
    source: &Source,
    sub: &Listed,
    kept: Option<Vec<u8>>,
) -> Result<Obtained, PullError> {
    if let Some(old) = kept {
        let old_digest = Checksum::of(&old);
        if old_digest == sub.digest && SummaryRef::from_bytes(&old).is_ok() {
            return Ok(Obtained {
                raw: old,
                route: SummaryRoute::IndexCached,
            });
        }
        if sub.history.contains(&old_digest)
            && let Some(raw) = through_diff(source, sub, &old, &old_digest).await?
        {
            return Ok(Obtained {
                raw,
                route: SummaryRoute::IndexDelta,
            });
        }
    }
    Ok(Obtained {
        raw: whole(source, &sub.name, &sub.digest).await?,
        route: SummaryRoute::IndexSubsummary,
    })
}

/// Fetches `summaries/<old>-<new>.delta` and applies it to `old`; `Ok(None)` when the
/// diff is missing, damaged or gives the wrong bytes (each said in the log).
async fn through_diff(
    source: &Source,
    sub: &Listed,
    old: &[u8],
    old_digest: &Checksum,
) -> Result<Option<Vec<u8>>, PullError> {
    let path = summary_index::subsummary_diff_path(old_digest, &sub.digest);
    let Some(gz) = source
        .get_bytes(&path, PathKind::Metadata, MAX_SUMMARY)
        .await?
    else {
        tracing::debug!("{path}: not on the server; fetching the whole subsummary");
        return Ok(None);
    };
    let fallback = |why: String| {
        tracing::warn!(
            "subsummary {} diff {}: {why}; fetching the whole subsummary instead",
            sub.name,
            source.location(&path, PathKind::Metadata)
        );
        Ok(None)
    };
    let raw = match summary_index::apply_subsummary_diff(old, &gz, MAX_SUMMARY, MAX_SUMMARY) {
        Ok(raw) => raw,
        Err(e) => return fallback(e.to_string()),
    };
    let actual = Checksum::of(&raw);
    if actual != sub.digest {
        return fallback(format!(
            "the result hashes to {actual}, summary.idx says {}",
            sub.digest
        ));
    }
    if let Err(e) = SummaryRef::from_bytes(&raw) {
        return fallback(format!("the result does not parse: {e}"));
    }
    Ok(Some(raw))
}

/// Fetches subsummary `name` (`summaries/<digest>.gz`), gunzips it, checks its SHA-256
/// against the index's `digest` and that it parses as a summary; a body that fails is
/// fetched again, fresh.
pub(super) async fn whole(
    source: &Source,
    name: &str,
    digest: &Checksum,
) -> Result<Vec<u8>, PullError> {
    let path = summary_index::subsummary_path(digest);
    let what = format!("subsummary {name} ({path})");
    let named = Named {
        what: &what,
        path: &path,
        kind: PathKind::Metadata,
    };
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
            SummaryRef::from_bytes(&raw).map_err(|e| damaged(e.to_string()))?;
            Ok(raw)
        }
    })
    .await
}
