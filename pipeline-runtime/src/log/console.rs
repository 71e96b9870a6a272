//! The console view: node output prefixed with the node id, lifecycle lines, the summary.

use super::{Level, RecordRef};
use crate::settings::LogFormat;
use std::io::Write;

/// A lifecycle mark shown before a node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Start,
    Success,
    Failed,
    Cancelled,
    Skipped,
    Retry,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Start => "▶",
            Mark::Success => "✔",
            Mark::Failed => "✘",
            Mark::Cancelled => "⊘",
            Mark::Skipped => "↷",
            Mark::Retry => "↻",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Mark::Start => "1",
            Mark::Success => "32",
            Mark::Failed => "31",
            Mark::Cancelled | Mark::Skipped | Mark::Retry => "33",
        }
    }

    fn event(self) -> &'static str {
        match self {
            Mark::Start => "node_start",
            Mark::Success => "node_success",
            Mark::Failed => "node_failed",
            Mark::Cancelled => "node_cancelled",
            Mark::Skipped => "node_skipped",
            Mark::Retry => "node_retry",
        }
    }

    fn level(self) -> Level {
        match self {
            Mark::Failed => Level::Error,
            Mark::Cancelled | Mark::Retry => Level::Warn,
            _ => Level::Info,
        }
    }
}

/// Writes to stdout; each call is one locked write so lines of parallel nodes never interleave.
/// Lifecycle lines are buffered until the dispatcher calls [`Console::flush`] (once per turn of
/// its loop), so a plan of thousands of tiny jobs does not pay a system call per line.
#[derive(Debug)]
pub(crate) struct Console {
    format: LogFormat,
    pending: std::sync::Mutex<Vec<u8>>,
}

const PALETTE: [&str; 6] = ["36", "35", "34", "33", "32", "96"];

fn node_color(node: &str) -> &'static str {
    let h = node
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    PALETTE[h as usize % PALETTE.len()]
}

fn write_out(bytes: &[u8]) {
    // A closed stdout (a pager that quit) must not fail the run: the store still has the logs.
    let _ = std::io::stdout().lock().write_all(bytes);
}

/// Flush the lifecycle buffer on its own past this size.
const PENDING_MAX: usize = 32 * 1024;

impl Console {
    pub fn new(format: LogFormat) -> Console {
        Console {
            format,
            pending: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Writes buffered lifecycle lines.
    pub fn flush(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p.is_empty() {
            write_out(&p);
            p.clear();
        }
    }

    fn buffered(&self, bytes: &[u8]) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.extend_from_slice(bytes);
        if p.len() >= PENDING_MAX {
            write_out(&p);
            p.clear();
        }
    }

    /// Captured or logged lines of one node. `json` holds the same lines as log records.
    pub fn node_lines<'a>(
        &self,
        node: &str,
        level: Level,
        lines: impl Iterator<Item = &'a str>,
        json: &[u8],
    ) {
        let label = match level {
            Level::Warn => "warning: ",
            Level::Error => "error: ",
            Level::Debug => "debug: ",
            Level::Info => "",
        };
        // Lifecycle lines queued before this output belong before it.
        self.flush();
        let mut text = String::with_capacity(json.len());
        match self.format {
            LogFormat::Json => return write_out(json),
            LogFormat::Plain => {
                for l in lines {
                    text.push('[');
                    text.push_str(node);
                    text.push_str("] ");
                    text.push_str(label);
                    text.push_str(l);
                    text.push('\n');
                }
            }
            LogFormat::Pretty => {
                let c = node_color(node);
                let lc = match level {
                    Level::Warn => "\x1b[33m",
                    Level::Error => "\x1b[31m",
                    _ => "",
                };
                for l in lines {
                    text.push_str("\x1b[");
                    text.push_str(c);
                    text.push_str("m[");
                    text.push_str(node);
                    text.push_str("]\x1b[0m ");
                    if !lc.is_empty() {
                        text.push_str(lc);
                        text.push_str(label);
                        text.push_str("\x1b[0m");
                    }
                    text.push_str(l);
                    text.push('\n');
                }
            }
        }
        write_out(text.as_bytes());
    }

    /// `✔ build 1.2s`, `✘ test exit 1 (0.3s)`, …
    pub fn lifecycle(&self, mark: Mark, node: &str, detail: &str) {
        let line = match self.format {
            LogFormat::Json => {
                let ts = sparkwing_contract::timefmt::now_rfc3339();
                let mut buf = Vec::new();
                RecordRef {
                    ts: &ts,
                    level: mark.level().as_str(),
                    node,
                    step: "",
                    event: mark.event(),
                    msg: detail,
                    attrs: None,
                }
                .write_to(&mut buf);
                return self.buffered(&buf);
            }
            LogFormat::Plain => {
                if detail.is_empty() {
                    format!("{} {node}\n", mark.symbol())
                } else {
                    format!("{} {node} {detail}\n", mark.symbol())
                }
            }
            LogFormat::Pretty => format!(
                "\x1b[{}m{}\x1b[0m \x1b[1m{node}\x1b[0m {detail}\n",
                mark.color(),
                mark.symbol()
            ),
        };
        self.buffered(line.as_bytes());
    }

    /// The first line of a run: `▶ <pipeline> <run id> N job(s), M worker(s)`; in JSON mode a
    /// `run_start` record.
    pub fn run_start(&self, pipeline: &str, run_id: &str, detail: &str) {
        if self.format != LogFormat::Json {
            return self.lifecycle(Mark::Start, &format!("{pipeline} {run_id}"), detail);
        }
        let ts = sparkwing_contract::timefmt::now_rfc3339();
        let mut attrs = serde_json::Map::new();
        attrs.insert("run_id".into(), run_id.into());
        attrs.insert("pipeline".into(), pipeline.into());
        let mut buf = Vec::new();
        RecordRef {
            ts: &ts,
            level: "info",
            node: "",
            step: "",
            event: "run_start",
            msg: detail,
            attrs: Some(&attrs),
        }
        .write_to(&mut buf);
        self.buffered(&buf);
    }

    /// The end-of-run summary. In JSON mode it is one `run_end` record with `attrs`.
    pub fn summary(
        &self,
        lines: &[String],
        failed: bool,
        attrs: serde_json::Map<String, serde_json::Value>,
    ) {
        self.flush();
        match self.format {
            LogFormat::Json => {
                let ts = sparkwing_contract::timefmt::now_rfc3339();
                let mut buf = Vec::new();
                RecordRef {
                    ts: &ts,
                    level: if failed { "error" } else { "info" },
                    node: "",
                    step: "",
                    event: "run_end",
                    msg: lines.first().map(String::as_str).unwrap_or(""),
                    attrs: Some(&attrs),
                }
                .write_to(&mut buf);
                write_out(&buf);
            }
            LogFormat::Plain | LogFormat::Pretty => {
                let mut text = String::from("\n");
                for (i, l) in lines.iter().enumerate() {
                    if i == 0 && self.format == LogFormat::Pretty {
                        let c = if failed { "31" } else { "32" };
                        text.push_str(&format!("\x1b[1;{c}m{l}\x1b[0m\n"));
                    } else {
                        text.push_str(l);
                        text.push('\n');
                    }
                }
                write_out(text.as_bytes());
            }
        }
    }
}
