//! Identifiers that become path or key segments.
//!
//! Run ids are single segments; node ids may be hierarchical (`parent/child`) with every segment
//! validated. Unsafe: empty, `.`/`..`, a path separator or a control character.

use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("empty identifier")]
    Empty,
    #[error("identifier `{0}` is a path reference (`.` or `..`)")]
    PathReference(String),
    #[error("identifier `{0}` contains a path separator or control character")]
    Separator(String),
    #[error("`{0}` is not a run id (expected `run-YYYYMMDD-HHMMSS-<8 hex>`)")]
    NotRunId(String),
}

/// Checks one segment: not empty, not `.`/`..`, no `/`, `\`, or control characters.
pub fn validate_segment(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s == "." || s == ".." {
        return Err(IdError::PathReference(escape(s)));
    }
    if s.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err(IdError::Separator(escape(s)));
    }
    Ok(())
}

/// Checks a possibly hierarchical id (`parent/child`): every segment must be safe.
pub fn validate_hierarchical(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.contains('\\') || s.chars().any(char::is_control) {
        return Err(IdError::Separator(escape(s)));
    }
    for seg in s.split('/') {
        validate_segment(seg).map_err(|e| match e {
            IdError::Empty => IdError::Separator(escape(s)),
            IdError::PathReference(_) => IdError::PathReference(escape(s)),
            other => other,
        })?;
    }
    Ok(())
}

/// Checks an artifact key (`a/b/c`): hierarchical, each segment safe.
pub fn validate_key(s: &str) -> Result<(), IdError> {
    validate_hierarchical(s)
}

/// Top-level names of the cache surface that belong to sparkwing: `bin/` holds pipeline binaries
/// and their manifests, `runs/` the runs' state dumps. No pipeline artifact may live there.
pub const RESERVED_NAMESPACES: &[&str] = &["bin", "runs"];

/// The reserved namespace `key` falls in, if any (compared without case: a case-insensitive
/// filesystem would put `BIN/x` at `bin/x`).
pub fn reserved_namespace(key: &str) -> Option<&'static str> {
    let first = key.split('/').next()?;
    RESERVED_NAMESPACES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(first))
        .copied()
}

/// Identifiers shown in errors are escaped so a control character cannot reach a terminal.
fn escape(s: &str) -> String {
    s.escape_debug().to_string()
}

/// A run id: `run-YYYYMMDD-HHMMSS-<8 hex>` (UTC), allocated by the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    /// A fresh id for a run starting now.
    pub fn generate() -> RunId {
        let (y, mo, d, h, mi, s) = crate::timefmt::utc_fields(crate::timefmt::now_unix_nanos());
        RunId(format!(
            "run-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{:08x}",
            random_u32()
        ))
    }

    /// Parses and validates a run id. A bare `YYYYMMDD-HHMMSS-xxxxxxxx` gets the `run-` prefix.
    pub fn parse(s: &str) -> Result<RunId, IdError> {
        // What was given is checked as given, so an error names the user's text.
        validate_segment(s)?;
        let full = if s.starts_with("run-") {
            s.to_string()
        } else {
            format!("run-{s}")
        };
        validate_segment(&full)?;
        let rest = &full[4..];
        let parts: Vec<&str> = rest.split('-').collect();
        let ok = parts.len() == 3
            && parts[0].len() == 8
            && parts[0].bytes().all(|b| b.is_ascii_digit())
            && parts[1].len() == 6
            && parts[1].bytes().all(|b| b.is_ascii_digit())
            && !parts[2].is_empty()
            && parts[2].len() <= 16
            && parts[2].bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(RunId(full))
        } else {
            Err(IdError::NotRunId(escape(s)))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 32 random bits without a dependency: hash of time, pid and a process-wide counter.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse() {
        let id = RunId::generate();
        assert_eq!(RunId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.as_str().len(), "run-20260420-093112-a7f2c3d4".len());
        assert_ne!(RunId::generate(), RunId::generate());
    }

    #[test]
    fn prefix_is_added() {
        assert_eq!(
            RunId::parse("20260420-093112-a7f2c3d4").unwrap().as_str(),
            "run-20260420-093112-a7f2c3d4"
        );
    }

    #[test]
    fn bad_run_ids_are_refused() {
        for bad in [
            "run-..",
            "run-2026/0420-093112-a7f2",
            "hello",
            "run-20260420-093112-zz",
            "",
        ] {
            assert!(RunId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments() {
        assert!(validate_segment("build").is_ok());
        assert_eq!(validate_segment(""), Err(IdError::Empty));
        assert!(matches!(
            validate_segment(".."),
            Err(IdError::PathReference(_))
        ));
        assert!(matches!(
            validate_segment("a/b"),
            Err(IdError::Separator(_))
        ));
        assert!(matches!(
            validate_segment("a\\b"),
            Err(IdError::Separator(_))
        ));
        assert!(matches!(
            validate_segment("a\nb"),
            Err(IdError::Separator(_))
        ));
        assert!(validate_hierarchical("parent/child").is_ok());
        assert!(validate_hierarchical("parent/../x").is_err());
        assert!(validate_hierarchical("/abs").is_err());
        assert!(validate_hierarchical("trailing/").is_err());
        assert!(validate_hierarchical("a//b").is_err());
    }
}
