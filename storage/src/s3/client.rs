//! One bucket + prefix with the behaviour every call shares: bounded retries with backoff, a
//! per-request timeout, error mapping, and memory-bounded multipart transfers.

use super::config::{S3Config, S3Options};
use crate::error::{Result, StoreError};
use ::s3::bucket::Bucket;
use ::s3::error::S3Error;
use ::s3::serde_types::Part;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A write precondition.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// Create only (`If-None-Match: *`).
    Absent,
    /// Replace only this version (`If-Match: <etag>`).
    Match(String),
}

impl Cond {
    fn header(&self) -> (http::HeaderName, http::HeaderValue) {
        match self {
            Cond::Absent => (
                http::header::IF_NONE_MATCH,
                http::HeaderValue::from_static("*"),
            ),
            Cond::Match(etag) => (
                http::header::IF_MATCH,
                // An ETag that cannot be a header value matches no object: the swap is then
                // refused by the server like any other stale ETag.
                http::HeaderValue::from_str(etag)
                    .unwrap_or_else(|_| http::HeaderValue::from_static("\"not-a-valid-etag\"")),
            ),
        }
    }

    fn headers(&self) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        let (k, v) = self.header();
        h.insert(k, v);
        h
    }
}

/// How a failed attempt is treated.
enum Class {
    NotFound,
    Precondition,
    Retry,
    Fatal,
}

fn classify(e: &S3Error) -> Class {
    match e {
        S3Error::HttpFailWithBody(404, body) if body.contains("NoSuchBucket") => Class::Fatal,
        S3Error::HttpFailWithBody(404, _) => Class::NotFound,
        S3Error::HttpFailWithBody(412, _) => Class::Precondition,
        S3Error::HttpFailWithBody(409, body)
            if body.contains("ConditionalRequestConflict")
                || body.contains("PreconditionFailed") =>
        {
            Class::Precondition
        }
        S3Error::HttpFailWithBody(code, _) if *code >= 500 || *code == 408 || *code == 429 => {
            Class::Retry
        }
        S3Error::HttpFailWithBody(..) | S3Error::HttpFail => Class::Fatal,
        // Transport trouble (connect, timeout, reset mid-body): a new attempt may well succeed.
        S3Error::Reqwest(e) if !e.is_builder() => Class::Retry,
        S3Error::Io(_) => Class::Retry,
        _ => Class::Fatal,
    }
}

/// What to check for an S3 answer, when the answer says.
fn error_hint(e: &S3Error) -> Option<String> {
    match e {
        S3Error::HttpFailWithBody(403, _) => {
            Some("check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy".into())
        }
        S3Error::HttpFailWithBody(_, body) if body.contains("NoSuchBucket") => {
            Some("create the bucket, or fix the bucket name in the store URL".into())
        }
        _ => None,
    }
}

/// A short, secret-free description of a failure: the S3 `Code`/`Message` of an error document
/// (never the whole body, which can echo the access key id and the string to sign).
fn describe_error(e: &S3Error) -> String {
    match e {
        S3Error::HttpFailWithBody(code, body) => {
            let tag = |t: &str| xml_tag(body, t);
            let mut s = format!("HTTP {code}");
            if let Some(c) = tag("Code") {
                s.push(' ');
                s.push_str(&c);
            }
            if let Some(m) = tag("Message") {
                s.push_str(": ");
                s.push_str(&m);
            }
            s
        }
        S3Error::Reqwest(e) if e.is_timeout() => "request timed out".into(),
        S3Error::Reqwest(e) if e.is_connect() => {
            format!(
                "cannot connect: {}",
                std::error::Error::source(e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.to_string())
            )
        }
        other => other.to_string(),
    }
}

/// The text of the first `<tag>…</tag>` in an XML document, entities decoded.
pub(crate) fn xml_tag(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Case-insensitive header lookup in rust-s3's header map.
pub(crate) fn header(headers: &HashMap<String, String>, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// Bucket, prefix and options shared by the artifact and log stores.
pub(crate) struct Remote {
    bucket: Box<Bucket>,
    bucket_name: String,
    prefix: String,
    pub(crate) opts: S3Options,
    /// HTTP requests sent (attempts, retries included).
    requests: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Content types of what we write.
pub(crate) const OCTET: &str = "application/octet-stream";
pub(crate) const NDJSON: &str = "application/x-ndjson";

impl Remote {
    pub(crate) fn new(cfg: &S3Config, bucket: &str, prefix: &str, opts: S3Options) -> Result<Self> {
        // Every call goes through `call`, which retries on its own terms; rust-s3's global
        // retry would multiply the attempts and skips PUTs anyway.
        ::s3::set_retries(0);
        let region = cfg.s3_region()?;
        let b = Bucket::new(bucket, region, cfg.credentials()).map_err(|e| {
            StoreError::config(format!("open `s3://{bucket}`: {}", describe_error(&e)))
        })?;
        let b = if cfg.endpoint().is_some() {
            b.with_path_style()
        } else {
            b
        };
        let b = b.with_request_timeout(opts.request_timeout).map_err(|e| {
            StoreError::config(format!("open `s3://{bucket}`: {}", describe_error(&e)))
        })?;
        Ok(Remote {
            bucket: b,
            bucket_name: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            opts,
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// `s3://bucket/prefix`.
    pub(crate) fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket_name)
        } else {
            format!("s3://{}/{}", self.bucket_name, self.prefix)
        }
    }

    /// `<prefix>/` (or nothing): what every object key of this store starts with.
    pub(crate) fn base(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    pub(crate) fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.base())
    }

    pub(crate) fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .opts
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.opts.max_backoff);
        // Jitter in [50 %, 100 %] so concurrent retries spread out.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        capped.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
    }

    /// Runs one S3 call with bounded retries. `key` is the caller's key, for messages.
    pub(crate) async fn call<T, F, Fut>(&self, op: &'static str, key: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, S3Error>>,
    {
        let mut attempt = 1;
        loop {
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let err = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match classify(&err) {
                Class::NotFound => return Err(StoreError::NotFound(key.to_string())),
                Class::Precondition => return Err(StoreError::PreconditionFailed(key.to_string())),
                Class::Retry if attempt < self.opts.max_attempts => {
                    let delay = self.backoff(attempt);
                    tracing::debug!(
                        op,
                        key,
                        store = %self.describe(),
                        attempt,
                        error = %describe_error(&err),
                        "retrying S3 call in {delay:?}"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Class::Retry | Class::Fatal => {
                    let mut message = describe_error(&err);
                    if attempt > 1 {
                        message = format!("{message} (after {attempt} attempts)");
                    }
                    return Err(StoreError::Remote {
                        op,
                        key: key.to_string(),
                        store: self.describe(),
                        message,
                        hint: error_hint(&err),
                    });
                }
            }
        }
    }

    /// A store-level error that did not come from an S3 response.
    pub(crate) fn error(
        &self,
        op: &'static str,
        key: &str,
        message: impl Into<String>,
    ) -> StoreError {
        StoreError::Remote {
            op,
            key: key.to_string(),
            store: self.describe(),
            message: message.into(),
            hint: None,
        }
    }

    /// Single-request PUT of an in-memory body; returns the ETag.
    pub(crate) async fn put_small(
        &self,
        key: &str,
        data: &[u8],
        content_type: &str,
        cond: Option<&Cond>,
    ) -> Result<String> {
        let full = self.full_key(key);
        let resp = self
            .call("put", key, || {
                self.bucket.put_object_with_content_type_and_headers(
                    &full,
                    data,
                    content_type,
                    cond.map(Cond::headers),
                )
            })
            .await?;
        // rust-s3 hands a PUT's ETag back as the body.
        Ok(String::from_utf8_lossy(resp.as_slice()).into_owned())
    }

    /// Streams `r` into `key`: one PUT below the part size, else a multipart upload with at most
    /// `max_in_flight_parts` parts in memory, each part retried on its own. Returns the byte
    /// count and the ETag.
    pub(crate) async fn put_stream(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
        content_type: &str,
        cond: Option<&Cond>,
    ) -> Result<(u64, String)> {
        let first = read_chunk(r, self.opts.part_size)
            .await
            .map_err(|e| self.error("read upload source for", key, e.to_string()))?;
        if first.len() < self.opts.part_size {
            let etag = self.put_small(key, &first, content_type, cond).await?;
            return Ok((first.len() as u64, etag));
        }
        let full = self.full_key(key);
        let init = self
            .call("start multipart upload of", key, || {
                self.bucket.initiate_multipart_upload(&full, content_type)
            })
            .await?;
        let upload_id = init.upload_id;
        match self
            .upload_parts(key, &full, &upload_id, first, r, content_type, cond)
            .await
        {
            Ok(done) => Ok(done),
            Err(e) => {
                // Best effort: an abandoned upload only costs storage until lifecycle rules
                // clean it, so a failed abort must not hide the real error.
                let _ = self.bucket.abort_upload(&full, &upload_id).await;
                Err(e)
            }
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one internal call site")]
    async fn upload_parts(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        first: Vec<u8>,
        r: &mut (dyn AsyncRead + Send + Unpin),
        content_type: &str,
        cond: Option<&Cond>,
    ) -> Result<(u64, String)> {
        let mut total = first.len() as u64;
        let mut parts: Vec<Part> = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        let mut next: Option<Vec<u8>> = Some(first);
        let mut number = 0u32;
        let max = self.opts.max_in_flight_parts.max(1);
        loop {
            while in_flight.len() < max {
                let Some(chunk) = next.take() else { break };
                number += 1;
                let n = number;
                in_flight.push(async move {
                    let part = self
                        .call("upload part of", key, || {
                            self.bucket.put_multipart_chunk(
                                chunk.clone(),
                                full,
                                n,
                                upload_id,
                                content_type,
                            )
                        })
                        .await;
                    (n, part)
                });
                let chunk = read_chunk(r, self.opts.part_size)
                    .await
                    .map_err(|e| self.error("read upload source for", key, e.to_string()))?;
                if !chunk.is_empty() {
                    total += chunk.len() as u64;
                    next = Some(chunk);
                }
            }
            match in_flight.next().await {
                Some((n, part)) => {
                    let mut part = part?;
                    part.part_number = n;
                    parts.push(part);
                }
                None => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        // The precondition belongs on the completion: that is when the object appears.
        let complete_bucket;
        let bucket: &Bucket = match cond {
            Some(c) => {
                complete_bucket = self
                    .bucket
                    .with_extra_headers(c.headers())
                    .map_err(|e| self.error("complete multipart upload of", key, e.to_string()))?;
                &complete_bucket
            }
            None => &self.bucket,
        };
        let resp = self
            .call("complete multipart upload of", key, || {
                bucket.complete_multipart_upload(full, upload_id, parts.clone())
            })
            .await?;
        let body = String::from_utf8_lossy(resp.as_slice());
        let etag = xml_tag(&body, "ETag")
            .or_else(|| header(&resp.headers(), "etag"))
            .unwrap_or_default();
        Ok((total, etag))
    }

    /// Size and ETag of an object.
    pub(crate) async fn head(&self, key: &str) -> Result<(u64, Option<String>)> {
        let full = self.full_key(key);
        let (h, status) = self
            .call("head", key, || self.bucket.head_object(&full))
            .await?;
        if status == 404 {
            return Err(StoreError::NotFound(key.to_string()));
        }
        Ok((h.content_length.unwrap_or(0).max(0) as u64, h.e_tag))
    }

    /// Streams an object into `w` as ranged GETs of `part_size`, `max_in_flight_parts` at a
    /// time, each retried on its own; every range must carry the ETag seen at the start, so a
    /// concurrent overwrite fails the read instead of splicing two versions.
    pub(crate) async fn get_stream(
        &self,
        key: &str,
        w: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        let (size, etag) = self.head(key).await?;
        let full = self.full_key(key);
        let part = self.opts.part_size as u64;
        let ranges: Vec<(u64, u64)> = (0..size.div_ceil(part))
            .map(|i| (i * part, ((i + 1) * part).min(size) - 1))
            .collect();
        let full = &full;
        let etag = &etag;
        let mut chunks = futures_util::stream::iter(ranges)
            .map(|(start, end)| async move {
                let resp = self
                    .call("get", key, || {
                        self.bucket.get_object_range(full, start, Some(end))
                    })
                    .await?;
                let got = header(&resp.headers(), "etag");
                if etag.is_some() && got.is_some() && got != *etag {
                    return Err(self.error(
                        "get",
                        key,
                        "the object changed while it was being read; read it again",
                    ));
                }
                let bytes = resp.into_bytes();
                if bytes.len() as u64 != end - start + 1 {
                    return Err(self.error(
                        "get",
                        key,
                        format!(
                            "range {start}-{end} returned {} bytes; the object changed while it was being read",
                            bytes.len()
                        ),
                    ));
                }
                Ok(bytes)
            })
            .buffered(self.opts.max_in_flight_parts.max(1));
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            w.write_all(&chunk)
                .await
                .map_err(|e| StoreError::io("write object data of", key, e))?;
            written += chunk.len() as u64;
        }
        w.flush()
            .await
            .map_err(|e| StoreError::io("flush object data of", key, e))?;
        Ok(written)
    }

    /// Every object key under `<base><sub>`, across all pages, as full keys. With `delimiter`
    /// only the direct children are listed.
    pub(crate) async fn list_full(&self, sub: &str, delimiter: bool) -> Result<Vec<String>> {
        let prefix = self.full_key(sub);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, _) = self
                .call("list", sub, || {
                    self.bucket.list_page(
                        prefix.clone(),
                        delimiter.then(|| "/".to_string()),
                        token.clone(),
                        None,
                        None,
                    )
                })
                .await
                .map_err(|e| match e {
                    // A missing prefix is an empty listing, never "not found".
                    StoreError::NotFound(_) => StoreError::Remote {
                        op: "list",
                        key: sub.to_string(),
                        store: self.describe(),
                        message: "the bucket answered 404".into(),
                        hint: Some("check that the bucket exists".into()),
                    },
                    other => other,
                })?;
            keys.extend(page.contents.into_iter().map(|o| o.key));
            match page.next_continuation_token {
                Some(t) if page.is_truncated && !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(keys)
    }

    /// Deletes full keys in batches of 1,000 (one DeleteObjects request each).
    pub(crate) async fn delete_full(&self, what: &str, keys: Vec<String>) -> Result<()> {
        for batch in keys.chunks(1000) {
            let ids: Vec<::s3::serde_types::ObjectIdentifier> = batch
                .iter()
                .map(::s3::serde_types::ObjectIdentifier::new)
                .collect();
            let res = self
                .call("delete", what, || self.bucket.delete_objects(ids.clone()))
                .await?;
            if let Some(e) = res.errors.iter().find(|e| e.code != "NoSuchKey") {
                return Err(self.error(
                    "delete",
                    what,
                    format!("`{}`: {} {}", e.key, e.code, e.message),
                ));
            }
        }
        Ok(())
    }

    pub(crate) async fn delete_one(&self, key: &str) -> Result<()> {
        let full = self.full_key(key);
        match self
            .call("delete", key, || self.bucket.delete_object(&full))
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Reads up to `size` bytes (fewer only at EOF).
async fn read_chunk(
    r: &mut (dyn AsyncRead + Send + Unpin),
    size: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}
