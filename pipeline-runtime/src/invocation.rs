//! What the run record says about where and how it ran: git state and the CI environment.

use std::path::Path;
use std::process::{Command, Stdio};

/// Git facts of the working directory; empty strings when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GitInfo {
    pub branch: String,
    pub sha: String,
    pub remote: String,
}

/// The CI vendor and job link, when the environment shows one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CiInfo {
    pub vendor: String,
    pub job_url: String,
    pub branch: String,
    pub sha: String,
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
    let mut info = GitInfo {
        branch: ci.branch.clone(),
        sha: ci.sha.clone(),
        remote: strip_credentials(&git(dir, &["config", "--get", "remote.origin.url"])),
    };
    if info.sha.is_empty() {
        info.sha = git(dir, &["rev-parse", "HEAD"]);
    }
    if info.branch.is_empty() {
        let b = git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]);
        if b != "HEAD" {
            info.branch = b;
        }
    }
    info
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
    let v = |k: &str| get(k).unwrap_or_default();
    if v("GITHUB_ACTIONS") == "true" {
        let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let job_url = match (get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
            (Some(repo), Some(run)) => format!("{server}/{repo}/actions/runs/{run}"),
            _ => String::new(),
        };
        let branch = get("GITHUB_HEAD_REF")
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| v("GITHUB_REF_NAME"));
        return CiInfo {
            vendor: "github-actions".into(),
            job_url,
            branch,
            sha: v("GITHUB_SHA"),
        };
    }
    if v("BUILDKITE") == "true" {
        let mut job_url = v("BUILDKITE_BUILD_URL");
        if let Some(job) = get("BUILDKITE_JOB_ID").filter(|j| !j.is_empty() && !job_url.is_empty())
        {
            job_url = format!("{job_url}#{job}");
        }
        return CiInfo {
            vendor: "buildkite".into(),
            job_url,
            branch: v("BUILDKITE_BRANCH"),
            sha: v("BUILDKITE_COMMIT"),
        };
    }
    if v("GITLAB_CI") == "true" {
        return CiInfo {
            vendor: "gitlab-ci".into(),
            job_url: v("CI_JOB_URL"),
            branch: v("CI_COMMIT_REF_NAME"),
            sha: v("CI_COMMIT_SHA"),
        };
    }
    if v("CIRCLECI") == "true" {
        return CiInfo {
            vendor: "circleci".into(),
            job_url: v("CIRCLE_BUILD_URL"),
            branch: v("CIRCLE_BRANCH"),
            sha: v("CIRCLE_SHA1"),
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
    fn vendors_are_recognized_with_their_job_links() {
        let g = ci(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", "abc"),
        ]);
        assert_eq!(g.vendor, "github-actions");
        assert_eq!(g.job_url, "https://github.com/o/r/actions/runs/42");
        assert_eq!((g.branch.as_str(), g.sha.as_str()), ("main", "abc"));
        let b = ci(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_BUILD_URL", "https://bk/b/1"),
            ("BUILDKITE_JOB_ID", "j"),
        ]);
        assert_eq!(b.job_url, "https://bk/b/1#j");
        assert_eq!(
            ci(&[("GITLAB_CI", "true"), ("CI_JOB_URL", "u")]).vendor,
            "gitlab-ci"
        );
        assert_eq!(ci(&[("CIRCLECI", "true")]).vendor, "circleci");
        assert_eq!(ci(&[]), CiInfo::default());
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
