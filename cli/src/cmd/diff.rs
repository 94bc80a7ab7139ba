//! `cfsync diff REF1 REF2`: what changed between two stored commits.
//!
//! The comparison is `ostree diff`'s, made on the commit streams: a file (regular or
//! symlink) is modified when its object checksum differs (content, mode, owner or
//! xattrs); a directory is descended into when its contents checksum differs (a change of
//! a directory's own metadata is not reported, as in ostree); an entry whose type changes
//! is removed and added; a removed directory is listed alone, an added one with
//! everything below it. The order is ostree's too.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::commit_stream::{CommitStream, parse_file_entry};
use cfsync_engine::store::{ObjectLookup, Store};
use cfsync_formats::checksum::Checksum;
use cfsync_formats::dirtree::DirTreeRef;

/// One entry of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// A regular file or symlink: its file object.
    File(Checksum),
    /// A directory: its contents and metadata objects.
    Dir(Checksum),
}

/// A file's type and size, from its stored header.
struct FileInfo {
    kind: &'static str,
    size: u64,
}

/// A listed change.
struct Change {
    path: String,
    kind: &'static str,
    /// Size before (modified, removed) or after (added); regular files only.
    size: u64,
    /// Size after, for a modified file.
    new_size: u64,
}

/// Totals over whole subtrees (a removed directory counts everything below it).
#[derive(Default)]
struct Totals {
    files: u64,
    bytes: u64,
}

struct Side<'a, O: FsVerityHashValue> {
    stream: &'a CommitStream<O>,
}

impl<O: FsVerityHashValue> Side<'_, O> {
    fn data(&self, id: &Checksum, what: &str) -> Result<&[u8]> {
        self.stream
            .lookup(id)
            .map(|(d, _)| d)
            .ok_or_else(|| anyhow!("{what} {id} missing from the commit stream; run `cfsync fsck`"))
    }

    /// Files then directories, each sorted by name (dirtree order).
    fn entries(&self, tree: &Checksum) -> Result<Vec<(String, Item)>> {
        let dt = DirTreeRef::from_bytes(self.data(tree, "dirtree")?)
            .with_context(|| format!("dirtree {tree}"))?;
        let mut out = Vec::new();
        for f in dt.files() {
            let (n, id) = f?;
            out.push((n.to_owned(), Item::File(id)));
        }
        for d in dt.dirs() {
            let (n, t, _) = d?;
            out.push((n.to_owned(), Item::Dir(t)));
        }
        Ok(out)
    }

    fn file(&self, id: &Checksum) -> Result<FileInfo> {
        let (h, _) = parse_file_entry(self.data(id, "file")?)?;
        Ok(if h.mode & 0o170_000 == 0o120_000 {
            FileInfo {
                kind: "symlink",
                size: 0,
            }
        } else {
            FileInfo {
                kind: "file",
                size: h.size,
            }
        })
    }

    fn kind(&self, item: &Item) -> Result<&'static str> {
        Ok(match item {
            Item::Dir(_) => "dir",
            Item::File(id) => self.file(id)?.kind,
        })
    }

    /// Adds every file below `tree` to `totals`.
    fn total(&self, tree: &Checksum, totals: &mut Totals, depth: usize) -> Result<()> {
        if depth > 256 {
            anyhow::bail!("dirtree {tree}: nesting deeper than 256");
        }
        for (_, item) in self.entries(tree)? {
            match item {
                Item::File(id) => {
                    totals.files += 1;
                    totals.bytes += self.file(&id)?.size;
                }
                Item::Dir(t) => self.total(&t, totals, depth + 1)?,
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Diff {
    modified: Vec<Change>,
    removed: Vec<Change>,
    added: Vec<Change>,
    removed_totals: Totals,
    added_totals: Totals,
}

struct Differ<'a, O: FsVerityHashValue> {
    a: Side<'a, O>,
    b: Side<'a, O>,
    out: Diff,
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

impl<O: FsVerityHashValue> Differ<'_, O> {
    fn removed(&mut self, path: String, item: &Item) -> Result<()> {
        let (kind, size) = match item {
            Item::Dir(t) => {
                self.a.total(t, &mut self.out.removed_totals, 0)?;
                ("dir", 0)
            }
            Item::File(id) => {
                let f = self.a.file(id)?;
                self.out.removed_totals.files += 1;
                self.out.removed_totals.bytes += f.size;
                (f.kind, f.size)
            }
        };
        self.out.removed.push(Change {
            path,
            kind,
            size,
            new_size: 0,
        });
        Ok(())
    }

    fn added(&mut self, path: String, item: &Item, depth: usize) -> Result<()> {
        if depth > 256 {
            anyhow::bail!("{path}: nesting deeper than 256");
        }
        match item {
            Item::Dir(t) => {
                self.out.added.push(Change {
                    path: path.clone(),
                    kind: "dir",
                    size: 0,
                    new_size: 0,
                });
                for (n, child) in self.b.entries(t)? {
                    self.added(join(&path, &n), &child, depth + 1)?;
                }
            }
            Item::File(id) => {
                let f = self.b.file(id)?;
                self.out.added_totals.files += 1;
                self.out.added_totals.bytes += f.size;
                self.out.added.push(Change {
                    path,
                    kind: f.kind,
                    size: f.size,
                    new_size: f.size,
                });
            }
        }
        Ok(())
    }

    fn dirs(&mut self, dir: &str, ta: &Checksum, tb: &Checksum, depth: usize) -> Result<()> {
        if depth > 256 {
            anyhow::bail!("{dir}: nesting deeper than 256");
        }
        let ea = self.a.entries(ta)?;
        let eb = self.b.entries(tb)?;
        let bmap: BTreeMap<&str, &Item> = eb.iter().map(|(n, i)| (n.as_str(), i)).collect();
        let amap: BTreeMap<&str, &Item> = ea.iter().map(|(n, i)| (n.as_str(), i)).collect();
        for (name, ia) in &ea {
            let path = join(dir, name);
            let Some(ib) = bmap.get(name.as_str()) else {
                self.removed(path, ia)?;
                continue;
            };
            let (ka, kb) = (self.a.kind(ia)?, self.b.kind(ib)?);
            if ka != kb {
                self.removed(path.clone(), ia)?;
                self.added(path, ib, depth + 1)?;
                continue;
            }
            match (ia, ib) {
                (Item::Dir(x), Item::Dir(y)) => {
                    if x != y {
                        self.dirs(&path, x, y, depth + 1)?;
                    }
                }
                (Item::File(x), Item::File(y)) => {
                    if x != y {
                        let (fa, fb) = (self.a.file(x)?, self.b.file(y)?);
                        self.out.modified.push(Change {
                            path,
                            kind: fb.kind,
                            size: fa.size,
                            new_size: fb.size,
                        });
                    }
                }
                _ => unreachable!("kinds are equal"),
            }
        }
        for (name, ib) in &eb {
            if !amap.contains_key(name.as_str()) {
                self.added(join(dir, name), ib, depth + 1)?;
            }
        }
        Ok(())
    }
}

fn root_tree<O: FsVerityHashValue>(s: &CommitStream<O>, commit: &Checksum) -> Result<Checksum> {
    Ok(super::resolve::stored_commit(s, commit)?.root_contents())
}

/// `cfsync diff REF1 REF2`.
pub(crate) fn diff<O: FsVerityHashValue>(
    store: &Store<O>,
    from: &str,
    to: &str,
    stats: bool,
    json: bool,
) -> Result<()> {
    let (ca, sa) = super::resolve::load_named(store, from)?;
    let (cb, sb) = super::resolve::load_named(store, to)?;
    let (ta, tb) = (root_tree(&sa, &ca)?, root_tree(&sb, &cb)?);
    let mut d = Differ {
        a: Side { stream: &sa },
        b: Side { stream: &sb },
        out: Diff::default(),
    };
    if ta != tb {
        d.dirs("/", &ta, &tb, 0)?;
    }
    let out = d.out;
    let (mod_old, mod_new) = out
        .modified
        .iter()
        .fold((0u64, 0u64), |(o, n), c| (o + c.size, n + c.new_size));
    if json {
        let list = |v: &[Change]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|c| serde_json::json!({"path": c.path, "type": c.kind, "size": c.size}))
                .collect()
        };
        let modified: Vec<_> = out
            .modified
            .iter()
            .map(|c| {
                serde_json::json!({
                    "path": c.path, "type": c.kind, "old_size": c.size, "new_size": c.new_size,
                })
            })
            .collect();
        let v = serde_json::json!({
            "from": ca.to_hex(),
            "to": cb.to_hex(),
            "modified": modified,
            "removed": list(&out.removed),
            "added": list(&out.added),
            "stats": {
                "modified_files": out.modified.len(),
                "modified_old_bytes": mod_old,
                "modified_new_bytes": mod_new,
                "removed_files": out.removed_totals.files,
                "removed_bytes": out.removed_totals.bytes,
                "added_files": out.added_totals.files,
                "added_bytes": out.added_totals.bytes,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    use std::io::Write;
    let mut w = std::io::stdout().lock();
    for c in &out.modified {
        writeln!(w, "M    {}", c.path)?;
    }
    for c in &out.removed {
        writeln!(w, "D    {}", c.path)?;
    }
    for c in &out.added {
        writeln!(w, "A    {}", c.path)?;
    }
    if !stats {
        return Ok(());
    }
    writeln!(
        w,
        "{} modified ({} -> {} bytes), {} removed ({} files, {} bytes), {} added ({} files, {} bytes)",
        out.modified.len(),
        mod_old,
        mod_new,
        out.removed.len(),
        out.removed_totals.files,
        out.removed_totals.bytes,
        out.added.len(),
        out.added_totals.files,
        out.added_totals.bytes
    )?;
    Ok(())
}
