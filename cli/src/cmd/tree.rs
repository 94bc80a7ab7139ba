//! `ls` and `cat`: reading a commit's tree straight from its commit stream.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::commit_stream::{CommitStream, parse_file_entry};
use cfsync_engine::store::{ObjectLookup, Store};
use cfsync_formats::checksum::Checksum;
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;

/// A node of a commit's tree.
enum Node {
    Dir { tree: Checksum },
    File(Checksum),
}

fn data<'a, O: FsVerityHashValue>(
    s: &'a CommitStream<O>,
    id: &Checksum,
    what: &str,
) -> Result<&'a [u8]> {
    s.lookup(id)
        .map(|(d, _)| d)
        .ok_or_else(|| anyhow!("{what} {id} missing from the commit stream; run `cfsync fsck`"))
}

fn root<O: FsVerityHashValue>(s: &CommitStream<O>, commit: &Checksum) -> Result<Node> {
    let c = super::resolve::stored_commit(s, commit)?;
    Ok(Node::Dir {
        tree: c.root_contents(),
    })
}

fn lookup<O: FsVerityHashValue>(
    s: &CommitStream<O>,
    commit: &Checksum,
    path: &str,
) -> Result<Node> {
    let mut node = root(s, commit)?;
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let Node::Dir { tree, .. } = node else {
            bail!("{path}: not a directory");
        };
        let dt = DirTreeRef::from_bytes(data(s, &tree, "dirtree")?)?;
        let mut found = None;
        for f in dt.files() {
            let (n, id) = f?;
            if n == comp {
                found = Some(Node::File(id));
            }
        }
        for d in dt.dirs() {
            let (n, t, _) = d?;
            if n == comp {
                found = Some(Node::Dir { tree: t });
            }
        }
        node = found.ok_or_else(|| anyhow!("{path}: no such file or directory"))?;
    }
    Ok(node)
}

fn mode_string(mode: u32) -> String {
    let t = match mode & 0o170_000 {
        0o040_000 => 'd',
        0o120_000 => 'l',
        _ => '-',
    };
    format!("{t}{:04o}", mode & 0o7777)
}

fn list<O: FsVerityHashValue>(
    s: &CommitStream<O>,
    dir: &str,
    tree: &Checksum,
    recursive: bool,
    out: &mut Vec<serde_json::Value>,
) -> Result<()> {
    let dt = DirTreeRef::from_bytes(data(s, tree, "dirtree")?)?;
    for f in dt.files() {
        let (n, id) = f?;
        let (h, _) = parse_file_entry(data(s, &id, "file")?)?;
        out.push(serde_json::json!({
            "path": format!("{}/{n}", dir.trim_end_matches('/')),
            "type": if h.mode & 0o170_000 == 0o120_000 { "symlink" } else { "file" },
            "mode": h.mode & 0o7777, "uid": h.uid, "gid": h.gid, "size": h.size,
            "target": (!h.symlink_target.is_empty()).then_some(h.symlink_target.clone()),
            "checksum": id.to_hex(),
        }));
    }
    for d in dt.dirs() {
        let (n, t, m) = d?;
        let meta = DirMetaRef::from_bytes(data(s, &m, "dirmeta")?)?;
        let path = format!("{}/{n}", dir.trim_end_matches('/'));
        out.push(serde_json::json!({
            "path": path, "type": "dir", "mode": meta.mode() & 0o7777,
            "uid": meta.uid(), "gid": meta.gid(), "size": 0, "target": null,
            "checksum": t.to_hex(),
        }));
        if recursive {
            list(s, &path, &t, true, out)?;
        }
    }
    Ok(())
}

/// `cfsync ls REF [PATH]`.
pub(crate) fn ls<O: FsVerityHashValue>(
    store: &Store<O>,
    name: &str,
    path: &str,
    recursive: bool,
    json: bool,
) -> Result<()> {
    let (commit, s) = super::resolve::load_named(store, name)?;
    let mut rows = Vec::new();
    match lookup(&s, &commit, path)? {
        Node::Dir { tree, .. } => list(
            &s,
            if path.is_empty() { "/" } else { path },
            &tree,
            recursive,
            &mut rows,
        )?,
        Node::File(id) => {
            let (h, _) = parse_file_entry(data(&s, &id, "file")?)?;
            rows.push(serde_json::json!({
                "path": path, "type": if h.mode & 0o170_000 == 0o120_000 { "symlink" } else { "file" },
                "mode": h.mode & 0o7777, "uid": h.uid, "gid": h.gid, "size": h.size,
                "target": (!h.symlink_target.is_empty()).then_some(h.symlink_target.clone()),
                "checksum": id.to_hex(),
            }));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for r in rows {
        let ty = r["type"].as_str().unwrap_or("");
        let mode = r["mode"].as_u64().unwrap_or(0) as u32
            | match ty {
                "dir" => 0o040_000,
                "symlink" => 0o120_000,
                _ => 0o100_000,
            };
        // As `ostree ls`: type and mode, owner, group, size, path.
        write!(
            out,
            "{} {:>5} {:>5} {:>10} {}",
            mode_string(mode),
            r["uid"].as_u64().unwrap_or(0),
            r["gid"].as_u64().unwrap_or(0),
            r["size"].as_u64().unwrap_or(0),
            r["path"].as_str().unwrap_or("")
        )?;
        if let Some(t) = r["target"].as_str() {
            write!(out, " -> {t}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `cfsync cat REF PATH`.
pub(crate) fn cat<O: FsVerityHashValue>(store: &Store<O>, name: &str, path: &str) -> Result<()> {
    let (commit, s) = super::resolve::load_named(store, name)?;
    let Node::File(id) = lookup(&s, &commit, path)? else {
        bail!("{path}: is a directory");
    };
    let (stored, ext) = s.lookup(&id).ok_or_else(|| anyhow!("file {id} missing"))?;
    let (h, inline) = parse_file_entry(stored)?;
    if h.mode & 0o170_000 == 0o120_000 {
        bail!("{path}: is a symlink to {}", h.symlink_target);
    }
    let mut out = std::io::stdout().lock();
    match ext {
        None => out.write_all(inline)?,
        Some(obj) => {
            let fd = store
                .repo()
                .open_object(obj)
                .with_context(|| format!("opening content of {path}"))?;
            std::io::copy(&mut std::fs::File::from(fd), &mut out)?;
        }
    }
    Ok(())
}
