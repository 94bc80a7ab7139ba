//! Naming commits: a ref, a full checksum or a unique prefix of a stored commit, and
//! loading the named commit's stream and commit object.

use anyhow::{Context, Result, anyhow, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::Store;
use cfsync_engine::store::commit_stream::CommitStream;
use cfsync_formats::checksum::Checksum;

/// Resolves `name` (see [`resolve_commit`]) and loads that commit's object table.
pub(super) fn load_named<O: FsVerityHashValue>(
    store: &Store<O>,
    name: &str,
) -> Result<(Checksum, CommitStream<O>)> {
    let commit = resolve_commit(store, name)?;
    let stream = store
        .load_commit(&commit)?
        .ok_or_else(|| anyhow!("commit {commit} is not stored; pull it first"))?;
    Ok((commit, stream))
}

/// The commit object `commit`, parsed, from its own commit stream.
pub(super) fn stored_commit<'a, O: FsVerityHashValue>(
    stream: &'a CommitStream<O>,
    commit: &Checksum,
) -> Result<cfsync_formats::commit::CommitRef<'a>> {
    use cfsync_engine::store::ObjectLookup;
    let (bytes, _) = stream.lookup(commit).ok_or_else(|| {
        anyhow!("commit {commit}: commit object missing from its stream; run `cfsync fsck`")
    })?;
    cfsync_formats::commit::CommitRef::from_bytes(bytes).with_context(|| format!("commit {commit}"))
}

/// Resolves a ref name or a (full) commit checksum to a stored commit.
pub(super) fn resolve_commit<O: FsVerityHashValue>(
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
