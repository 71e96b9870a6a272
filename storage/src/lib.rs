//! Where sparkwing keeps bytes: artifact stores (pipeline binaries, state dumps, job artifacts)
//! and log stores (rolling NDJSON log parts), for the filesystem and S3.
//!
//! One set of traits serves the runtime, the binary cache and the dashboard. Layout (`docs/storage.md`):
//!
//! ```text
//! <artifact store>/runs/<runID>/state.ndjson
//! <artifact store>/bin/<key>, bin/<key>.json
//! <log store>/<runID>/<nodeID>/<20-digit unix-ns>-<10-digit seq>.ndjson
//! <log store>/<runID>/.parts-<pid>-<n>.pack   (filesystem: small parts, appended)
//! ```
//!
//! Stores are usually opened from a store URL:
//!
//! ```
//! # async fn demo() -> Result<(), sparkwing_storage::StoreError> {
//! let dir = tempfile::tempdir().unwrap();
//! let spec = format!("fs://{}", dir.path().display());
//! let store = sparkwing_storage::open_artifact_store(&spec)?;
//! store.put("runs/r1/state.ndjson", b"{}\n".to_vec()).await?;
//! assert!(store.has("runs/r1/state.ndjson").await?);
//! # Ok(()) }
//! ```

pub mod artifact;
pub mod error;
pub mod fs;
pub mod logs;
pub mod relay;
#[cfg(feature = "s3")]
pub mod s3;
/// Store URLs live in the contract (every process parses them alike); re-exported here.
pub use sparkwing_contract::url;

pub use artifact::ArtifactStore;
pub use error::StoreError;
pub use fs::{FsArtifactStore, FsLogStore};
pub use logs::{LogPart, LogStore, ReadOpts, next_part_name, validate_part_name};
pub use url::{StoreUrl, UrlError};

use std::sync::Arc;

/// Opens the artifact store a URL names (`filesystem:/abs/path`, `fs:///abs/path`,
/// `s3://bucket[/prefix]`). S3 settings come from the environment (see [`s3::S3Config`]); no
/// request is made until the first call.
pub fn open_artifact_store(spec: &str) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    open_artifact_store_url(&StoreUrl::parse(spec)?)
}

/// Opens the log store a URL names; same forms as [`open_artifact_store`].
pub fn open_log_store(spec: &str) -> Result<Arc<dyn LogStore>, StoreError> {
    open_log_store_url(&StoreUrl::parse(spec)?)
}

/// [`open_artifact_store`] for an already parsed URL.
pub fn open_artifact_store_url(url: &StoreUrl) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    Ok(match url {
        StoreUrl::Filesystem(p) => Arc::new(FsArtifactStore::new(p)),
        #[cfg(feature = "s3")]
        StoreUrl::S3 { bucket, prefix } => Arc::new(crate::s3::S3ArtifactStore::new(
            &s3_config(url)?,
            bucket,
            prefix,
            crate::s3::S3Options::default(),
        )?),
        #[cfg(not(feature = "s3"))]
        StoreUrl::S3 { .. } => return Err(no_s3(url)),
    })
}

/// [`open_log_store`] for an already parsed URL.
pub fn open_log_store_url(url: &StoreUrl) -> Result<Arc<dyn LogStore>, StoreError> {
    Ok(match url {
        StoreUrl::Filesystem(p) => Arc::new(FsLogStore::new(p)),
        #[cfg(feature = "s3")]
        StoreUrl::S3 { bucket, prefix } => Arc::new(crate::s3::S3LogStore::new(
            &s3_config(url)?,
            bucket,
            prefix,
            crate::s3::S3Options::default(),
        )?),
        #[cfg(not(feature = "s3"))]
        StoreUrl::S3 { .. } => return Err(no_s3(url)),
    })
}

/// A bucket store in a build without the S3 backend (a pipeline binary run on its own).
#[cfg(not(feature = "s3"))]
fn no_s3(url: &StoreUrl) -> StoreError {
    StoreError::config_hint(
        format!(
            "open `{}`: this program reaches bucket stores only through its supervisor",
            url.spec_string()
        ),
        "run the pipeline with `sparkwing run <pipeline>`",
    )
}

/// The environment's S3 settings, with the store named in any error.
#[cfg(feature = "s3")]
fn s3_config(url: &StoreUrl) -> Result<crate::s3::S3Config, StoreError> {
    crate::s3::S3Config::from_env().map_err(|e| match e {
        StoreError::Config { message, hint } => StoreError::Config {
            message: message.replacen(
                "open an s3 store",
                &format!("open `{}`", url.spec_string()),
                1,
            ),
            hint,
        },
        other => other,
    })
}

#[cfg(test)]
mod open_tests {
    use super::*;

    #[tokio::test]
    async fn opens_filesystem_stores_from_specs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let a = open_artifact_store(&format!("filesystem:{root}/cache")).unwrap();
        assert_eq!(a.describe(), format!("filesystem:{root}/cache"));
        a.put("k", b"v".to_vec()).await.unwrap();
        assert!(dir.path().join("cache/k").is_file());
        let l = open_log_store(&format!("fs://{root}/logs")).unwrap();
        l.append_part("run-1", "build", b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(
            l.read("run-1", "build", &ReadOpts::default())
                .await
                .unwrap(),
            b"x\n"
        );
    }

    #[test]
    fn bad_specs_are_url_errors() {
        let err = open_artifact_store("relative/dir").unwrap_err();
        assert!(matches!(
            err,
            StoreError::BadUrl(UrlError::MissingScheme(_))
        ));
        let err = open_log_store("gcs://b").unwrap_err().to_string();
        assert!(err.contains("unsupported scheme `gcs`"), "{err}");
    }

    #[cfg(feature = "s3")]
    #[test]
    fn opens_s3_stores_without_a_request() {
        // The environment of this test process is whatever the runner has; only when an
        // endpoint or region is configured can the store be built.
        let has_s3_env = ["SPARKWING_S3_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
        match open_artifact_store("s3://sparkwing-test/unit") {
            Ok(s) => assert_eq!(s.describe(), "s3://sparkwing-test/unit"),
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains("`s3://sparkwing-test/unit`"), "{m}");
                if !has_s3_env {
                    assert!(m.contains("no AWS region configured"), "{m}");
                }
            }
        }
    }
}
