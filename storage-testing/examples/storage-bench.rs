//! Storage benchmark against the S3 test server (`eval "$(scripts/s3-server.sh env)"` first).
//!
//! 1. A 200 MiB artifact put and got through `S3ArtifactStore`, against a plain rust-s3
//!    `put_object_stream` / `get_object_to_writer` of the same bytes in the same run.
//! 2. 10,000 small log parts appended, then listed and read back through `S3LogStore`.
//!
//! ```text
//! cargo run --release -p sparkwing-storage --features conformance --example storage-bench -- [--mib 200] [--rounds 3] [--parts 10000]
//! ```

use futures_util::stream::{self, StreamExt, TryStreamExt};
use s3::Bucket;
use s3::creds::Credentials;
use s3::region::Region;
use sparkwing_storage::s3::{S3LogStore, S3Options};
use sparkwing_storage::{ArtifactStore, LogStore, ReadOpts};
use sparkwing_storage_testing::TestS3;
use sparkwing_storage_testing::conformance::{DigestWriter, PatternReader, RssSampler};
use std::time::{Duration, Instant};

struct Args {
    mib: u64,
    rounds: usize,
    parts: usize,
}

fn args() -> Args {
    let mut a = Args {
        mib: 200,
        rounds: 3,
        parts: 10_000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), val) {
            ("--mib", Some(v)) => a.mib = v,
            ("--rounds", Some(v)) => a.rounds = v.max(1) as usize,
            ("--parts", Some(v)) => a.parts = v as usize,
            (other, _) => {
                eprintln!(
                    "usage: storage-bench [--mib N] [--rounds N] [--parts N] (bad `{other}`)"
                );
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn mib_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs
}

#[tokio::main]
async fn main() {
    let a = args();
    let s3 = TestS3::from_env();
    let size = a.mib * 1024 * 1024;
    let store = s3.artifact_store("bench");
    let prefix = s3.unique_prefix("bench-plain");

    let creds = Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID").ok().as_deref(),
        std::env::var("AWS_SECRET_ACCESS_KEY").ok().as_deref(),
        None,
        None,
        None,
    )
    .expect("credentials");
    let region = Region::Custom {
        region: s3.config().region().to_string(),
        endpoint: s3.endpoint.clone(),
    };
    let plain = Bucket::new(&s3.bucket, region, creds)
        .expect("bucket")
        .with_path_style();

    let (mut ours_put, mut ours_get, mut plain_put, mut plain_get) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ours_rss, mut plain_rss) = (0u64, 0u64);
    for round in 0..a.rounds {
        // Alternate the order so neither side always runs on a warmer server.
        for ours_first in [round % 2 == 0, round % 2 != 0] {
            if ours_first {
                let mut r = PatternReader::new(size, round as u64);
                let rss = RssSampler::start();
                let t = Instant::now();
                store.put_from_reader("big.bin", &mut r).await.expect("put");
                ours_put.push(t.elapsed().as_secs_f64());
                let mut w = DigestWriter::default();
                let t = Instant::now();
                store.get_to_writer("big.bin", &mut w).await.expect("get");
                ours_get.push(t.elapsed().as_secs_f64());
                ours_rss = ours_rss.max(rss.stop().unwrap_or(0));
                assert_eq!(w.digest(), r.digest(), "our round trip differs");
            } else {
                let key = format!("{prefix}/big.bin");
                let mut r = PatternReader::new(size, round as u64);
                let rss = RssSampler::start();
                let t = Instant::now();
                plain
                    .put_object_stream(&mut r, &key)
                    .await
                    .expect("plain put");
                plain_put.push(t.elapsed().as_secs_f64());
                let mut w = DigestWriter::default();
                let t = Instant::now();
                plain
                    .get_object_to_writer(&key, &mut w)
                    .await
                    .expect("plain get");
                plain_get.push(t.elapsed().as_secs_f64());
                plain_rss = plain_rss.max(rss.stop().unwrap_or(0));
                assert_eq!(w.digest(), r.digest(), "plain round trip differs");
            }
        }
    }
    let _ = store.delete("big.bin").await;
    let _ = plain.delete_object(format!("{prefix}/big.bin")).await;

    let (op, og, pp, pg) = (
        median(ours_put),
        median(ours_get),
        median(plain_put),
        median(plain_get),
    );
    println!("## artifact: {} MiB, median of {} rounds", a.mib, a.rounds);
    println!("| operation | sparkwing store | plain rust-s3 | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| put | {op:.2} s ({:.0} MiB/s) | {pp:.2} s ({:.0} MiB/s) | {:.2} |",
        mib_s(size, op),
        mib_s(size, pp),
        op / pp
    );
    println!(
        "| get | {og:.2} s ({:.0} MiB/s) | {pg:.2} s ({:.0} MiB/s) | {:.2} |",
        mib_s(size, og),
        mib_s(size, pg),
        og / pg
    );
    println!(
        "| peak RSS growth | {} MiB | {} MiB | |",
        ours_rss >> 20,
        plain_rss >> 20
    );

    if a.parts > 0 {
        let logs = S3LogStore::new(
            s3.config(),
            &s3.bucket,
            &s3.unique_prefix("bench-logs"),
            S3Options::default(),
        )
        .expect("log store");
        let run = "run-20260101-000000-0badcafe";
        let line = b"{\"ts\":\"2026-01-01T00:00:00Z\",\"level\":\"info\",\"node\":\"build\",\"msg\":\"compiling crate 42 of 420\"}\n";
        let t = Instant::now();
        stream::iter(0..a.parts)
            .map(|_| logs.append_part(run, "build", line.to_vec()))
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await
            .expect("append");
        let append = t.elapsed();
        let append_requests = logs.requests();
        let t = Instant::now();
        let text = logs
            .read(run, "build", &ReadOpts::default())
            .await
            .expect("read");
        let read = t.elapsed();
        let read_requests = logs.requests() - append_requests;
        assert_eq!(text.len(), line.len() * a.parts, "log read back incomplete");
        let t = Instant::now();
        let nodes = logs.list_nodes(run).await.expect("list");
        let list = t.elapsed();
        let list_requests = logs.requests() - append_requests - read_requests;
        assert_eq!(nodes, ["build"]);
        let t = Instant::now();
        logs.delete_run(run).await.expect("delete");
        let delete = t.elapsed();
        let delete_requests = logs.requests() - append_requests - read_requests - list_requests;
        println!();
        println!(
            "## logs: {} parts of {} bytes, one node",
            a.parts,
            line.len()
        );
        println!("| step | requests | seconds |");
        println!("|---|---|---|");
        let row = |name: &str, req: u64, d: Duration| {
            println!("| {name} | {req} | {:.2} |", d.as_secs_f64());
        };
        row("append (32 concurrent)", append_requests, append);
        row("read (list + get, 16 concurrent)", read_requests, read);
        row("list_nodes", list_requests, list);
        row("delete_run", delete_requests, delete);
    }
}
