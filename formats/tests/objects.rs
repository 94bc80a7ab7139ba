//! Object formats against real repositories made by the `ostree` CLI.
//!
//! Each test builds a tree with the awkward cases (symlinks, xattrs, setuid, empty
//! files, hard links, long and non-ASCII names, foreign ownership), commits it with the
//! real `ostree` into `archive` and `bare-user` repositories, and then checks every
//! loose object: it parses, it hashes to its name, and metadata objects serialize back
//! to the same bytes. These tests need `ostree` and `setfattr` and fail (not skip) when
//! either is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::{self, CommitRef};
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;
use cfsync_formats::file::{self, FileHasher, FileHeader, FilezReader};
use cfsync_formats::metadata::{self, Metadata, MetadataRef};
use cfsync_formats::object::{ObjectName, ObjectType, RepoMode, loose_path};

fn run(cmd: &mut Command, hint: &str) -> Vec<u8> {
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "{:?} is not installed ({e}); install it: {hint}",
                cmd.get_program()
            )
        }
        Err(e) => panic!("running {cmd:?}: {e}"),
    };
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ostree(repo: &Path, args: &[&str]) -> String {
    let out = run(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(args),
        "apt-get install -y ostree",
    );
    String::from_utf8(out).unwrap()
}

fn setfattr(path: &Path, name: &str, value: &str) {
    run(
        Command::new("setfattr")
            .args(["-n", name, "-v", value])
            .arg(path),
        "apt-get install -y attr",
    );
}

fn getfattr_raw(path: &Path, name: &str) -> Vec<u8> {
    run(
        Command::new("getfattr")
            .args(["--only-values", "-n", name])
            .arg(path),
        "apt-get install -y attr",
    )
}

const LONG_NAME_LEN: usize = 255;

/// Deterministic pseudo-random bytes (poorly compressible).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn build_tree(root: &Path, variant: u8) {
    let w = |p: &str, data: &[u8]| {
        let p = root.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    };
    let chmod =
        |p: &Path, mode: u32| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();

    w("empty", b"");
    let small = w("small.txt", b"hello\n");
    w("big.bin", &noise(300_000 + usize::from(variant), 7));
    w("zeros.bin", &vec![0u8; 1 << 20]);
    chmod(&w("exec.sh", b"#!/bin/sh\necho hi\n"), 0o755);
    chmod(&w("setuid", b"suid"), 0o4755);
    chmod(&w("setgid", b"sgid"), 0o2711);
    w("same-content-a", b"same");
    chmod(&w("same-content-b", b"same"), 0o600);
    fs::hard_link(&small, root.join("small-hardlink")).unwrap();
    w(&"n".repeat(LONG_NAME_LEN), b"long name");
    w("ünïcödé-日本語.txt", b"unicode");
    w("with space", b"space");
    w("tab\tname", b"tab");
    w("-dash", b"dash");
    w(".hidden", b"hidden");
    w("a..b", b"dots");
    w("d1/d2/d3/deep.txt", format!("deep {variant}").as_bytes());
    fs::create_dir_all(root.join("empty_dir")).unwrap();
    fs::create_dir_all(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    fs::create_dir_all(root.join("private")).unwrap();
    chmod(&root.join("private"), 0o700);
    symlink("small.txt", root.join("link-rel")).unwrap();
    symlink("/usr/bin/env", root.join("link-abs")).unwrap();
    symlink("nowhere/at/all", root.join("link-dangling")).unwrap();
    symlink(format!("{}x", "a/".repeat(500)), root.join("link-long")).unwrap();
    symlink("ünï", root.join("link-unicode")).unwrap();
    // xattrs on files and directories (names are stored with a trailing NUL).
    setfattr(&small, "user.b", "two");
    setfattr(&small, "user.a", "1");
    setfattr(&root.join("exec.sh"), "user.bin", "0x00ff00");
    setfattr(&root.join("d1"), "user.dir", "yes");
    // foreign ownership
    let owned = w("owned.txt", b"owned");
    std::os::unix::fs::chown(&owned, Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::chown(root.join("d1/d2"), Some(42), Some(43)).unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    mode: RepoMode,
    /// [first, second] commits of branch `test/main`.
    commits: [Checksum; 2],
    /// A commit deleted with tombstones enabled.
    deleted: Option<Checksum>,
}

fn fixture(mode: RepoMode) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let init_mode = match mode {
        RepoMode::Archive => "archive",
        RepoMode::BareUser => "bare-user",
        other => panic!("unsupported {other}"),
    };
    ostree(&repo, &["init", &format!("--mode={init_mode}")]);
    let mut commits = Vec::new();
    for variant in 0..2u8 {
        let tree = tmp.path().join(format!("tree{variant}"));
        build_tree(&tree, variant);
        let statoverride = tmp.path().join("statoverride");
        fs::write(&statoverride, "+2048 /small.txt\n").unwrap();
        let out = ostree(
            &repo,
            &[
                "commit",
                "-b",
                "test/main",
                &format!("--tree=dir={}", tree.display()),
                &format!("--subject=commit {variant}"),
                "--body=line one\nline two",
                &format!("--timestamp=2024-0{}-01T00:00:00Z", variant + 1),
                &format!("--add-metadata-string=version=1.{variant}"),
                "--add-metadata=custom.strv=['a', 'b']",
                "--add-metadata=custom.u64=uint64 42",
                "--add-metadata=custom.bool=true",
                "--add-detached-metadata-string=custom.note=hello",
                "--bind-ref=extra/ref",
                "--generate-sizes",
                &format!("--statoverride={}", statoverride.display()),
            ],
        );
        commits.push(out.trim().parse().unwrap());
    }
    // A commit with other ownership, then deleted to leave a tombstone.
    let tree = tmp.path().join("tree-owned");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("f"), b"f").unwrap();
    let deleted = if mode == RepoMode::Archive {
        ostree(&repo, &["config", "set", "core.tombstone-commits", "true"]);
        let c: Checksum = ostree(
            &repo,
            &[
                "commit",
                "-b",
                "doomed",
                &format!("--tree=dir={}", tree.display()),
                "--owner-uid=1000",
                "--owner-gid=1001",
                "--no-bindings",
            ],
        )
        .trim()
        .parse()
        .unwrap();
        ostree(&repo, &["refs", "--delete", "doomed"]);
        ostree(&repo, &["prune", &format!("--delete-commit={c}")]);
        Some(c)
    } else {
        None
    };
    Fixture {
        _tmp: tmp,
        repo,
        mode,
        commits: [commits[0], commits[1]],
        deleted,
    }
}

/// Every loose object: (name, path).
fn loose_objects(repo: &Path, mode: RepoMode) -> Vec<(ObjectName, PathBuf)> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("objects")).unwrap() {
        let d = d.unwrap();
        let prefix = d.file_name().into_string().unwrap();
        for f in fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            let fname = f.file_name().into_string().unwrap();
            let (rest, ext) = fname.split_once('.').unwrap();
            let ty: ObjectType = if ext == "filez" {
                ObjectType::File
            } else {
                ext.parse().unwrap()
            };
            let checksum: Checksum = format!("{prefix}{rest}").parse().unwrap();
            let name = ObjectName::new(checksum, ty);
            assert_eq!(
                repo.join(loose_path(&checksum, ty, mode)),
                f.path(),
                "loose_path must reproduce ostree's path"
            );
            out.push((name, f.path()));
        }
    }
    out.sort();
    out
}

/// Decodes a `.filez`, checks the header writer and returns (header, content).
fn read_filez(bytes: &[u8]) -> (FileHeader, Vec<u8>) {
    let mut r = FilezReader::new(bytes).unwrap();
    let header = r.header().clone();
    let mut content = Vec::new();
    r.read_to_end(&mut content).unwrap();
    assert_eq!(
        content.len() as u64,
        if header.is_regular() { header.size } else { 0 }
    );
    // Our archive header writer is byte-identical to ostree's.
    let sized = file::encode_sized_archive_header(&header).unwrap();
    assert_eq!(&bytes[..sized.len()], &sized[..]);
    let (again, rest) = file::decode_sized_archive_header(bytes).unwrap();
    assert_eq!(again, header);
    assert_eq!(rest.len(), bytes.len() - sized.len());
    (header, content)
}

/// Parses one metadata object with the right parser and returns its re-serialization.
fn reserialize(ty: ObjectType, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match ty {
        ObjectType::Commit => {
            let c = CommitRef::from_bytes(bytes).map_err(|x| e(&x))?;
            c.to_owned()
                .map_err(|x| e(&x))?
                .to_bytes()
                .map_err(|x| e(&x))
        }
        ObjectType::DirTree => {
            let t = DirTreeRef::from_bytes(bytes).map_err(|x| e(&x))?;
            t.to_owned()
                .map_err(|x| e(&x))?
                .to_bytes()
                .map_err(|x| e(&x))
        }
        ObjectType::DirMeta => {
            let m = DirMetaRef::from_bytes(bytes).map_err(|x| e(&x))?;
            m.to_owned().to_bytes().map_err(|x| e(&x))
        }
        ObjectType::CommitMeta | ObjectType::TombstoneCommit => Metadata::from_bytes(bytes)
            .map_err(|x| e(&x))?
            .to_bytes()
            .map_err(|x| e(&x)),
        other => panic!("not a metadata type: {other}"),
    }
}

fn check_all_objects(fx: &Fixture) -> BTreeMap<ObjectType, usize> {
    let mut counts = BTreeMap::new();
    let mut symlinks = 0;
    let mut with_xattrs = 0;
    let mut setuid = 0;
    let mut empty = 0;
    for (name, path) in loose_objects(&fx.repo, fx.mode) {
        *counts.entry(name.objtype).or_insert(0usize) += 1;
        let bytes = fs::read(&path).unwrap();
        match name.objtype {
            ObjectType::Commit | ObjectType::DirTree | ObjectType::DirMeta => {
                assert_eq!(Checksum::of(&bytes), name.checksum, "{name}");
                assert_eq!(
                    reserialize(name.objtype, &bytes).unwrap(),
                    bytes,
                    "{name} round trip"
                );
            }
            ObjectType::CommitMeta => {
                assert_eq!(
                    reserialize(name.objtype, &bytes).unwrap(),
                    bytes,
                    "{name} round trip"
                );
                let m = MetadataRef::from_bytes(&bytes).unwrap();
                assert_eq!(m.get_str("custom.note").unwrap(), Some("hello"));
            }
            ObjectType::TombstoneCommit => {
                assert_eq!(commit::parse_tombstone(&bytes).unwrap(), name.checksum);
                assert_eq!(Some(name.checksum), fx.deleted);
                assert_eq!(reserialize(name.objtype, &bytes).unwrap(), bytes);
            }
            ObjectType::File => {
                let (header, content) = match fx.mode {
                    RepoMode::Archive => read_filez(&bytes),
                    RepoMode::BareUser => {
                        let meta = getfattr_raw(&path, "user.ostreemeta");
                        let h =
                            FileHeader::from_ostreemeta(&meta, Some(&bytes), bytes.len() as u64)
                                .unwrap();
                        let content = if h.is_symlink() {
                            Vec::new()
                        } else {
                            bytes.clone()
                        };
                        (h, content)
                    }
                    other => panic!("{other}"),
                };
                let mut h = FileHasher::new(&header).unwrap();
                for chunk in content.chunks(4096) {
                    h.update(chunk);
                }
                assert_eq!(h.finish(), name.checksum, "{name}: {header:?}");
                assert_eq!(
                    file::file_checksum(&header, &content).unwrap(),
                    name.checksum
                );
                symlinks += usize::from(header.is_symlink());
                with_xattrs += usize::from(!header.xattrs.is_empty());
                setuid += usize::from(header.mode & 0o4000 != 0);
                empty += usize::from(header.is_regular() && header.size == 0);
            }
            other => panic!("unexpected object type {other} in {}", path.display()),
        }
    }
    assert_eq!(symlinks, 5, "symlink objects");
    assert!(with_xattrs >= 2, "file objects with xattrs: {with_xattrs}");
    assert!(setuid >= 2, "setuid file objects: {setuid}");
    assert_eq!(empty, 1, "empty regular file objects");
    assert_eq!(counts.get(&ObjectType::Commit), Some(&2));
    assert_eq!(counts.get(&ObjectType::CommitMeta), Some(&2));
    counts
}

#[test]
fn archive_objects_parse_hash_and_round_trip() {
    let fx = fixture(RepoMode::Archive);
    let counts = check_all_objects(&fx);
    assert_eq!(counts.get(&ObjectType::TombstoneCommit), Some(&1));
    assert!(counts[&ObjectType::DirTree] >= 6, "{counts:?}");
    assert!(counts[&ObjectType::DirMeta] >= 4, "{counts:?}");
}

#[test]
fn bare_user_objects_parse_hash_and_round_trip() {
    let fx = fixture(RepoMode::BareUser);
    check_all_objects(&fx);
}

#[test]
fn commit_fields_match_ostree() {
    let fx = fixture(RepoMode::Archive);
    let [c1, c2] = fx.commits;
    let load =
        |c: &Checksum| fs::read(fx.repo.join(loose_path(c, ObjectType::Commit, fx.mode))).unwrap();
    let b1 = load(&c1);
    let b2 = load(&c2);
    let first = CommitRef::from_bytes(&b1).unwrap();
    let second = CommitRef::from_bytes(&b2).unwrap();
    assert_eq!(first.parent(), None);
    assert_eq!(second.parent(), Some(c1));
    assert_eq!(
        ostree(&fx.repo, &["rev-parse", &format!("{c2}^")]).trim(),
        c1.to_hex()
    );
    assert_eq!(first.subject(), "commit 0");
    assert_eq!(second.body(), "line one\nline two");
    assert_eq!(first.timestamp(), 1_704_067_200); // 2024-01-01T00:00:00Z
    assert_eq!(second.timestamp(), 1_706_745_600); // 2024-02-01T00:00:00Z
    assert_eq!(second.version().unwrap(), Some("1.1"));
    let mut binding = second.ref_binding().unwrap().unwrap();
    binding.sort();
    assert_eq!(binding, ["extra/ref", "test/main"]);
    assert_eq!(second.collection_binding().unwrap(), None);
    assert_eq!(second.endoflife().unwrap(), None);
    assert_eq!(second.composefs_digest().unwrap(), None);
    let m = second.metadata();
    assert_eq!(m.get_strv("custom.strv").unwrap().unwrap(), ["a", "b"]);
    assert_eq!(m.get_u64_le("custom.u64").unwrap(), Some(42)); // GVariant text: host order
    assert_eq!(m.get_bool("custom.bool").unwrap(), Some(true));
    assert!(matches!(
        m.get_str("custom.bool"),
        Err(metadata::Error::WrongType { .. })
    ));
    let sizes = m.get_bytes_array(metadata::SIZES).unwrap().unwrap();
    assert!(sizes.len() > 10 && sizes.iter().all(|s| s.len() >= 34));
    assert_eq!(
        ostree(
            &fx.repo,
            &["show", "--print-metadata-key=version", &c2.to_hex()]
        )
        .trim(),
        "'1.1'"
    );
    // ostree's content checksum (shown by `ostree show`) from our root checksums.
    let show = ostree(&fx.repo, &["show", &c2.to_hex()]);
    let cc = second.content_checksum().to_hex();
    assert!(show.contains(&cc), "content checksum {cc} not in:\n{show}");
    // A commit made from the same owned struct has the same checksum.
    assert_eq!(second.to_owned().unwrap().checksum().unwrap(), c2);
}

/// Walks a commit with our parsers and prints each entry the way `ostree ls -R -C`
/// does.
fn ls_like_ostree(fx: &Fixture, commit: &Checksum) -> Vec<String> {
    let read = |c: &Checksum, t| fs::read(fx.repo.join(loose_path(c, t, fx.mode))).unwrap();
    let cb = read(commit, ObjectType::Commit);
    let c = CommitRef::from_bytes(&cb).unwrap();
    let mut out = Vec::new();
    let prefix = |mode: u32, uid: u32, gid: u32, size: u64| {
        let t = match mode & 0o170000 {
            0o040000 => 'd',
            0o100000 => '-',
            0o120000 => 'l',
            _ => '?',
        };
        format!("{t}0{:04o} {uid} {gid} {size:6} ", mode & 0o7777)
    };
    fn walk(
        fx: &Fixture,
        path: &str,
        tree: Checksum,
        meta: Checksum,
        out: &mut Vec<String>,
        prefix: &dyn Fn(u32, u32, u32, u64) -> String,
        read: &dyn Fn(&Checksum, ObjectType) -> Vec<u8>,
    ) {
        let mb = read(&meta, ObjectType::DirMeta);
        let m = DirMetaRef::from_bytes(&mb).unwrap();
        out.push(format!(
            "{}{tree} {meta} {}",
            prefix(m.mode(), m.uid(), m.gid(), 0),
            if path.is_empty() { "/" } else { path }
        ));
        let tb = read(&tree, ObjectType::DirTree);
        let t = DirTreeRef::from_bytes(&tb).unwrap();
        for f in t.files() {
            let (name, csum) = f.unwrap();
            let h = match fx.mode {
                RepoMode::Archive => {
                    let b = read(&csum, ObjectType::File);
                    FilezReader::new(&b[..]).unwrap().header().clone()
                }
                _ => unreachable!(),
            };
            let mut line = format!(
                "{}{csum} {path}/{name}",
                prefix(h.mode, h.uid, h.gid, h.size)
            );
            if h.is_symlink() {
                line.push_str(&format!(" -> {}", h.symlink_target));
            }
            out.push(line);
        }
        for d in t.dirs() {
            let (name, ct, cm) = d.unwrap();
            walk(fx, &format!("{path}/{name}"), ct, cm, out, prefix, read);
        }
    }
    walk(
        fx,
        "",
        c.root_contents(),
        c.root_metadata(),
        &mut out,
        &prefix,
        &read,
    );
    out
}

#[test]
fn tree_walk_matches_ostree_ls() {
    let fx = fixture(RepoMode::Archive);
    for c in fx.commits {
        let ours: BTreeSet<String> = ls_like_ostree(&fx, &c).into_iter().collect();
        let theirs: BTreeSet<String> = ostree(&fx.repo, &["ls", "-R", "-C", &c.to_hex()])
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect();
        assert_eq!(ours, theirs);
        assert!(ours.iter().any(|l| l.ends_with(&"n".repeat(LONG_NAME_LEN))));
        assert!(
            ours.iter()
                .any(|l| l.starts_with("-04") && l.ends_with("/small.txt"))
        );
        assert!(ours.iter().any(|l| l.starts_with("d00755 42 43 ")));
        assert!(ours.iter().any(|l| l.starts_with("-00644 1234 5678 ")));
    }
}

#[test]
fn dirmeta_and_file_xattrs_are_stored_with_nul_terminated_names() {
    let fx = fixture(RepoMode::Archive);
    let mut seen_dir = false;
    let mut seen_file = false;
    for (name, path) in loose_objects(&fx.repo, fx.mode) {
        let bytes = fs::read(&path).unwrap();
        match name.objtype {
            ObjectType::DirMeta => {
                let m = DirMetaRef::from_bytes(&bytes).unwrap();
                if !m.xattrs().is_empty() {
                    assert_eq!(m.xattrs(), vec![(b"user.dir\0".to_vec(), b"yes".to_vec())]);
                    seen_dir = true;
                }
            }
            ObjectType::File => {
                let (h, _) = read_filez(&bytes);
                if h.xattrs.len() == 2 {
                    let mut x = h.xattrs.clone();
                    x.sort();
                    assert_eq!(
                        x,
                        vec![
                            (b"user.a\0".to_vec(), b"1".to_vec()),
                            (b"user.b\0".to_vec(), b"two".to_vec())
                        ]
                    );
                    seen_file = true;
                }
                if h.xattrs.len() == 1 {
                    assert_eq!(h.xattrs[0], (b"user.bin\0".to_vec(), vec![0, 0xff, 0]));
                }
            }
            _ => {}
        }
    }
    assert!(seen_dir && seen_file);
}

fn metadata_objects(fx: &Fixture) -> Vec<(ObjectName, Vec<u8>)> {
    loose_objects(&fx.repo, fx.mode)
        .into_iter()
        .filter(|(n, _)| n.objtype.is_meta())
        .map(|(n, p)| (n, fs::read(p).unwrap()))
        .collect()
}

#[test]
fn every_strict_prefix_of_every_object_is_rejected() {
    let fx = fixture(RepoMode::Archive);
    let mut checked = 0;
    let mut dirmeta_prefixes = 0;
    for (name, bytes) in metadata_objects(&fx) {
        for n in 0..bytes.len() {
            match reserialize(name.objtype, &bytes[..n]) {
                Err(_) => {}
                // The only prefixes that are complete objects themselves: the fixed-size
                // head (uid, gid, mode) of a dirmeta with xattrs is a valid dirmeta
                // without them, and 0 bytes are the empty a{sv}. Framing cannot tell;
                // the checksum (or, for commitmeta, the signature) does.
                Ok(re) if name.objtype == ObjectType::DirMeta && n == 12 => {
                    assert_eq!(re, &bytes[..n]);
                    assert_ne!(Checksum::of(&re), name.checksum);
                    dirmeta_prefixes += 1;
                }
                Ok(re) if name.objtype.variant_type() == Some("a{sv}") && n == 0 => {
                    assert!(re.is_empty());
                }
                Ok(_) => panic!(
                    "{name}: prefix of {n} of {} bytes was accepted",
                    bytes.len()
                ),
            }
            checked += 1;
        }
    }
    assert!(dirmeta_prefixes >= 1);
    // .filez: every strict prefix must fail in the header or while streaming.
    for (name, path) in loose_objects(&fx.repo, fx.mode) {
        if name.objtype != ObjectType::File {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        if bytes.len() > 4096 {
            continue;
        }
        for n in 0..bytes.len() {
            let res = FilezReader::new(&bytes[..n])
                .map_err(|e| e.to_string())
                .and_then(|mut r| {
                    let mut v = Vec::new();
                    r.read_to_end(&mut v).map_err(|e| e.to_string())
                });
            assert!(
                res.is_err(),
                "{name}: prefix of {n} of {} bytes was accepted",
                bytes.len()
            );
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// Flips bits all over real metadata objects: parsing must never panic, and whatever
/// the strict reader accepts must be in normal form, i.e. serialize back to the same
/// bytes.
#[test]
fn mutated_objects_never_panic_and_accepted_ones_are_normal() {
    let fx = fixture(RepoMode::Archive);
    let mut accepted = 0;
    let mut rejected = 0;
    for (name, bytes) in metadata_objects(&fx) {
        if bytes.len() > 2048 {
            continue;
        }
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut m = bytes.clone();
                m[i] ^= bit;
                match reserialize(name.objtype, &m) {
                    Ok(re) => {
                        assert_eq!(re, m, "{name}: byte {i} ^ {bit:#x} accepted but not normal");
                        accepted += 1;
                    }
                    Err(_) => rejected += 1,
                }
            }
        }
        // Trailing garbage is never accepted.
        let mut t = bytes.clone();
        t.push(0);
        assert!(
            reserialize(name.objtype, &t).is_err(),
            "{name} with a trailing byte"
        );
    }
    assert!(
        accepted > 0 && rejected > 0,
        "accepted {accepted}, rejected {rejected}"
    );
}

/// GLib's own verdict for each (type, bytes) case, through PyGObject: whether
/// `g_variant_is_normal_form` holds *and* GLib serializes the value, rebuilt from
/// its children, to the same bytes. (GLib 2.74's `is_normal_form` alone also accepts zero-length data for
/// containers whose normal form is not empty, e.g. an empty dirtree buffer or an
/// `(ayay)` element of size 0, reading the missing framing offsets as 0; its own
/// normal form of that value differs, and the strict reader rejects such data.)
fn glib_is_normal(cases: &[(String, Vec<u8>)]) -> Vec<bool> {
    const SCRIPT: &str = r#"
import sys, gi
gi.require_version('GLib', '2.0')
from gi.repository import GLib
def rebuild(v):
    t = v.get_type_string()
    if not v.is_container():
        return GLib.Variant.new_from_bytes(v.get_type(), v.get_data_as_bytes(), True)
    kids = [rebuild(v.get_child_value(i)) for i in range(v.n_children())]
    if t == 'v':
        return GLib.Variant.new_variant(kids[0])
    if t[0] == 'm':
        return GLib.Variant.new_maybe(GLib.VariantType.new(t[1:]), kids[0] if kids else None)
    if t[0] == 'a':
        return GLib.Variant.new_array(GLib.VariantType.new(t[1:]), kids)
    if t[0] == '{':
        return GLib.Variant.new_dict_entry(kids[0], kids[1])
    return GLib.Variant.new_tuple(*kids)
out = []
for line in sys.stdin:
    ty, hx = line.rstrip('\n').split('\t')
    v = GLib.Variant.new_from_bytes(GLib.VariantType.new(ty), GLib.Bytes.new(bytes.fromhex(hx)), False)
    ok = v.is_normal_form()
    if ok:
        ok = rebuild(v).get_data_as_bytes().get_data() == bytes.fromhex(hx)
    out.append('1' if ok else '0')
print(''.join(out))
"#;
    let mut input = String::new();
    for (ty, b) in cases {
        input.push_str(&format!("{ty}\t{}\n", hex::encode(b)));
    }
    let tmp = tempfile::NamedTempFile::new().unwrap();
    fs::write(tmp.path(), input).unwrap();
    let out = run(
        Command::new("/usr/bin/python3")
            .args(["-c", SCRIPT])
            .stdin(fs::File::open(tmp.path()).unwrap()),
        "apt-get install -y python3-gi",
    );
    let s = String::from_utf8(out).unwrap();
    let v: Vec<bool> = s.trim().chars().map(|c| c == '1').collect();
    assert_eq!(v.len(), cases.len());
    v
}

/// Differential test of the strict reader against GLib: real objects and values from
/// our writer, each mutated (bit flips, truncations, an extra byte). The strict reader
/// must accept exactly what GLib considers normal form.
#[test]
fn strict_reader_agrees_with_glib_normal_form() {
    use cfsync_formats::gvariant::{OwnedValue, Value};
    let fx = fixture(RepoMode::Archive);
    let mut seeds: Vec<(String, Vec<u8>)> = metadata_objects(&fx)
        .into_iter()
        .filter(|(_, b)| b.len() <= 1024)
        .map(|(n, b)| (n.objtype.variant_type().unwrap().to_owned(), b))
        .collect();
    let s = |x: &str| OwnedValue::str(x);
    let var = |v: OwnedValue| OwnedValue::Variant(Box::new(v));
    let built = [
        OwnedValue::array("s", vec![s("a"), s(""), s("bcd")]),
        OwnedValue::array(
            "ay",
            vec![OwnedValue::bytes(vec![]), OwnedValue::bytes(vec![1, 2])],
        ),
        OwnedValue::Tuple(vec![OwnedValue::Byte(1), OwnedValue::U64(2)]),
        OwnedValue::Tuple(vec![OwnedValue::U64(2), OwnedValue::Byte(1)]),
        OwnedValue::Tuple(vec![
            s("x"),
            var(OwnedValue::U32(7)),
            OwnedValue::Bool(true),
        ]),
        OwnedValue::array("b", vec![OwnedValue::Bool(true), OwnedValue::Bool(false)]),
        OwnedValue::Maybe {
            elem: "s".into(),
            value: Some(Box::new(s("m"))),
        },
        OwnedValue::Maybe {
            elem: "u".into(),
            value: Some(Box::new(OwnedValue::U32(3))),
        },
        var(var(OwnedValue::array(
            "(yt)",
            vec![OwnedValue::Tuple(vec![
                OwnedValue::Byte(9),
                OwnedValue::U64(1),
            ])],
        ))),
        OwnedValue::Tuple(vec![
            OwnedValue::array(
                "(s(taya{sv}))",
                vec![OwnedValue::Tuple(vec![
                    s("os/x86_64/stable"),
                    OwnedValue::Tuple(vec![
                        OwnedValue::U64(182),
                        OwnedValue::bytes([7u8; 32]),
                        OwnedValue::array(
                            "{sv}",
                            vec![OwnedValue::entry(
                                s("ostree.commit.timestamp"),
                                var(OwnedValue::u64_be(5)),
                            )],
                        ),
                    ]),
                ])],
            ),
            OwnedValue::array(
                "{sv}",
                vec![OwnedValue::entry(
                    s("ostree.summary.mode"),
                    var(s("archive-z2")),
                )],
            ),
        ]),
        // Large enough for 2-byte framing offsets.
        OwnedValue::array("s", (0..40).map(|i| s(&"y".repeat(i))).collect()),
    ];
    for v in built {
        seeds.push((v.type_string(), v.to_bytes().unwrap()));
    }
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // Hand-made edge cases: 2-byte framing offsets where 1 byte would do, a variant
    // holding two types, a maybe without its marker byte, a boolean 2, nonzero padding.
    let one = OwnedValue::array("s", vec![s(&"x".repeat(253))])
        .to_bytes()
        .unwrap();
    assert_eq!(one.len(), 255);
    let mut wide = one[..254].to_vec();
    wide.extend_from_slice(&254u16.to_le_bytes());
    for (ty, b) in [
        ("as", wide),
        ("as", one),
        ("v", b"hi\0\0ss".to_vec()),
        ("ms", b"a\0".to_vec()),
        ("b", vec![2]),
        ("(yt)", vec![1, 0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]),
        ("()", vec![0]),
        ("()", vec![]),
    ] {
        cases.push((ty.to_owned(), b));
    }
    for (ty, b) in &seeds {
        cases.push((ty.clone(), b.clone()));
        let mut extra = b.clone();
        extra.push(0);
        cases.push((ty.clone(), extra));
        for n in 0..b.len() {
            cases.push((ty.clone(), b[..n].to_vec()));
        }
        for i in 0..b.len() {
            for bit in [0x01u8, 0x02, 0x10, 0x80] {
                let mut m = b.clone();
                m[i] ^= bit;
                cases.push((ty.clone(), m));
            }
        }
    }
    let glib = glib_is_normal(&cases);
    let mut disagreements = Vec::new();
    let (mut normal, mut not_normal) = (0, 0);
    for ((ty, b), g) in cases.iter().zip(glib) {
        let ours = Value::from_bytes(b, ty).is_ok();
        if g {
            normal += 1
        } else {
            not_normal += 1
        }
        if ours != g {
            disagreements.push(format!("{ty} {} glib={g} ours={ours}", hex::encode(b)));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree, e.g.:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        normal > 100 && not_normal > 1000,
        "normal {normal}, not normal {not_normal}"
    );
}
