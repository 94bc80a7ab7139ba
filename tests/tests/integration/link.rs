//! The fetch scheduler across a delaying link: requests in flight and back-off.
//!
//! The small fixture's v2 is pulled object by object (`--no-deltas`, some 2,600
//! requests) from a [`LinkServer`] that answers every request 20 ms after it arrived
//! (a link's round trip): the scheduler must grow past libostree's 8 requests in flight,
//! and never past the bound `CFSYNC_HTTP_MAX_IN_FLIGHT` sets; against a server that
//! answers 503 whenever more than 12 requests are in flight, it must back off so that
//! few requests are refused, and the pull must complete. No timing is asserted.

use std::process::Output;
use std::time::Duration;

use cfsync_tests::linkproxy::LinkServer;
use cfsync_tests::{Repo, describe, fixture, scratch_dir};

/// The link's round trip, as the server's delay.
const ROUND_TRIP: Duration = Duration::from_millis(20);

/// Pulls the fixture's ref from `url` object by object into `repo` with `env` set.
fn pull(repo: &Repo, url: &str, env: &[(&str, &str)]) -> Output {
    let fx = fixture();
    let mut cmd = repo.command(["pull", "--json", "--no-deltas", url, fx.refname.as_str()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cfsync_tests::output(&mut cmd)
}

/// The commit a successful pull printed; panics with its output otherwise.
fn pulled(out: &Output) -> String {
    assert!(out.status.success(), "pull failed:\n{}", describe(out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON from pull ({e}):\n{}", describe(out)));
    v["commit"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn more_than_eight_in_flight_and_never_past_the_bound() {
    let fx = fixture();
    let tmp = scratch_dir();
    let server = LinkServer::start(&fx.repo, ROUND_TRIP);
    let repo = Repo::new(tmp.path().join("cfsync"));
    let out = pull(&repo, &server.url(), &[("CFSYNC_HTTP_MAX_IN_FLIGHT", "24")]);
    assert_eq!(pulled(&out), fx.v2);
    let max = server.max_in_flight();
    assert!(
        max > 8,
        "the scheduler never had more than {max} requests in flight over {} requests",
        server.requests()
    );
    assert!(max <= 24, "{max} requests in flight, over the bound of 24");
    repo.fsck();
}

#[test]
fn an_overloaded_server_makes_it_back_off_and_the_pull_completes() {
    let fx = fixture();
    let tmp = scratch_dir();
    let server = LinkServer::start(&fx.repo, ROUND_TRIP);
    server.overload_above(12);
    let repo = Repo::new(tmp.path().join("cfsync"));
    let env = [
        ("CFSYNC_HTTP_RETRY_DELAY_MS", "20"),
        ("CFSYNC_HTTP_RETRY_MAX_DELAY_MS", "200"),
        ("CFSYNC_HTTP_MAX_ATTEMPTS", "8"),
    ];
    let out = pull(&repo, &server.url(), &env);
    assert_eq!(pulled(&out), fx.v2);
    let (refused, requests) = (server.overloaded(), server.requests());
    // The window grew into the overload (the server was pushed past 12)...
    assert!(
        refused > 0,
        "no request was refused: the window never grew past 12 (max in flight {})",
        server.max_in_flight()
    );
    // ...and backed off: a window that stayed above 12 would have most of a round's
    // requests refused, round after round.
    assert!(
        refused * 10 < requests,
        "{refused} of {requests} requests refused: the scheduler did not back off"
    );
    repo.fsck();
}
