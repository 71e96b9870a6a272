//! The pipeline binary cache through the CLI: a warm run compiles nothing and starts no cargo or
//! rustc; two concurrent cold runs build once; the key ignores checkout paths.

use crate::support::{World, fixture_repo};

/// A PATH without cargo or rustc (git and the shell utilities stay).
fn path_without_toolchain() -> String {
    "/usr/local/bin:/usr/bin:/bin".into()
}

#[test]
fn warm_run_starts_no_cargo_or_rustc() {
    let w = World::sample();
    let first = w.run(&["run", "hello"]);
    assert_eq!(first.code, 0, "{}", first.all());
    // Files the first build leaves behind do not change the key.
    assert!(w.repo.join(".sparkwing/Cargo.lock").is_file());
    let key_before = w.run(&["cache", "explain", "-o", "json"]);

    let mut warm = w.with_new_home();
    warm.home = w.home.clone();
    warm.set("PATH", &path_without_toolchain());
    warm.set("SPARKWING_CARGO", "/nonexistent/cargo");
    let second = warm.run(&["run", "hello"]);
    assert_eq!(
        second.code,
        0,
        "a warm run must not need cargo or rustc:\n{}",
        second.all()
    );
    assert!(
        !second.stderr.contains("building pipeline binary"),
        "{}",
        second.all()
    );
    let show = w.show(&second.run_id());
    assert_eq!(show["run"]["invocation"]["binary_source"], "cached");

    let key_after = w.run(&["cache", "explain", "-o", "json"]);
    let a: serde_json::Value = serde_json::from_str(&key_before.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_str(&key_after.stdout).unwrap();
    assert_eq!(a["key"], b["key"]);

    let info = w.run(&["cache", "info"]);
    assert_eq!(info.code, 0, "{}", info.all());
    assert!(
        info.stdout
            .contains(a["key"].as_str().unwrap().get(..12).unwrap()),
        "{}",
        info.all()
    );
}

#[test]
fn same_source_at_two_paths_has_one_key() {
    let one = World::sample();
    let two = World::new(fixture_repo("sample"));
    let k1 = one.run(&["cache", "explain", "-o", "json"]);
    let k2 = two.run(&["cache", "explain", "-o", "json"]);
    assert_eq!(k1.code, 0, "{}", k1.all());
    let k1: serde_json::Value = serde_json::from_str(&k1.stdout).unwrap();
    let k2: serde_json::Value = serde_json::from_str(&k2.stdout).unwrap();
    assert_eq!(k1["key"], k2["key"]);
    assert_eq!(k1["deps_key"].as_str().map(str::len), Some(32), "{k1}");
    assert_eq!(k1["deps_key"], k2["deps_key"]);
    // A source change does change it.
    let main = two.repo.join(".sparkwing/src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{text}\n// changed\n")).unwrap();
    let k3 = two.run(&["cache", "explain", "-o", "json"]);
    let k3: serde_json::Value = serde_json::from_str(&k3.stdout).unwrap();
    assert_ne!(k1["key"], k3["key"]);
    // The dependency set it would restore is the same: the pipeline's sources are not its input.
    assert_eq!(k1["deps_key"], k3["deps_key"]);
}

#[test]
fn concurrent_cold_runs_build_once() {
    let w = World::sample();
    let a = w.spawn(&["run", "hello"]);
    let b = w.spawn(&["run", "hello"]);
    let a = crate::support::Run::from(a.wait_with_output().unwrap());
    let b = crate::support::Run::from(b.wait_with_output().unwrap());
    assert_eq!(a.code, 0, "{}", a.all());
    assert_eq!(b.code, 0, "{}", b.all());
    let builds = [&a, &b]
        .iter()
        .filter(|r| r.stderr.contains("building pipeline binary"))
        .count();
    assert_eq!(
        builds,
        1,
        "exactly one of two concurrent runs builds:\n{}\n{}",
        a.all(),
        b.all()
    );
    let sources: Vec<String> = [&a, &b]
        .iter()
        .map(|r| {
            w.show(&r.run_id())["run"]["invocation"]["binary_source"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        sources.contains(&"compiled".to_string()) && sources.contains(&"cached".to_string()),
        "{sources:?}"
    );
}
