//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`: seeds from real ostree
//! output and every crash input found so far) through the parsers each fuzz target
//! drives, on stable Rust and without libFuzzer. A panic here is a regression of a fixed
//! crash; the round-trip checks mirror the fuzz targets' assertions.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::Read;
use std::path::PathBuf;

use cfsync_formats::commit::{self, CommitRef};
use cfsync_formats::delta::DeltaObjects;
use cfsync_formats::delta::index::DeltaIndex;
use cfsync_formats::delta::ops::{self, OpContext};
use cfsync_formats::delta::part::{self, PartPayloadRef};
use cfsync_formats::delta::signed::{self, SignedSuperblockRef};
use cfsync_formats::delta::superblock::SuperblockRef;
use cfsync_formats::delta::{DeltaName, bspatch};
use cfsync_formats::dirmeta::DirMetaRef;
use cfsync_formats::dirtree::DirTreeRef;
use cfsync_formats::file::{self, FileHeader, FilezReader};
use cfsync_formats::gvariant::Value;
use cfsync_formats::metadata::MetadataRef;
use cfsync_formats::summary::{SummaryRef, SummarySigRef};
use cfsync_formats::summary_index::{self, SummaryIndexRef};
use cfsync_formats::{names, summary};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_file() {
            let b = std::fs::read(&p).unwrap();
            out.push((p, b));
        }
    }
    assert!(!out.is_empty(), "{} has no inputs", dir.display());
    out
}

/// The fuzz targets' u16-LE length-prefix split.
fn split_prefixed(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return (&[], data);
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    rest.split_at(len)
}

fn part_file(data: &[u8], objects: DeltaObjects<'_>) {
    let _ = part::split(data);
    let mut streamed = Vec::new();
    let streamed_ok = part::PartPayloadReader::new(data, 4 << 20)
        .read_to_end(&mut streamed)
        .is_ok();
    if let Ok(p) = part::decompress(data, 4 << 20) {
        assert!(streamed_ok);
        assert_eq!(&streamed[..], &p[..]);
        if let Ok(pl) = PartPayloadRef::from_bytes(&p) {
            let _ = pl.op_counts(objects);
            for i in 0..pl.n_xattrs() {
                let _ = pl.xattrs(i).unwrap().entries();
            }
        }
    } else {
        assert!(!streamed_ok);
    }
}

fn superblock(s: &SuperblockRef<'_>) {
    let _ = s.commit();
    let _ = s.commitmeta();
    let _ = s.name().dir();
    for p in s.parts() {
        if let Ok(Some(b)) = s.inline_part(p.index) {
            part_file(b, p.objects);
        }
    }
}

#[test]
fn objects_round_trip() {
    for (p, d) in corpus("commit") {
        if let Ok(c) = CommitRef::from_bytes(&d) {
            let owned = c.to_owned().unwrap();
            assert_eq!(owned.to_bytes().unwrap(), d, "{}", p.display());
            let _ = (
                c.version(),
                c.ref_binding(),
                c.composefs_digest(),
                c.endoflife(),
            );
        }
        let _ = commit::parse_tombstone(&d);
    }
    for (p, d) in corpus("dirtree") {
        if let Ok(t) = DirTreeRef::from_bytes(&d) {
            assert_eq!(
                t.to_owned().unwrap().to_bytes().unwrap(),
                d,
                "{}",
                p.display()
            );
        }
    }
    for (p, d) in corpus("dirmeta") {
        if let Ok(m) = DirMetaRef::from_bytes(&d) {
            assert_eq!(m.to_owned().to_bytes().unwrap(), d, "{}", p.display());
        }
    }
    for (p, d) in corpus("metadata") {
        if let Ok(m) = MetadataRef::from_bytes(&d) {
            assert_eq!(
                m.to_owned().unwrap().to_bytes().unwrap(),
                d,
                "{}",
                p.display()
            );
        }
    }
}

#[test]
fn gvariant_inputs() {
    for (_, d) in corpus("gvariant") {
        let Some((&n, rest)) = d.split_first() else {
            continue;
        };
        let (ty, body) = rest.split_at(usize::from(n).min(rest.len()));
        if let Ok(ty) = std::str::from_utf8(ty) {
            let _ = Value::from_bytes(body, ty);
        }
    }
}

#[test]
fn file_inputs() {
    for (_, d) in corpus("filez") {
        if let Ok(mut r) = FilezReader::new(&d[..]) {
            let mut out = Vec::new();
            let _ = r.read_to_end(&mut out);
        }
    }
    for (_, d) in corpus("file_header") {
        let _ = FileHeader::from_bare_bytes(&d);
        let _ = FileHeader::from_archive_bytes(&d);
        let _ = file::decode_sized_bare_header(&d);
        let _ = file::decode_sized_archive_header(&d);
        let _ = file::parse_ostreemeta(&d);
    }
}

#[test]
fn summary_inputs() {
    for (_, d) in corpus("summary") {
        if let Ok(s) = SummaryRef::from_bytes(&d) {
            let bytes = s.to_owned().unwrap().to_bytes().unwrap();
            let again = SummaryRef::from_bytes(&bytes).unwrap();
            assert_eq!(again.refs().len(), s.refs().len());
        }
    }
    for (_, d) in corpus("summary_sig") {
        let _ = SummarySigRef::from_bytes(&d);
    }
    for (_, d) in corpus("summary_index") {
        let _ = SummaryIndexRef::from_bytes(&d);
    }
    for (_, d) in corpus("subsummary_diff") {
        let _ = summary_index::decompress_subsummary(&d, 1 << 20);
        let (old, diff) = split_prefixed(&d);
        let _ = summary_index::apply_diff(old, diff, 1 << 20);
        let _ = summary_index::apply_subsummary_diff(old, diff, 1 << 20, 1 << 20);
    }
    let _ = summary::MAX_REFS;
}

#[test]
fn delta_inputs() {
    for target in ["superblock", "signed_superblock"] {
        for (_, d) in corpus(target) {
            if let Ok(s) = SuperblockRef::from_bytes(&d) {
                superblock(&s);
            }
            if let Ok(s) = SignedSuperblockRef::from_bytes(&d)
                && let Ok(sb) = s.superblock()
            {
                superblock(&sb);
            }
            let _ = signed::open_superblock(&d);
        }
    }
    for (_, d) in corpus("delta_index") {
        let _ = DeltaIndex::from_bytes(&d);
    }
    for (_, d) in corpus("delta_part") {
        let (objects, file) = split_prefixed(&d);
        let objects = DeltaObjects::new(objects).unwrap_or(DeltaObjects::new(&[]).unwrap());
        part_file(file, objects);
    }
    for (_, d) in corpus("delta_ops") {
        let Some((&[m, x], rest)) = d.split_first_chunk::<2>() else {
            continue;
        };
        let (objects, rest) = split_prefixed(rest);
        let (blob, o) = split_prefixed(rest);
        if let Ok(objects) = DeltaObjects::new(objects) {
            let ctx = OpContext {
                objects,
                n_modes: usize::from(m),
                n_xattrs: usize::from(x),
                blob,
            };
            let _ = ops::count(o, ctx);
        }
    }
    for (_, d) in corpus("bspatch") {
        let Some((size, rest)) = d.split_first_chunk::<4>() else {
            continue;
        };
        let declared = u64::from(u32::from_le_bytes(*size));
        let (old, patch) = split_prefixed(rest);
        let mut out = Vec::new();
        if bspatch::apply(old, patch, &mut out, declared).is_ok() {
            assert_eq!(out.len() as u64, declared);
        } else {
            assert!(out.is_empty());
        }
    }
}

#[test]
fn name_inputs() {
    for target in ["names", "delta_name"] {
        for (_, d) in corpus(target) {
            let Ok(s) = std::str::from_utf8(&d) else {
                continue;
            };
            let _ = names::validate_rev(s);
            let _ = names::validate_rev_for_write(s);
            let _ = names::parse_refspec(s);
            let _ = names::validate_collection_id(s);
            let _ = names::validate_filename(s);
            let _ = names::validate_checksum_string(s);
            if let Ok(n) = s.parse::<DeltaName>() {
                assert_eq!(DeltaName::from_dir(&n.dir()).unwrap(), n);
            }
            if let Ok(n) = DeltaName::from_dir(s) {
                assert_eq!(DeltaName::from_dir(&n.dir()).unwrap(), n);
            }
        }
    }
}

/// The engine's own on-disk and configuration formats: key files, mirrorlists, journal
/// records and the object index (their corpora: `fuzz/corpus/{keyfile,mirrorlist,journal,
/// object_index}`), with the fuzz targets' round trips.
#[test]
fn engine_format_inputs() {
    use cfsync_formats::keyfile::KeyFile;
    use cfsync_formats::object_index::IndexTable;
    use cfsync_formats::{journal, mirrorlist};

    let mut parsed = 0;
    for (p, d) in corpus("keyfile") {
        let kf = KeyFile::parse_bytes(&d).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(
            KeyFile::parse(&kf.to_data()).unwrap(),
            kf,
            "{}",
            p.display()
        );
        parsed += 1;
    }
    for (p, d) in corpus("mirrorlist") {
        let mut entries =
            mirrorlist::entries(&d).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(entries.all(|e| !e.is_empty() && !e.starts_with('#')));
        parsed += 1;
    }
    for (p, d) in corpus("journal") {
        let mut rest = d.strip_prefix(journal::MAGIC.as_slice()).unwrap_or(&d);
        while let Some(payload) = journal::next_record(&mut rest) {
            let mut framed = Vec::new();
            journal::encode_record(&mut framed, payload).unwrap();
            assert_eq!(
                framed.len(),
                journal::framed_len(payload.len()),
                "{}",
                p.display()
            );
        }
        parsed += 1;
    }
    for (p, d) in corpus("object_index") {
        let table = IndexTable::decode(&d).unwrap_or_else(|| panic!("{}", p.display()));
        assert_eq!(IndexTable::decode(&table.encode()).unwrap(), table);
        parsed += 1;
    }
    assert!(parsed >= 12, "only {parsed} corpus files");
}

#[path = "../../fuzz/src/superblock_write.rs"]
#[allow(dead_code, unreachable_pub)]
mod superblock_write;

#[test]
fn superblock_write_corpus_round_trips() {
    for (path, data) in corpus("superblock_write") {
        let r = std::panic::catch_unwind(|| superblock_write::superblock_write_round_trip(&data));
        assert!(r.is_ok(), "{} broke the writer round trip", path.display());
    }
}

#[path = "../../fuzz/src/summary_write.rs"]
#[allow(dead_code, unreachable_pub)]
mod summary_write;

/// The summary writer's round trip over every real summary of the corpus and every
/// prefix of one (the `summary_write` target's body).
#[test]
fn summary_write_corpus_round_trips() {
    let mut inputs = corpus("summary_write");
    inputs.extend(corpus("summary"));
    for (path, data) in &inputs {
        let r = std::panic::catch_unwind(|| summary_write::summary_write_round_trip(data));
        assert!(
            r.is_ok(),
            "{} broke the summary writer round trip",
            path.display()
        );
    }
    let (_, first) = &inputs[0];
    for n in 0..first.len() {
        summary_write::summary_write_round_trip(&first[..n]);
    }
    summary_write::summary_write_round_trip(b"a\nb\na\n\n");
}

#[path = "../../fuzz/src/part_dict.rs"]
#[allow(dead_code, unreachable_pub)]
mod part_dict;

/// What a part's decoder needs, from every prefix of real part files' first bytes (the
/// `part_dict` target's body).
#[test]
fn part_dict_corpus_answers_consistently() {
    for (path, data) in corpus("part_dict") {
        let r = std::panic::catch_unwind(|| part_dict::part_dict_prefixes(&data));
        assert!(
            r.is_ok(),
            "{} broke decoder_need's prefix rules",
            path.display()
        );
    }
}
