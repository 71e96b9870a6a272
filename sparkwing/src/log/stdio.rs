//! The pipeline process's own stdout and stderr through the masker.
//!
//! Step code runs in this process: its `println!`, `eprintln!`, a child it starts with inherited
//! stdio and a panic message would reach the console without passing the masker. So at start
//! ([`Route::install`]) the real stdout and stderr are kept (duplicated, close-on-exec) for the
//! console, and descriptors 1 and 2 are replaced by pipes that one thread each reads, masks and
//! writes to the real stream. A line is masked whole; a partial line (a prompt, a progress dot) is
//! passed on at once up to where a secret may have begun ([`Masker::safe_cut`]), so no piece ever
//! shows part of one. Secrets registered later apply to what is read after.
//!
//! Nothing is lost at exit: [`Route`] drains when dropped (every return of the entry point, error
//! paths and unwinding included): Rust's stdout buffer is flushed, then a marker is written
//! through each pipe and the drop waits (bounded) until each thread has passed everything before
//! it on.

use super::mask::Masker;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a drain waits for the threads (a console that does not read could block them).
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// An unfinished line waits at most this much (an endless escape sequence must not hold memory).
const MAX_HELD: usize = 64 * 1024;

/// The process-wide state once installed: where the real streams are and what masks.
struct Installed {
    out: Mutex<File>,
    err: Mutex<File>,
    masker: Masker,
    /// Written through a pipe to ask its thread to pass everything before it on.
    marker: Vec<u8>,
    /// Markers passed, counted by both threads.
    drained: (Mutex<u64>, Condvar),
    /// Per stream (stdout, stderr): a line step code began is not finished on the real stream
    /// yet (part of it passed on, or held back).
    open: [AtomicBool; 2],
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Runs `f` on the real stdout: the console writes here, never through the masking pipe (its
/// text is masked already). Writes of the routing thread hold the same lock, so lines never
/// interleave.
pub(crate) fn with_stdout<R>(f: impl FnOnce(&mut dyn Write) -> R) -> R {
    match INSTALLED.get() {
        Some(i) => f(&mut *i.out.lock().unwrap_or_else(|p| p.into_inner())),
        None => f(&mut std::io::stdout().lock()),
    }
}

/// The routing of fds 1 and 2 through the masker, drained when dropped.
#[derive(Debug)]
pub(crate) struct Route {
    _private: (),
}

impl Route {
    /// Routes the process's stdout and stderr through `masker` and installs a panic hook that
    /// masks panic messages. Once per process; `None` (and nothing changed) when it was done
    /// already or a descriptor cannot be set up.
    pub fn install(masker: &Masker) -> Option<Route> {
        if INSTALLED.get().is_some() {
            return None;
        }
        let _ = std::io::stdout().flush();
        let out = File::from(std::io::stdout().as_fd().try_clone_to_owned().ok()?);
        let err = File::from(std::io::stderr().as_fd().try_clone_to_owned().ok()?);
        let (out_r, out_w) = std::io::pipe().ok()?;
        let (err_r, err_w) = std::io::pipe().ok()?;
        let installed = Installed {
            out: Mutex::new(out),
            err: Mutex::new(err),
            masker: masker.clone(),
            marker: format!("\0\u{1}sparkwing-drain-{}\0", super::random_token()).into_bytes(),
            drained: (Mutex::new(0), Condvar::new()),
            open: [AtomicBool::new(false), AtomicBool::new(false)],
        };
        if INSTALLED.set(installed).is_err() {
            return None;
        }
        let i = INSTALLED.get()?;
        for (reader, to, open, name) in [
            (out_r, &i.out, &i.open[0], "sparkwing-stdout"),
            (err_r, &i.err, &i.open[1], "sparkwing-stderr"),
        ] {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || pass_on(reader, to, open, i))
                .ok()?;
        }
        // From here on the process writes into the pipes. A failure leaves that stream as it was.
        let _ = nix::unistd::dup2_stdout(&out_w);
        let _ = nix::unistd::dup2_stderr(&err_w);
        drop((out_w, err_w));
        std::panic::set_hook(Box::new(masked_panic));
        Some(Route { _private: () })
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        if let Some(i) = INSTALLED.get() {
            drain(i);
        }
    }
}

/// When step code left a line unfinished on the console, passes on everything written to fds 1
/// and 2 so far before the caller writes (bounded): a job's end line then never splits a line
/// the job wrote in pieces. Costs two atomic loads when no line is open.
pub(crate) fn settle() {
    if let Some(i) = INSTALLED.get()
        && i.open.iter().any(|o| o.load(Ordering::Acquire))
    {
        drain(i);
    }
}

/// Writes a marker through each pipe and waits (bounded) until both threads passed on
/// everything before it.
fn drain(i: &Installed) {
    let count = |i: &Installed| *i.drained.0.lock().unwrap_or_else(|p| p.into_inner());
    let before = count(i);
    // The marker follows whatever Rust's stdout still buffers; a pipe write this small is
    // atomic, so it cannot land inside another writer's line.
    let mut out = std::io::stdout().lock();
    let _ = out.flush();
    let _ = out.write_all(&i.marker);
    let _ = out.flush();
    drop(out);
    let _ = std::io::stderr().lock().write_all(&i.marker);
    let end = Instant::now() + DRAIN_WAIT;
    let mut n = i.drained.0.lock().unwrap_or_else(|p| p.into_inner());
    while *n < before + 2 {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        n = i
            .drained
            .1
            .wait_timeout(n, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// Reads one pipe to its end and passes the text on, masked, to `to`.
fn pass_on(mut reader: std::io::PipeReader, to: &Mutex<File>, open: &AtomicBool, i: &Installed) {
    let mut pending: Vec<u8> = Vec::new();
    // Whether what went out last ends mid-line.
    let mut mid_line = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut marks = 0;
        while let Some(at) = find(&pending, &i.marker) {
            // Everything before a marker goes out now, an unfinished line included.
            let rest = pending.split_off(at + i.marker.len());
            pending.truncate(at);
            write_masked(to, &i.masker, &pending);
            mid_line = ends_mid_line(&pending, mid_line);
            pending = rest;
            marks += 1;
        }
        let keep = held_back(&pending, &i.masker, &i.marker);
        let out: Vec<u8> = pending.drain(..pending.len() - keep).collect();
        write_masked(to, &i.masker, &out);
        mid_line = ends_mid_line(&out, mid_line);
        open.store(mid_line || !pending.is_empty(), Ordering::Release);
        if marks > 0 {
            *i.drained.0.lock().unwrap_or_else(|p| p.into_inner()) += marks;
            i.drained.1.notify_all();
        }
    }
    write_masked(to, &i.masker, &pending);
}

/// Whether the stream ends mid-line after `written` went out (unchanged when nothing did).
fn ends_mid_line(written: &[u8], before: bool) -> bool {
    written.last().map_or(before, |&b| b != b'\n')
}

/// How many bytes at the end of `pending` must wait for more: the unfinished line from where a
/// secret (or the drain marker) may have begun.
pub(crate) fn held_back(pending: &[u8], masker: &Masker, marker: &[u8]) -> usize {
    let line_end = pending
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let tail = &pending[line_end..];
    let mut cut = masker.safe_cut(tail, tail.len());
    if let Some(k) = (1..marker.len())
        .rev()
        .find(|&k| tail.ends_with(&marker[..k]))
        .filter(|&k| tail.len() - k < cut)
    {
        // Kept back for the marker: still never inside a secret.
        cut = masker.safe_cut(tail, tail.len() - k);
    }
    if tail.len() - cut > MAX_HELD {
        return 0;
    }
    tail.len() - cut
}

/// Writes `bytes` to `to` with each line masked.
fn write_masked(to: &Mutex<File>, masker: &Masker, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // A console that went away must not stop the run; the log store has the job output.
    let _ = to
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .write_all(masked_text(masker, bytes).as_bytes());
}

/// `bytes` with each line (and the unfinished last one) masked on its own.
pub(crate) fn masked_text(masker: &Masker, bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for piece in bytes.split_inclusive(|&b| b == b'\n') {
        let (line, nl) = match piece.strip_suffix(b"\n") {
            Some(l) => (l, true),
            None => (piece, false),
        };
        let masked = masker.mask(&String::from_utf8_lossy(line)).into_owned();
        if nl {
            text.push_str(super::mask::without_open_tail(&masked));
            text.push('\n');
        } else {
            text.push_str(&masked);
        }
    }
    text
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The panic hook: the message as std prints it, masked, written to the real stderr (never
/// through the pipe, so a panic in a routing thread cannot wait on itself).
fn masked_panic(info: &std::panic::PanicHookInfo<'_>) {
    let msg = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let at = info
        .location()
        .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let backtrace = std::backtrace::Backtrace::capture();
    let tail = match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => format!("stack backtrace:\n{backtrace}"),
        _ => "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
            .to_string(),
    };
    let text = format!("\nthread '{name}' panicked{at}:\n{msg}\n{tail}");
    match INSTALLED.get() {
        Some(i) => {
            let masked = i.masker.mask(&text);
            let _ = i
                .err
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_all(masked.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_line_waits_only_from_where_a_secret_may_begin() {
        let m = Masker::default();
        m.add("tok-SuperSecret");
        let marker = b"\0MARK\0";
        assert_eq!(held_back(b"done\nprogress tok-Su", &m, marker), 6);
        assert_eq!(held_back(b"progress ...", &m, marker), 0);
        assert_eq!(held_back(b"a\n", &m, marker), 0);
        assert_eq!(
            held_back(b"x\0MA", &m, marker),
            3,
            "a marker that has begun"
        );
    }
}
