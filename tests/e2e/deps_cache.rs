//! Compiled dependency sets through the S3 test server: a machine that misses the binary of a new
//! key restores the dependencies another machine compiled, and compiles only the pipeline
//! package — at another checkout path, with another `SPARKWING_HOME` and target directory.

use crate::support::{World, block, bucket_cache, bucket_world, fixture_repo};
use sparkwing_storage::ArtifactStore;
use sparkwing_storage_testing::TestS3;

/// The packages cargo printed as `Compiling <name> v…` (cargo's status lines, any verbosity).
fn compiled(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The dependency set key the run printed in `==> … dependency set <key> …`.
fn deps_key_in(stderr: &str, verb: &str) -> Option<String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("==> {verb} dependency set ")))?;
    line.split_whitespace().nth(4).map(str::to_string)
}

/// The `==>` lines of a run: what it did, with sizes and times.
fn milestones(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.starts_with("==>"))
        .collect::<Vec<_>>()
        .join("\n  ")
}

fn run_ci(w: &World) -> crate::support::Run {
    w.run(&["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"])
}

/// Machine A builds and publishes the binary and the dependency set; the pipeline source
/// changes; machine B (fresh home, fresh target directory, another checkout path) restores the
/// dependency set, compiles only the pipeline package (cargo's verbose output says every
/// dependency is fresh), runs the new code and publishes the new binary. A tampered dependency
/// set is refused and the build compiles the dependencies instead.
#[test]
fn a_fresh_machine_restores_the_dependency_set_and_compiles_only_the_pipeline() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("e2e-deps");

    // --- Machine A: the suite's shared target directory (its dependencies may already be
    // compiled there; what matters is what it publishes).
    let repo_a = fixture_repo("sample");
    let mut a = bucket_world(&s3, &prefix, &repo_a, "");
    a.set("SPARKWING_NO_DEPS_CACHE", "0");
    let r = run_ci(&a);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("published pipeline binary"),
        "{}",
        r.all()
    );
    let shown = deps_key_in(&r.stderr, "published")
        .unwrap_or_else(|| panic!("machine A published no dependency set:\n{}", r.all()));
    eprintln!("machine A: {}", milestones(&r.stderr));
    let cache = bucket_cache(&s3, &prefix);
    let listed = block(cache.list("bin/deps/")).unwrap();
    let deps_key = listed
        .iter()
        .find_map(|k| k.strip_prefix("bin/deps/")?.strip_suffix(".json"))
        .unwrap_or_else(|| panic!("no manifest under bin/deps/: {listed:?}"))
        .to_string();
    assert!(deps_key.starts_with(&shown), "{shown} vs {listed:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&block(cache.get(&format!("bin/deps/{deps_key}.json"))).unwrap())
            .unwrap();
    assert_eq!(manifest["kind"], "deps", "{manifest}");
    assert_eq!(manifest["key"], deps_key.as_str(), "{manifest}");
    let size = manifest["size"].as_u64().unwrap();
    assert!(size > 1 << 20, "a dependency set of {size} bytes");

    // --- The pipeline source changes, in a checkout at another path.
    let repo_b = fixture_repo("sample");
    assert_ne!(repo_a, repo_b);
    std::fs::copy(
        repo_a.join(".sparkwing/Cargo.lock"),
        repo_b.join(".sparkwing/Cargo.lock"),
    )
    .unwrap();
    let main_rs = repo_b.join(".sparkwing/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    assert!(text.contains("echo building"), "{text}");
    std::fs::write(
        &main_rs,
        text.replace("echo building", "echo building on machine B"),
    )
    .unwrap();

    // --- A tampered dependency set is never unpacked: the run says so and still works. (A
    // throw-away copy under another prefix, so the real one stays intact.)
    let bad_prefix = s3.unique_prefix("e2e-deps-bad");
    let bad_cache = bucket_cache(&s3, &bad_prefix);
    let mut archive = block(cache.get(&format!("bin/deps/{deps_key}"))).unwrap();
    let mid = archive.len() / 2;
    archive[mid] ^= 0xff;
    block(bad_cache.put(&format!("bin/deps/{deps_key}"), archive)).unwrap();
    block(bad_cache.put(
        &format!("bin/deps/{deps_key}.json"),
        serde_json::to_vec(&manifest).unwrap(),
    ))
    .unwrap();
    let mut tampered = bucket_world(&s3, &bad_prefix, &repo_b, "");
    let t_target = tampered.home.join("target");
    tampered
        .set("SPARKWING_NO_DEPS_CACHE", "0")
        .set("SPARKWING_CARGO_TARGET_DIR", t_target.to_str().unwrap())
        .set("SPARKWING_NO_CACHE_WRITE", "1")
        // Nothing to compile for real: the refusal happens before cargo starts.
        .set("SPARKWING_CARGO", "/nonexistent/cargo");
    let r = run_ci(&tampered);
    assert!(
        r.stderr.contains(&format!(
            "the cache's dependency set {} was rejected and is never used",
            &deps_key[..16]
        )) && r.stderr.contains("has blake3"),
        "{}",
        r.all()
    );
    assert!(
        !r.stderr.contains("==> restored dependency set"),
        "{}",
        r.all()
    );
    assert!(
        !t_target.join("release/.fingerprint").exists(),
        "a rejected archive was unpacked"
    );

    // --- Machine B: fresh home, its own fresh target directory, cargo's verbose output.
    let mut b = bucket_world(&s3, &prefix, &repo_b, "");
    let b_target = b.home.join("target");
    b.set("SPARKWING_NO_DEPS_CACHE", "0")
        .set("SPARKWING_CARGO_TARGET_DIR", b_target.to_str().unwrap())
        .set("CARGO_TERM_VERBOSE", "true");
    let r = run_ci(&b);
    assert_eq!(r.code, 0, "{}", r.all());
    eprintln!("machine B: {}", milestones(&r.stderr));
    assert!(
        r.stderr
            .contains(&format!("==> restored dependency set {}", &deps_key[..16])),
        "machine B restored nothing:\n{}",
        r.all()
    );
    let compiled = compiled(&r.stderr);
    assert_eq!(
        compiled,
        vec!["sample-pipelines".to_string()],
        "machine B compiled more than the pipeline package:\n{}",
        r.all()
    );
    for dep in ["sparkwing", "sparkwing-storage", "tokio", "serde"] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("Fresh {dep} v"))),
            "cargo did not report {dep} fresh:\n{}",
            r.all()
        );
    }
    assert!(
        r.stdout.contains("building on machine B"),
        "machine B did not run the new source:\n{}",
        r.all()
    );
    assert!(
        r.stderr.contains("published pipeline binary"),
        "{}",
        r.all()
    );
    // Same dependencies: the set is not published again.
    assert!(
        !r.stderr.contains("==> published dependency set"),
        "{}",
        r.all()
    );
    let key_b = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("==> published pipeline binary "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let listed = block(cache.list("bin/")).unwrap();
    assert!(
        listed
            .iter()
            .any(|k| k.starts_with(&format!("bin/{key_b}")) && k.ends_with(".json")),
        "{listed:?}"
    );
}

/// Seconds from starting `sparkwing run hello` to the first job's `▶ <job>` line, and the run's
/// stderr.
fn time_to_first_job(w: &World) -> (f64, String) {
    use std::io::{BufRead, BufReader, Read};
    let t0 = std::time::Instant::now();
    let mut child = w
        .cmd(&["run", "hello", "--sw-mode=ci-embedded", "--profile", "ci"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let mut first_job = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // `▶ <job>` after the run's own `▶ <pipeline> <run id> …` line.
        if line.starts_with("▶ ") && !line.contains(" run-") && first_job.is_none() {
            first_job = Some(t0.elapsed().as_secs_f64());
        }
    }
    let err = err.join().unwrap();
    assert!(child.wait().unwrap().success(), "{err}");
    (first_job.expect("a job started"), err)
}

/// A checkout of the sample whose pipeline source differs by `tag` (a new key), with `a`'s
/// lockfile.
fn changed_checkout(a: &World, tag: &str) -> std::path::PathBuf {
    let repo = fixture_repo("sample");
    std::fs::copy(
        a.repo.join(".sparkwing/Cargo.lock"),
        repo.join(".sparkwing/Cargo.lock"),
    )
    .unwrap();
    let main_rs = repo.join(".sparkwing/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(
        &main_rs,
        text.replace("echo building", &format!("echo building {tag}")),
    )
    .unwrap();
    repo
}

/// `make bench`: a fresh machine (fresh home and target directory) runs a pipeline whose key is
/// new, with the dependency set in the bucket, against the same with dependency sets turned off
/// (a cold build), in one run.
#[test]
#[ignore]
fn bench_new_key_with_dependency_set() {
    let s3 = TestS3::from_env();
    let prefix = s3.unique_prefix("bench-deps");
    let mut a = bucket_world(&s3, &prefix, &fixture_repo("sample"), "");
    a.set("SPARKWING_NO_DEPS_CACHE", "0");
    let r = run_ci(&a);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        deps_key_in(&r.stderr, "published").is_some() || r.stderr.contains("dependency set"),
        "{}",
        r.all()
    );
    let fresh = |repo: &std::path::Path, deps: bool| {
        let mut w = bucket_world(&s3, &prefix, repo, "");
        let target = w.home.join("target");
        w.set("SPARKWING_NO_DEPS_CACHE", if deps { "0" } else { "1" })
            .set("SPARKWING_CARGO_TARGET_DIR", target.to_str().unwrap())
            .set("SPARKWING_NO_CACHE_WRITE", "1");
        w
    };
    let mut with_set = Vec::new();
    for i in 0..3 {
        let w = fresh(&changed_checkout(&a, &format!("with set {i}")), true);
        let (secs, err) = time_to_first_job(&w);
        assert!(err.contains("==> restored dependency set"), "{err}");
        with_set.push(secs);
    }
    let w = fresh(&changed_checkout(&a, "cold"), false);
    let (cold, err) = time_to_first_job(&w);
    assert!(!err.contains("restored dependency set"), "{err}");
    with_set.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let median = with_set[with_set.len() / 2];
    println!(
        "new key, fresh machine: dependency set in the bucket {median:.1} s to the first job (median of 3; runs {}) vs cold build {cold:.1} s: {:.1}x faster",
        with_set
            .iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        cold / median
    );
}
