//! Path globs relative to the repository root, one rule for `run --watch-path` (which changes
//! start a run) and a job's `.inputs([...])` (which changes make it run again).
//!
//! `*` matches within one path segment, `?` one character of it, `**` any number of whole
//! segments (none included). A pattern also matches everything below a directory it matches, so
//! `docs` and `docs/**` mean the same. Paths use `/` and never start with it.
//!
//! ```
//! use sparkwing_contract::glob::Glob;
//! let src = Glob::parse("src/**").unwrap();
//! assert!(src.matches("src/lib.rs") && src.matches("src/a/b.rs"));
//! assert!(!src.matches("docs/src.md"));
//! let md = Glob::parse("**/*.md").unwrap();
//! assert!(md.matches("README.md") && md.matches("docs/a/b.md"));
//! ```

use std::fmt;

/// A parsed glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    segs: Vec<String>,
}

/// Why a glob was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    pub glob: String,
    pub reason: &'static str,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid path glob `{}`: {}",
            self.glob.escape_debug(),
            self.reason
        )
    }
}

impl std::error::Error for GlobError {}

impl Glob {
    /// Parses a glob relative to the repository root.
    pub fn parse(text: &str) -> Result<Glob, GlobError> {
        let err = |reason| GlobError {
            glob: text.to_string(),
            reason,
        };
        let trimmed = text.trim_start_matches("./").trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(err(
                "it is empty; write a path relative to the repository root, e.g. `src/**`",
            ));
        }
        if trimmed.starts_with('/') {
            return Err(err(
                "it is absolute; write it relative to the repository root, e.g. `src/**`",
            ));
        }
        let segs: Vec<String> = trimmed.split('/').map(str::to_string).collect();
        if segs.iter().any(|s| s == "..") {
            return Err(err(
                "`..` leaves the repository; globs name paths inside it",
            ));
        }
        if segs.iter().any(|s| s.is_empty() || s == ".") {
            return Err(err("it has an empty or `.` segment"));
        }
        Ok(Glob {
            text: text.to_string(),
            segs,
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The literal directory the glob starts from: its segments before the first one with a
    /// wildcard (`src/**` → `src`, `**/*.md` → ``, `Cargo.toml` → `Cargo.toml`). Every path it
    /// matches lies at or below it, so a walk for matches starts there.
    pub fn base(&self) -> String {
        self.segs
            .iter()
            .take_while(|s| !s.contains(['*', '?']))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether `path` (relative, `/`-separated) or a directory above it matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        (1..=parts.len()).any(|n| match_segs(&self.segs, &parts[..n]))
    }
}

fn match_segs(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=path.len()).any(|skip| match_segs(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((s, more)) => match_one(p.as_bytes(), s.as_bytes()) && match_segs(rest, more),
            None => false,
        },
    }
}

/// `*` and `?` within one segment.
fn match_one(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(g: &str, p: &str) -> bool {
        Glob::parse(g).unwrap().matches(p)
    }

    #[test]
    fn the_base_is_the_literal_part_before_any_wildcard() {
        let base = |g: &str| Glob::parse(g).unwrap().base();
        assert_eq!(base("src/**"), "src");
        assert_eq!(base("./src/a/*.rs"), "src/a");
        assert_eq!(base("**/*.md"), "");
        assert_eq!(base("Cargo.toml"), "Cargo.toml");
        assert_eq!(base("docs/"), "docs");
    }

    #[test]
    fn stars_segments_and_directories() {
        assert!(m("src/**", "src/a.rs"));
        assert!(m("src/**", "src/x/y/z.rs"));
        assert!(m("src", "src/x/y/z.rs"));
        assert!(m("src/", "src/a.rs"));
        assert!(!m("src/**", "srcs/a.rs"));
        assert!(!m("src/**", "docs/src/a.rs"));
        assert!(m("*.md", "README.md"));
        assert!(!m("*.md", "docs/a.md"));
        assert!(m("**/*.md", "docs/a.md"));
        assert!(m("**/*.md", "a.md"));
        assert!(m("docs/*.md", "docs/guide.md"));
        assert!(!m("docs/*.md", "docs/x/guide.md"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b/c"));
        assert!(m("file?.txt", "file1.txt"));
        assert!(!m("file?.txt", "file12.txt"));
        assert!(m("*", "anything/at/all"));
        assert!(m("./src/*.rs", "src/main.rs"));
    }

    #[test]
    fn refuses_what_names_no_path_inside_the_repository() {
        for bad in ["", "/", "/abs/**", "../up", "a//b", "a/./b"] {
            let e = Glob::parse(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid path glob"), "{e}");
        }
    }
}
