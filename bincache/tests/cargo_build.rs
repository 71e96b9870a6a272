//! Real cargo builds of a tiny pipeline package whose SDK dependency is patched in from a
//! directory that appears in no committed file.

use sparkwing_bincache::{
    BuildError, BuildProfile, BuildRequest, CacheKey, KeyRequest, KeyedRoot, binary_name,
    cargo_build, compute_key, ensure_lockfile,
};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

struct Project {
    tmp: tempfile::TempDir,
}

impl Project {
    fn new(main_rs: &str) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let p = Project { tmp };
        p.write(
            "repo/.sparkwing/Cargo.toml",
            "[package]\nname = \"pipelines\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nsparkwing-test-sdk-unpublished = \"0.1\"\n",
        );
        p.write("repo/.sparkwing/src/main.rs", main_rs);
        p.write(
            "sdk/Cargo.toml",
            "[package]\nname = \"sparkwing-test-sdk-unpublished\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        );
        p.write(
            "sdk/src/lib.rs",
            "pub fn greet() -> &'static str { \"hello from the patched sdk\" }\n",
        );
        p
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.tmp.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("repo/.sparkwing")
    }

    fn patch(&self) -> Vec<(String, PathBuf)> {
        vec![(
            "sparkwing-test-sdk-unpublished".into(),
            self.tmp.path().join("sdk"),
        )]
    }
}

fn request<'a>(
    dir: &'a Path,
    patch: &'a [(String, PathBuf)],
    target: &'a Path,
    cargo: &'a OsStr,
) -> BuildRequest<'a> {
    BuildRequest {
        sparkwing_dir: dir,
        sdk_patch: patch,
        target_dir: target,
        profile: BuildProfile::Dev,
        cargo,
        keyed_roots: &[],
        sdk_root: None,
        repo_root: None,
    }
}

fn key_of(dir: &Path) -> String {
    full_key(dir).key
}

fn full_key(dir: &Path) -> CacheKey {
    let env = |n: &str| std::env::var(n).ok();
    compute_key(&KeyRequest {
        sparkwing_dir: dir,
        sdk_version: "0.1.0",
        target: "x86_64-unknown-linux-gnu",
        profile: BuildProfile::Dev,
        env: &env,
    })
    .unwrap()
}

/// The whole first-run path: lockfile, key, build, copy — and then a key that does not move.
#[test]
fn lockfile_then_build_then_stable_key() {
    let p =
        Project::new("fn main() { println!(\"{}\", sparkwing_test_sdk_unpublished::greet()); }\n");
    let patch = p.patch();
    let target = p.tmp.path().join("shared-target");
    let dir = p.dir();
    let req = request(&dir, &patch, &target, OsStr::new("cargo"));

    assert!(ensure_lockfile(&req, b"").unwrap(), "creates the lockfile");
    let lock = fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    assert!(lock.contains("sparkwing-test-sdk-unpublished"), "{lock}");
    assert!(
        !lock.contains(p.tmp.path().to_str().unwrap()),
        "no machine path in the lockfile:\n{lock}"
    );
    assert!(
        !ensure_lockfile(&req, b"garbage").unwrap(),
        "an existing lockfile is kept"
    );
    assert_eq!(fs::read_to_string(dir.join("Cargo.lock")).unwrap(), lock);

    let before = key_of(&dir);
    let out = p.tmp.path().join("staged-pipeline");
    let report = cargo_build(&req, &out).unwrap();
    assert_eq!(report.binary_name, "pipelines");
    assert!(!report.lockfile_changed);
    let run = std::process::Command::new(&out).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello from the patched sdk"
    );
    assert!(target.join(".sparkwing-build.lock").exists());
    assert!(
        !dir.join("target").exists(),
        "the shared target dir is used"
    );
    assert_eq!(before, key_of(&dir), "the build must not change the key");
}

#[test]
fn failed_build_reports_the_command_and_status() {
    let p = Project::new("fn main() { this is not rust }\n");
    let patch = p.patch();
    let target = p.tmp.path().join("shared-target");
    let dir = p.dir();
    let req = request(&dir, &patch, &target, OsStr::new("cargo"));
    let err = cargo_build(&req, &p.tmp.path().join("out")).unwrap_err();
    let msg = sparkwing_contract::hint::with_hint(&err);
    assert!(matches!(err, BuildError::Failed { .. }), "{msg}");
    assert!(msg.contains("`cargo build --bin pipelines"), "{msg}");
    assert!(msg.contains("exit status: 101"), "{msg}");
    assert!(!p.tmp.path().join("out").exists());
}

#[test]
fn missing_cargo_says_a_toolchain_is_needed() {
    let p = Project::new("fn main() {}\n");
    let target = p.tmp.path().join("t");
    let dir = p.dir();
    let req = request(&dir, &[], &target, OsStr::new("/nonexistent/cargo"));
    let msg = sparkwing_contract::hint::with_hint(
        &cargo_build(&req, &p.tmp.path().join("out")).unwrap_err(),
    );
    assert!(msg.contains("run `/nonexistent/cargo`: not found"), "{msg}");
    assert!(
        msg.contains("Rust toolchain") && msg.contains("remote cache hit"),
        "{msg}"
    );
    let msg = sparkwing_contract::hint::with_hint(&ensure_lockfile(&req, b"").unwrap_err());
    assert!(msg.contains("Rust toolchain"), "{msg}");
    assert!(
        !dir.join("Cargo.lock").exists(),
        "a failed attempt leaves no lockfile"
    );
}

#[test]
fn binary_name_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let w = |rel: &str, text: &str| {
        let p = d.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    w(
        "Cargo.toml",
        "[package]\nname = \"my-pipes\"\nversion = \"0.1.0\"\n",
    );
    w("src/main.rs", "fn main() {}");
    assert_eq!(binary_name(d).unwrap(), "my-pipes");

    w("src/bin/tool.rs", "fn main() {}");
    assert_eq!(
        binary_name(d).unwrap(),
        "my-pipes",
        "the package-named binary wins"
    );

    fs::remove_file(d.join("src/main.rs")).unwrap();
    assert_eq!(binary_name(d).unwrap(), "tool", "the only binary");

    w("src/bin/other.rs", "fn main() {}");
    let msg = binary_name(d).unwrap_err().to_string();
    assert!(
        msg.contains("other, tool") && msg.contains("default-run"),
        "{msg}"
    );

    w(
        "Cargo.toml",
        "[package]\nname = \"my-pipes\"\nversion = \"0.1.0\"\ndefault-run = \"other\"\n",
    );
    assert_eq!(binary_name(d).unwrap(), "other");

    w(
        "Cargo.toml",
        "[package]\nname = \"my-pipes\"\nversion = \"0.1.0\"\nautobins = false\n\n[[bin]]\nname = \"runner\"\npath = \"src/bin/tool.rs\"\n",
    );
    assert_eq!(binary_name(d).unwrap(), "runner");

    w("Cargo.toml", "[workspace]\n");
    let msg = binary_name(d).unwrap_err().to_string();
    assert!(
        msg.contains("Cargo.toml`") && msg.contains("[package]"),
        "{msg}"
    );
}

/// Sets the modification time of every file under `dir` to an hour ago (an older checkout, or
/// files restored with their times).
fn age_tree(dir: &Path) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            age_tree(&path);
        } else {
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
}

/// Two projects on one machine share the target directory and name their package alike. Cargo
/// judges freshness by file times, so a second project whose files are older than the first
/// one's build must still get its own binary, never the first one's.
#[test]
fn two_projects_in_one_target_dir_each_get_their_own_binary_whatever_the_file_times() {
    let a = Project::new("fn main() { println!(\"project A\"); }\n");
    let b = Project::new("fn main() { println!(\"project B\"); }\n");
    // One materialized SDK for both, as on a real machine (its path is named by its content).
    let patch = a.patch();
    let target = a.tmp.path().join("shared-target");
    let (dir_a, dir_b) = (a.dir(), b.dir());
    ensure_lockfile(&request(&dir_a, &patch, &target, OsStr::new("cargo")), b"").unwrap();
    ensure_lockfile(&request(&dir_b, &patch, &target, OsStr::new("cargo")), b"").unwrap();
    age_tree(&dir_b);
    let (key_a, key_b) = (full_key(&dir_a), full_key(&dir_b));
    let req_a = BuildRequest {
        keyed_roots: &key_a.roots,
        ..request(&dir_a, &patch, &target, OsStr::new("cargo"))
    };
    let req_b = BuildRequest {
        keyed_roots: &key_b.roots,
        ..request(&dir_b, &patch, &target, OsStr::new("cargo"))
    };

    let out_a = a.tmp.path().join("pipeline-a");
    cargo_build(&req_a, &out_a).unwrap();
    let out_b = b.tmp.path().join("pipeline-b");
    let report = cargo_build(&req_b, &out_b).unwrap();
    let said = |p: &Path| {
        let o = std::process::Command::new(p).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(said(&out_a), "project A");
    assert_eq!(said(&out_b), "project B", "B must never get A's binary");
    assert_eq!(
        report.recompiled_stale.len(),
        1,
        "cargo judged B fresh from A's build"
    );
    // B again, unchanged: what sparkwing compiled into the slot is these very sources, so the
    // fresh report is believed and nothing is compiled twice.
    let again = cargo_build(&req_b, &out_b).unwrap();
    assert!(
        again.recompiled_stale.is_empty(),
        "{:?}",
        again.recompiled_stale
    );
    assert_eq!(said(&out_b), "project B");
    // And back: A rebuilt after B (its files now older than B's build) is A again.
    age_tree(&dir_a);
    cargo_build(&req_a, &out_a).unwrap();
    assert_eq!(said(&out_a), "project A");
    // The same project with older contents put back under older file times is not trusted
    // either: its digest differs from what was compiled.
    fs::write(
        dir_a.join("src/main.rs"),
        "fn main() { println!(\"project A, v2\"); }\n",
    )
    .unwrap();
    let key_a2 = full_key(&dir_a);
    let req_a2 = BuildRequest {
        keyed_roots: &key_a2.roots,
        ..request(&dir_a, &patch, &target, OsStr::new("cargo"))
    };
    cargo_build(&req_a2, &out_a).unwrap();
    assert_eq!(said(&out_a), "project A, v2");
    fs::write(
        dir_a.join("src/main.rs"),
        "fn main() { println!(\"project A\"); }\n",
    )
    .unwrap();
    age_tree(&dir_a);
    let report = cargo_build(&req_a, &out_a).unwrap();
    assert_eq!(
        said(&out_a),
        "project A",
        "old contents under old times: {report:?}"
    );
}

/// A file the compiler reads inside the repository but outside `.sparkwing/` is not covered by
/// the key: the build is refused rather than cached under a key that ignores it.
#[test]
fn a_file_read_outside_the_keyed_trees_refuses_the_build() {
    let p = Project::new("fn main() { println!(\"{}\", include_str!(\"../../version.txt\")); }\n");
    p.write("repo/version.txt", "1.0\n");
    let patch = p.patch();
    let target = p.tmp.path().join("shared-target");
    let dir = p.dir();
    let roots = vec![KeyedRoot {
        path: dir.clone(),
        digest: "unused".into(),
    }];
    let repo = p.tmp.path().join("repo");
    let req = BuildRequest {
        keyed_roots: &roots,
        repo_root: Some(&repo),
        ..request(&dir, &patch, &target, OsStr::new("cargo"))
    };
    ensure_lockfile(&req, b"").unwrap();
    let out = p.tmp.path().join("out");
    let err = cargo_build(&req, &out).unwrap_err();
    let msg = sparkwing_contract::hint::with_hint(&err);
    assert!(matches!(err, BuildError::Unkeyed { .. }), "{msg}");
    assert!(
        msg.contains("version.txt`") && msg.contains("nothing was cached"),
        "{msg}"
    );
    assert!(!out.exists(), "nothing is copied out");
    // Inside `.sparkwing/` the same include is keyed and builds.
    p.write("repo/.sparkwing/version.txt", "1.0\n");
    p.write(
        "repo/.sparkwing/src/main.rs",
        "fn main() { println!(\"{}\", include_str!(\"../version.txt\")); }\n",
    );
    cargo_build(&req, &out).unwrap();
}

/// A release build of a pipeline is optimised at sparkwing's level for pipeline code unless the
/// package's manifest has a `[profile]` table of its own, which then applies as written (cargo's
/// own report of the binary's profile says which).
#[test]
fn release_builds_use_the_pipeline_profile_unless_the_manifest_sets_one() {
    let p =
        Project::new("fn main() { println!(\"{}\", sparkwing_test_sdk_unpublished::greet()); }\n");
    let patch = p.patch();
    let target = p.tmp.path().join("shared-target");
    let dir = p.dir();
    let req = BuildRequest {
        profile: BuildProfile::Release,
        ..request(&dir, &patch, &target, OsStr::new("cargo"))
    };
    ensure_lockfile(&req, b"").unwrap();
    assert!(!sparkwing_bincache::build::manifest_sets_profile(&dir));
    let report = cargo_build(&req, &p.tmp.path().join("a")).unwrap();
    let ours = sparkwing_bincache::build::PIPELINE_PROFILE
        .iter()
        .find(|(k, _)| *k == "opt-level")
        .map(|(_, v)| v.to_string());
    assert_eq!(report.opt_level, ours);

    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        format!("{text}\n[profile.release]\nopt-level = 2\n"),
    )
    .unwrap();
    assert!(sparkwing_bincache::build::manifest_sets_profile(&dir));
    let report = cargo_build(&req, &p.tmp.path().join("b")).unwrap();
    assert_eq!(report.opt_level.as_deref(), Some("2"));
}
