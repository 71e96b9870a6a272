//! Getting the pipeline binary (DESIGN §5): local cache hit, else the remote cache
//! (`<cache>/bin/<key>`, verified against its manifest before it is ever executed), else a build,
//! which is then published to the remote cache unless writes are not allowed.

use super::RunPlan;
use crate::error::CliError;
use crate::sdk;
use sparkwing_bincache::{
    self as bincache, BuildProfile, FetchOutcome, GetError, KeyRequest, Lease, LocalCache,
    ManifestFields, PublishOutcome, Source,
};
use sparkwing_config::{ProjectConfig, SurfaceKind};
use sparkwing_storage::ArtifactStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A pipeline binary ready to run, held by a cache lease until dropped.
pub struct Obtained {
    lease: Lease,
    source: Source,
}

impl Obtained {
    pub fn path(&self) -> &Path {
        self.lease.binary()
    }

    /// `cached`, `remote-cache` or `compiled`, for the child's records.
    pub fn source(&self) -> &'static str {
        match self.source {
            Source::Cached => "cached",
            Source::RemoteCache => "remote-cache",
            Source::Compiled => "compiled",
        }
    }
}

/// Inputs shared by `run`, `cache explain` and `pipeline sparks update`.
pub struct BuildContext {
    pub sparkwing_dir: PathBuf,
    pub target_dir: PathBuf,
    pub cargo: std::ffi::OsString,
    pub profile: BuildProfile,
}

impl BuildContext {
    pub fn new(sparkwing_dir: &Path, home: &Path) -> Self {
        BuildContext {
            sparkwing_dir: sparkwing_dir.to_path_buf(),
            target_dir: crate::home::cargo_target_dir(home),
            cargo: std::env::var_os(sparkwing_contract::env::CARGO)
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "cargo".into()),
            profile: BuildProfile::Release,
        }
    }

    /// Makes sure `.sparkwing/Cargo.lock` exists before the key is computed, so the lockfile the
    /// first build would leave behind never changes the key of the second run.
    pub fn ensure_lockfile(&self) -> Result<(), CliError> {
        // The SDK copy is only needed to create the lockfile; bincache re-checks under a lock.
        let patches = if self.sparkwing_dir.join("Cargo.lock").is_file() {
            Vec::new()
        } else {
            sdk::patches(&sdk::materialize(&self.target_dir)?)
        };
        let req = self.build_request(&patches);
        bincache::ensure_lockfile(&req, sdk::SEED_LOCKFILE)
            .map_err(|e| CliError::failure(format!("create `.sparkwing/Cargo.lock`: {e}")))?;
        Ok(())
    }

    /// Resolves the project's sparks into `.sparkwing/.resolved.lock` (or, with
    /// `SPARKWING_NO_SPARKS_RESOLVE=1`, uses the committed overlay without any cargo call).
    /// Returns the report when a resolve ran.
    pub fn sparks(
        &self,
        config: &ProjectConfig,
        force_resolve: bool,
    ) -> Result<Option<bincache::SparksReport>, CliError> {
        if config.sparks.is_empty() {
            return Ok(None);
        }
        if !force_resolve && no_sparks_resolve() {
            bincache::use_committed_sparks(&self.sparkwing_dir).map_err(sparks_error)?;
            return Ok(None);
        }
        let patches = sdk::patches(&sdk::materialize(&self.target_dir)?);
        let req = self.build_request(&patches);
        bincache::resolve_sparks(&req, &config.sparks)
            .map(Some)
            .map_err(sparks_error)
    }

    pub fn build_request<'a>(
        &'a self,
        patches: &'a [(String, PathBuf)],
    ) -> bincache::BuildRequest<'a> {
        bincache::BuildRequest {
            sparkwing_dir: &self.sparkwing_dir,
            sdk_patch: patches,
            target_dir: &self.target_dir,
            profile: self.profile,
            cargo: &self.cargo,
        }
    }

    /// The pipeline cache key of this `.sparkwing/` package.
    pub fn key(&self) -> Result<bincache::CacheKey, CliError> {
        let sdk_version = sdk::sdk_version();
        let lookup = |name: &str| std::env::var(name).ok();
        let req = KeyRequest {
            sparkwing_dir: &self.sparkwing_dir,
            sdk_version: &sdk_version,
            target: sdk::TARGET,
            profile: self.profile,
            env: &lookup,
        };
        bincache::compute_key(&req)
            .map_err(|e| CliError::failure(format!("compute the pipeline cache key: {e}")))
    }
}

/// `SPARKWING_NO_SPARKS_RESOLVE` set to anything but empty, `0` or `false`.
fn no_sparks_resolve() -> bool {
    std::env::var(sparkwing_contract::env::NO_SPARKS_RESOLVE)
        .map(|v| !matches!(v.trim(), "" | "0" | "false"))
        .unwrap_or(false)
}

fn sparks_error(e: bincache::SparksError) -> CliError {
    let text = e.to_string();
    match text.split_once("\nhint: ") {
        Some((m, h)) => CliError::failure(format!("resolve sparks: {m}")).with_hint(h.to_string()),
        None => CliError::failure(format!("resolve sparks: {text}")),
    }
}

/// The remote binary cache: the profile's declared cache surface (never the built-in default,
/// which is the local machine anyway).
fn remote_store(plan: &RunPlan) -> Result<Option<Arc<dyn ArtifactStore>>, CliError> {
    if plan.profile.defaulted.contains(&SurfaceKind::Cache)
        || plan.profile.source == sparkwing_config::Source::BuiltIn
    {
        return Ok(None);
    }
    let spec = plan.profile.cache.spec_string();
    sparkwing_storage::open_artifact_store(&spec)
        .map(Some)
        .map_err(|e| CliError::failure(format!("open the cache store `{spec}`: {e}")))
}

/// Whether this run may publish to the remote cache.
fn may_publish(plan: &RunPlan) -> Result<(), &'static str> {
    if plan.args.no_cache_write {
        return Err("--sw-no-cache-write");
    }
    if std::env::var(sparkwing_contract::env::NO_CACHE_WRITE)
        .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
    {
        return Err("SPARKWING_NO_CACHE_WRITE");
    }
    if plan.profile.cache_read_only {
        return Err("the profile's cache surface is read_only");
    }
    Ok(())
}

/// Local cache hit, else remote cache, else build (and publish).
pub fn obtain(plan: &RunPlan, rt: &tokio::runtime::Runtime) -> Result<Obtained, CliError> {
    let ctx = BuildContext::new(&plan.project.sparkwing_dir, &plan.home);
    ctx.ensure_lockfile()?;
    if let Some(report) = ctx.sparks(&plan.config, false)?
        && report.overlay_changed()
    {
        eprint!("{}", bincache::render_report(&report));
    }
    let key = ctx.key()?;
    let cache = open_cache(&plan.home)?;
    if let Some(lease) = cache
        .lookup(&key.key)
        .map_err(|e| CliError::failure(format!("use the pipeline cache: {e}")))?
    {
        return Ok(Obtained {
            lease,
            source: Source::Cached,
        });
    }
    let remote = remote_store(plan)?;
    let (lease, source) = cache
        .get_or_materialize(&key, |staging: &Path| -> Result<Source, CliError> {
            let dest = staging.join(bincache::BINARY_FILE);
            if let Some(store) = &remote {
                match rt.block_on(bincache::remote::fetch(store.as_ref(), &key.key, &dest)) {
                    Ok(FetchOutcome::Fetched(m)) => {
                        eprintln!(
                            "==> pipeline binary {} ({} bytes) from the remote cache `{}`",
                            short(&key.key),
                            m.size,
                            store.describe()
                        );
                        return Ok(Source::RemoteCache);
                    }
                    Ok(FetchOutcome::NotFound) => {}
                    Ok(FetchOutcome::Rejected { reason }) => eprintln!(
                        "warning: the remote cache's binary for key {} was rejected ({reason}); building instead",
                        short(&key.key)
                    ),
                    Err(e) => eprintln!("warning: remote cache unavailable ({e}); building instead"),
                }
            }
            eprintln!(
                "==> building pipeline binary for `.sparkwing/` (cache key {}); later runs reuse it",
                short(&key.key)
            );
            let sdk_root = sdk::materialize(&ctx.target_dir)?;
            let patches = sdk::patches(&sdk_root);
            let req = ctx.build_request(&patches);
            let report = bincache::cargo_build(&req, &dest).map_err(|e| {
                let text = e.to_string();
                match text.split_once("\nhint: ") {
                    Some((m, h)) => CliError::failure(format!("build the pipeline binary: {m}")).with_hint(h.to_string()),
                    None => CliError::failure(format!("build the pipeline binary: {text}")),
                }
            })?;
            if report.lockfile_changed {
                eprintln!(
                    "warning: cargo updated `.sparkwing/Cargo.lock` during the build; commit it so the next run reuses this binary"
                );
            }
            if let Some(store) = &remote {
                match may_publish(plan) {
                    Err(why) => eprintln!("==> not publishing the pipeline binary to `{}` ({why})", store.describe()),
                    Ok(()) => {
                        let fields = ManifestFields { target: sdk::TARGET, sdk_version: &sdk::sdk_version() };
                        match rt.block_on(bincache::remote::publish(store.as_ref(), &key.key, &dest, &fields)) {
                            Ok(PublishOutcome::Published) => {
                                eprintln!("==> published pipeline binary {} to `{}`", short(&key.key), store.describe())
                            }
                            Ok(PublishOutcome::AlreadyPublished | PublishOutcome::Completed) => {}
                            Err(e) => eprintln!("warning: could not publish the pipeline binary: {e}"),
                        }
                    }
                }
            }
            Ok(Source::Compiled)
        })
        .map_err(cache_error)?;
    Ok(Obtained { lease, source })
}

/// The local binary cache under `$SPARKWING_HOME`.
pub fn open_cache(home: &Path) -> Result<LocalCache, CliError> {
    let limits = bincache::Limits::from_env().map_err(|e| CliError::usage(e.to_string()))?;
    LocalCache::open(LocalCache::default_root(home), limits)
        .map_err(|e| CliError::failure(format!("open the pipeline cache: {e}")))
}

fn cache_error(e: GetError<CliError>) -> CliError {
    match e {
        GetError::Materialize(inner) => inner,
        GetError::Cache(other) => CliError::failure(format!("use the pipeline cache: {other}")),
    }
}

fn short(key: &str) -> &str {
    &key[..key.len().min(16)]
}
