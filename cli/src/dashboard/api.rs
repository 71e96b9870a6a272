//! `/api/v1` handlers. Field names follow the Go original where it has them. Every identifier
//! from a URL is validated before any store is touched.

use super::logs::{self, LogFormat};
use super::state::AppState;
use crate::reader::{Row, Wanted};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use sparkwing_contract::id::{
    reserved_namespace, validate_hierarchical, validate_key, validate_segment,
};
use sparkwing_contract::{RunStatus, timefmt};
use sparkwing_storage::ReadOpts;
use std::sync::Arc;

type St = State<Arc<AppState>>;

/// Runs per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page.
pub const MAX_LIMIT: usize = 1000;

/// A JSON error body: `{"error": "…"}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// Unknown `/api/v1` paths.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

fn internal(e: impl std::fmt::Display) -> Response {
    eprintln!("warning: {e}");
    error(StatusCode::BAD_GATEWAY, e.to_string())
}

/// `GET /api/v1/version`
pub async fn version() -> Response {
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "schema": sparkwing_contract::record::FORMAT_VERSION,
        "pid": std::process::id(),
    }))
    .into_response()
}

/// `GET /api/v1/capabilities`
pub async fn capabilities(State(st): St) -> Response {
    let plan = &st.plan;
    let mut features = vec!["runs", "logs"];
    if plan.artifacts.is_some() {
        features.push("artifacts");
    }
    if live_events(plan) {
        features.push("events");
    }
    let writes: Vec<&str> = if plan.read_only {
        vec![]
    } else {
        vec!["cancel"]
    };
    Json(serde_json::json!({
        "mode": plan.runs.mode(),
        "read_only": plan.read_only,
        "stores": {
            "runs": plan.runs.spec(),
            "logs": plan.logs.as_ref().map(|l| l.describe()),
            "artifacts": plan.artifacts.as_ref().map(|a| a.describe()),
        },
        "profile": plan.profile,
        "features": features,
        "writes": writes,
    }))
    .into_response()
}

/// Whether `GET /runs/<id>/changes` waits on file events: runs in this machine's SQLite and logs
/// in a local directory. Otherwise the page polls.
fn live_events(plan: &super::plan::Plan) -> bool {
    plan.runs.is_local() && plan.log_root.is_some()
}

/// The longest `GET /runs/<id>/changes` waits without a change (below common proxy timeouts).
const CHANGES_WAIT: std::time::Duration = std::time::Duration::from_secs(25);

/// Query of `GET /api/v1/runs/<id>/changes`.
#[derive(Debug, Default, Deserialize)]
pub struct ChangesQuery {
    /// The `stamp` of the previous answer: a change since then answers at once.
    after: Option<String>,
}

/// `GET /api/v1/runs/<id>/changes?after=STAMP`: answers `{"changed": true, "stamp": …}` as soon as
/// the run's records or logs differ from `STAMP` (at once when they already do, else on the file
/// event that says so), or `{"changed": false, "stamp": …}` after 25 s. `404` when this dashboard
/// cannot watch (runs from a bucket, logs not in a local directory): the page then polls.
pub async fn run_changes(
    State(st): St,
    Path(id): Path<String>,
    Query(q): Query<ChangesQuery>,
) -> Response {
    if sparkwing_contract::RunId::parse(&id).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid run id `{}`", id.escape_debug()),
        );
    }
    let plan = &st.plan;
    if !live_events(plan) {
        return error(
            StatusCode::NOT_FOUND,
            "this dashboard has no file events for runs: poll `GET /runs/<id>`",
        );
    }
    let Some(mut events) =
        crate::fsevents::RunEvents::start(plan.runs.local_db(), plan.log_root.as_deref(), &id)
    else {
        return error(
            StatusCode::NOT_FOUND,
            "file events are unavailable here: poll `GET /runs/<id>`",
        );
    };
    let before = events.stamp();
    let changed = q.after.as_deref() != Some(before.as_str()) || events.changed(CHANGES_WAIT).await;
    let stamp = if changed { events.stamp() } else { before };
    Json(serde_json::json!({ "changed": changed, "stamp": stamp })).into_response()
}

/// Query of `GET /api/v1/runs`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Comma-separated pipeline names.
    pipeline: Option<String>,
    /// Comma-separated statuses.
    status: Option<String>,
    /// A duration back from now (`90s`, `30m`, `24h`, `7d`, `1h30m`) or an RFC 3339 time.
    since: Option<String>,
    limit: Option<String>,
}

impl ListQuery {
    fn wanted(&self) -> Result<Wanted, String> {
        let list = |s: &Option<String>| -> Vec<String> {
            s.as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        let statuses = list(&self.status)
            .iter()
            .map(|s| {
                RunStatus::parse(s).ok_or_else(|| {
                    format!(
                        "invalid status `{}`: use running, success, failed, cancelled or pending",
                        s.escape_debug()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limit = match self
            .limit
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "invalid limit `{}`: use a number from 1 to {MAX_LIMIT}",
                        l.escape_debug()
                    ));
                }
            },
        };
        let since = match self.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(parse_since(s, timefmt::now_unix_nanos()).ok_or_else(|| {
                format!("invalid since `{}`: use a duration like `30m`, `24h`, `7d` or an RFC 3339 time", s.escape_debug())
            })?),
        };
        Ok(Wanted {
            pipelines: list(&self.pipeline),
            statuses,
            since,
            limit,
        })
    }
}

/// `since` as unix nanoseconds: a duration back from `now`, or an absolute RFC 3339 time.
pub fn parse_since(s: &str, now: i64) -> Option<i64> {
    if let Some(t) = timefmt::parse_rfc3339_nanos(s) {
        return Some(t);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    now.checked_sub(total.checked_mul(1_000_000_000)?)
}

/// `GET /api/v1/runs?pipeline=&status=&since=&limit=` → `{"runs": […]}`, newest first.
pub async fn list_runs(State(st): St, Query(q): Query<ListQuery>) -> Response {
    let wanted = match q.wanted() {
        Ok(w) => w,
        Err(m) => return bad_request(m),
    };
    match st.runs.list(&wanted).await {
        Ok(runs) => {
            let mut out = Vec::with_capacity(runs.len());
            for row in &runs {
                out.push(match row {
                    Row::Run(r) => run_json(&st, r).await,
                    Row::TooLarge(t) => too_large_json(t),
                });
            }
            Json(serde_json::json!({ "runs": out })).into_response()
        }
        Err(e) => internal(e),
    }
}

/// A run whose state dump is too large to read: its id, its start time (from the id), and why.
fn too_large_json(t: &crate::reader::TooLarge) -> serde_json::Value {
    let started = crate::reader::bucket::id_time(&t.run).map(timefmt::unix_nanos_to_rfc3339);
    serde_json::json!({
        "id": t.run,
        "started_at": started,
        "unreadable": true,
        "error": sparkwing_contract::hint::with_hint(t),
        "dump_bytes": t.size,
        "max_dump_bytes": t.cap,
    })
}

/// A run as the page gets it: the record as stored, plus `"orphaned": true` for a local run
/// still recorded as running that no process on this machine runs any more (its supervisor and
/// pipeline were killed before they could record the end). A run that ended between reading its
/// record and looking for its processes is read again, so it is never reported orphaned.
async fn run_json(st: &AppState, run: &sparkwing_contract::RunRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(run).unwrap_or_default();
    if run.status == RunStatus::Running
        && st.runs.is_local()
        && !crate::active::local_run_is_live(&st.plan.home, &run.id)
        && st
            .runs
            .get(&run.id)
            .await
            .ok()
            .flatten()
            .is_some_and(|again| again.run.status == RunStatus::Running)
    {
        v["orphaned"] = true.into();
    }
    v
}

/// Query of `GET /api/v1/runs/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct RunQuery {
    include: Option<String>,
}

/// `GET /api/v1/runs/{id}` → the run; with `?include=nodes` → `{"run": …, "nodes": […]}`.
pub async fn get_run(State(st): St, Path(id): Path<String>, Query(q): Query<RunQuery>) -> Response {
    if let Err(e) = validate_segment(&id) {
        return bad_request(format!("invalid run id: {e}"));
    }
    let state = match st.runs.get(&id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("run `{}` not found", id.escape_debug()),
            );
        }
        Err(e) => return internal(e),
    };
    let include_nodes = q
        .include
        .as_deref()
        .unwrap_or("")
        .split(',')
        .any(|i| i.trim() == "nodes");
    let run = run_json(&st, &state.run).await;
    if include_nodes {
        Json(serde_json::json!({ "run": run, "nodes": &*state.nodes })).into_response()
    } else {
        Json(run).into_response()
    }
}

/// Query of `GET /api/v1/runs/{id}/logs/{node}`.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    format: Option<String>,
    tail: Option<String>,
    head: Option<String>,
    grep: Option<String>,
    /// `A:B`, 1-based and inclusive.
    lines: Option<String>,
}

impl LogQuery {
    fn opts(&self) -> Result<(LogFormat, ReadOpts), String> {
        let format = LogFormat::parse(self.format.as_deref().unwrap_or("")).ok_or_else(|| {
            format!(
                "invalid format `{}`: use plain, ansi or ndjson",
                self.format.as_deref().unwrap_or("").escape_debug()
            )
        })?;
        let count = |name: &str, v: &Option<String>| -> Result<usize, String> {
            match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(0),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("invalid {name} `{}`: use a number", v.escape_debug())),
            }
        };
        let tail = count("tail", &self.tail)?;
        let head = count("head", &self.head)?;
        if tail > 0 && head > 0 {
            return Err("tail and head cannot be combined".into());
        }
        let lines = match self
            .lines
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(v) => {
                let bad = || {
                    format!(
                        "invalid lines `{}`: use `A:B` with 1 <= A <= B",
                        v.escape_debug()
                    )
                };
                let (a, b) = v.split_once(':').ok_or_else(bad)?;
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a == 0 || b < a {
                    return Err(bad());
                }
                Some((a, b))
            }
        };
        let grep = self.grep.clone().filter(|g| !g.is_empty());
        Ok((
            format,
            ReadOpts {
                tail,
                head,
                lines,
                grep,
            },
        ))
    }
}

/// `GET /api/v1/runs/{id}/logs/{node}`: one node's log (`node` may be hierarchical).
pub async fn node_log(
    State(st): St,
    Path((id, node)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    if let Err(e) = validate_segment(&id) {
        return bad_request(format!("invalid run id: {e}"));
    }
    if let Err(e) = validate_hierarchical(&node) {
        return bad_request(format!("invalid node id: {e}"));
    }
    let (format, opts) = match q.opts() {
        Ok(o) => o,
        Err(m) => return bad_request(m),
    };
    let Some(store) = &st.plan.logs else {
        return error(
            StatusCode::NOT_FOUND,
            "no log store is configured for this dashboard",
        );
    };
    let permit = match tokio::time::timeout(st.log_wait, st.log_reads.clone().acquire_owned()).await
    {
        Ok(Ok(p)) => p,
        _ => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "busy: {} log requests are being served and this one waited {} s; retry shortly",
                    super::state::LOG_READS,
                    st.log_wait.as_secs()
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            return r;
        }
    };
    let read = logs::LogRead {
        store: store.clone(),
        run: id.clone(),
        node: node.clone(),
        format,
        opts,
        max_tail: st.max_tail,
    };
    let stream = match read.start().await {
        Ok(logs::LogBody::Whole(bytes)) => {
            futures_util::stream::once(async move { Ok(axum::body::Bytes::from(bytes)) }).boxed()
        }
        Ok(logs::LogBody::Parts(parts)) => parts,
        Err(e) if e.is_not_found() => futures_util::stream::empty().boxed(),
        Err(e) => return internal(format!("read the log of `{node}` in `{id}`: {e}")),
    };
    // The slot is held until the body is sent or the client goes away.
    let body = stream.map(move |chunk| {
        let _slot = &permit;
        chunk
    });
    Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Query of `GET /api/v1/artifacts/{key}`.
#[derive(Debug, Default, Deserialize)]
pub struct ArtifactQuery {
    /// The run whose node recorded the key; without it, the newest runs are searched.
    run: Option<String>,
}

/// Runs searched for a key when a download names no run: the newest page the run list shows.
const ARTIFACT_SEARCH: usize = DEFAULT_LIMIT;

/// Whether `key` is recorded as an artifact on a node of `run`, or, without a run, of one of the
/// newest [`ARTIFACT_SEARCH`] runs. `Err` is the response to send instead.
async fn recorded_artifact(st: &AppState, key: &str, run: Option<&str>) -> Result<bool, Response> {
    let on_run = |state: Option<crate::reader::RunState>| {
        state.is_some_and(|s| s.nodes.iter().any(|n| n.artifacts.iter().any(|a| a == key)))
    };
    if let Some(run) = run {
        if let Err(e) = validate_segment(run) {
            return Err(bad_request(format!("invalid run id: {e}")));
        }
        return match st.runs.get(run).await {
            Ok(state) => Ok(on_run(state)),
            Err(e) => Err(internal(e)),
        };
    }
    let newest = Wanted {
        limit: ARTIFACT_SEARCH,
        ..Default::default()
    };
    let runs = st.runs.list(&newest).await.map_err(internal)?;
    for row in runs {
        if let Row::Run(r) = row
            && on_run(st.runs.get(&r.id).await.map_err(internal)?)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `GET /api/v1/artifacts/{key}?run={id}`: an artifact recorded on a node of that run (without
/// `run`, of one of the newest runs) as a download; 404 for anything else in the store (cached
/// pipeline binaries, state dumps, keys no run recorded) and when missing. The object is
/// streamed from the store through a bounded pipe, never held in memory whole, as a chunked body:
/// a download cut short by a store error ends without the final chunk, so the client sees it
/// incomplete. (No `Content-Length`: it would come from a separate stat, and an object
/// overwritten in between would then be cut to the old length without anyone noticing.)
pub async fn artifact(
    State(st): St,
    Path(key): Path<String>,
    Query(q): Query<ArtifactQuery>,
) -> Response {
    if let Err(e) = validate_key(&key) {
        return bad_request(format!("invalid artifact key: {e}"));
    }
    let Some(store) = &st.plan.artifacts else {
        return error(
            StatusCode::NOT_FOUND,
            "no artifact store is configured for this dashboard",
        );
    };
    let run = q.run.as_deref().filter(|r| !r.is_empty());
    // The reserved namespaces hold the cache's own objects, never a job's artifact, whatever a
    // record in the bucket claims.
    let recorded = reserved_namespace(&key).is_none()
        && match recorded_artifact(&st, &key, run).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
    if !recorded {
        return error(
            StatusCode::NOT_FOUND,
            match run {
                Some(run) => format!("artifact `{key}` is not recorded on a node of run `{run}`"),
                None => format!(
                    "artifact `{key}` is not recorded on a node of the newest {ARTIFACT_SEARCH} runs; name its run with `?run=<run-id>`"
                ),
            },
        );
    }
    match store.size(&key).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            return error(StatusCode::NOT_FOUND, format!("artifact `{key}` not found"));
        }
        Err(e) => return internal(format!("read artifact `{key}`: {e}")),
    };
    let (mut tx, rx) = tokio::io::duplex(ARTIFACT_PIPE);
    let (store, k) = (store.clone(), key.clone());
    tokio::spawn(async move {
        // Ending early drops `tx`: the body stops short of its length and the client sees an
        // incomplete download rather than a silently truncated file.
        if let Err(e) = store.get_to_writer(&k, &mut tx).await {
            eprintln!("warning: streaming artifact `{k}` stopped: {e}");
        }
    });
    let body = futures_util::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        let mut buf = vec![0u8; ARTIFACT_PIPE];
        match tokio::io::AsyncReadExt::read(&mut rx, &mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(rx)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", download_name(&key)),
        )
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Bytes in flight between the store and the client of one artifact download.
const ARTIFACT_PIPE: usize = 256 * 1024;

/// The last key segment, reduced to characters that are safe inside a quoted header value.
fn download_name(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or(key);
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "artifact".into()
    } else {
        name
    }
}

/// `POST /api/v1/runs/{id}/cancel` (mounted only when writes are allowed): SIGTERM to the
/// supervisor of an in-flight local run; the run then ends `cancelled`.
pub async fn cancel(State(st): St, Path(id): Path<String>) -> Response {
    if let Err(e) = validate_segment(&id) {
        return bad_request(format!("invalid run id: {e}"));
    }
    match super::cancel::cancel(&st.plan.home, &id) {
        Ok(c) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "run_id": c.run_id,
                "pipeline": c.pipeline,
                "status": "cancelling",
                "supervisor_pid": c.supervisor_pid,
            })),
        )
            .into_response(),
        Err(e @ super::cancel::CancelError::NotInFlight(_)) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e @ super::cancel::CancelError::BadMarker { .. }) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_values() {
        let now = 10_000 * 1_000_000_000i64;
        assert_eq!(parse_since("30m", now), Some(now - 1800 * 1_000_000_000));
        assert_eq!(parse_since("1h30m", now), Some(now - 5400 * 1_000_000_000));
        assert_eq!(parse_since("2d", now), Some(now - 172_800 * 1_000_000_000));
        assert!(parse_since("2026-01-01T00:00:00Z", now).is_some());
        for bad in ["", "30", "m", "3x", "-1h"] {
            assert_eq!(parse_since(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn list_query_validation() {
        let q = ListQuery {
            status: Some("failed, success".into()),
            pipeline: Some("a,b".into()),
            ..Default::default()
        };
        let w = q.wanted().unwrap();
        assert_eq!(w.statuses, vec![RunStatus::Failed, RunStatus::Success]);
        assert_eq!(w.pipelines, vec!["a", "b"]);
        assert_eq!(w.limit, DEFAULT_LIMIT);
        let q = ListQuery {
            status: Some("weird".into()),
            ..Default::default()
        };
        assert!(q.wanted().unwrap_err().contains("invalid status `weird`"));
        let q = ListQuery {
            limit: Some("0".into()),
            ..Default::default()
        };
        assert!(q.wanted().is_err());
        let q = ListQuery {
            limit: Some("5000".into()),
            ..Default::default()
        };
        assert!(q.wanted().is_err());
    }

    #[test]
    fn log_query_validation() {
        let q = LogQuery {
            tail: Some("5".into()),
            head: Some("2".into()),
            ..Default::default()
        };
        assert!(q.opts().is_err());
        let q = LogQuery {
            lines: Some("3:1".into()),
            ..Default::default()
        };
        assert!(q.opts().is_err());
        let q = LogQuery {
            format: Some("html".into()),
            ..Default::default()
        };
        assert!(q.opts().unwrap_err().contains("invalid format"));
        let q = LogQuery {
            format: Some("ansi".into()),
            lines: Some("2:4".into()),
            ..Default::default()
        };
        let (f, o) = q.opts().unwrap();
        assert_eq!(f, LogFormat::Ansi);
        assert_eq!(o.lines, Some((2, 4)));
    }

    #[test]
    fn download_names_are_header_safe() {
        assert_eq!(download_name("build/out/app.tar.gz"), "app.tar.gz");
        assert_eq!(download_name("x/we\"ird name"), "we_ird_name");
    }
}
