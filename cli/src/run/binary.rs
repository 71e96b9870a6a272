//! Getting the pipeline binary (see `docs/cache.md`): local cache hit, else the remote cache
//! (`<cache>/bin/<key>`, verified against its manifest before it is ever executed), else a build,
//! which is then published to the remote cache unless writes are not allowed.

use super::RunPlan;
use crate::error::CliError;
use crate::sdk;
use sparkwing_bincache::{
    self as bincache, BuildProfile, FetchOutcome, GetError, KeyRequest, Lease, LocalCache,
    ManifestFields, PublishOptions, PublishOutcome, Signer, Source, Trust,
};
use sparkwing_config::{ProjectConfig, SurfaceKind};
use sparkwing_contract::human;
use sparkwing_storage::ArtifactStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A pipeline binary ready to run, held by a cache lease until dropped.
pub struct Obtained {
    lease: Lease,
    source: Source,
    /// A dependency set being published while the pipeline runs.
    background: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Obtained {
    /// Waits for the dependency set's publication: the run ends only after it.
    fn drop(&mut self) {
        if let Some(t) = self.background.take() {
            let _ = t.join();
        }
    }
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
    pub fn new(sparkwing_dir: &Path, home: &sparkwing_contract::Home) -> Self {
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
            // About to run cargo: a manifest on the SDK's former name would fail there, unclearly.
            check_sdk_dependency(&self.sparkwing_dir)?;
            sdk::patches(&sdk::materialize(&self.target_dir)?)
        };
        let req = self.build_request(&patches);
        bincache::ensure_lockfile(&req, sdk::SEED_LOCKFILE)
            .map_err(|e| CliError::failure(e.to_string()).hinted(&e))?;
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
            keyed_roots: &[],
            sdk_root: None,
            repo_root: None,
        }
    }

    /// The key of this package's compiled dependency set (`bin/deps/<key>`).
    pub fn deps_key(&self) -> Result<String, CliError> {
        let sdk_version = sdk::sdk_version();
        let lookup = |name: &str| std::env::var(name).ok();
        let req = KeyRequest {
            sparkwing_dir: &self.sparkwing_dir,
            sdk_version: &sdk_version,
            target: sdk::TARGET,
            profile: self.profile,
            env: &lookup,
        };
        bincache::deps_key(&req).map_err(|e| {
            CliError::failure(format!("compute the dependency set key: {e}")).hinted(&e)
        })
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
        bincache::compute_key(&req).map_err(|e| {
            CliError::failure(format!("compute the pipeline cache key: {e}")).hinted(&e)
        })
    }
}

/// A package written for the SDK's earlier package name (`pipeline-runtime`) cannot build against
/// this CLI, which patches the SDK in as `sparkwing`: say so, and how to fix it, before cargo
/// fails looking for a crate that was never published.
fn check_sdk_dependency(sparkwing_dir: &Path) -> Result<(), CliError> {
    let manifest = sparkwing_dir.join("Cargo.toml");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Ok(());
    };
    if text.contains("\"pipeline-runtime\"") {
        return Err(CliError::usage(format!(
            "`{}` depends on the SDK by its former package name `pipeline-runtime`",
            manifest.display()
        ))
        .with_hint(format!(
            "replace that dependency with `sparkwing = \"{}\"` under `[dependencies]`, then run again",
            sparkwing_contract::SDK_VERSION
        )));
    }
    Ok(())
}

/// `SPARKWING_NO_SPARKS_RESOLVE` set to anything but empty, `0` or `false`.
fn no_sparks_resolve() -> bool {
    std::env::var(sparkwing_contract::env::NO_SPARKS_RESOLVE)
        .map(|v| !matches!(v.trim(), "" | "0" | "false"))
        .unwrap_or(false)
}

/// The error names what it resolved; its hint is typed.
fn sparks_error(e: bincache::SparksError) -> CliError {
    CliError::failure(e.to_string()).hinted(&e)
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
        .map_err(|e| CliError::failure(format!("open the cache store `{spec}`: {e}")).hinted(&e))
}

/// The keys the profile's cache surface trusts (none: unsigned entries are believed).
fn trust(plan: &RunPlan) -> Result<Trust, CliError> {
    Trust::from_keys(&plan.profile.cache_trusted_keys).map_err(|e| {
        CliError::usage(format!("the cache surface's trusted_keys: {e}"))
            .with_hint("`sparkwing profile` shows where the profile is declared")
    })
}

/// The publisher's signing key from the environment, if any: `SPARKWING_CACHE_SIGNING_KEY`
/// (the secret key file's text) or `SPARKWING_CACHE_SIGNING_KEY_FILE` (its path), with
/// `SPARKWING_CACHE_SIGNING_KEY_PASSWORD` for an encrypted key. Never echoes the key.
fn signer_from_env() -> Result<Option<Signer>, String> {
    use sparkwing_contract::env;
    let get = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    let text = match (
        get(env::CACHE_SIGNING_KEY),
        get(env::CACHE_SIGNING_KEY_FILE),
    ) {
        (Some(t), _) => t,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| format!("read `{}` = `{path}`: {e}", env::CACHE_SIGNING_KEY_FILE))?,
        (None, None) => return Ok(None),
    };
    Signer::from_secret_key_text(&text, get(env::CACHE_SIGNING_KEY_PASSWORD))
        .map(Some)
        .map_err(|e| {
            format!(
                "the signing key in `{}` cannot be used: {e}",
                env::CACHE_SIGNING_KEY
            )
        })
}

/// Whether this run may publish to the remote cache, and with which signing key.
fn may_publish(plan: &RunPlan, trust: &Trust) -> Result<Option<Signer>, String> {
    if plan.args.no_cache_write {
        return Err("--sw-no-cache-write".into());
    }
    if std::env::var(sparkwing_contract::env::NO_CACHE_WRITE)
        .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
    {
        return Err("SPARKWING_NO_CACHE_WRITE".into());
    }
    if plan.profile.cache_read_only {
        return Err("the profile's cache surface is read_only".into());
    }
    let signer = signer_from_env()?;
    if trust.requires_signatures() {
        match &signer {
            None => {
                return Err(format!(
                    "the cache surface names trusted_keys and no signing key is set in `{}`",
                    sparkwing_contract::env::CACHE_SIGNING_KEY
                ));
            }
            Some(s) if !trust.trusts(s.public_key()) => {
                return Err(format!(
                    "the signing key {} is not among the cache surface's trusted_keys",
                    s.key_id()
                ));
            }
            Some(_) => {}
        }
    }
    Ok(signer)
}

/// Checks a freshly built binary before anything stores it: it must be a pipeline binary of
/// this SDK that registers every pipeline `sparkwing.yaml` declares.
fn check_built_binary(plan: &RunPlan, binary: &Path, key: &str) -> Result<(), CliError> {
    let out = std::process::Command::new(binary)
        .arg("--sw-describe")
        .current_dir(&plan.project.root)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            CliError::failure(format!(
                "run the built pipeline binary for key {} with `--sw-describe`: {e}; nothing was cached",
                short(key)
            ))
        })?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let registered: Vec<&str> = doc["pipelines"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    let sdk = doc["sdk_version"].as_str().unwrap_or_default();
    let mismatch = if !out.status.success() || doc.is_null() {
        Some("it does not describe itself (`--sw-describe` failed)".to_string())
    } else if sdk != sparkwing_contract::SDK_VERSION {
        Some(format!(
            "it links SDK {sdk}, this sparkwing carries {}",
            sparkwing_contract::SDK_VERSION
        ))
    } else {
        let missing: Vec<String> = plan
            .config
            .pipelines
            .iter()
            .filter(|p| !registered.contains(&p.entrypoint.as_str()))
            .map(|p| format!("`{}`", p.entrypoint))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "it does not register {} that `{}` declares (it registers: {})",
                missing.join(", "),
                plan.project.config_path().display(),
                if registered.is_empty() {
                    "nothing".to_string()
                } else {
                    registered.join(", ")
                }
            )
        })
    };
    match mismatch {
        None => Ok(()),
        Some(why) => Err(CliError::failure(format!(
            "the binary built for cache key {} is not this project's pipeline: {why}; nothing was cached",
            short(key)
        ))
        .with_hint("register each declared pipeline in `.sparkwing/src/main.rs` (or remove it from `sparkwing.yaml`), then run again")),
    }
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
        .map_err(|e| CliError::failure(format!("use the pipeline cache: {e}")).hinted(&e))?
    {
        return Ok(Obtained {
            lease,
            source: Source::Cached,
            background: None,
        });
    }
    let remote = remote_store(plan)?;
    let trust = trust(plan)?;
    // Publishing the build's dependency set, while the pipeline runs.
    let mut background = None;
    let (lease, source) = cache
        .get_or_materialize(&key, |staging: &Path| -> Result<Source, CliError> {
            let dest = staging.join(bincache::BINARY_FILE);
            // The remote entry failed verification: a publisher replaces it after the build.
            let mut rejected = false;
            if let Some(store) = &remote {
                let fetching = std::time::Instant::now();
                match rt.block_on(bincache::remote::fetch(store.as_ref(), &key.key, &dest, &trust)) {
                    Ok(FetchOutcome::Fetched(m)) => {
                        eprintln!(
                            "==> pipeline binary {} ({}) from the remote cache `{}` in {}",
                            short(&key.key),
                            human::bytes(m.size),
                            store.describe(),
                            human::duration(fetching.elapsed())
                        );
                        return Ok(Source::RemoteCache);
                    }
                    Ok(FetchOutcome::NotFound) => {}
                    Ok(FetchOutcome::Rejected { reason }) => {
                        rejected = true;
                        eprintln!(
                            "warning: the remote cache's binary for key {} was rejected and is never executed: {reason}; building instead",
                            short(&key.key)
                        )
                    }
                    Err(e) => eprintln!("warning: remote cache unavailable ({e}); building instead"),
                }
            }
            // Dependencies compiled elsewhere for the same lockfile, toolchain and profile: the
            // build then compiles only the pipeline package.
            let deps_key = match (&remote, deps_cache_enabled()) {
                (Some(_), true) => match ctx.deps_key() {
                    Ok(k) => Some(k),
                    Err(e) => {
                        eprintln!("warning: dependency sets are not used for this build: {e}");
                        None
                    }
                },
                _ => None,
            };
            if let (Some(store), Some(dk)) = (&remote, &deps_key) {
                restore_deps(&ctx, rt, store.as_ref(), &trust, dk);
            }
            eprintln!(
                "==> building pipeline binary for `.sparkwing/` (cache key {}); later runs reuse it",
                short(&key.key)
            );
            check_sdk_dependency(&ctx.sparkwing_dir)?;
            let sdk_root = sdk::build_root(&ctx.sparkwing_dir, &ctx.target_dir)?;
            let patches = sdk::patches(&sdk_root);
            let req = bincache::BuildRequest {
                keyed_roots: &key.roots,
                sdk_root: Some(&sdk_root),
                repo_root: ctx.sparkwing_dir.parent(),
                ..ctx.build_request(&patches)
            };
            // Each build error names the step that failed ("run `cargo`", "build the pipeline").
            let report = bincache::cargo_build(&req, &dest)
                .map_err(|e| CliError::failure(e.to_string()).hinted(&e))?;
            check_built_binary(plan, &dest, &key.key)?;
            eprintln!(
                "==> built pipeline binary {} ({}) in {}",
                short(&key.key),
                human::bytes(std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0)),
                human::duration(report.elapsed)
            );
            if report.lockfile_changed {
                eprintln!(
                    "warning: cargo updated `.sparkwing/Cargo.lock` during the build; commit it so the next run reuses this binary"
                );
            }
            if let Some(store) = &remote {
                publish_build(plan, rt, store.as_ref(), &trust, &key.key, &dest, rejected);
            }
            if let (Some(_), Some(dk)) = (&remote, &deps_key) {
                bincache::deps::mark_present(&ctx.target_dir, dk);
                background = spawn_publish_deps(
                    plan,
                    &ctx,
                    &trust,
                    Built {
                        key: &key,
                        report: &report,
                        deps_key: dk,
                    },
                );
            }
            Ok(Source::Compiled)
        })
        .map_err(cache_error)?;
    Ok(Obtained {
        lease,
        source,
        background,
    })
}

/// Publishes a fresh build to the remote cache when this run may (replacing an entry it
/// rejected), and says what happened; a failure to publish is a warning, never the run's.
fn publish_build(
    plan: &RunPlan,
    rt: &tokio::runtime::Runtime,
    store: &dyn ArtifactStore,
    trust: &Trust,
    key: &str,
    binary: &Path,
    rejected: bool,
) {
    let signer = match may_publish(plan, trust) {
        Ok(signer) => signer,
        Err(why) => {
            eprintln!(
                "==> not publishing the pipeline binary to `{}` ({why})",
                store.describe()
            );
            return;
        }
    };
    let sdk_version = sdk::sdk_version();
    let opts = PublishOptions {
        fields: ManifestFields {
            target: sdk::TARGET,
            sdk_version: &sdk_version,
        },
        signer: signer.as_ref(),
        replace: rejected,
    };
    let signed = signed_by(signer.as_ref());
    let started = std::time::Instant::now();
    let size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    match rt.block_on(bincache::remote::publish(store, key, binary, &opts)) {
        Ok(PublishOutcome::Published) => eprintln!(
            "==> published pipeline binary {} ({}) to `{}` in {}{signed}",
            short(key),
            human::bytes(size),
            store.describe(),
            human::duration(started.elapsed())
        ),
        Ok(PublishOutcome::Replaced) => eprintln!(
            "==> replaced the remote cache's entry for key {} in `{}` with this build{signed}",
            short(key),
            store.describe()
        ),
        Ok(PublishOutcome::AlreadyPublished) => {}
        Err(e) => eprintln!("warning: could not publish the pipeline binary: {e}"),
    }
}

/// Dependency sets are used unless `SPARKWING_NO_DEPS_CACHE` is set (to anything but empty, `0`
/// or `false`).
fn deps_cache_enabled() -> bool {
    !std::env::var(sparkwing_contract::env::NO_DEPS_CACHE)
        .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Restores the dependency set `deps_key` from the cache surface into the build's target
/// directory, unless that directory already holds it. Only an archive whose size, blake3 and
/// (with trusted keys) signature match its manifest is unpacked; anything else is a warning and
/// the build compiles the dependencies itself.
fn restore_deps(
    ctx: &BuildContext,
    rt: &tokio::runtime::Runtime,
    store: &dyn ArtifactStore,
    trust: &Trust,
    deps_key: &str,
) {
    use bincache::deps;
    if deps::present(&ctx.target_dir, deps_key) {
        return;
    }
    // A line before the download, so a log never looks stuck while it runs.
    eprintln!(
        "==> looking for dependency set {} in `{}`",
        short(deps_key),
        store.describe()
    );
    let start = std::time::Instant::now();
    let archive = match deps::scratch_path(&ctx.target_dir, "fetch") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warning: dependency set not restored: {e}");
            return;
        }
    };
    let ticker = Ticker::start(
        "downloading the dependency set",
        Some(bincache::remote::partial_path(&archive)),
    );
    let fetched = rt.block_on(bincache::remote::fetch_deps(
        store, deps_key, &archive, trust,
    ));
    drop(ticker);
    let outcome = match fetched {
        Ok(FetchOutcome::Fetched(m)) => {
            let downloaded = start.elapsed();
            let ticker = Ticker::start("unpacking the dependency set", None);
            let unpacked = deps::unpack(&archive, &ctx.target_dir, ctx.profile);
            drop(ticker);
            match unpacked {
                Ok(stats) => {
                    deps::mark_present(&ctx.target_dir, deps_key);
                    eprintln!(
                        "==> restored dependency set {} ({}, {} files) from `{}` in {} (download {}, unpack {})",
                        short(deps_key),
                        human::bytes(m.size),
                        stats.files,
                        store.describe(),
                        human::duration(start.elapsed()),
                        human::duration(downloaded),
                        human::duration(stats.elapsed),
                    );
                }
                Err(e) => eprintln!(
                    "warning: the dependency set {} was not restored ({e}); compiling the dependencies instead",
                    short(deps_key)
                ),
            }
            None
        }
        Ok(FetchOutcome::NotFound) => Some(format!(
            "==> no dependency set {} in `{}`; compiling the dependencies",
            short(deps_key),
            store.describe()
        )),
        Ok(FetchOutcome::Rejected { reason }) => Some(format!(
            "warning: the cache's dependency set {} was rejected and is never used: {reason}; compiling the dependencies instead",
            short(deps_key)
        )),
        Err(e) => Some(format!(
            "warning: dependency set not restored ({e}); compiling the dependencies instead"
        )),
    };
    let _ = std::fs::remove_file(&archive);
    if let Some(line) = outcome {
        eprintln!("{line}");
    }
}

/// What a build left to publish as a dependency set.
struct Built<'a> {
    key: &'a bincache::CacheKey,
    report: &'a bincache::BuildReport,
    deps_key: &'a str,
}

/// After a build: publishes the target directory's compiled dependencies as the build's
/// dependency set when this run may publish and the cache surface does not hold it yet — on a
/// thread of its own, so the pipeline starts without waiting for packing and uploading; the run
/// waits for it before it exits ([`Obtained`]'s drop). A failure is a warning, never the run's.
fn spawn_publish_deps(
    plan: &RunPlan,
    ctx: &BuildContext,
    trust: &Trust,
    built: Built<'_>,
) -> Option<std::thread::JoinHandle<()>> {
    // `publish_build` already said why nothing is published when this is an error.
    let signer = may_publish(plan, trust).ok()?;
    let job = DepsPublication {
        // A store of its own: connections opened on the run's runtime are only served while
        // that runtime runs, and the run waits for this thread outside it.
        spec: plan.profile.cache.spec_string(),
        signer,
        target_dir: ctx.target_dir.clone(),
        profile: ctx.profile,
        // The pipeline package and its path dependencies are compiled on every machine.
        local: bincache::deps::local_packages(&ctx.sparkwing_dir, built.key),
        // This build's units only: a target directory shared with other projects holds their
        // artifacts too, which are none of this bucket's business.
        only: (!built.report.unit_hashes.is_empty()).then(|| built.report.unit_hashes.clone()),
        deps_key: built.deps_key.to_string(),
    };
    std::thread::Builder::new()
        .name("dependency-set".into())
        .spawn(move || job.run())
        .map_err(|e| eprintln!("warning: could not publish the dependency set: {e}"))
        .ok()
}

/// One dependency set to pack and publish.
struct DepsPublication {
    spec: String,
    signer: Option<Signer>,
    target_dir: PathBuf,
    profile: BuildProfile,
    local: Vec<String>,
    only: Option<std::collections::BTreeSet<String>>,
    deps_key: String,
}

impl DepsPublication {
    fn run(self) {
        if let Err(e) = self.publish() {
            eprintln!("warning: could not publish the dependency set: {e}");
        }
    }

    /// Packs and uploads the set unless the cache surface holds it already.
    fn publish(&self) -> Result<(), String> {
        use bincache::deps;
        let deps_key = self.deps_key.as_str();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let store = rt
            .block_on(async { sparkwing_storage::open_artifact_store(&self.spec) })
            .map_err(|e| e.to_string())?;
        let store = store.as_ref();
        if rt
            .block_on(bincache::remote::deps_published(store, deps_key))
            .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        eprintln!(
            "==> packing dependency set {} for `{}` (the pipeline runs meanwhile)",
            short(deps_key),
            store.describe()
        );
        let start = std::time::Instant::now();
        let archive = deps::scratch_path(&self.target_dir, "pack").map_err(|e| e.to_string())?;
        let packed = deps::pack(
            &self.target_dir,
            self.profile,
            &self.local,
            self.only.as_ref(),
            &archive,
        );
        let stats = packed.map_err(|e| {
            let _ = std::fs::remove_file(&archive);
            format!("pack it: {e}")
        })?;
        let sdk_version = sdk::sdk_version();
        let opts = PublishOptions {
            fields: ManifestFields {
                target: sdk::TARGET,
                sdk_version: &sdk_version,
            },
            signer: self.signer.as_ref(),
            replace: false,
        };
        let published = rt.block_on(bincache::remote::publish_deps(
            store, deps_key, &archive, &opts,
        ));
        let _ = std::fs::remove_file(&archive);
        if let PublishOutcome::Published | PublishOutcome::Replaced =
            published.map_err(|e| e.to_string())?
        {
            eprintln!(
                "==> published dependency set {} ({}, {} files, {} unpacked) to `{}` in {} (pack {}){}",
                short(deps_key),
                human::bytes(stats.archive_bytes),
                stats.files,
                human::bytes(stats.bytes),
                store.describe(),
                human::duration(start.elapsed()),
                human::duration(stats.elapsed),
                signed_by(self.signer.as_ref()),
            );
        }
        Ok(())
    }
}

/// `, signed by key <id>` when a signer vouches for what is published, else nothing.
fn signed_by(signer: Option<&Signer>) -> String {
    signer
        .map(|s| format!(", signed by key {}", s.key_id()))
        .unwrap_or_default()
}

/// On a terminal, a status line that shows a long step is alive — what it does, the size of the
/// file it writes so far, the time — rewritten in place and cleared when the step ends (drop).
/// Off a terminal it prints nothing: the `==>` lines before and after are the log's milestones.
struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(what: &str, watched: Option<PathBuf>) -> Ticker {
        use std::io::IsTerminal;
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Ticker { stop, thread: None };
        }
        let (flag, what) = (stop.clone(), what.to_string());
        let thread = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            let mut shown = false;
            let mut last = t0;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if last.elapsed() < std::time::Duration::from_millis(500) {
                    continue;
                }
                last = std::time::Instant::now();
                let size = watched
                    .as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| format!(", {}", human::bytes(m.len())))
                    .unwrap_or_default();
                eprint!(
                    "\r\x1b[2K    {what}{size}, {}",
                    human::duration(t0.elapsed())
                );
                shown = true;
            }
            if shown {
                eprint!("\r\x1b[2K");
            }
        });
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The local binary cache under `$SPARKWING_HOME`.
pub fn open_cache(home: &sparkwing_contract::Home) -> Result<LocalCache, CliError> {
    let limits =
        bincache::Limits::from_env().map_err(|e| CliError::usage(e.to_string()).hinted(&e))?;
    LocalCache::open(home.pipeline_cache(), limits)
        .map_err(|e| CliError::failure(format!("open the pipeline cache: {e}")).hinted(&e))
}

fn cache_error(e: GetError<CliError>) -> CliError {
    match e {
        GetError::Materialize(inner) => inner,
        GetError::Cache(other) => {
            CliError::failure(format!("use the pipeline cache: {other}")).hinted(&other)
        }
    }
}

fn short(key: &str) -> &str {
    &key[..key.len().min(16)]
}
