//! Loading valid files, the profiles-file path, resolution order and `sparkwing profile` output.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sparkwing_config::{
    ProfilesFile, ProjectConfig, Source, Surface, SurfaceKind, render_pretty, resolve, to_json,
};

const PROJECT: &str = "/repo/.sparkwing/sparkwing.yaml";
const USER: &str = "/home/ada/.config/sparkwing/profiles.yaml";
const HOME: &str = "/home/ada/.sparkwing";

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let map: HashMap<String, OsString> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn user(src: &str) -> ProfilesFile {
    ProfilesFile::parse(src, Path::new(USER), Some(Path::new("/home/ada"))).unwrap()
}

fn project(src: &str) -> ProjectConfig {
    ProjectConfig::parse(src, Path::new(PROJECT), Some(Path::new("/home/ada"))).unwrap()
}

const FULL_PROJECT: &str = r#"
# A complete project file.
defaults:
  profile: shared

profiles:
  shared:
    state: { type: s3, bucket: team-ci, prefix: /state/ }
    cache: { type: s3, bucket: team-ci, prefix: cache }
    logs:  { type: s3, bucket: team-ci }
  local-disk:
    state:
      type: sqlite
      path: ~/sw/state.db
    cache: { type: filesystem, path: /var/cache/sw }
    logs: { type: stdout }

pipelines:
  - name: build
    entrypoint: Build
    description: Compile and test
  - name: release
    entrypoint: Release
    hidden: true

sparks:
  - name: sparkwing-docker
    version: "^0.3"
  - { name: sparkwing_k8s, version: ">=1.2, <2" }
"#;

#[test]
fn a_full_project_file_loads_into_typed_config() {
    let cfg = project(FULL_PROJECT);
    assert_eq!(cfg.path, Path::new(PROJECT));
    assert_eq!(cfg.default_profile.as_deref(), Some("shared"));
    let names: Vec<_> = cfg.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["shared", "local-disk"]);

    let shared = cfg.profile("shared").unwrap();
    assert_eq!(
        shared.state,
        Some(Surface::S3 {
            bucket: "team-ci".into(),
            prefix: "state".into()
        })
    );
    assert_eq!(
        shared.logs.as_ref().map(Surface::spec_string).as_deref(),
        Some("s3://team-ci")
    );

    let disk = cfg.profile("local-disk").unwrap();
    assert_eq!(
        disk.state,
        Some(Surface::Sqlite {
            path: Some(PathBuf::from("/home/ada/sw/state.db"))
        })
    );
    assert_eq!(
        disk.cache,
        Some(Surface::Filesystem {
            path: "/var/cache/sw".into()
        })
    );
    assert_eq!(disk.logs, Some(Surface::Stdout));

    assert_eq!(cfg.pipelines.len(), 2);
    assert_eq!(cfg.pipelines[0].name, "build");
    assert_eq!(cfg.pipelines[0].entrypoint, "Build");
    assert_eq!(
        cfg.pipelines[0].description.as_deref(),
        Some("Compile and test")
    );
    assert!(!cfg.pipelines[0].hidden);
    assert!(cfg.pipeline("release").unwrap().hidden);

    assert_eq!(cfg.sparks.len(), 2);
    assert_eq!(cfg.sparks[0].name, "sparkwing-docker");
    assert_eq!(cfg.sparks[0].version, "^0.3");
    assert!(cfg.sparks[0].requirement.matches(&semver_version("0.3.7")));
    assert!(!cfg.sparks[0].requirement.matches(&semver_version("0.4.0")));
    assert!(cfg.sparks[1].requirement.matches(&semver_version("1.9.0")));
}

fn semver_version(s: &str) -> semver::Version {
    semver::Version::parse(s).unwrap()
}

#[test]
fn surfaces_are_normalized_like_store_urls() {
    let u = user(
        "profiles:\n  n:\n    cache: { type: filesystem, path: \"/var/sw/./cache/\" }\n    logs: { type: s3, bucket: team, prefix: \"/ci/logs/\" }\n",
    );
    let n = u.get("n").unwrap();
    assert_eq!(
        n.cache.as_ref().unwrap().spec_string(),
        "filesystem:/var/sw/cache"
    );
    assert_eq!(n.logs.as_ref().unwrap().spec_string(), "s3://team/ci/logs");
    // A flag's URL and a profile's surface name the same place the same way.
    assert_eq!(
        Surface::from_store_url("fs:///var/sw/cache/").unwrap(),
        *n.cache.as_ref().unwrap()
    );
    assert_eq!(
        Surface::from_store_url("s3://team/ci/logs").unwrap(),
        *n.logs.as_ref().unwrap()
    );
}

#[test]
fn empty_and_null_sections_are_empty() {
    let cfg = project("");
    assert!(cfg.profiles.is_empty() && cfg.pipelines.is_empty() && cfg.sparks.is_empty());
    let cfg = project("# nothing yet\ndefaults:\nprofiles:\npipelines:\nsparks:\n");
    assert_eq!(cfg.default_profile, None);
    assert!(user("").profiles.is_empty());
    assert!(user("profiles: {}\n").profiles.is_empty());
}

#[test]
fn anchors_and_merge_keys_share_blocks() {
    let u = user(
        "profiles:\n  a:\n    cache: &bucket { type: s3, bucket: shared, prefix: c }\n  b:\n    cache: *bucket\n    logs:\n      <<: *bucket\n      prefix: logs\n",
    );
    assert_eq!(
        u.get("b").unwrap().cache.as_ref().unwrap().spec_string(),
        "s3://shared/c"
    );
    assert_eq!(
        u.get("b").unwrap().logs.as_ref().unwrap().spec_string(),
        "s3://shared/logs"
    );
}

#[test]
fn profiles_path_precedence() {
    let path = |pairs: &[(&str, &str)]| ProfilesFile::path_from_env(&env_of(pairs)).unwrap();
    let all = [
        ("SPARKWING_PROFILES", "/etc/sw/profiles.yaml"),
        ("XDG_CONFIG_HOME", "/xdg"),
        ("HOME", "/home/ada"),
    ];
    assert_eq!(path(&all), Path::new("/etc/sw/profiles.yaml"));
    assert_eq!(path(&all[1..]), Path::new("/xdg/sparkwing/profiles.yaml"));
    assert_eq!(
        path(&all[2..]),
        Path::new("/home/ada/.config/sparkwing/profiles.yaml")
    );
    // An empty variable is treated as unset, as shells commonly export them.
    assert_eq!(
        path(&[
            ("SPARKWING_PROFILES", ""),
            ("XDG_CONFIG_HOME", ""),
            ("HOME", "/h")
        ]),
        Path::new("/h/.config/sparkwing/profiles.yaml")
    );
}

#[test]
fn load_reads_the_file_the_environment_names() {
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("sparkwing")).unwrap();
    std::fs::write(
        xdg.join("sparkwing/profiles.yaml"),
        "profiles:\n  xdg:\n    logs: { type: filesystem, path: ~/logs }\n",
    )
    .unwrap();
    let explicit = dir.path().join("explicit.yaml");
    std::fs::write(
        &explicit,
        "profiles:\n  explicit:\n    logs: { type: stdout }\n",
    )
    .unwrap();

    let xdg_s = xdg.to_str().unwrap();
    let explicit_s = explicit.to_str().unwrap();
    let from_xdg = ProfilesFile::load(&env_of(&[
        ("XDG_CONFIG_HOME", xdg_s),
        ("HOME", "/home/ada"),
    ]))
    .unwrap();
    assert!(from_xdg.exists);
    assert_eq!(
        from_xdg.get("xdg").unwrap().logs,
        Some(Surface::Filesystem {
            path: "/home/ada/logs".into()
        })
    );
    let from_var = ProfilesFile::load(&env_of(&[
        ("SPARKWING_PROFILES", explicit_s),
        ("XDG_CONFIG_HOME", xdg_s),
    ]))
    .unwrap();
    assert_eq!(from_var.path, explicit);
    assert!(from_var.get("explicit").is_some() && from_var.get("xdg").is_none());

    // A missing file is an empty one, and remembers where it would be.
    let none = ProfilesFile::load(&env_of(&[("HOME", dir.path().to_str().unwrap())])).unwrap();
    assert!(!none.exists && none.profiles.is_empty());
    assert_eq!(
        none.path,
        dir.path().join(".config/sparkwing/profiles.yaml")
    );

    // The project loader reads from disk too.
    std::fs::create_dir_all(dir.path().join(".sparkwing")).unwrap();
    let pfile = dir.path().join(".sparkwing/sparkwing.yaml");
    std::fs::write(&pfile, FULL_PROJECT).unwrap();
    let cfg = ProjectConfig::load(&pfile, &env_of(&[("HOME", "/home/ada")])).unwrap();
    assert_eq!(cfg.default_profile.as_deref(), Some("shared"));
}

#[test]
fn built_in_defaults_without_flag_or_project() {
    let r = resolve(None, None, &user(""), Path::new(HOME)).unwrap();
    assert_eq!(r.source, Source::BuiltIn);
    assert_eq!(r.name, "built-in");
    assert_eq!(r.file, None);
    assert_eq!(
        r.state.spec_string(),
        "sqlite:/home/ada/.sparkwing/state.db"
    );
    assert_eq!(r.logs.spec_string(), "filesystem:/home/ada/.sparkwing/runs");
    assert_eq!(
        r.cache.spec_string(),
        "filesystem:/home/ada/.sparkwing/artifacts"
    );
    assert_eq!(
        r.reason,
        "no `--profile` passed and no project file; built-in laptop defaults under `/home/ada/.sparkwing` apply"
    );
    assert_eq!(
        r.backends_json(),
        serde_json::json!({
            "state": "sqlite:/home/ada/.sparkwing/state.db",
            "logs": "filesystem:/home/ada/.sparkwing/runs",
            "cache": "filesystem:/home/ada/.sparkwing/artifacts",
        })
    );
}

#[test]
fn a_user_profile_is_never_picked_without_the_flag() {
    // Even a profile called `ci` is not auto-selected: selection is always explicit.
    let u = user("profiles:\n  ci:\n    logs: { type: stdout }\n");
    let p = project("pipelines: []\n");
    let r = resolve(None, Some(&p), &u, Path::new(HOME)).unwrap();
    assert_eq!(r.source, Source::BuiltIn);
    assert_eq!(
        r.reason,
        "no `--profile` passed and `/repo/.sparkwing/sparkwing.yaml` sets no `defaults.profile`; built-in laptop defaults under `/home/ada/.sparkwing` apply"
    );
}

#[test]
fn project_default_applies_without_the_flag() {
    let p = project(FULL_PROJECT);
    let r = resolve(None, Some(&p), &user(""), Path::new(HOME)).unwrap();
    assert_eq!(r.source, Source::ProjectDefault);
    assert_eq!(r.name, "shared");
    assert_eq!(r.file.as_deref(), Some(Path::new(PROJECT)));
    assert_eq!(r.state.spec_string(), "s3://team-ci/state");
    assert_eq!(r.logs.spec_string(), "s3://team-ci");
    assert_eq!(r.cache.spec_string(), "s3://team-ci/cache");
    assert!(r.defaulted.is_empty());
    assert_eq!(r.considered.len(), 2);
    assert!(!r.considered[0].selected && r.considered[1].selected);
}

#[test]
fn the_flag_beats_the_default_and_the_user_file_beats_the_project() {
    let u = user("profiles:\n  local-disk:\n    logs: { type: s3, bucket: mine }\n");
    let p = project(FULL_PROJECT);

    let r = resolve(Some("local-disk"), Some(&p), &u, Path::new(HOME)).unwrap();
    assert_eq!(r.source, Source::Flag);
    assert_eq!(r.file.as_deref(), Some(Path::new(USER)));
    assert_eq!(r.logs.spec_string(), "s3://mine");
    assert_eq!(r.defaulted, [SurfaceKind::State, SurfaceKind::Cache]);
    assert_eq!(
        r.reason,
        "`--profile local-disk` names a profile in the user profiles file `/home/ada/.config/sparkwing/profiles.yaml`; `/repo/.sparkwing/sparkwing.yaml` declares it too, and the user file takes precedence; `state` and `cache` are not declared by the profile, so the built-in default applies"
    );
    assert_eq!(r.considered.len(), 1);

    // Only in the project: found there.
    let r = resolve(Some("shared"), Some(&p), &u, Path::new(HOME)).unwrap();
    assert_eq!(r.source, Source::Flag);
    assert_eq!(r.file.as_deref(), Some(Path::new(PROJECT)));
    assert_eq!(r.cache.spec_string(), "s3://team-ci/cache");
}

#[test]
fn a_missing_surface_falls_back_and_sqlite_gets_its_default_path() {
    let u = user(
        "profiles:\n  half:\n    state: { type: sqlite }\n    cache: { type: s3, bucket: bkt }\n",
    );
    let r = resolve(Some("half"), None, &u, Path::new(HOME)).unwrap();
    assert_eq!(
        r.state.spec_string(),
        "sqlite:/home/ada/.sparkwing/state.db"
    );
    assert_eq!(r.logs.spec_string(), "filesystem:/home/ada/.sparkwing/runs");
    assert_eq!(r.defaulted, [SurfaceKind::Logs]);
    assert!(
        r.reason
            .ends_with("; `logs` is not declared by the profile, so the built-in default applies"),
        "{}",
        r.reason
    );
}

#[test]
fn an_unknown_profile_lists_every_available_one() {
    let u = user(
        "profiles:\n  ci-team:\n    logs: { type: stdout }\n  nightly:\n    logs: { type: stdout }\n",
    );
    let p = project(FULL_PROJECT);
    let err = resolve(Some("prod"), Some(&p), &u, Path::new(HOME)).unwrap_err();
    assert_eq!(
        sparkwing_contract::hint::with_hint(&err),
        "find profile `prod`: it is not declared in `/home/ada/.config/sparkwing/profiles.yaml` or `/repo/.sparkwing/sparkwing.yaml`\n\
         available profiles:\n  \
           ci-team     (/home/ada/.config/sparkwing/profiles.yaml)\n  \
           nightly     (/home/ada/.config/sparkwing/profiles.yaml)\n  \
           shared      (/repo/.sparkwing/sparkwing.yaml)\n  \
           local-disk  (/repo/.sparkwing/sparkwing.yaml)\n\
         hint: pass one of the names above to `--profile`, or declare `prod` under `profiles:` in one of those files"
    );

    let err = resolve(Some("prod"), None, &user(""), Path::new(HOME)).unwrap_err();
    assert_eq!(
        sparkwing_contract::hint::with_hint(&err),
        "find profile `prod`: it is not declared in `/home/ada/.config/sparkwing/profiles.yaml`; \
         no profiles are declared\n\
         hint: declare `prod` under `profiles:` in the user profiles file, or drop `--profile` to use the built-in laptop defaults"
    );
}

#[test]
fn pretty_output() {
    let p = project(FULL_PROJECT);
    let u = user("profiles:\n  mine:\n    logs: { type: s3, bucket: mine, prefix: l }\n");
    let r = resolve(Some("mine"), Some(&p), &u, Path::new(HOME)).unwrap();
    assert_eq!(
        render_pretty(&r),
        "effective profile: mine\n  \
           source:  flag\n  \
           file:    /home/ada/.config/sparkwing/profiles.yaml\n  \
           reason:  `--profile mine` names a profile in the user profiles file `/home/ada/.config/sparkwing/profiles.yaml`; `state` and `cache` are not declared by the profile, so the built-in default applies\n  \
           state:   sqlite:/home/ada/.sparkwing/state.db  (built-in default)\n  \
           logs:    s3://mine/l\n  \
           cache:   filesystem:/home/ada/.sparkwing/artifacts  (built-in default)\n\
         \n\
         resolution chain considered:\n  \
           flag             mine  ← selected\n"
    );

    let r = resolve(None, Some(&project("pipelines: []\n")), &u, Path::new(HOME)).unwrap();
    assert_eq!(
        render_pretty(&r),
        "effective profile: built-in\n  \
           source:  built-in\n  \
           reason:  no `--profile` passed and `/repo/.sparkwing/sparkwing.yaml` sets no `defaults.profile`; built-in laptop defaults under `/home/ada/.sparkwing` apply\n  \
           state:   sqlite:/home/ada/.sparkwing/state.db\n  \
           logs:    filesystem:/home/ada/.sparkwing/runs\n  \
           cache:   filesystem:/home/ada/.sparkwing/artifacts\n\
         \n\
         resolution chain considered:\n  \
           flag             -  no `--profile` passed\n  \
           project-default  -  `/repo/.sparkwing/sparkwing.yaml` sets no `defaults.profile`\n  \
           built-in         -  ← selected\n"
    );
}

#[test]
fn json_output() {
    let r = resolve(
        None,
        Some(&project(FULL_PROJECT)),
        &user(""),
        Path::new(HOME),
    )
    .unwrap();
    assert_eq!(
        to_json(&r),
        serde_json::json!({
            "effective": {
                "name": "shared",
                "source": "project-default",
                "file": PROJECT,
                "reason": "no `--profile` passed; `defaults.profile` in `/repo/.sparkwing/sparkwing.yaml` names `shared`",
                "state": "s3://team-ci/state",
                "logs": "s3://team-ci",
                "cache": "s3://team-ci/cache",
                "cache_read_only": false,
                "cache_trusted_keys": [],
                "defaulted": [],
            },
            "considered": [
                {"source": "flag", "name": null, "file": null, "reason": "no `--profile` passed", "selected": false},
                {"source": "project-default", "name": "shared", "file": PROJECT,
                 "reason": "no `--profile` passed; `defaults.profile` in `/repo/.sparkwing/sparkwing.yaml` names `shared`",
                 "selected": true},
            ],
        })
    );
}

#[test]
fn a_read_only_cache_surface_is_carried_through() {
    let u = user(
        "profiles:\n  pr:\n    cache: { type: s3, bucket: team, prefix: cache, read_only: true }\n",
    );
    let r = resolve(Some("pr"), None, &u, Path::new(HOME)).unwrap();
    assert!(r.cache_read_only);
    assert!(render_pretty(&r).contains("s3://team/cache  (read-only)"));
    let bad = ProfilesFile::parse(
        "profiles:\n  pr:\n    logs: { type: s3, bucket: team, read_only: true }\n",
        Path::new("/p.yaml"),
        None,
    )
    .unwrap_err();
    assert!(
        sparkwing_contract::hint::with_hint(&bad).contains("unknown key `read_only`"),
        "{bad}"
    );
}

#[test]
fn trusted_keys_are_carried_through() {
    let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    let u = user(&format!(
        "profiles:\n  ci:\n    cache: {{ type: s3, bucket: team, prefix: cache, trusted_keys: [{key}] }}\n"
    ));
    let r = resolve(Some("ci"), None, &u, Path::new(HOME)).unwrap();
    assert_eq!(r.cache_trusted_keys, vec![key.to_string()]);
    assert!(render_pretty(&r).contains("s3://team/cache  (signed: 1 trusted key)"));
}
