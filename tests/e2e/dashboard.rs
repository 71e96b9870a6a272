//! The dashboard: the real `sparkwing dashboard` process over a real S3 server (SeaweedFS, from
//! `scripts/s3-server.sh`) and local records, its JSON API spoken over raw HTTP (so paths reach
//! the server exactly as written, `..` and `%2F` included), and its page in headless Chromium.

use crate::support::{LineWatcher, World, find_run_id, wait_timeout, workspace};
use sparkwing_contract::{NodeRecord, RunRecord, StateDump, timefmt};
use sparkwing_storage::s3::{S3ArtifactStore, S3LogStore, S3Options};
use sparkwing_storage::{ArtifactStore, LogStore};
use sparkwing_storage_testing::TestS3;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------ helpers

/// A world with no project around it (the dashboard needs none).
fn bare_world() -> World {
    let dir = crate::support::scratch().join(format!("dash-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    World::new(dir)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A `sparkwing dashboard start --foreground` process; stopped with SIGTERM when dropped.
struct Dashboard {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Dashboard {
    fn start(w: &World, extra: &[&str]) -> Dashboard {
        let addr = free_addr();
        Dashboard::start_at(w, addr, addr, extra)
    }

    /// Binds `bind` and waits until `addr` (where a client reaches it) accepts connections.
    fn start_at(w: &World, bind: SocketAddr, addr: SocketAddr, extra: &[&str]) -> Dashboard {
        let log = w.home.join(format!("foreground-{}.log", unique()));
        let out = std::fs::File::create(&log).unwrap();
        let addr_s = bind.to_string();
        let mut args = vec!["dashboard", "start", "--foreground", "--addr", &addr_s];
        args.extend_from_slice(extra);
        let child = w
            .cmd(&args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut d = Dashboard { child, addr, log };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!(
                    "dashboard exited ({status}) before listening:\n{}",
                    d.output()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return d;
            }
            assert!(
                Instant::now() < end,
                "dashboard never listened:\n{}",
                d.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn get(&self, path: &str) -> Resp {
        http(self.addr, "GET", path)
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", r.text()))
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with the path sent byte for byte (no client-side normalization).
fn http(addr: SocketAddr, method: &str, path: &str) -> Resp {
    http_with(addr, method, path, &format!("Host: {addr}\r\n"))
}

/// [`http`] with the header lines given (each ending in CRLF; must include `Host`).
fn http_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Resp {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\n{headers}Connection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

// -------------------------------------------------------------------------- bucket fixtures

/// Stores under a fresh prefix of the S3 test server, and the URLs the dashboard opens them by.
struct Bucket {
    rt: tokio::runtime::Runtime,
    arts: std::sync::Arc<S3ArtifactStore>,
    logs: std::sync::Arc<S3LogStore>,
    art_url: String,
    log_url: String,
    endpoint: String,
}

impl Bucket {
    fn new(label: &str) -> Bucket {
        let s3 = TestS3::from_env();
        let prefix = s3.unique_prefix(label);
        let arts = S3ArtifactStore::new(
            s3.config(),
            &s3.bucket,
            &format!("{prefix}/cache"),
            S3Options::default(),
        )
        .map(std::sync::Arc::new)
        .expect("open the artifact store");
        let logs = S3LogStore::new(
            s3.config(),
            &s3.bucket,
            &format!("{prefix}/logs"),
            S3Options::default(),
        )
        .map(std::sync::Arc::new)
        .expect("open the log store");
        Bucket {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            arts,
            logs,
            art_url: format!("s3://{}/{prefix}/cache", s3.bucket),
            log_url: format!("s3://{}/{prefix}/logs", s3.bucket),
            endpoint: s3.endpoint.clone(),
        }
    }

    fn put_state(&self, run: &RunRecord, nodes: &[NodeRecord]) {
        let key = format!("runs/{}/state.ndjson", run.id);
        self.rt
            .block_on(
                self.arts
                    .put(&key, StateDump::render(run, nodes).into_bytes()),
            )
            .unwrap();
    }

    fn put_raw(&self, key: &str, bytes: &[u8]) {
        self.rt
            .block_on(self.arts.put(key, bytes.to_vec()))
            .unwrap();
    }

    fn log(&self, run: &str, node: &str, msgs: &[&str]) {
        let mut part = String::new();
        for m in msgs {
            part.push_str(&serde_json::json!({"ts": timefmt::now_rfc3339(), "level": "info", "node": node, "msg": m}).to_string());
            part.push('\n');
        }
        self.rt
            .block_on(self.logs.append_part(run, node, part.into_bytes()))
            .unwrap();
    }

    /// The S3 server's address, for a [`sparkwing_storage_testing::Proxy`] in front of it.
    fn upstream(&self) -> SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the test endpoint is `http://<ip>:<port>`")
    }

    /// A world whose dashboard reads this bucket.
    fn world(&self) -> World {
        let mut w = bare_world();
        w.set("SPARKWING_S3_ENDPOINT", &self.endpoint);
        w
    }

    fn dashboard(&self, w: &World) -> Dashboard {
        Dashboard::start(
            w,
            &[
                "--no-local-store",
                "--log-store",
                &self.log_url,
                "--artifact-store",
                &self.art_url,
            ],
        )
    }
}

/// A run id for a start `secs_ago` seconds back, and its RFC 3339 start time.
fn run_id_at(secs_ago: i64, tag: u32) -> (String, String) {
    let nanos = timefmt::now_unix_nanos() - secs_ago * 1_000_000_000;
    let ts = timefmt::unix_nanos_to_rfc3339(nanos);
    let digits: String = ts.chars().filter(|c| c.is_ascii_digit()).take(14).collect();
    (
        format!("run-{}-{}-{tag:08x}", &digits[..8], &digits[8..14]),
        ts,
    )
}

fn run_record(
    id: &str,
    started: &str,
    pipeline: &str,
    status: &str,
    extra: serde_json::Value,
) -> RunRecord {
    let mut v = serde_json::json!({
        "id": id, "pipeline": pipeline, "status": status, "started_at": started,
        "git_branch": "main", "git_sha": "3f2c0a9d1e4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d",
        "invocation": {"mode": "ci-embedded", "workers": 4, "profile": "ci-team",
                       "ci_vendor": "github-actions", "ci_job_url": "https://ci.example.com/job/42"},
        "format_version": 1,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in e {
            o.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

fn node_record(
    run: &str,
    id: &str,
    deps: &[&str],
    status: &str,
    outcome: Option<&str>,
    extra: serde_json::Value,
) -> NodeRecord {
    let mut v = serde_json::json!({"run_id": run, "id": id, "deps": deps, "status": status,
                                   "started_at": timefmt::now_rfc3339()});
    if let Some(o) = outcome {
        v["outcome"] = o.into();
        v["finished_at"] = timefmt::now_rfc3339().into();
    }
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in e {
            o.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

/// The runs every bucket test starts from.
struct Seeded {
    /// Finished: build (success, saved an artifact) -> test (failed; ANSI + XSS log) -> deploy (cancelled).
    done: String,
    /// In flight: build, test done; deploy running.
    live: String,
    live_started: String,
    /// Finished successfully, with a `javascript:` CI link that must never become a link.
    hello: String,
    /// From 2020, for `since`.
    old: String,
    /// A dump that is not JSON.
    bad: String,
}

const ARTIFACT_KEY: &str = "release/app.tar.gz";
const ARTIFACT_BYTES: &[u8] = b"\x1f\x8bnot really a tarball";
const XSS: &str = "<script>alert(1)</script>";

fn seed(b: &Bucket) -> Seeded {
    let (old, _) = ("run-20200101-000000-0000000a".to_string(), ());
    b.put_state(
        &run_record(
            &old,
            "2020-01-01T00:00:00Z",
            "hello",
            "success",
            serde_json::json!({"finished_at": "2020-01-01T00:01:00Z"}),
        ),
        &[],
    );
    let (hello, t) = run_id_at(240, 1);
    b.put_state(
        &run_record(&hello, &t, "hello", "success", serde_json::json!({
            "finished_at": timefmt::now_rfc3339(),
            "invocation": {"mode": "local", "ci_vendor": "evil", "ci_job_url": "javascript:alert(2)"}
        })),
        &[node_record(&hello, "only", &[], "done", Some("success"), serde_json::json!({}))],
    );
    let (done, t) = run_id_at(180, 2);
    b.put_state(
        &run_record(
            &done,
            &t,
            "release",
            "failed",
            serde_json::json!({
                "finished_at": timefmt::now_rfc3339(), "error": "nodes failed: [test]"
            }),
        ),
        &[
            node_record(
                &done,
                "build",
                &[],
                "done",
                Some("success"),
                serde_json::json!({"artifacts": [ARTIFACT_KEY]}),
            ),
            node_record(
                &done,
                "test",
                &["build"],
                "done",
                Some("failed"),
                serde_json::json!({"exit_code": 1, "error": "test: exit status 1"}),
            ),
            node_record(
                &done,
                "deploy",
                &["test"],
                "done",
                Some("cancelled"),
                serde_json::json!({"failure_reason": "upstream-failed"}),
            ),
        ],
    );
    b.put_raw(ARTIFACT_KEY, ARTIFACT_BYTES);
    b.log(
        &done,
        "build",
        &["compiling app v1.0.0", "finished release build"],
    );
    b.log(
        &done,
        "test",
        &[
            "running 2 tests",
            "\u{1b}[31mFAILED\u{1b}[0m test_parse",
            XSS,
        ],
    );
    b.log(&done, "test", &["error: 1 test failed"]);
    let (live, live_started) = run_id_at(120, 3);
    let (live_run, live_nodes) = live_state(&live, &live_started, false);
    b.put_state(&live_run, &live_nodes);
    b.log(&live, "deploy", &["deploying…"]);
    let (bad, _) = run_id_at(60, 4);
    b.put_raw(&format!("runs/{bad}/state.ndjson"), b"this is {not json\n");
    Seeded {
        done,
        live,
        live_started,
        hello,
        old,
        bad,
    }
}

fn live_state(id: &str, started: &str, finished: bool) -> (RunRecord, Vec<NodeRecord>) {
    let run = if finished {
        run_record(
            id,
            started,
            "release",
            "success",
            serde_json::json!({"finished_at": timefmt::now_rfc3339()}),
        )
    } else {
        // Alive: its heartbeat is fresh, so no reader may call it stale.
        run_record(
            id,
            started,
            "release",
            "running",
            serde_json::json!({"last_heartbeat_at": timefmt::now_rfc3339()}),
        )
    };
    let deploy = if finished {
        node_record(
            id,
            "deploy",
            &["test"],
            "done",
            Some("success"),
            serde_json::json!({}),
        )
    } else {
        node_record(
            id,
            "deploy",
            &["test"],
            "running",
            None,
            serde_json::json!({}),
        )
    };
    let nodes = vec![
        node_record(
            id,
            "build",
            &[],
            "done",
            Some("success"),
            serde_json::json!({}),
        ),
        node_record(
            id,
            "test",
            &["build"],
            "done",
            Some("success"),
            serde_json::json!({}),
        ),
        deploy,
    ];
    (run, nodes)
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn api_over_a_bucket_without_a_local_store() {
    let b = Bucket::new("dash-api");
    let s = seed(&b);
    let w = b.world();
    let d = b.dashboard(&w);

    let caps = d.json("/api/v1/capabilities");
    assert_eq!(caps["mode"], "bucket", "{caps}");
    assert_eq!(caps["read_only"], true);
    assert_eq!(caps["stores"]["runs"], b.art_url.as_str());
    assert_eq!(caps["stores"]["logs"], b.log_url.as_str());
    assert_eq!(caps["writes"], serde_json::json!([]));
    let version = d.json("/api/v1/version");
    assert_eq!(version["pid"], d.child.id());

    // Newest first; the malformed dump is skipped (with a warning) and the rest still list.
    let all = d.json("/api/v1/runs");
    assert_eq!(
        ids(&all),
        [
            s.live.clone(),
            s.done.clone(),
            s.hello.clone(),
            s.old.clone()
        ],
        "{all:#}"
    );
    assert!(!ids(&all).contains(&s.bad));
    let warned = Instant::now() + Duration::from_secs(5);
    while !d.output().contains(&s.bad) && Instant::now() < warned {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d.output().contains(&format!("runs/{}/state.ndjson", s.bad)),
        "no warning:\n{}",
        d.output()
    );
    assert_eq!(
        all["runs"][1]["invocation"]["ci_job_url"],
        "https://ci.example.com/job/42"
    );

    assert_eq!(
        ids(&d.json("/api/v1/runs?pipeline=hello")),
        [s.hello.clone(), s.old.clone()]
    );
    assert_eq!(
        ids(&d.json("/api/v1/runs?status=failed,running")),
        [s.live.clone(), s.done.clone()]
    );
    assert_eq!(
        ids(&d.json("/api/v1/runs?limit=2")),
        [s.live.clone(), s.done.clone()]
    );
    assert_eq!(ids(&d.json("/api/v1/runs?since=1h")).len(), 3);
    assert_eq!(
        ids(&d.json("/api/v1/runs?since=2019-06-01T00:00:00Z")).len(),
        4
    );
    for bad in [
        "/api/v1/runs?status=bogus",
        "/api/v1/runs?limit=0",
        "/api/v1/runs?since=yesterday",
    ] {
        let r = d.get(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.text().contains("invalid"), "{}", r.text());
    }

    let run = d.json(&format!("/api/v1/runs/{}", s.done));
    assert_eq!(run["pipeline"], "release");
    assert!(run.get("nodes").is_none());
    let with = d.json(&format!("/api/v1/runs/{}?include=nodes", s.done));
    assert_eq!(with["run"]["status"], "failed");
    let nodes: Vec<&str> = with["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["build", "test", "deploy"]);
    assert_eq!(with["nodes"][1]["deps"], serde_json::json!(["build"]));
    assert_eq!(
        with["nodes"][0]["artifacts"],
        serde_json::json!([ARTIFACT_KEY])
    );
    assert_eq!(
        d.get("/api/v1/runs/run-20990101-000000-00000000").status,
        404
    );
    assert_eq!(d.get(&format!("/api/v1/runs/{}", s.bad)).status, 404);

    // Logs: plain (ANSI removed, HTML kept as text), ansi, ndjson, filters.
    let plain = d.get(&format!("/api/v1/runs/{}/logs/test", s.done));
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(plain.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        plain.text(),
        format!("running 2 tests\nFAILED test_parse\n{XSS}\nerror: 1 test failed\n")
    );
    let ansi = d.get(&format!("/api/v1/runs/{}/logs/test?format=ansi", s.done));
    assert!(
        ansi.text().contains("\u{1b}[31mFAILED\u{1b}[0m"),
        "{}",
        ansi.text()
    );
    assert_eq!(
        ansi.header("content-type"),
        Some("text/x-ansi; charset=utf-8")
    );
    let nd = d.get(&format!("/api/v1/runs/{}/logs/test?format=ndjson", s.done));
    assert_eq!(nd.header("content-type"), Some("application/x-ndjson"));
    let recs: Vec<serde_json::Value> = nd
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[2]["msg"], XSS);
    assert_eq!(
        d.get(&format!("/api/v1/runs/{}/logs/test?tail=1", s.done))
            .text(),
        "error: 1 test failed\n"
    );
    assert_eq!(
        d.get(&format!("/api/v1/runs/{}/logs/test?head=1", s.done))
            .text(),
        "running 2 tests\n"
    );
    assert_eq!(
        d.get(&format!("/api/v1/runs/{}/logs/test?grep=FAIL", s.done))
            .text(),
        "FAILED test_parse\n"
    );
    assert_eq!(
        d.get(&format!("/api/v1/runs/{}/logs/test?lines=2:3", s.done))
            .text(),
        format!("FAILED test_parse\n{XSS}\n")
    );
    assert_eq!(
        d.get(&format!("/api/v1/runs/{}/logs/test?tail=1&head=1", s.done))
            .status,
        400
    );
    assert_eq!(
        d.get(&format!("/api/v1/runs/{}/logs/test?format=html", s.done))
            .status,
        400
    );
    let none = d.get(&format!("/api/v1/runs/{}/logs/nothing-here", s.done));
    assert_eq!((none.status, none.body.len()), (200, 0));

    // Artifacts.
    let art = d.get(&format!("/api/v1/artifacts/{ARTIFACT_KEY}"));
    assert_eq!(art.status, 200);
    assert_eq!(art.body, ARTIFACT_BYTES);
    assert_eq!(art.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        art.header("content-disposition"),
        Some("attachment; filename=\"app.tar.gz\"")
    );
    assert_eq!(
        d.get("/api/v1/artifacts/release/missing.tar.gz").status,
        404
    );

    // Nothing outside the stores: `..`, encoded separators, control characters.
    for path in [
        "/api/v1/artifacts/../../etc/passwd",
        "/api/v1/artifacts/release/..",
        "/api/v1/artifacts/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/artifacts/release%2fapp.tar.gz",
        "/api/v1/artifacts/%2e%2e/x",
        "/api/v1/runs/..",
        "/api/v1/runs/a%2Fb",
        "/api/v1/runs/..%5C..",
        &format!("/api/v1/runs/{}/logs/a/../b", s.done),
        &format!("/api/v1/runs/{}/logs/..", s.done),
        &format!("/api/v1/runs/{}/logs/a%00b", s.done),
        "/api/v1/runs/x%0Ay",
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 400, "{path}: {} {}", r.status, r.text());
    }

    // No write route is mounted: every write is 405.
    for (method, path) in [
        ("POST", format!("/api/v1/runs/{}/cancel", s.live)),
        ("DELETE", format!("/api/v1/runs/{}", s.done)),
        ("PUT", format!("/api/v1/artifacts/{ARTIFACT_KEY}")),
        ("POST", "/api/v1/runs".to_string()),
        ("PATCH", "/api/v1/anything".to_string()),
    ] {
        let r = http(d.addr, method, &path);
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    assert_eq!(http(d.addr, "HEAD", "/api/v1/runs").status, 200);
    assert_eq!(d.get("/api/v1/nope").status, 404);

    // The page and its assets are served from the binary, with a strict content policy.
    let page = d.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/assets/app.js"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(d.get("/assets/app.js").text().contains("textContent"));
    assert_eq!(d.get("/assets/nope.js").status, 404);

    // A change in the bucket shows through the API within the live window.
    let (run, nodes) = live_state(&s.live, &s.live_started, true);
    b.put_state(&run, &nodes);
    let changed = Instant::now();
    loop {
        let v = d.json(&format!("/api/v1/runs/{}?include=nodes", s.live));
        if v["run"]["status"] == "success" && v["nodes"][2]["outcome"] == "success" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(2),
            "no update after 2 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = Instant::now();
    while d.json("/api/v1/runs?limit=1")["runs"][0]["status"] != "success" {
        assert!(
            listed.elapsed() < Duration::from_secs(2),
            "the list never showed the update"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A run that appears later is listed too.
    let (newest, t) = run_id_at(0, 9);
    b.put_state(
        &run_record(&newest, &t, "late", "running", serde_json::json!({})),
        &[],
    );
    let appeared = Instant::now();
    while d.json("/api/v1/runs?limit=1")["runs"][0]["id"] != newest.as_str() {
        assert!(
            appeared.elapsed() < Duration::from_secs(3),
            "a new run never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_page_in_headless_chromium() {
    let setup = Command::new(workspace().join("scripts/browser-setup.sh"))
        .status()
        .unwrap();
    assert!(setup.success(), "scripts/browser-setup.sh failed");
    let b = Bucket::new("dash-browser");
    let s = seed(&b);
    // Recorded as running, but its state was last written ten minutes ago: its machine is gone.
    let (stale, stale_started) = run_id_at(300, 6);
    b.put_state(
        &run_record(
            &stale,
            &stale_started,
            "release",
            "running",
            serde_json::json!({
                "last_heartbeat_at":
                    timefmt::unix_nanos_to_rfc3339(timefmt::now_unix_nanos() - 600_000_000_000)
            }),
        ),
        &[],
    );
    let w = b.world();
    let d = b.dashboard(&w);
    let shots = workspace().join("target/browser-screenshots");
    let mut node = Command::new("node")
        .arg(workspace().join("tests/browser/dashboard.test.mjs"))
        .args([&d.url(), &s.done, &s.live])
        .arg(&shots)
        .arg(&stale)
        .current_dir(workspace().join("tests/browser"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (install Node.js 20)");
    let mut stdin = node.stdin.take().unwrap();
    let stderr = LineWatcher::new(node.stderr.take().unwrap());
    let mut out = String::new();
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "UPDATE" {
            let (run, nodes) = live_state(&s.live, &s.live_started, true);
            b.put_state(&run, &nodes);
            writeln!(stdin, "UPDATED").unwrap();
        }
        out.push_str(&line);
        out.push('\n');
    }
    let code = wait_timeout(&mut node, Duration::from_secs(60));
    assert_eq!(
        code,
        0,
        "browser checks failed:\n{out}\n--- stderr ---\n{}\n--- dashboard ---\n{}",
        stderr.text(),
        d.output()
    );
    assert!(out.contains("all browser checks passed"), "{out}");
    for shot in ["runs.png", "run.png", "live-before.png", "live-after.png"] {
        let p = shots.join(shot);
        assert!(
            std::fs::metadata(&p)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "no screenshot {}",
            p.display()
        );
    }
}

#[test]
fn start_status_stop_in_the_background() {
    let w = bare_world();
    let r = w.run(&["dashboard", "status"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("dashboard not running"), "{}", r.all());

    let addr = free_addr();
    let r = w.run(&["dashboard", "start", "--addr", &addr.to_string()]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains(&format!("dashboard: http://{addr}/")),
        "{}",
        r.all()
    );
    let pid: i32 = std::fs::read_to_string(w.home.join("dashboard.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        r.stdout.contains(&format!("pid:       {pid}")),
        "{}",
        r.all()
    );
    // Whatever happens below, never leave the server behind.
    struct Reap(i32);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _reap = Reap(pid);
    assert_eq!(http(addr, "GET", "/api/v1/version").status, 200);
    let caps: serde_json::Value =
        serde_json::from_slice(&http(addr, "GET", "/api/v1/capabilities").body).unwrap();
    assert_eq!(caps["mode"], "local");
    assert_eq!(caps["read_only"], false);
    assert_eq!(
        caps["stores"]["runs"],
        format!("sqlite:{}", w.home.join("state.db").display())
    );
    let empty: serde_json::Value =
        serde_json::from_slice(&http(addr, "GET", "/api/v1/runs").body).unwrap();
    assert_eq!(empty, serde_json::json!({"runs": []}));

    let st = w.run(&["dashboard", "status"]);
    assert_eq!(st.code, 0, "{}", st.all());
    assert!(
        st.stdout.contains(&format!("pid {pid}")) && st.stdout.contains(&addr.to_string()),
        "{}",
        st.all()
    );
    let again = w.run(&["dashboard", "start", "--addr", &free_addr().to_string()]);
    assert_eq!(again.code, 1, "{}", again.all());
    assert!(again.stderr.contains("already running"), "{}", again.all());

    let stop = w.run(&["dashboard", "stop"]);
    assert_eq!(stop.code, 0, "{}", stop.all());
    assert!(stop.stdout.contains("dashboard stopped"), "{}", stop.all());
    assert!(!w.home.join("dashboard.pid").exists());
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
        "still listening"
    );
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
        "server process still alive"
    );
    assert_eq!(w.run(&["dashboard", "status"]).code, 1);
    let log = std::fs::read_to_string(w.home.join("dashboard.log")).unwrap();
    assert!(log.contains("dashboard: serving"), "{log}");
}

#[test]
fn a_taken_port_names_its_holder() {
    let w = bare_world();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    for extra in [&[][..], &["--foreground"][..]] {
        let mut args = vec!["dashboard", "start"];
        args.extend_from_slice(extra);
        let a = addr.to_string();
        args.extend_from_slice(&["--addr", &a]);
        let r = w.run(&args);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr
                .contains(&format!("bind `{addr}`: the address is already in use")),
            "{}",
            r.all()
        );
        assert!(
            r.stderr.contains(&format!("pid {}", std::process::id())),
            "holder not named:\n{}",
            r.all()
        );
        assert!(r.stderr.contains("--addr"), "{}", r.all());
    }
    assert!(!w.home.join("dashboard.pid").exists());
}

#[test]
fn no_local_store_needs_both_stores() {
    let w = bare_world();
    let dir = w.home.join("store");
    let url = format!("fs://{}", dir.display());
    for args in [
        vec!["dashboard", "start", "--no-local-store"],
        vec![
            "dashboard",
            "start",
            "--no-local-store",
            "--log-store",
            &url,
        ],
        vec![
            "dashboard",
            "start",
            "--no-local-store",
            "--artifact-store",
            &url,
            "--foreground",
        ],
    ] {
        let r = w.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        for needle in [
            "--no-local-store",
            "--log-store",
            "--artifact-store",
            "--profile",
        ] {
            assert!(
                r.stderr.contains(needle),
                "{args:?}: `{needle}` missing:\n{}",
                r.all()
            );
        }
    }
    // A profile whose logs and cache surfaces are declared supplies both.
    std::fs::write(
        w.home.join("profiles.yaml"),
        format!(
            "profiles:\n  team:\n    logs: {{ type: filesystem, path: {0}/logs }}\n    cache: {{ type: filesystem, path: {0}/cache }}\n  half:\n    logs: {{ type: filesystem, path: {0}/logs }}\n",
            dir.display()
        ),
    )
    .unwrap();
    let half = w.run(&[
        "dashboard",
        "start",
        "--no-local-store",
        "--profile",
        "half",
        "--foreground",
    ]);
    assert_eq!(half.code, 2, "{}", half.all());
    let d = Dashboard::start(&w, &["--no-local-store", "--profile", "team"]);
    let caps = d.json("/api/v1/capabilities");
    assert_eq!(
        caps["stores"]["artifacts"],
        format!("filesystem:{}/cache", dir.display())
    );
    assert_eq!(caps["read_only"], true);
    assert_eq!(d.json("/api/v1/runs"), serde_json::json!({"runs": []}));
}

/// Peak resident memory of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib * 1024
}

#[test]
fn artifact_downloads_stream_with_bounded_memory() {
    const SIZE: usize = 96 << 20;
    let w = bare_world();
    let arts = w.repo.join("artifacts");
    std::fs::create_dir_all(arts.join("release")).unwrap();
    let blob: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    std::fs::write(arts.join("release/big.bin"), &blob).unwrap();
    // Only artifacts recorded on a run's node are served: record one.
    let (id, t) = run_id_at(10, 0xa7);
    let db = sparkwing_records::Writer::open(&w.home.join("state.db")).unwrap();
    db.put_run(run_record(
        &id,
        &t,
        "release",
        "success",
        serde_json::json!({"finished_at": t}),
    ));
    db.put_node(node_record(
        &id,
        "package",
        &[],
        "done",
        Some("success"),
        serde_json::json!({"artifacts": ["release/big.bin"]}),
    ));
    db.close().unwrap();
    let spec = format!("filesystem:{}", arts.display());
    let d = Dashboard::start(&w, &["--artifact-store", &spec]);
    assert_eq!(d.get("/api/v1/capabilities").status, 200);
    let before = peak_rss(d.child.id());
    let got = d.get(&format!("/api/v1/artifacts/release/big.bin?run={id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.header("transfer-encoding"), Some("chunked"));
    assert!(got.body == blob, "{} bytes came back", got.body.len());
    let grew = peak_rss(d.child.id()).saturating_sub(before);
    // Held whole, the download alone would add 96 MiB; streamed, it adds a pipe's worth.
    assert!(
        grew < 24 << 20,
        "the dashboard's peak memory grew by {} MiB serving a 96 MiB artifact",
        grew >> 20
    );
    assert_eq!(d.get("/api/v1/artifacts/release/missing.bin").status, 404);
}

#[test]
fn read_only_local_dashboard_mounts_no_writes() {
    let w = bare_world();
    let ro = Dashboard::start(&w, &["--read-only"]);
    let r = http(
        ro.addr,
        "POST",
        "/api/v1/runs/run-20260101-000000-00000000/cancel",
    );
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.text().contains("read-only"), "{}", r.text());
    assert_eq!(
        ro.json("/api/v1/capabilities")["writes"],
        serde_json::json!([])
    );
    drop(ro);
    let rw = Dashboard::start(&w, &[]);
    assert_eq!(
        rw.json("/api/v1/capabilities")["writes"],
        serde_json::json!(["cancel"])
    );
    let r = http(
        rw.addr,
        "POST",
        "/api/v1/runs/run-20260101-000000-00000000/cancel",
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("not in flight"), "{}", r.text());
    assert_eq!(http(rw.addr, "POST", "/api/v1/runs/../cancel").status, 400);
    assert_eq!(
        http(
            rw.addr,
            "DELETE",
            "/api/v1/runs/run-20260101-000000-00000000"
        )
        .status,
        405
    );
}

#[test]
fn other_sites_cannot_drive_the_dashboard() {
    let w = bare_world();
    let d = Dashboard::start(&w, &[]);
    // DNS rebinding: a page on another name that resolves to 127.0.0.1.
    let r = http_with(d.addr, "GET", "/api/v1/runs", "Host: evil.example:4343\r\n");
    assert_eq!(r.status, 403, "{}", r.text());
    let ok = http_with(
        d.addr,
        "GET",
        "/api/v1/capabilities",
        &format!("Host: localhost:{}\r\n", d.addr.port()),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    // A cross-site form or fetch POST carries a foreign Origin.
    let r = http_with(
        d.addr,
        "POST",
        "/api/v1/runs/run-20260101-000000-00000000/cancel",
        &format!("Host: {}\r\nOrigin: http://evil.example\r\n", d.addr),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = http_with(
        d.addr,
        "POST",
        "/api/v1/runs/run-20260101-000000-00000000/cancel",
        &format!("Host: {a}\r\nOrigin: http://{a}\r\n", a = d.addr),
    );
    assert_eq!(
        r.status,
        409,
        "same-origin writes reach the handler: {}",
        r.text()
    );
    drop(d);
    // Binding beyond loopback with writes is refused.
    let r = w.run(&["dashboard", "start", "--foreground", "--addr", "0.0.0.0:0"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--read-only"), "{}", r.all());
}

#[test]
fn a_local_run_whose_processes_were_killed_is_marked_orphaned() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let w = World::sample();
    let warm = w.run(&["run", "hello"]);
    assert_eq!(warm.code, 0, "{}", warm.all());
    let d = Dashboard::start(&w, &[]);
    let mut child = w.spawn(&["run", "slow", "--seconds", "30"]);
    let out = LineWatcher::new(child.stdout.take().unwrap());
    assert!(
        out.wait_for_line("] ready", Duration::from_secs(60)),
        "never ready:\n{}",
        out.text()
    );
    let id = find_run_id(&out.text()).expect("run id on the console");
    let live = d.json(&format!("/api/v1/runs/{id}"));
    assert_eq!(live["status"], "running", "{live}");
    assert!(live.get("orphaned").is_none(), "a live run: {live}");
    // Supervisor and pipeline die at once: nothing is left to record the end.
    let marker: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.home.join("active").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    kill(
        Pid::from_raw(marker["child_pid"].as_i64().unwrap() as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    let end = Instant::now() + Duration::from_secs(5);
    let run = loop {
        let run = d.json(&format!("/api/v1/runs/{id}?include=nodes"));
        if run["run"]["orphaned"] == true || Instant::now() > end {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["run"]["orphaned"], true, "{run:#}");
    assert_eq!(
        run["run"]["status"], "running",
        "the record itself is untouched"
    );
    let listed = d.json("/api/v1/runs?status=running");
    assert_eq!(listed["runs"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["runs"][0]["orphaned"], true, "{listed}");
}

#[test]
fn cancel_ends_an_in_flight_local_run_cancelled() {
    let mut w = World::sample();
    w.set("SPARKWING_KILL_GRACE_MS", "500");
    let warm = w.run(&["run", "hello"]);
    assert_eq!(warm.code, 0, "{}", warm.all());
    let d = Dashboard::start(&w, &[]);
    let mut child = w.spawn(&["run", "trap"]);
    let out = LineWatcher::new(child.stdout.take().unwrap());
    assert!(
        out.wait_for_line("] ready", Duration::from_secs(60)),
        "never ready:\n{}",
        out.text()
    );
    let id = find_run_id(&out.text()).expect("run id on the console");
    let listed = d.json("/api/v1/runs?status=running");
    assert_eq!(ids(&listed), std::slice::from_ref(&id), "{listed}");
    let r = http(d.addr, "POST", &format!("/api/v1/runs/{id}/cancel"));
    assert_eq!(r.status, 202, "{}", r.text());
    let code = wait_timeout(&mut child, Duration::from_secs(15));
    assert_eq!(code, 1, "a cancelled run exits 1:\n{}", out.text());
    let run = d.json(&format!("/api/v1/runs/{id}?include=nodes"));
    assert_eq!(run["run"]["status"], "cancelled", "{run:#}");
    assert_eq!(run["nodes"][0]["outcome"], "cancelled", "{run:#}");
    // The page shows its log from the local log store.
    let log = d.get(&format!(
        "/api/v1/runs/{id}/logs/{}",
        run["nodes"][0]["id"].as_str().unwrap()
    ));
    assert!(log.text().contains("ready"), "{}", log.text());
    // Once over, there is nothing left to cancel.
    assert_eq!(
        http(d.addr, "POST", &format!("/api/v1/runs/{id}/cancel")).status,
        409
    );
}

// ------------------------------------------------------------------- hostile input and load

#[test]
fn beyond_loopback_only_allowed_host_names_are_answered() {
    let w = bare_world();
    let port = free_addr().port();
    let bind: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let d = Dashboard::start_at(
        &w,
        bind,
        local,
        &[
            "--read-only",
            "--allowed-host",
            "dash.example",
            "--allowed-host",
            "CI.Example.com",
        ],
    );
    // DNS rebinding: another name that resolves to this machine.
    for path in ["/api/v1/runs", "/"] {
        let r = http_with(
            local,
            "GET",
            path,
            &format!("Host: evil.example:{port}\r\n"),
        );
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(r.text().contains("--allowed-host"), "{}", r.text());
    }
    let r = http_with(local, "GET", "/api/v1/runs", "Host: \r\n");
    assert_eq!(r.status, 403, "{}", r.text());
    for host in [
        format!("dash.example:{port}"),
        "dash.example".to_string(),
        format!("ci.example.com:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("0.0.0.0:{port}"),
    ] {
        let r = http_with(
            local,
            "GET",
            "/api/v1/capabilities",
            &format!("Host: {host}\r\n"),
        );
        assert_eq!(r.status, 200, "Host: {host}: {}", r.text());
    }
    drop(d);
    let r = w.run(&[
        "dashboard",
        "start",
        "--foreground",
        "--read-only",
        "--addr",
        "127.0.0.1:0",
        "--allowed-host",
        "http://dash.example/",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--allowed-host"), "{}", r.all());
}

#[test]
fn stop_never_signals_a_process_that_is_not_the_dashboard() {
    let w = bare_world();
    std::fs::create_dir_all(&w.home).unwrap();
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = sleeper.id();
    let pid_file = w.home.join("dashboard.pid");
    std::fs::write(&pid_file, format!("{pid}\n")).unwrap();
    std::fs::write(w.home.join("dashboard.addr"), "127.0.0.1:9\n").unwrap();
    let st = w.run(&["dashboard", "status"]);
    assert_eq!(st.code, 1, "{}", st.all());
    assert!(st.stdout.contains("dashboard not running"), "{}", st.all());
    let r = w.run(&["dashboard", "stop"]);
    let alive = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(alive, "`dashboard stop` signalled an unrelated process");
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(
        r.stderr,
        format!(
            "error: stop the dashboard: pid {pid} in `{}` is not a sparkwing dashboard (it runs `sleep`); nothing was signalled\n  hint: the stale pid file was removed; `sparkwing dashboard start` starts a dashboard\n",
            pid_file.display()
        )
    );
    assert!(!pid_file.exists(), "the stale pid file is still there");
    assert!(!w.home.join("dashboard.addr").exists());
}

#[test]
fn artifacts_are_only_keys_recorded_on_a_listed_run() {
    let b = Bucket::new("dash-art");
    let s = seed(&b);
    b.put_raw("bin/0123abcd/pipeline", b"a cached pipeline binary");
    b.put_raw("notes/secret.txt", b"not an artifact");
    let w = b.world();
    let d = b.dashboard(&w);
    let state = format!("runs/{}/state.ndjson", s.done);
    for key in ["bin/0123abcd/pipeline", "notes/secret.txt", state.as_str()] {
        for query in [String::new(), format!("?run={}", s.done)] {
            let r = d.get(&format!("/api/v1/artifacts/{key}{query}"));
            assert_eq!(r.status, 404, "{key}{query}: {}", r.text());
            assert!(
                !r.text().contains("cached pipeline") && !r.text().contains("not an artifact"),
                "{}",
                r.text()
            );
        }
    }
    let ok = d.get(&format!("/api/v1/artifacts/{ARTIFACT_KEY}?run={}", s.done));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.body, ARTIFACT_BYTES);
    // Recorded on another run only.
    let other = d.get(&format!("/api/v1/artifacts/{ARTIFACT_KEY}?run={}", s.hello));
    assert_eq!(other.status, 404, "{}", other.text());
    assert_eq!(
        d.get(&format!("/api/v1/artifacts/{ARTIFACT_KEY}?run=../x"))
            .status,
        400
    );
}

/// `n` log records of about 100 bytes whose messages are `part P line L xxx…`.
fn log_part(node: &str, p: usize, n: usize, text: &mut String) -> Vec<u8> {
    let mut part = String::new();
    for l in 0..n {
        let msg = format!("part {p:02} line {l:03} {}", "x".repeat(60));
        part.push_str(
            &serde_json::json!({"ts": "2026-01-01T00:00:00Z", "node": node, "msg": msg})
                .to_string(),
        );
        part.push('\n');
        text.push_str(&msg);
        text.push('\n');
    }
    part.into_bytes()
}

#[test]
fn a_log_tail_reads_only_its_last_parts_and_a_whole_log_streams() {
    use sparkwing_storage_testing::Proxy;
    const PARTS: usize = 40;
    const LINES: usize = 500;
    let b = Bucket::new("dash-tail");
    let (id, t) = run_id_at(60, 7);
    b.put_state(
        &run_record(
            &id,
            &t,
            "big",
            "success",
            serde_json::json!({"finished_at": t}),
        ),
        &[node_record(
            &id,
            "big",
            &[],
            "done",
            Some("success"),
            serde_json::json!({}),
        )],
    );
    let mut text = String::new();
    let mut part_bytes = 0u64;
    for p in 0..PARTS {
        let part = log_part("big", p, LINES, &mut text);
        part_bytes = part.len() as u64;
        b.rt.block_on(b.logs.append_part(&id, "big", part)).unwrap();
    }
    let lines: Vec<&str> = text.lines().collect();
    let last = |n: usize| format!("{}\n", lines[lines.len() - n..].join("\n"));
    let proxy = Proxy::start(b.upstream());
    let mut w = b.world();
    w.set("SPARKWING_S3_ENDPOINT", &proxy.endpoint());
    let d = b.dashboard(&w);
    let fetched = |path: &str| {
        let before = proxy.counts().bytes_down;
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        (r, proxy.counts().bytes_down - before)
    };
    let log = format!("/api/v1/runs/{id}/logs/big");

    let (r, down) = fetched(&format!("{log}?tail=3"));
    assert_eq!(r.text(), last(3));
    assert!(
        down < 2 * part_bytes,
        "a tail of 3 lines fetched {down} bytes of a {PARTS}-part log (a part is {part_bytes} bytes)"
    );
    let (r, down) = fetched(&format!("{log}?tail={}", LINES + 2));
    assert_eq!(r.text(), last(LINES + 2));
    assert!(down < 3 * part_bytes, "{down} bytes fetched");
    let (r, down) = fetched(&format!("{log}?head=2&format=ansi"));
    assert_eq!(r.text(), format!("{}\n{}\n", lines[0], lines[1]));
    assert!(
        down < 2 * part_bytes,
        "a head of 2 lines fetched {down} bytes"
    );
    let (r, _) = fetched(&format!("{log}?grep=part%2000%20line%2000&tail=2"));
    assert_eq!(r.text(), format!("{}\n{}\n", lines[8], lines[9]));
    let (r, _) = fetched(&format!("{log}?lines={}:{}", LINES, LINES + 1));
    assert_eq!(
        r.text(),
        format!("{}\n{}\n", lines[LINES - 1], lines[LINES])
    );
    let (r, _) = fetched(&format!("{log}?lines={}:{}&tail=1", LINES, LINES + 1));
    assert_eq!(r.text(), format!("{}\n", lines[LINES]));

    // The whole log streams part by part as a chunked body, in order.
    let (all, _) = fetched(&log);
    assert_eq!(all.header("transfer-encoding"), Some("chunked"));
    assert!(all.text() == text, "{} bytes came back", all.body.len());
    let (nd, _) = fetched(&format!("{log}?format=ndjson&tail=1"));
    let rec: serde_json::Value = serde_json::from_str(nd.text().trim()).unwrap();
    assert_eq!(rec["msg"], lines[lines.len() - 1]);
}

#[test]
fn an_oversized_state_dump_is_refused_for_its_run_and_the_rest_list() {
    use sparkwing_storage_testing::Proxy;
    let b = Bucket::new("dash-dump-cap");
    let s = seed(&b);
    // 20 nodes with 1 MiB of error text each: a 20 MiB dump, over the 16 MiB cap.
    let (big, t) = run_id_at(30, 9);
    let nodes: Vec<NodeRecord> = (0..20)
        .map(|i| {
            node_record(
                &big,
                &format!("n{i}"),
                &[],
                "done",
                Some("failed"),
                serde_json::json!({"error": "e".repeat(1 << 20)}),
            )
        })
        .collect();
    b.put_state(
        &run_record(
            &big,
            &t,
            "huge",
            "failed",
            serde_json::json!({"finished_at": t}),
        ),
        &nodes,
    );
    let proxy = Proxy::start(b.upstream());
    let mut w = b.world();
    w.set("SPARKWING_S3_ENDPOINT", &proxy.endpoint());
    let d = b.dashboard(&w);
    let all = d.json("/api/v1/runs");
    assert_eq!(
        ids(&all),
        [
            big.clone(),
            s.live.clone(),
            s.done.clone(),
            s.hello.clone(),
            s.old.clone()
        ],
        "{all:#}"
    );
    let entry = &all["runs"][0];
    assert_eq!(entry["unreadable"], true, "{entry}");
    let why = entry["error"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!("runs/{big}/state.ndjson"))
            && why.contains("20.0 MiB")
            && why.contains("16.0 MiB"),
        "{why}"
    );
    let one = d.get(&format!("/api/v1/runs/{big}"));
    assert_eq!(one.status, 502, "{}", one.text());
    assert!(one.text().contains("16.0 MiB"), "{}", one.text());
    assert!(
        proxy.counts().bytes_down < 4 << 20,
        "{} bytes fetched: the oversized dump was read",
        proxy.counts().bytes_down
    );
    // The others still read.
    assert_eq!(
        d.json(&format!("/api/v1/runs/{}", s.done))["id"],
        s.done.as_str()
    );
}

// ------------------------------------------------------------------------------ benchmarks

/// `make bench` runs this (`cargo test -p sparkwing --test e2e dashboard_bench -- --ignored
/// --nocapture`): 10,000 runs in the bucket, first page cold and warm; a 1,000-node run drawn in
/// the browser. Prints one `bench:` line per number.
#[test]
#[ignore = "benchmark: writes 10,000 objects; run with --ignored"]
fn dashboard_bench() {
    let b = Bucket::new("dash-bench");
    let total = 10_000usize;
    let started = Instant::now();
    b.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        let arts = b.arts.clone();
        for i in 0..total {
            let arts = arts.clone();
            set.spawn(async move {
                let secs_ago = (total - i) as i64 * 60;
                let (id, t) = run_id_at(secs_ago, i as u32);
                let run = run_record(
                    &id,
                    &t,
                    if i % 3 == 0 { "deploy" } else { "build" },
                    "success",
                    serde_json::json!({"finished_at": t}),
                );
                let nodes: Vec<NodeRecord> = (0..5)
                    .map(|n| {
                        node_record(
                            &id,
                            &format!("job-{n}"),
                            &[],
                            "done",
                            Some("success"),
                            serde_json::json!({}),
                        )
                    })
                    .collect();
                arts.put(
                    &format!("runs/{id}/state.ndjson"),
                    StateDump::render(&run, &nodes).into_bytes(),
                )
                .await
                .unwrap();
            });
            while set.len() >= 32 {
                set.join_next().await.unwrap().unwrap();
            }
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    });
    eprintln!(
        "bench: seeded {total} runs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A 1,000-node run: 10 layers of 100, each node needing two of the layer before.
    let (big, t) = run_id_at(0, 0xb16);
    let nodes: Vec<NodeRecord> = (0..1000)
        .map(|i| {
            let (layer, k) = (i / 100, i % 100);
            let deps: Vec<String> = if layer == 0 {
                vec![]
            } else {
                vec![
                    format!("n{}-{}", layer - 1, k),
                    format!("n{}-{}", layer - 1, (k + 1) % 100),
                ]
            };
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            node_record(
                &big,
                &format!("n{layer}-{k}"),
                &deps,
                "done",
                Some(if i % 7 == 0 { "failed" } else { "success" }),
                serde_json::json!({}),
            )
        })
        .collect();
    b.put_state(
        &run_record(
            &big,
            &t,
            "huge",
            "failed",
            serde_json::json!({"finished_at": t}),
        ),
        &nodes,
    );

    let w = b.world();
    let d = b.dashboard(&w);
    let timed = |path: &str| {
        let t = Instant::now();
        let r = d.get(path);
        assert_eq!(r.status, 200, "{}", r.text());
        (t.elapsed(), r)
    };
    let (cold, r) = timed("/api/v1/runs");
    let page: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(page["runs"].as_array().unwrap().len(), 50);
    assert_eq!(page["runs"][0]["id"], big.as_str());
    let (warm, _) = timed("/api/v1/runs");
    std::thread::sleep(Duration::from_millis(1500));
    let (warm_later, _) = timed("/api/v1/runs");
    let (filtered_cold, _) = timed("/api/v1/runs?pipeline=deploy");
    let (run_page, _) = timed(&format!("/api/v1/runs/{big}?include=nodes"));
    eprintln!(
        "bench: GET /api/v1/runs cold (10,000 runs, first page of 50): {} ms",
        cold.as_millis()
    );
    eprintln!("bench: GET /api/v1/runs warm: {} ms", warm.as_millis());
    eprintln!(
        "bench: GET /api/v1/runs warm, listing 1.5 s old: {} ms",
        warm_later.as_millis()
    );
    eprintln!(
        "bench: GET /api/v1/runs?pipeline=deploy (first use of the filter): {} ms",
        filtered_cold.as_millis()
    );
    eprintln!(
        "bench: GET /api/v1/runs/<1,000-node run>?include=nodes: {} ms",
        run_page.as_millis()
    );
    // A fresh server whose first request has a filter waits for the full listing (ten pages):
    // the cold cost when the newest runs cannot be found by day.
    let d2 = b.dashboard(&w);
    let t = Instant::now();
    let r = d2.get("/api/v1/runs?status=success");
    assert_eq!(r.status, 200, "{}", r.text());
    eprintln!(
        "bench: GET /api/v1/runs?status=success cold (full listing of 10,000 keys): {} ms",
        t.elapsed().as_millis()
    );
    drop(d2);

    let setup = Command::new(workspace().join("scripts/browser-setup.sh"))
        .status()
        .unwrap();
    assert!(setup.success());
    let out = Command::new("node")
        .arg(workspace().join("tests/browser/dag-bench.mjs"))
        .args([&d.url(), &big])
        .arg(workspace().join("target/browser-screenshots"))
        .current_dir(workspace().join("tests/browser"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{text}");
    assert!(
        cold < Duration::from_millis(1500),
        "cold first page took {cold:?}"
    );
    assert!(
        warm < Duration::from_millis(100),
        "warm first page took {warm:?}"
    );
}

/// Milliseconds from sending `GET path` to the first byte of the response body.
fn time_to_first_body_byte(addr: SocketAddr, path: &str) -> Duration {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let started = Instant::now();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the response ended before its body");
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            // Chunked: the first chunk's size line, then at least one byte of it.
            let body = &seen[end + 4..];
            if body
                .windows(2)
                .position(|w| w == b"\r\n")
                .is_some_and(|e| body.len() > e + 2)
            {
                let took = started.elapsed();
                assert!(
                    seen.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&seen[..end])
                );
                // Read to the end so the server is not cut off mid-write.
                while s.read(&mut buf).unwrap_or(0) > 0 {}
                return took;
            }
        }
    }
}

/// `make bench` runs this with [`dashboard_bench`] (`scripts/browser-bench.sh`): a 300 MB log of
/// 300 one-MiB parts and a 200 MB state dump in the bucket; the dashboard's peak memory while it
/// serves six concurrent tails of the log plus the run list and the run page of the big dump,
/// then while it streams the whole log once; and the time to the first byte of the log's tail.
/// Prints one `bench:` line per number; the goals are in docs/benchmarks.md.
#[test]
#[ignore = "benchmark: writes 500 MB to the S3 test server; run with --ignored"]
fn dashboard_bench_large_logs_and_dumps() {
    const PART: usize = 1 << 20;
    const PARTS: usize = 300;
    let b = Bucket::new("dash-bench-large");
    let (log_run, t) = run_id_at(120, 0x109);
    b.put_state(
        &run_record(
            &log_run,
            &t,
            "big-log",
            "success",
            serde_json::json!({"finished_at": t}),
        ),
        &[node_record(
            &log_run,
            "noisy",
            &[],
            "done",
            Some("success"),
            serde_json::json!({}),
        )],
    );
    let started = Instant::now();
    // One MiB parts, as the runtime writes them: records of about 200 bytes.
    let line = |p: usize, l: usize| {
        let mut rec =
            serde_json::json!({"ts": "2026-01-01T00:00:00Z", "level": "info", "node": "noisy",
            "msg": format!("part {p:03} line {l:05} {}", "x".repeat(120))})
            .to_string();
        rec.push('\n');
        rec
    };
    b.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for p in 0..PARTS {
            let mut part = String::with_capacity(PART);
            let mut l = 0;
            while part.len() + 220 < PART {
                part.push_str(&line(p, l));
                l += 1;
            }
            let name = format!("{:020}-{:010}.ndjson", 1_000_000 + p, p);
            let logs = b.logs.clone();
            let run = log_run.clone();
            set.spawn(async move { logs.put_part(&run, "noisy", &name, part.into_bytes()).await });
            while set.len() >= 8 {
                set.join_next().await.unwrap().unwrap().unwrap();
            }
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    });
    // A 200 MB dump: 200 nodes with 1 MB of error text each.
    let (dump_run, t) = run_id_at(60, 0xd0);
    let nodes: Vec<NodeRecord> = (0..200)
        .map(|i| {
            node_record(
                &dump_run,
                &format!("n{i}"),
                &[],
                "done",
                Some("failed"),
                serde_json::json!({"error": "e".repeat(1_000_000)}),
            )
        })
        .collect();
    b.put_state(
        &run_record(
            &dump_run,
            &t,
            "big-dump",
            "failed",
            serde_json::json!({"finished_at": t}),
        ),
        &nodes,
    );
    drop(nodes);
    eprintln!(
        "bench: seeded a 300 MB log ({PARTS} parts) and a 200 MB dump in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let w = b.world();
    let d = b.dashboard(&w);
    assert_eq!(d.get("/api/v1/capabilities").status, 200);
    let idle = peak_rss(d.child.id());
    let tail = format!("/api/v1/runs/{log_run}/logs/noisy?tail=100");
    let mut ttfb: Vec<Duration> = (0..5)
        .map(|_| time_to_first_body_byte(d.addr, &tail))
        .collect();
    ttfb.sort();
    let addr = d.addr;
    let paths: Vec<String> = (0..6)
        .map(|i| format!("/api/v1/runs/{log_run}/logs/noisy?tail={}", 1 + i * 1000))
        .chain([
            "/api/v1/runs".to_string(),
            format!("/api/v1/runs/{dump_run}?include=nodes"),
        ])
        .collect();
    let handles: Vec<_> = paths
        .into_iter()
        .map(|p| std::thread::spawn(move || (http(addr, "GET", &p), p)))
        .collect();
    for h in handles {
        let (r, p) = h.join().unwrap();
        let want = if p.contains(&dump_run) { 502 } else { 200 };
        assert_eq!(
            r.status,
            want,
            "{p}: {}",
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        );
    }
    let loaded = peak_rss(d.child.id());
    // The whole log once, streamed to a client that discards it.
    let full = {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        write!(s, "GET /api/v1/runs/{log_run}/logs/noisy HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let t = Instant::now();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n += k as u64,
                Err(e) => panic!("{e}"),
            }
        }
        (n, t.elapsed())
    };
    let streamed = peak_rss(d.child.id());
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "bench: dashboard peak RSS idle (after start): {:.1} MiB",
        mib(idle)
    );
    eprintln!(
        "bench: dashboard peak RSS, 6 concurrent tails of a 300 MB log + run list and run page of a 200 MB dump: {:.1} MiB",
        mib(loaded)
    );
    eprintln!(
        "bench: dashboard peak RSS after also streaming the whole 300 MB log ({:.0} MB of plain text in {:.1} s): {:.1} MiB",
        full.0 as f64 / 1e6,
        full.1.as_secs_f64(),
        mib(streamed)
    );
    eprintln!(
        "bench: time to first byte of ?tail=100 of a 300 MB log (5 requests): {}–{} ms, median {} ms",
        ttfb[0].as_millis(),
        ttfb[4].as_millis(),
        ttfb[2].as_millis()
    );
    drop(d);
    b.rt.block_on(async {
        let _ = b.logs.delete_run(&log_run).await;
        let _ = b
            .arts
            .delete(&format!("runs/{dump_run}/state.ndjson"))
            .await;
        let _ = b.arts.delete(&format!("runs/{log_run}/state.ndjson")).await;
    });
    assert!(
        loaded < 100 << 20,
        "peak RSS {:.1} MiB over the 100 MiB goal",
        mib(loaded)
    );
    assert!(
        ttfb[2] < Duration::from_millis(200),
        "median time to first byte {:?}",
        ttfb[2]
    );
}

/// Lines of `r` as they arrive, each with the moment it arrived.
fn timed_lines(
    r: impl Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l2 = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            l2.lock().unwrap().push((Instant::now(), line));
        }
    });
    lines
}

fn median_and_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(!v.is_empty(), "no samples");
    (v[v.len() / 2], v[(v.len() * 9 / 10).min(v.len() - 1)])
}

/// Latency from a job writing a line (the moment the run's console shows it) to `runs logs
/// --follow` printing it, and to the dashboard page's loop (emulated request for request: run
/// JSON, then the node's log; waiting on `/changes` when `events` is offered, else every 0.8 s)
/// having it. Measured with file events, with the polling fallback (`SPARKWING_NO_FILE_EVENTS=1`),
/// and, when `BENCH_BASELINE_SPARKWING` names another build's CLI, with that build.
#[test]
#[ignore = "benchmark (make bench)"]
fn bench_follow_and_live_latency() {
    let w = World::sample();
    let warm = w.run(&["run", "hello"]);
    assert_eq!(warm.code, 0, "{}", warm.all());
    let mut modes: Vec<(String, std::ffi::OsString, bool)> = vec![
        (
            "file events".into(),
            crate::support::sparkwing_bin().into(),
            false,
        ),
        (
            "polling fallback".into(),
            crate::support::sparkwing_bin().into(),
            true,
        ),
    ];
    if let Some(b) = std::env::var_os("BENCH_BASELINE_SPARKWING") {
        modes.push(("baseline CLI".into(), b, false));
    }
    for (label, program, no_events) in modes {
        let mut w = w.with_new_home();
        if no_events {
            w.set("SPARKWING_NO_FILE_EVENTS", "1");
        }
        let dash = {
            let addr = free_addr();
            let log = w.home.join("dash.log");
            let out = std::fs::File::create(&log).unwrap();
            let addr_s = addr.to_string();
            let child = w
                .cmd_program(
                    &program,
                    &["dashboard", "start", "--foreground", "--addr", &addr_s],
                )
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap();
            let d = Dashboard { child, addr, log };
            let end = Instant::now() + Duration::from_secs(30);
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(Instant::now() < end, "{}", d.output());
                std::thread::sleep(Duration::from_millis(50));
            }
            d
        };
        // The first run of a home builds nothing (shared target) but warms the binary cache.
        let r = w.cmd_program(&program, &["run", "hello"]).output().unwrap();
        assert!(
            r.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let mut run = w
            .cmd_program(&program, &["run", "slow", "--seconds", "4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let console = timed_lines(run.stdout.take().unwrap());
        let end = Instant::now() + Duration::from_secs(60);
        let id = loop {
            let text: String = console
                .lock()
                .unwrap()
                .iter()
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            if text.contains("] ready") {
                break crate::support::find_run_id(&text).expect("run id");
            }
            assert!(Instant::now() < end, "{label}: never ready:\n{text}");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut follow = w
            .cmd_program(&program, &["runs", "logs", &id, "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let followed = timed_lines(follow.stdout.take().unwrap());
        let caps = dash.json("/api/v1/capabilities");
        let events = caps["features"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "events"));
        let page: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>> = Default::default();
        let page_thread = {
            let page = page.clone();
            let addr = dash.addr;
            let id = id.clone();
            std::thread::spawn(move || {
                let mut stamp: Option<String> = None;
                let mut seen = 0usize;
                loop {
                    let run = http(addr, "GET", &format!("/api/v1/runs/{id}?include=nodes"));
                    let log = http(addr, "GET", &format!("/api/v1/runs/{id}/logs/slow"));
                    let now = Instant::now();
                    let lines: Vec<String> = log.text().lines().map(str::to_string).collect();
                    for l in lines.iter().skip(seen) {
                        page.lock().unwrap().push((now, l.clone()));
                    }
                    seen = seen.max(lines.len());
                    let v: serde_json::Value =
                        serde_json::from_slice(&run.body).unwrap_or_default();
                    let status = v["run"]["status"].as_str().unwrap_or("").to_string();
                    if status != "running" && status != "pending" {
                        return;
                    }
                    if events {
                        let q = stamp
                            .as_deref()
                            .map(|s| format!("?after={s}"))
                            .unwrap_or_default();
                        let r = http(addr, "GET", &format!("/api/v1/runs/{id}/changes{q}"));
                        if r.status != 200 {
                            // The page falls back to its timer when the server cannot wait.
                            std::thread::sleep(Duration::from_millis(800));
                            continue;
                        }
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.body).unwrap_or_default();
                        stamp = v["stamp"].as_str().map(str::to_string);
                    } else {
                        std::thread::sleep(Duration::from_millis(800));
                    }
                }
            })
        };
        assert_eq!(
            crate::support::wait_timeout(&mut run, Duration::from_secs(60)),
            0,
            "{label}"
        );
        assert_eq!(
            crate::support::wait_timeout(&mut follow, Duration::from_secs(30)),
            0,
            "{label}"
        );
        page_thread.join().unwrap();
        let at = |lines: &std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>, n: u32| {
            let want = format!("tick {n}");
            lines
                .lock()
                .unwrap()
                .iter()
                .find(|(_, l)| l.ends_with(&want))
                .map(|(t, _)| *t)
        };
        let mut follow_ms = Vec::new();
        let mut page_ms = Vec::new();
        // Ticks 5..=35: after every reader started, before the run's last line.
        for n in 5..=35 {
            let Some(shown) = at(&console, n) else {
                continue;
            };
            if let Some(t) = at(&followed, n) {
                follow_ms.push(t.saturating_duration_since(shown).as_secs_f64() * 1000.0);
            }
            if let Some(t) = at(&page, n) {
                page_ms.push(t.saturating_duration_since(shown).as_secs_f64() * 1000.0);
            }
        }
        let (fm, f90) = median_and_p90(follow_ms);
        let (pm, p90) = median_and_p90(page_ms);
        println!(
            "line latency, {label}: runs logs --follow median {fm:.0} ms (p90 {f90:.0} ms); dashboard page median {pm:.0} ms (p90 {p90:.0} ms)"
        );
    }
}
