//! Signals through the supervisor: cancellation with a grace period, a child that dies by signal.

use crate::support::{LineWatcher, World, find_run_id, node, scratch, wait_timeout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

fn warm(w: &World) {
    // Build first so the signal tests time the run, not the compile.
    let r = w.run(&["run", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

fn cancel_with(sig: Signal) {
    let mut w = World::sample();
    w.set("SPARKWING_KILL_GRACE_MS", "1000");
    warm(&w);
    let mut child = w.spawn(&["run", "trap"]);
    let out = LineWatcher::new(child.stdout.take().unwrap());
    assert!(
        out.wait_for_line("] ready", Duration::from_secs(60)),
        "never ready:\n{}",
        out.text()
    );
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    let code = wait_timeout(&mut child, Duration::from_secs(15));
    let took = sent.elapsed();
    assert_eq!(code, 1, "cancelled run exits 1:\n{}", out.text());
    // The node traps SIGTERM, so it is only gone after the grace period and a SIGKILL.
    assert!(
        took >= Duration::from_millis(900),
        "ended after {took:?}, before the grace period"
    );
    assert!(took < Duration::from_secs(5), "cancellation took {took:?}");
    assert!(
        out.wait_for("trapped TERM", Duration::from_secs(1)),
        "{}",
        out.text()
    );
    let id = find_run_id(&out.text()).expect("run id on the console");
    let show = w.show(&id);
    assert_eq!(show["run"]["status"], "cancelled");
    let n = &show["nodes"][0];
    assert_eq!(n["status"], "done");
    assert_eq!(n["outcome"], "cancelled");
}

#[test]
fn sigterm_cancels_with_grace_then_kill() {
    cancel_with(Signal::SIGTERM);
}

#[test]
fn sigint_cancels_too() {
    cancel_with(Signal::SIGINT);
}

#[test]
fn child_killed_by_signal_gives_128_plus_n_and_is_finalized() {
    let w = World::sample();
    let r = w.run(&["run", "die"]);
    assert_eq!(r.code, 137, "{}", r.all());
    let id = r.run_id();
    let show = w.show(&id);
    assert_eq!(show["run"]["status"], "failed");
    assert!(
        show["run"]["error"].as_str().unwrap().contains("SIGKILL"),
        "{show:#}"
    );
    for n in show["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "done", "{n}");
    }
    assert_eq!(node(&show, "die")["outcome"], "cancelled");
}

/// Whether `pid` still runs (a zombie waiting to be reaped does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

#[test]
fn a_killed_pipeline_leaves_no_job_processes_behind() {
    let mut w = World::sample();
    let pidfile = scratch().join("orphan.pid");
    let _ = std::fs::remove_file(&pidfile);
    w.set("ORPHAN_PIDFILE", pidfile.to_str().unwrap());
    let r = w.run(&["run", "orphan"]);
    assert_eq!(r.code, 137, "{}", r.all());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("the job wrote its pid")
        .trim()
        .parse()
        .unwrap();
    // The supervisor has exited: the job's process group must be gone with the run.
    let still = alive(pid);
    if still {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert!(
        !still,
        "`sleep 300` (pid {pid}) outlived the run:\n{}",
        r.all()
    );
    assert!(
        r.stderr
            .contains("ended 1 process group the pipeline left running"),
        "{}",
        r.all()
    );
    assert_eq!(w.show(&r.run_id())["run"]["status"], "failed");
}
