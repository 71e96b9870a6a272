//! Bad input gets a clear error and exit 2.

use crate::support::{World, fixture_repo};

fn assert_usage(r: &crate::support::Run, needle: &str) {
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains(needle),
        "expected `{needle}` in:\n{}",
        r.all()
    );
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let w = World::sample();
    let r = w.run(&["run", "nope"]);
    assert_usage(&r, "unknown pipeline `nope`");
    assert!(
        r.stderr.contains("hello") && r.stderr.contains("fanout"),
        "lists the known ones:\n{}",
        r.all()
    );
    assert_usage(
        &w.run(&["run", "hello", "--sw-workers=0"]),
        "expected an integer >= 1",
    );
    assert_usage(
        &w.run(&["run", "hello", "--sw-workers=two"]),
        "expected an integer >= 1",
    );
    assert_usage(
        &w.run(&["run", "hello", "--sw-mode=distributed"]),
        "not part of sparkwing",
    );
    assert_usage(
        &w.run(&["run", "hello", "--sw-mode=fast"]),
        "invalid `--sw-mode` value `fast`",
    );
    assert_usage(
        &w.run(&["run", "hello", "--sw-frobnicate"]),
        "unknown flag `--sw-frobnicate`",
    );
    assert_usage(
        &w.run(&["run", "--sw-workers=2", "hello"]),
        "pipeline name must come first",
    );
    assert_usage(&w.run(&["run", "hello", "--profile", "nosuch"]), "nosuch");
    assert_usage(&w.run(&["runs", "show", "../etc"]), "path separator");
}

#[test]
fn no_sparkwing_dir_says_where_it_looked() {
    let dir = crate::support::scratch().join("empty-repo");
    std::fs::create_dir_all(&dir).unwrap();
    let w = World::new(dir.clone());
    let r = w.run(&["run", "hello"]);
    assert_usage(&r, "no `.sparkwing/` package found");
    assert!(r.stderr.contains(&dir.display().to_string()), "{}", r.all());
    assert!(r.stderr.contains("sparkwing pipeline new"), "{}", r.all());
}

#[test]
fn plan_errors_name_the_ids() {
    let w = World::sample();
    let r = w.run(&["run", "badplan"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let all = r.all();
    assert!(
        all.contains("cycle") && all.contains('x') && all.contains('y'),
        "{all}"
    );
}

#[test]
fn malformed_config_points_at_line_and_column() {
    let repo = fixture_repo("sample");
    let cfg = repo.join(".sparkwing/sparkwing.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}colour: red\n")).unwrap();
    let w = World::new(repo);
    let r = w.run(&["run", "hello"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let line = text.lines().count() + 1;
    assert!(
        r.stderr
            .contains(&format!("sparkwing.yaml:{line}:1: unknown key `colour`")),
        "{}",
        r.all()
    );
}
