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

/// The whole stderr of a usage error, with this world's repository and home written as `<repo>`
/// and `<home>`: one `error:` line, one `hint:` line, nothing said twice.
fn stderr_of(w: &World, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = w.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let r = crate::support::Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 2, "{args:?}: {}", r.all());
    assert!(
        r.stdout.is_empty(),
        "{args:?} printed to stdout: {}",
        r.all()
    );
    r.stderr
        .replace(&w.repo.display().to_string(), "<repo>")
        .replace(&w.home.display().to_string(), "<home>")
}

/// Arguments, extra environment, the whole expected stderr.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn usage_errors_print_one_error_and_one_hint_and_nothing_else() {
    let w = World::sample();
    let cases: &[Case] = &[
        (
            &["run", "nope"],
            &[],
            "error: unknown pipeline `nope`; `<repo>/.sparkwing/sparkwing.yaml` declares: hello, fanout, failing, trap, die, orphan, retry, timeout, skip, report, secrets, badplan, noop, shell, loglines, ci, slow, plant, watch, shards\n  hint: `sparkwing pipeline list` shows the pipelines; `sparkwing pipeline new --name NAME` adds one\n",
        ),
        (
            &["run", "hello", "--sw-workers=0"],
            &[],
            "error: invalid `--sw-workers` value `0`: expected an integer >= 1\n  hint: for example `4`; the default is the number of CPUs\n",
        ),
        (
            &["run", "hello"],
            &[("SPARKWING_WORKERS", "abc")],
            "error: invalid `SPARKWING_WORKERS` value `abc`: expected an integer >= 1\n  hint: for example `4`; the default is the number of CPUs\n",
        ),
        (
            &["run", "hello", "--sw-mode=distributed"],
            &[],
            "error: `--sw-mode` value `distributed` is not part of sparkwing: the host CI is the orchestrator\n  hint: use `ci-embedded` inside a CI job, or `local` (the default)\n",
        ),
        (
            &["run", "hello"],
            &[("SPARKWING_MODE", "bogus")],
            "error: invalid `SPARKWING_MODE` value `bogus`\n  hint: valid modes: `local` (default), `ci-embedded`\n",
        ),
        (
            &["run", "hello", "--sw-frobnicate"],
            &[],
            "error: unknown flag `--sw-frobnicate`\n  hint: sparkwing's flags are: --sw-mode, --sw-workers, --sw-no-cache-write, --sw-cd, --sw-shard, --sw-run-id, --profile, --junit, --watch, --watch-path; other flags pass through to the pipeline unless they start with `--sw-`\n",
        ),
        (
            &["run", "--sw-workers=2", "hello"],
            &[],
            "error: the pipeline name must come first, got flag `--sw-workers=2`\n  hint: `sparkwing run <PIPELINE> --sw-workers=2 …`\n",
        ),
        (
            &["run", "hello", "--profile", "nosuch"],
            &[],
            "error: find profile `nosuch`: it is not declared in `<home>/profiles.yaml` or `<repo>/.sparkwing/sparkwing.yaml`; no profiles are declared\n  hint: declare `nosuch` under `profiles:` in the user profiles file, or drop `--profile` to use the built-in laptop defaults\n",
        ),
        (
            &["runs", "show", "../etc"],
            &[],
            "error: identifier `../etc` contains a path separator or control character\n  hint: run ids look like `run-20261127-141500-1a2b3c4d`; `sparkwing runs list` shows them\n",
        ),
        (
            &["run", "hello"],
            &[("SPARKWING_CACHE_MAX_BYTES", "lots")],
            "error: read `SPARKWING_CACHE_MAX_BYTES`: `lots` is not a byte size\n  hint: use a number of bytes with an optional unit, such as `512MB`, `4GiB` or `0` for unlimited\n",
        ),
    ];
    for (args, env, expected) in cases {
        assert_eq!(&stderr_of(&w, args, env), expected, "{args:?} {env:?}");
    }
}

/// A package written for the SDK's former package name gets one clear error, before any cargo.
#[test]
fn a_package_on_the_former_sdk_name_is_told_how_to_move() {
    let w = World::sample();
    let manifest = w.repo.join(".sparkwing/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "sparkwing = \"0.1\"",
            "sparkwing = { package = \"pipeline-runtime\", version = \"0.1\" }",
        ),
    )
    .unwrap();
    assert_eq!(
        stderr_of(&w, &["run", "hello"], &[]),
        "error: `<repo>/.sparkwing/Cargo.toml` depends on the SDK by its former package name `pipeline-runtime`\n  hint: replace that dependency with `sparkwing = \"0.1.0\"` under `[dependencies]`, then run again\n"
    );
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
