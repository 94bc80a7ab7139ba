//! Builds fuzz seeds that need our own framing around real ostree output (run by
//! `scripts/fuzz-seeds.sh`; not a fuzz target). Every seed is written to
//! `<corpus>/<target>/<sha256 of the seed>`.
//!
//! ```text
//! seeds delta CORPUS SUPERBLOCK DELTA_DIR REPO   parts of one static delta
//! seeds headers CORPUS FILEZ...                 file headers from archive objects
//! seeds typed CORPUS TYPE FILE...               gvariant seeds: type-prefixed bytes
//! seeds prefixed CORPUS TARGET HEAD REST        u16-LE len(HEAD) ‖ HEAD ‖ REST
//! seeds gvcheck FILE...                         print `ok`/`err` per `gvariant` input,
//!                                               for differential checks against GLib
//! ```
//!
//! `delta` writes, for each part (inline or `DELTA_DIR/<i>`): a `delta_part` seed (object
//! list + part file, and the same payload stored uncompressed), a `delta_ops` seed (tables
//! sizes, object list, blob, ops), and for each `B` op whose read source is a `.filez` in
//! the archive `REPO`, a `bspatch` seed (declared size, old content, patch). Seeds whose
//! u16-prefixed fields would not fit are skipped.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::ops::Op;
use cfsync_formats::delta::part::{self, PartPayloadRef};
use cfsync_formats::delta::signed;
use cfsync_formats::file::{self, FileHeader, FilezReader};
use cfsync_formats::object::{self, ObjectType, RepoMode};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn write_seed(corpus: &Path, target: &str, data: &[u8]) -> Res<()> {
    let dir = corpus.join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(Checksum::of(data).to_hex()), data)?;
    Ok(())
}

fn prefixed(out: &mut Vec<u8>, field: &[u8]) -> Option<()> {
    let n = u16::try_from(field.len()).ok()?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(field);
    Some(())
}

fn read_filez(repo: &Path, c: &Checksum) -> Res<Vec<u8>> {
    let p = repo.join(object::loose_path(c, ObjectType::File, RepoMode::Archive));
    let mut r = FilezReader::new(fs::File::open(p)?)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

fn delta(corpus: &Path, superblock: &Path, dir: &Path, repo: &Path) -> Res<()> {
    let bytes = fs::read(superblock)?;
    let f = signed::open_superblock(&bytes)?;
    let sb = f.superblock;
    for p in sb.parts() {
        let part_file = match sb.inline_part(p.index)? {
            Some(b) => b.to_vec(),
            None => fs::read(dir.join(p.index.to_string()))?,
        };
        let objects = p.objects.data();
        let mut seed = Vec::new();
        if prefixed(&mut seed, objects).is_none() {
            eprintln!("seeds: part {} has too many objects, skipped", p.index);
            continue;
        }
        let mut raw = seed.clone();
        seed.extend_from_slice(&part_file);
        write_seed(corpus, "delta_part", &seed)?;
        let payload = part::decompress(&part_file, p.payload_cap())?;
        raw.push(0);
        raw.extend_from_slice(&payload);
        write_seed(corpus, "delta_part", &raw)?;

        let pl = PartPayloadRef::from_bytes(&payload)?;
        let mut ops_seed = vec![
            u8::try_from(pl.n_modes()).unwrap_or(u8::MAX),
            u8::try_from(pl.n_xattrs()).unwrap_or(u8::MAX),
        ];
        if prefixed(&mut ops_seed, objects).is_some()
            && prefixed(&mut ops_seed, pl.blob()).is_some()
        {
            ops_seed.extend_from_slice(pl.ops_bytes());
            write_seed(corpus, "delta_ops", &ops_seed)?;
        }

        let mut source = None;
        for op in pl.ops(p.objects) {
            match op? {
                Op::SetReadSource { checksum } => source = Some(checksum),
                Op::UnsetReadSource => source = None,
                Op::Bspatch { patch, size } => {
                    let Some(c) = source else { continue };
                    let old = match read_filez(repo, &c) {
                        Ok(old) => old,
                        Err(e) => {
                            eprintln!("seeds: read source {c}: {e}, skipped");
                            continue;
                        }
                    };
                    let mut b = u32::try_from(size)?.to_le_bytes().to_vec();
                    if prefixed(&mut b, &old).is_some() {
                        b.extend_from_slice(patch);
                        write_seed(corpus, "bspatch", &b)?;
                    } else {
                        eprintln!("seeds: bspatch old file of {} bytes, skipped", old.len());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn headers(corpus: &Path, files: &[PathBuf]) -> Res<()> {
    for f in files {
        let bytes = fs::read(f)?;
        let (h, rest) = file::decode_sized_archive_header(&bytes)?;
        let sized_len = bytes.len() - rest.len();
        write_seed(corpus, "file_header", &bytes[..sized_len])?;
        write_seed(corpus, "file_header", &bytes[8..sized_len])?;
        write_seed(corpus, "file_header", &h.to_bare_bytes()?)?;
        write_seed(corpus, "file_header", &file::encode_sized_bare_header(&h)?)?;
        let rt: FileHeader = FileHeader::from_bare_bytes(&h.to_bare_bytes()?)?;
        debug_assert_eq!(rt.mode, h.mode);
    }
    Ok(())
}

fn typed(corpus: &Path, ty: &str, files: &[PathBuf]) -> Res<()> {
    let n = u8::try_from(ty.len())?;
    for f in files {
        let mut seed = vec![n];
        seed.extend_from_slice(ty.as_bytes());
        seed.extend_from_slice(&fs::read(f)?);
        write_seed(corpus, "gvariant", &seed)?;
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths = |a: &[String]| a.iter().map(PathBuf::from).collect::<Vec<_>>();
    match args.as_slice() {
        [cmd, files @ ..] if cmd == "gvcheck" => {
            for f in files {
                let d = fs::read(f)?;
                let verdict = d.split_first().and_then(|(&n, rest)| {
                    let (ty, body) = rest.split_at(usize::from(n).min(rest.len()));
                    let ty = std::str::from_utf8(ty).ok()?;
                    cfsync_formats::gvariant::Value::from_bytes(body, ty).ok()
                });
                println!("{}\t{f}", if verdict.is_some() { "ok" } else { "err" });
            }
            Ok(())
        }
        [cmd, corpus, sb, dir, repo] if cmd == "delta" => delta(
            Path::new(corpus),
            Path::new(sb),
            Path::new(dir),
            Path::new(repo),
        ),
        [cmd, corpus, files @ ..] if cmd == "headers" => headers(Path::new(corpus), &paths(files)),
        [cmd, corpus, ty, files @ ..] if cmd == "typed" => {
            typed(Path::new(corpus), ty, &paths(files))
        }
        [cmd, corpus, target, head, rest] if cmd == "prefixed" => {
            let mut seed = Vec::new();
            prefixed(&mut seed, &fs::read(head)?).ok_or("HEAD longer than 65535 bytes")?;
            seed.extend_from_slice(&fs::read(rest)?);
            write_seed(Path::new(corpus), target, &seed)
        }
        _ => Err("usage: seeds delta|headers|typed|prefixed CORPUS ...".into()),
    }
}
