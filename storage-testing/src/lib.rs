//! Test support for sparkwing's stores, kept out of the SDK so that no pipeline build compiles or
//! hashes it: the conformance suite every backend must pass ([`conformance`]), the one way tests
//! reach the S3 test server ([`TestS3`]) and a proxy that can cut it ([`Proxy`]).
//!
//! The S3 test server is started by `scripts/s3-server.sh` (which
//! `make s3-start` runs). A test that needs S3 fails, never skips, when the server is missing.
//!
//! Settings (printed by `scripts/s3-server.sh env`): `SPARKWING_TEST_S3_ENDPOINT`,
//! `SPARKWING_TEST_S3_BUCKET`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, all
//! from the environment when `SPARKWING_TEST_S3_ENDPOINT` is set there, else all from
//! `target/s3/test-s3.env`, which `scripts/s3-server.sh start` writes and `stop` removes.
//!
//! ```no_run
//! # async fn demo() {
//! use sparkwing_storage::ArtifactStore;
//! let s3 = sparkwing_storage_testing::TestS3::from_env();
//! let store = s3.artifact_store("my-test");
//! store.put("k", b"v".to_vec()).await.unwrap();
//! # }
//! ```

pub mod conformance;
mod proxy;
mod relay_host;
pub use proxy::{Counts, Proxy};
pub use relay_host::RelayHost;

use sparkwing_storage::s3::{S3ArtifactStore, S3Config, S3LogStore, S3Options};
use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Endpoint of the S3 test server.
pub const ENDPOINT_VAR: &str = "SPARKWING_TEST_S3_ENDPOINT";
/// Bucket of the S3 test server.
pub const BUCKET_VAR: &str = "SPARKWING_TEST_S3_BUCKET";

/// Written by `scripts/s3-server.sh start` (relative to this crate), read when
/// `SPARKWING_TEST_S3_ENDPOINT` is not set, so `make s3-start && cargo test` needs no `eval`.
const ENV_FILE: &str = "../target/s3/test-s3.env";

const HOW_TO_START: &str = "S3 test server not running: run `make s3-start` (or `scripts/s3-server.sh start`) and export its settings with `eval \"$(scripts/s3-server.sh env)\"`";

/// Connection settings of the S3 test server.
#[derive(Debug, Clone)]
pub struct TestS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// A bucket that exists.
    pub bucket: String,
    config: S3Config,
}

impl TestS3 {
    /// Reads the settings and checks that the server accepts connections.
    ///
    /// # Panics
    /// With "S3 test server not running: run `make s3-start`…" when a variable is missing or
    /// nothing listens at the endpoint.
    pub fn from_env() -> TestS3 {
        match TestS3::try_from_env() {
            Ok(s) => s,
            Err(why) => panic!("{HOW_TO_START}\n({why})"),
        }
    }

    /// [`TestS3::from_env`] without the panic.
    pub fn try_from_env() -> Result<TestS3, String> {
        let from_env = std::env::var(ENDPOINT_VAR).is_ok_and(|v| !v.is_empty());
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(ENV_FILE);
        // All settings come from one source: never the file's endpoint with a developer's own
        // AWS credentials from the environment.
        let settings: HashMap<String, String> = if from_env {
            std::env::vars().collect()
        } else {
            match std::fs::read_to_string(&file) {
                Ok(text) => text
                    .lines()
                    .filter_map(|l| l.trim().trim_start_matches("export ").split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect(),
                Err(_) => {
                    return Err(format!(
                        "`{ENDPOINT_VAR}` is not set and `{}` does not exist",
                        file.display()
                    ));
                }
            }
        };
        let var = |k: &str| {
            settings
                .get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("`{k}` is not set"))
        };
        let endpoint = var(ENDPOINT_VAR)?;
        let bucket = var(BUCKET_VAR)?;
        let ak = var("AWS_ACCESS_KEY_ID")?;
        let sk = var("AWS_SECRET_ACCESS_KEY")?;
        let region = var("AWS_REGION").ok();
        let hostport = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("resolve `{hostport}`: {e}"))?
            .next()
            .ok_or_else(|| format!("resolve `{hostport}`: no address"))?;
        TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect to `{endpoint}`: {e}"))?;
        let config =
            S3Config::with_static_credentials(Some(&endpoint), region.as_deref(), &ak, &sk, None)
                .map_err(|e| e.to_string())?;
        Ok(TestS3 {
            endpoint,
            bucket,
            config,
        })
    }

    /// The client configuration for the server.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// A prefix no other test uses: `test/<label>/<unique>`.
    pub fn unique_prefix(&self, label: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!(
            "test/{label}/{nanos:x}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// An empty artifact store under a fresh prefix.
    pub fn artifact_store(&self, label: &str) -> S3ArtifactStore {
        self.artifact_store_with(label, S3Options::default())
    }

    /// [`TestS3::artifact_store`] with explicit options.
    pub fn artifact_store_with(&self, label: &str, opts: S3Options) -> S3ArtifactStore {
        S3ArtifactStore::new(&self.config, &self.bucket, &self.unique_prefix(label), opts)
            .expect("open the S3 test artifact store")
    }

    /// An empty log store under a fresh prefix.
    pub fn log_store(&self, label: &str) -> S3LogStore {
        S3LogStore::new(
            &self.config,
            &self.bucket,
            &self.unique_prefix(label),
            S3Options::default(),
        )
        .expect("open the S3 test log store")
    }

    /// A `s3://bucket/prefix` URL under a fresh prefix, for code that opens stores from URLs
    /// (those read `SPARKWING_S3_ENDPOINT`, which the caller sets to [`TestS3::endpoint`]).
    pub fn url(&self, label: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.unique_prefix(label))
    }
}
