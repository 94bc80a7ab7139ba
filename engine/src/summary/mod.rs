//! The remote's summary and `summary.sig`: fetched with conditional requests, cached in
//! the repository, verified before any ref is resolved from them.
//!
//! `summary.sig` and `summary` are asked for at once, both conditionally (one round
//! trip; an up-to-date pull gets two 304 answers). Without a summary, the ref is read
//! through flatpak's summary index (`index.rs`, `subsummary.rs`) when the remote has
//! one, else from `refs/heads/<ref>`. Which of the three the remote published is kept
//! (`cache.rs`, [`cache::Memo`]), and the next check asks for that first: an index
//! remote is not asked for a summary it does not have, and a remote with neither is
//! asked for `summary`, `summary.idx` and `refs/heads/<ref>` in one round trip.
//!
//! The cache (`cache.rs`) keeps each remote's last summary and signature with their
//! validators. A summary that fails verification or does not parse (cached, stale, or
//! damaged in transit) is fetched again with its signature, both fresh and without
//! validators, within the source's attempt budget (`refetch.rs`); a signature
//! that never verifies is refused as it was.

mod cache;
mod index;
mod subsummary;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::index::DeltaList;
use cfsync_formats::object::ref_path;
use cfsync_formats::summary::SummaryRef;
use composefs::fsverity::FsVerityHashValue;

use crate::error::PullError;
use crate::limits::{MAX_SUMMARY, MAX_SUMMARY_INDEX, MAX_SUMMARY_SIG};
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{Conditional, Fresh, PathKind, Source};
use crate::store::Store;
use crate::trust::Trust;
use cache::{Cache, Cached, Memo};
use index::IndexRequest;

pub use cache::load_commitmeta;
pub(crate) use cache::{save_commitmeta, stage_commitmeta};

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
    /// The subsummary of `summary.idx` to read the ref from (see `index.rs`'s `choose`).
    pub(crate) subsummary: Option<&'a str>,
}

/// Which way the ref was resolved (`summary_route` in `pull --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SummaryRoute {
    /// The legacy `summary` (fetched, or the cached copy after a 304).
    #[serde(rename = "summary")]
    Summary,
    /// `summary.idx` and the whole subsummary (`summaries/<digest>.gz`).
    #[serde(rename = "index+subsummary")]
    IndexSubsummary,
    /// `summary.idx` and a subsummary diff applied to the kept subsummary.
    #[serde(rename = "index+subsummary-delta")]
    IndexDelta,
    /// `summary.idx` and the subsummary kept from the last check (still current).
    #[serde(rename = "index+kept-subsummary")]
    IndexCached,
    /// `refs/heads/<ref>` (the remote has neither summary nor index).
    #[serde(rename = "refs/heads")]
    RefsHeads,
    /// No summary, and the caller named the commit: nothing to resolve.
    #[serde(rename = "commit")]
    Commit,
}

impl std::fmt::Display for SummaryRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SummaryRoute::Summary => "summary",
            SummaryRoute::IndexSubsummary => "index+subsummary",
            SummaryRoute::IndexDelta => "index+subsummary-delta",
            SummaryRoute::IndexCached => "index+kept-subsummary",
            SummaryRoute::RefsHeads => "refs/heads",
            SummaryRoute::Commit => "commit",
        })
    }
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
    /// Which way the ref was resolved.
    pub(crate) route: Option<SummaryRoute>,
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

/// Asks for `summary.sig` and `summary` at once and checks them: with the cached validators first
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
    let (sig, summary) = futures::join!(
        conditional(&source, "summary.sig", MAX_SUMMARY_SIG, cached_sig),
        conditional(&source, "summary", MAX_SUMMARY, cached_sum),
    );
    let (sig, mut summary) = (sig?, summary?);
    // The signature already cached covers the cached summary: keep that one whatever
    // the summary request brought (a mirror's stale or damaged copy), as libostree does.
    if sig.body.is_some() && sig.body == cached_sig.body && cached_sum.body.is_some() {
        summary = cached_sum.clone();
    }
    let from_cache = summary.body.is_some() && summary.body == cached_sum.body;
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

/// Resolves `req.ref_name` through the remote's summary, else its summary index, else
/// `refs/heads/<ref>`, verified per `trust`, asking first for what the remote published
/// at the last check.
pub(crate) async fn resolve<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    source: &Source,
    trust: &Trust,
    req: RefRequest<'_>,
) -> Result<Resolved, PullError> {
    let use_cache = matches!(source, Source::Http(_)) && !req.cache_key.is_empty();
    let cache = Cache::new(store, req.cache_key)?;
    let memo = if use_cache {
        cache.memo()
    } else {
        Memo::Unknown
    };
    let index_req = IndexRequest {
        ref_name: req.ref_name,
        subsummary: req.subsummary,
        cache: use_cache.then_some(&cache),
    };
    let mut index_tried = false;
    match memo {
        Memo::Index => {
            index_tried = true;
            if let Some(found) = index::resolve(source, trust, index_req).await? {
                return remember(&cache, use_cache, Memo::Index, from_index(found));
            }
        }
        Memo::Neither => {
            if let Some(resolved) = neither(source, trust, req).await? {
                return remember(&cache, use_cache, Memo::Neither, resolved);
            }
        }
        Memo::Summary | Memo::Unknown => {}
    }
    if let Some(resolved) = legacy(source, trust, req, &cache, use_cache).await? {
        return remember(&cache, use_cache, Memo::Summary, resolved);
    }
    if !index_tried && let Some(found) = index::resolve(source, trust, index_req).await? {
        return remember(&cache, use_cache, Memo::Index, from_index(found));
    }
    let resolved = refs_heads(source, trust, req).await?;
    remember(&cache, use_cache, Memo::Neither, resolved)
}

fn from_index(found: index::FromIndex) -> Resolved {
    Resolved {
        commit: found.commit,
        deltas: Some(found.deltas),
        signatures: found.signatures,
        route: Some(found.route),
    }
}

/// Keeps what the remote published for the next check.
fn remember(
    cache: &Cache,
    use_cache: bool,
    memo: Memo,
    resolved: Resolved,
) -> Result<Resolved, PullError> {
    if use_cache {
        cache.save_memo(memo)?;
    }
    Ok(resolved)
}

/// The ref through the legacy summary (cached with its signature); `Ok(None)` when the
/// remote has none.
async fn legacy(
    source: &Source,
    trust: &Trust,
    req: RefRequest<'_>,
    cache: &Cache,
    use_cache: bool,
) -> Result<Option<Resolved>, PullError> {
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
    let Some(c) = checked else {
        return Ok(None);
    };
    // Nothing to write when both answers were `304 Not Modified` (the cached files and
    // validators stand as they are).
    if use_cache && (c.summary != cached_sum || c.sig != cached_sig) {
        cache.save(&[("summary", &c.summary), ("summary.sig", &c.sig)])?;
    }
    Ok(Some(Resolved {
        commit: c.commit,
        deltas: Some(c.deltas),
        signatures: c.signatures,
        route: Some(SummaryRoute::Summary),
    }))
}

/// The ref without summary or index: refused when the policy wants a signed summary;
/// else `refs/heads/<ref>` unless the caller names the commit.
async fn refs_heads(
    source: &Source,
    trust: &Trust,
    req: RefRequest<'_>,
) -> Result<Resolved, PullError> {
    if trust.requires_summary_signature() {
        trust.verify_summary(&[], None)?;
    }
    if req.commit_given {
        return Ok(Resolved {
            route: Some(SummaryRoute::Commit),
            ..Resolved::default()
        });
    }
    let body = source
        .get_bytes(&ref_path(req.ref_name), PathKind::Metadata, 1024)
        .await?;
    ref_file(req.ref_name, body)
}

/// A `refs/heads/<ref>` file's commit.
fn ref_file(ref_name: &str, body: Option<Vec<u8>>) -> Result<Resolved, PullError> {
    let mut resolved = Resolved {
        route: Some(SummaryRoute::RefsHeads),
        ..Resolved::default()
    };
    if let Some(body) = body {
        let text = String::from_utf8_lossy(&body);
        let c = text.trim().parse::<Checksum>().map_err(|e| {
            PullError::Hostile(format!(
                "{}: not a commit checksum: {e}",
                ref_path(ref_name)
            ))
        })?;
        resolved.commit = Some(c);
    }
    Ok(resolved)
}

/// For a remote that had neither summary nor index at the last check: asks for
/// `summary`, `summary.idx` and (unless the commit is given) `refs/heads/<ref>` in one
/// round trip. `Ok(None)` when a
/// summary or an index has appeared (the caller then takes the usual order).
async fn neither(
    source: &Source,
    trust: &Trust,
    req: RefRequest<'_>,
) -> Result<Option<Resolved>, PullError> {
    if trust.requires_summary_signature() {
        return Ok(None);
    }
    let path = ref_path(req.ref_name);
    let head = async {
        match req.commit_given {
            true => Ok(None),
            false => source.get_bytes(&path, PathKind::Metadata, 1024).await,
        }
    };
    let (summary, index, head) = futures::join!(
        source.get_conditional("summary", MAX_SUMMARY, None, None),
        source.get_conditional("summary.idx", MAX_SUMMARY_INDEX, None, None),
        head,
    );
    if summary? != Conditional::NotFound || index? != Conditional::NotFound {
        return Ok(None);
    }
    if req.commit_given {
        return Ok(Some(Resolved {
            route: Some(SummaryRoute::Commit),
            ..Resolved::default()
        }));
    }
    ref_file(req.ref_name, head?).map(Some)
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
