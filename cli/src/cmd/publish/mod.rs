//! The publisher's commands: `cfsync delta generate` writes static deltas and `cfsync
//! summary update` writes the summary, its signature and `delta-indexes/`, into an
//! OSTree repository, in the formats stock `ostree` reads.

pub(crate) mod delta;
pub(crate) mod summary;
