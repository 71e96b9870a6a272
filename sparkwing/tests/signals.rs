//! Cancelling a run with signals, against a real pipeline binary (`examples/signals.rs`).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sparkwing_contract::record::{NodeStatus, Outcome, RunStatus};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUN: &str = "run-20261127-141500-5151afaf";

fn example_bin() -> PathBuf {
    // Integration tests live in target/<profile>/deps; cargo builds examples beside them.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples/signals");
    assert!(
        bin.exists(),
        "`{}` missing: run `cargo test -p sparkwing`",
        bin.display()
    );
    bin
}

/// Starts the trap pipeline, waits for `ready`, sends `signals` (each after its delay), returns
/// (exit code, elapsed since the first signal, home, stdout).
fn cancel_with(
    grace_ms: u64,
    signals: &[(Duration, Signal)],
) -> (i32, Duration, tempfile::TempDir, String) {
    let home = tempfile::tempdir().unwrap();
    // Records go to the supervisor's database, as under `sparkwing run`.
    let host = sparkwing_storage_testing::RelayHost::start(
        &home.path().join("state.db"),
        sparkwing_storage::relay::RelayStores::new(Vec::new()),
    );
    let mut child = Command::new(example_bin())
        .arg("trap")
        .envs(host.env())
        .env("SPARKWING_HOME", home.path())
        .env("SPARKWING_WORK_DIR", home.path())
        .env("SPARKWING_RUN_ID", RUN)
        .env("SPARKWING_WORKERS", "4")
        .env("SPARKWING_LOG_FORMAT", "plain")
        .env("SPARKWING_KILL_GRACE_MS", grace_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains("[trap] ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no `ready`: {seen}");
        seen.push_str(&line);
    }
    std::thread::sleep(Duration::from_millis(100));
    let began = Instant::now();
    for (delay, s) in signals {
        std::thread::sleep(*delay);
        kill(Pid::from_raw(child.id() as i32), *s).unwrap();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let elapsed = began.elapsed();
    seen.push_str(&rest);
    (status.code().unwrap_or(-1), elapsed, home, seen)
}

fn check_records(home: &tempfile::TempDir) {
    let reader = sparkwing_records::Reader::open(&home.path().join("state.db")).unwrap();
    let run = reader.get_run(RUN).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    for n in reader.list_nodes(RUN).unwrap() {
        assert_eq!(n.status, NodeStatus::Done, "{}", n.id);
        assert_eq!(n.outcome, Some(Outcome::Cancelled), "{}", n.id);
    }
}

#[test]
fn sigterm_stops_jobs_after_the_grace_and_records_the_cancellation() {
    let (code, elapsed, home, out) = cancel_with(1500, &[(Duration::ZERO, Signal::SIGTERM)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("trapped TERM"), "{out}");
    // The trapping job needs the whole 1.5 s grace, then SIGKILL.
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(out.contains("cancelled"), "{out}");
    check_records(&home);
}

#[test]
fn a_second_signal_a_second_later_kills_at_once() {
    let (code, elapsed, home, out) = cancel_with(
        4000,
        &[
            (Duration::ZERO, Signal::SIGINT),
            (Duration::from_millis(1200), Signal::SIGINT),
        ],
    );
    assert_eq!(code, 1, "{out}");
    // Without the escalation the trapping job would hold out for the whole 4 s grace.
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    check_records(&home);
}

#[test]
fn the_same_signal_delivered_twice_does_not_escalate() {
    // A CI runner signals the process group and the supervisor forwards the same signal.
    let (code, elapsed, home, out) = cancel_with(
        1500,
        &[
            (Duration::ZERO, Signal::SIGINT),
            (Duration::from_millis(50), Signal::SIGTERM),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("trapped TERM"), "{out}");
    assert!(
        elapsed >= Duration::from_millis(1400),
        "grace cut short: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    check_records(&home);
}
