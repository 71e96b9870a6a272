//! The runtime end to end, in process: real commands, real SQLite records, real log parts.

use sparkwing::prelude::*;
use sparkwing_contract::record::{NodeRecord, Outcome, RunRecord, RunStatus};
use sparkwing_records::Reader;
use sparkwing_storage::{FsLogStore, LogStore, ReadOpts};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const RUN: &str = "run-20261127-141500-1a2b3c4d";

struct Harness {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        env.insert(
            "SPARKWING_HOME".into(),
            dir.path().join("home").display().to_string(),
        );
        env.insert(
            "SPARKWING_WORK_DIR".into(),
            dir.path().display().to_string(),
        );
        env.insert("SPARKWING_RUN_ID".into(), RUN.into());
        env.insert("SPARKWING_LOG_FORMAT".into(), "plain".into());
        env.insert("SPARKWING_WORKERS".into(), "2".into());
        env.insert("SPARKWING_KILL_GRACE_MS".into(), "300".into());
        Harness { dir, env }
    }

    fn set(mut self, k: &str, v: &str) -> Harness {
        self.env.insert(k.into(), v.into());
        self
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Runs in this process, with its records served as `sparkwing run` serves them.
    fn run(&self, pipelines: Pipelines, argv: &[&str]) -> i32 {
        std::fs::create_dir_all(self.home()).unwrap();
        let host = sparkwing_storage_testing::RelayHost::start(
            &self.home().join("state.db"),
            sparkwing_storage::relay::RelayStores::new(Vec::new()),
        );
        let mut env = self.env.clone();
        env.extend(host.env().map(|(k, v)| (k.to_string(), v)));
        let code = pipelines.run_with(argv.iter().map(|s| s.to_string()).collect(), move |k| {
            env.get(k).cloned()
        });
        host.finish();
        code
    }

    fn records(&self) -> (RunRecord, HashMap<String, NodeRecord>) {
        let reader = Reader::open(&self.home().join("state.db")).unwrap();
        let run = reader.get_run(RUN).unwrap().expect("run recorded");
        let nodes = reader
            .list_nodes(RUN)
            .unwrap()
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        (run, nodes)
    }

    fn log(&self, node: &str) -> String {
        let store = FsLogStore::new(self.home().join("runs"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(store.read(RUN, node, &ReadOpts::default()))
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    fn parts(&self, node: &str) -> usize {
        std::fs::read_dir(self.home().join("runs").join(RUN).join(node))
            .map(|rd| rd.count())
            .unwrap_or(0)
    }
}

fn one(name: &str, build: impl Fn(&mut Plan) + 'static) -> Pipelines {
    Pipelines::new().register(name, "test pipeline", move |_args| {
        let mut plan = Plan::new();
        build(&mut plan);
        Ok(plan)
    })
}

fn ms(ts: &Option<String>) -> i64 {
    sparkwing_contract::timefmt::parse_rfc3339_nanos(ts.as_deref().unwrap()).unwrap() / 1_000_000
}

#[test]
fn a_dag_passes_outputs_and_artifacts_and_records_everything() {
    let h = Harness::new();
    let code = h.run(
        Pipelines::new().register("hello", "demo", |args| {
            let who: String = args.parse_or("who", "world".to_string())?;
            let mut plan = Plan::new();
            plan.job("build")
                .step("compile", Cmd::sh("echo compiling; echo to-stderr >&2"))
                .step_fn("version", |ctx| async move {
                    let v = ctx.capture(&Cmd::sh("echo 1.2.3")).await?;
                    ctx.set_output("version", &v)?;
                    ctx.save_artifact("demo/version.txt", v.clone()).await?;
                    ctx.warn("careful");
                    Ok(())
                });
            plan.job("test")
                .needs(["build"])
                .env("WHO", who)
                .step_fn("check", |ctx| async move {
                    let v: String = ctx.output("build", "version")?;
                    assert_eq!(ctx.load_artifact("demo/version.txt").await?, v.as_bytes());
                    ctx.run(&Cmd::sh("echo hello $WHO from $(pwd)")).await?;
                    let missing = ctx.output::<String>("lint", "x").unwrap_err();
                    ctx.info(missing.to_string());
                    Ok(())
                });
            plan.job("lint")
                .needs(["build"])
                .step("noop", Cmd::new("true"));
            Ok(plan)
        }),
        &["hello", "--who", "sparkwing"],
    );
    assert_eq!(code, 0);
    let (run, nodes) = h.records();
    assert_eq!(run.status, RunStatus::Success);
    assert_eq!(run.pipeline, "hello");
    assert_eq!(run.args["who"], "sparkwing");
    assert_eq!(run.invocation.workers, 2);
    assert_eq!(run.invocation.mode, "local");
    assert!(run.finished_at.is_some());
    let build = &nodes["build"];
    assert_eq!(build.outcome, Some(Outcome::Success));
    assert_eq!(build.outputs["version"], serde_json::json!("1.2.3"));
    assert_eq!(build.artifacts, ["demo/version.txt"]);
    assert_eq!(build.attempts, 1);
    assert_eq!(nodes["test"].deps, ["build"]);
    assert!(ms(&nodes["test"].started_at) >= ms(&build.finished_at));

    let log = h.log("build");
    let lines: Vec<sparkwing_contract::LogRecord> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let msgs: Vec<&str> = lines.iter().map(|l| l.msg.as_str()).collect();
    assert!(msgs.contains(&"compiling"), "{msgs:?}");
    let err_line = lines.iter().find(|l| l.msg == "to-stderr").unwrap();
    assert_eq!(err_line.attrs["stream"], "stderr");
    assert_eq!(err_line.step, "compile");
    assert!(
        lines
            .iter()
            .any(|l| l.level == "warn" && l.msg == "careful")
    );
    // Captured stdout is data, not log.
    assert!(!msgs.contains(&"1.2.3"));
    let test_log = h.log("test");
    let work = h.dir.path().display().to_string();
    assert!(
        test_log.contains(&format!("hello sparkwing from {work}")),
        "{test_log}"
    );
    assert!(test_log.contains("not a dependency"), "{test_log}");
    let state =
        std::fs::read_to_string(h.home().join(format!("artifacts/runs/{RUN}/state.ndjson")))
            .unwrap();
    let dump = sparkwing_contract::StateDump::parse(&state);
    assert_eq!(dump.run.unwrap().status, RunStatus::Success);
    assert_eq!(dump.nodes.len(), 3);
}

#[test]
fn a_failed_job_cancels_its_dependents_but_not_its_siblings() {
    let h = Harness::new();
    let code = h.run(
        one("failing", |p| {
            p.job("a").step("fail", Cmd::sh("sleep 0.1; exit 3"));
            p.job("b")
                .needs(["a"])
                .step("never", Cmd::sh("touch b-ran"));
            p.job("c")
                .needs(["b"])
                .step("never", Cmd::sh("touch c-ran"));
            p.job("d").step("sleep", Cmd::sh("sleep 0.4"));
        }),
        &["failing"],
    );
    assert_eq!(code, 1);
    let (run, nodes) = h.records();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.contains("`a`"), "{}", run.error);
    assert_eq!(nodes["a"].outcome, Some(Outcome::Failed));
    assert_eq!(nodes["a"].exit_code, Some(3));
    assert_eq!(nodes["a"].failure_reason, "exit-code");
    for id in ["b", "c"] {
        assert_eq!(nodes[id].outcome, Some(Outcome::Cancelled), "{id}");
        assert_eq!(nodes[id].failure_reason, "upstream-failed", "{id}");
        assert!(nodes[id].started_at.is_none());
    }
    assert_eq!(nodes["d"].outcome, Some(Outcome::Success));
    assert!(!h.dir.path().join("b-ran").exists());
    assert!(h.log("a").contains("node_failed"));
}

#[test]
fn the_worker_cap_bounds_running_jobs() {
    let h = Harness::new();
    let began = Instant::now();
    let code = h.run(
        one("fan", |p| {
            p.job("setup");
            for i in 0..6 {
                p.job(format!("w{i}"))
                    .needs(["setup"])
                    .step("sleep", Cmd::sh("sleep 0.25"));
            }
        }),
        &["fan"],
    );
    assert_eq!(code, 0);
    assert!(
        began.elapsed().as_millis() >= 750,
        "6 × 250 ms on 2 workers"
    );
    let (_, nodes) = h.records();
    let spans: Vec<(i64, i64)> = (0..6)
        .map(|i| {
            let n = &nodes[&format!("w{i}")];
            (ms(&n.started_at), ms(&n.finished_at))
        })
        .collect();
    let max_overlap = spans
        .iter()
        .map(|&(s, _)| spans.iter().filter(|&&(s2, e2)| s2 <= s && s < e2).count())
        .max()
        .unwrap();
    assert_eq!(max_overlap, 2, "{spans:?}");
}

#[test]
fn retries_expose_the_attempt_and_stop_at_success() {
    let h = Harness::new();
    let code = h.run(
        one("retry", |p| {
            p.job("flaky").retries(3).step_fn("try", |ctx| async move {
                if ctx.attempt() < 3 {
                    ctx.sh(&format!("echo attempt {}; exit 1", ctx.attempt()))
                        .await?;
                }
                Ok(())
            });
            p.job("hopeless").retries(1).step("fail", Cmd::sh("exit 2"));
        }),
        &["retry"],
    );
    assert_eq!(code, 1);
    let (_, nodes) = h.records();
    assert_eq!(nodes["flaky"].outcome, Some(Outcome::Success));
    assert_eq!(nodes["flaky"].attempts, 3);
    assert_eq!(nodes["hopeless"].outcome, Some(Outcome::Failed));
    assert_eq!(nodes["hopeless"].attempts, 2);
    let log = h.log("flaky");
    assert!(
        log.contains("attempt 1") && log.contains("attempt 2"),
        "{log}"
    );
    assert_eq!(log.matches("node_retry").count(), 2);
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let h = Harness::new();
    let began = Instant::now();
    let code = h.run(
        one("timeout", |p| {
            p.job("slow")
                .timeout(std::time::Duration::from_millis(300))
                .step("sleep", Cmd::sh("sleep 30 & echo $! > bg.pid; sleep 30"));
        }),
        &["timeout"],
    );
    assert_eq!(code, 1);
    assert!(began.elapsed().as_secs() < 5, "{:?}", began.elapsed());
    let (_, nodes) = h.records();
    let slow = &nodes["slow"];
    assert_eq!(slow.outcome, Some(Outcome::Failed));
    assert_eq!(slow.failure_reason, "timeout");
    assert!(slow.error.contains("timed out"), "{}", slow.error);
    let pid: i32 = std::fs::read_to_string(h.dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The background sleep shared the group, so it is gone too (or a reaped zombie of init).
    let alive = Path::new(&format!("/proc/{pid}/stat")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "background process {pid} survived the timeout");
}

#[test]
fn skip_conditions_read_upstream_outputs_at_dispatch() {
    let h = Harness::new();
    let code = h.run(
        one("skip", |p| {
            p.job("detect").step_fn("diff", |ctx| async move {
                ctx.set_output("docs_changed", &false)?;
                Ok(())
            });
            p.job("docs")
                .needs(["detect"])
                .skip_if("no docs changed", |up| {
                    up.try_get::<bool>("detect", "docs_changed") == Some(false)
                })
                .step("build", Cmd::sh("touch docs-ran"));
            p.job("after")
                .needs(["docs"])
                .step("run", Cmd::sh("touch after-ran"));
        }),
        &["skip"],
    );
    assert_eq!(code, 0);
    let (_, nodes) = h.records();
    assert_eq!(nodes["docs"].outcome, Some(Outcome::Skipped));
    assert_eq!(nodes["after"].outcome, Some(Outcome::Success));
    assert!(!h.dir.path().join("docs-ran").exists());
    assert!(h.dir.path().join("after-ran").exists());
}

#[test]
fn secrets_are_masked_in_logs_and_records_even_when_split_across_writes() {
    let h = Harness::new()
        .set("SPARKWING_SECRET_ENV", "TOK")
        .set("TOK", "abcdef");
    let code = h.run(
        one("secrets", |p| {
            p.job("leak")
                .env("TOK", "abcdef")
                .step(
                    "print",
                    Cmd::sh(r#"echo "token=$TOK"; printf 'abc'; sleep 0.1; printf 'def\n'"#),
                )
                .step_fn("runtime", |ctx| async move {
                    ctx.add_secret("hunter2");
                    ctx.info("password hunter2");
                    ctx.set_output("leaked", &"abcdef")?;
                    Err("failed with abcdef".into())
                });
        }),
        &["secrets"],
    );
    assert_eq!(code, 1);
    let log = h.log("leak");
    assert!(!log.contains("abcdef") && !log.contains("hunter2"), "{log}");
    assert!(log.contains("token=***"), "{log}");
    assert!(
        log.contains(r#""msg":"***""#),
        "split write not masked: {log}"
    );
    assert!(log.contains("password ***"), "{log}");
    let (_, nodes) = h.records();
    assert_eq!(nodes["leak"].error, "failed with ***");
    assert_eq!(nodes["leak"].outputs["leaked"], "***");
}

#[test]
fn a_secret_across_the_cut_of_an_over_long_line_is_still_masked() {
    // Lines over 64 KiB are logged in pieces. A 260 KB line made of the secret over and over puts
    // a secret across every cut, wherever the reads happen to end.
    let h = Harness::new()
        .set("SPARKWING_SECRET_ENV", "TOK")
        .set("TOK", "s3cr3t-value");
    let code = h.run(
        one("long", |p| {
            p.job("long").step(
                "print",
                // Each secret in two writes, so reads (and so cuts) also end inside secrets.
                Cmd::sh(
                    r#"for i in $(seq 20000); do printf 's3cr3t'; printf -- '-valuez'; done; echo"#,
                ),
            );
        }),
        &["long"],
    );
    assert_eq!(code, 0);
    // The command's own text (which spells the halves out) is not output: look at output only.
    let log: String = h
        .log("long")
        .lines()
        .filter_map(|l| serde_json::from_str::<sparkwing_contract::LogRecord>(l).ok())
        .filter(|r| !r.msg.starts_with("$ "))
        .map(|r| r.msg)
        .collect();
    assert!(log.len() > 50_000, "the line was logged");
    for piece in ["s3cr3t", "3t-val", "value"] {
        assert!(
            !log.contains(piece),
            "a piece of the secret (`{piece}`) leaked across a cut"
        );
    }
    assert!(log.contains("***z***z"), "the secret is masked whole");
}

#[test]
fn output_written_after_the_command_exits_is_logged_whole() {
    // The shell ends at once; what it left behind keeps the pipes open and writes on, one line
    // of it begun before the shell exited and finished after.
    let h = Harness::new();
    let code = h.run(
        one("behind", |p| {
            p.job("late").step(
                "bg",
                Cmd::sh(
                    "echo early; printf 'sp'; (sleep 0.1; printf 'lit\\n'; echo late-err >&2) &",
                ),
            );
        }),
        &["behind"],
    );
    assert_eq!(code, 0);
    let records: Vec<sparkwing_contract::LogRecord> = h
        .log("late")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &sparkwing_contract::LogRecord| r.event.is_empty())
        .collect();
    // Each stream in its own order; how the two interleave is not promised.
    let stream = |stderr: bool| -> Vec<&str> {
        records
            .iter()
            .filter(|r| r.attrs.get("stream").is_some_and(|s| s == "stderr") == stderr)
            .map(|r| r.msg.as_str())
            .collect()
    };
    assert_eq!(stream(false), ["early", "split"], "{records:?}");
    assert_eq!(stream(true), ["late-err"], "{records:?}");
}

#[test]
fn many_lines_are_written_as_few_ordered_parts() {
    let h = Harness::new();
    let code = h.run(
        one("lines", |p| {
            p.job("print")
                .step("seq", Cmd::new("seq").args(["1", "50000"]));
        }),
        &["lines"],
    );
    assert_eq!(code, 0);
    let parts = h.parts("print");
    assert!((1..=10).contains(&parts), "{parts} parts for 50,000 lines");
    let log = h.log("print");
    let nums: Vec<u32> = log
        .lines()
        .filter_map(|l| {
            let r: sparkwing_contract::LogRecord = serde_json::from_str(l).unwrap();
            r.msg.parse().ok()
        })
        .collect();
    assert_eq!(nums.len(), 50_000);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn usage_errors_exit_2_before_touching_disk() {
    let h = Harness::new();
    let cyclic = || {
        one("bad", |p| {
            p.job("x").needs(["y"]);
            p.job("y").needs(["x"]);
            p.job("z").needs(["ghost"]);
        })
    };
    assert_eq!(h.run(cyclic(), &["bad"]), 2);
    assert_eq!(h.run(cyclic(), &["missing"]), 2);
    assert_eq!(h.run(cyclic(), &[]), 2);
    let counted = Pipelines::new().register("n", "", |args| {
        let n: u32 = args.parse_or("count", 1)?;
        let mut plan = Plan::new();
        for i in 0..n {
            plan.job(format!("j{i}"));
        }
        Ok(plan)
    });
    assert_eq!(h.run(counted, &["n", "--count", "many"]), 2);
    let h0 = Harness::new().set("SPARKWING_WORKERS", "0");
    assert_eq!(
        h0.run(
            one("ok", |p| {
                p.job("a");
            }),
            &["ok"]
        ),
        2
    );
    // The supervisor's database exists (it opens it before the child starts); the child wrote
    // nothing: no run, no log, no spool.
    for home in [h.home(), h0.home()] {
        let runs = Reader::open(&home.join("state.db"))
            .unwrap()
            .list_runs(&Default::default())
            .unwrap();
        assert!(runs.is_empty(), "a usage error must not create records");
        let entries: Vec<String> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("state.db"))
            .collect();
        assert!(entries.is_empty(), "{entries:?}");
    }
}

#[test]
fn describe_lists_every_pipeline() {
    let p = Pipelines::new()
        .register("a", "first", |_| Ok(Plan::new()))
        .register("b", "second", |_| Ok(Plan::new()));
    let v: serde_json::Value = serde_json::from_str(&p.describe_json()).unwrap();
    assert_eq!(v["sdk_version"], sparkwing::SDK_VERSION);
    assert_eq!(v["pipelines"][1]["name"], "b");
    assert_eq!(v["pipelines"][0]["description"], "first");
}

#[test]
fn ten_thousand_noop_jobs_all_complete() {
    let h = Harness::new();
    let code = h.run(
        one("noop", |p| {
            for i in 0..10_000 {
                p.job(format!("n{i}"))
                    .step_fn("noop", |_ctx| async { Ok(()) });
            }
        }),
        &["noop"],
    );
    assert_eq!(code, 0);
    let (_, nodes) = h.records();
    assert_eq!(nodes.len(), 10_000);
    assert!(nodes.values().all(|n| n.outcome == Some(Outcome::Success)));
}

#[test]
fn artifact_keys_that_could_escape_the_store_are_refused() {
    let h = Harness::new();
    let code = h.run(
        one("escape", |p| {
            p.job("save").step_fn("save", |ctx| async move {
                ctx.save_artifact("../outside.txt", "x").await?;
                Ok(())
            });
        }),
        &["escape"],
    );
    assert_eq!(code, 1);
    let (_, nodes) = h.records();
    assert_eq!(nodes["save"].outcome, Some(Outcome::Failed));
    assert!(
        nodes["save"].error.contains("save artifact"),
        "{}",
        nodes["save"].error
    );
    assert!(nodes["save"].artifacts.is_empty());
    assert!(!h.home().join("outside.txt").exists());
}

/// `bin/` and `runs/` of the cache surface hold pipeline binaries and run records: a pipeline can
/// never write there (a reader job could otherwise plant a binary), whatever the case.
#[test]
fn artifacts_under_reserved_namespaces_are_refused_before_any_io() {
    let h = Harness::new();
    let code = h.run(
        one("plant", |p| {
            p.job("bin").step_fn("save", |ctx| async move {
                ctx.save_artifact("bin/0123456789abcdef0123456789abcdef", "x")
                    .await?;
                Ok(())
            });
            p.job("runs").step_fn("save", |ctx| async move {
                ctx.save_artifact("RUNS/run-20260101-000000-00000000/state.ndjson", "x")
                    .await?;
                Ok(())
            });
            p.job("ok").step_fn("save", |ctx| async move {
                ctx.save_artifact("binaries/x", "x").await?;
                // Reading is fine.
                assert!(ctx.load_artifact("bin/nothing-here").await.is_err());
                Ok(())
            });
        }),
        &["plant"],
    );
    assert_eq!(code, 1);
    let (_, nodes) = h.records();
    for id in ["bin", "runs"] {
        assert_eq!(nodes[id].outcome, Some(Outcome::Failed), "{id}");
        assert!(
            nodes[id].error.contains("reserved for sparkwing"),
            "{}",
            nodes[id].error
        );
        assert!(nodes[id].artifacts.is_empty());
    }
    assert_eq!(nodes["ok"].outcome, Some(Outcome::Success));
    let stored: Vec<_> = walk_files(&h.home());
    assert!(
        !stored
            .iter()
            .any(|p| p.contains("/bin/0123") || p.contains("RUNS")),
        "{stored:?}"
    );
}

fn walk_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}
