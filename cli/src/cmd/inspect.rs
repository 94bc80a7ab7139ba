//! `cfsync inspect summary|delta|object`: look inside OSTree files without a repository.

use anyhow::{Result, bail};

/// `inspect summary`.
pub async fn summary(target: &str, json: bool) -> Result<()> {
    let _ = (target, json);
    bail!("inspect summary is not built yet")
}

/// `inspect delta`.
pub async fn delta(target: &str, json: bool) -> Result<()> {
    let _ = (target, json);
    bail!("inspect delta is not built yet")
}

/// `inspect object`.
pub async fn object(target: &str, json: bool) -> Result<()> {
    let _ = (target, json);
    bail!("inspect object is not built yet")
}
