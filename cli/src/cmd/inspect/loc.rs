//! Where the bytes of an inspected target come from: a command-line target (a path,
//! `file://` or `http(s)://` URL) resolved to a directory plus, when it names one, a
//! file in it.
//!
//! The directory is read with a thin private locator rather than the engine's
//! `LocalSource`: that one opens OSTree repositories only (it requires `config`),
//! while an inspected directory may be anything holding a summary or a delta.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::source::{HttpSource, PathKind, SourceOptions};

/// A directory to read files from: on disk or under an HTTP base URL.
pub(super) enum Loc {
    /// A directory on disk.
    Dir(PathBuf),
    /// A base URL ending in `/`.
    Http { source: HttpSource, base: String },
}

impl Loc {
    /// A location for the base URL `base` (must end in `/`).
    fn http(base: &str) -> Result<Loc> {
        let source = HttpSource::new(base, SourceOptions::default())
            .with_context(|| format!("cannot use URL {base}"))?;
        Ok(Loc::Http {
            source,
            base: base.to_owned(),
        })
    }

    /// The full path or URL of `rel`, for messages and output.
    pub(super) fn show(&self, rel: &str) -> String {
        match self {
            Loc::Dir(d) => d.join(rel).display().to_string(),
            Loc::Http { base, .. } => format!("{base}{rel}"),
        }
    }

    /// Reads `rel` whole (at most `cap` bytes); `None` if it does not exist.
    pub(super) async fn get(&self, rel: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        match self {
            Loc::Dir(d) => read_local(&d.join(rel), cap),
            Loc::Http { source, .. } => source
                .get_bytes(rel, PathKind::Content, cap)
                .await
                .with_context(|| format!("fetching {}", self.show(rel))),
        }
    }

    /// Reads `rel` whole; a missing file is an error naming `what`.
    pub(super) async fn get_required(&self, rel: &str, cap: u64, what: &str) -> Result<Vec<u8>> {
        self.get(rel, cap)
            .await?
            .ok_or_else(|| anyhow!("{what} {} does not exist", self.show(rel)))
    }

    /// Opens `rel` for blocking reads (call `read` from `spawn_blocking`); `None` if
    /// it does not exist.
    pub(super) async fn reader(&self, rel: &str, cap: u64) -> Result<Option<Box<dyn Read + Send>>> {
        match self {
            Loc::Dir(d) => {
                let path = d.join(rel);
                match File::open(&path) {
                    Ok(f) => Ok(Some(Box::new(f.take(cap)))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
                }
            }
            Loc::Http { source, .. } => {
                let stream = source
                    .get_stream(rel, PathKind::Content, cap)
                    .await
                    .with_context(|| format!("fetching {}", self.show(rel)))?;
                Ok(stream.map(|s| {
                    Box::new(tokio_util::io::SyncIoBridge::new(s.into_reader()))
                        as Box<dyn Read + Send>
                }))
            }
        }
    }
}

/// Reads a local file of at most `cap` bytes; `None` if it does not exist.
fn read_local(path: &Path, cap: u64) -> Result<Option<Vec<u8>>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let len = f
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > cap {
        bail!(
            "{} is {len} bytes, more than the limit of {cap} bytes",
            path.display()
        );
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    if buf.len() as u64 > cap {
        bail!(
            "{} grew past the limit of {cap} bytes while being read",
            path.display()
        );
    }
    Ok(Some(buf))
}

/// A command-line target: a URL or a local path.
enum Target {
    /// `http://` or `https://`.
    Url(String),
    /// A local path (from a plain path or a `file://` URL).
    Path(PathBuf),
}

impl Target {
    fn parse(target: &str) -> Result<Target> {
        let lower = target.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            if target.contains(['?', '#']) {
                bail!("{target}: URLs with a query or fragment are not supported");
            }
            return Ok(Target::Url(target.to_owned()));
        }
        if lower.starts_with("file://") {
            let rest = target.get("file://".len()..).unwrap_or_default();
            if !rest.starts_with('/') {
                bail!("{target}: a file:// URL needs an absolute path (file:///path)");
            }
            return Ok(Target::Path(PathBuf::from(rest)));
        }
        if let Some((scheme, _)) = target.split_once("://") {
            bail!("{target}: unsupported scheme {scheme:?} (use http, https, file or a path)");
        }
        Ok(Target::Path(PathBuf::from(target)))
    }
}

/// Splits a URL into its directory (ending in `/`) and last path segment (empty when
/// the URL ends in `/` or has no path).
fn split_url(url: &str) -> (String, String) {
    let after_scheme = url.find("://").map_or(0, |i| i.saturating_add(3));
    let path_start = url
        .get(after_scheme..)
        .and_then(|s| s.find('/'))
        .map(|i| i.saturating_add(after_scheme));
    match path_start {
        None => (format!("{url}/"), String::new()),
        Some(_) => match url.rfind('/') {
            Some(i) => (
                url.get(..=i).unwrap_or(url).to_owned(),
                url.get(i.saturating_add(1)..)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => (format!("{url}/"), String::new()),
        },
    }
}

/// Resolves a target to a directory and, when the target names a file in it, that
/// file's name. `is_file` decides, for URLs, whether the last segment is a file (local
/// paths are checked on disk).
pub(super) fn locate(
    target: &str,
    is_file: impl Fn(&str) -> bool,
) -> Result<(Loc, Option<String>)> {
    match Target::parse(target)? {
        Target::Url(url) => {
            let (dir, last) = split_url(&url);
            if last.is_empty() {
                Ok((Loc::http(&dir)?, None))
            } else if is_file(&last) {
                Ok((Loc::http(&dir)?, Some(last)))
            } else {
                Ok((Loc::http(&format!("{url}/"))?, None))
            }
        }
        Target::Path(p) => {
            // A dangling symlink is still a file here (bare repositories store symlink
            // objects as symlinks).
            let meta = std::fs::metadata(&p)
                .or_else(|_| std::fs::symlink_metadata(&p))
                .with_context(|| format!("{}", p.display()))?;
            if meta.is_dir() {
                return Ok((Loc::Dir(p), None));
            }
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow!("{}: not a UTF-8 file name", p.display()))?
                .to_owned();
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            Ok((Loc::Dir(dir), Some(name)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://h:1/a/b/summary"),
            ("http://h:1/a/b/".to_owned(), "summary".to_owned())
        );
        assert_eq!(
            split_url("http://h:1"),
            ("http://h:1/".to_owned(), String::new())
        );
        assert_eq!(
            split_url("http://h:1/"),
            ("http://h:1/".to_owned(), String::new())
        );
        assert_eq!(
            split_url("https://h/repo"),
            ("https://h/".to_owned(), "repo".to_owned())
        );
    }
}
