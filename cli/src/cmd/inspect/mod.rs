//! `cfsync inspect summary|delta|object`: look inside OSTree files without a repository.
//!
//! Every target is a path or an `http(s)://` URL (`file://` URLs are read as paths).
//! Bytes come from disk (read with a size cap) or from the engine's [`HttpSource`]
//! (timeouts, retries, size caps); all parsing is `cfsync-formats`. The JSON printed
//! with `--json` is documented field by field in `docs/json.md`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::limits::MAX_METADATA_FILE;
use cfsync_engine::source::{HttpSource, LocalSource, PathKind, SourceOptions};
use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::{self, CommitRef};
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::ops::{OpCode, OpCounts};
use cfsync_formats::delta::show::DeltaSummary;
use cfsync_formats::delta::signed::open_superblock;
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;
use cfsync_formats::file::{FileHasher, FileHeader, FilezReader};
use cfsync_formats::gvariant::{self, Value};
use cfsync_formats::metadata::{self, MetadataRef};
use cfsync_formats::object::ObjectType;
use cfsync_formats::summary::{RefEntry, SIGN_PREFIX, SummaryRef, SummarySigRef};
use cfsync_formats::summary_index::{self, SummaryIndexRef};
use serde_json::{Map, Value as J, json};

/// Largest file object `inspect object` streams through (objects are hashed as they
/// are read, never held in memory whole).
const MAX_FILE_OBJECT: u64 = 1 << 40;

/// Deepest GVariant nesting printed; deeper values are elided.
const MAX_DEPTH: usize = 64;

// ---------------------------------------------------------------------------------------
// Where bytes come from
// ---------------------------------------------------------------------------------------

/// A directory to read files from: on disk or under an HTTP base URL.
enum Loc {
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
    fn show(&self, rel: &str) -> String {
        match self {
            Loc::Dir(d) => d.join(rel).display().to_string(),
            Loc::Http { base, .. } => format!("{base}{rel}"),
        }
    }

    /// Reads `rel` whole (at most `cap` bytes); `None` if it does not exist.
    async fn get(&self, rel: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        match self {
            Loc::Dir(d) => read_local(&d.join(rel), cap),
            Loc::Http { source, .. } => source
                .get_bytes(rel, PathKind::Content, cap)
                .await
                .with_context(|| format!("fetching {}", self.show(rel))),
        }
    }

    /// Reads `rel` whole; a missing file is an error naming `what`.
    async fn get_required(&self, rel: &str, cap: u64, what: &str) -> Result<Vec<u8>> {
        self.get(rel, cap)
            .await?
            .ok_or_else(|| anyhow!("{what} {} does not exist", self.show(rel)))
    }

    /// Opens `rel` for blocking reads (call `read` from `spawn_blocking`); `None` if
    /// it does not exist.
    async fn reader(&self, rel: &str, cap: u64) -> Result<Option<Box<dyn Read + Send>>> {
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
fn locate(target: &str, is_file: impl Fn(&str) -> bool) -> Result<(Loc, Option<String>)> {
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

/// Writes `text` to stdout; a closed pipe (`| head`) ends quietly.
fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// Flattens an error chain into one message, leaving out each cause whose text its
/// parent already contains (the `cfsync-formats` errors print their source in their own
/// message *and* report it as `source()`, so `{:#}` would repeat it).
fn dedup_chain(e: anyhow::Error) -> anyhow::Error {
    let mut msg = String::new();
    let mut prev = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !prev.is_empty() && prev.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
        prev = text;
    }
    anyhow!(msg)
}

fn print_json(v: &J) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    emit(&s)
}

/// `writeln!` into a `String` (which cannot fail).
macro_rules! w {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

fn date(secs: u64) -> String {
    cfsync_verify::format_unix_utc(i64::try_from(secs).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------
// GVariant values as JSON
// ---------------------------------------------------------------------------------------

/// A GVariant value as JSON: numbers as numbers (little-endian, as GVariant stores
/// them), strings as strings, `ay` as lowercase hex, arrays and tuples as arrays,
/// dictionaries with string keys as objects, variants as `{"type", "value"}`, maybes as
/// the value or `null`. Undecodable parts become `{"error": "..."}`.
fn gv_json(v: Value<'_>, depth: usize) -> J {
    gv_json_inner(v, depth).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

fn gv_json_inner(v: Value<'_>, depth: usize) -> Result<J, gvariant::Error> {
    if depth > MAX_DEPTH {
        return Ok(json!({ "error": "nested too deeply" }));
    }
    let d = depth.saturating_add(1);
    let ty = v.type_str();
    Ok(match ty {
        "b" => J::Bool(v.as_bool()?),
        "y" => json!(v.as_u8()?),
        "n" => json!(v.as_i16_le()?),
        "q" => json!(v.as_u16_le()?),
        "i" => json!(v.as_i32_le()?),
        "u" => json!(v.as_u32_le()?),
        "x" => json!(v.as_i64_le()?),
        "t" => json!(v.as_u64_le()?),
        "d" => json!(v.as_f64_le()?),
        "s" | "o" | "g" => J::String(v.as_str()?.to_owned()),
        "ay" => J::String(hex::encode(v.as_bytes()?)),
        "v" => {
            let inner = v.as_variant()?;
            json!({ "type": inner.type_str(), "value": gv_json(inner, d) })
        }
        t if t.starts_with('m') => match v.as_maybe()? {
            Some(x) => gv_json(x, d),
            None => J::Null,
        },
        t if t.starts_with("a{") => {
            let mut m = Map::new();
            for e in v.array_iter()? {
                let [k, val] = e?.tuple_fields()?;
                let key = match gv_json(k, d) {
                    J::String(s) => s,
                    other => other.to_string(),
                };
                m.insert(key, gv_json(val, d));
            }
            J::Object(m)
        }
        t if t.starts_with('a') => {
            let mut out = Vec::new();
            for e in v.array_iter()? {
                out.push(gv_json(e?, d));
            }
            J::Array(out)
        }
        t if t.starts_with('(') || t.starts_with('{') => {
            let mut out = Vec::new();
            for e in v.tuple_iter()? {
                out.push(gv_json(e?, d));
            }
            J::Array(out)
        }
        _ => J::String(hex::encode(v.data())),
    })
}

/// An `a{sv}` dictionary as a JSON object of `{"type", "value"}`.
fn metadata_json(m: &MetadataRef<'_>) -> J {
    gv_json(m.as_value(), 0)
}

fn xattrs_json(x: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)]) -> J {
    J::Array(
        x.iter()
            .map(|(n, v)| {
                let name = n.as_ref();
                let name = name.strip_suffix(&[0]).unwrap_or(name);
                json!({
                    "name": String::from_utf8_lossy(name),
                    "value": hex::encode(v.as_ref()),
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// inspect summary
// ---------------------------------------------------------------------------------------

fn ref_json(r: &RefEntry<'_>) -> J {
    json!({
        "name": r.name,
        "commit": r.checksum.to_hex(),
        "commit_size": r.commit_size,
        "timestamp": r.timestamp().ok().flatten(),
        "version": r.version().ok().flatten(),
        "metadata": metadata_json(&r.metadata),
    })
}

/// The JSON of a parsed summary (see docs/json.md, `inspect summary`).
fn summary_json(bytes: &[u8], s: &SummaryRef<'_>) -> Result<J> {
    let deltas = s.static_deltas()?;
    let collections = s.collection_map()?;
    Ok(json!({
        "size": bytes.len(),
        "sha256": Checksum::of(bytes).to_hex(),
        "refs": s.refs().iter().map(ref_json).collect::<Vec<_>>(),
        "collection_refs": collections.iter().map(|c| json!({
            "collection_id": c.collection_id,
            "refs": c.refs.iter().map(ref_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "static_deltas": deltas.as_ref().map(|d| d.entries().iter().map(|e| json!({
            "name": e.name.to_string(),
            "from": e.name.from.map(|c| c.to_hex()),
            "to": e.name.to.to_hex(),
            "superblock_sha256": e.superblock_digest.to_hex(),
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "last_modified": s.last_modified()?,
        "expires": s.expires()?,
        "indexed_deltas": s.indexed_deltas()?,
        "mode": s.mode()?,
        "tombstone_commits": s.tombstone_commits()?,
        "collection_id": s.collection_id()?,
        "metadata": metadata_json(&s.metadata()),
    }))
}

/// The JSON of a `summary.sig` (or `summary.idx.sig`): signature counts per engine.
fn signatures_json(file: &str, bytes: &[u8]) -> Result<J> {
    let sig = SummarySigRef::from_bytes(bytes).with_context(|| format!("parsing {file}"))?;
    let gpg = sig.gpgsigs()?.map_or(0, |v| v.len());
    let mut engines = Map::new();
    let mut total = gpg;
    for e in sig.metadata().iter() {
        let (k, _) = e?;
        if let Some(engine) = k.strip_prefix(SIGN_PREFIX) {
            let n = sig.engine_signatures(engine)?.map_or(0, |v| v.len());
            total = total.saturating_add(n);
            engines.insert(engine.to_owned(), json!(n));
        }
    }
    Ok(json!({
        "file": file,
        "size": bytes.len(),
        "gpg": gpg,
        "engines": engines,
        "total": total,
    }))
}

/// `inspect summary`.
pub(crate) async fn summary(target: &str, json: bool) -> Result<()> {
    let (loc, file) = locate(target, |last| last.starts_with("summary"))?;
    let v = summary_value(&loc, file.as_deref())
        .await
        .with_context(|| format!("inspecting the summary at {target}"))
        .map_err(dedup_chain)?;
    if json {
        print_json(&v)
    } else {
        let mut o = String::new();
        print_summary_text(&mut o, &v);
        emit(&o)
    }
}

async fn summary_value(loc: &Loc, file: Option<&str>) -> Result<J> {
    let (summary_name, index_name) = match file {
        Some(f) if f.ends_with(".idx") => (None, Some(f.to_owned())),
        Some(f) => (Some(f.to_owned()), None),
        None => (Some("summary".to_owned()), Some("summary.idx".to_owned())),
    };
    let mut out = Map::new();
    out.insert("source".into(), json!(loc.show(file.unwrap_or(""))));
    let mut found = false;

    let mut summary = J::Null;
    let mut signatures = J::Null;
    if let Some(name) = &summary_name {
        let bytes = if file.is_some() {
            Some(loc.get_required(name, MAX_METADATA_FILE, "summary").await?)
        } else {
            loc.get(name, MAX_METADATA_FILE).await?
        };
        if let Some(bytes) = bytes {
            found = true;
            let s = SummaryRef::from_bytes(&bytes)
                .with_context(|| format!("parsing {}", loc.show(name)))?;
            summary = summary_json(&bytes, &s).with_context(|| loc.show(name))?;
            let sig_name = format!("{name}.sig");
            if let Some(sig) = loc.get(&sig_name, MAX_METADATA_FILE).await? {
                signatures = signatures_json(&loc.show(&sig_name), &sig)?;
            }
        }
    }
    out.insert("summary".into(), summary);
    out.insert("signatures".into(), signatures);

    let mut index = J::Null;
    if let Some(name) = &index_name {
        if let Some(bytes) = loc.get(name, MAX_METADATA_FILE).await? {
            found = true;
            index = index_json(loc, name, &bytes).await?;
        } else if file.is_some() {
            bail!("summary index {} does not exist", loc.show(name));
        }
    }
    out.insert("index".into(), index);
    if !found {
        bail!(
            "neither {} nor {} exists: not an OSTree repository, or its summary was never \
             generated (`ostree summary -u`)",
            loc.show("summary"),
            loc.show("summary.idx")
        );
    }
    Ok(J::Object(out))
}

/// The JSON of a flatpak `summary.idx` with every subsummary fetched, checked and
/// parsed, and every `summaries/<from>-<to>.delta` the history points at.
async fn index_json(loc: &Loc, name: &str, bytes: &[u8]) -> Result<J> {
    let idx = SummaryIndexRef::from_bytes(bytes)
        .with_context(|| format!("parsing {}", loc.show(name)))?;
    let mut subs = Vec::new();
    for sub in idx.subsummaries() {
        let path = sub.path();
        let gz = loc
            .get_required(&path, MAX_METADATA_FILE, "subsummary")
            .await?;
        let raw = summary_index::decompress_subsummary(&gz, MAX_METADATA_FILE)
            .with_context(|| format!("decompressing {}", loc.show(&path)))?;
        let digest = Checksum::of(&raw);
        let summary = if digest == sub.checksum {
            let s = SummaryRef::from_bytes(&raw)
                .with_context(|| format!("parsing {}", loc.show(&path)))?;
            summary_json(&raw, &s).with_context(|| loc.show(&path))?
        } else {
            J::Null
        };
        let mut diffs = Vec::new();
        for old in &sub.history {
            let dpath = summary_index::subsummary_diff_path(old, &sub.checksum);
            let Some(diff) = loc.get(&dpath, MAX_METADATA_FILE).await? else {
                continue;
            };
            let old_path = summary_index::subsummary_path(old);
            let applies = loc.get(&old_path, MAX_METADATA_FILE).await?.map(|old_gz| {
                summary_index::decompress_subsummary(&old_gz, MAX_METADATA_FILE)
                    .ok()
                    .and_then(|o| {
                        summary_index::apply_subsummary_diff(
                            &o,
                            &diff,
                            MAX_METADATA_FILE,
                            MAX_METADATA_FILE,
                        )
                        .ok()
                    })
                    .is_some_and(|new| Checksum::of(&new) == sub.checksum)
            });
            diffs.push(json!({
                "from": old.to_hex(),
                "to": sub.checksum.to_hex(),
                "path": dpath,
                "size": diff.len(),
                "applies": applies,
            }));
        }
        subs.push(json!({
            "name": sub.name,
            "arch": sub.arch(),
            "subset": sub.subset(),
            "sha256": sub.checksum.to_hex(),
            "path": path,
            "compressed_size": gz.len(),
            "size": raw.len(),
            "digest_matches": digest == sub.checksum,
            "history": sub.history.iter().map(Checksum::to_hex).collect::<Vec<_>>(),
            "diffs": diffs,
            "metadata": metadata_json(&sub.metadata),
            "summary": summary,
        }));
    }
    let sig_name = format!("{name}.sig");
    let signatures = match loc.get(&sig_name, MAX_METADATA_FILE).await? {
        Some(sig) => signatures_json(&loc.show(&sig_name), &sig)?,
        None => J::Null,
    };
    Ok(json!({
        "size": bytes.len(),
        "sha256": Checksum::of(bytes).to_hex(),
        "subsummaries": subs,
        "last_modified": idx.last_modified()?,
        "indexed_deltas": idx.indexed_deltas()?,
        "mode": idx.mode()?,
        "tombstone_commits": idx.tombstone_commits()?,
        "collection_id": idx.collection_id()?,
        "metadata": metadata_json(&idx.metadata()),
        "signatures": signatures,
    }))
}

fn opt_str(v: &J) -> String {
    match v {
        J::Null => "(none)".to_owned(),
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_summary_body(o: &mut String, indent: &str, s: &J) {
    let refs = s["refs"].as_array().cloned().unwrap_or_default();
    for r in &refs {
        w!(o, "{indent}* {}", opt_str(&r["name"]));
        w!(
            o,
            "{indent}    Latest Commit ({} bytes):",
            opt_str(&r["commit_size"])
        );
        w!(o, "{indent}      {}", opt_str(&r["commit"]));
        if let Some(ts) = r["timestamp"].as_u64() {
            w!(o, "{indent}    Timestamp: {}", date(ts));
        }
        if let Some(v) = r["version"].as_str() {
            w!(o, "{indent}    Version: {v}");
        }
    }
    for c in s["collection_refs"].as_array().cloned().unwrap_or_default() {
        w!(o, "{indent}Collection {}:", opt_str(&c["collection_id"]));
        for r in c["refs"].as_array().cloned().unwrap_or_default() {
            w!(
                o,
                "{indent}  * {} {} ({} bytes)",
                opt_str(&r["name"]),
                opt_str(&r["commit"]),
                opt_str(&r["commit_size"])
            );
        }
    }
    w!(
        o,
        "{indent}Size: {} bytes, sha256 {}",
        s["size"],
        opt_str(&s["sha256"])
    );
    w!(o, "{indent}Mode: {}", opt_str(&s["mode"]));
    w!(o, "{indent}Collection ID: {}", opt_str(&s["collection_id"]));
    let when = |k: &str| s[k].as_u64().map_or_else(|| "(none)".to_owned(), date);
    w!(o, "{indent}Last-Modified: {}", when("last_modified"));
    w!(o, "{indent}Expires: {}", when("expires"));
    w!(
        o,
        "{indent}Indexed deltas: {}",
        opt_str(&s["indexed_deltas"])
    );
    w!(
        o,
        "{indent}Tombstone commits: {}",
        opt_str(&s["tombstone_commits"])
    );
    let deltas = s["static_deltas"].as_array().cloned().unwrap_or_default();
    w!(o, "{indent}Static deltas: {}", deltas.len());
    for d in deltas {
        w!(o, "{indent}  {}", opt_str(&d["name"]));
    }
}

fn print_signatures(o: &mut String, indent: &str, sig: &J) {
    if sig.is_null() {
        w!(o, "{indent}Signatures: none (no signature file)");
        return;
    }
    let mut parts = vec![format!("{} gpg", sig["gpg"])];
    if let Some(m) = sig["engines"].as_object() {
        for (k, v) in m {
            parts.push(format!("{v} {k}"));
        }
    }
    w!(
        o,
        "{indent}Signatures ({}): {}",
        opt_str(&sig["file"]),
        parts.join(", ")
    );
}

fn print_summary_text(o: &mut String, v: &J) {
    w!(o, "Source: {}", opt_str(&v["source"]));
    if !v["summary"].is_null() {
        print_summary_body(o, "", &v["summary"]);
        print_signatures(o, "", &v["signatures"]);
    }
    let idx = &v["index"];
    if !idx.is_null() {
        w!(
            o,
            "Summary index: {} bytes, sha256 {}",
            idx["size"],
            opt_str(&idx["sha256"])
        );
        print_signatures(o, "  ", &idx["signatures"]);
        for sub in idx["subsummaries"].as_array().cloned().unwrap_or_default() {
            w!(
                o,
                "Subsummary {} ({}, {} bytes compressed){}",
                opt_str(&sub["name"]),
                opt_str(&sub["path"]),
                sub["compressed_size"],
                if sub["digest_matches"].as_bool() == Some(true) {
                    ""
                } else {
                    ": DIGEST MISMATCH"
                }
            );
            for d in sub["diffs"].as_array().cloned().unwrap_or_default() {
                w!(
                    o,
                    "  diff {} ({} bytes, applies: {})",
                    opt_str(&d["path"]),
                    d["size"],
                    opt_str(&d["applies"])
                );
            }
            if !sub["summary"].is_null() {
                print_summary_body(o, "  ", &sub["summary"]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// inspect delta
// ---------------------------------------------------------------------------------------

fn ops_json(ops: &OpCounts) -> J {
    let mut m = Map::new();
    for op in OpCode::ALL {
        m.insert(op.show_name().to_owned(), json!(ops.get(op)));
    }
    J::Object(m)
}

/// `inspect delta`.
pub(crate) async fn delta(target: &str, json: bool) -> Result<()> {
    let (loc, file) = locate(target, |last| last == "superblock")?;
    let sb_name = file.unwrap_or_else(|| "superblock".to_owned());
    let (v, text, bad) = delta_value(&loc, &sb_name)
        .await
        .with_context(|| format!("inspecting the delta at {target}"))
        .map_err(dedup_chain)?;
    if json {
        print_json(&v)?;
    } else {
        emit(&text)?;
    }
    if !bad.is_empty() {
        bail!("{}", bad.join("; "));
    }
    Ok(())
}

/// The JSON, the `ostree static-delta show` text, and the checksum mismatches found.
async fn delta_value(loc: &Loc, sb_name: &str) -> Result<(J, String, Vec<String>)> {
    let Some(bytes) = loc.get(sb_name, MAX_METADATA_FILE).await? else {
        if let Loc::Dir(d) = loc
            && d.join("deltas").is_dir()
        {
            bail!(
                "{} is a repository, not a delta: name a delta directory under {} (see \
                 `ostree static-delta list` and the `deltas/XX/REST` layout)",
                d.display(),
                d.join("deltas").display()
            );
        }
        bail!("delta superblock {} does not exist", loc.show(sb_name));
    };
    let file = open_superblock(&bytes).with_context(|| format!("parsing {}", loc.show(sb_name)))?;
    let sb = &file.superblock;
    let mut summary = DeltaSummary::from_file(&file);
    let mut parts = Vec::new();
    let mut bad = Vec::new();
    for header in sb.parts() {
        let i = header.index;
        let inline = sb
            .inline_part(i)
            .with_context(|| format!("{}: part {i}", loc.show(sb_name)))?;
        let rel = i.to_string();
        let path = if inline.is_some() {
            J::Null
        } else {
            json!(loc.show(&rel))
        };
        let (part_bytes, shown) = match inline {
            Some(b) => (
                Some(b.to_vec()),
                format!("{} (inline part {i})", loc.show(sb_name)),
            ),
            None => (
                loc.get(&rel, header.size)
                    .await
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|b| b.ok_or_else(|| format!("{} does not exist", loc.show(&rel))))
                    .map_err(|e| {
                        bad.push(format!("delta part: {e}"));
                        e
                    })
                    .ok(),
                loc.show(&rel),
            ),
        };
        let mut error = J::Null;
        let mut file_size = J::Null;
        let mut matches = J::Null;
        if let Some(part_bytes) = &part_bytes {
            let actual = Checksum::of(part_bytes);
            if actual != header.checksum {
                bad.push(format!(
                    "{shown}: checksum {actual} does not match the superblock's {}",
                    header.checksum
                ));
            }
            file_size = json!(part_bytes.len());
            matches = json!(actual == header.checksum);
            // ShowError's message already includes its source: print it alone.
            if let Err(e) = summary.add_part(sb, i, part_bytes, header.payload_cap()) {
                bad.push(format!("{shown}: {e}"));
                error = json!(e.to_string());
            }
        } else if let Some(b) = bad.last() {
            error = json!(b);
        }
        let payload = summary.parts.get(i).and_then(|p| p.payload);
        parts.push(json!({
            "index": i,
            "inline": inline.is_some(),
            "path": path,
            "n_objects": header.objects.len(),
            "size": header.size,
            "file_size": file_size,
            "uncompressed_size": header.uncompressed_size,
            "checksum": header.checksum.to_hex(),
            "checksum_matches": matches,
            "error": error,
            "n_modes": payload.map(|p| p.n_modes),
            "n_xattrs": payload.map(|p| p.n_xattrs),
            "blob_size": payload.map(|p| p.blob_size),
            "ops_size": payload.map(|p| p.ops_size),
            "ops": payload.map(|p| ops_json(&p.ops)),
            "n_ops": payload.map(|p| p.ops.total()),
        }));
    }
    let signed = file.signed.as_ref();
    let mut engines = Map::new();
    if let Some(s) = signed {
        for e in s.engines() {
            let n = s.engine_signatures(e).ok().flatten().map_or(0, |v| v.len());
            engines.insert(e.to_owned(), json!(n));
        }
    }
    let commit = sb
        .commit()
        .with_context(|| format!("{}: embedded commit", loc.show(sb_name)))?;
    let v = json!({
        "source": loc.show(sb_name),
        "name": summary.name.to_string(),
        "from": summary.name.from.map(|c| c.to_hex()),
        "to": summary.name.to.to_hex(),
        "signed": summary.signed,
        "signatures": engines,
        "endianness": summary.endianness.ostree_description(),
        "timestamp": summary.timestamp,
        "n_parents": summary.n_parents,
        "commit": {
            "subject": commit.subject(),
            "timestamp": commit.timestamp(),
            "parent": commit.parent().map(|c| c.to_hex()),
            "checksum_matches": commit.checksum() == summary.name.to,
        },
        "fallbacks": summary.fallbacks.iter().map(|f| json!({
            "checksum": f.checksum.to_hex(),
            "size": f.size,
            "uncompressed_size": f.uncompressed_size,
        })).collect::<Vec<_>>(),
        "parts": parts,
        "totals": {
            "fallback_size": summary.total_fallback_size(),
            "fallback_uncompressed_size": summary.total_fallback_uncompressed_size(),
            "part_size": summary.total_part_size(),
            "part_uncompressed_size": summary.total_part_uncompressed_size(),
            "size": summary.total_size(),
            "uncompressed_size": summary.total_uncompressed_size(),
            "n_objects": summary.parts.iter().map(|p| p.n_objects).sum::<usize>(),
            "ops": ops_json(&summary.total_ops()),
        },
    });
    if commit.checksum() != summary.name.to {
        bad.push(format!(
            "{}: the embedded commit's checksum {} is not the delta's target {}",
            loc.show(sb_name),
            commit.checksum(),
            summary.name.to
        ));
    }
    // A `deltas/XX/REST` directory names its delta: it must be the superblock's.
    let path_name = name_from_delta_dir(&loc.show(""));
    if let Some(n) = &path_name
        && *n != summary.name
    {
        bad.push(format!(
            "{} is the directory of delta {n}, but its superblock is for delta {}",
            loc.show(""),
            summary.name
        ));
    }
    let mut v = v;
    v["path_name"] = json!(path_name.map(|n| n.to_string()));
    // Exactly ostree's lines (signature engines are in the JSON only).
    let text = summary.to_string();
    Ok((v, text, bad))
}

/// The delta a `…/deltas/XX/REST` directory path names, if it is one.
fn name_from_delta_dir(dir: &str) -> Option<DeltaName> {
    let mut it = dir.trim_end_matches('/').rsplit('/');
    let rest = it.next()?;
    let head = it.next()?;
    if it.next()? != "deltas" {
        return None;
    }
    DeltaName::from_dir(&format!("deltas/{head}/{rest}")).ok()
}

// ---------------------------------------------------------------------------------------
// inspect object
// ---------------------------------------------------------------------------------------

/// The object name a path implies: `…/XX/REST.ext` (or `…/<64 hex>.ext`).
fn name_from_path(target: &str, stem: &str) -> Option<Checksum> {
    if stem.len() == 64 {
        return stem.parse().ok();
    }
    let mut it = target.trim_end_matches('/').rsplit('/');
    it.next()?;
    let dir = it.next()?;
    if dir.len() != 2 || stem.len() != 62 {
        return None;
    }
    format!("{dir}{stem}").parse().ok()
}

/// `inspect object`.
pub(crate) async fn object(target: &str, json: bool) -> Result<()> {
    let (loc, file) = locate(target, |_| true)?;
    let Some(file) = file else {
        bail!("{target}: is a directory, not an object file");
    };
    let (stem, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| anyhow!("{target}: no extension to tell the object type from"))?;
    let otype = match ext {
        "commit" => ObjectType::Commit,
        "dirtree" => ObjectType::DirTree,
        "dirmeta" => ObjectType::DirMeta,
        "commitmeta" => ObjectType::CommitMeta,
        "tombstone-commit" => ObjectType::TombstoneCommit,
        "filez" | "file" => ObjectType::File,
        other => bail!(
            "{target}: unknown object extension .{other} (expected .commit, .dirtree, \
             .dirmeta, .filez, .file, .commitmeta or .tombstone-commit)"
        ),
    };
    let expected = name_from_path(target, stem);
    let (computed, content) = object_content(&loc, &file, otype, ext, expected, target)
        .await
        .with_context(|| format!("inspecting object {target}"))
        .map_err(dedup_chain)?;
    let matches = match (computed, expected) {
        (Some(c), Some(e)) => Some(c == e),
        _ => None,
    };
    let v = json!({
        "source": loc.show(&file),
        "type": otype.as_str(),
        "extension": ext,
        "name": expected.map(|c| c.to_hex()),
        "checksum": computed.map(|c| c.to_hex()),
        "checksum_matches": matches,
        "content": content,
    });
    if json {
        print_json(&v)?;
    } else {
        let mut o = String::new();
        print_object_text(&mut o, &v);
        emit(&o)?;
    }
    if matches == Some(false) {
        bail!(
            "{target}: computed checksum {} does not match the object's name {}",
            opt_str(&v["checksum"]),
            opt_str(&v["name"])
        );
    }
    Ok(())
}

/// The computed checksum (for content-addressed types) and the decoded content.
async fn object_content(
    loc: &Loc,
    file: &str,
    otype: ObjectType,
    ext: &str,
    expected: Option<Checksum>,
    target: &str,
) -> Result<(Option<Checksum>, J)> {
    match otype {
        ObjectType::File if ext == "file" => {
            let content = bare_file_object(loc, expected, target).await?;
            return Ok(content);
        }
        ObjectType::File => {
            let reader = loc
                .reader(file, MAX_FILE_OBJECT)
                .await?
                .ok_or_else(|| anyhow!("{} does not exist", loc.show(file)))?;
            let shown = loc.show(file);
            let (header, checksum, compressed) =
                tokio::task::spawn_blocking(move || hash_filez(reader, &shown)).await??;
            let mut j = file_header_json(&header);
            j["compressed_size"] = json!(compressed);
            return Ok((Some(checksum), j));
        }
        _ => {}
    }
    let bytes = loc.get_required(file, MAX_METADATA_FILE, "object").await?;
    let shown = loc.show(file);
    let ctx = || format!("parsing {shown}");
    match otype {
        ObjectType::Commit => {
            let c = CommitRef::from_bytes(&bytes).with_context(ctx)?;
            let related: Vec<J> = c
                .related()
                .map(|r| r.map(|(n, c)| json!({"name": n, "commit": c.to_hex()})))
                .collect::<Result<_, commit::Error>>()
                .with_context(ctx)?;
            Ok((
                Some(Checksum::of(&bytes)),
                json!({
                    "size": bytes.len(),
                    "parent": c.parent().map(|p| p.to_hex()),
                    "subject": c.subject(),
                    "body": c.body(),
                    "timestamp": c.timestamp(),
                    "date": date(c.timestamp()),
                    "root_tree": c.root_contents().to_hex(),
                    "root_meta": c.root_metadata().to_hex(),
                    "version": c.version().ok().flatten(),
                    "related": related,
                    "metadata": metadata_json(&c.metadata()),
                }),
            ))
        }
        ObjectType::DirTree => {
            let t = DirTreeRef::from_bytes(&bytes).with_context(ctx)?;
            let files: Vec<J> = t
                .files()
                .map(|f| f.map(|(n, c)| json!({"name": n, "checksum": c.to_hex()})))
                .collect::<Result<_, _>>()
                .with_context(ctx)?;
            let dirs: Vec<J> = t
                .dirs()
                .map(|d| {
                    d.map(|(n, c, m)| json!({"name": n, "tree": c.to_hex(), "meta": m.to_hex()}))
                })
                .collect::<Result<_, _>>()
                .with_context(ctx)?;
            Ok((
                Some(Checksum::of(&bytes)),
                json!({"size": bytes.len(), "files": files, "dirs": dirs}),
            ))
        }
        ObjectType::DirMeta => {
            let m = DirMetaRef::from_bytes(&bytes).with_context(ctx)?;
            Ok((
                Some(Checksum::of(&bytes)),
                json!({
                    "size": bytes.len(),
                    "uid": m.uid(),
                    "gid": m.gid(),
                    "mode": m.mode(),
                    "mode_octal": format!("{:o}", m.mode()),
                    "xattrs": xattrs_json(m.xattrs_ref()),
                }),
            ))
        }
        ObjectType::CommitMeta => {
            let m = MetadataRef::from_bytes(&bytes).with_context(ctx)?;
            let gpg = m
                .get_bytes_array(metadata::GPGSIGS)
                .ok()
                .flatten()
                .map_or(0, |v| v.len());
            let ed = m
                .get_bytes_array(metadata::SIGN_ED25519)
                .ok()
                .flatten()
                .map_or(0, |v| v.len());
            Ok((
                None,
                json!({
                    "size": bytes.len(),
                    "gpg_signatures": gpg,
                    "ed25519_signatures": ed,
                    "metadata": metadata_json(&m),
                }),
            ))
        }
        ObjectType::TombstoneCommit => {
            let c = commit::parse_tombstone(&bytes).with_context(ctx)?;
            Ok((None, json!({"size": bytes.len(), "commit": c.to_hex()})))
        }
        other => bail!("{shown}: objects of type {other} are not supported"),
    }
}

fn file_header_json(h: &FileHeader) -> J {
    json!({
        "kind": if h.is_symlink() { "symlink" } else if h.is_regular() { "regular" } else { "other" },
        "size": h.size,
        "uid": h.uid,
        "gid": h.gid,
        "mode": h.mode,
        "mode_octal": format!("{:o}", h.mode),
        "rdev": h.rdev,
        "symlink_target": if h.is_symlink() { json!(h.symlink_target) } else { J::Null },
        "xattrs": xattrs_json(&h.xattrs),
    })
}

/// Decodes and hashes a `.filez` stream: header, object checksum, compressed bytes read.
fn hash_filez(reader: Box<dyn Read + Send>, shown: &str) -> Result<(FileHeader, Checksum, u64)> {
    let mut counted = CountingReader {
        inner: reader,
        n: 0,
    };
    let mut r = FilezReader::new(&mut counted).with_context(|| format!("decoding {shown}"))?;
    let mut hasher = r.hasher().with_context(|| format!("decoding {shown}"))?;
    std::io::copy(&mut r, &mut hasher).with_context(|| format!("reading {shown}"))?;
    let header = r.header().clone();
    drop(r);
    Ok((header, hasher.finish(), counted.n))
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n = self.n.saturating_add(n as u64);
        Ok(n)
    }
}

/// A `.file` object of a bare repository: its header lives in the file system (owner,
/// mode, xattrs or `user.ostreemeta`), so it is read through the repository.
async fn bare_file_object(
    loc: &Loc,
    expected: Option<Checksum>,
    target: &str,
) -> Result<(Option<Checksum>, J)> {
    let Loc::Dir(dir) = loc else {
        bail!(
            "{target}: a .file object (bare repository) carries its metadata in the file \
             system and cannot be inspected over HTTP; use its path"
        );
    };
    let expected = expected.ok_or_else(|| {
        anyhow!("{target}: a .file object must be named objects/XX/REST.file to be found")
    })?;
    // dir is <repo>/objects/XX.
    let repo = dir
        .parent()
        .and_then(Path::parent)
        .filter(|_| dir.parent().and_then(Path::file_name) == Some("objects".as_ref()))
        .ok_or_else(|| {
            anyhow!("{target}: a .file object must be under <repo>/objects/XX/ (its repository's config gives the mode)")
        })?
        .to_path_buf();
    let repo_shown = repo.display().to_string();
    let target = target.to_owned();
    tokio::task::spawn_blocking(move || -> Result<(Option<Checksum>, J)> {
        let source = LocalSource::open(&repo, None)
            .with_context(|| format!("opening repository {repo_shown}"))?;
        let (header, mut content) = source
            .open_file_object(&expected)
            .with_context(|| format!("reading {target}"))?
            .ok_or_else(|| {
                anyhow!(
                    "{target}: not found as a file object of repository {repo_shown} (mode {})",
                    source.mode()
                )
            })?;
        let mut hasher = FileHasher::new(&header).with_context(|| format!("{target}: header"))?;
        std::io::copy(&mut content, &mut hasher).with_context(|| format!("reading {target}"))?;
        let mut j = file_header_json(&header);
        j["size"] = json!(hasher.content_len());
        j["repo_mode"] = json!(source.mode().as_str());
        Ok((Some(hasher.finish()), j))
    })
    .await?
}

fn print_object_text(o: &mut String, v: &J) {
    w!(o, "Source: {}", opt_str(&v["source"]));
    w!(o, "Type: {}", opt_str(&v["type"]));
    w!(o, "Name: {}", opt_str(&v["name"]));
    let verdict = match v["checksum_matches"].as_bool() {
        Some(true) => " (matches the name)",
        Some(false) => " (DOES NOT MATCH the name)",
        None => "",
    };
    w!(o, "Checksum: {}{verdict}", opt_str(&v["checksum"]));
    let c = &v["content"];
    match v["type"].as_str() {
        Some("commit") => {
            w!(o, "Parent: {}", opt_str(&c["parent"]));
            w!(o, "Date: {}", opt_str(&c["date"]));
            w!(o, "Root tree: {}", opt_str(&c["root_tree"]));
            w!(o, "Root meta: {}", opt_str(&c["root_meta"]));
            if let Some(r) = c["related"].as_array().filter(|r| !r.is_empty()) {
                for x in r {
                    w!(
                        o,
                        "Related: {} {}",
                        opt_str(&x["name"]),
                        opt_str(&x["commit"])
                    );
                }
            }
            w!(o, "Subject: {}", opt_str(&c["subject"]));
            if let Some(b) = c["body"].as_str().filter(|b| !b.is_empty()) {
                w!(o, "Body:");
                for l in b.lines() {
                    w!(o, "    {l}");
                }
            }
            print_json_metadata(o, &c["metadata"]);
        }
        Some("dir-tree") | Some("dirtree") => {
            for f in c["files"].as_array().cloned().unwrap_or_default() {
                w!(
                    o,
                    "file {} {}",
                    opt_str(&f["checksum"]),
                    opt_str(&f["name"])
                );
            }
            for d in c["dirs"].as_array().cloned().unwrap_or_default() {
                w!(
                    o,
                    "dir  {} {} {}",
                    opt_str(&d["tree"]),
                    opt_str(&d["meta"]),
                    opt_str(&d["name"])
                );
            }
        }
        Some("commitmeta") | Some("commit-meta") => {
            w!(o, "GPG signatures: {}", c["gpg_signatures"]);
            w!(o, "ed25519 signatures: {}", c["ed25519_signatures"]);
            print_json_metadata(o, &c["metadata"]);
        }
        _ => {
            if let Some(m) = c.as_object() {
                for (k, val) in m {
                    if k == "xattrs" {
                        for x in val.as_array().cloned().unwrap_or_default() {
                            w!(
                                o,
                                "xattr {} = {}",
                                opt_str(&x["name"]),
                                opt_str(&x["value"])
                            );
                        }
                    } else {
                        w!(o, "{k}: {}", opt_str(val));
                    }
                }
            }
        }
    }
}

fn print_json_metadata(o: &mut String, m: &J) {
    if let Some(map) = m.as_object() {
        for (k, v) in map {
            w!(
                o,
                "Metadata {k} ({}): {}",
                opt_str(&v["type"]),
                v.get("value").cloned().unwrap_or(J::Null)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_repeated_causes() {
        let inner = anyhow!("malformed");
        let e = inner.context("summary: malformed").context("parsing x");
        assert_eq!(dedup_chain(e).to_string(), "parsing x: summary: malformed");
        let e = anyhow!("a").context("b").context("c");
        assert_eq!(dedup_chain(e).to_string(), "c: b: a");
    }

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

    #[test]
    fn names_from_paths() {
        let hex = "ab".to_owned() + &"c".repeat(62);
        let c: Checksum = hex.parse().unwrap();
        assert_eq!(
            name_from_path(
                &format!("/r/objects/ab/{}.commit", "c".repeat(62)),
                &"c".repeat(62)
            ),
            Some(c)
        );
        assert_eq!(name_from_path("x.commit", "x"), None);
        assert_eq!(name_from_path(&format!("{hex}.commit"), &hex), Some(c));
        assert_eq!(
            name_from_path(&format!("/r/xy/{}.commit", "c".repeat(61)), &"c".repeat(61)),
            None
        );
    }
}
