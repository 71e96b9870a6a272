//! Log parts as objects under `<prefix>/<runID>/<nodeID>/<part>.ndjson`.

use super::artifact::validate_prefix;
use super::client::{NDJSON, Remote};
use super::config::{S3Config, S3Options};
use crate::error::{Result, StoreError};
use crate::logs::{LogPart, LogStore, ReadOpts, end_line, validate_part_name};
use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use sparkwing_contract::id::{validate_hierarchical, validate_segment};
use std::fmt;

const PART_SUFFIX: &str = ".ndjson";

/// A log store in an S3 bucket: one object per appended part; a read lists the node's parts,
/// sorts them by name and concatenates them.
///
/// ```no_run
/// # async fn demo() -> Result<(), sparkwing_storage::StoreError> {
/// use sparkwing_storage::{LogStore, ReadOpts};
/// use sparkwing_storage::s3::{S3Config, S3LogStore, S3Options};
///
/// let cfg = S3Config::from_env()?;
/// let logs = S3LogStore::new(&cfg, "my-team-sparkwing", "logs", S3Options::default())?;
/// logs.append_part("run-20260420-093112-a7f2c3d4", "build", b"{\"msg\":\"hi\"}\n".to_vec()).await?;
/// let tail = ReadOpts { tail: 10, ..Default::default() };
/// let text = logs.read("run-20260420-093112-a7f2c3d4", "build", &tail).await?;
/// # Ok(()) }
/// ```
pub struct S3LogStore {
    remote: Remote,
}

impl fmt::Debug for S3LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3LogStore({})", self.remote.describe())
    }
}

impl S3LogStore {
    /// HTTP requests this store has sent so far, retries included (for benchmarks and
    /// diagnostics).
    pub fn requests(&self) -> u64 {
        self.remote.requests()
    }

    /// A log store for `bucket` under `prefix` (`""` for the bucket root). No request is made.
    pub fn new(cfg: &S3Config, bucket: &str, prefix: &str, opts: S3Options) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(S3LogStore {
            remote: Remote::new(cfg, bucket, prefix, opts)?,
        })
    }

    /// Part keys of one node (its own parts, not its children's), sorted: write order.
    async fn part_keys(&self, run: &str, node: &str) -> Result<Vec<String>> {
        let mut keys: Vec<String> = self
            .remote
            .list_full(&format!("{run}/{node}/"), true)
            .await?
            .into_iter()
            .filter(|k| k.ends_with(PART_SUFFIX))
            .collect();
        keys.sort();
        Ok(keys)
    }
}

#[async_trait]
impl LogStore for S3LogStore {
    fn describe(&self) -> String {
        self.remote.describe()
    }

    /// Every part is a PUT request: parts stay batched (about a second, or 1 MiB).
    fn parts_are_cheap(&self) -> bool {
        false
    }

    async fn put_part(&self, run: &str, node: &str, part: &str, mut data: Vec<u8>) -> Result<()> {
        validate_segment(run)?;
        validate_hierarchical(node)?;
        validate_part_name(part)?;
        end_line(&mut data);
        self.remote
            .put_small(&format!("{run}/{node}/{part}"), &data, NDJSON, None)
            .await?;
        Ok(())
    }

    async fn put_parts(&self, run: &str, parts: &[LogPart]) -> Result<()> {
        // Every name is checked before the first request, so a bad one writes nothing.
        validate_segment(run)?;
        for p in parts {
            validate_hierarchical(&p.node)?;
            validate_part_name(&p.name)?;
        }
        // A request per part, several nodes at a time; each node's parts one after the other, in
        // the order cut, so a follower of its log never sees a later part before an earlier one.
        let mut by_node: Vec<(&str, Vec<&LogPart>)> = Vec::new();
        for p in parts {
            match by_node.iter_mut().find(|(n, _)| *n == p.node) {
                Some((_, v)) => v.push(p),
                None => by_node.push((&p.node, vec![p])),
            }
        }
        let puts: Vec<_> = by_node
            .into_iter()
            .map(|(_, mine)| async move {
                for p in mine {
                    self.put_part(run, &p.node, &p.name, p.data.clone()).await?;
                }
                Ok::<(), StoreError>(())
            })
            .collect();
        let mut puts =
            stream::iter(puts).buffer_unordered(self.remote.opts.read_concurrency.max(1));
        while let Some(put) = puts.next().await {
            put?;
        }
        Ok(())
    }

    async fn read(&self, run: &str, node: &str, opts: &ReadOpts) -> Result<Vec<u8>> {
        validate_segment(run)?;
        validate_hierarchical(node)?;
        let keys = self.part_keys(run, node).await?;
        let remote = &self.remote;
        let what = format!("{run}/{node}");
        let what = &what;
        let mut parts = stream::iter(keys)
            .map(|full| async move {
                match remote
                    .call("read log part of", what, || {
                        remote.bucket().get_object(&full)
                    })
                    .await
                {
                    Ok(r) => Ok(r.to_vec()),
                    // Deleted between list and get (a concurrent delete_run): nothing to show.
                    Err(StoreError::NotFound(_)) => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            })
            .buffered(self.remote.opts.read_concurrency.max(1));
        let mut all = Vec::new();
        while let Some(part) = parts.next().await {
            let mut part = part?;
            end_line(&mut part);
            all.extend_from_slice(&part);
        }
        Ok(opts.apply(&all))
    }

    async fn list_parts(&self, run: &str) -> Result<Vec<(String, String)>> {
        validate_segment(run)?;
        let run_base = self.remote.full_key(&format!("{run}/"));
        let mut parts: Vec<(String, String)> = self
            .remote
            .list_full(&format!("{run}/"), false)
            .await?
            .iter()
            .filter(|k| k.ends_with(PART_SUFFIX))
            .filter_map(|k| k.strip_prefix(&run_base))
            .filter_map(|rel| rel.rsplit_once('/'))
            .filter(|(node, _)| validate_hierarchical(node).is_ok())
            .map(|(node, part)| (node.to_string(), part.to_string()))
            .collect();
        parts.sort();
        Ok(parts)
    }

    async fn list_node_parts(&self, run: &str, node: &str) -> Result<Vec<String>> {
        validate_segment(run)?;
        validate_hierarchical(node)?;
        // One listing of this node's prefix, not of the whole run.
        Ok(self
            .part_keys(run, node)
            .await?
            .into_iter()
            .filter_map(|k| k.rsplit('/').next().map(str::to_string))
            .collect())
    }

    async fn read_part(&self, run: &str, node: &str, part: &str) -> Result<Vec<u8>> {
        validate_segment(run)?;
        validate_hierarchical(node)?;
        validate_part_name(part)?;
        let full = self.remote.full_key(&format!("{run}/{node}/{part}"));
        let remote = &self.remote;
        let what = format!("{run}/{node}/{part}");
        match remote
            .call("read log part", &what, || remote.bucket().get_object(&full))
            .await
        {
            Ok(r) => Ok(r.to_vec()),
            Err(StoreError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn delete_run(&self, run: &str) -> Result<()> {
        validate_segment(run)?;
        let keys = self.remote.list_full(&format!("{run}/"), false).await?;
        self.remote.delete_full(run, keys).await
    }
}
