//! The errors of a pull, one type for every phase and route, so that each module reports
//! what failed (which object, file or URL) in the same words.

use cfsync_formats::checksum::Checksum;

use crate::ingest::IngestError;
use crate::source::FetchError;
use crate::store::StoreError;
use crate::trust::TrustError;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// Fetching from the source failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The composefs repository failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file object was refused.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A signature, binding or downgrade check refused the commit or summary.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// An object's bytes hash to something other than its name.
    #[error(
        "object {object}: checksum mismatch (content hashes to {actual}); the server sent a corrupt or substituted object"
    )]
    ChecksumMismatch {
        /// The object (`<id>.<type>`).
        object: String,
        /// What its bytes hash to.
        actual: Checksum,
    },
    /// An object does not parse.
    #[error("{what} {id}: {error}")]
    Format {
        /// The object.
        id: Checksum,
        /// Its kind.
        what: &'static str,
        /// The parser's message.
        error: String,
    },
    /// Every body fetched for an object or file arrived damaged (failed its checksum,
    /// decompression or parse), each one fetched afresh after the first.
    #[error(
        "{what}: every body of {url} arrived damaged, on {attempts} attempt(s) ({}); \
         try again later or use another mirror, and if it persists report it to the \
         server's operator",
        attempts_described(failures)
    )]
    Damaged {
        /// The object or file (`<id>.<type>`, a path, a delta part).
        what: String,
        /// Where it was fetched from (the last mirror that answered).
        url: String,
        /// Bodies fetched.
        attempts: u32,
        /// What was wrong with each body, in order.
        failures: Vec<String>,
    },
    /// A required object or file is missing at the source.
    #[error("{what} not found at the source ({path})")]
    NotFound {
        /// What was looked for.
        what: String,
        /// The path tried.
        path: String,
    },
    /// The ref is not known to the source.
    #[error("ref {name:?} not found in the remote's summary or refs/heads")]
    RefNotFound {
        /// The ref.
        name: String,
    },
    /// A format or size limit was exceeded.
    #[error("refusing hostile input: {0}")]
    Hostile(String),
    /// The caller cancelled the pull.
    #[error("pull cancelled; everything verified so far is kept and the next pull resumes")]
    Cancelled,
    /// A bug or broken invariant.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What went wrong on each attempt, a run of identical failures said once: "attempt 1:
/// A; attempts 2-5: B".
fn attempts_described(failures: &[String]) -> String {
    let mut runs: Vec<(usize, usize, &str)> = Vec::new();
    for (i, f) in failures.iter().enumerate() {
        match runs.last_mut() {
            Some((_, last, text)) if *text == f.as_str() => *last = i + 1,
            _ => runs.push((i + 1, i + 1, f)),
        }
    }
    runs.iter()
        .map(|(first, last, text)| match first == last {
            true => format!("attempt {first}: {text}"),
            false => format!("attempts {first}-{last}: {text}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl PullError {
    pub(crate) fn object(id: &Checksum, what: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Format {
            id: *id,
            what,
            error: e.to_string(),
        }
    }
}
