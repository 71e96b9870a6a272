//! The remote binary cache against a real filesystem artifact store.

use sparkwing_bincache::remote::{
    FetchOutcome, Manifest, ManifestFields, PublishOptions, PublishOutcome, binary_object, fetch,
    manifest_object, publish,
};
use sparkwing_bincache::{Signer, Trust, generate_keypair};
use sparkwing_storage::{ArtifactStore, FsArtifactStore};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const FIELDS: ManifestFields<'static> = ManifestFields {
    target: "x86_64-unknown-linux-gnu",
    sdk_version: "0.1.0+3f2a9c1b77e0",
};
const UNSIGNED: PublishOptions<'static> = PublishOptions {
    fields: FIELDS,
    signer: None,
    replace: false,
};

/// Runs a freshly written executable. Another test thread forking at the moment the file was
/// open for writing can hold that descriptor until its exec, which makes this exec fail with
/// ETXTBSY for a moment; that is a property of the test process, not of the code under test.
fn run(path: &Path) -> String {
    for _ in 0..50 {
        match std::process::Command::new(path).output() {
            Ok(out) => return String::from_utf8_lossy(&out.stdout).trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("run {}: {e}", path.display()),
        }
    }
    panic!("{} stayed busy", path.display())
}

fn binary(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("built");
    std::fs::write(&p, format!("#!/bin/sh\necho {text}\n")).unwrap();
    p
}

#[tokio::test]
async fn publish_then_fetch_verifies_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    let bin = binary(tmp.path(), "remote");
    assert_eq!(
        publish(&store, KEY, &bin, &UNSIGNED).await.unwrap(),
        PublishOutcome::Published
    );
    let m: Manifest =
        serde_json::from_slice(&store.get(&manifest_object(KEY)).await.unwrap()).unwrap();
    assert_eq!(m.format_version, 1);
    assert_eq!(m.key, KEY);
    assert_eq!(m.target, FIELDS.target);
    assert_eq!(m.sdk_version, FIELDS.sdk_version);
    assert_eq!(
        m.blake3,
        blake3::hash(&std::fs::read(&bin).unwrap())
            .to_hex()
            .as_str()
    );

    // A second machine: different directory, fetch into a staging dir and run it.
    let staging = tmp.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let dest = staging.join("pipeline");
    let outcome = fetch(&store, KEY, &dest, &Trust::none()).await.unwrap();
    assert_eq!(outcome.manifest(), Some(m));
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(run(&dest), "remote");
    // Only the binary is left behind: the temporary file is gone.
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 1);
}

#[tokio::test]
async fn missing_key_is_a_quiet_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    let dest = tmp.path().join("pipeline");
    assert_eq!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::NotFound
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn tampered_binary_or_manifest_is_rejected_and_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    let bin = binary(tmp.path(), "good");
    publish(&store, KEY, &bin, &UNSIGNED).await.unwrap();
    let good_manifest = store.get(&manifest_object(KEY)).await.unwrap();
    let dest = tmp.path().join("pipeline");

    // Same size, other bytes.
    store
        .put(&binary_object(KEY), b"#!/bin/sh\necho evil\n".to_vec())
        .await
        .unwrap();
    match fetch(&store, KEY, &dest, &Trust::none()).await.unwrap() {
        FetchOutcome::Rejected { reason } => assert!(reason.contains("blake3"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!dest.exists());

    // Truncated.
    store
        .put(&binary_object(KEY), b"#!".to_vec())
        .await
        .unwrap();
    match fetch(&store, KEY, &dest, &Trust::none()).await.unwrap() {
        FetchOutcome::Rejected { reason } => assert!(reason.contains("bytes"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }

    // A manifest for another key, an unknown format, garbage.
    let mut m: serde_json::Value = serde_json::from_slice(&good_manifest).unwrap();
    m["key"] = "ffffffffffffffffffffffffffffffff".into();
    store
        .put(&manifest_object(KEY), m.to_string().into_bytes())
        .await
        .unwrap();
    assert!(matches!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::Rejected { .. }
    ));
    m["key"] = KEY.into();
    m["format_version"] = 99.into();
    store
        .put(&manifest_object(KEY), m.to_string().into_bytes())
        .await
        .unwrap();
    assert!(matches!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::Rejected { .. }
    ));
    store
        .put(&manifest_object(KEY), b"{".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::Rejected { .. }
    ));

    // A manifest without its binary.
    store
        .put(&manifest_object(KEY), good_manifest)
        .await
        .unwrap();
    store.delete(&binary_object(KEY)).await.unwrap();
    match fetch(&store, KEY, &dest, &Trust::none()).await.unwrap() {
        FetchOutcome::Rejected { reason } => assert!(reason.contains("does not"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!dest.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".part-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[tokio::test]
async fn second_publish_is_already_published_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    assert!(store.supports_conditional().await.unwrap());
    publish(&store, KEY, &binary(tmp.path(), "first"), &UNSIGNED)
        .await
        .unwrap();
    let before = store.get(&binary_object(KEY)).await.unwrap();
    let again = publish(&store, KEY, &binary(tmp.path(), "second build"), &UNSIGNED)
        .await
        .unwrap();
    assert_eq!(again, PublishOutcome::AlreadyPublished);
    assert_eq!(store.get(&binary_object(KEY)).await.unwrap(), before);
}

/// A binary stored without a manifest was not uploaded by this process: it is never described
/// (a reader job could have planted it), never executed, and a publisher replaces it with its own
/// build.
#[tokio::test]
async fn binary_without_manifest_is_never_vouched_for_but_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    store
        .put(&binary_object(KEY), b"#!/bin/sh\necho planted\n".to_vec())
        .await
        .unwrap();
    let dest = tmp.path().join("pipeline");
    assert_eq!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::NotFound,
        "no manifest: a miss, never an execution"
    );
    let started = std::time::Instant::now();
    let outcome = publish(&store, KEY, &binary(tmp.path(), "ours"), &UNSIGNED)
        .await
        .unwrap();
    assert_eq!(outcome, PublishOutcome::Replaced);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "waits for a concurrent publisher's manifest first"
    );
    let m: Manifest =
        serde_json::from_slice(&store.get(&manifest_object(KEY)).await.unwrap()).unwrap();
    assert_eq!(
        m.blake3,
        blake3::hash(&std::fs::read(binary(tmp.path(), "ours")).unwrap())
            .to_hex()
            .as_str(),
        "the manifest describes the bytes this process uploaded"
    );
    assert!(matches!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::Fetched(_)
    ));
    assert_eq!(run(&dest), "ours");
}

/// An entry that fails verification is replaced by a publisher that rejected it, so the next
/// machine finds a good pair instead of paying for the bad one again.
#[tokio::test]
async fn a_rejected_entry_is_repaired_by_replace() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    publish(&store, KEY, &binary(tmp.path(), "good"), &UNSIGNED)
        .await
        .unwrap();
    store
        .put(&binary_object(KEY), b"#!/bin/sh\necho evil\n".to_vec())
        .await
        .unwrap();
    let dest = tmp.path().join("pipeline");
    assert!(matches!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::Rejected { .. }
    ));
    assert_eq!(
        publish(&store, KEY, &binary(tmp.path(), "rebuilt"), &UNSIGNED)
            .await
            .unwrap(),
        PublishOutcome::AlreadyPublished,
        "without replace, an existing manifest stands"
    );
    let repair = PublishOptions {
        replace: true,
        ..UNSIGNED
    };
    assert_eq!(
        publish(&store, KEY, &binary(tmp.path(), "rebuilt"), &repair)
            .await
            .unwrap(),
        PublishOutcome::Replaced
    );
    assert!(matches!(
        fetch(&store, KEY, &dest, &Trust::none()).await.unwrap(),
        FetchOutcome::Fetched(_)
    ));
    assert_eq!(run(&dest), "rebuilt");
}

/// An object far larger than its manifest says is abandoned after one read buffer past the
/// manifest's size, not downloaded whole; an oversized manifest is not read at all.
#[tokio::test]
async fn oversized_objects_are_abandoned_early() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    publish(&store, KEY, &binary(tmp.path(), "tiny"), &UNSIGNED)
        .await
        .unwrap();
    // 64 MiB where the manifest says a few bytes.
    let big = vec![b'x'; 64 << 20];
    store.put(&binary_object(KEY), big).await.unwrap();
    let dest = tmp.path().join("pipeline");
    match fetch(&store, KEY, &dest, &Trust::none()).await.unwrap() {
        FetchOutcome::Rejected { reason } => {
            assert!(
                reason.contains("larger than") && reason.contains("abandoned"),
                "{reason}"
            )
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!dest.exists());
    store
        .put(&manifest_object(KEY), vec![b' '; 100 * 1024])
        .await
        .unwrap();
    match fetch(&store, KEY, &dest, &Trust::none()).await.unwrap() {
        FetchOutcome::Rejected { reason } => {
            assert!(reason.contains("larger than 65536 bytes"), "{reason}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// With trusted keys, only a manifest signed by one of them is believed.
#[tokio::test]
async fn signed_entries_verify_and_unsigned_or_foreign_ones_are_misses() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    let (secret, _, public) = generate_keypair().unwrap();
    let signer = Signer::from_secret_key_text(&secret, None).unwrap();
    let trust = Trust::from_keys(&[public]).unwrap();
    let dest = tmp.path().join("pipeline");

    // Unsigned entry: rejected with the reason, never written.
    publish(&store, KEY, &binary(tmp.path(), "unsigned"), &UNSIGNED)
        .await
        .unwrap();
    match fetch(&store, KEY, &dest, &trust).await.unwrap() {
        FetchOutcome::Rejected { reason } => assert!(reason.contains("not signed"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!dest.exists());

    // Signed by someone else: rejected, naming the key.
    let (other_secret, _, _) = generate_keypair().unwrap();
    let other = Signer::from_secret_key_text(&other_secret, None).unwrap();
    let foreign = PublishOptions {
        fields: FIELDS,
        signer: Some(&other),
        replace: true,
    };
    publish(&store, KEY, &binary(tmp.path(), "foreign"), &foreign)
        .await
        .unwrap();
    match fetch(&store, KEY, &dest, &trust).await.unwrap() {
        FetchOutcome::Rejected { reason } => {
            assert!(
                reason.contains(&other.key_id()) && reason.contains("not among"),
                "{reason}"
            )
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    // The trusted publisher repairs it; a reader with the public key runs it.
    let signed = PublishOptions {
        fields: FIELDS,
        signer: Some(&signer),
        replace: true,
    };
    assert_eq!(
        publish(&store, KEY, &binary(tmp.path(), "signed"), &signed)
            .await
            .unwrap(),
        PublishOutcome::Replaced
    );
    assert!(matches!(
        fetch(&store, KEY, &dest, &trust).await.unwrap(),
        FetchOutcome::Fetched(_)
    ));
    assert_eq!(run(&dest), "signed");

    // A field changed after signing breaks the signature.
    let mut m: serde_json::Value =
        serde_json::from_slice(&store.get(&manifest_object(KEY)).await.unwrap()).unwrap();
    m["target"] = "aarch64-unknown-linux-gnu".into();
    store
        .put(&manifest_object(KEY), m.to_string().into_bytes())
        .await
        .unwrap();
    match fetch(&store, KEY, &tmp.path().join("p2"), &trust)
        .await
        .unwrap()
    {
        FetchOutcome::Rejected { reason } => {
            assert!(reason.contains("does not verify"), "{reason}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsArtifactStore::new(tmp.path().join("bucket"));
    let err = fetch(&store, "../escape", &tmp.path().join("p"), &Trust::none())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`../escape`"), "{err}");
}
