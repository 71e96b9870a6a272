//! Benchmarks of the runtime in ci-embedded mode against the S3 test server, with every request
//! counted by a proxy in front of it. Ignored by default; run with
//! `cargo test --release -p sparkwing --test bench_ci -- --ignored --nocapture --test-threads 1`
//! (numbers go to `docs/benchmarks.md`).

mod support;

use std::time::{Duration, Instant};
use support::{CiRun, Proxy, S3Env};

/// Runs the `ci` example with `args` through a counting proxy; returns (seconds, counts, stdout).
fn measure(
    label: &str,
    args: &[&str],
    workers: &str,
) -> (f64, sparkwing_storage_testing::Counts, String) {
    let s3 = S3Env::load();
    let proxy = Proxy::start(s3.addr());
    let mut run = CiRun::new(&s3, &proxy.endpoint(), label, args)
        .env("SPARKWING_WORKERS", workers)
        .env("SPARKWING_LOG_FORMAT", "json");
    run.command.stdout(std::process::Stdio::null());
    let began = Instant::now();
    let out = run.command.output().expect("run the ci example");
    let took = began.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let the proxy see the last responses through.
    std::thread::sleep(Duration::from_millis(100));
    (
        took,
        proxy.counts(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "benchmark"]
fn bench_a_million_log_lines_from_one_node() {
    let (took, c, _) = measure("bench-lines", &["lines", "--count", "1000000"], "1");
    let log_bytes = c.bytes_up;
    println!(
        "1,000,000 lines: {took:.2} s wall, {:.0} lines/s; log PUTs {}, state PUTs {}, other requests {}; {:.1} MiB sent; {:.2} log PUTs per MiB sent",
        1e6 / took,
        c.of("PUT logs"),
        c.of("PUT state"),
        c.requests() - c.of("PUT logs") - c.of("PUT state"),
        log_bytes as f64 / (1 << 20) as f64,
        c.of("PUT logs") as f64 / (log_bytes as f64 / (1 << 20) as f64),
    );
    println!("requests by kind: {:?}", c.by_method);
}

#[test]
#[ignore = "benchmark"]
fn bench_a_thousand_node_run() {
    let (took, c, _) = measure("bench-wide", &["wide", "--count", "1000"], "2");
    println!(
        "1,000 nodes: {took:.2} s wall; {} requests ({} log PUTs, {} state PUTs, {} other); {:.2} MiB up, {:.2} MiB down",
        c.requests(),
        c.of("PUT logs"),
        c.of("PUT state"),
        c.requests() - c.of("PUT logs") - c.of("PUT state"),
        c.bytes_up as f64 / (1 << 20) as f64,
        c.bytes_down as f64 / (1 << 20) as f64,
    );
    println!("requests by kind: {:?}", c.by_method);
}
