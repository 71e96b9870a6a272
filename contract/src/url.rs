//! Store URLs: the one-line form of a store used by flags, records and messages.
//!
//! Accepted forms:
//!
//! | form                    | meaning                                        |
//! |-------------------------|------------------------------------------------|
//! | `filesystem:/abs/path`  | a directory (also `filesystem:///abs/path`)    |
//! | `fs:///abs/path`        | the same (also `file:///abs/path`)             |
//! | `s3://bucket[/prefix]`  | an S3 bucket, optionally under a key prefix    |
//!
//! A leading `~/` in a filesystem path expands to `$HOME`.

use crate::id::{validate_hierarchical, validate_segment};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The accepted forms, quoted in every parse error.
const ACCEPTED: &str = "`fs:///abs/path`, `filesystem:/abs/path` or `s3://bucket[/prefix]`";

/// Why a store URL was refused. Each message names the input and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Nothing was given.
    #[error("parse an empty store URL")]
    Empty,
    /// No `scheme:` in front.
    #[error("parse store URL `{0}`: it has no scheme")]
    MissingScheme(String),
    /// A scheme this build does not know.
    #[error("parse store URL `{url}`: unsupported scheme `{scheme}`")]
    UnknownScheme { url: String, scheme: String },
    /// A filesystem URL whose path is not absolute.
    #[error("parse store URL `{0}`: a filesystem path must be absolute")]
    RelativePath(String),
    /// `s3://` without a bucket name.
    #[error("parse store URL `{0}`: s3 needs a bucket")]
    MissingBucket(String),
    /// A bucket name S3 would refuse.
    #[error(
        "parse store URL `{url}`: `{bucket}` is not a valid bucket name (3-63 characters: lowercase letters, digits, `.`, `-`)"
    )]
    BadBucket { url: String, bucket: String },
    /// A prefix with an unsafe segment (`..`, control characters, empty segments).
    #[error("parse store URL `{url}`: unsafe prefix: {reason}")]
    BadPrefix { url: String, reason: String },
    /// Query strings and fragments have no meaning here.
    #[error("parse store URL `{0}`: query strings and fragments are not supported")]
    Query(String),
}

impl crate::hint::Hinted for UrlError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            UrlError::RelativePath(_) => format!("use {ACCEPTED}, e.g. `fs:///var/lib/sparkwing`"),
            UrlError::MissingBucket(_)
            | UrlError::BadBucket { .. }
            | UrlError::BadPrefix { .. } => "use `s3://bucket[/prefix]`".to_string(),
            UrlError::Empty
            | UrlError::MissingScheme(_)
            | UrlError::UnknownScheme { .. }
            | UrlError::Query(_) => format!("use {ACCEPTED}"),
        })
    }
}

/// A parsed store location.
///
/// ```
/// use sparkwing_contract::StoreUrl;
///
/// let u: StoreUrl = "s3://my-team/ci/logs/".parse().unwrap();
/// assert_eq!(u.spec_string(), "s3://my-team/ci/logs");
/// let f = StoreUrl::parse("fs:///var/lib/sparkwing").unwrap();
/// assert_eq!(f.spec_string(), "filesystem:/var/lib/sparkwing");
/// assert!(StoreUrl::parse("fs://relative/dir").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreUrl {
    /// A directory on the local filesystem (absolute).
    Filesystem(PathBuf),
    /// An S3 bucket and a key prefix without leading or trailing `/` (may be empty).
    S3 { bucket: String, prefix: String },
}

impl StoreUrl {
    /// Parses a store URL; see the module docs for the accepted forms.
    pub fn parse(raw: &str) -> Result<StoreUrl, UrlError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(UrlError::Empty);
        }
        if s.chars().any(char::is_control) {
            return Err(UrlError::BadPrefix {
                url: s.escape_debug().to_string(),
                reason: "it contains a control character".into(),
            });
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(UrlError::MissingScheme(s.into()));
        };
        // `/abs/path` or `C:` style inputs: a "scheme" must be a plain word.
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(UrlError::MissingScheme(s.into()));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "fs" | "file" | "filesystem" => parse_fs(s, rest),
            "s3" => parse_s3(s, rest),
            _ => Err(UrlError::UnknownScheme {
                url: s.into(),
                scheme: scheme.into(),
            }),
        }
    }

    /// The canonical spec string: `filesystem:/path` or `s3://bucket/prefix` (`s3://bucket` with
    /// no prefix). Parsing it yields the same `StoreUrl`.
    pub fn spec_string(&self) -> String {
        match self {
            StoreUrl::Filesystem(p) => format!("filesystem:{}", p.display()),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// A filesystem location.
    pub fn filesystem(path: impl Into<PathBuf>) -> Result<StoreUrl, UrlError> {
        let path = path.into();
        if !path.is_absolute() {
            return Err(UrlError::RelativePath(path.display().to_string()));
        }
        Ok(StoreUrl::Filesystem(path))
    }

    /// The same location with `sub` appended to its path or prefix (e.g. a surface under a
    /// shared root). `sub` is validated like a key.
    pub fn join(&self, sub: &str) -> Result<StoreUrl, UrlError> {
        let sub = sub.trim_matches('/');
        if sub.is_empty() {
            return Ok(self.clone());
        }
        validate_hierarchical(sub).map_err(|e| UrlError::BadPrefix {
            url: format!("{}/{sub}", self.spec_string()),
            reason: e.to_string(),
        })?;
        Ok(match self {
            StoreUrl::Filesystem(p) => StoreUrl::Filesystem(p.join(sub)),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => StoreUrl::S3 {
                bucket: bucket.clone(),
                prefix: sub.into(),
            },
            StoreUrl::S3 { bucket, prefix } => StoreUrl::S3 {
                bucket: bucket.clone(),
                prefix: format!("{prefix}/{sub}"),
            },
        })
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec_string())
    }
}

impl FromStr for StoreUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreUrl::parse(s)
    }
}

fn parse_fs(url: &str, rest: &str) -> Result<StoreUrl, UrlError> {
    if rest.contains(['?', '#']) {
        return Err(UrlError::Query(url.into()));
    }
    // `fs:///p` and `filesystem:/p` both name `/p`; `fs://~/p` names `$HOME/p`.
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = if path == "~" {
        home().ok_or_else(|| UrlError::RelativePath(url.into()))?
    } else if let Some(tail) = path.strip_prefix("~/") {
        home()
            .ok_or_else(|| UrlError::RelativePath(url.into()))?
            .join(tail)
    } else {
        PathBuf::from(path)
    };
    if path.as_os_str().is_empty() || !path.is_absolute() {
        return Err(UrlError::RelativePath(url.into()));
    }
    Ok(StoreUrl::Filesystem(normalize(&path)))
}

/// Drops trailing slashes and `.` components so equal locations print equally.
fn normalize(p: &Path) -> PathBuf {
    p.components().collect()
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn parse_s3(url: &str, rest: &str) -> Result<StoreUrl, UrlError> {
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(UrlError::MissingBucket(url.into()));
    };
    if rest.contains(['?', '#']) {
        return Err(UrlError::Query(url.into()));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(UrlError::MissingBucket(url.into()));
    }
    if !valid_bucket(bucket) {
        return Err(UrlError::BadBucket {
            url: url.into(),
            bucket: bucket.into(),
        });
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        for seg in prefix.split('/') {
            validate_segment(seg).map_err(|e| UrlError::BadPrefix {
                url: url.into(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(StoreUrl::S3 {
        bucket: bucket.into(),
        prefix: prefix.into(),
    })
}

/// S3 bucket naming rules (the subset that matters for addressing): 3–63 characters of
/// lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit.
fn valid_bucket(b: &str) -> bool {
    let ok_edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && ok_edge(b.chars().next())
        && ok_edge(b.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> StoreUrl {
        StoreUrl::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn accepted_forms() {
        let fs = StoreUrl::Filesystem("/var/lib/sw".into());
        for raw in [
            "filesystem:/var/lib/sw",
            "filesystem:///var/lib/sw",
            "fs:///var/lib/sw",
            "fs:///var/lib/sw/",
            "file:///var/lib/sw",
            " fs:///var/lib/sw ",
        ] {
            assert_eq!(StoreUrl::parse(raw).unwrap(), fs, "{raw}");
        }
        assert_eq!(StoreUrl::parse("s3://team").unwrap(), s3("team", ""));
        assert_eq!(StoreUrl::parse("s3://team/").unwrap(), s3("team", ""));
        assert_eq!(
            StoreUrl::parse("s3://team/ci/logs/").unwrap(),
            s3("team", "ci/logs")
        );
        assert_eq!(
            StoreUrl::parse("S3://my.team-1//cache").unwrap(),
            s3("my.team-1", "cache")
        );
    }

    #[test]
    fn spec_strings_round_trip() {
        for raw in ["filesystem:/var/lib/sw", "s3://team", "s3://team/ci/logs"] {
            let u = StoreUrl::parse(raw).unwrap();
            assert_eq!(u.spec_string(), raw);
            assert_eq!(u.to_string(), raw);
            assert_eq!(StoreUrl::parse(&u.spec_string()).unwrap(), u);
        }
        assert_eq!(
            StoreUrl::parse("fs:///a/b").unwrap().spec_string(),
            "filesystem:/a/b"
        );
    }

    #[test]
    fn home_expansion() {
        let Some(home) = home() else { return };
        assert_eq!(
            StoreUrl::parse("fs://~/sw").unwrap(),
            StoreUrl::Filesystem(home.join("sw"))
        );
    }

    #[test]
    fn errors_name_the_input_and_the_accepted_forms() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("/var/lib/sw", "no scheme"),
            ("bucket/prefix", "no scheme"),
            ("fs://relative/dir", "must be absolute"),
            ("filesystem:relative", "must be absolute"),
            ("fs://", "must be absolute"),
            ("s3://", "needs a bucket"),
            ("s3:///prefix", "needs a bucket"),
            ("s3:bucket", "needs a bucket"),
            ("gcs://bucket/p", "unsupported scheme `gcs`"),
            ("http://cache.local", "unsupported scheme `http`"),
            ("s3://Bad_Bucket", "not a valid bucket name"),
            ("s3://bk1/../etc", "unsafe prefix"),
            ("s3://bk1/a/./b", "unsafe prefix"),
            ("s3://bk1/p?x=1", "query strings"),
        ];
        for (raw, want) in cases {
            let err = crate::hint::with_hint(&StoreUrl::parse(raw).unwrap_err());
            assert!(err.contains(want), "{raw:?}: {err}");
            assert!(err.contains("hint: use"), "{raw:?}: {err}");
            if !raw.is_empty() {
                assert!(err.contains(&format!("`{}`", raw.trim())), "{raw:?}: {err}");
            }
        }
        let err = StoreUrl::parse("fs:///a\nb").unwrap_err().to_string();
        assert!(err.contains("\\n"), "control characters are escaped: {err}");
        assert!(
            crate::hint::with_hint(&StoreUrl::parse("/abs").unwrap_err())
                .contains("s3://bucket[/prefix]")
        );
    }

    #[test]
    fn join_appends_a_validated_sub_path() {
        let u = StoreUrl::parse("s3://team").unwrap();
        assert_eq!(u.join("logs").unwrap(), s3("team", "logs"));
        assert_eq!(
            u.join("logs").unwrap().join("x/").unwrap(),
            s3("team", "logs/x")
        );
        assert!(u.join("../x").is_err());
        let f = StoreUrl::parse("fs:///r").unwrap();
        assert_eq!(
            f.join("cache").unwrap(),
            StoreUrl::Filesystem("/r/cache".into())
        );
    }
}
