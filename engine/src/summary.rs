//! The remote's summary and `summary.sig`: fetched with conditional requests, cached in
//! the repository, verified before any ref is resolved from them.
//!
//! The request order follows libostree (docs/ostree-formats.md §5.5): `summary.sig`
//! first, conditionally; when the server answers 304, or sends the signature already
//! cached, the cached summary is used without another request. So an up-to-date pull
//! costs one request. Without a summary, the ref is read from `refs/heads/<ref>`.
//!
//! Cache: `<repo>/cfsync/summaries/<key>/{summary,summary.sig,validators}` where
//! `validators` holds the ETag and Last-Modified of each file, one `name\tetag\tlm` line
//! each. A cached summary that fails verification is fetched again without validators
//! and verified again before the pull fails.

use std::path::PathBuf;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::object::ref_path;
use cfsync_formats::summary::SummaryRef;
use composefs::fsverity::FsVerityHashValue;

use crate::limits::{MAX_SUMMARY, MAX_SUMMARY_SIG};
use crate::error::PullError;
use crate::pull::PullOptions;
use crate::source::{Conditional, PathKind, Source};
use crate::store::{Store, StoreError};
use crate::trust::Trust;


/// The outcome of resolving the ref.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The commit the ref points at (None when the ref is unknown).
    pub commit: Option<Checksum>,
    /// The summary bytes, when the remote has one (verified if the policy says so).
    pub summary: Option<Vec<u8>>,
    /// Valid summary signatures, one line each.
    pub signatures: Vec<String>,
}

#[derive(Debug, Default, Clone)]
struct Cached {
    body: Option<Vec<u8>>,
    etag: Option<String>,
    last_modified: Option<String>,
}

struct Cache {
    dir: PathBuf,
}

impl Cache {
    fn new<ObjectID: FsVerityHashValue>(
        store: &Store<ObjectID>,
        key: &str,
    ) -> Result<Self, StoreError> {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let safe = if safe.is_empty() || safe.starts_with('.') {
            format!("_{safe}")
        } else {
            safe
        };
        let dir = store.state_dir()?.join("summaries").join(safe);
        Ok(Self { dir })
    }

    fn load(&self, name: &str) -> Cached {
        let body = std::fs::read(self.dir.join(name)).ok();
        let mut c = Cached {
            body,
            ..Cached::default()
        };
        if c.body.is_some()
            && let Ok(v) = std::fs::read_to_string(self.dir.join("validators"))
        {
            for line in v.lines() {
                let mut it = line.split('\t');
                if it.next() == Some(name) {
                    c.etag = it.next().filter(|s| !s.is_empty()).map(str::to_owned);
                    c.last_modified = it.next().filter(|s| !s.is_empty()).map(str::to_owned);
                }
            }
        }
        c
    }

    fn save(&self, summary: &Cached, sig: &Cached) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        let mut validators = String::new();
        for (name, c) in [("summary", summary), ("summary.sig", sig)] {
            let path = self.dir.join(name);
            match &c.body {
                Some(b) => {
                    write_atomic(&path, b)?;
                    let clean = |s: &Option<String>| {
                        s.as_deref().unwrap_or("").replace(['\t', '\n', '\r'], " ")
                    };
                    validators.push_str(&format!(
                        "{name}\t{}\t{}\n",
                        clean(&c.etag),
                        clean(&c.last_modified)
                    ));
                }
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        write_atomic(&self.dir.join("validators"), validators.as_bytes())
    }
}

fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<(), StoreError> {
    crate::atomic::write(path, data).map_err(|e| StoreError::io(path, e))
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
        } => {
            // A file modified within the last seconds may change again within the same
            // second without changing its Last-Modified (nor nginx's ETag, made of the
            // mtime and size): such "racy" validators are not kept, so the next pull
            // fetches the file in full instead of trusting a 304.
            let racy = last_modified
                .as_deref()
                .and_then(parse_http_date)
                .is_none_or(|t| t.saturating_add(RACY_SECONDS) >= unix_now());
            let (etag, last_modified) = if racy && last_modified.is_some() {
                (None, None)
            } else {
                (etag, last_modified)
            };
            Cached {
                body: Some(body),
                etag,
                last_modified,
            }
        }
    })
}

/// Validators of a file modified less than this many seconds before it was fetched are
/// not kept (see [`conditional`]).
const RACY_SECONDS: i64 = 2;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Parses an HTTP date in the IMF-fixdate form servers send (`Sun, 06 Nov 1994 08:49:37
/// GMT`) into seconds since the epoch; `None` for anything else.
fn parse_http_date(s: &str) -> Option<i64> {
    let rest = s.trim().split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day: i64 = it.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_name = it.next()?;
    let month = i64::try_from(MONTHS.iter().position(|m| *m == month_name)?).ok()? + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let (h, m, sec): (i64, i64, i64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), as in verify's timefmt inverse.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Fetches (or reuses) the summary, verifies it per `trust`, and resolves `opts.ref_name`.
pub async fn resolve<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    source: &Source,
    trust: &Trust,
    opts: &PullOptions,
) -> Result<Resolved, PullError> {
    let use_cache = matches!(source, Source::Http(_)) && !opts.cache_key.is_empty();
    let cache = Cache::new(store, &opts.cache_key)?;
    let (cached_sum, cached_sig) = if use_cache {
        (cache.load("summary"), cache.load("summary.sig"))
    } else {
        (Cached::default(), Cached::default())
    };

    let sig = conditional(source, "summary.sig", MAX_SUMMARY_SIG, &cached_sig).await?;
    let mut from_cache = false;
    let summary = if sig.body.is_some() && sig.body == cached_sig.body && cached_sum.body.is_some()
    {
        from_cache = true;
        cached_sum.clone()
    } else {
        let s = conditional(source, "summary", MAX_SUMMARY, &cached_sum).await?;
        from_cache = from_cache || (s.body.is_some() && s.body == cached_sum.body);
        s
    };

    let mut resolved = Resolved::default();
    match &summary.body {
        Some(body) => {
            let mut verified = trust.verify_summary(body, sig.body.as_deref());
            let (mut summary, mut sig) = (summary.clone(), sig.clone());
            if verified.is_err() && from_cache {
                // The cache may be stale or damaged: fetch both afresh and try once more.
                sig = conditional(
                    source,
                    "summary.sig",
                    MAX_SUMMARY_SIG,
                    &Cached::default(),
                )
                .await?;
                summary =
                    conditional(source, "summary", MAX_SUMMARY, &Cached::default()).await?;
                let body = summary.body.as_deref().unwrap_or_default();
                verified = trust.verify_summary(body, sig.body.as_deref());
            }
            resolved.signatures = verified?;
            let body = summary.body.clone().unwrap_or_default();
            let parsed = SummaryRef::from_bytes(&body)
                .map_err(|e| PullError::Hostile(format!("summary: {e}")))?;
            resolved.commit = parsed.lookup_ref(&opts.ref_name).map(|r| r.checksum);
            if use_cache {
                cache.save(&summary, &sig)?;
            }
            resolved.summary = Some(body);
        }
        None => {
            if trust.requires_summary_signature() {
                trust.verify_summary(&[], None)?;
            }
            if opts.commit.is_none() {
                let path = ref_path(&opts.ref_name);
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

/// Keeps a commit's detached metadata (signatures) beside the store for `cfsync show`.
pub fn save_commitmeta<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
    data: &[u8],
) -> Result<(), StoreError> {
    let dir = store.state_dir()?.join("commitmeta");
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    write_atomic(&dir.join(format!("{commit}.commitmeta")), data)
}

/// A commit's detached metadata, if it was saved.
pub fn load_commitmeta<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
) -> Result<Option<Vec<u8>>, StoreError> {
    let path = store
        .state_dir()?
        .join("commitmeta")
        .join(format!("{commit}.commitmeta"));
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// A remote's refs from its summary (verified when the policy says so), without
/// touching any repository.
pub async fn remote_refs(
    source: &Source,
    trust: &Trust,
) -> Result<Vec<(String, Checksum)>, PullError> {
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
        trust.verify_summary(&summary, sig.as_deref())?;
    }
    let parsed = SummaryRef::from_bytes(&summary)
        .map_err(|e| PullError::Hostile(format!("summary: {e}")))?;
    Ok(parsed
        .refs()
        .iter()
        .map(|r| (r.name.to_owned(), r.checksum))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::parse_http_date;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }
}
