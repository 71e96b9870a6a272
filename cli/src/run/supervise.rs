//! Supervising the pipeline child: spawn, forward signals, propagate its exit.
//!
//! The model is uv's `child.rs`. The child stays in our process group, so a Ctrl-C in an
//! interactive terminal reaches it directly from the terminal driver and is not forwarded a second
//! time. A SIGINT sent to this process alone (CI runners, `kill -INT`) is forwarded. SIGTERM, SIGHUP
//! and SIGQUIT are always forwarded. No signal is left ignored across exec.
//!
//! Nothing the run started outlives it. The pipeline process runs each job in a process group of
//! its own and ends those groups itself; when it dies before it can (SIGKILL, OOM), its jobs are
//! orphaned. On Linux the supervisor is their subreaper, so they become its children: once the
//! pipeline process is gone, [`end_leftovers`] ends each leftover process group (SIGTERM, a grace
//! period, SIGKILL) and reaps it.

use std::io::IsTerminal;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpgid};
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl ChildEnd {
    fn from_status(s: ExitStatus) -> ChildEnd {
        match (s.code(), s.signal()) {
            (Some(c), _) => ChildEnd::Code(c),
            (None, Some(sig)) => ChildEnd::Signal(sig),
            (None, None) => ChildEnd::Code(sparkwing_contract::exit::FAILURE),
        }
    }

    /// The code the supervisor exits with: the child's own, or 128+N for a signal death.
    pub fn exit_code(self) -> i32 {
        match self {
            ChildEnd::Code(c) => c,
            ChildEnd::Signal(s) => sparkwing_contract::exit::signal(s),
        }
    }

    /// True when the child ended the way the contract allows (0, 1 or 2); anything else means
    /// it died without finishing its records.
    pub fn is_orderly(self) -> bool {
        matches!(self, ChildEnd::Code(0..=2))
    }
}

/// Spawns `cmd` and waits for it while forwarding signals. When `cancel` resolves (`run --watch`
/// saw a change), the child is sent SIGTERM once, the orderly cancel a terminal's Ctrl-C or a CI
/// runner's stop would be: it ends its jobs and records the run `cancelled`.
pub async fn run_to_completion(
    mut cmd: Command,
    on_spawn: impl FnOnce(u32),
    cancel: impl std::future::Future<Output = ()>,
) -> std::io::Result<ChildEnd> {
    let cancel = std::pin::pin!(cancel);
    let mut cancel = futures_util::FutureExt::fuse(cancel);
    cmd.kill_on_drop(false);
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigquit = signal(SignalKind::quit())?;
    become_subreaper();
    let mut child = spawn_retrying(&mut cmd).await?;
    if let Some(pid) = child.id() {
        on_spawn(pid);
    }
    let parent_pgid = getpgid(None).ok();
    let interactive = std::io::stdin().is_terminal();

    let forward = |child: &tokio::process::Child, sig: Signal| {
        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    };

    let status = loop {
        tokio::select! {
            status = child.wait() => match status {
                Ok(s) => break s,
                Err(e) => {
                    // Never leave the pipeline running unsupervised.
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(e);
                }
            },
            _ = sigint.recv() => {
                let child_pgid = child
                    .id()
                    .and_then(|id| i32::try_from(id).ok())
                    .and_then(|pid| getpgid(Some(Pid::from_raw(pid))).ok());
                // The terminal driver already delivered it to the whole foreground group.
                if interactive && child_pgid.is_some() && child_pgid == parent_pgid {
                    continue;
                }
                forward(&child, Signal::SIGINT);
            }
            () = &mut cancel => forward(&child, Signal::SIGTERM),
            _ = sigterm.recv() => forward(&child, Signal::SIGTERM),
            _ = sighup.recv() => forward(&child, Signal::SIGHUP),
            _ = sigquit.recv() => forward(&child, Signal::SIGQUIT),
        }
    };
    end_leftovers(LEFTOVER_GRACE).await;
    Ok(ChildEnd::from_status(status))
}

/// How long leftover processes get between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Makes orphaned descendants of this process its children instead of init's (Linux only;
/// elsewhere a job left running by a killed pipeline process is not ended).
fn become_subreaper() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!("cannot become a subreaper: {e}");
    }
}

/// Ends and reaps every process that was orphaned to this one, by process group.
async fn end_leftovers(grace: std::time::Duration) {
    let me = nix::unistd::getpid();
    let own_group = getpgid(None).ok();
    let mut groups = std::collections::BTreeSet::new();
    // Killing a group can orphan more processes (children of the ones that died): a few rounds.
    for _ in 0..3 {
        // Reading every process's stat costs milliseconds on a busy machine; with no child at
        // all there is nothing to find.
        if childless() {
            break;
        }
        let found = children_of(me);
        if found.is_empty() {
            break;
        }
        // Zombies only need reaping; live ones are what the pipeline left running.
        groups.extend(found.iter().filter(|c| !c.zombie).map(|c| c.pgid));
        let orphans: Vec<(Pid, Pid)> = found.iter().map(|c| (c.pid, c.pgid)).collect();
        let signal_all = |sig: Signal| {
            for &(pid, pgid) in &orphans {
                if Some(pgid) != own_group && pgid.as_raw() > 1 {
                    let _ = nix::sys::signal::killpg(pgid, sig);
                } else {
                    let _ = kill(pid, sig);
                }
            }
        };
        signal_all(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while !reap(&orphans) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if !reap(&orphans) {
            signal_all(Signal::SIGKILL);
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
            while !reap(&orphans) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    if !groups.is_empty() {
        let n = groups.len();
        eprintln!(
            "sparkwing: ended {n} process group{} the pipeline left running",
            if n == 1 { "" } else { "s" }
        );
    }
}

/// Reaps whichever of `procs` have ended; true when all have.
fn reap(procs: &[(Pid, Pid)]) -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let mut all = true;
    for &(pid, _) in procs {
        // Anything else is reaped now, or was already (ECHILD).
        if let Ok(WaitStatus::StillAlive) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            all = false;
        }
    }
    all
}

/// A child process of this one, as `/proc` shows it.
struct Orphan {
    pid: Pid,
    pgid: Pid,
    zombie: bool,
}

/// Whether this process has no child at all, dead or alive (`waitid` says so without reaping
/// anything): then there is nothing to look for in `/proc`.
fn childless() -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(waitid(Id::All, flags), Err(nix::errno::Errno::ECHILD))
}

/// The processes whose parent is `parent`, read from `/proc` (empty where there is no `/proc`).
fn children_of(parent: Pid) -> Vec<Orphan> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let (state, ppid, pgrp) = (rest.next()?, rest.next()?, rest.next()?);
            if ppid.parse::<i32>().ok()? != parent.as_raw() {
                return None;
            }
            Some(Orphan {
                pid: Pid::from_raw(pid),
                pgid: Pid::from_raw(pgrp.parse().ok()?),
                zombie: state == "Z",
            })
        })
        .collect()
}

/// A binary that was just written may be briefly busy (ETXTBSY) if another thread of some
/// process forked while a writable descriptor to it was open; that clears within milliseconds.
async fn spawn_retrying(cmd: &mut Command) -> std::io::Result<tokio::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 5 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * tries)).await;
            }
            other => return other,
        }
    }
}
