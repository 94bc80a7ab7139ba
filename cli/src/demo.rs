//! `cfsync demo`: the embedded default behind the README's first command.
//!
//! A small, real OSTree repository (made by `ostree` and `gpg`, two signed versions and
//! static deltas; see `demo/README.md`) is compiled into the binary. The demo serves it
//! over HTTP on loopback, then drives this same binary as a user would: add a remote with
//! the publisher's key, pull v1, update to v2 through the static delta, do the same
//! update object by object in a second store to show what the delta saved, list the
//! tree, and mount the image where the machine allows it.

use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use include_dir::{Dir, include_dir};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The bundled demo: `repo/`, `commits`, `demo.asc`.
static DEMO: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../demo");

const REF: &str = "demo/x86_64/stable";

/// What the loopback server sent.
#[derive(Debug, Default)]
struct Served {
    bytes: AtomicU64,
    requests: AtomicU64,
}

/// Serves `DEMO/repo` over HTTP/1.1 with keep-alive: GET and HEAD, 200 or 404.
async fn serve(listener: TcpListener, served: Arc<Served>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let served = Arc::clone(&served);
        tokio::spawn(async move {
            let _ = connection(sock, &served).await;
        });
    }
}

async fn connection(mut sock: TcpStream, served: &Served) -> std::io::Result<()> {
    // Each response goes out in one vectored write; without this, Nagle's algorithm
    // holds back a short response behind the client's delayed ACK.
    let _ = sock.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut words = head.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
        let close = head.to_ascii_lowercase().contains("connection: close");
        let path = target
            .split('?')
            .next()
            .unwrap_or("")
            .trim_start_matches('/');
        let file = (!path.split('/').any(|c| c == ".." || c.is_empty()))
            .then(|| DEMO.get_file(format!("repo/{path}")))
            .flatten();
        let (status, body): (&str, &[u8]) = match file {
            Some(f) => ("200 OK", f.contents()),
            None => ("404 Not Found", b"not found\n"),
        };
        let send_body = method != "HEAD";
        let header = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        let body = if send_body { body } else { &[] };
        write_response(&mut sock, header.as_bytes(), body).await?;
        served.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        served.requests.fetch_add(1, Ordering::Relaxed);
        if close {
            return Ok(());
        }
    }
}

/// Writes `head` and then `body` as one response: vectored writes, so that a response
/// that fits the socket buffer leaves in one system call (and one segment train).
async fn write_response(sock: &mut TcpStream, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    let (mut head, mut body) = (head, body);
    while !head.is_empty() || !body.is_empty() {
        let n = sock
            .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = head.get(from_head..).unwrap_or_default();
        body = body.get(n.saturating_sub(from_head)..).unwrap_or_default();
    }
    Ok(())
}

/// Runs this binary with `args`; fails with its stderr.
async fn cfsync(args: Vec<String>) -> Result<String> {
    let exe = std::env::current_exe().context("finding the cfsync binary")?;
    let shown = format!("cfsync {}", args.join(" "));
    let out = tokio::task::spawn_blocking(move || Command::new(exe).args(&args).output())
        .await
        .map_err(|e| anyhow!("{e}"))?
        .with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn pull_json(store: &Path, extra: &[&str]) -> Result<Value> {
    let mut args = vec![
        "--repo".to_owned(),
        store.display().to_string(),
        "pull".into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["demo".to_owned(), REF.to_owned()]);
    let out = cfsync(args).await?;
    serde_json::from_str(&out).with_context(|| format!("pull --json printed {out:?}"))
}

fn commit(which: &str) -> Result<String> {
    let text = DEMO
        .get_file("commits")
        .and_then(|f| f.contents_utf8())
        .ok_or_else(|| anyhow!("the bundled demo has no commits file"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(which).map(|c| c.trim().to_owned()))
        .ok_or_else(|| anyhow!("the bundled demo has no {which} commit"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// Tries to mount the image of `REF` in `store` at `dir`, read a file, and unmount.
async fn try_mount(store: &Path, dir: &Path) -> Result<(Vec<String>, String)> {
    std::fs::create_dir_all(dir)?;
    cfsync(vec![
        "--repo".into(),
        store.display().to_string(),
        "mount".into(),
        REF.into(),
        dir.display().to_string(),
    ])
    .await?;
    let listing = std::fs::read_dir(dir).map(|rd| {
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    });
    let release = std::fs::read_to_string(dir.join("usr/lib/os-release"));
    let _ = rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH);
    Ok((listing?, release?))
}

/// Runs the demo.
pub(crate) async fn run(args: &crate::DemoArgs, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let (v1, v2) = (commit("v1")?, commit("v2")?);
    let tmp;
    let work: PathBuf = match &args.keep {
        Some(p) => {
            std::fs::create_dir_all(p)?;
            p.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("cfsync-demo.").tempdir()?;
            tmp.path().to_owned()
        }
    };
    let key = work.join("demo.asc");
    let asc = DEMO
        .get_file("demo.asc")
        .ok_or_else(|| anyhow!("the bundled demo has no demo.asc"))?;
    std::fs::write(&key, asc.contents())?;

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let url = format!("http://{}/", listener.local_addr()?);
    let served = Arc::new(Served::default());
    let server = tokio::spawn(serve(listener, Arc::clone(&served)));
    let say = |s: String| {
        if !quiet && !args.json {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{s}");
        }
    };
    say(format!(
        "cfsync demo: serving a signed OSTree repository (2 versions, static deltas) at {url}"
    ));

    // The store a user would have: remote with the publisher's key, v1, then the update.
    let store = work.join("store");
    let st = store.display().to_string();
    let add = |s: String| {
        vec![
            "--repo".into(),
            s,
            "remote".into(),
            "add".into(),
            "demo".into(),
            url.clone(),
            "--gpg-import".into(),
            key.display().to_string(),
        ]
    };
    cfsync(add(st.clone())).await?;
    let p1 = pull_json(&store, &["--commit", &v1]).await?;
    say(format!(
        "1. pulled v1 {} {}: {} bytes in {} requests, {} objects; {}",
        short(&v1),
        p1["delta"]
            .as_str()
            .map_or("object by object".to_owned(), |_| "through a scratch delta"
                .to_owned()),
        u(&p1, "bytes_fetched"),
        u(&p1, "requests"),
        u(&p1, "objects_fetched"),
        p1["signatures"][0].as_str().unwrap_or("no signature")
    ));
    let p2 = pull_json(&store, &[]).await?;
    if p2["delta"].is_null() {
        bail!("the update to v2 did not use the static delta: {p2}");
    }
    // The same update object by object, in a second store, for comparison.
    let objects_store = work.join("store-objects");
    cfsync(add(objects_store.display().to_string())).await?;
    pull_json(&objects_store, &["--no-deltas", "--commit", &v1]).await?;
    let p3 = pull_json(&objects_store, &["--no-deltas"]).await?;
    if p3["image"] != p2["image"] {
        bail!(
            "the delta and the object pulls of v2 built different images: {} vs {}",
            p2["image"],
            p3["image"]
        );
    }
    let (delta_bytes, object_bytes) = (u(&p2, "bytes_fetched"), u(&p3, "bytes_fetched"));
    let saved = 100u64.saturating_sub(delta_bytes.saturating_mul(100) / object_bytes.max(1));
    say(format!(
        "2. updated to v2 {} through static delta {} ({} part): {} bytes in {} requests, {} objects rebuilt, {} reused",
        short(&v2),
        p2["delta"].as_str().map_or("", short),
        u(&p2, "delta_parts"),
        delta_bytes,
        u(&p2, "requests"),
        u(&p2, "objects_fetched"),
        u(&p2, "objects_reused"),
    ));
    say(format!(
        "   object by object the same update costs {object_bytes} bytes in {} requests: the delta saved {saved}% of the bytes",
        u(&p3, "requests")
    ));
    say(format!(
        "   both routes built the same image {}",
        p2["image"].as_str().map_or("", short)
    ));

    let listing = cfsync(vec![
        "--repo".into(),
        st.clone(),
        "ls".into(),
        REF.into(),
        "/usr".into(),
    ])
    .await?;
    let fsck = cfsync(vec!["--repo".into(), st.clone(), "fsck".into()])
        .await
        .is_ok();
    let mounted = if rustix::process::geteuid().is_root() {
        match try_mount(&store, &work.join("mnt")).await {
            Ok(m) => Some(m),
            Err(e) => {
                say(format!(
                    "3. mount not possible here ({e:#}); the tree of v2 (cfsync ls):"
                ));
                None
            }
        }
    } else {
        say("3. not root, so no mount; the tree of v2 (cfsync ls):".into());
        None
    };
    match &mounted {
        Some((top, release)) => {
            say(format!(
                "3. mounted the composefs image of v2 (read-only EROFS + overlay): / holds {}",
                top.join(" ")
            ));
            if let Some(l) = release.lines().find(|l| l.starts_with("VERSION_ID")) {
                say(format!("   usr/lib/os-release says {l}"));
            }
        }
        None => {
            for l in listing.lines().take(12) {
                say(format!("   {l}"));
            }
        }
    }
    say(format!(
        "4. fsck {}; {} bytes and {} requests served in all; {:.2} s",
        if fsck { "passed" } else { "FAILED" },
        served.bytes.load(Ordering::Relaxed),
        served.requests.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    ));
    if args.keep.is_some() {
        say(format!("   kept in {} (store: {st})", work.display()));
    }
    server.abort();
    if args.json {
        let v = json!({
            "url": url,
            "v1": p1,
            "v2": p2,
            "v2_objects": p3,
            "delta_saved_percent": saved,
            "fsck": fsck,
            "mounted": mounted.is_some(),
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    if !fsck {
        bail!("fsck failed on the demo store");
    }
    Ok(())
}
