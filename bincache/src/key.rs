//! The pipeline cache key: a blake3 digest over a versioned, serializable record of every input
//! that can change the compiled pipeline binary (`docs/cache.md`).
//!
//! Nothing machine-specific enters the key: trees are hashed by relative path and content, path
//! dependencies are named by package name, and no timestamp is read. So the same source with the
//! same toolchain at two checkout paths, or on two machines, gives the same key.
//!
//! ```no_run
//! use sparkwing_bincache::key::{BuildProfile, KeyRequest, compute_key, render_explain};
//! use std::path::Path;
//!
//! let env = |name: &str| std::env::var(name).ok();
//! let key = compute_key(&KeyRequest {
//!     sparkwing_dir: Path::new("/repo/.sparkwing"),
//!     sdk_version: "0.1.0+3f2a9c1b77e0",
//!     target: "x86_64-unknown-linux-gnu",
//!     profile: BuildProfile::Release,
//!     env: &env,
//! })?;
//! println!("{}", render_explain(&key));
//! # Ok::<(), sparkwing_bincache::KeyError>(())
//! ```

use crate::FsError;
use crate::fs_error::io;
use crate::toolchain::{self, Toolchain, ToolchainError};
use crate::tree::{self, Exclude, TreeFile};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// Bumped whenever the preimage changes shape or meaning, so old keys can never be confused
/// with new ones.
pub const KEY_FORMAT_VERSION: u32 = 3;

/// Number of hex characters of a key (128 bits).
const KEY_HEX_LEN: usize = 32;
/// Number of hex characters shown per input by `cache explain`.
const INPUT_DIGEST_LEN: usize = 12;

/// The cargo profile the pipeline is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildProfile {
    /// `cargo build --release` (the default: pipelines run often and build rarely).
    #[default]
    Release,
    /// `cargo build` (the `dev` profile).
    Dev,
}

impl BuildProfile {
    /// `release` or `dev`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildProfile::Release => "release",
            BuildProfile::Dev => "dev",
        }
    }

    /// The upper-case profile name cargo uses in `CARGO_PROFILE_<NAME>_*` variables.
    fn env_name(self) -> &'static str {
        match self {
            BuildProfile::Release => "RELEASE",
            BuildProfile::Dev => "DEV",
        }
    }
}

impl std::fmt::Display for BuildProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything [`compute_key`] needs. Environment access goes through `env` so that callers (and
/// tests) decide what the build will see.
pub struct KeyRequest<'a> {
    /// The user's `.sparkwing/` package.
    pub sparkwing_dir: &'a Path,
    /// SDK version plus a content hash of the embedded SDK, e.g. `0.1.0+3f2a9c1b77e0`.
    pub sdk_version: &'a str,
    /// Target triple the pipeline is built for, e.g. `x86_64-unknown-linux-gnu`.
    pub target: &'a str,
    /// Cargo profile of the build.
    pub profile: BuildProfile,
    /// Looks up an environment variable as the build will see it.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Whether `key` has the shape of a cache key: 16 to 64 lowercase hex characters (it becomes a
/// directory name and an object key, so nothing else is ever accepted).
pub fn is_cache_key(key: &str) -> bool {
    (16..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A computed key and the inputs it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// Lowercase hex, stable across machines and checkout paths.
    pub key: String,
    /// One entry per input, in preimage order.
    pub inputs: Vec<KeyInput>,
    /// The directories whose every file the key covers on this machine: `.sparkwing/` and each
    /// local path dependency. Not part of the key (paths differ between machines).
    #[serde(skip)]
    pub roots: Vec<KeyedRoot>,
}

/// A directory the key covers, with the digest of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRoot {
    pub path: PathBuf,
    /// blake3 of the directory's hashed files (paths, contents, executable bits).
    pub digest: String,
}

fn tree_digest(files: &[TreeFile]) -> String {
    blake3::hash(&serde_json::to_vec(files).expect("tree serializes"))
        .to_hex()
        .to_string()
}

/// One input of a key, as `cache explain` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInput {
    /// `format`, `sdk`, `target`, `toolchain`, `profile`, `rustc-env`, `tree`, `Cargo.lock`,
    /// `.resolved.lock`, `cargo-config` or `path-dep:<package>`.
    pub label: String,
    /// Short blake3 of this input alone: when a key changes, the input whose digest changed is
    /// the reason.
    pub digest: String,
    /// Human-readable summary (never a secret: environment values are not shown).
    pub detail: String,
}

/// Computing a key failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The package directory is missing.
    #[error("find the pipeline package `{0}`: not a directory")]
    NoPackage(PathBuf),
    /// A manifest could not be read or parsed.
    #[error("read `{path}`: {message}")]
    Manifest { path: PathBuf, message: String },
    /// Walking or hashing a tree failed.
    #[error("hash {what}: {source}")]
    Tree {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A path dependency does not exist.
    #[error("find path dependency `{name}` at `{path}` (declared in `{manifest}`): {source}")]
    PathDep {
        name: String,
        path: PathBuf,
        manifest: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The toolchain could not be determined.
    #[error("{source}")]
    Toolchain {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        hint: Option<String>,
    },
}

impl sparkwing_contract::hint::Hinted for KeyError {
    fn hint(&self) -> Option<String> {
        match self {
            KeyError::NoPackage(_) => {
                Some("create one with `sparkwing pipeline new --name NAME`".into())
            }
            KeyError::PathDep { .. } => Some("fix the `path` in the manifest".into()),
            KeyError::Toolchain { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

impl From<ToolchainError> for KeyError {
    fn from(e: ToolchainError) -> Self {
        use sparkwing_contract::hint::Hinted;
        KeyError::Toolchain {
            hint: e.hint(),
            source: Box::new(e),
        }
    }
}

fn tree_err(what: impl Into<String>, e: FsError) -> KeyError {
    KeyError::Tree {
        what: what.into(),
        source: Box::new(e),
    }
}

/// The preimage. Field order is the hashing order; any change here bumps
/// [`KEY_FORMAT_VERSION`].
#[derive(Serialize)]
struct Material {
    format_version: u32,
    sdk_version: String,
    target: String,
    toolchain: Toolchain,
    profile: BuildProfile,
    /// The settings sparkwing passes when the manifest has none ([`crate::profile::PIPELINE_PROFILE`]):
    /// a CLI that builds with other settings must not reuse this CLI's binaries.
    default_profile: Vec<(String, String)>,
    rustc_env: BTreeMap<String, String>,
    tree: Vec<TreeFile>,
    cargo_lock: Option<String>,
    resolved_lock: Option<String>,
    cargo_config: Vec<TreeFile>,
    path_deps: Vec<PathDep>,
}

#[derive(Serialize)]
struct PathDep {
    name: String,
    files: Vec<TreeFile>,
}

/// Files under `.sparkwing/` that are counted as their own inputs or never count.
const TREE_ROOT_EXCLUDES: &[&str] = &["target", "Cargo.lock", ".resolved.lock"];
/// A path dependency's own lockfile is not used when it is built as a dependency.
const DEP_ROOT_EXCLUDES: &[&str] = &["target", "Cargo.lock"];

/// Profile settings cargo reads from `CARGO_PROFILE_<NAME>_<KEY>`.
const PROFILE_KEYS: &[&str] = &[
    "OPT_LEVEL",
    "DEBUG",
    "SPLIT_DEBUGINFO",
    "STRIP",
    "DEBUG_ASSERTIONS",
    "OVERFLOW_CHECKS",
    "LTO",
    "PANIC",
    "INCREMENTAL",
    "CODEGEN_UNITS",
    "RPATH",
    "TRIM_PATHS",
];

/// The environment variables that reach rustc for this build (empty values count as unset, as
/// cargo treats them).
pub fn rustc_env_names(target: &str, profile: BuildProfile) -> Vec<String> {
    let triple = target.to_uppercase().replace(['-', '.'], "_");
    let p = profile.env_name();
    let mut names: Vec<String> = [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_BOOTSTRAP",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push(format!("CARGO_TARGET_{triple}_RUSTFLAGS"));
    names.push(format!("CARGO_TARGET_{triple}_LINKER"));
    for k in PROFILE_KEYS {
        names.push(format!("CARGO_PROFILE_{p}_{k}"));
        names.push(format!("CARGO_PROFILE_{p}_BUILD_OVERRIDE_{k}"));
    }
    names
}

/// Computes the key of the package at `req.sparkwing_dir`. Starts no process when the toolchain
/// is pinned exactly.
pub fn compute_key(req: &KeyRequest<'_>) -> Result<CacheKey, KeyError> {
    compute_versioned(req, KEY_FORMAT_VERSION)
}

fn compute_versioned(req: &KeyRequest<'_>, format_version: u32) -> Result<CacheKey, KeyError> {
    let dir = req.sparkwing_dir;
    if !dir.is_dir() {
        return Err(KeyError::NoPackage(dir.to_path_buf()));
    }
    let toolchain = toolchain::resolve(dir, req.env)?;

    let rustc_env: BTreeMap<String, String> = rustc_env_names(req.target, req.profile)
        .into_iter()
        .filter_map(|n| (req.env)(&n).filter(|v| !v.is_empty()).map(|v| (n, v)))
        .collect();

    let tree = tree::hash_tree(
        dir,
        &Exclude {
            root_names: TREE_ROOT_EXCLUDES,
        },
    )
    .map_err(|e| tree_err("the `.sparkwing/` tree", e))?;

    let cargo_lock = hash_optional(&dir.join("Cargo.lock"))?;
    let resolved_lock = hash_optional(&dir.join(".resolved.lock"))?;
    let cargo_config = project_cargo_config(dir)?;
    let manifest = read_manifest(&dir.join("Cargo.toml"))?;
    let (path_deps, dep_roots) = path_deps(dir, &manifest)?;

    let material = Material {
        format_version,
        sdk_version: req.sdk_version.to_string(),
        target: req.target.to_string(),
        toolchain: toolchain.toolchain.clone(),
        profile: req.profile,
        default_profile: crate::profile::default_profile(
            &manifest,
            req.profile == BuildProfile::Release,
        ),
        rustc_env,
        tree,
        cargo_lock,
        resolved_lock,
        cargo_config,
        path_deps,
    };

    let mut inputs = vec![
        input(
            "format",
            &material.format_version,
            format!("key format {format_version}"),
        ),
        input("sdk", &material.sdk_version, material.sdk_version.clone()),
        input("target", &material.target, material.target.clone()),
        input("toolchain", &material.toolchain, toolchain.detail),
        input(
            "profile",
            &(&material.profile, &material.default_profile),
            if material.default_profile.is_empty() {
                material.profile.to_string()
            } else {
                format!(
                    "{} with sparkwing's pipeline settings ({})",
                    material.profile,
                    material
                        .default_profile
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        ),
        input(
            "rustc-env",
            &material.rustc_env,
            if material.rustc_env.is_empty() {
                "none set".to_string()
            } else {
                // Names only: flags can carry tokens (e.g. a registry credential in a linker arg).
                material
                    .rustc_env
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        input(
            "tree",
            &material.tree,
            format!("`.sparkwing/`: {}", count_files(material.tree.len())),
        ),
        input(
            "Cargo.lock",
            &material.cargo_lock,
            presence(&material.cargo_lock),
        ),
        input(
            ".resolved.lock",
            &material.resolved_lock,
            presence(&material.resolved_lock),
        ),
        input(
            "cargo-config",
            &material.cargo_config,
            if material.cargo_config.is_empty() {
                "no `.cargo/config.toml` beside `.sparkwing/`".to_string()
            } else {
                material
                    .cargo_config
                    .iter()
                    .map(|f| format!("`{}`", f.path))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ];
    for dep in &material.path_deps {
        inputs.push(input(
            &format!("path-dep:{}", dep.name),
            &dep.files,
            count_files(dep.files.len()),
        ));
    }

    let bytes = serde_json::to_vec(&material).expect("key material serializes");
    let mut key = blake3::hash(&bytes).to_hex().to_string();
    key.truncate(KEY_HEX_LEN);
    let mut roots = vec![KeyedRoot {
        path: dir.to_path_buf(),
        digest: tree_digest(&material.tree),
    }];
    roots.extend(dep_roots);
    Ok(CacheKey { key, inputs, roots })
}

fn input<T: Serialize + ?Sized>(label: &str, value: &T, detail: String) -> KeyInput {
    let bytes = serde_json::to_vec(value).expect("key input serializes");
    let mut digest = blake3::hash(&bytes).to_hex().to_string();
    digest.truncate(INPUT_DIGEST_LEN);
    KeyInput {
        label: label.to_string(),
        digest,
        detail,
    }
}

fn count_files(n: usize) -> String {
    if n == 1 {
        "1 file".to_string()
    } else {
        format!("{n} files")
    }
}

fn presence(h: &Option<String>) -> String {
    match h {
        Some(_) => "present".to_string(),
        None => "absent".to_string(),
    }
}

pub(crate) fn hash_optional(path: &Path) -> Result<Option<String>, KeyError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => tree::hash_file(path)
            .map(Some)
            .map_err(|e| tree_err(format!("`{}`", path.display()), e)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(tree_err(
            format!("`{}`", path.display()),
            io("stat", path)(e),
        )),
    }
}

/// The repository's own cargo configuration (`<repo>/.cargo/config.toml`), which applies to a
/// build in `.sparkwing/` and can set rustflags. Configuration above the repository belongs to
/// the machine and is left out so CI and laptops share keys.
pub(crate) fn project_cargo_config(dir: &Path) -> Result<Vec<TreeFile>, KeyError> {
    let Some(repo) = dir.parent() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in ["config", "config.toml"] {
        let path = repo.join(".cargo").join(name);
        if let Some(blake3) = hash_optional(&path)? {
            out.push(TreeFile {
                path: format!("../.cargo/{name}"),
                blake3,
                exec: false,
                dir_link: false,
            });
        }
    }
    Ok(out)
}

pub(crate) fn read_manifest(path: &Path) -> Result<toml::Table, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| KeyError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string().trim().to_string(),
    })
}

/// `(dependency key, path)` for every dependency with a `path` in a manifest: normal and build
/// dependencies (dev-dependencies never reach the binary), per-target ones, workspace ones and
/// patches.
fn declared_path_deps(t: &toml::Table) -> Vec<(String, String)> {
    fn from(tbl: Option<&toml::Value>, out: &mut Vec<(String, String)>) {
        let Some(tbl) = tbl.and_then(|v| v.as_table()) else {
            return;
        };
        for (name, spec) in tbl {
            if let Some(p) = spec.get("path").and_then(|p| p.as_str()) {
                let pkg = spec.get("package").and_then(|p| p.as_str()).unwrap_or(name);
                out.push((pkg.to_string(), p.to_string()));
            }
        }
    }
    let mut out = Vec::new();
    for k in ["dependencies", "build-dependencies"] {
        from(t.get(k), &mut out);
    }
    if let Some(targets) = t.get("target").and_then(|v| v.as_table()) {
        for spec in targets.values() {
            for k in ["dependencies", "build-dependencies"] {
                from(spec.get(k), &mut out);
            }
        }
    }
    if let Some(ws) = t.get("workspace") {
        from(ws.get("dependencies"), &mut out);
    }
    if let Some(patch) = t.get("patch").and_then(|v| v.as_table()) {
        for source in patch.values() {
            from(Some(source), &mut out);
        }
    }
    out
}

/// Trees of the local path dependencies of the package, transitively, named by package name.
/// Dependencies inside `.sparkwing/` are already part of its tree and are only followed.
/// The path dependencies of the package at `dir`, whose own manifest is `root`.
fn path_deps(dir: &Path, root: &toml::Table) -> Result<(Vec<PathDep>, Vec<KeyedRoot>), KeyError> {
    let root_canon = dir
        .canonicalize()
        .map_err(|_| KeyError::NoPackage(dir.to_path_buf()))?;
    let mut seen: BTreeSet<PathBuf> = BTreeSet::from([root_canon.clone()]);
    let mut queue: VecDeque<PathBuf> = VecDeque::from([dir.to_path_buf()]);
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    while let Some(manifest_dir) = queue.pop_front() {
        let manifest = manifest_dir.join("Cargo.toml");
        let table = if manifest_dir == dir {
            std::borrow::Cow::Borrowed(root)
        } else {
            // A dependency without a manifest fails the build anyway.
            match read_manifest(&manifest) {
                Ok(t) => std::borrow::Cow::Owned(t),
                Err(_) => continue,
            }
        };
        for (dep_key, rel) in declared_path_deps(&table) {
            let path = manifest_dir.join(&rel);
            let canon = path.canonicalize().map_err(|source| KeyError::PathDep {
                name: dep_key.clone(),
                path: PathBuf::from(&rel),
                manifest: manifest.clone(),
                source,
            })?;
            if !seen.insert(canon.clone()) {
                continue;
            }
            queue.push_back(canon.clone());
            if canon.starts_with(&root_canon) {
                continue;
            }
            let name = read_manifest(&canon.join("Cargo.toml"))
                .ok()
                .and_then(|t| {
                    t.get("package")
                        .and_then(|p| p.get("name"))
                        .and_then(|n| n.as_str())
                        .map(str::to_string)
                })
                .unwrap_or(dep_key);
            found.push((name, canon));
        }
    }
    let mut roots: Vec<KeyedRoot> = Vec::with_capacity(found.len());
    let mut hashed: Vec<(String, Vec<u8>, Vec<TreeFile>)> = Vec::with_capacity(found.len());
    for (name, path) in found {
        let files = tree::hash_tree(
            &path,
            &Exclude {
                root_names: DEP_ROOT_EXCLUDES,
            },
        )
        .map_err(|e| tree_err(format!("path dependency `{name}`"), e))?;
        roots.push(KeyedRoot {
            digest: tree_digest(&files),
            path,
        });
        let order = serde_json::to_vec(&files).expect("tree serializes");
        hashed.push((name, order, files));
    }
    // Same-named packages are ordered by content, not by where they live on this machine.
    hashed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut out: Vec<PathDep> = Vec::with_capacity(hashed.len());
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    for (name, _, files) in hashed {
        let n = used.entry(name.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 { name } else { format!("{name}#{n}") };
        out.push(PathDep { name, files });
    }
    Ok((out, roots))
}

/// The labels whose digest differs between two input lists (added or removed inputs included),
/// to say why a key changed.
pub fn changed_inputs(old: &[KeyInput], new: &[KeyInput]) -> Vec<String> {
    let old_map: BTreeMap<&str, &str> = old
        .iter()
        .map(|i| (i.label.as_str(), i.digest.as_str()))
        .collect();
    let new_map: BTreeMap<&str, &str> = new
        .iter()
        .map(|i| (i.label.as_str(), i.digest.as_str()))
        .collect();
    let mut out: Vec<String> = new
        .iter()
        .filter(|i| old_map.get(i.label.as_str()) != Some(&i.digest.as_str()))
        .map(|i| i.label.clone())
        .collect();
    out.extend(
        old.iter()
            .filter(|i| !new_map.contains_key(i.label.as_str()))
            .map(|i| i.label.clone()),
    );
    out
}

/// `sparkwing cache explain`: the key, then one line per input with its own digest.
pub fn render_explain(key: &CacheKey) -> String {
    let width = key
        .inputs
        .iter()
        .map(|i| i.label.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut s = format!("pipeline cache key {}\n", key.key);
    s.push_str(&format!(
        "  {:<width$}  {:<INPUT_DIGEST_LEN$}  detail\n",
        "input", "digest"
    ));
    for i in &key.inputs {
        s.push_str(&format!(
            "  {:<width$}  {:<INPUT_DIGEST_LEN$}  {}\n",
            i.label, i.digest, i.detail
        ));
    }
    s
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
