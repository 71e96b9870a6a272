//! One test per key input proving it changes the key, and tests proving that a checkout path,
//! an mtime and build leftovers do not.

use super::*;
use std::collections::HashMap;
use std::fs;
use std::process::Command;

const SDK: &str = "0.1.0+3f2a9c1b77e0";
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// A repository with a `.sparkwing/` package and a path dependency beside it.
struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("checkout");
        let r = Repo { _tmp: tmp, root };
        r.write(
            ".sparkwing/Cargo.toml",
            "[package]\nname = \"pipelines\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nsparkwing = \"0.1\"\nhelper = { path = \"../tools/helper\" }\n",
        );
        r.write(".sparkwing/src/main.rs", "fn main() { helper::hi(); }\n");
        r.write(
            ".sparkwing/rust-toolchain.toml",
            "[toolchain]\nchannel = \"1.95.0\"\n",
        );
        r.write(".sparkwing/sparkwing.yaml", "pipelines:\n  - name: ci\n");
        r.write(
            "tools/helper/Cargo.toml",
            "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        );
        r.write("tools/helper/src/lib.rs", "pub fn hi() {}\n");
        r
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn dir(&self) -> PathBuf {
        self.root.join(".sparkwing")
    }

    fn key_with(&self, env: &[(&str, &str)], f: impl FnOnce(&mut Req)) -> CacheKey {
        let mut req = Req {
            sdk: SDK.into(),
            target: TARGET.into(),
            profile: BuildProfile::Release,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            format: KEY_FORMAT_VERSION,
        };
        f(&mut req);
        let vars = req.env.clone();
        let lookup = move |n: &str| vars.get(n).cloned();
        let dir = self.dir();
        compute_versioned(
            &KeyRequest {
                sparkwing_dir: &dir,
                sdk_version: &req.sdk,
                target: &req.target,
                profile: req.profile,
                env: &lookup,
            },
            req.format,
        )
        .unwrap()
    }

    fn key(&self) -> CacheKey {
        self.key_with(&[], |_| {})
    }
}

struct Req {
    sdk: String,
    target: String,
    profile: BuildProfile,
    env: HashMap<String, String>,
    format: u32,
}

/// Asserts the key changed and exactly `label` explains it.
fn assert_changed_by(before: &CacheKey, after: &CacheKey, label: &str) {
    assert_ne!(before.key, after.key, "{label} must change the key");
    assert_eq!(
        changed_inputs(&before.inputs, &after.inputs),
        vec![label.to_string()],
        "only `{label}` should explain the change"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn key_is_stable_and_hex() {
    let r = Repo::new();
    let a = r.key();
    let b = r.key();
    assert_eq!(a, b);
    assert_eq!(a.key.len(), 32);
    assert!(a.key.bytes().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn format_version_changes_key() {
    let r = Repo::new();
    let after = r.key_with(&[], |q| q.format = KEY_FORMAT_VERSION + 1);
    assert_changed_by(&r.key(), &after, "format");
}

#[test]
fn sdk_version_changes_key() {
    let r = Repo::new();
    let after = r.key_with(&[], |q| q.sdk = "0.1.0+000000000000".into());
    assert_changed_by(&r.key(), &after, "sdk");
}

#[test]
fn target_changes_key() {
    let r = Repo::new();
    let after = r.key_with(&[], |q| q.target = "aarch64-unknown-linux-gnu".into());
    assert_changed_by(&r.key(), &after, "target");
}

#[test]
fn pinned_toolchain_changes_key_and_is_reported_as_pinned() {
    let r = Repo::new();
    let before = r.key();
    let tc = before
        .inputs
        .iter()
        .find(|i| i.label == "toolchain")
        .unwrap();
    assert!(
        tc.detail
            .contains("pinned in `.sparkwing/rust-toolchain.toml`"),
        "{}",
        tc.detail
    );
    // Editing the file also changes the tree input; the toolchain must change on its own too.
    r.write(
        ".sparkwing/rust-toolchain.toml",
        "[toolchain]\nchannel = \"1.94.1\"\n",
    );
    let after = r.key();
    assert_ne!(before.key, after.key);
    let changed = changed_inputs(&before.inputs, &after.inputs);
    assert!(changed.contains(&"toolchain".to_string()), "{changed:?}");
}

#[test]
fn rustup_toolchain_variable_overrides_the_file() {
    let r = Repo::new();
    let after = r.key_with(&[("RUSTUP_TOOLCHAIN", "1.90.0")], |_| {});
    assert_changed_by(&r.key(), &after, "toolchain");
}

/// A fake compiler whose `-vV` output we control, to prove the probe result is an input.
fn fake_rustc(dir: &Path, release: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("rustc-{release}"));
    fs::write(
        &p,
        format!(
            "#!/bin/sh\nprintf 'rustc {release}\\nbinary: rustc\\ncommit-hash: abc\\nhost: {TARGET}\\nrelease: {release}\\n'\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn probed_toolchain_changes_key() {
    let r = Repo::new();
    // A moving channel is not a pin: the compiler is asked.
    r.write(
        ".sparkwing/rust-toolchain.toml",
        "[toolchain]\nchannel = \"stable\"\n",
    );
    let bin = tempfile::tempdir().unwrap();
    let a = fake_rustc(bin.path(), "1.95.0");
    let b = fake_rustc(bin.path(), "1.95.1");
    let ka = r.key_with(&[("RUSTC", a.to_str().unwrap())], |_| {});
    let kb = r.key_with(&[("RUSTC", b.to_str().unwrap())], |_| {});
    assert_changed_by(&ka, &kb, "toolchain");
    let tc = ka.inputs.iter().find(|i| i.label == "toolchain").unwrap();
    assert!(tc.detail.contains("rustc 1.95.0"), "{}", tc.detail);
}

#[test]
fn failing_rustc_probe_is_a_clear_error() {
    let r = Repo::new();
    fs::remove_file(r.dir().join("rust-toolchain.toml")).unwrap();
    let vars: HashMap<String, String> =
        [("RUSTC".to_string(), "/nonexistent/rustc".to_string())].into();
    let lookup = move |n: &str| vars.get(n).cloned();
    let dir = r.dir();
    let err = compute_key(&KeyRequest {
        sparkwing_dir: &dir,
        sdk_version: SDK,
        target: TARGET,
        profile: BuildProfile::Release,
        env: &lookup,
    })
    .unwrap_err();
    let err = sparkwing_contract::hint::with_hint(&err);
    assert!(err.contains("`/nonexistent/rustc -vV`"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("rust-toolchain.toml"),
        "{err}"
    );
}

#[test]
fn profile_changes_key() {
    let r = Repo::new();
    let after = r.key_with(&[], |q| q.profile = BuildProfile::Dev);
    assert_changed_by(&r.key(), &after, "profile");
}

/// The settings sparkwing adds to a release build are part of the key (a CLI that builds with
/// others must not reuse the binary) and `explain` names them; a manifest with its own
/// `[profile]` table replaces them, which both the tree and the profile input then show.
#[test]
fn the_added_build_settings_are_part_of_the_profile_input() {
    let r = Repo::new();
    let before = r.key();
    let detail = |k: &CacheKey| {
        k.inputs
            .iter()
            .find(|i| i.label == "profile")
            .map(|i| i.detail.clone())
            .unwrap()
    };
    assert!(
        detail(&before).contains("opt-level=1") && detail(&before).contains("package.tokio"),
        "{}",
        detail(&before)
    );
    let text = fs::read_to_string(r.dir().join("Cargo.toml")).unwrap();
    r.write(
        ".sparkwing/Cargo.toml",
        &format!("{text}\n[profile.release]\nopt-level = 3\n"),
    );
    let after = r.key();
    assert_eq!(
        changed_inputs(&before.inputs, &after.inputs),
        vec!["profile".to_string(), "tree".to_string()]
    );
    assert_eq!(detail(&after), "release");
}

#[test]
fn rustc_env_changes_key() {
    let r = Repo::new();
    let before = r.key();
    for (name, value) in [
        ("RUSTFLAGS", "-C target-cpu=native"),
        ("CARGO_ENCODED_RUSTFLAGS", "-Copt-level=1"),
        ("CARGO_BUILD_RUSTFLAGS", "-Cdebuginfo=0"),
        ("CARGO_PROFILE_RELEASE_LTO", "true"),
        ("CARGO_PROFILE_RELEASE_BUILD_OVERRIDE_OPT_LEVEL", "3"),
        (
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-Cpanic=abort",
        ),
        ("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER", "clang"),
    ] {
        let after = r.key_with(&[(name, value)], |_| {});
        assert_changed_by(&before, &after, "rustc-env");
        let detail = &after
            .inputs
            .iter()
            .find(|i| i.label == "rustc-env")
            .unwrap()
            .detail;
        assert_eq!(detail, name, "names are shown, values are not");
    }
    // What does not reach this build's rustc does not count.
    for (name, value) in [
        ("CARGO_PROFILE_DEV_LTO", "true"),
        ("HOME", "/elsewhere"),
        ("RUSTFLAGS", ""),
    ] {
        assert_eq!(
            r.key_with(&[(name, value)], |_| {}).key,
            before.key,
            "{name}"
        );
    }
}

#[test]
fn tree_content_changes_key() {
    let r = Repo::new();
    let before = r.key();
    r.write(
        ".sparkwing/src/main.rs",
        "fn main() { helper::hi(); helper::hi(); }\n",
    );
    assert_changed_by(&before, &r.key(), "tree");
}

#[test]
fn tree_new_file_and_rename_change_key() {
    let r = Repo::new();
    let before = r.key();
    r.write(".sparkwing/src/jobs.rs", "pub fn x() {}\n");
    let added = r.key();
    assert_changed_by(&before, &added, "tree");
    fs::rename(r.dir().join("src/jobs.rs"), r.dir().join("src/steps.rs")).unwrap();
    assert_changed_by(&added, &r.key(), "tree");
}

#[test]
fn executable_bit_changes_key() {
    use std::os::unix::fs::PermissionsExt;
    let r = Repo::new();
    r.write(".sparkwing/scripts/gen.sh", "#!/bin/sh\n");
    let before = r.key();
    fs::set_permissions(
        r.dir().join("scripts/gen.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    assert_changed_by(&before, &r.key(), "tree");
}

#[test]
fn cargo_lock_changes_key() {
    let r = Repo::new();
    let before = r.key();
    assert_eq!(
        before
            .inputs
            .iter()
            .find(|i| i.label == "Cargo.lock")
            .unwrap()
            .detail,
        "absent"
    );
    r.write(".sparkwing/Cargo.lock", "version = 4\n");
    let created = r.key();
    assert_changed_by(&before, &created, "Cargo.lock");
    r.write(
        ".sparkwing/Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"x\"\n",
    );
    assert_changed_by(&created, &r.key(), "Cargo.lock");
}

#[test]
fn resolved_overlay_changes_key() {
    let r = Repo::new();
    let before = r.key();
    r.write(".sparkwing/.resolved.lock", "version = 4\n");
    assert_changed_by(&before, &r.key(), ".resolved.lock");
}

#[test]
fn repository_cargo_config_changes_key() {
    let r = Repo::new();
    let before = r.key();
    r.write(
        ".cargo/config.toml",
        "[build]\nrustflags = [\"-Ctarget-cpu=native\"]\n",
    );
    assert_changed_by(&before, &r.key(), "cargo-config");
}

#[test]
fn path_dependency_changes_key_and_is_named_by_package() {
    let r = Repo::new();
    let before = r.key();
    assert!(
        before.inputs.iter().any(|i| i.label == "path-dep:helper"),
        "{:?}",
        before.inputs
    );
    r.write(
        "tools/helper/src/lib.rs",
        "pub fn hi() { println!(\"hi\"); }\n",
    );
    assert_changed_by(&before, &r.key(), "path-dep:helper");
}

#[test]
fn transitive_path_dependency_changes_key() {
    let r = Repo::new();
    r.write(
        "tools/helper/Cargo.toml",
        "[package]\nname = \"helper\"\nversion = \"0.1.0\"\n\n[dependencies]\ndeep = { path = \"../deep\" }\n",
    );
    r.write(
        "tools/deep/Cargo.toml",
        "[package]\nname = \"deep\"\nversion = \"0.1.0\"\n",
    );
    r.write("tools/deep/src/lib.rs", "pub fn d() {}\n");
    let before = r.key();
    r.write("tools/deep/src/lib.rs", "pub fn d() { let _ = 1; }\n");
    assert_changed_by(&before, &r.key(), "path-dep:deep");
}

#[test]
fn missing_path_dependency_names_the_manifest() {
    let r = Repo::new();
    fs::remove_dir_all(r.root.join("tools/helper")).unwrap();
    let lookup = |_: &str| None;
    let dir = r.dir();
    let err = compute_key(&KeyRequest {
        sparkwing_dir: &dir,
        sdk_version: SDK,
        target: TARGET,
        profile: BuildProfile::Release,
        env: &lookup,
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`helper`") && err.contains("`../tools/helper`"),
        "{err}"
    );
    assert!(err.contains(".sparkwing/Cargo.toml`"), "{err}");
}

#[test]
fn checkout_path_does_not_change_key() {
    let r = Repo::new();
    let other = tempfile::tempdir().unwrap();
    let moved = other.path().join("somewhere/else/entirely");
    copy_tree(&r.root, &moved);
    let lookup = |_: &str| None;
    let moved_dir = moved.join(".sparkwing");
    let k2 = compute_key(&KeyRequest {
        sparkwing_dir: &moved_dir,
        sdk_version: SDK,
        target: TARGET,
        profile: BuildProfile::Release,
        env: &lookup,
    })
    .unwrap();
    let k1 = r.key();
    assert_eq!((k1.key, k1.inputs), (k2.key, k2.inputs));
}

#[test]
fn mtime_does_not_change_key() {
    let r = Repo::new();
    let before = r.key();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for f in [".sparkwing/src/main.rs", "tools/helper/src/lib.rs"] {
        let file = fs::OpenOptions::new()
            .write(true)
            .open(r.root.join(f))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    assert_eq!(before, r.key());
}

#[test]
fn build_leftovers_do_not_change_key() {
    let r = Repo::new();
    r.write(".sparkwing/Cargo.lock", "version = 4\n");
    let before = r.key();
    // What a build leaves behind, in the package and in the path dependency.
    r.write(".sparkwing/target/release/pipelines", "\x7fELF");
    r.write(
        ".sparkwing/target/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55",
    );
    r.write("tools/helper/target/debug/libhelper.rlib", "x");
    r.write("tools/helper/Cargo.lock", "version = 4\n");
    // A relocated target directory nested deeper is recognised by its tag.
    r.write(
        ".sparkwing/build-out/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55",
    );
    r.write(".sparkwing/build-out/debug/x", "x");
    r.write(".sparkwing/.git/HEAD", "ref: refs/heads/main\n");
    assert_eq!(before, r.key());
}

/// Cargo compiles `build.rs`, modules and `include!`d files whether git ignores them or not, so
/// an exclude rule local to one machine must not leave them out of the key.
#[test]
fn git_ignored_files_count_like_tracked_ones() {
    let r = Repo::new();
    git(&r.root, &["init", "-q"]);
    r.write(".gitignore", "*.log\n/.sparkwing/scratch/\n");
    std::fs::create_dir_all(r.root.join(".git/info")).unwrap();
    r.write(".git/info/exclude", "build.rs\n");
    let before = r.key();
    r.write(".sparkwing/build.rs", "fn main() {}\n");
    let with_build_rs = r.key();
    assert_ne!(before.key, with_build_rs.key, "an excluded build.rs counts");
    r.write(".sparkwing/scratch/included.rs", "pub const X: u32 = 1;\n");
    let with_scratch = r.key();
    assert_ne!(
        with_build_rs.key, with_scratch.key,
        "an ignored directory counts"
    );
    r.write(".sparkwing/scratch/included.rs", "pub const X: u32 = 2;\n");
    assert_ne!(with_scratch.key, r.key().key, "its content counts");
}

#[test]
fn explain_lists_every_input_with_its_digest() {
    let r = Repo::new();
    let k = r.key();
    let text = render_explain(&k);
    assert!(text.starts_with(&format!("pipeline cache key {}\n", k.key)));
    for label in [
        "format",
        "sdk",
        "target",
        "toolchain",
        "profile",
        "rustc-env",
        "tree",
        "Cargo.lock",
        ".resolved.lock",
        "cargo-config",
        "path-dep:helper",
    ] {
        let input = k.inputs.iter().find(|i| i.label == label).unwrap();
        assert_eq!(input.digest.len(), 12);
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(label) && l.contains(&input.digest)),
            "{label} missing from:\n{text}"
        );
    }
    // Machine paths stay out of what is shown and stored.
    assert!(!text.contains(r.root.to_str().unwrap()), "{text}");
}

#[test]
fn missing_package_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".sparkwing");
    let lookup = |_: &str| None;
    let err = compute_key(&KeyRequest {
        sparkwing_dir: &dir,
        sdk_version: SDK,
        target: TARGET,
        profile: BuildProfile::Release,
        env: &lookup,
    })
    .unwrap_err();
    let err = sparkwing_contract::hint::with_hint(&err);
    assert!(
        err.contains("not a directory") && err.contains("sparkwing pipeline new"),
        "{err}"
    );
}
