//! What the run record says about where and how it ran: git state and the CI environment.

mod gitfiles;

use std::path::Path;
use std::process::{Command, Stdio};

/// Git facts of the working directory; empty strings when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GitInfo {
    pub branch: String,
    pub sha: String,
    pub remote: String,
}

/// What the CI environment says about the job: vendor, job link, repository, commit, branch.
/// Empty strings where the vendor does not tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CiInfo {
    /// `github-actions`, `buildkite`, `gitlab-ci`, `circleci`; empty outside CI.
    pub vendor: String,
    pub job_url: String,
    /// `owner/name` (GitHub, GitLab, CircleCI) or the clone URL (Buildkite).
    pub repository: String,
    pub branch: String,
    pub sha: String,
    /// A browsable URL of the repository, when the vendor gives enough to build one.
    pub repo_url: String,
}

impl CiInfo {
    /// Whether this vendor's console can fold a node's lines into a group.
    pub fn console_groups(&self) -> Option<crate::log::Grouping> {
        use crate::log::Grouping;
        match self.vendor.as_str() {
            "github-actions" => Some(Grouping::GitHub),
            "buildkite" => Some(Grouping::Buildkite),
            "gitlab-ci" => Some(Grouping::GitLab),
            _ => None,
        }
    }

    /// The `invocation.extra` entries for the CI facts that have no typed field.
    pub fn extra(&self) -> impl Iterator<Item = (String, serde_json::Value)> + '_ {
        [
            ("ci_repository", &self.repository),
            ("ci_commit", &self.sha),
            ("ci_branch", &self.branch),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str())))
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Reads branch, commit and `origin` of `dir`, preferring what the CI says (a CI checkout is
/// often a detached HEAD).
pub(crate) fn git_info(dir: &Path, ci: &CiInfo) -> GitInfo {
    let repo = gitfiles::find(dir);
    let files = repo.as_ref().map(|r| r.as_ref());
    let remote = answer(files, gitfiles::Repo::origin_url, || origin_from_git(dir));
    let mut info = GitInfo {
        branch: ci.branch.clone(),
        sha: ci.sha.clone(),
        remote: strip_credentials(&remote),
    };
    if info.remote.is_empty() {
        info.remote = ci.repo_url.clone();
    }
    if info.sha.is_empty() || info.branch.is_empty() {
        let (sha, branch) = answer(files, gitfiles::Repo::head, || head_from_git(dir));
        if info.sha.is_empty() {
            info.sha = sha;
        }
        if info.branch.is_empty() {
            info.branch = branch;
        }
    }
    info
}

/// The repository's files answer the common layouts without starting `git`; git answers the
/// rest. `files`: `Some(None)` when there is no repository at all, `None` when only git can say.
fn answer<T: Default>(
    files: Option<Option<&gitfiles::Repo>>,
    read: impl FnOnce(&gitfiles::Repo) -> Option<T>,
    ask_git: impl FnOnce() -> T,
) -> T {
    match files {
        Some(None) => T::default(),
        Some(Some(repo)) => read(repo).unwrap_or_else(ask_git),
        None => ask_git(),
    }
}

fn origin_from_git(dir: &Path) -> String {
    git(dir, &["config", "--get", "remote.origin.url"])
}

/// `(commit, branch)` from one `git` process; the branch is empty when detached.
fn head_from_git(dir: &Path) -> (String, String) {
    let out = git(dir, &["rev-parse", "HEAD", "--abbrev-ref", "HEAD"]);
    let mut lines = out.lines().map(str::trim);
    let (sha, branch) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let branch = if branch == "HEAD" { "" } else { branch };
    (sha.to_string(), branch.to_string())
}

/// `https://user:token@host/x` → `https://host/x`: the record must never hold a credential.
fn strip_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://{host}");
    }
    url.to_string()
}

/// Recognizes GitHub Actions, Buildkite, GitLab CI and CircleCI from their variables.
pub(crate) fn ci_info(get: impl Fn(&str) -> Option<String>) -> CiInfo {
    let v = |k: &str| get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    if v("GITHUB_ACTIONS") == "true" {
        let server = Some(v("GITHUB_SERVER_URL"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "https://github.com".into());
        let server = server.trim_end_matches('/');
        let repository = v("GITHUB_REPOSITORY");
        let run = v("GITHUB_RUN_ID");
        let job_url = if repository.is_empty() || run.is_empty() {
            String::new()
        } else {
            // A re-run keeps the run id; the attempt tells which of its executions this is.
            match v("GITHUB_RUN_ATTEMPT").as_str() {
                "" | "1" => format!("{server}/{repository}/actions/runs/{run}"),
                n => format!("{server}/{repository}/actions/runs/{run}/attempts/{n}"),
            }
        };
        // On a pull request GITHUB_REF_NAME is `<n>/merge`; the head branch is the useful name.
        let branch = Some(v("GITHUB_HEAD_REF"))
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| v("GITHUB_REF_NAME"));
        let repo_url = if repository.is_empty() {
            String::new()
        } else {
            format!("{server}/{repository}")
        };
        return CiInfo {
            vendor: "github-actions".into(),
            job_url,
            repository,
            branch,
            sha: v("GITHUB_SHA"),
            repo_url,
        };
    }
    if v("BUILDKITE") == "true" {
        let mut job_url = v("BUILDKITE_BUILD_URL");
        let job = v("BUILDKITE_JOB_ID");
        if !job.is_empty() && !job_url.is_empty() {
            job_url = format!("{job_url}#{job}");
        }
        let repository = strip_credentials(&v("BUILDKITE_REPO"));
        return CiInfo {
            vendor: "buildkite".into(),
            job_url,
            repo_url: repository.clone(),
            repository,
            branch: v("BUILDKITE_BRANCH"),
            sha: v("BUILDKITE_COMMIT"),
        };
    }
    if v("GITLAB_CI") == "true" {
        return CiInfo {
            vendor: "gitlab-ci".into(),
            job_url: v("CI_JOB_URL"),
            repository: v("CI_PROJECT_PATH"),
            // Merge request pipelines check out a detached ref; the source branch is the name.
            branch: Some(v("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"))
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| v("CI_COMMIT_REF_NAME")),
            sha: v("CI_COMMIT_SHA"),
            repo_url: strip_credentials(&v("CI_PROJECT_URL")),
        };
    }
    if v("CIRCLECI") == "true" {
        let (user, name) = (v("CIRCLE_PROJECT_USERNAME"), v("CIRCLE_PROJECT_REPONAME"));
        let repository = if user.is_empty() || name.is_empty() {
            String::new()
        } else {
            format!("{user}/{name}")
        };
        return CiInfo {
            vendor: "circleci".into(),
            job_url: v("CIRCLE_BUILD_URL"),
            repository,
            branch: v("CIRCLE_BRANCH"),
            sha: v("CIRCLE_SHA1"),
            repo_url: strip_credentials(&v("CIRCLE_REPOSITORY_URL")),
        };
    }
    CiInfo::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ci(vars: &[(&str, &str)]) -> CiInfo {
        let m: HashMap<&str, &str> = vars.iter().copied().collect();
        ci_info(|k| m.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn github_actions_gives_repository_commit_branch_and_the_attempt_link() {
        let g = ci(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://ghe.example.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "1"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", "abc"),
        ]);
        assert_eq!(g.vendor, "github-actions");
        assert_eq!(g.job_url, "https://ghe.example.com/o/r/actions/runs/42");
        assert_eq!(g.repository, "o/r");
        assert_eq!(g.repo_url, "https://ghe.example.com/o/r");
        assert_eq!((g.branch.as_str(), g.sha.as_str()), ("main", "abc"));
        assert_eq!(g.console_groups(), Some(crate::log::Grouping::GitHub));

        // A pull request re-run: head branch over `<n>/merge`, default server, attempt in the link.
        let pr = ci(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "3"),
            ("GITHUB_REF_NAME", "7/merge"),
            ("GITHUB_HEAD_REF", "feature/x"),
        ]);
        assert_eq!(
            pr.job_url,
            "https://github.com/o/r/actions/runs/42/attempts/3"
        );
        assert_eq!(pr.branch, "feature/x");
        let extra: Vec<_> = pr.extra().map(|(k, _)| k).collect();
        assert_eq!(extra, ["ci_repository", "ci_branch"]);
    }

    #[test]
    fn buildkite_links_the_job_and_strips_repo_credentials() {
        let b = ci(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_BUILD_URL", "https://buildkite.com/o/p/builds/1"),
            ("BUILDKITE_JOB_ID", "0189-ab"),
            ("BUILDKITE_REPO", "https://user:tok@github.com/o/r.git"),
            ("BUILDKITE_COMMIT", "def"),
            ("BUILDKITE_BRANCH", "release"),
        ]);
        assert_eq!(b.vendor, "buildkite");
        assert_eq!(b.job_url, "https://buildkite.com/o/p/builds/1#0189-ab");
        assert_eq!(b.repository, "https://github.com/o/r.git");
        assert_eq!((b.branch.as_str(), b.sha.as_str()), ("release", "def"));
        assert_eq!(b.console_groups(), Some(crate::log::Grouping::Buildkite));
    }

    #[test]
    fn gitlab_ci_reads_project_path_and_job_url() {
        let g = ci(&[
            ("GITLAB_CI", "true"),
            ("CI_JOB_URL", "https://gitlab.com/g/p/-/jobs/9"),
            ("CI_PROJECT_PATH", "g/p"),
            ("CI_PROJECT_URL", "https://gitlab.com/g/p"),
            ("CI_COMMIT_SHA", "123"),
            ("CI_COMMIT_REF_NAME", "main"),
        ]);
        assert_eq!(g.vendor, "gitlab-ci");
        assert_eq!(g.job_url, "https://gitlab.com/g/p/-/jobs/9");
        assert_eq!(g.repository, "g/p");
        assert_eq!(g.repo_url, "https://gitlab.com/g/p");
        assert_eq!((g.branch.as_str(), g.sha.as_str()), ("main", "123"));
        assert_eq!(g.console_groups(), Some(crate::log::Grouping::GitLab));
    }

    #[test]
    fn circleci_joins_user_and_repo_name() {
        let c = ci(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_PROJECT_USERNAME", "o"),
            ("CIRCLE_PROJECT_REPONAME", "r"),
            ("CIRCLE_SHA1", "456"),
            ("CIRCLE_BRANCH", "dev"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/gh/o/r/77"),
        ]);
        assert_eq!(c.vendor, "circleci");
        assert_eq!(c.repository, "o/r");
        assert_eq!(c.job_url, "https://circleci.com/gh/o/r/77");
        assert_eq!((c.branch.as_str(), c.sha.as_str()), ("dev", "456"));
        // CircleCI's console has no folding groups.
        assert_eq!(c.console_groups(), None);
    }

    #[test]
    fn outside_ci_nothing_is_claimed() {
        assert_eq!(ci(&[]), CiInfo::default());
        assert_eq!(ci(&[("GITHUB_ACTIONS", "false")]), CiInfo::default());
        assert_eq!(CiInfo::default().extra().count(), 0);
    }

    #[test]
    fn ci_branch_and_commit_win_over_a_detached_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let info = git_info(
            dir.path(),
            &CiInfo {
                branch: "main".into(),
                sha: "abc".into(),
                ..Default::default()
            },
        );
        assert_eq!((info.branch.as_str(), info.sha.as_str()), ("main", "abc"));
    }

    #[test]
    fn branch_and_commit_come_from_the_checkout_outside_ci() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-C"])
                .arg(dir.path())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q", "-b", "feature"]);
        // No commit yet: nothing to claim.
        let info = git_info(dir.path(), &CiInfo::default());
        assert_eq!((info.branch.as_str(), info.sha.as_str()), ("", ""));
        std::fs::write(dir.path().join("f"), "x").unwrap();
        run(&["add", "f"]);
        run(&["commit", "-q", "-m", "one"]);
        let info = git_info(dir.path(), &CiInfo::default());
        assert_eq!(info.branch, "feature");
        assert!(
            info.sha.len() == 40 && info.sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}",
            info.sha
        );
        // A detached checkout has a commit but no branch.
        run(&["checkout", "-q", "--detach"]);
        let detached = git_info(dir.path(), &CiInfo::default());
        assert_eq!(
            (detached.branch.as_str(), detached.sha.as_str()),
            ("", info.sha.as_str())
        );
    }

    #[test]
    fn remote_urls_lose_their_credentials() {
        assert_eq!(
            strip_credentials("https://x-access-token:s3cr3t@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            strip_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
    }
}
