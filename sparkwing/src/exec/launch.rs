//! Starting a command's process on Linux without mapping memory for it or asking twice for its pidfd.
//!
//! `std` and tokio start a child through glibc's `posix_spawn`, which maps a fresh stack for the
//! child and unmaps it afterwards. In a multi-threaded process the unmap must interrupt every
//! other CPU that runs one of its threads to flush their TLBs, and the pidfd tokio waits on takes a
//! second call. Here the child is started with `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` on a
//! stack each thread keeps for the next child: as under `posix_spawn`, the calling thread sleeps
//! until the child has called `execve` (or failed to), and the pidfd comes with the clone.
//!
//! Until `execve` the child runs in this process's memory, so it does what `posix_spawn`'s child
//! does, with system calls alone: no allocation, no lock, nothing the suspended thread could be
//! holding. Everything it needs is prepared before the clone. It starts its program as `std`
//! does: caught signals and SIGPIPE at their defaults, ignored ones still ignored, no signal
//! blocked, in a process group of its own.

#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::unix::AsyncFd;

/// The child's stack. Its work before `execve` is a few system calls through libc's wrappers.
const STACK: usize = 32 * 1024;

/// Set once the kernel refused the clone (a seccomp filter, say): every later command then starts
/// the portable way.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether this process can start commands here, decided once. The kernel must know
/// `CLONE_PIDFD` (5.2): an older one ignores the flag, starts the child and hands back no pidfd,
/// so a kernel that answers `pidfd_open` (5.3) is asked for. And glibc must be 2.25 or later:
/// its `clone` wrapper before that overwrote the calling thread's cached process and thread ids
/// for a `CLONE_VM` child that is not a thread.
fn supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        // SAFETY: plain system calls; the descriptor is this process's own and closed at once.
        let pidfds = unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0);
            if fd >= 0 {
                libc::close(fd as c_int);
            }
            fd >= 0
        };
        pidfds && glibc_new_enough()
    })
}

#[cfg(target_env = "gnu")]
fn glibc_new_enough() -> bool {
    // SAFETY: glibc returns a static string.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let mut parts = version.to_str().unwrap_or("").split('.');
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0)
    };
    (next(), next()) >= (2, 25)
}

#[cfg(not(target_env = "gnu"))]
fn glibc_new_enough() -> bool {
    true
}

/// Children dropped before they were reaped (their job was stopped mid-command): killed, and
/// reaped on a later start so none stays a zombie.
static ORPHANS: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

thread_local! {
    /// Only the thread that clones sleeps while its child runs on this, so one per thread.
    static CHILD_STACK: std::cell::RefCell<Vec<u128>> =
        std::cell::RefCell::new(vec![0u128; STACK / 16]);
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// What to start: a file found on `PATH` already (never searched here), its arguments, the
/// changes to this process's environment, the directory and the three standard streams.
pub(crate) struct Launch<'a> {
    pub file: &'a Path,
    pub arg0: &'a str,
    pub args: &'a [String],
    pub env: &'a [(&'a str, &'a str)],
    pub dir: &'a Path,
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
}

/// A started child: its process id and pidfd, waited for through the runtime.
pub(crate) struct Proc {
    pid: libc::pid_t,
    pidfd: AsyncFd<OwnedFd>,
    status: Option<ExitStatus>,
}

/// What the child reads, prepared by the parent, and where it leaves why it failed.
#[repr(C)]
struct ChildArgs {
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    dir: *const c_char,
    fds: [c_int; 3],
    /// The calling thread's signal mask, restored there after the clone.
    mask: libc::sigset_t,
    /// The errno of the step that failed, or 0.
    err: c_int,
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "an argument, variable or path holds a NUL byte",
        )
    })
}

/// Starts `l`, or `Ok(None)` when this kernel cannot start it this way (the caller then uses the
/// portable way; nothing was started).
pub(crate) fn launch(l: &Launch<'_>) -> io::Result<Option<Proc>> {
    reap_orphans();
    if REFUSED.load(Ordering::Relaxed) || !supported() {
        return Ok(None);
    }
    let file = cstring(l.file.as_os_str())?;
    let dir = cstring(l.dir.as_os_str())?;
    let mut owned: Vec<CString> = Vec::with_capacity(l.args.len() + 1);
    owned.push(cstring(OsStr::new(l.arg0))?);
    for a in l.args {
        owned.push(cstring(OsStr::new(a))?);
    }
    let mut argv: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // The environment as it is, unless the command changes it.
    let env_owned: Vec<CString>;
    let mut envp: Vec<*const c_char> = Vec::new();
    if !l.env.is_empty() {
        let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
            .filter(|(k, _)| !l.env.iter().any(|(n, _)| OsStr::new(n) == k.as_os_str()))
            .collect();
        // Later settings of a name win, as with `Command::env`.
        for (i, (k, v)) in l.env.iter().enumerate() {
            if !l.env[i + 1..].iter().any(|(n, _)| n == k) {
                vars.push((k.into(), v.into()));
            }
        }
        env_owned = vars
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(OsStr::from_bytes(&kv))
            })
            .collect::<io::Result<_>>()?;
        envp = env_owned.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
    }
    let mut args = ChildArgs {
        file: file.as_ptr(),
        argv: argv.as_ptr(),
        // SAFETY: `environ` is libc's; changing the environment while other threads run is
        // already undefined (`std::env::set_var` is unsafe for that reason).
        envp: if envp.is_empty() {
            unsafe { environ }
        } else {
            envp.as_ptr()
        },
        dir: dir.as_ptr(),
        fds: [
            l.stdin.as_raw_fd(),
            l.stdout.as_raw_fd(),
            l.stderr.as_raw_fd(),
        ],
        // SAFETY: a sigset_t is plain data, filled in below.
        mask: unsafe { std::mem::zeroed() },
        err: 0,
    };
    let mut pidfd: c_int = -1;
    let (pid, clone_err) = CHILD_STACK.with_borrow_mut(|stack| {
        // SAFETY: every pointer in `args` stays valid until the clone returns, which under
        // CLONE_VFORK is after the child called `execve` or `_exit`; the child touches nothing
        // else of this process's memory but its own stack. All signals are blocked around the
        // clone so that none runs a handler of this process on the child's stack; the child
        // resets the handlers before it unblocks them.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut args.mask);
            let top = stack.as_mut_ptr().add(stack.len()) as *mut c_void;
            let pid = libc::clone(
                child_main,
                top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
                &mut args as *mut ChildArgs as *mut c_void,
                &mut pidfd as *mut c_int,
            );
            let clone_err = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &args.mask, std::ptr::null_mut());
            (pid, clone_err)
        }
    });
    if pid < 0 {
        return match clone_err.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::EPERM) => {
                REFUSED.store(true, Ordering::Relaxed);
                Ok(None)
            }
            _ => Err(clone_err),
        };
    }
    // SAFETY: the child has called `execve` or `_exit`: it writes nothing more here.
    let err = unsafe { std::ptr::read_volatile(&args.err) };
    if pidfd < 0 {
        // A kernel that started the child without its pidfd (which `supported` rules out):
        // nothing could wait for it.
        kill_and_reap(pid, None);
        return Err(io::Error::other(
            "the kernel started a command without its pidfd",
        ));
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor there, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    if err != 0 {
        // The child failed before its program ran and has exited: reap it.
        kill_and_reap(pid, Some(&pidfd));
        return Err(io::Error::from_raw_os_error(err));
    }
    // SAFETY: the descriptor is owned by the `AsyncFd`, so it stays open while registered.
    match unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) } {
        Ok(pidfd) => Ok(Some(Proc {
            pid,
            pidfd,
            status: None,
        })),
        Err(e) => {
            let (pidfd, e) = e.into_parts();
            // Nothing could wait for it: it must not run on unwatched.
            kill_and_reap(pid, Some(&pidfd));
            Err(e)
        }
    }
}

/// The child, in this process's memory until `execve`: system calls only.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while the parent sleeps; only system
    // calls follow.
    unsafe {
        let args = &mut *(arg as *mut ChildArgs);
        // Caught signals go back to their defaults (ignored ones stay ignored, as across any
        // `execve`), and SIGPIPE, which the Rust runtime ignores, to its default, as `std` does.
        for sig in 1..libc::SIGRTMAX() + 1 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let caught = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if caught || sig == libc::SIGPIPE {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let fail = |args: &mut ChildArgs| -> c_int {
            std::ptr::write_volatile(&mut args.err, *libc::__errno_location());
            libc::_exit(127)
        };
        if libc::setpgid(0, 0) != 0 {
            return fail(args);
        }
        for (target, &fd) in args.fds.iter().enumerate() {
            let target = target as c_int;
            let ok = if fd == target {
                // Already in place: only its close-on-exec flag must go.
                libc::fcntl(fd, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, target) == target
            };
            if !ok {
                return fail(args);
            }
        }
        if libc::chdir(args.dir) != 0 {
            return fail(args);
        }
        // Every signal unblocked, as `std` starts a child: a mask the pipeline's own code set
        // (blocking SIGTERM to wait for it another way, say) must not keep a command from being
        // stopped.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(args.file, args.argv, args.envp);
        fail(args)
    }
}

/// Reaps `pid` if it has exited.
fn try_reap(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    let mut status: c_int = 0;
    // SAFETY: a plain system call on a child of this process.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        p if p == pid => Ok(Some(ExitStatus::from_raw(status))),
        _ => Err(io::Error::last_os_error()),
    }
}

fn reap_orphans() {
    let mut orphans = ORPHANS.lock().unwrap_or_else(|p| p.into_inner());
    if !orphans.is_empty() {
        orphans.retain(|&pid| matches!(try_reap(pid), Ok(None)));
    }
}

impl Proc {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Waits for the child to exit and reaps it; cancel-safe.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(s) = self.status {
                return Ok(s);
            }
            let mut ready = self.pidfd.readable().await?;
            match try_reap(self.pid)? {
                Some(s) => self.status = Some(s),
                None => ready.clear_ready(),
            }
        }
    }
}

/// Sends SIGKILL through the pidfd (it names this child, whatever became of its process id).
fn kill(pidfd: &OwnedFd) {
    // SAFETY: a plain system call on a descriptor this process owns.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// Kills a child that never became a `Proc` and waits for it.
fn kill_and_reap(pid: libc::pid_t, pidfd: Option<&OwnedFd>) {
    match pidfd {
        Some(fd) => kill(fd),
        // SAFETY: the child is ours and not reaped, so `pid` is still its.
        None => unsafe {
            libc::kill(pid, libc::SIGKILL);
        },
    }
    loop {
        // SAFETY: waits for the child just started, which is ours.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Still running (an error means something else reaped it, and its id is free).
        if self.status.is_none() && matches!(try_reap(self.pid), Ok(None)) {
            kill(self.pidfd.get_ref());
            ORPHANS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Launch, launch};
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::path::{Path, PathBuf};

    fn which(program: &str) -> PathBuf {
        let path = std::env::var_os("PATH").expect("PATH is set");
        super::super::unix::find_in_path(program, &path).expect("the program is installed")
    }

    /// Runs `file` with `args` in `dir`, returns its exit code and stdout.
    async fn output(
        file: &Path,
        arg0: &str,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> (i32, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let null = std::fs::File::open("/dev/null").unwrap();
        let (mut read, write) = std::io::pipe().unwrap();
        let mut proc = launch(&Launch {
            file,
            arg0,
            args: &args,
            env,
            dir,
            stdin: null.as_fd(),
            stdout: write.as_fd(),
            stderr: write.as_fd(),
        })
        .unwrap()
        .expect("this kernel starts commands with clone");
        drop(write);
        let status = proc.wait().await.unwrap();
        let mut out = String::new();
        read.read_to_string(&mut out).unwrap();
        (status.code().unwrap_or(-1), out)
    }

    fn field<'a>(status: &'a str, name: &str) -> &'a str {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .trim()
    }

    #[tokio::test]
    async fn a_command_starts_in_its_own_group_with_the_callers_mask_and_default_signals() {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
        // The caller has SIGUSR2 blocked, and SIGUSR1 ignored by the process; the Rust runtime
        // ignores SIGPIPE. The command starts as `std` starts one: no signal blocked (neither
        // the caller's mask nor the all-blocked one held around the clone), ignored signals
        // still ignored, SIGPIPE back to its default.
        let mut usr2 = SigSet::empty();
        usr2.add(Signal::SIGUSR2);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr2), None).unwrap();
        // SAFETY: ignoring a signal installs no handler.
        unsafe {
            nix::sys::signal::signal(Signal::SIGUSR1, nix::sys::signal::SigHandler::SigIgn)
                .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let (code, status) = output(
            &which("cat"),
            "cat",
            &["/proc/self/status"],
            &[],
            dir.path(),
        )
        .await;
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&usr2), None).unwrap();
        // SAFETY: as above.
        unsafe {
            nix::sys::signal::signal(Signal::SIGUSR1, nix::sys::signal::SigHandler::SigDfl)
                .unwrap();
        }
        assert_eq!(code, 0, "{status}");
        assert_eq!(
            field(&status, "NSpgid"),
            field(&status, "Pid"),
            "its own group"
        );
        assert_eq!(
            field(&status, "PPid"),
            std::process::id().to_string(),
            "a child of this process"
        );
        let mask = |name| u64::from_str_radix(field(&status, name), 16).unwrap();
        let bit = |s: Signal| 1u64 << (s as i32 - 1);
        assert_eq!(mask("SigBlk"), 0, "nothing blocked");
        assert_ne!(
            mask("SigIgn") & bit(Signal::SIGUSR1),
            0,
            "ignored stays ignored"
        );
        assert_eq!(
            mask("SigIgn") & bit(Signal::SIGPIPE),
            0,
            "SIGPIPE is default"
        );
    }

    #[tokio::test]
    async fn a_command_gets_its_directory_arguments_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let (code, out) = output(&which("pwd"), "pwd", &[], &[], &dir).await;
        assert_eq!((code, out.trim()), (0, dir.to_str().unwrap()));
        // argv[0] is the name the job gave, not the file found for it.
        let (_, cmdline) =
            output(&which("cat"), "my-cat", &["/proc/self/cmdline"], &[], &dir).await;
        assert_eq!(cmdline, "my-cat\0/proc/self/cmdline\0");
        // The environment is this process's with the command's changes, a name set twice
        // taking its last value.
        let env = [
            ("SW_LAUNCH_A", "1"),
            ("SW_LAUNCH_B", "x"),
            ("SW_LAUNCH_A", "2"),
        ];
        let (_, vars) = output(&which("env"), "env", &[], &env, &dir).await;
        let vars: Vec<&str> = vars.lines().collect();
        assert!(
            vars.contains(&"SW_LAUNCH_A=2") && vars.contains(&"SW_LAUNCH_B=x"),
            "{vars:?}"
        );
        assert_eq!(
            vars.iter()
                .filter(|v| v.starts_with("SW_LAUNCH_A="))
                .count(),
            1
        );
        assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{vars:?}");
        let (_, vars) = output(&which("env"), "env", &[], &[], &dir).await;
        assert!(vars.lines().any(|v| v.starts_with("PATH=")), "{vars}");
        assert!(!vars.contains("SW_LAUNCH_A"));
    }

    #[tokio::test]
    async fn what_stops_a_command_before_its_program_runs_is_an_error_with_its_cause() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let start = |file: &Path, dir: &Path| {
            launch(&Launch {
                file,
                arg0: "x",
                args: &[],
                env: &[],
                dir,
                stdin: null.as_fd(),
                stdout: null.as_fd(),
                stderr: null.as_fd(),
            })
            .map(|_| ())
        };
        let missing = dir.path().join("missing");
        let e = start(&which("true"), &missing).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let e = start(&plain, dir.path()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    }

    #[tokio::test]
    async fn a_command_dropped_while_running_is_killed_and_reaped() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sleep = which("sleep");
        let args = ["30".to_string()];
        let proc = launch(&Launch {
            file: &sleep,
            arg0: "sleep",
            args: &args,
            env: &[],
            dir: dir.path(),
            stdin: null.as_fd(),
            stdout: null.as_fd(),
            stderr: null.as_fd(),
        })
        .unwrap()
        .unwrap();
        let pid = proc.id();
        drop(proc);
        // Killed at once; reaped by the next start, so no zombie is left behind.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let _ = output(&which("true"), "true", &[], &[], dir.path()).await;
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => break,
                Ok(stat) => assert!(
                    std::time::Instant::now() < deadline,
                    "still there after 10 s: {stat}"
                ),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
