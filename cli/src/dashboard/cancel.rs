//! Cancelling an in-flight local run: while a run lives, its supervisor keeps
//! `$SPARKWING_HOME/active/<runID>.json` (`{run_id, pipeline, supervisor_pid, child_pid}`), and
//! SIGTERM to `supervisor_pid` makes the run end `cancelled` with its records written.

use crate::active::{ActiveRun, marker_path};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Why a run could not be cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No live supervisor for this run on this machine.
    #[error("cancel `{0}`: the run is not in flight on this machine")]
    NotInFlight(String),
    /// The marker exists but is unreadable or names another run.
    #[error("cancel `{run}`: the active-run marker `{path}` is unreadable: {why}")]
    BadMarker {
        run: String,
        path: String,
        why: String,
    },
    /// The signal could not be delivered.
    #[error("cancel `{run}`: signal the supervisor (pid {pid}): {source}")]
    Signal {
        run: String,
        pid: i32,
        #[source]
        source: nix::Error,
    },
}

/// What a successful cancel reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cancelled {
    pub run_id: String,
    pub pipeline: String,
    pub supervisor_pid: i32,
}

/// Sends SIGTERM to the supervisor of `run` (an already validated run id).
pub fn cancel(home: &sparkwing_contract::Home, run: &str) -> Result<Cancelled, CancelError> {
    let path = marker_path(home, run);
    let marker = match ActiveRun::read(home, run) {
        Ok(Some(m)) => m,
        Ok(None) => return Err(CancelError::NotInFlight(run.to_string())),
        Err(why) => {
            return Err(CancelError::BadMarker {
                run: run.into(),
                path: path.display().to_string(),
                why,
            });
        }
    };
    if marker.run_id != run || marker.supervisor_pid <= 1 {
        return Err(CancelError::BadMarker {
            run: run.into(),
            path: path.display().to_string(),
            why: format!(
                "it names run `{}` and pid {}",
                marker.run_id.escape_debug(),
                marker.supervisor_pid
            ),
        });
    }
    // A marker left behind by a supervisor that was SIGKILLed may name a pid that now belongs to
    // an unrelated process: only signal a live `… run …` command.
    if !crate::active::runs_subcommand(marker.supervisor_pid, &["run"]) {
        return Err(CancelError::NotInFlight(run.to_string()));
    }
    kill(Pid::from_raw(marker.supervisor_pid), Signal::SIGTERM).map_err(|source| {
        CancelError::Signal {
            run: run.into(),
            pid: marker.supervisor_pid,
            source,
        }
    })?;
    Ok(Cancelled {
        run_id: marker.run_id,
        pipeline: marker.pipeline,
        supervisor_pid: marker.supervisor_pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_marker_is_not_in_flight() {
        let home = tempfile::tempdir().unwrap();
        let err = cancel(
            &sparkwing_contract::Home::at(home.path()),
            "run-20260101-000000-00000000",
        )
        .unwrap_err();
        assert!(matches!(err, CancelError::NotInFlight(_)), "{err}");
    }

    #[test]
    fn stale_marker_never_signals_an_unrelated_process() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("active")).unwrap();
        let run = "run-20260101-000000-00000001";
        // This test process is alive but is not a `run` supervisor.
        let body = serde_json::json!({
            "run_id": run, "pipeline": "p", "supervisor_pid": std::process::id(), "child_pid": 0
        });
        std::fs::write(
            home.path().join("active").join(format!("{run}.json")),
            body.to_string(),
        )
        .unwrap();
        let err = cancel(&sparkwing_contract::Home::at(home.path()), run).unwrap_err();
        assert!(matches!(err, CancelError::NotInFlight(_)), "{err}");
    }

    #[test]
    fn marker_for_another_run_is_refused() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("active")).unwrap();
        let run = "run-20260101-000000-00000002";
        let body = serde_json::json!({"run_id": "run-x", "supervisor_pid": 99999, "child_pid": 0});
        std::fs::write(
            home.path().join("active").join(format!("{run}.json")),
            body.to_string(),
        )
        .unwrap();
        let err = cancel(&sparkwing_contract::Home::at(home.path()), run).unwrap_err();
        assert!(matches!(err, CancelError::BadMarker { .. }), "{err}");
    }
}
