//! The local cache with real files, real locks and real processes.

use sparkwing_bincache::{
    BINARY_FILE, CacheError, CacheKey, GetError, Limits, LocalCache, Notice, PruneOpts, Source,
    render_info, render_prune,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

fn key(n: u32) -> CacheKey {
    CacheKey {
        key: format!("{n:032x}"),
        inputs: vec![],
        roots: vec![],
    }
}

fn unlimited() -> Limits {
    Limits {
        max_bytes: None,
        max_entries: None,
        lock_timeout: Duration::from_secs(60),
    }
}

/// A materializer leaving a shell script that prints `text`.
fn script(text: &'static str) -> impl FnOnce(&Path) -> Result<Source, std::io::Error> {
    move |staging| {
        fs::write(
            staging.join(BINARY_FILE),
            format!("#!/bin/sh\necho {text}\n"),
        )?;
        Ok(Source::Compiled)
    }
}

/// Runs a cached executable. A sibling test thread forking while one of these scripts was open
/// for writing holds that descriptor until its exec, so an exec can briefly fail with ETXTBSY;
/// that is a property of a multi-threaded test process, not of the cache.
fn run(bin: &Path) -> String {
    for _ in 0..50 {
        match Command::new(bin).output() {
            Ok(out) => {
                assert!(out.status.success());
                return String::from_utf8(out.stdout).unwrap().trim().to_string();
            }
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("run {}: {e}", bin.display()),
        }
    }
    panic!("{} stayed busy", bin.display())
}

fn notices(cache: LocalCache) -> (LocalCache, Arc<Mutex<Vec<Notice>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let cache = cache.with_reporter(move |n| s.lock().unwrap().push(n.clone()));
    (cache, seen)
}

fn set_last_used(cache: &LocalCache, k: &CacheKey, secs_ago: u64) {
    let used = cache.root().join("entries").join(&k.key).join("used");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(used)
        .unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
        .unwrap();
}

#[test]
fn miss_builds_then_hit_reuses_without_materializing() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::open(tmp.path().join("v1"), unlimited()).unwrap();
    let k = key(1);
    let (lease, src) = cache.get_or_materialize(&k, script("first")).unwrap();
    assert_eq!(src, Source::Compiled);
    assert_eq!(run(lease.binary()), "first");
    let mode = fs::metadata(lease.binary()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        lease.entry_dir(),
        tmp.path().join("v1/entries").join(&k.key)
    );
    drop(lease);

    let (lease, src) = cache
        .get_or_materialize(&k, |_| -> Result<Source, std::io::Error> {
            panic!("a hit must not materialize")
        })
        .unwrap();
    assert_eq!(src, Source::Cached);
    assert_eq!(run(lease.binary()), "first");
    assert!(cache.lookup(&k.key).unwrap().is_some());
    assert!(cache.lookup(&key(2).key).unwrap().is_none());
    // Nothing is left in staging.
    assert_eq!(
        fs::read_dir(tmp.path().join("v1/staging")).unwrap().count(),
        0
    );
}

#[test]
fn meta_records_format_inputs_and_blake3() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::open(tmp.path().join("v1"), unlimited()).unwrap();
    let mut k = key(3);
    k.inputs.push(sparkwing_bincache::KeyInput {
        label: "sdk".into(),
        digest: "abcdefabcdef".into(),
        detail: "0.1.0".into(),
    });
    let (lease, _) = cache.get_or_materialize(&k, script("m")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(lease.entry_dir().join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["format_version"], 1);
    assert_eq!(meta["key"], k.key.as_str());
    assert_eq!(meta["source"], "compiled");
    assert_eq!(meta["inputs"][0]["label"], "sdk");
    let bin = fs::read(lease.binary()).unwrap();
    assert_eq!(meta["binary_blake3"], blake3::hash(&bin).to_hex().as_str());
    assert_eq!(meta["binary_size"], bin.len());
}

#[test]
fn corrupt_entries_are_rebuilt_never_executed() {
    type Corrupt = fn(&Path);
    let cases: [(&str, Corrupt); 4] = [
        ("binary missing", |d| {
            fs::remove_file(d.join(BINARY_FILE)).unwrap()
        }),
        ("bad meta", |d| {
            fs::write(d.join("meta.json"), "{not json").unwrap()
        }),
        // Same length, different bytes: only the hash can tell.
        ("tampered binary", |d| {
            let p = d.join(BINARY_FILE);
            let text = fs::read_to_string(&p).unwrap().replace("good", "evil");
            fs::write(&p, text).unwrap();
        }),
        ("truncated binary", |d| {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(d.join(BINARY_FILE))
                .unwrap();
            f.set_len(3).unwrap();
        }),
    ];
    for (i, (what, corrupt)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, seen) = notices(LocalCache::open(tmp.path().join("v1"), unlimited()).unwrap());
        let k = key(10 + i as u32);
        let (lease, _) = cache.get_or_materialize(&k, script("good")).unwrap();
        let dir = lease.entry_dir().to_path_buf();
        drop(lease);
        corrupt(&dir);

        assert!(
            cache.lookup(&k.key).unwrap().is_none(),
            "{what}: lookup must miss"
        );
        let (lease, src) = cache.get_or_materialize(&k, script("rebuilt")).unwrap();
        assert_eq!(src, Source::Compiled, "{what}");
        assert_eq!(run(lease.binary()), "rebuilt", "{what}");
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter()
                .any(|n| matches!(n, Notice::CorruptEntry { key, .. } if key == &k.key)),
            "{what}: expected a warning, got {seen:?}"
        );
        assert!(
            seen[0].to_string().starts_with("warning: cached pipeline"),
            "{}",
            seen[0]
        );
    }
}

#[test]
fn failed_materialize_leaves_no_entry_and_no_staging() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::open(tmp.path().join("v1"), unlimited()).unwrap();
    let k = key(20);
    let err = cache
        .get_or_materialize(&k, |staging| {
            fs::write(staging.join("partial"), "x").unwrap();
            Err::<Source, _>("compile error")
        })
        .unwrap_err();
    assert!(matches!(err, GetError::Materialize("compile error")));
    assert!(!tmp.path().join("v1/entries").join(&k.key).exists());
    assert_eq!(
        fs::read_dir(tmp.path().join("v1/staging")).unwrap().count(),
        0
    );

    let err = cache
        .get_or_materialize(&k, |_| Ok::<_, std::io::Error>(Source::Compiled))
        .unwrap_err();
    let msg = match &err {
        GetError::Cache(e) => sparkwing_contract::hint::with_hint(e),
        other => other.to_string(),
    };
    assert!(
        matches!(err, GetError::Cache(CacheError::NoBinary { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("is missing") && msg.contains("<staging>/pipeline"),
        "{msg}"
    );
}

#[test]
fn bad_keys_are_refused_before_any_file_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::open(tmp.path().join("v1"), unlimited()).unwrap();
    for bad in ["../../etc", "ABCDEF0123456789", "short", ""] {
        let k = CacheKey {
            key: bad.into(),
            inputs: vec![],
            roots: vec![],
        };
        let err = cache.get_or_materialize(&k, script("x")).unwrap_err();
        assert!(
            matches!(err, GetError::Cache(CacheError::BadKey(_))),
            "{bad}"
        );
    }
}

/// Several materializers racing on one key, each with its own cache handle (own descriptors,
/// so flock treats them like separate processes): exactly one builds, the others wait and hit.
#[test]
fn concurrent_handles_build_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("v1");
    let builds = Arc::new(AtomicUsize::new(0));
    let waits = Arc::new(AtomicUsize::new(0));
    let k = key(30);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (root, builds, waits, k) = (root.clone(), builds.clone(), waits.clone(), k.clone());
            std::thread::spawn(move || {
                let w = waits.clone();
                let cache = LocalCache::open(root, unlimited())
                    .unwrap()
                    .with_reporter(move |n| {
                        if matches!(n, Notice::Waiting { .. }) {
                            w.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                let (lease, src) = cache
                    .get_or_materialize(&k, |staging| {
                        builds.fetch_add(1, Ordering::SeqCst);
                        // Finish only once the three others are visibly waiting for us.
                        let deadline = std::time::Instant::now() + Duration::from_secs(20);
                        while waits.load(Ordering::SeqCst) < 3
                            && std::time::Instant::now() < deadline
                        {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        script("once")(staging)
                    })
                    .unwrap();
                (run(lease.binary()), src)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(builds.load(Ordering::SeqCst), 1, "built more than once");
    assert!(results.iter().all(|(out, _)| out == "once"));
    assert_eq!(
        results
            .iter()
            .filter(|(_, s)| *s == Source::Compiled)
            .count(),
        1
    );
    assert_eq!(
        waits.load(Ordering::SeqCst),
        3,
        "every waiter says whose build it waits for"
    );
}

/// Run by [`separate_processes_build_once`] in child processes of this test binary.
#[test]
fn child_process_worker() {
    let Ok(root) = std::env::var("BINCACHE_TEST_ROOT") else {
        return;
    };
    let marker = PathBuf::from(std::env::var("BINCACHE_TEST_MARKER").unwrap());
    // Start together, so the others are waiting while one builds.
    let go = marker.with_extension("go");
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let cache = LocalCache::open(PathBuf::from(root), unlimited()).unwrap();
    let (lease, src) = cache
        .get_or_materialize(&key(40), |staging| {
            // Append-only marker: one line per build, across processes.
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&marker)?;
            std::io::Write::write_all(&mut f, b"built\n")?;
            std::thread::sleep(Duration::from_millis(1000));
            script("cross-process")(staging)
        })
        .unwrap();
    println!("RESULT {} {}", src.as_str(), run(lease.binary()));
}

#[test]
fn separate_processes_build_once() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("builds.txt");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("BINCACHE_TEST_ROOT", tmp.path().join("v1"))
                .env("BINCACHE_TEST_MARKER", &marker)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    fs::write(marker.with_extension("go"), "").unwrap();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut sources = Vec::new();
    let mut waiting_lines = 0;
    for o in &outputs {
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "child failed: {stdout}\n{stderr}");
        // The harness may print its own prefix on the same line.
        let line = stdout
            .lines()
            .find_map(|l| l.find("RESULT ").map(|i| &l[i..]))
            .unwrap_or_else(|| panic!("no result in {stdout}"));
        assert!(line.ends_with(" cross-process"), "{line}");
        sources.push(line.split(' ').nth(1).unwrap().to_string());
        waiting_lines += stderr
            .lines()
            .filter(|l| l.contains("sparkwing: waiting for pid "))
            .count();
    }
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "built\n",
        "exactly one build"
    );
    sources.sort();
    assert_eq!(sources, ["cached", "cached", "compiled"]);
    assert_eq!(
        waiting_lines, 2,
        "both waiters print whose build they wait for"
    );
}

#[test]
fn lock_timeout_names_the_lock_and_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("v1");
    let k = key(50);
    let limits = Limits {
        lock_timeout: Duration::from_millis(300),
        ..unlimited()
    };
    let holder = LocalCache::open(root.clone(), unlimited()).unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let k2 = k.clone();
    let t = std::thread::spawn(move || {
        holder
            .get_or_materialize(&k2, |staging| {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                script("slow")(staging)
            })
            .map(|_| ())
    });
    started_rx.recv().unwrap();
    let (waiter, seen) = notices(LocalCache::open(root, limits).unwrap());
    let err = waiter.get_or_materialize(&k, script("x")).unwrap_err();
    let msg = match &err {
        GetError::Cache(e) => sparkwing_contract::hint::with_hint(e),
        other => other.to_string(),
    };
    assert!(
        matches!(err, GetError::Cache(CacheError::LockTimeout { .. })),
        "{msg}"
    );
    assert!(msg.contains(&format!("locks/{}.build`", k.key)), "{msg}");
    assert!(msg.contains("`SPARKWING_CACHE_LOCK_TIMEOUT`"), "{msg}");
    assert!(msg.contains("held by pid "), "{msg}");
    assert!(matches!(seen.lock().unwrap()[0], Notice::Waiting { .. }));
    release_tx.send(()).unwrap();
    t.join().unwrap().unwrap();
}

#[test]
fn prune_to_entry_limit_removes_least_recently_used_but_never_a_leased_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("v1");
    let filler = LocalCache::open(root.clone(), unlimited()).unwrap();
    for (n, ago) in [(60, 400), (61, 300), (62, 200)] {
        drop(filler.get_or_materialize(&key(n), script("e")).unwrap());
        set_last_used(&filler, &key(n), ago);
    }
    // The oldest is running right now.
    let running = filler.lookup(&key(60).key).unwrap().unwrap();
    set_last_used(&filler, &key(60), 400);

    let limits = Limits {
        max_entries: Some(2),
        ..unlimited()
    };
    let cache = LocalCache::open(root.clone(), limits).unwrap();
    // Publishing a fourth entry prunes down to two: 60 is leased, so 61 and 62 go.
    let (fresh, _) = cache.get_or_materialize(&key(63), script("new")).unwrap();
    let mut keys: Vec<String> = cache
        .info()
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.key)
        .collect();
    keys.sort();
    assert_eq!(keys, [key(60).key, key(63).key]);
    assert_eq!(run(running.binary()), "e", "a leased binary stays runnable");
    drop(running);
    drop(fresh);

    let report = cache.prune(PruneOpts::All).unwrap();
    assert_eq!(report.removed.len(), 2);
    assert_eq!(report.remaining_entries, 0);
    assert!(render_prune(&report).starts_with("removed 2 entries"));
    // Lock files of removed keys go too.
    assert_eq!(
        fs::read_dir(root.join("locks")).unwrap().count(),
        1,
        "only prune.lock stays"
    );
}

#[test]
fn prune_to_byte_limit_and_by_age() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("v1");
    let cache = LocalCache::open(root.clone(), unlimited()).unwrap();
    for (n, ago) in [(70, 5000), (71, 4000), (72, 10)] {
        drop(
            cache
                .get_or_materialize(&key(n), |s| {
                    fs::write(s.join(BINARY_FILE), vec![b'#'; 10_000])?;
                    Ok::<_, std::io::Error>(Source::Compiled)
                })
                .unwrap(),
        );
        set_last_used(&cache, &key(n), ago);
    }
    let report = cache
        .prune(PruneOpts::OlderThan(Duration::from_secs(4500)))
        .unwrap();
    assert_eq!(
        report
            .removed
            .iter()
            .map(|r| r.key.clone())
            .collect::<Vec<_>>(),
        [key(70).key]
    );

    let info = cache.info().unwrap();
    let one_entry = info.entries[0].bytes;
    assert!(one_entry >= 10_000, "{one_entry}");
    let limited = LocalCache::open(
        root,
        Limits {
            max_bytes: Some(one_entry + 10),
            ..unlimited()
        },
    )
    .unwrap();
    let report = limited.prune(PruneOpts::ToLimits).unwrap();
    assert_eq!(
        report
            .removed
            .iter()
            .map(|r| r.key.clone())
            .collect::<Vec<_>>(),
        [key(71).key]
    );
    assert_eq!(report.remaining_entries, 1);
    assert!(report.remaining_bytes <= one_entry + 10);
}

#[test]
fn prune_clears_abandoned_staging_but_not_a_live_build() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("v1");
    let cache = LocalCache::open(root.clone(), unlimited()).unwrap();
    // A crashed build: its staging dir remains, its lock is free.
    let dead = root.join("staging").join(format!("{}.999.1", key(80).key));
    fs::create_dir_all(&dead).unwrap();
    fs::write(dead.join(BINARY_FILE), "partial").unwrap();

    let (in_build_tx, in_build_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let builder = LocalCache::open(root.clone(), unlimited()).unwrap();
    let t = std::thread::spawn(move || {
        builder
            .get_or_materialize(&key(81), |s| {
                in_build_tx.send(s.to_path_buf()).unwrap();
                go_rx.recv().unwrap();
                script("live")(s)
            })
            .map(|(l, _)| run(l.binary()))
    });
    let live = in_build_rx.recv().unwrap();
    let report = cache.prune(PruneOpts::All).unwrap();
    assert_eq!(report.stale_staging_removed, 1);
    assert!(!dead.exists());
    assert!(live.exists(), "a build in progress keeps its staging dir");
    go_tx.send(()).unwrap();
    assert_eq!(t.join().unwrap().unwrap(), "live");
}

#[test]
fn info_lists_entries_most_recent_first_with_use_and_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = LocalCache::open(tmp.path().join("v1"), Limits::default()).unwrap();
    for (n, ago) in [(90, 100), (91, 10), (92, 50)] {
        drop(cache.get_or_materialize(&key(n), script("i")).unwrap());
        set_last_used(&cache, &key(n), ago);
    }
    let lease = cache.lookup(&key(90).key).unwrap().unwrap();
    set_last_used(&cache, &key(90), 100);
    fs::remove_file(
        tmp.path()
            .join("v1/entries")
            .join(key(92).key)
            .join(BINARY_FILE),
    )
    .unwrap();

    let info = cache.info().unwrap();
    let keys: Vec<_> = info.entries.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys, [key(91).key, key(92).key, key(90).key]);
    assert!(info.entries[2].in_use);
    assert!(!info.entries[0].in_use);
    assert_eq!(info.entries[1].problem.as_deref(), Some("binary missing"));
    assert_eq!(
        info.total_bytes,
        info.entries.iter().map(|e| e.bytes).sum::<u64>()
    );
    let text = render_info(&info);
    assert!(
        text.contains("entries: 3 of 20, size:") && text.contains("of 2.0 GiB"),
        "{text}"
    );
    assert!(
        text.contains("in use") && text.contains("unusable: binary missing"),
        "{text}"
    );
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["limits"]["max_entries"], 20);
    assert_eq!(json["entries"][0]["source"], "compiled");
    drop(lease);
}
