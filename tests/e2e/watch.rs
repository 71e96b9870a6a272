//! `sparkwing run --watch`: the laptop loop, end to end, on one watched run of the `watch`
//! fixture pipeline.

use crate::support::{LineWatcher, World, find_run_id, git, wait_timeout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// The record of node `id` in `runs show --json` output.
fn node<'a>(show: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    show["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("no node `{id}` in {show:#}"))
}

/// Every run id printed so far, in order, without repeats.
fn run_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(id) = find_run_id(line)
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// One watched session proves the loop: the first run; edits that must not count (an ignored
/// path, `target/`, the `.git` directory); an edit that starts the next run within a second of
/// the write; an edit during a run that cancels it (`cancelled` record) and starts the next; and
/// Ctrl-C (SIGINT) that ends the loop with the last run's exit code. Along the way, a job with
/// declared inputs runs when they changed and is recorded `cached` when only other files did.
#[test]
fn watch_reruns_on_changes_cancels_in_flight_runs_and_stops_on_ctrl_c() {
    let w = World::sample();
    let repo = w.repo.clone();
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("src/value.txt"), "one\n").unwrap();
    std::fs::write(repo.join(".gitignore"), "ignored/\n*.tmp\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "watch inputs"]);
    std::fs::create_dir_all(repo.join("ignored")).unwrap();
    std::fs::create_dir_all(repo.join("target")).unwrap();

    let mut child = w.spawn(&["run", "watch", "--watch"]);
    let out = LineWatcher::new(child.stdout.take().unwrap());
    let err = LineWatcher::new(child.stderr.take().unwrap());
    let all = || {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            out.text(),
            err.text()
        )
    };

    // 1. The first run (it builds the pipeline first).
    assert!(
        out.wait_for_line("value one", Duration::from_secs(1800)),
        "{}",
        all()
    );
    assert!(
        err.wait_for("ended with exit code 0; watching", Duration::from_secs(30)),
        "{}",
        all()
    );
    assert!(err.text().contains(".gitignore honoured"), "{}", all());

    // 2. Changes that never count.
    std::fs::write(repo.join("ignored/a.txt"), "x").unwrap();
    std::fs::write(repo.join("scratch.tmp"), "x").unwrap();
    std::fs::write(repo.join("target/out.bin"), "x").unwrap();
    std::fs::create_dir_all(repo.join("ignored/new/deeper")).unwrap();
    std::fs::write(repo.join("ignored/new/deeper/b.txt"), "x").unwrap();
    git(&repo, &["tag", "-f", "checkpoint"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!err.text().contains("changed:"), "{}", all());
    assert_eq!(run_ids(&out.text()).len(), 1, "{}", all());

    // 3. A watched edit starts the next run within a second of the write.
    let wrote = Instant::now();
    std::fs::write(repo.join("src/value.txt"), "two\n").unwrap();
    let started = (|| {
        while wrote.elapsed() < Duration::from_secs(30) {
            if run_ids(&out.text()).len() >= 2 {
                return Some(wrote.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    })()
    .unwrap_or_else(|| panic!("no second run:\n{}", all()));
    assert!(
        started < Duration::from_secs(1),
        "the second run started {started:?} after the write:\n{}",
        all()
    );
    assert!(
        out.wait_for_line("value two", Duration::from_secs(30)),
        "{}",
        all()
    );
    assert!(err.text().contains("changed: `src/value.txt`"), "{}", all());
    assert!(
        err.wait_for_line_count(
            "ended with exit code 0; watching",
            2,
            Duration::from_secs(30)
        ),
        "{}",
        all()
    );

    // `build` declares `src/**` as its inputs: it ran in both runs, since `src/` changed.
    let ids = run_ids(&out.text());
    for id in &ids {
        let show = w.show(id);
        assert_eq!(node(&show, "build")["outcome"], "success", "{show:#}");
    }

    // 3b. An edit outside `build`'s inputs runs `check` again but reuses `build`'s last result.
    std::fs::create_dir_all(repo.join("docs")).unwrap();
    std::fs::write(repo.join("docs/notes.md"), "notes\n").unwrap();
    assert!(
        err.wait_for_line_count(
            "ended with exit code 0; watching",
            3,
            Duration::from_secs(30)
        ),
        "{}",
        all()
    );
    let ids = run_ids(&out.text());
    assert_eq!(ids.len(), 3, "{}", all());
    let show = w.show(&ids[2]);
    let build = node(&show, "build");
    assert_eq!(build["outcome"], "cached", "{show:#}");
    assert_eq!(
        build["status_detail"],
        format!("reused from run {}", ids[1]),
        "{show:#}"
    );
    assert_eq!(build["outputs"]["built"], "two", "{show:#}");
    assert_eq!(node(&show, "check")["outcome"], "success", "{show:#}");
    assert!(out.text().contains("cached: reused from run"), "{}", all());

    // 4. An edit during a run cancels it and starts the next.
    std::fs::write(repo.join("src/value.txt"), "slow\n").unwrap();
    assert!(
        out.wait_for_line("] waiting", Duration::from_secs(30)),
        "{}",
        all()
    );
    let slow_run = run_ids(&out.text()).last().cloned().unwrap();
    std::fs::write(repo.join("src/value.txt"), "fail\n").unwrap();
    assert!(
        out.wait_for_line("value fail", Duration::from_secs(30)),
        "{}",
        all()
    );
    assert!(
        err.text().contains("cancelling the run to start again"),
        "{}",
        all()
    );
    assert!(
        err.wait_for("ended with exit code 1; watching", Duration::from_secs(30)),
        "{}",
        all()
    );
    let show = w.show(&slow_run);
    assert_eq!(show["run"]["status"], "cancelled", "{show:#}");
    assert_eq!(show["nodes"][0]["outcome"], "cancelled", "{show:#}");
    let ids = run_ids(&out.text());
    assert_eq!(ids.len(), 5, "{}", all());
    assert_eq!(w.show(&ids[4])["run"]["status"], "failed");

    // 5. Ctrl-C while idle ends the loop with the last run's exit code (1: it failed).
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let code = wait_timeout(&mut child, Duration::from_secs(15));
    assert_eq!(code, 1, "{}", all());
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        err.text()
            .contains("stopped watching; exit code 1 (the last run's)"),
        "{}",
        all()
    );
}
