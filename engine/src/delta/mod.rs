//! Static deltas: find the cheapest delta to the target commit, fetch its parts ahead
//! while earlier ones are applied, and reconstruct objects straight into the store.
//!
//! Finding: the summary's `ostree.static-deltas`, else the delta index
//! (`delta-indexes/XX/REST.index`, when the summary says `ostree.summary.indexed-deltas`
//! or there is no summary), else probing `deltas/<from>-<to>/superblock` and
//! `deltas/<to>/superblock` as ostree does. A delta from a commit is usable when the store
//! holds that commit (any commit, not only the ref's current one; the ref's is preferred).
//!
//! Choosing: a from-delta when one is usable; otherwise a scratch delta, part by part:
//! a part is fetched when at least half of its objects are missing from the store (or it
//! is the only way to get them cheaply), and skipped when the store already holds all or
//! most of its objects, which the object route then fetches loose or reuses. Parts whose
//! objects are all held are never fetched (this is also how an interrupted delta pull
//! resumes).
//!
//! Trust: the superblock's sha256 must equal the digest the summary lists (when it lists
//! one); a signed superblock is verified with the remote's ed25519 keys when the remote
//! has any; the commit embedded in the superblock must hash to the target commit (which
//! was verified before any content was fetched); each part's sha256 is checked against
//! the superblock before anything decoded from it is applied (parts are decoded as they
//! arrive, and what was decoded from a damaged copy is thrown away); each object's
//! sha256 before it is kept.
//!
//! Memory: parts wait in anonymous files (their compressed bytes while they are decoded,
//! then their payload), not in memory; decompression is capped per part; one budget
//! (`budget`, [`MEMORY_BUDGET_MIB`]) bounds the memory that decoders (each its xz
//! dictionary, read from the part's header), applying parts ([`APPLY_MIB`] each) and
//! the objects being stored (each its read sources) hold. Up to [`parts_in_flight`]
//! parts decode at once when their dictionaries fit.
//!
//! Rooms: `plan` decides (pure, no I/O), `find` locates and opens the superblock, `run`
//! drives the parts, `stage` fetches one and decodes it as it arrives (through a
//! `spool` file), `apply` applies one (`decode`
//! its operations into `job`s, `store` them, reading `blob` ranges and `read_sources`);
//! `request` is what a delta pull is given; [`offline`] stages a delta directory for a
//! local pull.

mod apply;
mod blob;
mod budget;
mod decode;
mod find;
mod job;
pub mod offline;
mod plan;
mod read_sources;
mod request;
mod run;
mod spool;
mod stage;
mod store;

use std::collections::HashSet;

use cfsync_formats::checksum::Checksum;
use composefs::fsverity::FsVerityHashValue;

use crate::error::PullError;
use crate::store::commit_stream::CommitStreamBuilder;

pub use apply::MAX_TABLES_AND_OPS;
pub use budget::{APPLY_MIB, ENV_MEMORY_BUDGET, MEMORY_BUDGET_MIB, memory_budget_mib};
pub use job::MAX_SEGMENTS;
pub use request::{Applied, DeltaRequest};
pub use run::parts_in_flight;

/// Uses a static delta to fill `builder` with the target commit's objects, when a delta
/// exists and costs less than fetching objects. `Ok(None)`: no delta was used, and the
/// object route must fetch everything.
pub async fn try_delta<ObjectID: FsVerityHashValue>(
    req: DeltaRequest<'_, ObjectID>,
    builder: &mut CommitStreamBuilder<ObjectID>,
) -> Result<Option<Applied>, PullError> {
    let stored: HashSet<Checksum> = req.index.commits().iter().copied().collect();
    let listed = match find::listed_deltas(req.source, req.summary, &req.target).await? {
        find::Listed::NoneToTarget => return Ok(None),
        find::Listed::List(list) => Some(list),
        find::Listed::Probe => None,
    };
    let candidates = plan::candidates(
        listed.as_ref().map(|l| l.entries()),
        &stored,
        req.previous,
        req.target,
    );
    match find::first_superblock(req.source, candidates, &req.target, req.trust, req.held).await? {
        Some((name, bytes)) => run::apply_delta(&req, builder, name, &bytes).await,
        None => Ok(None),
    }
}
