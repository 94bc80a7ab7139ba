//! `cfsync_verify::checksum` against `sha256sum` and an object of a real ostree repo.

use std::fs;
use std::io::{Read, Write};
use std::process::Command;

use cfsync_verify::checksum::{
    ChecksumError, HashingReader, HashingWriter, parse_sha256_hex, sha256, verify_sha256,
};

use crate::util::{run, stdout};

fn sha256sum(path: &std::path::Path) -> [u8; 32] {
    let out = stdout(Command::new("sha256sum").arg(path));
    parse_sha256_hex(out.split_whitespace().next().unwrap(), "sha256sum output").unwrap()
}

#[test]
fn streaming_hashes_match_sha256sum() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("blob");
    // Larger than any internal buffer, not a multiple of the block size.
    let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
    fs::write(&path, &data).unwrap();
    let want = sha256sum(&path);
    assert_eq!(sha256(&data), want);
    verify_sha256(&want, &data, "blob").unwrap();

    let mut r = HashingReader::new(fs::File::open(&path).unwrap());
    let mut copy = Vec::new();
    let mut buf = [0u8; 4099];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        copy.extend_from_slice(&buf[..n]);
    }
    assert_eq!(r.bytes_hashed(), data.len() as u64);
    r.finish_verify(&want, "blob").unwrap();
    assert_eq!(copy, data);

    let mut w = HashingWriter::new(Vec::new());
    for chunk in data.chunks(777) {
        w.write_all(chunk).unwrap();
    }
    let (digest, len, out) = w.finish();
    assert_eq!((digest, len), (want, data.len() as u64));
    assert_eq!(out, data);
}

#[test]
fn mismatch_names_what_and_both_digests() {
    let data = b"hello";
    let expected = [0xabu8; 32];
    let err = verify_sha256(&expected, data, "objects/ab/cd.dirtree").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "checksum mismatch for objects/ab/cd.dirtree: expected {}, got {}",
            "ab".repeat(32),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        )
    );
    let mut r = HashingReader::new(&data[..]);
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    assert!(matches!(
        r.finish_verify(&expected, "x"),
        Err(ChecksumError::Mismatch { .. })
    ));
    assert!(matches!(
        parse_sha256_hex("xyz", "ref main"),
        Err(ChecksumError::InvalidHex { .. })
    ));
}

/// A metadata object's name is the SHA-256 of its bytes (`docs/ostree-formats.md` §1.3).
#[test]
fn ostree_commit_object_name_is_its_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    let r = format!("--repo={}", repo.display());
    run(Command::new("ostree").args([&r, "init", "--mode=archive"]));
    let checksum = stdout(
        Command::new("ostree")
            .args([&r, "commit", "-b", "main"])
            .arg(&tree),
    )
    .trim()
    .to_owned();
    let expected = parse_sha256_hex(&checksum, "commit").unwrap();
    let obj = repo
        .join("objects")
        .join(&checksum[..2])
        .join(format!("{}.commit", &checksum[2..]));
    let mut reader = HashingReader::new(fs::File::open(&obj).unwrap());
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    reader.finish_verify(&expected, &checksum).unwrap();
}
