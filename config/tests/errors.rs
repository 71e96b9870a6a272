//! Every configuration error, with its full message and exact `path:line:col`.

use std::path::Path;

use sparkwing_config::{ConfigError, Location, Problem, ProfilesFile, ProjectConfig};

const PROJECT: &str = "/p/.sparkwing/sparkwing.yaml";
const USER: &str = "/home/u/.config/sparkwing/profiles.yaml";

fn project_err(src: &str) -> ConfigError {
    ProjectConfig::parse(src, Path::new(PROJECT), Some(Path::new("/home/u")))
        .expect_err("the project file should be refused")
}

fn user_err(src: &str) -> ConfigError {
    ProfilesFile::parse(src, Path::new(USER), Some(Path::new("/home/u")))
        .expect_err("the profiles file should be refused")
}

#[track_caller]
fn assert_project(src: &str, expected: &str) {
    assert_eq!(
        sparkwing_contract::hint::with_hint(&project_err(src)),
        expected,
        "for source:\n{src}"
    );
}

#[track_caller]
fn assert_user(src: &str, expected: &str) {
    assert_eq!(
        sparkwing_contract::hint::with_hint(&user_err(src)),
        expected,
        "for source:\n{src}"
    );
}

#[test]
fn malformed_yaml_points_at_the_problem() {
    assert_project(
        "profiles:\n  a: [1, 2\n",
        "/p/.sparkwing/sparkwing.yaml:3:1: malformed YAML: did not find expected ',' or ']', while parsing a flow sequence at line 2 column 6",
    );
    assert_project(
        "a: b\n c: d\n",
        "/p/.sparkwing/sparkwing.yaml:2:3: malformed YAML: mapping values are not allowed in this context",
    );
    assert_user(
        "profiles:\n\tci: {}\n",
        "/home/u/.config/sparkwing/profiles.yaml:2:1: malformed YAML: found character that cannot start any token, while scanning for the next token\nhint: indent YAML with spaces; tabs are not allowed",
    );
    assert_project(
        "pipelines: []\n---\nsparks: []\n",
        "/p/.sparkwing/sparkwing.yaml:1:1: malformed YAML: deserializing from YAML containing more than one document is not supported",
    );
}

#[test]
fn duplicate_keys_are_malformed() {
    assert_user(
        "profiles:\n  a:\n    state: {type: sqlite}\n  a:\n    state: {type: sqlite}\n",
        "/home/u/.config/sparkwing/profiles.yaml:2:3: malformed YAML: profiles: duplicate entry with key \"a\"",
    );
}

#[test]
fn unknown_keys_at_every_depth() {
    assert_project(
        "defaults: {}\ncolour: red\n",
        "/p/.sparkwing/sparkwing.yaml:2:1: unknown key `colour` in the project file (expected one of: defaults, profiles, pipelines, sparks)",
    );
    assert_project(
        "pipelines:\n  - name: build\n    entrypoint: Build\n  - name: test\n    entrypoint: Test\n\n    colour: red\n",
        "/p/.sparkwing/sparkwing.yaml:7:5: unknown key `colour` in a pipeline entry (expected one of: name, entrypoint, description, hidden)",
    );
    assert_project(
        "defaults:\n  profile: ci\n  args: {}\nprofiles:\n  ci: { state: { type: sqlite } }\n",
        "/p/.sparkwing/sparkwing.yaml:3:3: unknown key `args` in `defaults` (expected one of: profile)",
    );
    assert_project(
        "sparks:\n  - { name: sparkwing-docker, version: \"^0.3\", source: github }\n",
        "/p/.sparkwing/sparkwing.yaml:2:48: unknown key `source` in a spark entry (expected one of: name, version)",
    );
    assert_project(
        "profiles:\n  ci:\n    secrets: { type: env }\n",
        "/p/.sparkwing/sparkwing.yaml:3:5: unknown key `secrets` in profile `ci` (expected one of: state, cache, logs)",
    );
    assert_project(
        "profiles:\n  ci:\n    logs: { type: stdout, path: /x }\n",
        "/p/.sparkwing/sparkwing.yaml:3:27: unknown key `path` in the `stdout` logs surface of profile `ci` (expected one of: type)",
    );
    assert_user(
        "profiles:\n  ci:\n    cache:\n      type: s3\n      bucket: b\n      path: /x\n",
        "/home/u/.config/sparkwing/profiles.yaml:6:7: unknown key `path` in the `s3` cache surface of profile `ci` (expected one of: type, bucket, prefix, read_only, trusted_keys)",
    );
    // The user file is strict too: a typo must not silently mean "no such surface".
    assert_user(
        "profile:\n  ci: {}\n",
        "/home/u/.config/sparkwing/profiles.yaml:1:1: unknown key `profile` in the profiles file (expected one of: profiles)",
    );
}

#[test]
fn trusted_keys_must_be_minisign_public_keys() {
    assert_user(
        "profiles:\n  ci:\n    cache:\n      type: s3\n      bucket: b\n      trusted_keys:\n        - RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n        - not-a-key\n",
        "/home/u/.config/sparkwing/profiles.yaml:8:11: `not-a-key` is not a minisign public key\nhint: use the second line of a `minisign.pub` file (56 characters starting with `RW`), as printed by `sparkwing cache keygen` or `minisign -G`",
    );
    assert_user(
        "profiles:\n  ci:\n    cache: { type: s3, bucket: b, trusted_keys: RWQ }\n",
        "/home/u/.config/sparkwing/profiles.yaml:3:49: `trusted_keys` in the `cache` surface of profile `ci` must be a list, found a string",
    );
}

#[test]
fn surface_without_type() {
    assert_project(
        "profiles:\n  ci:\n    state: { bucket: x }\n",
        "/p/.sparkwing/sparkwing.yaml:3:12: missing key `type` in the `state` surface of profile `ci`\nhint: add `type:` with one of: sqlite, s3",
    );
    assert_user(
        "profiles:\n  ci:\n    logs:\n      bucket: x\n",
        "/home/u/.config/sparkwing/profiles.yaml:4:7: missing key `type` in the `logs` surface of profile `ci`\nhint: add `type:` with one of: filesystem, s3, stdout",
    );
}

#[test]
fn s3_without_bucket() {
    assert_user(
        "profiles:\n  ci:\n    cache: { type: s3, prefix: c }\n",
        "/home/u/.config/sparkwing/profiles.yaml:3:12: missing key `bucket` in the `cache` surface of profile `ci` (type `s3` needs it)\nhint: add `bucket: <name>` (and optionally `prefix: <path>`)",
    );
}

#[test]
fn filesystem_without_path() {
    assert_project(
        "profiles:\n  ci:\n    logs:\n      type: filesystem\n",
        "/p/.sparkwing/sparkwing.yaml:4:7: missing key `path` in the `logs` surface of profile `ci` (type `filesystem` needs it)\nhint: add `path: /absolute/dir` (or `~/dir`)",
    );
}

#[test]
fn recognized_but_unbuilt_types() {
    assert_user(
        "profiles:\n  ci:\n    cache: { type: gcs, bucket: b }\n",
        "/home/u/.config/sparkwing/profiles.yaml:3:20: `cache` surface of profile `ci`: type `gcs` is recognized but not implemented in this build\nhint: use one of: filesystem, s3",
    );
    assert_user(
        "profiles:\n  ci:\n    logs:\n      type: azure-blob\n",
        "/home/u/.config/sparkwing/profiles.yaml:4:13: `logs` surface of profile `ci`: type `azure-blob` is recognized but not implemented in this build\nhint: use one of: filesystem, s3, stdout",
    );
    assert_project(
        "profiles:\n  db:\n    state: { type: postgres, url: \"postgres://x\" }\n",
        "/p/.sparkwing/sparkwing.yaml:3:20: `state` surface of profile `db`: type `postgres` is recognized but not implemented in this build\nhint: use one of: sqlite, s3",
    );
    assert_project(
        "profiles:\n  db:\n    state: { type: mysql }\n",
        "/p/.sparkwing/sparkwing.yaml:3:20: `state` surface of profile `db`: type `mysql` is recognized but not implemented in this build\nhint: use one of: sqlite, s3",
    );
    assert_project(
        "profiles:\n  c:\n    state: { type: controller }\n",
        "/p/.sparkwing/sparkwing.yaml:3:20: `state` surface of profile `c`: type `controller` is recognized but not implemented in this build\nhint: use one of: sqlite, s3",
    );
}

#[test]
fn unknown_types_list_the_valid_ones_for_the_surface() {
    assert_project(
        "profiles:\n  ci:\n    state: { type: filesystem, path: /x }\n",
        "/p/.sparkwing/sparkwing.yaml:3:20: `state` surface of profile `ci`: unknown type `filesystem` (expected one of: sqlite, s3)",
    );
    assert_project(
        "profiles:\n  ci:\n    logs: { type: postgres }\n",
        "/p/.sparkwing/sparkwing.yaml:3:19: `logs` surface of profile `ci`: unknown type `postgres` (expected one of: filesystem, s3, stdout)",
    );
    assert_user(
        "profiles:\n  ci:\n    cache: { type: ftp }\n",
        "/home/u/.config/sparkwing/profiles.yaml:3:20: `cache` surface of profile `ci`: unknown type `ftp` (expected one of: filesystem, s3)",
    );
}

#[test]
fn default_profile_must_be_declared() {
    assert_project(
        "defaults:\n  profile: prod\nprofiles:\n  ci:\n    state: { type: sqlite }\n",
        "/p/.sparkwing/sparkwing.yaml:2:12: `defaults.profile` names `prod`, which is not declared in `profiles` (declared: ci)\nhint: name one of the declared profiles, or declare `prod` under `profiles:` in this file (a default cannot name a user profile)",
    );
    // Declared after `defaults` still counts; declared nowhere says so.
    assert_project(
        "defaults: { profile: prod }\n",
        "/p/.sparkwing/sparkwing.yaml:1:22: `defaults.profile` names `prod`, which is not declared in `profiles` (the file declares no profiles)\nhint: declare `prod` under `profiles:` in this file, or remove `defaults.profile`",
    );
}

#[test]
fn paths_must_be_anchored() {
    assert_project(
        "profiles:\n  ci:\n    cache: { type: filesystem, path: cache/dir }\n",
        "/p/.sparkwing/sparkwing.yaml:3:38: relative path `cache/dir` in the `cache` surface of profile `ci`\nhint: write an absolute path or one under `~/`, e.g. `~/cache/dir`",
    );
    assert_user(
        "profiles:\n  ci:\n    state:\n      type: sqlite\n      path: ~bob/state.db\n",
        "/home/u/.config/sparkwing/profiles.yaml:5:13: `~bob/state.db` in the `state` surface of profile `ci`: only `~` and `~/…` are expanded, not `~user`\nhint: write an absolute path",
    );
    let err = ProfilesFile::parse(
        "profiles:\n  ci:\n    logs: { type: filesystem, path: ~/logs }\n",
        Path::new(USER),
        None,
    )
    .unwrap_err();
    assert_eq!(
        sparkwing_contract::hint::with_hint(&err),
        "/home/u/.config/sparkwing/profiles.yaml:3:37: `~/logs` in the `logs` surface of profile `ci` cannot be expanded: HOME is not set\nhint: set HOME, or write an absolute path"
    );
}

#[test]
fn wrong_value_types() {
    assert_project(
        "profiles:\n  - ci\n",
        "/p/.sparkwing/sparkwing.yaml:2:3: `profiles` must be a mapping, found a list",
    );
    assert_project(
        "pipelines:\n  - { name: a, entrypoint: A, hidden: \"yes\" }\n",
        "/p/.sparkwing/sparkwing.yaml:2:39: `hidden` in a pipeline entry must be true or false, found a string\nhint: write `true` or `false` without quotes",
    );
    assert_project(
        "sparks:\n  - { name: sparkwing-docker, version: 0.3 }\n",
        "/p/.sparkwing/sparkwing.yaml:2:40: `version` in a spark entry must be a string, found a number with a fraction\nhint: quote the value, e.g. `\"0.10\"`, so YAML keeps it as written",
    );
    assert_project(
        "pipelines:\n  build: {}\n",
        "/p/.sparkwing/sparkwing.yaml:2:3: `pipelines` must be a list, found a mapping",
    );
    assert_project(
        "profiles: !custom\n  ci: {}\n",
        "/p/.sparkwing/sparkwing.yaml:1:11: `profiles` must be a mapping, found a tagged value",
    );
}

#[test]
fn pipeline_entries() {
    assert_project(
        "pipelines:\n  - name: a\n",
        "/p/.sparkwing/sparkwing.yaml:2:5: missing key `entrypoint` in a pipeline entry\nhint: every pipeline entry needs `name` and `entrypoint`",
    );
    assert_project(
        "pipelines:\n  - entrypoint: A\n",
        "/p/.sparkwing/sparkwing.yaml:2:5: missing key `name` in a pipeline entry\nhint: every pipeline entry needs `name` and `entrypoint`",
    );
    assert_project(
        "pipelines:\n  - { name: a, entrypoint: A }\n  - { name: a, entrypoint: B }\n",
        "/p/.sparkwing/sparkwing.yaml:3:13: duplicate pipeline name `a`\nhint: each entry under `pipelines:` needs its own name",
    );
    assert_project(
        "pipelines:\n  - { name: \"my build\", entrypoint: A }\n",
        "/p/.sparkwing/sparkwing.yaml:2:13: pipeline name `my build` starts with `-` or contains whitespace, so it cannot be typed after `sparkwing run`",
    );
}

#[test]
fn spark_entries() {
    assert_project(
        "sparks:\n  - name: sparkwing-docker\n    version: \"not a version\"\n",
        "/p/.sparkwing/sparkwing.yaml:3:14: version `not a version` of spark `sparkwing-docker` is not a Cargo version requirement: unexpected character 'n' while parsing major version number\nhint: write a requirement such as `\"^0.3\"`, `\"~1.2\"` or `\">=1.0, <2\"`",
    );
    assert_project(
        "sparks:\n  - { name: sparkwing-docker }\n",
        "/p/.sparkwing/sparkwing.yaml:2:5: missing key `version` in a spark entry\nhint: write a spark as `{ name: <crate>, version: \"<requirement>\" }`",
    );
    assert_project(
        "sparks:\n  - { name: 9lives, version: \"1\" }\n",
        "/p/.sparkwing/sparkwing.yaml:2:13: spark name `9lives` is not a crate name: it must start with an ASCII letter",
    );
    assert_project(
        "sparks:\n  - { name: spark_a, version: \"1\" }\n  - { name: spark-a, version: \"2\" }\n",
        "/p/.sparkwing/sparkwing.yaml:3:13: duplicate spark `spark-a`\nhint: list each crate once",
    );
}

#[test]
fn profile_bodies_and_names() {
    assert_user(
        "profiles:\n  ci:\n",
        "/home/u/.config/sparkwing/profiles.yaml:2:3: profile `ci` declares no surface\nhint: declare at least one of `state`, `cache`, `logs`, or remove the profile",
    );
    assert_user(
        "profiles:\n  \"..\":\n    logs: { type: stdout }\n",
        "/home/u/.config/sparkwing/profiles.yaml:2:3: profile name is not usable: identifier `..` is a path reference (`.` or `..`)\nhint: use letters, digits, `-` or `_`",
    );
    let bucket_hint = "hint: use 3-63 characters: lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit";
    assert_user(
        "profiles:\n  ci:\n    cache: { type: s3, bucket: \"a/b\" }\n",
        &format!(
            "/home/u/.config/sparkwing/profiles.yaml:3:32: bucket `a/b` in the `cache` surface of profile `ci` is not a valid S3 bucket name\n{bucket_hint}"
        ),
    );
    // The same rule the store-URL parser applies when the store is opened.
    assert_user(
        "profiles:\n  ci:\n    logs:\n      type: s3\n      bucket: Team_CI\n",
        &format!(
            "/home/u/.config/sparkwing/profiles.yaml:5:15: bucket `Team_CI` in the `logs` surface of profile `ci` is not a valid S3 bucket name\n{bucket_hint}"
        ),
    );
    assert_user(
        "profiles:\n  ci:\n    cache: { type: s3, bucket: team, prefix: \"a/../c\" }\n",
        "/home/u/.config/sparkwing/profiles.yaml:3:46: unsafe prefix in the `cache` surface of profile `ci`: identifier `..` is a path reference (`.` or `..`)\nhint: write the prefix as `a/b/c`",
    );
    assert_user(
        "profiles:\n  ci:\n    cache: { type: s3, bucket: team, prefix: \"a//c\" }\n",
        "/home/u/.config/sparkwing/profiles.yaml:3:46: unsafe prefix in the `cache` surface of profile `ci`: empty identifier\nhint: write the prefix as `a/b/c`",
    );
}

#[test]
fn errors_expose_their_location_and_problem() {
    let err = project_err("pipelines:\n  - name: build\n    entrypoint: Build\n    colour: red\n");
    assert_eq!(
        err.location(),
        Some(&Location {
            file: PROJECT.into(),
            line: 4,
            column: 5
        })
    );
    match err.problem() {
        Some(Problem::UnknownKey { key, expected, .. }) => {
            assert_eq!(key, "colour");
            assert_eq!(*expected, ["name", "entrypoint", "description", "hidden"]);
        }
        other => panic!("unexpected error: {other:?}"),
    }
}

#[test]
fn unreadable_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let env = |_: &str| None;
    let missing = dir.path().join(".sparkwing/sparkwing.yaml");
    assert!(
        ProjectConfig::load_optional(&missing, &env)
            .unwrap()
            .is_none()
    );
    let err = ProjectConfig::load(&missing, &env).unwrap_err();
    assert_eq!(
        sparkwing_contract::hint::with_hint(&err),
        format!(
            "find `{}`\nhint: run `sparkwing pipeline new --name NAME` in the repository root to create `.sparkwing/`",
            missing.display()
        )
    );
    // A directory where the file should be cannot be read.
    let err = ProfilesFile::load_from(dir.path(), None).unwrap_err();
    assert!(
        sparkwing_contract::hint::with_hint(&err)
            .starts_with(&format!("read `{}`: ", dir.path().display())),
        "{err}"
    );
    let err = ProfilesFile::load(&env).unwrap_err();
    assert_eq!(
        sparkwing_contract::hint::with_hint(&err),
        "locate the profiles file: none of SPARKWING_PROFILES, XDG_CONFIG_HOME, HOME is set\nhint: set SPARKWING_PROFILES to an absolute path"
    );
}

/// Compares a whole message without echoing a huge source.
#[track_caller]
fn assert_refused(err: ConfigError, expected: &str) {
    assert_eq!(sparkwing_contract::hint::with_hint(&err), expected);
}

/// A config file comes from the repository, so from anyone who can open a pull request: its
/// size and nesting are checked before the YAML parser sees it, and refusing is immediate.
#[test]
fn hostile_sizes_and_nesting_are_refused_before_parsing() {
    let started = std::time::Instant::now();
    let deep = format!("pipelines: {}", "[".repeat(100_000));
    assert_refused(
        project_err(&deep),
        "/p/.sparkwing/sparkwing.yaml:1:75: nesting deeper than 64 levels\nhint: sparkwing's configuration never nests this deep; flatten the structure",
    );
    let dashes = format!("pipelines:\n{}x\n", "- ".repeat(50_000));
    assert_refused(
        project_err(&dashes),
        "/p/.sparkwing/sparkwing.yaml:2:127: nesting deeper than 64 levels\nhint: sparkwing's configuration never nests this deep; flatten the structure",
    );
    let mut braces = String::from("profiles:\n  ci: ");
    for _ in 0..70 {
        braces.push_str("{a: ");
    }
    assert_refused(
        user_err(&braces),
        "/home/u/.config/sparkwing/profiles.yaml:2:255: nesting deeper than 64 levels\nhint: sparkwing's configuration never nests this deep; flatten the structure",
    );
    let big = format!("# {}\npipelines: []\n", "x".repeat(2 << 20));
    assert_refused(
        project_err(&big),
        "/p/.sparkwing/sparkwing.yaml:1:1: the file is 2.0 MiB; configuration files are limited to 1.0 MiB\nhint: sparkwing's configuration is a few kilobytes; check that this is the file you meant",
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refusing took {:?}",
        started.elapsed()
    );
}

/// Brackets inside quotes, comments and block scalars are text, not nesting.
#[test]
fn brackets_in_text_are_not_nesting() {
    let many = "[".repeat(100);
    let src = format!(
        "pipelines:\n  - name: a # {many}\n    entrypoint: \"{many}\"\n    description: '{many}'\n"
    );
    let err = ProjectConfig::parse(&src, Path::new(PROJECT), None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(!format!("{err:?}").contains("nesting deeper"), "{err:?}");
}

/// An error at the end of a file without a final line break points at the end of its last line
/// (with `\r` line breaks counted as YAML counts them), never at a line the file does not have.
#[test]
fn errors_at_the_end_point_inside_the_file() {
    assert_project(
        "pipelines:\r  - {name: a,\r\n  log",
        "/p/.sparkwing/sparkwing.yaml:3:6: malformed YAML: did not find expected ',' or '}', while parsing a flow mapping at line 2 column 5",
    );
}

/// Found by the `config` fuzz target: a tag (`!`) on a key whose mapping the YAML library's
/// skipping code miscounts made it panic ("unexpected end of mapping"). Either file is refused or
/// read, never a panic.
#[test]
fn a_tagged_key_in_a_broken_mapping_is_an_error_not_a_panic() {
    let src = "54.0:\n -\n! 554.0:\n 554.0:\n -";
    assert!(
        project_err(src).to_string().starts_with(
            "/p/.sparkwing/sparkwing.yaml:1:1: unknown key `54.0` in the project file"
        )
    );
    assert!(user_err(src).to_string().starts_with(
        "/home/u/.config/sparkwing/profiles.yaml:1:1: unknown key `54.0` in the profiles file"
    ));
}
