//! Read-only access for the CLI and the dashboard.

use crate::row::{RUN_COLUMNS, RawNode, RawRun, node_columns};
use crate::{RecordsError, Result, schema};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sparkwing_contract::record::{NodeRecord, RunRecord, RunStatus, StateDump};
use std::path::{Path, PathBuf};

/// Which runs [`Reader::list_runs`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this pipeline.
    pub pipeline: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// At most this many runs (newest first). `None`: all.
    pub limit: Option<usize>,
}

/// A read-only connection to `state.db`. It never writes, so it is safe beside a running writer
/// and on a database owned by another user.
///
/// ```no_run
/// # use sparkwing_records::Reader;
/// let reader = Reader::open("/home/me/.sparkwing/state.db".as_ref())?;
/// if let Some(run) = reader.get_run("run-20261127-141500-1a2b3c4d")? {
///     for node in reader.list_nodes(&run.id)? {
///         println!("{} {:?}", node.id, node.outcome);
///     }
/// }
/// # Ok::<(), sparkwing_records::RecordsError>(())
/// ```
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
    path: PathBuf,
    /// False when the database exists but no writer has created the tables yet.
    has_schema: bool,
    /// The schema version found (see `schema::MIGRATIONS`).
    version: i64,
}

impl Reader {
    /// Opens `path` read-only. A missing file is [`RecordsError::Missing`].
    pub fn open(path: &Path) -> Result<Reader> {
        if !path.exists() {
            return Err(RecordsError::Missing {
                path: path.display().to_string(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| RecordsError::sqlite("open run records", path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| RecordsError::sqlite("configure run records", path, e))?;
        let found = schema::check_not_newer(&conn, path)?;
        Ok(Reader {
            conn,
            path: path.to_path_buf(),
            has_schema: found >= 1,
            version: found,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> RecordsError + '_ {
        move |e| RecordsError::sqlite(op, &self.path, e)
    }

    /// Runs matching `filter`, newest first.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        if !self.has_schema {
            return Ok(Vec::new());
        }
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1");
        let mut params: Vec<Value> = Vec::new();
        if let Some(p) = &filter.pipeline {
            sql.push_str(" AND pipeline = ?");
            params.push(Value::Text(p.clone()));
        }
        if let Some(s) = filter.status {
            sql.push_str(" AND status = ?");
            params.push(Value::Text(s.as_str().into()));
        }
        sql.push_str(" ORDER BY started_ns DESC, id DESC");
        if let Some(l) = filter.limit {
            sql.push_str(" LIMIT ?");
            params.push(Value::Integer(l.min(i64::MAX as usize) as i64));
        }
        let mut stmt = self.conn.prepare(&sql).map_err(self.err("list runs in"))?;
        let raw: Vec<RawRun> = stmt
            .query_map(rusqlite::params_from_iter(params), RawRun::from_row)
            .and_then(|rows| rows.collect())
            .map_err(self.err("list runs in"))?;
        raw.into_iter().map(|r| r.decode(&self.path)).collect()
    }

    /// One run, or `None` when no run has that id.
    pub fn get_run(&self, id: &str) -> Result<Option<RunRecord>> {
        if !self.has_schema {
            return Ok(None);
        }
        let raw = self
            .conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                RawRun::from_row,
            )
            .optional()
            .map_err(self.err("read run from"))?;
        raw.map(|r| r.decode(&self.path)).transpose()
    }

    /// The nodes of `run` in plan order (the order they were first recorded).
    pub fn list_nodes(&self, run: &str) -> Result<Vec<NodeRecord>> {
        if !self.has_schema {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM nodes WHERE run_id = ?1 ORDER BY rowid",
                node_columns(self.version)
            ))
            .map_err(self.err("list nodes in"))?;
        let raw: Vec<RawNode> = stmt
            .query_map([run], RawNode::from_row)
            .and_then(|rows| rows.collect())
            .map_err(self.err("list nodes in"))?;
        raw.into_iter().map(|n| n.decode(&self.path)).collect()
    }

    /// The run and its nodes as `state.ndjson` text, or `None` when no run has that id.
    pub fn dump_state(&self, run: &str) -> Result<Option<String>> {
        let Some(r) = self.get_run(run)? else {
            return Ok(None);
        };
        let nodes = self.list_nodes(run)?;
        Ok(Some(StateDump::render(&r, &nodes)))
    }
}
