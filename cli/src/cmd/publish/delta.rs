//! `cfsync delta generate`: static deltas for an OSTree repository.

use anyhow::{Result, bail};
use clap::Args;

/// `delta generate` arguments.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The OSTree repository to write the delta into.
    pub repo: std::path::PathBuf,
}

/// Runs `cfsync delta generate`.
pub(crate) fn run(_args: &GenerateArgs, _quiet: bool) -> Result<()> {
    bail!("cfsync delta generate: not built yet")
}
