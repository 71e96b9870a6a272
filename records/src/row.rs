//! Mapping between records and table rows. JSON columns hold the structured fields.

use crate::{RecordsError, Result};
use rusqlite::{Connection, Row, params};
use sparkwing_contract::record::{NodeRecord, NodeStatus, Outcome, RunRecord, RunStatus};
use sparkwing_contract::timefmt;
use std::path::Path;

pub(crate) const UPSERT_RUN: &str = "INSERT INTO runs (id, pipeline, status, error, started_at,
        started_ns, finished_at, git_branch, git_sha, repo_url, args, invocation, format_version)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
    ON CONFLICT (id) DO UPDATE SET pipeline = excluded.pipeline, status = excluded.status,
        error = excluded.error, started_at = excluded.started_at, started_ns = excluded.started_ns,
        finished_at = excluded.finished_at, git_branch = excluded.git_branch,
        git_sha = excluded.git_sha, repo_url = excluded.repo_url, args = excluded.args,
        invocation = excluded.invocation, format_version = excluded.format_version";

pub(crate) const UPSERT_NODE: &str = "INSERT INTO nodes (run_id, id, status, outcome, deps,
        error, exit_code, failure_reason, started_at, finished_at, attempts, outputs, artifacts,
        status_detail)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
    ON CONFLICT (run_id, id) DO UPDATE SET status = excluded.status, outcome = excluded.outcome,
        deps = excluded.deps, error = excluded.error, exit_code = excluded.exit_code,
        failure_reason = excluded.failure_reason, started_at = excluded.started_at,
        finished_at = excluded.finished_at, attempts = excluded.attempts,
        outputs = excluded.outputs, artifacts = excluded.artifacts,
        status_detail = excluded.status_detail";

pub(crate) const RUN_COLUMNS: &str = "id, pipeline, status, error, started_at, finished_at,
    git_branch, git_sha, repo_url, args, invocation, format_version";

const NODE_COLUMNS: &str = "run_id, id, status, outcome, deps, error, exit_code,
    failure_reason, started_at, finished_at, attempts, outputs, artifacts";

/// The node columns a database at schema `version` has, in [`RawNode::from_row`]'s order (a
/// reader never migrates, so a database no writer has opened since an upgrade lacks the newer
/// columns; they read as empty).
pub(crate) fn node_columns(version: i64) -> String {
    if version >= 2 {
        format!("{NODE_COLUMNS}, status_detail")
    } else {
        format!("{NODE_COLUMNS}, '' AS status_detail")
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Maps and vectors of strings and JSON values always serialize.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub(crate) fn upsert_run(conn: &Connection, r: &RunRecord) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(UPSERT_RUN)?;
    stmt.execute(params![
        r.id,
        r.pipeline,
        r.status.as_str(),
        r.error,
        r.started_at,
        timefmt::parse_rfc3339_nanos(&r.started_at).unwrap_or(0),
        r.finished_at,
        r.git_branch,
        r.git_sha,
        r.repo_url,
        json(&r.args),
        json(&r.invocation),
        r.format_version,
    ])?;
    Ok(())
}

pub(crate) fn upsert_node(conn: &Connection, n: &NodeRecord) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(UPSERT_NODE)?;
    stmt.execute(params![
        n.run_id,
        n.id,
        n.status.as_str(),
        n.outcome.map(Outcome::as_str),
        json(&n.deps),
        n.error,
        n.exit_code,
        n.failure_reason,
        n.started_at,
        n.finished_at,
        n.attempts,
        json(&n.outputs),
        json(&n.artifacts),
        n.status_detail,
    ])?;
    Ok(())
}

/// Raw columns of a run row; decoded outside the rusqlite callback so that JSON errors keep
/// their own error type.
pub(crate) struct RawRun {
    id: String,
    pipeline: String,
    status: String,
    error: String,
    started_at: String,
    finished_at: Option<String>,
    git_branch: String,
    git_sha: String,
    repo_url: String,
    args: String,
    invocation: String,
    format_version: Option<u32>,
}

impl RawRun {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<RawRun> {
        Ok(RawRun {
            id: row.get(0)?,
            pipeline: row.get(1)?,
            status: row.get(2)?,
            error: row.get(3)?,
            started_at: row.get(4)?,
            finished_at: row.get(5)?,
            git_branch: row.get(6)?,
            git_sha: row.get(7)?,
            repo_url: row.get(8)?,
            args: row.get(9)?,
            invocation: row.get(10)?,
            format_version: row.get(11)?,
        })
    }

    pub(crate) fn decode(self, path: &Path) -> Result<RunRecord> {
        let what = format!("run `{}`", self.id);
        let decode = |column: &'static str, e: serde_json::Error| RecordsError::Decode {
            column,
            what: what.clone(),
            path: path.display().to_string(),
            source: e,
        };
        Ok(RunRecord {
            status: RunStatus::parse(&self.status).unwrap_or(RunStatus::Failed),
            args: serde_json::from_str(&self.args).map_err(|e| decode("args", e))?,
            invocation: serde_json::from_str(&self.invocation)
                .map_err(|e| decode("invocation", e))?,
            id: self.id,
            pipeline: self.pipeline,
            error: self.error,
            started_at: self.started_at,
            finished_at: self.finished_at,
            last_heartbeat_at: None,
            git_branch: self.git_branch,
            git_sha: self.git_sha,
            repo_url: self.repo_url,
            format_version: self.format_version,
        })
    }
}

/// Raw columns of a node row.
pub(crate) struct RawNode {
    run_id: String,
    id: String,
    status: String,
    outcome: Option<String>,
    deps: String,
    error: String,
    exit_code: Option<i32>,
    failure_reason: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    attempts: u32,
    outputs: String,
    artifacts: String,
    status_detail: String,
}

impl RawNode {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<RawNode> {
        Ok(RawNode {
            run_id: row.get(0)?,
            id: row.get(1)?,
            status: row.get(2)?,
            outcome: row.get(3)?,
            deps: row.get(4)?,
            error: row.get(5)?,
            exit_code: row.get(6)?,
            failure_reason: row.get(7)?,
            started_at: row.get(8)?,
            finished_at: row.get(9)?,
            attempts: row.get(10)?,
            outputs: row.get(11)?,
            artifacts: row.get(12)?,
            status_detail: row.get(13)?,
        })
    }

    pub(crate) fn decode(self, path: &Path) -> Result<NodeRecord> {
        let what = format!("node `{}` of run `{}`", self.id, self.run_id);
        let decode = |column: &'static str, e: serde_json::Error| RecordsError::Decode {
            column,
            what: what.clone(),
            path: path.display().to_string(),
            source: e,
        };
        Ok(NodeRecord {
            status: NodeStatus::parse(&self.status).unwrap_or(NodeStatus::Done),
            outcome: self.outcome.as_deref().and_then(Outcome::parse),
            deps: serde_json::from_str(&self.deps).map_err(|e| decode("deps", e))?,
            outputs: serde_json::from_str(&self.outputs).map_err(|e| decode("outputs", e))?,
            artifacts: serde_json::from_str(&self.artifacts).map_err(|e| decode("artifacts", e))?,
            run_id: self.run_id,
            id: self.id,
            error: self.error,
            exit_code: self.exit_code,
            failure_reason: self.failure_reason,
            started_at: self.started_at,
            finished_at: self.finished_at,
            attempts: self.attempts,
            status_detail: self.status_detail,
            shard: None,
        })
    }
}
