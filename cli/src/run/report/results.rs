//! A finished run as the reports show it: the run, one entry per job, and the last log lines of
//! each job that failed, read through the CLI's one run reader.

use crate::reader::Runs;
use sparkwing_contract::{LogRecord, NodeRecord, Outcome, RunRecord, RunStatus, timefmt};
use sparkwing_storage::{LogStore, ReadOpts};

/// Log lines shown for a failed job.
pub const TAIL_LINES: usize = 20;
/// Stored records read for a tail: lifecycle records (`· node_end`) are not shown, so read more
/// than are kept.
const TAIL_READ: usize = 4 * TAIL_LINES;
/// A longer log line is cut to this many characters: a report is read on a page, and vendors cap
/// its size (GitHub: 1 MiB per step summary).
pub const LINE_CHARS: usize = 500;

/// How a job ended, as the reports group it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Reused from a cache; counts as passed.
    Cached,
    Failed,
    Skipped,
    Cancelled,
    /// No outcome recorded: the run ended before the job did.
    Unfinished,
}

impl Verdict {
    fn of(node: &NodeRecord) -> Verdict {
        match node.outcome {
            Some(Outcome::Success) => Verdict::Passed,
            Some(Outcome::Cached) => Verdict::Cached,
            Some(Outcome::Failed) => Verdict::Failed,
            Some(Outcome::Skipped) => Verdict::Skipped,
            Some(Outcome::Cancelled) => Verdict::Cancelled,
            None => Verdict::Unfinished,
        }
    }

    /// The spelling in reports (the record's outcome where there is one).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "success",
            Verdict::Cached => "cached",
            Verdict::Failed => "failed",
            Verdict::Skipped => "skipped",
            Verdict::Cancelled => "cancelled",
            Verdict::Unfinished => "unfinished",
        }
    }
}

/// One job of the run.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub id: String,
    pub verdict: Verdict,
    /// `exit-code`, `timeout`, `upstream-failed`, … (empty when none).
    pub failure_reason: String,
    /// The record's error; for a skipped job, why it was skipped (from its log).
    pub error: String,
    pub exit_code: Option<i32>,
    /// From its start to its end; `None` for a job that never started.
    pub duration_ms: Option<i64>,
    /// Attempts made (at least 1 for a job that ran; 0 for one that never did).
    pub attempts: u32,
    /// Its last log lines when it failed or did not finish, oldest first, as a reader sees them
    /// (terminal sequences removed).
    pub log_tail: Vec<String>,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunResults {
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    pub error: String,
    /// Unix nanoseconds.
    pub started_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub jobs: Vec<JobResult>,
}

impl RunResults {
    /// Jobs with `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.jobs.iter().filter(|j| j.verdict == verdict).count()
    }

    /// Builds the results of `run` and its `nodes` (in record order); log tails are filled in
    /// later by [`read`].
    pub fn from_records(run: &RunRecord, nodes: &[NodeRecord]) -> RunResults {
        let started = timefmt::parse_rfc3339_nanos(&run.started_at);
        let span = |s: Option<i64>, f: Option<&str>| {
            Some((timefmt::parse_rfc3339_nanos(f?)? - s?) / 1_000_000)
        };
        RunResults {
            run_id: run.id.clone(),
            pipeline: run.pipeline.clone(),
            status: run.status,
            error: run.error.clone(),
            started_at: started,
            duration_ms: span(started, run.finished_at.as_deref()),
            jobs: nodes
                .iter()
                .map(|n| {
                    let verdict = Verdict::of(n);
                    // A skipped job is stamped started and finished at once, but never ran.
                    let ran = n.started_at.is_some() && verdict != Verdict::Skipped;
                    JobResult {
                        id: n.id.clone(),
                        verdict,
                        failure_reason: n.failure_reason.clone(),
                        error: n.error.clone(),
                        exit_code: n.exit_code,
                        duration_ms: span(
                            n.started_at
                                .as_deref()
                                .and_then(timefmt::parse_rfc3339_nanos),
                            n.finished_at.as_deref(),
                        )
                        .filter(|_| ran),
                        attempts: if ran { n.attempts.max(1) } else { n.attempts },
                        log_tail: Vec::new(),
                    }
                })
                .collect(),
        }
    }
}

/// Why the results could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Runs(#[from] crate::reader::RunsError),
    #[error("run has no records (the pipeline ended before it recorded the run)")]
    Missing,
}

/// The run `id` from `runs`; when that copy is missing or not yet final (a bucket whose last
/// upload failed) and `fallback` (this machine's SQLite record) has a final one, that one. Log
/// tails of failed and unfinished jobs come from `logs`; a log that cannot be read leaves its
/// tail empty, since the verdicts matter more than the lines.
pub async fn read(
    runs: &Runs,
    fallback: Option<&Runs>,
    logs: Option<&dyn LogStore>,
    id: &str,
) -> Result<RunResults, ReadError> {
    let primary = runs.get(id).await;
    let final_here = matches!(&primary, Ok(Some(s)) if s.run.status.is_terminal());
    let state = match (final_here, fallback) {
        (false, Some(local)) => match local.get(id).await {
            Ok(Some(s)) if s.run.status.is_terminal() => Some(s),
            _ => primary?,
        },
        _ => primary?,
    };
    let state = state.ok_or(ReadError::Missing)?;
    let mut results = RunResults::from_records(&state.run, &state.nodes);
    if let Some(logs) = logs {
        for (job, node) in results.jobs.iter_mut().zip(state.nodes.iter()) {
            // A cancelled job that had started was stopped mid-way: its last lines say where.
            let wanted = matches!(job.verdict, Verdict::Failed | Verdict::Unfinished)
                || (job.verdict == Verdict::Cancelled && node.started_at.is_some());
            if wanted {
                job.log_tail = tail(logs, id, &job.id).await;
            }
            if job.verdict == Verdict::Skipped && job.error.is_empty() {
                job.error = skip_reason(logs, id, &job.id).await.unwrap_or_default();
            }
        }
    }
    Ok(results)
}

/// The last [`TAIL_LINES`] lines a job logged, without lifecycle records.
async fn tail(logs: &dyn LogStore, run: &str, node: &str) -> Vec<String> {
    let opts = ReadOpts {
        tail: TAIL_READ,
        ..ReadOpts::default()
    };
    let Ok(bytes) = logs.read(run, node, &opts).await else {
        return Vec::new();
    };
    tail_lines(&bytes)
}

/// Why a job was skipped: the message of its `node_skipped` log record (the record has no field
/// for it).
async fn skip_reason(logs: &dyn LogStore, run: &str, node: &str) -> Option<String> {
    let bytes = logs.read(run, node, &ReadOpts::default()).await.ok()?;
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<LogRecord>(l).ok())
        .find(|r| r.event == "node_skipped" && !r.msg.is_empty())
        .map(|r| cut(&r.msg.replace(['\n', '\r'], " "), LINE_CHARS))
}

/// The last [`TAIL_LINES`] messages of stored log records (`bytes`: NDJSON), each on one line,
/// terminal sequences and control characters removed, at most [`LINE_CHARS`] characters.
pub fn tail_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|line| {
            let text = match serde_json::from_slice::<LogRecord>(line) {
                Ok(rec) if rec.msg.is_empty() => return None,
                Ok(rec) => rec.msg,
                Err(_) => String::from_utf8_lossy(line).into_owned(),
            };
            let text = text.replace(['\n', '\r'], " ");
            let text = sparkwing_contract::text::strip_controls(&text);
            Some(cut(&text, LINE_CHARS))
        })
        .collect();
    let skip = lines.len().saturating_sub(TAIL_LINES);
    lines.drain(..skip);
    lines
}

/// `s` cut to `max` characters, with `…` where it was cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_contract::StateDump;

    const ID: &str = "run-20261202-153000-0a1b2c3d";

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn run(pipeline: &str, status: RunStatus) -> (RunRecord, Vec<NodeRecord>) {
        let mut run = RunRecord::new(ID, pipeline, status, "2026-12-02T15:30:00Z");
        if status.is_terminal() {
            run.finished_at = Some("2026-12-02T15:30:02Z".into());
        }
        let mut node = NodeRecord::new(ID, "build", sparkwing_contract::NodeStatus::Done);
        node.outcome = Some(Outcome::Failed);
        node.started_at = Some("2026-12-02T15:30:00Z".into());
        node.finished_at = Some("2026-12-02T15:30:01.5Z".into());
        node.attempts = 1;
        (run, vec![node])
    }

    /// A bucket (a filesystem artifact store stands in: the reader is the same) holding `dump`.
    fn bucket(dir: &std::path::Path, dump: Option<(RunRecord, Vec<NodeRecord>)>) -> Runs {
        let store =
            sparkwing_storage::open_artifact_store(&format!("fs://{}", dir.display())).unwrap();
        if let Some((run, nodes)) = dump {
            let text = StateDump::render(&run, &nodes);
            block(store.put(&format!("runs/{ID}/state.ndjson"), text.into_bytes())).unwrap();
        }
        Runs::bucket(store)
    }

    fn local(path: &std::path::Path, dump: Option<(RunRecord, Vec<NodeRecord>)>) -> Runs {
        if let Some((run, nodes)) = dump {
            let w = sparkwing_records::Writer::open(path).unwrap();
            w.put_run(run);
            for n in nodes {
                w.put_node(n);
            }
            w.sync().unwrap();
        }
        Runs::local(path.to_path_buf())
    }

    #[test]
    fn the_bucket_is_read_and_this_machine_only_when_the_bucket_has_no_final_record() {
        let tmp = tempfile::tempdir().unwrap();
        let read =
            |runs: &Runs, fallback: &Runs| block(super::read(runs, Some(fallback), None, ID));
        // Final in the bucket: the bucket's record, whatever this machine holds.
        let b = bucket(
            &tmp.path().join("b1"),
            Some(run("from-bucket", RunStatus::Failed)),
        );
        let l = local(
            &tmp.path().join("l1.db"),
            Some(run("from-local", RunStatus::Failed)),
        );
        let r = read(&b, &l).unwrap();
        assert_eq!(r.pipeline, "from-bucket");
        assert_eq!(r.jobs[0].verdict, Verdict::Failed);
        assert_eq!(r.jobs[0].duration_ms, Some(1500));
        assert_eq!(r.duration_ms, Some(2000));
        // The bucket's last upload said running (or none landed): this machine's final record.
        let b = bucket(
            &tmp.path().join("b2"),
            Some(run("from-bucket", RunStatus::Running)),
        );
        let l = local(
            &tmp.path().join("l2.db"),
            Some(run("from-local", RunStatus::Success)),
        );
        assert_eq!(read(&b, &l).unwrap().pipeline, "from-local");
        let b = bucket(&tmp.path().join("b3"), None);
        assert_eq!(read(&b, &l).unwrap().pipeline, "from-local");
        // Neither has a final record: the bucket's as it is; neither has any: no report.
        let b = bucket(
            &tmp.path().join("b4"),
            Some(run("from-bucket", RunStatus::Running)),
        );
        let none = local(&tmp.path().join("none.db"), None);
        assert_eq!(read(&b, &none).unwrap().pipeline, "from-bucket");
        let b = bucket(&tmp.path().join("b5"), None);
        assert!(matches!(read(&b, &none), Err(ReadError::Missing)));
    }

    #[test]
    fn a_tail_keeps_the_last_messages_without_lifecycle_records_or_controls() {
        let mut text = String::new();
        text.push_str("{\"ts\":\"t\",\"event\":\"node_start\"}\n");
        for i in 1..=30 {
            text.push_str(&serde_json::json!({"ts": "t", "msg": format!("line {i}")}).to_string());
            text.push('\n');
        }
        text.push_str(
            &serde_json::json!({"ts": "t", "msg": "\u{1b}[31mred\u{1b}[0m\u{7}\r\nnext"})
                .to_string(),
        );
        text.push('\n');
        text.push_str(&serde_json::json!({"ts": "t", "msg": "x".repeat(600)}).to_string());
        text.push_str("\nnot json\n{\"ts\":\"t\",\"event\":\"node_end\"}\n");
        let got = tail_lines(text.as_bytes());
        assert_eq!(got.len(), TAIL_LINES);
        assert_eq!(got[0], "line 14");
        assert_eq!(got[16], "line 30");
        assert_eq!(got[17], "red  next");
        assert_eq!(got[18], format!("{}…", "x".repeat(LINE_CHARS)));
        assert_eq!(got[19], "not json");
    }
}
