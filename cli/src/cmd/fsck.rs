//! `cfsync fsck`: checks the repository's objects, streams and images, and that every
//! ref names a stored commit with an image.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::Store;

/// Checks `store`; a problem found is an error after the report.
pub(super) async fn fsck<O: FsVerityHashValue>(store: &Store<O>, json: bool) -> Result<()> {
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
