//! Artifacts as objects under `<prefix>/<key>`.

use super::client::{Cond, OCTET, Remote, header};
use super::config::{S3Config, S3Options};
use crate::artifact::ArtifactStore;
use crate::error::{Result, StoreError};
use async_trait::async_trait;
use sparkwing_contract::id::validate_key;
use std::fmt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OnceCell;

/// Where the conditional-write probe writes (under the store prefix); never listed.
const PROBE_DIR: &str = ".sparkwing-cas-probe";

/// An artifact store in an S3 bucket.
///
/// ```no_run
/// # async fn demo() -> Result<(), sparkwing_storage::StoreError> {
/// use sparkwing_storage::ArtifactStore;
/// use sparkwing_storage::s3::{S3ArtifactStore, S3Config, S3Options};
///
/// let cfg = S3Config::from_env()?;
/// let store = S3ArtifactStore::new(&cfg, "my-team-sparkwing", "cache", S3Options::default())?;
/// store.put("notes/hello.txt", b"hi".to_vec()).await?;
/// assert_eq!(store.get("notes/hello.txt").await?, b"hi");
/// # Ok(()) }
/// ```
pub struct S3ArtifactStore {
    remote: Remote,
    conditional: OnceCell<bool>,
}

impl fmt::Debug for S3ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3ArtifactStore({})", self.remote.describe())
    }
}

impl S3ArtifactStore {
    /// HTTP requests this store has sent so far, retries included (for benchmarks and
    /// diagnostics).
    pub fn requests(&self) -> u64 {
        self.remote.requests()
    }

    /// A store for `bucket` under `prefix` (`""` for the bucket root). No request is made.
    pub fn new(cfg: &S3Config, bucket: &str, prefix: &str, opts: S3Options) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(S3ArtifactStore {
            remote: Remote::new(cfg, bucket, prefix, opts)?,
            conditional: OnceCell::new(),
        })
    }

    async fn require_conditional(&self, key: &str) -> Result<()> {
        if self.supports_conditional().await? {
            Ok(())
        } else {
            Err(StoreError::NotSupported {
                store: self.remote.describe(),
                what: format!(
                    "a conditional write of `{key}`: the server ignores If-None-Match/If-Match; callers fall back to a plain put (last write wins)"
                ),
            })
        }
    }

    /// Two create-only writes of one fresh key: a server that enforces the precondition
    /// refuses the second. A stale `If-Match` must be refused as well.
    async fn probe(&self) -> Result<bool> {
        let key = format!("{PROBE_DIR}/{}", random_hex());
        let absent = Cond::Absent;
        self.remote
            .put_small(&key, b"", OCTET, Some(&absent))
            .await?;
        let verdict = async {
            match self.remote.put_small(&key, b"", OCTET, Some(&absent)).await {
                Err(StoreError::PreconditionFailed(_)) => {}
                Ok(_) => return Ok(false),
                Err(e) => return Err(e),
            }
            let stale = Cond::Match("\"00000000000000000000000000000000\"".into());
            match self.remote.put_small(&key, b"x", OCTET, Some(&stale)).await {
                Err(StoreError::PreconditionFailed(_)) => Ok(true),
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            }
        }
        .await;
        let _ = self.remote.delete_one(&key).await;
        let verdict = verdict?;
        if !verdict {
            tracing::warn!(
                store = %self.remote.describe(),
                "the S3 server ignores conditional writes; create-only and compare-and-swap fall back to last-write-wins"
            );
        }
        Ok(verdict)
    }
}

/// 128 random bits as hex, from the std hasher's per-process random keys.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(N.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    let p = prefix.trim_matches('/');
    if !p.is_empty() {
        validate_key(p)?;
    }
    Ok(())
}

/// A listing prefix is a plain string prefix, but it must not smuggle path tricks or control
/// characters into a request.
pub(crate) fn validate_list_prefix(prefix: &str) -> Result<()> {
    if prefix.chars().any(char::is_control) {
        return Err(
            sparkwing_contract::IdError::Separator(prefix.escape_debug().to_string()).into(),
        );
    }
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(
            sparkwing_contract::IdError::PathReference(prefix.escape_debug().to_string()).into(),
        );
    }
    Ok(())
}

#[async_trait]
impl ArtifactStore for S3ArtifactStore {
    fn describe(&self) -> String {
        self.remote.describe()
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        validate_key(key)?;
        let full = self.remote.full_key(key);
        let r = self
            .remote
            .call("get", key, || self.remote.bucket().get_object(&full))
            .await?;
        Ok(r.to_vec())
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        validate_key(key)?;
        if data.len() < self.remote.opts.part_size {
            self.remote.put_small(key, &data, OCTET, None).await?;
        } else {
            let mut cursor = std::io::Cursor::new(data);
            self.remote
                .put_stream(key, &mut cursor, OCTET, None)
                .await?;
        }
        Ok(())
    }

    async fn has(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        match self.remote.head(key).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn size(&self, key: &str) -> Result<u64> {
        validate_key(key)?;
        Ok(self.remote.head(key).await?.0)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.remote.delete_one(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_list_prefix(prefix)?;
        let base = self.remote.base();
        let probe = format!("{PROBE_DIR}/");
        let mut keys: Vec<String> = self
            .remote
            .list_full(prefix, false)
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(&base).map(str::to_string))
            .filter(|k| !k.starts_with(&probe))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn get_to_writer(
        &self,
        key: &str,
        w: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        validate_key(key)?;
        self.remote.get_stream(key, w).await
    }

    async fn put_from_reader(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        validate_key(key)?;
        Ok(self.remote.put_stream(key, r, OCTET, None).await?.0)
    }

    async fn supports_conditional(&self) -> Result<bool> {
        self.conditional
            .get_or_try_init(|| self.probe())
            .await
            .copied()
    }

    async fn put_if_absent(&self, key: &str, data: Vec<u8>) -> Result<String> {
        validate_key(key)?;
        self.require_conditional(key).await?;
        let cond = Cond::Absent;
        if data.len() < self.remote.opts.part_size {
            self.remote.put_small(key, &data, OCTET, Some(&cond)).await
        } else {
            let mut cursor = std::io::Cursor::new(data);
            Ok(self
                .remote
                .put_stream(key, &mut cursor, OCTET, Some(&cond))
                .await?
                .1)
        }
    }

    async fn get_with_etag(&self, key: &str) -> Result<(Vec<u8>, String)> {
        validate_key(key)?;
        let full = self.remote.full_key(key);
        let r = self
            .remote
            .call("get", key, || self.remote.bucket().get_object(&full))
            .await?;
        let etag = header(&r.headers(), "etag").unwrap_or_default();
        Ok((r.to_vec(), etag))
    }

    async fn put_if_match(&self, key: &str, data: Vec<u8>, etag: &str) -> Result<String> {
        validate_key(key)?;
        self.require_conditional(key).await?;
        let cond = Cond::Match(etag.to_string());
        let res = if data.len() < self.remote.opts.part_size {
            self.remote.put_small(key, &data, OCTET, Some(&cond)).await
        } else {
            let mut cursor = std::io::Cursor::new(data);
            self.remote
                .put_stream(key, &mut cursor, OCTET, Some(&cond))
                .await
                .map(|(_, etag)| etag)
        };
        // Some servers answer `If-Match` on a missing object with 404: for a compare-and-swap
        // that is the same lost race as a changed object.
        res.map_err(|e| match e {
            StoreError::NotFound(k) => StoreError::PreconditionFailed(k),
            other => other,
        })
    }

    async fn put_from_reader_if_absent(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(u64, String)> {
        validate_key(key)?;
        self.require_conditional(key).await?;
        self.remote
            .put_stream(key, r, OCTET, Some(&Cond::Absent))
            .await
    }
}
