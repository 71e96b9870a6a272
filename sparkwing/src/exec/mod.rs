//! Running a job's commands: each in its own process group, output captured line by line, stopped
//! by signalling the group (SIGTERM, grace, SIGKILL).

#[cfg(target_os = "linux")]
mod launch;
mod unix;

pub(crate) use unix::signal_group;

use crate::error::JobError;
use crate::log::{Level, Masker, NodeLog, Stream};
use crate::plan::Cmd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the owner of a job wants from its running commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Keep running.
    Run,
    /// SIGTERM the process group now, SIGKILL after the grace period.
    Term,
    /// SIGKILL the process group now.
    Kill,
}

/// A line longer than this is cut into pieces so one endless line cannot hold memory hostage.
const MAX_LINE: usize = 64 * 1024;
/// The first read of a pipe asks for this much; reads that fill it double it up to [`READ_MAX`].
const READ_MIN: usize = 4 * 1024;
const READ_MAX: usize = 64 * 1024;
/// How long a command runs before its output is read as it comes rather than after it exits.
const QUIET: Duration = Duration::from_millis(10);
/// The most output read from an exited command's pipe outside the runtime.
const AFTER_EXIT_MAX: usize = 256 * 1024;
/// How long output may keep flowing after the command's main process exited (a background child
/// that kept the pipe) before the rest of the group is killed.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// Where and how a command runs.
pub(crate) struct Spawn<'a> {
    pub cmd: &'a Cmd,
    pub job_env: &'a [(String, String)],
    pub job_dir: Option<&'a Path>,
    pub work_dir: &'a Path,
    pub grace: Duration,
}

/// Runs the command to completion. With `capture`, stdout is returned instead of logged.
pub(crate) async fn run(
    spec: Spawn<'_>,
    log: &NodeLog,
    step: &str,
    stop: &mut watch::Receiver<Stop>,
    capture: bool,
) -> Result<String, JobError> {
    let display = spec
        .cmd
        .display_masked(|s| log.masker().mask(s).into_owned());
    if *stop.borrow_and_update() != Stop::Run {
        return Err(JobError::Stopping { command: display });
    }
    let dir = match spec.cmd.dir.as_deref().or(spec.job_dir) {
        Some(d) => spec.work_dir.join(d),
        None => spec.work_dir.to_path_buf(),
    };
    // A `PATH` set for the command is searched by `execvp` itself; so is everything uncertain.
    let path_set = spec
        .job_env
        .iter()
        .chain(spec.cmd.env.iter())
        .any(|(k, _)| k == "PATH");
    let found = if path_set {
        None
    } else {
        std::env::var_os("PATH").and_then(|p| unix::find_in_path(&spec.cmd.program, &p))
    };
    let spawn_error = |source| JobError::Spawn {
        command: display.clone(),
        source,
    };
    let (out_read, out_write) = output_pipe().map_err(spawn_error)?;
    let (err_read, err_write) = output_pipe().map_err(spawn_error)?;
    log.record(Level::Info, step, "exec", &format!("$ {display}"), None);
    let mut child =
        start(&spec, found.as_deref(), &dir, out_write, err_write).map_err(spawn_error)?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let mut guard = unix::GroupGuard::new(pgid);

    // Most commands are short and print little. Until one has run for `QUIET`, only its exit is
    // watched: if it ends by then, whatever it printed is read straight from the pipes, which
    // are never registered with the runtime (and the pipes' own wake-ups at exit cost nothing).
    // A command still running then has its pipes read as they fill.
    let mut kill_at: Option<Instant> = None;
    let mut stop_open = true;
    let mut stop_seen = false;
    let early = tokio::select! {
        s = child.wait() => Some(s),
        _ = tokio::time::sleep(QUIET) => None,
        changed = stop.changed() => {
            stop_open = changed.is_ok();
            stop_seen = stop_open;
            None
        }
    };
    let (out_reader, err_reader) = match early {
        Some(_) => (after_exit(out_read), after_exit(err_read)),
        None => (streamed(out_read).map(Some), streamed(err_read).map(Some)),
    };
    // The command has started (and may have ended): a pipe the runtime cannot take is a failure
    // to read its output, not to start it.
    let wait_error = |source| JobError::Wait {
        command: display.clone(),
        source,
    };
    let (out_reader, err_reader) = (
        out_reader.map_err(wait_error)?,
        err_reader.map_err(wait_error)?,
    );
    // The pipes are read inside this future rather than in tasks of their own: a job that prints
    // little (most do) then costs no task spawns or cross-thread wake-ups, and dropping this
    // future still stops the reading.
    let out_pump = pump(out_reader, log, step, Stream::Stdout, capture);
    let err_pump = pump(err_reader, log, step, Stream::Stderr, false);
    tokio::pin!(out_pump, err_pump);
    let mut captured: Option<Option<String>> = None;
    let mut err_done = false;

    let apply_stop = |now: Stop, kill_at: &mut Option<Instant>| match now {
        Stop::Run => {}
        Stop::Term => {
            if kill_at.is_none() {
                signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
                *kill_at = Some(Instant::now() + spec.grace);
            }
        }
        Stop::Kill => {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            *kill_at = None;
        }
    };
    if stop_seen {
        apply_stop(*stop.borrow_and_update(), &mut kill_at);
    }
    let status = match early {
        Some(status) => status,
        None => loop {
            tokio::select! {
                s = child.wait() => break s,
                r = &mut out_pump, if captured.is_none() => captured = Some(r),
                _ = &mut err_pump, if !err_done => err_done = true,
                changed = stop.changed(), if stop_open => {
                    if changed.is_err() {
                        stop_open = false;
                        continue;
                    }
                    apply_stop(*stop.borrow_and_update(), &mut kill_at);
                }
                _ = sleep_until_opt(kill_at), if kill_at.is_some() => {
                    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    kill_at = None;
                }
            }
        },
    };

    // The main process is gone; give the pipes a moment to drain, then clear out whatever is left
    // of the group so nothing outlives its job. A process that left the group (setsid) and kept
    // the pipe open is abandoned after a further second rather than holding the job forever.
    let mut killed = false;
    if captured.is_none() || !err_done {
        let mut deadline = Instant::now() + DRAIN_AFTER_EXIT;
        while captured.is_none() || !err_done {
            tokio::select! {
                r = &mut out_pump, if captured.is_none() => captured = Some(r),
                _ = &mut err_pump, if !err_done => err_done = true,
                _ = tokio::time::sleep_until(deadline) => {
                    if killed {
                        break;
                    }
                    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    killed = true;
                    deadline = Instant::now() + Duration::from_secs(1);
                }
            }
        }
    }
    if !killed {
        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    guard.disarm();
    let captured = captured.flatten();

    let status = status.map_err(|source| JobError::Wait {
        command: display.clone(),
        source,
    })?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(captured.unwrap_or_default()),
        (Some(code), _) => Err(JobError::Exit {
            command: display,
            code,
        }),
        (None, Some(signal)) => Err(JobError::Signal {
            command: display,
            signal,
        }),
        (None, None) => Err(JobError::Exit {
            command: display,
            code: -1,
        }),
    }
}

/// A started command.
enum Child {
    #[cfg(target_os = "linux")]
    Launched(launch::Proc),
    Portable(tokio::process::Child),
}

impl Child {
    fn id(&self) -> Option<u32> {
        match self {
            #[cfg(target_os = "linux")]
            Child::Launched(p) => Some(p.id()),
            Child::Portable(c) => c.id(),
        }
    }

    /// Waits for the command to exit; cancel-safe.
    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self {
            #[cfg(target_os = "linux")]
            Child::Launched(p) => p.wait().await,
            Child::Portable(c) => c.wait().await,
        }
    }
}

/// Starts the command in its own process group, in `dir`, stdin `/dev/null`, stdout and stderr
/// the given pipe ends (closed here once the child has them). `found`: the file `PATH` gives
/// for the program, when that is certain.
fn start(
    spec: &Spawn<'_>,
    found: Option<&Path>,
    dir: &Path,
    out_write: std::os::fd::OwnedFd,
    err_write: std::os::fd::OwnedFd,
) -> std::io::Result<Child> {
    #[cfg(target_os = "linux")]
    if let (Some(file), Some(null)) = (found, null_file()) {
        use std::os::fd::AsFd;
        let env: Vec<(&str, &str)> = spec
            .job_env
            .iter()
            .chain(spec.cmd.env.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let launched = launch::launch(&launch::Launch {
            file,
            arg0: &spec.cmd.program,
            args: &spec.cmd.args,
            env: &env,
            dir,
            stdin: null.as_fd(),
            stdout: out_write.as_fd(),
            stderr: err_write.as_fd(),
        })?;
        if let Some(p) = launched {
            return Ok(Child::Launched(p));
        }
    }
    let mut command = match found {
        Some(file) => {
            let mut c = tokio::process::Command::new(file);
            c.arg0(&spec.cmd.program);
            c
        }
        None => tokio::process::Command::new(&spec.cmd.program),
    };
    command
        .args(&spec.cmd.args)
        .current_dir(dir)
        .stdin(null_input())
        .stdout(out_write)
        .stderr(err_write)
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in spec.job_env.iter().chain(spec.cmd.env.iter()) {
        command.env(k, v);
    }
    // The command holds the pipes' write ends: it is dropped here, or the pipes never end.
    command.spawn().map(Child::Portable)
}

/// A pipe for a command's output: the read end, non-blocking, for this process; the write end,
/// blocking, for the command.
fn output_pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let (read, write) = std::io::pipe()?;
    let read = std::os::fd::OwnedFd::from(read);
    fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(std::io::Error::from)?;
    Ok((read, write.into()))
}

/// What is left of a command's output pipe: the bytes already read, then (unless the pipe had
/// ended) the pipe itself, read as it fills.
type Output = tokio::io::Chain<std::io::Cursor<Vec<u8>>, Rest>;

/// The pipe of a command still running: every byte comes through the runtime.
fn streamed(read: std::os::fd::OwnedFd) -> std::io::Result<Output> {
    Ok(AsyncReadExt::chain(
        std::io::Cursor::new(Vec::new()),
        Rest::pipe(read)?,
    ))
}

/// The pipe of a command that has exited: what it holds now is read here. It usually ends there
/// too; when it does not (a process the command left behind still holds it, or it holds more than
/// [`AFTER_EXIT_MAX`]), the rest comes through the runtime. `None`: the pipe ended empty, as it
/// does for most commands.
fn after_exit(read: std::os::fd::OwnedFd) -> std::io::Result<Option<Output>> {
    use std::io::Read;
    let mut file = std::fs::File::from(read);
    let mut got = Vec::new();
    // `read_to_end` keeps what it read before an error; the pipe being empty but still held
    // (`WouldBlock`) is such an error. Reaching the cap counts as not ended.
    let ended = match (&mut file)
        .take(AFTER_EXIT_MAX as u64)
        .read_to_end(&mut got)
    {
        Ok(_) => got.len() < AFTER_EXIT_MAX,
        Err(_) => false,
    };
    let rest = match (ended, got.is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => Rest::Ended,
        (false, _) => Rest::pipe(file.into())?,
    };
    Ok(Some(AsyncReadExt::chain(std::io::Cursor::new(got), rest)))
}

/// The part of an output pipe read through the runtime, if any.
enum Rest {
    Ended,
    Pipe(tokio::net::unix::pipe::Receiver),
}

impl Rest {
    fn pipe(read: std::os::fd::OwnedFd) -> std::io::Result<Rest> {
        // The descriptor is the read end of a pipe made by `output_pipe`, already non-blocking.
        tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(read).map(Rest::Pipe)
    }
}

impl AsyncRead for Rest {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Rest::Ended => std::task::Poll::Ready(Ok(())),
            Rest::Pipe(p) => std::pin::Pin::new(p).poll_read(cx, buf),
        }
    }
}

/// `/dev/null`, opened once per process: every command's stdin.
fn null_file() -> Option<&'static std::fs::File> {
    static NULL: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    NULL.get_or_init(|| std::fs::File::open("/dev/null").ok())
        .as_ref()
}

/// A command's stdin for `std`'s way of starting it: a copy of [`null_file`] (a descriptor copy
/// instead of a path lookup per command).
fn null_input() -> Stdio {
    null_file()
        .and_then(|f| f.try_clone().ok())
        .map_or_else(Stdio::null, Stdio::from)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads one pipe to its end, handing complete lines to the log in batches. With `capture`, the
/// text is collected and returned instead.
async fn pump(
    reader: Option<impl AsyncRead + Unpin>,
    log: &NodeLog,
    step: &str,
    stream: Stream,
    capture: bool,
) -> Option<String> {
    let mut reader = reader?;
    let mut captured = capture.then(String::new);
    // Bytes are read straight behind the unfinished line, into memory that is never zeroed; the
    // read size starts small (most commands print little or nothing) and grows while reads fill it.
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = READ_MIN;
    loop {
        if pending.capacity() - pending.len() < chunk {
            pending.reserve(chunk);
        }
        let start = pending.len();
        let room = pending.capacity() - start;
        let n = match reader.read_buf(&mut pending).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if n == room {
            chunk = (chunk * 2).min(READ_MAX);
        }
        let ready = ready_len(&pending, start, log.masker(), MAX_LINE);
        if ready > 0 {
            emit(log, step, stream, &pending[..ready], captured.as_mut()).await;
            pending.drain(..ready);
        }
    }
    if !pending.is_empty() {
        emit(log, step, stream, &pending, captured.as_mut()).await;
    }
    captured
}

async fn emit(
    log: &NodeLog,
    step: &str,
    stream: Stream,
    bytes: &[u8],
    captured: Option<&mut String>,
) {
    let text = String::from_utf8_lossy(bytes);
    if let Some(c) = captured {
        c.push_str(&text);
        return;
    }
    log.output(step, stream, &piece_lines(&text)).await;
}

/// How much of `pending` goes out now, the bytes from `start` on having just been read: up to
/// the last newline; for a line of `max_line` bytes or more, a piece cut where no secret spans the
/// cut (each piece is masked on its own, so none may show part of one); else nothing yet.
pub(crate) fn ready_len(pending: &[u8], start: usize, masker: &Masker, max_line: usize) -> usize {
    // Only the new bytes can hold a newline: what was pending before holds none.
    if let Some(pos) = pending[start..].iter().rposition(|&b| b == b'\n') {
        return start + pos + 1;
    }
    if pending.len() >= max_line {
        return match masker.safe_cut(pending, pending.len()) {
            0 => pending.len(),
            cut => cut,
        };
    }
    0
}

/// The lines of a piece of output: split at newlines (a final one ends the last line), each
/// without a trailing `\r`.
pub(crate) fn piece_lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{after_exit, output_pipe};
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_pipe_that_ended_is_read_whole_at_once() {
        let (read, write) = output_pipe().unwrap();
        drop(write);
        assert!(
            after_exit(read).unwrap().is_none(),
            "an empty pipe needs no reader"
        );
        let (read, write) = output_pipe().unwrap();
        std::fs::File::from(write).write_all(b"all\nof it").unwrap();
        let mut all = String::new();
        let mut output = after_exit(read).unwrap().expect("what the pipe held");
        output.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "all\nof it");
    }

    #[tokio::test]
    async fn a_pipe_still_held_after_exit_is_read_on_behind_what_was_read() {
        let (read, write) = output_pipe().unwrap();
        let mut write = std::fs::File::from(write);
        write.write_all(b"before ").unwrap();
        let mut output = after_exit(read).unwrap().unwrap();
        // The writer is still there: what comes later is read through the runtime.
        let late = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            write.write_all(b"after\n").unwrap();
        });
        let mut all = String::new();
        output.read_to_string(&mut all).await.unwrap();
        late.join().unwrap();
        assert_eq!(all, "before after\n");
    }

    #[tokio::test]
    async fn more_than_a_pipe_holds_comes_through_whole_and_in_order() {
        let (read, write) = output_pipe().unwrap();
        let mut write = std::fs::File::from(write);
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let expected = text.clone();
        // The writer fills the pipe and blocks; the first read here finds it full.
        let writer = std::thread::spawn(move || write.write_all(&text).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut output = after_exit(read).unwrap().unwrap();
        let mut all = Vec::new();
        output.read_to_end(&mut all).await.unwrap();
        writer.join().unwrap();
        assert_eq!(all.len(), expected.len());
        assert!(all == expected);
    }
}
