//! Getting the pipeline binary: local cache hit, else build (DESIGN §5).

use super::RunPlan;
use crate::error::CliError;
use crate::sdk;
use sparkwing_bincache::{
    self as bincache, BuildProfile, GetError, KeyRequest, Lease, LocalCache, Source,
};
use std::path::Path;

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

/// Inputs shared by `run` and `cache explain`.
pub struct BuildContext {
    pub sparkwing_dir: std::path::PathBuf,
    pub target_dir: std::path::PathBuf,
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

    pub fn build_request<'a>(
        &'a self,
        patches: &'a [(String, std::path::PathBuf)],
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

/// Local cache hit, else build into the cache.
pub fn obtain(plan: &RunPlan) -> Result<Obtained, CliError> {
    let ctx = BuildContext::new(&plan.project.sparkwing_dir, &plan.home);
    ctx.ensure_lockfile()?;
    let key = ctx.key()?;
    let cache = open_cache(&plan.home)?;
    let (lease, source) = cache
        .get_or_materialize(&key, |staging: &Path| -> Result<Source, CliError> {
            eprintln!(
                "==> building pipeline binary for `.sparkwing/` (cache key {}); later runs reuse it",
                short(&key.key)
            );
            let sdk_root = sdk::materialize(&ctx.target_dir)?;
            let patches = sdk::patches(&sdk_root);
            let req = ctx.build_request(&patches);
            bincache::cargo_build(&req, &staging.join(bincache::BINARY_FILE))
                .map_err(|e| CliError::failure(format!("build the pipeline binary: {e}")))?;
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
