//! Opening the repository named on the command line (`--repo`, `--hash`), its state
//! directory, and `cfsync init`.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::store::{AnyStore, HashKind, InitOutcome};

use crate::Cli;

/// `cfsync init`: creates the repository (or finds it) and says which.
pub(super) fn init(cli: &Cli) -> Result<()> {
    let (_, outcome) = open_or_init(cli)?;
    match outcome {
        InitOutcome::Existing => println!("repository exists"),
        InitOutcome::CreatedVerity => println!("created repository (fs-verity required)"),
        InitOutcome::CreatedInsecure => println!(
            "created repository without fs-verity enforcement (the filesystem does not support it; digests are still checked)"
        ),
    }
    Ok(())
}

/// The repository path from `--repo` or `CFSYNC_REPO`.
pub(super) fn repo_path(cli: &Cli) -> Result<PathBuf> {
    cli.repo
        .clone()
        .ok_or_else(|| anyhow!("no repository given: pass --repo PATH or set CFSYNC_REPO"))
}

/// Opens the repository, creating it (with `--hash`) if it does not exist.
pub(super) fn open_or_init(cli: &Cli) -> Result<(AnyStore, InitOutcome)> {
    let path = repo_path(cli)?;
    let hash: HashKind = cli.hash.parse().map_err(|e: String| anyhow!(e))?;
    AnyStore::open_or_init(&path, hash)
        .with_context(|| format!("opening repository {}", path.display()))
}

/// Opens the existing repository; a missing one is an error that says how to create it.
pub(super) fn open(cli: &Cli) -> Result<AnyStore> {
    let path = repo_path(cli)?;
    if !path.join("meta.json").exists() && !path.exists() {
        bail!(
            "no repository at {}: create it with `cfsync init` (or `cfsync pull`, which creates it)",
            path.display()
        );
    }
    AnyStore::open(&path).with_context(|| format!("opening repository {}", path.display()))
}

/// The repository's state directory (remotes, caches, journals).
pub(super) fn state_dir(store: &AnyStore) -> Result<PathBuf> {
    Ok(with_store!(store, |s| s.state_dir())?)
}
