//! Log-store cases.

use super::*;

// Log cases.

const RUN: &str = "run-20260420-093112-a7f2c3d4";

fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(str::to_string)
        .collect()
}

pub(super) async fn five_lines(s: &Arc<dyn LogStore>) -> Result<(), StoreError> {
    s.append_part(RUN, "n", b"a\nb\nc\n".to_vec()).await?;
    s.append_part(RUN, "n", b"d\ne\n".to_vec()).await?;
    Ok(())
}

pub(super) async fn append_read_round_trip(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "build", b"alpha\nbeta\ngamma\n".to_vec())
        .await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got == b"alpha\nbeta\ngamma\n", "read {}", show(&got));
    Ok(())
}

pub(super) async fn read_empty_node(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    let got = s.read(RUN, "nothing", &ReadOpts::default()).await?;
    ensure!(got.is_empty(), "read {}", show(&got));
    ensure!(
        s.list_nodes(RUN).await?.is_empty(),
        "nodes listed for an empty run"
    );
    Ok(())
}

pub(super) async fn read_with_tail(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    five_lines(&s).await?;
    let o = ReadOpts {
        tail: 2,
        ..Default::default()
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(got == ["d", "e"], "tail 2 = {got:?}");
    Ok(())
}

pub(super) async fn read_with_head(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    five_lines(&s).await?;
    let o = ReadOpts {
        head: 2,
        ..Default::default()
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(got == ["a", "b"], "head 2 = {got:?}");
    Ok(())
}

pub(super) async fn read_with_grep(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "n", b"hello\nworld\n".to_vec()).await?;
    s.append_part(RUN, "n", b"hello again\nbye\nHELLO\n".to_vec())
        .await?;
    let o = ReadOpts {
        grep: Some("hello".into()),
        ..Default::default()
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(got == ["hello", "hello again"], "grep = {got:?}");
    Ok(())
}

pub(super) async fn read_with_line_range(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    five_lines(&s).await?;
    let read = |from, to| {
        let s = s.clone();
        async move {
            let o = ReadOpts {
                lines: Some((from, to)),
                ..Default::default()
            };
            s.read(RUN, "n", &o).await.map(|b| lines(&b))
        }
    };
    let got = read(2, 4).await?;
    ensure!(got == ["b", "c", "d"], "lines 2:4 = {got:?}");
    let got = read(4, 99).await?;
    ensure!(got == ["d", "e"], "lines 4:99 (clamped) = {got:?}");
    let got = read(9, 12).await?;
    ensure!(got.is_empty(), "lines 9:12 = {got:?}");
    let o = ReadOpts {
        lines: Some((1, 4)),
        grep: Some("c".into()),
        tail: 5,
        head: 1,
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(
        got == ["c"],
        "range then grep then tail then head = {got:?}"
    );
    Ok(())
}

pub(super) async fn read_run_returns_all_nodes(
    s: Arc<dyn LogStore>,
    _: SuiteOptions,
) -> CaseResult {
    s.append_part(RUN, "test", b"t1\n".to_vec()).await?;
    s.append_part(RUN, "build", b"b1\n".to_vec()).await?;
    s.append_part(RUN, "build", b"b2\n".to_vec()).await?;
    let all = s.read_run(RUN).await?;
    let got: Vec<(String, Vec<String>)> = all.iter().map(|(n, b)| (n.clone(), lines(b))).collect();
    let want = vec![
        (
            "build".to_string(),
            vec!["b1".to_string(), "b2".to_string()],
        ),
        ("test".to_string(), vec!["t1".to_string()]),
    ];
    ensure!(got == want, "read_run = {got:?}");
    Ok(())
}

pub(super) async fn delete_run_removes_logs(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "build", b"x\n".to_vec()).await?;
    s.append_part(RUN, "p/child", b"y\n".to_vec()).await?;
    s.delete_run(RUN).await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got.is_empty(), "read after delete_run = {}", show(&got));
    let nodes = s.list_nodes(RUN).await?;
    ensure!(nodes.is_empty(), "nodes after delete_run = {nodes:?}");
    Ok(())
}

pub(super) async fn delete_run_missing_is_idempotent(
    s: Arc<dyn LogStore>,
    _: SuiteOptions,
) -> CaseResult {
    s.delete_run(RUN).await?;
    s.delete_run(RUN).await?;
    Ok(())
}

pub(super) async fn append_after_delete_works(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "build", b"old\n".to_vec()).await?;
    s.delete_run(RUN).await?;
    s.append_part(RUN, "build", b"new\n".to_vec()).await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got == b"new\n", "read = {}", show(&got));
    Ok(())
}

/// A writer that names a part once and retries it (after a timeout that actually landed) must
/// not duplicate its lines.
pub(super) async fn part_written_twice_is_stored_once(
    s: Arc<dyn LogStore>,
    _: SuiteOptions,
) -> CaseResult {
    let first = sparkwing_storage::next_part_name();
    let second = sparkwing_storage::next_part_name();
    s.put_part(RUN, "build", &first, b"one\n".to_vec()).await?;
    s.put_part(RUN, "build", &second, b"two\n".to_vec()).await?;
    s.put_part(RUN, "build", &first, b"one\n".to_vec()).await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got == b"one\ntwo\n", "read = {}", show(&got));
    Ok(())
}

pub(super) async fn parts_written_together_read_as_written(
    s: Arc<dyn LogStore>,
    _: SuiteOptions,
) -> CaseResult {
    let part = |node: &str, data: &[u8]| sparkwing_storage::LogPart {
        node: node.into(),
        name: sparkwing_storage::next_part_name(),
        data: data.to_vec(),
    };
    let batch = vec![
        part("build", b"b1\n"),
        part("test", b"t1"),
        part("build", b"b2\n"),
        part("deploy/eu", b"e1\n"),
    ];
    s.put_parts(RUN, &batch).await?;
    // The same batch again (a retry after a lost answer) replaces the parts; nothing doubles.
    s.put_parts(RUN, &batch).await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got == b"b1\nb2\n", "build = {}", show(&got));
    let got = s.read(RUN, "test", &ReadOpts::default()).await?;
    ensure!(got == b"t1\n", "test = {}", show(&got));
    let got = s.read(RUN, "deploy/eu", &ReadOpts::default()).await?;
    ensure!(got == b"e1\n", "deploy/eu = {}", show(&got));
    let listed = s.list_parts(RUN).await?.len();
    ensure!(listed == 4, "{listed} parts listed, 4 written");
    // A part with a name no writer makes is refused, batch and all: the good part before it
    // (a large one, which a filesystem keeps in a file of its own) is not written either.
    let mut bad = part("build", b"x\n");
    bad.name = "../escape".into();
    let big = part("build", &vec![b'y'; 100 * 1024]);
    ensure!(
        s.put_parts(RUN, &[big, bad]).await.is_err(),
        "a bad part name in a batch was accepted"
    );
    let listed = s.list_parts(RUN).await?.len();
    ensure!(
        listed == 4,
        "{listed} parts listed after a refused batch, 4 before"
    );
    Ok(())
}

pub(super) async fn parts_are_listed_and_read_one_by_one(
    s: Arc<dyn LogStore>,
    _: SuiteOptions,
) -> CaseResult {
    ensure!(
        s.list_parts(RUN).await?.is_empty(),
        "an empty run has parts"
    );
    let b1 = s.append_part(RUN, "build", b"b1\n".to_vec()).await?;
    let e1 = s.append_part(RUN, "deploy/eu", b"e1".to_vec()).await?;
    let b2 = s.append_part(RUN, "build", b"b2\n".to_vec()).await?;
    s.append_part("run-other", "build", b"x\n".to_vec()).await?;
    let listed = s.list_parts(RUN).await?;
    let want = vec![
        ("build".to_string(), b1.clone()),
        ("build".to_string(), b2.clone()),
        ("deploy/eu".to_string(), e1.clone()),
    ];
    ensure!(listed == want, "list_parts = {listed:?}, want {want:?}");
    // One node's own parts only: not its children's, not another run's.
    s.append_part(RUN, "deploy", b"d\n".to_vec()).await?;
    let own = s.list_node_parts(RUN, "build").await?;
    ensure!(
        own == vec![b1.clone(), b2.clone()],
        "list_node_parts(build) = {own:?}"
    );
    let own = s.list_node_parts(RUN, "deploy/eu").await?;
    ensure!(
        own == vec![e1.clone()],
        "list_node_parts(deploy/eu) = {own:?}"
    );
    let own = s.list_node_parts(RUN, "deploy").await?;
    ensure!(own.len() == 1, "list_node_parts(deploy) = {own:?}");
    ensure!(
        s.list_node_parts(RUN, "nothing").await?.is_empty(),
        "a node without a log has parts"
    );
    let got = s.read_part(RUN, "build", &b2).await?;
    ensure!(got == b"b2\n", "read_part = {}", show(&got));
    // Stored as written by append_part: the missing newline was added.
    let got = s.read_part(RUN, "deploy/eu", &e1).await?;
    ensure!(got == b"e1\n", "read_part = {}", show(&got));
    let missing = sparkwing_storage::next_part_name();
    ensure!(
        s.read_part(RUN, "build", &missing).await?.is_empty(),
        "a missing part reads as empty"
    );
    match s.read_part(RUN, "../build", &b1).await {
        Err(StoreError::BadId(_)) => {}
        other => ensure!(false, "unsafe node gave {other:?}"),
    }
    match s.read_part(RUN, "build", "../../x").await {
        Err(StoreError::BadPartName(_)) => {}
        other => ensure!(false, "unsafe part gave {other:?}"),
    }
    s.delete_run("run-other").await?;
    Ok(())
}

pub(super) async fn bad_part_names_are_refused(
    s: Arc<dyn LogStore>,
    _: SuiteOptions,
) -> CaseResult {
    for bad in [
        "",
        "../x.ndjson",
        "00000000000000000001-0000000001.json",
        "0000000000000000000a-0000000001.ndjson",
        "00000000000000000001/0000000001.ndjson",
        "1-1.ndjson",
    ] {
        match s.put_part(RUN, "build", bad, b"x\n".to_vec()).await {
            Err(StoreError::BadPartName(_)) => {}
            other => ensure!(false, "`{bad}` gave {other:?}"),
        }
    }
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got.is_empty(), "something was written: {}", show(&got));
    Ok(())
}

pub(super) async fn many_parts_read_in_order(s: Arc<dyn LogStore>, o: SuiteOptions) -> CaseResult {
    let mut want = Vec::new();
    for i in 0..o.log_parts {
        let part =
            format!("{{\"msg\":\"part {i:05} line 1\"}}\n{{\"msg\":\"part {i:05} line 2\"}}\n");
        want.extend_from_slice(part.as_bytes());
        s.append_part(RUN, "build", part.into_bytes()).await?;
    }
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(
        got.len() == want.len(),
        "read {} of {} bytes",
        got.len(),
        want.len()
    );
    ensure!(got == want, "parts came back out of order");
    let tail = s
        .read(
            RUN,
            "build",
            &ReadOpts {
                tail: 1,
                ..Default::default()
            },
        )
        .await?;
    let last = format!("{{\"msg\":\"part {:05} line 2\"}}\n", o.log_parts - 1);
    ensure!(tail == last.as_bytes(), "tail 1 = {}", show(&tail));
    Ok(())
}

/// `parent/child` nodes are listed on their own; reading the parent shows only its lines.
pub(super) async fn hierarchical_nodes(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "deploy", b"parent line\n".to_vec())
        .await?;
    s.append_part(RUN, "deploy/eu", b"child line\n".to_vec())
        .await?;
    s.append_part(RUN, "build", b"b\n".to_vec()).await?;
    let nodes = s.list_nodes(RUN).await?;
    ensure!(
        nodes == ["build", "deploy", "deploy/eu"],
        "nodes = {nodes:?}"
    );
    let parent = lines(&s.read(RUN, "deploy", &ReadOpts::default()).await?);
    ensure!(parent == ["parent line"], "parent read = {parent:?}");
    let child = lines(&s.read(RUN, "deploy/eu", &ReadOpts::default()).await?);
    ensure!(child == ["child line"], "child read = {child:?}");
    Ok(())
}

/// `run-1` must not see `run-10`'s logs, nor `build` see `build-x`'s.
pub(super) async fn runs_are_isolated(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part("run-1", "build", b"one\n".to_vec()).await?;
    s.append_part("run-10", "build", b"ten\n".to_vec()).await?;
    s.append_part("run-1", "build-x", b"x\n".to_vec()).await?;
    let got = lines(&s.read("run-1", "build", &ReadOpts::default()).await?);
    ensure!(got == ["one"], "run-1/build = {got:?}");
    let nodes = s.list_nodes("run-1").await?;
    ensure!(nodes == ["build", "build-x"], "run-1 nodes = {nodes:?}");
    s.delete_run("run-1").await?;
    let ten = lines(&s.read("run-10", "build", &ReadOpts::default()).await?);
    ensure!(ten == ["ten"], "deleting run-1 touched run-10: {ten:?}");
    Ok(())
}

pub(super) async fn missing_newline_is_added(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "n", b"no newline".to_vec()).await?;
    s.append_part(RUN, "n", b"second".to_vec()).await?;
    let got = s.read(RUN, "n", &ReadOpts::default()).await?;
    ensure!(got == b"no newline\nsecond\n", "read = {}", show(&got));
    Ok(())
}

pub(super) async fn unsafe_ids_are_refused(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    let refused = |r: &Result<(), StoreError>| matches!(r, Err(StoreError::BadId(_)));
    for run in ["", ".", "..", "a/b", "a\\b", "r\nx", "../run"] {
        let r = s
            .append_part(run, "build", b"x\n".to_vec())
            .await
            .map(|_| ());
        ensure!(refused(&r), "append_part(run {run:?}) = {r:?}");
        let r = s.read(run, "build", &ReadOpts::default()).await.map(|_| ());
        ensure!(refused(&r), "read(run {run:?}) = {r:?}");
        let r = s.list_nodes(run).await.map(|_| ());
        ensure!(refused(&r), "list_nodes(run {run:?}) = {r:?}");
        let r = s.delete_run(run).await;
        ensure!(refused(&r), "delete_run(run {run:?}) = {r:?}");
    }
    for node in [
        "",
        "..",
        "a/../b",
        "/abs",
        "a//b",
        "trailing/",
        "n\u{1b}[31m",
        "a\\b",
    ] {
        let r = s.append_part(RUN, node, b"x\n".to_vec()).await.map(|_| ());
        ensure!(refused(&r), "append_part(node {node:?}) = {r:?}");
        let r = s.read(RUN, node, &ReadOpts::default()).await.map(|_| ());
        ensure!(refused(&r), "read(node {node:?}) = {r:?}");
    }
    let nodes = s.list_nodes(RUN).await?;
    ensure!(nodes.is_empty(), "a refused id was written: {nodes:?}");
    Ok(())
}
