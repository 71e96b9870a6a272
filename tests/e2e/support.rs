//! The builder every end-to-end test uses: a copy of a fixture in a fresh git repository, an
//! isolated `SPARKWING_HOME`, and the real `sparkwing` binary.
//!
//! Pipeline builds share one cargo target directory (`target/e2e-pipelines`) so the SDK and its
//! dependencies compile once for the whole suite.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `sparkwing` binary under test.
pub fn sparkwing_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sparkwing"))
}

/// Cargo target directory shared by every pipeline build of the suite.
pub fn shared_target_dir() -> PathBuf {
    workspace().join("target").join("e2e-pipelines")
}

/// Scratch space for this test process. Scratch left by test processes that are gone (about a
/// gigabyte each: homes, spools, restored dependency sets) is removed first, so repeated runs
/// do not fill the disk; a failed run's scratch stays until the next run starts.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace().join("target").join("e2e-work");
        remove_scratch_of_gone_processes(&root);
        let d = root.join(format!("{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Removes `root/<pid>` for every pid that names no live process (a reused pid keeps its
/// directory until the next run: harmless).
fn remove_scratch_of_gone_processes(root: &Path) {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = pid > 0 && kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn unique(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    scratch().join(format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Runs `git` in `dir`, panicking on failure.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh git repository holding a copy of `fixtures/<name>`, committed on `main`.
pub fn fixture_repo(name: &str) -> PathBuf {
    let dir = unique(name);
    copy_dir(&workspace().join("fixtures").join(name), &dir);
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "fixture"]);
    dir
}

/// One test's world: a repository and an isolated `SPARKWING_HOME`.
pub struct World {
    pub repo: PathBuf,
    pub home: PathBuf,
    pub env: Vec<(String, String)>,
}

impl World {
    /// The `sample` fixture in a fresh repository, with its own home.
    pub fn sample() -> World {
        World::new(fixture_repo("sample"))
    }

    /// A world around an existing repository (several worlds may share one).
    pub fn new(repo: PathBuf) -> World {
        let home = unique("home");
        std::fs::create_dir_all(&home).unwrap();
        World {
            repo,
            home,
            env: Vec::new(),
        }
    }

    /// Another home over the same repository (a second machine, or a fresh `$HOME`).
    pub fn with_new_home(&self) -> World {
        let mut w = World::new(self.repo.clone());
        w.env = self.env.clone();
        w
    }

    /// Sets an environment variable for every command of this world.
    pub fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// A `sparkwing` command in the repository with this world's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_program(sparkwing_bin().as_os_str(), args)
    }

    /// Like [`World::cmd`], but runs `program` (an installed `sparkwing`, or a bare name that the
    /// world's own `PATH` resolves).
    pub fn cmd_program(&self, program: &std::ffi::OsStr, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(&self.repo)
            .env("SPARKWING_HOME", &self.home)
            .env("SPARKWING_CARGO_TARGET_DIR", shared_target_dir())
            .env("SPARKWING_LOG_FORMAT", "plain")
            .env("SPARKWING_PROFILES", self.home.join("profiles.yaml"))
            // Dependency sets cost an archive per new key: only the tests about them use them.
            .env("SPARKWING_NO_DEPS_CACHE", "1")
            // Set by rustup/cargo for the test process; a user's shell normally has neither, and
            // either one would override the fixture's pinned toolchain.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC")
            .env_remove("SPARKWING_MODE")
            .env_remove("SPARKWING_WORKERS")
            .env_remove("SPARKWING_PROFILE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("BUILDKITE")
            .env_remove("GITLAB_CI")
            .env_remove("CIRCLECI")
            // Reports for a CI page: a test run inside a CI job must not write to that job's page.
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("SPARKWING_JUNIT")
            .env_remove("SPARKWING_DASHBOARD_URL")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `sparkwing args…` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().unwrap();
        Run::from(out)
    }

    /// Starts `sparkwing args…` with stdout piped, for signal tests.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `sparkwing runs show <id> -o json`.
    pub fn show(&self, run: &str) -> serde_json::Value {
        self.show_with(run, &[])
    }

    /// `sparkwing runs show <id> -o json` with more flags (`--profile NAME`).
    pub fn show_with(&self, run: &str, flags: &[&str]) -> serde_json::Value {
        let mut args = vec!["runs", "show", run, "-o", "json"];
        args.extend_from_slice(flags);
        let r = self.run(&args);
        assert_eq!(r.code, 0, "runs show failed:\n{}", r.all());
        serde_json::from_str(&r.stdout).unwrap()
    }
}

/// The result of a finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Run {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout and stderr, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "--- exit {} ---\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// The run id the console printed (`run-YYYYMMDD-HHMMSS-xxxxxxxx`).
    pub fn run_id(&self) -> String {
        find_run_id(&self.stdout)
            .or_else(|| find_run_id(&self.stderr))
            .unwrap_or_else(|| panic!("no run id in output:\n{}", self.all()))
    }
}

/// First `run-YYYYMMDD-HHMMSS-<hex>` in `text`.
pub fn find_run_id(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("run-") {
        let start = i + pos;
        let rest = &text[start..];
        let candidate: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let parts: Vec<&str> = candidate.split('-').collect();
        if parts.len() == 4
            && parts[1].len() == 8
            && parts[2].len() == 6
            && parts[3].len() == 8
            && parts[3].bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Some(candidate);
        }
        i = start + 4;
        if i >= bytes.len() {
            break;
        }
    }
    None
}

/// Reads a child's stdout line by line on a thread; `wait_for` blocks until a line contains the
/// needle (or the timeout passes). Everything read is kept for assertions.
pub struct LineWatcher {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl LineWatcher {
    pub fn new(out: impl Read + Send + 'static) -> LineWatcher {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l2.lock().unwrap().push(line);
            }
        });
        LineWatcher { lines }
    }

    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_until(|l| l.contains(needle), timeout)
    }

    /// Waits for a line that ends with `suffix`. Job output is echoed as `[job] line` after the
    /// command itself (`[job] $ … echo ready; …`), so "the job printed X" is a line ending in X.
    pub fn wait_for_line(&self, suffix: &str, timeout: Duration) -> bool {
        self.wait_until(|l| l.ends_with(suffix), timeout)
    }

    /// Waits until at least `n` lines contain `needle`.
    pub fn wait_for_line_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            let count = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .count();
            if count >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn wait_until(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.lines.lock().unwrap().iter().any(|l| pred(l)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

/// Waits for a child with a timeout; kills it (and fails) if it overruns.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let end = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Node record by id from a `runs show -o json` document.
pub fn node<'a>(show: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    show["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {show:#}"))
}

/// RFC 3339 → nanoseconds.
pub fn nanos(ts: &serde_json::Value) -> i64 {
    sparkwing_contract::timefmt::parse_rfc3339_nanos(ts.as_str().unwrap()).unwrap()
}

/// A world whose `ci` profile points cache and logs at `prefix` of the S3 test bucket.
/// `cache_extra` is appended inside the cache surface (`, read_only: true`, `, trusted_keys: […]`).
pub fn bucket_world(
    s3: &sparkwing_storage_testing::TestS3,
    prefix: &str,
    repo: &Path,
    cache_extra: &str,
) -> World {
    let mut w = World::new(repo.to_path_buf());
    std::fs::write(
        w.home.join("profiles.yaml"),
        format!(
            "profiles:\n  ci:\n    cache: {{ type: s3, bucket: {b}, prefix: {prefix}/cache{cache_extra} }}\n    logs: {{ type: s3, bucket: {b}, prefix: {prefix}/logs }}\n",
            b = s3.bucket
        ),
    )
    .unwrap();
    w.set("SPARKWING_S3_ENDPOINT", &s3.endpoint);
    w
}

/// The artifact store at exactly `<prefix>/cache`, as [`bucket_world`]'s profile names it.
pub fn bucket_cache(
    s3: &sparkwing_storage_testing::TestS3,
    prefix: &str,
) -> sparkwing_storage::s3::S3ArtifactStore {
    sparkwing_storage::s3::S3ArtifactStore::new(
        s3.config(),
        &s3.bucket,
        &format!("{prefix}/cache"),
        sparkwing_storage::s3::S3Options::default(),
    )
    .unwrap()
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
