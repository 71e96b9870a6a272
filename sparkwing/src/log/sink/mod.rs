//! Batched delivery of log lines to the log store: every node's lines are buffered and cut into
//! a part when the buffer reaches 1 MiB, its oldest line is about a second old or its job ends,
//! never a part per line (see `batch`). A task delivers the parts, those cut close together in one
//! request; when the store cannot take them, they are spooled to local files and retried in order
//! in the background, and whatever is still undelivered at exit stays in the spool and is
//! counted.

mod batch;
mod deliver;

use batch::{Batcher, Shared, timer};
use deliver::Delivery;
use sparkwing_storage::{LogPart, LogStore};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

/// Largest part written.
pub(crate) const MAX_PART: usize = 1 << 20;
/// A line waits at most about this long before its part is written.
const MAX_AGE: Duration = Duration::from_millis(900);
/// How long the part of a job that ended waits for company before it leaves. A run of short
/// jobs cuts a part per job as each ends; the parts cut within this window reach the store in one
/// request (one write of the local pack, one call to the supervisor) instead of one each. The same
/// window as the records', so a finished job's log is in the store about when its record says it
/// is done.
const LINGER: Duration = Duration::from_millis(25);
/// Over a store whose parts are cheap, a buffer is cut once its node wrote nothing for this long:
/// a pause in output is where a reader is waiting for the line, and a chatty node still batches.
const QUIET: Duration = Duration::from_millis(15);
/// Most parts handed to the store in one request.
const MAX_BATCH: usize = 64;
/// Parts a bucket writes at a time: a batch is given [`PART_TIMEOUT`] per this many parts (a
/// bucket takes a request per part), so a full batch waits at most four times as long as one
/// part would.
const PARTS_PER_TIMEOUT: usize = 16;
/// Bytes of captured output held in memory (queued, buffered or in delivery) before producers
/// wait (back-pressure on a slow store), in KiB permits.
const BUDGET_KIB: usize = 64 * 1024;
/// Upper bound of one delivery (a part, or the parts of one batch), the store's own retries
/// included: a stalled store must never hold the run.
const PART_TIMEOUT: Duration = Duration::from_secs(10);
/// First delay before spooled parts are retried; doubled after each failed round.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(4);

/// One node's lines, cut as a part.
struct Cut {
    node: Arc<str>,
    data: Vec<u8>,
    /// Budget permits the part holds; they return when it is delivered.
    permits: u32,
}

/// What the delivery task is sent by the batching task.
enum Out {
    /// Parts that leave together, in the order they were cut.
    Parts(Vec<Cut>),
    #[cfg(test)]
    Barrier(oneshot::Sender<()>),
    Close(oneshot::Sender<SinkStats>),
}

/// What reached the store, and what did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SinkStats {
    /// Parts delivered (directly or from the spool).
    pub parts: u64,
    pub bytes: u64,
    /// Parts that went through the spool because the store refused them at first.
    pub spooled_parts: u64,
    /// Parts still undelivered at close; they stay in [`SinkStats::spool_dir`].
    pub failed_parts: u64,
    pub failed_bytes: u64,
    /// The first store error, for the run summary.
    pub first_error: Option<String>,
    /// Where undelivered parts are kept, when there are any.
    pub spool_dir: Option<PathBuf>,
}

/// Where a run's log lines are handed in; cheap to share.
pub(crate) struct Sink {
    shared: Arc<Shared>,
    budget: Arc<Semaphore>,
    /// Once closing: the instant by which every delivery attempt must give up.
    deadline: watch::Sender<Option<Instant>>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

impl Sink {
    /// Starts the timer and delivery tasks for `run` on the current runtime; parts the store
    /// refuses are spooled under `spool_dir`.
    pub fn start(store: Arc<dyn LogStore>, run: String, spool_dir: PathBuf) -> Sink {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(BUDGET_KIB));
        let (deadline, closing) = watch::channel(None);
        let quiet = store.parts_are_cheap().then_some(QUIET);
        let shared = Arc::new(Shared {
            batcher: std::sync::Mutex::new(Batcher::new(out_tx, quiet)),
            wake: tokio::sync::Notify::new(),
        });
        tokio::spawn(timer(shared.clone()));
        let delivery = Delivery::new(store, run, budget.clone(), closing, spool_dir);
        tokio::spawn(delivery.run(out_rx));
        Sink {
            shared,
            budget,
            deadline,
        }
    }

    /// Changes the buffers with `f`, unless the sink is closed; wakes the timer task when the
    /// change brought a deadline earlier than the one it waits for.
    fn with(&self, f: impl FnOnce(&mut Batcher)) {
        let poke = {
            let mut b = self.shared.lock();
            if b.closed {
                return;
            }
            f(&mut b);
            b.take_poke()
        };
        if poke {
            self.shared.wake.notify_one();
        }
    }

    /// Queues bytes, waiting while too much is held in memory already.
    pub async fn send(&self, node: Arc<str>, bytes: Vec<u8>) {
        let permits = (bytes.len() / 1024).clamp(1, BUDGET_KIB) as u32;
        match self.budget.acquire_many(permits).await {
            Ok(p) => p.forget(),
            Err(_) => return,
        }
        self.with(|b| b.add(node, bytes, permits));
    }

    /// Queues bytes without waiting (small messages from synchronous code).
    pub fn send_now(&self, node: Arc<str>, bytes: Vec<u8>) {
        self.with(|b| b.add(node, bytes, 0));
    }

    /// Writes the buffered lines of `node` (or of every node) and waits until they are stored or
    /// spooled.
    #[cfg(test)]
    pub async fn flush(&self, node: Option<Arc<str>>) {
        let _ = self.barrier(node).await;
    }

    /// Cuts the buffered lines of `node` (or of every node) and answers once the delivery task
    /// has stored or spooled them.
    #[cfg(test)]
    fn barrier(&self, node: Option<Arc<str>>) -> oneshot::Receiver<()> {
        let (done, wait) = oneshot::channel();
        self.with(|b| {
            match node {
                Some(n) => b.cut(&n),
                None => b.cut_all(),
            }
            b.send_after(Out::Barrier(done));
        });
        wait
    }

    /// Has the buffered lines of `node` written to the store soon, without waiting for them.
    pub fn flush_now(&self, node: Arc<str>) {
        self.with(|b| b.cut(&node));
    }

    /// Writes everything, retries spooled parts until `deadline`, and stops the tasks. Nothing
    /// waits on the store past `deadline`.
    pub async fn close(&self, deadline: Instant) -> SinkStats {
        self.deadline.send_replace(Some(deadline));
        let (done, wait) = oneshot::channel();
        if !self.end(Some(done)) {
            return SinkStats::default();
        }
        wait.await.unwrap_or_default()
    }

    /// Cuts every buffer, hands everything to the delivery task (with `done` to answer once it
    /// is through) and stops the timer task; false when the sink was closed already.
    fn end(&self, done: Option<oneshot::Sender<SinkStats>>) -> bool {
        {
            let mut b = self.shared.lock();
            if b.closed {
                return false;
            }
            b.closed = true;
            b.cut_all();
            match done {
                Some(done) => b.send_after(Out::Close(done)),
                None => b.send_ready(),
            }
        }
        self.shared.wake.notify_one();
        true
    }
}

impl Drop for Sink {
    /// A sink dropped without a close still hands on what it holds; the delivery task then ends
    /// once it has delivered it.
    fn drop(&mut self) {
        self.end(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_storage::{FsLogStore, LogStore, ReadOpts};

    fn parts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// How many parts of `job` in `run-1` a reader of the store under `root` finds.
    async fn stored(root: &std::path::Path) -> usize {
        FsLogStore::new(root)
            .list_node_parts("run-1", "job")
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn lines_are_batched_by_size_and_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = billed(dir.path());
        let sink = Sink::start(store.clone(), "run-1".into(), dir.path().join("spool"));
        let line = format!("{{\"msg\":\"{}\"}}\n", "x".repeat(200));
        let mut expected = Vec::new();
        for i in 0..20_000 {
            let l = format!("{i:06}{line}");
            expected.extend_from_slice(l.as_bytes());
            sink.send("job".into(), l.into_bytes()).await;
        }
        let stats = sink.close(Instant::now() + Duration::from_secs(5)).await;
        let files = parts(&dir.path().join("logs/run-1/job"));
        // ~4.1 MiB in parts of at most 1 MiB: a handful, not one per line.
        assert!((5..=6).contains(&files.len()), "{} parts", files.len());
        assert_eq!(stats.parts as usize, files.len());
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() as usize <= MAX_PART);
        }
        let back = store
            .read("run-1", "job", &ReadOpts::default())
            .await
            .unwrap();
        assert_eq!(back, expected);
    }

    #[tokio::test]
    async fn a_quiet_buffer_is_written_within_about_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = billed(dir.path());
        let sink = Sink::start(store, "run-1".into(), dir.path().join("spool"));
        sink.send_now("job".into(), b"{\"msg\":\"one\"}\n".to_vec());
        sink.send_now("job".into(), b"{\"msg\":\"two\"}\n".to_vec());
        let logs = dir.path().join("logs");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stored(&logs).await, 0, "written too early");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(stored(&logs).await, 1, "both lines in one part");
        sink.close(Instant::now() + Duration::from_secs(5)).await;
    }

    /// Over a local directory a line is written as soon as its node pauses, while output that
    /// keeps coming is still batched into few parts.
    #[tokio::test]
    async fn over_a_cheap_store_a_pause_writes_the_line_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsLogStore::new(dir.path()));
        assert!(store.parts_are_cheap());
        let sink = Sink::start(store, "run-1".into(), dir.path().join("spool"));
        let sent = Instant::now();
        sink.send_now("job".into(), b"{\"msg\":\"one\"}\n".to_vec());
        while stored(dir.path()).await == 0 {
            assert!(sent.elapsed() < Duration::from_millis(500), "not written");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // QUIET plus scheduling: far below the second a batched part waits.
        assert!(
            sent.elapsed() < Duration::from_millis(300),
            "{:?}",
            sent.elapsed()
        );
        // 2000 lines sent back to back: batched, not a part per line.
        for i in 0..2000 {
            sink.send_now("job".into(), format!("{{\"msg\":\"{i}\"}}\n").into_bytes());
        }
        sink.close(Instant::now() + Duration::from_secs(5)).await;
        let n = stored(dir.path()).await;
        assert!(n <= 5, "{n} parts for one line and a burst");
    }

    /// The filesystem store under `dir/logs`, saying its parts are costly (as a bucket's are).
    fn billed(dir: &std::path::Path) -> Arc<Flaky> {
        let store = flaky(dir);
        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        store
    }

    /// A filesystem log store that refuses every part while `down` is set, never answers while
    /// `hang` is set, and stores a part but reports a failure while `lands_but_fails` is set (a
    /// response lost on the way back).
    #[derive(Debug)]
    struct Flaky {
        inner: FsLogStore,
        down: std::sync::atomic::AtomicBool,
        hang: std::sync::atomic::AtomicBool,
        lands_but_fails: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl LogStore for Flaky {
        fn describe(&self) -> String {
            "flaky".into()
        }
        async fn put_part(
            &self,
            run: &str,
            node: &str,
            part: &str,
            data: Vec<u8>,
        ) -> sparkwing_storage::error::Result<()> {
            if self.hang.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(sparkwing_storage::StoreError::config("store is down"));
            }
            self.inner.put_part(run, node, part, data).await?;
            if self
                .lands_but_fails
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(sparkwing_storage::StoreError::config(
                    "the connection reset before the response",
                ));
            }
            Ok(())
        }
        async fn read(
            &self,
            run: &str,
            node: &str,
            opts: &ReadOpts,
        ) -> sparkwing_storage::error::Result<Vec<u8>> {
            self.inner.read(run, node, opts).await
        }
        async fn list_nodes(&self, run: &str) -> sparkwing_storage::error::Result<Vec<String>> {
            self.inner.list_nodes(run).await
        }
        async fn list_parts(
            &self,
            run: &str,
        ) -> sparkwing_storage::error::Result<Vec<(String, String)>> {
            self.inner.list_parts(run).await
        }
        async fn read_part(
            &self,
            run: &str,
            node: &str,
            part: &str,
        ) -> sparkwing_storage::error::Result<Vec<u8>> {
            self.inner.read_part(run, node, part).await
        }
        async fn delete_run(&self, run: &str) -> sparkwing_storage::error::Result<()> {
            self.inner.delete_run(run).await
        }
    }

    fn flaky(dir: &std::path::Path) -> Arc<Flaky> {
        Arc::new(Flaky {
            inner: FsLogStore::new(dir.join("logs")),
            down: std::sync::atomic::AtomicBool::new(true),
            hang: std::sync::atomic::AtomicBool::new(false),
            lands_but_fails: std::sync::atomic::AtomicBool::new(false),
        })
    }

    #[tokio::test]
    async fn a_part_that_landed_but_reported_failure_is_not_stored_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path());
        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        store
            .lands_but_fails
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let spool = dir.path().join("spool");
        let sink = Sink::start(store.clone(), "run-1".into(), spool.clone());
        sink.send("job".into(), b"{\"msg\":\"once\"}\n".to_vec())
            .await;
        sink.flush(Some("job".into())).await;
        assert_eq!(parts(&spool.join("logs/job")).len(), 1, "kept for a retry");
        store
            .lands_but_fails
            .store(false, std::sync::atomic::Ordering::SeqCst);
        sink.send("job".into(), b"{\"msg\":\"after\"}\n".to_vec())
            .await;
        let stats = sink.close(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(stats.failed_parts, 0, "{stats:?}");
        let back = store
            .read("run-1", "job", &ReadOpts::default())
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(back).unwrap(),
            "{\"msg\":\"once\"}\n{\"msg\":\"after\"}\n",
            "the retry replaced the part that had landed"
        );
        assert_eq!(stored(&dir.path().join("logs")).await, 2);
    }

    #[tokio::test]
    async fn refused_parts_are_spooled_and_delivered_in_order_when_the_store_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path());
        let spool = dir.path().join("spool");
        let sink = Sink::start(store.clone(), "run-1".into(), spool.clone());
        let mut expected = Vec::new();
        for i in 0..3 {
            let l = format!("{{\"msg\":\"{i}\"}}\n");
            expected.extend_from_slice(l.as_bytes());
            sink.send("a/b".into(), l.into_bytes()).await;
            sink.flush(Some("a/b".into())).await;
        }
        let spooled = parts(&spool.join("logs/a/b"));
        assert_eq!(spooled.len(), 3, "each refused part kept on disk");
        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        // A part written after the outage waits behind the spooled ones.
        sink.send("a/b".into(), b"{\"msg\":\"3\"}\n".to_vec()).await;
        expected.extend_from_slice(b"{\"msg\":\"3\"}\n");
        let stats = sink.close(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(stats.failed_parts, 0, "{stats:?}");
        assert_eq!(
            stats.spooled_parts, 4,
            "the late part queued behind: {stats:?}"
        );
        assert_eq!(stats.parts, 4, "{stats:?}");
        let back = store
            .read("run-1", "a/b", &ReadOpts::default())
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(back).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        assert!(!spool.exists(), "a drained spool is removed");
    }

    #[tokio::test]
    async fn what_cannot_be_delivered_by_the_deadline_is_counted_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path());
        let spool = dir.path().join("spool");
        let sink = Sink::start(store, "run-1".into(), spool.clone());
        sink.send("job".into(), vec![b'x'; 2000]).await;
        sink.send("other".into(), vec![b'y'; 1000]).await;
        let began = Instant::now();
        let stats = sink
            .close(Instant::now() + Duration::from_millis(800))
            .await;
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
        assert_eq!(stats.failed_parts, 2, "{stats:?}");
        assert_eq!(stats.failed_bytes, 3000, "{stats:?}");
        assert_eq!(
            stats.spool_dir.as_deref(),
            Some(spool.join("logs").as_path())
        );
        assert!(stats.first_error.unwrap().contains("store is down"));
        assert_eq!(parts(&spool.join("logs/job")).len(), 1);
    }

    #[tokio::test]
    async fn a_store_that_never_answers_cannot_hold_the_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = flaky(dir.path());
        store.hang.store(true, std::sync::atomic::Ordering::SeqCst);
        let sink = Sink::start(store, "run-1".into(), dir.path().join("spool"));
        sink.send("job".into(), b"line\n".to_vec()).await;
        // The part is in flight (hanging) when the close comes.
        let flushing = sink.barrier(None);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let began = Instant::now();
        let stats = sink
            .close(Instant::now() + Duration::from_millis(500))
            .await;
        assert!(
            began.elapsed() < Duration::from_millis(1500),
            "{:?}",
            began.elapsed()
        );
        assert!(flushing.await.is_ok());
        assert_eq!(stats.failed_parts, 1, "{stats:?}");
        assert!(
            stats
                .first_error
                .unwrap()
                .contains("did not answer in time")
        );
    }
}
