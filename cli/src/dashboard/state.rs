//! What every dashboard request handler sees: the plan it serves and the run reader.

use super::plan::Plan;
use crate::reader::Runs;

/// The shared state of the HTTP server.
pub struct AppState {
    pub plan: Plan,
    pub runs: Runs,
}

impl AppState {
    /// The state for `plan`.
    pub fn new(plan: Plan) -> AppState {
        let runs = plan.runs.clone();
        AppState { plan, runs }
    }
}
