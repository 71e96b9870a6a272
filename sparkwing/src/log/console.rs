//! The console view: node output prefixed with the node id, lifecycle lines, the summary; on a
//! CI console that folds output, one group per node.

use super::{Level, RecordRef};
use crate::settings::LogFormat;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A CI console's way of folding lines into a named, collapsible group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// `::group::<title>` … `::endgroup::`.
    GitHub,
    /// `--- <title>` (collapsed) or `+++ <title>` (expanded); a group runs to the next header.
    Buildkite,
    /// `section_start:<unix>:<id>[collapsed=true]` … `section_end:<unix>:<id>`.
    GitLab,
}

/// Past this many bytes a node's held-back lines move to a temporary file.
const GROUP_MEM_MAX: usize = 4 << 20;

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
    pending: Mutex<Vec<u8>>,
    groups: Option<Groups>,
    /// Every write holds this lock, so a group printed in several writes is never interleaved.
    out: Mutex<Out>,
    /// Nodes whose output may issue CI workflow commands ([`crate::Job::allow_ci_commands`]).
    commands_allowed: HashSet<String>,
}

/// Groups cannot interleave, so with several workers a node's lines are held back and printed as
/// one group when the node ends; with one worker they stream live inside the open group.
#[derive(Debug)]
struct Groups {
    kind: Grouping,
    live: bool,
    held: Mutex<HashMap<String, Held>>,
    seq: AtomicU64,
    /// Running nodes whose lines are held back, for the progress lines.
    running: Mutex<HashMap<String, Progress>>,
    /// How often progress lines are printed (held-back consoles only).
    progress_every: Option<std::time::Duration>,
}

/// What a progress line says of a running node whose output is held back.
#[derive(Debug)]
struct Progress {
    started: std::time::Instant,
    lines: u64,
    last: String,
}

/// Longest last line a progress line quotes, in characters.
const PROGRESS_LAST_MAX: usize = 120;

/// One node's held-back console text: in memory, then in a temporary file past
/// [`GROUP_MEM_MAX`], so a chatty node cannot exhaust memory.
#[derive(Debug, Default)]
struct Held {
    mem: Vec<u8>,
    file: Option<(PathBuf, std::fs::File)>,
}

impl Held {
    fn push(&mut self, bytes: &[u8]) {
        if self.file.is_none() && self.mem.len() + bytes.len() > GROUP_MEM_MAX {
            static N: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "sparkwing-console-{}-{}.txt",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            // Held output may be anything a job printed: only the run's user reads it, whatever
            // the umask (the directory is the shared /tmp, not the sparkwing home).
            use std::os::unix::fs::OpenOptionsExt;
            if let Ok(mut f) = std::fs::File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                && f.write_all(&self.mem).is_ok()
            {
                self.mem = Vec::new();
                self.file = Some((path, f));
            }
        }
        match &mut self.file {
            Some((_, f)) => {
                // A full disk loses console text only; the log store keeps every line.
                let _ = f.write_all(bytes);
            }
            None => self.mem.extend_from_slice(bytes),
        }
    }

    fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.file.is_none()
    }

    /// Writes the held text to stdout and removes the spill file.
    fn drain_to(mut self, out: &mut dyn Write) {
        if let Some((path, mut f)) = self.file.take() {
            if f.rewind().is_ok() {
                let mut buf = vec![0u8; 256 * 1024];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 || out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
            let _ = std::fs::remove_file(path);
        }
        let _ = out.write_all(&self.mem);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((path, _)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A GitLab section id: `[A-Za-z0-9_.-]`, unique within the job log.
fn section_id(node: &str, n: u64) -> String {
    let clean: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("sw_{n}_{clean}")
}

/// GitHub's escaping of a workflow command's data (a message, a group title): the runner decodes
/// these, and a raw line break would end the command and start a new one.
fn github_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub's escaping of a workflow command's property value (`title=…`).
fn github_property(s: &str) -> String {
    github_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A character a CI console may take as the end of a line.
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// `s` on one line: line breaks become spaces.
fn one_line(s: &str) -> Cow<'_, str> {
    if s.contains(is_break) {
        Cow::Owned(s.replace(is_break, " "))
    } else {
        Cow::Borrowed(s)
    }
}

/// User text (an error, a skip reason) for a Buildkite or GitLab header: control sequences
/// removed and on one line, so it can neither end the header nor redraw the console.
fn plain_title(s: &str) -> String {
    let v = super::mask::visible(one_line(s).as_bytes());
    one_line(&String::from_utf8_lossy(&v.text)).into_owned()
}

/// A line of job output that the GitHub runner would read as a command, defused: a zero-width
/// space before a leading `::` (the runner trims whitespace before looking, not U+200B) and
/// inside every legacy `##[`, in each piece the runner may read as a line of its own.
fn defuse_github(line: &str) -> Cow<'_, str> {
    let leads = |piece: &str| piece.trim_start().starts_with("::");
    if !line.contains("##[") && !line.split(is_break).any(leads) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for piece in line.split_inclusive(is_break) {
        let t = piece.trim_start();
        if t.starts_with("::") {
            out.push_str(&piece[..piece.len() - t.len()]);
            out.push('\u{200b}');
            out.push_str(t);
        } else {
            out.push_str(piece);
        }
    }
    Cow::Owned(out.replace("##[", "##\u{200b}["))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const PALETTE: [&str; 6] = ["36", "35", "34", "33", "32", "96"];

fn node_color(node: &str) -> &'static str {
    let h = node
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    PALETTE[h as usize % PALETTE.len()]
}

/// Where console text goes: stdout, or memory for tests.
#[derive(Debug)]
enum Out {
    Stdout,
    #[cfg(any(test, feature = "fuzz"))]
    Capture(Vec<u8>),
}

/// Flush the lifecycle buffer on its own past this size.
const PENDING_MAX: usize = 32 * 1024;

impl Console {
    /// A console in `format`; with `grouping`, each node's lines fold into a CI group, streamed
    /// live when `workers` is 1 and held back until the node ends otherwise.
    pub fn new(format: LogFormat, grouping: Option<Grouping>, workers: usize) -> Console {
        Console {
            format,
            pending: Mutex::new(Vec::new()),
            groups: grouping.map(|kind| Groups {
                kind,
                live: workers == 1,
                held: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(0),
                running: Mutex::new(HashMap::new()),
                progress_every: None,
            }),
            out: Mutex::new(Out::Stdout),
            commands_allowed: HashSet::new(),
        }
    }

    /// Keeps what the console writes in memory instead of printing it (tests, the fuzz target).
    #[cfg(any(test, feature = "fuzz"))]
    pub fn capture(self) -> Console {
        *self.out.lock().unwrap_or_else(|e| e.into_inner()) = Out::Capture(Vec::new());
        self
    }

    /// What a [`Console::capture`] console wrote so far (lifecycle lines flushed first).
    #[cfg(any(test, feature = "fuzz"))]
    pub fn captured(&self) -> String {
        self.flush();
        match &*self.out.lock().unwrap_or_else(|e| e.into_inner()) {
            Out::Capture(v) => String::from_utf8_lossy(v).into_owned(),
            Out::Stdout => String::new(),
        }
    }

    /// Prints progress lines every `every` while output is held back (see [`Console::progress`]).
    pub fn with_progress(mut self, every: Option<std::time::Duration>) -> Console {
        if let Some(g) = &mut self.groups {
            g.progress_every = every.filter(|_| !g.live);
        }
        self
    }

    /// How often [`Console::progress`] should run, when it prints anything at all.
    pub fn progress_every(&self) -> Option<std::time::Duration> {
        self.groups.as_ref().and_then(|g| g.progress_every)
    }

    /// One line per running job whose lines are held back until it ends (several workers on a
    /// CI console): how long it has run, its lines so far and the last one (already masked), so
    /// a long job shows it is alive. Outside any group, and inert on the CI console.
    pub fn progress(&self) {
        let Some(g) = &self.groups else { return };
        if g.progress_every.is_none() {
            return;
        }
        let mut lines: Vec<(std::time::Instant, String)> = g
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(node, p)| {
                let ran = sparkwing_contract::human::duration(p.started.elapsed());
                let mut line = format!(
                    "… {node} running {ran}, {} line{} so far",
                    p.lines,
                    if p.lines == 1 { "" } else { "s" }
                );
                if !p.last.is_empty() {
                    let last: String = p.last.chars().take(PROGRESS_LAST_MAX).collect();
                    let cut = if last.len() < p.last.len() { "…" } else { "" };
                    line.push_str(&format!(": {last}{cut}"));
                }
                (p.started, line)
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        lines.sort();
        let mut text = String::new();
        for (_, line) in lines {
            let shown = sparkwing_contract::text::strip_controls(&line);
            text.push_str(&self.inert(&shown));
            text.push('\n');
        }
        self.flush();
        self.write_out(text.as_bytes());
    }

    /// Lets the output of `nodes` issue CI workflow commands.
    pub fn allow_commands(mut self, nodes: impl IntoIterator<Item = String>) -> Console {
        self.commands_allowed.extend(nodes);
        self
    }

    /// Whether `node`'s output is kept from issuing workflow commands: on GitHub Actions, unless
    /// the job opted in.
    fn stops_commands(&self, node: &str) -> bool {
        self.groups
            .as_ref()
            .is_some_and(|g| g.kind == Grouping::GitHub)
            && !self.commands_allowed.contains(node)
    }

    /// A line the console prints outside any job's output on a CI console: one line, and on
    /// GitHub never a command.
    fn inert<'a>(&self, line: &'a str) -> Cow<'a, str> {
        match &self.groups {
            None => Cow::Borrowed(line),
            Some(g) => {
                let one = one_line(line);
                if g.kind == Grouping::GitHub {
                    Cow::Owned(defuse_github(&one).into_owned())
                } else {
                    one
                }
            }
        }
    }

    /// Runs `f` with the output locked.
    fn with_out<R>(&self, f: impl FnOnce(&mut dyn Write) -> R) -> R {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *out {
            Out::Stdout => super::stdio::with_stdout(f),
            #[cfg(any(test, feature = "fuzz"))]
            Out::Capture(v) => f(v),
        }
    }

    fn write_out(&self, bytes: &[u8]) {
        // A closed stdout (a pager that quit) must not fail the run: the store still has the logs.
        self.with_out(|o| {
            let _ = o.write_all(bytes);
        });
    }

    /// Writes buffered lifecycle lines.
    pub fn flush(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p.is_empty() {
            self.write_out(&p);
            p.clear();
        }
    }

    fn buffered(&self, bytes: &[u8]) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.extend_from_slice(bytes);
        if p.len() >= PENDING_MAX {
            self.write_out(&p);
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
        if self.format == LogFormat::Json {
            self.flush();
            return self.write_out(json);
        }
        let lines: Vec<&str> = lines.collect();
        if let Some(g) = &self.groups
            && g.progress_every.is_some()
            && let Some(p) = g
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(node)
        {
            p.lines += lines.len() as u64;
            if let Some(last) = lines.iter().rev().find(|l| !l.trim().is_empty()) {
                p.last = last.trim_end().to_string();
            }
        }
        // Inside a group the group's title names the node, so lines go without the prefix.
        let text = self.format_lines(node, level, lines.into_iter(), self.groups.is_none());
        let text = if self.stops_commands(node) {
            // Already between stop-commands markers; defused as well in case a runner does not
            // honour them for every kind of command.
            text.split_inclusive('\n').map(defuse_github).collect()
        } else {
            text
        };
        match &self.groups {
            Some(g) if !g.live => {
                let mut held = g.held.lock().unwrap_or_else(|e| e.into_inner());
                held.entry(node.to_string())
                    .or_default()
                    .push(text.as_bytes());
            }
            _ => {
                // Lifecycle lines queued before this output belong before it.
                self.flush();
                self.write_out(text.as_bytes());
            }
        }
    }

    fn format_lines<'a>(
        &self,
        node: &str,
        level: Level,
        lines: impl Iterator<Item = &'a str>,
        prefix: bool,
    ) -> String {
        let label = match level {
            Level::Warn => "warning: ",
            Level::Error => "error: ",
            Level::Debug => "debug: ",
            Level::Info => "",
        };
        let mut text = String::new();
        let pretty = self.format == LogFormat::Pretty;
        let c = node_color(node);
        let lc = match level {
            Level::Warn => "\x1b[33m",
            Level::Error => "\x1b[31m",
            _ => "",
        };
        for l in lines {
            if prefix {
                if pretty {
                    text.push_str("\x1b[");
                    text.push_str(c);
                    text.push_str("m[");
                    text.push_str(node);
                    text.push_str("]\x1b[0m ");
                } else {
                    text.push('[');
                    text.push_str(node);
                    text.push_str("] ");
                }
            }
            if pretty && !lc.is_empty() {
                text.push_str(lc);
                text.push_str(label);
                text.push_str("\x1b[0m");
            } else {
                text.push_str(label);
            }
            text.push_str(super::mask::without_open_tail(l));
            text.push('\n');
        }
        text
    }

    /// The plain or coloured text of a lifecycle line.
    fn lifecycle_text(&self, mark: Mark, node: &str, detail: &str) -> String {
        match self.format {
            LogFormat::Pretty => format!(
                "\x1b[{}m{}\x1b[0m \x1b[1m{node}\x1b[0m {detail}",
                mark.color(),
                mark.symbol()
            ),
            _ if detail.is_empty() => format!("{} {node}", mark.symbol()),
            _ => format!("{} {node} {detail}", mark.symbol()),
        }
    }

    /// The line that opens a group titled `title`; `expanded` for a failed node where the console
    /// can show it open.
    fn group_open(g: &Groups, node: &str, title: &str, expanded: bool) -> (String, String) {
        match g.kind {
            Grouping::GitHub => (
                format!("::group::{}\n", github_data(title)),
                "::endgroup::\n".into(),
            ),
            Grouping::Buildkite => {
                let mark = if expanded { "+++" } else { "---" };
                (format!("{mark} {}\n", one_line(title)), String::new())
            }
            Grouping::GitLab => {
                let id = section_id(node, g.seq.fetch_add(1, Ordering::Relaxed));
                let collapsed = if expanded { "" } else { "[collapsed=true]" };
                (
                    format!(
                        "\x1b[0Ksection_start:{}:{id}{collapsed}\r\x1b[0K{}\n",
                        unix_now(),
                        one_line(title)
                    ),
                    format!("\x1b[0Ksection_end:{}:{id}\r\x1b[0K\n", unix_now()),
                )
            }
        }
    }

    /// Lifecycle handling when nodes fold into groups. Returns false when the line is an ordinary
    /// one after all.
    fn grouped_lifecycle(&self, g: &Groups, mark: Mark, node: &str, detail: &str) -> bool {
        // `detail` may be anything a job produced (an error, a skip reason): GitHub escapes it
        // where it goes into a command; other consoles get it cleaned into one plain line.
        let detail = match g.kind {
            Grouping::GitHub => Cow::Borrowed(detail),
            Grouping::Buildkite | Grouping::GitLab => Cow::Owned(plain_title(detail)),
        };
        let title = self.lifecycle_text(mark, node, &detail);
        let text = self.inert(&title);
        let failed = mark == Mark::Failed;
        let annotation = (failed && g.kind == Grouping::GitHub).then(|| {
            format!(
                "::error title={}::job `{}` failed: {}\n",
                github_property("sparkwing"),
                github_data(node),
                github_data(&detail)
            )
        });
        // Between these two lines the GitHub runner reads no command at all.
        let (pause, resume) = if self.stops_commands(node) {
            // Unguessable, so job output cannot end the pause it is printed in.
            let token = super::random_token();
            (
                format!("::stop-commands::{token}\n"),
                format!("::{token}::\n"),
            )
        } else {
            (String::new(), String::new())
        };
        if g.live {
            let mut held = g.held.lock().unwrap_or_else(|e| e.into_inner());
            match mark {
                Mark::Start => {
                    let (open, close) = Self::group_open(g, node, node, false);
                    // In live mode the held entry only remembers how to close the open group.
                    held.insert(
                        node.to_string(),
                        Held {
                            mem: format!("{resume}{close}").into_bytes(),
                            file: None,
                        },
                    );
                    drop(held);
                    self.buffered(format!("{text}\n{open}{pause}").as_bytes());
                }
                Mark::Retry => self.buffered(format!("{text}\n").as_bytes()),
                _ => {
                    let close = held.remove(node).map(|mut h| std::mem::take(&mut h.mem));
                    drop(held);
                    let mut out =
                        String::from_utf8_lossy(close.as_deref().unwrap_or(b"")).into_owned();
                    if failed && g.kind == Grouping::Buildkite && close.is_some() {
                        // Expand the section just printed so the failure shows open.
                        out.push_str("^^^ +++\n");
                    }
                    out.push_str(&text);
                    out.push('\n');
                    out.push_str(annotation.as_deref().unwrap_or(""));
                    self.buffered(out.as_bytes());
                }
            }
            return true;
        }
        let mut running = g.running.lock().unwrap_or_else(|e| e.into_inner());
        match mark {
            Mark::Start | Mark::Retry => {
                running.entry(node.to_string()).or_insert_with(|| Progress {
                    started: std::time::Instant::now(),
                    lines: 0,
                    last: String::new(),
                });
            }
            _ => {
                running.remove(node);
            }
        }
        drop(running);
        match mark {
            Mark::Start => false,
            Mark::Retry => {
                let mut held = g.held.lock().unwrap_or_else(|e| e.into_inner());
                held.entry(node.to_string())
                    .or_default()
                    .push(format!("{text}\n").as_bytes());
                true
            }
            _ => {
                let lines = g
                    .held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(node);
                self.flush();
                self.with_out(|out| {
                    match lines {
                        Some(lines) if !lines.is_empty() => {
                            let (open, close) = Self::group_open(g, node, &title, failed);
                            let _ = out.write_all(open.as_bytes());
                            let _ = out.write_all(pause.as_bytes());
                            lines.drain_to(out);
                            let _ = out.write_all(resume.as_bytes());
                            let _ = out.write_all(close.as_bytes());
                        }
                        _ => {
                            let _ = out.write_all(format!("{text}\n").as_bytes());
                        }
                    }
                    if let Some(a) = &annotation {
                        let _ = out.write_all(a.as_bytes());
                    }
                });
                true
            }
        }
    }

    /// `✔ build 1.2s`, `✘ test exit 1 (0.3s)`, …
    pub fn lifecycle(&self, mark: Mark, node: &str, detail: &str) {
        if let Some(g) = &self.groups
            && self.grouped_lifecycle(g, mark, node, detail)
        {
            return;
        }
        self.plain_lifecycle(mark, node, detail);
    }

    fn plain_lifecycle(&self, mark: Mark, node: &str, detail: &str) {
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
                    format!("{} {}\n", mark.symbol(), self.inert(node))
                } else {
                    format!(
                        "{} {}\n",
                        mark.symbol(),
                        self.inert(&format!("{node} {detail}"))
                    )
                }
            }
            LogFormat::Pretty => format!(
                "\x1b[{}m{}\x1b[0m \x1b[1m{}\x1b[0m {}\n",
                mark.color(),
                mark.symbol(),
                self.inert(node),
                self.inert(detail)
            ),
        };
        self.buffered(line.as_bytes());
    }

    /// The first line of a run: `▶ <pipeline> <run id> N job(s), M worker(s)`; in JSON mode a
    /// `run_start` record.
    pub fn run_start(&self, pipeline: &str, run_id: &str, detail: &str) {
        if self.format != LogFormat::Json {
            return self.plain_lifecycle(Mark::Start, &format!("{pipeline} {run_id}"), detail);
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
                self.write_out(&buf);
            }
            LogFormat::Plain | LogFormat::Pretty => {
                let mut text = String::from("\n");
                for (i, l) in lines.iter().enumerate() {
                    let l = self.inert(l);
                    if i == 0 && self.format == LogFormat::Pretty {
                        let c = if failed { "31" } else { "32" };
                        text.push_str(&format!("\x1b[1;{c}m{l}\x1b[0m\n"));
                    } else {
                        text.push_str(&l);
                        text.push('\n');
                    }
                }
                self.write_out(text.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(grouping: Option<Grouping>, workers: usize) -> Console {
        Console::new(LogFormat::Plain, grouping, workers).capture()
    }

    fn text(c: &Console) -> String {
        c.captured()
    }

    /// The text with each stop-commands token replaced by `T`, which is then checked to pause
    /// and resume with the same unguessable token.
    fn untokened(t: &str) -> String {
        let mut out = String::new();
        let mut token: Option<String> = None;
        for l in t.split_inclusive('\n') {
            if let Some(tk) = l.trim_end().strip_prefix("::stop-commands::") {
                assert!(token.is_none() && tk.len() == 32, "{t}");
                token = Some(tk.to_string());
                out.push_str("::stop-commands::T\n");
            } else if token
                .as_ref()
                .is_some_and(|tk| l.trim_end() == format!("::{tk}::"))
            {
                token = None;
                out.push_str("::T::\n");
            } else {
                out.push_str(l);
            }
        }
        out
    }

    fn lines(c: &Console, node: &str, l: &[&str]) {
        c.node_lines(node, Level::Info, l.iter().copied(), b"");
    }

    #[test]
    fn local_mode_prefixes_every_line_with_its_node() {
        let c = console(None, 4);
        c.lifecycle(Mark::Start, "a", "");
        lines(&c, "a", &["one"]);
        c.lifecycle(Mark::Success, "a", "1ms");
        assert_eq!(text(&c), "▶ a\n[a] one\n✔ a 1ms\n");
    }

    #[test]
    fn github_groups_hold_each_node_back_until_it_ends() {
        let c = console(Some(Grouping::GitHub), 2);
        c.lifecycle(Mark::Start, "a", "");
        c.lifecycle(Mark::Start, "b", "");
        lines(&c, "a", &["a1"]);
        lines(&c, "b", &["b1"]);
        lines(&c, "a", &["a2"]);
        c.lifecycle(Mark::Failed, "b", "exit 1 (2ms)");
        c.lifecycle(Mark::Success, "a", "3ms");
        c.lifecycle(Mark::Cancelled, "c", "cancelled: upstream-failed");
        assert_eq!(
            untokened(&text(&c)),
            "▶ a\n▶ b\n\
             ::group::✘ b exit 1 (2ms)\n::stop-commands::T\nb1\n::T::\n::endgroup::\n\
             ::error title=sparkwing::job `b` failed: exit 1 (2ms)\n\
             ::group::✔ a 3ms\n::stop-commands::T\na1\na2\n::T::\n::endgroup::\n\
             ⊘ c cancelled: upstream-failed\n"
        );
    }

    #[test]
    fn one_worker_streams_live_inside_the_open_group() {
        let c = console(Some(Grouping::GitHub), 1);
        c.lifecycle(Mark::Start, "a", "");
        lines(&c, "a", &["a1"]);
        assert_eq!(
            untokened(&text(&c)),
            "▶ a\n::group::a\n::stop-commands::T\na1\n",
            "lines are not held back"
        );
        c.lifecycle(Mark::Success, "a", "3ms");
        let t = untokened(&text(&c));
        assert!(t.ends_with("a1\n::T::\n::endgroup::\n✔ a 3ms\n"), "{t}");
    }

    #[test]
    fn buildkite_expands_a_failed_node_and_gitlab_uses_sections() {
        let c = console(Some(Grouping::Buildkite), 2);
        c.lifecycle(Mark::Start, "ok", "");
        lines(&c, "ok", &["fine"]);
        c.lifecycle(Mark::Success, "ok", "1ms");
        c.lifecycle(Mark::Start, "bad", "");
        lines(&c, "bad", &["boom"]);
        c.lifecycle(Mark::Failed, "bad", "exit 2 (1ms)");
        let t = text(&c);
        assert!(t.contains("--- ✔ ok 1ms\nfine\n"), "{t}");
        assert!(t.contains("+++ ✘ bad exit 2 (1ms)\nboom\n"), "{t}");

        let c = console(Some(Grouping::GitLab), 2);
        c.lifecycle(Mark::Start, "x/y", "");
        lines(&c, "x/y", &["l"]);
        c.lifecycle(Mark::Success, "x/y", "1ms");
        let t = text(&c);
        let start = t.find("\x1b[0Ksection_start:").expect(&t);
        assert!(
            t[start..].contains(":sw_0_x_y[collapsed=true]\r\x1b[0K✔ x/y 1ms\nl\n"),
            "{t:?}"
        );
        assert!(t.contains("\x1b[0Ksection_end:"), "{t:?}");
        assert!(t.contains(":sw_0_x_y\r\x1b[0K\n"), "{t:?}");
    }

    #[test]
    fn held_back_jobs_say_they_are_alive_between_groups() {
        let c = console(Some(Grouping::GitHub), 2)
            .with_progress(Some(std::time::Duration::from_secs(30)));
        assert_eq!(c.progress_every(), Some(std::time::Duration::from_secs(30)));
        c.lifecycle(Mark::Start, "build", "");
        c.lifecycle(Mark::Start, "test", "");
        lines(&c, "build", &["compiling a", "compiling b"]);
        lines(
            &c,
            "test",
            &["\u{1b}[31mok\u{1b}[0m", "::warning title=x::forged"],
        );
        c.progress();
        let t = text(&c);
        assert!(
            t.contains("… build running ") && t.contains(", 2 lines so far: compiling b\n"),
            "{t}"
        );
        assert!(
            t.contains(", 2 lines so far: ::warning title=x::forged\n"),
            "{t}"
        );
        assert!(!t.contains("::group::"), "groups still held back:\n{t}");
        assert!(!t.lines().any(|l| l.starts_with("::")), "{t}");
        c.lifecycle(Mark::Success, "build", "1s");
        c.lifecycle(Mark::Success, "test", "1s");
        let before = text(&c).len();
        c.progress();
        assert_eq!(text(&c).len(), before, "nothing runs: no progress line");
        // Streaming live (one worker) shows every line already: no progress lines.
        let live = console(Some(Grouping::GitHub), 1)
            .with_progress(Some(std::time::Duration::from_secs(30)));
        assert_eq!(live.progress_every(), None);
    }

    #[test]
    fn a_chatty_node_spills_to_disk_and_prints_whole() {
        let c = console(Some(Grouping::GitHub), 2);
        c.lifecycle(Mark::Start, "big", "");
        let line = "x".repeat(1000);
        for _ in 0..6000 {
            lines(&c, "big", &[&line]);
        }
        let spilled = c.groups.as_ref().unwrap().held.lock().unwrap()["big"]
            .file
            .as_ref()
            .map(|(p, _)| p.clone())
            .expect("past 4 MiB the lines moved to a file");
        assert!(spilled.exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&spilled).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "only the run's user may read held output"
        );
        c.lifecycle(Mark::Success, "big", "1s");
        let t = text(&c);
        assert_eq!(t.matches(&line).count(), 6000);
        assert!(t.ends_with("::endgroup::\n"));
        assert!(!spilled.exists(), "the spill file is removed once printed");
    }

    #[test]
    fn titles_and_errors_stay_on_one_line_on_every_console() {
        let evil = "boom\n::warning title=injected::x\r\n--- fake\u{1b}[2J";
        let c = console(Some(Grouping::GitHub), 2);
        c.lifecycle(Mark::Start, "a", "");
        lines(&c, "a", &["l"]);
        c.lifecycle(Mark::Failed, "a", evil);
        let t = text(&c);
        assert!(
            t.contains("::group::✘ a boom%0A::warning title=injected::x%0D%0A--- fake"),
            "{t:?}"
        );
        assert!(
            t.contains("::error title=sparkwing::job `a` failed: boom%0A::warning"),
            "{t:?}"
        );
        assert!(!t.lines().any(|l| l.starts_with("::warning")), "{t:?}");

        let c = console(Some(Grouping::Buildkite), 2);
        c.lifecycle(Mark::Start, "a", "");
        lines(&c, "a", &["l"]);
        c.lifecycle(Mark::Failed, "a", evil);
        let t = text(&c);
        assert!(!t.lines().any(|l| l.starts_with("::warning")), "{t:?}");
        assert!(!t.lines().any(|l| l.starts_with("--- fake")), "{t:?}");
        assert!(!t.contains('\u{1b}') && !t.contains('\r'), "{t:?}");

        let c = console(Some(Grouping::GitLab), 2);
        c.lifecycle(Mark::Start, "a", "");
        lines(&c, "a", &["l"]);
        c.lifecycle(Mark::Failed, "a", evil);
        let t = text(&c);
        assert!(!t.lines().any(|l| l.starts_with("::warning")), "{t:?}");
        let header = t.lines().find(|l| l.contains("section_start")).unwrap();
        assert!(header.contains("boom ::warning"), "{header:?}");
        assert!(!header.contains("[2J"), "{header:?}");
    }

    #[test]
    fn a_job_that_opted_in_issues_commands_and_others_are_defused() {
        let c = console(Some(Grouping::GitHub), 2).allow_commands(["ok".to_string()]);
        for node in ["ok", "no"] {
            c.lifecycle(Mark::Start, node, "");
            lines(&c, node, &["::notice::hi", " ::x", "a ##[b]", "y\r::z"]);
            c.lifecycle(Mark::Success, node, "1ms");
        }
        let t = untokened(&text(&c));
        assert!(
            t.contains("::group::✔ ok 1ms\n::notice::hi\n ::x\na ##[b]\ny\r::z\n::endgroup::"),
            "{t:?}"
        );
        assert!(
            t.contains(
                "::group::✔ no 1ms\n::stop-commands::T\n\u{200b}::notice::hi\n \u{200b}::x\n\
                 a ##\u{200b}[b]\ny\r\u{200b}::z\n::T::\n::endgroup::"
            ),
            "{t:?}"
        );
    }
}
