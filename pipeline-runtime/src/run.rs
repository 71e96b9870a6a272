//! One run from start to exit code: stores, records, dispatch, summary.

use crate::args::Args;
use crate::backends;
use crate::dispatch::{self, RecordSink, RunEnv};
use crate::invocation::{ci_info, git_info};
use crate::log::{Console, LogHub, Masker, Sink};
use crate::plan::ValidPlan;
use crate::settings::Settings;
use sparkwing_contract::exit;
use sparkwing_contract::record::{
    FORMAT_VERSION, Invocation, NodeRecord, Outcome, RunRecord, RunStatus, StateDump,
};
use sparkwing_contract::timefmt::now_rfc3339;
use sparkwing_records::Writer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `12ms`, `1.2s`, `2m05s`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// Masks secrets in node records before they reach the database.
struct Records<'a> {
    writer: &'a Writer,
    masker: &'a Masker,
}

impl Records<'_> {
    fn mask_node(&self, rec: &NodeRecord) -> NodeRecord {
        records_mask(self.masker, rec)
    }
}

fn mask_value(masker: &Masker, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(m) = masker.mask(s) {
                *s = m;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| mask_value(masker, x)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| mask_value(masker, x)),
        _ => {}
    }
}

impl RecordSink for Records<'_> {
    fn node(&self, rec: &NodeRecord) {
        self.writer.put_node(self.mask_node(rec));
    }
}

/// Runs a validated plan and returns the process exit code.
pub(crate) async fn execute(
    settings: Settings,
    pipeline: &str,
    args: &Args,
    plan: ValidPlan,
) -> i32 {
    let began = Instant::now();
    let run_id = settings.run_id.to_string();
    let db = sparkwing_records::db_path(&settings.home);
    let writer = match Writer::open(&db) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let log_store = match backends::open_log_store(&settings.backends.logs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let artifacts = match backends::open_artifact_store(&settings.backends.cache) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("warning: {e}; artifacts are unavailable in this run");
            None
        }
    };
    let masker = Masker::default();
    for s in &settings.secrets {
        masker.add(s);
    }
    let hub = Arc::new(LogHub {
        masker: masker.clone(),
        console: Console::new(settings.log_format),
        sink: log_store.map(|s| Sink::start(s, run_id.clone())),
    });

    let ci = ci_info(|k| std::env::var(k).ok());
    let work_dir = settings.work_dir.clone();
    let git = {
        let ci = ci.clone();
        tokio::task::spawn_blocking(move || git_info(&work_dir, &ci))
            .await
            .unwrap_or_default()
    };
    let mut run = RunRecord {
        id: run_id.clone(),
        pipeline: pipeline.to_string(),
        status: RunStatus::Running,
        error: String::new(),
        started_at: now_rfc3339(),
        finished_at: None,
        git_branch: git.branch,
        git_sha: git.sha,
        repo_url: git.remote,
        args: args
            .to_record()
            .into_iter()
            .map(|(k, v)| (k, masker.mask(&v).into_owned()))
            .collect(),
        invocation: Invocation {
            mode: settings.mode.clone(),
            workers: settings.workers.min(u32::MAX as usize) as u32,
            profile: settings.profile.clone(),
            backends: settings.backends.all.clone(),
            ci_vendor: ci.vendor,
            ci_job_url: ci.job_url,
            binary_source: settings.binary_source.clone(),
            cwd: settings.work_dir.display().to_string(),
            extra: Default::default(),
        },
        format_version: Some(FORMAT_VERSION),
    };
    writer.put_run(run.clone());
    let records = Records {
        writer: &writer,
        masker: &masker,
    };
    let pending = dispatch::pending_records(&plan, &run_id);
    for rec in &pending {
        records.node(rec);
    }
    let job_count = pending.len();
    hub.console.run_start(
        pipeline,
        &run_id,
        &format!("{job_count} job(s), {} worker(s)", settings.workers),
    );

    let env = Arc::new(RunEnv {
        run_id: run_id.clone(),
        work_dir: settings.work_dir.clone(),
        grace: settings.kill_grace,
        artifacts: artifacts.clone(),
    });
    let done = dispatch::dispatch(plan, pending, settings.workers, &hub, &records, env).await;

    let count = |o: Outcome| done.nodes.iter().filter(|n| n.outcome == Some(o)).count();
    let (ok, failed, cancelled, skipped) = (
        count(Outcome::Success) + count(Outcome::Cached),
        count(Outcome::Failed),
        count(Outcome::Cancelled),
        count(Outcome::Skipped),
    );
    let failed_ids: Vec<&str> = done
        .nodes
        .iter()
        .filter(|n| n.outcome == Some(Outcome::Failed))
        .map(|n| n.id.as_str())
        .collect();
    (run.status, run.error) = if let Some(sig) = done.cancelled_by {
        (RunStatus::Cancelled, format!("cancelled by {sig}"))
    } else if failed > 0 || cancelled > 0 {
        let shown: Vec<String> = failed_ids
            .iter()
            .take(5)
            .map(|i| format!("`{i}`"))
            .collect();
        let more = failed_ids.len().saturating_sub(5);
        let mut e = format!("{failed} job(s) failed: {}", shown.join(", "));
        if more > 0 {
            e.push_str(&format!(" and {more} more"));
        }
        (RunStatus::Failed, e)
    } else {
        (RunStatus::Success, String::new())
    };
    run.finished_at = Some(now_rfc3339());
    writer.put_run(run.clone());

    let log_stats = match &hub.sink {
        Some(s) => s.close().await,
        None => Default::default(),
    };
    let db_error = tokio::task::block_in_place(|| writer.close()).err();

    // The state dump beside the artifacts, as readers of the bucket layout expect it.
    let masked_nodes: Vec<NodeRecord> = done
        .nodes
        .iter()
        .map(|n| records_mask(&masker, n))
        .collect();
    let dump_error = match &artifacts {
        Some(store) => store
            .put(
                &format!("runs/{run_id}/state.ndjson"),
                StateDump::render(&run, &masked_nodes).into_bytes(),
            )
            .await
            .err(),
        None => None,
    };

    let mut lines = vec![format!(
        "{run_id} {pipeline} {} in {}: {ok} succeeded, {failed} failed, {cancelled} cancelled, {skipped} skipped",
        run.status,
        human(began.elapsed())
    )];
    if !run.error.is_empty() {
        lines.push(format!("error:   {}", masker.mask(&run.error)));
    }
    lines.push(format!(
        "logs:    {}",
        backends::logs_location(&settings.backends.logs, &run_id)
    ));
    lines.push(format!("records: {}", db.display()));
    if log_stats.failed_parts > 0 {
        lines.push(format!(
            "warning: {} log part(s) ({} bytes) could not be written: {}",
            log_stats.failed_parts,
            log_stats.failed_bytes,
            log_stats.first_error.as_deref().unwrap_or("unknown error")
        ));
    }
    if let Some(e) = &db_error {
        lines.push(format!("warning: failed to write run records: {e}"));
    }
    if let Some(e) = &dump_error {
        lines.push(format!("warning: failed to write the state dump: {e}"));
    }
    let mut attrs = serde_json::Map::new();
    attrs.insert("run_id".into(), run_id.clone().into());
    attrs.insert("status".into(), run.status.as_str().into());
    attrs.insert(
        "logs".into(),
        backends::logs_location(&settings.backends.logs, &run_id).into(),
    );
    attrs.insert("records".into(), db.display().to_string().into());
    attrs.insert("log_parts".into(), log_stats.parts.into());
    attrs.insert("log_parts_failed".into(), log_stats.failed_parts.into());
    hub.console
        .summary(&lines, run.status != RunStatus::Success, attrs);

    if run.status == RunStatus::Success && db_error.is_none() {
        exit::SUCCESS
    } else {
        exit::FAILURE
    }
}

fn records_mask(masker: &Masker, n: &NodeRecord) -> NodeRecord {
    let mut r = n.clone();
    r.error = masker.mask(&r.error).into_owned();
    for v in r.outputs.values_mut() {
        mask_value(masker, v);
    }
    r
}
