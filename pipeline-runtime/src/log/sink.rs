//! Batched delivery of log lines to the log store: one task owns every node's buffer and writes a
//! part when a buffer reaches 1 MiB or its oldest line is about a second old, never a part per line.

use sparkwing_storage::LogStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Largest part written.
pub(crate) const MAX_PART: usize = 1 << 20;
/// A line waits at most about this long before its part is written.
const MAX_AGE: Duration = Duration::from_millis(900);
const TICK: Duration = Duration::from_millis(100);
/// Bytes of captured output queued for the writer before producers wait (back-pressure on a slow
/// store), in KiB permits.
const BUDGET_KIB: usize = 64 * 1024;

enum Msg {
    Data {
        node: Arc<str>,
        bytes: Vec<u8>,
        permits: u32,
    },
    Flush {
        node: Option<Arc<str>>,
        done: oneshot::Sender<()>,
    },
    Close(oneshot::Sender<SinkStats>),
}

/// What reached the store, and what did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SinkStats {
    pub parts: u64,
    pub bytes: u64,
    pub failed_parts: u64,
    pub failed_bytes: u64,
    /// The first store error, for the run summary.
    pub first_error: Option<String>,
}

/// Sender side; cheap to share.
#[derive(Debug)]
pub(crate) struct Sink {
    tx: mpsc::UnboundedSender<Msg>,
    budget: Arc<Semaphore>,
}

impl Sink {
    /// Starts the writer task for `run` on the current runtime.
    pub fn start(store: Arc<dyn LogStore>, run: String) -> Sink {
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(BUDGET_KIB));
        tokio::spawn(writer(store, run, rx, budget.clone()));
        Sink { tx, budget }
    }

    /// Queues bytes, waiting while too much is queued already.
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

    /// Writes the buffered lines of `node` (or of every node) and waits until they are stored.
    pub async fn flush(&self, node: Option<Arc<str>>) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush { node, done }).is_ok() {
            let _ = wait.await;
        }
    }

    /// Writes everything and stops the task.
    pub async fn close(&self) -> SinkStats {
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
}

struct Writer {
    store: Arc<dyn LogStore>,
    run: String,
    stats: SinkStats,
    bufs: HashMap<Arc<str>, Pending>,
}

impl Writer {
    async fn write(&mut self, node: &str, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        let len = data.len() as u64;
        match self.store.append_part(&self.run, node, data).await {
            Ok(_) => {
                self.stats.parts += 1;
                self.stats.bytes += len;
            }
            Err(e) => {
                if self.stats.first_error.is_none() {
                    eprintln!(
                        "warning: failed to write a log part of `{node}` to {}: {e}",
                        self.store.describe()
                    );
                    self.stats.first_error = Some(e.to_string());
                }
                self.stats.failed_parts += 1;
                self.stats.failed_bytes += len;
            }
        }
    }

    async fn flush_node(&mut self, node: &str) {
        if let Some(p) = self.bufs.get_mut(node) {
            let data = std::mem::take(&mut p.data);
            self.write(node, data).await;
        }
    }

    async fn flush_all(&mut self, older_than: Option<Duration>) {
        let now = Instant::now();
        let due: Vec<Arc<str>> = self
            .bufs
            .iter()
            .filter(|(_, p)| !p.data.is_empty())
            .filter(|(_, p)| older_than.is_none_or(|age| now.duration_since(p.since) >= age))
            .map(|(n, _)| n.clone())
            .collect();
        for node in due {
            self.flush_node(&node).await;
        }
    }

    async fn add(&mut self, node: Arc<str>, bytes: Vec<u8>) {
        let needs_flush = self
            .bufs
            .get(&node)
            .is_some_and(|p| !p.data.is_empty() && p.data.len() + bytes.len() > MAX_PART);
        if needs_flush {
            self.flush_node(&node).await;
        }
        if bytes.len() >= MAX_PART {
            return self.write(&node, bytes).await;
        }
        let p = self.bufs.entry(node.clone()).or_insert_with(|| Pending {
            data: Vec::new(),
            since: Instant::now(),
        });
        if p.data.is_empty() {
            p.since = Instant::now();
            p.data.reserve(bytes.len().max(64 * 1024));
        }
        p.data.extend_from_slice(&bytes);
    }
}

async fn writer(
    store: Arc<dyn LogStore>,
    run: String,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    budget: Arc<Semaphore>,
) {
    let mut w = Writer {
        store,
        run,
        stats: SinkStats::default(),
        bufs: HashMap::new(),
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                None => {
                    w.flush_all(None).await;
                    return;
                }
                Some(Msg::Data { node, bytes, permits }) => {
                    w.add(node, bytes).await;
                    budget.add_permits(permits as usize);
                }
                Some(Msg::Flush { node, done }) => {
                    match node {
                        Some(n) => w.flush_node(&n).await,
                        None => w.flush_all(None).await,
                    }
                    let _ = done.send(());
                }
                Some(Msg::Close(done)) => {
                    w.flush_all(None).await;
                    let _ = done.send(std::mem::take(&mut w.stats));
                    return;
                }
            },
            _ = tick.tick() => w.flush_all(Some(MAX_AGE)).await,
        }
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

    #[tokio::test]
    async fn lines_are_batched_by_size_and_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsLogStore::new(dir.path()));
        let sink = Sink::start(store.clone(), "run-1".into());
        let line = format!("{{\"msg\":\"{}\"}}\n", "x".repeat(200));
        let mut expected = Vec::new();
        for i in 0..20_000 {
            let l = format!("{i:06}{line}");
            expected.extend_from_slice(l.as_bytes());
            sink.send("job".into(), l.into_bytes()).await;
        }
        let stats = sink.close().await;
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
        let sink = Sink::start(store, "run-1".into());
        sink.send_now("job".into(), b"{\"msg\":\"one\"}\n".to_vec());
        sink.send_now("job".into(), b"{\"msg\":\"two\"}\n".to_vec());
        let node_dir = dir.path().join("run-1/job");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(parts(&node_dir).is_empty(), "written too early");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(parts(&node_dir).len(), 1, "both lines in one part");
        sink.close().await;
    }
}
