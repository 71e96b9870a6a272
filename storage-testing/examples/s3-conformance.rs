//! Runs the storage conformance suite against one S3-compatible server and prints one line per
//! case (`group<TAB>case<TAB>PASS|SKIP|FAIL<TAB>detail`). `scripts/s3-compat.sh` runs it
//! against every server it can start and assembles the table.
//!
//! ```text
//! SPARKWING_TEST_S3_ENDPOINT=http://127.0.0.1:8333 SPARKWING_TEST_S3_BUCKET=b \
//! AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \
//! cargo run --release -p sparkwing-storage --features conformance --example s3-conformance -- [--create-bucket] [--big-mib 200]
//! ```
//! Exit status: 0 when every case passed or was skipped, 1 otherwise.

use s3::Bucket;
use s3::creds::Credentials;
use s3::region::Region;
use sparkwing_storage::{ArtifactStore, LogStore};
use sparkwing_storage_testing::TestS3;
use sparkwing_storage_testing::conformance::{self, CountingAlloc, Outcome, SuiteOptions};
use std::sync::Arc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let create = argv.iter().any(|a| a == "--create-bucket");
    let mut opts = SuiteOptions::default();
    if let Some(i) = argv.iter().position(|a| a == "--big-mib")
        && let Some(v) = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok())
    {
        opts.big_object_bytes = v * 1024 * 1024;
    }
    let s3 = TestS3::from_env();
    if create {
        // Servers without a pre-created bucket (moto). The LocationConstraint workaround
        // (`RUST_S3_SKIP_LOCATION_CONSTRAINT=true`) comes from the caller's environment.
        let region = Region::Custom {
            region: s3.config().region().to_string(),
            endpoint: s3.endpoint.clone(),
        };
        let creds = Credentials::new(
            std::env::var("AWS_ACCESS_KEY_ID").ok().as_deref(),
            std::env::var("AWS_SECRET_ACCESS_KEY").ok().as_deref(),
            None,
            None,
            None,
        )
        .expect("credentials");
        match Bucket::create_with_path_style(
            &s3.bucket,
            region,
            creds,
            s3::BucketConfiguration::default(),
        )
        .await
        {
            Ok(_) => {}
            Err(s3::error::S3Error::HttpFailWithBody(409, _)) => {}
            Err(e) => {
                eprintln!("create bucket `{}`: {e}", s3.bucket);
                std::process::exit(1);
            }
        }
    }
    let a = s3.clone();
    let artifact = move || -> Arc<dyn ArtifactStore> { Arc::new(a.artifact_store("compat")) };
    let l = s3.clone();
    let logs = move || -> Arc<dyn LogStore> { Arc::new(l.log_store("compat")) };
    let mut report = conformance::run_artifact_suite("s3", &artifact, &opts).await;
    report.extend(conformance::run_log_suite("s3", &logs, &opts).await);
    for c in &report.cases {
        let (mark, detail) = match &c.outcome {
            Outcome::Pass => ("PASS", c.note.clone().unwrap_or_default()),
            Outcome::Skip(w) => ("SKIP", w.clone()),
            Outcome::Fail(w) => ("FAIL", w.replace(['\n', '\t'], " ")),
        };
        println!("{}\t{}\t{mark}\t{detail}", c.group, c.name);
    }
    std::process::exit(if report.failures().is_empty() { 0 } else { 1 });
}
