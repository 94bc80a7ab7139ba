//! Phase 2: the commit checked before any content is fetched. A commit not yet stored is
//! fetched with its detached metadata; its signatures, its ref binding and the
//! downgrade rule are checked (detached metadata whose signature does not verify is
//! fetched again, fresh, in case it was damaged in transit). A commit already stored with
//! its image is checked the same way (from the stream it is stored in) before the ref
//! may move to it, as libostree does for a commit it already has.
//!
//! The requests that do not wait on each other go out together: the commit, its
//! detached metadata, and the delta route's first fetch (the superblock of the delta it
//! will try first, or the delta index) are all requested at once, one round trip where
//! the connections allow it (over HTTP/1.1 a request that finds no idle connection pays
//! a TCP handshake first). When the summary lists that superblock with its digest, it
//! is the only request: it embeds the commit and its detached metadata, as ostree
//! writes it, and the commit is taken from it (it must hash to the target; its
//! signatures are checked as ever, with the commit's own detached metadata fetched if
//! the superblock's do not verify). What comes back early is held by the pull
//! ([`crate::held`]) and read only after the commit is accepted, through the same checks
//! as before; a refused commit drops it unread.

use std::sync::Arc;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::CommitRef;
use cfsync_formats::object::{ObjectType, RepoMode, loose_path};
use composefs::fsverity::FsVerityHashValue;

use super::options::{Context, PullStats};
use super::resolve::Target;
use crate::delta::DeltaRequest;
use crate::error::PullError;
use crate::fetch::fetch_verified;
use crate::held::Held;
use crate::limits::MAX_METADATA_OBJECT;
use crate::progress::Event;
use crate::refetch::{Failed, Named, fetch_checked};
use crate::source::{Fresh, PathKind, Source};
use crate::store::{ObjectLookup, Store};
use crate::summary::SummaryDeltas;
use crate::trust::{Trust, TrustError};

/// The target commit, checked.
pub(super) enum Verified<ObjectID> {
    /// Already stored with its image; when the ref is to move to it, the checks passed.
    Stored {
        /// Its EROFS image.
        image: ObjectID,
        /// Whether the ref points elsewhere now.
        move_ref: bool,
    },
    /// Fetched and checked; its content is still to be brought in.
    Fetched(Commit),
}

/// A fetched commit whose signatures, binding and timestamp were checked.
pub(super) struct Commit {
    /// The commit object.
    pub(super) bytes: Vec<u8>,
    /// Its detached metadata (signatures), kept beside the store once it is stored.
    pub(super) meta: Option<Vec<u8>>,
    /// The root dirtree.
    pub(super) root_tree: Checksum,
    /// The root dirmeta.
    pub(super) root_meta: Checksum,
}

/// Checks the target commit: the stored one if the store has it with its image, else
/// the source's; records the signatures verified in `stats`.
pub(super) async fn verify<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &Target,
    stats: &mut PullStats,
) -> Result<Verified<ObjectID>, PullError> {
    if let Some(image) = cx.store.commit_image(&target.commit)? {
        let move_ref = target.previous != Some(target.commit);
        if move_ref {
            verify_stored(cx, target, &image, stats).await?;
        }
        return Ok(Verified::Stored { image, move_ref });
    }
    let (store, source, trust, opts) = (cx.store, &cx.source, cx.trust, cx.opts);
    let id = target.commit;
    cx.reporter.report(Event::Phase("commit"));
    // One round trip for what follows from the commit id alone. When the summary lists
    // the delta the route will try first, its superblock alone: it embeds the commit and
    // its detached metadata (one request, so no connection is opened for a second and
    // third). Otherwise the commit, its detached metadata and the delta route's first
    // fetch go out together.
    let ahead = if opts.no_deltas {
        None
    } else {
        let summary = target.deltas.as_ref();
        DeltaRequest::look_ahead(store, source, &cx.held, summary, target.previous, id)?
    };
    let embedded = match &ahead {
        Some(ahead) => DeltaRequest::<ObjectID>::commit_from_held(&cx.held, ahead, &id).await,
        None => None,
    };
    let (bytes, meta, verdict) = match embedded {
        Some((bytes, meta)) => match trust.verify_commit(&id, &bytes, meta.as_deref()) {
            Ok(sigs) => (bytes, meta, Ok(sigs)),
            // No detached metadata in the superblock, or signatures made since it was
            // generated: the commit's own.
            Err(_) => {
                let (meta, verdict) =
                    fetch_commitmeta(source, trust, &cx.held, &id, &bytes).await?;
                (bytes, meta, verdict)
            }
        },
        None => {
            hold_commitmeta(source, &cx.held, &id);
            let bytes = fetch_verified(source, &id, ObjectType::Commit).await?;
            let (meta, verdict) = fetch_commitmeta(source, trust, &cx.held, &id, &bytes).await?;
            (bytes, meta, verdict)
        }
    };
    let commit = CommitRef::from_bytes(&bytes).map_err(|e| PullError::object(&id, "commit", e))?;
    stats.signatures.extend(verdict?);
    let prev_ts = previous_timestamp(store, target.previous)?;
    trust.check_commit_rules(&id, &bytes, &opts.ref_name, prev_ts, opts.allow_downgrade)?;
    let (root_tree, root_meta) = (commit.root_contents(), commit.root_metadata());
    Ok(Verified::Fetched(Commit {
        bytes,
        meta,
        root_tree,
        root_meta,
    }))
}

/// The checks before the ref moves to a commit stored earlier (perhaps by an unverified
/// pull): its signature, binding, downgrade rule and composefs digest.
async fn verify_stored<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &Target,
    image: &ObjectID,
    stats: &mut PullStats,
) -> Result<(), PullError> {
    let (store, source, trust, opts) = (cx.store, &cx.source, cx.trust, cx.opts);
    let id = target.commit;
    let commit = store
        .load_commit(&id)?
        .ok_or_else(|| PullError::Internal("commit stream vanished".into()))?;
    let bytes = ObjectLookup::lookup(&commit, &id)
        .map(|(d, _)| d.to_vec())
        .ok_or_else(|| PullError::Internal("commit object missing from its stream".into()))?;
    // The signature is checked now, as libostree does for a commit it already has, before
    // the ref moves. The saved .commitmeta first; if it does not verify (none saved, or
    // signed since), the source's.
    if trust.policy.requires_commit_signature() {
        let saved = crate::summary::load_commitmeta(store, &id)?;
        let sigs = match trust.verify_commit(&id, &bytes, saved.as_deref()) {
            Ok(sigs) => sigs,
            Err(first) => {
                let (fetched, verdict) =
                    fetch_commitmeta(source, trust, &cx.held, &id, &bytes).await?;
                if fetched.is_none() && saved.is_some() {
                    return Err(first.into());
                }
                let sigs = verdict?;
                if let Some(meta) = &fetched {
                    crate::summary::save_commitmeta(store, &id, meta)?;
                }
                sigs
            }
        };
        stats.signatures.extend(sigs);
    }
    let prev_ts = previous_timestamp(store, target.previous)?;
    trust.check_commit_rules(&id, &bytes, &opts.ref_name, prev_ts, opts.allow_downgrade)?;
    // A commit whose image was refused earlier is stored but never gets a ref.
    trust.check_composefs_digest(&id, &bytes, image)?;
    Ok(())
}

/// After the commit is accepted: the deltas the delta index fetched ahead lists, handed
/// to the route as the summary's list (so it does not fetch the index again).
pub(super) async fn take_listing<ObjectID: FsVerityHashValue>(
    cx: &Context<'_, ObjectID>,
    target: &mut Target,
) {
    if let Some(list) = DeltaRequest::<ObjectID>::held_listing(&cx.held, &target.commit).await {
        target.deltas = Some(SummaryDeltas {
            listed: Ok(Some(list)),
            indexed: true,
        });
    }
}

/// Starts fetching commit `id`'s detached metadata now, into `held` until
/// [`fetch_commitmeta`] checks it against the commit.
fn hold_commitmeta(source: &Arc<Source>, held: &Held, id: &Checksum) {
    let path = commitmeta_path(id);
    let (source, fetch_path) = (Arc::clone(source), path.clone());
    held.hold(path, async move {
        source
            .get_bytes(&fetch_path, PathKind::Metadata, MAX_METADATA_OBJECT)
            .await
    });
}

/// Commit `id`'s detached metadata from the source (None when it has none) and the
/// verdict of its signatures over the commit's `bytes`; the first attempt is the fetch
/// [`hold_commitmeta`] started, when there is one. Metadata that arrives but does
/// not verify may have been damaged in transit: it is fetched again, fresh, within the
/// source's budget ([`crate::refetch`]); when it never verifies, the verdict is the
/// last refusal, unchanged.
async fn fetch_commitmeta(
    source: &Source,
    trust: &Trust,
    held: &Held,
    id: &Checksum,
    bytes: &[u8],
) -> Result<(Option<Vec<u8>>, Result<Vec<String>, TrustError>), PullError> {
    let path = commitmeta_path(id);
    let named = Named::path(&path, PathKind::Metadata);
    let mut early = held.take(&path).await;
    fetch_checked(source, named, |fresh| {
        let early = early.take().filter(|_| fresh == Fresh::No);
        let source = source.fresh(fresh);
        let path = path.clone();
        async move {
            let meta = match early {
                Some(got) => got?,
                None => {
                    source
                        .get_bytes(&path, PathKind::Metadata, MAX_METADATA_OBJECT)
                        .await?
                }
            };
            match trust.verify_commit(id, bytes, meta.as_deref()) {
                Err(e) if meta.is_some() => Err(Failed::Unverified(e.into())),
                verdict => Ok((meta, verdict)),
            }
        }
    })
    .await
}

/// Where the source keeps commit `id`'s detached metadata.
fn commitmeta_path(id: &Checksum) -> String {
    loose_path(id, ObjectType::CommitMeta, RepoMode::Archive)
}

/// The previous commit and its timestamp, for the downgrade rule (None when the store
/// has no previous commit or cannot read it).
fn previous_timestamp<ObjectID: FsVerityHashValue>(
    store: &Store<ObjectID>,
    previous: Option<Checksum>,
) -> Result<Option<(Checksum, u64)>, PullError> {
    let Some(prev) = previous else {
        return Ok(None);
    };
    let Some(stream) = store.load_commit(&prev)? else {
        return Ok(None);
    };
    let Some((bytes, _)) = ObjectLookup::lookup(&stream, &prev) else {
        return Ok(None);
    };
    Ok(CommitRef::from_bytes(bytes)
        .ok()
        .map(|c| (prev, c.timestamp())))
}
