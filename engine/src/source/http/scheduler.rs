//! The fetch scheduler's decisions for one host: how many requests may be in flight.
//!
//! Pure logic, no I/O and no clock of its own: every call is given `now`, so tests drive
//! it with a fake clock (`gate.rs` feeds it the real one). The window starts small
//! ([`Limits::initial`]), and is judged in epochs of at least `2 × limit` completions
//! (about a round trip's worth at full window): an epoch in which the window was full
//! (some request had to wait for a slot) measures bytes/s and completions/s. The window
//! grows (doubling at first, by a quarter after a back-off) while either rate beats the
//! rate measured at the previous window by [`GAIN`]; when neither does, it steps back to
//! the previous window (a larger one that buys nothing only loads the server) and holds.
//! After [`PROBE_EPOCHS`] epochs without gain it probes one step higher (links change).
//! An error, a 429 or a 503 halves the window (once per round: failures of requests
//! started before the last cut are not counted again) and a `Retry-After` holds back
//! every new request of the host until it passes. The window that failed is a ceiling
//! afterwards: growth stops just below it, and only a probe (after [`PROBE_EPOCHS`]
//! epochs without gain) tries it again, so an overloaded server sees a few refusals per
//! probe rather than per round. The window stays within
//! [`Limits::min`] and the bound of the protocol: [`Limits::max_http1`] until a
//! response shows HTTP/2, [`Limits::max_http2`] after.
//!
//! Requests wait in one of two [`Lane`]s: a slot that frees goes to a waiting
//! [`Lane::Urgent`] request (small metadata the caller needs before it can ask for more,
//! such as the dirtrees of an object walk) before any [`Lane::Bulk`] one (file objects,
//! delta parts), so that discovering work is never queued behind a window of downloads.
//! The window is shared: urgent requests never take more slots than it has.

use std::time::{Duration, Instant};

/// A rate must beat the previous window's by this factor to count as growth.
pub(super) const GAIN: f64 = 1.10;
/// Epochs without gain after which the scheduler probes one step higher.
pub(super) const PROBE_EPOCHS: u32 = 8;
/// Completions an epoch needs at least, whatever the window.
pub(super) const MIN_SAMPLES: u64 = 16;
/// An epoch lasts at least this long (rates over shorter spans are noise).
const MIN_EPOCH: Duration = Duration::from_millis(10);

/// The window's bounds for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Requests in flight at first (unless a remembered value says otherwise).
    pub(crate) initial: usize,
    /// Never fewer than this (at least 1).
    pub(crate) min: usize,
    /// At most this many over HTTP/1.1 (one connection each).
    pub(crate) max_http1: usize,
    /// At most this many over HTTP/2 (streams multiplexed on one connection).
    pub(crate) max_http2: usize,
}

impl Limits {
    /// The limits with `min <= initial <= max` made to hold.
    fn normalized(self) -> Limits {
        let min = self.min.max(1);
        let max_http1 = self.max_http1.max(min);
        let max_http2 = self.max_http2.max(min);
        Limits {
            initial: self.initial.clamp(min, max_http1.max(max_http2)),
            min,
            max_http1,
            max_http2,
        }
    }
}

/// How a request that held a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered (any final answer, 404 included) with this many body bytes.
    Done(u64),
    /// 429 or 503: the server is overloaded; hold back for the `Retry-After`, if any.
    Overloaded(Option<Duration>),
    /// A connection error, a stall, another 5xx.
    Failed,
    /// The caller gave up on it (dropped the body): says nothing about the link.
    Abandoned,
}

/// Why a request cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Every slot is taken: wait for one to free.
    Full,
    /// The server asked to hold back until then (`Retry-After`).
    Until(Instant),
}

/// Which queue a request waits in for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Served first: a bulk request does not take a slot an urgent one is waiting for.
    Urgent,
    /// Served when no urgent request waits.
    Bulk,
}

/// Rates measured over one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    bytes: f64,
    completions: f64,
}

impl Rate {
    /// Whether either rate beats `other`'s by `factor`.
    fn beats(self, other: Rate, factor: f64) -> bool {
        self.bytes > other.bytes * factor || self.completions > other.completions * factor
    }
}

/// The requests an epoch saw.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    start: Instant,
    completions: u64,
    bytes: u64,
    /// Some request found every slot taken (the window, not the demand, was the limit).
    saturated: bool,
}

impl Epoch {
    fn new(start: Instant) -> Epoch {
        Epoch {
            start,
            completions: 0,
            bytes: 0,
            saturated: false,
        }
    }
}

/// One host's window. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub(crate) struct Scheduler {
    limits: Limits,
    limit: usize,
    in_flight: usize,
    http2: bool,
    epoch: Epoch,
    /// The rate measured at `reference_limit`, to which the current window is compared.
    reference: Option<(Rate, usize)>,
    /// Epochs since the last gain.
    flat: u32,
    /// When the window was last cut (failures of requests started before do not count).
    cut_at: Option<Instant>,
    /// No request starts before this (`Retry-After`).
    blocked_until: Option<Instant>,
    /// After a cut the window grows by steps of a quarter instead of doubling.
    recovering: bool,
    /// The window at the last cut: growth stops below it until a probe.
    ceiling: Option<usize>,
    /// The window to start from once HTTP/2 is seen (the remembered one may be above
    /// the HTTP/1.1 bound, which applies until the protocol is known).
    start: usize,
    /// Urgent requests waiting for a slot (bulk ones leave that many free slots to them).
    urgent_waiting: usize,
}

impl Scheduler {
    /// A window within `limits`, starting at `remembered` (what an earlier pull learned
    /// for this host, clamped to the limits) or at [`Limits::initial`].
    pub(crate) fn new(limits: Limits, remembered: Option<usize>, now: Instant) -> Scheduler {
        let limits = limits.normalized();
        let start = remembered
            .unwrap_or(limits.initial)
            .clamp(limits.min, limits.max_http1.max(limits.max_http2));
        Scheduler {
            limits,
            limit: start.min(limits.max_http1),
            in_flight: 0,
            http2: false,
            epoch: Epoch::new(now),
            reference: None,
            flat: 0,
            cut_at: None,
            blocked_until: None,
            recovering: false,
            ceiling: None,
            start,
            urgent_waiting: 0,
        }
    }

    /// Requests allowed in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Requests in flight now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The bound of the protocol seen so far.
    pub(crate) fn bound(&self) -> usize {
        if self.http2 {
            self.limits.max_http2
        } else {
            self.limits.max_http1
        }
    }

    /// Records which protocol the host answered with: its bound applies from now on
    /// (until then, the HTTP/1.1 one). The first HTTP/2 answer lifts the window to the
    /// start it was given, if the HTTP/1.1 bound held it lower.
    pub(crate) fn set_http2(&mut self, http2: bool) {
        if http2 && !self.http2 && self.cut_at.is_none() {
            self.limit = self.limit.max(self.start.min(self.limits.max_http2));
        }
        self.http2 = http2;
        self.limit = self.limit.min(self.bound());
    }

    /// Takes a slot for a bulk request (see [`Scheduler::try_start_in`]).
    #[cfg(test)]
    pub(crate) fn try_start(&mut self, now: Instant) -> Result<Instant, Wait> {
        self.try_start_in(now, Lane::Bulk)
    }

    /// Takes a slot for a request of `lane`, or says why not: a bulk request leaves a
    /// free slot to each urgent one waiting ([`Scheduler::urgent_waits`]). `Ok` carries
    /// the start time to give back to [`Scheduler::finish`].
    pub(crate) fn try_start_in(&mut self, now: Instant, lane: Lane) -> Result<Instant, Wait> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(Wait::Until(until));
            }
            self.blocked_until = None;
        }
        let full = match lane {
            Lane::Urgent => self.in_flight >= self.urgent_limit(),
            Lane::Bulk => self.in_flight.saturating_add(self.urgent_waiting) >= self.limit,
        };
        if full {
            self.epoch.saturated = true;
            return Err(Wait::Full);
        }
        self.in_flight += 1;
        Ok(now)
    }

    /// Counts an urgent request that starts (`true`) or stops (`false`) waiting for a
    /// slot.
    pub(crate) fn urgent_waits(&mut self, waiting: bool) {
        self.urgent_waiting = if waiting {
            self.urgent_waiting.saturating_add(1)
        } else {
            self.urgent_waiting.saturating_sub(1)
        };
    }

    /// Slots urgent requests may hold: up to the protocol's bound until the first cut,
    /// the window after.
    fn urgent_limit(&self) -> usize {
        if self.cut_at.is_none() {
            self.bound().max(self.limit)
        } else {
            self.limit
        }
    }

    /// Waiters worth waking now: (urgent, bulk), one per slot each could take.
    pub(crate) fn wakeable(&self) -> (usize, usize) {
        let urgent = self
            .urgent_limit()
            .saturating_sub(self.in_flight)
            .min(self.urgent_waiting);
        let bulk = self
            .limit
            .saturating_sub(self.in_flight.saturating_add(self.urgent_waiting));
        (urgent, bulk)
    }

    /// Gives back the slot of a request started at `started`, and learns from how it
    /// ended.
    pub(crate) fn finish(&mut self, now: Instant, started: Instant, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Done(bytes) => {
                self.epoch.completions += 1;
                self.epoch.bytes = self.epoch.bytes.saturating_add(bytes);
                self.maybe_judge(now);
            }
            Outcome::Overloaded(retry_after) => {
                if let Some(wait) = retry_after {
                    let until = now + wait;
                    self.blocked_until = Some(self.blocked_until.map_or(until, |u| u.max(until)));
                }
                self.cut(now, started);
            }
            Outcome::Failed => self.cut(now, started),
            Outcome::Abandoned => {}
        }
    }

    /// Halves the window, unless it was cut after this request started.
    fn cut(&mut self, now: Instant, started: Instant) {
        if self.cut_at.is_some_and(|at| started < at) {
            return;
        }
        self.ceiling = Some(self.limit);
        self.limit = (self.limit / 2).max(self.limits.min);
        self.cut_at = Some(now);
        self.recovering = true;
        self.reference = None;
        self.flat = 0;
        self.epoch = Epoch::new(now);
    }

    /// Ends the epoch when it has enough samples, and moves the window.
    fn maybe_judge(&mut self, now: Instant) {
        let needed = u64::try_from(self.limit.saturating_mul(2))
            .unwrap_or(u64::MAX)
            .max(MIN_SAMPLES);
        let elapsed = now.saturating_duration_since(self.epoch.start);
        if self.epoch.completions < needed || elapsed < MIN_EPOCH {
            return;
        }
        let epoch = std::mem::replace(&mut self.epoch, Epoch::new(now));
        if !epoch.saturated {
            // The demand, not the window, was the limit: nothing learned.
            return;
        }
        let secs = elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = Rate {
            bytes: epoch.bytes as f64 / secs,
            completions: epoch.completions as f64 / secs,
        };
        match self.reference {
            None => {
                self.reference = Some((rate, self.limit));
                self.grow();
            }
            Some((reference, _)) if rate.beats(reference, GAIN) => {
                self.reference = Some((rate, self.limit));
                self.flat = 0;
                self.grow();
            }
            Some((_, reference_limit)) => {
                self.flat += 1;
                if self.limit > reference_limit {
                    self.limit = reference_limit;
                }
                if self.flat >= PROBE_EPOCHS {
                    self.flat = 0;
                    self.reference = Some((rate, self.limit));
                    self.recovering = true;
                    self.ceiling = None;
                    self.grow();
                }
            }
        }
    }

    fn grow(&mut self) {
        let mut next = if self.recovering {
            self.limit.saturating_add((self.limit / 4).max(1))
        } else {
            self.limit.saturating_mul(2)
        };
        if let Some(ceiling) = self.ceiling {
            next = next.min(ceiling.saturating_sub(1));
        }
        self.limit = next.min(self.bound()).max(self.limits.min).max(self.limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        initial: 8,
        min: 1,
        max_http1: 64,
        max_http2: 128,
    };

    /// A fake clock and a model link: `rtt` per request, and a rate cap (bytes/s) that
    /// stretches a window's round when its bytes exceed it.
    struct Link {
        now: Instant,
        rtt: Duration,
        bytes_per_sec: f64,
        object: u64,
    }

    impl Link {
        fn new(rtt_ms: u64, mbit: f64, object: u64) -> Link {
            Link {
                now: Instant::now(),
                rtt: Duration::from_millis(rtt_ms),
                bytes_per_sec: mbit * 1e6 / 8.0,
                object,
            }
        }

        /// One round with the window full and more demand waiting: starts `limit`
        /// requests, one more finds the window full, and all complete after the round,
        /// which lasts the round trip or the time the bytes take, whichever is longer.
        fn round(&mut self, s: &mut Scheduler) {
            let n = s.limit();
            let mut started = Vec::new();
            for _ in 0..n {
                started.push(s.try_start(self.now).expect("a free slot"));
            }
            assert_eq!(s.try_start(self.now), Err(Wait::Full));
            #[allow(clippy::cast_precision_loss)]
            let transfer = (n as u64 * self.object) as f64 / self.bytes_per_sec;
            let round = self.rtt.max(Duration::from_secs_f64(transfer));
            let step = round / u32::try_from(n).unwrap();
            for t in started {
                self.now += step;
                s.finish(self.now, t, Outcome::Done(self.object));
            }
        }

        fn rounds(&mut self, s: &mut Scheduler, count: usize) -> Vec<usize> {
            (0..count)
                .map(|_| {
                    self.round(s);
                    s.limit()
                })
                .collect()
        }
    }

    #[test]
    fn grows_while_throughput_grows_up_to_the_bound() {
        // 40 ms round trips and a fast link: more in flight is always faster.
        let mut link = Link::new(40, 10_000.0, 10_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        assert_eq!(s.limit(), 8);
        let limits = link.rounds(&mut s, 40);
        assert!(limits.windows(2).all(|w| w[1] >= w[0]), "{limits:?}");
        assert!(limits.contains(&16) && limits.contains(&32), "{limits:?}");
        assert_eq!(s.limit(), 64, "{limits:?}");
        // Never past the HTTP/1.1 bound.
        assert!(limits.iter().all(|&l| l <= 64));
    }

    #[test]
    fn stops_growing_when_throughput_stops_growing() {
        // 40 ms and 100 Mbit/s with 100 kB objects: the bytes fill the link from
        // 5 objects per round on, so doubling past 8 buys nothing.
        let mut link = Link::new(40, 100.0, 100_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        let limits = link.rounds(&mut s, 6);
        // The first judged epoch grows once to probe, then holds or steps back.
        assert!(
            limits.iter().all(|&l| l <= 16),
            "grew on a full link: {limits:?}"
        );
        assert_eq!(
            s.limit(),
            8,
            "did not step back to the window that filled the link: {limits:?}"
        );
    }

    #[test]
    fn plateau_probes_again_after_some_epochs() {
        let mut link = Link::new(40, 100.0, 100_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        let limits = link.rounds(&mut s, 60);
        // Probes happen (a step above 8) but never run away on a full link.
        assert!(limits.iter().any(|&l| l > 8), "{limits:?}");
        assert!(limits.iter().all(|&l| l <= 16), "{limits:?}");
    }

    #[test]
    fn not_judged_when_the_window_was_not_full() {
        let mut link = Link::new(40, 10_000.0, 10_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        // Four requests at a time: never saturated, never grows.
        for _ in 0..50 {
            let started: Vec<_> = (0..4).map(|_| s.try_start(link.now).unwrap()).collect();
            link.now += link.rtt;
            for t in started {
                s.finish(link.now, t, Outcome::Done(1000));
            }
        }
        assert_eq!(s.limit(), 8);
    }

    #[test]
    fn errors_and_overload_halve_once_per_round() {
        let mut link = Link::new(40, 10_000.0, 10_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        link.rounds(&mut s, 40);
        assert_eq!(s.limit(), 64);
        // A whole window of requests, started together, fails: one cut only.
        let started: Vec<_> = (0..64).map(|_| s.try_start(link.now).unwrap()).collect();
        link.now += link.rtt;
        for t in &started {
            s.finish(link.now, *t, Outcome::Overloaded(None));
        }
        assert_eq!(s.limit(), 32);
        assert_eq!(s.in_flight(), 0);
        // A request started after the cut that fails cuts again.
        let t = s.try_start(link.now).unwrap();
        link.now += link.rtt;
        s.finish(link.now, t, Outcome::Failed);
        assert_eq!(s.limit(), 16);
        // Never below the minimum.
        for _ in 0..10 {
            let t = s.try_start(link.now).unwrap();
            link.now += link.rtt;
            s.finish(link.now, t, Outcome::Failed);
        }
        assert_eq!(s.limit(), 1);
    }

    #[test]
    fn retry_after_holds_back_every_request() {
        let mut link = Link::new(40, 10_000.0, 10_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        let t = s.try_start(link.now).unwrap();
        s.finish(
            link.now,
            t,
            Outcome::Overloaded(Some(Duration::from_secs(2))),
        );
        let until = link.now + Duration::from_secs(2);
        assert_eq!(s.try_start(link.now), Err(Wait::Until(until)));
        link.now += Duration::from_millis(1999);
        assert_eq!(s.try_start(link.now), Err(Wait::Until(until)));
        link.now += Duration::from_millis(1);
        assert!(s.try_start(link.now).is_ok());
    }

    #[test]
    fn recovers_after_back_off_in_smaller_steps() {
        let mut link = Link::new(40, 10_000.0, 10_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        link.rounds(&mut s, 40);
        let t = s.try_start(link.now).unwrap();
        s.finish(link.now, t, Outcome::Failed);
        assert_eq!(s.limit(), 32);
        let limits = link.rounds(&mut s, 20);
        // Grows back, by quarters (32 → 40 → 50 → 62), not by doubling, and stays
        // below the window that failed...
        assert!(limits.contains(&40) && limits.contains(&50), "{limits:?}");
        assert!(limits.iter().all(|&l| l < 64), "{limits:?}");
        // ...until a probe tries it again.
        let later = link.rounds(&mut s, 40);
        assert!(later.contains(&64), "{later:?}");
    }

    #[test]
    fn an_overloaded_server_sees_few_refusals() {
        // A server that refuses whatever is in flight beyond 12.
        let mut link = Link::new(20, 10_000.0, 10_000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        let (mut refused, mut served) = (0u64, 0u64);
        for _ in 0..400 {
            let n = s.limit();
            let started: Vec<_> = (0..n).map(|_| s.try_start(link.now).unwrap()).collect();
            let _ = s.try_start(link.now);
            let step = link.rtt / u32::try_from(n).unwrap();
            for (i, t) in started.into_iter().enumerate() {
                link.now += step;
                if i < 12 {
                    served += 1;
                    s.finish(link.now, t, Outcome::Done(10_000));
                } else {
                    refused += 1;
                    s.finish(link.now, t, Outcome::Overloaded(None));
                }
            }
            assert!(
                s.limit() <= 16,
                "window {} over an overloaded server",
                s.limit()
            );
        }
        assert!(refused > 0);
        assert!(
            refused * 50 < served,
            "{refused} refused for {served} served"
        );
    }

    #[test]
    fn urgent_requests_go_first_and_beyond_the_window_only_while_it_ramps() {
        let now = Instant::now();
        let limits = Limits {
            initial: 2,
            min: 1,
            max_http1: 4,
            max_http2: 4,
        };
        let mut s = Scheduler::new(limits, None, now);
        let a = s.try_start_in(now, Lane::Bulk).unwrap();
        let b = s.try_start_in(now, Lane::Bulk).unwrap();
        assert_eq!(s.try_start_in(now, Lane::Bulk), Err(Wait::Full));
        // Before any cut, urgent requests use the slots up to the bound.
        let u1 = s.try_start_in(now, Lane::Urgent).unwrap();
        let u2 = s.try_start_in(now, Lane::Urgent).unwrap();
        assert_eq!(s.try_start_in(now, Lane::Urgent), Err(Wait::Full));
        assert_eq!(s.in_flight(), 4);
        // After a failure they are held to the (halved) window like the others.
        s.finish(now, a, Outcome::Failed);
        assert_eq!(s.limit(), 1);
        s.finish(now, b, Outcome::Done(10));
        s.finish(now, u1, Outcome::Done(10));
        assert_eq!(s.try_start_in(now, Lane::Urgent), Err(Wait::Full));
        s.urgent_waits(true);
        s.finish(now, u2, Outcome::Done(10));
        // The freed slot is the waiting urgent request's: a bulk one must not take it.
        assert_eq!(s.wakeable(), (1, 0));
        assert_eq!(s.try_start_in(now, Lane::Bulk), Err(Wait::Full));
        let u3 = s.try_start_in(now, Lane::Urgent).unwrap();
        s.urgent_waits(false);
        assert_eq!(s.wakeable(), (0, 0));
        // With no urgent request waiting, bulk ones take free slots again.
        s.finish(now, u3, Outcome::Done(10));
        assert_eq!(s.wakeable(), (0, 1));
        assert!(s.try_start_in(now, Lane::Bulk).is_ok());
    }

    #[test]
    fn http2_raises_the_bound_and_http1_lowers_it() {
        let mut link = Link::new(40, 100_000.0, 1000);
        let mut s = Scheduler::new(LIMITS, None, link.now);
        s.set_http2(true);
        link.rounds(&mut s, 60);
        assert_eq!(s.limit(), 128);
        s.set_http2(false);
        assert_eq!(s.limit(), 64);
    }

    #[test]
    fn remembered_window_is_the_start_within_bounds() {
        let now = Instant::now();
        assert_eq!(Scheduler::new(LIMITS, Some(48), now).limit(), 48);
        // The HTTP/1.1 bound holds until an answer shows HTTP/2.
        let mut s = Scheduler::new(LIMITS, Some(1000), now);
        assert_eq!(s.limit(), 64);
        s.set_http2(true);
        assert_eq!(s.limit(), 128);
        assert_eq!(Scheduler::new(LIMITS, Some(0), now).limit(), 1);
        // A configured HTTP/1.1 bound below the initial window caps it.
        let small = Limits {
            initial: 8,
            min: 1,
            max_http1: 2,
            max_http2: 128,
        };
        let mut s = Scheduler::new(small, None, now);
        assert_eq!(s.limit(), 2);
        assert!(s.try_start(now).is_ok() && s.try_start(now).is_ok());
        assert_eq!(s.try_start(now), Err(Wait::Full));
    }
}
