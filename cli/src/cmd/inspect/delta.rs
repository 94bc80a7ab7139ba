//! `inspect delta`: a static delta's superblock and parts, checked against each other,
//! as `ostree static-delta show` prints it (or as JSON).

use anyhow::{Context, Result, bail};
use cfsync_engine::limits::MAX_METADATA_FILE;
use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::ops::{OpCode, OpCounts};
use cfsync_formats::delta::show::DeltaSummary;
use cfsync_formats::delta::signed::open_superblock;
use serde_json::{Map, Value as J, json};

use super::loc::{Loc, locate};
use super::out::{dedup_chain, emit, print_json};

fn ops_json(ops: &OpCounts) -> J {
    let mut m = Map::new();
    for op in OpCode::ALL {
        m.insert(op.show_name().to_owned(), json!(ops.get(op)));
    }
    J::Object(m)
}

/// `inspect delta`.
pub(super) async fn delta(target: &str, json: bool) -> Result<()> {
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
