//! What a running job sees: its identity, logging, commands, outputs, artifacts.

use crate::error::JobError;
use crate::exec::{self, Spawn, Stop};
use crate::log::{Level, NodeLog};
use crate::plan::Cmd;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sparkwing_storage::{ArtifactStore, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Outputs of the jobs this job `needs`, by job id.
///
/// ```
/// # fn demo(up: &sparkwing::Upstream) -> Result<(), sparkwing::JobError> {
/// let version: String = up.get("build", "version")?;
/// let changed = up.try_get::<bool>("detect", "docs_changed").unwrap_or(true);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    outputs: Arc<HashMap<String, Arc<BTreeMap<String, Value>>>>,
}

impl Upstream {
    pub(crate) fn new(outputs: HashMap<String, Arc<BTreeMap<String, Value>>>) -> Upstream {
        Upstream {
            outputs: Arc::new(outputs),
        }
    }

    /// Output `key` of job `job`, decoded as `T`.
    pub fn get<T: DeserializeOwned>(&self, job: &str, key: &str) -> Result<T, JobError> {
        let value = self.raw(job, key)?;
        T::deserialize(value).map_err(|source| JobError::DecodeOutput {
            job: job.into(),
            key: key.into(),
            source,
        })
    }

    /// Every upstream job's outputs, ordered by job id.
    pub(crate) fn sorted(&self) -> Vec<(&String, &BTreeMap<String, Value>)> {
        let mut all: Vec<_> = self.outputs.iter().map(|(k, v)| (k, &**v)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Like [`Upstream::get`], `None` for any problem (absent, not a dependency, wrong type).
    pub fn try_get<T: DeserializeOwned>(&self, job: &str, key: &str) -> Option<T> {
        self.get(job, key).ok()
    }

    /// The raw JSON value of output `key` of job `job`.
    pub fn raw(&self, job: &str, key: &str) -> Result<&Value, JobError> {
        let outputs = self
            .outputs
            .get(job)
            .ok_or_else(|| JobError::NotUpstream { job: job.into() })?;
        outputs.get(key).ok_or_else(|| JobError::MissingOutput {
            job: job.into(),
            key: key.into(),
        })
    }
}

pub(crate) struct CtxInner {
    pub run_id: String,
    pub job_id: String,
    pub attempt: u32,
    pub job_env: Vec<(String, String)>,
    pub job_dir: Option<PathBuf>,
    pub work_dir: PathBuf,
    pub grace: Duration,
    pub log: NodeLog,
    pub stop: watch::Receiver<Stop>,
    pub upstream: Upstream,
    pub outputs: Mutex<BTreeMap<String, Value>>,
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    pub artifact_keys: Mutex<Vec<String>>,
}

/// The handle a step function gets: cheap to clone, valid for one attempt of one job.
///
/// ```no_run
/// use sparkwing::prelude::*;
/// let mut plan = Plan::new();
/// plan.job("package").step_fn("tarball", |ctx| async move {
///     ctx.info(format!("attempt {}", ctx.attempt()));
///     ctx.run(&Cmd::sh("tar czf app.tgz dist")).await?;
///     ctx.save_artifact_file("app/app.tgz", "app.tgz").await?;
///     let sha = ctx.capture(&Cmd::new("git").args(["rev-parse", "HEAD"])).await?;
///     ctx.set_output("sha", &sha)?;
///     Ok(())
/// });
/// ```
#[derive(Clone)]
pub struct JobCtx {
    inner: Arc<CtxInner>,
    step: Arc<str>,
}

impl std::fmt::Debug for JobCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCtx")
            .field("run_id", &self.inner.run_id)
            .field("job", &self.inner.job_id)
            .field("attempt", &self.inner.attempt)
            .field("step", &self.step)
            .finish()
    }
}

impl JobCtx {
    pub(crate) fn new(inner: Arc<CtxInner>, step: &str) -> JobCtx {
        JobCtx {
            inner,
            step: step.into(),
        }
    }

    /// The run id (`run-YYYYMMDD-HHMMSS-<hex>`).
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// This job's id.
    pub fn job_id(&self) -> &str {
        &self.inner.job_id
    }

    /// The current step's name.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// Which attempt this is: 1 for the first run, 2 for the first retry, ….
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The repository root, where commands run by default.
    pub fn work_dir(&self) -> &Path {
        &self.inner.work_dir
    }

    /// True once the job was asked to stop (timeout or cancelled run). Long-running step code
    /// should return when it sees this.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow() != Stop::Run
    }

    /// Writes an info line to the job's log.
    pub fn info(&self, msg: impl AsRef<str>) {
        self.log(Level::Info, msg.as_ref());
    }

    /// Writes a warning to the job's log.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.log(Level::Warn, msg.as_ref());
    }

    /// Writes an error line to the job's log (it does not fail the job; return an error for that).
    pub fn error(&self, msg: impl AsRef<str>) {
        self.log(Level::Error, msg.as_ref());
    }

    /// Writes a line at `level`.
    pub fn log(&self, level: Level, msg: &str) {
        for line in msg.lines() {
            self.inner.log.record(level, &self.step, "", line, None);
        }
    }

    /// Masks `value` as `***` in every log line, record and console line from now on.
    pub fn add_secret(&self, value: &str) {
        self.inner.log.masker().add(value);
    }

    /// Publishes output `key` for jobs that need this one (and for the run record).
    pub fn set_output<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), JobError> {
        let v = serde_json::to_value(value).map_err(|source| JobError::EncodeOutput {
            key: key.into(),
            source,
        })?;
        self.inner
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.into(), v);
        Ok(())
    }

    /// Output `key` of job `job` (which this job must `need`), decoded as `T`.
    pub fn output<T: DeserializeOwned>(&self, job: &str, key: &str) -> Result<T, JobError> {
        self.inner.upstream.get(job, key)
    }

    /// Outputs of the jobs this job needs.
    pub fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    fn spawn_spec<'a>(&'a self, cmd: &'a Cmd) -> Spawn<'a> {
        Spawn {
            cmd,
            job_env: &self.inner.job_env,
            job_dir: self.inner.job_dir.as_deref(),
            work_dir: &self.inner.work_dir,
            grace: self.inner.grace,
        }
    }

    /// Runs `cmd`, its output going to the job's log. A non-zero exit is an error.
    pub async fn run(&self, cmd: &Cmd) -> Result<(), JobError> {
        let mut stop = self.inner.stop.clone();
        exec::run(
            self.spawn_spec(cmd),
            &self.inner.log,
            &self.step,
            &mut stop,
            false,
        )
        .await
        .map(|_| ())
    }

    /// Runs a bash line (see [`Cmd::sh`]).
    pub async fn sh(&self, line: &str) -> Result<(), JobError> {
        self.run(&Cmd::sh(line)).await
    }

    /// Runs `cmd` and returns its stdout without the trailing newline; stderr goes to the log.
    pub async fn capture(&self, cmd: &Cmd) -> Result<String, JobError> {
        let mut stop = self.inner.stop.clone();
        let mut out = exec::run(
            self.spawn_spec(cmd),
            &self.inner.log,
            &self.step,
            &mut stop,
            true,
        )
        .await?;
        while out.ends_with('\n') || out.ends_with('\r') {
            out.pop();
        }
        Ok(out)
    }

    fn store(&self, op: &'static str, key: &str) -> Result<&Arc<dyn ArtifactStore>, JobError> {
        // Refused before any I/O, whatever the store would do with it.
        sparkwing_contract::id::validate_key(key).map_err(|e| JobError::Artifact {
            op,
            key: key.escape_debug().to_string(),
            source: Box::new(StoreError::BadId(e)),
        })?;
        if op == "save"
            && let Some(ns) = sparkwing_contract::id::reserved_namespace(key)
        {
            return Err(JobError::Artifact {
                op,
                key: key.escape_debug().to_string(),
                source: Box::new(StoreError::config(format!(
                    "`{ns}/` of the cache surface is reserved for sparkwing (pipeline binaries and run records); choose a key outside `bin/` and `runs/`"
                ))),
            });
        }
        self.inner
            .artifacts
            .as_ref()
            .ok_or_else(|| JobError::Artifact {
                op,
                key: key.into(),
                source: Box::new(StoreError::config(
                    "no artifact store is configured for this run",
                )),
            })
    }

    fn note_artifact(&self, key: &str) {
        let mut keys = self
            .inner
            .artifact_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }

    /// Stores `bytes` under `key` in the run's artifact store (the `cache` surface) and lists the
    /// key on this job's record.
    pub async fn save_artifact(
        &self,
        key: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<(), JobError> {
        let store = self.store("save", key)?;
        store
            .put(key, bytes.into())
            .await
            .map_err(|source| JobError::Artifact {
                op: "save",
                key: key.into(),
                source: Box::new(source),
            })?;
        self.note_artifact(key);
        Ok(())
    }

    /// Streams the file at `path` (relative to the repository root) into artifact `key`.
    pub async fn save_artifact_file(
        &self,
        key: &str,
        path: impl AsRef<Path>,
    ) -> Result<u64, JobError> {
        let store = self.store("save", key)?;
        let path = self.inner.work_dir.join(path);
        let mut file =
            tokio::fs::File::open(&path)
                .await
                .map_err(|source| JobError::ArtifactFile {
                    op: "open",
                    path: path.display().to_string(),
                    source,
                })?;
        let n = store
            .put_from_reader(key, &mut file)
            .await
            .map_err(|source| JobError::Artifact {
                op: "save",
                key: key.into(),
                source: Box::new(source),
            })?;
        self.note_artifact(key);
        Ok(n)
    }

    /// The bytes of artifact `key`.
    pub async fn load_artifact(&self, key: &str) -> Result<Vec<u8>, JobError> {
        let store = self.store("load", key)?;
        store.get(key).await.map_err(|source| JobError::Artifact {
            op: "load",
            key: key.into(),
            source: Box::new(source),
        })
    }

    /// Streams artifact `key` into the file at `path` (relative to the repository root),
    /// creating its directory.
    pub async fn load_artifact_file(
        &self,
        key: &str,
        path: impl AsRef<Path>,
    ) -> Result<u64, JobError> {
        let store = self.store("load", key)?;
        let path = self.inner.work_dir.join(path);
        let file_err = |op, source| JobError::ArtifactFile {
            op,
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| file_err("create directory for", e))?;
        }
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| file_err("create", e))?;
        store
            .get_to_writer(key, &mut file)
            .await
            .map_err(|source| JobError::Artifact {
                op: "load",
                key: key.into(),
                source: Box::new(source),
            })
    }
}
