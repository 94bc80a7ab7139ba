//! The `cfsync` command line.
#![forbid(unsafe_code)]

fn main() {}
