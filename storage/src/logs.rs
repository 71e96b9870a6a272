//! The log store contract: a node's log is an ordered series of parts, each a batch of
//! newline-terminated JSON log records.

use crate::error::Result;
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};

/// Filters applied when reading one node's log, in this order: line range, grep, tail, head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOpts {
    /// Keep only the last N lines (0 = off).
    pub tail: usize,
    /// Keep only the first N lines (0 = off).
    pub head: usize,
    /// 1-based inclusive line range `(from, to)`.
    pub lines: Option<(usize, usize)>,
    /// Keep lines containing this substring (case-sensitive).
    pub grep: Option<String>,
}

impl ReadOpts {
    /// Applies the filters to the concatenated log text. Output lines end in `\n`.
    pub fn apply(&self, text: &[u8]) -> Vec<u8> {
        if *self == ReadOpts::default() {
            return text.to_vec();
        }
        let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        if let Some((from, to)) = self.lines {
            let from = from.max(1);
            lines = if from > lines.len() || to < from {
                Vec::new()
            } else {
                lines[from - 1..to.min(lines.len())].to_vec()
            };
        }
        if let Some(g) = &self.grep {
            let g = g.as_bytes();
            lines.retain(|l| g.is_empty() || l.windows(g.len()).any(|w| w == g));
        }
        if self.tail > 0 && lines.len() > self.tail {
            lines = lines.split_off(lines.len() - self.tail);
        }
        if self.head > 0 {
            lines.truncate(self.head);
        }
        let mut out = Vec::with_capacity(text.len());
        for l in lines {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        out
    }
}

/// Name for the next part: `<20-digit unix-ns>-<10-digit seq>.ndjson`. Names sort
/// lexicographically in write order within one process (the sequence breaks clock ties).
pub fn next_part_name() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
    let ns = sparkwing_contract::timefmt::now_unix_nanos().max(0);
    format!("{ns:020}-{seq:010}.ndjson")
}

/// Checks that `name` is a part name as [`next_part_name`] makes them, so a name taken from a
/// spool directory can never address anything but a part.
pub fn validate_part_name(name: &str) -> Result<()> {
    let ok = name.strip_suffix(".ndjson").is_some_and(|stem| {
        let b = stem.as_bytes();
        b.len() == 31
            && b[20] == b'-'
            && b[..20].iter().all(u8::is_ascii_digit)
            && b[21..].iter().all(u8::is_ascii_digit)
    });
    if ok {
        Ok(())
    } else {
        Err(crate::error::StoreError::BadPartName(name.to_string()))
    }
}

/// Ends `data` with a newline unless it is empty or ends with one already: every part, and
/// every log read back, is whole lines.
pub(crate) fn end_line(data: &mut Vec<u8>) {
    if data.last().is_some_and(|&b| b != b'\n') {
        data.push(b'\n');
    }
}

/// `data` ending with a newline as [`end_line`] would make it, copied only when it needs one.
pub(crate) fn whole_lines(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if data.last().is_some_and(|&b| b != b'\n') {
        let mut owned = data.to_vec();
        end_line(&mut owned);
        std::borrow::Cow::Owned(owned)
    } else {
        std::borrow::Cow::Borrowed(data)
    }
}

/// One part of a batch given to [`LogStore::put_parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPart {
    /// The node whose log the part belongs to.
    pub node: String,
    /// The part's name, from [`next_part_name`].
    pub name: String,
    /// Newline-terminated records.
    pub data: Vec<u8>,
}

/// Where node logs live.
#[async_trait]
pub trait LogStore: Send + Sync + std::fmt::Debug {
    /// Spec string for messages and records.
    fn describe(&self) -> String;
    /// True when a part costs a local file write rather than a request: a writer may then cut a
    /// part as soon as output pauses, so readers of a run on this machine see a line within
    /// milliseconds instead of after a batching window. Stores billed or throttled per request
    /// keep the default, `false`.
    fn parts_are_cheap(&self) -> bool {
        false
    }
    /// Writes one part (a batch of newline-terminated records) for `run`/`node` under `part`, a
    /// name from [`next_part_name`]. Writing the same part again replaces it, so a writer that
    /// names a part once and retries it after a timeout never stores it twice. Parts of one node
    /// are read back in name order.
    async fn put_part(&self, run: &str, node: &str, part: &str, data: Vec<u8>) -> Result<()>;
    /// Writes several parts of `run`, in order, as [`LogStore::put_part`] would one by one. A
    /// store that can take them in one request or one write does (a run of many short jobs cuts
    /// a small part per job). On an error some of the parts may have been written: a writer
    /// retries the batch under the same names, which replaces them.
    async fn put_parts(&self, run: &str, parts: &[LogPart]) -> Result<()> {
        for p in parts {
            self.put_part(run, &p.node, &p.name, p.data.clone()).await?;
        }
        Ok(())
    }
    /// Writes one part under a fresh name; returns the name.
    async fn append_part(&self, run: &str, node: &str, data: Vec<u8>) -> Result<String> {
        let name = next_part_name();
        self.put_part(run, node, &name, data).await?;
        Ok(name)
    }
    /// One node's log: its parts concatenated in order, then filtered. Nothing written → empty.
    async fn read(&self, run: &str, node: &str, opts: &ReadOpts) -> Result<Vec<u8>>;
    /// Node ids that have log parts in `run`, sorted.
    async fn list_nodes(&self, run: &str) -> Result<Vec<String>> {
        let mut nodes: Vec<String> = self
            .list_parts(run)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        nodes.dedup();
        Ok(nodes)
    }
    /// Every part of `run` as `(node id, part name)`, sorted, in one listing: a follower polls
    /// this and reads only the parts it has not seen yet.
    async fn list_parts(&self, run: &str) -> Result<Vec<(String, String)>>;
    /// Part names of one node's own log (not its children's), sorted: write order. A reader that
    /// wants only some parts (the last ones, for a tail) lists them here and reads them with
    /// [`LogStore::read_part`].
    async fn list_node_parts(&self, run: &str, node: &str) -> Result<Vec<String>> {
        Ok(self
            .list_parts(run)
            .await?
            .into_iter()
            .filter(|(n, _)| n == node)
            .map(|(_, p)| p)
            .collect())
    }
    /// One part as stored. A part deleted since it was listed reads as empty.
    async fn read_part(&self, run: &str, node: &str, part: &str) -> Result<Vec<u8>>;
    /// Every node's log in `run`, sorted by node id.
    async fn read_run(&self, run: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for node in self.list_nodes(run).await? {
            let bytes = self.read(run, &node, &ReadOpts::default()).await?;
            out.push((node, bytes));
        }
        Ok(out)
    }
    /// Removes every part of `run`. Idempotent.
    async fn delete_run(&self, run: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_apply_in_order() {
        let text = b"a\nb\nhello\nc\nhello again\n";
        let o = ReadOpts {
            grep: Some("hello".into()),
            ..Default::default()
        };
        assert_eq!(o.apply(text), b"hello\nhello again\n");
        let o = ReadOpts {
            tail: 2,
            ..Default::default()
        };
        assert_eq!(o.apply(text), b"c\nhello again\n");
        let o = ReadOpts {
            head: 2,
            ..Default::default()
        };
        assert_eq!(o.apply(text), b"a\nb\n");
        let o = ReadOpts {
            lines: Some((2, 3)),
            ..Default::default()
        };
        assert_eq!(o.apply(text), b"b\nhello\n");
        let o = ReadOpts {
            lines: Some((9, 12)),
            ..Default::default()
        };
        assert_eq!(o.apply(text), b"");
    }

    #[test]
    fn part_names_sort_in_write_order() {
        let a = next_part_name();
        let b = next_part_name();
        assert!(a < b, "{a} {b}");
        assert_eq!(a.len(), 20 + 1 + 10 + ".ndjson".len());
    }
}
