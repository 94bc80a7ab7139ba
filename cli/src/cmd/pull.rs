//! `cfsync pull` and `cfsync delta apply`: pulling a commit from a remote, URL, path or
//! staged delta directory, and printing what it cost.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::progress::Cancel;
use cfsync_engine::source::{Source, SourceOptions};
use cfsync_engine::store::{AnyStore, InitOutcome, Store};
use cfsync_engine::trust::Trust;
use cfsync_engine::{PullOptions, PullStats};
use cfsync_formats::checksum::Checksum;

use super::log;
use super::remote::{remote_source_options, remote_store};
use super::repo::{open_or_init, repo_path, state_dir};
use crate::progress::Progress;
use crate::{Cli, DeltaCmd, PullArgs};

/// `cfsync pull`: pulls, records where the ref came from, prints the result.
pub(super) async fn run(cli: &Cli, a: &PullArgs) -> Result<()> {
    let (store, outcome) = open_or_init(cli)?;
    if outcome == InitOutcome::CreatedInsecure && !cli.quiet && !a.json {
        eprintln!(
            "cfsync: note: {} has no fs-verity support; the repository runs without kernel verity enforcement",
            repo_path(cli)?.display()
        );
    }
    let stats = with_store!(&store, |s| pull(cli, s, a, None).await)?;
    if !stats.dry_run {
        // Where the ref came from, for `log --depth` (best effort: a cache).
        let state = state_dir(&store)?;
        let path = Path::new(&a.source);
        let origin = if remote_store(cli, state.clone())?.get(&a.source)?.is_none()
            && !a.source.contains("://")
            && path.exists()
        {
            path.canonicalize()
                .map_or_else(|_| a.source.clone(), |p| p.display().to_string())
        } else {
            a.source.clone()
        };
        if let Err(e) = log::record_origin(&state, &a.r#ref, &origin) {
            tracing::warn!("recording where {} came from: {e:#}", a.r#ref);
        }
    }
    print_pull(&stats, a.json)
}

/// `cfsync delta apply`.
pub(super) async fn delta(cli: &Cli, cmd: &DeltaCmd) -> Result<()> {
    let DeltaCmd::Apply {
        dir,
        r#ref,
        remote,
        allow_downgrade,
        json,
    } = cmd
    else {
        anyhow::bail!("cfsync delta: only `apply` reads into the repository");
    };
    let (store, _) = open_or_init(cli)?;
    let stats = with_store!(&store, |s| delta_apply(
        cli,
        s,
        dir,
        r#ref,
        remote.as_deref(),
        *allow_downgrade,
        *json
    )
    .await)?;
    print_pull(&stats, *json)
}

/// Pulls as `a` says. With `trust_of`, `a.source` is a path read with the keys and
/// policy of that remote (for `delta apply`).
async fn pull<O: FsVerityHashValue>(
    cli: &Cli,
    store: &Store<O>,
    a: &PullArgs,
    trust_of: Option<&str>,
) -> Result<PullStats> {
    let remotes = remote_store(cli, store.state_dir()?)?;
    let cancel = Cancel::new();
    let mut sopts = SourceOptions::default();
    sopts.cancel = Some(cancel.clone());
    // What the fetch scheduler learned about each host, kept for the next pull.
    sopts.scheduler_dir = Some(store.state_dir()?);
    if let Some(n) = a.concurrency {
        let n = n.max(1);
        sopts.max_connections_per_host = sopts.max_connections_per_host.min(n);
        sopts.max_streams_per_host = sopts.max_streams_per_host.min(n);
        sopts.initial_in_flight = sopts.initial_in_flight.min(n);
    }
    let remote = match trust_of {
        Some(name) => Some(
            remotes
                .get(name)?
                .ok_or_else(|| anyhow!("no remote {name:?} (see `cfsync remote list`)"))?,
        ),
        None => None,
    };
    let mut subsummary = a.subsummary.clone();
    let (source, trust, cache_key) = match remotes.get(&a.source)? {
        _ if remote.is_some() => {
            let remote = remote.as_ref().ok_or_else(|| anyhow!("no remote"))?;
            let source = Source::open(&a.source, sopts)?;
            let trust = cfsync_engine::trust::for_remote(remote, &remotes, store.path())
                .with_context(|| format!("loading the keys of remote {}", remote.name))?;
            (source, trust, format!("offline-{}", remote.name))
        }
        Some(remote) => {
            if subsummary.is_none() {
                subsummary = remote
                    .extra_string("subsummary")
                    .with_context(|| format!("remote {}", remote.name))?;
            }
            let url = remote
                .url
                .clone()
                .ok_or_else(|| anyhow!("remote {} has no url", remote.name))?;
            let sopts = remote_source_options(&remote, sopts)?;
            let source =
                Source::open(&url, sopts).with_context(|| format!("remote {}", remote.name))?;
            let trust = cfsync_engine::trust::for_remote(&remote, &remotes, store.path())
                .with_context(|| format!("loading the keys of remote {}", remote.name))?;
            (source, trust, remote.name.clone())
        }
        None => {
            if !(a.source.contains("://") || Path::new(&a.source).exists()) {
                bail!(
                    "{:?} is not a remote, a URL or an existing path (add one with `cfsync remote add NAME URL`)",
                    a.source
                );
            }
            let source = Source::open(&a.source, sopts)?;
            (source, Trust::unverified(), format!("url-{}", a.source))
        }
    };
    let mut opts = PullOptions::new(&a.r#ref);
    opts.commit = a
        .commit
        .as_deref()
        .map(|c| {
            c.parse::<Checksum>()
                .map_err(|e| anyhow!("--commit {c}: {e}"))
        })
        .transpose()?;
    opts.no_deltas = a.no_deltas;
    opts.dry_run = a.dry_run;
    opts.allow_downgrade = a.allow_downgrade;
    if let Some(n) = a.concurrency {
        opts.concurrency = n.max(1);
    }
    opts.cache_key = cache_key;
    opts.subsummary = subsummary;
    let progress = Arc::new(Progress::new(cli.quiet || a.json));
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    let result = cfsync_engine::pull(
        store,
        Arc::new(source),
        &trust,
        &opts,
        Some(progress.clone() as Arc<dyn cfsync_engine::progress::Reporter>),
        &cancel,
    )
    .await;
    progress.finish();
    result.with_context(|| format!("pulling {} from {}", a.r#ref, a.source))
}

/// `delta apply DIR REF`: stages the delta directory as a minimal repository and pulls
/// its commit from it, with every check a pull makes.
async fn delta_apply<O: FsVerityHashValue>(
    cli: &Cli,
    store: &Store<O>,
    dir: &Path,
    r#ref: &str,
    remote: Option<&str>,
    allow_downgrade: bool,
    json: bool,
) -> Result<PullStats> {
    let stage = tempfile::Builder::new()
        .prefix("delta-apply.")
        .tempdir_in(store.state_dir()?)
        .context("creating a staging directory in the repository")?;
    let staged = cfsync_engine::delta::offline::stage_delta_dir(dir, stage.path())?;
    if let Some(from) = staged.name.from
        && store.commit_image(&from)?.is_none()
    {
        bail!(
            "{} is a delta from commit {from}, which this repository does not hold; pull that commit first (or use a delta from scratch)",
            dir.display()
        );
    }
    let args = PullArgs {
        source: stage.path().display().to_string(),
        r#ref: r#ref.to_owned(),
        no_deltas: false,
        commit: Some(staged.to.to_hex()),
        dry_run: false,
        allow_downgrade,
        concurrency: Some(4),
        subsummary: None,
        json,
    };
    if remote.is_none() && !cli.quiet && !json {
        eprintln!("cfsync: note: no --remote given, so the commit's signature is not checked");
    }
    let stats = pull(cli, store, &args, remote).await?;
    if stats.delta.is_none() && !stats.up_to_date {
        bail!("the delta in {} was not applied", dir.display());
    }
    Ok(stats)
}

fn print_pull(stats: &PullStats, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(stats)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let route = stats.summary_route.map_or(String::new(), |r| {
        format!(
            "ref resolved through {r} ({} bytes in {} requests)",
            stats.summary_bytes, stats.summary_requests
        )
    });
    if stats.dry_run {
        if !route.is_empty() {
            writeln!(out, "{route}")?;
        }
        writeln!(
            out,
            "would pull commit {}: {} via {}",
            stats.commit,
            stats
                .estimated_bytes
                .map_or_else(|| "unknown size".to_owned(), |b| format!("{} bytes", b)),
            stats
                .delta
                .as_deref()
                .map_or("objects".to_owned(), |d| format!(
                    "delta {d} ({} parts)",
                    stats.delta_parts
                ))
        )?;
        return Ok(());
    }
    if stats.up_to_date {
        writeln!(
            out,
            "commit {} (image {}) already stored",
            stats.commit, stats.image
        )?;
    } else {
        writeln!(out, "pulled commit {}", stats.commit)?;
        writeln!(out, "image {}", stats.image)?;
    }
    for s in &stats.signatures {
        writeln!(out, "verified {s}")?;
    }
    if !route.is_empty() {
        writeln!(out, "{route}")?;
    }
    writeln!(
        out,
        "{} bytes in {} requests{}; {} objects fetched, {} reused{}; {:.2}s",
        stats.bytes_fetched,
        stats.requests,
        if stats.refetched > 0 {
            format!(" ({} refetched after arriving damaged)", stats.refetched)
        } else {
            String::new()
        },
        stats.objects_fetched,
        stats.objects_reused,
        stats.delta.as_deref().map_or(String::new(), |d| format!(
            "; delta {d} ({} parts)",
            stats.delta_parts
        )),
        stats.seconds
    )?;
    Ok(())
}
