//! `cfsync delta generate`: deltas that stock `ostree` applies.
//!
//! Deltas made by cfsync from the bundled demo repository (v1 -> v2, made by real
//! ostree) and from random trees are served by nginx to Debian's `ostree pull` into a
//! bare-user repository (`ostree summary -u` lists them), checked with `ostree fsck`, and
//! compared with the commit path by path; `ostree static-delta show` reads every one; a
//! signed superblock is verified and applied by `ostree static-delta verify` /
//! `apply-offline` (2022.7's HTTP pull does not unwrap signed superblocks); cfsync pulls
//! the same deltas and gets the image id of the object route.

use std::path::Path;
use std::process::Command;

use cfsync_formats::delta::DeltaName;
use cfsync_formats::delta::part::{PartPayloadRef, decompress};
use cfsync_formats::delta::signed::SignedSuperblockRef;
use cfsync_formats::delta::superblock::{ByteOrder, SuperblockRef};
use cfsync_tests::{Nginx, Ostree, Rng, TreeBuilder, demo, run_cfsync_ok, run_checked, tempdir};
use serde_json::Value as Json;

/// A writable copy of the demo repository without ostree's deltas.
fn demo_copy(dir: &Path) -> Ostree {
    let dst = dir.join("repo");
    run_checked(Command::new("cp").arg("-a").arg(&demo().repo).arg(&dst));
    for d in ["deltas", "delta-indexes"] {
        let _ = std::fs::remove_dir_all(dst.join(d));
    }
    Ostree::open(&dst)
}

/// `cfsync delta generate REPO ARGS… --json`.
fn generate(repo: &Ostree, args: &[&str]) -> Json {
    let mut a = vec!["delta", "generate", repo.path().to_str().unwrap(), "--json"];
    a.extend_from_slice(args);
    let out = run_cfsync_ok(a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("generate printed {out:?}: {e}"))
}

/// `delta generate` of the delta to `to`, from `from` or from scratch, with `flags`.
fn generate_delta(repo: &Ostree, from: Option<&str>, to: &str, flags: &[&str]) -> Json {
    let mut a = match from {
        Some(from) => vec!["--from", from, "--to", to],
        None => vec!["--empty", "--to", to],
    };
    a.extend_from_slice(flags);
    generate(repo, &a)
}

/// Parses a delta with formats/: superblock (signed or not), every part decompressed and
/// its payload and operations read; returns the byte order.
fn parse_delta(repo: &Path, name: &DeltaName) -> ByteOrder {
    parse_delta_parts(repo, name).0
}

/// [`parse_delta`], and how many parts run the x86 branch filter before LZMA2.
fn parse_delta_parts(repo: &Path, name: &DeltaName) -> (ByteOrder, usize) {
    let mut x86_parts = 0;
    let dir = repo.join(name.dir());
    let file = std::fs::read(dir.join("superblock")).unwrap();
    let inner = match SignedSuperblockRef::from_bytes(&file) {
        Ok(s) => s.superblock_bytes().to_vec(),
        Err(_) => file.clone(),
    };
    let sb = SuperblockRef::from_bytes(&inner).unwrap();
    assert_eq!(sb.name(), *name);
    for p in sb.parts() {
        let part = match sb.inline_part(p.index).unwrap() {
            Some(bytes) => bytes.to_vec(),
            None => std::fs::read(dir.join(p.index.to_string())).unwrap(),
        };
        assert_eq!(part.len() as u64, p.size, "part {} size", p.index);
        assert_eq!(cfsync_formats::checksum::Checksum::of(&part), p.checksum);
        // Within ostree 2026.3's limit: the payload is no larger than the declared size.
        let payload = decompress(&part, p.uncompressed_size).unwrap();
        let pl = PartPayloadRef::from_bytes(&payload).unwrap();
        let counts = pl.op_counts(p.objects).unwrap();
        assert!(format!("{counts:?}").len() > 1);
        if part.first() == Some(&b'x') {
            let (blocks, dict, x86) = xz_single_stream(&part[1..]);
            x86_parts += usize::from(x86);
            assert!(blocks >= 1, "part {}: no xz block", p.index);
            assert!(
                dict <= 8 << 20,
                "part {}: dictionary of {dict} bytes",
                p.index
            );
        }
    }
    (sb.endianness().byte_order(), x86_parts)
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..63).step_by(7) {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    v
}

/// Checks that `xz` is exactly one .xz stream (header, blocks, index, footer, nothing
/// after) and returns its block count, the first block's LZMA2 dictionary size and
/// whether the x86 filter comes first.
fn xz_single_stream(xz: &[u8]) -> (u64, u64, bool) {
    assert_eq!(&xz[..6], b"\xfd7zXZ\0", "xz stream header");
    assert_eq!(
        &xz[xz.len() - 2..],
        b"YZ",
        "xz stream footer at the very end"
    );
    let footer = &xz[xz.len() - 12..];
    let backward = u32::from_le_bytes(footer[4..8].try_into().unwrap()) as usize;
    let index_size = (backward + 1) * 4;
    let index_at = xz.len() - 12 - index_size;
    assert_eq!(xz[index_at], 0, "index indicator");
    let mut at = index_at + 1;
    let records = varint(xz, &mut at);
    let mut blocks_len = 0usize;
    for _ in 0..records {
        let unpadded = varint(xz, &mut at) as usize;
        let _uncompressed = varint(xz, &mut at);
        blocks_len += unpadded.div_ceil(4) * 4;
    }
    assert_eq!(
        12 + blocks_len + index_size + 12,
        xz.len(),
        "more than one xz stream"
    );
    // First block header: size, flags, optional sizes, then the filters: at most the
    // x86 branch filter (0x04, no properties), then 0x21 (LZMA2).
    let flags = xz[13];
    let mut at = 14;
    if flags & 0x40 != 0 {
        varint(xz, &mut at);
    }
    if flags & 0x80 != 0 {
        varint(xz, &mut at);
    }
    let filters = (flags & 3) + 1;
    assert!(filters <= 2, "{filters} filters");
    if filters == 2 {
        assert_eq!(varint(xz, &mut at), 0x04, "x86 filter first");
        assert_eq!(varint(xz, &mut at), 0, "x86 filter without properties");
    }
    assert_eq!(varint(xz, &mut at), 0x21, "LZMA2 filter");
    assert_eq!(varint(xz, &mut at), 1, "LZMA2 properties size");
    let d = u64::from(xz[at]);
    let dict = (2 | (d & 1)) << (d / 2 + 11);
    (records, dict, filters == 2)
}

/// A bare-user repository pulling from `url` with stock ostree.
fn client(dir: &Path, url: &str) -> Ostree {
    let c = Ostree::init(dir, "bare-user");
    c.run([
        "remote",
        "add",
        "--no-gpg-verify",
        "--set=gpg-verify-summary=false",
        "origin",
        url,
    ]);
    c
}

/// Every path of `rev` with its checksum, as `ostree ls -R` lists them.
fn listing(repo: &Ostree, rev: &str) -> Vec<String> {
    repo.ls_entries(rev)
        .into_values()
        .map(|e| {
            format!(
                "{} {:o} {} {} {}",
                e.path,
                e.mode,
                e.uid,
                e.checksum,
                e.target.unwrap_or_default()
            )
        })
        .collect()
}

fn assert_same_checkout(server: &Ostree, client: &Ostree, rev: &str, dir: &Path) {
    client.fsck();
    assert_eq!(
        listing(server, rev),
        listing(client, rev),
        "client tree differs from {rev}"
    );
    let (a, b) = (dir.join("co-server"), dir.join("co-client"));
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
    server.run(["checkout", "-U", rev, a.to_str().unwrap()]);
    client.run(["checkout", "-U", rev, b.to_str().unwrap()]);
    run_checked(
        Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(&a)
            .arg(&b),
    );
}

/// Scratch delta to v1, then v1 -> v2, pulled by stock ostree over HTTP.
fn ostree_applies(server: &Ostree, v1: &str, v2: &str, refname: &str, tmp: &Path, what: &str) {
    server.run(["summary", "-u"]);
    let http = Nginx::serve(server.path());
    let c = client(&tmp.join(format!("client-{what}")), &http.url());
    http.reset_log();
    c.run([
        "pull",
        "--require-static-deltas",
        "origin",
        &format!("{refname}@{v1}"),
    ]);
    let log = http.log();
    assert!(
        log.iter().any(|e| e.uri.ends_with("/superblock")),
        "{what}: ostree did not fetch a superblock"
    );
    assert_same_checkout(server, &c, v1, tmp);
    c.run(["pull", "--require-static-deltas", "origin", refname]);
    assert_eq!(c.rev_parse(refname), v2);
    assert_same_checkout(server, &c, v2, tmp);
}

#[test]
fn stock_ostree_pulls_cfsync_deltas_in_every_variant() {
    let d = demo();
    let variants: &[(&str, &[&str], &str)] = &[
        ("default", &[], "little"),
        ("big-endian", &["--set-endianness", "B"], "big"),
        ("inline", &["--inline"], "little"),
        // Small parts and every file inside them (no fallbacks).
        (
            "small-parts",
            &["--max-chunk-size", "1", "--min-fallback-size", "0"],
            "little",
        ),
    ];
    for (what, flags, endian) in variants {
        let tmp = tempdir();
        let repo = demo_copy(tmp.path());
        let s = generate_delta(&repo, None, &d.v1, flags);
        assert!(s["parts"].as_u64().unwrap() >= 1, "{what}: {s}");
        let u = generate_delta(&repo, Some(&d.v1), &d.v2, flags);
        assert!(
            u["objects"]["bsdiff"].as_u64().unwrap() >= 1,
            "{what}: no bsdiff in {u}"
        );
        for (name, delta) in [
            (d.v1.clone(), DeltaName::new(None, d.v1.parse().unwrap())),
            (
                format!("{}-{}", d.v1, d.v2),
                DeltaName::new(Some(d.v1.parse().unwrap()), d.v2.parse().unwrap()),
            ),
        ] {
            // 2022.7's `show` reads inline parts from files (it fails on ostree's own
            // inline deltas the same way) after printing the superblock's figures.
            let out = repo.try_run(["static-delta", "show", &name]);
            let show = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() || *what == "inline",
                "{what}: show failed: {out:?}"
            );
            assert!(
                show.contains(&format!("Endianness: {endian}")),
                "{what}: {show}"
            );
            let order = parse_delta(repo.path(), &delta);
            assert_eq!(order == ByteOrder::Big, *endian == "big", "{what}");
        }
        ostree_applies(&repo, &d.v1, &d.v2, &d.refname, tmp.path(), what);
    }
}

#[test]
fn signed_superblock_verifies_and_ostree_applies_it_offline() {
    let d = demo();
    let tmp = tempdir();
    let repo = demo_copy(tmp.path());
    let key = tmp.path().join("delta.key");
    let public = run_cfsync_ok(["sign", "keygen", "--secret-key", key.to_str().unwrap()]);
    let public = public.trim();
    generate(
        &repo,
        &[
            "--from",
            &d.v1,
            "--to",
            &d.v2,
            "--sign",
            key.to_str().unwrap(),
        ],
    );
    let name = format!("{}-{}", d.v1, d.v2);
    let show = repo.run(["static-delta", "show", &name]);
    assert!(show.contains("Signed: yes"), "{show}");
    // Debian's ostree is built without ed25519 ("Sign-type not supported"), so the
    // signature is checked with cfsync's verifier over the wrapped superblock bytes.
    let delta = DeltaName::new(Some(d.v1.parse().unwrap()), d.v2.parse().unwrap());
    parse_delta(repo.path(), &delta);
    let file = std::fs::read(repo.path().join(delta.dir()).join("superblock")).unwrap();
    let signed = SignedSuperblockRef::from_bytes(&file).unwrap();
    let sigs = signed.engine_signatures("ed25519").unwrap().unwrap();
    let mut keys = cfsync_verify::ed25519::Ed25519Keys::new();
    keys.add_trusted(cfsync_verify::ed25519::parse_public_key(public).unwrap());
    cfsync_verify::ed25519::verify(signed.superblock_bytes(), &sigs, &keys).unwrap();
    // ostree unwraps and applies it offline into a bare-user repository holding v1.
    let c = Ostree::init(tmp.path().join("client"), "bare-user");
    c.run(["pull-local", repo.path().to_str().unwrap(), &d.v1]);
    c.run([
        "static-delta",
        "apply-offline",
        repo.path()
            .join(delta.dir())
            .join("superblock")
            .to_str()
            .unwrap(),
    ]);
    c.run(["refs", "--create=check", &d.v2]);
    assert_same_checkout(&repo, &c, &d.v2, tmp.path());
}

fn cfsync_pull(store: &Path, src: &str, extra: &[&str]) -> Json {
    let mut args = vec!["--repo", store.to_str().unwrap(), "pull", "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[src, &demo().refname]);
    serde_json::from_str(&run_cfsync_ok(args)).unwrap()
}

#[test]
fn cfsync_pulls_its_deltas_with_the_object_route_image() {
    let d = demo();
    let tmp = tempdir();
    let src = demo().repo.to_str().unwrap().to_owned();
    let objects = cfsync_pull(&tmp.path().join("ref"), &src, &["--no-deltas"]);
    let image = objects["image"].as_str().unwrap().to_owned();
    let variants: &[(&str, &[&str])] = &[
        ("default", &[]),
        ("big-endian", &["--set-endianness", "B"]),
        ("inline", &["--inline"]),
        ("signed", &["--sign"]),
        // As deltas were written before the endianness marker existed.
        ("no-marker", &["--no-endianness-marker"]),
    ];
    for (what, flags) in variants {
        let dir = tmp.path().join(what);
        std::fs::create_dir_all(&dir).unwrap();
        let repo = demo_copy(&dir);
        let key = dir.join("k");
        let mut flags: Vec<&str> = flags.to_vec();
        if *what == "signed" {
            run_cfsync_ok(["sign", "keygen", "--secret-key", key.to_str().unwrap()]);
            flags.push(key.to_str().unwrap());
        }
        generate_delta(&repo, Some(&d.v1), &d.v2, &flags);
        generate_delta(&repo, None, &d.v2, &flags);
        repo.run(["summary", "-u"]);
        let out = repo.try_run(["static-delta", "show", &d.v2]);
        let show = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() || *what == "inline", "{what}: {out:?}");
        assert!(show.contains("Number of parts"), "{what}: {show}");
        let src = repo.path().to_str().unwrap().to_owned();
        let scratch = cfsync_pull(&dir.join("s1"), &src, &[]);
        assert_eq!(
            scratch["delta"].as_str(),
            Some(d.v2.as_str()),
            "{what}: {scratch}"
        );
        assert_eq!(
            scratch["image"].as_str(),
            Some(image.as_str()),
            "{what}: scratch"
        );
        let store = dir.join("s2");
        cfsync_pull(&store, &src, &["--no-deltas", "--commit", &d.v1]);
        let update = cfsync_pull(&store, &src, &[]);
        assert_eq!(
            update["delta"].as_str(),
            Some(format!("{}-{}", d.v1, d.v2).as_str()),
            "{what}: {update}"
        );
        assert_eq!(
            update["image"].as_str(),
            Some(image.as_str()),
            "{what}: update"
        );
    }
}

/// Random trees: v1, then v2 with files changed, renamed, added and removed.
fn random_trees(root: &Path, seed: u64) -> (TreeBuilder, TreeBuilder) {
    let mut rng = Rng::new(seed);
    let v1 = TreeBuilder::new(root.join("t1"));
    let n = 5 + rng.below(30) as usize;
    for i in 0..n {
        let dir = format!("d{}", rng.below(4));
        match rng.below(5) {
            0 => v1.symlink(&format!("{dir}/l{i}"), format!("f{}", rng.below(9))),
            1 => v1.file_with_mode(
                &format!("{dir}/x{i}"),
                format!("#!/bin/sh\necho {i}\n"),
                0o755,
            ),
            2 => v1.file(
                &format!("{dir}/t{i}.txt"),
                format!("line {i}\n").repeat(1 + rng.below(2000) as usize),
            ),
            _ => v1.random_file(
                &format!("{dir}/b{i}.so.1.{}", rng.below(3)),
                1 + rng.below(300_000) as usize,
                rng.next_u64(),
            ),
        };
    }
    let v2 = TreeBuilder::copy_of(v1.root(), root.join("t2"));
    v2.file("new.txt", format!("seed {seed}\n").repeat(50));
    for entry in walk(v1.root()) {
        let rel = entry
            .strip_prefix(v1.root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if entry.is_symlink() || !entry.is_file() {
            continue;
        }
        match rng.below(4) {
            0 => {
                v2.scatter_patch(&rel, 1000 + rng.below(5000) as usize);
            }
            1 => {
                v2.append(&rel, b"v2");
            }
            2 => {
                let bytes = std::fs::read(&entry).unwrap();
                v2.remove(&rel);
                v2.file(&format!("{rel}.2"), bytes);
            }
            _ => {}
        }
    }
    (v1, v2)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn property_random_trees_give_deltas_that_parse_and_apply() {
    for seed in [1u64, 7, 42] {
        let tmp = tempdir();
        let (t1, t2) = random_trees(tmp.path(), seed);
        let repo = Ostree::init(tmp.path().join("repo"), "archive");
        let v1 = repo.commit("r/s", t1.root(), ["--no-xattrs"]);
        let v2 = repo.commit("r/s", t2.root(), ["--no-xattrs"]);
        let flags = ["--max-chunk-size", "1", "--min-fallback-size", "0"];
        generate_delta(&repo, None, &v1, &flags);
        generate_delta(&repo, Some(&v1), &v2, &flags);
        parse_delta(repo.path(), &DeltaName::new(None, v1.parse().unwrap()));
        parse_delta(
            repo.path(),
            &DeltaName::new(Some(v1.parse().unwrap()), v2.parse().unwrap()),
        );
        ostree_applies(&repo, &v1, &v2, "r/s", tmp.path(), &format!("seed{seed}"));
    }
}

/// `gzip -n` of `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn x86_code_parts_and_a_bsdiffed_gzip_file_apply_with_stock_ostree() {
    let tmp = tempdir();
    let mut rng = Rng::new(17);
    let text: String = (0..6000)
        .map(|i| format!("{i} entry {:x}\n", rng.next_u64()))
        .collect();
    let log1 = gzip(text.as_bytes());
    // v2 appends a gzip member: the old stream is a prefix of the new one.
    let mut log2 = log1.clone();
    log2.extend_from_slice(&gzip(b"version 2\n"));
    // An x86-64 ELF executable of the host, changed a little in v2.
    let elf = std::fs::read("/bin/ls").unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    let mut elf2 = elf.clone();
    elf2.extend_from_slice(b"v2");
    let unrelated1 = gzip(&cfsync_tests::pseudo_random(3, 50_000));
    let unrelated2 = gzip(&cfsync_tests::pseudo_random(4, 50_000));
    let t1 = TreeBuilder::new(tmp.path().join("t1"));
    t1.file("usr/share/doc/log.gz", &log1)
        .file_with_mode("usr/bin/prog", &elf, 0o755)
        .file("usr/share/data.gz", &unrelated1);
    let t2 = TreeBuilder::new(tmp.path().join("t2"));
    t2.file("usr/share/doc/log.gz", &log2)
        .file_with_mode("usr/bin/prog", &elf2, 0o755)
        .file("usr/share/data.gz", &unrelated2);
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let v1 = repo.commit("r/s", t1.root(), ["--no-xattrs"]);
    let v2 = repo.commit("r/s", t2.root(), ["--no-xattrs"]);
    let s = generate(&repo, &["--empty", "--to", &v1]);
    let (_, x86) = parse_delta_parts(repo.path(), &DeltaName::new(None, v1.parse().unwrap()));
    assert!(x86 >= 1, "no part with the x86 filter: {s}");
    // gzip of random bytes: xz saves nothing, so its part goes as uncompressed LZMA2
    // chunks (stock ostree applies it below, in the pull of v1).
    assert_eq!(s["stored_parts"], 1, "{s}");
    let u = generate(&repo, &["--from", &v1, "--to", &v2]);
    // The related gzip file and the ELF go as patches; the unrelated gzip goes whole
    // (the probe finds nothing in common).
    assert_eq!(u["objects"]["bsdiff"], 2, "{u}");
    assert_eq!(u["compressed_bsdiff"], 1, "{u}");
    assert_eq!(u["compressed_skipped"], 1, "{u}");
    parse_delta(
        repo.path(),
        &DeltaName::new(Some(v1.parse().unwrap()), v2.parse().unwrap()),
    );
    ostree_applies(&repo, &v1, &v2, "r/s", tmp.path(), "x86-gzip");
}

#[test]
fn large_files_go_as_fallbacks_or_patches_and_stock_ostree_applies_both() {
    let tmp = tempdir();
    // Above --min-fallback-size (1 MB) and above --max-bsdiff-size (1 MiB): a fallback
    // object, decided from its header alone. Above the first, below the second: bsdiff.
    let big1 = cfsync_tests::pseudo_random(5, 1_500_000);
    let mut big2 = big1.clone();
    big2.extend_from_slice(b"version 2");
    let mid1 = cfsync_tests::pseudo_random(6, 1_020_000);
    let mut mid2 = mid1.clone();
    mid2[500_000..500_016].copy_from_slice(b"version 2 change");
    let t1 = TreeBuilder::new(tmp.path().join("t1"));
    t1.file("usr/share/big.bin", &big1)
        .file("usr/share/mid.bin", &mid1);
    let t2 = TreeBuilder::new(tmp.path().join("t2"));
    t2.file("usr/share/big.bin", &big2)
        .file("usr/share/mid.bin", &mid2);
    let repo = Ostree::init(tmp.path().join("repo"), "archive");
    let v1 = repo.commit("r/s", t1.root(), ["--no-xattrs"]);
    let v2 = repo.commit("r/s", t2.root(), ["--no-xattrs"]);
    let limits = ["--min-fallback-size", "1", "--max-bsdiff-size", "1"];
    let s = generate_delta(&repo, None, &v1, &limits);
    assert_eq!(
        s["fallbacks"], 2,
        "both files are fallbacks from scratch: {s}"
    );
    let u = generate_delta(&repo, Some(&v1), &v2, &limits);
    assert_eq!(u["fallbacks"], 1, "big.bin is above --max-bsdiff-size: {u}");
    assert_eq!(u["objects"]["bsdiff"], 1, "mid.bin is patched: {u}");
    ostree_applies(&repo, &v1, &v2, "r/s", tmp.path(), "fallbacks");
}
