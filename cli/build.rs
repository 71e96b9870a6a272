//! Embeds the pipeline SDK (the crates a `.sparkwing/` package builds against) into the CLI, so
//! that `sparkwing run` works on a machine that has only this binary and a Rust toolchain: the
//! CLI writes its own copy of the SDK out and points cargo at it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Crates of the SDK, by folder, relative to the workspace root.
const SDK_CRATES: &[&str] = &["contract", "storage", "sparkwing"];

/// A crate manifest's name in the packaged CLI's `sdk/` folder: cargo leaves any folder that holds
/// a `Cargo.toml` out of a package (`scripts/vendor-sdk.sh` writes these).
const VENDORED_MANIFEST: &str = "Cargo.toml.sdk";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = sdk_root(&manifest_dir);

    let mut files = Vec::new();
    for krate in SDK_CRATES {
        let dir = root.join(krate);
        println!("cargo:rerun-if-changed={}", dir.display());
        collect(&root, &dir, &mut files);
    }
    files.sort();
    assert!(
        files.iter().any(|(rel, _)| rel == "sparkwing/src/lib.rs"),
        "no SDK sources under `{}`: build the CLI from the sparkwing repository, or package it \
         after `scripts/vendor-sdk.sh`",
        root.display()
    );

    // The lockfile the SDK was tested with seeds a new pipeline package's lockfile.
    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let mut hasher = blake3::Hasher::new();
    let mut code =
        String::from("/// SDK source files: (path relative to the SDK root, contents).\n");
    code.push_str("pub static SDK_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        let mut abs = abs.clone();
        let mut bytes = std::fs::read(&abs).expect("read SDK file");
        if rel.ends_with("/Cargo.toml") {
            // Test, example and bench targets are not shipped: their manifest entries go too.
            bytes = packaged_manifest(&String::from_utf8(bytes).expect("manifests are UTF-8"))
                .into_bytes();
            abs = out_dir.join(rel.replace('/', "__"));
            std::fs::write(&abs, &bytes).expect("write the packaged manifest");
        }
        hasher.update(rel.as_bytes());
        hasher.update(&[0]);
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        let _ = writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        );
    }
    code.push_str("];\n");
    let hash = hasher.finalize().to_hex();
    let _ = writeln!(
        code,
        "/// Content hash of the embedded SDK (first 12 hex of blake3).\npub const SDK_CONTENT_HASH: &str = {:?};",
        &hash[..12]
    );
    let _ = writeln!(
        code,
        "/// The workspace lockfile the SDK was tested with.\npub static SEED_LOCKFILE: &[u8] = include_bytes!({:?});",
        lock.display().to_string()
    );

    let out = out_dir.join("sdk_files.rs");
    std::fs::write(&out, code).expect("write sdk_files.rs");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "stable".into());
    println!("cargo:rustc-env=SPARKWING_BUILD_RUSTC={version}");
    println!(
        "cargo:rustc-env=SPARKWING_BUILD_TARGET={}",
        std::env::var("TARGET").expect("cargo sets it")
    );
    println!(
        "cargo:rustc-env=SPARKWING_BUILD_COMMIT={}",
        commit(&manifest_dir)
    );
    println!("cargo:rustc-env=SPARKWING_SDK_HASH={}", &hash[..12]);
}

/// The commit the CLI is built from, for `sparkwing --version`: `SPARKWING_BUILD_COMMIT` when the
/// release build sets it, else the checkout's `HEAD` (with `-dirty` for uncommitted changes),
/// else `unknown` (a crate built outside a repository).
fn commit(manifest_dir: &Path) -> String {
    println!("cargo:rerun-if-env-changed=SPARKWING_BUILD_COMMIT");
    if let Ok(c) = std::env::var("SPARKWING_BUILD_COMMIT")
        && !c.trim().is_empty()
    {
        return c.trim().to_string();
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(manifest_dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(sha) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    // A new commit or checkout moves HEAD's reflog: build again then.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
    }
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{sha}-dirty") } else { sha }
}

/// Where the SDK crates are: the workspace around this package (a checkout of the repository), or
/// the `sdk/` copy inside this package (the crate as published, unpacked by `cargo install`).
/// Returns the folder that holds `sparkwing/`, `contract/`, … and `Cargo.lock`.
fn sdk_root(manifest_dir: &Path) -> PathBuf {
    let workspace = manifest_dir
        .parent()
        .expect("a package lives in a folder")
        .to_path_buf();
    if workspace.join("sparkwing/Cargo.toml").is_file() && workspace.join("Cargo.lock").is_file() {
        return workspace;
    }
    manifest_dir.join("sdk")
}

/// Directories directly under an SDK crate that a pipeline build never reads: the crate's own
/// tests, examples, benches and the example template. Leaving them out keeps the CLI small and
/// means that editing a test never changes any pipeline's cache key.
const NOT_SHIPPED: &[&str] = &["tests", "examples", "benches", "templates"];

/// Source files a pipeline build never compiles: the masking invariant's checker, built only for
/// the SDK's own tests and its `fuzz` feature (which no pipeline enables). Not shipped, so editing
/// it changes no user's cache key.
const TEST_ONLY_FILES: &[&str] = &["sparkwing/src/fuzz.rs"];

/// A crate manifest as shipped: no `[[test]]`, `[[example]]` or `[[bench]]` tables and no
/// `[dev-dependencies]` (what they serve is not shipped), and auto-discovery of those targets off.
fn packaged_manifest(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = matches!(
                t,
                "[[test]]" | "[[example]]" | "[[bench]]" | "[dev-dependencies]"
            );
        }
        if skipping {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if t == "[package]" {
            out.push_str("autotests = false\nautoexamples = false\nautobenches = false\n");
        }
    }
    out
}

/// Every shipped file under `dir` (not build outputs, dotfiles or [`NOT_SHIPPED`] directories):
/// its path relative to `root` with `/` (a vendored manifest under its real name, `Cargo.toml`),
/// and where it is.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        let rel_path = path.strip_prefix(root).expect("under root");
        if TEST_ONLY_FILES.iter().any(|f| Path::new(f) == rel_path) {
            continue;
        }
        let crate_level = dir.parent() == Some(root);
        if crate_level && path.is_dir() && NOT_SHIPPED.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.is_file() {
            let rel = path.strip_prefix(root).expect("under root");
            let mut rel: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().to_string())
                .collect();
            if let Some(last) = rel.last_mut().filter(|n| *n == VENDORED_MANIFEST) {
                *last = "Cargo.toml".into();
            }
            out.push((rel.join("/"), path));
        }
    }
}
