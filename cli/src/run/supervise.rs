//! Supervising the pipeline child: spawn, forward signals, propagate its exit.
//!
//! The model is uv's `child.rs`. The child stays in our process group, so a Ctrl-C in an
//! interactive terminal reaches it directly from the terminal driver and is not forwarded a second
//! time. A SIGINT sent to this process alone (CI runners, `kill -INT`) is forwarded. SIGTERM, SIGHUP
//! and SIGQUIT are always forwarded. No signal is left ignored across exec.

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

/// Spawns `cmd` and waits for it while forwarding signals.
pub async fn run_to_completion(
    mut cmd: Command,
    on_spawn: impl FnOnce(u32),
) -> std::io::Result<ChildEnd> {
    cmd.kill_on_drop(false);
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigquit = signal(SignalKind::quit())?;
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
            _ = sigterm.recv() => forward(&child, Signal::SIGTERM),
            _ = sighup.recv() => forward(&child, Signal::SIGHUP),
            _ = sigquit.recv() => forward(&child, Signal::SIGQUIT),
        }
    };
    Ok(ChildEnd::from_status(status))
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
