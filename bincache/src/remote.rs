//! The remote pipeline binary cache: `bin/<key>` and its manifest `bin/<key>.json` in an
//! artifact store.
//!
//! A fetched binary is executable only after its size and blake3 match the manifest, and — when
//! the cache surface names trusted keys — after the manifest's minisign signature verifies with
//! one of them. A download stops as soon as it passes the manifest's size. Publication writes
//! the binary first and the manifest last, so a reader that finds a manifest finds the binary it
//! describes; a manifest only ever describes bytes this process uploaded itself.
//!
//! ```no_run
//! use sparkwing_bincache::remote::{FetchOutcome, ManifestFields, PublishOptions, fetch, publish};
//! use sparkwing_bincache::Trust;
//! use sparkwing_storage::FsArtifactStore;
//! use std::path::Path;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = FsArtifactStore::new("/srv/sparkwing-cache");
//! let key = "0123456789abcdef0123456789abcdef";
//! let fields = ManifestFields { target: "x86_64-unknown-linux-gnu", sdk_version: "0.1.0+3f2a9c1b77e0" };
//! publish(&store, key, Path::new("/tmp/pipeline"), &PublishOptions::unsigned(fields)).await?;
//! match fetch(&store, key, Path::new("/tmp/staging/pipeline"), &Trust::none()).await? {
//!     FetchOutcome::Fetched(m) => println!("verified {} bytes", m.size),
//!     FetchOutcome::NotFound => println!("not in the remote cache"),
//!     FetchOutcome::Rejected { reason } => eprintln!("warning: ignoring remote binary: {reason}"),
//! }
//! # Ok(()) }
//! ```

use crate::fs_error::io;
use crate::signing::{Signer, Trust};
use serde::{Deserialize, Serialize};
use sparkwing_storage::{ArtifactStore, StoreError};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Version of the manifest format; a manifest of another version is not trusted.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// A manifest larger than this is not read: a real one is a few hundred bytes.
pub const MANIFEST_MAX_BYTES: u64 = 64 * 1024;

/// `bin/<key>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT_VERSION`].
    pub format_version: u32,
    /// The cache key the binary was built for.
    pub key: String,
    /// blake3 of the binary, lowercase hex.
    pub blake3: String,
    /// Size of the binary in bytes.
    pub size: u64,
    /// Target triple.
    pub target: String,
    /// SDK version the binary links.
    pub sdk_version: String,
    /// What the entry holds: absent for a pipeline binary (the format the Go original reads),
    /// `deps` for a dependency set (`bin/deps/<key>`). A manifest of one kind never vouches for
    /// the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When it was published (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// A minisign signature (the text of a `.minisig` file) over [`Manifest::signed_payload`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Manifest {
    /// The bytes a signature covers: this manifest without its signature, as compact JSON in
    /// field order (what `jq -c 'del(.signature)'` prints for it).
    pub fn signed_payload(&self) -> Vec<u8> {
        let unsigned = Manifest {
            signature: None,
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).expect("manifest serializes")
    }
}

/// How [`publish`] writes.
#[derive(Debug, Clone, Copy)]
pub struct PublishOptions<'a> {
    /// Manifest fields the caller knows.
    pub fields: ManifestFields<'a>,
    /// Signs the manifest (required when the cache surface names trusted keys).
    pub signer: Option<&'a Signer>,
    /// The entry failed verification for this process: replace it (conditionally on the
    /// manifest that was rejected) instead of treating an existing manifest as published.
    pub replace: bool,
}

impl<'a> PublishOptions<'a> {
    /// An unsigned, create-only publication.
    pub fn unsigned(fields: ManifestFields<'a>) -> Self {
        PublishOptions {
            fields,
            signer: None,
            replace: false,
        }
    }
}

/// Manifest fields the caller knows (the rest are measured).
#[derive(Debug, Clone, Copy)]
pub struct ManifestFields<'a> {
    /// Target triple of the binary.
    pub target: &'a str,
    /// SDK version of the binary.
    pub sdk_version: &'a str,
}

/// Result of [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Downloaded to the destination and verified.
    Fetched(Manifest),
    /// No manifest for this key: an ordinary miss.
    NotFound,
    /// Something is there but fails verification; nothing was written to the destination. Show
    /// `reason` as a warning and build instead.
    Rejected { reason: String },
}

impl FetchOutcome {
    /// The manifest of a verified fetch.
    pub fn manifest(self) -> Option<Manifest> {
        match self {
            FetchOutcome::Fetched(m) => Some(m),
            _ => None,
        }
    }
}

/// Result of [`publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishOutcome {
    /// This call wrote the binary and the manifest.
    Published,
    /// A manifest for the key was already there; nothing was written.
    AlreadyPublished,
    /// An entry that failed verification, or a binary stored without a manifest (planted, or
    /// left by a publisher that died), was replaced by this build; never vouched for.
    Replaced,
}

/// A remote cache operation failed (not a miss: a miss is [`FetchOutcome::NotFound`]).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The store failed.
    #[error("{op} `{key}` in {store}: {source}")]
    Store {
        op: &'static str,
        key: String,
        store: String,
        #[source]
        source: Box<StoreError>,
    },
    /// Local file trouble.
    #[error(transparent)]
    Io(#[from] crate::FsError),
    /// The manifest could not be signed.
    #[error("sign the manifest of `{key}`: {source}")]
    Sign {
        key: String,
        #[source]
        source: crate::signing::BadSigningKey,
    },
    /// The key is not a cache key.
    #[error("use `{0}` as a pipeline cache key: expected 16 to 64 lowercase hex characters")]
    BadKey(String),
}

fn check_key(key: &str) -> Result<(), RemoteError> {
    if crate::key::is_cache_key(key) {
        Ok(())
    } else {
        Err(RemoteError::BadKey(key.escape_debug().to_string()))
    }
}

/// Object key of the binary.
pub fn binary_object(key: &str) -> String {
    format!("bin/{key}")
}

/// Object key of the manifest.
pub fn manifest_object(key: &str) -> String {
    format!("bin/{key}.json")
}

/// Object key of a dependency set (`crate::deps`).
pub fn deps_object(key: &str) -> String {
    format!("bin/deps/{key}")
}

/// Object key of a dependency set's manifest.
pub fn deps_manifest_object(key: &str) -> String {
    format!("bin/deps/{key}.json")
}

/// The `kind` of a dependency set's manifest.
pub const DEPS_KIND: &str = "deps";

/// What a remote entry holds; both kinds follow the same verification and publication rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `bin/<key>`: a pipeline binary.
    Binary,
    /// `bin/deps/<key>`: a compiled dependency set.
    Deps,
}

impl Kind {
    /// `(object, manifest object)`.
    fn objects(self, key: &str) -> (String, String) {
        match self {
            Kind::Binary => (binary_object(key), manifest_object(key)),
            Kind::Deps => (deps_object(key), deps_manifest_object(key)),
        }
    }

    fn manifest_kind(self) -> Option<&'static str> {
        match self {
            Kind::Binary => None,
            Kind::Deps => Some(DEPS_KIND),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Binary => "pipeline binary",
            Kind::Deps => "dependency set",
        }
    }
}

fn store_err<'a>(
    op: &'static str,
    key: &'a str,
    store: &'a dyn ArtifactStore,
) -> impl FnOnce(StoreError) -> RemoteError + 'a {
    move |source| RemoteError::Store {
        op,
        key: key.to_string(),
        store: store.describe(),
        source: Box::new(source),
    }
}

/// Hashes what passes through to the file, and refuses to write past `limit` bytes so an
/// oversized object is abandoned after one more read buffer, not downloaded whole.
struct HashingWriter {
    inner: tokio::fs::File,
    hasher: blake3::Hasher,
    written: u64,
    limit: u64,
    overflowed: bool,
}

impl AsyncWrite for HashingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.written + buf.len() as u64 > this.limit {
            this.overflowed = true;
            return Poll::Ready(Err(std::io::Error::other(
                "the object is larger than its manifest says",
            )));
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.hasher.update(&buf[..n]);
            this.written += n as u64;
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Collects an object in memory up to `limit` bytes; past it, the download is abandoned.
struct BoundedBuf {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl AsyncWrite for BoundedBuf {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.buf.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Poll::Ready(Err(std::io::Error::other("object too large")));
        }
        self.buf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What reading a manifest object found.
enum ManifestRead {
    Absent,
    /// Larger than [`MANIFEST_MAX_BYTES`]: the reason, nothing past the cap was read.
    TooLarge(String),
    Bytes(Vec<u8>),
}

/// Reads the manifest object, refusing one over [`MANIFEST_MAX_BYTES`].
async fn read_manifest(store: &dyn ArtifactStore, mkey: &str) -> Result<ManifestRead, RemoteError> {
    let mut w = BoundedBuf {
        buf: Vec::new(),
        limit: MANIFEST_MAX_BYTES as usize,
        overflowed: false,
    };
    match store.get_to_writer(mkey, &mut w).await {
        Ok(_) => Ok(ManifestRead::Bytes(w.buf)),
        Err(e) if e.is_not_found() => Ok(ManifestRead::Absent),
        Err(_) if w.overflowed => Ok(ManifestRead::TooLarge(format!(
            "manifest `{mkey}` is larger than {MANIFEST_MAX_BYTES} bytes"
        ))),
        Err(e) => Err(store_err("fetch", mkey, store)(e)),
    }
}

/// Parses and checks a manifest for `key` (format, key, signature). `Err` is the reason.
fn check_manifest(
    bytes: &[u8],
    mkey: &str,
    key: &str,
    kind: Kind,
    trust: &Trust,
) -> Result<Manifest, String> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("manifest `{mkey}` is not valid: {e}"))?;
    if manifest.format_version != MANIFEST_FORMAT_VERSION {
        return Err(format!(
            "manifest `{mkey}` has format {}, expected {MANIFEST_FORMAT_VERSION}",
            manifest.format_version
        ));
    }
    if manifest.key != key {
        return Err(format!(
            "manifest `{mkey}` describes key {}",
            manifest.key.escape_debug()
        ));
    }
    if manifest.kind.as_deref() != kind.manifest_kind() {
        return Err(format!(
            "manifest `{mkey}` describes a {} entry, not a {}",
            manifest.kind.as_deref().unwrap_or("binary").escape_debug(),
            kind.what()
        ));
    }
    trust
        .verify(&manifest.signed_payload(), manifest.signature.as_deref())
        .map_err(|why| format!("manifest `{mkey}`: {why}"))?;
    Ok(manifest)
}

/// Downloads `bin/<key>` to `dest` (streamed, through a temporary file beside it) and verifies
/// it against `bin/<key>.json` — and, when `trust` names keys, the manifest's signature first.
/// Only a verified binary ever appears at `dest`; the download stops as soon as it passes the
/// manifest's size.
pub async fn fetch(
    store: &dyn ArtifactStore,
    key: &str,
    dest: &Path,
    trust: &Trust,
) -> Result<FetchOutcome, RemoteError> {
    fetch_entry(store, Kind::Binary, key, dest, trust).await
}

/// Downloads the dependency set `bin/deps/<key>` to `dest` and verifies it against
/// `bin/deps/<key>.json`, by the same rules as [`fetch`]: only a verified archive ever appears at
/// `dest`.
pub async fn fetch_deps(
    store: &dyn ArtifactStore,
    key: &str,
    dest: &Path,
    trust: &Trust,
) -> Result<FetchOutcome, RemoteError> {
    fetch_entry(store, Kind::Deps, key, dest, trust).await
}

async fn fetch_entry(
    store: &dyn ArtifactStore,
    kind: Kind,
    key: &str,
    dest: &Path,
    trust: &Trust,
) -> Result<FetchOutcome, RemoteError> {
    check_key(key)?;
    let (bkey, mkey) = kind.objects(key);
    let bytes = match read_manifest(store, &mkey).await? {
        ManifestRead::Absent => return Ok(FetchOutcome::NotFound),
        ManifestRead::TooLarge(reason) => return Ok(FetchOutcome::Rejected { reason }),
        ManifestRead::Bytes(b) => b,
    };
    let manifest = match check_manifest(&bytes, &mkey, key, kind, trust) {
        Ok(m) => m,
        Err(reason) => return Ok(FetchOutcome::Rejected { reason }),
    };

    let tmp = partial_path(dest);
    let file = tokio::fs::File::create(&tmp)
        .await
        .map_err(io("create", &tmp))?;
    let mut w = HashingWriter {
        inner: file,
        hasher: blake3::Hasher::new(),
        written: 0,
        limit: manifest.size,
        overflowed: false,
    };
    let got = store.get_to_writer(&bkey, &mut w).await;
    let reject = |reason: String| async {
        let _ = tokio::fs::remove_file(&tmp).await;
        Ok(FetchOutcome::Rejected { reason })
    };
    let size = match got {
        Ok(n) => n,
        Err(e) if e.is_not_found() => {
            return reject(format!("`{mkey}` exists but `{bkey}` does not")).await;
        }
        Err(_) if w.overflowed => {
            return reject(format!(
                "`{bkey}` is larger than the {} bytes its manifest says; the download was abandoned",
                manifest.size
            ))
            .await;
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(store_err("fetch", &bkey, store)(e));
        }
    };
    if let Err(e) = async {
        w.flush().await?;
        w.inner.sync_all().await
    }
    .await
    {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io("write", &tmp)(e).into());
    }
    if size != manifest.size {
        return reject(format!(
            "`{bkey}` is {size} bytes, its manifest says {}",
            manifest.size
        ))
        .await;
    }
    let digest = w.hasher.finalize().to_hex().to_string();
    if digest != manifest.blake3 {
        return reject(format!(
            "`{bkey}` has blake3 {digest}, its manifest says {}",
            manifest.blake3
        ))
        .await;
    }
    // Close the descriptor now (not on a blocking-pool thread later): a binary still open for
    // writing cannot be executed (ETXTBSY).
    drop(w.inner.into_std().await);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(io("set permissions on", &tmp))?;
    }
    tokio::fs::rename(&tmp, dest)
        .await
        .map_err(io("move the fetched binary to", dest))?;
    Ok(FetchOutcome::Fetched(manifest))
}

/// Where [`fetch`] and [`fetch_deps`] stream a download to before it is verified and renamed
/// to `dest` (its size is the progress of the download).
pub fn partial_path(dest: &Path) -> std::path::PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline".into());
    dest.with_file_name(format!(".{name}.part-{}", std::process::id()))
}

async fn hash_path(path: &Path) -> Result<(String, u64), RemoteError> {
    let p = path.to_path_buf();
    let res = tokio::task::spawn_blocking(move || {
        let h = crate::tree::hash_file(&p).map_err(|e| e.source)?;
        let n = std::fs::metadata(&p)?.len();
        Ok::<_, std::io::Error>((h, n))
    })
    .await
    .map_err(|e| io("hash", path)(std::io::Error::other(e.to_string())))?;
    Ok(res.map_err(io("hash", path))?)
}

/// Publishes `binary` as `bin/<key>` and then its manifest (signed when `opts.signer` is set).
///
/// - An existing manifest means someone already published this key:
///   [`PublishOutcome::AlreadyPublished`], unless `opts.replace` (this process rejected that
///   entry), in which case the pair is replaced, the manifest conditionally on the rejected one.
/// - A binary stored without a manifest (planted, or left by a publisher that died) is never
///   described: this build replaces it and the manifest describes this build's bytes
///   ([`PublishOutcome::Replaced`]).
///
/// Writes are create-only or compare-and-swap where the store enforces conditional writes;
/// elsewhere last write wins. A race of two publishers can at worst leave a pair that fails
/// verification, which readers treat as a miss and the next publisher repairs.
pub async fn publish(
    store: &dyn ArtifactStore,
    key: &str,
    binary: &Path,
    opts: &PublishOptions<'_>,
) -> Result<PublishOutcome, RemoteError> {
    publish_entry(store, Kind::Binary, key, binary, opts).await
}

/// Publishes the dependency-set archive at `archive` as `bin/deps/<key>` and then its manifest
/// (`kind: "deps"`), by the same create-only, verified and signed rules as [`publish`].
pub async fn publish_deps(
    store: &dyn ArtifactStore,
    key: &str,
    archive: &Path,
    opts: &PublishOptions<'_>,
) -> Result<PublishOutcome, RemoteError> {
    publish_entry(store, Kind::Deps, key, archive, opts).await
}

/// Whether a manifest for the dependency set `key` is present (a publisher checks before it
/// spends time packing one).
pub async fn deps_published(store: &dyn ArtifactStore, key: &str) -> Result<bool, RemoteError> {
    check_key(key)?;
    let mkey = deps_manifest_object(key);
    store
        .has(&mkey)
        .await
        .map_err(store_err("check", &mkey, store))
}

async fn publish_entry(
    store: &dyn ArtifactStore,
    kind: Kind,
    key: &str,
    binary: &Path,
    opts: &PublishOptions<'_>,
) -> Result<PublishOutcome, RemoteError> {
    check_key(key)?;
    let (bkey, mkey) = kind.objects(key);
    let conditional = store
        .supports_conditional()
        .await
        .map_err(store_err("probe", &bkey, store))?;

    // The manifest this publication must replace, if any: `Some(etag)` of a rejected one.
    let mut replace_etag: Option<String> = None;
    let manifest_present = store
        .has(&mkey)
        .await
        .map_err(store_err("check", &mkey, store))?;
    if manifest_present {
        if !opts.replace {
            return Ok(PublishOutcome::AlreadyPublished);
        }
        let small = store
            .size(&mkey)
            .await
            .map(|n| n <= MANIFEST_MAX_BYTES)
            .unwrap_or(false);
        if conditional && small {
            match store.get_with_etag(&mkey).await {
                Ok((_, etag)) => replace_etag = Some(etag),
                Err(e) if e.is_not_found() => {}
                Err(StoreError::NotSupported { .. }) => {}
                Err(e) => return Err(store_err("fetch", &mkey, store)(e)),
            }
        }
    }

    let (blake3, size) = hash_path(binary).await?;
    let mut manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        key: key.to_string(),
        blake3,
        size,
        target: opts.fields.target.to_string(),
        sdk_version: opts.fields.sdk_version.to_string(),
        kind: kind.manifest_kind().map(str::to_string),
        created: Some(sparkwing_contract::timefmt::now_rfc3339()),
        signature: None,
    };
    if let Some(signer) = opts.signer {
        let sig = signer
            .sign(
                &manifest.signed_payload(),
                &format!("sparkwing {} {key}", kind.what()),
            )
            .map_err(|source| RemoteError::Sign {
                key: key.to_string(),
                source,
            })?;
        manifest.signature = Some(sig);
    }
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");

    let mut outcome = if manifest_present {
        PublishOutcome::Replaced
    } else {
        PublishOutcome::Published
    };
    // The binary: create-only when nothing is meant to be replaced. An object already there
    // without a manifest was not uploaded by this process, so it is never described: this
    // build's bytes replace it.
    if conditional && !manifest_present {
        let mut f = tokio::fs::File::open(binary)
            .await
            .map_err(io("open", binary))?;
        match store.put_from_reader_if_absent(&bkey, &mut f).await {
            Ok(_) => {}
            Err(StoreError::NotSupported { .. }) => upload(store, &bkey, binary).await?,
            Err(StoreError::PreconditionFailed(_)) => {
                // Most often another job built the same key at the same time and its manifest
                // follows its binary within moments: give it that long before calling the
                // object abandoned.
                if manifest_appears(store, &mkey, MANIFEST_GRACE).await {
                    return Ok(PublishOutcome::AlreadyPublished);
                }
                upload(store, &bkey, binary).await?;
                outcome = PublishOutcome::Replaced;
            }
            Err(e) => return Err(store_err("publish", &bkey, store)(e)),
        }
    } else {
        upload(store, &bkey, binary).await?;
    }

    // The manifest last: create-only, or compare-and-swap on the rejected one.
    let written = match (&replace_etag, conditional) {
        (Some(etag), true) => store
            .put_if_match(&mkey, json.clone(), etag)
            .await
            .map(|_| ()),
        (None, true) if !manifest_present => {
            store.put_if_absent(&mkey, json.clone()).await.map(|_| ())
        }
        _ => store.put(&mkey, json.clone()).await,
    };
    match written {
        Ok(()) => Ok(outcome),
        // Another publisher got there first (or repaired it): theirs stands.
        Err(StoreError::PreconditionFailed(_)) => Ok(PublishOutcome::AlreadyPublished),
        Err(StoreError::NotSupported { .. }) => {
            store
                .put(&mkey, json)
                .await
                .map_err(store_err("publish", &mkey, store))?;
            Ok(outcome)
        }
        Err(e) => Err(store_err("publish", &mkey, store)(e)),
    }
}

/// How long a publisher that finds `bin/<key>` without a manifest waits for one to appear.
const MANIFEST_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether `mkey` exists within `grace` (polled every 250 ms).
async fn manifest_appears(
    store: &dyn ArtifactStore,
    mkey: &str,
    grace: std::time::Duration,
) -> bool {
    let end = tokio::time::Instant::now() + grace;
    loop {
        if store.has(mkey).await.unwrap_or(false) {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Streams the binary at `path` to `bkey`, last write wins.
async fn upload(store: &dyn ArtifactStore, bkey: &str, path: &Path) -> Result<(), RemoteError> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(io("open", path))?;
    store
        .put_from_reader(bkey, &mut f)
        .await
        .map_err(store_err("publish", bkey, store))?;
    Ok(())
}
