//! The server itself: accepts connections on loopback, serves the files under its root
//! and answers each request as the plan decides (the faults are carried out here).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::plan::{Fault, Logged, Plan, Random, Rule};

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
        self.shared.plan.lock().unwrap().add(rule);
        self
    }

    /// Turns the seeded random mode on.
    pub fn random(&self, random: Random) -> &Self {
        self.shared.plan.lock().unwrap().random = Some(random);
        self
    }

    /// Removes every rule and the random mode, and forgets the counts (not the log).
    pub fn clear(&self) {
        self.shared.plan.lock().unwrap().clear();
    }

    /// Every request so far.
    #[must_use]
    pub fn log(&self) -> Vec<Logged> {
        self.shared.plan.lock().unwrap().log()
    }

    /// Forgets the log.
    pub fn reset_log(&self) {
        self.shared.plan.lock().unwrap().reset_log();
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

/// One request head: method, target, and whether it says `Cache-Control: no-cache`.
struct Request {
    method: String,
    target: String,
    no_cache: bool,
}

/// Reads one request head; `None` at end of stream or on garbage.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut no_cache = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':')
            && name.trim().eq_ignore_ascii_case("cache-control")
            && value
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
        {
            no_cache = true;
        }
    }
    Some(Request {
        method,
        target,
        no_cache,
    })
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
    let mut on_connection = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(Request {
            method,
            target,
            no_cache,
        }) = read_request(&mut reader)
        else {
            return;
        };
        on_connection += 1;
        let raw_path = target.split(['?', '#']).next().unwrap_or("");
        let path =
            String::from_utf8_lossy(&percent_decode(raw_path.trim_start_matches('/'))).into_owned();
        // Logged before answering (a client may be done before the answer returns).
        let (index, fault) = shared
            .plan
            .lock()
            .unwrap()
            .record(&path, on_connection, no_cache);
        let result = answer(shared, &mut conn, &method, &target, &path, fault.as_ref());
        let (status, keep) = match result {
            Ok((status, keep)) => (status, keep),
            Err(status) => (status, false),
        };
        shared.plan.lock().unwrap().answered(index, status);
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
