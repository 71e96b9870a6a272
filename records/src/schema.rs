//! Schema migrations: an append-only list applied on `PRAGMA user_version`.
//!
//! Entry `i` moves the database from version `i` to `i + 1`. Never edit or reorder an entry that
//! has shipped; add a new one.

use rusqlite::Connection;

/// Migrations in order. The database's `user_version` is the number applied so far.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs and nodes.
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT '',
        started_at TEXT NOT NULL,
        started_ns INTEGER NOT NULL DEFAULT 0,
        finished_at TEXT,
        git_branch TEXT NOT NULL DEFAULT '',
        git_sha TEXT NOT NULL DEFAULT '',
        repo_url TEXT NOT NULL DEFAULT '',
        args TEXT NOT NULL DEFAULT '{}',
        invocation TEXT NOT NULL DEFAULT '{}',
        format_version INTEGER
    );
    CREATE INDEX runs_by_start ON runs (started_ns DESC, id DESC);
    CREATE TABLE nodes (
        run_id TEXT NOT NULL,
        id TEXT NOT NULL,
        status TEXT NOT NULL,
        outcome TEXT,
        deps TEXT NOT NULL DEFAULT '[]',
        error TEXT NOT NULL DEFAULT '',
        exit_code INTEGER,
        failure_reason TEXT NOT NULL DEFAULT '',
        started_at TEXT,
        finished_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        outputs TEXT NOT NULL DEFAULT '{}',
        artifacts TEXT NOT NULL DEFAULT '[]',
        UNIQUE (run_id, id)
    );",
    // 2: how a node ended, for people (`reused from run <id>` on a cached node).
    "ALTER TABLE nodes ADD COLUMN status_detail TEXT NOT NULL DEFAULT '';",
];

/// The schema version this build writes and reads.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The database's `user_version`.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// The schema version, refusing a database written by a newer sparkwing (past [`LATEST`]).
pub fn check_not_newer(conn: &Connection, path: &std::path::Path) -> crate::Result<i64> {
    let found = version(conn)
        .map_err(|e| crate::RecordsError::sqlite("read schema version of", path, e))?;
    if found > LATEST {
        return Err(crate::RecordsError::NewerSchema {
            path: path.display().to_string(),
            found,
            known: LATEST,
        });
    }
    Ok(found)
}

/// Applies every migration the database has not seen, each in its own transaction. Returns the
/// version reached. A database newer than this build is left untouched and reported by the caller.
///
/// Several processes may open a new database at once (parallel runs in one home): each migration
/// takes the write lock before it reads the version, so exactly one of them applies it and the
/// others find it applied.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let found = version(conn)?;
    if found >= LATEST {
        return Ok(found);
    }
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = version(&tx)?;
        if current >= LATEST {
            return Ok(current);
        }
        tx.execute_batch(MIGRATIONS[current as usize])?;
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", current + 1))?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_fresh_database_to_latest_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(version(&conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), LATEST);
        assert_eq!(version(&conn).unwrap(), LATEST);
        assert_eq!(migrate(&mut conn).unwrap(), LATEST);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, ["nodes", "runs"]);
    }

    #[test]
    fn processes_opening_a_new_database_at_once_migrate_it_once() {
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut conn = Connection::open(&path).unwrap();
                        conn.busy_timeout(std::time::Duration::from_secs(10))
                            .unwrap();
                        barrier.wait();
                        migrate(&mut conn)
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), Ok(LATEST), "round {round}");
            }
        }
    }

    #[test]
    fn only_missing_migrations_are_applied() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        // Re-running migration 1 would fail on `CREATE TABLE runs`; starting at 1 must not.
        assert_eq!(migrate(&mut conn).unwrap(), LATEST);
    }
}
