//! The dispatcher: one owner of run state, a single `select!` over node completions, signals and
//! timers. Nodes run as tokio tasks and report back through their join handles.

mod node;
mod remote;
mod reuse;

pub(crate) use node::RunEnv;
pub(crate) use remote::Shards;
pub(crate) use reuse::Reuse;

use crate::ctx::Upstream;
use crate::exec::Stop;
use crate::log::{Level, LogHub, Mark};
use crate::plan::Job;
use crate::plan::ValidPlan;
use node::{NodeResult, run_node};
use sparkwing_contract::record::{NodeRecord, NodeStatus, Outcome};
use sparkwing_contract::timefmt::now_rfc3339;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long past the kill grace the dispatcher waits for stopped nodes before aborting them.
const FORCE_SLACK: Duration = Duration::from_millis(1500);
/// A signal this soon after the one that started the cancellation is the same request delivered
/// twice (a CI runner signals the process group and the supervisor forwards it too), so it does
/// not escalate.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(1);

/// Receives node records as they change (the SQLite writer, later the state stream).
pub(crate) trait RecordSink: Send + Sync {
    fn node(&self, rec: &NodeRecord);
}

/// The end state of a dispatch.
pub(crate) struct Dispatched {
    pub nodes: Vec<NodeRecord>,
    /// The name of the first signal that cancelled the run.
    pub cancelled_by: Option<&'static str>,
    /// When that signal arrived: the run's remaining work (flushing logs, the final records) is
    /// timed from it.
    pub cancelled_at: Option<Instant>,
}

struct Running {
    stop: watch::Sender<Stop>,
    started: Instant,
    log: crate::log::NodeLog,
}

struct State<'a> {
    jobs: Vec<Arc<Job>>,
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    recs: Vec<NodeRecord>,
    remaining: Vec<usize>,
    outputs: Vec<Arc<std::collections::BTreeMap<String, serde_json::Value>>>,
    ready: VecDeque<usize>,
    running: HashMap<usize, Running>,
    task_ids: HashMap<tokio::task::Id, usize>,
    tasks: JoinSet<NodeResult>,
    hub: &'a Arc<LogHub>,
    sink: &'a dyn RecordSink,
    env: Arc<RunEnv>,
    cancelled_by: Option<&'static str>,
    /// Whether each job runs in this process (all of them unless the run is sharded).
    local: Vec<bool>,
}

/// The initial (pending) record of every node, in plan order.
pub(crate) fn pending_records(plan: &ValidPlan, run_id: &str) -> Vec<NodeRecord> {
    plan.jobs
        .iter()
        .zip(&plan.deps)
        .map(|(job, deps)| NodeRecord {
            deps: deps.iter().map(|&d| plan.jobs[d].id.clone()).collect(),
            ..NodeRecord::new(run_id, job.id.clone(), NodeStatus::Pending)
        })
        .collect()
}

async fn recv_opt(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the plan to the end under `workers` concurrent nodes. In a sharded run only this
/// shard's jobs run; the jobs they need from other shards are waited for in the store, and
/// `Dispatched::nodes` holds this shard's jobs only.
pub(crate) async fn dispatch(
    plan: ValidPlan,
    recs: Vec<NodeRecord>,
    workers: usize,
    hub: &Arc<LogHub>,
    sink: &dyn RecordSink,
    env: Arc<RunEnv>,
    shards: Option<Shards>,
) -> Dispatched {
    let n = plan.jobs.len();
    let local: Vec<bool> = match &shards {
        Some(s) => s.of.iter().map(|&o| o == s.me).collect(),
        None => vec![true; n],
    };
    let remaining: Vec<usize> = plan.deps.iter().map(Vec::len).collect();
    let ready = (0..n).filter(|&i| remaining[i] == 0 && local[i]).collect();
    let (remote_tx, mut remote_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watchers = JoinSet::new();
    if let Some(sh) = &shards {
        // Each job of another shard that a job here needs, with the shortest timeout among
        // those that need it; one poller per shard.
        let mut by_shard: std::collections::BTreeMap<u32, Vec<remote::Wanted>> = Default::default();
        for d in 0..n {
            if local[d] {
                continue;
            }
            let needers: Vec<usize> = plan.dependents[d]
                .iter()
                .copied()
                .filter(|&k| local[k])
                .collect();
            if needers.is_empty() {
                continue;
            }
            let deadline = needers
                .iter()
                .filter_map(|&k| plan.jobs[k].timeout)
                .min()
                .map(|t| Instant::now() + t);
            by_shard.entry(sh.of[d]).or_default().push(remote::Wanted {
                index: d,
                id: plan.jobs[d].id.clone(),
                deadline,
            });
        }
        for (shard, wanted) in by_shard {
            watchers.spawn(remote::watch_shard(
                sh.store.clone(),
                env.run_id.clone(),
                shard,
                wanted,
                sh.heartbeat,
                remote_tx.clone(),
            ));
        }
    }
    drop(remote_tx);
    let mut st = State {
        jobs: plan.jobs.into_iter().map(Arc::new).collect(),
        deps: plan.deps,
        dependents: plan.dependents,
        recs,
        remaining,
        outputs: vec![Arc::default(); n],
        ready,
        running: HashMap::new(),
        task_ids: HashMap::new(),
        tasks: JoinSet::new(),
        hub,
        sink,
        env,
        cancelled_by: None,
        local,
    };
    // Installing handlers replaces the default "die on SIGINT/SIGTERM": from here on a signal
    // means "stop the nodes and write the records", which is what the dispatcher does.
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let grace = st.env.grace;
    let mut signals = 0u32;
    let mut last_signal: Option<Instant> = None;
    let mut first_signal: Option<Instant> = None;
    let mut force_at: Option<Instant> = None;
    let mut counted = |name: &str| -> bool {
        let now = Instant::now();
        if last_signal.is_some_and(|t| now.duration_since(t) < DUPLICATE_WINDOW) {
            eprintln!("sparkwing: received {name} again within a second: already stopping");
            return false;
        }
        last_signal = Some(now);
        first_signal.get_or_insert(now);
        true
    };

    // A line per held-back running job now and then, so a long job's CI log shows it is alive.
    let progress_every = hub.console.progress_every();
    let mut progress_at = progress_every.map(|every| Instant::now() + every);
    loop {
        if signals == 0 {
            while st.running.len() < workers {
                let Some(i) = st.ready.pop_front() else { break };
                st.start(i);
            }
        }
        if st.running.is_empty()
            && (signals > 0 || (st.ready.is_empty() && !st.waits_on_other_shards()))
        {
            break;
        }
        hub.console.flush();
        tokio::select! {
            Some(joined) = st.tasks.join_next_with_id() => st.joined(joined, signals > 0),
            Some(done) = remote_rx.recv() => st.remote_done(done, signals > 0),
            _ = sleep_until_opt(progress_at), if progress_at.is_some() => {
                hub.console.progress();
                progress_at = progress_every.map(|every| Instant::now() + every);
            }
            _ = recv_opt(&mut sigint) => {
                if counted("SIGINT") {
                    signals += 1;
                    force_at = st.on_signal("SIGINT", signals, grace, force_at);
                }
            }
            _ = recv_opt(&mut sigterm) => {
                if counted("SIGTERM") {
                    signals += 1;
                    force_at = st.on_signal("SIGTERM", signals, grace, force_at);
                }
            }
            _ = sleep_until_opt(force_at), if force_at.is_some() => {
                force_at = None;
                st.tasks.abort_all();
            }
        }
    }

    watchers.abort_all();
    // Whatever never started: the run was cancelled before it could.
    for i in 0..n {
        if st.local[i] && st.recs[i].status != NodeStatus::Done {
            st.finish_unstarted(
                i,
                Outcome::Cancelled,
                "cancelled",
                "the run was cancelled before this job started",
            );
        }
    }
    hub.console.flush();
    let local = std::mem::take(&mut st.local);
    Dispatched {
        nodes: st
            .recs
            .into_iter()
            .zip(local)
            .filter_map(|(r, l)| l.then_some(r))
            .collect(),
        cancelled_by: st.cancelled_by,
        cancelled_at: first_signal,
    }
}

impl State<'_> {
    fn log(&self, i: usize) -> crate::log::NodeLog {
        self.hub.node(&self.jobs[i].id)
    }

    fn start(&mut self, i: usize) {
        let upstream = Upstream::new(
            self.deps[i]
                .iter()
                .map(|&d| (self.jobs[d].id.clone(), self.outputs[d].clone()))
                .collect(),
        );
        let log = self.log(i);
        if let Some(skip) = &self.jobs[i].skip
            && (skip.when)(&upstream)
        {
            let reason = skip.reason.clone();
            log.event(Level::Info, "node_skipped", &reason);
            log.lifecycle(Mark::Skipped, &format!("skipped: {reason}"));
            let now = now_rfc3339();
            let rec = &mut self.recs[i];
            rec.status = NodeStatus::Done;
            rec.outcome = Some(Outcome::Skipped);
            rec.started_at = Some(now.clone());
            rec.finished_at = Some(now);
            self.sink.node(rec);
            self.release_dependents(i);
            return;
        }
        log.lifecycle(Mark::Start, "");
        let rec = &mut self.recs[i];
        rec.status = NodeStatus::Running;
        rec.started_at = Some(now_rfc3339());
        self.sink.node(rec);
        let (stop, cancel) = watch::channel(Stop::Run);
        let handle = self.tasks.spawn(run_node(
            self.jobs[i].clone(),
            self.env.clone(),
            log.clone(),
            upstream,
            cancel,
        ));
        self.task_ids.insert(handle.id(), i);
        self.running.insert(
            i,
            Running {
                stop,
                started: Instant::now(),
                log,
            },
        );
    }

    fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, NodeResult), tokio::task::JoinError>,
        cancelling: bool,
    ) {
        let (id, result) = match joined {
            Ok((id, r)) => (id, r),
            Err(e) => {
                let (outcome, reason, error) = if e.is_panic() {
                    (Outcome::Failed, "error", "the job panicked".to_string())
                } else {
                    (
                        Outcome::Cancelled,
                        "cancelled",
                        "the job did not stop within the grace period and was abandoned"
                            .to_string(),
                    )
                };
                (
                    e.id(),
                    NodeResult {
                        outcome,
                        exit_code: None,
                        failure_reason: reason.into(),
                        error,
                        attempts: 1,
                        outputs: Default::default(),
                        artifacts: Vec::new(),
                        detail: String::new(),
                    },
                )
            }
        };
        let Some(i) = self.task_ids.remove(&id) else {
            return;
        };
        let Some(running) = self.running.remove(&i) else {
            return;
        };
        let took = sparkwing_contract::human::duration(running.started.elapsed());
        let log = running.log;
        // What the job's own code wrote to the console comes before its end line.
        crate::log::settle_stdio();
        let error = log.masker().mask(&result.error).into_owned();
        match result.outcome {
            Outcome::Cached => log.lifecycle(Mark::Success, &format!("cached: {}", result.detail)),
            Outcome::Success | Outcome::Skipped => {
                log.lifecycle(Mark::Success, &took);
            }
            Outcome::Failed => {
                let why = match (result.failure_reason.as_str(), result.exit_code) {
                    ("exit-code", Some(code)) => format!("exit {code}"),
                    ("signal", Some(code)) => format!("killed by signal {}", code - 128),
                    ("timeout", _) => error.clone(),
                    _ => format!("error: {error}"),
                };
                log.event(Level::Error, "node_failed", &error);
                log.lifecycle(Mark::Failed, &format!("{why} ({took})"));
            }
            Outcome::Cancelled => {
                log.event(Level::Warn, "node_cancelled", &error);
                log.lifecycle(Mark::Cancelled, &format!("cancelled ({took})"));
            }
        }
        let rec = &mut self.recs[i];
        rec.status = NodeStatus::Done;
        rec.outcome = Some(result.outcome);
        rec.exit_code = result.exit_code;
        rec.failure_reason = result.failure_reason;
        rec.error = error;
        rec.attempts = result.attempts;
        rec.outputs = result.outputs.clone();
        rec.artifacts = result.artifacts;
        rec.status_detail = result.detail;
        rec.finished_at = Some(now_rfc3339());
        self.sink.node(rec);
        self.outputs[i] = Arc::new(result.outputs);
        if result.outcome.satisfies_dependents() {
            self.release_dependents(i);
        } else {
            self.cancel_dependents(i, cancelling);
        }
        // Logs of a finished node are complete in the store soon after its record says done;
        // the part is cut now and delivered beside the dispatcher, which never waits for the store.
        if log.wrote() {
            log.flush_now();
        }
    }

    fn release_dependents(&mut self, i: usize) {
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.remaining[d] -= 1;
            if self.remaining[d] == 0 && self.recs[d].status == NodeStatus::Pending && self.local[d]
            {
                self.ready.push_back(d);
            }
        }
    }

    /// Every job downstream of a failed or cancelled one is cancelled without running.
    fn cancel_dependents(&mut self, failed: usize, cancelling: bool) {
        self.end_dependents(failed, cancelling, None);
    }

    /// Like [`State::cancel_dependents`]; `direct` (outcome, reason, error) is what the jobs that
    /// need `failed` directly end with (the ones further down are cancelled as `upstream-failed`).
    fn end_dependents(
        &mut self,
        failed: usize,
        cancelling: bool,
        direct: Option<(Outcome, &str, String)>,
    ) {
        if let Some((outcome, reason, error)) = &direct
            && !cancelling
        {
            for k in 0..self.dependents[failed].len() {
                let d = self.dependents[failed][k];
                if self.recs[d].status == NodeStatus::Pending {
                    self.finish_unstarted(d, *outcome, reason, error);
                }
            }
        }
        let mut stack = vec![failed];
        while let Some(j) = stack.pop() {
            for k in 0..self.dependents[j].len() {
                let d = self.dependents[j][k];
                if self.recs[d].status != NodeStatus::Pending {
                    if direct.is_some() && j == failed && !cancelling {
                        stack.push(d);
                    }
                    continue;
                }
                let (reason, error) = if cancelling {
                    (
                        "cancelled",
                        "the run was cancelled before this job started".to_string(),
                    )
                } else {
                    (
                        "upstream-failed",
                        format!("needs `{}`, which did not succeed", self.jobs[j].id),
                    )
                };
                self.finish_unstarted(d, Outcome::Cancelled, reason, &error);
                stack.push(d);
            }
        }
    }

    fn finish_unstarted(&mut self, i: usize, outcome: Outcome, reason: &str, error: &str) {
        if self.local[i] {
            let log = self.log(i);
            match outcome {
                Outcome::Failed => {
                    log.event(Level::Error, "node_failed", error);
                    log.lifecycle(Mark::Failed, &format!("failed: {error}"));
                }
                _ => log.lifecycle(Mark::Cancelled, &format!("cancelled: {reason}")),
            }
        }
        let rec = &mut self.recs[i];
        rec.status = NodeStatus::Done;
        rec.outcome = Some(outcome);
        rec.failure_reason = reason.into();
        rec.error = error.into();
        rec.finished_at = Some(now_rfc3339());
        if self.local[i] {
            self.sink.node(rec);
        }
    }

    /// Whether a job of this shard still waits for a job of another shard.
    fn waits_on_other_shards(&self) -> bool {
        if self.local.iter().all(|&l| l) {
            return false;
        }
        (0..self.jobs.len()).any(|i| {
            self.local[i]
                && self.recs[i].status == NodeStatus::Pending
                && self.deps[i]
                    .iter()
                    .any(|&d| !self.local[d] && self.recs[d].status != NodeStatus::Done)
        })
    }

    /// A job of another shard finished (or will not be seen to): release or end what needs it.
    fn remote_done(&mut self, done: remote::RemoteDone, cancelling: bool) {
        let i = done.index;
        if self.local[i] || self.recs[i].status == NodeStatus::Done {
            return;
        }
        let shard = self.recs[i].shard.unwrap_or(0);
        let id = self.jobs[i].id.clone();
        match done.result {
            Ok(rec) => {
                let outcome = rec.outcome.unwrap_or(Outcome::Failed);
                self.outputs[i] = Arc::new(rec.outputs.clone());
                self.recs[i] = rec;
                self.recs[i].status = NodeStatus::Done;
                if outcome.satisfies_dependents() {
                    self.release_dependents(i);
                } else {
                    self.end_dependents(
                        i,
                        cancelling,
                        Some((
                            Outcome::Cancelled,
                            "upstream-failed",
                            format!("needs `{id}` (shard {shard}), which did not succeed"),
                        )),
                    );
                }
            }
            Err(lost) => {
                let rec = &mut self.recs[i];
                rec.status = NodeStatus::Done;
                rec.outcome = Some(Outcome::Failed);
                self.end_dependents(
                    i,
                    cancelling,
                    Some((Outcome::Failed, lost.reason, lost.error)),
                );
            }
        }
    }

    /// First signal: stop dispatching and SIGTERM every running node (SIGKILL after the grace).
    /// Second: SIGKILL now. Third: abandon the nodes.
    fn on_signal(
        &mut self,
        name: &'static str,
        count: u32,
        grace: Duration,
        force_at: Option<Instant>,
    ) -> Option<Instant> {
        self.cancelled_by.get_or_insert(name);
        let (level, at) = match count {
            1 => {
                eprintln!(
                    "sparkwing: received {name}: stopping {} running job(s) (SIGTERM, SIGKILL after {}); a signal a second or more later kills now",
                    self.running.len(),
                    sparkwing_contract::human::duration(grace)
                );
                (Stop::Term, Instant::now() + grace + FORCE_SLACK)
            }
            2 => {
                eprintln!("sparkwing: received {name} again: killing running jobs");
                (Stop::Kill, Instant::now() + FORCE_SLACK)
            }
            _ => {
                self.tasks.abort_all();
                return None;
            }
        };
        for r in self.running.values() {
            r.stop.send_replace(level);
        }
        Some(force_at.map_or(at, |f| f.min(at)))
    }
}
