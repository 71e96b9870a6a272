//! The conformance suite against every backend, and S3 behaviour that only a real (or, for
//! failure injection, a scripted) server can show.

use sparkwing_storage::s3::{S3ArtifactStore, S3Config, S3Options};
use sparkwing_storage::{ArtifactStore, FsArtifactStore, FsLogStore, LogStore, StoreError};
use sparkwing_storage_testing::TestS3;
use sparkwing_storage_testing::conformance::{self, SuiteOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOC: conformance::CountingAlloc = conformance::CountingAlloc;

fn fs_root() -> (tempfile::TempDir, Arc<AtomicU64>) {
    (tempfile::tempdir().unwrap(), Arc::new(AtomicU64::new(0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_artifact_store_conforms() {
    let (root, n) = fs_root();
    let dir = root.path().to_path_buf();
    let factory = move || -> Arc<dyn ArtifactStore> {
        let i = n.fetch_add(1, Ordering::Relaxed);
        Arc::new(FsArtifactStore::new(dir.join(format!("case-{i}"))))
    };
    let report = conformance::run_artifact_suite("fs", &factory, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
    assert!(
        report
            .cases
            .iter()
            .all(|c| !matches!(c.outcome, conformance::Outcome::Skip(_))),
        "the filesystem supports every case:\n{}",
        report.table()
    );
}

/// A write that cannot take its place (a directory holds the key's path) fails with the path,
/// and leaves neither its temporary file nor anything else behind.
#[tokio::test]
async fn a_failed_fs_write_leaves_no_temporary_file() {
    let (root, _) = fs_root();
    let store = FsArtifactStore::new(root.path());
    std::fs::create_dir_all(root.path().join("runs/r1/state.ndjson/inside")).unwrap();
    let e = store
        .put("runs/r1/state.ndjson", b"state".to_vec())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("state.ndjson"), "{e}");
    let left: Vec<String> = std::fs::read_dir(root.path().join("runs/r1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["state.ndjson"], "only the directory that was there");
    store.put("runs/r1/other", b"ok".to_vec()).await.unwrap();
    assert_eq!(store.get("runs/r1/other").await.unwrap(), b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_log_store_conforms() {
    let (root, n) = fs_root();
    let dir = root.path().to_path_buf();
    let factory = move || -> Arc<dyn LogStore> {
        let i = n.fetch_add(1, Ordering::Relaxed);
        Arc::new(FsLogStore::new(dir.join(format!("case-{i}"))))
    };
    let report = conformance::run_log_suite("fs", &factory, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_artifact_store_conforms() {
    let s3 = TestS3::from_env();
    let factory = move || -> Arc<dyn ArtifactStore> { Arc::new(s3.artifact_store("conformance")) };
    let report = conformance::run_artifact_suite("s3", &factory, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
    // The CI server (SeaweedFS) enforces conditional writes: nothing may be skipped there.
    assert!(
        report
            .cases
            .iter()
            .all(|c| !matches!(c.outcome, conformance::Outcome::Skip(_))),
        "the S3 test server must enforce conditional writes:\n{}",
        report.table()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_log_store_conforms() {
    let s3 = TestS3::from_env();
    let factory = move || -> Arc<dyn LogStore> { Arc::new(s3.log_store("conformance")) };
    let report = conformance::run_log_suite("s3", &factory, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
}

/// Log parts land at `<prefix>/<run>/<node>/<part>` in the bucket, as `docs/storage.md` lays out.
#[tokio::test]
async fn s3_log_parts_use_the_documented_layout() {
    let s3 = TestS3::from_env();
    let url = s3.url("layout");
    let prefix = url
        .trim_start_matches(&format!("s3://{}/", s3.bucket))
        .to_string();
    let logs = sparkwing_storage::s3::S3LogStore::new(
        s3.config(),
        &s3.bucket,
        &prefix,
        S3Options::default(),
    )
    .unwrap();
    assert_eq!(logs.describe(), url);
    let part = logs
        .append_part("run-1", "build/unit", b"{\"msg\":\"x\"}".to_vec())
        .await
        .unwrap();
    // The raw bucket view: `<prefix>/<run>/<node>/<part>`.
    let raw = S3ArtifactStore::new(s3.config(), &s3.bucket, "", S3Options::default()).unwrap();
    let key = format!("{prefix}/run-1/build/unit/{part}");
    assert_eq!(raw.list(&prefix).await.unwrap(), vec![key.clone()]);
    assert_eq!(raw.get(&key).await.unwrap(), b"{\"msg\":\"x\"}\n");
}

#[tokio::test]
async fn s3_errors_name_the_operation_key_and_store_but_no_secret() {
    let s3 = TestS3::from_env();
    let secret = "definitely-not-the-right-secret-42";
    let cfg =
        S3Config::with_static_credentials(Some(&s3.endpoint), None, "sparkwingtest", secret, None)
            .unwrap();
    let store = S3ArtifactStore::new(&cfg, &s3.bucket, "denied", S3Options::default()).unwrap();
    let err = store.put("a/key", b"x".to_vec()).await.unwrap_err();
    let msg = sparkwing_contract::hint::with_hint(&err);
    assert!(matches!(err, StoreError::Remote { .. }), "{err:?}");
    assert!(msg.contains("`a/key`"), "{msg}");
    assert!(msg.contains(&format!("s3://{}/denied", s3.bucket)), "{msg}");
    assert!(msg.contains("403"), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");
    assert!(!msg.contains(secret), "{msg}");
    // 4xx is not retried: one attempt, no "(after N attempts)".
    assert!(!msg.contains("attempts"), "{msg}");

    let missing = S3ArtifactStore::new(
        s3.config(),
        "no-such-bucket-sparkwing",
        "",
        S3Options::default(),
    )
    .unwrap();
    let err = missing.list("").await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("s3://no-such-bucket-sparkwing"), "{msg}");
    assert!(msg.contains("NoSuchBucket"), "{msg}");
    use sparkwing_contract::hint::Hinted;
    assert!(
        err.hint().is_some_and(|h| h.contains("create the bucket")),
        "{err:?}"
    );
}

fn quick_opts() -> S3Options {
    S3Options {
        request_timeout: Duration::from_millis(300),
        max_attempts: 3,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        ..S3Options::default()
    }
}

fn store_at(endpoint: &str, opts: S3Options) -> S3ArtifactStore {
    let cfg = S3Config::with_static_credentials(Some(endpoint), None, "ak", "sk", None).unwrap();
    S3ArtifactStore::new(&cfg, "bucket", "p", opts).unwrap()
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port nothing listens on: bind, learn the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = store_at(&format!("http://127.0.0.1:{port}"), quick_opts());
    let started = Instant::now();
    let msg = store.get("k").await.unwrap_err().to_string();
    assert!(msg.contains("after 3 attempts"), "{msg}");
    assert!(msg.contains("s3://bucket/p"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_stalled_server_cannot_hang_a_call() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            held.push(sock);
        }
    });
    let store = store_at(&format!("http://{addr}"), quick_opts());
    let started = Instant::now();
    let msg = store
        .put("k", b"payload".to_vec())
        .await
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    server.abort();
    assert!(msg.contains("timed out"), "{msg}");
    assert!(msg.contains("after 3 attempts"), "{msg}");
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        3,
        "each attempt is a new request"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// Answers the first `fail` requests with `status`, then 200 with an ETag: a scripted server,
/// because a real one cannot be made to fail on cue.
async fn scripted_server(fail: usize, status: u16) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match sock.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if sock.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let n = count.fetch_add(1, Ordering::Relaxed);
                    let resp = if n < fail {
                        let body =
                            "<Error><Code>SlowDown</Code><Message>try later</Message></Error>";
                        format!(
                            "HTTP/1.1 {status} Oops\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 200 OK\r\netag: \"abc\"\r\ncontent-length: 0\r\n\r\n".to_string()
                    };
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn puts_are_retried_on_5xx_and_429() {
    for status in [503, 500, 429, 408] {
        let (endpoint, seen) = scripted_server(2, status).await;
        let store = store_at(&endpoint, quick_opts());
        store
            .put("k", b"payload".to_vec())
            .await
            .unwrap_or_else(|e| panic!("HTTP {status}: {e}"));
        assert_eq!(seen.load(Ordering::Relaxed), 3, "HTTP {status}");
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (endpoint, seen) = scripted_server(usize::MAX, 400).await;
    let store = store_at(&endpoint, quick_opts());
    let msg = store
        .put("k", b"payload".to_vec())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(seen.load(Ordering::Relaxed), 1);
    assert!(msg.contains("HTTP 400 SlowDown: try later"), "{msg}");
}

#[tokio::test]
async fn retries_give_up_after_the_bound() {
    let (endpoint, seen) = scripted_server(usize::MAX, 503).await;
    let store = store_at(&endpoint, quick_opts());
    let msg = store.get("k").await.unwrap_err().to_string();
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    assert!(msg.contains("after 3 attempts"), "{msg}");
}

/// The filesystem log store remembers which node directories it made; one removed behind its
/// back (by hand, or by another process's cleanup) is made again rather than failing the part.
#[tokio::test]
async fn fs_log_part_after_its_directory_vanished() {
    let dir = tempfile::tempdir().unwrap();
    let logs = FsLogStore::new(dir.path());
    logs.append_part("run-1", "build", b"one\n".to_vec())
        .await
        .unwrap();
    std::fs::remove_dir_all(dir.path().join("run-1")).unwrap();
    logs.append_part("run-1", "build", b"two\n".to_vec())
        .await
        .unwrap();
    let got = logs
        .read("run-1", "build", &sparkwing_storage::ReadOpts::default())
        .await
        .unwrap();
    assert_eq!(got, b"two\n");
}
