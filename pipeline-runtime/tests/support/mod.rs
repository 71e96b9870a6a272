//! What the S3 tests share: the test server's settings for child processes, a TCP proxy that
//! can cut the server off (a real outage as the pipeline sees it) and counts the requests that go
//! through it, and a builder for the `ci` example pipeline binary.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The S3 test server's settings, from the same source `TestS3` reads them from: the
/// environment when it names an endpoint, else the file `scripts/s3-server.sh start` writes.
#[derive(Debug, Clone)]
pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
    vars: BTreeMap<String, String>,
}

impl S3Env {
    /// Fails (never skips) when the server is not running.
    pub fn load() -> S3Env {
        let s3 = sparkwing_storage::testing::TestS3::from_env();
        let vars: BTreeMap<String, String> = if std::env::var("SPARKWING_TEST_S3_ENDPOINT")
            .is_ok_and(|v| !v.is_empty())
        {
            std::env::vars().collect()
        } else {
            let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/s3/test-s3.env");
            std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("read `{}`: {e}", file.display()))
                .lines()
                .filter_map(|l| l.trim().trim_start_matches("export ").split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect()
        };
        let vars = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
            .iter()
            .filter_map(|k| vars.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        S3Env {
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            vars,
        }
    }

    /// `127.0.0.1:<port>` of the server.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the test endpoint is `http://<ip>:<port>`")
    }

    /// Credentials and region for a child process.
    pub fn child_vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
}

/// Requests seen by the proxy, by `<HTTP method> <logs|state|other>`.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub by_method: BTreeMap<String, u64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl Counts {
    pub fn requests(&self) -> u64 {
        self.by_method.values().sum()
    }
    /// Requests of `key` (`"PUT logs"`), or of every key starting with it (`"PUT"`).
    pub fn of(&self, key: &str) -> u64 {
        self.by_method
            .iter()
            .filter(|(k, _)| k.starts_with(key))
            .map(|(_, v)| v)
            .sum()
    }
}

struct ProxyShared {
    upstream: SocketAddr,
    up: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
    counts: Mutex<Counts>,
}

/// A loopback TCP proxy in front of the S3 server. [`Proxy::cut`] closes its port and every open
/// connection, so clients get "connection refused" as from a stopped server; [`Proxy::restore`]
/// opens it again on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<ProxyShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(ProxyShared {
            upstream,
            up: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            counts: Mutex::new(Counts::default()),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(Some(listener), addr, s));
        Proxy {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Let the accept loop drop its listener before the caller goes on.
        std::thread::sleep(Duration::from_millis(50));
    }

    pub fn restore(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    pub fn counts(&self) -> Counts {
        self.shared.counts.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, addr: SocketAddr, s: Arc<ProxyShared>) {
    while !s.stop.load(Ordering::SeqCst) {
        if !s.up.load(Ordering::SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener.insert(l)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Ok((client, _)) => {
                let s = s.clone();
                std::thread::spawn(move || serve(client, s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn serve(client: TcpStream, s: Arc<ProxyShared>) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(s.upstream) else {
        return;
    };
    {
        let mut conns = s.conns.lock().unwrap();
        conns.push(client.try_clone().unwrap());
        conns.push(server.try_clone().unwrap());
    }
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let s2 = s.clone();
    let up = std::thread::spawn(move || {
        let mut parser = RequestCounter::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            parser.feed(&buf[..n], &s2.counts);
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        s.counts.lock().unwrap().bytes_down += n as u64;
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Follows HTTP/1.1 request framing (headers, then `Content-Length` bytes of body) to count
/// requests by method.
#[derive(Default)]
struct RequestCounter {
    head: Vec<u8>,
    body_left: u64,
}

impl RequestCounter {
    fn feed(&mut self, mut data: &[u8], counts: &Mutex<Counts>) {
        counts.lock().unwrap().bytes_up += data.len() as u64;
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = (self.body_left as usize).min(data.len());
                self.body_left -= n as u64;
                data = &data[n..];
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            if self.head.ends_with(b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.head).to_string();
                self.head.clear();
                let mut words = text.split(' ');
                let method = words.next().unwrap_or("");
                let path = words.next().unwrap_or("");
                // Which surface the request is for, by this crate's test layout.
                let kind = if path.contains("state.ndjson") {
                    "state"
                } else if path.contains("/logs") {
                    "logs"
                } else {
                    "other"
                };
                let method = format!("{method} {kind}");
                self.body_left = text
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                *counts.lock().unwrap().by_method.entry(method).or_default() += 1;
            }
        }
    }
}

/// The `ci` example binary (built by `cargo test` beside the test binaries).
pub fn example_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples/ci");
    assert!(
        bin.exists(),
        "`{}` missing: run `cargo test -p pipeline-runtime`",
        bin.display()
    );
    bin
}

/// A fresh run id (`run-YYYYMMDD-HHMMSS-<8 hex>`), unique per call.
pub fn run_id() -> String {
    sparkwing_contract::RunId::generate().to_string()
}

/// One ci-embedded pipeline run against S3 under `prefix`, through `endpoint`.
pub struct CiRun {
    pub home: tempfile::TempDir,
    pub run_id: String,
    pub prefix: String,
    pub command: Command,
}

impl CiRun {
    pub fn new(s3: &S3Env, endpoint: &str, label: &str, args: &[&str]) -> CiRun {
        let home = tempfile::tempdir().unwrap();
        let run_id = run_id();
        let prefix = format!("test/runtime-{label}/{run_id}");
        let backends = serde_json::json!({
            "state": "sqlite",
            "logs": format!("s3://{}/{prefix}/logs", s3.bucket),
            "cache": format!("s3://{}/{prefix}/cache", s3.bucket),
        });
        let mut command = Command::new(example_bin());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SPARKWING_HOME", home.path().join("home"))
            .env("SPARKWING_WORK_DIR", home.path())
            .env("SPARKWING_RUN_ID", &run_id)
            .env("SPARKWING_MODE", "ci-embedded")
            .env("SPARKWING_WORKERS", "2")
            .env("SPARKWING_LOG_FORMAT", "plain")
            .env("SPARKWING_BACKENDS", backends.to_string())
            .env("SPARKWING_S3_ENDPOINT", endpoint)
            .envs(s3.child_vars())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        CiRun {
            home,
            run_id,
            prefix,
            command,
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> CiRun {
        self.command.env(k, v);
        self
    }

    pub fn db(&self) -> PathBuf {
        self.home.path().join("home/state.db")
    }

    pub fn spool(&self) -> PathBuf {
        self.home.path().join("home/spool").join(&self.run_id)
    }
}
