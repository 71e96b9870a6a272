//! Compiled dependency sets: what cargo compiled for a pipeline's dependencies (the SDK and every
//! registry crate), shared through the cache surface so that a machine which misses the binary
//! of a new key compiles only the pipeline package itself (`docs/cache.md`).
//!
//! - [`deps_key`]: the key of a dependency set covers exactly what compiled dependencies depend
//!   on (lockfile, toolchain, SDK, target, profile settings, rustc flags, the cargo home, a
//!   compiler wrapper) and none of the pipeline package's own sources, so editing a pipeline
//!   changes the binary's key and keeps the dependency set's.
//! - [`pack`]: a tar stream, LZ4-compressed, of `<target>/<profile>/{deps,build,.fingerprint}`
//!   without the local packages' entries; published as `bin/deps/<key>` with a manifest by the
//!   rules of binaries ([`crate::remote::publish_deps`]).
//! - [`unpack`]: restores a verified archive into the target directory. Cargo's own freshness
//!   checks then decide what is reused: a restored artifact is only ever used when cargo would
//!   have produced the same one.

use crate::FsError;
use crate::fs_error::io;
use crate::key::{BuildProfile, KEY_FORMAT_VERSION, KeyError, KeyRequest};
use crate::lock::{self, Mode};
use crate::toolchain;
use crate::tree::TreeFile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Bumped whenever the dependency key's preimage or the archive layout changes.
pub const DEPS_FORMAT_VERSION: u32 = 1;

/// The directories of a profile's output that hold compiled dependencies.
const PACKED_DIRS: &[&str] = &["deps", "build", ".fingerprint"];

/// `<target>/.sparkwing-deps/`: markers of the dependency sets this target directory holds, and
/// archives being packed or unpacked.
const STATE_DIR: &str = ".sparkwing-deps";

/// Number of hex characters of a dependency key (128 bits), like a binary's key.
const KEY_HEX_LEN: usize = 32;

/// Variables that put a compiler wrapper (sccache, …) between cargo and rustc.
const WRAPPER_VARS: &[&str] = &[
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
];

/// The preimage of a dependency key. Field order is the hashing order; any change bumps
/// [`DEPS_FORMAT_VERSION`].
#[derive(Serialize)]
struct DepsMaterial {
    deps_format: u32,
    key_format: u32,
    sdk_version: String,
    target: String,
    toolchain: toolchain::Toolchain,
    profile: BuildProfile,
    rustc_env: BTreeMap<String, String>,
    /// The `[profile]` table of `.sparkwing/Cargo.toml` (profile settings of dependencies).
    manifest_profile: Option<String>,
    /// The settings sparkwing passes when the manifest has none ([`crate::profile::PIPELINE_PROFILE`]).
    default_profile: Vec<(String, String)>,
    cargo_lock: Option<String>,
    resolved_lock: Option<String>,
    cargo_config: Vec<TreeFile>,
    /// Registry sources are compiled from under the cargo home, and cargo's fingerprints of
    /// them name that path.
    cargo_home: String,
    /// Which wrapper variables are set (not their values).
    wrappers: Vec<String>,
}

/// The dependency key of the package at `req.sparkwing_dir`: what its compiled dependencies
/// depend on, never the package's own sources.
pub fn deps_key(req: &KeyRequest<'_>) -> Result<String, KeyError> {
    let dir = req.sparkwing_dir;
    if !dir.is_dir() {
        return Err(KeyError::NoPackage(dir.to_path_buf()));
    }
    let set = |n: &str| (req.env)(n).filter(|v| !v.trim().is_empty());
    let toolchain = toolchain::resolve(dir, req.env)?;
    let rustc_env: BTreeMap<String, String> = crate::key::rustc_env_names(req.target, req.profile)
        .into_iter()
        .filter_map(|n| set(&n).map(|v| (n, v)))
        .collect();
    let manifest = crate::key::read_manifest(&dir.join("Cargo.toml"))?;
    let manifest_profile = manifest
        .get("profile")
        .map(|p| serde_json::to_string(p).unwrap_or_else(|_| format!("{p:?}")));
    let cargo_home = set("CARGO_HOME")
        .or_else(|| set("HOME").map(|h| format!("{}/.cargo", h.trim_end_matches('/'))))
        .unwrap_or_default();
    let material = DepsMaterial {
        deps_format: DEPS_FORMAT_VERSION,
        key_format: KEY_FORMAT_VERSION,
        sdk_version: req.sdk_version.to_string(),
        target: req.target.to_string(),
        toolchain: toolchain.toolchain,
        profile: req.profile,
        rustc_env,
        default_profile: crate::profile::default_profile(
            &manifest,
            req.profile == BuildProfile::Release,
        ),
        manifest_profile,
        cargo_lock: crate::key::hash_optional(&dir.join("Cargo.lock"))?,
        resolved_lock: crate::key::hash_optional(&dir.join(".resolved.lock"))?,
        cargo_config: crate::key::project_cargo_config(dir)?,
        cargo_home,
        wrappers: WRAPPER_VARS
            .iter()
            .filter(|n| set(n).is_some())
            .map(|n| n.to_string())
            .collect(),
    };
    let bytes = serde_json::to_vec(&material).expect("dependency key material serializes");
    let mut key = blake3::hash(&bytes).to_hex().to_string();
    key.truncate(KEY_HEX_LEN);
    Ok(key)
}

/// Packing or unpacking a dependency set failed.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    /// File-system trouble.
    #[error(transparent)]
    Io(#[from] FsError),
    /// The archive holds something a dependency set never holds.
    #[error("the dependency set holds `{entry}`: {why}")]
    BadEntry { entry: String, why: &'static str },
    /// There is nothing to pack.
    #[error("`{0}` holds no compiled dependencies")]
    Empty(PathBuf),
}

/// What [`pack`] or [`unpack`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepsStats {
    /// Files in the archive.
    pub files: u64,
    /// Their total size, uncompressed.
    pub bytes: u64,
    /// Size of the compressed archive.
    pub archive_bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// The directory under the target directory where a profile's output lives.
pub fn profile_dir(profile: BuildProfile) -> &'static str {
    match profile {
        BuildProfile::Release => "release",
        BuildProfile::Dev => "debug",
    }
}

/// Whether an entry of `deps/`, `build/` or `.fingerprint/` belongs to one of `packages` (the
/// pipeline package and its path dependencies): `<package>-<hash>` directories and
/// `[lib]<crate>-<hash>[.ext]` files. Leaving out too much only costs a compile.
fn belongs_to(name: &str, packages: &[String]) -> bool {
    let stem = name.split('.').next().unwrap_or(name);
    let Some((base, _hash)) = stem.rsplit_once('-') else {
        return false;
    };
    packages.iter().any(|p| {
        let krate = p.replace('-', "_");
        base == p || base == krate || base.strip_prefix("lib") == Some(krate.as_str())
    })
}

/// The packages whose compiled entries a dependency set leaves out: the pipeline package (by
/// package and bin name) and each of its path dependencies.
pub fn local_packages(sparkwing_dir: &Path, key: &crate::CacheKey) -> Vec<String> {
    let mut out: Vec<String> = key
        .inputs
        .iter()
        .filter_map(|i| i.label.strip_prefix("path-dep:").map(str::to_string))
        .collect();
    if let Ok(t) = crate::key::read_manifest(&sparkwing_dir.join("Cargo.toml"))
        && let Some(name) = t
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
    {
        out.push(name.to_string());
    }
    if let Ok(bin) = crate::build::binary_name(sparkwing_dir) {
        out.push(bin);
    }
    out.sort();
    out.dedup();
    out
}

/// The target directory's marker that it holds dependency set `key`.
fn marker(target_dir: &Path, key: &str) -> PathBuf {
    target_dir.join(STATE_DIR).join(key)
}

/// Whether this target directory already holds dependency set `key` (built or restored here).
pub fn present(target_dir: &Path, key: &str) -> bool {
    marker(target_dir, key).is_file()
}

/// Records that this target directory holds dependency set `key`. Best effort: a missing
/// marker only costs a download.
pub fn mark_present(target_dir: &Path, key: &str) {
    let path = marker(target_dir, key);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&path, b"");
}

/// A scratch path under the target directory's state directory (same file system as the
/// target, so unpacked files are renamed into place).
pub fn scratch_path(target_dir: &Path, name: &str) -> Result<PathBuf, FsError> {
    let dir = target_dir.join(STATE_DIR);
    std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
    Ok(dir.join(format!("{name}-{}", std::process::id())))
}

/// Removes what a process that died mid-pack or mid-restore left in the state directory: its
/// scratch files and directories (`<name>-<pid>`) whose process is gone. Markers (bare keys)
/// and the scratch of live processes stay. Best effort.
fn sweep_leftovers(target_dir: &Path) {
    let dir = target_dir.join(STATE_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid == std::process::id() as i32 || crate::process::alive(pid) {
            continue;
        }
        let path = e.path();
        let _ = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
}

fn build_lock(target_dir: &Path) -> Result<lock::Held, FsError> {
    std::fs::create_dir_all(target_dir).map_err(io("create directory", target_dir))?;
    let path = target_dir.join(".sparkwing-build.lock");
    lock::lock(&path, Mode::Exclusive).map_err(io("lock", &path))
}

/// Writes the compiled dependencies of `profile` in `target_dir` to `out` (tar, LZ4 frames),
/// leaving out the entries of `exclude` (the pipeline package and its path dependencies) and,
/// when `only` is given (a build's [`crate::BuildReport::unit_hashes`]), every entry of another
/// build (other projects sharing the target directory, older versions). Holds the target
/// directory's build lock, so no build changes the files while they are read.
pub fn pack(
    target_dir: &Path,
    profile: BuildProfile,
    exclude: &[String],
    only: Option<&std::collections::BTreeSet<String>>,
    out: &Path,
) -> Result<DepsStats, DepsError> {
    let start = Instant::now();
    let _held = build_lock(target_dir)?;
    sweep_leftovers(target_dir);
    let pdir = profile_dir(profile);
    let file = std::fs::File::create(out).map_err(io("create", out))?;
    let enc = lz4_flex::frame::FrameEncoder::new(BufWriter::new(file));
    let mut tar = tar::Builder::new(enc);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    // Plain entries only (linkers leave holes in executables): what unpacking accepts.
    tar.sparse(false);
    let mut stats = DepsStats {
        files: 0,
        bytes: 0,
        archive_bytes: 0,
        elapsed: Duration::ZERO,
    };
    for top in PACKED_DIRS {
        let dir = target_dir.join(pdir).join(top);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io("read directory", &dir)(e).into()),
        };
        let mut names: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !belongs_to(n, exclude))
            .filter(|n| {
                only.is_none_or(|set| crate::build::unit_hash(n).is_some_and(|h| set.contains(h)))
            })
            .collect();
        names.sort();
        for name in names {
            let rel = PathBuf::from(pdir).join(top).join(&name);
            add_tree(&mut tar, target_dir, &rel, &mut stats)?;
        }
    }
    if stats.files == 0 {
        return Err(DepsError::Empty(target_dir.join(pdir)));
    }
    let enc = tar.into_inner().map_err(io("write", out))?;
    let mut w = enc
        .finish()
        .map_err(|e| io("write", out)(std::io::Error::other(e)))?;
    w.flush().map_err(io("write", out))?;
    let file = w
        .into_inner()
        .map_err(|e| io("write", out)(e.into_error()))?;
    file.sync_all().map_err(io("sync", out))?;
    stats.archive_bytes = file.metadata().map_err(io("stat", out))?.len();
    stats.elapsed = start.elapsed();
    Ok(stats)
}

/// Adds `root/rel` (a file, or a directory and everything under it) as `rel`. Anything but
/// regular files and directories is left out.
fn add_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    stats: &mut DepsStats,
) -> Result<(), DepsError> {
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).map_err(io("stat", &path))?;
    if meta.is_dir() {
        tar.append_dir(rel, &path).map_err(io("archive", &path))?;
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .map_err(io("read directory", &path))?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            add_tree(tar, root, &rel.join(n), stats)?;
        }
    } else if meta.is_file() {
        let mut f = std::fs::File::open(&path).map_err(io("open", &path))?;
        tar.append_file(rel, &mut f).map_err(io("archive", &path))?;
        stats.files += 1;
        stats.bytes += meta.len();
    }
    Ok(())
}

/// Restores the archive at `archive` (already verified against its manifest) into
/// `target_dir`: every entry must be a regular file or directory under
/// `<profile>/{deps,build,.fingerprint}/`, or nothing is restored. Files are unpacked beside the
/// target directory first and renamed into place, fingerprints last, so an interrupted restore
/// never leaves a fingerprint whose artifact is missing. Holds the build lock.
pub fn unpack(
    archive: &Path,
    target_dir: &Path,
    profile: BuildProfile,
) -> Result<DepsStats, DepsError> {
    let start = Instant::now();
    let _held = build_lock(target_dir)?;
    sweep_leftovers(target_dir);
    let archive_bytes = std::fs::metadata(archive)
        .map_err(io("stat", archive))?
        .len();
    let staging = scratch_path(target_dir, "unpack")?;
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io("create directory", &staging))?;
    let result = unpack_into(archive, &staging, profile).and_then(|(files, bytes)| {
        let pdir = profile_dir(profile);
        // Artifacts first, fingerprints (what makes cargo believe them) last.
        for top in ["deps", "build", ".fingerprint"] {
            let from = staging.join(pdir).join(top);
            if from.is_dir() {
                move_tree(&from, &target_dir.join(pdir).join(top))?;
            }
        }
        Ok((files, bytes))
    });
    let _ = std::fs::remove_dir_all(&staging);
    let (files, bytes) = result?;
    Ok(DepsStats {
        files,
        bytes,
        archive_bytes,
        elapsed: start.elapsed(),
    })
}

fn unpack_into(
    archive: &Path,
    staging: &Path,
    profile: BuildProfile,
) -> Result<(u64, u64), DepsError> {
    let file = std::fs::File::open(archive).map_err(io("open", archive))?;
    let dec = lz4_flex::frame::FrameDecoder::new(BufReader::new(file));
    let mut ar = tar::Archive::new(dec);
    ar.set_preserve_mtime(true);
    ar.set_preserve_permissions(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let pdir = profile_dir(profile);
    let (mut files, mut bytes) = (0u64, 0u64);
    let bad = |entry: &Path, why| DepsError::BadEntry {
        entry: entry.display().to_string(),
        why,
    };
    for entry in ar.entries().map_err(io("read", archive))? {
        let mut entry = entry.map_err(io("read", archive))?;
        let path = entry.path().map_err(io("read", archive))?.into_owned();
        let parts: Vec<&std::ffi::OsStr> = path
            .components()
            .map(|c| match c {
                Component::Normal(p) => Ok(p),
                _ => Err(bad(&path, "not a plain relative path")),
            })
            .collect::<Result<_, _>>()?;
        let allowed =
            parts.len() >= 2 && parts[0] == pdir && PACKED_DIRS.iter().any(|d| parts[1] == *d);
        if !allowed {
            return Err(bad(
                &path,
                "outside the profile's deps/, build/ and .fingerprint/",
            ));
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                files += 1;
                bytes += entry.size();
            }
            tar::EntryType::Directory => {}
            _ => return Err(bad(&path, "not a regular file or directory")),
        }
        let unpacked = entry.unpack_in(staging).map_err(io("unpack", &path))?;
        if !unpacked {
            return Err(bad(&path, "it would land outside the target directory"));
        }
    }
    Ok((files, bytes))
}

/// Moves every file under `from` to the same place under `to`, replacing what is there.
fn move_tree(from: &Path, to: &Path) -> Result<(), FsError> {
    std::fs::create_dir_all(to).map_err(io("create directory", to))?;
    for e in std::fs::read_dir(from).map_err(io("read directory", from))? {
        let e = e.map_err(io("read directory", from))?;
        let src = e.path();
        let dst = to.join(e.file_name());
        if e.file_type().map_err(io("stat", &src))?.is_dir() {
            move_tree(&src, &dst)?;
        } else {
            std::fs::rename(&src, &dst).map_err(io("move into place", &dst))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{STATE_DIR, belongs_to, mark_present, present, scratch_path, sweep_leftovers};

    #[test]
    fn leftovers_of_dead_processes_are_swept_and_live_ones_kept() {
        let target = tempfile::tempdir().unwrap();
        let state = target.path().join(STATE_DIR);
        let key = "0123456789abcdef0123456789abcdef";
        mark_present(target.path(), key);
        // Above Linux's largest pid: that process cannot be alive.
        let dead_dir = state.join("unpack-999999999");
        std::fs::create_dir_all(dead_dir.join("release/deps")).unwrap();
        std::fs::write(dead_dir.join("release/deps/libx.rlib"), b"half").unwrap();
        let dead_file = state.join("fetch-999999998");
        std::fs::write(&dead_file, b"half an archive").unwrap();
        let mine = scratch_path(target.path(), "fetch").unwrap();
        std::fs::write(&mine, b"in progress").unwrap();
        // pid 1 is always alive.
        let live = state.join("pack-1");
        std::fs::write(&live, b"someone else's").unwrap();

        sweep_leftovers(target.path());
        assert!(!dead_dir.exists() && !dead_file.exists());
        assert!(mine.exists() && live.exists());
        assert!(present(target.path(), key));
    }

    #[test]
    fn local_package_entries_are_recognized() {
        let pk = vec!["sample-pipelines".to_string()];
        assert!(belongs_to("sample-pipelines-0123456789abcdef", &pk));
        assert!(belongs_to("sample_pipelines-0123456789abcdef.d", &pk));
        assert!(belongs_to("sample_pipelines-0123456789abcdef", &pk));
        assert!(belongs_to("libsample_pipelines-0123456789abcdef.rlib", &pk));
        assert!(!belongs_to("serde-0123456789abcdef", &pk));
        assert!(!belongs_to("libserde-0123456789abcdef.rlib", &pk));
        assert!(!belongs_to("sample-0123456789abcdef", &pk));
    }
}
