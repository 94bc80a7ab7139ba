//! The publisher's side: static deltas ([`delta`]) and summaries ([`summary`]) written
//! into an OSTree repository on disk, in the formats stock `ostree` reads.

pub mod delta;
pub mod summary;
