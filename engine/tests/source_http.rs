//! `source::http` against real servers on 127.0.0.1: nginx serving a repository made by
//! the `ostree` CLI, and a small scripted TCP server for faults (retries, stalls, caps,
//! redirects, mirrors).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cfsync_engine::source::{
    Conditional, FetchError, FileObject, Fresh, HttpSource, PathKind, Source, SourceOptions,
};
use cfsync_formats::checksum::Checksum;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------
// Fixtures

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install ostree and nginx)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// An archive repository made by the real `ostree` CLI, with a summary.
struct Repo {
    dir: tempfile::TempDir,
    commit: String,
}

impl Repo {
    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
}

fn make_archive_repo() -> Repo {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).expect("mkdir");
    std::fs::write(tree.join("usr/bin/hello"), b"#!/bin/sh\necho hello\n").expect("write");
    std::fs::write(tree.join("empty"), b"").expect("write");
    let big: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(tree.join("big"), &big).expect("write");
    std::os::unix::fs::symlink("usr/bin/hello", tree.join("link")).expect("symlink");
    let repo = dir.path().join("repo");
    run(Command::new("ostree")
        .arg("init")
        .arg("--mode=archive")
        .arg(format!("--repo={}", repo.display())));
    let commit = run(Command::new("ostree")
        .arg("commit")
        .arg(format!("--repo={}", repo.display()))
        .args(["-b", "main", "-s", "test"])
        .arg(format!("--tree=dir={}", tree.display())))
    .trim()
    .to_owned();
    run(Command::new("ostree")
        .arg("summary")
        .arg("-u")
        .arg(format!("--repo={}", repo.display())));
    Repo { dir, commit }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// nginx serving a directory on a free loopback port; stopped (SIGTERM, then waited for)
/// on drop.
struct Nginx {
    child: Child,
    port: u16,
    _state: tempfile::TempDir,
}

impl Nginx {
    fn start(root: &Path) -> Nginx {
        let state = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let st = state.path().display();
        let conf = format!(
            "worker_processes 1;\nuser root;\ndaemon off;\npid {st}/nginx.pid;\n\
             error_log {st}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n default_type application/octet-stream;\n access_log {st}/access.log;\n\
             client_body_temp_path {st}/tmp; proxy_temp_path {st}/tmp; fastcgi_temp_path {st}/tmp;\n\
             uwsgi_temp_path {st}/tmp; scgi_temp_path {st}/tmp;\n\
             server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
            root.display()
        );
        std::fs::create_dir_all(state.path().join("tmp")).expect("mkdir");
        let conf_path = state.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write conf");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx (apt-get install nginx)");
        let nginx = Nginx {
            child,
            port,
            _state: state,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.child.wait();
    }
}

/// What the scripted server does with one request.
enum Reply {
    /// Write these bytes and close.
    Close(Vec<u8>),
    /// Write these bytes and keep the connection open, sending nothing more.
    Hang(Vec<u8>),
    /// Write a chunked response whose body never ends (until the client goes away).
    Endless,
    /// Wait, then write these bytes and close.
    Delayed(Duration, Vec<u8>),
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    let mut has_length = false;
    for (k, v) in headers {
        has_length |= k.eq_ignore_ascii_case("content-length");
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

type Handler = dyn Fn(usize, &str) -> Reply + Send + Sync;

/// A scripted HTTP/1.1 server: `handler(request_index, path)` decides each reply. Counts
/// requests, body bytes written, and the largest number of simultaneous connections.
struct FaultServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    written: Arc<AtomicU64>,
    max_active: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultServer {
    async fn start(handler: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let max_active = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (r, w, a, m, h) = (
            requests.clone(),
            written.clone(),
            active.clone(),
            max_active.clone(),
            heads.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (handler, r, w, a, m, h) = (
                    handler.clone(),
                    r.clone(),
                    w.clone(),
                    a.clone(),
                    m.clone(),
                    h.clone(),
                );
                tokio::spawn(async move {
                    serve_one(sock, &*handler, &r, &w, &h, (&a, &m)).await;
                });
            }
        });
        FaultServer {
            port,
            requests,
            written,
            max_active,
            heads,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    mut sock: TcpStream,
    handler: &Handler,
    requests: &AtomicUsize,
    written: &AtomicU64,
    heads: &Mutex<Vec<String>>,
    (active, max_active): (&AtomicUsize, &AtomicUsize),
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    heads.lock().unwrap().push(head);
    let index = requests.fetch_add(1, Ordering::SeqCst);
    // A request counts as active from its head until its answer is written: the client
    // starts a further request only once it has an answer, so this measures the client's
    // concurrency exactly (connection lifetimes would overlap a closing connection with
    // the next one, which made `connections_per_host_are_bounded` see 3 of 2).
    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
    max_active.fetch_max(now, Ordering::SeqCst);
    let reply = handler(index, &path);
    if let Reply::Delayed(wait, _) = &reply {
        tokio::time::sleep(*wait).await;
    }
    active.fetch_sub(1, Ordering::SeqCst);
    match reply {
        Reply::Close(bytes) => {
            let _ = sock.write_all(&bytes).await;
            let _ = sock.shutdown().await;
        }
        Reply::Delayed(_, bytes) => {
            let _ = sock.write_all(&bytes).await;
            let _ = sock.shutdown().await;
        }
        Reply::Hang(bytes) => {
            let _ = sock.write_all(&bytes).await;
            // Keep the socket open until the client gives up.
            let _ = sock.read(&mut buf).await;
        }
        Reply::Endless => {
            let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            if sock.write_all(head).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            // 1 GiB at most; the client should hang up long before.
            for _ in 0..16 * 1024 {
                if sock.write_all(&framed).await.is_err() {
                    return;
                }
                written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
    }
}

/// Options with fast retries, for tests.
fn fast_options() -> SourceOptions {
    let mut o = SourceOptions::default();
    o.retry_base_delay = Duration::from_millis(10);
    o.retry_max_delay = Duration::from_millis(50);
    o.connect_timeout = Duration::from_secs(2);
    o.stall_timeout = Duration::from_secs(5);
    o
}

fn http(url: &str, options: SourceOptions) -> HttpSource {
    HttpSource::new(url, options).expect("source")
}

async fn collect(
    mut s: impl futures::Stream<Item = Result<bytes::Bytes, FetchError>> + Unpin,
) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Checksum of a file object from its header and content (ostree's content checksum).
fn file_checksum(
    header: &cfsync_formats::file::FileHeader,
    mut content: impl std::io::Read,
) -> Checksum {
    let mut hasher = cfsync_formats::file::FileHasher::new(header).expect("valid header");
    std::io::copy(&mut content, &mut hasher).expect("content reads");
    hasher.finish()
}

// ---------------------------------------------------------------------------------------
// nginx serving a real repository

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_a_real_archive_repository() {
    let repo = make_archive_repo();
    let nginx = Nginx::start(&repo.path());
    let source = Source::open(&nginx.url(), fast_options()).expect("open");
    let Source::Http(ref h) = source else {
        panic!("not http")
    };

    // config, ref and summary are the files on disk, byte for byte.
    let config = source
        .get_bytes("config", PathKind::Metadata, 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config, std::fs::read(repo.path().join("config")).unwrap());
    let r = source
        .get_bytes("refs/heads/main", PathKind::Metadata, 4096)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8(r).unwrap().trim(), repo.commit);
    let summary = source
        .get_bytes("summary", PathKind::Metadata, 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary, std::fs::read(repo.path().join("summary")).unwrap());

    // The commit object hashes to its name.
    let commit: Checksum = repo.commit.parse().unwrap();
    let path = format!("objects/{}/{}.commit", &repo.commit[..2], &repo.commit[2..]);
    let bytes = source
        .get_bytes(&path, PathKind::of(&path), 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Checksum::of(&bytes), commit);

    // Missing files are None, and not retried.
    let before = h.stats().requests;
    assert!(
        source
            .get_bytes("refs/heads/nope", PathKind::Metadata, 4096)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(h.stats().requests, before + 1);

    // Every file object, fetched as .filez through open_file_object and decoded, hashes
    // to its name.
    let mut seen = 0;
    let mut symlinks = 0;
    for entry in walk(&repo.path().join("objects")) {
        let name = entry.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".filez") else {
            continue;
        };
        let dir = entry
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let checksum: Checksum = format!("{dir}{stem}").parse().unwrap();
        let Some(FileObject::Filez(stream)) =
            source.open_file_object(&checksum, 1 << 30).await.unwrap()
        else {
            panic!("no .filez stream for {checksum}")
        };
        let raw = collect(stream).await.unwrap();
        assert_eq!(raw, std::fs::read(&entry).unwrap());
        let content = cfsync_formats::file::FilezReader::new(&raw[..]).unwrap();
        let header = content.header().clone();
        symlinks += usize::from(!header.symlink_target.is_empty());
        assert_eq!(file_checksum(&header, content), checksum, "{name}");
        seen += 1;
    }
    assert_eq!((seen, symlinks), (4, 1));

    // get_stream of a missing file is None; of the summary, the same bytes.
    assert!(
        source
            .get_stream("deltas/none", PathKind::Content, 10)
            .await
            .unwrap()
            .is_none()
    );
    let s = source
        .get_stream("summary", PathKind::Metadata, 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(collect(s).await.unwrap(), summary);

    // Counters: body bytes as served, one request per fetch (nginx never failed).
    let stats = h.stats();
    let on_disk: u64 = walk(&repo.path().join("objects"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "filez"))
        .map(|p| p.metadata().unwrap().len())
        .sum();
    let expected =
        config.len() as u64 + 65 + 2 * summary.len() as u64 + bytes.len() as u64 + on_disk;
    assert_eq!(stats.bytes_received, expected);
    assert_eq!(stats.requests, 5 + 1 + 4 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_conditional_get_and_size_cap() {
    let repo = make_archive_repo();
    let nginx = Nginx::start(&repo.path());
    let h = http(&nginx.url(), fast_options());
    let Conditional::Fetched {
        body,
        etag,
        last_modified,
    } = h
        .get_conditional("summary", 1 << 20, None, None)
        .await
        .unwrap()
    else {
        panic!("expected a body")
    };
    assert_eq!(body, std::fs::read(repo.path().join("summary")).unwrap());
    let (etag, last_modified) = (
        etag.expect("nginx sends ETag"),
        last_modified.expect("and Last-Modified"),
    );
    assert_eq!(
        h.get_conditional("summary", 1 << 20, Some(&etag), None)
            .await
            .unwrap(),
        Conditional::NotModified
    );
    assert_eq!(
        h.get_conditional("summary", 1 << 20, None, Some(&last_modified))
            .await
            .unwrap(),
        Conditional::NotModified
    );
    assert_eq!(
        h.get_conditional("summary", 1 << 20, Some("\"other\""), None)
            .await
            .unwrap(),
        Conditional::Fetched {
            body: body.clone(),
            etag: Some(etag.clone()),
            last_modified: Some(last_modified)
        }
    );
    assert_eq!(
        h.get_conditional("summary.sig", 1 << 20, None, None)
            .await
            .unwrap(),
        Conditional::NotFound
    );

    // A Content-Length over the cap is refused before any body byte is read.
    let before = h.stats();
    let err = h
        .get_bytes("summary", PathKind::Metadata, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::TooLarge { url, limit: 10 } if url.ends_with("/summary")),
        "{err}"
    );
    let after = h.stats();
    assert_eq!(after.bytes_received, before.bytes_received);
    assert_eq!(after.requests, before.requests + 1);

    // Paths that could escape the base are refused before any request.
    for bad in [
        "../etc/passwd",
        "/summary",
        "a/../summary",
        "summary?x=1",
        "a%2f",
    ] {
        let err = h.get_bytes(bad, PathKind::Metadata, 10).await.unwrap_err();
        assert!(
            matches!(err, FetchError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    assert_eq!(h.stats().requests, after.requests);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn retries_503_twice_then_succeeds() {
    let server = FaultServer::start(|i, _| {
        if i < 2 {
            Reply::Close(response("503 Service Unavailable", &[], b"busy"))
        } else {
            Reply::Close(response("200 OK", &[], b"hello"))
        }
    })
    .await;
    let h = http(&server.url(), fast_options());
    let body = h
        .get_bytes("summary", PathKind::Metadata, 100)
        .await
        .unwrap();
    assert_eq!(body.as_deref(), Some(&b"hello"[..]));
    assert_eq!(server.requests(), 3);
    let stats = h.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.bytes_received, 5);
    let head = server.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /summary http/1.1"), "{head}");
    assert!(
        head.contains(&format!("user-agent: cfsync/{}", env!("CARGO_PKG_VERSION"))),
        "{head}"
    );
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_says_so() {
    let server =
        FaultServer::start(|_, _| Reply::Close(response("502 Bad Gateway", &[], b""))).await;
    let mut o = fast_options();
    o.max_attempts = 3;
    let h = http(&server.url(), o);
    let err = h
        .get_bytes("config", PathKind::Metadata, 100)
        .await
        .unwrap_err();
    match &err {
        FetchError::Http {
            url,
            status: 502,
            attempts: 3,
        } => assert!(url.ends_with("/config")),
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("/config") && msg.contains("502") && msg.contains("3 attempt"),
        "{msg}"
    );
    assert!(err.is_transient());
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn not_found_is_none_and_other_4xx_is_not_retried() {
    let server = FaultServer::start(|_, path| match path {
        "/gone" => Reply::Close(response("410 Gone", &[], b"")),
        "/forbidden" => Reply::Close(response("403 Forbidden", &[], b"no")),
        _ => Reply::Close(response("404 Not Found", &[], b"nope")),
    })
    .await;
    let h = http(&server.url(), fast_options());
    assert!(
        h.get_bytes("missing", PathKind::Metadata, 100)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.get_bytes("gone", PathKind::Metadata, 100)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.get_stream("missing", PathKind::Content, 100)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(server.requests(), 3);
    let err = h
        .get_bytes("forbidden", PathKind::Metadata, 100)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Http {
                status: 403,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(server.requests(), 4);
    assert_eq!(h.stats().requests, 4);
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped() {
    let server = FaultServer::start(|i, path| match (i, path) {
        (0, "/a") => Reply::Close(response(
            "429 Too Many Requests",
            &[("Retry-After", "1")],
            b"",
        )),
        (_, "/a") => Reply::Close(response("200 OK", &[], b"a")),
        (2, _) => Reply::Close(response(
            "503 Service Unavailable",
            &[("Retry-After", "3600")],
            b"",
        )),
        _ => Reply::Close(response("200 OK", &[], b"b")),
    })
    .await;
    let mut o = fast_options();
    o.retry_after_cap = Duration::from_millis(300);
    let h = http(&server.url(), o.clone());
    // Retry-After: 1 is above the cap of 300 ms, so ~300 ms.
    let start = Instant::now();
    assert_eq!(
        h.get_bytes("a", PathKind::Metadata, 10)
            .await
            .unwrap()
            .unwrap(),
        b"a"
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // Retry-After: 3600 is capped too.
    let start = Instant::now();
    assert_eq!(
        h.get_bytes("b", PathKind::Metadata, 10)
            .await
            .unwrap()
            .unwrap(),
        b"b"
    );
    assert!(start.elapsed() < Duration::from_secs(3));

    // With a larger cap, the server's 1 s is waited for.
    let server2 = FaultServer::start(|i, _| {
        if i == 0 {
            Reply::Close(response(
                "429 Too Many Requests",
                &[("Retry-After", "1")],
                b"",
            ))
        } else {
            Reply::Close(response("200 OK", &[], b"c"))
        }
    })
    .await;
    o.retry_after_cap = Duration::from_secs(5);
    let h = http(&server2.url(), o);
    let start = Instant::now();
    assert_eq!(
        h.get_bytes("c", PathKind::Metadata, 10)
            .await
            .unwrap()
            .unwrap(),
        b"c"
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn endless_body_stops_at_the_cap() {
    let server = FaultServer::start(|_, _| Reply::Endless).await;
    let h = http(&server.url(), fast_options());
    let cap = 1 << 20;
    let start = Instant::now();
    let err = h
        .get_bytes("objects/ab/cd.dirtree", PathKind::Content, cap)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::TooLarge { limit, .. } if *limit == cap),
        "{err}"
    );
    assert!(err.to_string().contains("/objects/ab/cd.dirtree"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    // Not retried; received at most one read buffer past the cap.
    assert_eq!(server.requests(), 1);
    let received = h.stats().bytes_received;
    assert!(received > cap && received < cap + (1 << 20), "{received}");

    // The stream variant hands out at most `cap` bytes, then the error.
    let stream = h
        .get_stream("deltas/x/0", PathKind::Content, cap)
        .await
        .unwrap()
        .unwrap();
    let mut handed = 0u64;
    let mut stream = Box::pin(stream);
    let err = loop {
        match stream.next().await {
            Some(Ok(chunk)) => handed += chunk.len() as u64,
            Some(Err(e)) => break e,
            None => panic!("endless body ended"),
        }
    };
    assert!(handed <= cap, "{handed}");
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    assert!(
        stream.next().await.is_none(),
        "the stream ends after its error"
    );
    drop(stream);
    // The server's writes are bounded by the client hanging up (and socket buffers), far
    // from its 1 GiB.
    assert!(server.written.load(Ordering::SeqCst) < 256 << 20);
}

#[tokio::test]
async fn lying_content_length_is_an_error_and_retried_when_buffered() {
    // Declares 1000 bytes, sends 10, closes: the first time. Then the real thing.
    let server = FaultServer::start(|i, path| match path {
        "/short" if i == 0 => Reply::Close(response(
            "200 OK",
            &[("Content-Length", "1000")],
            b"0123456789",
        )),
        "/short" => Reply::Close(response("200 OK", &[], b"complete")),
        "/always-short" => Reply::Close(response(
            "200 OK",
            &[("Content-Length", "1000")],
            b"0123456789",
        )),
        // Declares 4 bytes but sends 8: only the declared 4 are ever handed out.
        _ => Reply::Close(response("200 OK", &[("Content-Length", "4")], b"abcdefgh")),
    })
    .await;
    let h = http(&server.url(), fast_options());
    assert_eq!(
        h.get_bytes("short", PathKind::Metadata, 10_000)
            .await
            .unwrap()
            .unwrap(),
        b"complete"
    );
    assert_eq!(server.requests(), 2);

    // Streams hand the short body out and end with an error, never a clean end.
    let stream = h
        .get_stream("always-short", PathKind::Content, 10_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream.content_length(), Some(1000));
    let err = collect(Box::pin(stream)).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err}");

    assert_eq!(
        h.get_bytes("long", PathKind::Metadata, 10_000)
            .await
            .unwrap()
            .unwrap(),
        b"abcd"
    );
}

#[tokio::test]
async fn stall_after_headers_is_detected() {
    let server = FaultServer::start(|_, path| match path {
        "/silent" => Reply::Hang(Vec::new()),
        _ => Reply::Hang(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec()),
    })
    .await;
    let mut o = fast_options();
    o.stall_timeout = Duration::from_secs(1);
    o.connect_timeout = Duration::from_secs(1);
    o.max_attempts = 2;
    let h = http(&server.url(), o);

    // Buffered: both attempts stall after 10 bytes.
    let start = Instant::now();
    let err = h
        .get_bytes("objects/aa/bb.dirtree", PathKind::Content, 1000)
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(
            &err,
            FetchError::Stall {
                seconds: 1,
                attempts: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(server.requests(), 2);
    assert!(err.is_transient());

    // Streamed: the first chunk arrives, then the stall error.
    let start = Instant::now();
    let mut stream = Box::pin(
        h.get_stream("deltas/x/0", PathKind::Content, 1000)
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"0123456789");
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(matches!(err, FetchError::Stall { .. }), "{err}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );

    // No headers at all: the wait for them stalls too (connect + stall timeouts).
    let start = Instant::now();
    let err = h
        .get_bytes("silent", PathKind::Metadata, 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Stall { attempts: 2, .. }),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn cancellation_ends_a_stalled_read() {
    let server = FaultServer::start(|_, _| {
        Reply::Hang(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n01234".to_vec())
    })
    .await;
    let token = cfsync_engine::progress::Cancel::new();
    let mut o = fast_options();
    o.stall_timeout = Duration::from_secs(30);
    o.cancel = Some(token.clone());
    let h = http(&server.url(), o);
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel();
    });
    let start = Instant::now();
    let err = h
        .get_bytes("summary", PathKind::Metadata, 1000)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Cancelled), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn redirects_are_followed_within_limits() {
    let server = FaultServer::start(|_, path| match path {
        "/old/config" => Reply::Close(response(
            "301 Moved Permanently",
            &[("Location", "/new/config")],
            b"",
        )),
        "/new/config" => Reply::Close(response("200 OK", &[], b"[core]\n")),
        "/loop/a" => Reply::Close(response("302 Found", &[("Location", "/loop/b")], b"")),
        "/loop/b" => Reply::Close(response("302 Found", &[("Location", "/loop/a")], b"")),
        _ => Reply::Close(response("404 Not Found", &[], b"")),
    })
    .await;
    let h = http(&server.url(), fast_options());
    assert_eq!(
        h.get_bytes("old/config", PathKind::Metadata, 100)
            .await
            .unwrap()
            .unwrap(),
        b"[core]\n"
    );
    let before = server.requests();
    let err = h
        .get_bytes("loop/a", PathKind::Metadata, 100)
        .await
        .unwrap_err();
    match &err {
        FetchError::Redirects { url, reason } => {
            assert!(url.ends_with("/loop/a"), "{url}");
            assert_eq!(*reason, "too many redirects");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The first request plus 10 followed redirects; not retried.
    assert_eq!(server.requests() - before, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrorlist_skips_a_dead_mirror_and_a_failing_one() {
    let repo = make_archive_repo();
    let nginx = Nginx::start(&repo.path());
    let dead = free_port(); // nothing listens here: connection refused
    let failing =
        FaultServer::start(|_, _| Reply::Close(response("500 Internal Server Error", &[], b"")))
            .await;
    let list = format!(
        "# mirrors\n\nhttp://127.0.0.1:{dead}/\nftp://ignored.example/\n{}\n{}\n",
        failing.url(),
        nginx.url()
    );
    let lists =
        FaultServer::start(move |_, _| Reply::Close(response("200 OK", &[], list.as_bytes())))
            .await;
    let mut o = fast_options();
    o.max_attempts = 5;
    let source = Source::open(&format!("mirrorlist={}mirrors.txt", lists.url()), o).unwrap();
    let config = source
        .get_bytes("config", PathKind::Metadata, 4096)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config, std::fs::read(repo.path().join("config")).unwrap());
    // The list once, then dead, failing, good.
    assert_eq!(lists.requests(), 1);
    assert_eq!(failing.requests(), 1);
    assert_eq!(source.stats().requests, 4);
    // The good mirror is remembered.
    let r = source
        .get_bytes("refs/heads/main", PathKind::Metadata, 4096)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8(r).unwrap().trim(), repo.commit);
    assert_eq!(source.stats().requests, 5);
    assert_eq!((lists.requests(), failing.requests()), (1, 1));

    // A mirrorlist without usable URLs is an error that names it.
    let empty =
        FaultServer::start(|_, _| Reply::Close(response("200 OK", &[], b"# none\nftp://x/\n")))
            .await;
    let s = http(&format!("mirrorlist={}list", empty.url()), fast_options());
    let err = s
        .get_bytes("config", PathKind::Metadata, 4096)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("mirrorlist lists no http"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenturl_serves_content_paths_only() {
    let repo = make_archive_repo();
    let nginx = Nginx::start(&repo.path());
    // Metadata from a server that only knows `config`.
    let meta = FaultServer::start(|_, path| match path {
        "/config" => Reply::Close(response("200 OK", &[], b"[core]\nmode=archive-z2\n")),
        _ => Reply::Close(response("404 Not Found", &[], b"")),
    })
    .await;
    let mut o = fast_options();
    o.contenturl = Some(nginx.url());
    let h = http(&meta.url(), o);
    assert_eq!(
        h.get_bytes("config", PathKind::Metadata, 100)
            .await
            .unwrap()
            .unwrap(),
        b"[core]\nmode=archive-z2\n"
    );
    let path = format!("objects/{}/{}.commit", &repo.commit[..2], &repo.commit[2..]);
    let commit = h
        .get_bytes(&path, PathKind::Content, 1 << 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Checksum::of(&commit), repo.commit.parse().unwrap());
    // commitmeta is metadata: asked of the metadata server.
    let cm = format!(
        "objects/{}/{}.commitmeta",
        &repo.commit[..2],
        &repo.commit[2..]
    );
    assert!(
        h.get_bytes(&cm, PathKind::of(&cm), 1 << 20)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(meta.requests(), 2);
    assert_eq!(h.content_bases(), vec![nginx.url()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_host_are_bounded() {
    let server = FaultServer::start(|_, _| {
        Reply::Delayed(Duration::from_millis(150), response("200 OK", &[], b"ok"))
    })
    .await;
    let mut o = fast_options();
    o.max_connections_per_host = 2;
    let h = http(&server.url(), o);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.get_bytes(&format!("f{i}"), PathKind::Content, 10).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().unwrap(), b"ok");
    }
    assert_eq!(server.requests(), 6);
    assert_eq!(server.max_active.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let port = free_port();
    let mut o = fast_options();
    o.max_attempts = 2;
    let h = http(&format!("http://127.0.0.1:{port}/repo"), o);
    let err = h
        .get_bytes("summary", PathKind::Metadata, 10)
        .await
        .unwrap_err();
    match &err {
        FetchError::Connect {
            url, attempts: 2, ..
        } => {
            assert_eq!(url, &format!("http://127.0.0.1:{port}/repo/summary"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("check the URL"), "{err}");
    assert_eq!(h.stats().requests, 2);
}

#[test]
fn open_picks_the_transport_and_refuses_other_schemes() {
    assert!(matches!(
        Source::open("http://127.0.0.1:1/r", SourceOptions::default()),
        Ok(Source::Http(_))
    ));
    assert!(matches!(
        Source::open("mirrorlist=https://h/l", SourceOptions::default()),
        Ok(Source::Http(_))
    ));
    let err = Source::open("ftp://h/r", SourceOptions::default()).unwrap_err();
    assert!(matches!(err, FetchError::InvalidUrl { .. }), "{err}");
    let err = HttpSource::new("mirrorlist=file:///x", SourceOptions::default()).unwrap_err();
    assert!(matches!(err, FetchError::InvalidUrl { .. }), "{err}");
}

/// A keep-alive HTTP/1.1 server answering every request with `body`, recording each
/// request's head and the client port it came from.
struct KeepAlive {
    port: u16,
    seen: Arc<Mutex<Vec<(u16, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl KeepAlive {
    async fn start(body: &'static [u8]) -> KeepAlive {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, peer)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                            pending.drain(..end + 4);
                            log.lock().unwrap().push((peer.port(), head));
                            let mut reply = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            reply.extend_from_slice(body);
                            if sock.write_all(&reply).await.is_err() {
                                return;
                            }
                        }
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        KeepAlive { port, seen, task }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn seen(&self) -> Vec<(u16, String)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn no_cache(head: &str) -> bool {
    let head = head.to_ascii_lowercase();
    head.contains("\r\ncache-control: no-cache") && head.contains("\r\npragma: no-cache")
}

#[tokio::test]
async fn a_fresh_request_says_no_cache_on_a_new_connection() {
    let server = KeepAlive::start(b"hello").await;
    let source = http(&server.url(), fast_options());
    for _ in 0..2 {
        let got = source.get_bytes("config", PathKind::Metadata, 100).await;
        assert_eq!(got.unwrap().unwrap(), b"hello");
    }
    let fresh = source.with_fresh(Fresh::Yes);
    for _ in 0..2 {
        let got = fresh.get_bytes("config", PathKind::Metadata, 100).await;
        assert_eq!(got.unwrap().unwrap(), b"hello");
    }
    let again = Source::Http(source.clone()).fresh(Fresh::No);
    let got = again.get_bytes("config", PathKind::Metadata, 100).await;
    assert_eq!(got.unwrap().unwrap(), b"hello");
    let seen = server.seen();
    assert_eq!(seen.len(), 5, "{seen:?}");
    let ports: Vec<u16> = seen.iter().map(|(p, _)| *p).collect();
    // The ordinary requests share one pooled connection...
    assert_eq!(ports[0], ports[1], "{seen:?}");
    assert_eq!(ports[4], ports[0], "{seen:?}");
    // ...and each fresh one has a connection of its own.
    assert!(
        ports[2] != ports[0] && ports[3] != ports[0] && ports[3] != ports[2],
        "{seen:?}"
    );
    for (i, (_, head)) in seen.iter().enumerate() {
        assert_eq!(no_cache(head), i == 2 || i == 3, "request {i}: {head}");
    }
    // Counters are shared with the fresh copies; refetches are the engine's to count.
    assert_eq!(source.stats().requests, 5);
    assert_eq!(source.stats().refetched, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_request_starts_from_the_next_mirror() {
    let (a, b) = (KeepAlive::start(b"a").await, KeepAlive::start(b"b").await);
    let list = format!("{}\n{}\n", a.url(), b.url());
    let lists =
        FaultServer::start(move |_, _| Reply::Close(response("200 OK", &[], list.as_bytes())))
            .await;
    let source = Source::open(
        &format!("mirrorlist={}mirrors.txt", lists.url()),
        fast_options(),
    )
    .unwrap();
    let get = |s: Source| async move {
        s.get_bytes("config", PathKind::Metadata, 100)
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(get(source.clone()).await, b"a");
    assert_eq!(get(source.fresh(Fresh::Yes)).await, b"b");
    assert!(no_cache(&b.seen()[0].1));
    assert!(!no_cache(&a.seen()[0].1));
}
