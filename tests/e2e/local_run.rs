//! `sparkwing run` in local mode: DAGs under a worker cap, failures, retries, timeouts, records.

use crate::support::{World, nanos, node};

#[test]
fn hello_runs_and_is_recorded() {
    let w = World::sample();
    let r = w.run(&["run", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let id = r.run_id();
    // The console says where the logs and records are.
    assert!(
        r.stdout
            .contains(&format!("{}/runs/{id}", w.home.display())),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("state.db"), "{}", r.all());

    let show = w.show(&id);
    assert_eq!(show["run"]["status"], "success");
    assert_eq!(show["run"]["pipeline"], "hello");
    assert_eq!(show["run"]["git_branch"], "main");
    assert_eq!(show["run"]["invocation"]["mode"], "local");
    for n in show["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "done", "{n}");
        assert_eq!(n["outcome"], "success", "{n}");
    }
    // Logs are readable back, per node, from the records' log store.
    let logs = w.run(&["runs", "logs", &id]);
    assert_eq!(logs.code, 0, "{}", logs.all());
    assert!(logs.stdout.contains("[build]"), "{}", logs.all());

    let list = w.run(&["runs", "list", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list["runs"][0]["id"], id.as_str());
}

#[test]
fn fanout_respects_the_worker_cap() {
    let w = World::sample();
    let r = w.run(&["run", "fanout", "--sw-workers=2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let show = w.show(&r.run_id());
    assert_eq!(show["run"]["invocation"]["workers"], 2);
    let mut events = Vec::new();
    for n in show["nodes"].as_array().unwrap() {
        assert_eq!(n["outcome"], "success", "{n}");
        events.push((nanos(&n["started_at"]), 1));
        events.push((nanos(&n["finished_at"]), -1));
    }
    // Ends sort before starts at the same instant.
    events.sort();
    let (mut now, mut max) = (0, 0);
    for (_, d) in events {
        now += d;
        max = max.max(now);
    }
    assert_eq!(
        max, 2,
        "observed concurrency must reach the cap of 2 and never exceed it"
    );
    // join ran after every work node.
    let join = node(&show, "join");
    for i in 1..=6 {
        let wn = node(&show, &format!("work-{i}"));
        assert!(nanos(&join["started_at"]) >= nanos(&wn["finished_at"]));
    }
}

#[test]
fn failing_node_cancels_dependents_not_siblings() {
    let w = World::sample();
    let r = w.run(&["run", "failing"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let show = w.show(&r.run_id());
    assert_eq!(show["run"]["status"], "failed");
    let a = node(&show, "a");
    assert_eq!(a["outcome"], "failed");
    assert_eq!(a["exit_code"], 1);
    let b = node(&show, "b");
    assert_eq!(b["outcome"], "cancelled");
    assert_eq!(b["failure_reason"], "upstream-failed");
    let c = node(&show, "c");
    assert_eq!(c["outcome"], "success", "an independent sibling finishes");
    assert!(nanos(&c["finished_at"]) > nanos(&a["finished_at"]));
}

#[test]
fn retries_and_timeouts() {
    let w = World::sample();
    let r = w.run(&["run", "retry"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let show = w.show(&r.run_id());
    let flaky = &show["nodes"][0];
    assert_eq!(flaky["outcome"], "success");
    assert_eq!(flaky["attempts"], 3);

    let started = std::time::Instant::now();
    let r = w.run(&["run", "timeout"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the timeout must stop the 30 s job"
    );
    let show = w.show(&r.run_id());
    let slow = &show["nodes"][0];
    assert_eq!(slow["outcome"], "failed");
    assert_eq!(slow["failure_reason"], "timeout");
}

#[test]
fn skip_conditions_and_secret_masking() {
    let mut w = World::sample();
    w.set("SAMPLE_TOKEN", "abcdef")
        .set("SPARKWING_SECRET_ENV", "SAMPLE_TOKEN");
    let r = w.run(&["run", "skip"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let show = w.show(&r.run_id());
    assert!(
        show["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["outcome"] == "skipped"),
        "{show:#}"
    );

    let r = w.run(&["run", "secrets"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !r.stdout.contains("abcdef") && !r.stderr.contains("abcdef"),
        "secret on the console:\n{}",
        r.all()
    );
    let logs = w.run(&["runs", "logs", &r.run_id(), "-o", "json"]);
    assert!(logs.stdout.contains("***"), "{}", logs.all());
    assert!(
        !logs.stdout.contains("abcdef"),
        "secret in the stored log:\n{}",
        logs.stdout
    );
    let db = std::fs::read(w.home.join("state.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&db).contains("abcdef"),
        "secret in state.db"
    );
}

#[test]
fn runs_logs_follow_prints_new_lines_until_the_run_ends() {
    use crate::support::{LineWatcher, find_run_id, wait_timeout};
    use std::time::Duration;
    let w = World::sample();
    let warm = w.run(&["run", "hello"]);
    assert_eq!(warm.code, 0, "{}", warm.all());
    let mut run = w.spawn(&["run", "slow", "--seconds", "3"]);
    let out = LineWatcher::new(run.stdout.take().unwrap());
    assert!(
        out.wait_for_line("] ready", Duration::from_secs(60)),
        "{}",
        out.text()
    );
    let id = find_run_id(&out.text()).expect("run id");
    let mut follow = w.spawn(&["runs", "logs", &id, "--follow", "--grep", "tick 2"]);
    let followed = LineWatcher::new(follow.stdout.take().unwrap());
    assert_eq!(
        wait_timeout(&mut run, Duration::from_secs(30)),
        0,
        "{}",
        out.text()
    );
    // Following ends by itself once the run has ended.
    assert_eq!(wait_timeout(&mut follow, Duration::from_secs(15)), 0);
    std::thread::sleep(Duration::from_millis(100));
    let text = followed.text();
    // `tick 2`, `tick 20` … `tick 29`: lines written after following began, filtered by --grep.
    assert!(text.contains("tick 29"), "{text}");
    // What following waited for before it stopped: every part is in the store.
    assert_eq!(w.show(&id)["run"]["invocation"]["logs_drained"], true);
    assert!(text.lines().all(|l| l.contains("tick 2")), "{text}");
}

#[test]
fn runs_logs_follow_gives_up_on_a_run_whose_processes_were_killed() {
    use crate::support::{LineWatcher, find_run_id, wait_timeout};
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    let w = World::sample();
    let warm = w.run(&["run", "hello"]);
    assert_eq!(warm.code, 0, "{}", warm.all());
    let mut run = w.spawn(&["run", "slow", "--seconds", "30"]);
    let out = LineWatcher::new(run.stdout.take().unwrap());
    assert!(
        out.wait_for_line("] tick 2", Duration::from_secs(60)),
        "{}",
        out.text()
    );
    let id = find_run_id(&out.text()).expect("run id");
    let mut follow = w.spawn(&["runs", "logs", &id, "--follow"]);
    let followed = LineWatcher::new(follow.stdout.take().unwrap());
    let followed_err = LineWatcher::new(follow.stderr.take().unwrap());
    assert!(
        followed.wait_for_line("tick 3", Duration::from_secs(15)),
        "{}",
        followed.text()
    );
    // Both processes die at once (as in `kill -9` of the group, or a lost machine): nobody is
    // left to finalize the record, which keeps saying `running`.
    let marker: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.home.join("active").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    let child = marker["child_pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
    kill(Pid::from_raw(child), Signal::SIGKILL).unwrap();
    let _ = run.wait();
    let killed = Instant::now();
    let code = wait_timeout(&mut follow, Duration::from_secs(20));
    let took = killed.elapsed();
    assert_eq!(code, 1, "{}\n{}", followed.text(), followed_err.text());
    assert!(took < Duration::from_secs(10), "gave up after {took:?}");
    std::thread::sleep(Duration::from_millis(100));
    let err = followed_err.text();
    assert!(
        err.contains(&format!("stopped following `{id}`"))
            && err.contains("no `sparkwing run` on this machine is running it"),
        "{err}"
    );
    assert_eq!(w.show(&id)["run"]["status"], "running");
}
