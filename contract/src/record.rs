//! Run, node and log records. Field names follow the Go original so that either
//! dashboard can read either tool's bucket.
//!
//! `state.ndjson` is one [`Envelope`] per line: `{"kind": K, "data": {...}}` with K in `run`,
//! `node`, `event`; readers ignore unknown kinds and the last record per id wins.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Version of the state.ndjson / log part formats written by this build. Carried in every
/// `run` record as `format_version`; readers accept missing (Go original) and ≤ this value.
pub const FORMAT_VERSION: u32 = 1;

/// Run lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// The wire / database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "success" => RunStatus::Success,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    /// True once the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Success | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Node lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Pending,
    Running,
    Done,
}

impl NodeStatus {
    /// The wire / database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Pending => "pending",
            NodeStatus::Running => "running",
            NodeStatus::Done => "done",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<NodeStatus> {
        Some(match s {
            "pending" => NodeStatus::Pending,
            "running" => NodeStatus::Running,
            "done" => NodeStatus::Done,
            _ => return None,
        })
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failed,
    Cancelled,
    Skipped,
    Cached,
}

impl Outcome {
    /// The wire / database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Skipped => "skipped",
            Outcome::Cached => "cached",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "success" => Outcome::Success,
            "failed" => Outcome::Failed,
            "cancelled" => Outcome::Cancelled,
            "skipped" => Outcome::Skipped,
            "cached" => Outcome::Cached,
            _ => return None,
        })
    }

    /// Outcomes that let dependents run.
    pub fn satisfies_dependents(self) -> bool {
        matches!(self, Outcome::Success | Outcome::Skipped | Outcome::Cached)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How the run was invoked: recorded on the run as `invocation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// `local` or `ci-embedded`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// Where `mode` came from: `flag`, `env` (`SPARKWING_MODE`) or `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode_from: String,
    /// Worker cap in force.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub workers: u32,
    /// Where `workers` came from: `flag`, `env` (`SPARKWING_WORKERS`) or `default`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workers_from: String,
    /// Resolved profile name (empty: built-in defaults).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// Surface spec strings: `state`, `logs`, `cache`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, String>,
    /// CI vendor (`github-actions`, `buildkite`, `gitlab-ci`, `circleci`), empty when not in CI.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ci_vendor: String,
    /// Link to the CI job, when the vendor tells it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ci_job_url: String,
    /// Where the pipeline binary came from (`cached`, `remote-cache`, `compiled`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub binary_source: String,
    /// Working directory of the run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cwd: String,
    /// Anything else worth keeping (forward compatible).
    #[serde(default, flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The `run` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub pipeline: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When the run's state was last written to a bucket (RFC 3339). A run in flight writes it at
    /// least every [`HEARTBEAT_INTERVAL`], so a `running` run whose heartbeat is older than
    /// [`STALE_AFTER`] has most likely lost its machine. Absent in local records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_at: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_branch: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_sha: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repo_url: String,
    /// Pipeline arguments, secret values masked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    #[serde(default)]
    pub invocation: Invocation,
    /// Format version of the writer; absent in records written by the Go original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_version: Option<u32>,
}

impl NodeRecord {
    /// A node of run `run_id` in `status`, with nothing else recorded yet.
    pub fn new(run_id: impl Into<String>, id: impl Into<String>, status: NodeStatus) -> NodeRecord {
        NodeRecord {
            run_id: run_id.into(),
            id: id.into(),
            status,
            outcome: None,
            deps: Vec::new(),
            error: String::new(),
            exit_code: None,
            failure_reason: String::new(),
            started_at: None,
            finished_at: None,
            attempts: 0,
            outputs: BTreeMap::new(),
            artifacts: Vec::new(),
            status_detail: String::new(),
            shard: None,
        }
    }
}

/// How often a run in flight rewrites its state in a bucket even when nothing changed.
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// A `running` run whose last heartbeat is older than this is shown as stale.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// Key in `invocation` the runtime sets (to `true`) once every log part of the run is in the log
/// store or counted undelivered; the verdict is recorded before that, so a reader that follows the
/// logs waits for it.
pub const LOGS_DRAINED: &str = "logs_drained";

impl RunRecord {
    /// A run of `pipeline` in `status`, started at `started_at` (RFC 3339), with nothing else
    /// recorded yet, written by this format version.
    pub fn new(
        id: impl Into<String>,
        pipeline: impl Into<String>,
        status: RunStatus,
        started_at: impl Into<String>,
    ) -> RunRecord {
        RunRecord {
            id: id.into(),
            pipeline: pipeline.into(),
            status,
            error: String::new(),
            started_at: started_at.into(),
            finished_at: None,
            last_heartbeat_at: None,
            git_branch: String::new(),
            git_sha: String::new(),
            repo_url: String::new(),
            args: BTreeMap::new(),
            invocation: Invocation::default(),
            format_version: Some(FORMAT_VERSION),
        }
    }

    /// Whether the runtime has said that every log part is in the store ([`LOGS_DRAINED`]).
    pub fn logs_drained(&self) -> bool {
        self.invocation.extra.get(LOGS_DRAINED) == Some(&serde_json::Value::Bool(true))
    }

    /// How long ago the last heartbeat was, for a `running` run that has one.
    pub fn heartbeat_age(&self, now_unix_nanos: i64) -> Option<std::time::Duration> {
        if self.status != RunStatus::Running {
            return None;
        }
        let at = crate::timefmt::parse_rfc3339_nanos(self.last_heartbeat_at.as_deref()?)?;
        Some(std::time::Duration::from_nanos(
            now_unix_nanos.saturating_sub(at).max(0) as u64,
        ))
    }

    /// A `running` run whose heartbeat is older than [`STALE_AFTER`]: nothing has written its
    /// state for that long, so its machine is most likely gone. Runs without a heartbeat (local
    /// records, older writers) are never stale.
    pub fn is_stale(&self, now_unix_nanos: i64) -> bool {
        self.heartbeat_age(now_unix_nanos)
            .is_some_and(|age| age > STALE_AFTER)
    }
}

/// The `node` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    pub id: String,
    pub status: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Ids this node `needs`. Always present (may be empty).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub deps: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `timeout`, `upstream-failed`, `signal`, `oom_killed`, …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Number of attempts made (1 unless retried).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// JSON outputs the node published (`key → value`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// Artifact keys this node saved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// More about how the node ended, for people: `reused from run <id>` on a `cached` node.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_detail: String,
    /// The shard (1-based) that ran this node, in a run split across several CI jobs; absent in
    /// a run of one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// One line of `state.ndjson`.
// Node lines are most of a dump and live only while one line is read or written: boxing them
// would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "lowercase")]
pub enum Envelope {
    Run(Box<RunRecord>),
    Node(NodeRecord),
    Event(serde_json::Value),
}

/// One log line inside a log part: `{ts, level, node, step, event, msg, attrs}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub ts: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub level: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msg: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attrs: serde_json::Map<String, serde_json::Value>,
}

/// The text a person reads for one stored log line (one NDJSON record): its message on one line
/// (embedded line breaks become spaces, so one record never reads as two), `· <event>` for a
/// message-less lifecycle record, and a line that is not a record as it is. Whichever it is, a
/// line break in it becomes a space.
pub fn log_line_text(line: &[u8]) -> String {
    let text = match serde_json::from_slice::<LogRecord>(line) {
        Ok(rec) if rec.msg.is_empty() && !rec.event.is_empty() => format!("· {}", rec.event),
        Ok(rec) => rec.msg,
        Err(_) => String::from_utf8_lossy(line).into_owned(),
    };
    text.replace(['\n', '\r'], " ")
}

/// Result of parsing a state.ndjson blob: the last run record, nodes in first-seen order (last
/// record per id wins), events, and the lines that could not be read.
#[derive(Debug, Clone, Default)]
pub struct StateDump {
    pub run: Option<RunRecord>,
    pub nodes: Vec<NodeRecord>,
    pub events: Vec<serde_json::Value>,
    /// `(line number, reason)` for every skipped line.
    pub bad_lines: Vec<(usize, String)>,
}

impl StateDump {
    /// Parses a state.ndjson blob, skipping (and reporting) unreadable lines and unknown kinds.
    ///
    /// Each line is read once: its `kind` and the raw text of its `data`, then `data` straight into
    /// its record type (no `serde_json::Value` in between, whose generic decoding of every record
    /// type would be compiled into every program that reads a dump).
    pub fn parse(text: &str) -> StateDump {
        /// A line's envelope, with `data` left unparsed until the kind is known.
        #[derive(Deserialize)]
        struct Line<'a> {
            #[serde(default, borrow)]
            kind: Option<&'a serde_json::value::RawValue>,
            #[serde(default, borrow)]
            data: Option<&'a serde_json::value::RawValue>,
        }
        fn data<'a, T: Deserialize<'a>>(line: &Line<'a>) -> Result<T, String> {
            let raw = line.data.ok_or("missing field `data`")?;
            serde_json::from_str(raw.get()).map_err(|e| e.to_string())
        }

        let mut dump = StateDump::default();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let envelope: Line = match serde_json::from_str(line) {
                Ok(l) => l,
                Err(e) => {
                    match serde_json::from_str::<serde::de::IgnoredAny>(line) {
                        Err(e) => dump.bad_lines.push((i + 1, format!("not JSON: {e}"))),
                        // An object that is no envelope (a repeated key, say) is a bad record;
                        // other JSON has no kind, and unknown kinds are ignored by contract.
                        Ok(_) if line.starts_with('{') => {
                            dump.bad_lines.push((i + 1, format!("bad record: {e}")))
                        }
                        Ok(_) => {}
                    }
                    continue;
                }
            };
            let kind = envelope
                .kind
                .and_then(|k| serde_json::from_str::<String>(k.get()).ok())
                .unwrap_or_default();
            let read = match kind.as_str() {
                "run" => data::<RunRecord>(&envelope).map(|r| dump.run = Some(r)),
                "node" => data::<NodeRecord>(&envelope).map(|n| match index.get(&n.id) {
                    Some(&pos) => dump.nodes[pos] = n,
                    None => {
                        index.insert(n.id.clone(), dump.nodes.len());
                        dump.nodes.push(n);
                    }
                }),
                "event" => data::<serde_json::Value>(&envelope).map(|e| dump.events.push(e)),
                _ => continue, // unknown kinds are ignored by contract
            };
            if let Err(e) = read {
                dump.bad_lines
                    .push((i + 1, format!("bad `{kind}` record: {e}")));
            }
        }
        dump
    }

    /// Serializes a run and its nodes as state.ndjson (one run line, then one line per node).
    pub fn render<'a>(run: &RunRecord, nodes: impl IntoIterator<Item = &'a NodeRecord>) -> String {
        /// [`Envelope`] over borrowed records: the same lines without a copy of each record.
        #[derive(Serialize)]
        #[serde(tag = "kind", content = "data", rename_all = "lowercase")]
        enum Line<'a> {
            Run(&'a RunRecord),
            Node(&'a NodeRecord),
        }
        let nodes = nodes.into_iter();
        let mut out: Vec<u8> = Vec::with_capacity(256 * (nodes.size_hint().0 + 1));
        let mut push = |line: Line<'_>| {
            // Serialization of these plain structs cannot fail; a line is written whole or not.
            let mark = out.len();
            match serde_json::to_writer(&mut out, &line) {
                Ok(()) => out.push(b'\n'),
                Err(_) => out.truncate(mark),
            }
        };
        push(Line::Run(run));
        for n in nodes {
            push(Line::Node(n));
        }
        // serde_json writes UTF-8 only.
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunRecord {
        RunRecord {
            git_branch: "main".into(),
            ..RunRecord::new(
                "run-20260420-093112-a7f2c3d4",
                "ci",
                RunStatus::Running,
                "2026-04-20T09:31:12Z",
            )
        }
    }

    #[test]
    fn a_running_run_with_an_old_heartbeat_is_stale() {
        let now = crate::timefmt::parse_rfc3339_nanos("2026-04-20T10:00:00Z").unwrap();
        let mut r = run();
        assert!(!r.is_stale(now), "no heartbeat: never stale");
        r.last_heartbeat_at = Some("2026-04-20T09:59:00Z".into());
        assert_eq!(
            r.heartbeat_age(now),
            Some(std::time::Duration::from_secs(60))
        );
        assert!(!r.is_stale(now));
        r.last_heartbeat_at = Some("2026-04-20T09:57:59Z".into());
        assert!(r.is_stale(now));
        r.status = RunStatus::Success;
        assert!(!r.is_stale(now), "only running runs go stale");
        let line = serde_json::to_string(&Envelope::Run(Box::new(r))).unwrap();
        assert!(
            line.contains(r#""last_heartbeat_at":"2026-04-20T09:57:59Z""#),
            "{line}"
        );
    }

    #[test]
    fn envelope_shape_matches_the_go_original() {
        let line = serde_json::to_string(&Envelope::Run(Box::new(run()))).unwrap();
        assert!(
            line.starts_with(r#"{"kind":"run","data":{"id":"run-20260420"#),
            "{line}"
        );
    }

    #[test]
    fn render_writes_one_envelope_per_line_and_parses_back() {
        let mut done = NodeRecord::new("run-20260420-093112-a7f2c3d4", "test", NodeStatus::Done);
        done.deps = vec!["build".into()];
        done.error = "said \"no\"\n".into();
        let nodes = [
            NodeRecord::new("run-20260420-093112-a7f2c3d4", "build", NodeStatus::Running),
            done,
        ];
        let text = StateDump::render(&run(), &nodes);
        let expected: Vec<String> = std::iter::once(Envelope::Run(Box::new(run())))
            .chain(nodes.iter().cloned().map(Envelope::Node))
            .map(|e| serde_json::to_string(&e).unwrap())
            .collect();
        assert_eq!(text, expected.join("\n") + "\n");
        let dump = StateDump::parse(&text);
        assert_eq!(dump.run, Some(run()));
        assert_eq!(dump.nodes, nodes);
        assert!(dump.bad_lines.is_empty());
    }

    #[test]
    fn a_number_in_a_field_this_version_does_not_know_reads_back_the_same() {
        // Found by the fuzzer: an integer too long for any integer type reads as the nearest
        // float, and rendering that float must read back as that float, not one next to it.
        let line = format!(
            r#"{{"kind":"run","data":{{"id":"run-20260420-093112-a7f2c3d4","pipeline":"ci","status":"failed","started_at":"x","invocation":{{"profile":"ci","w":{}2}}}}}}"#,
            "7".repeat(89)
        );
        let dump = StateDump::parse(&line);
        let run = dump.run.expect("the run record");
        let again = StateDump::parse(&StateDump::render(&run, &dump.nodes));
        assert_eq!(again.run, Some(run));
    }

    #[test]
    fn parse_skips_bad_lines_and_keeps_last_node_record() {
        let node = |status: &str| {
            format!(
                r#"{{"kind":"node","data":{{"run_id":"r","id":"build","status":"{status}","deps":null}}}}"#
            )
        };
        let text = format!(
            "{}\n{}\nnot json\n{{\"kind\":\"metric_sample\",\"data\":{{}}}}\n{}\n",
            serde_json::to_string(&Envelope::Run(Box::new(run()))).unwrap(),
            node("running"),
            node("done")
        );
        let dump = StateDump::parse(&text);
        assert_eq!(dump.run.unwrap().pipeline, "ci");
        assert_eq!(dump.nodes.len(), 1);
        assert_eq!(dump.nodes[0].status, NodeStatus::Done);
        assert!(dump.nodes[0].deps.is_empty());
        assert_eq!(dump.bad_lines.len(), 1);
        assert_eq!(dump.bad_lines[0].0, 3);
    }

    #[test]
    fn parse_reads_each_envelope_shape_as_before() {
        let text = [
            r#"[1, 2]"#,                                      // JSON, no kind: ignored
            r#"{"kind": 5, "data": {}}"#,                     // a kind that is no string: ignored
            r#"{"kind": "node"}"#,                            // no data: bad
            r#"{"kind": "node", "kind": "run", "data": {}}"#, // a repeated key: bad
            r#"{"kind": "n\u006fde", "data": {"id": "x", "status": "done"}}"#,
            r#"{"data": {"a": 1}, "kind": "event"}"#, // data before kind
            r#"{"kind": "node", "data": {"id": "y", "status": "nope"}}"#,
        ]
        .join("\n");
        let dump = StateDump::parse(&text);
        let bad: Vec<(usize, &str)> = dump
            .bad_lines
            .iter()
            .map(|(n, why)| (*n, why.as_str()))
            .collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert_eq!(bad[0].0, 3);
        assert!(bad[0].1.contains("missing field `data`"), "{bad:?}");
        assert_eq!(bad[1].0, 4);
        assert!(
            bad[1].1.starts_with("bad record: duplicate field"),
            "{bad:?}"
        );
        assert_eq!(bad[2].0, 7);
        assert!(bad[2].1.starts_with("bad `node` record"), "{bad:?}");
        assert_eq!(dump.nodes.len(), 1);
        assert_eq!(dump.nodes[0].id, "x");
        assert_eq!(dump.events, vec![serde_json::json!({"a": 1})]);
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn statuses_honour_width_in_tables() {
        assert_eq!(format!("[{:<9}]", RunStatus::Success), "[success  ]");
        assert_eq!(format!("[{:<8}]", NodeStatus::Done), "[done    ]");
        assert_eq!(format!("[{:>9}]", Outcome::Failed), "[   failed]");
    }
}

#[cfg(test)]
mod log_text_tests {
    #[test]
    fn one_record_reads_as_one_line() {
        let t = |s: &str| super::log_line_text(s.as_bytes());
        assert_eq!(
            t(r#"{"ts":"x","level":"info","node":"a","msg":"hello"}"#),
            "hello"
        );
        assert_eq!(
            t(r#"{"ts":"x","level":"info","node":"a","msg":"two\nlines\r"}"#),
            "two lines "
        );
        assert_eq!(
            t(r#"{"ts":"x","level":"info","node":"a","msg":"","event":"node_start"}"#),
            "· node_start"
        );
        assert_eq!(t(r#"{"ts":"t","event":"node_\nd\r"}"#), "· node_ d ");
        assert_eq!(t("not json"), "not json");
        assert_eq!(t("not\rjson\n"), "not json ");
    }
}
