//! Running the dashboard in the background: `start` re-executes this binary with `--foreground`
//! (stdout and stderr appended to `$SPARKWING_HOME/dashboard.log`), waits until it accepts
//! connections and prints where it is; `stop` and `status` find it through its pid file.

use super::StartArgs;
use super::pidfiles::{PidFiles, Recorded, url};
use super::plan::Plan;
use crate::error::{CliError, CliResult};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `start` waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `dashboard start` without `--foreground`.
pub fn start(args: &StartArgs, plan: &Plan) -> CliResult {
    let files = PidFiles::new(&plan.home);
    if let Some((pid, addr)) = files.running() {
        let at = addr.map(url).unwrap_or_else(|| "an unknown address".into());
        return Err(CliError::failure(format!(
            "start the dashboard: one is already running (pid {pid}) at {at}"
        ))
        .with_hint("`sparkwing dashboard stop` stops it"));
    }
    // Fail here, with the holder named, rather than in a detached process.
    drop(super::server::bind(plan.addr)?);

    std::fs::create_dir_all(plan.home.path())
        .map_err(|e| CliError::failure(format!("create `{}`: {e}", plan.home.path().display())))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&files.log)
        .map_err(|e| CliError::failure(format!("open `{}`: {e}", files.log.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| CliError::failure(format!("open `{}`: {e}", files.log.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("find the sparkwing executable: {e}")))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.args([
        "dashboard",
        "start",
        "--foreground",
        "--addr",
        &plan.addr.to_string(),
    ]);
    if let Some(p) = &args.profile {
        cmd.args(["--profile", p]);
    }
    if let Some(u) = &args.log_store {
        cmd.args(["--log-store", u]);
    }
    if let Some(u) = &args.artifact_store {
        cmd.args(["--artifact-store", u]);
    }
    for host in &plan.allowed_hosts {
        cmd.args(["--allowed-host", host]);
    }
    if args.read_only {
        cmd.arg("--read-only");
    }
    if args.no_local_store {
        cmd.arg("--no-local-store");
    }
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C in this terminal later must not stop the server.
        cmd.process_group(0);
    }
    cmd.env(sparkwing_contract::env::HOME, plan.home.path())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    let mut child = cmd.spawn().map_err(|e| {
        CliError::failure(format!(
            "start `{} dashboard start --foreground`: {e}",
            exe.display()
        ))
    })?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::failure(format!(
                "start the dashboard: the server exited ({status}) before accepting connections; last lines of `{}`:\n{}",
                files.log.display(),
                tail(&files.log, 10)
            )));
        }
        // Ready once it accepts connections and has recorded itself (the listener is bound
        // just before the pid file is written, so a connection alone can win that race).
        let recorded = files
            .running()
            .is_some_and(|(pid, addr)| i64::from(pid) == i64::from(child.id()) && addr.is_some());
        if recorded && TcpStream::connect_timeout(&plan.addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CliError::failure(format!(
                "start the dashboard: nothing accepted connections on `{}` within {} s; see `{}`",
                plan.addr,
                START_TIMEOUT.as_secs(),
                files.log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("dashboard: {}", url(plan.addr));
    println!("api:       {}api/v1", url(plan.addr));
    println!("home:      {}", plan.home.path().display());
    println!("log:       {}", files.log.display());
    println!("pid:       {}", child.id());
    Ok(0)
}

/// `dashboard stop`: SIGTERM, wait, SIGKILL after [`STOP_GRACE`], remove the pid file.
pub fn stop() -> CliResult {
    let home = crate::home::sparkwing_home()?;
    let files = PidFiles::new(&home);
    let pid = match files.recorded() {
        None => {
            files.remove();
            println!("dashboard not running");
            return Ok(0);
        }
        Some(Recorded::Other(pid, program)) => {
            files.remove();
            return Err(CliError::failure(format!(
                "stop the dashboard: pid {pid} in `{}` is not a sparkwing dashboard (it runs `{program}`); nothing was signalled",
                files.pid_path().display()
            ))
            .with_hint("the stale pid file was removed; `sparkwing dashboard start` starts a dashboard"));
        }
        Some(Recorded::Dashboard(pid, _)) => pid,
    };
    let target = Pid::from_raw(pid);
    kill(target, Signal::SIGTERM)
        .map_err(|e| CliError::failure(format!("signal the dashboard (pid {pid}): {e}")))?;
    let deadline = Instant::now() + STOP_GRACE;
    let mut killed = false;
    while kill(target, None).is_ok() {
        if Instant::now() > deadline && !killed {
            let _ = kill(target, Signal::SIGKILL);
            killed = true;
        }
        if Instant::now() > deadline + Duration::from_secs(5) {
            return Err(CliError::failure(format!(
                "stop the dashboard (pid {pid}): it is still alive after SIGKILL"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    files.remove();
    println!(
        "dashboard stopped (pid {pid}{})",
        if killed { ", killed after 5 s" } else { "" }
    );
    Ok(0)
}

/// `dashboard status`: exit 0 with its address when running, else exit 1.
pub fn status() -> CliResult {
    let home = crate::home::sparkwing_home()?;
    let files = PidFiles::new(&home);
    match files.running() {
        Some((pid, addr)) => {
            let at = addr.map(url).unwrap_or_else(|| "an unknown address".into());
            println!("dashboard running (pid {pid}) at {at}");
            println!("log: {}", files.log.display());
            Ok(0)
        }
        None => {
            println!("dashboard not running");
            Ok(sparkwing_contract::exit::FAILURE)
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
