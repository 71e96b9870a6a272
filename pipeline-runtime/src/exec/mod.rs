//! Running a job's commands: each in its own process group, output captured line by line, stopped
//! by signalling the group (SIGTERM, grace, SIGKILL).

mod unix;

pub(crate) use unix::signal_group;

use crate::error::JobError;
use crate::log::{Level, NodeLog, Stream};
use crate::plan::Cmd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the owner of a job wants from its running commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Keep running.
    Run,
    /// SIGTERM the process group now, SIGKILL after the grace period.
    Term,
    /// SIGKILL the process group now.
    Kill,
}

/// A line longer than this is cut into pieces so one endless line cannot hold memory hostage.
const MAX_LINE: usize = 64 * 1024;
/// How long output may keep flowing after the command's main process exited (a background child
/// that kept the pipe) before the rest of the group is killed.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// Where and how a command runs.
pub(crate) struct Spawn<'a> {
    pub cmd: &'a Cmd,
    pub job_env: &'a [(String, String)],
    pub job_dir: Option<&'a Path>,
    pub work_dir: &'a Path,
    pub grace: Duration,
}

/// Runs the command to completion. With `capture`, stdout is returned instead of logged.
pub(crate) async fn run(
    spec: Spawn<'_>,
    log: &NodeLog,
    step: &str,
    stop: &mut watch::Receiver<Stop>,
    capture: bool,
) -> Result<String, JobError> {
    let display = log.masker().mask(&spec.cmd.to_string()).into_owned();
    if *stop.borrow_and_update() != Stop::Run {
        return Err(JobError::Stopping { command: display });
    }
    let dir = match spec.cmd.dir.as_deref().or(spec.job_dir) {
        Some(d) => spec.work_dir.join(d),
        None => spec.work_dir.to_path_buf(),
    };
    let mut command = tokio::process::Command::new(&spec.cmd.program);
    command
        .args(&spec.cmd.args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in spec.job_env.iter().chain(spec.cmd.env.iter()) {
        command.env(k, v);
    }
    log.record(Level::Info, step, "exec", &format!("$ {display}"), None);
    let mut child = command.spawn().map_err(|source| JobError::Spawn {
        command: display.clone(),
        source,
    })?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let mut guard = unix::GroupGuard::new(pgid);
    let mut out_task = tokio::spawn(pump(
        child.stdout.take(),
        log.clone(),
        step.to_string(),
        Stream::Stdout,
        capture,
    ));
    let mut err_task = tokio::spawn(pump(
        child.stderr.take(),
        log.clone(),
        step.to_string(),
        Stream::Stderr,
        false,
    ));

    let mut kill_at: Option<Instant> = None;
    let mut stop_open = true;
    let status = loop {
        tokio::select! {
            s = child.wait() => break s,
            changed = stop.changed(), if stop_open => {
                if changed.is_err() {
                    stop_open = false;
                    continue;
                }
                let now = *stop.borrow_and_update();
                match now {
                    Stop::Run => {}
                    Stop::Term => {
                        if kill_at.is_none() {
                            signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
                            kill_at = Some(Instant::now() + spec.grace);
                        }
                    }
                    Stop::Kill => {
                        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                        kill_at = None;
                    }
                }
            }
            _ = sleep_until_opt(kill_at), if kill_at.is_some() => {
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                kill_at = None;
            }
        }
    };

    // The main process is gone; give the pipes a moment to drain, then clear out whatever is left
    // of the group so nothing outlives its job. A process that left the group (setsid) and kept
    // the pipe open is abandoned after a further second rather than holding the job forever.
    let mut captured: Option<Option<String>> = None;
    let mut err_done = false;
    let mut killed = false;
    let mut deadline = Instant::now() + DRAIN_AFTER_EXIT;
    while captured.is_none() || !err_done {
        tokio::select! {
            r = &mut out_task, if captured.is_none() => captured = Some(r.ok().flatten()),
            _ = &mut err_task, if !err_done => err_done = true,
            _ = tokio::time::sleep_until(deadline) => {
                if killed {
                    out_task.abort();
                    err_task.abort();
                    break;
                }
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                killed = true;
                deadline = Instant::now() + Duration::from_secs(1);
            }
        }
    }
    if !killed {
        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    guard.disarm();
    let captured = captured.flatten();

    let status = status.map_err(|source| JobError::Wait {
        command: display.clone(),
        source,
    })?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(captured.unwrap_or_default()),
        (Some(code), _) => Err(JobError::Exit {
            command: display,
            code,
        }),
        (None, Some(signal)) => Err(JobError::Signal {
            command: display,
            signal,
        }),
        (None, None) => Err(JobError::Exit {
            command: display,
            code: -1,
        }),
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads one pipe to its end, handing complete lines to the log in batches. With `capture`, the
/// text is collected and returned instead.
async fn pump(
    reader: Option<impl AsyncRead + Unpin>,
    log: NodeLog,
    step: String,
    stream: Stream,
    capture: bool,
) -> Option<String> {
    let mut reader = reader?;
    let mut captured = capture.then(String::new);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        if let Some(pos) = pending.iter().rposition(|&b| b == b'\n') {
            let rest = pending.split_off(pos + 1);
            let complete = std::mem::replace(&mut pending, rest);
            emit(&log, &step, stream, &complete, captured.as_mut()).await;
        } else if pending.len() >= MAX_LINE {
            let chunk = std::mem::take(&mut pending);
            emit(&log, &step, stream, &chunk, captured.as_mut()).await;
        }
    }
    if !pending.is_empty() {
        emit(&log, &step, stream, &pending, captured.as_mut()).await;
    }
    captured
}

async fn emit(
    log: &NodeLog,
    step: &str,
    stream: Stream,
    bytes: &[u8],
    captured: Option<&mut String>,
) {
    let text = String::from_utf8_lossy(bytes);
    if let Some(c) = captured {
        c.push_str(&text);
        return;
    }
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lines: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    log.output(step, stream, &lines).await;
}
