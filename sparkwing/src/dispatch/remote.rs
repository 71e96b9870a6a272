//! Jobs that run on another shard: their final records are read from that shard's file in the
//! store, polled with backoff, and handed to the dispatcher as if the job had run here.

use sparkwing_contract::record::{NodeRecord, NodeStatus};
use sparkwing_contract::shard::{shard_key, stale_after};
use sparkwing_contract::timefmt;
use sparkwing_storage::ArtifactStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// First pause between two reads of a shard's file; it grows to [`POLL_MAX`] while nothing
/// changes, and starts over when something does.
const POLL_MIN: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_millis(500);

/// How the shards of a run reach each other.
pub(crate) struct Shards {
    pub me: u32,
    /// The shard of each job, in plan order.
    pub of: Vec<u32>,
    pub store: Arc<dyn ArtifactStore>,
    pub heartbeat: Duration,
}

/// What became of a job on another shard.
pub(crate) struct RemoteDone {
    pub index: usize,
    pub result: Result<NodeRecord, Lost>,
}

/// A job on another shard that will not be seen to finish.
pub(crate) struct Lost {
    pub reason: &'static str,
    pub error: String,
}

/// One job this shard waits for.
pub(crate) struct Wanted {
    pub index: usize,
    pub id: String,
    /// Give up at this instant (the shortest timeout of the local jobs that need it).
    pub deadline: Option<Instant>,
}

/// Polls shard `shard`'s file until every job in `wanted` is final (or lost), sending each.
pub(crate) async fn watch_shard(
    store: Arc<dyn ArtifactStore>,
    run_id: String,
    shard: u32,
    mut wanted: Vec<Wanted>,
    heartbeat: Duration,
    tx: mpsc::UnboundedSender<RemoteDone>,
) {
    let key = shard_key(&run_id, shard);
    let stale = stale_after(heartbeat);
    let mut pause = POLL_MIN;
    let mut last_text: Option<Vec<u8>> = None;
    while !wanted.is_empty() {
        let now = Instant::now();
        wanted.retain(|w| {
            if w.deadline.is_none_or(|d| d > now) {
                return true;
            }
            let _ = tx.send(RemoteDone {
                index: w.index,
                result: Err(Lost {
                    reason: "timeout",
                    error: format!(
                        "timed out waiting for `{}` on shard {shard} (bounded by this job's timeout)",
                        w.id
                    ),
                }),
            });
            false
        });
        if wanted.is_empty() {
            break;
        }
        match store.get(&key).await {
            Ok(bytes) => {
                let changed = last_text.as_ref() != Some(&bytes);
                if changed {
                    pause = POLL_MIN;
                }
                let dump = sparkwing_contract::StateDump::parse(&String::from_utf8_lossy(&bytes));
                last_text = Some(bytes);
                let nodes: BTreeMap<&str, &NodeRecord> =
                    dump.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
                wanted.retain(|w| match nodes.get(w.id.as_str()) {
                    Some(n) if n.status == NodeStatus::Done => {
                        let mut rec = (*n).clone();
                        rec.shard.get_or_insert(shard);
                        let _ = tx.send(RemoteDone {
                            index: w.index,
                            result: Ok(rec),
                        });
                        false
                    }
                    _ => true,
                });
                if let Some(run) = &dump.run
                    && !wanted.is_empty()
                {
                    let lost = if run.status.is_terminal() {
                        Some(format!(
                            "shard {shard} ended ({}) without finishing it{}",
                            run.status,
                            if run.error.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", run.error)
                            }
                        ))
                    } else {
                        run.heartbeat_age(timefmt::now_unix_nanos())
                            .filter(|age| *age > stale)
                            .map(|age| {
                                format!(
                                    "shard {shard} stopped writing its state {} ago (its heartbeat is every {}): its CI job is most likely gone",
                                    sparkwing_contract::human::duration(age),
                                    sparkwing_contract::human::duration(heartbeat)
                                )
                            })
                    };
                    if let Some(why) = lost {
                        for w in wanted.drain(..) {
                            let _ = tx.send(RemoteDone {
                                index: w.index,
                                result: Err(Lost {
                                    reason: "shard-lost",
                                    error: format!("needs `{}`: {why}", w.id),
                                }),
                            });
                        }
                        break;
                    }
                }
            }
            // Not written yet: that shard's CI job has not started.
            Err(e) if e.is_not_found() => {}
            Err(e) => eprintln!("warning: read shard {shard}'s state `{key}`: {e}"),
        }
        let next = wanted
            .iter()
            .filter_map(|w| w.deadline)
            .min()
            .map_or(pause, |d| {
                pause.min(d.saturating_duration_since(Instant::now()))
            });
        tokio::time::sleep(next).await;
        pause = (pause * 3 / 2).min(POLL_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_contract::StateDump;
    use sparkwing_contract::record::{Outcome, RunRecord, RunStatus};
    use sparkwing_storage::FsArtifactStore;

    const RUN: &str = "run-20261203-040000-0000abcd";

    async fn put(store: &Arc<dyn ArtifactStore>, run: &RunRecord, nodes: &[NodeRecord]) {
        let text = StateDump::render(run, nodes);
        store
            .put(&shard_key(RUN, 1), text.into_bytes())
            .await
            .unwrap();
    }

    fn wanted() -> Vec<Wanted> {
        vec![Wanted {
            index: 0,
            id: "build".into(),
            deadline: None,
        }]
    }

    fn running(heartbeat_secs_ago: i64) -> RunRecord {
        let mut r = RunRecord::new(RUN, "ci", RunStatus::Running, "2026-12-03T04:00:00Z");
        r.last_heartbeat_at = Some(timefmt::unix_nanos_to_rfc3339(
            timefmt::now_unix_nanos() - heartbeat_secs_ago * 1_000_000_000,
        ));
        r
    }

    #[tokio::test]
    async fn a_final_record_on_the_other_shard_is_handed_over_with_its_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch_shard(
            store.clone(),
            RUN.into(),
            1,
            wanted(),
            Duration::from_secs(1),
            tx,
        ));
        // Not written yet: waited for, not lost.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err());
        let mut build = NodeRecord::new(RUN, "build", NodeStatus::Running);
        put(&store, &running(0), std::slice::from_ref(&build)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "running is not final");
        build.status = NodeStatus::Done;
        build.outcome = Some(Outcome::Success);
        build.outputs.insert("version".into(), "1.2.3".into());
        let landed = Instant::now();
        put(&store, &running(0), &[build]).await;
        let done = rx.recv().await.unwrap();
        assert!(landed.elapsed() < Duration::from_secs(1));
        let rec = done.result.ok().unwrap();
        assert_eq!(rec.outputs["version"], "1.2.3");
        assert_eq!(rec.shard, Some(1));
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_shard_whose_heartbeat_is_stale_loses_its_jobs_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        put(
            &store,
            &running(10),
            &[NodeRecord::new(RUN, "build", NodeStatus::Running)],
        )
        .await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        watch_shard(store, RUN.into(), 1, wanted(), Duration::from_secs(1), tx).await;
        let lost = rx.recv().await.unwrap().result.err().unwrap();
        assert_eq!(lost.reason, "shard-lost");
        assert!(
            lost.error.contains("shard 1 stopped writing"),
            "{}",
            lost.error
        );
    }

    #[tokio::test]
    async fn the_wait_is_bounded_by_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut w = wanted();
        w[0].deadline = Some(Instant::now() + Duration::from_millis(300));
        let began = Instant::now();
        watch_shard(store, RUN.into(), 1, w, Duration::from_secs(30), tx).await;
        let lost = rx.recv().await.unwrap().result.err().unwrap();
        assert_eq!(lost.reason, "timeout");
        assert!(began.elapsed() < Duration::from_secs(2));
    }
}
