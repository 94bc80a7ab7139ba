//! `cfsync summary update`: the summary of an OSTree repository, its signature and
//! `delta-indexes/`, as `ostree summary -u [--gpg-sign KEYID --gpg-homedir DIR] [--sign
//! KEY]` writes them (engine `publish::summary`; keys as `cfsync sign`, `cmd/sign.rs`).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use cfsync_engine::publish::summary;
use clap::Subcommand;

use crate::cmd::sign::Signers;

/// `cfsync summary` subcommands.
#[derive(Debug, Subcommand)]
pub enum SummaryCmd {
    /// Write the repository's summary (as `ostree summary -u`): refs, static deltas,
    /// delta indexes, and summary.sig when keys are given.
    Update {
        /// The OSTree repository.
        repo: PathBuf,
        /// Sign with this GPG key (ID or fingerprint, from --gpg-homedir; it must have no
        /// passphrase). Repeatable.
        #[arg(long = "gpg-sign", value_name = "KEYID")]
        gpg_sign: Vec<String>,
        /// The GnuPG home holding the --gpg-sign keys (default: gpg's own).
        #[arg(long = "gpg-homedir", value_name = "DIR", requires = "gpg_sign")]
        gpg_homedir: Option<PathBuf>,
        /// Sign with the ed25519 secret keys in FILE (ostree's format, one base64 key
        /// per line, as `cfsync sign keygen` writes). Repeatable.
        #[arg(long = "sign", value_name = "KEYFILE")]
        sign: Vec<PathBuf>,
    },
}

/// Runs `cfsync summary`.
pub(crate) fn run(cmd: &SummaryCmd, quiet: bool) -> Result<()> {
    match cmd {
        SummaryCmd::Update {
            repo,
            gpg_sign,
            gpg_homedir,
            sign,
        } => {
            // Keys first: nothing is written when one cannot be loaded.
            let signers = Signers::from_homedir_and_files(gpg_sign, gpg_homedir.as_deref(), sign)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let _lock = summary::lock_shared(repo)
                .with_context(|| format!("updating the summary of {}", repo.display()))?;
            let prepared = summary::prepare(repo, now)
                .with_context(|| format!("updating the summary of {}", repo.display()))?;
            let (sig, lines) = if signers.is_empty() {
                (None, Vec::new())
            } else {
                let (bytes, lines) = signers.signature_file(&prepared.summary)?;
                (Some(bytes), lines)
            };
            summary::write(repo, &prepared, sig.as_deref())
                .with_context(|| format!("updating the summary of {}", repo.display()))?;
            if !quiet {
                eprintln!(
                    "cfsync: summary of {}: {} refs, {} refs of other collections, {} static deltas, {} delta indexes ({} removed), {} bytes",
                    repo.display(),
                    prepared.refs,
                    prepared.collection_refs,
                    prepared.deltas,
                    prepared.indexes.len(),
                    prepared.stale_indexes.len(),
                    prepared.summary.len()
                );
                for l in lines {
                    eprintln!("cfsync: signed summary: {l}");
                }
            }
            Ok(())
        }
    }
}
