//! One request and its retries.
//!
//! [`HttpSource::run`] walks a list of base URLs (mirrors) from the one that last
//! answered, one request per attempt, and moves to the next on a transient failure
//! (connection error, stall, 5xx, 408, 429), backing off with jitter after each full pass
//! and honouring `Retry-After` (seconds form, capped). A 404 or 410 is a definite "not
//! found"; other 4xx statuses and refused redirects are final. Each attempt waits for a
//! slot in its host's window (the fetch scheduler, [`super::gate`]; buffered bodies in
//! the urgent lane, streams in the bulk one), sends the request (following redirects,
//! see [`super::redirect`]) and classifies the answer; a buffered body that breaks or
//! stalls midway is retried like a failed request. The slot is given back with the
//! outcome: the body's bytes once it ends, overload for 429 and 503 (with the
//! `Retry-After`), failure for other transient errors.
//!
//! A fresh request (for a body that arrived damaged, see [`super::super::Fresh`]) starts
//! from the mirror after the preferred one, carries `Cache-Control: no-cache` and
//! `Pragma: no-cache`, and goes through the fresh client, which opens a new connection
//! for it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::{self, Entry, HeaderMap, HeaderName};
use reqwest::{StatusCode, Url, Version};

use super::base::join;
use super::body::{BodyStream, stall_error};
use super::gate::Slot;
use super::scheduler::{Lane, Outcome};
use super::{HttpSource, redirect};
use crate::source::FetchError;

/// Why [`HttpSource::send`] failed.
enum SendError {
    /// The TLS client could not be built.
    Client(FetchError),
    /// The request failed (classified by [`classify_send_error`]).
    Request(reqwest::Error),
}

/// What a request is for.
#[derive(Clone, Copy)]
pub(super) enum Want<'a> {
    /// Buffer the whole body.
    Body,
    /// Hand out the body as a stream.
    Stream,
    /// Buffer the body, sending these validators.
    Conditional {
        etag: Option<&'a str>,
        last_modified: Option<&'a str>,
    },
}

/// What a request produced.
pub(super) enum Got {
    /// 404 or 410.
    NotFound,
    /// 304, for a conditional request.
    NotModified,
    /// The buffered body, with its validators.
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// The body as a stream.
    Stream(BodyStream),
}

/// Outcome of one attempt that did not succeed.
enum Failure {
    /// Try again (next mirror, or after a backoff), waiting at least this long.
    Retry(FetchError, Option<Duration>),
    /// Give up now.
    Fatal(FetchError),
}

impl HttpSource {
    /// The retry loop: walks `bases` from `preferred` (from the one after it when
    /// `fresh`), one request per attempt, backing off after each full pass.
    pub(super) async fn run(
        &self,
        bases: &[Url],
        preferred: &AtomicUsize,
        path: Option<&str>,
        max_size: u64,
        want: Want<'_>,
        fresh: bool,
    ) -> Result<Got, FetchError> {
        let opts = &self.inner.options;
        let max_attempts = opts.max_attempts.max(1);
        let count = bases.len().max(1);
        let start = (preferred.load(Ordering::Relaxed) + usize::from(fresh)) % count;
        let mut attempts: u32 = 0;
        let mut rounds: u32 = 0;
        loop {
            let index = (start + attempts as usize) % count;
            let Some(base) = bases.get(index) else {
                return Err(FetchError::InvalidUrl {
                    url: String::new(),
                    reason: "no base URL".to_owned(),
                });
            };
            let url = match path {
                Some(p) => join(base, p),
                None => base.clone(),
            };
            attempts = attempts.saturating_add(1);
            match self.attempt(&url, attempts, max_size, want, fresh).await {
                Ok(got) => {
                    preferred.store(index, Ordering::Relaxed);
                    return Ok(got);
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e, retry_after)) => {
                    if attempts >= max_attempts {
                        return Err(e);
                    }
                    tracing::debug!(%url, attempts, error = %e, "retrying");
                    // Back off only after every mirror failed once in this pass.
                    if (attempts as usize).is_multiple_of(count) {
                        rounds = rounds.saturating_add(1);
                        let wait = self.backoff(rounds).max(retry_after.unwrap_or_default());
                        self.sleep(wait).await?;
                    }
                }
            }
        }
    }

    /// Nominal delay `base * 2^(round-1)` capped, drawn from its upper half.
    fn backoff(&self, round: u32) -> Duration {
        let opts = &self.inner.options;
        let factor = 1u32
            .checked_shl(round.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        let nominal = opts
            .retry_base_delay
            .saturating_mul(factor)
            .min(opts.retry_max_delay);
        let half = nominal / 2;
        let seed = self.inner.jitter_seed.fetch_add(1, Ordering::Relaxed);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(seed);
        let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let extra = hasher
            .finish()
            .checked_rem(span.saturating_add(1))
            .unwrap_or(0);
        half.saturating_add(Duration::from_nanos(extra))
    }

    async fn sleep(&self, wait: Duration) -> Result<(), FetchError> {
        match &self.inner.options.cancel {
            Some(token) => tokio::select! {
                () = token.cancelled() => Err(FetchError::Cancelled),
                () = tokio::time::sleep(wait) => Ok(()),
            },
            None => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }

    /// A slot in the window of `url`'s host: buffered bodies (metadata: summaries,
    /// commits, dirtrees, superblocks) wait in the urgent lane, streams (file objects,
    /// delta parts) in the bulk one.
    async fn slot(&self, url: &Url, want: Want<'_>) -> Result<Slot, FetchError> {
        let gate = self.inner.gates.gate(url);
        let lane = match want {
            Want::Stream => Lane::Bulk,
            Want::Body | Want::Conditional { .. } => Lane::Urgent,
        };
        gate.acquire(lane, self.inner.options.cancel.as_ref()).await
    }

    /// Sends a GET for `url` and follows its redirects (through [`redirect::policy`]),
    /// handing the chain over from the plain client to the TLS one at a redirect from
    /// `http` to `https`. Returns the final response. A `fresh` request goes through the
    /// fresh client (a new connection) with `no-cache` headers.
    async fn send(
        &self,
        url: &Url,
        want: Want<'_>,
        fresh: bool,
    ) -> Result<reqwest::Response, SendError> {
        let mut target = url.clone();
        // URLs requested so far in this chain by an earlier client.
        let mut before = 0usize;
        loop {
            let client = self
                .inner
                .clients
                .client_for(&target, &self.inner.options, fresh)
                .await
                .map_err(SendError::Client)?;
            let mut request = client.get(target.clone());
            if fresh {
                request = request
                    .header(header::CACHE_CONTROL, "no-cache")
                    .header(header::PRAGMA, "no-cache");
            }
            if let Want::Conditional {
                etag,
                last_modified,
            } = want
            {
                if let Some(etag) = etag {
                    request = request.header(header::IF_NONE_MATCH, etag);
                }
                if let Some(lm) = last_modified {
                    request = request.header(header::IF_MODIFIED_SINCE, lm);
                }
            }
            let mut request = request.build().map_err(SendError::Request)?;
            // As default headers: only where the request does not set the header. A
            // hand-over is a change of scheme, after which reqwest would have dropped the
            // sensitive ones.
            let headers = request.headers_mut();
            for (name, value) in &self.inner.clients.headers {
                if before > 0 && redirect::is_sensitive(name) {
                    continue;
                }
                if let Entry::Vacant(entry) = headers.entry(name) {
                    entry.insert(value.clone());
                }
            }
            let (response, handover) = redirect::execute(client, request, before)
                .await
                .map_err(SendError::Request)?;
            match handover {
                Some((next, requested)) if response.status().is_redirection() => {
                    tracing::debug!(from = %response.url(), to = %next, "redirect to https");
                    target = next;
                    before = requested;
                }
                _ => return Ok(response),
            }
        }
    }

    /// One request, classified.
    async fn attempt(
        &self,
        url: &Url,
        attempts: u32,
        max_size: u64,
        want: Want<'_>,
        fresh: bool,
    ) -> Result<Got, Failure> {
        let opts = &self.inner.options;
        let slot = self.slot(url, want).await.map_err(Failure::Fatal)?;
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let stall = opts.stall_timeout;
        let send = tokio::time::timeout(
            opts.connect_timeout.saturating_add(stall),
            self.send(url, want, fresh),
        );
        let sent = match &opts.cancel {
            Some(token) => tokio::select! {
                () = token.cancelled() => return Err(Failure::Fatal(FetchError::Cancelled)),
                r = send => r,
            },
            None => send.await,
        };
        let response = match sent {
            Err(_elapsed) => {
                slot.finish(Outcome::Failed);
                return Err(Failure::Retry(stall_error(url, stall, attempts), None));
            }
            Ok(Err(SendError::Client(e))) => return Err(Failure::Fatal(e)),
            Ok(Err(SendError::Request(e))) => {
                let failure = classify_send_error(url, attempts, e);
                if matches!(failure, Failure::Retry(..)) {
                    slot.finish(Outcome::Failed);
                }
                return Err(failure);
            }
            Ok(Ok(r)) => r,
        };
        slot.note_http2(response.version() == Version::HTTP_2);
        let status = response.status();
        let conditional = matches!(want, Want::Conditional { .. });
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            slot.finish(Outcome::Done(0));
            return Ok(Got::NotFound);
        }
        if status == StatusCode::NOT_MODIFIED && conditional {
            slot.finish(Outcome::Done(0));
            return Ok(Got::NotModified);
        }
        if !status.is_success() {
            let error = FetchError::Http {
                url: url.to_string(),
                status: status.as_u16(),
                attempts,
            };
            let transient = status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS;
            return Err(if transient {
                let retry_after =
                    retry_after(response.headers()).map(|d| d.min(opts.retry_after_cap));
                let overloaded = status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE;
                slot.finish(if overloaded {
                    Outcome::Overloaded(retry_after)
                } else {
                    Outcome::Failed
                });
                Failure::Retry(error, retry_after)
            } else {
                slot.finish(Outcome::Done(0));
                Failure::Fatal(error)
            });
        }
        if response.content_length().is_some_and(|len| len > max_size) {
            return Err(Failure::Fatal(FetchError::TooLarge {
                url: url.to_string(),
                limit: max_size,
            }));
        }
        let header_string = |name: HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header_string(header::ETAG);
        let last_modified = header_string(header::LAST_MODIFIED);
        let counters = Arc::clone(&self.inner.counters);
        let stream = BodyStream::new(response, url, max_size, attempts, opts, counters, slot);
        if matches!(want, Want::Stream) {
            return Ok(Got::Stream(stream));
        }
        let body = stream.read_all().await.map_err(|e| {
            if e.is_transient() {
                Failure::Retry(e, None)
            } else {
                Failure::Fatal(e)
            }
        })?;
        Ok(Got::Body {
            body,
            etag,
            last_modified,
        })
    }
}

/// Maps a `send()` error: refused redirects and malformed requests are final, everything
/// else (connect, TLS, reset, protocol) is transient.
fn classify_send_error(url: &Url, attempts: u32, e: reqwest::Error) -> Failure {
    if e.is_redirect() {
        return Failure::Fatal(FetchError::Redirects {
            url: url.to_string(),
            reason: redirect::refused_reason(&e),
        });
    }
    let builder = e.is_builder();
    let error = FetchError::Connect {
        url: url.to_string(),
        attempts,
        source: Box::new(e.without_url()),
    };
    if builder {
        Failure::Fatal(error)
    } else {
        Failure::Retry(error, None)
    }
}

/// `Retry-After` in its delay-seconds form (an HTTP date is ignored: backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
