//! `--sw-shard`: which shard of a run this CI job is, the run id all shards share, and
//! `--sw-shard=wait`, which runs no job and waits for the whole run's verdict.

use crate::error::{CliError, CliResult};
use sparkwing_contract::shard::{self, Shard, ShardArg};
use sparkwing_contract::{RunId, RunStatus, env};
use std::path::Path;
use std::time::Duration;

/// What a sharded `sparkwing run` does.
#[derive(Debug, Clone)]
pub enum Sharding {
    /// Run this shard's jobs of run `run_id`.
    Run { shard: Shard, run_id: RunId },
    /// Wait for every shard of `run_id` and exit with the run's verdict.
    Wait { run_id: RunId },
}

impl Sharding {
    pub fn run_id(&self) -> &RunId {
        match self {
            Sharding::Run { run_id, .. } | Sharding::Wait { run_id } => run_id,
        }
    }
}

/// Reads `--sw-shard`/`SPARKWING_SHARD` and `--sw-run-id`/`SPARKWING_SHARD_RUN_ID`; `None` for
/// a run of one process.
pub fn resolve(
    args: &super::args::RunArgs,
    ci_embedded: bool,
    root: &Path,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<Sharding>, CliError> {
    let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let arg = match (args.shard, nonempty(env::SHARD)) {
        (Some(a), _) => Some(a),
        (None, Some(v)) => Some(super::args::parse_shard(&v, env::SHARD)?),
        (None, None) => None,
    };
    let Some(arg) = arg else {
        if args.run_id.is_some() {
            return Err(
                CliError::usage("`--sw-run-id` names the run of several shards")
                    .with_hint("add `--sw-shard=I/N` (or `auto`, or `wait`)"),
            );
        }
        return Ok(None);
    };
    if !ci_embedded {
        return Err(CliError::usage(
            "`--sw-shard` splits a run across CI jobs, which meet in a bucket",
        )
        .with_hint(
            "add `--sw-mode=ci-embedded` and a `--profile` whose surfaces are in a bucket",
        ));
    }
    if args.watch {
        return Err(
            CliError::usage("`--sw-shard` and `--watch` do not go together")
                .with_hint("a sharded run belongs in CI; drop one of them"),
        );
    }
    let run_id = match (&args.run_id, nonempty(env::RUN_ID_OVERRIDE)) {
        (Some(id), _) => id.clone(),
        (None, Some(v)) => super::args::parse_run_id(&v, env::RUN_ID_OVERRIDE)?,
        (None, None) => {
            let Some(identity) = shard::vendor_run_identity(&get) else {
                return Err(CliError::usage(
                    "the shards of a run need a run id they share, and no CI run id was found (GITHUB_RUN_ID, BUILDKITE_BUILD_ID, CI_PIPELINE_ID, CIRCLE_WORKFLOW_ID)",
                )
                .with_hint("pass the same `--sw-run-id=run-YYYYMMDD-HHMMSS-<hex>` to every shard"));
            };
            shard::derived_run_id(&identity, commit_time(root))
        }
    };
    Ok(Some(match arg {
        ShardArg::Wait => Sharding::Wait { run_id },
        ShardArg::Fixed(shard) => Sharding::Run { shard, run_id },
        ShardArg::Auto => {
            let shard = shard::detect(&get)
                .map_err(|e| CliError::usage(e).with_hint("or pass `--sw-shard=I/N` yourself"))?;
            Sharding::Run { shard, run_id }
        }
    }))
}

/// The commit time of the checked-out revision (the same in every shard), else 0.
fn commit_time(root: &Path) -> i64 {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["log", "-1", "--format=%ct"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// The heartbeat the shards run with ([`env::HEARTBEAT_MS`], default 30 s).
fn heartbeat(get: impl Fn(&str) -> Option<String>) -> Duration {
    get(env::HEARTBEAT_MS)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms >= 100)
        .map_or(
            sparkwing_contract::record::HEARTBEAT_INTERVAL,
            Duration::from_millis,
        )
}

/// `--sw-shard=wait`: polls the run until every shard has ended (or gone stale) and returns the
/// run's exit code: 0 when every job succeeded, 1 otherwise.
pub fn wait(
    profile: &sparkwing_config::Resolved,
    run_id: &RunId,
    rt: &tokio::runtime::Runtime,
) -> CliResult {
    let spec = crate::source::state_dump_surface(profile).spec_string();
    let store = sparkwing_storage::open_artifact_store(&spec)
        .map_err(|e| CliError::failure(format!("open `{spec}`: {e}")))?;
    let beat = heartbeat(|k| std::env::var(k).ok());
    let stale = shard::stale_after(beat);
    eprintln!("==> waiting for every shard of {run_id} in {spec}");
    let mut announced = std::collections::BTreeSet::new();
    rt.block_on(async {
        loop {
            let read = crate::reader::bucket::read_merged(store.as_ref(), run_id.as_str()).await;
            match read {
                Ok(Some((Some(a), dumps))) => {
                    let now = sparkwing_contract::timefmt::now_unix_nanos();
                    let mut lost = Vec::new();
                    let mut done = 0;
                    for (i, d) in &dumps {
                        let Some(r) = &d.run else { continue };
                        if r.status.is_terminal() {
                            done += 1;
                            if announced.insert(*i) {
                                eprintln!("shard {i}/{}: {}", a.shards, r.status);
                            }
                        } else if r.heartbeat_age(now).is_some_and(|age| age > stale) {
                            lost.push(*i);
                        }
                    }
                    if done + lost.len() as u32 >= a.shards && dumps.len() as u32 >= a.shards {
                        let merged = shard::merge(run_id.as_str(), Some(&a), &dumps);
                        let status = merged
                            .as_ref()
                            .and_then(|m| m.run.as_ref())
                            .map_or(RunStatus::Failed, |r| r.status);
                        for i in &lost {
                            eprintln!(
                                "shard {i}/{}: stopped writing its state (heartbeat older than {}): its CI job is most likely gone",
                                a.shards,
                                sparkwing_contract::human::duration(stale)
                            );
                        }
                        let ok = lost.is_empty() && status == RunStatus::Success;
                        let nodes = merged.map(|m| m.nodes).unwrap_or_default();
                        let failed: Vec<String> = nodes
                            .iter()
                            .filter(|n| n.outcome.is_some_and(|o| !o.satisfies_dependents()))
                            .map(|n| {
                                format!(
                                    "`{}` (shard {}) {}",
                                    sparkwing_contract::text::printable(&n.id),
                                    n.shard.unwrap_or(0),
                                    n.outcome.map_or("", |o| o.as_str())
                                )
                            })
                            .collect();
                        eprintln!(
                            "{run_id}: {} ({} shard(s), {} job(s))",
                            if ok { "success" } else { "failed" },
                            a.shards,
                            nodes.len()
                        );
                        if !failed.is_empty() {
                            eprintln!("  {}", failed.join(", "));
                        }
                        return Ok(if ok {
                            sparkwing_contract::exit::SUCCESS
                        } else {
                            sparkwing_contract::exit::FAILURE
                        });
                    }
                }
                Ok(_) => {}
                Err(e) => eprintln!("warning: read run {run_id} in {spec}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}
