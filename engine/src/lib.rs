//! The cfsync sync engine: plans a pull, fetches over HTTP or from a local repository,
//! verifies every object and stores it in a composefs repository.
#![deny(clippy::print_stdout, clippy::print_stderr)]
