//! `sparkwing doctor`: checks what a run needs on this machine (project, toolchain, profile,
//! bucket access, conditional writes) and says how to fix what is missing.
//!
//! Every check is data (a [`Check`]), never an `Err`: one broken part must not hide the others.
//! Only the checks that depend on a failed one are skipped.

use crate::cli::{DoctorArgs, Format};
use crate::error::{CliError, CliResult};
use sparkwing_config::{ProjectConfig, Resolved, Surface, SurfaceKind};
use sparkwing_contract::env;
use sparkwing_contract::hint::Hinted;
use sparkwing_storage::s3::{S3ArtifactStore, S3Config, S3Options};
use sparkwing_storage::{ArtifactStore, FsArtifactStore, StoreError};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Upper bound of one probe request: doctor answers quickly, a CI run waits longer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per probe request, so a one-off blip does not fail the check.
const PROBE_ATTEMPTS: u32 = 2;
/// The key prefix the reachability probe lists under the surface's prefix (nothing lives there;
/// the answer is an empty list when the bucket is reachable).
const PROBE_LIST_PREFIX: &str = "sparkwing-doctor-probe/";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    /// Runs may still work (e.g. no toolchain, but a cached binary would do).
    Warn,
    Fail,
    /// Not checked: it depends on a check that failed, or does not apply.
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report (plus its hint).
#[derive(Debug)]
struct Check {
    name: String,
    status: Status,
    detail: String,
    /// Further lines under the detail (the profile's surfaces).
    more: Vec<String>,
    hint: Option<String>,
}

impl Check {
    fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
            more: Vec::new(),
            hint: None,
        }
    }

    fn hint(mut self, hint: Option<String>) -> Check {
        self.hint = hint;
        self
    }
}

/// `sparkwing doctor [--profile NAME] [-o pretty|json]`: exit 0 when no check failed, else 1.
pub fn execute(args: DoctorArgs) -> CliResult {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?;
    let mut checks = Vec::new();

    let (project_check, project) = check_project(&cwd);
    checks.push(project_check);
    let cargo: OsString = std::env::var_os(env::CARGO)
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cargo".into());
    checks.push(check_toolchain(
        &cargo,
        project.as_ref().map(|(dir, _)| dir.as_path()),
    ));

    let config = project.as_ref().map(|(_, c)| c);
    let (profile_check, resolved) = check_profile(args.profile.as_deref(), config);
    checks.push(profile_check);

    match &resolved {
        Some(r) => checks.extend(check_stores(r)),
        None => checks.push(Check::new(
            "stores",
            Status::Skip,
            "not checked: no profile resolved",
        )),
    }

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    match args.output {
        Format::Pretty => print!("{}", render_pretty(&checks, failed)),
        Format::Json => crate::output::print_json(&render_json(&checks, failed))?,
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Check 1: `.sparkwing/` found from the current directory, and its `sparkwing.yaml` loads.
/// Returns the `.sparkwing/` directory and the config when both succeeded.
fn check_project(cwd: &Path) -> (Check, Option<(std::path::PathBuf, ProjectConfig)>) {
    let project = match crate::project::find(cwd) {
        Ok(p) => p,
        Err(e) => return (failed_check("project", &e), None),
    };
    match crate::project::load_config(&project) {
        Ok(config) => {
            let n = config.pipelines.len();
            let check = Check::new(
                "project",
                Status::Ok,
                format!(
                    "`{}` loads ({n} pipeline{})",
                    project.config_path().display(),
                    if n == 1 { "" } else { "s" }
                ),
            );
            (check, Some((project.sparkwing_dir, config)))
        }
        Err(e) => (failed_check("project", &e), None),
    }
}

/// A failed check from a CLI error: its message and hint.
fn failed_check(name: &str, e: &CliError) -> Check {
    let (message, hint) = match e {
        CliError::Usage { message, hint } | CliError::Failure { message, hint } => {
            (message.clone(), hint.clone())
        }
    };
    Check::new(name, Status::Fail, message).hint(hint)
}

/// Check 2: `cargo` (or `SPARKWING_CARGO`) and `rustc`, asked from the `.sparkwing/` directory so a
/// pinned toolchain answers. Missing is a warning: a binary from the cache still runs.
fn check_toolchain(cargo: &OsStr, sparkwing_dir: Option<&Path>) -> Check {
    let cargo_version = version_of(cargo, sparkwing_dir);
    let rustc_version = version_of("rustc".as_ref(), sparkwing_dir);
    match (cargo_version, rustc_version) {
        (Some(c), Some(r)) => Check::new("toolchain", Status::Ok, format!("{c}; {r}")),
        (Some(c), None) => Check::new(
            "toolchain",
            Status::Warn,
            format!("{c}; `rustc` does not answer `rustc --version`"),
        )
        .hint(Some(
            "install the Rust toolchain with rustup (https://rustup.rs)".to_owned(),
        )),
        (None, _) => Check::new(
            "toolchain",
            Status::Warn,
            format!(
                "no toolchain: runs need a binary from the cache (`{}` does not answer `--version`)",
                Path::new(cargo).display()
            ),
        )
        .hint(Some(format!(
            "install Rust with rustup (https://rustup.rs) or set `{}` to cargo's path; without one, a run works only when the pipeline binary for its cache key is in the local or remote cache (`sparkwing cache explain` shows the key)",
            env::CARGO
        ))),
    }
}

/// First line of `<program> --version`, when it runs and succeeds.
fn version_of(program: &OsStr, dir: Option<&Path>) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.arg("--version");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Check 3: which profile resolves and why, with each surface's store URL.
fn check_profile(flag: Option<&str>, project: Option<&ProjectConfig>) -> (Check, Option<Resolved>) {
    let resolved = crate::home::sparkwing_home()
        .and_then(|home| crate::profiles::resolve(flag, project, &home));
    match resolved {
        Ok(r) => {
            let surfaces: Vec<String> = SurfaceKind::ALL
                .iter()
                .map(|&k| {
                    let mut s = format!("{:<6} {}", format!("{k}:"), r.surface(k).spec_string());
                    if k == SurfaceKind::Cache && r.cache_read_only {
                        s.push_str(" (read-only)");
                    }
                    s
                })
                .collect();
            let detail = format!("`{}` ({}): {}", r.name, r.source, r.reason);
            let mut check = Check::new("profile", Status::Ok, detail);
            check.more = surfaces;
            (check, Some(r))
        }
        Err(e) => (failed_check("profile", &e), None),
    }
}

/// Checks 4 and 5: each bucket surface is reachable; the cache surface enforces conditional writes.
fn check_stores(r: &Resolved) -> Vec<Check> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return vec![Check::new(
                "stores",
                Status::Fail,
                format!("start the async runtime: {e}"),
            )];
        }
    };
    rt.block_on(async {
        let mut checks = Vec::new();
        let mut reachable_cache = None;
        for kind in SurfaceKind::ALL {
            let Surface::S3 { bucket, prefix } = r.surface(kind) else {
                continue;
            };
            let spec = r.surface(kind).spec_string();
            let (check, store) = check_bucket(kind, bucket, prefix, &spec).await;
            if kind == SurfaceKind::Cache {
                reachable_cache = store;
            }
            checks.push(check);
        }
        checks.push(check_conditional(r, reachable_cache.as_ref()).await);
        checks
    })
}

/// Check 4: one small real request (a list under an empty probe prefix) with a short timeout.
/// Returns the store when it answered.
async fn check_bucket(
    kind: SurfaceKind,
    bucket: &str,
    prefix: &str,
    spec: &str,
) -> (Check, Option<S3ArtifactStore>) {
    let name = format!("{kind} bucket");
    let cfg = match S3Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => return (store_failure(&name, spec, None, &e), None),
    };
    // Only where the requests go: never the credentials.
    let via = Some(cfg.endpoint());
    let opts = S3Options {
        request_timeout: PROBE_TIMEOUT,
        max_attempts: PROBE_ATTEMPTS,
        ..S3Options::default()
    };
    let store = match S3ArtifactStore::new(&cfg, bucket, prefix, opts) {
        Ok(s) => s,
        Err(e) => return (store_failure(&name, spec, via, &e), None),
    };
    match store.list(PROBE_LIST_PREFIX).await {
        Ok(_) => {
            let via = match cfg.endpoint() {
                Some(ep) => format!("endpoint `{ep}`"),
                None => format!("AWS S3 in `{}`", cfg.region()),
            };
            let detail = format!("`{spec}` reachable via {via}");
            (Check::new(name, Status::Ok, detail), Some(store))
        }
        Err(e) => (store_failure(&name, spec, via, &e), None),
    }
}

/// A failed store check: the store error's message and hint, else a fix for where the requests
/// went (`endpoint`: `SPARKWING_S3_ENDPOINT`, `None` for AWS).
fn store_failure(name: &str, spec: &str, endpoint: Option<Option<&str>>, e: &StoreError) -> Check {
    let via = match endpoint {
        Some(Some(ep)) => format!(" via endpoint `{ep}`"),
        Some(None) => " via AWS S3".to_owned(),
        None => String::new(),
    };
    let hint = e.hint().unwrap_or_else(|| match (e, endpoint) {
        (StoreError::Remote { .. }, Some(Some(ep))) => format!(
            "check that the S3-compatible server at `{ep}` (`{}`) is running and reachable from this machine",
            env::S3_ENDPOINT
        ),
        (StoreError::Remote { .. }, _) => "check network access to AWS S3 from this machine, `AWS_REGION`, and that the credentials may list the bucket".to_owned(),
        _ => format!(
            "check the S3 settings: `AWS_REGION`, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or an AWS profile), and for an S3-compatible server `{}`",
            env::S3_ENDPOINT
        ),
    });
    Check::new(name, Status::Fail, format!("cannot use `{spec}`{via}: {e}")).hint(Some(hint))
}

/// Check 5: whether the cache surface enforces create-only writes (cache publishing relies on
/// them).
async fn check_conditional(r: &Resolved, s3_cache: Option<&S3ArtifactStore>) -> Check {
    const NAME: &str = "conditional writes";
    let spec = r.cache.spec_string();
    if r.cache_read_only {
        return Check::new(
            NAME,
            Status::Skip,
            format!("`{spec}` is read-only: nothing is published to it"),
        );
    }
    let answer = match (&r.cache, s3_cache) {
        (Surface::S3 { .. }, Some(store)) => store.supports_conditional().await,
        (Surface::S3 { .. }, None) => {
            return Check::new(
                NAME,
                Status::Skip,
                format!("not checked: `{spec}` did not answer"),
            );
        }
        (Surface::Filesystem { path }, _) => {
            FsArtifactStore::new(path).supports_conditional().await
        }
        (other, _) => {
            return Check::new(
                NAME,
                Status::Skip,
                format!("`{}` is not an artifact store", other.spec_string()),
            );
        }
    };
    match answer {
        Ok(true) => Check::new(
            NAME,
            Status::Ok,
            format!("supported by `{spec}` (create-only cache publishing)"),
        ),
        Ok(false) => Check::new(
            NAME,
            Status::Warn,
            format!(
                "unsupported by `{spec}`: the server ignores If-None-Match, so concurrent cache publishes fall back to last write wins"
            ),
        )
        .hint(Some(
            "use an S3 server that enforces `If-None-Match` on PUT (AWS S3 does), or mark the cache `read_only: true` on all but one publisher".to_owned(),
        )),
        Err(e) => store_failure(NAME, &spec, None, &e),
    }
}

/// One line per check, its hint under it, then a summary.
fn render_pretty(checks: &[Check], failed: usize) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            c.status.as_str(),
            c.name,
            c.detail
        ));
        for line in &c.more {
            out.push_str(&format!("      {:<width$}  {line}\n", ""));
        }
        if let Some(h) = &c.hint {
            out.push_str(&format!("      {:<width$}  hint: {h}\n", ""));
        }
    }
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    out.push_str(&match (failed, warned) {
        (0, 0) => "\nall checks passed\n".to_owned(),
        (0, w) => format!("\nno check failed ({w} warning{})\n", plural(w)),
        (f, _) => format!("\n{f} check{} failed\n", plural(f)),
    });
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `{"ok": bool, "checks": [{"name", "status", "detail", "more", "hint"}]}`.
fn render_json(checks: &[Check], failed: usize) -> serde_json::Value {
    serde_json::json!({
        "ok": failed == 0,
        "checks": checks.iter().map(|c| serde_json::json!({
            "name": c.name,
            "status": c.status.as_str(),
            "detail": c.detail,
            "more": c.more,
            "hint": c.hint,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_puts_the_hint_under_its_check_and_counts_failures() {
        let checks = vec![
            Check::new("project", Status::Ok, "loads"),
            Check::new("cache bucket", Status::Fail, "cannot use `s3://b/p`")
                .hint(Some("start it".into())),
        ];
        let out = render_pretty(&checks, 1);
        assert_eq!(
            out,
            "ok    project       loads\nfail  cache bucket  cannot use `s3://b/p`\n                    hint: start it\n\n1 check failed\n"
        );
        let json = render_json(&checks, 1);
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["hint"], "start it");
        assert_eq!(json["checks"][0]["hint"], serde_json::Value::Null);
    }

    #[test]
    fn a_missing_cargo_is_a_warning_that_names_the_cache() {
        let c = check_toolchain("/nonexistent/cargo-for-doctor-test".as_ref(), None);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.detail
                .starts_with("no toolchain: runs need a binary from the cache"),
            "{}",
            c.detail
        );
        assert!(c.hint.unwrap().contains("SPARKWING_CARGO"));
    }
}
