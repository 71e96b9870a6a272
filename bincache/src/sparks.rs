//! Sparks: pipeline library crates from the registry that float to the newest version their
//! requirement allows, pinned for builds by the resolved overlay `.sparkwing/.resolved.lock`.
//!
//! The overlay is a Cargo lockfile of the pipeline package with the sparks resolved. It is meant
//! to be committed: a machine that sets `SPARKWING_NO_SPARKS_RESOLVE=1` builds exactly the
//! versions it names without asking the registry for newer ones ([`use_committed`]), and since
//! the cache key hashes it, two machines with the same overlay share binaries. [`resolve`]
//! refreshes it with one `cargo update`.
//!
//! Cargo resolves within the requirement written in `.sparkwing/Cargo.toml`; the requirement in
//! `sparkwing.yaml` is checked against the outcome, so a spark never silently lands outside
//! what the project declared.

use crate::build::{BuildRequest, patch_config, shown};
use crate::fs_error::io;
use crate::lock::{self, Mode};
use semver::Version;
use sparkwing_config::Spark;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// File name of the resolved overlay inside `.sparkwing/`.
pub const OVERLAY_FILE: &str = ".resolved.lock";

const LOCKFILE: &str = "Cargo.lock";

const NO_RESOLVE_HINT: &str =
    "SPARKWING_NO_SPARKS_RESOLVE=1 uses the committed .sparkwing/.resolved.lock without resolving";

/// One spark before and after a resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkVersion {
    /// The crate name.
    pub name: String,
    /// The version the starting lockfile held, or `None` when the spark was not locked yet.
    pub old: Option<Version>,
    /// The version the overlay now holds.
    pub new: Version,
}

impl SparkVersion {
    /// The resolve moved this spark (or locked it for the first time).
    pub fn changed(&self) -> bool {
        self.old.as_ref() != Some(&self.new)
    }
}

/// What happened to `.sparkwing/.resolved.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayChange {
    /// Its bytes were already what the resolve produced; it was not written.
    Unchanged,
    /// It did not exist and was written.
    Created,
    /// It existed and was rewritten with different bytes.
    Updated,
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparksReport {
    /// Every spark, in `sparkwing.yaml` order.
    pub sparks: Vec<SparkVersion>,
    /// What happened to the overlay.
    pub overlay: OverlayChange,
}

impl SparksReport {
    /// The overlay was created or rewritten, so it should be committed (and the cache key moved).
    pub fn overlay_changed(&self) -> bool {
        self.overlay != OverlayChange::Unchanged
    }

    /// The sparks whose version moved.
    pub fn changed(&self) -> impl Iterator<Item = &SparkVersion> {
        self.sparks.iter().filter(|s| s.changed())
    }
}

/// Resolving sparks or using the committed overlay failed.
#[derive(Debug, thiserror::Error)]
pub enum SparksError {
    /// `resolve` was called with an empty `sparks:` list.
    #[error("resolve sparks: `sparks:` in `.sparkwing/sparkwing.yaml` lists none")]
    NoSparks,
    /// The pipeline manifest does not depend on a spark.
    #[error("resolve spark `{name}`: it is not a dependency in `{manifest}`")]
    NotADependency {
        name: String,
        manifest: PathBuf,
        /// The dependency line to add, e.g. `itoa = "1"`.
        line: String,
    },
    /// The pipeline manifest takes a spark from a path or git instead of the registry.
    #[error("resolve spark `{name}`: `{manifest}` takes it from {kind}, not from the registry")]
    NotFromRegistry {
        name: String,
        manifest: PathBuf,
        /// `a path` or `git`.
        kind: &'static str,
    },
    /// A manifest or lockfile could not be understood.
    #[error("read `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    /// Cargo is not installed.
    #[error("resolve sparks with `{cargo}`: not found")]
    CargoNotFound { cargo: String },
    /// Cargo could not be started for another reason.
    #[error("resolve sparks with `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// Cargo ran and failed (registry unreachable, no matching version, …).
    #[error("resolve sparks: `{command}` exited with {status} (cargo's output is above)")]
    Cargo { command: String, status: ExitStatus },
    /// Cargo succeeded but the lockfile does not lock a spark.
    #[error("resolve sparks: spark `{name}` is not in `{lockfile}` after `cargo update`")]
    NotLocked { name: String, lockfile: PathBuf },
    /// A spark resolved outside the requirement in `sparkwing.yaml`.
    #[error(
        "resolve sparks: spark `{name}` resolved to {version}, which does not satisfy `{requirement}` from sparkwing.yaml"
    )]
    Unsatisfied {
        name: String,
        version: Version,
        requirement: String,
    },
    /// `SPARKWING_NO_SPARKS_RESOLVE=1` but there is no overlay to trust.
    #[error("use the committed sparks overlay: `{path}` does not exist")]
    NoOverlay { path: PathBuf },
    /// File-system trouble.
    #[error(transparent)]
    Io(#[from] crate::FsError),
}

impl sparkwing_contract::hint::Hinted for SparksError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            SparksError::NoSparks => "add `{ name: <crate>, version: \"<requirement>\" }` entries, or leave sparks out entirely".into(),
            SparksError::NotADependency { line, .. } => {
                format!("add `{line}` under `[dependencies]` in `.sparkwing/Cargo.toml`")
            }
            SparksError::NotFromRegistry { name, .. } => format!(
                "depend on it by version (`{name} = \"<requirement>\"`); to try a local copy, use `[patch.crates-io]` instead"
            ),
            SparksError::CargoNotFound { .. } => format!(
                "resolving sparks needs a Rust toolchain (https://rustup.rs, or point `SPARKWING_CARGO` at cargo); {NO_RESOLVE_HINT}"
            ),
            SparksError::Spawn { .. } | SparksError::Cargo { .. } => NO_RESOLVE_HINT.into(),
            SparksError::NotLocked { name, .. } => format!(
                "check that `.sparkwing/Cargo.toml` depends on `{name}` for every target"
            ),
            SparksError::Unsatisfied {
                name, requirement, ..
            } => format!(
                "cargo resolves within the requirement in `.sparkwing/Cargo.toml`; make it agree with sparkwing.yaml (e.g. `{name} = \"{requirement}\"`), or change `version` in sparkwing.yaml"
            ),
            SparksError::NoOverlay { .. } => "run `sparkwing pipeline sparks update` and commit `.sparkwing/.resolved.lock`, or unset SPARKWING_NO_SPARKS_RESOLVE to resolve on this run".into(),
            SparksError::Parse { .. } | SparksError::Io(_) => return None,
        })
    }
}

/// Checks that `.sparkwing/Cargo.toml` takes every spark from the registry as a normal
/// dependency (`[dependencies]` or `[target.<cfg>.dependencies]`, renamed or not) and returns
/// the package name. Reads one file; starts no process.
///
/// ```
/// use sparkwing_bincache::sparks::{SparksError, check_manifest};
/// use sparkwing_config::Spark;
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(
///     dir.path().join("Cargo.toml"),
///     "[package]\nname = \"pipelines\"\nversion = \"0.1.0\"\n\n[dependencies]\nitoa = \"1\"\n",
/// )
/// .unwrap();
/// let spark = |name: &str, version: &str| Spark {
///     name: name.into(),
///     version: version.into(),
///     requirement: version.parse().unwrap(),
/// };
/// assert_eq!(check_manifest(dir.path(), &[spark("itoa", "^1")]).unwrap(), "pipelines");
///
/// let err = check_manifest(dir.path(), &[spark("ryu", "^1.0")]).unwrap_err();
/// assert!(matches!(err, SparksError::NotADependency { .. }));
/// use sparkwing_contract::hint::Hinted;
/// assert!(err.hint().unwrap().contains("add `ryu = \"1.0\"` under `[dependencies]`"));
/// ```
pub fn check_manifest(sparkwing_dir: &Path, sparks: &[Spark]) -> Result<String, SparksError> {
    let manifest = sparkwing_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(io("read", &manifest))?;
    let bad = |message: String| SparksError::Parse {
        path: manifest.clone(),
        message,
    };
    let t: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string().trim().into()))?;
    let package = t
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| bad("no `[package]` with a `name`; the pipeline must be a package".into()))?
        .to_string();

    let mut tables: Vec<&toml::Table> = Vec::new();
    if let Some(d) = t.get("dependencies").and_then(|d| d.as_table()) {
        tables.push(d);
    }
    if let Some(targets) = t.get("target").and_then(|d| d.as_table()) {
        for cfg in targets.values() {
            if let Some(d) = cfg.get("dependencies").and_then(|d| d.as_table()) {
                tables.push(d);
            }
        }
    }
    let workspace_deps = t
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table());

    for spark in sparks {
        let found = tables.iter().find_map(|deps| {
            deps.iter().find_map(|(key, spec)| {
                let crate_name = spec.get("package").and_then(|p| p.as_str()).unwrap_or(key);
                same_crate(crate_name, &spark.name).then_some((key, spec))
            })
        });
        let Some((key, spec)) = found else {
            return Err(SparksError::NotADependency {
                name: spark.name.clone(),
                manifest: manifest.clone(),
                line: dependency_line(spark),
            });
        };
        // `workspace = true` inherits the source from `[workspace.dependencies]`.
        let spec = if spec.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
            workspace_deps
                .and_then(|w| w.get(key.as_str()))
                .unwrap_or(spec)
        } else {
            spec
        };
        let kind = if spec.get("path").is_some() {
            Some("a path")
        } else if spec.get("git").is_some() {
            Some("git")
        } else {
            None
        };
        if let Some(kind) = kind {
            return Err(SparksError::NotFromRegistry {
                name: spark.name.clone(),
                manifest: manifest.clone(),
                kind,
            });
        }
    }
    Ok(package)
}

/// Crate names that differ only in `-` versus `_` name the same crate on crates.io (and in
/// `sparkwing.yaml`).
fn same_crate(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || matches!((x, y), (b'-', b'_') | (b'_', b'-')))
}

/// The `[dependencies]` line that matches a spark's requirement: cargo's requirement grammar is
/// the one `sparkwing.yaml` uses, and a bare version already means `^`.
fn dependency_line(spark: &Spark) -> String {
    let v = spark.version.trim();
    let v = match v.strip_prefix('^') {
        Some(rest) if !rest.contains(',') => rest.trim(),
        _ => v,
    };
    format!("{} = \"{}\"", spark.name, v)
}

/// Refreshes the resolved overlay `.sparkwing/.resolved.lock`: what `sparkwing run` does
/// before computing the cache key when `sparks:` is not empty, and what
/// `sparkwing pipeline sparks update` does on request.
///
/// Starts from the overlay when it exists (copied over `Cargo.lock`), else from `Cargo.lock`,
/// and runs one `cargo update --workspace -p <spark>…` in `.sparkwing/` with the request's patch
/// configuration (cargo's progress goes to stderr). Sparks the lockfile does not hold yet are
/// locked at their newest version by the same call, and a missing `Cargo.lock` is created by it;
/// callers that have a seed lockfile call [`crate::ensure_lockfile`] first. Every resolved
/// version is checked against its `sparkwing.yaml` requirement. The overlay is rewritten
/// (temporary file + rename) only when its bytes change, and `Cargo.lock` ends equal to it. On
/// any error `Cargo.lock` is put back as it was and the overlay is not touched.
///
/// Concurrent resolves on one machine are serialized by `<target_dir>/.sparkwing-sparks.lock`.
pub fn resolve(req: &BuildRequest<'_>, sparks: &[Spark]) -> Result<SparksReport, SparksError> {
    if sparks.is_empty() {
        return Err(SparksError::NoSparks);
    }
    let root = check_manifest(req.sparkwing_dir, sparks)?;

    std::fs::create_dir_all(req.target_dir).map_err(io("create directory", req.target_dir))?;
    let lock_path = req.target_dir.join(".sparkwing-sparks.lock");
    let mut held =
        match lock::try_lock(&lock_path, Mode::Exclusive).map_err(io("lock", &lock_path))? {
            Some(h) => h,
            None => {
                eprintln!(
                    "sparkwing: waiting for {} to finish resolving sparks",
                    lock::read_holder(&lock_path)
                );
                lock::lock(&lock_path, Mode::Exclusive).map_err(io("lock", &lock_path))?
            }
        };
    held.write_holder(&lock::holder_text());

    let lockfile = req.sparkwing_dir.join(LOCKFILE);
    let overlay_path = req.sparkwing_dir.join(OVERLAY_FILE);
    let overlay = read_optional(&overlay_path)?;
    let original = read_optional(&lockfile)?;
    let mut restore = Restore {
        path: &lockfile,
        original: original.clone(),
        armed: true,
    };
    let start = match &overlay {
        Some(o) => {
            if original.as_ref() != Some(o) {
                write_atomic(&lockfile, o)?;
            }
            Some(o.clone())
        }
        None => original,
    };

    // The starting versions only label the report and pick `-p` arguments; a lockfile this
    // cannot read is left for cargo to judge.
    let before = start
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| parse_lock(s).ok())
        .unwrap_or_default();
    let mut old = Vec::with_capacity(sparks.len());
    let mut args: Vec<OsString> = vec!["update".into(), "--workspace".into()];
    for spark in sparks {
        let locked = direct_version(&before, &root, &spark.name);
        if let Some(l) = &locked {
            args.push("-p".into());
            args.push(if l.ambiguous {
                format!("{}@{}", l.name, l.version).into()
            } else {
                l.name.clone().into()
            });
        }
        old.push(locked.map(|l| l.version));
    }
    for (name, path) in req.sdk_patch {
        args.push("--config".into());
        args.push(patch_config(name, path));
    }
    let command = shown(req.cargo, &args);
    let status = Command::new(req.cargo)
        .args(&args)
        .current_dir(req.sparkwing_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                SparksError::CargoNotFound {
                    cargo: req.cargo.to_string_lossy().into_owned(),
                }
            } else {
                SparksError::Spawn {
                    command: command.clone(),
                    source,
                }
            }
        })?;
    if !status.success() {
        return Err(SparksError::Cargo { command, status });
    }

    let resolved = std::fs::read(&lockfile).map_err(io("read", &lockfile))?;
    let parse_err = |message: String| SparksError::Parse {
        path: lockfile.clone(),
        message,
    };
    let text = std::str::from_utf8(&resolved).map_err(|e| parse_err(e.to_string()))?;
    let after = parse_lock(text).map_err(parse_err)?;
    let mut report = Vec::with_capacity(sparks.len());
    for (spark, old) in sparks.iter().zip(old) {
        let new = direct_version(&after, &root, &spark.name)
            .ok_or_else(|| SparksError::NotLocked {
                name: spark.name.clone(),
                lockfile: lockfile.clone(),
            })?
            .version;
        if !spark.requirement.matches(&new) {
            return Err(SparksError::Unsatisfied {
                name: spark.name.clone(),
                version: new,
                requirement: spark.version.clone(),
            });
        }
        report.push(SparkVersion {
            name: spark.name.clone(),
            old,
            new,
        });
    }

    let change = match &overlay {
        Some(o) if *o == resolved => OverlayChange::Unchanged,
        Some(_) => OverlayChange::Updated,
        None => OverlayChange::Created,
    };
    if change != OverlayChange::Unchanged {
        write_atomic(&overlay_path, &resolved)?;
    }
    restore.armed = false;
    drop(held);
    Ok(SparksReport {
        sparks: report,
        overlay: change,
    })
}

/// Trusts the committed overlay (`SPARKWING_NO_SPARKS_RESOLVE=1`): copies
/// `.sparkwing/.resolved.lock` over `.sparkwing/Cargo.lock` when they differ and returns whether
/// it did. Starts no process, so it works without cargo or the registry.
///
/// ```
/// use sparkwing_bincache::sparks::use_committed;
///
/// let dir = tempfile::tempdir().unwrap();
/// assert!(use_committed(dir.path()).is_err()); // nothing committed to trust
///
/// std::fs::write(dir.path().join(".resolved.lock"), "version = 4\n").unwrap();
/// assert!(use_committed(dir.path()).unwrap());
/// assert!(!use_committed(dir.path()).unwrap());
/// assert_eq!(std::fs::read_to_string(dir.path().join("Cargo.lock")).unwrap(), "version = 4\n");
/// ```
pub fn use_committed(sparkwing_dir: &Path) -> Result<bool, SparksError> {
    let overlay_path = sparkwing_dir.join(OVERLAY_FILE);
    let Some(overlay) = read_optional(&overlay_path)? else {
        return Err(SparksError::NoOverlay { path: overlay_path });
    };
    let lockfile = sparkwing_dir.join(LOCKFILE);
    if read_optional(&lockfile)?.as_ref() == Some(&overlay) {
        return Ok(false);
    }
    write_atomic(&lockfile, &overlay)?;
    Ok(true)
}

/// The text `sparkwing pipeline sparks update` prints: one line per spark, then what happened to
/// the overlay.
///
/// ```
/// use sparkwing_bincache::sparks::{OverlayChange, SparkVersion, SparksReport, render_report};
///
/// let report = SparksReport {
///     sparks: vec![
///         SparkVersion { name: "itoa".into(), old: Some("1.0.0".parse().unwrap()), new: "1.0.15".parse().unwrap() },
///         SparkVersion { name: "serde".into(), old: None, new: "1.0.200".parse().unwrap() },
///     ],
///     overlay: OverlayChange::Updated,
/// };
/// let text = render_report(&report);
/// assert!(text.contains("itoa 1.0.0 → 1.0.15\n"));
/// assert!(text.contains("serde (new) 1.0.200\n"));
/// ```
pub fn render_report(report: &SparksReport) -> String {
    let mut out = String::new();
    for s in &report.sparks {
        match &s.old {
            None => out.push_str(&format!("{} (new) {}\n", s.name, s.new)),
            Some(old) if *old != s.new => {
                out.push_str(&format!("{} {} → {}\n", s.name, old, s.new));
            }
            Some(_) => out.push_str(&format!("{} {} (unchanged)\n", s.name, s.new)),
        }
    }
    out.push_str(match report.overlay {
        OverlayChange::Unchanged => "sparks up to date (.sparkwing/.resolved.lock unchanged)\n",
        OverlayChange::Created => "created .sparkwing/.resolved.lock; commit it\n",
        OverlayChange::Updated => "updated .sparkwing/.resolved.lock; commit it\n",
    });
    out
}

/// Puts `Cargo.lock` back as it was unless disarmed, so a failed resolve leaves no trace.
struct Restore<'a> {
    path: &'a Path,
    original: Option<Vec<u8>>,
    armed: bool,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let current = std::fs::read(self.path).ok();
        if current == self.original {
            return;
        }
        let _ = match &self.original {
            Some(bytes) => write_atomic(self.path, bytes).map_err(|_| ()),
            None => std::fs::remove_file(self.path).map_err(|_| ()),
        };
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, SparksError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e).into()),
    }
}

/// Writes through a temporary file in the same directory and renames it into place, so a reader
/// (a concurrent build, the cache key) never sees half a lockfile.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SparksError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, bytes)
        .map_err(io("write", &tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io("replace", path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}

#[derive(Debug, Default)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
    dependencies: Vec<String>,
}

fn parse_lock(text: &str) -> Result<Vec<LockPackage>, String> {
    let t: toml::Table = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    let mut out = Vec::new();
    let Some(pkgs) = t.get("package") else {
        return Ok(out);
    };
    let pkgs = pkgs
        .as_array()
        .ok_or("`package` is not an array of tables")?;
    for p in pkgs {
        let s = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
        out.push(LockPackage {
            name: s("name").ok_or("a `[[package]]` has no `name`")?,
            version: s("version").ok_or("a `[[package]]` has no `version`")?,
            source: s("source"),
            dependencies: p
                .get("dependencies")
                .and_then(|d| d.as_array())
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
        });
    }
    Ok(out)
}

/// The crate the root package depends on as `spark` (its name as locked, its version), and
/// whether the lockfile holds several versions of it (then `-p` needs `name@version`).
///
/// The root lists a dependency as `name`, or `name version [(source)]` when it is ambiguous.
fn direct_version(pkgs: &[LockPackage], root: &str, spark: &str) -> Option<Locked> {
    let root_pkg = pkgs.iter().find(|p| p.name == root && p.source.is_none())?;
    let (name, listed) = root_pkg.dependencies.iter().find_map(|d| {
        let mut words = d.split_whitespace();
        let name = words.next()?;
        same_crate(name, spark).then(|| (name.to_string(), words.next().map(str::to_string)))
    })?;
    let same_name: Vec<&LockPackage> = pkgs.iter().filter(|p| p.name == name).collect();
    let version = match listed {
        Some(v) => v,
        None => match same_name.as_slice() {
            [one] => one.version.clone(),
            _ => return None,
        },
    };
    Some(Locked {
        version: Version::parse(&version).ok()?,
        ambiguous: same_name.len() > 1,
        name,
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Locked {
    /// The crate name as the lockfile spells it.
    name: String,
    version: Version,
    ambiguous: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "itoa"
version = "0.4.8"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "itoa"
version = "1.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "old-dep"
version = "0.1.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = ["itoa 0.4.8"]

[[package]]
name = "pipelines"
version = "0.1.0"
dependencies = [
 "itoa 1.0.1",
 "old-dep",
 "ryu",
]

[[package]]
name = "ryu"
version = "1.0.5"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;

    #[test]
    fn direct_version_follows_the_root_dependency_list() {
        let pkgs = parse_lock(LOCK).unwrap();
        let locked = |name: &str, version: &str, ambiguous| Locked {
            name: name.into(),
            version: version.parse().unwrap(),
            ambiguous,
        };
        assert_eq!(
            direct_version(&pkgs, "pipelines", "itoa"),
            Some(locked("itoa", "1.0.1", true))
        );
        assert_eq!(
            direct_version(&pkgs, "pipelines", "ryu"),
            Some(locked("ryu", "1.0.5", false))
        );
        assert_eq!(
            direct_version(&pkgs, "pipelines", "old_dep"),
            Some(locked("old-dep", "0.1.0", false)),
            "`-` and `_` name the same crate"
        );
        assert_eq!(direct_version(&pkgs, "pipelines", "serde"), None);
        assert_eq!(direct_version(&pkgs, "other-root", "ryu"), None);
    }

    #[test]
    fn dependency_line_drops_a_redundant_caret_only() {
        let spark = |v: &str| Spark {
            name: "itoa".into(),
            version: v.into(),
            requirement: v.parse().unwrap(),
        };
        assert_eq!(dependency_line(&spark("^1")), "itoa = \"1\"");
        assert_eq!(dependency_line(&spark("~1.2")), "itoa = \"~1.2\"");
        assert_eq!(dependency_line(&spark(">=1.2, <2")), "itoa = \">=1.2, <2\"");
    }

    #[test]
    fn report_says_up_to_date_when_nothing_moved() {
        let report = SparksReport {
            sparks: vec![SparkVersion {
                name: "itoa".into(),
                old: Some("1.0.19".parse().unwrap()),
                new: "1.0.19".parse().unwrap(),
            }],
            overlay: OverlayChange::Unchanged,
        };
        assert_eq!(report.changed().count(), 0);
        assert!(!report.overlay_changed());
        assert_eq!(
            render_report(&report),
            "itoa 1.0.19 (unchanged)\nsparks up to date (.sparkwing/.resolved.lock unchanged)\n"
        );
    }
}
