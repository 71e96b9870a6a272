//! Which stores `sparkwing runs` reads for a profile, and the command-line face of the run
//! reader (`crate::reader`), which the dashboard shares.

use crate::error::CliError;
use crate::reader::{Runs, Wanted};
use sparkwing_contract::{NodeRecord, RunRecord, RunStatus};
use sparkwing_storage::LogStore;
use std::path::PathBuf;
use std::sync::Arc;

/// A filter for listing.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub pipeline: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: Option<usize>,
}

impl Runs {
    /// Runs passing `filter`, newest first.
    pub async fn list_runs(&self, filter: &ListFilter) -> Result<Vec<RunRecord>, CliError> {
        let wanted = Wanted {
            pipelines: filter.pipeline.iter().cloned().collect(),
            statuses: filter.status.into_iter().collect(),
            since: None,
            limit: filter.limit.unwrap_or(usize::MAX),
        };
        let runs = self
            .list(&wanted)
            .await
            .map_err(|e| CliError::failure(e.to_string()))?;
        Ok(runs
            .iter()
            .filter_map(|row| match row {
                crate::reader::Row::Run(r) => Some(RunRecord::clone(r)),
                crate::reader::Row::TooLarge(t) => {
                    eprintln!("warning: {t}");
                    None
                }
            })
            .collect())
    }

    /// One run and its nodes; `None` if unknown.
    pub async fn get_run(
        &self,
        id: &str,
    ) -> Result<Option<(RunRecord, Vec<NodeRecord>)>, CliError> {
        let state = self
            .get(id)
            .await
            .map_err(|e| CliError::failure(e.to_string()).hinted(&e))?;
        Ok(state.map(|s| (RunRecord::clone(&s.run), s.nodes.as_ref().clone())))
    }

    /// Resolves `latest` and bare ids (without `run-`) to a run id.
    pub async fn resolve_id(&self, given: &str) -> Result<String, CliError> {
        if given == "latest" {
            let runs = self
                .list_runs(&ListFilter {
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

/// Where a command reads from.
pub struct Sources {
    pub runs: Runs,
    pub logs: Arc<dyn LogStore>,
    /// The log store's directory when it is one on this machine (file events can be watched).
    pub log_root: Option<PathBuf>,
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
        .hinted(&e)
    })?;
    let log_root = match &profile.logs {
        Surface::Filesystem { path } => Some(path.clone()),
        _ => None,
    };
    Ok(Sources {
        runs: open_runs(profile, explicit, home)?,
        logs,
        log_root,
        home: home.clone(),
    })
}

/// Where runs are read for a profile: its state surface when that is a bucket; the state dumps on
/// its cache surface when the profile was named (`explicit`) and that is a bucket; else SQLite.
pub fn open_runs(
    profile: &sparkwing_config::Resolved,
    explicit: bool,
    home: &sparkwing_contract::Home,
) -> Result<Runs, CliError> {
    use sparkwing_config::Surface;
    let open_bucket = |surface: &Surface| {
        let spec = surface.spec_string();
        sparkwing_storage::open_artifact_store(&spec)
            .map(Runs::bucket)
            .map_err(|e| {
                CliError::failure(format!("open the artifact store `{spec}`: {e}")).hinted(&e)
            })
    };
    let runs = match (&profile.state, &profile.cache) {
        // Runs whose state lives in a bucket are read from there.
        (Surface::S3 { .. }, _) => open_bucket(&profile.state)?,
        // A profile named on the command line whose cache is a bucket: read the state dumps CI
        // machines left there, so a laptop sees what they recorded.
        (_, Surface::S3 { .. }) if explicit => open_bucket(&profile.cache)?,
        _ => Runs::local(state_db_path(profile, home)),
    };
    Ok(runs)
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
