//! Opening the stores named by `SPARKWING_BACKENDS` spec strings.

use sparkwing_storage::relay::RelayClient;
use sparkwing_storage::{ArtifactStore, LogStore, StoreError, StoreUrl};
use std::sync::Arc;

/// The log store for `spec`; `None` when logs go to the console only (`stdout`). A bucket is
/// reached through the supervisor's relay; a directory directly.
pub(crate) fn open_log_store(
    spec: &str,
    relay: Option<&RelayClient>,
) -> Result<Option<Arc<dyn LogStore>>, StoreError> {
    if spec == "stdout" {
        return Ok(None);
    }
    match (StoreUrl::parse(spec)?, relay) {
        (StoreUrl::S3 { .. }, Some(r)) => Ok(Some(r.log_store(spec))),
        _ => sparkwing_storage::open_log_store(spec).map(Some),
    }
}

/// The artifact store for `spec` (the `cache` surface); a bucket through the relay.
pub(crate) fn open_artifact_store(
    spec: &str,
    relay: Option<&RelayClient>,
) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    match (StoreUrl::parse(spec)?, relay) {
        (StoreUrl::S3 { .. }, Some(r)) => Ok(r.artifact_store(spec)),
        _ => sparkwing_storage::open_artifact_store(spec),
    }
}

/// Where a run's logs are, for the summary: a directory for filesystem stores, else a URL.
pub(crate) fn logs_location(spec: &str, run_id: &str) -> String {
    match StoreUrl::parse(spec) {
        Ok(StoreUrl::Filesystem(root)) => format!("{}/", root.join(run_id).display()),
        Ok(url) => format!("{}/{run_id}/", url.spec_string().trim_end_matches('/')),
        Err(_) if spec == "stdout" => "console only (logs surface `stdout`)".into(),
        Err(_) => format!("{spec}/{run_id}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_open_the_matching_store() {
        assert!(open_log_store("filesystem:/tmp/x", None).unwrap().is_some());
        assert!(open_log_store("fs:///tmp/x", None).unwrap().is_some());
        assert!(open_log_store("stdout", None).unwrap().is_none());
        assert!(open_log_store("filesystem:relative", None).is_err());
        let e = open_artifact_store("gcs://b", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gcs://b"), "{e}");
        assert_eq!(
            logs_location("filesystem:/h/runs", "run-1"),
            "/h/runs/run-1/"
        );
        assert_eq!(logs_location("s3://b/logs", "run-1"), "s3://b/logs/run-1/");
    }
}
