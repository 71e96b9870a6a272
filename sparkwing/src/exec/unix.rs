//! Process-group signalling.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `sig` to process group `pgid`. A group that is already gone is not an error.
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}

/// Kills the group when dropped unless disarmed: a job future dropped mid-command (its task was
/// aborted) must not leave its processes running.
pub(crate) struct GroupGuard {
    pgid: i32,
}

impl GroupGuard {
    pub fn new(pgid: i32) -> GroupGuard {
        GroupGuard { pgid }
    }

    pub fn disarm(&mut self) {
        self.pgid = 0;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.pgid, Signal::SIGKILL);
    }
}

/// The file `execvp` would run for `program` under `path` (the value of `PATH`), found with a few
/// `stat` calls here instead of a failed `execve` per `PATH` entry in the new process (each of
/// which sets up and tears down an address space).
///
/// Returns `None` whenever the answer is not certain: a name with a `/`, an empty or relative
/// entry (those depend on the new process's directory), an entry that cannot be searched, or no
/// match. The caller then leaves the search to `execvp` itself, so nothing changes but the cost.
pub(crate) fn find_in_path(program: &str, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    if program.is_empty() || program.contains('/') {
        return None;
    }
    // One buffer for every candidate, and an entry listed twice is looked at once (the answer
    // cannot differ): this runs before every command a job starts.
    let mut candidate: Vec<u8> = Vec::with_capacity(path.len() + program.len() + 1);
    let entries = || path.as_bytes().split(|&b| b == b':');
    for (i, entry) in entries().enumerate() {
        if entries().take(i).any(|earlier| earlier == entry) {
            continue;
        }
        if entry.first() != Some(&b'/') {
            return None;
        }
        candidate.clear();
        candidate.extend_from_slice(entry);
        if entry.last() != Some(&b'/') {
            candidate.push(b'/');
        }
        candidate.extend_from_slice(program.as_bytes());
        let file = Path::new(std::ffi::OsStr::from_bytes(&candidate));
        match std::fs::metadata(file) {
            // A directory is not executable: `execvp` moves on, and so does this.
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                if nix::unistd::access(file, nix::unistd::AccessFlags::X_OK).is_ok() {
                    return Some(file.to_path_buf());
                }
            }
            Err(e) => match e.raw_os_error() {
                Some(errno) if is_skipped(errno) => continue,
                _ => return None,
            },
        }
    }
    None
}

/// Where `execvp` would find each program, remembered for the life of the process.
///
/// Searching `PATH` costs a `stat` per entry before the match (eight on a usual CI image) for
/// every command a job starts. The answers are kept here and stay right as `PATH` changes: every
/// absolute `PATH` directory is watched (inotify), and a file created, moved, removed or changed
/// in one of them forgets the remembered answer for that name, so a job that installs a tool into
/// an earlier directory is seen by the next job exactly as a fresh search would see it. An entry
/// that did not exist when the answers were started is looked at again on every use, a directory
/// replaced or an event queue that overflowed forgets everything, and a remembered file is checked
/// to be executable still before it is used. Without inotify every lookup searches.
pub(crate) struct PathCache {
    state: std::sync::Mutex<Cached>,
}

enum Cached {
    /// Nothing set up yet, or set up again at the next lookup.
    Unknown,
    /// This `PATH` cannot be watched: every lookup searches.
    Off(std::ffi::OsString),
    On(Remembered),
}

struct Remembered {
    /// The value of `PATH` the answers are for.
    path: std::ffi::OsString,
    watch: nix::sys::inotify::Inotify,
    /// Absolute entries that did not exist when the watches were set up.
    missing: Vec<std::path::PathBuf>,
    found: std::collections::HashMap<std::ffi::OsString, std::path::PathBuf>,
}

impl PathCache {
    pub const fn new() -> PathCache {
        PathCache {
            state: std::sync::Mutex::new(Cached::Unknown),
        }
    }

    /// [`find_in_path`], answered from memory when nothing it depends on has changed.
    pub fn find(&self, program: &str, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
        if program.is_empty() || program.contains('/') {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let same_path = match &*state {
            Cached::Unknown => false,
            Cached::Off(p) => p == path,
            Cached::On(r) => r.path == path,
        };
        if !same_path {
            *state = match Remembered::start(path) {
                Some(r) => Cached::On(r),
                None => Cached::Off(path.to_owned()),
            };
        }
        let Cached::On(r) = &mut *state else {
            return find_in_path(program, path);
        };
        // A missing entry that appeared is watched from the next lookup on.
        if !r.catch_up() || r.missing.iter().any(|d| d.exists()) {
            *state = Cached::Unknown;
            return find_in_path(program, path);
        }
        let name = std::ffi::OsStr::new(program);
        if let Some(file) = r.found.get(name)
            && nix::unistd::access(file.as_path(), nix::unistd::AccessFlags::X_OK).is_ok()
        {
            return Some(file.clone());
        }
        r.found.remove(name);
        let file = find_in_path(program, path)?;
        r.found.insert(name.to_owned(), file.clone());
        Some(file)
    }
}

impl Remembered {
    /// Watches every absolute entry of `path`; `None` when one that exists cannot be watched
    /// (its changes would go unseen) or inotify is not available.
    fn start(path: &std::ffi::OsStr) -> Option<Remembered> {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use std::os::unix::ffi::OsStrExt;
        let watch = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let mut missing = Vec::new();
        let mut seen: Vec<&[u8]> = Vec::new();
        for entry in path.as_bytes().split(|&b| b == b':') {
            if entry.first() != Some(&b'/') || seen.contains(&entry) {
                continue;
            }
            seen.push(entry);
            let dir = std::path::Path::new(std::ffi::OsStr::from_bytes(entry));
            let events = AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_ATTRIB
                | AddWatchFlags::IN_DELETE_SELF
                | AddWatchFlags::IN_MOVE_SELF
                | AddWatchFlags::IN_ONLYDIR;
            match watch.add_watch(dir, events) {
                Ok(_) => {}
                Err(nix::errno::Errno::ENOENT) => missing.push(dir.to_path_buf()),
                Err(_) => return None,
            }
        }
        Some(Remembered {
            path: path.to_owned(),
            watch,
            missing,
            found: Default::default(),
        })
    }

    /// Forgets the answers the changes since the last look may have changed; `false` when
    /// everything must be forgotten (a watched directory itself went away or was moved, or
    /// events were lost).
    fn catch_up(&mut self) -> bool {
        use nix::sys::inotify::AddWatchFlags as F;
        loop {
            let events = match self.watch.read_events() {
                Ok(e) => e,
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(_) => return false,
            };
            for e in events {
                let whole = F::IN_DELETE_SELF | F::IN_MOVE_SELF | F::IN_IGNORED | F::IN_Q_OVERFLOW;
                match e.name {
                    Some(name) if !e.mask.intersects(whole) => {
                        self.found.remove(&name);
                    }
                    _ => return false,
                }
            }
        }
    }
}

/// Errors on which `execvp` tries the next `PATH` entry.
fn is_skipped(errno: i32) -> bool {
    use nix::errno::Errno;
    [
        Errno::ENOENT,
        Errno::ENOTDIR,
        Errno::ESTALE,
        Errno::ENODEV,
        Errno::ETIMEDOUT,
    ]
    .iter()
    .any(|e| *e as i32 == errno)
}

#[cfg(test)]
mod tests {
    use super::{Cached, PathCache, find_in_path};
    use std::ffi::OsStr;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_the_first_executable_match_like_execvp() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for d in [&a, &b, &c] {
            std::fs::create_dir(d).unwrap();
        }
        // `a/tool` is not executable and `b/tool` is a directory: both are passed over.
        std::fs::write(a.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(a.join("tool"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(b.join("tool")).unwrap();
        std::fs::write(c.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(c.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let missing = dir.path().join("missing");
        let path = format!(
            "{}:{}:{}:{}",
            missing.display(),
            a.display(),
            b.display(),
            c.display()
        );
        // Even root passes over `a/tool`: it has no execute bit at all.
        assert_eq!(
            find_in_path("tool", OsStr::new(&path)),
            Some(c.join("tool"))
        );
        assert_eq!(find_in_path("nothing", OsStr::new(&path)), None);
        // An entry listed twice (a `PATH` extended by more than one profile script) changes
        // nothing, nor does a trailing slash.
        let twice = format!("{}:{path}:{}/", a.display(), c.display());
        assert_eq!(
            find_in_path("tool", OsStr::new(&twice)),
            Some(c.join("tool"))
        );
    }

    fn tool(path: &std::path::Path, mode: u32) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn remembered_answers_follow_changes_to_the_path_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, later) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("later"),
        );
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        tool(&b.join("tool"), 0o755);
        let path = format!("{}:{}:{}", later.display(), a.display(), b.display());
        let path = OsStr::new(&path);
        let cache = PathCache::new();
        assert_eq!(cache.find("tool", path), Some(b.join("tool")));
        assert_eq!(cache.find("tool", path), Some(b.join("tool")), "remembered");
        assert!(matches!(&*cache.state.lock().unwrap(), Cached::On(r) if r.found.len() == 1));

        // A job installs the tool into an earlier directory: the next lookup finds it there.
        tool(&a.join("tool"), 0o755);
        assert_eq!(cache.find("tool", path), Some(a.join("tool")));
        // It loses its execute bit: the later one is found again.
        std::fs::set_permissions(a.join("tool"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(cache.find("tool", path), Some(b.join("tool")));
        // A directory missing at first appears with the tool in it.
        std::fs::create_dir(&later).unwrap();
        tool(&later.join("tool"), 0o755);
        assert_eq!(cache.find("tool", path), Some(later.join("tool")));
        assert_eq!(cache.find("tool", path), Some(later.join("tool")));
        // Removed everywhere: no answer, as `execvp` would find none.
        for d in [&later, &a, &b] {
            std::fs::remove_file(d.join("tool")).unwrap();
        }
        assert_eq!(cache.find("tool", path), None);
        // A watched directory replaced by another one at the same path.
        std::fs::remove_dir(&a).unwrap();
        std::fs::create_dir(&a).unwrap();
        tool(&a.join("tool"), 0o755);
        assert_eq!(cache.find("tool", path), Some(a.join("tool")));
        // Another `PATH` is another set of answers.
        let only_b = b.display().to_string();
        assert_eq!(cache.find("tool", OsStr::new(&only_b)), None);
        assert_eq!(cache.find("./tool", path), None);
    }

    #[test]
    fn leaves_uncertain_cases_to_execvp() {
        assert_eq!(find_in_path("./true", OsStr::new("/usr/bin:/bin")), None);
        assert_eq!(find_in_path("", OsStr::new("/usr/bin:/bin")), None);
        // An empty entry means the new process's directory, which is not known here.
        assert_eq!(find_in_path("true", OsStr::new(":/usr/bin:/bin")), None);
        assert_eq!(find_in_path("true", OsStr::new("bin:/usr/bin")), None);
    }
}
