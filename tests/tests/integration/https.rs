//! HTTPS: cfsync pulls over TLS from nginx with a certificate of a throw-away CA (made
//! by the `openssl` command line), trusting that CA through the remote's `tls-ca-path`
//! only; without it the pull fails naming the URL and the certificate problem. A plain
//! `http` URL that redirects to the `https` server is followed (the `http` client loads
//! no CA roots and hands the request over to the TLS client), and the redirect rules
//! hold over the whole chain: the limit counts hops on both sides of the hand-over, a
//! redirect from `https` back to `http` is refused, and credentials set as extra headers
//! do not follow the change of scheme.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use cfsync_engine::source::{FetchError, HttpSource, PathKind, SourceOptions};
use cfsync_tests::{
    NO_ARGS, Ostree, TreeBuilder, describe, free_port, require, run_checked, start_nginx,
    stop_nginx, tempdir,
};
use serde_json::Value as Json;
use tempfile::TempDir;

/// A CA and a server certificate for `127.0.0.1` signed by it, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Makes a CA (`ca.crt`) and a server key and certificate for IP 127.0.0.1
/// (`server.key`, `server.crt`) in `dir` with `openssl`.
fn make_pki(dir: &Path) -> Pki {
    require("openssl");
    fs::create_dir_all(dir).unwrap();
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.crt");
    run_checked(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .args(["-nodes", "-days", "2", "-subj", "/CN=cfsync test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
    );
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    run_checked(
        Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .args(["-nodes", "-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let cert = dir.join("server.crt");
    run_checked(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
    );
    Pki { ca, cert, key }
}

/// nginx serving a directory over HTTPS, with a second, plain-`http` server block that
/// redirects: everything to the same path on the `https` server, except `/h2/P`
/// (to `http` `/h1/P`) and `/h1/P` (to `https` `/s1/P`). On the `https` side `/s1/P`
/// redirects to `/P` and `/down/P` back to `http` `/P`. Each block has its own access log
/// (status, URI, `Authorization` header). Stopped when dropped.
struct TlsNginx {
    child: Option<Child>,
    state: TempDir,
    https: u16,
    http: u16,
    /// Plain HTTP/2 only (prior knowledge), serving the root.
    h2c: u16,
}

impl TlsNginx {
    fn serve(root: &Path, pki: &Pki) -> Self {
        require("nginx");
        let root = root.canonicalize().unwrap();
        let mut last_error = String::new();
        // A port found free can be taken before nginx binds it: retry with others.
        for _ in 0..5 {
            let state = tempfile::Builder::new()
                .prefix("cfsync-nginx-tls-")
                .tempdir()
                .unwrap();
            let mut server = TlsNginx {
                child: None,
                state,
                https: free_port(),
                http: free_port(),
                h2c: free_port(),
            };
            if server.https == server.http
                || server.h2c == server.https
                || server.h2c == server.http
            {
                continue;
            }
            match server.start(&root, pki) {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx (TLS) did not start: {last_error}");
    }

    fn start(&mut self, root: &Path, pki: &Pki) -> Result<(), String> {
        let st = self.state.path();
        let http = format!(
            r#"
  log_format t '$status $request_uri "$http_authorization"';
  log_format p '$server_protocol $connection $request_uri';
  server {{
    listen 127.0.0.1:{https} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    access_log {st}/https.log t;
    access_log {st}/https-proto.log p;
    root {root};
    location ~ ^/s1/(.*)$ {{ return 301 https://127.0.0.1:{https}/$1; }}
    location ~ ^/down/(.*)$ {{ return 301 http://127.0.0.1:{http}/$1; }}
  }}
  server {{
    listen 127.0.0.1:{http};
    access_log {st}/http.log t;
    location ~ ^/h2/(.*)$ {{ return 301 http://127.0.0.1:{http}/h1/$1; }}
    location ~ ^/h1/(.*)$ {{ return 301 https://127.0.0.1:{https}/s1/$1; }}
    location / {{ return 301 https://127.0.0.1:{https}$request_uri; }}
  }}
  server {{
    listen 127.0.0.1:{h2c} http2;
    access_log {st}/h2c-proto.log p;
    root {root};
  }}
"#,
            st = st.display(),
            https = self.https,
            http = self.http,
            h2c = self.h2c,
            cert = pki.cert.display(),
            key = pki.key.display(),
            root = root.display(),
        );
        self.child = Some(start_nginx(st, &http, &[self.https, self.http, self.h2c])?);
        Ok(())
    }

    /// `https://127.0.0.1:PORT/`.
    fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.https)
    }

    /// `http://127.0.0.1:PORT/` (the redirecting block).
    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.http)
    }

    /// `http://127.0.0.1:PORT/` of the HTTP/2-only plain block.
    fn h2c_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.h2c)
    }

    /// The access log of the `https` or the `http` block, one line per request.
    fn log(&self, https: bool) -> Vec<String> {
        self.read_log(if https { "https.log" } else { "http.log" })
    }

    /// The protocol log (`PROTOCOL CONNECTION URI`) of the `https` or the `h2c` block.
    fn proto_log(&self, https: bool) -> Vec<String> {
        self.read_log(if https {
            "https-proto.log"
        } else {
            "h2c-proto.log"
        })
    }

    fn read_log(&self, name: &str) -> Vec<String> {
        // A request is logged once its response is sent: give the worker a moment.
        std::thread::sleep(Duration::from_millis(50));
        fs::read_to_string(self.state.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn stop(&mut self) {
        stop_nginx(&mut self.child);
    }
}

impl Drop for TlsNginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A small archive repository with one unsigned commit on `test/stable` and a summary.
fn small_repo(dir: &Path) -> (Ostree, String) {
    let tree = TreeBuilder::new(dir.join("tree"));
    tree.file("usr/lib/os-release", "ID=cfsync-test\nVERSION_ID=\"1.0\"\n")
        .file("usr/bin/hello", "#!/bin/sh\necho hello\n")
        .random_file("usr/share/blob.bin", 100 * 1024, 7)
        .symlink("bin", "usr/bin");
    let repo = Ostree::init(dir.join("repo"), "archive");
    let commit = repo.commit("test/stable", tree.root(), NO_ARGS);
    repo.summary_update(None);
    (repo, commit)
}

/// Runs `cfsync --repo STORE ARGS…` with the HTTP retries cut short (a certificate
/// error is retried like any connection error).
fn cfsync(store: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--repo", store.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut cmd = cfsync_tests::cfsync_command();
    cmd.args(&all)
        .env("CFSYNC_HTTP_MAX_ATTEMPTS", "2")
        .env("CFSYNC_HTTP_RETRY_DELAY_MS", "10");
    cfsync_tests::output(&mut cmd)
}

/// Adds remote `name` at `url` (no GPG), with `tls-ca-path` when `ca` is given.
fn remote_add(store: &Path, name: &str, url: &str, ca: Option<&Path>) {
    let mut args = vec![
        "remote".to_owned(),
        "add".to_owned(),
        name.to_owned(),
        url.to_owned(),
        "--no-gpg-verify".to_owned(),
    ];
    if let Some(ca) = ca {
        args.push("--set".to_owned());
        args.push(format!("tls-ca-path={}", ca.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cfsync(store, &args);
    assert!(out.status.success(), "remote add: {}", describe(&out));
}

/// Pulls `test/stable` from `remote` and returns the pulled commit.
fn pull_ok(store: &Path, remote: &str) -> String {
    let out = cfsync(store, &["pull", "--json", remote, "test/stable"]);
    assert!(out.status.success(), "pull {remote}: {}", describe(&out));
    let v: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("pull --json printed {}: {e}", describe(&out)));
    v["commit"].as_str().unwrap().to_owned()
}

#[test]
fn pull_over_https_with_the_remotes_ca() {
    let tmp = tempdir();
    let pki = make_pki(&tmp.path().join("pki"));
    let (repo, commit) = small_repo(tmp.path());
    let server = TlsNginx::serve(repo.path(), &pki);

    // (1) https with the CA in tls-ca-path: the pull works.
    let store = tmp.path().join("store");
    remote_add(&store, "tls", &server.https_url(), Some(&pki.ca));
    assert_eq!(pull_ok(&store, "tls"), commit);
    let served = server.log(true);
    assert!(
        served.iter().any(|l| l.starts_with("200 /summary")),
        "the https block did not serve the summary: {served:?}"
    );

    // (2) Without the CA: refused, naming the URL and the certificate problem.
    let store2 = tmp.path().join("store2");
    remote_add(&store2, "noca", &server.https_url(), None);
    let out = cfsync(&store2, &["pull", "noca", "test/stable"]);
    assert!(
        !out.status.success(),
        "pull without the CA: {}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&server.https_url()),
        "the error does not name the URL: {err}"
    );
    assert!(
        err.to_lowercase().contains("certificate"),
        "the error does not mention the certificate: {err}"
    );

    // (3) An http URL redirected to https: followed, with the CA.
    let store3 = tmp.path().join("store3");
    remote_add(&store3, "up", &server.http_url(), Some(&pki.ca));
    assert_eq!(pull_ok(&store3, "up"), commit);
    let redirected = server.log(false);
    assert!(
        redirected.iter().any(|l| l.starts_with("301 /summary")),
        "the http block did not redirect the summary: {redirected:?}"
    );
    assert!(
        redirected.iter().all(|l| l.starts_with("301 ")),
        "the http block served something itself: {redirected:?}"
    );

    // (4) https redirecting back to http: refused.
    let store4 = tmp.path().join("store4");
    let down = format!("{}down/", server.https_url());
    remote_add(&store4, "down", &down, Some(&pki.ca));
    let out = cfsync(&store4, &["pull", "down", "test/stable"]);
    assert!(
        !out.status.success(),
        "pull via https->http: {}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redirect from https to http refused") && err.contains(&down),
        "unexpected error: {err}"
    );
}

/// The redirect limit counts every hop of a chain that starts on `http` and goes on over
/// `https`; the chain is one request in the counters; `Authorization` from the extra
/// headers goes to the `http` hops only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_chain_across_the_handover() {
    let tmp = tempdir();
    let pki = make_pki(&tmp.path().join("pki"));
    let (repo, _commit) = small_repo(tmp.path());
    let summary = fs::read(repo.path().join("summary")).unwrap();
    let server = TlsNginx::serve(repo.path(), &pki);
    let options = |max_redirects: usize| {
        let mut o = SourceOptions::libostree();
        o.tls_ca_path = Some(pki.ca.clone());
        o.max_redirects = max_redirects;
        o.max_attempts = 1;
        o.extra_headers = vec![("Authorization".to_owned(), "Bearer secret".to_owned())];
        o
    };
    // /h2/summary (http) -> /h1/summary (http) -> /s1/summary (https) -> /summary: 3 hops.
    let base = format!("{}h2/", server.http_url());
    let source = HttpSource::new(&base, options(3)).unwrap();
    let got = source
        .get_bytes("summary", PathKind::Metadata, 1 << 20)
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(summary.as_slice()));
    assert_eq!(
        source.stats().requests,
        1,
        "a redirect chain is one request"
    );
    let http = server.log(false);
    let https = server.log(true);
    assert_eq!(
        http,
        [
            "301 /h2/summary \"Bearer secret\"",
            "301 /h1/summary \"Bearer secret\""
        ],
        "http hops"
    );
    assert_eq!(
        https,
        ["301 /s1/summary \"-\"", "200 /summary \"-\""],
        "https hops (no credentials after the change of scheme)"
    );

    // One hop fewer allowed: the third redirect (on the https side) is refused.
    let source = HttpSource::new(&base, options(2)).unwrap();
    match source
        .get_bytes("summary", PathKind::Metadata, 1 << 20)
        .await
    {
        Err(FetchError::Redirects { url, reason }) => {
            assert_eq!(reason, "too many redirects");
            assert_eq!(url, format!("{base}summary"));
        }
        other => panic!("expected too many redirects, got {other:?}"),
    }
    // Two allowed through the hand-over itself: /h1/ -> /s1/ -> /.
    let h1 = format!("{}h1/", server.http_url());
    let source = HttpSource::new(&h1, options(2)).unwrap();
    let got = source
        .get_bytes("summary", PathKind::Metadata, 1 << 20)
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(summary.as_slice()));
    // ...but not one.
    let source = HttpSource::new(&h1, options(1)).unwrap();
    let err = source
        .get_bytes("summary", PathKind::Metadata, 1 << 20)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Redirects {
                reason: "too many redirects",
                ..
            }
        ),
        "{err:?}"
    );
}

/// Many requests at once over HTTP/2 (negotiated by ALPN on `https`, by prior knowledge
/// on plain `http`): once a first request opened the connection, all go on it,
/// multiplexed, and all are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_share_one_http2_connection() {
    let tmp = tempdir();
    let pki = make_pki(&tmp.path().join("pki"));
    let (repo, _commit) = small_repo(tmp.path());
    let summary = fs::read(repo.path().join("summary")).unwrap();
    let server = TlsNginx::serve(repo.path(), &pki);
    for https in [true, false] {
        let mut o = SourceOptions::default();
        o.tls_ca_path = Some(pki.ca.clone());
        o.http2_prior_knowledge = !https;
        o.max_attempts = 1;
        let url = if https {
            server.https_url()
        } else {
            server.h2c_url()
        };
        let source = HttpSource::new(&url, o).unwrap();
        let config = source
            .get_bytes("config", PathKind::Metadata, 1 << 20)
            .await
            .unwrap();
        assert!(config.is_some(), "{url}: no config");
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let source = source.clone();
                tokio::spawn(async move {
                    source
                        .get_bytes("summary", PathKind::Metadata, 1 << 20)
                        .await
                })
            })
            .collect();
        for t in tasks {
            let got = t.await.unwrap().unwrap();
            assert_eq!(got.as_deref(), Some(summary.as_slice()), "{url}");
        }
        let log: Vec<String> = server
            .proto_log(https)
            .into_iter()
            .filter(|l| l.ends_with(" /summary"))
            .collect();
        assert_eq!(log.len(), 40, "{url}: {log:?}");
        let connections: std::collections::BTreeSet<&str> = log
            .iter()
            .map(|l| {
                assert!(l.starts_with("HTTP/2.0 "), "{url}: not HTTP/2: {l}");
                l.split(' ').nth(1).unwrap_or_default()
            })
            .collect();
        assert_eq!(connections.len(), 1, "{url}: {log:?}");
    }
}
