//! The remote's summary and `summary.sig`: fetched with conditional requests, cached in
//! the repository, verified before any ref is resolved from them.
//!
//! The request order follows libostree (docs/ostree-formats.md §5.5): `summary.sig`
//! first, conditionally; when the server answers 304, or sends the signature already
//! cached, the cached summary is used without another request. So an up-to-date pull
//! costs one request. Without a summary, the ref is read through flatpak's summary
//! index (`index.rs`) when the remote has one, else from `refs/heads/<ref>`.
//!
//! The cache (`cache.rs`) keeps each remote's last summary and signature with their
//! validators. A summary that fails verification or does not parse (cached, stale, or
//! damaged in transit) is fetched again with its signature, both fresh and without
//! validators, within the source's attempt budget (`refetch.rs`); a signature
//! that never verifies is refused as it was.

mod cache;
mod index;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::index::DeltaList;
use cfsync_formats::object::ref_path;
use cfsync_formats::summary::SummaryRef;
use composefs::fsverity::FsVerityHashValue;

use crate::error::PullError;
use crate::limits::{MAX_SUMMARY, MAX_SUMMARY_SIG};
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{Conditional, Fresh, PathKind, Source};
use crate::store::Store;
use crate::trust::Trust;
use cache::{Cache, Cached};

pub use cache::load_commitmeta;
pub(crate) use cache::save_commitmeta;

/// Which ref to resolve, and where its remote's summary is cached.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefRequest<'a> {
    /// The ref.
    pub(crate) ref_name: &'a str,
    /// Whether the caller names the commit itself (then `refs/heads/<ref>` is not read
    /// when the remote has no summary).
    pub(crate) commit_given: bool,
    /// Key under which the remote's summary is cached (a remote name or URL); empty for
    /// no cache.
    pub(crate) cache_key: &'a str,
}

/// What a remote's summary says about static deltas, kept from the parse that resolved
/// the ref so the delta route does not parse the summary again.
#[derive(Debug)]
pub struct SummaryDeltas {
    /// `ostree.static-deltas`: the listed deltas, or why the list is malformed (reported
    /// only if the delta route reads it, as before).
    pub listed: Result<Option<DeltaList>, String>,
    /// `ostree.summary.indexed-deltas` is set (a malformed value counts as unset).
    pub indexed: bool,
}

impl SummaryDeltas {
    /// Reads the delta facts of a parsed summary.
    fn of(parsed: &SummaryRef<'_>) -> SummaryDeltas {
        SummaryDeltas {
            listed: parsed.static_deltas().map_err(|e| e.to_string()),
            indexed: parsed.indexed_deltas().ok().flatten().unwrap_or(false),
        }
    }
}

/// The outcome of resolving the ref.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// The commit the ref points at (None when the ref is unknown).
    pub(crate) commit: Option<Checksum>,
    /// What the summary says about static deltas, when the remote has a summary
    /// (verified if the policy says so); read from the one parse of the summary.
    pub(crate) deltas: Option<SummaryDeltas>,
    /// Valid summary signatures, one line each.
    pub(crate) signatures: Vec<String>,
}

async fn conditional(
    source: &Source,
    name: &str,
    max: u64,
    cached: &Cached,
) -> Result<Cached, PullError> {
    let (etag, lm) = if cached.body.is_some() {
        (cached.etag.as_deref(), cached.last_modified.as_deref())
    } else {
        (None, None)
    };
    Ok(match source.get_conditional(name, max, etag, lm).await? {
        Conditional::NotModified => cached.clone(),
        Conditional::NotFound => Cached::default(),
        Conditional::Fetched {
            body,
            etag,
            last_modified,
        } => Cached::fetched(body, etag, last_modified),
    })
}

/// A summary fetched (or taken from the cache) and checked: its signatures verified, and
/// parsed once.
struct Checked {
    summary: Cached,
    sig: Cached,
    signatures: Vec<String>,
    commit: Option<Checksum>,
    deltas: SummaryDeltas,
}

/// Fetches `summary.sig` and `summary` and checks them: with the cached validators first
/// (`Fresh::No`), then, after a failure, both afresh without them (the cache may be
/// stale, or a body damaged). `Ok(None)`: the remote has no summary.
async fn fetch_summary(
    source: &Source,
    trust: &Trust,
    ref_name: &str,
    cached: (&Cached, &Cached),
    fresh: Fresh,
) -> Result<Option<Checked>, Failed> {
    let none = Cached::default();
    let (cached_sum, cached_sig) = match fresh {
        Fresh::No => cached,
        Fresh::Yes => (&none, &none),
    };
    let source = source.fresh(fresh);
    let sig = conditional(&source, "summary.sig", MAX_SUMMARY_SIG, cached_sig).await?;
    let from_cache;
    let summary = if sig.body.is_some() && sig.body == cached_sig.body && cached_sum.body.is_some()
    {
        from_cache = true;
        cached_sum.clone()
    } else {
        let s = conditional(&source, "summary", MAX_SUMMARY, cached_sum).await?;
        from_cache = s.body.is_some() && s.body == cached_sum.body;
        s
    };
    let Some(body) = &summary.body else {
        return Ok(None);
    };
    let signatures = match trust.verify_summary(body, sig.body.as_deref()) {
        Ok(s) => s,
        // A signature (or a cached summary) that does not verify may be damaged or
        // stale: fetch both again.
        Err(e) if sig.body.is_some() || from_cache => return Err(Failed::Unverified(e.into())),
        Err(e) => return Err(Failed::Final(e.into())),
    };
    let parsed = SummaryRef::from_bytes(body)
        .map_err(|e| Failed::Damaged(PullError::Hostile(format!("summary: {e}"))))?;
    let commit = parsed.lookup_ref(ref_name).map(|r| r.checksum);
    let deltas = SummaryDeltas::of(&parsed);
    Ok(Some(Checked {
        summary,
        sig,
        signatures,
        commit,
        deltas,
    }))
}

/// Fetches (or reuses) the summary, verifies it per `trust`, and resolves `req.ref_name`.
pub(crate) async fn resolve<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    source: &Source,
    trust: &Trust,
    req: RefRequest<'_>,
) -> Result<Resolved, PullError> {
    let use_cache = matches!(source, Source::Http(_)) && !req.cache_key.is_empty();
    let cache = Cache::new(store, req.cache_key)?;
    let (cached_sum, cached_sig) = if use_cache {
        (cache.load("summary"), cache.load("summary.sig"))
    } else {
        (Cached::default(), Cached::default())
    };
    let cached = (&cached_sum, &cached_sig);
    let named = Named::path("summary", PathKind::Metadata);
    let checked = fetch_checked(source, named, move |fresh| {
        fetch_summary(source, trust, req.ref_name, cached, fresh)
    })
    .await?;

    let mut resolved = Resolved::default();
    match checked {
        Some(c) => {
            resolved.signatures = c.signatures;
            resolved.commit = c.commit;
            resolved.deltas = Some(c.deltas);
            if use_cache {
                cache.save(&c.summary, &c.sig)?;
            }
        }
        None => {
            if let Some(found) = index::resolve(source, trust, req.ref_name).await? {
                resolved.signatures = found.signatures;
                resolved.commit = found.commit;
                resolved.deltas = Some(found.deltas);
                return Ok(resolved);
            }
            if trust.requires_summary_signature() {
                trust.verify_summary(&[], None)?;
            }
            if !req.commit_given {
                let path = ref_path(req.ref_name);
                if let Some(body) = source.get_bytes(&path, PathKind::Metadata, 1024).await? {
                    let text = String::from_utf8_lossy(&body);
                    let c = text.trim().parse::<Checksum>().map_err(|e| {
                        PullError::Hostile(format!("{path}: not a commit checksum: {e}"))
                    })?;
                    resolved.commit = Some(c);
                }
            }
        }
    }
    Ok(resolved)
}

/// A remote's refs from its summary (verified when the policy says so), or, when it
/// has none, from every subsummary of its verified `summary.idx`, without
/// touching any repository. A summary that does not parse or verify is fetched again,
/// fresh, with its signature (`refetch.rs`).
pub async fn remote_refs(
    source: &Source,
    trust: &Trust,
) -> Result<Vec<(String, Checksum)>, PullError> {
    match legacy_remote_refs(source, trust).await {
        // No legacy summary: a flatpak remote may list its refs in `summary.idx`.
        Err(PullError::NotFound { what, path }) if path == "summary" => {
            match index::remote_refs(source, trust).await? {
                Some(refs) => Ok(refs),
                None => Err(PullError::NotFound { what, path }),
            }
        }
        other => other,
    }
}

/// The refs of the remote's legacy `summary`.
async fn legacy_remote_refs(
    source: &Source,
    trust: &Trust,
) -> Result<Vec<(String, Checksum)>, PullError> {
    let named = Named::path("summary", PathKind::Metadata);
    fetch_checked(source, named, |fresh| {
        let source = source.fresh(fresh);
        async move {
            let summary = source
                .get_bytes("summary", PathKind::Metadata, MAX_SUMMARY)
                .await?
                .ok_or_else(|| PullError::NotFound {
                    what: "summary".into(),
                    path: "summary".into(),
                })?;
            if trust.requires_summary_signature() {
                let sig = source
                    .get_bytes("summary.sig", PathKind::Metadata, MAX_SUMMARY_SIG)
                    .await?;
                if let Err(e) = trust.verify_summary(&summary, sig.as_deref()) {
                    return Err(match sig {
                        Some(_) => Failed::Unverified(e.into()),
                        None => Failed::Final(e.into()),
                    });
                }
            }
            let parsed = SummaryRef::from_bytes(&summary)
                .map_err(|e| Failed::Damaged(PullError::Hostile(format!("summary: {e}"))))?;
            Ok(parsed
                .refs()
                .iter()
                .map(|r| (r.name.to_owned(), r.checksum))
                .collect())
        }
    })
    .await
}
