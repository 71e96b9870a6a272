//! Batched delivery of log lines to the log store: one task owns every node's buffer and cuts a
//! part when a buffer reaches 1 MiB or its oldest line is about a second old, never a part per
//! line. A second task delivers the parts; when the store cannot take one, the part is spooled to
//! a local file and retried in order in the background, and whatever is still undelivered at exit
//! stays in the spool and is counted.

use sparkwing_storage::LogStore;
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
const TICK: Duration = Duration::from_millis(100);
/// Bytes of captured output held in memory (queued, buffered or in delivery) before producers
/// wait (back-pressure on a slow store), in KiB permits.
const BUDGET_KIB: usize = 64 * 1024;
/// Upper bound of one part delivery, the store's own retries included: a stalled store must never
/// hold the run.
const PART_TIMEOUT: Duration = Duration::from_secs(10);
/// First delay before spooled parts are retried; doubled after each failed round.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(4);

enum Msg {
    Data {
        node: Arc<str>,
        bytes: Vec<u8>,
        permits: u32,
    },
    /// Only tests wait for a flush; the run cuts parts with [`Msg::Cut`] and never waits.
    #[cfg(test)]
    Flush {
        node: Option<Arc<str>>,
        done: oneshot::Sender<()>,
    },
    /// Cut the node's buffer into a part now; nobody waits for it.
    Cut(Arc<str>),
    Close(oneshot::Sender<SinkStats>),
}

/// What the delivery task is sent by the batching task.
enum Out {
    Part {
        node: Arc<str>,
        data: Vec<u8>,
        permits: u32,
    },
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

/// Sender side; cheap to share.
#[derive(Debug)]
pub(crate) struct Sink {
    tx: mpsc::UnboundedSender<Msg>,
    budget: Arc<Semaphore>,
    /// Once closing: the instant by which every delivery attempt must give up.
    deadline: watch::Sender<Option<Instant>>,
}

impl Sink {
    /// Starts the writer tasks for `run` on the current runtime; parts the store refuses are
    /// spooled under `spool_dir`.
    pub fn start(store: Arc<dyn LogStore>, run: String, spool_dir: PathBuf) -> Sink {
        let (tx, rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(BUDGET_KIB));
        let (deadline, closing) = watch::channel(None);
        tokio::spawn(batcher(rx, out_tx));
        let delivery = Delivery {
            describe: store.describe(),
            store,
            run,
            stats: SinkStats::default(),
            budget: budget.clone(),
            closing,
            spool: Spool {
                dir: spool_dir,
                queue: VecDeque::new(),
            },
            retry_at: None,
            backoff: RETRY_MIN,
        };
        tokio::spawn(delivery.run(out_rx));
        Sink {
            tx,
            budget,
            deadline,
        }
    }

    /// Queues bytes, waiting while too much is held in memory already.
    pub async fn send(&self, node: Arc<str>, bytes: Vec<u8>) {
        let permits = (bytes.len() / 1024).clamp(1, BUDGET_KIB) as u32;
        match self.budget.acquire_many(permits).await {
            Ok(p) => p.forget(),
            Err(_) => return,
        }
        let _ = self.tx.send(Msg::Data {
            node,
            bytes,
            permits,
        });
    }

    /// Queues bytes without waiting (small messages from synchronous code).
    pub fn send_now(&self, node: Arc<str>, bytes: Vec<u8>) {
        let _ = self.tx.send(Msg::Data {
            node,
            bytes,
            permits: 0,
        });
    }

    /// Writes the buffered lines of `node` (or of every node) and waits until they are stored or
    /// spooled.
    #[cfg(test)]
    pub async fn flush(&self, node: Option<Arc<str>>) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush { node, done }).is_ok() {
            let _ = wait.await;
        }
    }

    /// Has the buffered lines of `node` written to the store soon, without waiting for them.
    pub fn flush_now(&self, node: Arc<str>) {
        let _ = self.tx.send(Msg::Cut(node));
    }

    /// Writes everything, retries spooled parts until `deadline`, and stops the tasks. Nothing
    /// waits on the store past `deadline`.
    pub async fn close(&self, deadline: Instant) -> SinkStats {
        self.deadline.send_replace(Some(deadline));
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).is_err() {
            return SinkStats::default();
        }
        wait.await.unwrap_or_default()
    }
}

struct Pending {
    data: Vec<u8>,
    since: Instant,
    permits: u32,
}

/// Owns every node's buffer; cuts parts and hands them to the delivery task.
struct Batcher {
    out: mpsc::UnboundedSender<Out>,
    bufs: HashMap<Arc<str>, Pending>,
}

impl Batcher {
    fn cut(&mut self, node: &Arc<str>) {
        if let Some(p) = self.bufs.get_mut(node)
            && !p.data.is_empty()
        {
            let data = std::mem::take(&mut p.data);
            let permits = std::mem::take(&mut p.permits);
            let _ = self.out.send(Out::Part {
                node: node.clone(),
                data,
                permits,
            });
        }
    }

    fn cut_all(&mut self, older_than: Option<Duration>) {
        let now = Instant::now();
        let due: Vec<Arc<str>> = self
            .bufs
            .iter()
            .filter(|(_, p)| !p.data.is_empty())
            .filter(|(_, p)| older_than.is_none_or(|age| now.duration_since(p.since) >= age))
            .map(|(n, _)| n.clone())
            .collect();
        for node in due {
            self.cut(&node);
        }
    }

    fn add(&mut self, node: Arc<str>, mut bytes: Vec<u8>, mut permits: u32) {
        if let Some(p) = self.bufs.get_mut(&node)
            && !p.data.is_empty()
            && p.data.len() + bytes.len() > MAX_PART
        {
            // The cut part carries the permits, so they return to the budget when it is delivered.
            p.permits += std::mem::take(&mut permits);
            // Fill the part up to the limit at a line boundary, so parts are full and the store
            // sees about one request per MiB.
            let room = MAX_PART - p.data.len();
            if let Some(end) = bytes[..room].iter().rposition(|&b| b == b'\n') {
                p.data.extend_from_slice(&bytes[..=end]);
                bytes.drain(..=end);
            }
            self.cut(&node);
            if bytes.is_empty() {
                return;
            }
        }
        if bytes.len() >= MAX_PART {
            let _ = self.out.send(Out::Part {
                node,
                data: bytes,
                permits,
            });
            return;
        }
        let p = self.bufs.entry(node).or_insert_with(|| Pending {
            data: Vec::new(),
            since: Instant::now(),
            permits: 0,
        });
        if p.data.is_empty() {
            p.since = Instant::now();
            p.data.reserve(bytes.len().max(64 * 1024));
        }
        p.data.extend_from_slice(&bytes);
        p.permits += permits;
    }
}

async fn batcher(mut rx: mpsc::UnboundedReceiver<Msg>, out: mpsc::UnboundedSender<Out>) {
    let mut b = Batcher {
        out,
        bufs: HashMap::new(),
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                None => {
                    b.cut_all(None);
                    return;
                }
                Some(Msg::Data { node, bytes, permits }) => b.add(node, bytes, permits),
                #[cfg(test)]
                Some(Msg::Flush { node, done }) => {
                    match node {
                        Some(n) => b.cut(&n),
                        None => b.cut_all(None),
                    }
                    let _ = b.out.send(Out::Barrier(done));
                }
                Some(Msg::Cut(node)) => b.cut(&node),
                Some(Msg::Close(done)) => {
                    b.cut_all(None);
                    let _ = b.out.send(Out::Close(done));
                    return;
                }
            },
            _ = tick.tick() => b.cut_all(Some(MAX_AGE)),
        }
    }
}

/// A part waiting in the spool: its bytes are in `path`, its name in the store is `part`.
struct Spooled {
    node: Arc<str>,
    part: String,
    path: PathBuf,
    len: u64,
}

/// Parts the store refused, in the order they must be delivered. Once one part is spooled, every
/// later part goes through the spool too, so the store sees each node's parts in write order.
/// A part is named once, when it is first offered to the store, and keeps that name through every
/// retry: an attempt that timed out but landed is overwritten by its retry, never duplicated.
struct Spool {
    dir: PathBuf,
    queue: VecDeque<Spooled>,
}

impl Spool {
    /// `<dir>/logs/<node>/<part>`, the store layout, so whoever delivers it later (this sink, or
    /// the supervisor after a crash) uses the same part name.
    fn put(&mut self, node: &Arc<str>, part: String, data: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join("logs").join(&**node);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(&part);
        // Through a temporary name: a process killed mid-write leaves no half part that the
        // supervisor would then put over the whole one already in the store. (Temporary names
        // are not part names, so nobody delivers them.)
        let tmp = dir.join(format!(".{part}.tmp"));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &path)?;
        self.queue.push_back(Spooled {
            node: node.clone(),
            part,
            path,
            len: data.len() as u64,
        });
        Ok(())
    }
}

struct Delivery {
    store: Arc<dyn LogStore>,
    describe: String,
    run: String,
    stats: SinkStats,
    budget: Arc<Semaphore>,
    closing: watch::Receiver<Option<Instant>>,
    spool: Spool,
    retry_at: Option<Instant>,
    backoff: Duration,
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Delivery {
    /// One bounded delivery attempt: at most [`PART_TIMEOUT`], and never past the close deadline,
    /// even when the close comes while the attempt is in flight.
    async fn append(&self, node: &str, part: &str, data: Vec<u8>) -> Result<(), String> {
        let limit = Instant::now() + PART_TIMEOUT;
        let mut closing = self.closing.clone();
        let put = self.store.put_part(&self.run, node, part, data);
        tokio::pin!(put);
        loop {
            let at = match *closing.borrow_and_update() {
                Some(d) => d.min(limit),
                None => limit,
            };
            tokio::select! {
                r = &mut put => return r.map(|_| ()).map_err(|e| e.to_string()),
                _ = tokio::time::sleep_until(at) => {
                    return Err("the log store did not answer in time".into());
                }
                changed = closing.changed() => {
                    if changed.is_err() {
                        // The sender is gone: no deadline will come; keep the time limit.
                        return match tokio::time::timeout_at(limit, &mut put).await {
                            Ok(r) => r.map(|_| ()).map_err(|e| e.to_string()),
                            Err(_) => Err("the log store did not answer in time".into()),
                        };
                    }
                }
            }
        }
    }

    fn note_error(&mut self, node: &str, e: String) {
        if self.stats.first_error.is_none() {
            eprintln!(
                "warning: failed to deliver a log part of `{node}` to {}: {e}\n  note: keeping parts in `{}` and retrying in the background",
                self.describe,
                self.spool.dir.display()
            );
            self.stats.first_error = Some(e);
        }
    }

    fn spool(&mut self, node: &Arc<str>, part: String, data: &[u8]) {
        match self.spool.put(node, part, data) {
            Ok(()) => self.stats.spooled_parts += 1,
            Err(e) => {
                // Neither the store nor the disk took it: lost, and counted as such.
                self.note_error(
                    node,
                    format!("spool to `{}`: {e}", self.spool.dir.display()),
                );
                self.stats.failed_parts += 1;
                self.stats.failed_bytes += data.len() as u64;
            }
        }
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + self.backoff);
        }
    }

    async fn deliver(&mut self, node: Arc<str>, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let part = sparkwing_storage::next_part_name();
        if !self.spool.queue.is_empty() {
            return self.spool(&node, part, &data);
        }
        let len = data.len() as u64;
        match self.append(&node, &part, data.clone()).await {
            Ok(()) => {
                self.stats.parts += 1;
                self.stats.bytes += len;
            }
            Err(e) => {
                self.note_error(&node, e);
                self.spool(&node, part, &data);
            }
        }
    }

    /// Delivers spooled parts in order until one fails. Returns whether the spool is empty.
    async fn retry(&mut self) -> bool {
        let mut delivered = 0u64;
        while let Some(head) = self.spool.queue.front() {
            let node = head.node.clone();
            let part = head.part.clone();
            let path = head.path.clone();
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) => {
                    // The file vanished or cannot be read: it is lost, not retried forever.
                    self.note_error(
                        &node,
                        format!("read spooled part `{}`: {e}", path.display()),
                    );
                    let lost = self.spool.queue.pop_front().map_or(0, |s| s.len);
                    self.stats.failed_parts += 1;
                    self.stats.failed_bytes += lost;
                    continue;
                }
            };
            let len = data.len() as u64;
            match self.append(&node, &part, data).await {
                Ok(()) => {
                    let _ = std::fs::remove_file(&path);
                    self.spool.queue.pop_front();
                    self.stats.parts += 1;
                    self.stats.bytes += len;
                    delivered += 1;
                }
                Err(_) => {
                    self.backoff = (self.backoff * 2).min(RETRY_MAX);
                    self.retry_at = Some(Instant::now() + self.backoff);
                    return false;
                }
            }
        }
        self.retry_at = None;
        self.backoff = RETRY_MIN;
        if delivered > 0 {
            eprintln!(
                "sparkwing: {} reachable again: delivered {delivered} spooled log part(s)",
                self.describe
            );
            remove_empty_dirs(&self.spool.dir);
        }
        true
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Out>) {
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Out::Part { node, data, permits }) => {
                        self.deliver(node, data).await;
                        self.budget.add_permits(permits as usize);
                    }
                    #[cfg(test)]
                    Some(Out::Barrier(done)) => {
                        let _ = done.send(());
                    }
                    Some(Out::Close(done)) => {
                        let _ = done.send(self.finish().await);
                        return;
                    }
                    None => return,
                },
                _ = sleep_until_opt(self.retry_at), if self.retry_at.is_some() => {
                    self.retry().await;
                }
            }
        }
    }

    /// Retries the spool until it is empty or the close deadline passes; counts what is left.
    async fn finish(&mut self) -> SinkStats {
        let deadline = self.closing.borrow().unwrap_or_else(Instant::now);
        while !self.spool.queue.is_empty() && Instant::now() < deadline {
            if self.retry().await {
                break;
            }
            let at = self.retry_at.unwrap_or(deadline).min(deadline);
            tokio::time::sleep_until(at).await;
        }
        if !self.spool.queue.is_empty() {
            self.stats.failed_parts += self.spool.queue.len() as u64;
            self.stats.failed_bytes += self.spool.queue.iter().map(|s| s.len).sum::<u64>();
        }
        if self.stats.failed_parts > 0 {
            self.stats.spool_dir = Some(self.spool.dir.join("logs"));
        }
        std::mem::take(&mut self.stats)
    }
}

/// Removes `dir` and its empty subdirectories (what a drained spool leaves behind).
fn remove_empty_dirs(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
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

    #[tokio::test]
    async fn lines_are_batched_by_size_and_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsLogStore::new(dir.path()));
        let sink = Sink::start(store.clone(), "run-1".into(), dir.path().join("spool"));
        let line = format!("{{\"msg\":\"{}\"}}\n", "x".repeat(200));
        let mut expected = Vec::new();
        for i in 0..20_000 {
            let l = format!("{i:06}{line}");
            expected.extend_from_slice(l.as_bytes());
            sink.send("job".into(), l.into_bytes()).await;
        }
        let stats = sink.close(Instant::now() + Duration::from_secs(5)).await;
        let files = parts(&dir.path().join("run-1/job"));
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
        let store = Arc::new(FsLogStore::new(dir.path()));
        let sink = Sink::start(store, "run-1".into(), dir.path().join("spool"));
        sink.send_now("job".into(), b"{\"msg\":\"one\"}\n".to_vec());
        sink.send_now("job".into(), b"{\"msg\":\"two\"}\n".to_vec());
        let node_dir = dir.path().join("run-1/job");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(parts(&node_dir).is_empty(), "written too early");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(parts(&node_dir).len(), 1, "both lines in one part");
        sink.close(Instant::now() + Duration::from_secs(5)).await;
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
        assert_eq!(parts(&dir.path().join("logs/run-1/job")).len(), 2);
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
        let flushing = {
            let (tx, rx) = oneshot::channel();
            let _ = sink.tx.send(Msg::Flush {
                node: None,
                done: tx,
            });
            rx
        };
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
