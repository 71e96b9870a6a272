//! The one run reader of `sparkwing runs` and the dashboard, over the two places runs come from:
//! the local SQLite record, or `runs/<id>/state.ndjson` dumps in an artifact store (a bucket a CI
//! machine wrote to).

pub mod bucket;

pub use bucket::{RunState, TooLarge, Wanted};

use bucket::BucketRuns;
use sparkwing_contract::{NodeRecord, RunRecord};
use sparkwing_records::{Reader, RunFilter};
use sparkwing_storage::ArtifactStore;
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
        // Boxed like the SQLite error: it travels through every async read.
        #[source]
        source: Box<sparkwing_storage::StoreError>,
    },
    /// A run whose state dump is over the reader's cap.
    #[error(transparent)]
    TooLarge(TooLarge),
}

impl sparkwing_contract::hint::Hinted for RunsError {
    fn hint(&self) -> Option<String> {
        match self {
            RunsError::TooLarge(t) => t.hint(),
            _ => None,
        }
    }
}

/// A run as a listing shows it.
#[derive(Debug, Clone)]
pub enum Row {
    Run(Arc<RunRecord>),
    /// A run in a bucket whose state dump is too large to read: listed with the reason.
    TooLarge(TooLarge),
}

/// Where runs are read from, and the reader over it.
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
    /// Runs in the SQLite record at `db` (absent: none yet).
    pub fn local(db: PathBuf) -> Runs {
        Runs::Local { db }
    }

    /// Runs in the state dumps under `runs/` of `store`; nothing is read until asked.
    pub fn bucket(store: Arc<dyn ArtifactStore>) -> Runs {
        Runs::Bucket {
            store: store.describe(),
            index: BucketRuns::new(store),
        }
    }

    /// Whether runs come from this machine's SQLite record.
    pub fn is_local(&self) -> bool {
        matches!(self, Runs::Local { .. })
    }

    /// The SQLite record's path, when runs come from this machine.
    pub fn local_db(&self) -> Option<&std::path::Path> {
        match self {
            Runs::Local { db } => Some(db),
            Runs::Bucket { .. } => None,
        }
    }

    /// `local` over SQLite, `bucket` over state dumps.
    pub fn mode(&self) -> &'static str {
        match self {
            Runs::Local { .. } => "local",
            Runs::Bucket { .. } => "bucket",
        }
    }

    /// Spec string of where runs come from.
    pub fn spec(&self) -> String {
        match self {
            Runs::Local { db } => format!("sqlite:{}", db.display()),
            Runs::Bucket { store, .. } => store.clone(),
        }
    }

    /// Where runs come from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Runs::Local { db } => format!("`{}`", db.display()),
            Runs::Bucket { store, .. } => format!("`{store}`"),
        }
    }

    /// Runs passing `wanted`, newest first.
    pub async fn list(&self, wanted: &Wanted) -> Result<Vec<Row>, RunsError> {
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
                        .map(|r| Row::Run(Arc::new(r)))
                        .collect())
                })
                .await
            }
            Runs::Bucket { index, store } => Ok(index
                .list(wanted)
                .await
                .map_err(|source| RunsError::Bucket {
                    store: store.clone(),
                    source: Box::new(source),
                })?
                .into_iter()
                .map(|l| match l {
                    bucket::Listed::Run(s) => Row::Run(s.run),
                    bucket::Listed::TooLarge(t) => Row::TooLarge(t),
                })
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
            Runs::Bucket { index, store } => index.get(id).await.map_err(|e| match e {
                bucket::ReadError::Store(source) => RunsError::Bucket {
                    store: store.clone(),
                    source: Box::new(source),
                },
                bucket::ReadError::TooLarge(t) => RunsError::TooLarge(t),
            }),
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
