//! `cfsync gc`: removes what no ref reaches (commits, their images and objects) and
//! the resume journals of abandoned pulls.

use anyhow::{Context, Result};
use cfsync_engine::composefs::fsverity::FsVerityHashValue;
use cfsync_engine::store::Store;

/// Collects garbage in `store` (or, with `dry_run`, reports what would go).
pub(super) fn gc<O: FsVerityHashValue>(store: &Store<O>, dry_run: bool, json: bool) -> Result<()> {
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
