//! Where a run's output goes: masking, the console, and batched parts in the log store.

mod console;
mod mask;
mod sink;
mod stdio;

pub(crate) use console::{Console, Grouping, Mark};
pub(crate) use mask::Masker;
#[cfg(any(test, feature = "fuzz"))]
pub(crate) use mask::visible;
pub(crate) use sink::{Sink, SinkStats};
pub(crate) use stdio::Route;
pub(crate) use stdio::settle as settle_stdio;
#[cfg(any(test, feature = "fuzz"))]
pub(crate) use stdio::{held_back, masked_text};

use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// 32 hex digits from the system's random source: a token no output can guess.
pub(crate) fn random_token() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if random.is_err() {
        // std's hasher keys come from the system's random source too.
        use std::hash::{BuildHasher, Hasher};
        for chunk in b.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Diagnostic detail.
    Debug,
    /// Normal output (command output is `Info`).
    Info,
    /// Something worth a look that did not fail the job.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The wire spelling in log records.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A `LogRecord` serialized from borrowed parts, with the same field rules as
/// `sparkwing_contract::LogRecord` (empty strings and attrs left out).
#[derive(Serialize)]
pub(crate) struct RecordRef<'a> {
    pub ts: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub level: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub node: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub step: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub event: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub msg: &'a str,
    #[serde(skip_serializing_if = "attrs_empty")]
    pub attrs: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

fn attrs_empty(a: &Option<&serde_json::Map<String, serde_json::Value>>) -> bool {
    a.is_none_or(|m| m.is_empty())
}

impl RecordRef<'_> {
    /// Appends the record and a newline to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Serializing borrowed strings and JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }
}

/// Which pipe a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

fn stderr_attrs() -> &'static serde_json::Map<String, serde_json::Value> {
    static A: OnceLock<serde_json::Map<String, serde_json::Value>> = OnceLock::new();
    A.get_or_init(|| {
        let mut m = serde_json::Map::new();
        m.insert("stream".into(), "stderr".into());
        m
    })
}

/// The run-wide log plumbing shared by every node.
#[derive(Debug)]
pub(crate) struct LogHub {
    pub masker: Masker,
    pub console: Console,
    /// `None` when the logs surface is the console only.
    pub sink: Option<Sink>,
}

impl LogHub {
    /// A handle that writes lines for `node`.
    pub fn node(self: &Arc<Self>, node: &str) -> NodeLog {
        NodeLog {
            hub: self.clone(),
            node: node.into(),
            wrote: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Writes one node's lines to every sink: console, log store. Masks first.
#[derive(Debug, Clone)]
pub(crate) struct NodeLog {
    hub: Arc<LogHub>,
    node: Arc<str>,
    /// Whether anything was sent to the store through this handle or its clones.
    wrote: Arc<AtomicBool>,
}

impl NodeLog {
    pub fn masker(&self) -> &Masker {
        &self.hub.masker
    }

    /// One record (a message from the job, or an event of the node's life).
    pub fn record(
        &self,
        level: Level,
        step: &str,
        event: &str,
        msg: &str,
        attrs: Option<&serde_json::Map<String, serde_json::Value>>,
    ) {
        let ts = sparkwing_contract::timefmt::now_rfc3339();
        let masked = self.hub.masker.mask(msg);
        let mut buf = Vec::with_capacity(masked.len() + 96);
        RecordRef {
            ts: &ts,
            level: level.as_str(),
            node: &self.node,
            step,
            event,
            msg: &masked,
            attrs,
        }
        .write_to(&mut buf);
        self.hub
            .console
            .node_lines(&self.node, level, std::iter::once(&*masked), &buf);
        if let Some(sink) = &self.hub.sink {
            self.wrote.store(true, Ordering::Relaxed);
            sink.send_now(self.node.clone(), buf);
        }
    }

    /// An event of the node's life, written to the node's log only (the console shows the
    /// matching lifecycle line).
    pub fn event(&self, level: Level, event: &str, msg: &str) {
        let Some(sink) = &self.hub.sink else { return };
        self.wrote.store(true, Ordering::Relaxed);
        let ts = sparkwing_contract::timefmt::now_rfc3339();
        let masked = self.hub.masker.mask(msg);
        let mut buf = Vec::with_capacity(masked.len() + 96);
        RecordRef {
            ts: &ts,
            level: level.as_str(),
            node: &self.node,
            step: "",
            event,
            msg: &masked,
            attrs: None,
        }
        .write_to(&mut buf);
        sink.send_now(self.node.clone(), buf);
    }

    /// A lifecycle line on the console (`▶ build`, `✔ build 1.2s`, …), masked.
    pub fn lifecycle(&self, mark: Mark, detail: &str) {
        let detail = self.hub.masker.mask(detail);
        self.hub.console.lifecycle(mark, &self.node, &detail);
    }

    /// A batch of captured output lines (already split, without their newlines).
    pub async fn output(&self, step: &str, stream: Stream, lines: &[&str]) {
        if lines.is_empty() {
            return;
        }
        let ts = sparkwing_contract::timefmt::now_rfc3339();
        let attrs = match stream {
            Stream::Stdout => None,
            Stream::Stderr => Some(stderr_attrs()),
        };
        let masked: Vec<std::borrow::Cow<'_, str>> =
            lines.iter().map(|l| self.hub.masker.mask(l)).collect();
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 96).sum());
        for msg in &masked {
            RecordRef {
                ts: &ts,
                level: "info",
                node: &self.node,
                step,
                event: "",
                msg,
                attrs,
            }
            .write_to(&mut buf);
        }
        self.hub
            .console
            .node_lines(&self.node, Level::Info, masked.iter().map(|m| &**m), &buf);
        if let Some(sink) = &self.hub.sink {
            self.wrote.store(true, Ordering::Relaxed);
            sink.send(self.node.clone(), buf).await;
        }
    }

    /// Whether this node sent anything to the log store.
    pub fn wrote(&self) -> bool {
        self.wrote.load(Ordering::Relaxed)
    }

    /// Has this node's buffered lines written to the store soon, without waiting for them.
    pub fn flush_now(&self) {
        if let Some(sink) = &self.hub.sink {
            sink.flush_now(self.node.clone());
        }
    }
}
