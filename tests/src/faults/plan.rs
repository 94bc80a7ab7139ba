//! The plan a [`FaultServer`](super::FaultServer) follows: [`Rule`]s over path patterns
//! and request counts, the seeded [`Random`] mode, and the log of what each request got.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What goes wrong with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with an empty body (500, 502, 503, 403, …).
    Status(u16),
    /// Answer this status (429 or 503) with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Declare the full length, send only this many body bytes, then close (FIN).
    Truncate(usize),
    /// Send this many body bytes, then reset the connection (RST).
    Reset(usize),
    /// Serve the file with the byte at this offset (modulo the length) inverted.
    Flip(usize),
    /// Read the request and never answer (until the client hangs up or the server stops).
    StallHeaders,
    /// Send the headers and this many body bytes, then nothing more.
    StallBody(usize),
    /// Send the body in `pieces` writes (of at least one byte), pausing `every` after
    /// each: slow but moving.
    Drip {
        /// How many writes.
        pieces: usize,
        /// Pause after each write.
        every: Duration,
    },
    /// Declare a `Content-Length` off by this much from the real length, send the real
    /// body (all of it, or as much as was declared when that is less), then close.
    LieLength(i64),
    /// Redirect (302) to the same URL, for ever.
    RedirectLoop,
    /// Declare this `Content-Length` and send zeros until the client hangs up.
    Huge(u64),
    /// A chunked body of zeros that never ends (until the client hangs up).
    Endless,
    /// Serve these bytes instead of the file (a stale summary, another repository's
    /// object).
    Body(Vec<u8>),
    /// Serve the content of this file instead (another repository's object).
    File(PathBuf),
}

impl Fault {
    /// A short name for logs and matrices.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Fault::Status(s) => format!("status-{s}"),
            Fault::RetryAfter(s, secs) => format!("status-{s}-retry-after-{secs}"),
            Fault::Truncate(_) => "truncate".into(),
            Fault::Reset(_) => "reset".into(),
            Fault::Flip(_) => "flip".into(),
            Fault::StallHeaders => "stall-headers".into(),
            Fault::StallBody(_) => "stall-body".into(),
            Fault::Drip { .. } => "drip".into(),
            Fault::LieLength(d) if *d > 0 => "length-longer".into(),
            Fault::LieLength(_) => "length-shorter".into(),
            Fault::RedirectLoop => "redirect-loop".into(),
            Fault::Huge(_) => "huge".into(),
            Fault::Endless => "endless".into(),
            Fault::Body(_) => "body".into(),
            Fault::File(_) => "file".into(),
        }
    }
}

/// How a rule counts requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Each matching path has its own count (every object fails its first request).
    PerPath,
    /// One count over every matching request (the third object request fails).
    Total,
}

/// One entry of the plan.
#[derive(Debug, Clone)]
pub struct Rule {
    pattern: String,
    from: u64,
    times: Option<u64>,
    count: Count,
    fault: Fault,
}

impl Rule {
    /// `fault` for every request whose path (without the leading `/`) matches `pattern`.
    #[must_use]
    pub fn new(pattern: &str, fault: Fault) -> Self {
        Self {
            pattern: pattern.trim_start_matches('/').to_owned(),
            from: 1,
            times: None,
            count: Count::PerPath,
            fault,
        }
    }

    /// Starting with the `n`-th matching request (1-based).
    #[must_use]
    pub fn from(mut self, n: u64) -> Self {
        self.from = n.max(1);
        self
    }

    /// For `n` requests only (default: for ever).
    #[must_use]
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Counting over all matching paths together rather than per path.
    #[must_use]
    pub fn total(mut self) -> Self {
        self.count = Count::Total;
        self
    }

    fn applies(&self, k: u64) -> bool {
        k >= self.from && self.times.is_none_or(|t| k < self.from.saturating_add(t))
    }
}

/// How the seeded random mode picks the fault of a request it faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Uniformly from [`Random::faults`], as they are written.
    Uniform,
    /// `faults[(seed + hash(path)) % faults.len()]`: over `faults.len()` consecutive
    /// seeds every path meets every fault once. The byte counts of [`Fault::Truncate`],
    /// [`Fault::Reset`] and [`Fault::StallBody`] are drawn from the seed too (log-uniform
    /// in `0..65536`), and so is the offset of [`Fault::Flip`] (uniform over the body).
    Rotate,
}

/// The seeded random mode.
#[derive(Debug, Clone)]
pub struct Random {
    /// The seed; the same seed gives the same faults for the same requests.
    pub seed: u64,
    /// Chance of a fault per request, in percent.
    pub percent: u64,
    /// The faults drawn from (uniformly).
    pub faults: Vec<Fault>,
    /// Only the first this-many requests of a path may get a fault.
    pub max_per_path: u64,
    /// Only paths matching this pattern get faults.
    pub pattern: String,
    /// How the fault is picked.
    pub pick: Pick,
}

impl Random {
    /// The faults of [`Random::first_request`], one of each kind: 503, 500, a reset and a
    /// truncated body, a flipped byte, a stall before the headers and one in the body.
    #[must_use]
    pub fn first_request_faults() -> Vec<Fault> {
        vec![
            Fault::Status(503),
            Fault::Status(500),
            Fault::Reset(0),
            Fault::Truncate(0),
            Fault::Flip(0),
            Fault::StallHeaders,
            Fault::StallBody(0),
        ]
    }

    /// The first request of every path gets a fault, later ones are clean. The fault is
    /// [`Random::first_request_faults`]`[(seed + hash(path)) % 7]` ([`Pick::Rotate`]), so
    /// seven consecutive seeds give every path every kind; byte counts and flip offsets
    /// are drawn from the seed.
    #[must_use]
    pub fn first_request(seed: u64) -> Self {
        Random {
            seed,
            percent: 100,
            faults: Self::first_request_faults(),
            max_per_path: 1,
            pattern: "*".into(),
            pick: Pick::Rotate,
        }
    }

    /// The fault for the `nth` request of `path`, if this mode gives it one.
    fn draw(&self, path: &str, nth: u64) -> Option<Fault> {
        if nth > self.max_per_path || self.faults.is_empty() || !glob(&self.pattern, path) {
            return None;
        }
        let h = mix(self.seed, path, nth);
        if h % 100 >= self.percent {
            return None;
        }
        let len = self.faults.len() as u64;
        match self.pick {
            Pick::Uniform => {
                let pick = (mix(h, path, nth) % len) as usize;
                self.faults.get(pick).cloned()
            }
            Pick::Rotate => {
                let pick = (self.seed.wrapping_add(mix(0, path, 0)) % len) as usize;
                let p = mix(h, path, nth);
                // Log-uniform byte counts: as many cuts near the start as deep in.
                let bits = (p % 17) as u32;
                let count = usize::try_from((p >> 8) & ((1u64 << bits) - 1)).unwrap_or(0);
                Some(match self.faults.get(pick)?.clone() {
                    Fault::Truncate(_) => Fault::Truncate(count),
                    Fault::Reset(_) => Fault::Reset(count),
                    Fault::StallBody(_) => Fault::StallBody(count),
                    Fault::Flip(_) => Fault::Flip(usize::try_from(p >> 16).unwrap_or(0)),
                    other => other,
                })
            }
        }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The path, without the leading `/`.
    pub path: String,
    /// The how-many-th request of this path.
    pub nth: u64,
    /// The fault it got, if any.
    pub fault: Option<Fault>,
    /// The how-many-th request of its connection (1: the first on a fresh connection).
    pub on_connection: u64,
    /// Whether it asked for no cached answer (`Cache-Control: no-cache`).
    pub no_cache: bool,
    /// When it arrived.
    pub at: Instant,
    /// The status answered: 0 while the answer is being sent, or when the fault
    /// answered none. A 200 with no fault means the whole body was written.
    pub status: u16,
}

/// The rules, the random mode, the request counts they go by, and the log.
#[derive(Debug, Default)]
pub(super) struct Plan {
    rules: Vec<Rule>,
    /// Per rule: count over all paths, and per path.
    rule_total: Vec<u64>,
    rule_paths: Vec<HashMap<String, u64>>,
    pub(super) random: Option<Random>,
    path_counts: HashMap<String, u64>,
    log: Vec<Logged>,
    /// Where [`FaultServer::log`] starts (entries are never removed, so that an answer
    /// in progress can update its own).
    log_start: usize,
}

impl Plan {
    /// Adds a rule after the others.
    pub(super) fn add(&mut self, rule: Rule) {
        self.rules.push(rule);
        self.rule_total.push(0);
        self.rule_paths.push(HashMap::new());
    }

    /// Removes every rule and the random mode, and forgets the counts (not the log).
    pub(super) fn clear(&mut self) {
        self.rules.clear();
        self.rule_total.clear();
        self.rule_paths.clear();
        self.random = None;
        self.path_counts.clear();
    }

    /// The log since the last [`Plan::reset_log`].
    pub(super) fn log(&self) -> Vec<Logged> {
        self.log.get(self.log_start..).unwrap_or_default().to_vec()
    }

    /// Forgets the log (entries stay, so that answers in progress can update their own).
    pub(super) fn reset_log(&mut self) {
        self.log_start = self.log.len();
    }

    /// Decides the fault for a request of `path` (the `on_connection`-th of its
    /// connection, asking for no cached answer if `no_cache`) and logs the request
    /// (status 0 until [`Plan::answered`]); returns its log index and the fault.
    pub(super) fn record(
        &mut self,
        path: &str,
        on_connection: u64,
        no_cache: bool,
    ) -> (usize, Option<Fault>) {
        let (nth, fault) = self.decide(path);
        self.log.push(Logged {
            path: path.to_owned(),
            nth,
            fault: fault.clone(),
            on_connection,
            no_cache,
            at: Instant::now(),
            status: 0,
        });
        (self.log.len() - 1, fault)
    }

    /// Records the status answered to the request logged at `index`.
    pub(super) fn answered(&mut self, index: usize, status: u16) {
        if let Some(l) = self.log.get_mut(index) {
            l.status = status;
        }
    }

    /// The fault for a request of `path` (and records it).
    fn decide(&mut self, path: &str) -> (u64, Option<Fault>) {
        let nth = {
            let c = self.path_counts.entry(path.to_owned()).or_insert(0);
            *c += 1;
            *c
        };
        let mut chosen = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !glob(&rule.pattern, path) {
                continue;
            }
            let k = match rule.count {
                Count::Total => {
                    self.rule_total[i] += 1;
                    self.rule_total[i]
                }
                Count::PerPath => {
                    let c = self.rule_paths[i].entry(path.to_owned()).or_insert(0);
                    *c += 1;
                    *c
                }
            };
            if chosen.is_none() && rule.applies(k) {
                chosen = Some(rule.fault.clone());
            }
        }
        if chosen.is_none()
            && let Some(r) = &self.random
        {
            chosen = r.draw(path, nth);
        }
        (nth, chosen)
    }
}

/// A 64-bit hash of `(seed, path, n)` (FNV-1a then a splitmix finaliser): stable across
/// runs and platforms.
fn mix(seed: u64, path: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in path.bytes().chain(n.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `*` matches any run of characters (including `/`); everything else matches itself.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("objects/*.filez", "objects/ab/cd.filez"));
        assert!(glob("*", "summary"));
        assert!(glob("summary", "summary"));
        assert!(!glob("summary", "summary.sig"));
        assert!(glob("deltas/*/0", "deltas/ab/cd/0"));
        assert!(!glob("deltas/*/0", "deltas/ab/cd/superblock"));
        assert!(glob("*.dirtree", "objects/00/x.dirtree"));
    }

    #[test]
    fn rules_count_per_path_and_in_total() {
        let mut plan = Plan::default();
        for rule in [
            Rule::new("a*", Fault::Status(503)).times(1),
            Rule::new("b*", Fault::Status(500)).from(2).times(1).total(),
        ] {
            plan.rules.push(rule);
            plan.rule_total.push(0);
            plan.rule_paths.push(HashMap::new());
        }
        assert_eq!(plan.decide("a1").1, Some(Fault::Status(503)));
        assert_eq!(plan.decide("a1").1, None);
        assert_eq!(plan.decide("a2").1, Some(Fault::Status(503)));
        assert_eq!(plan.decide("b1").1, None);
        assert_eq!(plan.decide("b2").1, Some(Fault::Status(500)));
        assert_eq!(plan.decide("b3").1, None);
    }

    #[test]
    fn random_mode_depends_on_seed_path_and_count_only() {
        let run = |seed, order: &[&str]| {
            let mut plan = Plan {
                random: Some(Random {
                    seed,
                    percent: 50,
                    faults: vec![Fault::Status(503), Fault::Truncate(3)],
                    max_per_path: 2,
                    pattern: "*".into(),
                    pick: Pick::Uniform,
                }),
                ..Plan::default()
            };
            let mut out: Vec<(String, u64, Option<Fault>)> = order
                .iter()
                .map(|p| {
                    let (n, f) = plan.decide(p);
                    ((*p).to_owned(), n, f)
                })
                .collect();
            out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            out
        };
        let paths: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        let mut order: Vec<&str> = paths.iter().map(String::as_str).collect();
        order.extend(paths.iter().map(String::as_str));
        order.extend(paths.iter().map(String::as_str));
        let a = run(7, &order);
        order.reverse();
        let b = run(7, &order);
        assert_eq!(a, b, "interleaving changed the faults");
        assert_ne!(a, run(8, &order), "the seed changes nothing");
        assert!(a.iter().any(|x| x.2.is_some()) && a.iter().any(|x| x.2.is_none()));
        assert!(a.iter().all(|x| x.1 <= 2 || x.2.is_none()));
    }

    #[test]
    fn first_request_mode_rotates_every_kind_over_every_path() {
        let kinds = Random::first_request_faults().len() as u64;
        let paths = [
            "summary",
            "summary.sig",
            "objects/ab/cd.filez",
            "deltas/x/0",
        ];
        for path in paths {
            let mut seen = std::collections::BTreeSet::new();
            for seed in 5..5 + kinds {
                let mut plan = Plan {
                    random: Some(Random::first_request(seed)),
                    ..Plan::default()
                };
                let first = plan.decide(path).1.expect("the first request is faulted");
                seen.insert(first.name());
                assert_eq!(plan.decide(path).1, None, "{path}: the second is clean");
                // The same seed, the same fault, parameters included.
                let mut again = Plan {
                    random: Some(Random::first_request(seed)),
                    ..Plan::default()
                };
                assert_eq!(again.decide(path).1, Some(first));
            }
            assert_eq!(seen.len() as u64, kinds, "{path}: {seen:?}");
        }
    }
}
