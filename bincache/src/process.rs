//! Whether a process named by a pid file or a scratch name still runs.

use std::path::Path;

/// A process that exists and is not a zombie. Without `/proc` (not Linux), a process that
/// exists: a zombie then counts as alive, which only makes a caller wait or keep more.
pub fn alive(pid: i32) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Ok(()) | Err(nix::errno::Errno::EPERM)
        );
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state …`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}
