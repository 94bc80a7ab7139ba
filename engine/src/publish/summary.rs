//! The summary of an OSTree repository: refs, `ostree.static-deltas`, its signature and
//! `delta-indexes/`, as `ostree summary -u` writes them.
