//! The on-disk state the summary route keeps beside the store: the last summary and
//! `summary.sig` (or `summary.idx`, its signature and subsummaries) of each remote with the validators of their conditional requests, and
//! each pulled commit's detached metadata.
//!
//! Cache: `<repo>/cfsync/summaries/<key>/{summary,summary.sig,summary.idx,
//! summary.idx.sig,validators}` where `validators` holds the ETag and Last-Modified of
//! each file, one `name\tetag\tlm` line each; `subsummary-<name>`: the last subsummary
//! of that name, uncompressed (its SHA-256 is its digest in `summary.idx`); `route`: what
//! the remote published at the last check (`summary`, `index` or `neither`). Detached
//! metadata: `<repo>/cfsync/commitmeta/<commit>.commitmeta`.

use std::path::PathBuf;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use crate::store::{Store, StoreError};

/// One cached file (or one just fetched) with the validators kept for it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Cached {
    pub(super) body: Option<Vec<u8>>,
    pub(super) etag: Option<String>,
    pub(super) last_modified: Option<String>,
}

impl Cached {
    /// A file just fetched with its validators, dropped when they are racy.
    pub(super) fn fetched(
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Self {
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
}

/// The cache directory of one remote.
pub(super) struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub(super) fn new<ObjectID: FsVerityHashValue>(
        store: &Store<ObjectID>,
        key: &str,
    ) -> Result<Self, StoreError> {
        let safe = safe_name(key);
        let safe = if safe.is_empty() || safe.starts_with('.') {
            format!("_{safe}")
        } else {
            safe
        };
        let dir = store.state_dir()?.join("summaries").join(safe);
        Ok(Self { dir })
    }

    pub(super) fn load(&self, name: &str) -> Cached {
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

    /// Saves `files` (name, body and validators; a file without a body is removed),
    /// keeping the validators of the other files of this cache.
    pub(super) fn save(&self, files: &[(&str, &Cached)]) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        let saved = |n: &str| files.iter().any(|(f, _)| *f == n);
        let mut validators: String = std::fs::read_to_string(self.dir.join("validators"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !saved(l.split('\t').next().unwrap_or("")))
            .map(|l| format!("{l}\n"))
            .collect();
        for (name, c) in files {
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

    /// The last subsummary kept under `name` (uncompressed; the caller checks its
    /// digest), if any.
    pub(super) fn load_subsummary(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(subsummary_file(name))).ok()
    }

    /// Keeps `data` as the last subsummary `name` (replacing the one kept before).
    pub(super) fn save_subsummary(&self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        write_atomic(&self.dir.join(subsummary_file(name)), data)
    }

    /// Which route resolved the last ref of this remote ([`Memo::Unknown`] when none is
    /// kept or the cache is off).
    pub(super) fn memo(&self) -> Memo {
        match std::fs::read_to_string(self.dir.join("route")).as_deref() {
            Ok("summary\n") => Memo::Summary,
            Ok("index\n") => Memo::Index,
            Ok("neither\n") => Memo::Neither,
            _ => Memo::Unknown,
        }
    }

    /// Keeps which route resolved the ref, so the next update check asks the remote for
    /// that route first.
    pub(super) fn save_memo(&self, memo: Memo) -> Result<(), StoreError> {
        let word = match memo {
            Memo::Summary => "summary\n",
            Memo::Index => "index\n",
            Memo::Neither => "neither\n",
            Memo::Unknown => return Ok(()),
        };
        if self.memo() == memo {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::io(&self.dir, e))?;
        write_atomic(&self.dir.join("route"), word.as_bytes())
    }
}

/// What a remote published at the last update check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Memo {
    /// Nothing is known.
    Unknown,
    /// A legacy `summary`.
    Summary,
    /// `summary.idx` and no legacy summary.
    Index,
    /// Neither: refs are read from `refs/heads/`.
    Neither,
}

/// The cache file of subsummary `name` (any character outside `[A-Za-z0-9._-]` as `_`).
fn subsummary_file(name: &str) -> String {
    format!("subsummary-{}", safe_name(name))
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`, fit to be part
/// of a file name.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<(), StoreError> {
    crate::atomic::write(path, data).map_err(|e| StoreError::io(path, e))
}

/// Validators of a file modified less than this many seconds before it was fetched are
/// not kept (see [`Cached::fetched`]).
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

/// Where a commit's detached metadata is kept.
fn commitmeta_path<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
) -> Result<PathBuf, StoreError> {
    Ok(store
        .state_dir()?
        .join("commitmeta")
        .join(format!("{commit}.commitmeta")))
}

/// Keeps a commit's detached metadata (signatures) beside the store for `cfsync show`,
/// durably.
pub(crate) fn save_commitmeta<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
    data: &[u8],
) -> Result<(), StoreError> {
    let path = commitmeta_path(store, commit)?;
    write_atomic(&path, data)
}

/// [`save_commitmeta`] for a commit about to be stored: not fsynced, because the barrier
/// before its commit stream is written makes it durable (and until that stream exists,
/// nothing reads it; a pull that stops before rewrites it when it resumes).
pub(crate) fn stage_commitmeta<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    commit: &Checksum,
    data: &[u8],
) -> Result<(), StoreError> {
    let path = commitmeta_path(store, commit)?;
    crate::atomic::write_before_barrier(&path, data).map_err(|e| StoreError::io(path, e))
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

#[cfg(test)]
mod tests {
    use super::{Cache, Cached, Memo, parse_http_date};

    fn file(body: &[u8], etag: &str) -> Cached {
        Cached {
            body: Some(body.to_vec()),
            etag: Some(etag.to_owned()),
            last_modified: Some("Sun, 06 Nov 1994 08:49:37 GMT".to_owned()),
        }
    }

    #[test]
    fn saving_the_index_keeps_the_summary_validators_and_the_memo_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache {
            dir: tmp.path().join("c"),
        };
        assert_eq!(cache.memo(), Memo::Unknown);
        cache
            .save(&[
                ("summary", &file(b"s", "\"1\"")),
                ("summary.sig", &file(b"g", "\"2\"")),
            ])
            .unwrap();
        cache
            .save(&[
                ("summary.idx", &file(b"i", "\"3\"")),
                ("summary.idx.sig", &Cached::default()),
            ])
            .unwrap();
        assert_eq!(cache.load("summary").etag.as_deref(), Some("\"1\""));
        assert_eq!(cache.load("summary.sig").body.as_deref(), Some(&b"g"[..]));
        assert_eq!(cache.load("summary.idx").etag.as_deref(), Some("\"3\""));
        assert_eq!(cache.load("summary.idx.sig").body, None);
        // Saved again: one line per file, the new validators.
        cache.save(&[("summary", &file(b"t", "\"4\""))]).unwrap();
        assert_eq!(cache.load("summary").etag.as_deref(), Some("\"4\""));
        let v = std::fs::read_to_string(tmp.path().join("c/validators")).unwrap();
        assert_eq!(v.lines().count(), 3, "{v}");
        for memo in [Memo::Index, Memo::Neither, Memo::Summary] {
            cache.save_memo(memo).unwrap();
            assert_eq!(cache.memo(), memo);
        }
        cache.save_subsummary("gnome/x86_64", b"sub").unwrap();
        assert_eq!(
            cache.load_subsummary("gnome/x86_64").as_deref(),
            Some(&b"sub"[..])
        );
        assert!(tmp.path().join("c/subsummary-gnome_x86_64").is_file());
        assert_eq!(cache.load_subsummary("x86_64"), None);
    }

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
