//! Where the reports of a finished run go: GitHub Actions' job summary file
//! (`GITHUB_STEP_SUMMARY`), a Buildkite annotation (`buildkite-agent annotate`), a JUnit file
//! (`--junit`). A report that cannot be made is one warning line; it never changes the exit code,
//! which stays the pipeline's.

use super::junit;
use super::markdown::{self, Links};
use super::results::{self, RunResults};
use crate::reader::Runs;
use sparkwing_contract::RunStatus;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The file GitHub Actions renders as the step's job summary (Markdown, appended to).
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
/// `true` inside a Buildkite job.
pub const BUILDKITE: &str = "BUILDKITE";
/// The Buildkite agent's command line, on `PATH` inside a Buildkite job.
pub const BUILDKITE_AGENT: &str = "buildkite-agent";
/// Longest wait for the run's records and logs (bounded store calls, several of them).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for `buildkite-agent annotate`.
const AGENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the supervisor knows of the finished run.
pub struct Request<'a> {
    pub run_id: &'a str,
    pub profile: &'a sparkwing_config::Resolved,
    pub home: &'a sparkwing_contract::Home,
    /// `--junit` or `SPARKWING_JUNIT`, absolute.
    pub junit: Option<&'a Path>,
}

/// Where reports go, from the environment.
#[derive(Debug, Default, PartialEq)]
struct Targets {
    summary_file: Option<PathBuf>,
    agent: Option<PathBuf>,
    junit: Option<PathBuf>,
    dashboard: Option<String>,
}

impl Targets {
    fn from_env(junit: Option<&Path>, get: &impl Fn(&str) -> Option<String>) -> Targets {
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let agent = if set(BUILDKITE).as_deref() == Some("true") {
            let found = on_path(BUILDKITE_AGENT, set("PATH").as_deref().unwrap_or(""));
            if found.is_none() {
                eprintln!(
                    "warning: {BUILDKITE}=true but `{BUILDKITE_AGENT}` is not on PATH: no annotation for this run"
                );
            }
            found
        } else {
            None
        };
        Targets {
            summary_file: set(GITHUB_STEP_SUMMARY).map(PathBuf::from),
            agent,
            junit: junit.map(Path::to_path_buf),
            dashboard: set(sparkwing_contract::env::DASHBOARD_URL),
        }
    }

    fn any(&self) -> bool {
        self.summary_file.is_some() || self.agent.is_some() || self.junit.is_some()
    }
}

/// Reads the finished run back and writes every report its environment asks for.
pub fn publish(req: &Request, get: impl Fn(&str) -> Option<String>, rt: &tokio::runtime::Runtime) {
    let targets = Targets::from_env(req.junit, &get);
    if !targets.any() {
        return;
    }
    let read = rt.block_on(async { tokio::time::timeout(READ_TIMEOUT, read(req)).await });
    let results = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            eprintln!(
                "warning: no report of run {} for the CI page: {e}",
                req.run_id
            );
            return;
        }
        Err(_) => {
            eprintln!(
                "warning: no report of run {} for the CI page: reading its records took over {} s",
                req.run_id,
                READ_TIMEOUT.as_secs()
            );
            return;
        }
    };
    let links = Links {
        profile: (req.profile.name != sparkwing_config::BUILT_IN).then(|| req.profile.name.clone()),
        dashboard: targets.dashboard.clone().filter(|url| {
            let ok = markdown::run_url(url, req.run_id).is_some();
            if !ok {
                eprintln!(
                    "warning: `{}` is not an http(s) URL: the summary links no dashboard",
                    sparkwing_contract::env::DASHBOARD_URL
                );
            }
            ok
        }),
    };
    let md = markdown::summary(&results, &links);
    if let Some(file) = &targets.summary_file
        && let Err(e) = append(file, &md)
    {
        eprintln!(
            "warning: could not append the run summary to `{}` ({GITHUB_STEP_SUMMARY}): {e}",
            file.display()
        );
    }
    if let Some(agent) = &targets.agent
        && let Err(e) = annotate(agent, &results, &md)
    {
        eprintln!("warning: could not annotate the Buildkite build: {e}");
    }
    if let Some(path) = &targets.junit {
        let xml = junit::render(&results, hostname().as_deref());
        match junit::write_atomic(path, xml.as_bytes()) {
            Ok(()) => eprintln!(
                "sparkwing: JUnit report of {} written to `{}`",
                req.run_id,
                path.display()
            ),
            Err(e) => eprintln!(
                "warning: could not write the JUnit report to `{}`: {e}",
                path.display()
            ),
        }
    }
}

/// The run through the reader `sparkwing runs show` uses for this profile (the bucket's state
/// dumps for a named profile whose cache is a bucket), falling back to this machine's SQLite
/// record when the bucket's copy is missing or not final.
async fn read(req: &Request<'_>) -> Result<RunResults, String> {
    let named = req.profile.name != sparkwing_config::BUILT_IN;
    let runs = crate::source::open_runs(req.profile, named, req.home).map_err(|e| e.to_string())?;
    let local = Runs::local(crate::source::state_db_path(req.profile, req.home));
    let fallback = (!runs.is_local()).then_some(&local);
    let logs = match &req.profile.logs {
        sparkwing_config::Surface::Stdout => None,
        surface => sparkwing_storage::open_log_store(&surface.spec_string()).ok(),
    };
    results::read(&runs, fallback, logs.as_deref(), req.run_id)
        .await
        .map_err(|e| e.to_string())
}

/// Appends `text` to `file`, on a line of its own: an earlier step's summary may not end its last
/// line, and a heading must start one.
fn append(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(file)?;
    let mut last = [0u8; 1];
    let ends_line = f.metadata()?.len() == 0 || {
        f.seek(SeekFrom::End(-1))?;
        f.read_exact(&mut last)?;
        last[0] == b'\n'
    };
    if !ends_line {
        f.write_all(b"\n")?;
    }
    f.write_all(text.as_bytes())
}

/// `buildkite-agent annotate --style success|error --context sparkwing-<run>` with the summary on
/// stdin; one context per run, so a rerun replaces its own annotation and no other.
fn annotate(agent: &Path, r: &RunResults, md: &str) -> Result<(), String> {
    let style = if r.status == RunStatus::Success {
        "success"
    } else {
        "error"
    };
    let context = format!("sparkwing-{}", r.run_id);
    let mut child = std::process::Command::new(agent)
        .args(["annotate", "--style", style, "--context", &context])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("start `{}`: {e}", agent.display()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let body = md.to_string();
    // A thread, so an agent that stops reading cannot block the supervisor past the timeout.
    let writer = std::thread::spawn(move || stdin.write_all(body.as_bytes()));
    let end = Instant::now() + AGENT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{BUILDKITE_AGENT} annotate` did not finish within {} s",
                    AGENT_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("wait for `{BUILDKITE_AGENT}`: {e}")),
        }
    };
    let _ = writer.join();
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{BUILDKITE_AGENT} annotate` exited with {status}"))
    }
}

/// The first executable `name` in the directories of `path`.
fn on_path(name: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// This machine's name, for the JUnit report (Linux; elsewhere none).
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_is_appended_on_a_line_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("summary.md");
        append(&file, "### one\n").unwrap();
        std::fs::write(
            &file,
            std::fs::read_to_string(&file).unwrap() + "no line end",
        )
        .unwrap();
        append(&file, "### two\n").unwrap();
        append(&file, "### three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "### one\nno line end\n### two\n### three\n"
        );
    }

    #[test]
    fn targets_come_from_the_environment_and_empty_means_unset() {
        let tmp = tempfile::tempdir().unwrap();
        let agent = tmp.path().join(BUILDKITE_AGENT);
        std::fs::write(&agent, "#!/bin/sh\n").unwrap();
        let path = format!("/nonexistent:{}", tmp.path().display());
        let env = |pairs: Vec<(&'static str, String)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        // Not executable: not an agent.
        let t = Targets::from_env(
            None,
            &env(vec![("BUILDKITE", "true".into()), ("PATH", path.clone())]),
        );
        assert_eq!(t.agent, None);
        std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let t = Targets::from_env(
            Some(Path::new("/r/j.xml")),
            &env(vec![
                ("BUILDKITE", "true".into()),
                ("PATH", path.clone()),
                ("GITHUB_STEP_SUMMARY", "/s.md".into()),
                ("SPARKWING_DASHBOARD_URL", "http://d".into()),
            ]),
        );
        assert_eq!(
            t,
            Targets {
                summary_file: Some("/s.md".into()),
                agent: Some(agent.clone()),
                junit: Some("/r/j.xml".into()),
                dashboard: Some("http://d".into()),
            }
        );
        let t = Targets::from_env(
            None,
            &env(vec![
                ("BUILDKITE", "false".into()),
                ("PATH", path),
                ("GITHUB_STEP_SUMMARY", " ".into()),
            ]),
        );
        assert!(!t.any(), "{t:?}");
    }
}
