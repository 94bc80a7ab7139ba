//! `inspect object`: one OSTree object file, decoded by its extension and, for the
//! content-addressed types, checked against the name its path gives it.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::limits::MAX_METADATA_FILE;
use cfsync_engine::source::LocalSource;
use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::{self, CommitRef};
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;
use cfsync_formats::file::{FileHasher, FileHeader, FilezReader};
use cfsync_formats::metadata::{self, MetadataRef};
use cfsync_formats::object::ObjectType;
use serde_json::{Value as J, json};

use super::gvjson::{metadata_json, xattrs_json};
use super::loc::{Loc, locate};
use super::out::{date, dedup_chain, emit, opt_str, print_json, w};

/// Largest file object `inspect object` streams through (objects are hashed as they
/// are read, never held in memory whole).
const MAX_FILE_OBJECT: u64 = 1 << 40;

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
pub(super) async fn object(target: &str, json: bool) -> Result<()> {
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
