//! Compiled dependency sets: what their key covers, packing and unpacking a target directory,
//! and the remote rules they share with binaries (verified manifest, create-only, signatures).

use sparkwing_bincache::deps::{self, DepsError};
use sparkwing_bincache::remote::{
    FetchOutcome, ManifestFields, PublishOptions, PublishOutcome, deps_manifest_object,
    deps_object, deps_published, fetch, fetch_deps, manifest_object, publish, publish_deps,
};
use sparkwing_bincache::{BuildProfile, KeyRequest, Signer, Trust, deps_key, generate_keypair};
use sparkwing_storage::{ArtifactStore, FsArtifactStore};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

const SDK: &str = "0.1.0+3f2a9c1b77e0";
const TARGET: &str = "x86_64-unknown-linux-gnu";
const KEY: &str = "fedcba9876543210fedcba9876543210";
const FIELDS: ManifestFields<'static> = ManifestFields {
    target: TARGET,
    sdk_version: SDK,
};
const UNSIGNED: PublishOptions<'static> = PublishOptions {
    fields: FIELDS,
    signer: None,
    replace: false,
};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn package(root: &Path) -> PathBuf {
    let dir = root.join(".sparkwing");
    write(
        &dir.join("Cargo.toml"),
        "[package]\nname = \"pipes\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nsparkwing = \"0.1\"\n",
    );
    write(&dir.join("src/main.rs"), "fn main() {}\n");
    write(
        &dir.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.95.0\"\n",
    );
    write(&dir.join("Cargo.lock"), "version = 4\n");
    dir
}

fn key_of(dir: &Path, sdk: &str, profile: BuildProfile, env: &[(&str, &str)]) -> String {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |n: &str| {
        env.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .or_else(|| (n == "HOME").then(|| "/home/ci".to_string()))
    };
    deps_key(&KeyRequest {
        sparkwing_dir: dir,
        sdk_version: sdk,
        target: TARGET,
        profile,
        env: &lookup,
    })
    .unwrap()
}

#[test]
fn the_key_covers_what_dependencies_depend_on_and_not_the_pipeline_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = package(&tmp.path().join("a"));
    let base = key_of(&dir, SDK, BuildProfile::Release, &[]);
    assert_eq!(base.len(), 32);
    assert!(sparkwing_bincache::key::is_cache_key(&base));

    // Another checkout path, same contents: same key.
    let other = package(&tmp.path().join("elsewhere/b"));
    assert_eq!(key_of(&other, SDK, BuildProfile::Release, &[]), base);

    // The pipeline's own sources do not count.
    write(
        &dir.join("src/main.rs"),
        "fn main() { println!(\"new\"); }\n",
    );
    write(&dir.join("src/pipelines/ci.rs"), "pub fn ci() {}\n");
    assert_eq!(key_of(&dir, SDK, BuildProfile::Release, &[]), base);

    // Each of these does.
    let changed = |what: &str, k: String| assert_ne!(k, base, "{what} must change the key");
    changed(
        "the SDK",
        key_of(&dir, "0.1.1+000000000000", BuildProfile::Release, &[]),
    );
    changed(
        "the cargo profile",
        key_of(&dir, SDK, BuildProfile::Dev, &[]),
    );
    changed(
        "RUSTFLAGS",
        key_of(
            &dir,
            SDK,
            BuildProfile::Release,
            &[("RUSTFLAGS", "-Ctarget-cpu=native")],
        ),
    );
    changed(
        "a profile setting",
        key_of(
            &dir,
            SDK,
            BuildProfile::Release,
            &[("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")],
        ),
    );
    changed(
        "a compiler wrapper",
        key_of(
            &dir,
            SDK,
            BuildProfile::Release,
            &[("RUSTC_WRAPPER", "sccache")],
        ),
    );
    changed(
        "the cargo home",
        key_of(
            &dir,
            SDK,
            BuildProfile::Release,
            &[("CARGO_HOME", "/opt/cargo")],
        ),
    );
    write(
        &dir.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"x\"\n",
    );
    changed(
        "the lockfile",
        key_of(&dir, SDK, BuildProfile::Release, &[]),
    );
    let lock_changed = key_of(&dir, SDK, BuildProfile::Release, &[]);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    write(
        &dir.join("Cargo.toml"),
        &format!("{manifest}\n[profile.release]\nopt-level = 1\n"),
    );
    assert_ne!(
        key_of(&dir, SDK, BuildProfile::Release, &[]),
        lock_changed,
        "a [profile] table in Cargo.toml must change the key"
    );
    write(
        &dir.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.94.0\"\n",
    );
    assert_ne!(
        key_of(&dir, SDK, BuildProfile::Release, &[]),
        lock_changed,
        "the toolchain must change the key"
    );
}

/// A target directory as cargo leaves it: dependencies, a build script's output, fingerprints,
/// and the pipeline package's own entries (which a dependency set leaves out).
fn fake_target(root: &Path) -> PathBuf {
    let t = root.join("target");
    for (rel, text) in [
        ("release/deps/libserde-0123456789abcdef.rlib", "serde rlib"),
        ("release/deps/serde-0123456789abcdef.d", "dep info"),
        ("release/build/libc-1111111111111111/out/x.rs", "generated"),
        (
            "release/build/libc-1111111111111111/output",
            "cargo:rustc-cfg=x",
        ),
        (
            "release/.fingerprint/serde-0123456789abcdef/lib-serde",
            "fp",
        ),
        ("release/deps/pipes-2222222222222222", "the pipeline binary"),
        ("release/deps/pipes-2222222222222222.d", "its dep info"),
        (
            "release/.fingerprint/pipes-2222222222222222/bin-pipes",
            "its fp",
        ),
        ("release/pipes", "the binary cargo copies up"),
        ("release/incremental/x", "never shared"),
    ] {
        write(&t.join(rel), text);
    }
    t
}

fn mtime(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn pack_leaves_out_the_pipeline_and_unpack_restores_files_with_their_times() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fake_target(tmp.path());
    let rlib = src.join("release/deps/libserde-0123456789abcdef.rlib");
    let old = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&rlib)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // A linker leaves holes in executables: a sparse file is packed as a plain one.
    let holey = src.join("release/build/blake3-3333333333333333/build-script-build");
    {
        use std::io::{Seek, SeekFrom, Write};
        std::fs::create_dir_all(holey.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(&holey).unwrap();
        f.write_all(b"head").unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(b"tail").unwrap();
    }
    let archive = tmp.path().join("set.tar.lz4");
    let stats = deps::pack(
        &src,
        BuildProfile::Release,
        &["pipes".to_string()],
        None,
        &archive,
    )
    .unwrap();
    assert_eq!(stats.files, 6, "{stats:?}");
    assert!(stats.archive_bytes > 0);

    let dst = tmp.path().join("elsewhere/target");
    let restored = deps::unpack(&archive, &dst, BuildProfile::Release).unwrap();
    assert_eq!(restored.files, 6);
    let got_holey =
        std::fs::read(dst.join("release/build/blake3-3333333333333333/build-script-build"))
            .unwrap();
    assert_eq!(got_holey.len(), (1 << 20) + 4);
    assert!(got_holey.starts_with(b"head") && got_holey.ends_with(b"tail"));
    let got = dst.join("release/deps/libserde-0123456789abcdef.rlib");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "serde rlib");
    assert_eq!(mtime(&got), 1_700_000_000, "the file time must survive");
    assert!(
        dst.join("release/build/libc-1111111111111111/out/x.rs")
            .is_file()
    );
    assert!(
        dst.join("release/.fingerprint/serde-0123456789abcdef/lib-serde")
            .is_file()
    );
    for absent in [
        "release/deps/pipes-2222222222222222",
        "release/deps/pipes-2222222222222222.d",
        "release/.fingerprint/pipes-2222222222222222",
        "release/pipes",
        "release/incremental",
    ] {
        assert!(!dst.join(absent).exists(), "{absent} was restored");
    }

    // Only one build's units: entries of other builds sharing the directory stay out.
    let only: std::collections::BTreeSet<String> = ["0123456789abcdef".to_string()].into();
    let one = tmp.path().join("one-build");
    let stats = deps::pack(&src, BuildProfile::Release, &[], Some(&only), &one).unwrap();
    assert_eq!(stats.files, 3, "{stats:?}");

    // Nothing to pack is an error, not an empty set.
    let empty = tmp.path().join("empty-target");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        deps::pack(
            &empty,
            BuildProfile::Release,
            &[],
            None,
            &tmp.path().join("e")
        ),
        Err(DepsError::Empty(_))
    ));
}

/// An archive holding `name` (a path no dependency set holds) as an LZ4-compressed tar.
fn hostile_archive(path: &Path, name: &str) {
    let mut bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut bytes);
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // `set_path` refuses `..`; write the name field directly as a hostile tool would.
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &b"evil"[..]).unwrap();
        b.finish().unwrap();
    }
    let mut enc = lz4_flex::frame::FrameEncoder::new(std::fs::File::create(path).unwrap());
    std::io::Write::write_all(&mut enc, &bytes).unwrap();
    enc.finish().unwrap();
}

#[test]
fn unpack_refuses_entries_outside_the_dependency_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("target");
    for name in [
        "../escaped",
        "release/deps/../../escaped",
        "release/pipes",
        "debug/deps/libx-0.rlib",
        "/etc/evil",
    ] {
        let archive = tmp.path().join("hostile");
        hostile_archive(&archive, name);
        match deps::unpack(&archive, &dst, BuildProfile::Release) {
            Err(DepsError::BadEntry { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
        assert!(!tmp.path().join("escaped").exists());
        assert!(!dst.join("release/pipes").exists());
    }
}

#[tokio::test]
async fn remote_sets_are_verified_create_only_and_never_mistaken_for_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    let src = fake_target(tmp.path());
    let archive = tmp.path().join("set");
    deps::pack(&src, BuildProfile::Release, &[], None, &archive).unwrap();

    assert!(!deps_published(&store, KEY).await.unwrap());
    assert_eq!(
        publish_deps(&store, KEY, &archive, &UNSIGNED)
            .await
            .unwrap(),
        PublishOutcome::Published
    );
    assert!(deps_published(&store, KEY).await.unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&store.get(&deps_manifest_object(KEY)).await.unwrap()).unwrap();
    assert_eq!(manifest["kind"], "deps");
    // Create-only: a second publisher changes nothing.
    let other = tmp.path().join("other");
    std::fs::write(&other, b"another archive").unwrap();
    assert_eq!(
        publish_deps(&store, KEY, &other, &UNSIGNED).await.unwrap(),
        PublishOutcome::AlreadyPublished
    );

    let dest = tmp.path().join("fetched");
    match fetch_deps(&store, KEY, &dest, &Trust::none())
        .await
        .unwrap()
    {
        FetchOutcome::Fetched(m) => assert_eq!(m.kind.as_deref(), Some("deps")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(&archive).unwrap()
    );

    // A tampered archive is rejected and never appears at the destination.
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    store.put(&deps_object(KEY), bytes).await.unwrap();
    let dest2 = tmp.path().join("fetched2");
    match fetch_deps(&store, KEY, &dest2, &Trust::none())
        .await
        .unwrap()
    {
        FetchOutcome::Rejected { reason } => assert!(reason.contains("blake3"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(!dest2.exists());

    // A binary's manifest never vouches for a dependency set, nor the other way round.
    let bin = tmp.path().join("bin");
    std::fs::write(&bin, b"#!/bin/sh\n").unwrap();
    publish(&store, KEY, &bin, &UNSIGNED).await.unwrap();
    store
        .put(&deps_object(KEY), std::fs::read(&bin).unwrap())
        .await
        .unwrap();
    store
        .put(
            &deps_manifest_object(KEY),
            store.get(&manifest_object(KEY)).await.unwrap(),
        )
        .await
        .unwrap();
    match fetch_deps(&store, KEY, &dest2, &Trust::none())
        .await
        .unwrap()
    {
        FetchOutcome::Rejected { reason } => {
            assert!(reason.contains("not a dependency set"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let store2 = FsArtifactStore::new(tmp.path().join("bucket2"));
    publish_deps(&store2, KEY, &archive, &UNSIGNED)
        .await
        .unwrap();
    store2
        .put(
            &format!("bin/{KEY}"),
            store2.get(&deps_object(KEY)).await.unwrap(),
        )
        .await
        .unwrap();
    store2
        .put(
            &manifest_object(KEY),
            store2.get(&deps_manifest_object(KEY)).await.unwrap(),
        )
        .await
        .unwrap();
    match fetch(&store2, KEY, &dest2, &Trust::none()).await.unwrap() {
        FetchOutcome::Rejected { reason } => {
            assert!(reason.contains("not a pipeline binary"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_signed_cache_takes_only_sets_signed_by_a_trusted_key() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    let src = fake_target(tmp.path());
    let archive = tmp.path().join("set");
    deps::pack(&src, BuildProfile::Release, &[], None, &archive).unwrap();
    let (secret, _, public) = generate_keypair().unwrap();
    let signer = Signer::from_secret_key_text(&secret, None).unwrap();
    let trust = Trust::from_keys(&[public]).unwrap();

    // Unsigned: a miss with a reason in a signed cache.
    publish_deps(&store, KEY, &archive, &UNSIGNED)
        .await
        .unwrap();
    let dest = tmp.path().join("fetched");
    assert!(matches!(
        fetch_deps(&store, KEY, &dest, &trust).await.unwrap(),
        FetchOutcome::Rejected { .. }
    ));
    assert!(!dest.exists());

    let signed = FsArtifactStore::new(tmp.path().join("signed"));
    let opts = PublishOptions {
        signer: Some(&signer),
        ..UNSIGNED
    };
    publish_deps(&signed, KEY, &archive, &opts).await.unwrap();
    assert!(matches!(
        fetch_deps(&signed, KEY, &dest, &trust).await.unwrap(),
        FetchOutcome::Fetched(_)
    ));
}
