//! The remote pipeline binary cache: `bin/<key>` and its manifest `bin/<key>.json` in an
//! artifact store (DESIGN §5, §6).
//!
//! A fetched binary is executable only after its size and blake3 match the manifest. Publication
//! writes the binary first and the manifest last, so a reader that finds a manifest finds the
//! binary it describes; on stores with conditional writes both are create-only.
//!
//! ```no_run
//! use sparkwing_bincache::remote::{FetchOutcome, ManifestFields, fetch, publish};
//! use sparkwing_storage::FsArtifactStore;
//! use std::path::Path;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = FsArtifactStore::new("/srv/sparkwing-cache");
//! let key = "0123456789abcdef0123456789abcdef";
//! publish(&store, key, Path::new("/tmp/pipeline"), &ManifestFields {
//!     target: "x86_64-unknown-linux-gnu",
//!     sdk_version: "0.1.0+3f2a9c1b77e0",
//! }).await?;
//! match fetch(&store, key, Path::new("/tmp/staging/pipeline")).await? {
//!     FetchOutcome::Fetched(m) => println!("verified {} bytes", m.size),
//!     FetchOutcome::NotFound => println!("not in the remote cache"),
//!     FetchOutcome::Rejected { reason } => eprintln!("warning: ignoring remote binary: {reason}"),
//! }
//! # Ok(()) }
//! ```

use crate::fs_error::io;
use serde::{Deserialize, Serialize};
use sparkwing_storage::{ArtifactStore, StoreError};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Version of the manifest format; a manifest of another version is not trusted.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

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
    /// When it was published (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
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
    /// Another publisher's binary was already stored without a manifest (it is mid-way or
    /// died); this call wrote the manifest describing that binary.
    Completed,
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
    /// The key is not a cache key.
    #[error("use `{0}` as a pipeline cache key: expected 16 to 64 lowercase hex characters")]
    BadKey(String),
}

fn check_key(key: &str) -> Result<(), RemoteError> {
    let ok = (16..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
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

/// Hashes what passes through to the file.
struct HashingWriter {
    inner: tokio::fs::File,
    hasher: blake3::Hasher,
}

impl AsyncWrite for HashingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.hasher.update(&buf[..n]);
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

/// Downloads `bin/<key>` to `dest` (streamed, through a temporary file beside it) and verifies
/// it against `bin/<key>.json`. Only a verified binary ever appears at `dest`.
pub async fn fetch(
    store: &dyn ArtifactStore,
    key: &str,
    dest: &Path,
) -> Result<FetchOutcome, RemoteError> {
    check_key(key)?;
    let mkey = manifest_object(key);
    let bytes = match store.get(&mkey).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(FetchOutcome::NotFound),
        Err(e) => return Err(store_err("fetch", &mkey, store)(e)),
    };
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return Ok(FetchOutcome::Rejected {
                reason: format!("manifest `{mkey}` is not valid: {e}"),
            });
        }
    };
    if manifest.format_version != MANIFEST_FORMAT_VERSION {
        return Ok(FetchOutcome::Rejected {
            reason: format!(
                "manifest `{mkey}` has format {}, expected {MANIFEST_FORMAT_VERSION}",
                manifest.format_version
            ),
        });
    }
    if manifest.key != key {
        return Ok(FetchOutcome::Rejected {
            reason: format!("manifest `{mkey}` describes key {}", manifest.key),
        });
    }

    let bkey = binary_object(key);
    let tmp = {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into());
        dest.with_file_name(format!(".{name}.part-{}", std::process::id()))
    };
    let file = tokio::fs::File::create(&tmp)
        .await
        .map_err(io("create", &tmp))?;
    let mut w = HashingWriter {
        inner: file,
        hasher: blake3::Hasher::new(),
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

/// Publishes `binary` as `bin/<key>` and then its manifest. An existing manifest means someone
/// already published this key: that is [`PublishOutcome::AlreadyPublished`], not an error.
/// Create-only where the store enforces conditional writes; elsewhere last write wins (a race of
/// two publishers can at worst leave a pair that fails verification, which readers treat as a
/// miss).
pub async fn publish(
    store: &dyn ArtifactStore,
    key: &str,
    binary: &Path,
    fields: &ManifestFields<'_>,
) -> Result<PublishOutcome, RemoteError> {
    check_key(key)?;
    let bkey = binary_object(key);
    let mkey = manifest_object(key);
    if store
        .has(&mkey)
        .await
        .map_err(store_err("check", &mkey, store))?
    {
        return Ok(PublishOutcome::AlreadyPublished);
    }
    let (blake3, size) = hash_path(binary).await?;
    let mut manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        key: key.to_string(),
        blake3,
        size,
        target: fields.target.to_string(),
        sdk_version: fields.sdk_version.to_string(),
        created: Some(sparkwing_contract::timefmt::now_rfc3339()),
    };
    let conditional = store
        .supports_conditional()
        .await
        .map_err(store_err("probe", &bkey, store))?;
    let mut outcome = PublishOutcome::Published;
    if conditional {
        let mut f = tokio::fs::File::open(binary)
            .await
            .map_err(io("open", binary))?;
        match store.put_from_reader_if_absent(&bkey, &mut f).await {
            Ok(_) => {}
            // The probe said yes but the store refused the header for this object: last write
            // wins, which is safe because the manifest below describes what is stored.
            Err(StoreError::NotSupported { .. }) => upload(store, &bkey, binary).await?,
            Err(StoreError::PreconditionFailed(_)) => {
                // Builds are not byte-for-byte reproducible: describe the binary that is
                // actually stored, not ours, so the pair stays consistent.
                let mut hasher = HashingSink::default();
                store
                    .get_to_writer(&bkey, &mut hasher)
                    .await
                    .map_err(store_err("fetch", &bkey, store))?;
                manifest.blake3 = hasher.hasher.finalize().to_hex().to_string();
                manifest.size = hasher.len;
                outcome = PublishOutcome::Completed;
            }
            Err(e) => return Err(store_err("publish", &bkey, store)(e)),
        }
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        match store.put_if_absent(&mkey, json.clone()).await {
            Ok(_) => Ok(outcome),
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
    } else {
        upload(store, &bkey, binary).await?;
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        store
            .put(&mkey, json)
            .await
            .map_err(store_err("publish", &mkey, store))?;
        Ok(PublishOutcome::Published)
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

/// Hashes what is written to it (an object streamed from the store) without keeping it.
#[derive(Default)]
struct HashingSink {
    hasher: blake3::Hasher,
    len: u64,
}

impl tokio::io::AsyncWrite for HashingSink {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
