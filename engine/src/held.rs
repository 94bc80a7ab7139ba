//! Bodies a pull fetches ahead of the check they wait on: the commit's detached metadata
//! and the delta superblock (or delta index) go out together with the commit, to save
//! round trips, but nothing reads them until the commit is accepted
//! ([`crate::trust::Trust`]); a pull refused earlier drops them unread, and dropping the
//! pull's [`Held`] aborts whatever is still in flight.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// One early fetch's answer, as [`crate::source::Source::get_bytes`] gives it.
pub(crate) type Fetched = Result<Option<Vec<u8>>, crate::source::FetchError>;

/// Bodies fetched ahead of the check they wait on, by path at the source: each a task
/// still running or finished, whose bytes nobody reads until [`Held::take`] hands them
/// to the one check that opens them. Dropping the last clone aborts the fetches still
/// running (a refused commit's delta superblock is not waited for).
#[derive(Clone, Default)]
pub(crate) struct Held {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

/// A fetch in flight, aborted when dropped.
struct Slot(tokio::task::JoinHandle<Fetched>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Held")
            .field("paths", &slots.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Held {
    /// Starts `fetch` of `path` now (on the runtime, so it proceeds while the caller
    /// waits for other requests); a fetch already held for `path` is replaced.
    pub(crate) fn hold<F>(&self, path: String, fetch: F)
    where
        F: Future<Output = Fetched> + Send + 'static,
    {
        let slot = Slot(tokio::spawn(fetch));
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.insert(path, slot);
    }

    /// The answer of the fetch held for `path`, waiting for it if it is still running;
    /// `None` when nothing is held for `path` (or its task failed): fetch it then.
    pub(crate) async fn take(&self, path: &str) -> Option<Fetched> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.remove(path)?
        };
        let mut slot = slot;
        (&mut slot.0).await.ok()
    }

    /// A handle that does not keep the fetches alive (for a held fetch that holds the
    /// next one when its answer arrives).
    pub(crate) fn downgrade(&self) -> WeakHeld {
        WeakHeld(Arc::downgrade(&self.slots))
    }
}

/// A [`Held`] that may be gone (its pull ended).
#[derive(Clone)]
pub(crate) struct WeakHeld(Weak<Mutex<HashMap<String, Slot>>>);

impl WeakHeld {
    /// The [`Held`], while its pull lasts.
    pub(crate) fn upgrade(&self) -> Option<Held> {
        self.0.upgrade().map(|slots| Held { slots })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Sets its flag when dropped (a fetch aborted mid-way drops its future).
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_held_fetch_is_taken_once() {
        let held = Held::default();
        held.hold("a".into(), async { Ok(Some(b"body".to_vec())) });
        assert!(held.take("b").await.is_none(), "nothing held under b");
        let got = held.take("a").await.expect("held").expect("fetched");
        assert_eq!(got.as_deref(), Some(&b"body"[..]));
        assert!(held.take("a").await.is_none(), "taken twice");
    }

    #[tokio::test]
    async fn dropping_the_last_clone_aborts_what_is_still_running() {
        let held = Held::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(Arc::clone(&dropped));
        let (_never, rx) = tokio::sync::oneshot::channel::<()>();
        held.hold("slow".into(), async move {
            let _guard = guard;
            let _ = rx.await;
            Ok(None)
        });
        let weak = held.downgrade();
        let copy = held.clone();
        drop(held);
        assert!(weak.upgrade().is_some(), "a clone still holds it");
        drop(copy);
        assert!(weak.upgrade().is_none());
        // The abort takes effect when the runtime next polls the task.
        for _ in 0..100 {
            if dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(dropped.load(Ordering::SeqCst), "the fetch kept running");
    }
}
