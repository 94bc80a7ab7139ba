//! Shared helpers for cfsync's integration tests: real `ostree` repositories and a
//! real HTTP server on loopback.
