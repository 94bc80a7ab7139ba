//! `cfsync delta generate`: deltas that stock `ostree` applies.
