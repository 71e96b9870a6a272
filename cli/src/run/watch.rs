//! `sparkwing run <pipeline> --watch`: run, then watch the repository and run again on every
//! change. A change during a run cancels it the orderly way (SIGTERM to the pipeline process, so
//! its records end `cancelled`); a change under `.sparkwing/` rebuilds the pipeline binary first
//! (cargo reuses the previous build, so only what changed compiles). Ctrl-C (or SIGTERM) ends the
//! loop with the exit code of the last run.
//!
//! Which changes count: paths `git check-ignore` says are ignored (so every `.gitignore`, the
//! repository's `info/exclude` and the user's global excludes apply exactly as git applies them)
//! never do, nor anything under `.git/`, a cargo `target/` directory, the sparkwing home or the
//! pipeline build's target directory; with `--watch-path`, only paths matching one of its globs.
//! Asking git rather than reading `.gitignore` files ourselves keeps one implementation of its
//! rules (negations, nested files, global excludes); it costs one short process per batch of
//! changes. Outside a git repository nothing is ignored but those directories.

use super::args::RunArgs;
use super::{RunPlan, announce_mode, binary, plan, run_once, runtime};
use crate::error::{CliError, CliResult};
use crate::fsevents::FileEvents;
use sparkwing_contract::glob::Glob;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Quiet time after a change before a run starts: an editor's save or a `git checkout` is many
/// events in a few milliseconds, and they make one run.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// However busy the repository, a run starts at most this long after the first change.
const DEBOUNCE_MAX: Duration = Duration::from_millis(1000);
/// Files the build itself writes under `.sparkwing/`: a write that leaves their content as the
/// build left it is not a change.
const BUILD_WRITES: &[&str] = &[".sparkwing/Cargo.lock", ".sparkwing/.resolved.lock"];

/// `sparkwing run <pipeline> --watch …`
pub fn execute(args: RunArgs) -> CliResult {
    let rt = runtime()?;
    let _entered = rt.enter();
    let mut stop = StopSignals::new()?;
    let mut repo: Option<RepoWatch> = None;
    let mut last: Option<i32> = None;
    let mut rebuild = false;
    loop {
        let prepared = prepare(&args, &rt, &mut repo, rebuild);
        let Some(watch) = repo.as_mut() else {
            // Nothing to watch yet (the project itself could not be read): nothing to wait for.
            return prepared.map(|_| last.unwrap_or(0));
        };
        let mut next: Option<Vec<String>> = None;
        match prepared {
            Ok((plan, obtained)) => {
                watch.remember_build_writes();
                let stopping = std::cell::Cell::new(false);
                let cancel = async {
                    tokio::select! {
                        changes = watch.next_change() => next = Some(changes),
                        () = stop.recv() => stopping.set(true),
                    }
                    if let Some(changes) = &next {
                        eprintln!(
                            "==> {}; cancelling the run to start again",
                            describe(changes)
                        );
                    } else {
                        // The terminal (or the forwarded signal) is ending the run already.
                        std::future::pending::<()>().await;
                    }
                };
                let db = crate::source::state_db_path(&plan.profile, &plan.home);
                let records = super::relay::open_records(&db)?;
                let (run_id, end) = run_once(&plan, obtained, records, &rt, cancel)?;
                last = Some(end.exit_code());
                if stopping.get() {
                    return Ok(finish(last));
                }
                eprintln!(
                    "==> run {run_id} ended with exit code {}; watching for changes (Ctrl-C stops)",
                    end.exit_code()
                );
            }
            Err(e) => {
                eprintln!("{e}");
                last = Some(e.exit_code());
                eprintln!("==> fix it and save: watching for changes (Ctrl-C stops)");
            }
        }
        let changes = match next {
            Some(c) => c,
            None => {
                let watch = repo.as_mut().expect("watching");
                let waited = rt.block_on(async {
                    tokio::select! {
                        changes = watch.next_change() => Some(changes),
                        () = stop.recv() => None,
                    }
                });
                match waited {
                    Some(c) => {
                        eprintln!("==> {}", describe(&c));
                        c
                    }
                    None => return Ok(finish(last)),
                }
            }
        };
        rebuild = changes.iter().any(|p| p.starts_with(".sparkwing/"));
    }
}

/// The plan (re-read every time: `.sparkwing/sparkwing.yaml` may have changed), the watcher (the
/// first time) and the binary.
fn prepare(
    args: &RunArgs,
    rt: &tokio::runtime::Runtime,
    repo: &mut Option<RepoWatch>,
    rebuild: bool,
) -> Result<(RunPlan, binary::Obtained), CliError> {
    let plan = plan(args.clone())?;
    if repo.is_none() {
        *repo = Some(RepoWatch::start(&plan)?);
        announce_mode(&plan);
    }
    if rebuild {
        eprintln!(
            "==> .sparkwing/ changed: rebuilding the pipeline binary (incremental: cargo reuses \
             the previous build and compiles only what changed)"
        );
    }
    let obtained = binary::obtain(&plan, rt)?;
    Ok((plan, obtained))
}

fn finish(last: Option<i32>) -> i32 {
    let code = last.unwrap_or(0);
    eprintln!("==> stopped watching; exit code {code} (the last run's)");
    code
}

/// `changed: a, b (+N more)`.
fn describe(changes: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = format!(
        "changed: {}",
        changes
            .iter()
            .take(SHOWN)
            .map(|p| format!("`{}`", sparkwing_contract::text::printable(p)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if changes.len() > SHOWN {
        s.push_str(&format!(" (+{} more)", changes.len() - SHOWN));
    }
    s
}

/// The signals that end the loop: SIGINT (Ctrl-C), SIGTERM, SIGHUP. While a run is in flight the
/// supervisor delivers them to the pipeline as usual; the loop only stops starting new runs.
struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl StopSignals {
    fn new() -> Result<StopSignals, CliError> {
        let listen =
            |kind| signal(kind).map_err(|e| CliError::failure(format!("listen for signals: {e}")));
        Ok(StopSignals {
            int: listen(SignalKind::interrupt())?,
            term: listen(SignalKind::terminate())?,
            hup: listen(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

/// The repository under watch: every directory that may hold a change, watched one by one (never
/// the pruned and ignored trees, which may be huge), and the rules for which changes count.
struct RepoWatch {
    root: PathBuf,
    events: FileEvents,
    /// Absolute trees whose changes never count: `.git`, the sparkwing home, the build's target.
    prune: Vec<PathBuf>,
    /// Directories git reported as ignored (relative, no trailing `/`).
    ignored_dirs: HashSet<String>,
    /// Whether `root` is in a git work tree (else no ignore rules apply).
    git: bool,
    globs: Vec<Glob>,
    /// Content fingerprints of [`BUILD_WRITES`] as the last build left them.
    build_writes: HashMap<String, Option<u64>>,
}

impl RepoWatch {
    fn start(plan: &RunPlan) -> Result<RepoWatch, CliError> {
        let root = plan.project.root.clone();
        let events = FileEvents::new().map_err(|e| {
            CliError::failure(format!("watch `{}` for changes: {e}", root.display()))
                .with_hint("file events are unavailable here; run without `--watch`")
        })?;
        let canonical = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
        let prune = vec![
            root.join(".git"),
            canonical(plan.home.path().to_path_buf()),
            canonical(crate::home::cargo_target_dir(&plan.home)),
        ];
        let ignored = git_ignored_dirs(&root);
        let git = ignored.is_some();
        if !git {
            eprintln!(
                "warning: `{}` is not in a git work tree: no .gitignore rules apply to --watch \
                 (only .git/, target/ and the sparkwing home are skipped)",
                root.display()
            );
        }
        let mut me = RepoWatch {
            root: root.clone(),
            events,
            prune,
            ignored_dirs: ignored.unwrap_or_default(),
            git,
            globs: plan.args.watch_paths.clone(),
            build_writes: HashMap::new(),
        };
        me.watch_tree(&root)?;
        let narrowed = if me.globs.is_empty() {
            String::new()
        } else {
            let globs: Vec<&str> = me.globs.iter().map(Glob::as_str).collect();
            format!(", only {}", globs.join(", "))
        };
        eprintln!(
            "==> watching `{}` for changes ({}{narrowed}); Ctrl-C stops",
            root.display(),
            if git {
                ".gitignore honoured"
            } else {
                "no .gitignore"
            }
        );
        Ok(me)
    }

    fn rel(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let s = rel.to_str()?.to_string();
        (!s.is_empty()).then_some(s)
    }

    /// A path whose changes never count (before any git rule).
    fn pruned(&self, path: &Path) -> bool {
        if self.prune.iter().any(|p| path.starts_with(p)) {
            return true;
        }
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return true;
        };
        let mut dir = self.root.clone();
        for comp in rel.components() {
            let name = comp.as_os_str();
            // A cargo target directory: `target` beside a `Cargo.toml` (or at the root).
            if name == "target" && (dir == self.root || dir.join("Cargo.toml").is_file()) {
                return true;
            }
            dir.push(name);
            if let Some(r) = self.rel(&dir)
                && self.ignored_dirs.contains(&r)
            {
                return true;
            }
        }
        false
    }

    /// Watches `dir` and every directory below it that is neither pruned nor ignored.
    fn watch_tree(&mut self, dir: &Path) -> Result<(), CliError> {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if self.pruned(&d) {
                continue;
            }
            if let Err(e) = self.events.watch(&d, false) {
                return Err(
                    CliError::failure(format!("watch `{}` for changes: {e}", d.display()))
                        .with_hint(
                            "the system's file-watch limit may be reached (Linux: \
                     fs.inotify.max_user_watches); narrow what is watched with `.gitignore`",
                        ),
                );
            }
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in rd.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Records what the build left in the files it writes, so its own writes are not changes.
    fn remember_build_writes(&mut self) {
        for rel in BUILD_WRITES {
            let fp = fingerprint(&self.root.join(rel));
            self.build_writes.insert((*rel).to_string(), fp);
        }
    }

    /// Waits for the next batch of changes that count (debounced), relative paths sorted.
    async fn next_change(&mut self) -> Vec<String> {
        loop {
            let Some(first) = self.events.next().await else {
                // The watcher is gone; nothing will ever change again.
                return std::future::pending().await;
            };
            let mut paths: Vec<PathBuf> = first;
            let started = tokio::time::Instant::now();
            let end = started + DEBOUNCE_MAX;
            loop {
                let quiet = (tokio::time::Instant::now() + DEBOUNCE).min(end);
                match tokio::time::timeout_at(quiet, self.events.next()).await {
                    Ok(Some(more)) => paths.extend(more),
                    _ => break,
                }
            }
            let changes = self.counted(paths);
            if !changes.is_empty() {
                return changes;
            }
        }
    }

    /// The paths of a batch that count, relative and sorted; new directories get watched.
    fn counted(&mut self, paths: Vec<PathBuf>) -> Vec<String> {
        let mut rels: Vec<String> = Vec::new();
        let mut new_dirs = Vec::new();
        for p in paths {
            if self.pruned(&p) {
                continue;
            }
            let Some(rel) = self.rel(&p) else { continue };
            if p.is_dir() {
                new_dirs.push((p.clone(), rel.clone()));
            }
            rels.push(rel);
        }
        rels.sort();
        rels.dedup();
        let ignored = if self.git {
            git_check_ignore(&self.root, &rels)
        } else {
            HashSet::new()
        };
        for (dir, rel) in new_dirs {
            if ignored.contains(&rel) {
                self.ignored_dirs.insert(rel);
            } else {
                // A directory that appeared after watching began: its files may change next.
                let _ = self.watch_tree(&dir);
            }
        }
        rels.retain(|r| !ignored.contains(r));
        rels.retain(|r| {
            self.build_writes
                .get(r)
                .is_none_or(|fp| *fp != fingerprint(&self.root.join(r)))
        });
        if !self.globs.is_empty() {
            rels.retain(|r| self.globs.iter().any(|g| g.matches(r)));
        }
        // A directory event names the directory; its files are what the user changed.
        let dirs: Vec<String> = rels
            .iter()
            .filter(|r| self.root.join(r).is_dir())
            .cloned()
            .collect();
        if rels.len() > dirs.len() {
            rels.retain(|r| !dirs.contains(r));
        }
        rels
    }
}

/// The content of a file as a number, or `None` when it does not exist.
fn fingerprint(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// The directories git ignores under `root` (relative, collapsed to the topmost), or `None` when
/// `root` is not in a git work tree (or git is missing).
fn git_ignored_dirs(root: &Path) -> Option<HashSet<String>> {
    let out = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
        ])
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        out.stdout
            .split(|&b| b == 0)
            .filter_map(|p| std::str::from_utf8(p).ok())
            .filter_map(|p| p.strip_suffix('/'))
            .map(str::to_string)
            .collect(),
    )
}

/// Which of `rels` git ignores (tracked files never are).
fn git_check_ignore(root: &Path, rels: &[String]) -> HashSet<String> {
    use std::io::Write;
    if rels.is_empty() {
        return HashSet::new();
    }
    let child = std::process::Command::new("git")
        .args(["check-ignore", "-z", "--stdin"])
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return HashSet::new();
    };
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = Vec::new();
        for r in rels {
            input.extend_from_slice(r.as_bytes());
            input.push(0);
        }
        let _ = stdin.write_all(&input);
    }
    let Ok(out) = child.wait_with_output() else {
        return HashSet::new();
    };
    out.stdout
        .split(|&b| b == 0)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_described_briefly() {
        let c: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        assert_eq!(describe(&c[..1]), "changed: `a`");
        assert_eq!(describe(&c), "changed: `a`, `b`, `c` (+2 more)");
    }

    #[test]
    fn git_decides_what_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(root)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(root.join(".gitignore"), "build/\n*.log\n!keep.log\n").unwrap();
        std::fs::create_dir_all(root.join("build/deep")).unwrap();
        std::fs::write(root.join("build/deep/x"), "").unwrap();
        let dirs = git_ignored_dirs(root).unwrap();
        assert!(dirs.contains("build"), "{dirs:?}");
        let rels: Vec<String> = ["a.log", "keep.log", "src/x.rs", "build/new"]
            .map(String::from)
            .to_vec();
        let ignored = git_check_ignore(root, &rels);
        let mut got: Vec<&str> = ignored.iter().map(String::as_str).collect();
        got.sort();
        assert_eq!(got, ["a.log", "build/new"]);
        // Not a repository: no rules.
        let plain = tempfile::tempdir().unwrap();
        assert!(git_ignored_dirs(plain.path()).is_none());
    }
}
