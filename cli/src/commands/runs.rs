//! `sparkwing runs list | show | logs`: read run records and logs.

use crate::cli::{Format, RunsCommand, StoreArgs};
use crate::error::{CliError, CliResult};
use crate::output::print_json;
use crate::source::{self, ListFilter, Sources};
use sparkwing_contract::human::duration_ms as human_duration;
use sparkwing_contract::record::{HEARTBEAT_INTERVAL, STALE_AFTER};
use sparkwing_contract::text::printable as p;
use sparkwing_contract::{NodeRecord, RunRecord, RunStatus, timefmt};
use sparkwing_storage::ReadOpts;
use std::io::Write;

pub fn execute(cmd: RunsCommand) -> CliResult {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("start the runtime: {e}")))?;
    rt.block_on(async move {
        match cmd {
            RunsCommand::List {
                pipeline,
                status,
                limit,
                output,
                store,
            } => {
                let status = match status.as_deref() {
                    None => None,
                    Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                        CliError::usage(format!("invalid status `{}`", s.escape_debug()))
                            .with_hint("one of: running, success, failed, cancelled")
                    })?),
                };
                let sources = open_sources(&store)?;
                list(
                    &sources,
                    ListFilter {
                        pipeline,
                        status,
                        limit: Some(limit),
                    },
                    output,
                )
                .await
            }
            RunsCommand::Show { run, output, store } => {
                let sources = open_sources(&store)?;
                show(&sources, &run, output).await
            }
            RunsCommand::Logs {
                run,
                node,
                follow,
                tail,
                head,
                grep,
                lines,
                output,
                store,
            } => {
                let opts = ReadOpts {
                    tail: tail.unwrap_or(0),
                    head: head.unwrap_or(0),
                    lines: lines.as_deref().map(parse_lines).transpose()?,
                    grep,
                };
                let sources = open_sources(&store)?;
                logs(&sources, &run, node.as_deref(), follow, &opts, output).await
            }
        }
    })
}

fn open_sources(store: &StoreArgs) -> Result<Sources, CliError> {
    let home = crate::home::sparkwing_home()?;
    let profile = crate::profiles::resolve_here(store.profile.as_deref(), &home)?;
    source::open(&profile, store.profile.is_some(), &home)
}

fn parse_lines(s: &str) -> Result<(usize, usize), CliError> {
    let bad = || {
        CliError::usage(format!("invalid `--lines` value `{}`", s.escape_debug()))
            .with_hint("use `A:B` with 1 <= A <= B, e.g. `--lines 10:20`")
    };
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let a: usize = a.trim().parse().map_err(|_| bad())?;
    let b: usize = b.trim().parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

fn duration_ms(started: &str, finished: Option<&str>) -> Option<i64> {
    let s = timefmt::parse_rfc3339_nanos(started)?;
    let f = match finished {
        Some(f) => timefmt::parse_rfc3339_nanos(f)?,
        None => timefmt::now_unix_nanos(),
    };
    Some((f - s) / 1_000_000)
}

async fn list(sources: &Sources, filter: ListFilter, output: Format) -> CliResult {
    let runs = sources.runs.list_runs(&filter).await?;
    match output {
        Format::Json => print_json(&serde_json::json!({ "runs": runs }))?,
        Format::Pretty => {
            if runs.is_empty() {
                println!("no runs recorded in {}", sources.runs.describe());
                return Ok(0);
            }
            let pw = runs
                .iter()
                .map(|r| p(&r.pipeline).chars().count())
                .max()
                .unwrap_or(8)
                .max(8);
            println!(
                "{:<30} {:<pw$} {:<9} {:<20} {:>8}  GIT",
                "RUN", "PIPELINE", "STATUS", "STARTED", "DURATION"
            );
            let now = timefmt::now_unix_nanos();
            let mut any_stale = false;
            for r in &runs {
                let status = if r.is_stale(now) {
                    any_stale = true;
                    "stale".to_string()
                } else {
                    r.status.to_string()
                };
                let dur = duration_ms(&r.started_at, r.finished_at.as_deref())
                    .map(human_duration)
                    .unwrap_or_default();
                let started: String = r
                    .started_at
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " ");
                let git = match (r.git_branch.as_str(), r.git_sha.as_str()) {
                    ("", "") => String::new(),
                    (b, s) => format!("{b}@{}", s.chars().take(8).collect::<String>()),
                };
                println!(
                    "{:<30} {:<pw$} {:<9} {:<20} {:>8}  {}",
                    p(&r.id),
                    p(&r.pipeline),
                    status,
                    p(&started),
                    dur,
                    p(&git)
                );
            }
            if any_stale {
                println!(
                    "\nstale: recorded as running, but its state has not been written for over {} \
                     (it is rewritten every {} while the run lives): its machine is most likely gone",
                    human_duration(STALE_AFTER.as_millis() as i64),
                    human_duration(HEARTBEAT_INTERVAL.as_millis() as i64)
                );
            }
        }
    }
    Ok(0)
}

async fn show(sources: &Sources, run: &str, output: Format) -> CliResult {
    let id = sources.runs.resolve_id(run).await?;
    let Some((run, nodes)) = sources.runs.get_run(&id).await? else {
        return Err(not_found(&id, sources));
    };
    match output {
        Format::Json => print_json(&serde_json::json!({ "run": run, "nodes": nodes }))?,
        Format::Pretty => print_run(&run, &nodes),
    }
    Ok(0)
}

fn not_found(id: &str, sources: &Sources) -> CliError {
    CliError::usage(format!(
        "run `{id}` not found in {}",
        sources.runs.describe()
    ))
    .with_hint("`sparkwing runs list` shows recorded runs; pass `--profile NAME` to read a bucket")
}

fn print_run(run: &RunRecord, nodes: &[NodeRecord]) {
    let dur = duration_ms(&run.started_at, run.finished_at.as_deref())
        .map(human_duration)
        .unwrap_or_default();
    println!(
        "{}  {}  {}  {}",
        p(&run.id),
        p(&run.pipeline),
        run.status,
        dur
    );
    if !run.error.is_empty() {
        println!("  error: {}", p(&run.error));
    }
    println!("  started: {}", p(&run.started_at));
    if let Some(f) = &run.finished_at {
        println!("  finished: {}", p(f));
    }
    if let (Some(at), Some(age)) = (
        &run.last_heartbeat_at,
        run.heartbeat_age(timefmt::now_unix_nanos()),
    ) {
        let ago = human_duration(age.as_millis() as i64);
        let at = p(at);
        if run.is_stale(timefmt::now_unix_nanos()) {
            println!(
                "  heartbeat: {at} ({ago} ago) — stale: the run's state is rewritten every {} \
                 while it lives, so its machine is most likely gone",
                human_duration(HEARTBEAT_INTERVAL.as_millis() as i64)
            );
        } else {
            println!("  heartbeat: {at} ({ago} ago)");
        }
    }
    let inv = &run.invocation;
    // `(from env)` when the CI job's environment chose it rather than a flag or the default.
    let from = |f: &str| match f {
        "" | "default" => String::new(),
        f => format!(" (from {f})"),
    };
    println!(
        "  mode: {}{}  workers: {}{}  profile: {}  binary: {}",
        p(or_dash(&inv.mode)),
        p(&from(&inv.mode_from)),
        inv.workers,
        p(&from(&inv.workers_from)),
        p(or_dash(&inv.profile)),
        p(or_dash(&inv.binary_source))
    );
    if !run.git_branch.is_empty() || !run.git_sha.is_empty() {
        println!("  git: {} {}", p(&run.git_branch), p(&run.git_sha));
    }
    if !inv.ci_vendor.is_empty() {
        println!("  ci: {} {}", p(&inv.ci_vendor), p(&inv.ci_job_url));
    }
    if let Some(n) = inv.extra.get("shards").and_then(|v| v.as_u64()) {
        let reporting = inv
            .extra
            .get("shards_reporting")
            .and_then(|v| v.as_u64())
            .unwrap_or(n);
        println!("  shards: {n} ({reporting} reporting)");
    }
    let sharded = nodes.iter().any(|n| n.shard.is_some());
    let iw = nodes
        .iter()
        .map(|n| p(&n.id).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!();
    let shard_col = |s: &str| {
        if sharded {
            format!("{s:<6}")
        } else {
            String::new()
        }
    };
    println!(
        "  {:<iw$} {}{:<8} {:<10} {:>8}  {:<10} DETAIL",
        "NODE",
        shard_col("SHARD"),
        "STATUS",
        "OUTCOME",
        "DURATION",
        "NEEDS"
    );
    for n in nodes {
        let dur = n
            .started_at
            .as_deref()
            .and_then(|s| duration_ms(s, n.finished_at.as_deref()))
            .map(human_duration)
            .unwrap_or_else(|| "-".into());
        let outcome = n
            .outcome
            .map(|o| o.to_string())
            .unwrap_or_else(|| "-".into());
        let mut err = n.error.clone();
        if !n.failure_reason.is_empty() && !err.contains(&n.failure_reason) {
            err = format!("[{}] {err}", n.failure_reason);
        }
        if err.is_empty() {
            err.clone_from(&n.status_detail);
        }
        println!(
            "  {:<iw$} {}{:<8} {:<10} {:>8}  {:<10} {}",
            p(&n.id),
            shard_col(&n.shard.map_or_else(|| "-".to_string(), |s| s.to_string())),
            n.status,
            outcome,
            dur,
            if n.deps.is_empty() {
                "-".to_string()
            } else {
                p(&n.deps.join(",")).into_owned()
            },
            p(&err)
        );
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// Renders stored log records: `json` passes them through, `pretty` prints each message, prefixed
/// with the node id when several nodes are printed. Whatever a log holds, it cannot drive the
/// reader's terminal: colours stay only when `colors` (stdout is a terminal), other escape
/// sequences go, and other control characters are shown escaped.
fn render_logs(
    bytes: &[u8],
    node_prefix: Option<&str>,
    output: Format,
    colors: bool,
    out: &mut impl Write,
) {
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match output {
            Format::Json => {
                // A JSON record holds no raw control characters; a line that does is not one.
                if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                    let _ = writeln!(out, "{}", p(&String::from_utf8_lossy(line)));
                } else {
                    let _ = out.write_all(line);
                    let _ = out.write_all(b"\n");
                }
            }
            Format::Pretty => {
                let text = sparkwing_contract::record::log_line_text(line);
                let text = sparkwing_contract::text::terminal_safe(&text, colors);
                let _ = match node_prefix {
                    Some(n) => writeln!(out, "[{}] {text}", p(n)),
                    None => writeln!(out, "{text}"),
                };
            }
        }
    }
}

async fn logs(
    sources: &Sources,
    run: &str,
    node: Option<&str>,
    follow: bool,
    opts: &ReadOpts,
    output: Format,
) -> CliResult {
    let id = sources.runs.resolve_id(run).await?;
    if let Some(n) = node {
        sparkwing_contract::id::validate_hierarchical(n)
            .map_err(|e| CliError::usage(format!("invalid `--node`: {e}")))?;
    }
    let known = sources.runs.get_run(&id).await?;
    let logs_exist = !sources
        .logs
        .list_nodes(&id)
        .await
        .map_err(|e| CliError::failure(format!("list logs of `{id}`: {e}")))?
        .is_empty();
    if known.is_none() && !logs_exist {
        return Err(not_found(&id, sources));
    }
    if follow {
        return follow_logs(sources, &id, node, known, opts, output).await;
    }
    let stdout = std::io::stdout();
    let colors = std::io::IsTerminal::is_terminal(&stdout);
    let nodes = match node {
        Some(n) => vec![n.to_string()],
        None => {
            let mut ns = sources
                .logs
                .list_nodes(&id)
                .await
                .map_err(|e| CliError::failure(format!("list logs of `{id}`: {e}")))?;
            // Record order (plan order) reads better than alphabetical order.
            if let Some((_, records)) = &known {
                let order: Vec<&str> = records.iter().map(|n| n.id.as_str()).collect();
                ns.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
            }
            ns
        }
    };
    for n in &nodes {
        let bytes = sources
            .logs
            .read(&id, n, opts)
            .await
            .map_err(|e| CliError::failure(format!("read the log of `{n}` in `{id}`: {e}")))?;
        let prefix = if node.is_some() {
            None
        } else {
            Some(n.as_str())
        };
        render_logs(&bytes, prefix, output, colors, &mut stdout.lock());
    }
    Ok(0)
}

/// How often `--follow` looks for new parts when it cannot watch for them (logs in a bucket).
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// With file events, the longest wait without one before the record and liveness are read
/// again anyway (an event can be missed while a new node directory is being watched).
const FOLLOW_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a local run that never ended may have no live `sparkwing run` before it is given up.
const FOLLOW_ORPHAN_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
/// Longest wait, after a run is recorded as over, for its last log parts (the runtime drains its
/// logs for up to 12 s after the verdict, e.g. spooled parts after an outage).
const FOLLOW_DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// `runs logs --follow`: every pass lists the run's parts once and reads only the parts not seen
/// yet, so following a long run costs one listing per pass, not a re-read of every log. A pass
/// starts when a file event says the run's records or log parts changed (logs in a local
/// directory), else every [`FOLLOW_POLL`] (logs in a bucket, or no file events here). `--grep`
/// applies to every new line, `--tail` to where following starts. Ends when the run's record is
/// terminal; a local run whose record still says running while no `sparkwing run` on this machine
/// runs it (its supervisor was killed) is reported and given up instead of followed forever.
async fn follow_logs(
    sources: &Sources,
    id: &str,
    node: Option<&str>,
    mut known: Option<(RunRecord, Vec<NodeRecord>)>,
    opts: &ReadOpts,
    output: Format,
) -> CliResult {
    use std::collections::HashSet;
    let stdout = std::io::stdout();
    let colors = std::io::IsTerminal::is_terminal(&stdout);
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut started: HashSet<String> = HashSet::new();
    let local = sources.runs.is_local();
    let mut orphan_since: Option<std::time::Instant> = None;
    // Watching starts before the first listing, so nothing written after it goes unnoticed.
    let mut events = sources.log_root.as_deref().and_then(|root| {
        crate::fsevents::RunEvents::start(sources.runs.local_db(), Some(root), id)
    });
    let mut wait = async || match events.as_mut() {
        Some(ev) => {
            ev.changed(FOLLOW_IDLE).await;
        }
        None => tokio::time::sleep(FOLLOW_POLL).await,
    };
    // A run already over when following began has all its parts in the store.
    let mut saw_running = !known.as_ref().is_some_and(|(r, _)| r.status.is_terminal());
    let mut over_since: Option<std::time::Instant> = None;
    let mut last_pass = false;
    loop {
        // The record is read before the parts, so the listing that follows holds every part that
        // landed before what the record says. The verdict is recorded before the last parts
        // drain; once the record also says `logs_drained` (or nothing is left running here, or
        // the drain window passed), this pass is the last.
        let over = known.as_ref().is_some_and(|(r, _)| r.status.is_terminal());
        let drained = known.as_ref().is_some_and(|(r, _)| r.logs_drained());
        if over {
            over_since.get_or_insert_with(std::time::Instant::now);
        }
        let waited_out = over_since.is_some_and(|t| t.elapsed() > FOLLOW_DRAIN_WAIT);
        let done = last_pass || (over && (!saw_running || drained || waited_out));
        let mut fresh: Vec<(String, String)> = sources
            .logs
            .list_parts(id)
            .await
            .map_err(|e| CliError::failure(format!("list logs of `{id}`: {e}")))?
            .into_iter()
            .filter(|(n, _)| node.is_none_or(|want| want == n))
            .filter(|p| !seen.contains(p))
            .collect();
        // Record order (plan order) reads better than alphabetical order; parts in write order.
        let order: Vec<&str> = known
            .as_ref()
            .map(|(_, ns)| ns.iter().map(|n| n.id.as_str()).collect())
            .unwrap_or_default();
        let rank = |n: &str| order.iter().position(|o| *o == n).unwrap_or(usize::MAX);
        fresh.sort_by(|a, b| (rank(&a.0), &a.0, &a.1).cmp(&(rank(&b.0), &b.0, &b.1)));
        let mut i = 0;
        while i < fresh.len() {
            let n = fresh[i].0.clone();
            let mut bytes = Vec::new();
            while i < fresh.len() && fresh[i].0 == n {
                let part = &fresh[i].1;
                let mut b = sources.logs.read_part(id, &n, part).await.map_err(|e| {
                    CliError::failure(format!("read the log of `{n}` in `{id}`: {e}"))
                })?;
                if !b.is_empty() && b.last() != Some(&b'\n') {
                    b.push(b'\n');
                }
                bytes.extend_from_slice(&b);
                seen.insert(fresh[i].clone());
                i += 1;
            }
            let first = started.insert(n.clone());
            let filter = ReadOpts {
                grep: opts.grep.clone(),
                tail: if first { opts.tail } else { 0 },
                ..ReadOpts::default()
            };
            let prefix = if node.is_some() {
                None
            } else {
                Some(n.as_str())
            };
            render_logs(
                &filter.apply(&bytes),
                prefix,
                output,
                colors,
                &mut stdout.lock(),
            );
        }
        let _ = stdout.lock().flush();
        if done {
            return Ok(0);
        }
        if over {
            // Recorded as over, logs maybe still draining: a local run whose processes are all
            // gone has nothing left to deliver, so one more pass ends it.
            if local && !crate::active::local_run_is_live(&sources.home, id) {
                last_pass = true;
                continue;
            }
            wait().await;
            known = sources.runs.get_run(id).await?;
            continue;
        }
        saw_running = true;
        if let Some((r, _)) = &known
            && r.is_stale(timefmt::now_unix_nanos())
        {
            return Err(CliError::failure(format!(
                "stopped following `{id}`: it is recorded as running, but its state has not been \
                 written for over {} (its machine is most likely gone)",
                human_duration(STALE_AFTER.as_millis() as i64)
            ))
            .with_hint(format!(
                "`sparkwing runs show {id}` shows what was recorded; the log above is everything \
                 that reached the store"
            )));
        }
        if local {
            // A live local run has its supervisor's marker naming live processes; the supervisor
            // finalizes the record before removing it, so "nobody runs it, record still running"
            // for a few polls in a row means its processes were killed before they could.
            if crate::active::local_run_is_live(&sources.home, id) {
                orphan_since = None;
            } else {
                orphan_since.get_or_insert_with(std::time::Instant::now);
            }
            if orphan_since.is_some_and(|t| t.elapsed() >= FOLLOW_ORPHAN_AFTER) {
                known = sources.runs.get_run(id).await?;
                if !known.as_ref().is_some_and(|(r, _)| r.status.is_terminal()) {
                    return Err(CliError::failure(format!(
                        "stopped following `{id}`: its record still says running, but no \
                         `sparkwing run` on this machine is running it (was it killed?)"
                    ))
                    .with_hint(format!(
                        "`sparkwing runs show {id}` shows what was recorded; the log above is \
                         everything it wrote"
                    )));
                }
                continue;
            }
            if orphan_since.is_some() {
                // Nobody writes any more, so no event will come: look again after a poll.
                tokio::time::sleep(FOLLOW_POLL).await;
                known = sources.runs.get_run(id).await?;
                continue;
            }
        }
        wait().await;
        known = sources.runs.get_run(id).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_flag() {
        assert_eq!(parse_lines("2:5").unwrap(), (2, 5));
        assert!(parse_lines("5:2").is_err());
        assert!(parse_lines("0:2").is_err());
        assert!(parse_lines("x").is_err());
    }

    #[test]
    fn pretty_logs_show_messages() {
        let rec = r#"{"ts":"2026-01-01T00:00:00Z","node":"b","msg":"hello"}"#;
        let mut out = Vec::new();
        render_logs(
            format!("{rec}\nnot json\n").as_bytes(),
            Some("b"),
            Format::Pretty,
            false,
            &mut out,
        );
        assert_eq!(String::from_utf8(out).unwrap(), "[b] hello\n[b] not json\n");
    }
}
