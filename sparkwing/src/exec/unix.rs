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
    use super::find_in_path;
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

    #[test]
    fn leaves_uncertain_cases_to_execvp() {
        assert_eq!(find_in_path("./true", OsStr::new("/usr/bin:/bin")), None);
        assert_eq!(find_in_path("", OsStr::new("/usr/bin:/bin")), None);
        // An empty entry means the new process's directory, which is not known here.
        assert_eq!(find_in_path("true", OsStr::new(":/usr/bin:/bin")), None);
        assert_eq!(find_in_path("true", OsStr::new("bin:/usr/bin")), None);
    }
}
