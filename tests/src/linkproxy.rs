//! A TCP proxy that delays and rate-limits a link, for the scheduler's tests.
