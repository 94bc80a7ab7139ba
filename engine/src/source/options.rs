//! [`SourceOptions`]: how a source connects, retries and times out, with libostree's
//! defaults and the `CFSYNC_HTTP_*` environment overrides.

use std::path::PathBuf;
use std::time::Duration;

use crate::progress::Cancel;
use crate::remotes::{Remote, RemoteError};

/// Options for opening a [`super::Source`]. Defaults follow libostree where it has one
/// (docs/ostree-formats.md §8.1).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceOptions {
    /// Base URL for content (`contenturl`), or `mirrorlist=<URL>`; `None` = the main URL.
    /// Ignored for local repositories.
    pub contenturl: Option<String>,
    /// How long to wait for a TCP (and TLS) connection. Default 30 s.
    pub connect_timeout: Duration,
    /// How long a request may go without receiving a byte (response headers or body)
    /// before it fails with [`super::FetchError::Stall`]. This is not a total timeout: a slow
    /// but moving download never times out. Default 30 s (libostree aborts below 1000 B/s
    /// for 30 s). The wait for response headers is allowed `connect_timeout +
    /// stall_timeout`, since it includes connecting.
    pub stall_timeout: Duration,
    /// Requests per file at most, counting the first (and, with mirrors, one per mirror
    /// tried). Default 5. At least 1 is used.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further attempt, with jitter
    /// (each wait is uniformly drawn from the upper half of the nominal delay). Default
    /// 500 ms.
    pub retry_base_delay: Duration,
    /// Cap on the backoff delay. Default 10 s.
    pub retry_max_delay: Duration,
    /// Cap on a server's `Retry-After` (seconds form). Default 60 s.
    pub retry_after_cap: Duration,
    /// Requests in flight to one host (`host:port`) at most over HTTP/1.1 (one
    /// connection each); further requests wait. The fetch scheduler's window grows up to
    /// it while throughput grows (see `http/scheduler.rs`). Also the idle keep-alive pool
    /// size per host. Default 64 ([`SourceOptions::libostree`]: 8, libostree's
    /// `max-outstanding-fetcher-requests`, the bound and the start); capped by
    /// `CFSYNC_HTTP_MAX_IN_FLIGHT`. At least 1 is used.
    pub max_connections_per_host: usize,
    /// Requests in flight to one host at most once it answered over HTTP/2 (streams
    /// multiplexed on one connection; hyper queues streams beyond the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`, so a larger bound only stops paying, the
    /// scheduler then stops growing). Default 128 (nginx's `http2_max_concurrent_streams`);
    /// capped by `CFSYNC_HTTP_MAX_IN_FLIGHT`. Ignored without [`SourceOptions::http2`].
    pub max_streams_per_host: usize,
    /// The fetch scheduler's first window per host (when nothing is remembered), at most
    /// the bounds above. Default 8 (`CFSYNC_HTTP_INITIAL_IN_FLIGHT`).
    pub initial_in_flight: usize,
    /// Where the fetch scheduler remembers, per host, the window it ended with (file
    /// `fetch-windows`), so that the next pull starts there. Default none: every pull
    /// starts from [`SourceOptions::initial_in_flight`].
    pub scheduler_dir: Option<PathBuf>,
    /// Speak HTTP/2 without negotiation on plain `http` (prior knowledge, `h2c`): only
    /// for servers known to accept it (the remote's `http2-prior-knowledge`,
    /// `CFSYNC_HTTP_PRIOR_KNOWLEDGE=1`). `https` always negotiates by ALPN. Default false.
    pub http2_prior_knowledge: bool,
    /// Redirects followed per request at most. Default 10.
    pub max_redirects: usize,
    /// Offer HTTP/2 (negotiated by ALPN on `https`). `false` forces HTTP/1.1 (the
    /// remote's `http2=false`). Default true.
    pub http2: bool,
    /// Proxy URL for all requests (the remote's `proxy`). Default none; the environment
    /// is not consulted.
    pub proxy: Option<String>,
    /// PEM bundle of extra CA certificates to trust (the remote's `tls-ca-path`).
    pub tls_ca_path: Option<PathBuf>,
    /// Extra request headers (libostree's `http-headers` pull option).
    pub extra_headers: Vec<(String, String)>,
    /// When cancelled, waits (backoff, stalled reads, queued requests) end with
    /// [`super::FetchError::Cancelled`].
    pub cancel: Option<Cancel>,
}

/// Environment variables that override the HTTP timing defaults, in milliseconds (or a
/// count for [`ENV_MAX_ATTEMPTS`]): for tests that provoke stalls and retries, and for
/// links slow or flaky enough to need other values. Unset, empty or unparsable values
/// keep the default. They are read by [`SourceOptions::default`].
const ENV_STALL_TIMEOUT_MS: &str = "CFSYNC_HTTP_STALL_TIMEOUT_MS";
/// Overrides [`SourceOptions::connect_timeout`] (milliseconds).
const ENV_CONNECT_TIMEOUT_MS: &str = "CFSYNC_HTTP_CONNECT_TIMEOUT_MS";
/// Overrides [`SourceOptions::retry_base_delay`] (milliseconds).
const ENV_RETRY_BASE_DELAY_MS: &str = "CFSYNC_HTTP_RETRY_DELAY_MS";
/// Overrides [`SourceOptions::retry_max_delay`] (milliseconds).
const ENV_RETRY_MAX_DELAY_MS: &str = "CFSYNC_HTTP_RETRY_MAX_DELAY_MS";
/// Overrides [`SourceOptions::retry_after_cap`] (milliseconds).
const ENV_RETRY_AFTER_CAP_MS: &str = "CFSYNC_HTTP_RETRY_AFTER_CAP_MS";
/// Overrides [`SourceOptions::max_attempts`] (a count).
const ENV_MAX_ATTEMPTS: &str = "CFSYNC_HTTP_MAX_ATTEMPTS";
/// Caps [`SourceOptions::max_connections_per_host`] and
/// [`SourceOptions::max_streams_per_host`] (a count).
const ENV_MAX_IN_FLIGHT: &str = "CFSYNC_HTTP_MAX_IN_FLIGHT";
/// Overrides [`SourceOptions::initial_in_flight`] (a count).
const ENV_INITIAL_IN_FLIGHT: &str = "CFSYNC_HTTP_INITIAL_IN_FLIGHT";
/// `1` or `true` sets [`SourceOptions::http2_prior_knowledge`].
const ENV_PRIOR_KNOWLEDGE: &str = "CFSYNC_HTTP_PRIOR_KNOWLEDGE";
/// The default bounds of the fetch scheduler (HTTP/1.1, HTTP/2).
const DEFAULT_MAX_HTTP1: usize = 64;
const DEFAULT_MAX_HTTP2: usize = 128;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

fn env_millis(name: &str, default: Duration) -> Duration {
    env_u64(name).map_or(default, Duration::from_millis)
}

impl Default for SourceOptions {
    /// libostree's defaults, but with the fetch scheduler free to grow to 64 requests in
    /// flight per host (128 over HTTP/2), and with the overrides of the `CFSYNC_HTTP_*`
    /// environment variables (`CFSYNC_HTTP_STALL_TIMEOUT_MS`, `CFSYNC_HTTP_MAX_IN_FLIGHT`
    /// and the others) applied.
    fn default() -> Self {
        let base = SourceOptions::libostree();
        let cap = env_u64(ENV_MAX_IN_FLIGHT)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or(usize::MAX);
        let prior = std::env::var(ENV_PRIOR_KNOWLEDGE)
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        SourceOptions {
            max_connections_per_host: DEFAULT_MAX_HTTP1.min(cap),
            max_streams_per_host: DEFAULT_MAX_HTTP2.min(cap),
            initial_in_flight: env_u64(ENV_INITIAL_IN_FLIGHT)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .unwrap_or(base.initial_in_flight),
            http2_prior_knowledge: prior,
            connect_timeout: env_millis(ENV_CONNECT_TIMEOUT_MS, base.connect_timeout),
            stall_timeout: env_millis(ENV_STALL_TIMEOUT_MS, base.stall_timeout),
            max_attempts: env_u64(ENV_MAX_ATTEMPTS)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(base.max_attempts),
            retry_base_delay: env_millis(ENV_RETRY_BASE_DELAY_MS, base.retry_base_delay),
            retry_max_delay: env_millis(ENV_RETRY_MAX_DELAY_MS, base.retry_max_delay),
            retry_after_cap: env_millis(ENV_RETRY_AFTER_CAP_MS, base.retry_after_cap),
            ..base
        }
    }
}

impl SourceOptions {
    /// Applies the fetch settings of `remote`'s keys: `http2` (`false` forces HTTP/1.1),
    /// `http2-prior-knowledge` (HTTP/2 without negotiation on plain `http`) and
    /// `max-in-flight` (a positive count capping the requests in flight per host, over
    /// both protocols). Absent keys change nothing; a malformed value is an error naming
    /// the remote and the key.
    pub fn apply_remote(&mut self, remote: &Remote) -> Result<(), RemoteError> {
        if let Some(http2) = remote.extra_bool("http2")? {
            self.http2 = http2;
        }
        if let Some(prior) = remote.extra_bool("http2-prior-knowledge")? {
            self.http2_prior_knowledge = prior;
        }
        if let Some(raw) = remote.extra_string("max-in-flight")? {
            let cap = raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    remote.invalid("max-in-flight", &raw, "not a positive count".to_owned())
                })?;
            self.max_connections_per_host = self.max_connections_per_host.min(cap);
            self.max_streams_per_host = self.max_streams_per_host.min(cap);
        }
        Ok(())
    }

    /// libostree's defaults, ignoring the environment: 8 requests in flight per host,
    /// fixed.
    #[must_use]
    pub fn libostree() -> Self {
        SourceOptions {
            contenturl: None,
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            max_attempts: 5,
            retry_base_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(60),
            max_connections_per_host: 8,
            max_streams_per_host: 8,
            initial_in_flight: 8,
            scheduler_dir: None,
            http2_prior_knowledge: false,
            max_redirects: 10,
            http2: true,
            proxy: None,
            tls_ca_path: None,
            extra_headers: Vec::new(),
            cancel: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_keys_set_http2_and_cap_the_window() {
        let mut remote = Remote::new("r", "http://example.com/repo").unwrap();
        let mut o = SourceOptions::libostree();
        o.max_connections_per_host = 64;
        o.max_streams_per_host = 128;
        o.apply_remote(&remote).unwrap();
        assert!(o.http2 && !o.http2_prior_knowledge);
        assert_eq!(
            (o.max_connections_per_host, o.max_streams_per_host),
            (64, 128)
        );
        remote.apply_set("http2-prior-knowledge", "true").unwrap();
        remote.apply_set("max-in-flight", "32").unwrap();
        o.apply_remote(&remote).unwrap();
        assert!(o.http2_prior_knowledge);
        assert_eq!(
            (o.max_connections_per_host, o.max_streams_per_host),
            (32, 32)
        );
        remote.apply_set("http2", "false").unwrap();
        o.apply_remote(&remote).unwrap();
        assert!(!o.http2);
        remote.apply_set("max-in-flight", "0").unwrap();
        let err = o.apply_remote(&remote).unwrap_err().to_string();
        assert!(err.contains("max-in-flight"), "{err}");
    }
}
