//! Trees compared field by field: a snapshot of every path under a root (metadata,
//! content hash, symlink target, xattrs) and a readable diff of two snapshots.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::data::sha256_hex;

/// One entry of a tree, as compared between a mounted image and an `ostree checkout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// 'd', '-', 'l' or '?'.
    pub kind: char,
    /// Permission bits with setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Symlink target.
    pub target: Option<String>,
    /// Regular file: size and sha256 of the content.
    pub content: Option<(u64, String)>,
    /// Extended attributes (overlayfs's own `trusted.overlay.*` excluded).
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// The extended attributes of `path` (not following a symlink), except those `skip`
/// names.
pub fn xattrs(path: &Path, skip: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(e) => panic!("llistxattr {}: {e}", path.display()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if skip(&name) {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(path, name.as_str(), &mut value)
            .unwrap_or_else(|e| panic!("lgetxattr {} {name}: {e}", path.display()));
        value.truncate(len);
        out.insert(name, value);
    }
    out
}

/// Every path under `root` (relative, "/" for the root itself) with its metadata,
/// content hash, symlink target and xattrs.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), "/".to_owned())];
    while let Some((path, rel)) = stack.pop() {
        let md =
            std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_file() {
            '-'
        } else if ft.is_symlink() {
            'l'
        } else {
            '?'
        };
        let target = ft.is_symlink().then(|| {
            std::fs::read_link(&path)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        });
        let content = ft.is_file().then(|| {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (md.len(), sha256_hex(&data))
        });
        if ft.is_dir() {
            for ent in std::fs::read_dir(&path).unwrap() {
                let ent = ent.unwrap();
                let name = ent.file_name().to_string_lossy().into_owned();
                let child = if rel == "/" {
                    format!("/{name}")
                } else {
                    format!("{rel}/{name}")
                };
                stack.push((ent.path(), child));
            }
        }
        out.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                target,
                content,
                xattrs: xattrs(&path, |n| n.starts_with("trusted.overlay.")),
            },
        );
    }
    out
}

/// Panics with the first differences unless the two snapshots are equal.
pub fn assert_same_tree(what: &str, got: &BTreeMap<String, Node>, want: &BTreeMap<String, Node>) {
    let mut diffs = Vec::new();
    for (p, w) in want {
        match got.get(p) {
            None => diffs.push(format!("{p}: missing")),
            Some(g) if g != w => diffs.push(format!("{p}: got {g:?}, want {w:?}")),
            Some(_) => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        diffs.push(format!("{p}: unexpected"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences (of {} paths), first ones:\n{}",
        diffs.len(),
        want.len(),
        diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
