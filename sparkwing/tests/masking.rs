//! Secret masking with real processes: secrets broken up by terminal codes, quoted into the echoed
//! command line, printed by step code to the pipeline's own stdout and stderr or in a panic; and a
//! CI console that job output and errors cannot issue workflow commands on.

use sparkwing::prelude::*;
use sparkwing_storage::{FsLogStore, LogStore, ReadOpts};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const RUN: &str = "run-20261202-142800-0a5c0de5";
const TOKEN: &str = "tok-SuperSecret-123";

/// The text a person would read: CSI and OSC sequences, two-byte escapes and the other control
/// characters (`\r`, backspace, …) removed. Written independently of the SDK's own.
fn readable(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

struct Harness {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        let home = dir.path().join("home").display().to_string();
        env.insert("SPARKWING_HOME".into(), home);
        env.insert(
            "SPARKWING_WORK_DIR".into(),
            dir.path().display().to_string(),
        );
        env.insert("SPARKWING_RUN_ID".into(), RUN.into());
        env.insert("SPARKWING_LOG_FORMAT".into(), "plain".into());
        env.insert("SPARKWING_WORKERS".into(), "2".into());
        env.insert("SPARKWING_SECRET_ENV".into(), "TOK".into());
        env.insert("TOK".into(), TOKEN.into());
        Harness { dir, env }
    }

    fn run(&self, name: &str, build: impl Fn(&mut Plan) + 'static) -> i32 {
        let home = std::path::PathBuf::from(&self.env["SPARKWING_HOME"]);
        std::fs::create_dir_all(&home).unwrap();
        let host = sparkwing_storage_testing::RelayHost::start(
            &home.join("state.db"),
            sparkwing_storage::relay::RelayStores::new(Vec::new()),
        );
        let mut env = self.env.clone();
        env.extend(host.env().map(|(k, v)| (k.to_string(), v)));
        let pipelines = Pipelines::new().register(name, "test pipeline", move |_args| {
            let mut plan = Plan::new();
            build(&mut plan);
            Ok(plan)
        });
        let code = pipelines.run_with(vec![name.to_string()], move |k| env.get(k).cloned());
        host.finish();
        code
    }

    /// The messages of `node`'s stored log.
    fn messages(&self, node: &str) -> Vec<String> {
        let store = FsLogStore::new(self.dir.path().join("home/runs"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(store.read(RUN, node, &ReadOpts::default()))
            .unwrap();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<sparkwing_contract::LogRecord>(l)
                    .unwrap()
                    .msg
            })
            .collect()
    }
}

#[test]
fn a_secret_broken_up_by_terminal_codes_is_masked_whole() {
    let h = Harness::new();
    let code = h.run("colours", |p| {
        p.job("colours")
            .env("TOK", TOKEN)
            .step(
                "grep",
                Cmd::sh(r#"echo "$TOK" | grep --color=always Super"#),
            )
            .step("sgr", Cmd::sh(r"printf 'tok-Super\033[1mSecret-123\n'"))
            .step("cr", Cmd::sh(r"printf 'x tok-Super\rSecret-123 y\n'"))
            .step(
                "osc",
                Cmd::sh(r"printf 'tok-\033]8;;https://e.x\033\\Super\033]8;;\007Secret-123\n'"),
            );
    });
    assert_eq!(code, 0);
    let msgs = h.messages("colours");
    let output: Vec<&String> = msgs.iter().filter(|m| !m.starts_with("$ ")).collect();
    assert_eq!(output.len(), 4, "{msgs:?}");
    for m in &output {
        assert!(
            !readable(m).contains(TOKEN),
            "readable as {:?}",
            readable(m)
        );
        assert!(readable(m).contains("***"), "{m:?}");
    }
    // The whole raw span goes, escape codes inside it included; what is around it stays.
    assert!(output[0].ends_with("***"), "{:?}", output[0]);
    assert_eq!(*output[1], "***");
    assert_eq!(*output[2], "x *** y");
}

#[test]
fn a_secret_with_a_quote_is_masked_in_the_echoed_command_line() {
    let mut h = Harness::new();
    h.env
        .insert("SPARKWING_SECRET_ENV".into(), "TOK,PASS".into());
    h.env.insert("PASS".into(), "pa'ss-word-42".into());
    let code = h.run("quote", |p| {
        p.job("quote")
            .step("echo", Cmd::new("echo").args(["user", "pa'ss-word-42"]))
            .step_fn("register", |ctx| async move {
                ctx.add_secret("it's-a-secret");
                ctx.run(&Cmd::new("true").arg("it's-a-secret")).await?;
                Ok(())
            });
    });
    assert_eq!(code, 0);
    let msgs = h.messages("quote");
    let echoed: Vec<&String> = msgs.iter().filter(|m| m.starts_with("$ ")).collect();
    assert_eq!(echoed.len(), 2, "{msgs:?}");
    for m in &echoed {
        assert!(!m.contains("ss-word") && !m.contains("-a-secret"), "{m}");
    }
}

/// The `masking` example binary (built by `cargo test` beside the test binaries).
fn example_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples/masking");
    assert!(
        bin.exists(),
        "`{}` missing: run `cargo test -p sparkwing`",
        bin.display()
    );
    bin
}

/// Runs a pipeline of the example binary: (exit code, stdout, stderr).
fn run_example(pipeline: &str, env: &[(&str, &str)]) -> (i32, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    let host = sparkwing_storage_testing::RelayHost::start(
        &dir.path().join("home/state.db"),
        sparkwing_storage::relay::RelayStores::new(Vec::new()),
    );
    let out = Command::new(example_bin())
        .arg(pipeline)
        .envs(host.env())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SPARKWING_HOME", dir.path().join("home"))
        .env("SPARKWING_WORK_DIR", dir.path())
        .env("SPARKWING_RUN_ID", RUN)
        .env("SPARKWING_LOG_FORMAT", "plain")
        .env("SPARKWING_WORKERS", "1")
        .env("SPARKWING_SECRET_ENV", "TOK")
        .env("TOK", TOKEN)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the masking example");
    host.finish();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

#[test]
fn step_code_writing_to_the_process_stdout_and_stderr_is_masked() {
    let (code, out, err, _dir) = run_example("stdio", &[]);
    let all = format!("{out}\n{err}");
    assert_eq!(code, 1, "the panicking job fails the run\n{all}");
    for secret in [TOKEN, "later-registered-value", "tok-S"] {
        assert!(!all.contains(secret), "`{secret}` leaked:\n{all}");
    }
    for expected in [
        "building with ***",
        "println ***",
        "partial ***",
        "later ***",
        "inherited ***",
        "last words without a newline",
    ] {
        assert!(out.contains(expected), "no `{expected}` on stdout:\n{all}");
    }
    for expected in ["eprintln ***", "inherited-err ***", "panicked with ***"] {
        assert!(err.contains(expected), "no `{expected}` on stderr:\n{all}");
    }
}

#[test]
fn a_plan_that_fails_to_build_cannot_print_the_secret() {
    let (code, out, err, _dir) = run_example("build-fails", &[]);
    let all = format!("{out}\n{err}");
    assert_eq!(code, 1, "{all}");
    assert!(!all.contains(TOKEN), "{all}");
    assert!(err.contains("about to fail with ***"), "{all}");
    assert!(err.contains("bad token ***"), "{all}");
}

/// Reads a GitHub Actions console the way the runner does: after `::stop-commands::<token>`
/// nothing is a command until `::<token>::`; otherwise a line whose text (leading whitespace
/// trimmed) starts with `::` is a command, and so is a `##[` anywhere. Returns the commands.
fn github_commands(console: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut stopped: Option<String> = None;
    for line in console.lines() {
        let t = line.trim_start();
        if let Some(token) = &stopped {
            if t == format!("::{token}::") {
                stopped = None;
            }
            continue;
        }
        if let Some(token) = t.strip_prefix("::stop-commands::") {
            assert!(token.len() >= 16, "a guessable token: {line:?}");
            stopped = Some(token.to_string());
            commands.push("stop-commands".into());
        } else if t.starts_with("::") || t.contains("##[") {
            commands.push(t.to_string());
        }
    }
    assert!(stopped.is_none(), "commands stay stopped at the end");
    commands
}

#[test]
fn job_output_and_errors_cannot_issue_github_commands() {
    for workers in ["1", "3"] {
        let (code, out, err, _dir) = run_example(
            "ci-commands",
            &[
                ("SPARKWING_MODE", "ci-embedded"),
                ("GITHUB_ACTIONS", "true"),
                ("SPARKWING_WORKERS", workers),
            ],
        );
        assert_eq!(code, 1, "{out}\n{err}");
        for c in github_commands(&out) {
            let ours = c == "stop-commands"
                || c.starts_with("::group::")
                || c == "::endgroup::"
                || c.starts_with("::error title=sparkwing::job `fails` failed: error: boom%0A")
                || c == "::notice::allowed"
                || c.starts_with("$ echo '::notice::allowed'");
            assert!(ours, "a command the console did not mean: {c:?}\n{out}");
        }
        assert!(
            out.lines().any(|l| l == "::notice::allowed"),
            "a job that opted in issues commands\n{out}"
        );
        // The text is still there for people to read.
        assert!(out.contains("::warning title=injected::x"), "{out}");
        assert!(out.contains("legacy"), "{out}");
    }
}
