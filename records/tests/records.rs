//! The run record end to end: writer thread, read-only readers, finalization, state dump.

use sparkwing_contract::record::{
    Invocation, NodeRecord, NodeStatus, Outcome, RunRecord, RunStatus, StateDump,
};
use sparkwing_records::{Reader, RecordsError, RunFilter, Writer, finalize_abandoned};
use std::collections::BTreeMap;
use std::path::Path;

fn run(id: &str, pipeline: &str, status: RunStatus, started_at: &str) -> RunRecord {
    RunRecord {
        git_branch: "main".into(),
        git_sha: "abc123".into(),
        args: BTreeMap::from([("count".to_string(), "3".to_string())]),
        invocation: Invocation {
            mode: "local".into(),
            workers: 2,
            ..Default::default()
        },
        ..RunRecord::new(id, pipeline, status, started_at)
    }
}

fn node(run_id: &str, id: &str, status: NodeStatus, outcome: Option<Outcome>) -> NodeRecord {
    NodeRecord {
        outcome,
        ..NodeRecord::new(run_id, id, status)
    }
}

const R1: &str = "run-20261127-141500-00000001";
const R2: &str = "run-20261127-141501-00000002";
const R3: &str = "run-20261127-141502-00000003";

fn db(dir: &Path) -> std::path::PathBuf {
    sparkwing_contract::Home::at(dir).state_db()
}

#[test]
fn rows_round_trip_and_update_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::open(&db(dir.path())).unwrap();
    let mut r = run(R1, "hello", RunStatus::Running, "2026-11-27T14:15:00Z");
    w.put_run(r.clone());
    let mut build = node(R1, "build", NodeStatus::Pending, None);
    build.deps = vec![];
    let mut test = node(R1, "test", NodeStatus::Pending, None);
    test.deps = vec!["build".into()];
    w.put_node(build.clone());
    w.put_node(test.clone());
    w.sync().unwrap();

    // A reader opened while the writer is alive sees committed rows.
    let reader = Reader::open(&db(dir.path())).unwrap();
    assert_eq!(reader.get_run(R1).unwrap().unwrap(), r);
    assert_eq!(
        reader.list_nodes(R1).unwrap(),
        vec![build.clone(), test.clone()]
    );

    build.status = NodeStatus::Done;
    build.outcome = Some(Outcome::Success);
    build.attempts = 1;
    build
        .outputs
        .insert("version".into(), serde_json::json!("1.2.3"));
    build.artifacts.push("dist/app.tar".into());
    build.status_detail = "reused from run run-20261127-141000-00000009".into();
    r.status = RunStatus::Success;
    r.finished_at = Some("2026-11-27T14:15:02Z".into());
    w.put_node(build.clone());
    w.put_run(r.clone());
    let stats = w.close().unwrap();
    assert_eq!(stats.records, 5);

    let reader = Reader::open(&db(dir.path())).unwrap();
    assert_eq!(reader.get_run(R1).unwrap().unwrap(), r);
    // Plan order is kept even though `build` was rewritten after `test`.
    assert_eq!(reader.list_nodes(R1).unwrap(), vec![build, test]);
    assert!(reader.get_run(R2).unwrap().is_none());
}

#[test]
fn list_runs_filters_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::open(&db(dir.path())).unwrap();
    // Sub-second precision must order correctly even with differing fraction lengths.
    w.put_run(run(
        R1,
        "hello",
        RunStatus::Success,
        "2026-11-27T14:15:00.5Z",
    ));
    w.put_run(run(
        R2,
        "hello",
        RunStatus::Failed,
        "2026-11-27T14:15:00.45Z",
    ));
    w.put_run(run(
        R3,
        "fanout",
        RunStatus::Success,
        "2026-11-27T14:15:01Z",
    ));
    w.close().unwrap();

    let reader = Reader::open(&db(dir.path())).unwrap();
    let ids = |f: RunFilter| -> Vec<String> {
        reader
            .list_runs(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(RunFilter::default()), [R3, R1, R2]);
    assert_eq!(
        ids(RunFilter {
            pipeline: Some("hello".into()),
            ..Default::default()
        }),
        [R1, R2]
    );
    assert_eq!(
        ids(RunFilter {
            status: Some(RunStatus::Success),
            ..Default::default()
        }),
        [R3, R1]
    );
    assert_eq!(
        ids(RunFilter {
            limit: Some(1),
            ..Default::default()
        }),
        [R3]
    );
}

#[test]
fn the_writer_batches_records_into_few_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::open(&db(dir.path())).unwrap();
    w.put_run(run(R1, "noop", RunStatus::Running, "2026-11-27T14:15:00Z"));
    for i in 0..10_000 {
        w.put_node(node(R1, &format!("job-{i}"), NodeStatus::Pending, None));
    }
    for i in 0..10_000 {
        w.put_node(node(
            R1,
            &format!("job-{i}"),
            NodeStatus::Done,
            Some(Outcome::Success),
        ));
    }
    let stats = w.close().unwrap();
    assert_eq!(stats.records, 20_001);
    assert!(
        stats.transactions < 200,
        "20,001 records took {} transactions",
        stats.transactions
    );
    let reader = Reader::open(&db(dir.path())).unwrap();
    let nodes = reader.list_nodes(R1).unwrap();
    assert_eq!(nodes.len(), 10_000);
    assert_eq!(nodes[0].id, "job-0");
    assert!(nodes.iter().all(|n| n.outcome == Some(Outcome::Success)));
}

/// Once a finished run is committed and synced, its pages move into the database file while the
/// writer is still open (the pipeline process is winding down), not only when it closes.
#[test]
fn the_sync_after_a_finished_run_moves_its_pages_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let w = Writer::open(&path).unwrap();
    let mut r = run(R1, "noop", RunStatus::Running, "2026-11-27T14:15:00Z");
    w.put_run(r.clone());
    for i in 0..200 {
        w.put_node(node(R1, &format!("job-{i}"), NodeStatus::Pending, None));
    }
    w.sync().unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    // A sync before the run has ended leaves the pages in the write-ahead log.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(size(), before, "checkpointed while the run was still going");
    r.status = RunStatus::Success;
    r.finished_at = Some("2026-11-27T14:15:01Z".into());
    w.put_run(r);
    w.sync().unwrap();
    let began = std::time::Instant::now();
    while size() == before && began.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        size() > before,
        "the database file still holds {before} bytes"
    );
    w.close().unwrap();
    assert_eq!(
        Reader::open(&path).unwrap().list_nodes(R1).unwrap().len(),
        200
    );
}

/// A frame of records from the pipeline process is handed to the writer whole: written in the
/// order sent (a node's later record wins, nodes list in first-written order), counted one by
/// one, and committed together. The relay's sync is answered by the writer's own thread once
/// the batch is committed.
#[test]
fn a_relay_batch_is_written_in_order_in_one_transaction() {
    use sparkwing_storage::relay::{Record, RecordHost};
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::open(&db(dir.path())).unwrap();
    let r = run(R1, "shell", RunStatus::Running, "2026-11-27T14:15:00Z");
    let done = |id: &str| node(R1, id, NodeStatus::Done, Some(Outcome::Success));
    w.records(vec![
        Record::Run(r.clone()),
        Record::Node(node(R1, "b", NodeStatus::Running, None)),
        Record::Node(done("a")),
        Record::Node(done("b")),
    ]);
    w.records(Vec::new());
    let (tx, rx) = std::sync::mpsc::channel();
    RecordHost::sync(
        &w,
        Box::new(move |r| {
            let thread = std::thread::current().name().map(str::to_string);
            tx.send((r, thread)).unwrap();
        }),
    );
    let (answer, thread) = rx.recv().unwrap();
    answer.unwrap();
    assert_eq!(thread.as_deref(), Some("sparkwing-records"));
    assert_eq!(w.stats().records, 4);
    assert_eq!(w.stats().transactions, 1);
    let reader = Reader::open(&db(dir.path())).unwrap();
    assert_eq!(reader.get_run(R1).unwrap().unwrap(), r);
    assert_eq!(reader.list_nodes(R1).unwrap(), vec![done("b"), done("a")]);
    w.close().unwrap();
}

#[test]
fn finalize_abandoned_closes_a_running_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let w = Writer::open(&path).unwrap();
    w.put_run(run(R1, "die", RunStatus::Running, "2026-11-27T14:15:00Z"));
    let mut done = node(R1, "a", NodeStatus::Done, Some(Outcome::Success));
    done.attempts = 1;
    w.put_node(done.clone());
    w.put_node(node(R1, "b", NodeStatus::Running, None));
    w.put_node(node(R1, "c", NodeStatus::Pending, None));
    w.close().unwrap();

    assert!(finalize_abandoned(&path, R1, "pipeline process killed by SIGKILL").unwrap());
    let reader = Reader::open(&path).unwrap();
    let r = reader.get_run(R1).unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.error, "pipeline process killed by SIGKILL");
    assert!(r.finished_at.is_some());
    let nodes = reader.list_nodes(R1).unwrap();
    assert_eq!(nodes[0], done, "finished nodes are left alone");
    for n in &nodes[1..] {
        assert_eq!(n.status, NodeStatus::Done);
        assert_eq!(n.outcome, Some(Outcome::Cancelled));
        assert_eq!(n.failure_reason, "cancelled");
        assert!(n.error.contains("SIGKILL"), "{}", n.error);
    }
    assert!(!finalize_abandoned(&path, R1, "again").unwrap());
    assert!(!finalize_abandoned(&path, R2, "never recorded").unwrap());
    let missing = dir.path().join("nowhere/state.db");
    assert!(!finalize_abandoned(&missing, R1, "no db").unwrap());
    assert!(!missing.exists(), "finalizing must not create a database");
}

#[test]
fn dump_state_renders_parseable_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::open(&db(dir.path())).unwrap();
    w.put_run(run(R1, "hello", RunStatus::Success, "2026-11-27T14:15:00Z"));
    w.put_node(node(R1, "build", NodeStatus::Done, Some(Outcome::Success)));
    w.put_node(node(R1, "test", NodeStatus::Done, Some(Outcome::Failed)));
    w.close().unwrap();
    let reader = Reader::open(&db(dir.path())).unwrap();
    let text = reader.dump_state(R1).unwrap().unwrap();
    assert_eq!(text.lines().count(), 3);
    let dump = StateDump::parse(&text);
    assert!(dump.bad_lines.is_empty());
    assert_eq!(dump.run.unwrap().id, R1);
    assert_eq!(dump.nodes[1].outcome, Some(Outcome::Failed));
    assert!(reader.dump_state(R2).unwrap().is_none());
}

#[test]
fn a_missing_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Reader::open(&db(dir.path())).unwrap_err();
    assert!(matches!(err, RecordsError::Missing { .. }));
    assert!(err.to_string().contains("state.db"), "{err}");
}

#[test]
fn a_newer_schema_is_refused_by_readers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    Writer::open(&path).unwrap().close().unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    assert!(matches!(
        Reader::open(&path).unwrap_err(),
        RecordsError::NewerSchema { found: 99, .. }
    ));
    assert!(matches!(
        Writer::open(&path).unwrap_err(),
        RecordsError::NewerSchema { found: 99, .. }
    ));
}

/// `sparkwing run` starts opening the database before it looks for the pipeline binary: the
/// open goes on in the writer's thread, and whether it worked is known at `ready`.
#[test]
fn a_database_opened_in_the_background_is_ready_or_refused_at_ready() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let w = Writer::opening(&path).unwrap().ready().unwrap();
    w.put_run(run(R1, "hello", RunStatus::Success, "2026-11-27T14:15:00Z"));
    w.sync().unwrap();
    w.close().unwrap();
    assert_eq!(
        Reader::open(&path)
            .unwrap()
            .list_runs(&RunFilter::default())
            .unwrap()
            .len(),
        1
    );
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    // Starting is not opening: the refusal comes with `ready`, as `open` gives it.
    let opening = Writer::opening(&path).unwrap();
    assert!(matches!(
        opening.ready().unwrap_err(),
        RecordsError::NewerSchema { found: 99, .. }
    ));
}

/// Two `sparkwing run`s started together on a new home both create the database: neither may
/// fail because the other is setting it up. Each opener is a process of its own (this test
/// binary again, running `opens_the_database_named_in_its_environment`), since SQLite's file
/// locks are per process.
#[test]
fn processes_opening_a_new_database_at_once_all_get_it() {
    let me = std::env::current_exe().unwrap();
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = db(dir.path());
        let go = dir.path().join("go");
        let openers: Vec<_> = (0..6)
            .map(|_| {
                std::process::Command::new(&me)
                    .args(["--exact", "opens_the_database_named_in_its_environment"])
                    .env(OPEN_ME, &path)
                    .env(GO, &go)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // All of them start opening at the same moment.
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(&go, b"").unwrap();
        for o in openers {
            let o = o.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

const OPEN_ME: &str = "SPARKWING_RECORDS_TEST_OPEN";
const GO: &str = "SPARKWING_RECORDS_TEST_GO";

/// Opens and closes the database named by [`OPEN_ME`] once the file named by [`GO`] exists;
/// nothing without them.
#[test]
fn opens_the_database_named_in_its_environment() {
    if let (Some(path), Some(go)) = (std::env::var_os(OPEN_ME), std::env::var_os(GO)) {
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let w = Writer::open(std::path::Path::new(&path)).unwrap();
        w.close().unwrap();
    }
}

#[test]
fn readers_work_on_a_database_whose_writer_has_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let w = Writer::open(&path).unwrap();
    w.put_run(run(R1, "hello", RunStatus::Success, "2026-11-27T14:15:00Z"));
    w.close().unwrap();
    let reader = Reader::open(&path).unwrap();
    assert_eq!(reader.list_runs(&RunFilter::default()).unwrap().len(), 1);
}

/// A database written before nodes had a `status_detail` column: readers (which never migrate)
/// read it with the detail empty, and the next writer adds the column without losing a row.
#[test]
fn a_database_from_before_status_detail_is_read_and_then_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(sparkwing_records::schema::MIGRATIONS[0])
            .unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO runs (id, pipeline, status, started_at) VALUES
                 ('run-20261127-141500-00000001', 'hello', 'success', '2026-11-27T14:15:00Z');
             INSERT INTO nodes (run_id, id, status, outcome) VALUES
                 ('run-20261127-141500-00000001', 'build', 'done', 'success');",
        )
        .unwrap();
    }
    let nodes = Reader::open(&path).unwrap().list_nodes(R1).unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].outcome, Some(Outcome::Success));
    assert_eq!(nodes[0].status_detail, "");

    let w = Writer::open(&path).unwrap();
    let mut cached = node(R1, "test", NodeStatus::Done, Some(Outcome::Cached));
    cached.status_detail = "reused from run run-20261127-141000-00000009".into();
    w.put_node(cached.clone());
    w.close().unwrap();
    let nodes = Reader::open(&path).unwrap().list_nodes(R1).unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[1], cached);
}
