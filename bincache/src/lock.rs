//! Cross-process file locks (`flock`), safe against the lock file being deleted and recreated
//! between `open` and `flock`.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

/// A held lock. Dropping it releases the lock (closing the descriptor).
#[derive(Debug)]
pub(crate) struct Held {
    file: Flock<File>,
    path: PathBuf,
}

impl Held {
    /// Records who holds the lock, for a waiter's message.
    pub fn write_holder(&mut self, text: &str) {
        let f: &mut File = &mut self.file;
        let _ = f.set_len(0);
        let _ = f.rewind();
        let _ = f.write_all(text.as_bytes());
    }

    /// Removes the lock file while still holding it, so no later opener can share this inode.
    pub fn unlink(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// True when the open file is still the one at `path` (not unlinked or replaced meanwhile).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// One attempt: `Ok(None)` when the lock is busy.
pub(crate) fn try_lock(path: &Path, mode: Mode) -> std::io::Result<Option<Held>> {
    attempt(path, mode, false)
}

/// Waits as long as it takes.
pub(crate) fn lock(path: &Path, mode: Mode) -> std::io::Result<Held> {
    match attempt(path, mode, true)? {
        Some(h) => Ok(h),
        None => unreachable!("a blocking flock only returns when held"),
    }
}

fn attempt(path: &Path, mode: Mode, block: bool) -> std::io::Result<Option<Held>> {
    loop {
        let file = open(path)?;
        let arg = match (mode, block) {
            (Mode::Shared, true) => FlockArg::LockShared,
            (Mode::Shared, false) => FlockArg::LockSharedNonblock,
            (Mode::Exclusive, true) => FlockArg::LockExclusive,
            (Mode::Exclusive, false) => FlockArg::LockExclusiveNonblock,
        };
        let file = match Flock::lock(file, arg) {
            Ok(f) => f,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, Errno::EINTR)) => continue,
            Err((_, e)) => return Err(std::io::Error::from(e)),
        };
        // A pruner may have deleted the file between our open and flock; a lock on the orphan
        // would exclude nobody, so start over on the current file.
        if same_file(&file, path) {
            return Ok(Some(Held {
                file,
                path: path.to_path_buf(),
            }));
        }
    }
}

/// Waits up to `timeout`, calling `on_wait` once (with the holder text) if the lock is busy at
/// first. `Ok(Err(holder))` on timeout.
pub(crate) fn lock_with_timeout(
    path: &Path,
    mode: Mode,
    timeout: Duration,
    on_wait: impl FnOnce(&str),
) -> std::io::Result<Result<Held, String>> {
    if let Some(h) = try_lock(path, mode)? {
        return Ok(Ok(h));
    }
    let mut holder = read_holder(path);
    if holder == UNKNOWN_HOLDER {
        // The holder writes its description right after locking; give it a moment.
        std::thread::sleep(Duration::from_millis(20));
        holder = read_holder(path);
    }
    on_wait(&holder);
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(h) = try_lock(path, mode)? {
            return Ok(Ok(h));
        }
        if start.elapsed() >= timeout {
            return Ok(Err(read_holder(path)));
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

const UNKNOWN_HOLDER: &str = "another process";

/// What the current holder wrote into the lock file, or a generic description.
pub(crate) fn read_holder(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(512).read_to_string(&mut s);
    }
    let s = s.trim();
    if s.is_empty() {
        UNKNOWN_HOLDER.to_string()
    } else {
        s.escape_debug().to_string()
    }
}

/// `pid 1234 in /repo since 2026-01-01T00:00:00Z`: enough for a person to find the build.
pub(crate) fn holder_text() -> String {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "pid {} in {} since {}",
        std::process::id(),
        cwd,
        sparkwing_contract::timefmt::now_rfc3339()
    )
}
