//! Exit codes. The supervisor passes the child's code through unchanged.

/// Every node succeeded (or was skipped / cached).
pub const SUCCESS: i32 = 0;
/// A node failed, the run was cancelled, or the orchestrator failed.
pub const FAILURE: i32 = 1;
/// Usage error: bad flag, unknown pipeline, invalid plan, malformed config.
pub const USAGE: i32 = 2;

/// The code for a process killed by signal `signo`: 128 + N.
pub const fn signal(signo: i32) -> i32 {
    128 + signo
}
