//! `cfsync summary update`: summaries that stock `ostree` reads.
