//! The runtime in ci-embedded mode against the real S3 test server: live state in the bucket,
//! batched log parts, CI console groups, delivery through an outage, and cancellation.
//!
//! Needs the server: `scripts/s3-server.sh start` (these tests fail, never skip, without it).

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sparkwing_contract::record::{NodeStatus, Outcome, RunStatus, StateDump};
use sparkwing_storage::s3::{S3ArtifactStore, S3LogStore, S3Options};
use sparkwing_storage::{ArtifactStore, LogStore, ReadOpts};
use sparkwing_storage_testing::TestS3;
use std::io::Read;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{CiRun, Proxy, S3Env};

/// A spawned pipeline whose stdout and stderr are collected as they come.
struct Running {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    mut r: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

impl Running {
    fn spawn(run: &mut CiRun) -> Running {
        let mut child = run.command.spawn().expect("spawn the ci example");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), out.clone()),
            collect(child.stderr.take().unwrap(), err.clone()),
        ];
        Running {
            child,
            out,
            err,
            readers,
        }
    }

    fn wait_for(&self, text: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while !self.out.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < end,
                "no `{text}` within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.out.lock().unwrap(),
                self.err.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    /// Waits for the exit (killing the process past `timeout`): (code, stdout, stderr).
    fn finish(mut self, timeout: Duration) -> (i32, String, String) {
        let end = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the pipeline did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.out.lock().unwrap(),
                    self.err.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.out.lock().unwrap().clone();
        let err = self.err.lock().unwrap().clone();
        (status.code().unwrap_or(-1), out, err)
    }
}

/// Reads the bucket the way a dashboard would.
struct Bucket {
    rt: tokio::runtime::Runtime,
    cache: S3ArtifactStore,
    logs: S3LogStore,
    raw_logs: S3ArtifactStore,
    run_id: String,
}

impl Bucket {
    fn new(run: &CiRun) -> Bucket {
        let s3 = TestS3::from_env();
        let opts = || S3Options {
            request_timeout: Duration::from_secs(5),
            max_attempts: 2,
            ..S3Options::default()
        };
        let cfg = s3.config();
        Bucket {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            cache: S3ArtifactStore::new(cfg, &s3.bucket, &format!("{}/cache", run.prefix), opts())
                .unwrap(),
            logs: S3LogStore::new(cfg, &s3.bucket, &format!("{}/logs", run.prefix), opts())
                .unwrap(),
            raw_logs: S3ArtifactStore::new(
                cfg,
                &s3.bucket,
                &format!("{}/logs", run.prefix),
                opts(),
            )
            .unwrap(),
            run_id: run.run_id.clone(),
        }
    }

    fn state(&self) -> Option<StateDump> {
        let key = format!("runs/{}/state.ndjson", self.run_id);
        match self.rt.block_on(self.cache.get(&key)) {
            Ok(bytes) => Some(StateDump::parse(&String::from_utf8(bytes).unwrap())),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("read the state: {e}"),
        }
    }

    fn log(&self, node: &str) -> String {
        let bytes = self
            .rt
            .block_on(self.logs.read(&self.run_id, node, &ReadOpts::default()))
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn parts(&self, node: &str) -> Vec<String> {
        self.rt
            .block_on(self.raw_logs.list(&format!("{}/{node}/", self.run_id)))
            .unwrap()
    }

    fn has(&self, key: &str) -> bool {
        self.rt.block_on(self.cache.has(key)).unwrap()
    }
}

fn msgs(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["msg"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn a_run_streams_live_state_and_batched_log_parts_to_the_bucket() {
    let s3 = S3Env::load();
    let mut run = CiRun::new(&s3, &s3.endpoint, "live", &["ci"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "acme/app")
        .env("GITHUB_RUN_ID", "777")
        .env("GITHUB_SHA", "0123abcd")
        .env("GITHUB_REF_NAME", "main");
    let bucket = Bucket::new(&run);
    let p = Running::spawn(&mut run);

    // While `build` prints its 3000 lines over ~3 s, the bucket already shows it running.
    let end = Instant::now() + Duration::from_secs(10);
    let live = loop {
        if let Some(d) = bucket.state()
            && d.nodes
                .iter()
                .any(|n| n.id == "build" && n.status == NodeStatus::Running)
        {
            break d;
        }
        assert!(Instant::now() < end, "no live state with `build` running");
        std::thread::sleep(Duration::from_millis(100));
    };
    let run_rec = live.run.expect("run line first");
    assert_eq!(run_rec.status, RunStatus::Running);
    assert_eq!(run_rec.invocation.mode, "ci-embedded");
    assert_eq!(run_rec.invocation.ci_vendor, "github-actions");
    assert_eq!(
        run_rec.invocation.ci_job_url,
        "https://github.com/acme/app/actions/runs/777"
    );
    assert_eq!(run_rec.invocation.extra["ci_repository"], "acme/app");
    assert_eq!(run_rec.git_sha, "0123abcd");
    assert_eq!(run_rec.git_branch, "main");

    let (code, out, err) = p.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");

    let done = bucket.state().expect("final state");
    let r = done.run.unwrap();
    assert_eq!(r.status, RunStatus::Success);
    assert!(r.finished_at.is_some());
    assert_eq!(done.nodes.len(), 3);
    for n in &done.nodes {
        assert_eq!(n.status, NodeStatus::Done, "{}", n.id);
        assert_eq!(n.outcome, Some(Outcome::Success), "{}", n.id);
    }
    let build = done.nodes.iter().find(|n| n.id == "build").unwrap();
    let key = format!("ci/{}/app.txt", run.run_id);
    assert_eq!(build.artifacts, std::slice::from_ref(&key));
    assert!(bucket.has(&key));

    // 3000 lines over ~3 s: a part per second or so, never a part per line.
    let log = bucket.log("build");
    let lines: Vec<String> = msgs(&log)
        .into_iter()
        .filter(|m| m.starts_with("build line "))
        .collect();
    assert_eq!(lines.len(), 3000);
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("build line {}", i + 1))
    );
    let parts = bucket.parts("build");
    assert!(
        (2..=8).contains(&parts.len()),
        "{} parts: {parts:?}",
        parts.len()
    );
    assert!(
        msgs(&bucket.log("test"))
            .iter()
            .any(|m| m.starts_with("artifact ok"))
    );

    // Two workers on GitHub Actions: each node's lines folded into one group, not interleaved.
    let open = out.find("::group::✔ build").expect("a group for build");
    let close = open + out[open..].find("::endgroup::").unwrap();
    let group = &out[open..close];
    let in_group = group
        .lines()
        .filter(|l| l.starts_with("build line "))
        .count();
    assert_eq!(in_group, 3000, "{group:.300}");
    assert!(
        !group.contains("linting"),
        "another node's line inside build's group"
    );
    assert!(out.contains("::group::✔ lint"), "{out:.2000}");
    assert!(
        !out.contains("[build] build line"),
        "no prefixed lines inside groups"
    );
}

#[test]
fn an_outage_mid_run_spools_log_parts_and_delivers_them_when_the_store_returns() {
    let s3 = S3Env::load();
    let proxy = Proxy::start(s3.addr());
    let mut run = CiRun::new(
        &s3,
        &proxy.endpoint(),
        "outage",
        &["slow", "--seconds", "16"],
    );
    let bucket = Bucket::new(&run);
    let p = Running::spawn(&mut run);
    p.wait_for("ready\n", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    let before = bucket.parts("slow").len();
    assert!(before >= 1, "parts flow before the outage");

    // The store is unreachable for 10 s (the proxy refuses and drops every connection).
    proxy.cut();
    std::thread::sleep(Duration::from_secs(10));
    // Nothing reached the bucket meanwhile, and the pipeline kept going.
    assert_eq!(bucket.parts("slow").len(), before);
    let during = p.out.lock().unwrap().matches("tick ").count();
    assert!(
        during >= 100,
        "the job kept running during the outage: {during} ticks"
    );
    proxy.restore();

    let (code, out, err) = p.finish(Duration::from_secs(40));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("failed to deliver a log part"), "{err}");
    assert!(err.contains("reachable again"), "{err}");
    assert!(out.contains("reached s3://"), "the summary tells: {out}");

    let ticks: Vec<String> = msgs(&bucket.log("slow"))
        .into_iter()
        .filter(|m| m.starts_with("tick "))
        .collect();
    let expected: Vec<String> = (1..=160).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, expected, "every line, in order, once");

    let state = bucket.state().unwrap();
    let r = state.run.unwrap();
    assert_eq!(r.status, RunStatus::Success);
    assert!(r.invocation.extra["log_parts_spooled"].as_u64().unwrap() >= 1);
    assert_eq!(r.invocation.extra["log_parts_undelivered"], 0);
    assert!(
        !run.spool().join("logs").exists(),
        "the drained spool is removed"
    );
    let reader = sparkwing_records::Reader::open(&run.db()).unwrap();
    let local = reader.get_run(&run.run_id).unwrap().unwrap();
    assert_eq!(local.invocation.extra["log_parts_undelivered"], 0);
}

#[test]
fn a_cancelled_run_is_cancelled_in_the_bucket_within_five_seconds() {
    let s3 = S3Env::load();
    let mut run = CiRun::new(&s3, &s3.endpoint, "cancel", &["slow"]);
    let bucket = Bucket::new(&run);
    let p = Running::spawn(&mut run);
    p.wait_for("tick 5", Duration::from_secs(10));
    let signalled = Instant::now();
    p.signal(Signal::SIGINT);
    let seen = loop {
        if let Some(d) = bucket.state()
            && d.run
                .as_ref()
                .is_some_and(|r| r.status == RunStatus::Cancelled)
        {
            break d;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "the bucket does not show the run cancelled 5 s after the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let node = &seen.nodes[0];
    assert_eq!(node.status, NodeStatus::Done);
    assert_eq!(node.outcome, Some(Outcome::Cancelled));
    let (code, out, err) = p.finish(Duration::from_secs(10));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let reader = sparkwing_records::Reader::open(&run.db()).unwrap();
    assert_eq!(
        reader.get_run(&run.run_id).unwrap().unwrap().status,
        RunStatus::Cancelled
    );
    // The last lines before the signal reached the store.
    assert!(msgs(&bucket.log("slow")).iter().any(|m| m == "tick 5"));
}

#[test]
fn a_cancel_during_an_outage_still_ends_within_five_seconds_and_keeps_the_logs() {
    let s3 = S3Env::load();
    let proxy = Proxy::start(s3.addr());
    let mut run = CiRun::new(&s3, &proxy.endpoint(), "cancel-outage", &["slow"]);
    let p = Running::spawn(&mut run);
    p.wait_for("tick 3", Duration::from_secs(10));
    proxy.cut();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    p.signal(Signal::SIGTERM);
    let (code, out, err) = p.finish(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}\n{out}\n{err}");
    assert_eq!(
        code, 1,
        "cancelled: exit 1, whatever the storage did\n{out}\n{err}"
    );
    assert!(out.contains("could not be delivered to s3://"), "{out}");
    assert!(
        out.contains("the run state could not be delivered"),
        "{out}"
    );

    let reader = sparkwing_records::Reader::open(&run.db()).unwrap();
    let local = reader.get_run(&run.run_id).unwrap().unwrap();
    assert_eq!(local.status, RunStatus::Cancelled);
    let undelivered = local.invocation.extra["log_parts_undelivered"]
        .as_u64()
        .unwrap();
    assert!(undelivered >= 1, "{:?}", local.invocation.extra);
    assert_eq!(local.invocation.extra["state_undelivered"], true);
    let kept: usize = walk(&run.spool().join("logs")).len();
    assert_eq!(
        kept as u64, undelivered,
        "every undelivered part is on disk"
    );
    assert!(run.spool().join("state.ndjson").is_file());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
