//! The single writer: one thread owns the connection and applies batched transactions.

use crate::row::{upsert_node, upsert_run};
use crate::{RecordsError, Result, schema};
use rusqlite::{Connection, OpenFlags};
use sparkwing_contract::record::{NodeRecord, RunRecord};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most operations applied in one transaction; bounds how long a reader can be starved of a
/// fresh snapshot when the queue is deep.
const MAX_BATCH: usize = 8192;
/// How long a statement waits for another connection's lock before it fails.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a small batch waits for more records before committing. A commit costs far more than
/// a row, so a short wait turns a trickle of node updates into a few transactions a second.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

enum Op {
    Run(Box<RunRecord>),
    Node(Box<NodeRecord>),
    /// Records sent together, in order: one wake-up of the writer thread for all of them.
    Many(Vec<Op>),
    /// Answered on the writer thread once everything before it is committed.
    Sync(Answer),
}

/// A sync's callback, called exactly once: after the commit with the first failure since the
/// last sync, or with [`RecordsError::WriterGone`] when the writer stops without reaching it.
struct Answer {
    done: Option<Box<dyn FnOnce(Result<()>) + Send>>,
    path: PathBuf,
}

impl Answer {
    fn call(mut self, result: Result<()>) {
        if let Some(done) = self.done.take() {
            done(result);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(Err(writer_gone(&self.path)));
        }
    }
}

fn writer_gone(path: &Path) -> RecordsError {
    RecordsError::WriterGone {
        path: path.display().to_string(),
    }
}

/// Counters of what the writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records written (runs and nodes).
    pub records: u64,
    /// Transactions committed.
    pub transactions: u64,
}

#[derive(Default)]
struct Shared {
    records: AtomicU64,
    transactions: AtomicU64,
    /// First failure since the last [`Writer::sync`]; later ones are usually the same cause.
    error: Mutex<Option<RecordsError>>,
}

/// Owner of the database connection for one process. Sending never blocks: records queue up and
/// the writer thread commits whatever has accumulated in one transaction.
///
/// ```no_run
/// # use sparkwing_records::Writer;
/// # fn run() -> sparkwing_records::Result<()> {
/// # let run: sparkwing_contract::RunRecord = todo!();
/// let writer = Writer::open("/tmp/home/state.db".as_ref())?;
/// writer.put_run(run);
/// writer.sync()?; // the run row is now visible to readers
/// let stats = writer.close()?;
/// # Ok(()) }
/// ```
pub struct Writer {
    path: PathBuf,
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.path).finish()
    }
}

/// Opens (creating if needed) a read-write connection in WAL mode and brings the schema up to date.
pub(crate) fn open_rw(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| RecordsError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| RecordsError::sqlite("open run records", path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| RecordsError::sqlite("configure run records", path, e))?;
    // WAL lets readers proceed while we write; NORMAL sync is durable across process crashes,
    // which is the failure this record must survive (a power cut may lose the last commit).
    // Turning a new database to WAL answers "busy" at once, without the busy timeout, while
    // another process does the same (two runs started together on a new home): try again for
    // as long as that timeout.
    let began = std::time::Instant::now();
    loop {
        let configured = conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"));
        match configured {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && began.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => {
                other.map_err(|e| RecordsError::sqlite("configure run records", path, e))?;
                break;
            }
        }
    }
    schema::check_not_newer(&conn, path)?;
    schema::migrate(&mut conn).map_err(|e| RecordsError::sqlite("migrate run records", path, e))?;
    Ok(conn)
}

/// A [`Writer`] whose database is still being opened, on the writer's own thread: the caller
/// goes on with other work meanwhile and takes the writer with [`Opening::ready`].
#[derive(Debug)]
pub struct Opening {
    writer: Writer,
    opened: mpsc::Receiver<Result<()>>,
}

impl Opening {
    /// Waits until the database is open and migrated; its error otherwise, as
    /// [`Writer::open`] gives it.
    pub fn ready(mut self) -> Result<Writer> {
        match self.opened.recv() {
            Ok(Ok(())) => Ok(self.writer),
            Ok(Err(e)) => {
                self.writer.shutdown();
                Err(e)
            }
            Err(_) => {
                self.writer.shutdown();
                Err(writer_gone(&self.writer.path))
            }
        }
    }
}

impl Writer {
    /// Opens `path` (creating the file and its directory), migrates it, and starts the writer
    /// thread.
    pub fn open(path: &Path) -> Result<Writer> {
        Writer::opening(path)?.ready()
    }

    /// Starts the writer thread, which opens and migrates `path` (as [`Writer::open`]) while
    /// the caller goes on; fails only when no thread can be started.
    pub fn opening(path: &Path) -> Result<Opening> {
        let (tx, rx) = mpsc::channel();
        let (opened_tx, opened) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            let owned = path.to_path_buf();
            std::thread::Builder::new()
                .name("sparkwing-records".into())
                .spawn(move || {
                    let conn = match open_rw(&owned) {
                        Ok(conn) => conn,
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = opened_tx.send(Ok(()));
                    writer_loop(conn, rx, &shared, &owned)
                })
                .map_err(|e| RecordsError::Io {
                    path: path.display().to_string(),
                    source: e,
                })?
        };
        Ok(Opening {
            writer: Writer {
                path: path.to_path_buf(),
                tx: Some(tx),
                thread: Some(thread),
                shared,
            },
            opened,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, op: Op) {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(op).is_ok());
        if !sent {
            self.record_error(writer_gone(&self.path));
        }
    }

    fn record_error(&self, e: RecordsError) {
        let mut slot = self.shared.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }

    /// Queues an insert-or-replace of the run row.
    pub fn put_run(&self, run: RunRecord) {
        self.send(Op::Run(Box::new(run)));
    }

    /// Queues an insert-or-replace of a node row. Nodes list in the order first written.
    pub fn put_node(&self, node: NodeRecord) {
        self.send(Op::Node(Box::new(node)));
    }

    /// Waits until everything queued so far is committed; returns the first failure since the
    /// previous call. Blocks the calling thread.
    pub fn sync(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.sync_then(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        // An answer is always given, by the writer or by its drop.
        rx.recv().unwrap_or_else(|_| Err(writer_gone(&self.path)))
    }

    /// Calls `done` on the writer thread once everything queued so far is committed, with the
    /// first failure since the previous sync; at once when the writer is gone.
    fn sync_then(&self, done: Box<dyn FnOnce(Result<()>) + Send>) {
        let op = Op::Sync(Answer {
            done: Some(done),
            path: self.path.clone(),
        });
        // A writer that is gone leaves the answer unsent, and its drop gives the writer-gone
        // error.
        if let Some(tx) = &self.tx {
            let _ = tx.send(op);
        }
    }

    /// What has been committed so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            records: self.shared.records.load(Ordering::Relaxed),
            transactions: self.shared.transactions.load(Ordering::Relaxed),
        }
    }

    /// Commits everything queued, stops the thread, and returns the totals.
    pub fn close(mut self) -> Result<WriterStats> {
        self.shutdown();
        let mut slot = self.shared.error.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(e) => Err(e),
            None => Ok(self.stats()),
        }
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            self.record_error(writer_gone(&self.path));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Op>, shared: &Shared, path: &Path) {
    let mut batch: Vec<Op> = Vec::with_capacity(256);
    // Set once a finished run is committed, cleared by any later commit.
    let mut run_ended = false;
    while let Ok(first) = rx.recv() {
        let deadline = std::time::Instant::now() + LINGER;
        let mut syncing = matches!(first, Op::Sync(_));
        batch.push(first);
        while batch.len() < MAX_BATCH {
            let next = if syncing {
                rx.try_recv().ok()
            } else {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                rx.recv_timeout(left).ok()
            };
            match next {
                Some(op) => {
                    // Someone waits on a sync: commit what is here without lingering.
                    syncing |= matches!(op, Op::Sync(_));
                    batch.push(op);
                }
                None => break,
            }
        }
        let mut answers = Vec::new();
        let mut records = Vec::with_capacity(batch.len());
        for op in batch.drain(..) {
            match op {
                Op::Sync(a) => answers.push(a),
                Op::Many(ops) => records.extend(ops),
                other => records.push(other),
            }
        }
        let written = records.len() as u64;
        if written > 0 {
            run_ended = records
                .iter()
                .any(|op| matches!(op, Op::Run(r) if r.finished_at.is_some()));
        }
        let result = (|| -> rusqlite::Result<()> {
            if records.is_empty() {
                return Ok(());
            }
            let tx = conn.transaction()?;
            for op in &records {
                match op {
                    Op::Run(r) => upsert_run(&tx, r)?,
                    Op::Node(n) => upsert_node(&tx, n)?,
                    Op::Many(_) | Op::Sync(_) => {}
                }
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                if written > 0 {
                    shared.records.fetch_add(written, Ordering::Relaxed);
                    shared.transactions.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                let mut slot = shared.error.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(RecordsError::sqlite("write run records", path, e));
            }
        }
        let synced = !answers.is_empty();
        for a in answers {
            let failed = shared
                .error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            a.call(failed.map_or(Ok(()), Err));
        }
        // The sync after a run's last records is the pipeline process winding down: move the
        // log's pages into the database file now, beside its exit, rather than after it when
        // this process closes. PASSIVE never waits for a reader; whatever it leaves is the
        // closing checkpoint's.
        if synced && run_ended {
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            run_ended = false;
        }
    }
    // Leave no -wal behind once this process is done writing.
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}

/// The pipeline process hands its records to the supervisor's writer over the relay.
impl sparkwing_storage::relay::RecordHost for Writer {
    fn records(&self, batch: Vec<sparkwing_storage::relay::Record>) {
        use sparkwing_storage::relay::Record;
        let ops: Vec<Op> = batch
            .into_iter()
            .map(|r| match r {
                Record::Run(run) => Op::Run(Box::new(run)),
                Record::Node(node) => Op::Node(Box::new(node)),
            })
            .collect();
        if !ops.is_empty() {
            self.send(Op::Many(ops));
        }
    }
    fn sync(&self, done: sparkwing_storage::relay::SyncDone) {
        self.sync_then(Box::new(move |r| done(r.map_err(|e| e.to_string()))));
    }
}
