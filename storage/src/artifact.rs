//! The artifact store contract.

use crate::error::Result;
use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// A flat key → blob store. Keys are `/`-separated; every segment is validated (no `..`, no
/// separators or control characters inside a segment, no empty segment).
#[async_trait]
pub trait ArtifactStore: Send + Sync + std::fmt::Debug {
    /// Spec string for messages and records: `filesystem:/path`, `s3://bucket/prefix`.
    fn describe(&self) -> String;
    /// Whole object into memory. Missing → `StoreError::NotFound`.
    async fn get(&self, key: &str) -> Result<Vec<u8>>;
    /// Whole object from memory; last write wins.
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<()>;
    /// Missing is `Ok(false)`, not an error.
    async fn has(&self, key: &str) -> Result<bool>;
    /// The object's size in bytes; `StoreError::NotFound` when it is missing.
    async fn size(&self, key: &str) -> Result<u64>;
    /// Idempotent.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Every key under `prefix` (a plain string prefix in the caller's keyspace), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Streams the object into `w` with bounded memory; returns the byte count.
    async fn get_to_writer(
        &self,
        key: &str,
        w: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64>;
    /// Streams `r` to EOF into the object with bounded memory; returns the byte count.
    async fn put_from_reader(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64>;
    /// Whether create-only and compare-and-swap writes are enforced by this store (probed once,
    /// then memoized). When `false`, the conditional methods return `StoreError::NotSupported`
    /// and callers fall back to plain writes (last write wins).
    async fn supports_conditional(&self) -> Result<bool>;
    /// Create-only write; an existing object → `StoreError::PreconditionFailed`. Returns the ETag.
    async fn put_if_absent(&self, key: &str, data: Vec<u8>) -> Result<String>;
    /// Object and its ETag.
    async fn get_with_etag(&self, key: &str) -> Result<(Vec<u8>, String)>;
    /// Compare-and-swap: write only if the current ETag is `etag` (absent → precondition failed).
    async fn put_if_match(&self, key: &str, data: Vec<u8>, etag: &str) -> Result<String>;
    /// Create-only streamed write with bounded memory (large binaries); an existing object →
    /// `StoreError::PreconditionFailed`. Returns the byte count and the ETag.
    async fn put_from_reader_if_absent(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(u64, String)>;
}
