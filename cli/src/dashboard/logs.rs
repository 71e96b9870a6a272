//! Rendering stored log records for the API: plain text, text with ANSI colours, or the raw
//! NDJSON records; and reading them part by part, so one request never holds a whole log.
//!
//! A node's log is a series of parts (the runtime writes at most 1 MiB a part). A request reads
//! them in order and sends each part's lines as soon as they are rendered; `?tail=N` reads the
//! parts from the last one backwards and stops once it has N lines; `?head=N` and `?lines=A:B`
//! stop at the last part they need. What one request holds at once is a part plus, for a tail,
//! the tail itself, which is capped at [`MAX_TAIL_BYTES`]: beyond it the oldest lines are left
//! out and a marker line says so.

use axum::body::Bytes;
use sparkwing_storage::{LogStore, ReadOpts, StoreError};
use std::collections::VecDeque;
use std::sync::Arc;

/// The response format of a log request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Messages, ANSI escape sequences removed (`text/plain`).
    Plain,
    /// Messages as written, colours included (`text/x-ansi`).
    Ansi,
    /// The stored records, one JSON object a line (`application/x-ndjson`).
    Ndjson,
}

impl LogFormat {
    /// `?format=` value (Go original spellings accepted); `None` for an unknown value.
    pub fn parse(s: &str) -> Option<LogFormat> {
        Some(match s {
            "" | "plain" | "text" => LogFormat::Plain,
            "ansi" | "color" => LogFormat::Ansi,
            "ndjson" | "raw" | "json" => LogFormat::Ndjson,
            _ => return None,
        })
    }

    /// The `Content-Type` of the response.
    pub fn content_type(self) -> &'static str {
        match self {
            LogFormat::Plain => "text/plain; charset=utf-8",
            LogFormat::Ansi => "text/x-ansi; charset=utf-8",
            LogFormat::Ndjson => "application/x-ndjson",
        }
    }
}

/// Renders the stored bytes of one node's log, then applies the filters to the rendered lines so
/// `grep` matches what the reader sees (not JSON keys).
pub fn render(stored: &[u8], format: LogFormat, opts: &ReadOpts) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len());
    for line in stored.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match format {
            LogFormat::Ndjson => out.extend_from_slice(line),
            LogFormat::Ansi => out.extend_from_slice(message(line).as_bytes()),
            LogFormat::Plain => out.extend_from_slice(strip_controls(&message(line)).as_bytes()),
        }
        out.push(b'\n');
    }
    opts.apply(&out)
}

use sparkwing_contract::record::log_line_text as message;
use sparkwing_contract::text::strip_controls;

/// Most bytes of rendered lines a tail holds; older lines beyond it are left out.
pub const MAX_TAIL_BYTES: usize = 8 << 20;

/// One node's log as a request wants it.
pub struct LogRead {
    pub store: Arc<dyn LogStore>,
    pub run: String,
    pub node: String,
    pub format: LogFormat,
    pub opts: ReadOpts,
    /// [`MAX_TAIL_BYTES`] outside tests.
    pub max_tail: usize,
}

/// What a log request sends: a stream of chunks, or the whole answer when it had to be collected
/// first (a tail) or the parts cannot be read one by one.
pub enum LogBody {
    Whole(Vec<u8>),
    Parts(futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>),
}

impl LogRead {
    /// Lists the node's parts (so a store that cannot be reached fails the request with a
    /// status, before any byte is sent), then reads them as the filters need.
    pub async fn start(self) -> Result<LogBody, StoreError> {
        let parts = self.store.list_node_parts(&self.run, &self.node).await?;
        // Parts not named the way this tool names them (another writer) cannot be read one by
        // one through the store: read the log whole, as before.
        if parts
            .iter()
            .any(|p| sparkwing_storage::validate_part_name(p).is_err())
        {
            let stored = self
                .store
                .read(&self.run, &self.node, &ReadOpts::default())
                .await?;
            return Ok(LogBody::Whole(render(&stored, self.format, &self.opts)));
        }
        if self.opts.tail > 0 && self.opts.lines.is_none() {
            return self.tail_backwards(parts).await.map(LogBody::Whole);
        }
        Ok(LogBody::Parts(Box::pin(self.forward(parts))))
    }

    /// The last `tail` lines (after `grep`), reading parts from the last one backwards.
    async fn tail_backwards(&self, parts: Vec<String>) -> Result<Vec<u8>, StoreError> {
        let want = self.opts.tail;
        let grep = ReadOpts {
            grep: self.opts.grep.clone(),
            ..Default::default()
        };
        // Newest first.
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let (mut bytes, mut truncated) = (0usize, false);
        'parts: for part in parts.iter().rev() {
            let stored = self.store.read_part(&self.run, &self.node, part).await?;
            let rendered = render(&stored, self.format, &grep);
            drop(stored);
            for line in rendered.split_inclusive(|&b| b == b'\n').rev() {
                if kept.len() == want {
                    break 'parts;
                }
                if bytes + line.len() > self.max_tail {
                    truncated = true;
                    break 'parts;
                }
                bytes += line.len();
                kept.push(line.to_vec());
            }
        }
        let mut out = Vec::with_capacity(bytes + 200);
        if truncated {
            out.extend_from_slice(&self.marker(kept.len()));
        }
        for line in kept.iter().rev() {
            out.extend_from_slice(line);
        }
        Ok(out)
    }

    /// The line that stands for the lines a capped tail left out.
    fn marker(&self, kept: usize) -> Vec<u8> {
        let text = format!(
            "[sparkwing: earlier lines left out: the last {kept} lines fill the {} a log request may hold; read further back with ?head=N or ?lines=A:B]",
            sparkwing_contract::human::bytes(self.max_tail as u64)
        );
        let mut line = match self.format {
            LogFormat::Ndjson => {
                serde_json::json!({"level": "warn", "node": self.node, "msg": text})
                    .to_string()
                    .into_bytes()
            }
            _ => text.into_bytes(),
        };
        line.push(b'\n');
        line
    }

    /// Parts in order, each sent once rendered and filtered; stops after the last line `head` or
    /// `lines` needs. A tail within `lines` keeps only its last lines (capped) until the end.
    fn forward(
        self,
        parts: Vec<String>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        struct Walk {
            read: LogRead,
            parts: std::vec::IntoIter<String>,
            line_no: usize,
            sent: usize,
            ring: VecDeque<Vec<u8>>,
            ring_bytes: usize,
            truncated: bool,
            done: bool,
        }
        let walk = Walk {
            read: self,
            parts: parts.into_iter(),
            line_no: 0,
            sent: 0,
            ring: VecDeque::new(),
            ring_bytes: 0,
            truncated: false,
            done: false,
        };
        futures_util::stream::unfold(walk, |mut w| async move {
            loop {
                if w.done {
                    return None;
                }
                let Some(part) = w.parts.next() else {
                    w.done = true;
                    if w.ring.is_empty() && !w.truncated {
                        return None;
                    }
                    let mut out = Vec::with_capacity(w.ring_bytes + 200);
                    if w.truncated {
                        out.extend_from_slice(&w.read.marker(w.ring.len()));
                    }
                    for line in w.ring.drain(..) {
                        out.extend_from_slice(&line);
                    }
                    return Some((Ok(Bytes::from(out)), w));
                };
                let stored = match w
                    .read
                    .store
                    .read_part(&w.read.run, &w.read.node, &part)
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        // Ending the body with an error: the client sees an incomplete response.
                        eprintln!(
                            "warning: reading the log of `{}` in `{}` stopped: {e}",
                            w.read.node, w.read.run
                        );
                        w.done = true;
                        return Some((Err(std::io::Error::other(e.to_string())), w));
                    }
                };
                let rendered = render(&stored, w.read.format, &ReadOpts::default());
                drop(stored);
                let opts = &w.read.opts;
                let mut out = Vec::new();
                for line in rendered.split_inclusive(|&b| b == b'\n') {
                    w.line_no += 1;
                    if let Some((from, to)) = opts.lines {
                        if w.line_no < from {
                            continue;
                        }
                        if w.line_no > to {
                            w.done = true;
                            break;
                        }
                    }
                    if let Some(g) = opts.grep.as_deref().filter(|g| !g.is_empty()) {
                        let body = line.strip_suffix(b"\n").unwrap_or(line);
                        if !body.windows(g.len()).any(|win| win == g.as_bytes()) {
                            continue;
                        }
                    }
                    if opts.tail > 0 {
                        w.ring_bytes += line.len();
                        w.ring.push_back(line.to_vec());
                        while w.ring.len() > opts.tail
                            || (w.ring_bytes > w.read.max_tail && !w.ring.is_empty())
                        {
                            if w.ring.len() <= opts.tail {
                                w.truncated = true;
                            }
                            if let Some(old) = w.ring.pop_front() {
                                w.ring_bytes -= old.len();
                            }
                        }
                        continue;
                    }
                    out.extend_from_slice(line);
                    w.sent += 1;
                    if opts.head > 0 && w.sent >= opts.head {
                        w.done = true;
                        break;
                    }
                }
                if w.done && opts.tail > 0 {
                    // The range ended: send the tail now.
                    w.done = false;
                    w.parts = Vec::new().into_iter();
                    continue;
                }
                if !out.is_empty() {
                    return Some((Ok(Bytes::from(out)), w));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(msg: &str) -> String {
        serde_json::json!({"ts": "2026-01-01T00:00:00Z", "node": "b", "msg": msg}).to_string()
    }

    #[test]
    fn formats() {
        let stored = format!(
            "{}\n{}\n{}\nnot json\n",
            rec("\u{1b}[31mred\u{1b}[0m text"),
            serde_json::json!({"ts": "t", "event": "node_end"}),
            rec("<script>alert(1)</script>")
        );
        let plain = render(stored.as_bytes(), LogFormat::Plain, &ReadOpts::default());
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            "red text\n· node_end\n<script>alert(1)</script>\nnot json\n"
        );
        let ansi = render(stored.as_bytes(), LogFormat::Ansi, &ReadOpts::default());
        assert!(
            String::from_utf8(ansi)
                .unwrap()
                .starts_with("\u{1b}[31mred\u{1b}[0m text\n")
        );
        let raw = render(stored.as_bytes(), LogFormat::Ndjson, &ReadOpts::default());
        assert_eq!(raw, stored.as_bytes());
    }

    #[test]
    fn filters_apply_to_rendered_lines() {
        let stored = format!("{}\n{}\n{}\n", rec("one"), rec("two msg"), rec("three msg"));
        let grep = ReadOpts {
            grep: Some("msg".into()),
            ..Default::default()
        };
        assert_eq!(
            render(stored.as_bytes(), LogFormat::Plain, &grep),
            b"two msg\nthree msg\n"
        );
        // `msg` is also a JSON key: grep on records must not match every line.
        let grep = ReadOpts {
            grep: Some("one".into()),
            ..Default::default()
        };
        assert_eq!(render(stored.as_bytes(), LogFormat::Plain, &grep), b"one\n");
        let tail = ReadOpts {
            tail: 1,
            ..Default::default()
        };
        assert_eq!(
            render(stored.as_bytes(), LogFormat::Plain, &tail),
            b"three msg\n"
        );
    }

    /// A log of `parts` parts of `lines` records each, and its plain text.
    async fn seeded(parts: usize, lines: usize) -> (tempfile::TempDir, Arc<dyn LogStore>, String) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn LogStore> = Arc::new(sparkwing_storage::FsLogStore::new(dir.path()));
        let mut text = String::new();
        for p in 0..parts {
            let mut part = String::new();
            for l in 0..lines {
                let msg = format!("p{p:02} l{l:03}");
                part.push_str(&rec(&msg));
                part.push('\n');
                text.push_str(&msg);
                text.push('\n');
            }
            store
                .append_part(RUN, "n", part.into_bytes())
                .await
                .unwrap();
        }
        (dir, store, text)
    }

    const RUN: &str = "run-20260101-000000-00000001";

    async fn read(store: &Arc<dyn LogStore>, opts: ReadOpts, max_tail: usize) -> String {
        let r = LogRead {
            store: store.clone(),
            run: RUN.into(),
            node: "n".into(),
            format: LogFormat::Plain,
            opts,
            max_tail,
        };
        let bytes = match r.start().await.unwrap() {
            LogBody::Whole(b) => b,
            LogBody::Parts(mut s) => {
                use futures_util::StreamExt;
                let mut all = Vec::new();
                while let Some(c) = s.next().await {
                    all.extend_from_slice(&c.unwrap());
                }
                all
            }
        };
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn part_by_part_reads_match_filtering_the_whole_log() {
        let (_dir, store, text) = seeded(5, 20).await;
        let cases = [
            ReadOpts::default(),
            ReadOpts {
                tail: 3,
                ..Default::default()
            },
            ReadOpts {
                tail: 45,
                ..Default::default()
            },
            ReadOpts {
                tail: 1000,
                ..Default::default()
            },
            ReadOpts {
                head: 25,
                ..Default::default()
            },
            ReadOpts {
                lines: Some((19, 22)),
                ..Default::default()
            },
            ReadOpts {
                lines: Some((19, 70)),
                tail: 5,
                ..Default::default()
            },
            ReadOpts {
                grep: Some("l01".into()),
                tail: 12,
                ..Default::default()
            },
            ReadOpts {
                grep: Some("p03".into()),
                head: 2,
                ..Default::default()
            },
            ReadOpts {
                lines: Some((200, 300)),
                ..Default::default()
            },
        ];
        for opts in cases {
            let want = String::from_utf8(opts.apply(text.as_bytes())).unwrap();
            assert_eq!(
                read(&store, opts.clone(), MAX_TAIL_BYTES).await,
                want,
                "{opts:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_tail_over_the_cap_keeps_its_newest_lines_and_says_so() {
        let (_dir, store, text) = seeded(10, 100).await;
        let lines: Vec<&str> = text.lines().collect();
        // Each line is `pNN lNNN\n`, 9 bytes: 100 bytes hold 11 lines.
        for opts in [
            ReadOpts {
                tail: 500,
                ..Default::default()
            },
            ReadOpts {
                tail: 500,
                lines: Some((1, 1000)),
                ..Default::default()
            },
        ] {
            let got = read(&store, opts.clone(), 100).await;
            let mut got_lines = got.lines();
            let marker = got_lines.next().unwrap();
            assert_eq!(
                marker,
                "[sparkwing: earlier lines left out: the last 11 lines fill the 100 B a log request may hold; read further back with ?head=N or ?lines=A:B]",
                "{opts:?}"
            );
            let rest: Vec<&str> = got_lines.collect();
            assert_eq!(rest, lines[lines.len() - 11..], "{opts:?}");
        }
        // Within the cap, no marker.
        let got = read(
            &store,
            ReadOpts {
                tail: 11,
                ..Default::default()
            },
            100,
        )
        .await;
        assert_eq!(got.lines().count(), 11);
        assert!(!got.contains("sparkwing:"));
    }

    #[test]
    fn the_plain_view_shows_what_a_terminal_would() {
        let line = rec(
            "\u{1b}[1;32mok\u{1b}[0m \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7} \u{1b}]0;title\u{7}\u{7}x",
        );
        let plain = render(line.as_bytes(), LogFormat::Plain, &ReadOpts::default());
        assert_eq!(String::from_utf8(plain).unwrap(), "ok link x\n");
    }
}
