//! `--sw-mode=ci-embedded` against the real S3 test server: a CI machine leaves everything in the
//! bucket, a second CI machine (other checkout path, fresh home, no Rust toolchain) runs the
//! bucket's binary, and a laptop reads the runs and logs back with `--profile`.

use crate::support::{World, block, bucket_cache, bucket_world, fixture_repo};
use sparkwing_storage::ArtifactStore;
use sparkwing_storage_testing::TestS3;

/// A world whose `ci` profile points cache and logs at a fresh prefix of the test bucket.
fn ci_world(s3: &TestS3, prefix: &str, repo: std::path::PathBuf) -> World {
    bucket_world(s3, prefix, &repo, "")
}

fn on_github(w: &mut World) {
    w.set("GITHUB_ACTIONS", "true")
        .set("GITHUB_REPOSITORY", "acme/app")
        .set("GITHUB_SERVER_URL", "https://github.example")
        .set("GITHUB_RUN_ID", "4242")
        .set("GITHUB_REF_NAME", "main");
}

#[test]
fn ci_machine_to_bucket_to_second_machine_to_laptop() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-ci");
    let cache = bucket_cache(&s3, &prefix);

    // CI machine A: builds, publishes the binary, leaves state and logs in the bucket.
    let mut a = ci_world(&s3, &prefix, fixture_repo("sample"));
    on_github(&mut a);
    let r = a.run(&[
        "run",
        "hello",
        "--sw-mode=ci-embedded",
        "--profile",
        "ci",
        "--sw-workers=2",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("published pipeline binary"),
        "{}",
        r.all()
    );
    let first = r.run_id();
    let keys = block(cache.list("")).unwrap();
    let bin: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("bin/") && !k.ends_with(".json"))
        .collect();
    assert_eq!(bin.len(), 1, "one published binary: {keys:?}");
    assert!(
        keys.contains(&format!("{}.json", bin[0])),
        "manifest next to it: {keys:?}"
    );
    let state = String::from_utf8(block(cache.get(&format!("runs/{first}/state.ndjson"))).unwrap())
        .unwrap();
    let dump = sparkwing_contract::StateDump::parse(&state);
    let run = dump.run.expect("run record in the bucket");
    assert_eq!(run.status, sparkwing_contract::RunStatus::Success);
    assert_eq!(run.invocation.mode, "ci-embedded");
    assert_eq!(run.invocation.profile, "ci");
    assert_eq!(run.invocation.ci_vendor, "github-actions");
    assert_eq!(dump.nodes.len(), 3);

    // CI machine B: the same source committed elsewhere (Cargo.lock included), a fresh home, and
    // no cargo or rustc at all — the bucket's binary runs.
    let repo_b = fixture_repo("sample");
    std::fs::copy(
        a.repo.join(".sparkwing/Cargo.lock"),
        repo_b.join(".sparkwing/Cargo.lock"),
    )
    .unwrap();
    let mut b = ci_world(&s3, &prefix, repo_b);
    on_github(&mut b);
    let bare_path = "/usr/local/bin:/usr/bin:/bin";
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v cargo || command -v rustc"])
        .env("PATH", bare_path)
        .output()
        .unwrap();
    assert!(
        !found.status.success(),
        "this machine has a toolchain on `{bare_path}`; the test needs a PATH without one"
    );
    b.set("PATH", bare_path)
        .set("SPARKWING_CARGO", "/nonexistent/cargo");
    let r = b.run(&["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("from the remote cache"), "{}", r.all());
    let second = r.run_id();

    // A failing run is recorded failed in the bucket and fails the CI step.
    let r = b.run(&["run", "failing", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed = r.run_id();

    // The laptop: another home, reads everything back from the bucket.
    let laptop = ci_world(&s3, &prefix, a.repo.clone());
    let list = laptop.run(&["runs", "list", "--profile", "ci", "-o", "json"]);
    assert_eq!(list.code, 0, "{}", list.all());
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let ids: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [&first, &second, &failed] {
        assert!(ids.contains(&id.as_str()), "{id} missing from {ids:?}");
    }
    let show = laptop.run(&["runs", "show", &second, "--profile", "ci", "-o", "json"]);
    let show: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(show["run"]["status"], "success");
    assert_eq!(show["run"]["invocation"]["binary_source"], "remote-cache");
    let show = laptop.run(&["runs", "show", &failed, "--profile", "ci", "-o", "json"]);
    let show: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(show["run"]["status"], "failed");
    let logs = laptop.run(&["runs", "logs", &first, "--node", "test", "--profile", "ci"]);
    assert_eq!(logs.code, 0, "{}", logs.all());
    assert!(
        logs.stdout.contains("testing version 1.2.3"),
        "{}",
        logs.all()
    );
}

#[test]
fn no_cache_write_and_read_only_surfaces_never_publish() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-ro");
    let cache = bucket_cache(&s3, &prefix);
    let w = ci_world(&s3, &prefix, fixture_repo("sample"));
    let r = w.run(&[
        "run",
        "hello",
        "--sw-mode=ci-embedded",
        "--profile",
        "ci",
        "--sw-no-cache-write",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("not publishing"), "{}", r.all());
    let keys = block(cache.list("bin/")).unwrap();
    assert!(keys.is_empty(), "nothing published: {keys:?}");

    let ro = bucket_world(&s3, &prefix, &w.repo, ", read_only: true");
    let r = ro.run(&["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("read_only"), "{}", r.all());
    assert!(block(cache.list("bin/")).unwrap().is_empty());
}

#[test]
fn a_child_killed_by_sigkill_is_finalized_in_the_bucket() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-kill");
    let cache = bucket_cache(&s3, &prefix);
    let w = ci_world(&s3, &prefix, fixture_repo("sample"));
    let r = w.run(&["run", "die", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(r.code, 137, "{}", r.all());
    let id = r.run_id();
    let state =
        String::from_utf8(block(cache.get(&format!("runs/{id}/state.ndjson"))).unwrap()).unwrap();
    let dump = sparkwing_contract::StateDump::parse(&state);
    let run = dump.run.unwrap();
    assert_eq!(run.status, sparkwing_contract::RunStatus::Failed);
    assert!(run.error.contains("SIGKILL"), "{}", run.error);
    assert!(
        dump.nodes
            .iter()
            .all(|n| n.status == sparkwing_contract::NodeStatus::Done),
        "{state}"
    );
}

/// Through `sparkwing run`: the bucket is unreachable for 10 s mid-run (a proxy in front of the
/// real server refuses and drops every connection). The run goes on, parts are spooled and
/// delivered once the bucket is back, the exit code is the pipeline's own, and a laptop reads
/// every line back exactly once.
#[test]
fn an_outage_mid_run_through_sparkwing_run_loses_and_duplicates_nothing() {
    use crate::support::{LineWatcher, find_run_id, wait_timeout};
    use sparkwing_storage_testing::Proxy;
    use std::time::Duration;
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-outage");
    let upstream = s3
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the test endpoint is `http://<ip>:<port>`");
    let proxy = Proxy::start(upstream);
    let mut w = ci_world(&s3, &prefix, fixture_repo("sample"));
    // Set after `ci_world`'s endpoint, so it wins.
    w.set("SPARKWING_S3_ENDPOINT", &proxy.endpoint());
    let warm = w.run(&["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"]);
    assert_eq!(warm.code, 0, "{}", warm.all());

    let mut child = w.spawn(&[
        "run",
        "slow",
        "--seconds",
        "14",
        "--sw-mode=ci-embedded",
        "--profile",
        "ci",
    ]);
    let out = LineWatcher::new(child.stdout.take().unwrap());
    let err = LineWatcher::new(child.stderr.take().unwrap());
    assert!(
        out.wait_for_line("] ready", Duration::from_secs(60)),
        "{}",
        out.text()
    );
    std::thread::sleep(Duration::from_millis(1500));
    proxy.cut();
    std::thread::sleep(Duration::from_secs(10));
    let during = out.text().matches("tick ").count();
    proxy.restore();
    assert!(
        during >= 80,
        "the job kept running during the outage: {during} ticks"
    );
    let code = wait_timeout(&mut child, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(code, 0, "stdout:\n{}\nstderr:\n{}", out.text(), err.text());
    let err = err.text();
    assert!(err.contains("failed to deliver a log part"), "{err}");
    assert!(err.contains("reachable again"), "{err}");
    let id = find_run_id(&out.text()).expect("run id on the console");

    // A laptop reads it back from the bucket: every line once, in order.
    let laptop = ci_world(&s3, &prefix, w.repo.clone());
    let logs = laptop.run(&["runs", "logs", &id, "--profile", "ci", "--grep", "tick "]);
    assert_eq!(logs.code, 0, "{}", logs.all());
    let ticks: Vec<&str> = logs
        .stdout
        .lines()
        .map(|l| l.trim_start_matches("[slow] "))
        // Not the echoed command (`$ echo ready; for …; do echo "tick $i"; …`).
        .filter(|l| !l.starts_with('$'))
        .collect();
    let expected: Vec<String> = (1..=140).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, expected, "every line, in order, once");
    let show = laptop.show_with(&id, &["--profile", "ci"]);
    assert_eq!(show["run"]["status"], "success", "{show:#}");
    // CI-derived facts are flattened into `invocation`.
    let extra = &show["run"]["invocation"];
    assert!(
        extra["log_parts_spooled"].as_u64().unwrap_or(0) >= 1,
        "{show:#}"
    );
    assert_eq!(extra["log_parts_undelivered"], 0, "{show:#}");
}

/// Through `sparkwing run`, as GitHub Actions cancels a job: SIGINT to the CI step's process.
/// The bucket says `cancelled` within 5 s and the step fails with exit 1.
#[test]
fn a_cancel_through_sparkwing_run_is_cancelled_in_the_bucket_within_five_seconds() {
    use crate::support::{LineWatcher, find_run_id, wait_timeout};
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-cancel");
    let cache = bucket_cache(&s3, &prefix);
    let mut w = ci_world(&s3, &prefix, fixture_repo("sample"));
    on_github(&mut w);
    let mut child = w.spawn(&["run", "slow", "--sw-mode=ci-embedded", "--profile", "ci"]);
    let out = LineWatcher::new(child.stdout.take().unwrap());
    // On GitHub a job's output is printed as one group when it ends, so the console cannot tell
    // that `slow` is running; the bucket can.
    assert!(
        out.wait_for("▶ slow run-", Duration::from_secs(300)),
        "{}",
        out.text()
    );
    let id = find_run_id(&out.text()).expect("run id on the console");
    let key = format!("runs/{id}/state.ndjson");
    let running = Instant::now() + Duration::from_secs(30);
    loop {
        let dump = block(cache.get(&key))
            .ok()
            .map(|b| sparkwing_contract::StateDump::parse(&String::from_utf8_lossy(&b)));
        if dump.is_some_and(|d| {
            d.nodes
                .iter()
                .any(|n| n.status == sparkwing_contract::NodeStatus::Running)
        }) {
            break;
        }
        assert!(
            Instant::now() < running,
            "`slow` never ran:\n{}",
            out.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let seen = loop {
        let state = block(cache.get(&key))
            .ok()
            .map(|b| sparkwing_contract::StateDump::parse(&String::from_utf8_lossy(&b)));
        if let Some(run) = state.and_then(|d| d.run)
            && run.status == sparkwing_contract::RunStatus::Cancelled
        {
            break signalled.elapsed();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "the bucket never said cancelled:\n{}",
            out.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        seen < Duration::from_secs(5),
        "cancelled in the bucket after {seen:?}"
    );
    assert_eq!(wait_timeout(&mut child, Duration::from_secs(15)), 1);
    // The GitHub console shows the job's output in its own group.
    assert!(out.text().contains("::group::"), "{}", out.text());
}

/// A CI machine that vanished mid-run (runner killed with everything on it) leaves a `running`
/// state behind whose heartbeat stops. Readers say so instead of showing it running forever.
#[test]
fn a_run_whose_machine_vanished_reads_as_stale() {
    use sparkwing_contract::timefmt;
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-stale");
    let cache = bucket_cache(&s3, &prefix);
    let id = sparkwing_contract::RunId::generate().to_string();
    let ago = |secs: i64| {
        timefmt::unix_nanos_to_rfc3339(timefmt::now_unix_nanos() - secs * 1_000_000_000)
    };
    let run: sparkwing_contract::RunRecord = serde_json::from_value(serde_json::json!({
        "id": id, "pipeline": "release", "status": "running", "started_at": ago(900),
        "last_heartbeat_at": ago(600), "invocation": {"mode": "ci-embedded"}, "format_version": 1,
    }))
    .unwrap();
    let dump = sparkwing_contract::StateDump::render(&run, &[]);
    block(cache.put(&format!("runs/{id}/state.ndjson"), dump.into_bytes())).unwrap();

    let laptop = ci_world(&s3, &prefix, fixture_repo("sample"));
    let list = laptop.run(&["runs", "list", "--profile", "ci"]);
    assert_eq!(list.code, 0, "{}", list.all());
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_default();
    assert!(row.contains(" stale "), "{}", list.stdout);
    assert!(
        list.stdout.contains("its machine is most likely gone"),
        "{}",
        list.stdout
    );
    let show = laptop.run(&["runs", "show", &id, "--profile", "ci"]);
    assert!(
        show.stdout.contains("heartbeat:") && show.stdout.contains("stale"),
        "{}",
        show.all()
    );
    // Following gives up at once rather than waiting for an end that will never be written.
    let follow = laptop.run(&["runs", "logs", &id, "--follow", "--profile", "ci"]);
    assert_eq!(follow.code, 1, "{}", follow.all());
    assert!(
        follow.stderr.contains(&format!("stopped following `{id}`"))
            && follow.stderr.contains("its machine is most likely gone"),
        "{}",
        follow.all()
    );
}

/// The CI job sets `SPARKWING_MODE`/`SPARKWING_WORKERS` once (GitLab `variables:`, Buildkite
/// `env:`, …): every `sparkwing run` in it honours them, a flag still wins, a bad value is a usage
/// error naming the variable, and an empty one counts as unset.
#[test]
fn mode_and_workers_come_from_the_environment_when_the_flags_are_absent() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-envmode");
    let cache = bucket_cache(&s3, &prefix);
    let mut w = ci_world(&s3, &prefix, fixture_repo("sample"));
    w.set("SPARKWING_MODE", "ci-embedded")
        .set("SPARKWING_WORKERS", "1");

    // Environment alone: ci-embedded with one worker, and the bucket's record says why.
    let r = w.run(&["run", "fanout", "--profile", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(
            "mode ci-embedded (from SPARKWING_MODE), 1 worker(s) (from SPARKWING_WORKERS)"
        ),
        "first console line: {first}\n{}",
        r.all()
    );
    let id = r.run_id();
    let state =
        String::from_utf8(block(cache.get(&format!("runs/{id}/state.ndjson"))).unwrap()).unwrap();
    let dump = sparkwing_contract::StateDump::parse(&state);
    let inv = dump.run.expect("run record in the bucket").invocation;
    assert_eq!(
        (inv.mode.as_str(), inv.mode_from.as_str()),
        ("ci-embedded", "env")
    );
    assert_eq!((inv.workers, inv.workers_from.as_str()), (1, "env"));
    // One worker: the six parallel-capable `work-*` jobs never overlap.
    let mut spans: Vec<(i64, i64)> = dump
        .nodes
        .iter()
        .filter(|n| n.id.starts_with("work-"))
        .map(|n| {
            let t = |s: &Option<String>| {
                sparkwing_contract::timefmt::parse_rfc3339_nanos(s.as_deref().unwrap()).unwrap()
            };
            (t(&n.started_at), t(&n.finished_at))
        })
        .collect();
    spans.sort();
    assert_eq!(spans.len(), 6);
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "jobs overlapped with 1 worker: {spans:?}"
        );
    }

    // A flag beats the environment.
    let r = w.run(&["run", "hello", "--sw-mode=local", "--sw-workers=2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.stderr.contains("mode ci-embedded"), "{}", r.all());
    let show = w.show(&r.run_id());
    let inv = &show["run"]["invocation"];
    assert_eq!(inv["mode"], "local", "{show:#}");
    assert_eq!(inv["mode_from"], "flag");
    assert_eq!(inv["workers"], 2);
    assert_eq!(inv["workers_from"], "flag");

    // Bad values are usage errors naming the variable; nothing runs.
    let mut bad = w.with_new_home();
    bad.set("SPARKWING_WORKERS", "abc");
    let r = bad.run(&["run", "hello"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("invalid `SPARKWING_WORKERS` value `abc`"),
        "{}",
        r.all()
    );
    let mut bad = w.with_new_home();
    bad.set("SPARKWING_MODE", "bogus");
    let r = bad.run(&["run", "hello"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("invalid `SPARKWING_MODE` value `bogus`")
            && r.stderr.contains("`local` (default), `ci-embedded`"),
        "{}",
        r.all()
    );

    // Empty values count as unset: local mode, the CPU count, recorded as defaults.
    let mut empty = w.with_new_home();
    empty.set("SPARKWING_MODE", "").set("SPARKWING_WORKERS", "");
    let r = empty.run(&["run", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let show = empty.show(&r.run_id());
    let inv = &show["run"]["invocation"];
    assert_eq!(inv["mode"], "local", "{show:#}");
    assert_eq!(inv["mode_from"], "default");
    assert_eq!(inv["workers_from"], "default");
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(inv["workers"], cpus);

    // `run --help` names the variables next to the flags.
    let r = w.run(&["run", "--help"]);
    assert!(
        r.stdout.contains("[env: SPARKWING_MODE]") && r.stdout.contains("[env: SPARKWING_WORKERS]"),
        "{}",
        r.all()
    );
}

/// With several workers a CI console holds each job's lines until it ends; a long job still
/// shows it is alive: a progress line at a steady interval, outside any group, with its lines so
/// far and the last one.
#[test]
fn a_long_job_on_a_held_back_console_says_it_is_alive() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-progress");
    let mut w = ci_world(&s3, &prefix, fixture_repo("sample"));
    on_github(&mut w);
    w.set("SPARKWING_PROGRESS_MS", "400");
    let r = w.run(&[
        "run",
        "slow",
        "--seconds",
        "2",
        "--sw-mode=ci-embedded",
        "--sw-workers=2",
        "--profile",
        "ci",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let group_at = r.stdout.find("::group::").expect("the job's group");
    let progress: Vec<&str> = r.stdout[..group_at]
        .lines()
        .filter(|l| l.starts_with("… slow running "))
        .collect();
    assert!(progress.len() >= 2, "{}", r.stdout);
    assert!(
        progress.iter().any(|l| l.contains(" lines so far: tick ")),
        "{}",
        r.stdout
    );
}
