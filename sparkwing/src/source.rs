//! Where readers find runs: the local SQLite record, or `runs/<id>/state.ndjson` dumps in an
//! artifact store (a bucket a CI machine wrote to). Shared by `sparkwing runs` and the dashboard.

use crate::error::CliError;
use sparkwing_contract::{NodeRecord, RunRecord, RunStatus, StateDump};
use sparkwing_records::{Reader, RunFilter};
use sparkwing_storage::{ArtifactStore, LogStore};
use std::path::PathBuf;
use std::sync::Arc;

/// Run records come from here.
pub enum RunSource {
    /// `$SPARKWING_HOME/state.db` (or the profile's sqlite path).
    Local { db: PathBuf },
    /// State dumps under `runs/` in an artifact store.
    Bucket { store: Arc<dyn ArtifactStore> },
}

/// A filter for listing.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub pipeline: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: Option<usize>,
}

impl RunSource {
    /// Human description for messages.
    pub fn describe(&self) -> String {
        match self {
            RunSource::Local { db } => format!("`{}`", db.display()),
            RunSource::Bucket { store } => format!("`{}`", store.describe()),
        }
    }

    /// Runs, newest first. Unreadable bucket dumps are skipped with a warning on stderr.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<RunRecord>, CliError> {
        match self {
            RunSource::Local { db } => {
                if !db.exists() {
                    return Ok(Vec::new());
                }
                let reader = open_reader(db)?;
                reader
                    .list_runs(&RunFilter {
                        pipeline: filter.pipeline.clone(),
                        status: filter.status,
                        limit: filter.limit,
                    })
                    .map_err(|e| CliError::failure(format!("read run records: {e}")))
            }
            RunSource::Bucket { store } => {
                let keys = store.list("runs/").await.map_err(|e| {
                    CliError::failure(format!("list runs in `{}`: {e}", store.describe()))
                })?;
                let mut runs = Vec::new();
                for key in keys.iter().filter(|k| is_state_key(k)) {
                    let Some((run, _)) = load_dump(store.as_ref(), key).await else {
                        continue;
                    };
                    if filter.pipeline.as_ref().is_some_and(|p| *p != run.pipeline) {
                        continue;
                    }
                    if filter.status.is_some_and(|s| s != run.status) {
                        continue;
                    }
                    runs.push(run);
                }
                runs.sort_by(|a, b| {
                    b.started_at
                        .cmp(&a.started_at)
                        .then_with(|| b.id.cmp(&a.id))
                });
                if let Some(limit) = filter.limit {
                    runs.truncate(limit);
                }
                Ok(runs)
            }
        }
    }

    /// One run and its nodes; `None` if unknown.
    pub async fn get(&self, id: &str) -> Result<Option<(RunRecord, Vec<NodeRecord>)>, CliError> {
        match self {
            RunSource::Local { db } => {
                if !db.exists() {
                    return Ok(None);
                }
                let reader = open_reader(db)?;
                let Some(run) = reader
                    .get_run(id)
                    .map_err(|e| CliError::failure(format!("read run records: {e}")))?
                else {
                    return Ok(None);
                };
                let nodes = reader
                    .list_nodes(id)
                    .map_err(|e| CliError::failure(format!("read node records: {e}")))?;
                Ok(Some((run, nodes)))
            }
            RunSource::Bucket { store } => {
                let key = sparkwing_contract::surfaces::state_key(id);
                match store.get(&key).await {
                    Ok(bytes) => Ok(parse_dump(&key, &bytes)),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(CliError::failure(format!(
                        "read `{key}` from `{}`: {e}",
                        store.describe()
                    ))),
                }
            }
        }
    }

    /// Resolves `latest` and bare ids (without `run-`) to a run id.
    pub async fn resolve_id(&self, given: &str) -> Result<String, CliError> {
        if given == "latest" {
            let runs = self
                .list(&ListFilter {
                    limit: Some(1),
                    ..Default::default()
                })
                .await?;
            return runs.into_iter().next().map(|r| r.id).ok_or_else(|| {
                CliError::failure(format!("no runs recorded in {}", self.describe())).with_hint(
                    "run a pipeline with `sparkwing run <pipeline>`, or pass `--profile NAME` to read a bucket",
                )
            });
        }
        sparkwing_contract::RunId::parse(given)
            .map(|id| id.to_string())
            .map_err(|e| CliError::usage(e.to_string()).with_hint("run ids look like `run-20261127-141500-1a2b3c4d`; `sparkwing runs list` shows them"))
    }
}

fn open_reader(db: &std::path::Path) -> Result<Reader, CliError> {
    Reader::open(db).map_err(|e| CliError::failure(format!("open run records: {e}")))
}

/// `runs/<id>/state.ndjson` with a single-segment id.
pub fn is_state_key(key: &str) -> bool {
    sparkwing_contract::surfaces::run_of_state_key(key).is_some()
}

async fn load_dump(store: &dyn ArtifactStore, key: &str) -> Option<(RunRecord, Vec<NodeRecord>)> {
    match store.get(key).await {
        Ok(bytes) => parse_dump(key, &bytes),
        Err(e) => {
            eprintln!("warning: skipping `{key}`: {e}");
            None
        }
    }
}

/// Parses a dump; bad lines are reported and skipped, a dump without a run record is skipped.
pub fn parse_dump(key: &str, bytes: &[u8]) -> Option<(RunRecord, Vec<NodeRecord>)> {
    let text = String::from_utf8_lossy(bytes);
    let dump = StateDump::parse(&text);
    for (line, why) in &dump.bad_lines {
        eprintln!("warning: `{key}` line {line} skipped: {why}");
    }
    match dump.run {
        Some(run) => Some((run, dump.nodes)),
        None => {
            eprintln!("warning: skipping `{key}`: no run record in it");
            None
        }
    }
}

/// Where a command reads from.
pub struct Sources {
    pub runs: RunSource,
    pub logs: Arc<dyn LogStore>,
    /// `$SPARKWING_HOME`: where local runs keep their active-run markers.
    pub home: sparkwing_contract::Home,
}

/// Readers' sources for `--profile` (or the project default / built-in defaults): runs from the
/// profile's state surface when it is SQLite, else from the state dumps on its cache surface.
pub fn open(
    profile: &sparkwing_config::Resolved,
    explicit: bool,
    home: &sparkwing_contract::Home,
) -> Result<Sources, CliError> {
    use sparkwing_config::Surface;
    if matches!(profile.logs, Surface::Stdout) {
        return Err(CliError::usage(format!(
            "profile `{}` sends logs to stdout, so there are no stored logs to read",
            profile.name
        ))
        .with_hint("pick a profile whose `logs:` surface is `filesystem` or `s3`"));
    }
    let logs = sparkwing_storage::open_log_store(&profile.logs.spec_string()).map_err(|e| {
        CliError::failure(format!(
            "open the log store `{}`: {e}",
            profile.logs.spec_string()
        ))
    })?;
    let open_bucket = |surface: &Surface| {
        let spec = surface.spec_string();
        sparkwing_storage::open_artifact_store(&spec)
            .map(|store| RunSource::Bucket { store })
            .map_err(|e| CliError::failure(format!("open the artifact store `{spec}`: {e}")))
    };
    let runs = match (&profile.state, &profile.cache) {
        // Runs whose state lives in a bucket are read from there.
        (Surface::S3 { .. }, _) => open_bucket(&profile.state)?,
        // A profile named on the command line whose cache is a bucket: read the state dumps CI
        // machines left there, so a laptop sees what they recorded.
        (_, Surface::S3 { .. }) if explicit => open_bucket(&profile.cache)?,
        _ => RunSource::Local {
            db: state_db_path(profile, home),
        },
    };
    Ok(Sources {
        runs,
        logs,
        home: home.clone(),
    })
}

/// The SQLite file a profile's state surface names (`$SPARKWING_HOME/state.db` by default).
pub fn state_db_path(
    profile: &sparkwing_config::Resolved,
    home: &sparkwing_contract::Home,
) -> PathBuf {
    sparkwing_contract::surfaces::state_db(&profile.state.spec_string(), home)
}

/// Where `runs/<runID>/state.ndjson` dumps live for a profile: the state surface when it is a
/// bucket, else the cache surface (the pipeline runtime streams them by the same rule).
pub fn state_dump_surface(profile: &sparkwing_config::Resolved) -> &sparkwing_config::Surface {
    let state = profile.state.spec_string();
    if sparkwing_contract::surfaces::state_dump_spec(&state, &profile.cache.spec_string()) == state
    {
        &profile.state
    } else {
        &profile.cache
    }
}
