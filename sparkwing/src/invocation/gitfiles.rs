//! The checkout's branch, commit and `origin` read from the repository's own files, so a run does
//! not start two `git` processes (about 2 ms each) before its first job. Only the plain layouts
//! are read here: a `.git` directory or `gitdir:` file, loose and packed refs, one `url` in the
//! repository's `config`. Anything else — an environment that redirects git, a repository of
//! another owner, reftable refs, config includes, quoted values, a symbolic branch ref — answers
//! `None`, and the caller asks `git` itself, so the answer never differs from git's.

use std::path::{Path, PathBuf};

/// A repository found from a working directory.
#[derive(Debug)]
pub(super) struct Repo {
    /// `.git` of this checkout (a worktree's own directory for a linked worktree).
    git_dir: PathBuf,
    /// Where refs and config are shared (`git_dir` unless it has a `commondir` file).
    common_dir: PathBuf,
}

/// What the files say about the checkout at `dir`: `Some(None)` when there is no repository at
/// or above it, `None` when only git can say.
pub(super) fn find(dir: &Path) -> Option<Option<Repo>> {
    const REDIRECTS: [&str; 8] = [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_CONFIG",
        "GIT_NAMESPACE",
        "GIT_REF",
    ];
    if std::env::vars_os().any(|(k, _)| {
        k.to_str()
            .is_some_and(|k| REDIRECTS.iter().any(|r| k.starts_with(r)))
    }) {
        return None;
    }
    let dir = std::path::absolute(dir).ok()?;
    use std::os::unix::fs::MetadataExt;
    let mut device = None;
    for at in dir.ancestors() {
        let here = std::fs::metadata(at).ok()?.dev();
        if *device.get_or_insert(here) != here {
            // git stops looking at a filesystem boundary; whatever lies beyond is not its answer.
            return Some(None);
        }
        let dot = at.join(".git");
        let git_dir = match std::fs::symlink_metadata(&dot) {
            Ok(m) if m.is_dir() => dot,
            Ok(m) if m.is_file() => {
                let text = std::fs::read_to_string(&dot).ok()?;
                let target = text
                    .strip_prefix("gitdir: ")?
                    .trim_end_matches(['\n', '\r']);
                at.join(target)
            }
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
        };
        // git refuses a repository of another owner unless told it is safe; let it decide.
        if std::fs::metadata(&git_dir).ok()?.uid() != nix::unistd::geteuid().as_raw() {
            return None;
        }
        let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
            Ok(rel) => git_dir.join(rel.trim_end_matches(['\n', '\r'])),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => git_dir.clone(),
            Err(_) => return None,
        };
        if common_dir.join("reftable").exists() {
            return None;
        }
        return Some(Some(Repo {
            git_dir,
            common_dir,
        }));
    }
    Some(None)
}

impl Repo {
    /// `(commit, branch)` of `HEAD`: the branch is empty when detached, both are empty on a
    /// branch with no commit yet (as `git rev-parse HEAD --abbrev-ref HEAD` fails then).
    pub(super) fn head(&self) -> Option<(String, String)> {
        let head = std::fs::read_to_string(self.git_dir.join("HEAD")).ok()?;
        let head = head.trim_end_matches(['\n', '\r']);
        if let Some(target) = head.strip_prefix("ref: ") {
            let branch = target.strip_prefix("refs/heads/")?;
            if branch.is_empty() || branch.split('/').any(|s| s.is_empty() || s == "..") {
                return None;
            }
            return Some(match self.resolve(target)? {
                Some(sha) => (sha, branch.to_string()),
                None => (String::new(), String::new()),
            });
        }
        is_object_id(head).then(|| (head.to_string(), String::new()))
    }

    /// The commit a branch ref names: `Some(None)` when it names none yet.
    fn resolve(&self, name: &str) -> Option<Option<String>> {
        match std::fs::read_to_string(self.common_dir.join(name)) {
            Ok(text) => {
                let id = text.trim_end_matches(['\n', '\r']);
                return is_object_id(id).then(|| Some(id.to_string()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // A directory of that name (`refs/heads/a` when `a/b` exists) or unreadable.
            Err(_) => return None,
        }
        let packed = match read_small(&self.common_dir.join("packed-refs")) {
            Ok(p) => p?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(None),
            Err(_) => return None,
        };
        for line in packed.lines() {
            if line.starts_with('#') || line.starts_with('^') {
                continue;
            }
            let (id, ref_name) = line.split_once(' ')?;
            if ref_name == name {
                return is_object_id(id).then(|| Some(id.to_string()));
            }
        }
        Some(None)
    }

    /// `remote.origin.url` as `git config --get` would give it; empty when there is none.
    pub(super) fn origin_url(&self) -> Option<String> {
        let text = read_small(&self.common_dir.join("config")).ok()??;
        let mut urls = remote_urls(&text)?;
        if urls.len() > 1 {
            return None;
        }
        if let Some(url) = urls.pop() {
            return Some(url);
        }
        // Not in the repository: a user or system config could still set it (or include one
        // that does); only when none of them can is the answer "none".
        for file in outer_configs() {
            match std::fs::read_to_string(&file) {
                Ok(t) => {
                    let t = t.to_ascii_lowercase();
                    if t.contains("remote") || t.contains("include") {
                        return None;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return None,
            }
        }
        Some(String::new())
    }
}

/// A file's text, or `None` when it is too large to scan here (a monorepo's packed refs run to
/// tens of megabytes; git looks a ref up in them by bisection, so it answers those).
fn read_small(path: &Path) -> std::io::Result<Option<String>> {
    const MAX: u64 = 1 << 20;
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= MAX).then_some(text))
}

/// The config files git reads besides the repository's own.
fn outer_configs() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/gitconfig")];
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        files.push(home.join(".gitconfig"));
        files.push(match std::env::var_os("XDG_CONFIG_HOME") {
            Some(x) if !x.is_empty() => PathBuf::from(x).join("git/config"),
            _ => home.join(".config/git/config"),
        });
    }
    files
}

/// Every `url` of `[remote "origin"]` in a config file, or `None` for what this reader does not
/// follow: includes, a per-worktree config, the old `[remote.origin]` form, quoting, escapes and
/// comments within a value.
fn remote_urls(text: &str) -> Option<Vec<String>> {
    let mut urls = Vec::new();
    let mut in_origin = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let header = rest.split(']').next()?;
            let (section, sub) = match header.split_once(char::is_whitespace) {
                Some((s, sub)) => (s, Some(sub.trim())),
                None => (header, None),
            };
            let section = section.to_ascii_lowercase();
            if section.starts_with("include") || section.contains('.') {
                return None;
            }
            in_origin = section == "remote" && sub == Some("\"origin\"");
            // A key on the header's line (`[remote "origin"] url = x`) is legal and rare.
            if !line.ends_with(']') {
                return None;
            }
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("worktreeconfig") || lower.starts_with("refstorage") {
            return None;
        }
        if !in_origin {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("url") {
            continue;
        }
        let value = value.trim();
        if value.contains(['"', '\\', '#', ';']) {
            return None;
        }
        urls.push(value.to_string());
    }
    Some(urls)
}

/// A full object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn ok(dir: &Path, args: &[&str]) {
        let st = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-C"])
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    }

    /// What git itself answers: the run's own fallback, the same two commands.
    fn from_git(dir: &Path) -> ((String, String), String) {
        (
            super::super::head_from_git(dir),
            super::super::origin_from_git(dir),
        )
    }

    fn from_files(dir: &Path) -> ((String, String), String) {
        let repo = find(dir).expect("plain layout").expect("a repository");
        (
            repo.head().expect("a plain HEAD"),
            repo.origin_url().expect("a plain config"),
        )
    }

    /// Every layout a checkout commonly has, read from the files and asked of git: the same.
    #[test]
    fn the_files_say_what_git_says() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        ok(&repo, &["init", "-q", "-b", "feature/x"]);
        // No commit yet.
        assert_eq!(from_files(&repo), from_git(&repo));
        assert_eq!(from_files(&repo).0, (String::new(), String::new()));
        std::fs::write(repo.join("f"), "x").unwrap();
        ok(&repo, &["add", "f"]);
        ok(&repo, &["commit", "-q", "-m", "one"]);
        assert_eq!(from_files(&repo), from_git(&repo));
        assert_eq!(from_files(&repo).0.1, "feature/x");
        // From a directory below the top; with an origin.
        let sub = repo.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        ok(
            &repo,
            &[
                "remote",
                "add",
                "origin",
                "https://example.com/team/app.git",
            ],
        );
        assert_eq!(from_files(&sub), from_git(&sub));
        assert_eq!(from_files(&sub).1, "https://example.com/team/app.git");
        // Refs packed; detached.
        ok(&repo, &["pack-refs", "--all"]);
        assert!(!repo.join(".git/refs/heads/feature/x").exists());
        assert_eq!(from_files(&repo), from_git(&repo));
        ok(&repo, &["checkout", "-q", "--detach"]);
        assert_eq!(from_files(&repo), from_git(&repo));
        assert_eq!(from_files(&repo).0.1, "");
        ok(&repo, &["checkout", "-q", "feature/x"]);
        // A linked worktree on its own branch, with a new commit there.
        let wt = tmp.path().join("wt");
        ok(
            &repo,
            &["worktree", "add", "-q", "-b", "other", wt.to_str().unwrap()],
        );
        std::fs::write(wt.join("g"), "y").unwrap();
        ok(&wt, &["add", "g"]);
        ok(&wt, &["commit", "-q", "-m", "two"]);
        assert_eq!(from_files(&wt), from_git(&wt));
        assert_eq!(from_files(&wt).0.1, "other");
        assert_ne!(from_files(&wt).0.0, from_files(&repo).0.0);
    }

    #[test]
    fn what_only_git_can_answer_is_left_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        ok(repo, &["init", "-q", "-b", "main"]);
        let config = repo.join(".git/config");
        let plain = std::fs::read_to_string(&config).unwrap();
        for extra in [
            "[include]\n\tpath = other\n",
            "[remote \"origin\"]\n\turl = \"https://example.com/x\"\n",
            "[remote \"origin\"]\n\turl = https://a\n\turl = https://b\n",
            "[remote.origin]\n\turl = https://example.com/x\n",
        ] {
            std::fs::write(&config, format!("{plain}{extra}")).unwrap();
            let found = find(repo).unwrap().unwrap();
            assert_eq!(found.origin_url(), None, "{extra}");
        }
        std::fs::write(&config, &plain).unwrap();
        // Packed refs too large to scan here: git looks the branch up.
        let line = format!("{} refs/tags/t\n", "a".repeat(40));
        std::fs::write(repo.join(".git/packed-refs"), line.repeat(30_000)).unwrap();
        assert_eq!(find(repo).unwrap().unwrap().head(), None);
        std::fs::remove_file(repo.join(".git/packed-refs")).unwrap();
        assert_eq!(
            find(repo).unwrap().unwrap().head(),
            Some((String::new(), String::new()))
        );
        std::fs::write(repo.join(".git/HEAD"), "ref: refs/remotes/origin/main\n").unwrap();
        assert_eq!(find(repo).unwrap().unwrap().head(), None);
        std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/../../x\n").unwrap();
        assert_eq!(find(repo).unwrap().unwrap().head(), None);
    }

    #[test]
    fn config_values_are_read_as_git_reads_them() {
        let text = "[core]\n\tbare = false\n[Remote \"origin\"]\n\tURL = git@host:a/b.git  \n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[remote \"upstream\"]\n\turl = https://other\n";
        assert_eq!(
            remote_urls(text),
            Some(vec!["git@host:a/b.git".to_string()])
        );
        assert_eq!(
            remote_urls("[remote \"Origin\"]\n\turl = x\n"),
            Some(vec![])
        );
        assert_eq!(remote_urls("; nothing\n"), Some(vec![]));
    }
}
