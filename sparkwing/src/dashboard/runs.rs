//! One interface over the two places runs come from: local SQLite, or bucket state dumps.

use super::bucket::{BucketRuns, RunState, Wanted};
use sparkwing_contract::{NodeRecord, RunRecord};
use sparkwing_records::{Reader, RunFilter};
use std::path::PathBuf;
use std::sync::Arc;

/// Why runs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("read run records in `{db}`: {source}")]
    Local {
        db: String,
        // Boxed: the SQLite error is large and this travels through every async read.
        #[source]
        source: Box<sparkwing_records::RecordsError>,
    },
    #[error("read runs from `{store}`: {source}")]
    Bucket {
        store: String,
        #[source]
        source: sparkwing_storage::StoreError,
    },
}

/// The run source of a dashboard.
#[derive(Debug, Clone)]
pub enum Runs {
    Local {
        db: PathBuf,
    },
    Bucket {
        index: Arc<BucketRuns>,
        store: String,
    },
}

impl Runs {
    /// Runs passing `wanted`, newest first.
    pub async fn list(&self, wanted: &Wanted) -> Result<Vec<Arc<RunRecord>>, RunsError> {
        match self {
            Runs::Local { db } => {
                let db = db.clone();
                let wanted = wanted.clone();
                blocking(move || {
                    if !db.exists() {
                        return Ok(Vec::new());
                    }
                    let reader = Reader::open(&db).map_err(|source| local(&db, source))?;
                    // Push what SQLite can filter down; the rest is filtered here.
                    let simple = wanted.since.is_none()
                        && wanted.pipelines.len() <= 1
                        && wanted.statuses.len() <= 1;
                    let filter = RunFilter {
                        pipeline: wanted
                            .pipelines
                            .first()
                            .filter(|_| wanted.pipelines.len() == 1)
                            .cloned(),
                        status: wanted
                            .statuses
                            .first()
                            .copied()
                            .filter(|_| wanted.statuses.len() == 1),
                        limit: simple.then_some(wanted.limit),
                    };
                    let runs = reader
                        .list_runs(&filter)
                        .map_err(|source| local(&db, source))?;
                    Ok(runs
                        .into_iter()
                        .filter(|r| wanted.matches(r))
                        .take(wanted.limit)
                        .map(Arc::new)
                        .collect())
                })
                .await
            }
            Runs::Bucket { index, store } => Ok(index
                .list(wanted)
                .await
                .map_err(|source| RunsError::Bucket {
                    store: store.clone(),
                    source,
                })?
                .into_iter()
                .map(|s| s.run)
                .collect()),
        }
    }

    /// One run and its nodes; `None` when unknown.
    pub async fn get(&self, id: &str) -> Result<Option<RunState>, RunsError> {
        match self {
            Runs::Local { db } => {
                let db = db.clone();
                let id = id.to_string();
                blocking(move || {
                    if !db.exists() {
                        return Ok(None);
                    }
                    let reader = Reader::open(&db).map_err(|source| local(&db, source))?;
                    let Some(run) = reader.get_run(&id).map_err(|source| local(&db, source))?
                    else {
                        return Ok(None);
                    };
                    let nodes: Vec<NodeRecord> = reader
                        .list_nodes(&id)
                        .map_err(|source| local(&db, source))?;
                    Ok(Some(RunState {
                        run: Arc::new(run),
                        nodes: Arc::new(nodes),
                    }))
                })
                .await
            }
            Runs::Bucket { index, store } => {
                index.get(id).await.map_err(|source| RunsError::Bucket {
                    store: store.clone(),
                    source,
                })
            }
        }
    }
}

fn local(db: &std::path::Path, source: sparkwing_records::RecordsError) -> RunsError {
    RunsError::Local {
        db: db.display().to_string(),
        source: Box::new(source),
    }
}

/// SQLite reads block: keep them off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RunsError> + Send + 'static,
) -> Result<T, RunsError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
