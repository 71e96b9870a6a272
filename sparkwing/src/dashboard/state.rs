//! What every dashboard request handler sees: the plan it serves and where its runs are read.

use super::bucket::BucketRuns;
use super::plan::{Plan, RunsFrom};
use super::runs::Runs;

/// The shared state of the HTTP server.
pub struct AppState {
    pub plan: Plan,
    pub runs: Runs,
}

impl AppState {
    /// The state for `plan`: its runs read from SQLite or from the bucket it names.
    pub fn new(plan: Plan) -> AppState {
        let runs = match &plan.runs_from {
            RunsFrom::Local { db } => Runs::Local { db: db.clone() },
            RunsFrom::Bucket { store } => {
                let store = store.clone();
                Runs::Bucket {
                    store: store.describe(),
                    index: BucketRuns::new(store),
                }
            }
        };
        AppState { plan, runs }
    }
}
