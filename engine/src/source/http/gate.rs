//! The fetch scheduler at work: a [`Gate`] per host (`host:port`) hands out [`Slot`]s
//! under the window its [`Scheduler`] decides, and each slot, when its request ends,
//! tells the scheduler how (bytes received, overload, failure). [`Gates`] keeps the
//! gates of a source and what they learned: with [`SourceOptions::scheduler_dir`] set,
//! the window each host ended with is written to [`MEMORY_FILE`] there when the source
//! is dropped, and a later source starts from it.
//!
//! The memory file has one line per host, `WINDOW HOST:PORT`; unreadable lines are
//! skipped, values are clamped to the limits, and at most [`MAX_REMEMBERED`] hosts are
//! kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use reqwest::Url;
use tokio::sync::Notify;

use super::scheduler::{Lane, Limits, Outcome, Scheduler, Wait};
use crate::source::{FetchError, SourceOptions};

/// The file in [`SourceOptions::scheduler_dir`] holding the learned windows.
pub(super) const MEMORY_FILE: &str = "fetch-windows";
/// Hosts remembered at most (and the size the file is read up to).
const MAX_REMEMBERED: usize = 256;
const MAX_MEMORY_SIZE: u64 = 64 * 1024;

/// One host's window and the requests waiting for it, in two lanes.
#[derive(Debug)]
pub(super) struct Gate {
    /// `host:port`, for the log.
    host: String,
    scheduler: Mutex<Scheduler>,
    /// Bulk requests waiting for a slot.
    notify: Notify,
    /// Urgent requests waiting for a slot (served first).
    notify_urgent: Notify,
}

/// An urgent request counted as waiting; uncounted when dropped (taken a slot, or given
/// up), waking whoever can use the slot it no longer claims.
struct UrgentWait<'g> {
    gate: &'g Gate,
}

impl Drop for UrgentWait<'_> {
    fn drop(&mut self) {
        self.gate.lock().urgent_waits(false);
        self.gate.wake();
    }
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Scheduler> {
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot in `lane` (or for cancellation).
    pub(super) async fn acquire(
        self: &Arc<Self>,
        lane: Lane,
        cancel: Option<&crate::progress::Cancel>,
    ) -> Result<Slot, FetchError> {
        let mut counted: Option<UrgentWait<'_>> = None;
        loop {
            let notify = match lane {
                Lane::Urgent => &self.notify_urgent,
                Lane::Bulk => &self.notify,
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let tried = {
                let mut s = self.lock();
                let tried = s.try_start_in(Instant::now(), lane);
                if tried == Err(Wait::Full) && lane == Lane::Urgent && counted.is_none() {
                    s.urgent_waits(true);
                    counted = Some(UrgentWait { gate: self });
                }
                tried
            };
            let until = match tried {
                Ok(started) => {
                    // No longer waiting (wakes others only if slots are still free).
                    drop(counted.take());
                    return Ok(Slot {
                        gate: Arc::clone(self),
                        started,
                        settled: false,
                    });
                }
                Err(Wait::Full) => None,
                Err(Wait::Until(t)) => Some(t),
            };
            let wait = async {
                match until {
                    Some(t) => {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
                    }
                    None => notified.await,
                }
            };
            match cancel {
                Some(token) => tokio::select! {
                    () = token.cancelled() => return Err(FetchError::Cancelled),
                    () = wait => {}
                },
                None => wait.await,
            }
        }
    }

    /// Wakes one waiter per slot it could take, urgent ones first.
    fn wake(&self) {
        let (urgent, bulk) = self.lock().wakeable();
        for _ in 0..urgent {
            self.notify_urgent.notify_one();
        }
        for _ in 0..bulk {
            self.notify.notify_one();
        }
    }

    fn finish(&self, started: Instant, outcome: Outcome) {
        {
            let mut s = self.lock();
            let before = s.limit();
            s.finish(Instant::now(), started, outcome);
            if s.limit() != before {
                tracing::debug!(host = %self.host, from = before, to = s.limit(), ?outcome, "fetch window");
            }
        }
        // One waiter per free slot (a grown window frees more than the one given back).
        self.wake();
    }

    /// The window now.
    pub(super) fn limit(&self) -> usize {
        self.lock().limit()
    }
}

/// A request's place in its host's window, given back when the request ends: through
/// [`Slot::finish`] with how it ended, or by dropping it (the caller gave up: counts as
/// neither success nor failure).
#[derive(Debug)]
pub(super) struct Slot {
    gate: Arc<Gate>,
    started: Instant,
    settled: bool,
}

impl Slot {
    /// Gives the slot back, telling the scheduler how the request ended.
    pub(super) fn finish(mut self, outcome: Outcome) {
        self.settled = true;
        self.gate.finish(self.started, outcome);
    }

    /// Records the protocol the host answered with (its bound applies).
    pub(super) fn note_http2(&self, http2: bool) {
        self.gate.lock().set_http2(http2);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.settled {
            self.gate.finish(self.started, Outcome::Abandoned);
        }
    }
}

/// The gates of one source, by `host:port`, and the memory of earlier pulls.
#[derive(Debug)]
pub(super) struct Gates {
    limits: Limits,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    remembered: HashMap<String, usize>,
    dir: Option<PathBuf>,
}

impl Gates {
    /// Gates under the limits of `options`, remembering in its `scheduler_dir`.
    pub(super) fn new(options: &SourceOptions) -> Gates {
        let dir = options.scheduler_dir.clone();
        let remembered = dir.as_deref().map(read_memory).unwrap_or_default();
        Gates {
            limits: limits(options),
            gates: Mutex::default(),
            remembered,
            dir,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Gate>>> {
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The gate of `url`'s host.
    pub(super) fn gate(&self, url: &Url) -> Arc<Gate> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let mut map = self.map();
        if let Some(g) = map.get(&key) {
            return Arc::clone(g);
        }
        let remembered = self.remembered.get(&key).copied();
        let gate = Arc::new(Gate {
            host: key.clone(),
            scheduler: Mutex::new(Scheduler::new(self.limits, remembered, Instant::now())),
            notify: Notify::new(),
            notify_urgent: Notify::new(),
        });
        map.insert(key, Arc::clone(&gate));
        gate
    }

    /// Requests worth keeping ready for the gates: twice the windows (so that each
    /// window can fill, and grow), and twice the initial window before any request.
    pub(super) fn wanted(&self) -> usize {
        let map = self.map();
        if map.is_empty() {
            return self.limits.initial.saturating_mul(2);
        }
        map.values()
            .map(|g| g.limit())
            .fold(0usize, usize::saturating_add)
            .saturating_mul(2)
    }

    /// Writes the windows learned (merged with what was remembered) to the memory
    /// file, if there is one. Failures are logged: the memory is an optimisation.
    pub(super) fn save(&self) {
        let Some(dir) = &self.dir else { return };
        let mut all = self.remembered.clone();
        for (key, gate) in self.map().iter() {
            all.insert(key.clone(), gate.limit());
        }
        if all == self.remembered {
            // Nothing learned (e.g. an update check of two requests): no write.
            return;
        }
        if let Err(e) = write_memory(dir, &all) {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot save the fetch windows");
        }
    }
}

/// The scheduler's limits from `options`.
pub(super) fn limits(options: &SourceOptions) -> Limits {
    let max_http1 = options.max_connections_per_host.max(1);
    Limits {
        initial: options.initial_in_flight.max(1),
        min: 1,
        max_http1,
        max_http2: if options.http2 {
            options.max_streams_per_host.max(1)
        } else {
            max_http1
        },
    }
}

fn read_memory(dir: &Path) -> HashMap<String, usize> {
    use std::io::Read;
    let mut text = String::new();
    let read = std::fs::File::open(dir.join(MEMORY_FILE))
        .and_then(|f| f.take(MAX_MEMORY_SIZE).read_to_string(&mut text));
    if read.is_err() {
        return HashMap::new();
    }
    text.lines()
        .filter_map(|line| {
            let (window, host) = line.trim().split_once(' ')?;
            let window = window.parse::<usize>().ok()?;
            let host = host.trim();
            (!host.is_empty() && host.len() <= 300).then(|| (host.to_owned(), window))
        })
        .take(MAX_REMEMBERED)
        .collect()
}

fn write_memory(dir: &Path, all: &HashMap<String, usize>) -> std::io::Result<()> {
    use std::io::Write;
    let mut lines: Vec<String> = all
        .iter()
        .filter(|(host, _)| !host.contains(['\n', ' ']))
        .map(|(host, window)| format!("{window} {host}\n"))
        .collect();
    lines.sort();
    lines.truncate(MAX_REMEMBERED);
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(lines.concat().as_bytes())?;
    tmp.persist(dir.join(MEMORY_FILE)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_round_trips_and_skips_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let mut all = HashMap::new();
        all.insert("example.com:443".to_owned(), 48);
        all.insert("mirror:80".to_owned(), 12);
        write_memory(tmp.path(), &all).unwrap();
        assert_eq!(read_memory(tmp.path()), all);
        std::fs::write(
            tmp.path().join(MEMORY_FILE),
            "x y\n\n17 a:1\n99999999999999999999999 b:2\n5\n",
        )
        .unwrap();
        let got = read_memory(tmp.path());
        assert_eq!(got.len(), 1);
        assert_eq!(got["a:1"], 17);
        assert!(read_memory(&tmp.path().join("missing")).is_empty());
    }

    #[tokio::test]
    async fn a_gate_starts_from_memory_and_saves_what_it_learned() {
        let tmp = tempfile::tempdir().unwrap();
        let mut options = SourceOptions::libostree();
        options.max_connections_per_host = 64;
        options.scheduler_dir = Some(tmp.path().to_owned());
        std::fs::write(tmp.path().join(MEMORY_FILE), "40 h:80\n").unwrap();
        let gates = Gates::new(&options);
        let url = Url::parse("http://h/repo").unwrap();
        let gate = gates.gate(&url);
        assert_eq!(gate.limit(), 40);
        // A failure halves the window; the halved window is what is remembered.
        let slot = gate.acquire(Lane::Bulk, None).await.unwrap();
        slot.finish(Outcome::Failed);
        assert_eq!(gate.limit(), 20);
        gates.save();
        let text = std::fs::read_to_string(tmp.path().join(MEMORY_FILE)).unwrap();
        assert_eq!(text, "20 h:80\n");
        // Without a directory nothing is read or written.
        options.scheduler_dir = None;
        let gates = Gates::new(&options);
        assert_eq!(gates.gate(&url).limit(), 8);
        gates.save();
    }

    #[tokio::test]
    async fn waiters_get_the_slots_given_back() {
        let mut options = SourceOptions::libostree();
        options.initial_in_flight = 2;
        options.max_connections_per_host = 2;
        let gates = Gates::new(&options);
        let gate = gates.gate(&Url::parse("http://h/").unwrap());
        let a = gate.acquire(Lane::Bulk, None).await.unwrap();
        let b = gate.acquire(Lane::Bulk, None).await.unwrap();
        let waiting = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.acquire(Lane::Bulk, None).await.map(|s| s.started) })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        a.finish(Outcome::Done(10));
        waiting.await.unwrap().unwrap();
        drop(b);
        assert_eq!(gate.lock().in_flight(), 0);
    }

    #[tokio::test]
    async fn an_urgent_request_overtakes_bulk_ones_waiting_before_it() {
        let mut options = SourceOptions::libostree();
        options.initial_in_flight = 1;
        options.max_connections_per_host = 1;
        let gates = Gates::new(&options);
        let gate = gates.gate(&Url::parse("http://h/").unwrap());
        let held = gate.acquire(Lane::Bulk, None).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |lane: Lane, name: &'static str| {
            let (gate, order) = (Arc::clone(&gate), Arc::clone(&order));
            tokio::spawn(async move {
                let slot = gate.acquire(lane, None).await.unwrap();
                order.lock().unwrap().push(name);
                tokio::task::yield_now().await;
                slot.finish(Outcome::Done(1));
            })
        };
        let bulk = spawn(Lane::Bulk, "bulk");
        tokio::task::yield_now().await;
        let urgent = spawn(Lane::Urgent, "urgent");
        tokio::task::yield_now().await;
        assert_eq!(gate.lock().wakeable(), (0, 0));
        held.finish(Outcome::Done(1));
        bulk.await.unwrap();
        urgent.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["urgent", "bulk"]);
        assert_eq!(gate.lock().in_flight(), 0);
        // A waiting urgent request that gives up frees its claim for bulk ones.
        let held = gate.acquire(Lane::Bulk, None).await.unwrap();
        let gave_up = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.acquire(Lane::Urgent, None).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        gave_up.abort();
        let _ = gave_up.await;
        held.finish(Outcome::Done(1));
        gate.acquire(Lane::Bulk, None)
            .await
            .unwrap()
            .finish(Outcome::Done(1));
    }
}
