//! `sparkwing pipeline new` creates a package that builds against the SDK the CLI carries — no
//! checkout of the sparkwing repository involved.

use crate::support::{World, git, scratch};

#[test]
fn new_pipeline_builds_and_runs() {
    let repo = scratch().join("scaffold-repo");
    std::fs::create_dir_all(repo.join("src/deep")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let w = World::new(repo.clone());
    // From a subdirectory: the package goes to the repository root.
    let mut new = w.cmd(&[
        "pipeline",
        "new",
        "--name",
        "ship-it",
        "--description",
        "Ship it",
    ]);
    new.current_dir(repo.join("src/deep"));
    let r = crate::support::Run::from(new.output().unwrap());
    assert_eq!(r.code, 0, "{}", r.all());
    for f in [
        "Cargo.toml",
        "src/main.rs",
        "sparkwing.yaml",
        "rust-toolchain.toml",
    ] {
        assert!(repo.join(".sparkwing").join(f).is_file(), "{f} missing");
    }
    let toolchain = std::fs::read_to_string(repo.join(".sparkwing/rust-toolchain.toml")).unwrap();
    assert!(toolchain.contains("channel = \"1."), "{toolchain}");
    // Nothing points at this repository's SDK sources.
    let manifest = std::fs::read_to_string(repo.join(".sparkwing/Cargo.toml")).unwrap();
    assert!(!manifest.contains("path ="), "{manifest}");

    // A second pipeline joins the same package.
    let r = w.run(&["pipeline", "new", "--name", "nightly"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let dup = w.run(&["pipeline", "new", "--name", "nightly"]);
    assert_eq!(dup.code, 2, "{}", dup.all());
    assert!(dup.stderr.contains("already exists"), "{}", dup.all());

    let list = w.run(&["pipeline", "list", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let names: Vec<&str> = list["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ship-it", "nightly"]);

    let run = w.run(&["run", "ship-it"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("hello from ship-it"), "{}", run.all());
    let run = w.run(&["run", "nightly"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("hello from nightly"), "{}", run.all());
}

/// `sparkwing --version` names the commit it was built from and the SDK whose hash is part of
/// every pipeline's cache key, so a bug report says exactly which build ran.
#[test]
fn version_names_the_commit_and_the_sdk() {
    let out = std::process::Command::new(crate::support::sparkwing_bin())
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(crate::support::workspace())
        .output()
        .unwrap();
    let sha = String::from_utf8(head.stdout).unwrap();
    let sdk = sparkwing_contract::SDK_VERSION;
    assert!(
        text.starts_with(&format!("sparkwing {sdk} (commit {}", sha.trim())),
        "{text}"
    );
    assert!(
        text.contains(", sdk ") && text.contains(", rustc "),
        "{text}"
    );
}
