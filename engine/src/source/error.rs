//! [`FetchError`]: why a fetch failed, with messages that name the URL or path and say
//! what to do, and which failures are transient (worth a retry or another mirror).

use std::path::PathBuf;

/// Why a fetch failed. Not-found is not an error: methods return `Ok(None)` (or
/// [`super::Conditional::NotFound`]) for it.
///
/// Messages name the URL or path, the HTTP status and the number of attempts where they
/// apply, and say what the user can do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a status that is neither success nor not-found, on the
    /// last of `attempts` attempts.
    #[error("{url} answered HTTP {status} after {attempts} attempt(s); {}", status_hint(*status))]
    Http {
        /// The URL of the last attempt.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// How many requests were made for this file.
        attempts: u32,
    },
    /// The connection could not be made or broke before the body was complete.
    #[error(
        "cannot fetch {url} after {attempts} attempt(s): {source}; check the URL, the \
         network and any proxy setting"
    )]
    Connect {
        /// The URL of the last attempt.
        url: String,
        /// How many requests were made for this file.
        attempts: u32,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No byte arrived for the stall timeout (while waiting for the response headers or
    /// between two body chunks).
    #[error(
        "{url} sent nothing for {seconds} s (attempt {attempts}); the server or network is \
         stalled: try again later or raise the stall timeout"
    )]
    Stall {
        /// The URL that stalled.
        url: String,
        /// The stall timeout, in whole seconds (rounded up).
        seconds: u64,
        /// How many requests were made for this file.
        attempts: u32,
    },
    /// The body (or its declared `Content-Length`) is larger than the caller's cap.
    #[error(
        "{url} is larger than the limit of {limit} bytes; the server is misbehaving or the \
         limit is too small"
    )]
    TooLarge {
        /// The URL or path.
        url: String,
        /// The cap that was exceeded, in bytes.
        limit: u64,
    },
    /// A redirect was refused: too many, or from `https` to `http`.
    #[error("{url}: {reason}; fix the remote URL to point at the final location")]
    Redirects {
        /// The URL that was requested.
        url: String,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// A configured URL, mirrorlist or option is unusable.
    #[error("invalid remote URL {url}: {reason}")]
    InvalidUrl {
        /// The offending URL (or mirrorlist URL).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A local repository or file in it is not what OSTree writes (unknown mode, bad
    /// ref file, object of an unexpected file type, malformed `user.ostreemeta`).
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file or repository.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A requested path was refused before any access: absolute, `..` or `.`
    /// components, characters that are not safe in a URL, or a symlink leaving the
    /// repository.
    #[error("refusing path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The operation was cancelled through [`super::SourceOptions::cancel`].
    #[error("fetch cancelled")]
    Cancelled,
}

/// A short hint on what to do about an HTTP status.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 407 => "the server wants credentials: check the remote's authentication",
        403 => "access is forbidden: check the URL and the server's permissions",
        408 | 429 => "the server is overloaded or rate-limiting: try again later",
        400..=499 => "check the remote URL",
        500..=599 => "the server is failing: try again later or use another mirror",
        _ => "the server's answer is not usable",
    }
}

impl FetchError {
    /// Whether this error says the network or the server failed in a way that may pass
    /// (connection errors, stalls, 5xx, 408, 429), as opposed to a definite answer or a
    /// local problem.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            FetchError::Connect { .. } | FetchError::Stall { .. } => true,
            _ => false,
        }
    }
}

/// Whether `e` is a transient [`FetchError`], directly or wrapped in a
/// `std::io::Error` (as [`super::BodyReader`] hands them out). For walking the chain of an
/// error that a consumer of a body (a decoder, the composefs store) wrapped:
/// `error.chain().any(is_transient_error)`.
#[must_use]
pub(crate) fn is_transient_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(f) = e.downcast_ref::<FetchError>() {
        return f.is_transient();
    }
    e.downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<FetchError>())
        .is_some_and(FetchError::is_transient)
}
