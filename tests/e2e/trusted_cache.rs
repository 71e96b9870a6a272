//! The pipeline binary cache runs only the right code from a trusted publisher — or nothing.
//! Each test reproduces a way the cache could be made to run the wrong code, through the real
//! CLI, real cargo and the real S3 test server.

use crate::support::{Run, World, block, bucket_cache, bucket_world, fixture_repo, git, scratch};
use sparkwing_storage::ArtifactStore;
use sparkwing_storage_testing::TestS3;
use std::path::Path;

/// Sets every file under `dir` an hour back, as an older checkout or a restore would.
fn age_tree(dir: &Path) {
    let out = std::process::Command::new("find")
        .arg(dir)
        .args(["-exec", "touch", "-h", "-d", "1 hour ago", "{}", "+"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn scaffold(name: &str) -> std::path::PathBuf {
    let repo = scratch().join(name);
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    repo
}

/// The key `cache explain` reports in `w`'s repository.
fn key_of(w: &World) -> String {
    let r = w.run(&["cache", "explain", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["key"].as_str().unwrap().to_string()
}

/// Two repositories on one machine share the home and the cargo target directory, and every
/// scaffold names its package alike. The second one's files being older than the first one's
/// build must not give it the first one's binary; and a file git ignores still counts.
#[test]
fn two_projects_in_one_home_get_their_own_binaries_whatever_the_file_times() {
    let repo_a = scaffold("two-projects-a");
    let repo_b = scaffold("two-projects-b");
    let a = World::new(repo_a.clone());
    let mut b = World::new(repo_b.clone());
    b.home = a.home.clone();
    for w in [&a, &b] {
        let r = w.run(&["pipeline", "new", "--name", "ci"]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let pipeline_b = repo_b.join(".sparkwing/src/pipelines/ci.rs");
    let text = std::fs::read_to_string(&pipeline_b).unwrap();
    assert!(text.contains("hello from ci"), "{text}");
    std::fs::write(
        &pipeline_b,
        text.replace("hello from ci", "hello from project B"),
    )
    .unwrap();
    // B's lockfile first, so that ageing covers every file of its package.
    let r = b.run(&["cache", "explain"]);
    assert_eq!(r.code, 0, "{}", r.all());

    let r = a.run(&["run", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("hello from ci"), "{}", r.all());
    age_tree(&repo_b.join(".sparkwing"));
    let r = b.run(&["run", "ci"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("hello from project B") && !r.stdout.contains("hello from ci"),
        "B ran A's binary:\n{}",
        r.all()
    );
    // And each key's entry holds its own project's binary: both run again from the cache.
    let r = a.run(&["run", "ci"]);
    assert!(r.stdout.contains("hello from ci"), "{}", r.all());
    let r = b.run(&["run", "ci"]);
    assert!(r.stdout.contains("hello from project B"), "{}", r.all());

    // A `build.rs` that only this machine's exclude rules ignore still changes the key.
    let before = key_of(&b);
    std::fs::create_dir_all(repo_b.join(".git/info")).unwrap();
    std::fs::write(repo_b.join(".git/info/exclude"), ".sparkwing/build.rs\n").unwrap();
    std::fs::write(repo_b.join(".sparkwing/build.rs"), "fn main() {}\n").unwrap();
    assert_ne!(
        before,
        key_of(&b),
        "an ignored build.rs must change the key"
    );
}

/// A world whose `ci` profile points at `prefix` of the test bucket, trusting `trusted` minisign
/// keys (none: an unsigned cache).
fn ci_world(s3: &TestS3, prefix: &str, repo: &Path, trusted: Option<&str>) -> World {
    let trust = trusted
        .map(|k| format!(", trusted_keys: [{k}]"))
        .unwrap_or_default();
    bucket_world(s3, prefix, repo, &trust)
}

/// A machine with no Rust toolchain at all: only a verified remote binary can run there.
fn without_toolchain(w: &mut World) {
    w.set("PATH", "/usr/local/bin:/usr/bin:/bin")
        .set("SPARKWING_CARGO", "/nonexistent/cargo");
}

fn run_ci(w: &World, pipeline: &str, extra: &[&str]) -> Run {
    let mut args = vec!["run", pipeline, "--sw-mode=ci-embedded", "--profile", "ci"];
    args.extend_from_slice(extra);
    w.run(&args)
}

/// Findings 2 and 4 and signed publishing, against the S3 test server:
/// - an oversized object under a small manifest is abandoned early and repaired;
/// - a binary planted without a manifest is never vouched for nor executed, and is replaced;
/// - with trusted keys, a signed publish runs on a fresh machine with only the public key;
///   an unsigned entry is a miss with a one-line reason, and a machine without the private key
///   never publishes;
/// - a pipeline can never save an artifact under `bin/`.
#[test]
fn the_remote_cache_runs_only_verified_binaries_from_trusted_publishers() {
    use sparkwing_storage_testing::Proxy;
    let s3 = TestS3::from_env();
    let repo = fixture_repo("sample");
    // The key of this source (the same on every machine): explain it once.
    let probe = World::new(repo.clone());
    let key = key_of(&probe);
    let bin = format!("bin/{key}");
    let manifest = format!("bin/{key}.json");

    // --- 1. An object far larger than its manifest says, behind a byte-counting proxy.
    let prefix = s3.unique_prefix("e2e-trust-big");
    let cache = bucket_cache(&s3, &prefix);
    block(cache.put(&bin, vec![b'x'; 96 << 20])).unwrap();
    let small = serde_json::json!({
        "format_version": 1, "key": key, "blake3": "00", "size": 10,
        "target": "x86_64-unknown-linux-gnu", "sdk_version": "0.1.0",
    });
    block(cache.put(&manifest, small.to_string().into_bytes())).unwrap();
    let upstream = s3
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = Proxy::start(upstream);
    let mut m1 = ci_world(&s3, &prefix, &repo, None);
    m1.set("SPARKWING_S3_ENDPOINT", &proxy.endpoint());
    let r = run_ci(&m1, "hello", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("larger than the 10 bytes its manifest says; the download was abandoned"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.contains("replaced the remote cache's entry"),
        "{}",
        r.all()
    );
    // The client stops after one read buffer past the manifest's size; what the proxy forwarded
    // also holds what loopback socket buffers took in before the connection was dropped.
    let down = proxy.counts().bytes_down;
    assert!(
        down < 32 << 20,
        "{down} bytes came down for a 96 MiB object whose manifest says 10 bytes"
    );
    // Repaired: the next fresh machine gets a verified binary, with no toolchain.
    let mut m1b = ci_world(&s3, &prefix, &repo, None);
    without_toolchain(&mut m1b);
    let r = run_ci(&m1b, "hello", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("from the remote cache"), "{}", r.all());

    // --- 2. A signed cache where a reader planted `bin/<key>` without a manifest.
    let keys = scratch().join("cache-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let r = probe.run(&[
        "cache",
        "keygen",
        "--out",
        keys.join("team.key").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let secret = std::fs::read_to_string(keys.join("team.key")).unwrap();
    let public = std::fs::read_to_string(keys.join("team.key.pub"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(r.stdout.contains(&public), "{}", r.all());
    assert!(
        !r.stdout.contains(secret.lines().nth(1).unwrap()),
        "keygen printed the secret"
    );
    let again = probe.run(&[
        "cache",
        "keygen",
        "--out",
        keys.join("team.key").to_str().unwrap(),
    ]);
    assert_eq!(again.code, 2, "never overwrites a key: {}", again.all());

    let prefix = s3.unique_prefix("e2e-trust-signed");
    let cache = bucket_cache(&s3, &prefix);
    block(cache.put(&bin, b"#!/bin/sh\necho planted; exit 0\n".to_vec())).unwrap();
    let mut m2 = ci_world(&s3, &prefix, &repo, Some(&public));
    m2.set("SPARKWING_CACHE_SIGNING_KEY", &secret);
    let r = run_ci(&m2, "hello", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains("planted"), "{}", r.all());
    assert!(
        r.stderr.contains("replaced the remote cache's entry")
            && r.stderr.contains("signed by key"),
        "{}",
        r.all()
    );
    assert!(
        !r.all().contains(secret.lines().nth(1).unwrap()),
        "secret in output"
    );
    let signed_raw = block(cache.get(&manifest)).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&signed_raw).unwrap();
    assert!(
        m["signature"]
            .as_str()
            .is_some_and(|s| s.contains("trusted comment")),
        "{m}"
    );

    // A fresh machine with only the public key runs the signed binary.
    let mut m3 = ci_world(&s3, &prefix, &repo, Some(&public));
    without_toolchain(&mut m3);
    let r = run_ci(&m3, "hello", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("from the remote cache"), "{}", r.all());
    assert!(r.stdout.contains("testing version 1.2.3"), "{}", r.all());
    // A reader job cannot plant a binary through the artifact API.
    let r = run_ci(&m3, "plant", &["--sw-no-cache-write", "--key", &key]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("reserved for sparkwing"), "{}", r.all());
    assert_eq!(
        block(cache.get(&manifest)).unwrap(),
        signed_raw,
        "the signed entry is untouched"
    );

    // --- 3. An unsigned entry in a signed cache, and a machine without the private key.
    let prefix3 = s3.unique_prefix("e2e-trust-unsigned");
    let cache3 = bucket_cache(&s3, &prefix3);
    let mut unsigned = m.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    block(cache3.put(&bin, block(cache.get(&bin)).unwrap())).unwrap();
    block(cache3.put(&manifest, unsigned.to_string().into_bytes())).unwrap();
    let m5 = ci_world(&s3, &prefix3, &repo, Some(&public));
    let r = run_ci(&m5, "hello", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let reason: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("was rejected and is never executed"))
        .collect();
    assert_eq!(reason.len(), 1, "one line of reason: {}", r.all());
    assert!(reason[0].contains("not signed"), "{}", reason[0]);
    assert!(
        r.stderr.contains("not publishing") && r.stderr.contains("no signing key"),
        "{}",
        r.all()
    );
    assert_eq!(
        block(cache3.get(&manifest)).unwrap(),
        unsigned.to_string().into_bytes(),
        "a machine without the private key wrote nothing"
    );
}
