//! A file server that behaves like the far end of a slow link, for the fetch scheduler's
//! tests: [`LinkServer`] serves a directory over HTTP/1.1 (keep-alive,
//! `Content-Length`, 404 for what is missing) and holds every answer back by a fixed
//! delay, which stands for the link's round trip: a client gets more answers per second
//! only by keeping more requests in flight, as through a delaying link.
//!
//! It counts the requests in flight (read, answer not yet started) and keeps the highest
//! count seen ([`LinkServer::max_in_flight`]); with [`LinkServer::overload_above`] it
//! answers `503 Service Unavailable` to a request that arrives while more than that many
//! are in flight, as an overloaded server would. A thread per connection; stopped when
//! dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    delay: Duration,
    overload_above: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicU64,
    overloaded: AtomicU64,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// The server; see the module documentation.
#[derive(Debug)]
pub struct LinkServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl LinkServer {
    /// Serves `root` on a free port of 127.0.0.1, answering each request `delay` after
    /// it arrived.
    #[must_use]
    pub fn start(root: &Path, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the link server");
        let addr = listener.local_addr().expect("link server address");
        let shared = Arc::new(Shared {
            root: root.to_owned(),
            delay,
            overload_above: AtomicUsize::new(usize::MAX),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
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

    /// From now on, a request arriving while more than `n` are in flight gets a 503.
    pub fn overload_above(&self, n: usize) -> &Self {
        self.shared.overload_above.store(n, Ordering::SeqCst);
        self
    }

    /// `http://127.0.0.1:PORT` (the served directory is at the root).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The most requests in flight at once so far (503s included).
    #[must_use]
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests answered 503 so far.
    #[must_use]
    pub fn overloaded(&self) -> u64 {
        self.shared.overloaded.load(Ordering::SeqCst)
    }
}

impl Drop for LinkServer {
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

/// Reads one request head and returns its target; `None` at end of stream or on
/// garbage.
fn read_target(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let target = line.split_whitespace().nth(1)?.to_owned();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" || h == "\n" {
            return Some(target);
        }
    }
}

/// The file `target` names under `root`, if it is a plain relative path.
fn file_for(root: &Path, target: &str) -> Option<Vec<u8>> {
    let path = target.split('?').next()?.trim_start_matches('/');
    if path.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    std::fs::read(root.join(path)).ok()
}

fn serve_connection(shared: &Shared, conn: TcpStream) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut conn = conn;
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(target) = read_target(&mut reader) else {
            return;
        };
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let overloaded = now > shared.overload_above.load(Ordering::SeqCst);
        std::thread::sleep(shared.delay);
        let (head, body) = if overloaded {
            shared.overloaded.fetch_add(1, Ordering::SeqCst);
            ("503 Service Unavailable", Vec::new())
        } else {
            match file_for(&shared.root, &target) {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", Vec::new()),
            }
        };
        // No longer counted once the answer starts: the client's request lasts until it
        // has the whole answer, so the count never runs ahead of the client's (a thread
        // descheduled after writing would otherwise be counted beside the client's next
        // request).
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let header = format!(
            "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            body.len()
        );
        let sent = conn
            .write_all(header.as_bytes())
            .and_then(|()| conn.write_all(&body))
            .and_then(|()| conn.flush());
        if sent.is_err() {
            return;
        }
    }
}
