//! The filesystem log store's own layout: small parts appended to a pack per writer and run,
//! large parts and parts of older versions in files of their own, read back as one log.

use sparkwing_storage::{FsLogStore, LogStore, ReadOpts, next_part_name};
use std::io::Write;
use std::path::{Path, PathBuf};

const RUN: &str = "run-20260101-000000-00000001";

/// The pack files at the top of the run directory.
fn packs(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(RUN))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

async fn read(s: &FsLogStore, node: &str) -> String {
    String::from_utf8(s.read(RUN, node, &ReadOpts::default()).await.unwrap()).unwrap()
}

#[tokio::test]
async fn small_parts_share_a_pack_and_large_ones_keep_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsLogStore::new(dir.path());
    let big = "x".repeat(100 * 1024) + "\n";
    let mut names = Vec::new();
    for (node, data) in [
        ("true-1", "one\n".to_string()),
        ("true-2", "two\n".to_string()),
        ("deploy/eu", "three\n".to_string()),
        ("true-1", big.clone()),
        ("true-1", "four".to_string()),
    ] {
        let name = s.append_part(RUN, node, data.into_bytes()).await.unwrap();
        names.push((node.to_string(), name));
    }

    // One pack for the four small parts; a node directory only for the node with a large part.
    let files = packs(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let pack_name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(pack_name.starts_with(".parts-") && pack_name.ends_with(".pack"));
    let mut dirs: Vec<String> = std::fs::read_dir(dir.path().join(RUN))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["true-1"]);
    let own: Vec<_> = std::fs::read_dir(dir.path().join(RUN).join("true-1"))
        .unwrap()
        .collect();
    assert_eq!(own.len(), 1, "only the large part has a file");

    // Read back in write order, whatever holds each part; the missing newline is added.
    assert_eq!(read(&s, "true-1").await, format!("one\n{big}four\n"));
    assert_eq!(read(&s, "deploy/eu").await, "three\n");
    assert_eq!(
        read(&s, "deploy").await,
        "",
        "a parent does not read its children"
    );
    let mut want = names.clone();
    want.sort();
    assert_eq!(s.list_parts(RUN).await.unwrap(), want);
    assert_eq!(
        s.list_nodes(RUN).await.unwrap(),
        ["deploy/eu", "true-1", "true-2"]
    );
    for (node, part) in &names {
        let got = s.read_part(RUN, node, part).await.unwrap();
        assert!(!got.is_empty(), "{node} {part}");
    }

    // Another store (another process: the dashboard) sees the same.
    let other = FsLogStore::new(dir.path());
    assert_eq!(read(&other, "true-1").await, format!("one\n{big}four\n"));
    assert_eq!(other.list_parts(RUN).await.unwrap(), want);

    s.delete_run(RUN).await.unwrap();
    assert!(!dir.path().join(RUN).exists());
    assert_eq!(read(&s, "true-2").await, "");
    s.append_part(RUN, "true-2", b"again\n".to_vec())
        .await
        .unwrap();
    assert_eq!(read(&s, "true-2").await, "again\n");
}

/// A follower polls the parts list while the pipeline writes: what it listed stays readable,
/// what was appended since shows up on its next look, and it reads only the new bytes.
#[tokio::test]
async fn a_reader_sees_a_pack_grow() {
    let dir = tempfile::tempdir().unwrap();
    let writer = FsLogStore::new(dir.path());
    let reader = FsLogStore::new(dir.path());
    assert!(reader.list_parts(RUN).await.unwrap().is_empty());
    writer
        .append_part(RUN, "build", b"a\n".to_vec())
        .await
        .unwrap();
    assert_eq!(reader.list_parts(RUN).await.unwrap().len(), 1);
    for i in 0..50 {
        writer
            .append_part(RUN, "build", format!("line {i}\n").into_bytes())
            .await
            .unwrap();
        let listed = reader.list_node_parts(RUN, "build").await.unwrap();
        assert_eq!(listed.len(), i + 2);
        let last = reader
            .read_part(RUN, "build", listed.last().unwrap())
            .await
            .unwrap();
        assert_eq!(last, format!("line {i}\n").into_bytes());
    }
}

/// The supervisor delivers a crashed child's spooled parts into the run the child wrote: two
/// writers, two packs, one log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_of_one_run_keep_their_own_packs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        std::sync::Arc::new(FsLogStore::new(dir.path())),
        std::sync::Arc::new(FsLogStore::new(dir.path())),
    );
    let mut tasks = Vec::new();
    for (who, s) in [("a", a.clone()), ("b", b.clone())] {
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                s.append_part(
                    RUN,
                    &format!("job-{}", i % 10),
                    format!("{who} {i}\n").into(),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(packs(dir.path()).len(), 2);
    let reader = FsLogStore::new(dir.path());
    assert_eq!(reader.list_parts(RUN).await.unwrap().len(), 400);
    let log = read(&reader, "job-3").await;
    for who in ["a", "b"] {
        let mine: Vec<&str> = log.lines().filter(|l| l.starts_with(who)).collect();
        let want: Vec<String> = (0..200)
            .filter(|i| i % 10 == 3)
            .map(|i| format!("{who} {i}"))
            .collect();
        assert_eq!(mine, want, "each writer's lines in its order");
    }
}

/// A record cut off mid-write (a crash, or a reader faster than the writer) is not shown half:
/// the parts before it are, and it is once it is whole. A pack of an unknown version is left
/// alone, and files of older versions read as before.
#[tokio::test]
async fn a_torn_record_waits_and_foreign_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join(RUN);
    std::fs::create_dir_all(run_dir.join("old")).unwrap();
    let (p1, p2, p3) = (next_part_name(), next_part_name(), next_part_name());
    std::fs::write(run_dir.join("old").join(&p1), "from a file\n").unwrap();
    std::fs::write(
        run_dir.join(".parts-1-0.pack"),
        "{\"sparkwing_log_pack\":2}\n{\"node\":\"x\",\"part\":\"p\",\"len\":2}\nx\n",
    )
    .unwrap();
    let path = run_dir.join(".parts-2-0.pack");
    let mut pack = std::fs::File::create(&path).unwrap();
    let rec = |part: &str, data: &str| {
        format!(
            "{{\"node\":\"old\",\"part\":\"{part}\",\"len\":{}}}\n{data}",
            data.len()
        )
    };
    let second = rec(&p3, "third\n");
    write!(
        pack,
        "{{\"sparkwing_log_pack\":1}}\n{}",
        rec(&p2, "second\n")
    )
    .unwrap();
    pack.write_all(&second.as_bytes()[..second.len() - 3])
        .unwrap();
    pack.flush().unwrap();

    let s = FsLogStore::new(dir.path());
    assert_eq!(read(&s, "old").await, "from a file\nsecond\n");
    assert_eq!(s.list_nodes(RUN).await.unwrap(), ["old"]);
    pack.write_all(&second.as_bytes()[second.len() - 3..])
        .unwrap();
    pack.flush().unwrap();
    assert_eq!(read(&s, "old").await, "from a file\nsecond\nthird\n");
    assert_eq!(s.read_part(RUN, "old", &p3).await.unwrap(), b"third\n");
}

/// A run deleted by another process (a cleanup) is gone for a reader that had indexed it, and a
/// run written again under the same id shows only what was written since.
#[tokio::test]
async fn a_run_deleted_elsewhere_is_not_read_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = (FsLogStore::new(dir.path()), FsLogStore::new(dir.path()));
    let old = writer
        .append_part(RUN, "build", b"old\n".to_vec())
        .await
        .unwrap();
    assert_eq!(read(&reader, "build").await, "old\n");
    FsLogStore::new(dir.path()).delete_run(RUN).await.unwrap();
    assert!(reader.list_parts(RUN).await.unwrap().is_empty());
    assert_eq!(reader.read_part(RUN, "build", &old).await.unwrap(), b"");
    writer
        .append_part(RUN, "build", b"new\n".to_vec())
        .await
        .unwrap();
    assert_eq!(read(&reader, "build").await, "new\n");
}

/// A pack left by an earlier process that had this process's pid (the supervisor delivering a
/// spool days later) is neither appended to nor in the way.
#[tokio::test]
async fn a_pack_of_an_earlier_process_with_the_same_pid_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join(RUN);
    std::fs::create_dir_all(&run_dir).unwrap();
    let pid = std::process::id();
    let (p1, p2) = (next_part_name(), next_part_name());
    let earlier = format!(
        "{{\"sparkwing_log_pack\":1}}\n{{\"node\":\"a\",\"part\":\"{p1}\",\"len\":4}}\nold\n"
    );
    // Every name this process is about to try (the other tests here make a few packs each).
    for n in 0..100 {
        std::fs::write(run_dir.join(format!(".parts-{pid}-{n}.pack")), &earlier).unwrap();
    }
    let s = FsLogStore::new(dir.path());
    s.put_part(RUN, "a", &p2, b"new\n".to_vec()).await.unwrap();
    assert_eq!(read(&s, "a").await, "old\nnew\n");
    assert_eq!(packs(dir.path()).len(), 101);
    for n in 0..100 {
        let kept = std::fs::read_to_string(run_dir.join(format!(".parts-{pid}-{n}.pack"))).unwrap();
        assert_eq!(kept, earlier, "pack {n} untouched");
    }
}
