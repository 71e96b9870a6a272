//! One node's task: its attempts, each with its steps, timeout and stop handling.

use super::reuse::{Entry, Reuse};
use crate::ctx::{CtxInner, JobCtx, Upstream};
use crate::error::{BoxError, JobError};
use crate::exec::Stop;
use crate::log::{Level, Mark, NodeLog};
use crate::plan::{Job, StepKind};
use serde_json::Value;
use sparkwing_contract::record::Outcome;
use sparkwing_storage::ArtifactStore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// After a stop, how long past the kill grace a step may take before its future is dropped (its
/// process groups are then killed by their guards).
const ABANDON_SLACK: Duration = Duration::from_millis(1000);

/// What every node of a run shares.
pub(crate) struct RunEnv {
    pub run_id: String,
    pub work_dir: PathBuf,
    pub grace: Duration,
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    /// Kept results of jobs with inputs; `None` when no job declares any.
    pub reuse: Option<Arc<Reuse>>,
}

/// How a node ended.
#[derive(Debug)]
pub(crate) struct NodeResult {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub failure_reason: String,
    pub error: String,
    pub attempts: u32,
    pub outputs: BTreeMap<String, Value>,
    pub artifacts: Vec<String>,
    /// `NodeRecord::status_detail`.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Timeout,
    Cancel,
}

/// Runs every attempt of `job` until one succeeds, the retries run out, or the run is cancelled.
pub(crate) async fn run_node(
    job: Arc<Job>,
    env: Arc<RunEnv>,
    log: NodeLog,
    upstream: Upstream,
    mut cancel: watch::Receiver<Stop>,
) -> NodeResult {
    let reuse = match env.reuse.clone() {
        Some(reuse) if !job.inputs.is_empty() => input_key(reuse, &job, &upstream, &log).await,
        _ => None,
    };
    if let Some((reuse, key)) = &reuse
        && let Some(kept) = reuse.lookup(&job.id, key)
    {
        let detail = format!("reused from run {}", kept.run_id);
        log.event(
            Level::Info,
            "node_cached",
            &format!("inputs unchanged: {detail}"),
        );
        return NodeResult {
            outcome: Outcome::Cached,
            exit_code: None,
            failure_reason: String::new(),
            error: String::new(),
            attempts: 0,
            outputs: kept.outputs,
            artifacts: kept.artifacts,
            detail,
        };
    }
    let max_attempts = job.retries.saturating_add(1);
    let mut attempt = 1;
    loop {
        let (stop_tx, stop_rx) = watch::channel(Stop::Run);
        let inner = Arc::new(CtxInner {
            run_id: env.run_id.clone(),
            job_id: job.id.clone(),
            attempt,
            job_env: job.env.clone(),
            job_dir: job.dir.clone(),
            work_dir: env.work_dir.clone(),
            grace: env.grace,
            log: log.clone(),
            stop: stop_rx,
            upstream: upstream.clone(),
            outputs: Mutex::new(BTreeMap::new()),
            artifacts: env.artifacts.clone(),
            artifact_keys: Mutex::new(Vec::new()),
        });
        let (result, cause) = run_attempt(&job, &inner, &stop_tx, &mut cancel, env.grace).await;
        let take = |m: &Mutex<BTreeMap<String, Value>>| {
            std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()))
        };
        let artifacts = std::mem::take(
            &mut *inner
                .artifact_keys
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let mut res = NodeResult {
            outcome: Outcome::Success,
            exit_code: None,
            failure_reason: String::new(),
            error: String::new(),
            attempts: attempt,
            outputs: take(&inner.outputs),
            artifacts,
            detail: String::new(),
        };
        match (result, cause) {
            (Ok(()), None) => {
                if let Some((reuse, key)) = reuse {
                    keep(reuse, &job, key, &env.run_id, &res, &log).await;
                }
                return res;
            }
            (r, Some(Cause::Cancel)) => {
                res.outcome = Outcome::Cancelled;
                res.failure_reason = "cancelled".into();
                res.error = "the run was cancelled".into();
                res.exit_code = r.err().as_ref().and_then(exit_code_of);
                return res;
            }
            (r, Some(Cause::Timeout)) => {
                res.outcome = Outcome::Failed;
                res.failure_reason = "timeout".into();
                let limit = job.timeout.unwrap_or_default();
                res.error = format!(
                    "timed out after {}",
                    sparkwing_contract::human::duration(limit)
                );
                res.exit_code = r.err().as_ref().and_then(exit_code_of);
            }
            (Err(e), None) => {
                res.outcome = Outcome::Failed;
                res.exit_code = exit_code_of(&e);
                res.failure_reason = match e.downcast_ref::<JobError>() {
                    Some(JobError::Exit { .. }) => "exit-code",
                    Some(JobError::Signal { .. }) => "signal",
                    _ => "error",
                }
                .into();
                res.error = e.to_string();
            }
        }
        if attempt >= max_attempts || *cancel.borrow() != Stop::Run {
            return res;
        }
        attempt += 1;
        let why = log.masker().mask(&res.error).into_owned();
        log.event(
            Level::Warn,
            "node_retry",
            &format!(
                "attempt {} failed: {why}; retrying (attempt {attempt} of {max_attempts})",
                attempt - 1
            ),
        );
        log.lifecycle(
            Mark::Retry,
            &format!("retry {attempt}/{max_attempts} after: {why}"),
        );
    }
}

/// The job's input key, computed off the runtime's threads (it reads every matching file).
/// `None`, after a warning, when a file cannot be read: the job then runs and is not kept.
async fn input_key(
    reuse: Arc<Reuse>,
    job: &Arc<Job>,
    upstream: &Upstream,
    log: &NodeLog,
) -> Option<(Arc<Reuse>, String)> {
    let (r, j, up) = (reuse.clone(), job.clone(), upstream.clone());
    match tokio::task::spawn_blocking(move || r.key(&j, &up)).await {
        Ok(Ok(key)) => Some((reuse, key)),
        Ok(Err(e)) => {
            log.event(
                Level::Warn,
                "node_inputs",
                &format!("read the job's inputs: {e}; running it without reuse"),
            );
            None
        }
        Err(_) => None,
    }
}

/// Keeps a successful result for later runs; a failure to keep it costs only a rerun.
async fn keep(
    reuse: Arc<Reuse>,
    job: &Job,
    key: String,
    run_id: &str,
    res: &NodeResult,
    log: &NodeLog,
) {
    let entry = Entry {
        key,
        run_id: run_id.to_string(),
        outputs: res.outputs.clone(),
        artifacts: res.artifacts.clone(),
    };
    let id = job.id.clone();
    let kept = tokio::task::spawn_blocking(move || reuse.remember(&id, &entry)).await;
    if let Ok(Err(e)) = kept {
        log.event(
            Level::Warn,
            "node_inputs",
            &format!("keep the job's result for later runs: {e}"),
        );
    }
}

fn exit_code_of(e: &BoxError) -> Option<i32> {
    e.downcast_ref::<JobError>().and_then(JobError::exit_code)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the steps once. Returns the steps' result and why the attempt was stopped, if it was.
async fn run_attempt(
    job: &Job,
    inner: &Arc<CtxInner>,
    stop_tx: &watch::Sender<Stop>,
    cancel: &mut watch::Receiver<Stop>,
    grace: Duration,
) -> (Result<(), BoxError>, Option<Cause>) {
    if *cancel.borrow_and_update() != Stop::Run {
        return (Ok(()), Some(Cause::Cancel));
    }
    let steps = async {
        for step in &job.steps {
            let ctx = JobCtx::new(inner.clone(), &step.name);
            match &step.kind {
                StepKind::Cmd(cmd) => ctx.run(cmd).await?,
                StepKind::Fn(f) => f(ctx).await?,
            }
        }
        Ok::<(), BoxError>(())
    };
    tokio::pin!(steps);
    let timeout_at = job.timeout.map(|t| Instant::now() + t);
    let mut cause: Option<Cause> = None;
    let mut abandon_at: Option<Instant> = None;
    let mut cancel_open = true;
    loop {
        tokio::select! {
            r = &mut steps => return (r, cause),
            _ = sleep_until_opt(timeout_at), if cause.is_none() && timeout_at.is_some() => {
                cause = Some(Cause::Timeout);
                stop_tx.send_replace(Stop::Term);
                abandon_at = Some(Instant::now() + grace + ABANDON_SLACK);
            }
            changed = cancel.changed(), if cancel_open => {
                if changed.is_err() {
                    cancel_open = false;
                    continue;
                }
                let level = *cancel.borrow_and_update();
                if level == Stop::Run {
                    continue;
                }
                cause.get_or_insert(Cause::Cancel);
                // Escalate only: a Term after a Kill must not soften it.
                if *stop_tx.borrow() != Stop::Kill {
                    stop_tx.send_replace(level);
                }
                let slack = if level == Stop::Kill { ABANDON_SLACK } else { grace + ABANDON_SLACK };
                let at = Instant::now() + slack;
                abandon_at = Some(abandon_at.map_or(at, |a| a.min(at)));
            }
            _ = sleep_until_opt(abandon_at), if abandon_at.is_some() => {
                let what = match cause {
                    Some(Cause::Timeout) => "the timeout",
                    _ => "the cancellation",
                };
                return (
                    Err(format!("the step did not stop after {what}; abandoned it").into()),
                    cause,
                );
            }
        }
    }
}
