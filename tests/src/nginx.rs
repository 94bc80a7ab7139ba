//! nginx serving a directory on loopback ([`Nginx`]) with an access log the tests read,
//! and the start/stop helpers other servers built on nginx share.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::tools::require;

/// One access-log line of an [`Nginx`] server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// HTTP status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// nginx's connection serial number: equal numbers mean a reused (keep-alive)
    /// connection.
    pub connection: u64,
    /// Request method.
    pub method: String,
    /// Request URI, as sent (e.g. `/objects/ab/cd….filez`).
    pub uri: String,
    /// The `Range` request header, if any.
    pub range: Option<String>,
}

/// nginx serving a directory on a free loopback port, the way a static mirror would
/// (keep-alive, range requests, ETag/Last-Modified), with an access log the test can
/// read. One worker process; stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    state: TempDir,
    port: u16,
    root: PathBuf,
}

/// The URI of the log barrier: answered 204 and never logged.
const BARRIER: &str = "/.cfsync-log-barrier";

impl Nginx {
    /// Serves `root` over HTTP on 127.0.0.1 (a free port).
    pub fn serve(root: &Path) -> Self {
        Self::serve_with(root, "")
    }

    /// Serves `root` with `extra` added inside the `server { }` block, e.g.
    /// `"location /deltas/ { return 500; }"` to simulate a broken mirror.
    pub fn serve_with(root: &Path, extra: &str) -> Self {
        require("nginx");
        let root = match root.canonicalize() {
            Ok(r) => r,
            Err(e) => panic!("cannot serve {}: {e}", root.display()),
        };
        let mut last_error = String::new();
        // A port found free can be taken before nginx binds it: retry with another.
        for _attempt in 0..5 {
            let state = match tempfile::Builder::new().prefix("cfsync-nginx-").tempdir() {
                Ok(s) => s,
                Err(e) => panic!("cannot create nginx state dir: {e}"),
            };
            let mut server = Self {
                child: None,
                state,
                port: free_port(),
                root: root.clone(),
            };
            match server.start(extra) {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn start(&mut self, extra: &str) -> Result<(), String> {
        let st = self.state.path();
        let _ = fs::remove_file(st.join("nginx.pid"));
        let _ = File::create(st.join("access.log"));
        let http = format!(
            r#"
  log_format cfsync '$status $body_bytes_sent $connection $request_method $request_uri "$http_range"';
  access_log {st}/access.log cfsync;
  sendfile on; tcp_nopush on; keepalive_requests 100000; keepalive_timeout 65s;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location = {BARRIER} {{ access_log off; return 204; }}
    {extra}
  }}
"#,
            st = st.display(),
            port = self.port,
            root = self.root.display(),
        );
        self.child = Some(start_nginx(st, &http, &[self.port])?);
        Ok(())
    }

    /// The base URL, without a trailing slash: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL of `path` (relative to the served directory).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}/{}", self.url(), path.trim_start_matches('/'))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes sure every request whose response a client has fully received is in the
    /// access log: sends a request through the single worker and waits for its answer;
    /// by then the worker has logged everything it finished before.
    fn barrier(&self) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let r = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(format!("GET {BARRIER} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf)?;
            Ok(buf)
        });
        match r {
            Ok(buf) if buf.starts_with(b"HTTP/1.1 204") => {}
            Ok(buf) => panic!(
                "nginx log barrier got {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(200)])
            ),
            Err(e) => panic!("nginx log barrier on port {}: {e}", self.port),
        }
    }

    /// Every request served since start or the last [`Nginx::reset_log`], in order.
    pub fn log(&self) -> Vec<LogEntry> {
        self.barrier();
        let path = self.state.path().join("access.log");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        };
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| match parse_log_line(l) {
                Some(e) => e,
                None => panic!("cannot parse nginx log line {l:?}"),
            })
            .collect()
    }

    /// Total body bytes sent and number of requests since start or the last
    /// [`Nginx::reset_log`].
    pub fn bytes_and_requests(&self) -> (u64, u64) {
        let log = self.log();
        (log.iter().map(|e| e.bytes).sum(), log.len() as u64)
    }

    /// Empties the access log (after logging everything already answered).
    pub fn reset_log(&self) {
        self.barrier();
        let path = self.state.path().join("access.log");
        if let Err(e) = File::create(&path) {
            panic!("cannot truncate {}: {e}", path.display());
        }
    }

    /// Stops nginx (also done on drop).
    pub fn stop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

/// Writes `state/nginx.conf` — one worker in the foreground (as root when the test runs
/// as root), its pid file, error log and temporary files under `state`, and an
/// `http { }` block holding `http` — and starts nginx with it ([`spawn_nginx`]).
pub fn start_nginx(state: &Path, http: &str, ports: &[u16]) -> Result<Child, String> {
    let tmp = state.join("tmp");
    fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    // Running as root, workers would switch to `nobody`, who cannot read a test's 0700
    // temporary directories.
    let user = if rustix::process::geteuid().is_root() {
        "user root root;"
    } else {
        ""
    };
    let conf = format!(
        r#"{user}
worker_processes 1;
daemon off;
master_process on;
pid {st}/nginx.pid;
error_log {st}/error.log;
events {{ worker_connections 1024; }}
http {{
  default_type application/octet-stream;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
{http}}}
"#,
        st = state.display(),
        tmp = tmp.display(),
    );
    let conf_path = state.join("nginx.conf");
    fs::write(&conf_path, conf).map_err(|e| format!("writing nginx.conf: {e}"))?;
    spawn_nginx(&conf_path, state, ports)
}

/// Starts nginx in the foreground with `conf` and prefix `state` (where the config puts
/// its pid file `nginx.pid`, `error.log` and where stderr goes to `stderr.log`), and waits
/// until it is ready: its master wrote its pid file (it does so after binding) and every
/// port in `ports` accepts connections. Bounded: 10 s, then it is stopped.
fn spawn_nginx(conf: &Path, state: &Path, ports: &[u16]) -> Result<Child, String> {
    let stderr = File::create(state.join("stderr.log"))
        .map_err(|e| format!("creating nginx's stderr log: {e}"))?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(conf)
        .arg("-p")
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run nginx: {e}"))?;
    let pid = child.id();
    let mut child = Some(child);
    let pid_file = state.join("nginx.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            let err = fs::read_to_string(state.join("stderr.log")).unwrap_or_default();
            let log = fs::read_to_string(state.join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}): {err}{log}"));
        }
        let up = |port: u16| {
            TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                Duration::from_millis(200),
            )
            .is_ok()
        };
        if fs::read_to_string(&pid_file).is_ok_and(|s| s.trim() == pid.to_string())
            && ports.iter().all(|&p| up(p))
        {
            return child.ok_or_else(|| "nginx vanished".to_owned());
        }
        if Instant::now() > deadline {
            stop_nginx(&mut child);
            return Err("nginx did not become ready within 10 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops an nginx master started in the foreground, if still running: SIGTERM (fast
/// shutdown of the master and its workers), then SIGKILL after 5 s.
pub fn stop_nginx(child: &mut Option<Child>) {
    let Some(mut child) = child.take() else {
        return;
    };
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses `status bytes connection method uri "range"`.
fn parse_log_line(line: &str) -> Option<LogEntry> {
    let mut it = line.splitn(5, ' ');
    let status = it.next()?.parse().ok()?;
    let bytes = it.next()?.parse().ok()?;
    let connection = it.next()?.parse().ok()?;
    let method = it.next()?.to_owned();
    let rest = it.next()?;
    let (uri, range) = rest.rsplit_once(" \"")?;
    let range = range.strip_suffix('"')?;
    Some(LogEntry {
        status,
        bytes,
        connection,
        method,
        uri: uri.to_owned(),
        range: (range != "-" && !range.is_empty()).then(|| range.to_owned()),
    })
}

/// A loopback port that was free a moment ago (the kernel picks it).
pub fn free_port() -> u16 {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("cannot find a free port: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse() {
        let e = parse_log_line(r#"206 10 3 GET /a/b "bytes=0-9""#).unwrap();
        assert_eq!((e.status, e.bytes, e.connection), (206, 10, 3));
        assert_eq!(e.range.as_deref(), Some("bytes=0-9"));
        let e = parse_log_line(r#"200 5 4 GET /summary "-""#).unwrap();
        assert_eq!((e.uri.as_str(), e.range), ("/summary", None));
    }
}
