//! Errors from loading configuration and resolving a profile.
//!
//! Every problem inside a config file carries a [`Location`] (`path:line:col`), so an editor or a
//! terminal can jump straight to it. Messages are lowercase fragments; the fix, where there is an
//! obvious one, is a typed hint beside the message (`Hinted`), printed once as a `hint:` line.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A place in a config file: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as it was given to the loader (absolute when the caller passed an absolute path).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A profile a user could have meant, listed when `--profile` names none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailableProfile {
    /// Profile name.
    pub name: String,
    /// The file that declares it.
    pub file: PathBuf,
}

/// What is wrong at a [`Location`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The file is not valid YAML (or holds more than one document).
    Syntax(String),
    /// A key the schema does not know, at any depth.
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it appeared, e.g. "a pipeline entry" or "the `state` surface of profile `ci`".
        within: String,
        /// The keys that are valid there.
        expected: Vec<&'static str>,
    },
    /// A required key is absent.
    MissingKey {
        /// The key.
        key: &'static str,
        /// The mapping that should hold it.
        within: String,
        /// Why it is required, when that depends on another value (e.g. "type `s3` needs it").
        because: Option<String>,
    },
    /// A value has the wrong YAML type.
    WrongType {
        /// What the value is, e.g. "`hidden` in a pipeline entry".
        what: String,
        /// What the schema wants: "a mapping", "a list", "a string", "true or false".
        expected: &'static str,
        /// What the file holds.
        found: &'static str,
    },
    /// A surface type that sparkwing knows of but this build does not provide.
    NotImplemented {
        /// `state`, `cache` or `logs`.
        surface: &'static str,
        /// The type as written.
        ty: String,
        /// The profile it appears in.
        profile: String,
    },
    /// A surface type that is not valid for that surface.
    UnknownType {
        /// `state`, `cache` or `logs`.
        surface: &'static str,
        /// The type as written.
        ty: String,
        /// The profile it appears in.
        profile: String,
        /// The types this build accepts for the surface.
        valid: Vec<&'static str>,
    },
    /// `defaults.profile` names a profile the project does not declare.
    UndeclaredDefault {
        /// The name as written.
        name: String,
        /// The profiles the project declares.
        declared: Vec<String>,
    },
    /// A filesystem path that is neither absolute nor `~`-relative.
    RelativePath {
        /// The path as written.
        path: String,
        /// Where it appeared.
        within: String,
    },
    /// Any other invalid value (names, version requirements, duplicates); a complete fragment.
    Invalid(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Syntax(msg) => write!(f, "malformed YAML: {msg}"),
            Problem::UnknownKey {
                key,
                within,
                expected,
            } => write!(
                f,
                "unknown key `{key}` in {within} (expected one of: {})",
                expected.join(", ")
            ),
            Problem::MissingKey {
                key,
                within,
                because,
            } => {
                write!(f, "missing key `{key}` in {within}")?;
                if let Some(because) = because {
                    write!(f, " ({because})")?;
                }
                Ok(())
            }
            Problem::WrongType {
                what,
                expected,
                found,
            } => write!(f, "{what} must be {expected}, found {found}"),
            Problem::NotImplemented {
                surface,
                ty,
                profile,
            } => write!(
                f,
                "`{surface}` surface of profile `{profile}`: type `{ty}` is recognized but not implemented in this build"
            ),
            Problem::UnknownType {
                surface,
                ty,
                profile,
                valid,
            } => write!(
                f,
                "`{surface}` surface of profile `{profile}`: unknown type `{ty}` (expected one of: {})",
                valid.join(", ")
            ),
            Problem::UndeclaredDefault { name, declared } => {
                write!(
                    f,
                    "`defaults.profile` names `{name}`, which is not declared in `profiles`"
                )?;
                if declared.is_empty() {
                    write!(f, " (the file declares no profiles)")
                } else {
                    write!(f, " (declared: {})", declared.join(", "))
                }
            }
            Problem::RelativePath { path, within } => {
                write!(f, "relative path `{path}` in {within}")
            }
            Problem::Invalid(msg) => f.write_str(msg),
        }
    }
}

/// Loading configuration or resolving a profile failed.
///
/// `Display` reads after "failed to …" for the variants without a location, and starts with
/// `path:line:col` for [`ConfigError::Invalid`]. The fix, when there is one, is
/// [`sparkwing_contract::hint::Hinted::hint`], never part of the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file the caller requires does not exist.
    #[error("find `{}`", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// How to create it.
        hint: Option<String>,
    },
    /// A needed directory cannot be derived from the environment.
    #[error("locate {what}: none of {} is set", vars.join(", "))]
    NoLocation {
        /// What was being located, e.g. "the profiles file".
        what: &'static str,
        /// The variables consulted, in order of precedence.
        vars: Vec<&'static str>,
    },
    /// A problem at a place in a config file.
    #[error("{at}: {problem}")]
    Invalid {
        /// Where.
        at: Location,
        /// What (boxed to keep `Result<_, ConfigError>` small on the happy path).
        problem: Box<Problem>,
        /// How to fix it, when there is an obvious way.
        hint: Option<String>,
    },
    /// `--profile` names a profile that neither the user nor the project declares.
    #[error("{}", unknown_profile(name, searched, available))]
    UnknownProfile {
        /// The name passed to `--profile`.
        name: String,
        /// The files searched, in order (the user file first; it may not exist).
        searched: Vec<PathBuf>,
        /// Every declared profile with its file, user file first.
        available: Vec<AvailableProfile>,
    },
}

impl ConfigError {
    /// What is wrong, for errors inside a config file.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ConfigError::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The location in a config file, for errors that have one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Invalid { at, .. } => Some(at),
            _ => None,
        }
    }
}

impl sparkwing_contract::hint::Hinted for ConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Missing { hint, .. } | ConfigError::Invalid { hint, .. } => hint.clone(),
            ConfigError::NoLocation { vars, .. } => {
                Some(format!("set {} to an absolute path", vars[0]))
            }
            ConfigError::UnknownProfile {
                name, available, ..
            } => Some(if available.is_empty() {
                format!(
                    "declare `{name}` under `profiles:` in the user profiles file, or drop `--profile` to use the built-in laptop defaults"
                )
            } else {
                format!(
                    "pass one of the names above to `--profile`, or declare `{name}` under `profiles:` in one of those files"
                )
            }),
            _ => None,
        }
    }
}

fn unknown_profile(name: &str, searched: &[PathBuf], available: &[AvailableProfile]) -> String {
    let files = searched
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(" or ");
    let mut out = format!("find profile `{name}`: it is not declared in {files}");
    if available.is_empty() {
        out.push_str("; no profiles are declared");
    } else {
        out.push_str("\navailable profiles:");
        let width = available.iter().map(|a| a.name.len()).max().unwrap_or(0);
        for a in available {
            out.push_str(&format!(
                "\n  {:width$}  ({})",
                a.name,
                a.file.display(),
                width = width
            ));
        }
    }
    out
}
