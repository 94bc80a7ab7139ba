//! `cfsync demo`.

use anyhow::{Result, bail};

/// Runs the demo.
pub async fn run(args: &crate::DemoArgs, quiet: bool) -> Result<()> {
    let _ = (args, quiet);
    bail!("demo is not built yet")
}
