//! A fault-injecting HTTP/1.1 server for tests, in front of a real repository directory.
//!
//! [`FaultServer::start`] serves the files under a root (keep-alive, `Content-Length`,
//! 404 for what is missing) and applies a plan to each request:
//!
//! - [`Rule`]s, each a path pattern (`*` matches any run of characters, `/` included),
//!   a window of request counts (the `from`-th matching request and the `times - 1` after
//!   it, counted per path or over all matching paths) and a [`Fault`];
//! - a seeded random mode ([`Random`]): for the `k`-th request of a path, a hash of
//!   `(seed, path, k)` decides whether and which fault applies, so a run is the same for
//!   a given seed whatever order concurrent requests arrive in. Faults stop after
//!   `max_per_path` requests of a path, so retrying clients get through.
//!
//! Every request is logged ([`FaultServer::log`]) with the fault it got. Nothing here
//! sleeps to wait for a condition: a stalled answer blocks reading the connection until
//! the client hangs up or the server is dropped (which shuts every connection down); a
//! dripped body sleeps between chunks because slowness is the fault.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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
    /// When it arrived.
    pub at: Instant,
    /// The status answered: 0 while the answer is being sent, or when the fault
    /// answered none. A 200 with no fault means the whole body was written.
    pub status: u16,
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Rule>,
    /// Per rule: count over all paths, and per path.
    rule_total: Vec<u64>,
    rule_paths: Vec<HashMap<String, u64>>,
    random: Option<Random>,
    path_counts: HashMap<String, u64>,
    log: Vec<Logged>,
    /// Where [`FaultServer::log`] starts (entries are never removed, so that an answer
    /// in progress can update its own).
    log_start: usize,
}

impl Plan {
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
            && nth <= r.max_per_path
            && !r.faults.is_empty()
            && glob(&r.pattern, path)
        {
            let h = mix(r.seed, path, nth);
            if h % 100 < r.percent {
                let pick = (mix(h, path, nth) % r.faults.len() as u64) as usize;
                chosen = r.faults.get(pick).cloned();
            }
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

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    plan: Mutex<Plan>,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// The server; stops (and closes every connection) when dropped.
#[derive(Debug)]
pub struct FaultServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Serves `root` on a free port of 127.0.0.1, with no faults yet.
    #[must_use]
    pub fn start(root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fault server");
        let addr = listener.local_addr().expect("fault server address");
        let shared = Arc::new(Shared {
            root: root.to_owned(),
            plan: Mutex::default(),
            stop: AtomicBool::new(false),
            conns: Mutex::default(),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_nodelay(true);
                if let Ok(c) = conn.try_clone() {
                    s.conns.lock().unwrap().push(c);
                }
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve_connection(&s, conn));
            }
        });
        Self {
            shared,
            addr,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (the repository is at the root).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule (rules are tried in the order added; the first that applies wins).
    pub fn add(&self, rule: Rule) -> &Self {
        let mut plan = self.shared.plan.lock().unwrap();
        plan.rules.push(rule);
        plan.rule_total.push(0);
        plan.rule_paths.push(HashMap::new());
        self
    }

    /// Turns the seeded random mode on.
    pub fn random(&self, random: Random) -> &Self {
        self.shared.plan.lock().unwrap().random = Some(random);
        self
    }

    /// Removes every rule and the random mode, and forgets the counts (not the log).
    pub fn clear(&self) {
        let mut plan = self.shared.plan.lock().unwrap();
        plan.rules.clear();
        plan.rule_total.clear();
        plan.rule_paths.clear();
        plan.random = None;
        plan.path_counts.clear();
    }

    /// Every request so far.
    #[must_use]
    pub fn log(&self) -> Vec<Logged> {
        let plan = self.shared.plan.lock().unwrap();
        plan.log.get(plan.log_start..).unwrap_or_default().to_vec()
    }

    /// Forgets the log.
    pub fn reset_log(&self) {
        let mut plan = self.shared.plan.lock().unwrap();
        plan.log_start = plan.log.len();
    }

    /// The requests that got a fault.
    #[must_use]
    pub fn faulted(&self) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.fault.is_some())
            .collect()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Reads one request head; `None` at end of stream or on garbage.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" || h == "\n" {
            break;
        }
    }
    Some((method, target))
}

/// Decodes `%XX` escapes.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn serve_connection(shared: &Shared, conn: TcpStream) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut conn = conn;
    while !shared.stop.load(Ordering::SeqCst) {
        let Some((method, target)) = read_request(&mut reader) else {
            return;
        };
        let raw_path = target.split(['?', '#']).next().unwrap_or("");
        let path =
            String::from_utf8_lossy(&percent_decode(raw_path.trim_start_matches('/'))).into_owned();
        // Logged before answering (a client may be done before the answer returns).
        let (index, fault) = {
            let mut plan = shared.plan.lock().unwrap();
            let (nth, fault) = plan.decide(&path);
            plan.log.push(Logged {
                path: path.clone(),
                nth,
                fault: fault.clone(),
                at: Instant::now(),
                status: 0,
            });
            (plan.log.len() - 1, fault)
        };
        let result = answer(shared, &mut conn, &method, &target, &path, fault.as_ref());
        let (status, keep) = match result {
            Ok((status, keep)) => (status, keep),
            Err(status) => (status, false),
        };
        if let Some(l) = shared.plan.lock().unwrap().log.get_mut(index) {
            l.status = status;
        }
        if !keep {
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// The file under the root for `path`, refusing escapes.
fn file_for(shared: &Shared, path: &str) -> Option<Vec<u8>> {
    if path
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return None;
    }
    let p = shared.root.join(path);
    if !p.is_file() {
        return None;
    }
    std::fs::read(p).ok()
}

fn head(status: u16, reason: &str, len: Option<u64>, extra: &str) -> String {
    let mut h = format!("HTTP/1.1 {status} {reason}\r\nServer: cfsync-faults\r\n");
    if let Some(n) = len {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    h.push_str(extra);
    h.push_str("\r\n");
    h
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// Holds the connection open, answering nothing, until the client hangs up or the
/// server stops (dropping the server shuts every connection down, which ends the
/// blocking read).
fn hold(conn: &TcpStream) {
    let Ok(mut probe) = conn.try_clone() else {
        return;
    };
    let mut buf = [0u8; 512];
    while let Ok(n) = probe.read(&mut buf) {
        if n == 0 {
            return;
        }
    }
}

/// Sets `SO_LINGER {on, 0}` so that closing sends a reset.
#[allow(unsafe_code)]
fn set_linger_zero(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        onoff: i32,
        linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let l = Linger {
        onoff: 1,
        linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized `struct linger`.
    let _ = unsafe {
        setsockopt(
            conn.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &raw const l,
            size_of::<Linger>() as u32,
        )
    };
}

/// Writes zeros until the client hangs up or the server stops.
/// Sends a 200 header announcing all of `body`, then at most `n` of its bytes (never all
/// of them). Only a failure to send the header is an error.
fn partial_body(conn: &mut TcpStream, body: &[u8], n: usize) -> std::io::Result<()> {
    let len = body.len();
    conn.write_all(head(200, "OK", Some(len as u64), "").as_bytes())?;
    let _ = conn.write_all(&body[..n.min(len.saturating_sub(1))]);
    let _ = conn.flush();
    Ok(())
}

fn zeros(shared: &Shared, conn: &mut TcpStream, chunked: bool) {
    let block = vec![0u8; 64 * 1024];
    let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
    while !shared.stop.load(Ordering::SeqCst) {
        let r = if chunked {
            conn.write_all(format!("{:x}\r\n", block.len()).as_bytes())
                .and_then(|()| conn.write_all(&block))
                .and_then(|()| conn.write_all(b"\r\n"))
        } else {
            conn.write_all(&block)
        };
        match r {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Answers one request. `Ok((status, keep_alive))`, or `Err(status)` when the
/// connection must be closed.
fn answer(
    shared: &Shared,
    conn: &mut TcpStream,
    method: &str,
    target: &str,
    path: &str,
    fault: Option<&Fault>,
) -> Result<(u16, bool), u16> {
    let io = |r: std::io::Result<()>, status: u16| r.map_err(|_| status);
    if method != "GET" && method != "HEAD" {
        io(
            conn.write_all(head(405, "Method Not Allowed", Some(0), "").as_bytes()),
            405,
        )?;
        return Ok((405, true));
    }
    match fault {
        Some(Fault::Status(s)) => {
            io(
                conn.write_all(head(*s, reason(*s), Some(0), "").as_bytes()),
                *s,
            )?;
            return Ok((*s, true));
        }
        Some(Fault::RetryAfter(s, secs)) => {
            let extra = format!("Retry-After: {secs}\r\n");
            io(
                conn.write_all(head(*s, reason(*s), Some(0), &extra).as_bytes()),
                *s,
            )?;
            return Ok((*s, true));
        }
        Some(Fault::RedirectLoop) => {
            let extra = format!("Location: {target}\r\n");
            io(
                conn.write_all(head(302, "Found", Some(0), &extra).as_bytes()),
                302,
            )?;
            return Ok((302, true));
        }
        Some(Fault::StallHeaders) => {
            hold(conn);
            return Err(0);
        }
        Some(Fault::Huge(n)) => {
            io(
                conn.write_all(head(200, "OK", Some(*n), "").as_bytes()),
                200,
            )?;
            zeros(shared, conn, false);
            return Err(200);
        }
        Some(Fault::Endless) => {
            let extra = "Transfer-Encoding: chunked\r\n";
            io(conn.write_all(head(200, "OK", None, extra).as_bytes()), 200)?;
            zeros(shared, conn, true);
            return Err(200);
        }
        _ => {}
    }
    let body = match fault {
        Some(Fault::Body(b)) => Some(b.clone()),
        Some(Fault::File(f)) => std::fs::read(f).ok(),
        _ => file_for(shared, path),
    };
    let Some(mut body) = body else {
        io(
            conn.write_all(head(404, "Not Found", Some(0), "").as_bytes()),
            404,
        )?;
        return Ok((404, true));
    };
    let len = body.len();
    let send_body = method == "GET";
    match fault {
        Some(Fault::Truncate(n)) => {
            io(partial_body(conn, &body, *n), 200)?;
            Err(200)
        }
        Some(Fault::Reset(n)) => {
            io(partial_body(conn, &body, *n), 200)?;
            set_linger_zero(conn);
            Err(200)
        }
        Some(Fault::StallBody(n)) => {
            io(partial_body(conn, &body, *n), 200)?;
            hold(conn);
            Err(200)
        }
        Some(Fault::Drip { pieces, every }) => {
            let pieces = (*pieces).max(1);
            let chunk = len.div_ceil(pieces).max(1);
            io(
                conn.write_all(head(200, "OK", Some(len as u64), "").as_bytes()),
                200,
            )?;
            for piece in body.chunks(chunk) {
                if shared.stop.load(Ordering::SeqCst) {
                    return Err(200);
                }
                std::thread::sleep(*every);
                io(conn.write_all(piece).and_then(|()| conn.flush()), 200)?;
            }
            Ok((200, true))
        }
        Some(Fault::LieLength(delta)) => {
            let declared = (len as i64).saturating_add(*delta).max(0) as u64;
            io(
                conn.write_all(head(200, "OK", Some(declared), "").as_bytes()),
                200,
            )?;
            let n = len.min(declared as usize);
            let _ = conn.write_all(&body[..n]);
            let _ = conn.flush();
            Err(200)
        }
        other => {
            if let Some(Fault::Flip(at)) = other
                && len > 0
            {
                body[*at % len] ^= 0xff;
            }
            io(
                conn.write_all(head(200, "OK", Some(len as u64), "").as_bytes()),
                200,
            )?;
            if send_body {
                io(conn.write_all(&body), 200)?;
            }
            Ok((200, true))
        }
    }
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
}
