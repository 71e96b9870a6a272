//! Sparks through the CLI: `pipeline sparks update` refreshes the committed overlay, a default
//! run re-resolves, and `SPARKWING_NO_SPARKS_RESOLVE=1` makes no cargo call but the build itself
//! (none at all on a cache hit). Every cargo call goes through a wrapper that logs it.

use crate::support::{World, fixture_repo};
use std::os::unix::fs::PermissionsExt;

fn real_cargo() -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v cargo"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn calls(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn sparks_resolve_update_and_no_resolve() {
    let repo = fixture_repo("sample");
    let manifest = repo.join(".sparkwing/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("[dependencies]\n", "[dependencies]\nitoa = \"1\"\n"),
    )
    .unwrap();
    let yaml = repo.join(".sparkwing/sparkwing.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(
        &yaml,
        format!("{text}sparks:\n  - name: itoa\n    version: \"^1\"\n"),
    )
    .unwrap();

    let mut w = World::new(repo.clone());
    let log = w.home.join("cargo-calls.log");
    let wrapper = w.home.join("cargo-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real_cargo()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    w.set("SPARKWING_CARGO", wrapper.to_str().unwrap());

    let r = w.run(&["pipeline", "sparks", "update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("itoa"), "{}", r.all());
    let overlay = repo.join(".sparkwing/.resolved.lock");
    assert!(overlay.is_file());
    assert!(
        calls(&log).iter().any(|c| c == "update"),
        "{:?}",
        calls(&log)
    );
    let overlay_bytes = std::fs::read(&overlay).unwrap();

    // Trusting the committed overlay: the build is the only cargo call.
    std::fs::remove_file(&log).ok();
    let mut trusted = World::new(repo.clone());
    trusted.home = w.home.clone();
    trusted.env = w.env.clone();
    trusted.set("SPARKWING_NO_SPARKS_RESOLVE", "1");
    let r = trusted.run(&["run", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(calls(&log), ["build"], "only the build may call cargo");

    // A cache hit under the same setting starts no cargo at all.
    std::fs::remove_file(&log).ok();
    let r = trusted.run(&["run", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(calls(&log).is_empty(), "{:?}", calls(&log));

    // The default run refreshes the overlay (one `cargo update`), which is unchanged here, so the
    // binary is still a cache hit.
    let r = w.run(&["run", "hello"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(calls(&log), ["update"]);
    assert_eq!(std::fs::read(&overlay).unwrap(), overlay_bytes);

    // A committed overlay is required when resolving is off.
    std::fs::remove_file(&overlay).unwrap();
    let r = trusted.run(&["run", "hello"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("sparks update"), "{}", r.all());
}
