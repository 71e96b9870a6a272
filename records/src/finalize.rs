//! Closing a run whose process died before writing its terminal records.

use crate::writer::open_rw;
use crate::{RecordsError, Result};
use rusqlite::params;
use sparkwing_contract::timefmt;
use std::path::Path;

/// Marks run `run_id` `failed` with `reason` as its error, and every node still `pending` or
/// `running` as `done`/`cancelled`, all in one transaction. Returns whether anything changed: a
/// run that already reached a terminal status, or that was never recorded, is left alone.
///
/// The supervisor calls this when the pipeline process exited without finishing its records (a
/// SIGKILL, an OOM kill, a panic), so no reader shows a run stuck in `running`.
/// Nodes are only touched together with their run.
///
/// ```no_run
/// let changed = sparkwing_records::finalize_abandoned(
///     "/home/me/.sparkwing/state.db".as_ref(),
///     "run-20261127-141500-1a2b3c4d",
///     "pipeline process killed by signal 9 (SIGKILL)",
/// )?;
/// # Ok::<(), sparkwing_records::RecordsError>(())
/// ```
pub fn finalize_abandoned(db: &Path, run_id: &str, reason: &str) -> Result<bool> {
    if !db.exists() {
        return Ok(false);
    }
    let mut conn = open_rw(db)?;
    let now = timefmt::now_rfc3339();
    let err = |e| RecordsError::sqlite("finalize run in", db, e);
    let tx = conn.transaction().map_err(err)?;
    let runs = tx
        .execute(
            "UPDATE runs SET status = 'failed', error = ?2, finished_at = ?3
             WHERE id = ?1 AND status IN ('pending', 'running')",
            params![run_id, reason, now],
        )
        .map_err(err)?;
    if runs == 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE nodes SET status = 'done', outcome = 'cancelled',
                 failure_reason = 'cancelled',
                 error = CASE WHEN error = '' THEN ?2 ELSE error END,
                 finished_at = ?3
             WHERE run_id = ?1 AND status IN ('pending', 'running')",
        params![run_id, format!("run ended: {reason}"), now],
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(true)
}
