//! What every dashboard request handler sees: the plan it serves, the run reader, and the limits
//! on what requests may hold at once.

use super::plan::Plan;
use crate::reader::Runs;
use std::sync::Arc;
use std::time::Duration;

/// Log requests served at once. Each holds a part (up to 1 MiB stored, about as much rendered)
/// and, for a tail, up to [`super::logs::MAX_TAIL_BYTES`]: a few at once keep the dashboard's
/// memory bounded whatever the logs' sizes and however many tabs poll them.
pub const LOG_READS: usize = 4;
/// How long a log request waits for one of the [`LOG_READS`] slots before it is answered `503`
/// with `Retry-After`. Waiting (rather than refusing at once) keeps a page that opens a few logs
/// together working; the bound keeps a flood from queueing without end.
pub const LOG_WAIT: Duration = Duration::from_secs(10);

/// The shared state of the HTTP server.
pub struct AppState {
    pub plan: Plan,
    pub runs: Runs,
    /// Slots for log requests.
    pub log_reads: Arc<tokio::sync::Semaphore>,
    /// [`LOG_WAIT`] outside tests.
    pub log_wait: Duration,
    /// [`super::logs::MAX_TAIL_BYTES`] outside tests.
    pub max_tail: usize,
}

impl AppState {
    /// The state for `plan`.
    pub fn new(plan: Plan) -> AppState {
        let runs = plan.runs.clone();
        AppState {
            plan,
            runs,
            log_reads: Arc::new(tokio::sync::Semaphore::new(LOG_READS)),
            log_wait: LOG_WAIT,
            max_tail: super::logs::MAX_TAIL_BYTES,
        }
    }
}
