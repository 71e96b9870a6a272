//! Sparks against real cargo and the real registry: a tiny pipeline package that depends on
//! `itoa` (the spark) and on an unpublished SDK crate that only the patch configuration can
//! provide, so every cargo call that forgot the patch would fail. Nothing is compiled; cargo only
//! resolves.

use sparkwing_bincache::BuildProfile;
use sparkwing_bincache::BuildRequest;
use sparkwing_bincache::sparks::{
    OVERLAY_FILE, OverlayChange, SparksError, render_report, resolve, use_committed,
};
use sparkwing_config::Spark;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SDK: &str = "sparkwing-test-sdk-unpublished";
const OLD_ITOA: &str = "1.0.1";

struct Project {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    target: PathBuf,
    patch: Vec<(String, PathBuf)>,
    wrapper: OsString,
}

impl Project {
    /// A pipeline package depending on `deps` (plus the SDK), its lockfile seeded with itoa 1.0.1.
    fn new(deps: &str) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        write(
            "repo/.sparkwing/Cargo.toml",
            &format!(
                "[package]\nname = \"pipelines\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [dependencies]\n{SDK} = \"0.1\"\n{deps}"
            ),
        );
        write("repo/.sparkwing/src/main.rs", "fn main() {}\n");
        write(
            "sdk/Cargo.toml",
            &format!("[package]\nname = \"{SDK}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n"),
        );
        write("sdk/src/lib.rs", "");
        // Every cargo call the library makes goes through this script, which records its argv.
        let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let log = root.join("cargo-calls.log");
        let wrapper = root.join("cargo-wrapper");
        write(
            "cargo-wrapper",
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real
            ),
        );
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(&log, "").unwrap();
        let p = Project {
            dir: root.join("repo/.sparkwing"),
            target: root.join("target"),
            patch: vec![(SDK.to_string(), root.join("sdk"))],
            wrapper: wrapper.into_os_string(),
            tmp,
        };
        p.real_cargo(&["update", "-p", "itoa", "--precise", OLD_ITOA]);
        p
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn request(&self) -> BuildRequest<'_> {
        BuildRequest {
            sparkwing_dir: &self.dir,
            sdk_patch: &self.patch,
            target_dir: &self.target,
            profile: BuildProfile::Release,
            cargo: &self.wrapper,
            keyed_roots: &[],
            sdk_root: None,
            repo_root: None,
        }
    }

    /// Cargo in the package, outside the library (setup and cross-checks).
    fn real_cargo(&self, args: &[&str]) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let (name, path) = &self.patch[0];
        let out = Command::new(cargo)
            .args(args)
            .arg("--config")
            .arg(format!(
                "patch.crates-io.{name}.path=\"{}\"",
                path.display()
            ))
            .current_dir(self.dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.tmp.path().join("cargo-calls.log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn clear_calls(&self) {
        fs::write(self.tmp.path().join("cargo-calls.log"), "").unwrap();
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.dir().join(name)).ok()
    }

    fn locked(&self, file: &str, krate: &str) -> Vec<String> {
        let text = String::from_utf8(self.read(file).unwrap()).unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        t["package"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"].as_str() == Some(krate))
            .map(|p| p["version"].as_str().unwrap().to_string())
            .collect()
    }
}

fn spark(name: &str, version: &str) -> Spark {
    Spark {
        name: name.into(),
        version: version.into(),
        requirement: version.parse().unwrap(),
    }
}

/// The newest itoa 1.x as cargo itself resolves it in a fresh copy of the package.
fn newest_itoa() -> semver::Version {
    let fresh = tempfile::tempdir().unwrap();
    fs::create_dir_all(fresh.path().join("src")).unwrap();
    fs::write(
        fresh.path().join("Cargo.toml"),
        "[package]\nname = \"fresh\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [dependencies]\nitoa = \"1\"\n",
    )
    .unwrap();
    fs::write(fresh.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .arg("generate-lockfile")
        .current_dir(fresh.path())
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = fs::read_to_string(fresh.path().join("Cargo.lock")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    t["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("itoa"))
        .map(|p| p["version"].as_str().unwrap().parse().unwrap())
        .unwrap()
}

#[test]
fn resolve_floats_the_spark_then_reports_no_change() {
    let p = Project::new("itoa = \"1\"\n");
    let sparks = [spark("itoa", "^1")];
    assert_eq!(p.locked("Cargo.lock", "itoa"), [OLD_ITOA]);
    assert!(p.read(OVERLAY_FILE).is_none());

    let report = resolve(&p.request(), &sparks).unwrap();
    let newest = newest_itoa();
    assert!(newest > OLD_ITOA.parse().unwrap());
    assert_eq!(report.overlay, OverlayChange::Created);
    assert_eq!(report.sparks.len(), 1);
    assert_eq!(report.sparks[0].old, Some(OLD_ITOA.parse().unwrap()));
    assert_eq!(report.sparks[0].new, newest);
    assert_eq!(p.locked(OVERLAY_FILE, "itoa"), [newest.to_string()]);
    assert_eq!(p.read(OVERLAY_FILE), p.read("Cargo.lock"));
    let text = render_report(&report);
    assert!(
        text.contains(&format!("itoa {OLD_ITOA} → {newest}\n")),
        "{text}"
    );
    assert!(text.contains("created .sparkwing/.resolved.lock"), "{text}");

    // Exactly one cargo call, carrying the SDK patch (without it the SDK could not resolve).
    let calls = p.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with("update --workspace -p itoa --config patch.crates-io."),
        "{calls:?}"
    );

    let overlay_before = p.read(OVERLAY_FILE).unwrap();
    let mtime = fs::metadata(p.dir().join(OVERLAY_FILE))
        .unwrap()
        .modified()
        .unwrap();
    let again = resolve(&p.request(), &sparks).unwrap();
    assert_eq!(again.overlay, OverlayChange::Unchanged);
    assert!(!again.overlay_changed());
    assert_eq!(again.changed().count(), 0);
    assert_eq!(again.sparks[0].old, Some(newest.clone()));
    assert_eq!(p.read(OVERLAY_FILE).unwrap(), overlay_before);
    assert_eq!(
        fs::metadata(p.dir().join(OVERLAY_FILE))
            .unwrap()
            .modified()
            .unwrap(),
        mtime,
        "an unchanged overlay is not rewritten"
    );
    assert!(
        render_report(&again).contains("sparks up to date (.sparkwing/.resolved.lock unchanged)")
    );
}

#[test]
fn resolve_starts_from_the_committed_overlay_and_locks_new_sparks() {
    let p = Project::new("itoa = \"1\"\n");
    // A teammate's overlay pins itoa 1.0.1 while the local Cargo.lock holds something else.
    fs::copy(p.dir().join("Cargo.lock"), p.dir().join(OVERLAY_FILE)).unwrap();
    p.real_cargo(&["update", "-p", "itoa", "--precise", "1.0.2"]);
    // A second spark that the lockfile does not hold yet.
    let manifest = p.dir().join("Cargo.toml");
    let mut m = fs::read_to_string(&manifest).unwrap();
    m.push_str("ryu = \"1\"\n");
    fs::write(&manifest, m).unwrap();
    p.clear_calls();

    let report = resolve(&p.request(), &[spark("itoa", "^1"), spark("ryu", "^1")]).unwrap();
    assert_eq!(report.overlay, OverlayChange::Updated);
    assert_eq!(
        report.sparks[0].old,
        Some(OLD_ITOA.parse().unwrap()),
        "the overlay, not Cargo.lock, is the starting point"
    );
    assert_eq!(report.sparks[1].name, "ryu");
    assert_eq!(report.sparks[1].old, None);
    assert!(
        semver::VersionReq::parse("^1")
            .unwrap()
            .matches(&report.sparks[1].new)
    );
    assert_eq!(
        p.locked(OVERLAY_FILE, "ryu"),
        [report.sparks[1].new.to_string()]
    );
    assert_eq!(p.read(OVERLAY_FILE), p.read("Cargo.lock"));
    let text = render_report(&report);
    assert!(
        text.contains(&format!("ryu (new) {}\n", report.sparks[1].new)),
        "{text}"
    );
    let calls = p.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with("update --workspace -p itoa --config"),
        "{calls:?}"
    );
}

#[test]
fn unsatisfiable_requirement_errors_and_changes_nothing() {
    let p = Project::new("itoa = \"1\"\n");
    let seed = p.read("Cargo.lock").unwrap();
    let err = resolve(&p.request(), &[spark("itoa", "^2")]).unwrap_err();
    assert!(matches!(err, SparksError::Unsatisfied { .. }), "{err:?}");
    let msg = sparkwing_contract::hint::with_hint(&err);
    assert!(msg.contains("spark `itoa` resolved to 1."), "{msg}");
    assert!(
        msg.contains("which does not satisfy `^2` from sparkwing.yaml\nhint: "),
        "{msg}"
    );
    assert_eq!(
        p.read("Cargo.lock").unwrap(),
        seed,
        "Cargo.lock is put back"
    );
    assert!(p.read(OVERLAY_FILE).is_none());
}

#[test]
fn cargo_failure_names_the_escape_hatch_and_restores_the_lockfile() {
    let p = Project::new("itoa = \"1\"\n");
    let seed = p.read("Cargo.lock").unwrap();
    // No itoa 99 exists: cargo cannot resolve.
    let manifest = p.dir().join("Cargo.toml");
    let m = fs::read_to_string(&manifest)
        .unwrap()
        .replace("itoa = \"1\"", "itoa = \"99\"");
    fs::write(&manifest, m).unwrap();
    let err = resolve(&p.request(), &[spark("itoa", "^99")]).unwrap_err();
    assert!(matches!(err, SparksError::Cargo { .. }), "{err:?}");
    let msg = sparkwing_contract::hint::with_hint(&err);
    assert!(msg.contains("SPARKWING_NO_SPARKS_RESOLVE=1 uses the committed .sparkwing/.resolved.lock without resolving"), "{msg}");
    assert!(msg.contains("update --workspace -p itoa"), "{msg}");
    assert!(p.read(OVERLAY_FILE).is_none());
    assert_eq!(p.read("Cargo.lock").unwrap(), seed);
}

#[test]
fn spark_missing_from_dependencies_errors_without_calling_cargo() {
    let p = Project::new("itoa = \"1\"\n");
    p.clear_calls();
    let err = resolve(&p.request(), &[spark("itoa", "^1"), spark("ryu", "^1.0")]).unwrap_err();
    assert!(matches!(err, SparksError::NotADependency { .. }), "{err:?}");
    let msg = sparkwing_contract::hint::with_hint(&err);
    assert!(msg.contains("spark `ryu`"), "{msg}");
    assert!(
        msg.contains("hint: add `ryu = \"1.0\"` under `[dependencies]`"),
        "{msg}"
    );
    assert!(p.calls().is_empty());
}

#[test]
fn path_spark_is_rejected() {
    let p = Project::new("itoa = \"1\"\n");
    let manifest = p.dir().join("Cargo.toml");
    let m = fs::read_to_string(&manifest).unwrap().replace(
        &format!("{SDK} = \"0.1\""),
        &format!("{SDK} = {{ path = \"../../sdk\" }}"),
    );
    fs::write(&manifest, m).unwrap();
    let err = resolve(&p.request(), &[spark(SDK, "^0.1")]).unwrap_err();
    assert!(
        matches!(err, SparksError::NotFromRegistry { kind: "a path", .. }),
        "{err:?}"
    );
}

#[test]
fn use_committed_syncs_the_lockfile_without_cargo() {
    let p = Project::new("itoa = \"1\"\n");
    let seed = p.read("Cargo.lock").unwrap();
    let err = use_committed(p.dir()).unwrap_err();
    assert!(matches!(err, SparksError::NoOverlay { .. }), "{err:?}");
    let msg = sparkwing_contract::hint::with_hint(&err);
    assert!(
        msg.contains(
            "run `sparkwing pipeline sparks update` and commit `.sparkwing/.resolved.lock`"
        ),
        "{msg}"
    );
    assert_eq!(p.read("Cargo.lock").unwrap(), seed);

    resolve(&p.request(), &[spark("itoa", "^1")]).unwrap();
    let overlay = p.read(OVERLAY_FILE).unwrap();
    assert_ne!(overlay, seed);
    // Someone's local Cargo.lock drifted back to the old pin.
    fs::write(p.dir().join("Cargo.lock"), &seed).unwrap();
    p.clear_calls();

    assert!(use_committed(p.dir()).unwrap());
    assert_eq!(p.read("Cargo.lock").unwrap(), overlay);
    assert!(!use_committed(p.dir()).unwrap(), "already in sync");
    assert_eq!(p.read(OVERLAY_FILE).unwrap(), overlay);
    assert!(p.calls().is_empty(), "no cargo call: {:?}", p.calls());
    // No temporary file is left behind in `.sparkwing/` (it would count in the cache key).
    let names: Vec<String> = fs::read_dir(p.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn renamed_dependency_and_underscore_spelling_count() {
    let p = Project::new("numfmt = { package = \"itoa\", version = \"1\" }\n");
    let report = resolve(&p.request(), &[spark("itoa", "^1")]).unwrap();
    assert_eq!(report.sparks[0].old, Some(OLD_ITOA.parse().unwrap()));
    assert!(report.sparks[0].new > OLD_ITOA.parse().unwrap());

    // The SDK is listed as `-`; a spark written with `_` is the same crate.
    let report = resolve(&p.request(), &[spark(&SDK.replace('-', "_"), "^0.1")]).unwrap();
    assert_eq!(report.sparks[0].new, "0.1.0".parse().unwrap());
}
