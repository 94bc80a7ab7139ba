//! The implementation of each subcommand.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::progress::Cancel;
use cfsync_engine::remotes::{Remote, RemoteStore};
use cfsync_engine::source::{Source, SourceOptions};
use cfsync_engine::store::{AnyStore, HashKind, InitOutcome, Store};
use cfsync_engine::trust::Trust;
use cfsync_engine::{PullOptions, PullStats};
use cfsync_formats::checksum::Checksum;

use crate::progress::Progress;
use crate::{Cli, Command, InspectCmd, RemoteCmd};

/// Runs `f` with the concrete store type.
macro_rules! with_store {
    ($store:expr, |$s:ident| $body:expr) => {
        match $store {
            AnyStore::Sha256($s) => $body,
            AnyStore::Sha512($s) => $body,
        }
    };
}

/// Dispatches a parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init => {
            let (_, outcome) = open_or_init(&cli)?;
            match outcome {
                InitOutcome::Existing => println!("repository exists"),
                InitOutcome::CreatedVerity => println!("created repository (fs-verity required)"),
                InitOutcome::CreatedInsecure => println!(
                    "created repository without fs-verity enforcement (the filesystem does not support it; digests are still checked)"
                ),
            }
            Ok(())
        }
        Command::Remote(r) => remote(&cli, r).await,
        Command::Pull(a) => {
            let (store, outcome) = open_or_init(&cli)?;
            if outcome == InitOutcome::CreatedInsecure && !cli.quiet && !a.json {
                eprintln!(
                    "cfsync: note: {} has no fs-verity support; the repository runs without kernel verity enforcement",
                    repo_path(&cli)?.display()
                );
            }
            let stats = with_store!(&store, |s| pull(&cli, s, a, None).await)?;
            if !stats.dry_run {
                // Where the ref came from, for `log --depth` (best effort: a cache).
                let state = state_dir(&store)?;
                let path = Path::new(&a.source);
                let origin = if remote_store(&cli, state.clone())?.get(&a.source)?.is_none()
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
        Command::Refs(j) => {
            let store = open(&cli)?;
            if let Some(name) = &j.delete {
                if !with_store!(&store, |s| s.delete_ref(name))? {
                    bail!("no ref {name:?} in the repository (see `cfsync refs`)");
                }
                log::forget_origin(&state_dir(&store)?, name);
                if !cli.quiet && !j.json {
                    eprintln!(
                        "cfsync: deleted ref {name}; `cfsync gc` removes what only it reached"
                    );
                }
                if j.json {
                    let v = serde_json::json!({ "deleted": name });
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                return Ok(());
            }
            let refs = with_store!(&store, |s| s.list_refs())?;
            if j.json {
                let v: Vec<_> = refs
                    .iter()
                    .map(|(n, c)| serde_json::json!({"ref": n, "commit": c.to_hex()}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (n, c) in refs {
                    println!("{n}\t{c}");
                }
            }
            Ok(())
        }
        Command::Log(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| log::log(
                &cli,
                s,
                &a.r#ref,
                a.depth,
                a.from.as_deref(),
                a.json
            )
            .await)
        }
        Command::Diff(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| diff::diff(s, &a.from, &a.to, a.stats, a.json))
        }
        Command::Checkout(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| checkout::checkout(
                s,
                &a.r#ref,
                &a.dir,
                a.user_mode,
                a.json
            ))
        }
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "cfsync", &mut std::io::stdout());
            Ok(())
        }
        Command::Man(a) => man(a.dir.as_deref()),
        Command::Show(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| show::show(
                &cli,
                s,
                &a.r#ref,
                a.remote.as_deref(),
                a.json
            ))
        }
        Command::Ls(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| tree::ls(
                s,
                &a.r#ref,
                &a.path,
                a.recursive,
                a.json
            ))
        }
        Command::Cat(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| tree::cat(s, &a.r#ref, &a.path))
        }
        Command::Mount(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| mount(s, &a.r#ref, &a.dir))
        }
        Command::Fsck(j) => {
            let store = open(&cli)?;
            with_store!(&store, |s| fsck(s, j.json).await)
        }
        Command::Gc(a) => {
            let store = open(&cli)?;
            with_store!(&store, |s| gc(s, a.dry_run, a.json))
        }
        Command::Inspect(i) => inspect(i).await,
        Command::Delta(crate::DeltaCmd::Apply {
            dir,
            r#ref,
            remote,
            allow_downgrade,
            json,
        }) => {
            let (store, _) = open_or_init(&cli)?;
            let stats = with_store!(&store, |s| delta_apply(
                &cli,
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
        Command::Demo(a) => crate::demo::run(a, cli.quiet).await,
        Command::Sign(s) => sign::run(s, cli.quiet),
    }
}

pub(crate) mod tree;

mod checkout;
mod diff;
mod log;
mod show;

/// `cfsync man`: `cfsync.1` on stdout, or every page into `dir`.
fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout().lock())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut pages = vec![("cfsync".to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        pages.push((format!("cfsync-{}", sub.get_name()), sub.clone()));
    }
    for (name, page) in pages {
        // clap names are `&'static str`; a handful of short names leak once per run.
        let page = page.name(&*Box::leak(name.clone().into_boxed_str()));
        let path = dir.join(format!("{name}.1"));
        let mut out =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        clap_mangen::Man::new(page).render(&mut out)?;
        written.push(path);
    }
    for p in written {
        println!("{}", p.display());
    }
    Ok(())
}

fn repo_path(cli: &Cli) -> Result<PathBuf> {
    cli.repo
        .clone()
        .ok_or_else(|| anyhow!("no repository given: pass --repo PATH or set CFSYNC_REPO"))
}

fn open_or_init(cli: &Cli) -> Result<(AnyStore, InitOutcome)> {
    let path = repo_path(cli)?;
    let hash: HashKind = cli.hash.parse().map_err(|e: String| anyhow!(e))?;
    AnyStore::open_or_init(&path, hash)
        .with_context(|| format!("opening repository {}", path.display()))
}

fn open(cli: &Cli) -> Result<AnyStore> {
    let path = repo_path(cli)?;
    if !path.join("meta.json").exists() && !path.exists() {
        bail!(
            "no repository at {}: create it with `cfsync init` (or `cfsync pull`, which creates it)",
            path.display()
        );
    }
    AnyStore::open(&path).with_context(|| format!("opening repository {}", path.display()))
}

/// `sopts` with what `remote`'s keys set for fetching from it: `contenturl` and
/// `tls-ca-path` (a PEM bundle of extra CA certificates for `https`, as in libostree).
pub(crate) fn remote_source_options(
    remote: &Remote,
    mut sopts: SourceOptions,
) -> Result<SourceOptions> {
    sopts.contenturl = remote.contenturl.clone();
    if let Some(path) = remote.extra_string("tls-ca-path")?
        && !path.is_empty()
    {
        sopts.tls_ca_path = Some(PathBuf::from(path));
    }
    Ok(sopts)
}

/// cfsync's remotes plus the read-only ones of `--remotes-dir` and `--ostree-repo`.
fn remote_store(cli: &Cli, state_dir: PathBuf) -> Result<RemoteStore> {
    let dirs = if cli.remotes_dirs.is_empty() {
        vec![PathBuf::from(cfsync_engine::remotes::SYSTEM_REMOTES_DIR)]
    } else {
        cli.remotes_dirs.clone()
    };
    let store = RemoteStore::new(state_dir, dirs);
    match &cli.ostree_repo {
        Some(repo) if !repo.join("config").is_file() => bail!(
            "--ostree-repo {}: not an OSTree repository (it has no config file)",
            repo.display()
        ),
        Some(repo) => Ok(store.with_ostree_repo(repo)),
        None => Ok(store),
    }
}

fn state_dir(store: &AnyStore) -> Result<PathBuf> {
    Ok(with_store!(store, |s| s.state_dir())?)
}

/// Resolves `name` (see [`resolve_commit`]) and loads that commit's object table.
pub(crate) fn load_named<O: FsVerityHashValue>(
    store: &Store<O>,
    name: &str,
) -> Result<(
    Checksum,
    cfsync_engine::store::commit_stream::CommitStream<O>,
)> {
    let commit = resolve_commit(store, name)?;
    let stream = store
        .load_commit(&commit)?
        .ok_or_else(|| anyhow!("commit {commit} is not stored; pull it first"))?;
    Ok((commit, stream))
}

/// The commit object `commit`, parsed, from its own commit stream.
pub(crate) fn stored_commit<'a, O: FsVerityHashValue>(
    stream: &'a cfsync_engine::store::commit_stream::CommitStream<O>,
    commit: &Checksum,
) -> Result<cfsync_formats::commit::CommitRef<'a>> {
    use cfsync_engine::store::ObjectLookup;
    let (bytes, _) = stream.lookup(commit).ok_or_else(|| {
        anyhow!("commit {commit}: commit object missing from its stream; run `cfsync fsck`")
    })?;
    cfsync_formats::commit::CommitRef::from_bytes(bytes).with_context(|| format!("commit {commit}"))
}

/// Resolves a ref name or a (full) commit checksum to a stored commit.
pub(crate) fn resolve_commit<O: FsVerityHashValue>(
    store: &Store<O>,
    name: &str,
) -> Result<Checksum> {
    if let Some(c) = store.resolve_ref(name)? {
        return Ok(c);
    }
    if let Ok(c) = name.parse::<Checksum>()
        && (store.commit_image(&c)?.is_some() || store.load_commit(&c)?.is_some())
    {
        return Ok(c);
    }
    let commits = store.list_commits()?;
    let matches: Vec<_> = commits
        .iter()
        .filter(|c| c.to_hex().starts_with(name))
        .collect();
    match matches.as_slice() {
        [one] if name.len() >= 6 => Ok(**one),
        _ => bail!("no ref or commit {name:?} in the repository (see `cfsync refs`)"),
    }
}

/// Pulls as `a` says. With `trust_of`, `a.source` is a path read with the keys and
/// policy of that remote (for `delta apply`).
async fn pull<O: FsVerityHashValue>(
    cli: &Cli,
    store: &Store<O>,
    a: &crate::PullArgs,
    trust_of: Option<&str>,
) -> Result<PullStats> {
    let remotes = remote_store(cli, store.state_dir()?)?;
    let cancel = Cancel::new();
    let mut sopts = SourceOptions::default();
    sopts.cancel = Some(cancel.clone());
    let remote = match trust_of {
        Some(name) => Some(
            remotes
                .get(name)?
                .ok_or_else(|| anyhow!("no remote {name:?} (see `cfsync remote list`)"))?,
        ),
        None => None,
    };
    let (source, trust, cache_key) = match remotes.get(&a.source)? {
        _ if remote.is_some() => {
            let remote = remote.as_ref().ok_or_else(|| anyhow!("no remote"))?;
            let source = Source::open(&a.source, sopts)?;
            let trust = cfsync_engine::trust::for_remote(remote, &remotes, store.path())
                .with_context(|| format!("loading the keys of remote {}", remote.name))?;
            (source, trust, format!("offline-{}", remote.name))
        }
        Some(remote) => {
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
    opts.concurrency = a.concurrency.max(1);
    opts.cache_key = cache_key;
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
    let args = crate::PullArgs {
        source: stage.path().display().to_string(),
        r#ref: r#ref.to_owned(),
        no_deltas: false,
        commit: Some(staged.to.to_hex()),
        dry_run: false,
        allow_downgrade,
        concurrency: 4,
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
    if stats.dry_run {
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
    writeln!(
        out,
        "{} bytes in {} requests; {} objects fetched, {} reused{}; {:.2}s",
        stats.bytes_fetched,
        stats.requests,
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

fn mount<O: FsVerityHashValue>(store: &Store<O>, name: &str, dir: &Path) -> Result<()> {
    let commit = resolve_commit(store, name)?;
    let image = store
        .commit_image(&commit)?
        .ok_or_else(|| anyhow!("commit {commit} has no image; pull it again"))?;
    store
        .repo()
        .mount_at(&image.to_hex(), dir, &Default::default())
        .with_context(|| format!("mounting image {} at {}", image.to_hex(), dir.display()))?;
    println!("mounted {name} ({commit}) at {}", dir.display());
    Ok(())
}

async fn fsck<O: FsVerityHashValue>(store: &Store<O>, json: bool) -> Result<()> {
    let repo = Arc::clone(store.repo());
    let result = repo.fsck().await.context("checking the repository")?;
    // Every ref must point at a stored commit whose stream loads and has an image.
    let mut bad_refs = Vec::new();
    for (name, commit) in store.list_refs()? {
        match store.load_commit(&commit) {
            Ok(Some(s)) if s.image().is_some() => {}
            Ok(Some(_)) => bad_refs.push(format!("{name}: commit {commit} has no image")),
            Ok(None) => bad_refs.push(format!("{name}: commit {commit} is not stored")),
            Err(e) => bad_refs.push(format!("{name}: {e}")),
        }
    }
    let ok = result.is_ok() && bad_refs.is_empty();
    if json {
        let v = serde_json::json!({
            "ok": ok,
            "objects_checked": result.objects_checked(),
            "objects_corrupted": result.objects_corrupted(),
            "streams_checked": result.streams_checked(),
            "streams_corrupted": result.streams_corrupted(),
            "images_checked": result.images_checked(),
            "images_corrupted": result.images_corrupted(),
            "broken_links": result.broken_links(),
            "missing_objects": result.missing_objects(),
            "errors": result.errors().iter().map(|e| e.to_string()).chain(bad_refs.iter().cloned()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{result}");
        for b in &bad_refs {
            println!("ref {b}");
        }
    }
    if !ok {
        bail!(
            "repository check failed: {} problem(s), listed above; pull the affected refs into a fresh repository (`--repo NEW`) to get sound copies",
            result.errors().len() + bad_refs.len()
        );
    }
    Ok(())
}

fn gc<O: FsVerityHashValue>(store: &Store<O>, dry_run: bool, json: bool) -> Result<()> {
    // Roots: composefs keeps everything `streams/refs/` reaches, and cfsync's refs are
    // stream refs (`streams/refs/ostree/...`) to commit streams, which name their image
    // and content objects. So a commit no ref names goes, with its image and files.
    let result = if dry_run {
        store.repo().gc_dry_run(&[])
    } else {
        // Roots first (see `unlink_unreferenced_commits`), so that a gc killed half-way
        // leaves no stream or image with missing objects.
        let (streams, images) = store
            .unlink_unreferenced_commits()
            .context("unlinking unreferenced commits")?;
        store.repo().gc(&[]).map(|mut r| {
            r.streams_pruned += streams;
            r.images_pruned += images;
            r
        })
    }
    .context("garbage collection")?;
    // Resume journals of abandoned pulls (their objects were unreferenced, so are gone).
    let journals = if dry_run {
        0
    } else {
        cfsync_engine::store::journal::prune(store, &[])
            .context("removing the resume journals of abandoned pulls")?
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "dry_run": dry_run,
                "objects_removed": result.objects_removed,
                "objects_bytes": result.objects_bytes,
                "images_pruned": result.images_pruned,
                "streams_pruned": result.streams_pruned,
                "journals_removed": journals,
            }))?
        );
    } else {
        println!(
            "{}{} objects ({} bytes), {} images, {} streams",
            if dry_run { "would remove " } else { "removed " },
            result.objects_removed,
            result.objects_bytes,
            result.images_pruned,
            result.streams_pruned
        );
    }
    Ok(())
}

async fn remote(cli: &Cli, cmd: &RemoteCmd) -> Result<()> {
    let (store, _) = open_or_init(cli)?;
    let remotes = remote_store(cli, state_dir(&store)?)?;
    match cmd {
        RemoteCmd::Add {
            name,
            url,
            branches,
            gpg_import,
            no_gpg_verify,
            set,
            if_not_exists,
        } => {
            let mut r = Remote::new(name, url)?;
            r.branches = branches.clone();
            if *no_gpg_verify {
                r.gpg_verify = false;
            }
            for kv in set {
                let (k, v) = cfsync_engine::remotes::parse_set_argument(kv)?;
                r.apply_set(k, v)?;
            }
            let added = remotes.add(&r, *if_not_exists)?;
            if added {
                for key in gpg_import {
                    let n = cfsync_engine::trust::import_gpg_keys(&remotes, name, key)
                        .with_context(|| format!("importing {}", key.display()))?;
                    if !cli.quiet {
                        eprintln!("cfsync: imported {n} GPG key(s) for remote {name}");
                    }
                }
            }
            Ok(())
        }
        RemoteCmd::Delete { name } => {
            if !remotes.delete(name)? {
                bail!("no remote {name:?}");
            }
            Ok(())
        }
        RemoteCmd::List { json, show_urls } => {
            let list = remotes.list()?;
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "name": r.name, "url": r.url, "contenturl": r.contenturl,
                            "gpg_verify": r.gpg_verify, "gpg_verify_summary": r.gpg_verify_summary,
                            "collection_id": r.collection_id, "branches": r.branches,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for r in list {
                    if *show_urls {
                        println!("{}\t{}", r.name, r.url.as_deref().unwrap_or(""));
                    } else {
                        println!("{}", r.name);
                    }
                }
            }
            Ok(())
        }
        RemoteCmd::GpgImport { name, keys } => {
            if remotes.get(name)?.is_none() {
                bail!("no remote {name:?} (see `cfsync remote list`)");
            }
            for key in keys {
                let n = cfsync_engine::trust::import_gpg_keys(&remotes, name, key)
                    .with_context(|| format!("importing {}", key.display()))?;
                println!(
                    "imported {n} GPG key(s) from {} for remote {name}",
                    key.display()
                );
            }
            Ok(())
        }
        RemoteCmd::ShowUrl { name } => {
            let r = remotes
                .get(name)?
                .ok_or_else(|| anyhow!("no remote {name:?}"))?;
            println!("{}", r.url.as_deref().unwrap_or(""));
            Ok(())
        }
        RemoteCmd::Refs { name, json } => {
            let r = remotes
                .get(name)?
                .ok_or_else(|| anyhow!("no remote {name:?}"))?;
            let url = r
                .url
                .clone()
                .ok_or_else(|| anyhow!("remote {name} has no url"))?;
            let sopts = remote_source_options(&r, SourceOptions::default())?;
            let source = Source::open(&url, sopts).with_context(|| format!("remote {name}"))?;
            let trust = with_store!(&store, |s| cfsync_engine::trust::for_remote(
                &r,
                &remotes,
                s.path()
            ))?;
            let refs = cfsync_engine::summary::remote_refs(&source, &trust).await?;
            if *json {
                let v: Vec<_> = refs
                    .iter()
                    .map(|(n, c)| serde_json::json!({"ref": n, "commit": c.to_hex()}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (n, c) in refs {
                    println!("{name}:{n}\t{c}");
                }
            }
            Ok(())
        }
    }
}

async fn inspect(cmd: &InspectCmd) -> Result<()> {
    match cmd {
        InspectCmd::Summary { target, json } => inspect::summary(target, *json).await,
        InspectCmd::Delta { target, json } => inspect::delta(target, *json).await,
        InspectCmd::Object { target, json } => inspect::object(target, *json).await,
    }
}

pub(crate) mod inspect;
pub(crate) mod sign;
