//! Process-group signalling.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `sig` to process group `pgid`. A group that is already gone is not an error.
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}

/// Kills the group when dropped unless disarmed: a job future dropped mid-command (its task was
/// aborted) must not leave its processes running.
pub(crate) struct GroupGuard {
    pgid: i32,
}

impl GroupGuard {
    pub fn new(pgid: i32) -> GroupGuard {
        GroupGuard { pgid }
    }

    pub fn disarm(&mut self) {
        self.pgid = 0;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.pgid, Signal::SIGKILL);
    }
}
