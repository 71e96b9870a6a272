//! One run from start to exit code: stores, records, dispatch, summary.

use crate::args::Args;
use crate::backends;
use crate::dispatch::{self, RecordSink, RunEnv};
use crate::invocation::git_info;
use crate::log::{Console, LogHub, Masker, Sink};
use crate::plan::ValidPlan;
use crate::settings::Settings;
use crate::state::{StateStream, state_key};
use sparkwing_contract::exit;
use sparkwing_contract::record::{Invocation, NodeRecord, Outcome, RunRecord, RunStatus};
use sparkwing_contract::timefmt::now_rfc3339;
use sparkwing_storage::relay::RelayClient;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bounds on the work after the last job: delivering spooled log parts, then the final state.
const LOG_DRAIN: Duration = Duration::from_secs(12);
const STATE_DRAIN: Duration = Duration::from_secs(3);
/// After a cancelling signal, everything must be recorded and in the store within 5 s of it.
const CANCEL_LOGS_BY: Duration = Duration::from_millis(3000);
const CANCEL_STATE_BY: Duration = Duration::from_millis(4000);

/// Where the run's records go: the supervisor's record database over the relay, or nowhere
/// when the binary runs on its own (said once at the start).
struct Writer(Option<RelayClient>);

impl Writer {
    fn put_run(&self, run: RunRecord) {
        if let Some(r) = &self.0 {
            r.put_run(run);
        }
    }

    fn put_node(&self, node: NodeRecord) {
        if let Some(r) = &self.0 {
            r.put_node(node);
        }
    }

    /// Sends everything queued so far at once; the future waits until the supervisor committed
    /// it. Records queued after the call are not part of this commit.
    fn sync(&self) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        let sent = self.0.as_ref().map(|r| r.sync());
        async move {
            match sent {
                Some(sent) => sent.await,
                None => Ok(()),
            }
        }
    }
}

/// Where node records go as they change: the record database (the fast local record) and the
/// state stream. Masks secrets first.
struct Records<'a> {
    writer: &'a Writer,
    masker: &'a Masker,
    state: Option<&'a StateStream>,
}

/// A masked copy of `v`, or `None` when masking leaves it as it is.
fn masked_value(masker: &Masker, v: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::String(s) => match masker.mask(s) {
            std::borrow::Cow::Owned(m) => Some(Value::String(m)),
            std::borrow::Cow::Borrowed(_) => None,
        },
        Value::Array(a) => {
            let mut copy: Option<Vec<Value>> = None;
            for (i, x) in a.iter().enumerate() {
                if let Some(m) = masked_value(masker, x) {
                    copy.get_or_insert_with(|| a.clone())[i] = m;
                }
            }
            copy.map(Value::Array)
        }
        Value::Object(o) => {
            let mut copy: Option<serde_json::Map<String, Value>> = None;
            for (k, x) in o {
                if let Some(m) = masked_value(masker, x) {
                    copy.get_or_insert_with(|| o.clone()).insert(k.clone(), m);
                }
            }
            copy.map(Value::Object)
        }
        _ => None,
    }
}

impl Records<'_> {
    fn run(&self, run: &RunRecord) {
        let run = masked_run(self.masker, run);
        if let Some(state) = self.state {
            state.run(&run);
        }
        self.writer.put_run(run);
    }
}

/// The run record as it may be stored: its error masked.
fn masked_run(masker: &Masker, run: &RunRecord) -> RunRecord {
    let mut run = run.clone();
    run.error = masker.mask(&run.error).into_owned();
    run
}

impl RecordSink for Records<'_> {
    fn node(&self, rec: &NodeRecord) {
        let masked = records_mask(self.masker, rec);
        if let Some(state) = self.state {
            state.node(&masked);
        }
        self.writer.put_node(masked.into_owned());
    }
}

/// Runs a validated plan and returns the process exit code.
pub(crate) async fn execute(
    settings: Settings,
    pipeline: &str,
    args: &Args,
    plan: ValidPlan,
    masker: Masker,
) -> i32 {
    let began = Instant::now();
    let run_id = settings.run_id.to_string();
    let spool_dir = settings.home.spool_dir(&run_id);
    let db = sparkwing_contract::surfaces::state_db(&settings.backends.state, &settings.home);
    let Some(Stores {
        writer,
        log_store,
        artifacts,
    }) = open_stores(&settings).await
    else {
        return exit::FAILURE;
    };
    let log_store_name = log_store.as_ref().map(|s| s.describe());
    let hub = Arc::new(LogHub {
        masker: masker.clone(),
        console: Console::new(
            settings.log_format,
            settings.console_grouping(),
            settings.workers,
        )
        .with_progress(settings.progress_every)
        .allow_commands(
            plan.jobs
                .iter()
                .filter(|j| j.ci_commands)
                .map(|j| j.id.clone()),
        ),
        sink: log_store.map(|s| Sink::start(s, run_id.clone(), spool_dir.clone())),
    });

    let git = {
        let (work_dir, ci) = (settings.work_dir.clone(), settings.ci.clone());
        tokio::task::spawn_blocking(move || git_info(&work_dir, &ci))
            .await
            .unwrap_or_default()
    };
    let mut run = first_record(&settings, pipeline, args, &masker, &run_id, git);
    let mut all_pending: Vec<NodeRecord> = dispatch::pending_records(&plan, &run_id);
    let state_target = state_target(&settings, &artifacts, writer.0.as_ref());
    let shards = match settings.shard {
        None => None,
        Some(shard) => {
            let Some(store) = &state_target else {
                eprintln!(
                    "error: shard {shard} needs a store every shard reaches (the state or cache surface of the profile: an S3 bucket) to meet the other shards in; none is usable in this run"
                );
                return exit::FAILURE;
            };
            match crate::shards::agree_on_assignment(store, &plan, pipeline, &run_id, shard).await {
                Ok(a) => {
                    for (rec, j) in all_pending.iter_mut().zip(&a.jobs) {
                        rec.shard = Some(j.shard);
                    }
                    let extra = &mut run.invocation.extra;
                    extra.insert("shard".into(), shard.index.into());
                    extra.insert("shards".into(), shard.total.into());
                    Some(dispatch::Shards {
                        me: shard.index,
                        of: a.jobs.iter().map(|j| j.shard).collect(),
                        store: store.clone(),
                        heartbeat: settings.heartbeat,
                    })
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            }
        }
    };
    // This process records only the jobs it runs.
    let pending: Vec<NodeRecord> = match &shards {
        Some(sh) => all_pending
            .iter()
            .filter(|r| r.shard == Some(sh.me))
            .cloned()
            .collect(),
        None => all_pending.clone(),
    };
    let state_key = match settings.shard {
        Some(sh) => sparkwing_contract::shard::shard_key(&run_id, sh.index),
        None => state_key(&run_id),
    };
    // The run is on record before any job starts: a reader (the dashboard, `runs list`) that
    // sees a job's first line also sees its run. Its row leaves now, alone, and is waited for
    // only once the rest of the start is done: the state stream and the pending rows of its jobs
    // (which follow with the next batch of records, so the first job does not wait for a row
    // per job to be committed) are set up while the supervisor commits it.
    writer.put_run(masked_run(&masker, &run));
    let on_record = writer.sync();
    let state = state_target.as_ref().map(|store| {
        StateStream::start(
            store.clone(),
            state_key.clone(),
            &run,
            &pending,
            spool_dir.join("state.ndjson"),
            settings.heartbeat,
        )
    });
    let state_store = state_target.as_ref().map(|a| a.describe());
    let records = Records {
        writer: &writer,
        masker: &masker,
        state: state.as_ref(),
    };
    for rec in &pending {
        writer.put_node(rec.clone());
    }
    if let Err(e) = on_record.await {
        eprintln!("error: record the run in `{}`: {e}", db.display());
        return exit::FAILURE;
    }
    let job_count = pending.len();
    hub.console.run_start(
        pipeline,
        &run_id,
        &match settings.shard {
            Some(sh) => format!(
                "{job_count} of {} job(s) on shard {sh}, {} worker(s)",
                all_pending.len(),
                settings.workers
            ),
            None => format!("{job_count} job(s), {} worker(s)", settings.workers),
        },
    );

    let reuse = open_reuse(&settings, pipeline, &plan, &run).await;
    let env = Arc::new(RunEnv {
        run_id: run_id.clone(),
        work_dir: settings.work_dir.clone(),
        grace: settings.kill_grace,
        artifacts: artifacts.clone(),
        reuse,
    });
    let shard_store = shards.as_ref().map(|s| s.store.clone());
    let done = dispatch::dispatch(
        plan,
        all_pending,
        settings.workers,
        &hub,
        &records,
        env,
        shards,
    )
    .await;

    let tally = Tally::of(&done);
    (run.status, run.error) = tally.verdict(&done);
    run.finished_at = Some(now_rfc3339());
    // The verdict is recorded before the logs drain, so a reader sees the run end at once and a
    // process killed while draining is still recorded with its real verdict.
    records.run(&run);
    // How long this shard's jobs took balances the next run's assignment.
    if let Some(store) = &shard_store
        && done.cancelled_by.is_none()
    {
        crate::shards::record_durations(store, pipeline, &done.nodes).await;
    }

    let (logs_by, state_by) = drain_deadlines(done.cancelled_at);
    let log_stats = match &hub.sink {
        Some(s) => s.close(logs_by).await,
        None => Default::default(),
    };
    record_log_delivery(&mut run, &log_stats, hub.sink.is_some());
    records.run(&run);
    // The last state upload and the last commit of the records go on side by side.
    let (state_outcome, synced) = tokio::join!(
        async {
            match state {
                Some(s) => s.close(state_by).await,
                None => Default::default(),
            }
        },
        writer.sync()
    );
    let mut db_error = synced.err();
    if let Some((_, path)) = &state_outcome.undelivered {
        run.invocation
            .extra
            .insert("state_undelivered".into(), true.into());
        run.invocation
            .extra
            .insert("state_spool".into(), path.display().to_string().into());
        writer.put_run(masked_run(&masker, &run));
        db_error = writer.sync().await.err().or(db_error);
    }

    let end = RunEnd {
        settings: &settings,
        run: &run,
        db: &db,
        began,
        tally,
        masker: &masker,
        log_stats: &log_stats,
        logs_name: log_store_name.as_deref(),
        spool_dir: &spool_dir,
        state_store: state_store.as_deref(),
        state_key: &state_key,
        state_undelivered: state_outcome.undelivered.as_ref(),
        db_error: db_error.as_ref(),
    };
    let (lines, attrs) = (end.summary_lines(), end.summary_attrs());
    hub.console
        .summary(&lines, run.status != RunStatus::Success, attrs);

    // Storage trouble is reported above; the pipeline's own result decides the exit code.
    if run.status == RunStatus::Success && db_error.is_none() {
        exit::SUCCESS
    } else {
        exit::FAILURE
    }
}

/// The kept results of jobs with inputs, when any job declares them. Without it (after a
/// warning) every job runs.
async fn open_reuse(
    settings: &Settings,
    pipeline: &str,
    plan: &ValidPlan,
    run: &RunRecord,
) -> Option<Arc<dispatch::Reuse>> {
    if plan.jobs.iter().all(|j| j.inputs.is_empty()) {
        return None;
    }
    let (home, pipeline, work_dir, args) = (
        settings.home.clone(),
        pipeline.to_string(),
        settings.work_dir.clone(),
        run.args.clone(),
    );
    let opened = tokio::task::spawn_blocking(move || {
        dispatch::Reuse::open(&home, &pipeline, &work_dir, &args)
    })
    .await;
    match opened {
        Ok(Ok(r)) => Some(Arc::new(r)),
        Ok(Err(e)) => {
            eprintln!("warning: read the pipeline binary to key job inputs: {e}; every job runs");
            None
        }
        Err(_) => None,
    }
}

/// The stores a run writes to.
struct Stores {
    /// The record database, through the supervisor.
    writer: Writer,
    log_store: Option<Arc<dyn sparkwing_storage::LogStore>>,
    /// The cache surface; `None` when it cannot be opened (artifacts are then unavailable).
    artifacts: Option<Arc<dyn sparkwing_storage::ArtifactStore>>,
}

/// Connects to the supervisor and opens the stores; `None` (after printing why) when the run
/// cannot start.
async fn open_stores(settings: &Settings) -> Option<Stores> {
    let relay = match &settings.relay {
        Some((socket, token)) => match RelayClient::connect(socket, token).await {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: {e}");
                return None;
            }
        },
        None => {
            eprintln!(
                "warning: `{}` is not set, so this run is not recorded; run pipelines with `sparkwing run <pipeline>`",
                sparkwing_contract::env::RELAY
            );
            None
        }
    };
    let log_store = match backends::open_log_store(&settings.backends.logs, relay.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let artifacts = match backends::open_artifact_store(&settings.backends.cache, relay.as_ref()) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "warning: {e}; artifacts and the run state in the store are unavailable in this run"
            );
            None
        }
    };
    Some(Stores {
        writer: Writer(relay),
        log_store,
        artifacts,
    })
}

/// The run record as the run starts: who, where, how, with argument values masked.
fn first_record(
    settings: &Settings,
    pipeline: &str,
    args: &Args,
    masker: &Masker,
    run_id: &str,
    git: crate::invocation::GitInfo,
) -> RunRecord {
    let ci = &settings.ci;
    RunRecord {
        git_branch: git.branch,
        git_sha: git.sha,
        repo_url: git.remote,
        args: args
            .to_record()
            .into_iter()
            .map(|(k, v)| (k, masker.mask(&v).into_owned()))
            .collect(),
        invocation: Invocation {
            mode: settings.mode.as_str().to_string(),
            mode_from: settings.mode_from.clone(),
            workers: settings.workers.min(u32::MAX as usize) as u32,
            workers_from: settings.workers_from.clone(),
            profile: settings.profile.clone(),
            backends: settings.backends.all.clone(),
            ci_vendor: ci.vendor.clone(),
            ci_job_url: ci.job_url.clone(),
            binary_source: settings.binary_source.clone(),
            cwd: settings.work_dir.display().to_string(),
            extra: ci.extra().collect(),
        },
        ..RunRecord::new(run_id, pipeline, RunStatus::Running, now_rfc3339())
    }
}

/// Where the state stream goes: the state surface when that is a bucket, else the cache.
fn state_target(
    settings: &Settings,
    artifacts: &Option<Arc<dyn sparkwing_storage::ArtifactStore>>,
    relay: Option<&RelayClient>,
) -> Option<Arc<dyn sparkwing_storage::ArtifactStore>> {
    let spec = sparkwing_contract::surfaces::state_dump_spec(
        &settings.backends.state,
        &settings.backends.cache,
    );
    if spec == settings.backends.cache {
        return artifacts.clone();
    }
    match backends::open_artifact_store(spec, relay) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("warning: {e}; the run state is not streamed in this run");
            None
        }
    }
}

/// By when the logs, then the final state, must be delivered: within 5 s of a cancelling signal,
/// else after the bounded drains.
fn drain_deadlines(
    cancelled_at: Option<tokio::time::Instant>,
) -> (tokio::time::Instant, tokio::time::Instant) {
    let now = tokio::time::Instant::now();
    match cancelled_at {
        Some(t) => {
            let logs_by = (t + CANCEL_LOGS_BY).max(now + Duration::from_millis(250));
            (
                logs_by,
                (t + CANCEL_STATE_BY).max(logs_by + Duration::from_millis(500)),
            )
        }
        None => (now + LOG_DRAIN, now + LOG_DRAIN + STATE_DRAIN),
    }
}

/// How the jobs of a run ended.
#[derive(Debug, Clone, Copy)]
struct Tally {
    ok: usize,
    failed: usize,
    cancelled: usize,
    skipped: usize,
}

impl Tally {
    fn of(done: &dispatch::Dispatched) -> Tally {
        let count = |o: Outcome| done.nodes.iter().filter(|n| n.outcome == Some(o)).count();
        Tally {
            ok: count(Outcome::Success) + count(Outcome::Cached),
            failed: count(Outcome::Failed),
            cancelled: count(Outcome::Cancelled),
            skipped: count(Outcome::Skipped),
        }
    }

    /// The run's status and error: cancelled by a signal, failed naming (up to five of) its
    /// failed jobs, or success.
    fn verdict(self, done: &dispatch::Dispatched) -> (RunStatus, String) {
        if let Some(sig) = done.cancelled_by {
            return (RunStatus::Cancelled, format!("cancelled by {sig}"));
        }
        if self.failed == 0 && self.cancelled == 0 {
            return (RunStatus::Success, String::new());
        }
        let failed_ids: Vec<&str> = done
            .nodes
            .iter()
            .filter(|n| n.outcome == Some(Outcome::Failed))
            .map(|n| n.id.as_str())
            .collect();
        let shown: Vec<String> = failed_ids
            .iter()
            .take(5)
            .map(|i| format!("`{i}`"))
            .collect();
        let more = failed_ids.len().saturating_sub(5);
        let mut e = format!("{} job(s) failed: {}", self.failed, shown.join(", "));
        if more > 0 {
            e.push_str(&format!(" and {more} more"));
        }
        (RunStatus::Failed, e)
    }
}

/// Storage trouble is part of the record (`invocation.extra`), never silent; with a log store,
/// `logs_drained` says every part is in it (or counted undelivered), so a follower that saw the
/// verdict keeps listing parts until it sees this.
fn record_log_delivery(run: &mut RunRecord, log_stats: &crate::log::SinkStats, has_sink: bool) {
    let extra = &mut run.invocation.extra;
    if log_stats.spooled_parts > 0 || log_stats.failed_parts > 0 {
        extra.insert("log_parts_spooled".into(), log_stats.spooled_parts.into());
        extra.insert(
            "log_parts_undelivered".into(),
            log_stats.failed_parts.into(),
        );
        extra.insert(
            "log_bytes_undelivered".into(),
            log_stats.failed_bytes.into(),
        );
    }
    if let Some(dir) = &log_stats.spool_dir {
        extra.insert("log_spool".into(), dir.display().to_string().into());
    }
    if has_sink {
        extra.insert(sparkwing_contract::record::LOGS_DRAINED.into(), true.into());
    }
}

/// Everything the closing summary reports.
struct RunEnd<'a> {
    settings: &'a Settings,
    run: &'a RunRecord,
    db: &'a std::path::Path,
    began: Instant,
    tally: Tally,
    masker: &'a Masker,
    log_stats: &'a crate::log::SinkStats,
    logs_name: Option<&'a str>,
    spool_dir: &'a std::path::Path,
    state_store: Option<&'a str>,
    state_key: &'a str,
    state_undelivered: Option<&'a (String, std::path::PathBuf)>,
    db_error: Option<&'a String>,
}

impl RunEnd<'_> {
    /// The lines of the summary: the verdict, where logs, state and records are, and what could
    /// not be delivered.
    fn summary_lines(&self) -> Vec<String> {
        let (run, settings) = (self.run, self.settings);
        let (run_id, pipeline) = (run.id.as_str(), run.pipeline.as_str());
        let Tally {
            ok,
            failed,
            cancelled,
            skipped,
        } = self.tally;
        let mut lines = vec![format!(
            "{run_id} {pipeline} {} in {}: {ok} succeeded, {failed} failed, {cancelled} cancelled, {skipped} skipped",
            run.status,
            sparkwing_contract::human::duration(self.began.elapsed())
        )];
        if !run.error.is_empty() {
            lines.push(format!("error:   {}", self.masker.mask(&run.error)));
        }
        lines.push(format!(
            "logs:    {}",
            backends::logs_location(&settings.backends.logs, run_id)
        ));
        if let Some(store) = self.state_store {
            lines.push(format!("state:   {store}/{}", self.state_key));
        }
        lines.push(format!("records: {}", self.db.display()));
        let logs_name = self.logs_name.unwrap_or("the log store");
        let log_stats = self.log_stats;
        if log_stats.failed_parts > 0 {
            lines.push(format!(
                "warning: {} log part(s) ({}) could not be delivered to {logs_name}; kept in `{}`",
                log_stats.failed_parts,
                sparkwing_contract::human::bytes(log_stats.failed_bytes),
                log_stats.spool_dir.as_ref().map_or_else(
                    || self.spool_dir.display().to_string(),
                    |d| d.display().to_string()
                ),
            ));
            if let Some(e) = &log_stats.first_error {
                lines.push(format!("  cause: {e}"));
            }
        } else if log_stats.spooled_parts > 0 {
            lines.push(format!(
                "note:    {} log part(s) reached {logs_name} late, after storage trouble ({})",
                log_stats.spooled_parts,
                log_stats.first_error.as_deref().unwrap_or("unknown error")
            ));
        }
        if let Some((e, path)) = self.state_undelivered {
            lines.push(format!(
                "warning: the run state could not be delivered to {}; kept in `{}`",
                self.state_store.unwrap_or("the artifact store"),
                path.display()
            ));
            lines.push(format!("  cause: {e}"));
        }
        if let Some(e) = self.db_error {
            lines.push(format!("warning: failed to write run records: {e}"));
        }
        lines
    }

    /// The summary's machine-readable attributes (JSON console).
    fn summary_attrs(&self) -> serde_json::Map<String, serde_json::Value> {
        let run = self.run;
        let mut attrs = serde_json::Map::new();
        attrs.insert("run_id".into(), run.id.clone().into());
        attrs.insert("status".into(), run.status.as_str().into());
        attrs.insert(
            "logs".into(),
            backends::logs_location(&self.settings.backends.logs, &run.id).into(),
        );
        attrs.insert("records".into(), self.db.display().to_string().into());
        attrs.insert("log_parts".into(), self.log_stats.parts.into());
        attrs.insert(
            "log_parts_spooled".into(),
            self.log_stats.spooled_parts.into(),
        );
        attrs.insert(
            "log_parts_failed".into(),
            self.log_stats.failed_parts.into(),
        );
        attrs.insert(
            "log_bytes_failed".into(),
            self.log_stats.failed_bytes.into(),
        );
        attrs.insert(
            "state_delivered".into(),
            (self.state_store.is_some() && self.state_undelivered.is_none()).into(),
        );
        attrs
    }
}

/// The record as it may be stored: its error and outputs masked. Borrowed when there is nothing
/// to mask (nearly always), so a record is not copied once more for the check.
fn records_mask<'r>(masker: &Masker, n: &'r NodeRecord) -> std::borrow::Cow<'r, NodeRecord> {
    let error = masker.mask(&n.error);
    let outputs: Vec<(&String, serde_json::Value)> = n
        .outputs
        .iter()
        .filter_map(|(k, v)| masked_value(masker, v).map(|m| (k, m)))
        .collect();
    if matches!(error, std::borrow::Cow::Borrowed(_)) && outputs.is_empty() {
        return std::borrow::Cow::Borrowed(n);
    }
    let mut r = n.clone();
    r.error = error.into_owned();
    for (k, m) in outputs {
        r.outputs.insert(k.clone(), m);
    }
    std::borrow::Cow::Owned(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_contract::record::NodeStatus;

    #[test]
    fn a_record_is_masked_where_a_secret_shows_and_borrowed_where_none_does() {
        let masker = Masker::default();
        masker.add("hunter22");
        let mut rec = NodeRecord::new("run-20260101-000000-00000001", "job", NodeStatus::Done);
        rec.outputs
            .insert("plain".into(), serde_json::json!({"n": 1, "s": "fine"}));
        assert!(matches!(
            records_mask(&masker, &rec),
            std::borrow::Cow::Borrowed(_)
        ));
        rec.error = "login hunter22 refused".into();
        rec.outputs.insert(
            "nested".into(),
            serde_json::json!({"list": ["a", "x-hunter22"], "deep": {"k": "hunter22"}, "n": 2}),
        );
        let masked = records_mask(&masker, &rec);
        assert_eq!(masked.error, "login *** refused");
        assert_eq!(
            masked.outputs["nested"],
            serde_json::json!({"list": ["a", "x-***"], "deep": {"k": "***"}, "n": 2})
        );
        assert_eq!(masked.outputs["plain"], rec.outputs["plain"]);
        // The run record too, also when it is amended after the last state upload failed.
        let mut run = RunRecord::new(
            "run-20260101-000000-00000001",
            "ci",
            RunStatus::Failed,
            "2026-01-01T00:00:00Z",
        );
        run.error = "deploy with hunter22 failed".into();
        assert_eq!(masked_run(&masker, &run).error, "deploy with *** failed");
    }
}
