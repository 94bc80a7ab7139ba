//! The `reqwest` clients, built here and nowhere else (never `Client::new()`).
//!
//! Every client has: a keep-alive pool sized by
//! [`SourceOptions::max_connections_per_host`] (the fetch scheduler's HTTP/1.1 bound, so
//! that a full window does not churn connections), HTTP/2 when the server offers it
//! through ALPN (unless [`SourceOptions::http2`] is off; with
//! [`SourceOptions::http2_prior_knowledge`], HTTP/2 without negotiation on plain `http`;
//! many requests then share one connection as streams), the connect timeout, the redirect
//! policy of [`super::redirect`], no automatic decompression (byte counters measure what
//! crossed the wire), no proxy from the environment, and the user agent
//! `cfsync/<version>`.
//!
//! There are two of them, so that a remote served over plain `http` never pays for
//! loading the system's CA roots (some 20 ms on a cold page cache): `http` URLs go
//! through a client with an empty root store, and `https` URLs through a client with the
//! platform verifier (plus [`SourceOptions::tls_ca_path`]), built on the first `https`
//! request. When the proxy itself is `https`, every request uses the TLS client.
//!
//! Each has a fresh twin, built on the first fresh request (a body that arrived damaged
//! is fetched again through it): the same settings but no idle connection kept
//! (`pool_max_idle_per_host(0)`), so each of its requests opens a new connection and
//! cannot reuse the one that delivered the damaged body.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::OnceCell;

use super::redirect;
use crate::source::{FetchError, SourceOptions};

/// The clients of one source, and the extra headers they send.
#[derive(Debug)]
pub(super) struct Clients {
    /// The client for `http` URLs, with no TLS roots loaded; `None` when the proxy is
    /// `https` (the TLS client then serves every URL).
    plain: Option<reqwest::Client>,
    /// The client for `https` URLs, built on first use (loading the CA roots is slow).
    tls: OnceCell<reqwest::Client>,
    /// The fresh twins of `plain` and `tls`, built on first use.
    fresh_plain: OnceCell<reqwest::Client>,
    fresh_tls: OnceCell<reqwest::Client>,
    /// Extra CA certificates for the TLS client ([`SourceOptions::tls_ca_path`]).
    extra_roots: Vec<reqwest::Certificate>,
    /// [`SourceOptions::extra_headers`], parsed; added to each request where it does not
    /// set the header itself.
    pub(super) headers: HeaderMap,
}

impl Clients {
    /// Parses the headers and CA bundle of `options` and builds the plain client; the
    /// TLS client waits for the first `https` request.
    pub(super) fn new(options: &SourceOptions) -> Result<Clients, FetchError> {
        let headers = extra_headers(options)?;
        let extra_roots = extra_roots(options)?;
        let plain = if proxy_needs_tls(options) {
            None
        } else {
            Some(build_client(options, None, false)?)
        };
        Ok(Clients {
            plain,
            tls: OnceCell::new(),
            fresh_plain: OnceCell::new(),
            fresh_tls: OnceCell::new(),
            extra_roots,
            headers,
        })
    }

    /// The client for `url`: the plain one for `http` (when there is one), else the TLS
    /// one, built now if this is the first request that needs it; with `fresh`, its
    /// fresh twin.
    pub(super) async fn client_for(
        &self,
        url: &Url,
        options: &SourceOptions,
        fresh: bool,
    ) -> Result<&reqwest::Client, FetchError> {
        if url.scheme() == "http"
            && let Some(plain) = &self.plain
        {
            if !fresh {
                return Ok(plain);
            }
            return self
                .fresh_plain
                .get_or_try_init(|| async { build_client(options, None, true) })
                .await;
        }
        let cell = if fresh { &self.fresh_tls } else { &self.tls };
        cell.get_or_try_init(|| async { build_client(options, Some(&self.extra_roots), fresh) })
            .await
    }
}

fn config_error(reason: String) -> FetchError {
    FetchError::InvalidUrl {
        url: "(source options)".to_owned(),
        reason,
    }
}

/// [`SourceOptions::extra_headers`] parsed, a later value of a name replacing an earlier
/// one (as `ClientBuilder::default_headers` does).
fn extra_headers(options: &SourceOptions) -> Result<HeaderMap, FetchError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &options.extra_headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| config_error(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| config_error(format!("header value for {name}: {e}")))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The certificates of [`SourceOptions::tls_ca_path`], read when the source is created so
/// that a bad bundle is reported then, not on the first `https` request.
fn extra_roots(options: &SourceOptions) -> Result<Vec<reqwest::Certificate>, FetchError> {
    let Some(path) = &options.tls_ca_path else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|source| FetchError::Io {
        path: path.clone(),
        source,
    })?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| config_error(format!("CA bundle {}: {e}", path.display())))
}

/// Whether the proxy is reached over TLS (then the plain client cannot be used).
fn proxy_needs_tls(options: &SourceOptions) -> bool {
    options.proxy.as_deref().is_some_and(|p| {
        p.trim()
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    })
}

/// Builds a client: with `roots` (the extra CA certificates, possibly none) a TLS client
/// using the platform verifier, which loads the system's CA roots; without, a plain
/// client with an empty root store, for `http` URLs. A `fresh` client keeps no idle
/// connection: each request opens its own.
fn build_client(
    options: &SourceOptions,
    roots: Option<&[reqwest::Certificate]>,
    fresh: bool,
) -> Result<reqwest::Client, FetchError> {
    // reqwest is built without a crypto provider: rustls uses ring, installed once per
    // process (an error means a provider is installed already, which is as good).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("cfsync/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .pool_max_idle_per_host(if fresh {
            0
        } else {
            options.max_connections_per_host.max(1)
        })
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .redirect(redirect::policy(options.max_redirects, roots.is_some()))
        .referer(false)
        .no_proxy();
    if !options.http2 {
        builder = builder.http1_only();
    } else if roots.is_none() && options.http2_prior_knowledge {
        // Plain `http` only: `https` negotiates by ALPN.
        builder = builder.http2_prior_knowledge();
    }
    if let Some(proxy) = &options.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str()).map_err(|e| FetchError::InvalidUrl {
            url: proxy.clone(),
            reason: format!("proxy: {e}"),
        })?;
        builder = builder.proxy(proxy);
    }
    builder = match roots {
        // `tls_certs_only` keeps reqwest from building the platform verifier.
        None => builder.tls_certs_only(Vec::new()),
        Some([]) => builder,
        Some(roots) => builder.tls_certs_merge(roots.iter().cloned()),
    };
    builder
        .build()
        .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))
}
