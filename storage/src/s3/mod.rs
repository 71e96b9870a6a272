//! S3 stores (AWS S3 and S3-compatible servers) built on `rust-s3`.
//!
//! Every call runs with a per-request timeout and bounded retries with exponential backoff
//! (5xx, 408, 429 and connection errors are retried; other 4xx are not). Large objects move as
//! multipart uploads and ranged reads, a few parts at a time, so memory stays bounded whatever
//! the object size. Conditional writes use `If-None-Match: *` / `If-Match`, after a one-time
//! probe that the server enforces them.

mod artifact;
mod client;
mod config;
mod logs;

pub use artifact::S3ArtifactStore;
pub use config::{DEFAULT_CUSTOM_REGION, S3Config, S3Options};
pub use logs::S3LogStore;
