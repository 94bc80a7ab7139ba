//! `cfsync log REF`: a ref's history, newest first.
//!
//! The history is what the repository stores (commits pulled in full), plus, with
//! `--depth N`, parent commit objects fetched from a source (`--from`, a remote name,
//! URL or repository path; by default the source the ref was last pulled from, which
//! `pull` records) when they are not stored. A fetched commit object is checked
//! against its checksum, which its child names, so the chain from the (verified) ref
//! down is authentic; fetched commits are not kept. Nothing else of a fetched commit
//! (its tree, its files) is downloaded.

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::source::{PathKind, Source, SourceOptions};
use cfsync_engine::store::{ObjectLookup, Store};
use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};

use super::resolve::resolve_commit;
use crate::Cli;

/// Largest commit object fetched (the engine's limit for metadata objects).
const MAX_COMMIT_SIZE: u64 = 10 * 1024 * 1024;

/// Where a commit of the history came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Stored in full (tree, files and image) in the repository.
    Stored,
    /// Only its commit object, fetched for this listing.
    Fetched,
}

/// Directory (in cfsync's state directory) of the files naming where each ref was
/// last pulled from: `origins/<ref, escaped as in composefs stream refs>`.
const ORIGINS: &str = "origins";

fn origin_path(state_dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let escaped = cfsync_engine::store::ostree_ref_name(name);
    let file = escaped.strip_prefix("ostree/").unwrap_or(&escaped);
    state_dir.join(ORIGINS).join(file)
}

/// Records that ref `name` was pulled from `source` (a remote name, URL or path), the
/// default `--from` of `log --depth`.
pub(crate) fn record_origin(state_dir: &std::path::Path, name: &str, source: &str) -> Result<()> {
    let path = origin_path(state_dir, name);
    if std::fs::read(&path).is_ok_and(|b| b == source.as_bytes()) {
        // Unchanged (an update check that found nothing new): no write, no fsync.
        return Ok(());
    }
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("no parent of {}", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    cfsync_engine::atomic::write(&path, source.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Forgets where ref `name` came from (when the ref is deleted).
pub(crate) fn forget_origin(state_dir: &std::path::Path, name: &str) {
    let _ = std::fs::remove_file(origin_path(state_dir, name));
}

fn recorded_origin(state_dir: &std::path::Path, name: &str) -> Option<String> {
    std::fs::read_to_string(origin_path(state_dir, name))
        .ok()
        .filter(|s| !s.is_empty())
}

/// `cfsync log REF [--depth N] [--from SOURCE]`.
pub(crate) async fn log<O: FsVerityHashValue>(
    cli: &Cli,
    store: &Store<O>,
    name: &str,
    depth: Option<usize>,
    from: Option<&str>,
    json: bool,
) -> Result<()> {
    let head = resolve_commit(store, name)?;
    // Without --from, the source the ref was last pulled from.
    let from: Option<String> = match from {
        Some(f) => Some(f.to_owned()),
        None if store.resolve_ref(name)?.is_some() => recorded_origin(&store.state_dir()?, name),
        None => None,
    };
    let from = from.as_deref();
    let mut used_source = None;
    let mut source: Option<Source> = None;
    let mut entries = Vec::new();
    let mut next = Some(head);
    // The head plus `depth` parents; without --depth, every stored ancestor.
    let limit = depth.map_or(usize::MAX, |d| d.saturating_add(1));
    let mut unfetched: Option<Checksum> = None;
    while let Some(id) = next {
        if entries.len() >= limit {
            unfetched = Some(id);
            break;
        }
        let (bytes, origin) = match stored_commit(store, &id)? {
            Some(b) => (b, Origin::Stored),
            None if depth.is_some() => {
                if source.is_none() {
                    source = Some(open_source(cli, store, from, &id)?);
                    used_source = from;
                }
                let src = source.as_ref().ok_or_else(|| anyhow!("no source"))?;
                (fetch_commit(src, &id).await?, Origin::Fetched)
            }
            None => {
                unfetched = Some(id);
                break;
            }
        };
        let c = CommitRef::from_bytes(&bytes).with_context(|| format!("commit {id}"))?;
        next = c.parent();
        entries.push(entry_json(&id, &c, origin));
    }
    if json {
        let v = serde_json::json!({
            "ref": store.resolve_ref(name)?.map(|_| name),
            "commit": head.to_hex(),
            "commits": entries,
            "next_parent": unfetched.map(|c| c.to_hex()),
            "source": used_source,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for e in &entries {
        print_entry(e);
    }
    if let Some(p) = unfetched {
        if depth.is_some() {
            println!("<< History continues with {p} (raise --depth to see it) >>");
        } else {
            println!(
                "<< History beyond this commit is not stored; parent {p} (see it with --depth N --from REMOTE) >>"
            );
        }
    }
    Ok(())
}

/// The commit object of `id` when the repository stores the commit.
fn stored_commit<O: FsVerityHashValue>(store: &Store<O>, id: &Checksum) -> Result<Option<Vec<u8>>> {
    let Some(stream) = store.load_commit(id)? else {
        return Ok(None);
    };
    let (bytes, _) = stream.lookup(id).ok_or_else(|| {
        anyhow!("commit {id}: commit object missing from its stream; run `cfsync fsck`")
    })?;
    Ok(Some(bytes.to_vec()))
}

/// Opens `from` (a remote name, URL or path) to fetch commit objects.
fn open_source<O: FsVerityHashValue>(
    cli: &Cli,
    store: &Store<O>,
    from: Option<&str>,
    missing: &Checksum,
) -> Result<Source> {
    let Some(from) = from else {
        bail!(
            "parent commit {missing} is not stored, and where the ref came from is not known; pass --from REMOTE (or a URL or repository path) to fetch it"
        );
    };
    let remotes = super::remote::remote_store(cli, store.state_dir()?)?;
    let opts = SourceOptions::default();
    if let Some(r) = remotes.get(from)? {
        let url = r
            .url
            .clone()
            .ok_or_else(|| anyhow!("remote {} has no url", r.name))?;
        let opts = super::remote::remote_source_options(&r, opts)?;
        return Source::open(&url, opts).with_context(|| format!("remote {}", r.name));
    }
    if !(from.contains("://") || std::path::Path::new(from).exists()) {
        bail!(
            "{from:?} (--from, or where the ref was pulled from) is not a remote, a URL or an existing path: pass the --remotes-dir or --ostree-repo the pull used, or --from (see `cfsync remote list`)"
        );
    }
    Source::open(from, opts).with_context(|| format!("opening {from}"))
}

/// Fetches commit object `id` and checks that it hashes to `id`.
async fn fetch_commit(source: &Source, id: &Checksum) -> Result<Vec<u8>> {
    let path = loose_path(id, ObjectType::Commit, RepoMode::Archive);
    let data = source
        .get_bytes(&path, PathKind::Content, MAX_COMMIT_SIZE)
        .await
        .with_context(|| format!("fetching commit {id}"))?
        .ok_or_else(|| {
            anyhow!("commit {id} is not on the source ({path}); its history ends there")
        })?;
    Checksum::of(&data)
        .verify(id)
        .map_err(|e| anyhow!("fetched commit {id} is corrupt or forged: {e}"))?;
    Ok(data)
}

fn entry_json(id: &Checksum, c: &CommitRef<'_>, origin: Origin) -> serde_json::Value {
    let ts = c.timestamp();
    serde_json::json!({
        "commit": id.to_hex(),
        "parent": c.parent().map(|p| p.to_hex()),
        "subject": c.subject(),
        "body": c.body(),
        "timestamp": ts,
        "date": cfsync_verify::format_unix_utc(i64::try_from(ts).unwrap_or(i64::MAX)),
        "version": c.version().ok().flatten(),
        "stored": origin == Origin::Stored,
    })
}

fn print_entry(e: &serde_json::Value) {
    println!("commit {}", e["commit"].as_str().unwrap_or(""));
    if let Some(p) = e["parent"].as_str() {
        println!("Parent:  {p}");
    }
    println!("Date:  {}", e["date"].as_str().unwrap_or(""));
    if let Some(v) = e["version"].as_str() {
        println!("Version: {v}");
    }
    if e["stored"] != serde_json::Value::Bool(true) {
        println!("(commit object only: fetched, content not stored)");
    }
    println!();
    println!("    {}", e["subject"].as_str().unwrap_or(""));
    let body = e["body"].as_str().unwrap_or("");
    if !body.is_empty() {
        println!();
        for l in body.lines() {
            println!("    {l}");
        }
    }
    println!();
}
