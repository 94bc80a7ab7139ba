//! Bodies that arrive whole but wrong (a broken proxy or CDN edge: a flipped byte, a cut
//! body) are fetched again, fresh, within the source's attempt budget.
//!
//! [`fetch_checked`] runs an attempt (fetch one body and check it) until it passes or
//! the budget is spent: [`Source::body_attempts`] bodies per file, the same
//! `max_attempts` as for 5xx and resets over HTTP, 1 for a local repository (a corrupt
//! file on disk is reported at once). Each failed attempt says why through [`Failed`]:
//! a damaged body is fetched again with [`Fresh::Yes`] (no cache, a new connection, the
//! next mirror) and counted in [`crate::source::SourceStats::refetched`]; a body that
//! broke off mid-way is fetched again; anything else ends the fetch. When the budget is
//! spent on damaged bodies the error is [`PullError::Damaged`], naming what was wrong
//! each time, while a signature that never verifies stays the refusal it was.

use std::future::Future;

use crate::error::PullError;
use crate::source::{Fresh, PathKind, Source};

/// Why one attempt failed, and so whether another is worth it.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The body arrived whole but failed its checksum, decompression or parse: fetch it
    /// again, fresh.
    Damaged(PullError),
    /// A signature did not verify over bytes that may have been damaged in transit:
    /// fetch again, fresh. When no attempt verifies, the last error is the answer,
    /// unchanged (a persistent attacker gains nothing from the retries).
    Unverified(PullError),
    /// The body broke off mid-way (a transient error after the source's own retries):
    /// fetch it again; when the budget is spent, this error.
    Broken(PullError),
    /// A definite answer (not found, refused, a local failure): give up with it.
    Final(PullError),
}

impl From<PullError> for Failed {
    fn from(e: PullError) -> Self {
        Failed::Final(e)
    }
}

impl From<crate::source::FetchError> for Failed {
    /// A request's error: final, since the source has retried it already (retrying
    /// here would multiply its attempts). A body that breaks off while the caller
    /// streams it is [`Failed::Broken`], said where it is read.
    fn from(e: crate::source::FetchError) -> Self {
        Failed::Final(e.into())
    }
}

impl Failed {
    /// The error, whatever the kind of failure (where no refetch is possible).
    pub(crate) fn into_error(self) -> PullError {
        match self {
            Failed::Damaged(e) | Failed::Unverified(e) | Failed::Broken(e) | Failed::Final(e) => e,
        }
    }

    /// A fetch error met while streaming a body: transient ones broke the body off.
    pub(crate) fn streaming(e: crate::source::FetchError) -> Self {
        if e.is_transient() {
            Failed::Broken(e.into())
        } else {
            Failed::Final(e.into())
        }
    }
}

/// What one fetch is for, in the error when every body was damaged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named<'a> {
    /// The object or file, as users see it (`<id>.dirtree`, `summary`, a delta part).
    pub(crate) what: &'a str,
    /// Its path at the source (for the URL in messages).
    pub(crate) path: &'a str,
    /// Where the path lives.
    pub(crate) kind: PathKind,
}

impl<'a> Named<'a> {
    /// A file shown to users by its path at the source.
    pub(crate) fn path(path: &'a str, kind: PathKind) -> Named<'a> {
        Named {
            what: path,
            path,
            kind,
        }
    }
}

/// Runs `attempt` (given [`Fresh::No`] first, then [`Fresh::Yes`] after a damaged
/// body) until it succeeds, fails for good, or `source`'s budget of bodies is spent.
pub(crate) async fn fetch_checked<T, F, Fut>(
    source: &Source,
    named: Named<'_>,
    mut attempt: F,
) -> Result<T, PullError>
where
    F: FnMut(Fresh) -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    let budget = source.body_attempts().max(1);
    let mut fresh = Fresh::No;
    let mut failures = Vec::new();
    let mut bodies = 0u32;
    loop {
        bodies = bodies.saturating_add(1);
        let last = bodies >= budget;
        let again = match attempt(fresh).await {
            Ok(value) => return Ok(value),
            Err(Failed::Final(e)) => return Err(e),
            Err(Failed::Broken(e)) => {
                failures.push(format!("broke off: {e}"));
                if last {
                    return Err(e);
                }
                tracing::debug!("{}: fetching again after {e}", named.what);
                continue;
            }
            Err(Failed::Unverified(e)) => {
                failures.push(e.to_string());
                if last {
                    return Err(e);
                }
                e
            }
            Err(Failed::Damaged(e)) => {
                failures.push(e.to_string());
                if last {
                    // One body only (a local repository): its error as it is.
                    if bodies == 1 {
                        return Err(e);
                    }
                    return Err(PullError::Damaged {
                        what: named.what.to_owned(),
                        url: source.location(named.path, named.kind),
                        attempts: bodies,
                        failures,
                    });
                }
                e
            }
        };
        tracing::info!(
            "{}: fetching again, fresh, after a damaged body: {again}",
            named.what
        );
        source.note_refetch();
        fresh = Fresh::Yes;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::source::SourceOptions;

    fn http(attempts: u32) -> Source {
        let mut options = SourceOptions::libostree();
        options.max_attempts = attempts;
        // Nothing listens there; no request is made.
        Source::open("http://127.0.0.1:9/repo", options).unwrap()
    }

    fn named() -> Named<'static> {
        Named {
            what: "object 00ff.dirtree",
            path: "objects/00/ff.dirtree",
            kind: PathKind::Content,
        }
    }

    fn damaged(n: usize) -> PullError {
        PullError::Hostile(format!("checksum mismatch number {n}"))
    }

    /// Runs `fetch_checked` over the outcomes `script` gives each attempt; returns the
    /// result and the fresh flag of each attempt.
    async fn run(
        source: &Source,
        script: impl Fn(usize) -> Result<u32, Failed>,
    ) -> (Result<u32, PullError>, Vec<Fresh>) {
        let seen = Mutex::new(Vec::new());
        let result = fetch_checked(source, named(), |fresh| {
            let mut seen = seen.lock().unwrap();
            seen.push(fresh);
            let outcome = script(seen.len());
            async move { outcome }
        })
        .await;
        (result, seen.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_damaged_body_then_a_good_one_is_one_refetch() {
        let source = http(5);
        let (got, fresh) = run(&source, |n| {
            if n == 1 {
                Err(Failed::Damaged(damaged(n)))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(fresh, [Fresh::No, Fresh::Yes]);
        assert_eq!(source.stats().refetched, 1);
    }

    #[tokio::test]
    async fn damaged_every_time_names_each_failure() {
        let source = http(3);
        let (got, fresh) = run(&source, |n| Err(Failed::Damaged(damaged(n)))).await;
        assert_eq!(fresh, [Fresh::No, Fresh::Yes, Fresh::Yes]);
        let err = got.unwrap_err();
        let PullError::Damaged {
            what,
            url,
            attempts,
            failures,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(what, "object 00ff.dirtree");
        assert_eq!(url, "http://127.0.0.1:9/repo/objects/00/ff.dirtree");
        assert_eq!(*attempts, 3);
        assert_eq!(failures.len(), 3);
        let text = err.to_string();
        for n in 1..=3 {
            assert!(
                text.contains(&format!("checksum mismatch number {n}")),
                "{text}"
            );
        }
        assert!(text.contains("3 attempt(s)"), "{text}");
        assert!(
            text.contains("attempt 2: refusing hostile input: checksum mismatch number 2"),
            "{text}"
        );
        assert!(
            text.ends_with("report it to the server's operator"),
            "{text}"
        );
        assert_eq!(source.stats().refetched, 2);
    }

    #[tokio::test]
    async fn identical_failures_are_said_once() {
        let source = http(4);
        let (got, _) = run(&source, |n| Err(Failed::Damaged(damaged(n.min(2))))).await;
        let text = got.unwrap_err().to_string();
        assert!(
            text.contains("(attempt 1: refusing hostile input: checksum mismatch number 1; attempts 2-4: refusing hostile input: checksum mismatch number 2)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_final_error_is_not_refetched() {
        let source = http(5);
        let (got, fresh) = run(&source, |_| {
            Err(Failed::Final(PullError::NotFound {
                what: "x".into(),
                path: "y".into(),
            }))
        })
        .await;
        assert!(matches!(got, Err(PullError::NotFound { .. })));
        assert_eq!(fresh, [Fresh::No]);
        assert_eq!(source.stats().refetched, 0);
    }

    #[tokio::test]
    async fn a_signature_failing_every_time_is_the_last_refusal_unchanged() {
        let source = http(2);
        let (got, fresh) = run(&source, |n| Err(Failed::Unverified(damaged(n)))).await;
        assert_eq!(fresh, [Fresh::No, Fresh::Yes]);
        let err = got.unwrap_err();
        assert!(matches!(&err, PullError::Hostile(m) if m == "checksum mismatch number 2"));
        assert_eq!(source.stats().refetched, 1);
    }

    #[tokio::test]
    async fn a_broken_body_is_fetched_again_without_counting_a_refetch() {
        let source = http(5);
        let (got, fresh) = run(&source, |n| {
            if n < 3 {
                Err(Failed::Broken(damaged(n)))
            } else {
                Ok(1)
            }
        })
        .await;
        assert_eq!(got.unwrap(), 1);
        assert_eq!(fresh, [Fresh::No, Fresh::No, Fresh::No]);
        assert_eq!(source.stats().refetched, 0);
    }

    #[tokio::test]
    async fn a_local_source_is_not_refetched() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config"), "[core]\nmode=archive\n").unwrap();
        let source = Source::open(tmp.path().to_str().unwrap(), SourceOptions::default()).unwrap();
        let (got, fresh) = run(&source, |n| Err(Failed::Damaged(damaged(n)))).await;
        assert_eq!(fresh, [Fresh::No]);
        // Reported at once, as it is.
        assert!(matches!(got, Err(PullError::Hostile(m)) if m == "checksum mismatch number 1"));
        assert_eq!(source.stats().refetched, 0);
    }
}
