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
}
