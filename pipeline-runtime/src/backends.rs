//! Opening the stores named by `SPARKWING_BACKENDS` spec strings.

use sparkwing_storage::{ArtifactStore, FsArtifactStore, FsLogStore, LogStore, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

/// The local directory of a `filesystem:/abs` or `fs:///abs` spec.
fn fs_root(spec: &str) -> Option<PathBuf> {
    let path = spec
        .strip_prefix("filesystem:")
        .or_else(|| spec.strip_prefix("fs://"))?;
    let path = PathBuf::from(path);
    path.is_absolute().then_some(path)
}

fn unsupported(surface: &str, spec: &str) -> StoreError {
    StoreError::Config(format!(
        "open the {surface} store `{spec}`: this build of the pipeline SDK reads `filesystem:/abs/path` and `fs:///abs/path` specs"
    ))
}

/// The log store for `spec`; `None` when logs go to the console only (`stdout`).
pub(crate) fn open_log_store(spec: &str) -> Result<Option<Arc<dyn LogStore>>, StoreError> {
    if spec == "stdout" {
        return Ok(None);
    }
    match fs_root(spec) {
        Some(root) => Ok(Some(Arc::new(FsLogStore::new(root)))),
        None => Err(unsupported("log", spec)),
    }
}

/// The artifact store for `spec` (the `cache` surface).
pub(crate) fn open_artifact_store(spec: &str) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    match fs_root(spec) {
        Some(root) => Ok(Arc::new(FsArtifactStore::new(root))),
        None => Err(unsupported("artifact", spec)),
    }
}

/// Where a run's logs are, for the summary: a directory for filesystem stores, else the spec.
pub(crate) fn logs_location(spec: &str, run_id: &str) -> String {
    match fs_root(spec) {
        Some(root) => format!("{}/", root.join(run_id).display()),
        None if spec == "stdout" => "console only (logs surface `stdout`)".into(),
        None => format!("{}/{run_id}/", spec.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_specs_open_and_others_are_refused() {
        assert!(open_log_store("filesystem:/tmp/x").unwrap().is_some());
        assert!(open_log_store("fs:///tmp/x").unwrap().is_some());
        assert!(open_log_store("stdout").unwrap().is_none());
        assert!(open_log_store("filesystem:relative").is_err());
        let e = open_artifact_store("gcs://b").unwrap_err().to_string();
        assert!(e.contains("`gcs://b`"), "{e}");
        assert_eq!(logs_location("filesystem:/h/runs", "run-1"), "/h/runs/run-1/");
    }
}
