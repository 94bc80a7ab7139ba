//! Redirects: the policy both clients follow (at most `max_redirects` hops over the
//! whole chain; keep the scheme or go from `http` to `https`, never back), and the
//! hand-over from the plain client to the TLS one.
//!
//! The plain client stops at a redirect from `http` to `https` and records its
//! `Location`; the request goes on from there with the TLS client, the hop count carried
//! over, and without the headers reqwest drops on a cross-origin hop
//! ([`is_sensitive`]). The per-request state lives in a task-local [`Chain`] that the
//! policy reads while [`execute`] polls the response future.

use std::sync::{Arc, Mutex, PoisonError};

use reqwest::Url;
use reqwest::header::{self, HeaderName};

/// Marker error our redirect policy returns, found again in the `reqwest` error chain.
#[derive(Debug)]
struct RedirectRefused(&'static str);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RedirectRefused {}

tokio::task_local! {
    /// The redirect chain of the request being sent, seen by the redirect policy (which
    /// runs while [`execute`] polls the response future).
    static CHAIN: Arc<Chain>;
}

/// Per-request redirect state shared between [`execute`] and the redirect policy
/// through [`CHAIN`].
#[derive(Debug)]
struct Chain {
    /// URLs requested earlier in this chain by the other client (0 for a new request).
    before: usize,
    /// Set by the plain client's policy when it stops at a redirect to `https`: the
    /// `Location`, and how many URLs the chain has requested so far.
    handover: Mutex<Option<(Url, usize)>>,
}

/// Headers reqwest drops when a redirect changes host, port or scheme.
pub(super) fn is_sensitive(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::COOKIE
        || name.as_str() == "cookie2"
        || name == header::PROXY_AUTHORIZATION
        || name == header::WWW_AUTHENTICATE
}

/// Executes `request` with `client`, `before` URLs having been requested earlier in the
/// chain by the other client. Returns the response and, when the plain client stopped
/// at a redirect to `https`, the `Location` to go on from and the chain's URL count so
/// far.
pub(super) async fn execute(
    client: &reqwest::Client,
    request: reqwest::Request,
    before: usize,
) -> reqwest::Result<(reqwest::Response, Option<(Url, usize)>)> {
    let chain = Arc::new(Chain {
        before,
        handover: Mutex::new(None),
    });
    let response = CHAIN
        .scope(Arc::clone(&chain), client.execute(request))
        .await?;
    let handover = chain
        .handover
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    Ok((response, handover))
}

/// Why a redirect error happened: the rule our policy refused it for, found in the
/// error chain, else reqwest's own limit.
pub(super) fn refused_reason(e: &reqwest::Error) -> &'static str {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<RedirectRefused>() {
            return refused.0;
        }
        source = s.source();
    }
    "too many redirects"
}

/// The redirect policy: at most `max_redirects` hops over the whole chain, keeping the
/// scheme or going from `http` to `https`, never from `https` to `http`. Without `tls`
/// (the plain client) a hop to `https` stops the chain and is recorded in [`CHAIN`] for
/// [`execute`] to hand back.
pub(super) fn policy(max_redirects: usize, tls: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let before = CHAIN.try_with(|chain| chain.before).unwrap_or(0);
        let requested = before.saturating_add(attempt.previous().len());
        if requested > max_redirects {
            return attempt.error(RedirectRefused("too many redirects"));
        }
        let from = attempt
            .previous()
            .last()
            .map(Url::scheme)
            .unwrap_or("https");
        let to = attempt.url().scheme();
        if from == to || (from == "http" && to == "https" && tls) {
            attempt.follow()
        } else if from == "http" && to == "https" {
            let next = attempt.url().clone();
            let recorded = CHAIN.try_with(|chain| {
                *chain
                    .handover
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some((next, requested));
            });
            match recorded {
                Ok(()) => attempt.stop(),
                Err(_) => attempt.error(RedirectRefused("redirect to https cannot be followed")),
            }
        } else if from == "https" && to == "http" {
            attempt.error(RedirectRefused("redirect from https to http refused"))
        } else {
            attempt.error(RedirectRefused("redirect to an unsupported scheme refused"))
        }
    })
}
