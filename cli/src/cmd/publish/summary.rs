//! `cfsync summary update`: the summary of an OSTree repository.

use anyhow::{Result, bail};
use clap::Subcommand;

/// `cfsync summary` subcommands.
#[derive(Debug, Subcommand)]
pub enum SummaryCmd {
    /// Write the repository's summary (as `ostree summary -u`).
    Update {
        /// The OSTree repository.
        repo: std::path::PathBuf,
    },
}

/// Runs `cfsync summary`.
pub(crate) fn run(_cmd: &SummaryCmd, _quiet: bool) -> Result<()> {
    bail!("cfsync summary update: not built yet")
}
