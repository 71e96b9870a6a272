//! The pipeline SDK this CLI carries with it.
//!
//! A `.sparkwing/` package depends on `sparkwing` like on any registry crate. The CLI writes
//! its embedded copy of the SDK crates to disk once per SDK content hash and builds with
//! `--config 'patch.crates-io.sparkwing.path="…"'`, so no checkout of the sparkwing
//! repository is needed and no machine path reaches `Cargo.toml` or `Cargo.lock`.

use crate::error::CliError;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));

/// The package name user pipelines depend on.
pub const SDK_PACKAGE: &str = "sparkwing";

/// SDK version as it enters the cache key: crate version + content hash, so a CLI built from
/// changed SDK sources never reuses binaries built against the old ones.
pub fn sdk_version() -> String {
    format!("{}+{}", sparkwing_contract::SDK_VERSION, SDK_CONTENT_HASH)
}

/// The paths of the embedded SDK files, relative to the SDK root: the one list of what a pipeline
/// build needs, which packaging copies into the published CLI crate (`scripts/vendor-sdk.sh`).
pub fn embedded_paths() -> impl Iterator<Item = &'static str> {
    SDK_FILES.iter().map(|(rel, _)| *rel)
}

/// Target triple the CLI was built for (pipeline binaries are built for the same).
pub const TARGET: &str = env!("SPARKWING_BUILD_TARGET");

/// Writes the SDK under `<base>/sparkwing-sdk/<version>/` unless it is already there; returns the
/// SDK root (which holds `sparkwing/`, `contract/`, …).
pub fn materialize(base: &Path) -> Result<PathBuf, CliError> {
    let dir = base.join("sparkwing-sdk").join(sdk_version());
    let marker = dir.join(".complete");
    if marker.is_file() {
        return Ok(dir);
    }
    let parent = base.join("sparkwing-sdk");
    std::fs::create_dir_all(&parent).map_err(|e| io_err("create", &parent, e))?;
    let tmp = parent.join(format!(".tmp-{}-{}", sdk_version(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (rel, bytes) in SDK_FILES {
        let path = tmp.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| io_err("create", p, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| io_err("write", &path, e))?;
    }
    // A workspace root of its own, so the SDK never joins a workspace it happens to sit under.
    let members: Vec<String> = sdk_crates().into_iter().map(|c| format!("{c:?}")).collect();
    let manifest = format!(
        "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
        members.join(", ")
    );
    let root_manifest = tmp.join("Cargo.toml");
    std::fs::write(&root_manifest, manifest).map_err(|e| io_err("write", &root_manifest, e))?;
    std::fs::write(tmp.join(".complete"), b"").map_err(|e| io_err("write", &tmp, e))?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another process won the race: its copy is identical.
        Err(_) if marker.is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(io_err("rename", &dir, e)),
    }
}

/// The file time every materialized SDK file carries (2020-01-01T00:00:00Z). Cargo judges the
/// SDK's compiled crates fresh by comparing its sources' times with their outputs', so fixed
/// times make outputs compiled on another machine (a restored dependency set) fresh here too.
const FIXED_MTIME_SECS: u64 = 1_577_836_800;

/// Marks an SDK directory whose files carry [`FIXED_MTIME_SECS`].
const FIXED_TIMES_MARKER: &str = ".fixed-times";

/// Gives every SDK file under `root` the fixed time, once per directory.
fn fix_times(root: &Path) -> Result<(), CliError> {
    let marker = root.join(FIXED_TIMES_MARKER);
    if marker.is_file() {
        return Ok(());
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(FIXED_MTIME_SECS);
    let mut paths: Vec<PathBuf> = SDK_FILES.iter().map(|(rel, _)| root.join(rel)).collect();
    paths.push(root.join("Cargo.toml"));
    for path in paths {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, e))?;
        f.set_modified(t)
            .map_err(|e| io_err("set the modification time of", &path, e))?;
    }
    std::fs::write(&marker, b"").map_err(|e| io_err("write", &marker, e))
}

/// The SDK root a build patches in: the SDK materialized under `target_dir` with fixed file
/// times, reached through the link `<.sparkwing>/target/sparkwing-sdk/<version>`. Cargo names
/// compiled path packages by their path relative to the package being built, so through this
/// link the SDK's compiled crates are the same on every machine, whatever the checkout path or
/// `SPARKWING_HOME`, and a dependency set compiled elsewhere is fresh here. When the link cannot
/// be placed (something else sits at that path), the SDK's own path is used: builds still work,
/// they only compile the SDK themselves.
pub fn build_root(sparkwing_dir: &Path, target_dir: &Path) -> Result<PathBuf, CliError> {
    let real = materialize(target_dir)?;
    fix_times(&real)?;
    let link_dir = sparkwing_dir.join("target").join("sparkwing-sdk");
    let link = link_dir.join(sdk_version());
    if std::fs::read_link(&link).is_ok_and(|p| p == real) {
        return Ok(link);
    }
    let placed = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&link_dir)?;
        let tmp = link_dir.join(format!(".link-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&real, &tmp)?;
        std::fs::rename(&tmp, &link).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    })();
    match placed {
        Ok(()) if std::fs::read_link(&link).is_ok_and(|p| p == real) => Ok(link),
        _ => Ok(real),
    }
}

/// The patch entries cargo needs: `(package, path)`.
pub fn patches(sdk_root: &Path) -> Vec<(String, PathBuf)> {
    vec![(SDK_PACKAGE.to_string(), sdk_root.join(SDK_PACKAGE))]
}

fn sdk_crates() -> Vec<String> {
    let mut crates: Vec<String> = SDK_FILES
        .iter()
        .filter_map(|(rel, _)| rel.strip_suffix("/Cargo.toml"))
        .filter(|c| !c.contains('/'))
        .map(str::to_string)
        .collect();
    crates.sort();
    crates.dedup();
    crates
}

fn io_err(op: &str, path: &Path, e: std::io::Error) -> CliError {
    CliError::failure(format!("{op} `{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_every_sdk_crate() {
        let crates = sdk_crates();
        for c in ["contract", "sparkwing", "storage"] {
            assert!(
                crates.contains(&c.to_string()),
                "{c} missing from {crates:?}"
            );
        }
        assert!(!SEED_LOCKFILE.is_empty());
    }

    /// The SDK content hash (part of every pipeline's cache key) covers only what a pipeline
    /// build reads: editing an SDK crate's tests, examples or benches changes no user's key.
    #[test]
    fn ships_no_tests_examples_or_benches() {
        for (rel, bytes) in SDK_FILES {
            let mut parts = rel.split('/');
            let (_krate, second) = (parts.next(), parts.next());
            assert!(
                !matches!(second, Some("tests" | "examples" | "benches" | "templates")),
                "`{rel}` is embedded"
            );
            assert!(
                !rel.starts_with("storage-testing/") && *rel != "sparkwing/src/fuzz.rs",
                "test-only `{rel}` is embedded"
            );
            if rel.ends_with("/Cargo.toml") {
                let text = std::str::from_utf8(bytes).unwrap();
                assert!(text.contains("autotests = false"), "{rel}:\n{text}");
                for table in ["[[test]]", "[[example]]", "[[bench]]", "[dev-dependencies]"] {
                    assert!(!text.contains(table), "{rel} keeps {table}:\n{text}");
                }
            }
        }
    }

    #[test]
    fn materializes_once_and_completely() {
        let tmp = tempfile::tempdir().unwrap();
        let root = materialize(tmp.path()).unwrap();
        assert!(root.join("sparkwing/Cargo.toml").is_file());
        assert!(root.join("Cargo.toml").is_file());
        let again = materialize(tmp.path()).unwrap();
        assert_eq!(root, again);
    }

    #[test]
    fn the_build_root_is_a_stable_link_to_files_with_fixed_times() {
        let tmp = tempfile::tempdir().unwrap();
        let pkg = tmp.path().join("checkout/.sparkwing");
        std::fs::create_dir_all(&pkg).unwrap();
        let root = build_root(&pkg, &tmp.path().join("home-target")).unwrap();
        assert_eq!(root, pkg.join("target/sparkwing-sdk").join(sdk_version()));
        let t = std::fs::metadata(root.join("sparkwing/Cargo.toml"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            FIXED_MTIME_SECS
        );
        assert_eq!(
            build_root(&pkg, &tmp.path().join("home-target")).unwrap(),
            root
        );
        // Something that is not the link at its place: the SDK's own path, never that thing.
        let other = tmp.path().join("other/.sparkwing");
        std::fs::create_dir_all(
            other
                .join("target/sparkwing-sdk")
                .join(sdk_version())
                .join("x"),
        )
        .unwrap();
        let r = build_root(&other, &tmp.path().join("home-target")).unwrap();
        assert!(r.starts_with(tmp.path().join("home-target")), "{r:?}");
    }
}
