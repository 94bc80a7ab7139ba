//! `cfsync delta generate`: deltas that stock `ostree` applies.
//!
//! The options follow `ostree static-delta generate` where it has one (`--from`,
//! `--empty`, `--to`, `--inline`, `--min-fallback-size`, `--max-bsdiff-size`,
//! `--max-chunk-size`, `--set-endianness`, `--swap-endianness`); `--sign KEYFILE` signs
//! the superblock with every ed25519 key in the file (ostree's `--sign-type=ed25519
//! --keys-file`). The work is engine's `publish::delta::generate`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cfsync_engine::publish::delta::{DeltaSigner, From, GenerateOptions, generate};
use cfsync_formats::delta::superblock::ByteOrder;
use cfsync_verify::ed25519;
use clap::Args;

/// `delta generate` arguments.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The OSTree repository to write the delta into (any mode).
    pub repo: PathBuf,
    /// The commit the delta starts from (ref or checksum); default: the parent of --to.
    #[arg(long, conflicts_with = "empty")]
    pub from: Option<String>,
    /// A delta from scratch (no from commit).
    #[arg(long)]
    pub empty: bool,
    /// The commit the delta ends at (ref or checksum).
    #[arg(long)]
    pub to: String,
    /// Put the parts into the superblock.
    #[arg(long)]
    pub inline: bool,
    /// Files above this many megabytes that are not rebuilt from an old file go as plain
    /// objects (fallbacks); 0 keeps every file in the parts.
    #[arg(long = "min-fallback-size", value_name = "MB", default_value_t = 4)]
    pub min_fallback_size: u64,
    /// Run bsdiff only on files up to this many megabytes (its working memory is about
    /// 7 bytes per byte of the file, within --memory-budget); larger files go whole.
    #[arg(long = "max-bsdiff-size", value_name = "MB", default_value_t = 24)]
    pub max_bsdiff_size: u64,
    /// Target uncompressed payload per part, in megabytes.
    #[arg(long = "max-chunk-size", value_name = "MB", default_value_t = 8)]
    pub max_chunk_size: u64,
    /// Byte order of the delta's host-order fields: l (little) or B (big).
    #[arg(long = "set-endianness", value_name = "l|B")]
    pub set_endianness: Option<String>,
    /// Write the opposite byte order of this host.
    #[arg(long = "swap-endianness", conflicts_with = "set_endianness")]
    pub swap_endianness: bool,
    /// Leave out the `ostree.endianness` marker, as deltas written before 2016 did (for
    /// testing readers).
    #[arg(long = "no-endianness-marker", hide = true)]
    pub no_endianness_marker: bool,
    /// Sign the superblock with every ed25519 secret key in this file (ostree's format:
    /// one base64 key per line). Repeatable.
    #[arg(long, value_name = "KEYFILE")]
    pub sign: Vec<PathBuf>,
    /// xz preset of the parts (0-9; ostree uses 8 with a 32 MiB dictionary).
    #[arg(long = "xz-preset", value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub xz_preset: u32,
    /// Largest xz dictionary of a part, in MiB (1-8): each client decoder of a part
    /// needs this much memory.
    #[arg(long = "xz-dict", value_name = "MiB", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub xz_dict: u32,
    /// xz's longest match sought in whole-file parts (8-273; lower is faster and a
    /// little larger; default 32; bsdiff patches keep the preset's).
    #[arg(long = "xz-nice-len", value_name = "N", value_parser = clap::value_parser!(u32).range(8..=273))]
    pub xz_nice_len: Option<u32>,
    /// xz's match finder for whole-file parts: `hc4` (hash chains, the default: less
    /// CPU, a few more bytes) or `bt4` (binary trees, as presets 4-9).
    #[arg(long = "xz-match-finder", value_name = "MF", value_parser = ["hc4", "bt4"])]
    pub xz_match_finder: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Memory budget for bsdiff and xz running at once, in megabytes.
    #[arg(long = "memory-budget", value_name = "MB", default_value_t = 192)]
    pub memory_budget: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn ed25519_signers(path: &std::path::Path) -> Result<Vec<DeltaSigner>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading ed25519 secret keys from {}", path.display()))?;
    let mut out: Vec<DeltaSigner> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let key = ed25519::parse_secret_key(line)
            .with_context(|| format!("{}: not an ed25519 secret key", path.display()))?;
        out.push(Box::new(move |data: &[u8]| {
            Ok(("ed25519".to_owned(), ed25519::sign(data, &key).to_vec()))
        }));
    }
    if out.is_empty() {
        bail!("{}: no ed25519 secret key in the file", path.display());
    }
    Ok(out)
}

/// Runs `cfsync delta generate`.
pub(crate) fn run(args: &GenerateArgs, quiet: bool) -> Result<()> {
    let mut opts = GenerateOptions::new(args.to.clone());
    opts.from = match (&args.from, args.empty) {
        (_, true) => From::Empty,
        (Some(f), false) => From::Rev(f.clone()),
        (None, false) => From::Parent,
    };
    opts.inline = args.inline;
    opts.min_fallback_size = args.min_fallback_size.saturating_mul(1_000_000);
    opts.max_bsdiff_size = args.max_bsdiff_size.saturating_mul(1 << 20);
    opts.part_size =
        usize::try_from(args.max_chunk_size.max(1).saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let host = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };
    opts.byte_order = match args.set_endianness.as_deref() {
        Some("l") => ByteOrder::Little,
        Some("B") => ByteOrder::Big,
        Some(other) => bail!("--set-endianness takes l or B, not {other:?}"),
        None if args.swap_endianness => match host {
            ByteOrder::Little => ByteOrder::Big,
            ByteOrder::Big => ByteOrder::Little,
        },
        None => host,
    };
    opts.endianness_marker = !args.no_endianness_marker;
    opts.threads = args.threads;
    opts.xz_preset = args.xz_preset;
    opts.max_dict = args.xz_dict.saturating_mul(1 << 20);
    if args.xz_nice_len.is_some() {
        opts.nice_len = args.xz_nice_len;
    }
    if let Some(mf) = &args.xz_match_finder {
        opts.hash_chain = mf == "hc4";
    }
    opts.memory_budget = args.memory_budget.max(16).saturating_mul(1 << 20);
    for f in &args.sign {
        opts.signers.extend(ed25519_signers(f)?);
    }
    let report = generate(&args.repo, &opts)
        .with_context(|| format!("generating a static delta in {}", args.repo.display()))?;
    let name = match report.name.from {
        Some(f) => format!("{}-{}", f.to_hex(), report.name.to.to_hex()),
        None => report.name.to.to_hex(),
    };
    let s = &report.stats;
    if args.json {
        let v = serde_json::json!({
            "delta": name,
            "dir": report.dir,
            "parts": report.parts,
            "part_bytes": report.part_bytes,
            "superblock_bytes": report.superblock_bytes,
            "inline": report.inline,
            "fallbacks": s.fallback,
            "fallback_bytes": report.fallback_bytes,
            "total_bytes": report.total_bytes(),
            "objects": {"metadata": s.metadata, "whole": s.whole, "bsdiff": s.bsdiff},
            "compressed_skipped": s.compressed_skipped,
            "compressed_bsdiff": s.compressed_bsdiff,
            "patch_rejected": s.patch_rejected,
            "max_payload": s.max_payload,
            "max_dict": s.max_dict,
            "stored_parts": s.stored_parts,
            "seconds": report.elapsed.as_secs_f64(),
        });
        println!("{v}");
    } else if !quiet {
        println!("Generated static delta {name}");
        println!(
            "  {} parts, {} bytes; superblock {} bytes{}; {} fallbacks, {} bytes; total {} bytes",
            report.parts,
            report.part_bytes,
            report.superblock_bytes,
            if report.inline { " (parts inline)" } else { "" },
            s.fallback,
            report.fallback_bytes,
            report.total_bytes()
        );
        println!(
            "  objects: {} metadata, {} whole files ({} already compressed, {} patches lost to the whole file), {} bsdiff; largest payload {} bytes, dictionary {} bytes; {} parts stored (xz saved under 3 %); {:.2} s",
            s.metadata,
            s.whole,
            s.compressed_skipped,
            s.patch_rejected,
            s.bsdiff,
            s.max_payload,
            s.max_dict,
            s.stored_parts,
            report.elapsed.as_secs_f64()
        );
    }
    Ok(())
}
