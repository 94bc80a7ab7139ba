//! `inspect summary`: a summary file and its signatures, or a flatpak summary index
//! with its subsummaries and their diffs.

use anyhow::{Context, Result, bail};
use cfsync_engine::limits::MAX_METADATA_FILE;
use cfsync_formats::checksum::Checksum;
use cfsync_formats::summary::{RefEntry, SIGN_PREFIX, SummaryRef, SummarySigRef};
use cfsync_formats::summary_index::{self, SummaryIndexRef};
use serde_json::{Map, Value as J, json};

use super::gvjson::metadata_json;
use super::loc::{Loc, locate};
use super::out::{date, dedup_chain, emit, opt_str, print_json, w};

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
pub(super) async fn summary(target: &str, json: bool) -> Result<()> {
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
