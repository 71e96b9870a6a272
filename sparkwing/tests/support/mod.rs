//! What the S3 tests share: the test server's settings for child processes, a TCP proxy that
//! can cut the server off (a real outage as the pipeline sees it) and counts the requests that go
//! through it, and a builder for the `ci` example pipeline binary.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub use sparkwing_storage_testing::{Proxy, RelayHost};

/// The S3 test server's settings, from the same source `TestS3` reads them from: the
/// environment when it names an endpoint, else the file `scripts/s3-server.sh start` writes.
#[derive(Debug, Clone)]
pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
    vars: BTreeMap<String, String>,
}

impl S3Env {
    /// Fails (never skips) when the server is not running.
    pub fn load() -> S3Env {
        let s3 = sparkwing_storage_testing::TestS3::from_env();
        let vars: BTreeMap<String, String> = if std::env::var("SPARKWING_TEST_S3_ENDPOINT")
            .is_ok_and(|v| !v.is_empty())
        {
            std::env::vars().collect()
        } else {
            let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/s3/test-s3.env");
            std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("read `{}`: {e}", file.display()))
                .lines()
                .filter_map(|l| l.trim().trim_start_matches("export ").split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect()
        };
        let vars = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
            .iter()
            .filter_map(|k| vars.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        S3Env {
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            vars,
        }
    }

    /// `127.0.0.1:<port>` of the server.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the test endpoint is `http://<ip>:<port>`")
    }

    /// A relay host serving the record database `db` and S3 stores (spec, prefix) reached
    /// through `endpoint` (the server itself or a proxy in front of it).
    pub fn relay_host(
        &self,
        endpoint: &str,
        db: &std::path::Path,
        logs: &[(&str, &str)],
        artifacts: &[(&str, &str)],
    ) -> RelayHost {
        use sparkwing_storage::s3::{S3ArtifactStore, S3Config, S3LogStore, S3Options};
        let config = S3Config::from_lookup(|k| match k {
            "SPARKWING_S3_ENDPOINT" => Some(endpoint.to_string()),
            _ => self.vars.get(k).cloned(),
        })
        .expect("the test server's S3 settings");
        let mut stores = sparkwing_storage::relay::RelayStores::new(Vec::new());
        for (spec, prefix) in logs {
            let store = S3LogStore::new(&config, &self.bucket, prefix, S3Options::default())
                .expect("an S3 log store");
            stores = stores.with_log(spec, std::sync::Arc::new(store));
        }
        for (spec, prefix) in artifacts {
            let store = S3ArtifactStore::new(&config, &self.bucket, prefix, S3Options::default())
                .expect("an S3 artifact store");
            stores = stores.with_artifact(spec, std::sync::Arc::new(store));
        }
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        RelayHost::start(db, stores)
    }

    /// Credentials and region for a child process.
    pub fn child_vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
}

/// The `ci` example binary (built by `cargo test` beside the test binaries).
pub fn example_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples/ci");
    assert!(
        bin.exists(),
        "`{}` missing: run `cargo test -p sparkwing`",
        bin.display()
    );
    bin
}

/// A fresh run id (`run-YYYYMMDD-HHMMSS-<8 hex>`), unique per call.
pub fn run_id() -> String {
    sparkwing_contract::RunId::generate().to_string()
}

/// One ci-embedded pipeline run against S3 under `prefix`, through `endpoint`. Its bucket calls
/// and records go through a relay host, as under `sparkwing run`.
pub struct CiRun {
    pub host: RelayHost,
    pub home: tempfile::TempDir,
    pub run_id: String,
    pub prefix: String,
    pub command: Command,
}

impl CiRun {
    pub fn new(s3: &S3Env, endpoint: &str, label: &str, args: &[&str]) -> CiRun {
        let home = tempfile::tempdir().unwrap();
        let run_id = run_id();
        let prefix = format!("test/runtime-{label}/{run_id}");
        let (logs, cache) = (
            format!("s3://{}/{prefix}/logs", s3.bucket),
            format!("s3://{}/{prefix}/cache", s3.bucket),
        );
        let backends = serde_json::json!({ "state": "sqlite", "logs": logs, "cache": cache });
        let host = s3.relay_host(
            endpoint,
            &home.path().join("home/state.db"),
            &[(&logs, &format!("{prefix}/logs"))],
            &[(&cache, &format!("{prefix}/cache"))],
        );
        let mut command = Command::new(example_bin());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SPARKWING_HOME", home.path().join("home"))
            .env("SPARKWING_WORK_DIR", home.path())
            .env("SPARKWING_RUN_ID", &run_id)
            .env("SPARKWING_MODE", "ci-embedded")
            .env("SPARKWING_WORKERS", "2")
            .env("SPARKWING_LOG_FORMAT", "plain")
            .env("SPARKWING_BACKENDS", backends.to_string())
            .env("SPARKWING_S3_ENDPOINT", endpoint)
            .envs(s3.child_vars())
            .envs(host.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        CiRun {
            host,
            home,
            run_id,
            prefix,
            command,
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> CiRun {
        self.command.env(k, v);
        self
    }

    pub fn db(&self) -> PathBuf {
        self.home.path().join("home/state.db")
    }

    pub fn spool(&self) -> PathBuf {
        self.home.path().join("home/spool").join(&self.run_id)
    }
}
