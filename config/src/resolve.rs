//! Profile resolution: `--profile` → project `defaults.profile` → built-in laptop defaults.
//!
//! Nothing is picked up from the CI environment: a CI job that wants its team bucket says
//! `--profile NAME` (or the project sets a default), so the same command means the same thing on
//! a laptop and in CI.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{AvailableProfile, ConfigError};
use crate::profile::{Profile, ProfilesFile};
use crate::project::ProjectConfig;
use crate::surface::{Surface, SurfaceKind};

/// The name [`Resolved::name`] carries when no profile was selected.
pub const BUILT_IN: &str = "built-in";

/// Which step of the chain selected the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--profile NAME`.
    Flag,
    /// The project file's `defaults.profile`.
    ProjectDefault,
    /// Nothing selected a profile: laptop defaults under `$SPARKWING_HOME`.
    BuiltIn,
}

impl Source {
    /// `flag`, `project-default` or `built-in`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::ProjectDefault => "project-default",
            Source::BuiltIn => "built-in",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the chain that was looked at, for `sparkwing profile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Considered {
    /// The step.
    pub source: Source,
    /// The profile name the step offered, if any.
    pub name: Option<String>,
    /// The file the profile was found in, if any.
    pub file: Option<PathBuf>,
    /// What the step found, in words.
    pub reason: String,
    /// Whether this step decided the outcome.
    pub selected: bool,
}

/// The outcome of resolution: where each surface lives, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The profile's name, or [`BUILT_IN`].
    pub name: String,
    /// Which step selected it.
    pub source: Source,
    /// The file that declares the profile (`None` for built-in defaults).
    pub file: Option<PathBuf>,
    /// Why this profile, in one sentence (mentions surfaces that fell back to defaults).
    pub reason: String,
    /// Run and node records.
    pub state: Surface,
    /// Node log parts.
    pub logs: Surface,
    /// Artifacts, state dumps and pipeline binaries.
    pub cache: Surface,
    /// Surfaces the profile does not declare, filled in with built-in defaults.
    pub defaulted: Vec<SurfaceKind>,
    /// The cache surface is declared `read_only: true`: readers only, never publish to it.
    pub cache_read_only: bool,
    /// The cache surface's `trusted_keys`: only manifests signed by one of them are believed.
    pub cache_trusted_keys: Vec<String>,
    /// The chain steps looked at, in order; the last one is selected.
    pub considered: Vec<Considered>,
}

impl Resolved {
    /// The surface of that kind.
    pub fn surface(&self, kind: SurfaceKind) -> &Surface {
        match kind {
            SurfaceKind::State => &self.state,
            SurfaceKind::Cache => &self.cache,
            SurfaceKind::Logs => &self.logs,
        }
    }

    /// `{"state": …, "logs": …, "cache": …}` spec strings: the value of `SPARKWING_BACKENDS`.
    pub fn backends_json(&self) -> serde_json::Value {
        serde_json::json!({
            "state": self.state.spec_string(),
            "logs": self.logs.spec_string(),
            "cache": self.cache.spec_string(),
        })
    }
}

/// Resolves the effective profile.
///
/// `flag` is `--profile`; it is looked up in the user profiles file first, then in the project's
/// `profiles:` (the user file wins when both declare a name). Without it, the project's
/// `defaults.profile` applies; without that, built-in laptop defaults under `home`
/// (`$SPARKWING_HOME`): state `sqlite:<home>/state.db`, logs `filesystem:<home>/runs`, cache
/// `filesystem:<home>/artifacts`. A surface a profile leaves out gets its built-in default, and a
/// `sqlite` state without `path` gets `<home>/state.db`.
///
/// ```
/// use std::path::Path;
/// use sparkwing_config::{ProfilesFile, ProjectConfig, Source, resolve};
///
/// let user = ProfilesFile::parse(
///     "profiles:\n  ci:\n    logs: { type: s3, bucket: team, prefix: logs }\n",
///     Path::new("/home/ada/.config/sparkwing/profiles.yaml"),
///     None,
/// ).unwrap();
/// let r = resolve(Some("ci"), None, &user, Path::new("/home/ada/.sparkwing")).unwrap();
/// assert_eq!(r.source, Source::Flag);
/// assert_eq!(r.logs.spec_string(), "s3://team/logs");
/// assert_eq!(r.state.spec_string(), "sqlite:/home/ada/.sparkwing/state.db");
///
/// let none = resolve(None, None, &user, Path::new("/home/ada/.sparkwing")).unwrap();
/// assert_eq!(none.source, Source::BuiltIn);
/// assert!(resolve(Some("nope"), None, &user, Path::new("/h")).is_err());
/// ```
pub fn resolve(
    flag: Option<&str>,
    project: Option<&ProjectConfig>,
    user: &ProfilesFile,
    home: &Path,
) -> Result<Resolved, ConfigError> {
    let mut considered = Vec::new();

    if let Some(name) = flag {
        let in_user = user.get(name);
        let in_project = project.and_then(|p| p.profile(name).map(|pr| (pr, &p.path)));
        let (profile, file, reason) = match (in_user, in_project) {
            (Some(pr), Some((_, pfile))) => (
                pr,
                &user.path,
                format!(
                    "`--profile {name}` names a profile in the user profiles file `{}`; `{}` declares it too, and the user file takes precedence",
                    user.path.display(),
                    pfile.display()
                ),
            ),
            (Some(pr), None) => (
                pr,
                &user.path,
                format!(
                    "`--profile {name}` names a profile in the user profiles file `{}`",
                    user.path.display()
                ),
            ),
            (None, Some((pr, pfile))) => (
                pr,
                pfile,
                format!(
                    "`--profile {name}` names a profile in the project file `{}`",
                    pfile.display()
                ),
            ),
            (None, None) => return Err(unknown_profile(name, project, user)),
        };
        considered.push(Considered {
            source: Source::Flag,
            name: Some(name.to_owned()),
            file: Some(file.clone()),
            reason: reason.clone(),
            selected: true,
        });
        return Ok(from_profile(
            profile,
            Source::Flag,
            file,
            reason,
            home,
            considered,
        ));
    }
    considered.push(Considered {
        source: Source::Flag,
        name: None,
        file: None,
        reason: "no `--profile` passed".to_owned(),
        selected: false,
    });

    match project {
        Some(p) => {
            if let Some(name) = &p.default_profile {
                // Load-time validation guarantees the default names a project profile.
                if let Some(profile) = p.profile(name) {
                    let reason = format!(
                        "no `--profile` passed; `defaults.profile` in `{}` names `{name}`",
                        p.path.display()
                    );
                    considered.push(Considered {
                        source: Source::ProjectDefault,
                        name: Some(name.clone()),
                        file: Some(p.path.clone()),
                        reason: reason.clone(),
                        selected: true,
                    });
                    return Ok(from_profile(
                        profile,
                        Source::ProjectDefault,
                        &p.path,
                        reason,
                        home,
                        considered,
                    ));
                }
            }
            considered.push(Considered {
                source: Source::ProjectDefault,
                name: None,
                file: Some(p.path.clone()),
                reason: format!("`{}` sets no `defaults.profile`", p.path.display()),
                selected: false,
            });
        }
        None => considered.push(Considered {
            source: Source::ProjectDefault,
            name: None,
            file: None,
            reason: "no project file".to_owned(),
            selected: false,
        }),
    }

    let why_no_default = &considered[1].reason;
    let reason = format!(
        "no `--profile` passed and {why_no_default}; built-in laptop defaults under `{}` apply",
        home.display()
    );
    considered.push(Considered {
        source: Source::BuiltIn,
        name: None,
        file: None,
        reason: format!("laptop defaults under `{}`", home.display()),
        selected: true,
    });
    Ok(Resolved {
        name: BUILT_IN.to_owned(),
        source: Source::BuiltIn,
        file: None,
        reason,
        state: SurfaceKind::State.built_in(home),
        logs: SurfaceKind::Logs.built_in(home),
        cache: SurfaceKind::Cache.built_in(home),
        defaulted: Vec::new(),
        cache_read_only: false,
        cache_trusted_keys: Vec::new(),
        considered,
    })
}

fn from_profile(
    profile: &Profile,
    source: Source,
    file: &Path,
    mut reason: String,
    home: &Path,
    considered: Vec<Considered>,
) -> Resolved {
    let mut defaulted = Vec::new();
    let mut pick = |kind: SurfaceKind| match profile.surface(kind) {
        Some(Surface::Sqlite { path: None }) => SurfaceKind::State.built_in(home),
        Some(s) => s.clone(),
        None => {
            defaulted.push(kind);
            kind.built_in(home)
        }
    };
    let state = pick(SurfaceKind::State);
    let logs = pick(SurfaceKind::Logs);
    let cache = pick(SurfaceKind::Cache);
    if !defaulted.is_empty() {
        let names: Vec<String> = defaulted.iter().map(|k| format!("`{k}`")).collect();
        let (list, verb) = match names.len() {
            1 => (names[0].clone(), "is"),
            _ => (
                format!(
                    "{} and {}",
                    names[..names.len() - 1].join(", "),
                    names[names.len() - 1]
                ),
                "are",
            ),
        };
        reason.push_str(&format!(
            "; {list} {verb} not declared by the profile, so the built-in default applies"
        ));
    }
    Resolved {
        name: profile.name.clone(),
        source,
        file: Some(file.to_path_buf()),
        reason,
        state,
        logs,
        cache,
        defaulted,
        cache_read_only: profile.cache_read_only,
        cache_trusted_keys: profile.cache_trusted_keys.clone(),
        considered,
    }
}

fn unknown_profile(
    name: &str,
    project: Option<&ProjectConfig>,
    user: &ProfilesFile,
) -> ConfigError {
    let mut searched = vec![user.path.clone()];
    let mut available: Vec<AvailableProfile> = user
        .profiles
        .iter()
        .map(|p| AvailableProfile {
            name: p.name.clone(),
            file: user.path.clone(),
        })
        .collect();
    if let Some(p) = project {
        searched.push(p.path.clone());
        available.extend(p.profiles.iter().map(|pr| AvailableProfile {
            name: pr.name.clone(),
            file: p.path.clone(),
        }));
    }
    ConfigError::UnknownProfile {
        name: name.to_owned(),
        searched,
        available,
    }
}
