//! The run's state in the artifact store, `runs/<runID>/state.ndjson`: rewritten
//! from the record stream while the run is in flight (only when something changed, at most about
//! a second behind) and a last time at exit, so a reader of the bucket sees a live run and then a
//! terminal one.
//!
//! The dispatcher only updates an in-memory snapshot; a task of its own renders and uploads it,
//! so a slow or unreachable store never holds a job. When an upload fails, the latest state is
//! written to a local spool file and retried; the last state wins.

use sparkwing_contract::record::{NodeRecord, RunRecord, RunStatus, StateDump};
use sparkwing_contract::timefmt::now_rfc3339;
use sparkwing_storage::ArtifactStore;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Least time between two uploads: with an upload's own latency, a change is in the store at most
/// about a second after it happened.
const INTERVAL: Duration = Duration::from_millis(750);
/// Upper bound of one upload, the store's own retries included.
const PUT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between attempts while the store refuses uploads.
const RETRY_MAX: Duration = Duration::from_secs(4);

pub(crate) use sparkwing_contract::surfaces::state_key;

/// How the last upload went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StateOutcome {
    /// Uploads that reached the store.
    pub uploads: u64,
    /// Set when the final state could not be delivered: the error, and the local copy.
    pub undelivered: Option<(String, PathBuf)>,
}

struct Snap {
    run: RunRecord,
    /// Shared with a render in progress: the render copies the list, not the records, and
    /// works outside the lock, so a change never waits for a render.
    nodes: Vec<Arc<NodeRecord>>,
    index: HashMap<String, usize>,
    version: u64,
    /// Set by [`StateStream::close`]: upload the last state and stop by this instant.
    closing: Option<Instant>,
}

struct Shared {
    snap: Mutex<Snap>,
    wake: Notify,
    /// Set while the upload loop waits for a change. A change wakes the loop only then: while it
    /// paces its uploads or one is in flight, the change is picked up at the next look anyway, so
    /// a run of short jobs costs no wake-up per record.
    idle: AtomicBool,
    /// Longest time a running run's state goes without a rewrite (its `last_heartbeat_at`).
    heartbeat: Duration,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Snap> {
        self.snap.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a change to the snapshot: wakes the loop if it waits for one.
    fn changed(&self) {
        if self.idle.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }
}

/// Handle of the uploading task. Records given to it must already be masked.
pub(crate) struct StateStream {
    shared: Arc<Shared>,
    task: JoinHandle<StateOutcome>,
}

impl StateStream {
    #[cfg(test)]
    fn start_with_heartbeat(
        store: Arc<dyn ArtifactStore>,
        run: &RunRecord,
        nodes: &[NodeRecord],
        spool: PathBuf,
        heartbeat: Duration,
    ) -> StateStream {
        Self::start(store, state_key(&run.id), run, nodes, spool, heartbeat)
    }

    /// Starts streaming `run` and its `nodes` to `store` under `key` (the run's state dump, or its
    /// shard's file), rewritten at least every `heartbeat`; failed uploads are kept at `spool`.
    pub fn start(
        store: Arc<dyn ArtifactStore>,
        key: String,
        run: &RunRecord,
        nodes: &[NodeRecord],
        spool: PathBuf,
        heartbeat: Duration,
    ) -> StateStream {
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let shared = Arc::new(Shared {
            snap: Mutex::new(Snap {
                run: run.clone(),
                nodes: nodes.iter().cloned().map(Arc::new).collect(),
                index,
                version: 1,
                closing: None,
            }),
            wake: Notify::new(),
            idle: AtomicBool::new(false),
            heartbeat,
        });
        let task = tokio::spawn(upload_loop(store, key, spool, shared.clone()));
        StateStream { shared, task }
    }

    /// Replaces the run record.
    pub fn run(&self, run: &RunRecord) {
        let mut s = self.shared.lock();
        if s.run != *run {
            s.run = run.clone();
            s.version += 1;
            drop(s);
            self.shared.changed();
        }
    }

    /// Replaces (or adds) one node record.
    pub fn node(&self, rec: &NodeRecord) {
        let mut s = self.shared.lock();
        match s.index.get(&rec.id) {
            Some(&i) => s.nodes[i] = Arc::new(rec.clone()),
            None => {
                let i = s.nodes.len();
                s.index.insert(rec.id.clone(), i);
                s.nodes.push(Arc::new(rec.clone()));
            }
        }
        s.version += 1;
        drop(s);
        self.shared.changed();
    }

    /// Uploads the latest state, retrying until `deadline`, and stops the task.
    pub async fn close(self, deadline: Instant) -> StateOutcome {
        self.shared.lock().closing = Some(deadline);
        self.shared.wake.notify_one();
        match self.task.await {
            Ok(outcome) => outcome,
            Err(e) => StateOutcome {
                uploads: 0,
                undelivered: Some((format!("the upload task failed: {e}"), PathBuf::new())),
            },
        }
    }
}

async fn upload_loop(
    store: Arc<dyn ArtifactStore>,
    key: String,
    spool: PathBuf,
    shared: Arc<Shared>,
) -> StateOutcome {
    let mut outcome = StateOutcome::default();
    let mut sent = 0u64;
    let mut next_at = Instant::now();
    let mut backoff = INTERVAL;
    // When the state last reached the store; a running run is rewritten at least every
    // `heartbeat` even when nothing changed, so readers can tell a live run from a lost one.
    let mut last_put = Instant::now();
    loop {
        // Marked before the snapshot is read: a change made after the read then finds the mark
        // and wakes the loop (a wake-up with nobody waiting yet is kept for the next wait).
        shared.idle.store(true, Ordering::Release);
        let (version, closing, running) = {
            let s = shared.lock();
            (s.version, s.closing, s.run.status == RunStatus::Running)
        };
        let beat_at = last_put + shared.heartbeat;
        let beat_due = running && closing.is_none() && sent > 0 && Instant::now() >= beat_at;
        if version == sent && !beat_due {
            if closing.is_some() {
                return outcome;
            }
            if running && sent > 0 {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep_until(beat_at) => {}
                }
            } else {
                shared.wake.notified().await;
            }
            continue;
        }
        shared.idle.store(false, Ordering::Release);
        if closing.is_none() && Instant::now() < next_at {
            // Pace the uploads; a close wakes the loop to look again (changes wait for the pace).
            tokio::select! {
                _ = tokio::time::sleep_until(next_at) => {}
                _ = shared.wake.notified() => {}
            }
            continue;
        }
        let (version, mut run, nodes) = {
            let s = shared.lock();
            (s.version, s.run.clone(), s.nodes.clone())
        };
        run.last_heartbeat_at = Some(now_rfc3339());
        let text = StateDump::render(&run, nodes.iter().map(|n| &**n)).into_bytes();
        drop(nodes);
        let limit = Instant::now() + PUT_TIMEOUT;
        let put = store.put(&key, text.clone());
        tokio::pin!(put);
        let mut closing = closing;
        let error = loop {
            // A close while the upload is in flight shortens its time limit.
            let at = closing.map_or(limit, |d| d.min(limit));
            tokio::select! {
                r = &mut put => break r.err().map(|e| e.to_string()),
                _ = tokio::time::sleep_until(at) => {
                    break Some("the artifact store did not answer in time".into());
                }
                _ = shared.wake.notified() => closing = shared.lock().closing,
            }
        };
        let Some(error) = error else {
            sent = version;
            last_put = Instant::now();
            outcome.uploads += 1;
            backoff = INTERVAL;
            next_at = Instant::now() + INTERVAL;
            if outcome.undelivered.take().is_some() {
                let _ = std::fs::remove_file(&spool);
                eprintln!(
                    "sparkwing: {} reachable again: run state delivered",
                    store.describe()
                );
            }
            continue;
        };
        if outcome.undelivered.is_none() {
            eprintln!(
                "warning: failed to write the run state to {}: {error}\n  note: keeping it in `{}` and retrying",
                store.describe(),
                spool.display()
            );
        }
        // The last state wins: one local file, overwritten each time.
        let kept = spool
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&spool, &text));
        let path = if kept.is_ok() {
            spool.clone()
        } else {
            PathBuf::new()
        };
        outcome.undelivered = Some((error, path));
        backoff = (backoff * 2).min(RETRY_MAX);
        next_at = Instant::now() + backoff;
        if let Some(deadline) = closing {
            if Instant::now() >= deadline {
                return outcome;
            }
            tokio::time::sleep_until(next_at.min(deadline)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_contract::record::NodeStatus;
    use sparkwing_storage::FsArtifactStore;

    fn run() -> RunRecord {
        RunRecord::new(
            "run-20261127-141500-1a2b3c4d",
            "ci",
            RunStatus::Running,
            "2026-11-27T14:15:00Z",
        )
    }

    fn node(id: &str, status: NodeStatus) -> NodeRecord {
        NodeRecord::new(run().id, id, status)
    }

    fn read(path: &std::path::Path) -> Option<StateDump> {
        std::fs::read_to_string(path)
            .ok()
            .map(|t| StateDump::parse(&t))
    }

    #[tokio::test]
    async fn changes_reach_the_store_within_a_second_and_idle_time_costs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsArtifactStore::new(dir.path().join("cache")));
        let file = dir.path().join("cache").join(state_key(&run().id));
        let nodes = [
            node("a", NodeStatus::Pending),
            node("b", NodeStatus::Pending),
        ];
        let stream = StateStream::start_with_heartbeat(
            store,
            &run(),
            &nodes,
            dir.path().join("spool.ndjson"),
            sparkwing_contract::record::HEARTBEAT_INTERVAL,
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let first = read(&file).expect("the first state is written at once");
        assert_eq!(first.nodes.len(), 2);
        // Idle: nothing changes, nothing is uploaded.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let changed = Instant::now();
        stream.node(&node("a", NodeStatus::Running));
        loop {
            if read(&file).is_some_and(|d| d.nodes[0].status == NodeStatus::Running) {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(1),
                "more than a second behind"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut done = run();
        done.status = RunStatus::Success;
        stream.run(&done);
        stream.run(&done); // unchanged: no new version
        let outcome = stream.close(Instant::now() + Duration::from_secs(2)).await;
        assert_eq!(outcome.undelivered, None);
        assert_eq!(outcome.uploads, 3, "initial, node change, final");
        assert_eq!(read(&file).unwrap().run.unwrap().status, RunStatus::Success);
    }

    #[tokio::test]
    async fn an_idle_running_run_is_rewritten_every_heartbeat_and_a_finished_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsArtifactStore::new(dir.path().join("cache")));
        let file = dir.path().join("cache").join(state_key(&run().id));
        // Longer than the pacing between uploads (750 ms), as the real one (30 s) is.
        let beat = Duration::from_millis(800);
        let stream = StateStream::start_with_heartbeat(
            store,
            &run(),
            &[node("a", NodeStatus::Running)],
            dir.path().join("spool.ndjson"),
            beat,
        );
        let read_run = || read(&file).and_then(|d| d.run);
        let ns = |r: &RunRecord| {
            r.last_heartbeat_at
                .as_deref()
                .and_then(sparkwing_contract::timefmt::parse_rfc3339_nanos)
                .expect("every upload carries a heartbeat")
        };
        // Polls until `pred` holds for the stored run (generous deadlines: a loaded machine).
        let wait_for = |what: &'static str, pred: Box<dyn Fn(&RunRecord) -> bool>| {
            let read_run = &read_run;
            async move {
                let end = Instant::now() + Duration::from_secs(10);
                loop {
                    if let Some(r) = read_run().filter(|r| pred(r)) {
                        return r;
                    }
                    assert!(Instant::now() < end, "never: {what}");
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        };
        let first = ns(&wait_for("the first upload", Box::new(|_| true)).await);
        // Nothing changes, yet the heartbeat moves on, twice.
        let beat1 = ns(&wait_for("a heartbeat", Box::new(move |r| ns(r) > first)).await);
        wait_for("a second heartbeat", Box::new(move |r| ns(r) > beat1)).await;
        let mut done = run();
        done.status = RunStatus::Success;
        stream.run(&done);
        let finished = wait_for(
            "the finished state",
            Box::new(|r| r.status == RunStatus::Success),
        )
        .await;
        // Well past two heartbeat intervals: a finished run is not rewritten.
        tokio::time::sleep(beat * 3).await;
        assert_eq!(
            read_run().map(|r| ns(&r)),
            Some(ns(&finished)),
            "a finished run is not rewritten"
        );
        let outcome = stream.close(Instant::now() + Duration::from_secs(2)).await;
        assert_eq!(outcome.undelivered, None);
        // The first upload, at least two heartbeats, and the change to `success`.
        assert!(outcome.uploads >= 4, "{outcome:?}");
    }

    #[tokio::test]
    async fn a_state_that_cannot_be_delivered_is_kept_locally_by_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the store's root directory should be: every write fails.
        std::fs::write(dir.path().join("cache"), b"").unwrap();
        let store = Arc::new(FsArtifactStore::new(dir.path().join("cache")));
        let spool = dir.path().join("spool/state.ndjson");
        let stream = StateStream::start_with_heartbeat(
            store,
            &run(),
            &[],
            spool.clone(),
            sparkwing_contract::record::HEARTBEAT_INTERVAL,
        );
        let mut done = run();
        done.status = RunStatus::Cancelled;
        stream.run(&done);
        let began = Instant::now();
        let outcome = stream
            .close(Instant::now() + Duration::from_millis(700))
            .await;
        assert!(
            began.elapsed() < Duration::from_millis(1500),
            "{:?}",
            began.elapsed()
        );
        let (_, kept) = outcome.undelivered.expect("reported undelivered");
        assert_eq!(kept, spool);
        assert_eq!(
            read(&spool).unwrap().run.unwrap().status,
            RunStatus::Cancelled,
            "the last state wins"
        );
    }
}
