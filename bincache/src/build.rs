//! Building the pipeline package with cargo.
//!
//! The SDK is not a path in the user's manifest: the package depends on the registry name, and
//! each cargo call points that name at the CLI's materialized copy with
//! `--config 'patch.crates-io.<name>.path="…"'`. The path reaches neither `Cargo.toml` nor
//! `Cargo.lock`, so nothing the user commits holds a machine path.

use crate::fs_error::io;
use crate::key::BuildProfile;
use crate::lock::{self, Mode};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Inputs of a pipeline build.
pub struct BuildRequest<'a> {
    /// The `.sparkwing/` package; cargo runs there so its `rust-toolchain.toml` applies.
    pub sparkwing_dir: &'a Path,
    /// `(package, path)` pairs patched over crates.io, e.g. the SDK's materialized copy.
    pub sdk_patch: &'a [(String, PathBuf)],
    /// Cargo target directory shared by every pipeline build on the machine.
    pub target_dir: &'a Path,
    /// Cargo profile.
    pub profile: BuildProfile,
    /// The cargo executable (`SPARKWING_CARGO`, else `cargo`).
    pub cargo: &'a OsStr,
    /// The directories whose every file the cache key covers (`.sparkwing/` and the path
    /// dependencies, [`crate::CacheKey::roots`]), with their digests. Empty: no check of what
    /// cargo read, and no compiled local package is ever reused.
    pub keyed_roots: &'a [crate::KeyedRoot],
    /// The directory holding the SDK crates `sdk_patch` points into: named by its content hash,
    /// never changed in place, so its path packages are not the project's local packages.
    pub sdk_root: Option<&'a Path>,
    /// The repository holding `.sparkwing/`: a file cargo read inside it but outside
    /// `keyed_roots` is one the key does not cover, and the build is refused.
    pub repo_root: Option<&'a Path>,
}

/// What a successful build reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// The bin target that was built.
    pub binary_name: String,
    /// Cargo rewrote `Cargo.lock` during the build (a dependency changed), so the key computed
    /// before the build is not the key of the package as it is now.
    pub lockfile_changed: bool,
    /// Wall time of the build, lock wait included.
    pub elapsed: Duration,
    /// Local packages cargo judged fresh without sparkwing having compiled these very sources
    /// into their slot: cleaned and compiled again.
    pub recompiled_stale: Vec<String>,
    /// The `-<hash>` suffixes of every unit this build used (compiled or fresh): what names its
    /// entries in the target directory's `deps/`, `build/` and `.fingerprint/`, so a dependency
    /// set holds this build's artifacts and nothing else a shared target directory holds.
    pub unit_hashes: std::collections::BTreeSet<String>,
    /// The optimisation level cargo reports for the pipeline binary (`"1"`, `"3"`, `"s"`, …).
    pub opt_level: Option<String>,
}

/// A build step failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Cargo is not installed.
    #[error("run `{cargo}`: not found")]
    CargoNotFound { cargo: String },
    /// Cargo could not be started for another reason.
    #[error("run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// Cargo ran and failed; its diagnostics were already shown on stderr.
    #[error("build the pipeline: `{command}` exited with {status} (cargo's output is above)")]
    Failed { command: String, status: ExitStatus },
    /// Cargo failed while resolving the lockfile.
    #[error("create `{lockfile}` with `{command}`: exited with {status}\n{stderr}")]
    Lockfile {
        lockfile: PathBuf,
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// The manifest is unreadable or names no binary.
    #[error("read `{path}`: {message}")]
    Manifest { path: PathBuf, message: String },
    /// Cargo reused a compiled local package instead of compiling the files on disk, even after
    /// its artifacts were cleaned: nothing is stored.
    #[error(
        "cargo reported the local package{s} {packages} as already compiled, so the binary may not come from the sources the cache key was computed from; nothing was cached",
        s = if packages.contains(", ") { "s" } else { "" }
    )]
    StaleLocal {
        packages: String,
        target_dir: PathBuf,
    },
    /// The compiler read files inside the repository that the cache key does not cover.
    #[error(
        "cargo read {files} while building the pipeline, but the cache key covers only `.sparkwing/` and its path dependencies, so a change there would not rebuild the binary; nothing was cached"
    )]
    Unkeyed { files: String },
    /// Cargo succeeded but did not report the executable.
    #[error("find the built binary `{bin}` in cargo's output")]
    NoArtifact { bin: String, manifest: PathBuf },
    /// File-system trouble.
    #[error(transparent)]
    Io(#[from] crate::FsError),
}

impl sparkwing_contract::hint::Hinted for BuildError {
    fn hint(&self) -> Option<String> {
        match self {
            BuildError::CargoNotFound { .. } => Some(
                "building the pipeline needs a Rust toolchain (https://rustup.rs, or point `SPARKWING_CARGO` at cargo); a remote cache hit avoids the build entirely — use a profile whose `cache` surface holds this pipeline's binary".into(),
            ),
            BuildError::StaleLocal { target_dir, .. } => Some(format!(
                "remove the pipeline target directory `{}` and run again",
                target_dir.display()
            )),
            BuildError::Unkeyed { .. } => Some(
                "move the file into `.sparkwing/`, or make its directory a path dependency in `.sparkwing/Cargo.toml`".into(),
            ),
            BuildError::NoArtifact { bin, manifest } => Some(format!(
                "check that `[[bin]]` in `{}` names `{bin}`",
                manifest.display()
            )),
            _ => None,
        }
    }
}

/// The TOML value of a `--config` override for one patch entry.
pub(crate) fn patch_config(name: &str, path: &Path) -> OsString {
    let p = path
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    OsString::from(format!("patch.crates-io.{name}.path=\"{p}\""))
}

/// The command line as a person would type it, for messages.
pub(crate) fn shown(cargo: &OsStr, args: &[OsString]) -> String {
    let mut s = cargo.to_string_lossy().into_owned();
    for a in args {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.contains([' ', '"']) {
            s.push('\'');
            s.push_str(&a);
            s.push('\'');
        } else {
            s.push_str(&a);
        }
    }
    s
}

fn spawn_err(cargo: &OsStr, command: String) -> impl FnOnce(std::io::Error) -> BuildError {
    let cargo = cargo.to_string_lossy().into_owned();
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            BuildError::CargoNotFound { cargo }
        } else {
            BuildError::Spawn { command, source }
        }
    }
}

/// Builds the pipeline's bin target with cargo in `.sparkwing/` and copies the executable to
/// `out`. Cargo's progress and diagnostics stream to stderr as they happen.
///
/// An exclusive lock on `<target_dir>/.sparkwing-build.lock` is held from the start of the
/// build until the copy is done: pipelines of different projects share the target directory and
/// may have the same bin name, so the executable must not change between build and copy.
pub fn cargo_build(req: &BuildRequest<'_>, out: &Path) -> Result<BuildReport, BuildError> {
    let start = Instant::now();
    let bin = binary_name(req.sparkwing_dir)?;
    std::fs::create_dir_all(req.target_dir).map_err(io("create directory", req.target_dir))?;
    let lock_path = req.target_dir.join(".sparkwing-build.lock");
    let mut held =
        match lock::try_lock(&lock_path, Mode::Exclusive).map_err(io("lock", &lock_path))? {
            Some(h) => h,
            None => {
                eprintln!(
                    "sparkwing: waiting for {} to finish its pipeline build in `{}`",
                    lock::read_holder(&lock_path),
                    req.target_dir.display()
                );
                lock::lock(&lock_path, Mode::Exclusive).map_err(io("lock", &lock_path))?
            }
        };
    held.write_holder(&lock::holder_text());

    let lockfile = req.sparkwing_dir.join("Cargo.lock");
    let lock_before = std::fs::read(&lockfile).ok();

    // Cargo judges a local package fresh by file times, and pipelines of different projects
    // (every scaffold names its package alike) share this target directory. So a compiled local
    // package is reused only when sparkwing itself recorded compiling exactly these sources
    // (same package, same content digest) into that slot; otherwise its artifacts are cleaned
    // and the build runs again, and a second unexplained fresh report is an error. A local
    // package that cargo compiled in this build was compiled from the files on disk now.
    let records_path = req.target_dir.join(LOCAL_BUILDS_FILE);
    let mut records = read_local_builds(&records_path);
    let mut outcome = run_cargo_build(req, &bin)?;
    let untrusted = |o: &BuildOutcome, records: &BTreeMap<String, LocalBuild>| -> Vec<String> {
        o.local
            .iter()
            .filter(|a| a.fresh && !trusted(a, req.keyed_roots, records))
            .map(|a| a.id.clone())
            .collect()
    };
    let stale = untrusted(&outcome, &records);
    let recompiled_stale = stale.clone();
    if !stale.is_empty() {
        clean_packages(req, &stale)?;
        for id in &stale {
            records.remove(&slot(id));
        }
        outcome = run_cargo_build(req, &bin)?;
        let still = untrusted(&outcome, &records);
        if !still.is_empty() {
            return Err(BuildError::StaleLocal {
                packages: still
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                target_dir: req.target_dir.to_path_buf(),
            });
        }
    }
    for a in &outcome.local {
        match root_digest(&a.manifest_dir, req.keyed_roots) {
            Some(digest) => {
                records.insert(
                    slot(&a.id),
                    LocalBuild {
                        package_id: a.id.clone(),
                        digest,
                    },
                );
            }
            None => {
                records.remove(&slot(&a.id));
            }
        }
    }
    write_local_builds(&records_path, &records);
    let exe = outcome.executable.ok_or_else(|| BuildError::NoArtifact {
        bin: bin.clone(),
        manifest: req.sparkwing_dir.join("Cargo.toml"),
    })?;
    check_reads_are_keyed(req, &exe)?;
    std::fs::copy(&exe, out).map_err(io("copy the built binary to", out))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755))
            .map_err(io("set permissions on", out))?;
    }
    drop(held);
    Ok(BuildReport {
        binary_name: bin,
        lockfile_changed: std::fs::read(&lockfile).ok() != lock_before,
        elapsed: start.elapsed(),
        recompiled_stale,
        unit_hashes: outcome.unit_hashes,
        opt_level: outcome.opt_level,
    })
}

/// What one `cargo build` reported.
struct BuildOutcome {
    executable: Option<PathBuf>,
    /// Local (path) packages other than the patched-in SDK.
    local: Vec<LocalArtifact>,
    /// See [`BuildReport::unit_hashes`].
    unit_hashes: std::collections::BTreeSet<String>,
    /// See [`BuildReport::opt_level`].
    opt_level: Option<String>,
}

/// The unit hash in a target-directory entry name: `libserde-0123456789abcdef.rlib`,
/// `serde-0123456789abcdef` → `0123456789abcdef`.
pub fn unit_hash(name: &str) -> Option<&str> {
    let stem = name.split('.').next().unwrap_or(name);
    let (_, hash) = stem.rsplit_once('-')?;
    (hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// A local package cargo reported.
struct LocalArtifact {
    id: String,
    manifest_dir: PathBuf,
    /// Cargo did not compile it: it judged its output fresh by file times.
    fresh: bool,
}

/// `<target>/.sparkwing-local-builds.json`: for each shared slot of the target directory
/// (`name@version` of a local package), which package and which content digest sparkwing last
/// compiled into it.
const LOCAL_BUILDS_FILE: &str = ".sparkwing-local-builds.json";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LocalBuild {
    package_id: String,
    digest: String,
}

fn read_local_builds(path: &Path) -> BTreeMap<String, LocalBuild> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Best effort: a record that cannot be written only costs a rebuild of the local packages.
fn write_local_builds(path: &Path, records: &BTreeMap<String, LocalBuild>) {
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(records).expect("records serialize");
    if std::fs::write(&tmp, body).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The slot cargo shares between same-named local packages: `name@version`.
fn slot(id: &str) -> String {
    match id.rsplit_once('#') {
        Some((_, frag)) if frag.contains('@') => frag.to_string(),
        Some((url, version)) => {
            let name = url.rsplit('/').next().unwrap_or(url);
            format!("{name}@{version}")
        }
        None => id.to_string(),
    }
}

/// The digest of the keyed root holding `manifest_dir` (the innermost one).
fn root_digest(manifest_dir: &Path, roots: &[crate::KeyedRoot]) -> Option<String> {
    let dir = manifest_dir
        .canonicalize()
        .unwrap_or_else(|_| manifest_dir.to_path_buf());
    roots
        .iter()
        .filter_map(|r| {
            let p = r.path.canonicalize().unwrap_or_else(|_| r.path.clone());
            dir.starts_with(&p)
                .then(|| (p.components().count(), &r.digest))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, d)| d.clone())
}

/// A fresh local package is trusted only when sparkwing recorded compiling this very package
/// from these very contents into its slot.
fn trusted(
    a: &LocalArtifact,
    roots: &[crate::KeyedRoot],
    records: &BTreeMap<String, LocalBuild>,
) -> bool {
    let Some(digest) = root_digest(&a.manifest_dir, roots) else {
        return false;
    };
    records
        .get(&slot(&a.id))
        .is_some_and(|r| r.package_id == a.id && r.digest == digest)
}

/// Whether a cargo package id names a local path package.
fn is_path_package(id: &str) -> bool {
    id.starts_with("path+file://")
}

fn run_cargo_build(req: &BuildRequest<'_>, bin: &str) -> Result<BuildOutcome, BuildError> {
    let mut args = profile_args(req, "build");
    args.splice(1..1, ["--bin".into(), OsString::from(bin)]);
    // JSON on stdout tells where the executable landed (a `build.target` setting moves it) and
    // which packages were fresh; diagnostics are still rendered for humans on stderr.
    args.push("--message-format=json-render-diagnostics".into());
    let command = shown(req.cargo, &args);
    let mut child = Command::new(req.cargo)
        .args(&args)
        .current_dir(req.sparkwing_dir)
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(spawn_err(req.cargo, command.clone()))?;

    let mut executable: Option<PathBuf> = None;
    let mut opt_level: Option<String> = None;
    let mut local: Vec<LocalArtifact> = Vec::new();
    let mut unit_hashes = std::collections::BTreeSet::new();
    let mut note = |path: &Path| {
        // `deps/libx-<h>.rlib`, `build/x-<h>/build-script-build`, `build/x-<h>/out`.
        for part in [path.file_name(), path.parent().and_then(|p| p.file_name())]
            .into_iter()
            .flatten()
        {
            if let Some(h) = unit_hash(&part.to_string_lossy()) {
                unit_hashes.insert(h.to_string());
            }
        }
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            // Not a cargo message (a build script printing to the console): keep it visible.
            eprintln!("{line}");
            continue;
        };
        if msg["reason"] == "build-script-executed"
            && let Some(out_dir) = msg["out_dir"].as_str()
        {
            note(Path::new(out_dir));
        }
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        for f in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str() {
                note(Path::new(f));
            }
        }
        let id = msg["package_id"].as_str().unwrap_or_default();
        // The patched-in SDK is a path package too, but its directory is named by its content
        // hash and never changes in place.
        let is_sdk = |m: &Path| {
            req.sdk_patch.iter().any(|(_, p)| m.starts_with(p))
                || req.sdk_root.is_some_and(|r| m.starts_with(r))
        };
        // A package reports one artifact per target (build script, lib, bin): any of them
        // reused counts as the package reused.
        if let Some(a) = local.iter_mut().find(|a| a.id == id) {
            a.fresh |= msg["fresh"] == true;
        } else if is_path_package(id)
            && let Some(manifest) = msg["manifest_path"].as_str().map(Path::new)
            && !is_sdk(manifest)
        {
            local.push(LocalArtifact {
                id: id.to_string(),
                manifest_dir: manifest.parent().unwrap_or(Path::new("/")).to_path_buf(),
                fresh: msg["fresh"] == true,
            });
        }
        if msg["target"]["name"] == bin
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|v| v == "bin"))
            && let Some(exe) = msg["executable"].as_str()
        {
            executable = Some(PathBuf::from(exe));
            opt_level = msg["profile"]["opt_level"].as_str().map(str::to_string);
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Failed { command, status });
    }
    Ok(BuildOutcome {
        executable,
        local,
        unit_hashes,
        opt_level,
    })
}

pub use crate::profile::{PIPELINE_PROFILE, manifest_sets_profile};

/// `cargo <verb>` in the build's profile and target directory, with the SDK patched in.
fn profile_args(req: &BuildRequest<'_>, verb: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![verb.into()];
    if req.profile == BuildProfile::Release {
        args.push("--release".into());
        if !manifest_sets_profile(req.sparkwing_dir) {
            for (k, v) in PIPELINE_PROFILE {
                // cargo's `--config` outranks its environment: a setting the user made there wins.
                // (Settings for one package have no environment variable.)
                let var = format!(
                    "CARGO_PROFILE_RELEASE_{}",
                    k.to_uppercase().replace('-', "_")
                );
                if !k.contains('.') && std::env::var_os(&var).is_some_and(|v| !v.is_empty()) {
                    continue;
                }
                args.push("--config".into());
                args.push(format!("profile.release.{k}={v}").into());
            }
        }
    }
    args.push("--target-dir".into());
    args.push(req.target_dir.as_os_str().to_owned());
    for (name, path) in req.sdk_patch {
        args.push("--config".into());
        args.push(patch_config(name, path));
    }
    args
}

/// `cargo clean -p <id>…` for the given packages, in the build's profile and target directory.
fn clean_packages(req: &BuildRequest<'_>, ids: &[String]) -> Result<(), BuildError> {
    let mut args = profile_args(req, "clean");
    for id in ids {
        args.push("-p".into());
        args.push(id.into());
    }
    let command = shown(req.cargo, &args);
    let out = Command::new(req.cargo)
        .args(&args)
        .current_dir(req.sparkwing_dir)
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(spawn_err(req.cargo, command.clone()))?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        return Err(BuildError::Failed {
            command,
            status: out.status,
        });
    }
    Ok(())
}

/// Refuses a build in which the compiler read a file of the repository that the key does not
/// cover (`include!("../../version.txt")`, a module outside `.sparkwing/`): cargo's dep-info
/// file beside the executable lists every source file of the binary.
fn check_reads_are_keyed(req: &BuildRequest<'_>, exe: &Path) -> Result<(), BuildError> {
    let Some(repo) = req.repo_root else {
        return Ok(());
    };
    if req.keyed_roots.is_empty() {
        return Ok(());
    }
    let mut dep_info = exe.as_os_str().to_owned();
    dep_info.push(".d");
    let Ok(text) = std::fs::read_to_string(&dep_info) else {
        return Ok(());
    };
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let repo = canon(repo);
    let keyed: Vec<PathBuf> = req.keyed_roots.iter().map(|r| canon(&r.path)).collect();
    let target = canon(req.target_dir);
    let cargo_dir = canon(&repo.join(".cargo"));
    let mut unkeyed: Vec<String> = Vec::new();
    for file in dep_info_files(&text) {
        let path = canon(Path::new(&file));
        if !path.starts_with(&repo)
            || path.starts_with(&target)
            || path.starts_with(&cargo_dir)
            || keyed.iter().any(|k| path.starts_with(k))
        {
            continue;
        }
        let shown = format!("`{}`", path.display());
        if !unkeyed.contains(&shown) {
            unkeyed.push(shown);
        }
    }
    if unkeyed.is_empty() {
        return Ok(());
    }
    Err(BuildError::Unkeyed {
        files: unkeyed.join(", "),
    })
}

/// The prerequisites of a Makefile-style dep-info file (`out: a b\ c`), unescaped.
fn dep_info_files(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        // Only the first rule lists the sources; later lines are `file:` stubs.
        let Some((_, deps)) = split_rule(line) else {
            continue;
        };
        let mut cur = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    cur.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `target: deps` split at the first `:` that is not escaped and ends the target.
fn split_rule(line: &str) -> Option<(&str, &str)> {
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        let rest = &line[i + 1..];
        if c == ':' && prev != '\\' && (rest.is_empty() || rest.starts_with(' ')) {
            return Some((&line[..i], rest));
        }
        prev = c;
    }
    None
}

/// The bin target the pipeline runs: `package.default-run`, else the only binary, else the one
/// named like the package.
pub fn binary_name(sparkwing_dir: &Path) -> Result<String, BuildError> {
    let path = sparkwing_dir.join("Cargo.toml");
    let bad = |message: String| BuildError::Manifest {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let t: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string().trim().into()))?;
    let package = t
        .get("package")
        .and_then(|p| p.as_table())
        .ok_or_else(|| bad("no `[package]` table; the pipeline must be a package".into()))?;
    let pkg_name = package
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| bad("`[package]` has no `name`".into()))?;
    if let Some(d) = package.get("default-run").and_then(|d| d.as_str()) {
        return Ok(d.to_string());
    }
    let mut bins: Vec<String> = t
        .get("bin")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .collect();
    let autobins = package
        .get("autobins")
        .and_then(|a| a.as_bool())
        .unwrap_or(true);
    if autobins {
        if sparkwing_dir.join("src/main.rs").is_file() {
            bins.push(pkg_name.to_string());
        }
        if let Ok(rd) = std::fs::read_dir(sparkwing_dir.join("src/bin")) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "rs") {
                    if let Some(stem) = p.file_stem() {
                        bins.push(stem.to_string_lossy().into_owned());
                    }
                } else if p.join("main.rs").is_file() {
                    bins.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    bins.sort();
    bins.dedup();
    match bins.as_slice() {
        [] => Err(bad(
            "no binary target: add `src/main.rs` or a `[[bin]]` section".into(),
        )),
        [one] => Ok(one.clone()),
        many if many.iter().any(|b| b == pkg_name) => Ok(pkg_name.to_string()),
        many => Err(bad(format!(
            "several binary targets ({}); set `package.default-run` to the pipeline's",
            many.join(", ")
        ))),
    }
}

/// Creates `.sparkwing/Cargo.lock` when it is missing: writes `seed` (the lockfile the SDK was
/// tested with; may be empty) and lets `cargo metadata` trim or extend it with the same patch
/// configuration as the build, so the key can include the lockfile before the first build and
/// the build leaves it unchanged. Returns whether it created the file. An existing lockfile is
/// never touched; on failure the new file is removed again.
pub fn ensure_lockfile(req: &BuildRequest<'_>, seed: &[u8]) -> Result<bool, BuildError> {
    let lockfile = req.sparkwing_dir.join("Cargo.lock");
    // Two runs starting together must not both create it, nor may one read the seed before the
    // other has trimmed it: the file is only created and trimmed under an exclusive lock, and a
    // run that finds it existing checks under a shared lock (an uncontended flock is cheap).
    std::fs::create_dir_all(req.target_dir).map_err(io("create directory", req.target_dir))?;
    let lock_path = req.target_dir.join(".sparkwing-lockfile.lock");
    {
        let _shared = crate::lock::lock(&lock_path, crate::lock::Mode::Shared)
            .map_err(io("lock", &lock_path))?;
        if lockfile.exists() {
            return Ok(false);
        }
    }
    let _held = crate::lock::lock(&lock_path, crate::lock::Mode::Exclusive)
        .map_err(io("lock", &lock_path))?;
    if lockfile.exists() {
        return Ok(false);
    }
    if !seed.is_empty() {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lockfile)
            .map_err(io("create", &lockfile))?;
        f.write_all(seed).map_err(io("write", &lockfile))?;
    }
    let mut args: Vec<OsString> = vec!["metadata".into(), "--format-version".into(), "1".into()];
    for (name, path) in req.sdk_patch {
        args.push("--config".into());
        args.push(patch_config(name, path));
    }
    let command = shown(req.cargo, &args);
    let result = Command::new(req.cargo)
        .args(&args)
        .current_dir(req.sparkwing_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let out = match result {
        Ok(o) => o,
        Err(e) => {
            let _ = std::fs::remove_file(&lockfile);
            return Err(spawn_err(req.cargo, command)(e));
        }
    };
    if !out.status.success() {
        let _ = std::fs::remove_file(&lockfile);
        return Err(BuildError::Lockfile {
            lockfile,
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(true)
}
