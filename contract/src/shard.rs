//! Runs split across several CI jobs (shards): what a shard is, how a CI job finds its own,
//! the run id every shard of one run shares, where each shard writes, and how readers merge the
//! shards' records back into one run.
//!
//! Layout in the state surface of a bucket:
//!
//! ```text
//! runs/<id>/assignment.json      which shard runs which job (written create-only, once)
//! runs/<id>/shards/<I>.ndjson    shard I's run record and the records of its jobs
//! ```
//!
//! Each shard writes only its own file, so two writers never meet on one key except on
//! `assignment.json`, whose first write wins.

use crate::id::RunId;
use crate::record::{NodeRecord, NodeStatus, RunRecord, RunStatus, StateDump};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The largest number of shards of one run.
pub const MAX_SHARDS: u32 = 256;

/// One shard of a run: `index` of `total`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl Shard {
    /// Parses `I/N`: `1 ≤ I ≤ N ≤ 256`. The error names the problem.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let t = s.trim();
        let Some((i, n)) = t.split_once('/') else {
            return Err(format!(
                "`{}` is not a shard: write `I/N` (this job's 1-based index and the number of shards, e.g. `2/3`), `auto` or `wait`",
                t.escape_debug()
            ));
        };
        let num = |v: &str, what: &str| {
            v.trim().parse::<u32>().map_err(|_| {
                format!(
                    "`{}` is not a shard: the {what} `{}` is not a whole number",
                    t.escape_debug(),
                    v.escape_debug()
                )
            })
        };
        let (index, total) = (num(i, "index")?, num(n, "count")?);
        Shard::new(index, total).map_err(|e| format!("`{}` is not a shard: {e}", t.escape_debug()))
    }

    /// Checks `1 ≤ index ≤ total ≤ MAX_SHARDS`.
    pub fn new(index: u32, total: u32) -> Result<Shard, String> {
        if total == 0 || total > MAX_SHARDS {
            return Err(format!(
                "the number of shards must be between 1 and {MAX_SHARDS}, not {total}"
            ));
        }
        if index == 0 || index > total {
            return Err(format!(
                "the index {index} is outside 1..={total} (shard indexes start at 1)"
            ));
        }
        Ok(Shard { index, total })
    }
}

/// What `--sw-shard` (or `SPARKWING_SHARD`) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// This process runs shard `I/N`.
    Fixed(Shard),
    /// Read the index and count from the CI vendor's parallel-job variables.
    Auto,
    /// Run no job: wait for every shard of the run and exit with the run's verdict.
    Wait,
}

impl ShardArg {
    /// Parses `I/N`, `auto` or `wait`.
    pub fn parse(s: &str) -> Result<ShardArg, String> {
        match s.trim() {
            "auto" => Ok(ShardArg::Auto),
            "wait" => Ok(ShardArg::Wait),
            other => Shard::parse(other).map(ShardArg::Fixed),
        }
    }
}

/// The shard of this CI job, from the vendor's parallel-job variables (`--sw-shard=auto`):
/// `SPARKWING_SHARD_INDEX`/`_TOTAL` (1-based, for GitHub Actions' matrix), Buildkite's
/// `BUILDKITE_PARALLEL_JOB`/`_COUNT` (0-based), GitLab's `CI_NODE_INDEX`/`CI_NODE_TOTAL`
/// (1-based), CircleCI's `CIRCLE_NODE_INDEX`/`CIRCLE_NODE_TOTAL` (0-based).
pub fn detect(get: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let sources: [(&str, &str, u32); 4] = [
        (crate::env::SHARD_INDEX, crate::env::SHARD_TOTAL, 1),
        ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
        ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
        ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
    ];
    let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    for (idx, tot, base) in sources {
        let (Some(i), Some(n)) = (nonempty(idx), nonempty(tot)) else {
            continue;
        };
        let num = |name: &str, v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{name}` is `{}`, not a whole number", v.escape_debug()))
        };
        let (i, n) = (num(idx, &i)?, num(tot, &n)?);
        let index = i.checked_add(1 - base).unwrap_or(i);
        return Shard::new(index, n).map_err(|e| format!("`{idx}`={i}, `{tot}`={n}: {e}"));
    }
    Err(format!(
        "--sw-shard=auto found no parallel-job variables: set `{}` (1-based) and `{}` (on GitHub Actions from a 1-based matrix value and `strategy.job-total`), or run under Buildkite `parallelism`, GitLab `parallel` or CircleCI `parallelism`",
        crate::env::SHARD_INDEX,
        crate::env::SHARD_TOTAL
    ))
}

/// The identity of this CI run as the vendor tells it, the same in every parallel job of one
/// attempt and different in a retry of the whole workflow: GitHub's run id and attempt,
/// Buildkite's build id and retry count, GitLab's pipeline id, CircleCI's workflow id.
pub fn vendor_run_identity(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    let v = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    if let Some(id) = v("GITHUB_RUN_ID") {
        let attempt = v("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
        return Some(format!("github:{id}:{attempt}"));
    }
    if let Some(id) = v("BUILDKITE_BUILD_ID") {
        // A retry of one job keeps the build id, so it joins the same run.
        return Some(format!("buildkite:{id}"));
    }
    if let Some(id) = v("CI_PIPELINE_ID") {
        return Some(format!("gitlab:{id}"));
    }
    if let Some(id) = v("CIRCLE_WORKFLOW_ID") {
        return Some(format!("circleci:{id}"));
    }
    None
}

/// The run id every shard derives alike from the CI run's `identity` and a time all shards agree
/// on (the commit time of the checked-out revision): `run-YYYYMMDD-HHMMSS-<16 hex of a digest>`.
pub fn derived_run_id(identity: &str, unix_secs: i64) -> RunId {
    let stamp = crate::timefmt::unix_nanos_to_rfc3339(unix_secs.saturating_mul(1_000_000_000));
    let digits: String = stamp
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let id = format!(
        "run-{}-{}-{:016x}",
        &digits[..8],
        &digits[8..14],
        fnv64(identity.as_bytes())
    );
    RunId::parse(&id).unwrap_or_else(|_| RunId::generate())
}

/// FNV-1a, 64 bits: a stable digest (not a secret; only a spread of the identity).
fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The key of shard `index`'s records.
pub fn shard_key(run_id: &str, index: u32) -> String {
    format!("runs/{run_id}/shards/{index}.ndjson")
}

/// The prefix under which a run's shard files are listed.
pub fn shards_prefix(run_id: &str) -> String {
    format!("runs/{run_id}/shards/")
}

/// The key of a run's assignment.
pub fn assignment_key(run_id: &str) -> String {
    format!("runs/{run_id}/assignment.json")
}

/// The key of how long each job of `pipeline` took in its latest sharded runs (a JSON object of
/// job id → seconds), which balances the next assignment.
pub fn durations_key(pipeline: &str) -> String {
    format!("runs/durations/{pipeline}.json")
}

/// `(run id, shard index)` of a shard key, else `None`.
pub fn of_shard_key(key: &str) -> Option<(&str, u32)> {
    let rest = key.strip_prefix("runs/")?;
    let (id, file) = rest.split_once("/shards/")?;
    let n = file.strip_suffix(".ndjson")?;
    if id.is_empty() || id.contains('/') || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((id, n.parse().ok()?))
}

/// How long a shard's state may go unwritten before the shards waiting on it take it as gone:
/// four heartbeats.
pub fn stale_after(heartbeat: Duration) -> Duration {
    heartbeat * 4
}

/// One job of an assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    pub id: String,
    pub shard: u32,
    #[serde(default)]
    pub deps: Vec<String>,
}

/// Which shard runs which job (`runs/<id>/assignment.json`), in plan order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub pipeline: String,
    pub shards: u32,
    pub jobs: Vec<Assigned>,
}

impl Assignment {
    /// The shard of job `id`.
    pub fn shard_of(&self, id: &str) -> Option<u32> {
        self.jobs.iter().find(|j| j.id == id).map(|j| j.shard)
    }

    /// Parses the stored JSON.
    pub fn parse(bytes: &[u8]) -> Result<Assignment, String> {
        let a: Assignment = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if a.shards == 0 || a.shards > MAX_SHARDS {
            return Err(format!("`shards` is {}", a.shards));
        }
        if let Some(j) = a.jobs.iter().find(|j| j.shard == 0 || j.shard > a.shards) {
            return Err(format!(
                "job `{}` is on shard {}",
                j.id.escape_debug(),
                j.shard
            ));
        }
        Ok(a)
    }

    /// The JSON to store.
    pub fn render(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Merges the shards of run `run_id` into one dump: one run record, every job of the assignment
/// in plan order (pending until its shard records it), each node naming its shard.
///
/// The run is `running` while any shard is, or while a shard has not written yet; then `failed`
/// if any shard failed, `cancelled` if any was, else `success`. `None` without any shard file.
pub fn merge(
    run_id: &str,
    assignment: Option<&Assignment>,
    shards: &[(u32, StateDump)],
) -> Option<StateDump> {
    let mut out = StateDump::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    if let Some(a) = assignment {
        for j in &a.jobs {
            index.insert(j.id.clone(), out.nodes.len());
            out.nodes.push(NodeRecord {
                deps: j.deps.clone(),
                shard: Some(j.shard),
                ..NodeRecord::new(run_id, j.id.clone(), NodeStatus::Pending)
            });
        }
    }
    let mut runs: Vec<(u32, &RunRecord)> = Vec::new();
    for (i, dump) in shards {
        if let Some(r) = &dump.run {
            runs.push((*i, r));
        }
        for (line, why) in &dump.bad_lines {
            out.bad_lines.push((*line, format!("shard {i}: {why}")));
        }
        out.events.extend(dump.events.iter().cloned());
        for n in &dump.nodes {
            // A shard speaks only for its own jobs; its view of other shards' jobs is ignored.
            if assignment
                .and_then(|a| a.shard_of(&n.id))
                .is_some_and(|s| s != *i)
            {
                continue;
            }
            let mut n = n.clone();
            n.shard.get_or_insert(*i);
            match index.get(&n.id) {
                Some(&p) => out.nodes[p] = n,
                None => {
                    index.insert(n.id.clone(), out.nodes.len());
                    out.nodes.push(n);
                }
            }
        }
    }
    runs.sort_by_key(|(i, _)| *i);
    let (_, first) = runs.first()?;
    let mut run = (*first).clone();
    run.id = run_id.to_string();
    let total = assignment.map_or_else(
        || shards.iter().map(|(i, _)| *i).max().unwrap_or(1),
        |a| a.shards,
    );
    let statuses: Vec<RunStatus> = runs.iter().map(|(_, r)| r.status).collect();
    let all_in = runs.len() as u32 >= total;
    run.status = if !all_in || statuses.iter().any(|s| !s.is_terminal()) {
        RunStatus::Running
    } else if statuses.contains(&RunStatus::Failed) {
        RunStatus::Failed
    } else if statuses.contains(&RunStatus::Cancelled) {
        RunStatus::Cancelled
    } else {
        RunStatus::Success
    };
    run.started_at = runs
        .iter()
        .map(|(_, r)| r.started_at.clone())
        .min()
        .unwrap_or_default();
    run.finished_at = if run.status.is_terminal() {
        runs.iter().filter_map(|(_, r)| r.finished_at.clone()).max()
    } else {
        None
    };
    // The newest heartbeat of a shard still running: the run goes stale when all of them do.
    run.last_heartbeat_at = runs
        .iter()
        .filter(|(_, r)| !r.status.is_terminal())
        .filter_map(|(_, r)| r.last_heartbeat_at.clone())
        .max()
        .or_else(|| {
            runs.iter()
                .filter_map(|(_, r)| r.last_heartbeat_at.clone())
                .max()
        });
    let errors: Vec<String> = runs
        .iter()
        .filter(|(_, r)| !r.error.is_empty())
        .map(|(i, r)| format!("shard {i}: {}", r.error))
        .collect();
    run.error = errors.join("; ");
    let drained = runs.iter().all(|(_, r)| r.logs_drained()) && all_in;
    let extra = &mut run.invocation.extra;
    extra.insert("shards".into(), total.into());
    extra.insert("shards_reporting".into(), (runs.len() as u64).into());
    extra.remove("shard");
    if drained {
        extra.insert(crate::record::LOGS_DRAINED.into(), true.into());
    } else {
        extra.remove(crate::record::LOGS_DRAINED);
    }
    out.run = Some(run);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;

    #[test]
    fn shards_parse_with_clear_errors() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, total: 3 }));
        assert_eq!(ShardArg::parse("wait"), Ok(ShardArg::Wait));
        assert_eq!(ShardArg::parse("auto"), Ok(ShardArg::Auto));
        for bad in ["0/3", "4/3", "1/0", "a/3", "3", "1/999"] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("is not a shard"), "{bad}: {e}");
        }
        assert!(Shard::parse("0/3").unwrap_err().contains("start at 1"));
    }

    #[test]
    fn auto_reads_the_vendor_variables_with_their_bases() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let bk = env(&[
            ("BUILDKITE_PARALLEL_JOB", "0"),
            ("BUILDKITE_PARALLEL_JOB_COUNT", "4"),
        ]);
        assert_eq!(detect(bk), Ok(Shard { index: 1, total: 4 }));
        let gl = env(&[("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")]);
        assert_eq!(detect(gl), Ok(Shard { index: 3, total: 3 }));
        let cc = env(&[("CIRCLE_NODE_INDEX", "1"), ("CIRCLE_NODE_TOTAL", "2")]);
        assert_eq!(detect(cc), Ok(Shard { index: 2, total: 2 }));
        let gh = env(&[
            ("SPARKWING_SHARD_INDEX", "2"),
            ("SPARKWING_SHARD_TOTAL", "2"),
        ]);
        assert_eq!(detect(gh), Ok(Shard { index: 2, total: 2 }));
        assert!(
            detect(env(&[]))
                .unwrap_err()
                .contains("SPARKWING_SHARD_INDEX")
        );
        let bad = env(&[("CI_NODE_INDEX", "x"), ("CI_NODE_TOTAL", "3")]);
        assert!(detect(bad).unwrap_err().contains("CI_NODE_INDEX"));
    }

    #[test]
    fn the_run_id_is_the_same_for_one_attempt_and_new_for_a_retry() {
        let gh = |attempt: &'static str| {
            move |k: &str| match k {
                "GITHUB_RUN_ID" => Some("987654".to_string()),
                "GITHUB_RUN_ATTEMPT" => Some(attempt.to_string()),
                _ => None,
            }
        };
        let a = vendor_run_identity(gh("1")).unwrap();
        let b = vendor_run_identity(gh("2")).unwrap();
        let t = 1_764_700_000;
        assert_eq!(derived_run_id(&a, t), derived_run_id(&a, t));
        assert_ne!(derived_run_id(&a, t), derived_run_id(&b, t));
        assert!(derived_run_id(&a, t).as_str().starts_with("run-20251202-"));
    }

    #[test]
    fn keys() {
        assert_eq!(shard_key("run-1", 2), "runs/run-1/shards/2.ndjson");
        assert_eq!(
            of_shard_key("runs/run-1/shards/2.ndjson"),
            Some(("run-1", 2))
        );
        assert_eq!(of_shard_key("runs/run-1/shards/x.ndjson"), None);
        assert_eq!(of_shard_key("runs/a/b/shards/1.ndjson"), None);
    }

    fn dump(i: u32, status: RunStatus, nodes: &[(&str, Option<Outcome>)]) -> (u32, StateDump) {
        let mut run = RunRecord::new("run-x", "ci", status, format!("2026-01-01T00:00:0{i}Z"));
        run.invocation.extra.insert("shard".into(), i.into());
        let nodes = nodes
            .iter()
            .map(|(id, o)| NodeRecord {
                outcome: *o,
                ..NodeRecord::new(
                    "run-x",
                    *id,
                    if o.is_some() {
                        NodeStatus::Done
                    } else {
                        NodeStatus::Running
                    },
                )
            })
            .collect();
        (
            i,
            StateDump {
                run: Some(run),
                nodes,
                ..Default::default()
            },
        )
    }

    #[test]
    fn shards_merge_into_one_run_with_one_graph() {
        let a = Assignment {
            pipeline: "ci".into(),
            shards: 2,
            jobs: vec![
                Assigned {
                    id: "a".into(),
                    shard: 1,
                    deps: vec![],
                },
                Assigned {
                    id: "b".into(),
                    shard: 2,
                    deps: vec!["a".into()],
                },
            ],
        };
        let one = dump(1, RunStatus::Success, &[("a", Some(Outcome::Success))]);
        let m = merge("run-x", Some(&a), std::slice::from_ref(&one)).unwrap();
        assert_eq!(
            m.run.as_ref().unwrap().status,
            RunStatus::Running,
            "shard 2 is not in"
        );
        assert_eq!(m.nodes.len(), 2);
        assert_eq!(m.nodes[1].status, NodeStatus::Pending);
        assert_eq!(m.nodes[1].shard, Some(2));
        assert_eq!(m.nodes[1].deps, ["a"]);
        let two = dump(2, RunStatus::Failed, &[("b", Some(Outcome::Failed))]);
        let m = merge("run-x", Some(&a), &[one, two]).unwrap();
        let run = m.run.unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.started_at, "2026-01-01T00:00:01Z");
        assert_eq!(run.invocation.extra["shards"], 2);
        assert_eq!(m.nodes[0].shard, Some(1));
        assert_eq!(m.nodes[1].outcome, Some(Outcome::Failed));
        assert!(merge("run-x", Some(&a), &[]).is_none());
    }
}
