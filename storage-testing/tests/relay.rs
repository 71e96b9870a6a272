//! The relay passes the conformance suite: every store call a pipeline process makes through its
//! supervisor behaves as the store itself does, for the filesystem and for S3, including 200 MiB
//! streamed both ways with bounded memory and create-only races.

use sparkwing_contract::record::{NodeRecord, RunRecord};
use sparkwing_storage::relay::{
    Record, RecordHost, RelayClient, RelayListener, RelayStores, SyncDone, serve,
};
use sparkwing_storage::{ArtifactStore, FsArtifactStore, FsLogStore, LogStore, StoreError};
use sparkwing_storage_testing::TestS3;
use sparkwing_storage_testing::conformance::{self, SuiteOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[global_allocator]
static ALLOC: conformance::CountingAlloc = conformance::CountingAlloc;

/// Records kept in memory, in the order received, and how many came in each batch.
#[derive(Default)]
struct Kept(Mutex<Vec<String>>, Mutex<Vec<usize>>);

impl RecordHost for Kept {
    fn records(&self, batch: Vec<Record>) {
        let mut kept = self.0.lock().unwrap();
        self.1.lock().unwrap().push(batch.len());
        for r in batch {
            kept.push(match r {
                Record::Run(run) => format!("run {}", run.status),
                Record::Node(node) => format!("node {} {}", node.id, node.status),
            });
        }
    }
    fn sync(&self, done: SyncDone) {
        done(Ok(()))
    }
}

/// A relay in this process: the client end and the record host behind it.
async fn relay(stores: RelayStores) -> (RelayClient, Arc<Kept>) {
    let listener = RelayListener::bind(None).unwrap();
    let token = listener.token().to_string();
    let socket = listener.socket().to_path_buf();
    let kept = Arc::new(Kept::default());
    let host: Arc<dyn RecordHost> = kept.clone();
    let theirs = token.clone();
    tokio::spawn(async move {
        let stream = listener.accept().await.unwrap();
        serve(stream, &theirs, Arc::new(stores), host).await
    });
    (RelayClient::connect(&socket, &token).await.unwrap(), kept)
}

const CASES: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_stores_through_the_relay_conform() {
    let root = tempfile::tempdir().unwrap();
    let mut stores = RelayStores::new(Vec::new());
    for i in 0..CASES {
        let dir = root.path().join(format!("case-{i}"));
        stores = stores
            .with_artifact(&format!("a{i}"), Arc::new(FsArtifactStore::new(&dir)))
            .with_log(
                &format!("l{i}"),
                Arc::new(FsLogStore::new(dir.join("logs"))),
            );
    }
    let (client, _) = relay(stores).await;
    let n = Arc::new(AtomicUsize::new(0));
    let (c, k) = (client.clone(), n.clone());
    let artifacts = move || -> Arc<dyn ArtifactStore> {
        c.artifact_store(&format!("a{}", k.fetch_add(1, Ordering::Relaxed)))
    };
    let report =
        conformance::run_artifact_suite("relay+fs", &artifacts, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
    let k = Arc::new(AtomicUsize::new(0));
    let logs = move || -> Arc<dyn LogStore> {
        client.log_store(&format!("l{}", k.fetch_add(1, Ordering::Relaxed)))
    };
    let report = conformance::run_log_suite("relay+fs", &logs, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
    assert!(n.load(Ordering::Relaxed) < CASES, "more cases than stores");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stores_through_the_relay_conform() {
    let s3 = TestS3::from_env();
    let mut stores = RelayStores::new(Vec::new());
    for i in 0..CASES {
        stores = stores
            .with_artifact(
                &format!("a{i}"),
                Arc::new(s3.artifact_store("relay-conformance")),
            )
            .with_log(
                &format!("l{i}"),
                Arc::new(s3.log_store("relay-conformance")),
            );
    }
    let (client, _) = relay(stores).await;
    let k = Arc::new(AtomicUsize::new(0));
    let (c, kk) = (client.clone(), k.clone());
    let artifacts = move || -> Arc<dyn ArtifactStore> {
        c.artifact_store(&format!("a{}", kk.fetch_add(1, Ordering::Relaxed)))
    };
    let report =
        conformance::run_artifact_suite("relay+s3", &artifacts, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
    let k = Arc::new(AtomicUsize::new(0));
    let logs = move || -> Arc<dyn LogStore> {
        client.log_store(&format!("l{}", k.fetch_add(1, Ordering::Relaxed)))
    };
    let report = conformance::run_log_suite("relay+s3", &logs, &SuiteOptions::default()).await;
    println!("{}", report.table());
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_foreign_stores_binary_cache_writes_and_strangers() {
    let root = tempfile::tempdir().unwrap();
    let stores = RelayStores::new(Vec::new())
        .with_artifact("cache", Arc::new(FsArtifactStore::new(root.path())));
    let (client, kept) = relay(stores).await;
    // A store the run was not given.
    let e = client
        .artifact_store("s3://elsewhere/x")
        .get("k")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not one of this run's stores"),
        "{e}"
    );
    // The binary cache is the supervisor's alone, in every spelling and through every write.
    let cache = client.artifact_store("cache");
    for key in ["bin/0123", "BIN/0123"] {
        let e = cache.put(key, b"evil".to_vec()).await.unwrap_err();
        assert!(e.to_string().contains("may not write under `bin/`"), "{e}");
        let mut r: &[u8] = b"evil";
        assert!(cache.put_from_reader_if_absent(key, &mut r).await.is_err());
        assert!(cache.delete(key).await.is_err());
    }
    assert!(!root.path().join("bin").exists());
    // Errors keep their kind across the socket.
    assert!(matches!(cache.get("missing").await, Err(StoreError::NotFound(k)) if k == "missing"));
    cache.put_if_absent("once", b"1".to_vec()).await.unwrap();
    assert!(matches!(
        cache.put_if_absent("once", b"2".to_vec()).await,
        Err(StoreError::PreconditionFailed(_))
    ));
    // Records arrive in order, and sync waits for them. A node's later record sent before the
    // batch leaves takes the place of its earlier one.
    use sparkwing_contract::record::NodeStatus;
    let node = |id: &str, status| NodeRecord::new("run-20261202-000000-00000000", id, status);
    for i in 0..3 {
        client.put_node(node(&format!("n{i}"), NodeStatus::Pending));
    }
    client.put_node(node("n0", NodeStatus::Running));
    client.put_run(RunRecord::new(
        "run-20261202-000000-00000000",
        "ci",
        sparkwing_contract::record::RunStatus::Running,
        "2026-12-02T00:00:00Z",
    ));
    client.sync().await.unwrap();
    assert_eq!(
        *kept.0.lock().unwrap(),
        [
            "node n0 running",
            "node n1 pending",
            "node n2 pending",
            "run running"
        ]
    );
    // Without a sync, records still leave within moments.
    client.put_node(node("n1", NodeStatus::Done));
    let waited = std::time::Instant::now();
    while kept.0.lock().unwrap().len() < 5 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(5),
            "a record without a sync never left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(kept.0.lock().unwrap()[4], "node n1 done");
    // A sync sends its batch when it is called, not when it is awaited: a record queued in
    // between is not part of it (the pipeline process queues its jobs' pending rows while the
    // run's own row is being committed).
    client.put_node(node("n2", NodeStatus::Running));
    let synced = client.sync();
    client.put_node(node("n3", NodeStatus::Pending));
    synced.await.unwrap();
    client.sync().await.unwrap();
    let kept_now = kept.0.lock().unwrap().clone();
    assert_eq!(kept_now[5..], ["node n2 running", "node n3 pending"]);
    let batches = kept.1.lock().unwrap().clone();
    assert_eq!(batches[batches.len() - 2..], [1, 1], "{batches:?}");

    // Without the token, the supervisor hangs up before serving anything.
    let listener = RelayListener::bind(None).unwrap();
    let socket = listener.socket().to_path_buf();
    let served = tokio::spawn(async move {
        let stream = listener.accept().await.unwrap();
        let stores = Arc::new(RelayStores::new(Vec::new()));
        serve(stream, "the-token", stores, Arc::new(Kept::default())).await
    });
    let stranger = RelayClient::connect(&socket, "a-guess").await.unwrap();
    assert!(stranger.artifact_store("cache").get("once").await.is_err());
    let e = served.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    // A call made after the supervisor hung up fails at once; it never waits for a reply that
    // cannot come.
    for _ in 0..20 {
        let late = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stranger.artifact_store("cache").get("once"),
        )
        .await
        .expect("a call on a closed relay must not hang");
        assert!(late.is_err());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Once connected, the socket is gone: nobody else can reach the supervisor.
    assert!(!socket.exists());
}
