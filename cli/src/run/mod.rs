//! `sparkwing run`: find the project, resolve the profile, get the pipeline binary (local cache,
//! else build), spawn it as the child and pass its exit code through.

pub mod args;
pub mod binary;
mod relay;
pub mod report;
pub mod shards;
pub mod supervise;
mod watch;

use crate::active::ActiveRun;
use crate::error::{CliError, CliResult};
use crate::project::{self, Project};
use args::{Mode, Origin, RunArgs};
use sparkwing_contract::{RunId, env};
use std::path::PathBuf;

/// Everything decided before anything is built or spawned.
#[derive(Debug)]
pub struct RunPlan {
    pub args: RunArgs,
    pub project: Project,
    pub home: sparkwing_contract::Home,
    /// `--sw-mode`, else `SPARKWING_MODE`, else local.
    pub mode: (Mode, Origin),
    /// `--sw-workers`, else `SPARKWING_WORKERS`, else the CPU count.
    pub workers: (u32, Origin),
    pub profile: crate::profiles::Effective,
    /// The name the pipeline binary registers for `args.pipeline`.
    pub entrypoint: String,
    pub config: sparkwing_config::ProjectConfig,
    /// Where to write the JUnit report (`--junit`, else `SPARKWING_JUNIT`), absolute.
    pub junit: Option<PathBuf>,
    /// `--sw-shard`: this job's part of a run split across CI jobs.
    pub sharding: Option<shards::Sharding>,
}

/// `sparkwing run …`
pub fn execute(raw: &[String]) -> CliResult {
    let Some(args) = args::parse(raw)? else {
        print!("{}", args::RUN_HELP);
        return Ok(sparkwing_contract::exit::SUCCESS);
    };
    if args.watch {
        return watch::execute(args);
    }
    let plan = plan(args)?;
    act(plan)
}

/// Validates everything that can be checked without building: project, pipeline name, profile.
fn plan(args: RunArgs) -> Result<RunPlan, CliError> {
    let start = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir()
            .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?,
    };
    // The environment is read before anything else, so a bad value is a usage error up front.
    let getenv = |name: &str| std::env::var(name).ok();
    let mode = args::effective_mode(args.mode, getenv)?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let workers = args::effective_workers(args.workers, cpus, getenv)?;
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?;
    let junit = args::effective_junit(args.junit.as_deref(), &cwd, getenv);
    let project = project::find(&start)?;
    let sharding = shards::resolve(&args, mode.0 == Mode::CiEmbedded, &project.root, getenv)?;
    let config = project::load_config(&project)?;
    project::check_pipeline_known(&project, &config, &args.pipeline)?;
    let entrypoint = project::entrypoint(&config, &args.pipeline).to_string();
    let home = crate::home::sparkwing_home()?;
    let profile = crate::profiles::resolve(args.profile.as_deref(), Some(&config), &home)?;
    if workers.0 > cpus {
        let from = match workers.1 {
            Origin::Env => format!("{}={}", env::WORKERS, workers.0),
            _ => format!("--sw-workers={}", workers.0),
        };
        eprintln!(
            "warning: {from} is more than the {cpus} CPUs of this machine; jobs will compete for them"
        );
    }
    Ok(RunPlan {
        args,
        project,
        home,
        mode,
        workers,
        profile,
        entrypoint,
        config,
        junit,
        sharding,
    })
}

/// The first console line when the mode is not the default `local`: a run whose mode came from
/// the CI job's environment says so before it builds or runs anything.
fn announce_mode(plan: &RunPlan) {
    let (mode, from) = plan.mode;
    if mode == Mode::Local {
        return;
    }
    let origin = |o: Origin, var: &str, flag: &str| match o {
        Origin::Flag => format!("from {flag}"),
        Origin::Env => format!("from {var}"),
        Origin::Default => "default".to_string(),
    };
    eprintln!(
        "==> sparkwing run {}: mode {} ({}), {} worker(s) ({})",
        plan.args.pipeline,
        mode.as_str(),
        origin(from, env::MODE, "--sw-mode"),
        plan.workers.0,
        origin(plan.workers.1, env::WORKERS, "--sw-workers"),
    );
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("start the runtime: {e}")))
}

fn act(plan: RunPlan) -> CliResult {
    announce_mode(&plan);
    let rt = runtime()?;
    if let Some(shards::Sharding::Wait { run_id }) = &plan.sharding {
        return shards::wait(&plan.profile, run_id, &rt);
    }
    // The record database opens on a thread of its own while the binary is found.
    let records = relay::open_records(&crate::source::state_db_path(&plan.profile, &plan.home))?;
    let binary = binary::obtain(&plan, &rt)?;
    let (_, end) = run_once(&plan, binary, records, &rt, std::future::pending())?;
    Ok(end.exit_code())
}

/// One run of an obtained binary: spawn it, supervise it until it ends (cancelled the orderly
/// way when `cancel` resolves), close what it left open, publish the reports.
fn run_once(
    plan: &RunPlan,
    binary: binary::Obtained,
    records: sparkwing_records::Opening,
    rt: &tokio::runtime::Runtime,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<(RunId, supervise::ChildEnd), CliError> {
    let run_id = match &plan.sharding {
        Some(s) => s.run_id().clone(),
        None => RunId::generate(),
    };
    let mut cmd = tokio::process::Command::new(binary.path());
    match &plan.sharding {
        Some(shards::Sharding::Run { shard, .. }) => cmd.env(env::SHARD, shard.to_string()),
        _ => cmd.env_remove(env::SHARD),
    };
    cmd.arg(&plan.entrypoint)
        .args(&plan.args.passthrough)
        .current_dir(&plan.project.root)
        .env(env::MODE, plan.mode.0.as_str())
        .env(env::MODE_FROM, plan.mode.1.as_str())
        .env(env::WORKERS, plan.workers.0.to_string())
        .env(env::WORKERS_FROM, plan.workers.1.as_str())
        .env(env::RUN_ID, run_id.as_str())
        .env(env::HOME, plan.home.path())
        .env(env::PROFILE, &plan.profile.name)
        .env(env::BACKENDS, plan.profile.backends_json().to_string())
        .env(env::WORK_DIR, &plan.project.root)
        .env(env::BINARY_SOURCE, binary.source())
        // The signing key vouches for binaries; the pipeline's code must never hold it.
        .env_remove(env::CACHE_SIGNING_KEY)
        .env_remove(env::CACHE_SIGNING_KEY_FILE)
        .env_remove(env::CACHE_SIGNING_KEY_PASSWORD);
    if let Ok(me) = std::env::current_exe() {
        cmd.env(env::CLI_BIN, me);
    }
    let specs = [&plan.profile.state, &plan.profile.logs, &plan.profile.cache]
        .iter()
        .map(|s| s.spec_string())
        .collect();
    let relay = relay::Relay::start(records, specs, &mut cmd, rt)?;
    let end = rt
        .block_on(supervise::run_to_completion(
            cmd,
            |child_pid| {
                ActiveRun {
                    run_id: run_id.to_string(),
                    pipeline: plan.args.pipeline.clone(),
                    supervisor_pid: std::process::id() as i32,
                    child_pid: i32::try_from(child_pid).unwrap_or(0),
                }
                .write(&plan.home)
            },
            cancel,
        ))
        .map_err(|e| {
            CliError::failure(format!(
                "start the pipeline binary `{}`: {e}",
                binary.path().display()
            ))
        })?;
    drop(binary); // releases the cache lease only after the child is gone
    relay.finish(rt);
    if !end.is_orderly() {
        // Logs first, then the verdict: a reader that sees the run end finds every part that
        // could be delivered.
        deliver_spooled_logs(plan, &run_id, rt);
        finalize_abandoned(plan, &run_id, end, rt);
    }
    // Only now is nothing left to write for this run.
    ActiveRun::remove(&plan.home, run_id.as_str());
    report::publish(
        &report::Request {
            run_id: run_id.as_str(),
            profile: &plan.profile,
            home: &plan.home,
            junit: plan.junit.as_deref(),
        },
        |name| std::env::var(name).ok(),
        rt,
    );
    Ok((run_id, end))
}

/// The child died without finishing its records (SIGKILL, OOM, panic): close the run in SQLite so
/// no reader shows it running forever.
fn finalize_abandoned(
    plan: &RunPlan,
    run_id: &RunId,
    end: supervise::ChildEnd,
    rt: &tokio::runtime::Runtime,
) {
    let reason = match end {
        supervise::ChildEnd::Signal(s) => {
            let name = nix::sys::signal::Signal::try_from(s)
                .map(|s| s.as_str())
                .unwrap_or("unknown");
            format!("pipeline process killed by {name} (signal {s})")
        }
        supervise::ChildEnd::Code(c) => format!("pipeline process exited with unexpected code {c}"),
    };
    let db = crate::source::state_db_path(&plan.profile, &plan.home);
    match sparkwing_records::finalize_abandoned(&db, run_id.as_str(), &reason) {
        Ok(true) => eprintln!("sparkwing: run {run_id} marked failed: {reason}"),
        Ok(false) => return,
        Err(e) => {
            eprintln!(
                "warning: could not finalize run {run_id} in `{}`: {e}",
                db.display()
            );
            return;
        }
    }
    // The bucket must not show the run as running forever either: upload the finalized dump.
    let dump = sparkwing_records::Reader::open(&db).and_then(|r| r.dump_state(run_id.as_str()));
    let Ok(Some(dump)) = dump else { return };
    let spec = crate::source::state_dump_surface(&plan.profile).spec_string();
    let key = match &plan.sharding {
        Some(shards::Sharding::Run { shard, .. }) => {
            sparkwing_contract::shard::shard_key(run_id.as_str(), shard.index)
        }
        _ => sparkwing_contract::surfaces::state_key(run_id.as_str()),
    };
    let upload = async {
        let store = sparkwing_storage::open_artifact_store(&spec)?;
        store.put(&key, dump.into_bytes()).await
    };
    match rt
        .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(30), upload).await })
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("warning: could not upload the finalized state of {run_id} to `{spec}`: {e}")
        }
        Err(_) => eprintln!(
            "warning: uploading the finalized state of {run_id} to `{spec}` timed out after 30 s"
        ),
    }
}

/// Log parts the pipeline spooled during a storage outage and could not deliver before it died:
/// `$SPARKWING_HOME/spool/<runID>/logs/<node>/<part>`, delivered in part-name (write) order under
/// the names the pipeline gave them, so a part that had landed after all is replaced, not doubled.
fn deliver_spooled_logs(plan: &RunPlan, run_id: &RunId, rt: &tokio::runtime::Runtime) {
    let root = plan.home.spool_dir(run_id.as_str()).join("logs");
    let mut parts = Vec::new();
    collect_spooled(&root, &root, &mut parts);
    if parts.is_empty() {
        return;
    }
    parts.sort();
    let spec = plan.profile.logs.spec_string();
    let Ok(store) = sparkwing_storage::open_log_store(&spec) else {
        return;
    };
    let total = parts.len();
    let mut delivered = 0;
    for (part, node, path) in &parts {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let sent = rt.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                store.put_part(run_id.as_str(), node, part, bytes),
            )
            .await
        });
        match sent {
            Ok(Ok(_)) => {
                let _ = std::fs::remove_file(path);
                delivered += 1;
            }
            _ => break,
        }
    }
    if delivered == total {
        let _ = std::fs::remove_dir_all(plan.home.spool_dir(run_id.as_str()));
        eprintln!("sparkwing: delivered {total} spooled log part(s) of {run_id} to `{spec}`");
    } else {
        eprintln!(
            "warning: {} spooled log part(s) of {run_id} could not be delivered to `{spec}`; kept in `{}`",
            total - delivered,
            root.display()
        );
    }
}

/// `(part name, node id, path)` of every spooled part below `dir`.
fn collect_spooled(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut Vec<(String, String, PathBuf)>,
) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_spooled(root, &path, out);
            continue;
        }
        let part = path
            .file_name()
            .and_then(|s| s.to_str())
            .filter(|s| sparkwing_storage::validate_part_name(s).is_ok())
            .map(str::to_string);
        let node = path
            .parent()
            .and_then(|p| p.strip_prefix(root).ok())
            .map(|p| {
                p.iter()
                    .filter_map(|s| s.to_str())
                    .collect::<Vec<_>>()
                    .join("/")
            });
        if let (Some(part), Some(node)) = (part, node)
            && !node.is_empty()
        {
            out.push((part, node, path));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spooled_parts_are_found_in_part_name_order_with_their_node() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("logs");
        let name = |seq: u64| {
            format!(
                "{:020}-{seq:010}.ndjson",
                1_700_000_000_000_000_000u64 + seq
            )
        };
        for (rel, seq) in [("build", 2), ("parent/child", 1), ("build", 3)] {
            let dir = root.join(rel);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name(seq)), b"{}\n").unwrap();
        }
        // Neither a temporary file nor a file that is not a part name is ever delivered.
        std::fs::write(root.join("build").join(".tmp-x"), b"").unwrap();
        std::fs::write(root.join("build").join("notes.ndjson"), b"{}\n").unwrap();
        let mut parts = Vec::new();
        super::collect_spooled(&root, &root, &mut parts);
        parts.sort();
        let got: Vec<(String, &str)> = parts
            .iter()
            .map(|(p, n, _)| (p.clone(), n.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (name(1), "parent/child"),
                (name(2), "build"),
                (name(3), "build")
            ]
        );
    }
}
