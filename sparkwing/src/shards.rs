//! The parts of a sharded run that meet in the store: the assignment every shard uses, and the
//! durations of earlier runs that balance it.

use crate::plan::ValidPlan;
use sparkwing_contract::record::{NodeRecord, Outcome};
use sparkwing_contract::shard::durations_key;
use sparkwing_storage::{ArtifactStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Most attempts of the compare-and-swap that merges this shard's durations into the file.
const CAS_ATTEMPTS: u32 = 8;
/// Bound on recording the durations (they only balance later runs).
const DURATIONS_BY: Duration = Duration::from_secs(5);

/// The assignment of jobs to shards for this run: the one already in the store (the first shard
/// to start wrote it), else this shard's own, written create-only so that all shards use one.
pub(crate) async fn agree_on_assignment(
    store: &Arc<dyn sparkwing_storage::ArtifactStore>,
    plan: &ValidPlan,
    pipeline: &str,
    run_id: &str,
    shard: sparkwing_contract::shard::Shard,
) -> Result<sparkwing_contract::shard::Assignment, String> {
    use sparkwing_contract::shard::{Assignment, assignment_key};
    // Durations balance the assignment only where the first shard's assignment is sure to win
    // (a create-only write); without conditional writes every shard must compute the same one
    // from the plan alone.
    let weights = if store.supports_conditional().await.unwrap_or(false) {
        load_durations(store.as_ref(), pipeline).await
    } else {
        Default::default()
    };
    let mine = crate::plan::shard::assign(plan, pipeline, shard.total, &weights)
        .map_err(|e| format!("assign the jobs to {} shard(s): {e}", shard.total))?;
    let key = assignment_key(run_id);
    let theirs = match store.put_if_absent(&key, mine.render()).await {
        Ok(_) => return Ok(mine),
        Err(sparkwing_storage::StoreError::PreconditionFailed(_)) => {
            store.get(&key).await.map_err(|e| {
                format!(
                    "read the run's assignment `{key}` in {}: {e}",
                    store.describe()
                )
            })?
        }
        Err(sparkwing_storage::StoreError::NotSupported { .. }) => {
            // Without conditional writes every shard writes the same assignment.
            store.put(&key, mine.render()).await.map_err(|e| {
                format!(
                    "write the run's assignment `{key}` to {}: {e}",
                    store.describe()
                )
            })?;
            return Ok(mine);
        }
        Err(e) => {
            return Err(format!(
                "write the run's assignment `{key}` to {}: {e}",
                store.describe()
            ));
        }
    };
    let theirs = Assignment::parse(&theirs).map_err(|e| {
        format!(
            "the run's assignment `{key}` in {} is unreadable: {e}",
            store.describe()
        )
    })?;
    // Durations may differ between shards that started at different times; the stored
    // assignment wins, as long as it describes the same jobs.
    let same_jobs = theirs.pipeline == mine.pipeline
        && theirs.jobs.len() == mine.jobs.len()
        && theirs
            .jobs
            .iter()
            .zip(&mine.jobs)
            .all(|(a, b)| a.id == b.id && a.deps == b.deps);
    if theirs.shards != shard.total || !same_jobs {
        return Err(format!(
            "run `{run_id}` already exists with another plan or shard count ({} shard(s) of pipeline `{}`, this is shard {shard} of pipeline `{pipeline}`)\n  hint: every shard of one run must run the same pipeline at the same revision with the same `--sw-shard=I/N` count; a new run needs a new `--sw-run-id`",
            theirs.shards, theirs.pipeline
        ));
    }
    Ok(theirs)
}

/// Seconds each job of `pipeline` took in earlier sharded runs (empty when unknown).
pub(crate) async fn load_durations(
    store: &dyn ArtifactStore,
    pipeline: &str,
) -> HashMap<String, f64> {
    if sparkwing_contract::id::validate_segment(pipeline).is_err() {
        return HashMap::new();
    }
    match store.get(&durations_key(pipeline)).await {
        Ok(b) => serde_json::from_slice::<HashMap<String, f64>>(&b).unwrap_or_default(),
        Err(_) => HashMap::new(),
    }
}

/// Merges how long this shard's successful jobs took into the pipeline's durations file, with
/// compare-and-swap writes (the shards of a run finish at about the same time). Best effort,
/// bounded; a store without conditional writes gets a plain write (last writer wins).
pub(crate) async fn record_durations(
    store: &Arc<dyn ArtifactStore>,
    pipeline: &str,
    nodes: &[NodeRecord],
) {
    let took: HashMap<String, f64> = nodes
        .iter()
        .filter(|n| n.outcome == Some(Outcome::Success))
        .filter_map(|n| {
            let at = |t: &Option<String>| {
                t.as_deref()
                    .and_then(sparkwing_contract::timefmt::parse_rfc3339_nanos)
            };
            let secs = (at(&n.finished_at)? - at(&n.started_at)?) as f64 / 1e9;
            Some((n.id.clone(), (secs * 1000.0).round() / 1000.0))
        })
        .collect();
    if took.is_empty() || sparkwing_contract::id::validate_segment(pipeline).is_err() {
        return;
    }
    let key = durations_key(pipeline);
    let merge = |old: &[u8]| {
        let mut all: HashMap<String, f64> = serde_json::from_slice(old).unwrap_or_default();
        all.extend(took.iter().map(|(k, v)| (k.clone(), *v)));
        let sorted: std::collections::BTreeMap<_, _> = all.into_iter().collect();
        serde_json::to_vec(&sorted).unwrap_or_default()
    };
    let work = async {
        for _ in 0..CAS_ATTEMPTS {
            let written = match store.get_with_etag(&key).await {
                Ok((old, etag)) => store
                    .put_if_match(&key, merge(&old), &etag)
                    .await
                    .map(|_| ()),
                Err(e) if e.is_not_found() => {
                    store.put_if_absent(&key, merge(b"{}")).await.map(|_| ())
                }
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => return Ok(()),
                Err(StoreError::PreconditionFailed(_)) => continue,
                Err(StoreError::NotSupported { .. }) => {
                    let old = store.get(&key).await.unwrap_or_default();
                    return store.put(&key, merge(&old)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::config("other shards kept changing it"))
    };
    match tokio::time::timeout(DURATIONS_BY, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!(
            "warning: record job durations in `{key}` of {}: {e}",
            store.describe()
        ),
        Err(_) => eprintln!(
            "warning: recording job durations in `{key}` of {} timed out",
            store.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_contract::record::NodeStatus;
    use sparkwing_storage::FsArtifactStore;

    fn done(id: &str, secs: u32) -> NodeRecord {
        NodeRecord {
            outcome: Some(Outcome::Success),
            started_at: Some("2026-12-03T04:00:00Z".into()),
            finished_at: Some(format!("2026-12-03T04:00:{secs:02}Z")),
            ..NodeRecord::new("run-x", id, NodeStatus::Done)
        }
    }

    #[tokio::test]
    async fn shards_finishing_at_once_all_land_their_durations() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..4u32 {
            let store = store.clone();
            tasks.spawn(async move {
                record_durations(&store, "ci", &[done(&format!("job-{i}"), i + 1)]).await
            });
        }
        while tasks.join_next().await.is_some() {}
        let d = load_durations(store.as_ref(), "ci").await;
        assert_eq!(d.len(), 4, "{d:?}");
        assert_eq!(d["job-2"], 3.0);
    }
}
