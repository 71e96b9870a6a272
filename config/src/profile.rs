//! Profiles: named sets of storage surfaces, declared in the user's `profiles.yaml` or in a
//! project's `sparkwing.yaml`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};
use sparkwing_contract::{env as vars, id};

use crate::error::{ConfigError, Problem};
use crate::surface::{Surface, SurfaceKind, parse_surface};
use crate::yaml::{Doc, Target, YPath};

/// A way to read environment variables; tests pass a closure over a map instead of the process
/// environment so they cannot race each other.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// One declared profile. A surface it does not declare falls back to the built-in default when
/// the profile is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name (its key under `profiles:`).
    pub name: String,
    /// Run and node records.
    pub state: Option<Surface>,
    /// Artifacts, state dumps and pipeline binaries.
    pub cache: Option<Surface>,
    /// Node log parts.
    pub logs: Option<Surface>,
    /// `read_only: true` on the cache surface: never publish to it.
    pub cache_read_only: bool,
    /// `trusted_keys` on the cache surface (minisign public keys).
    pub cache_trusted_keys: Vec<String>,
}

impl Profile {
    /// The declared surface of that kind, if any.
    pub fn surface(&self, kind: SurfaceKind) -> Option<&Surface> {
        match kind {
            SurfaceKind::State => self.state.as_ref(),
            SurfaceKind::Cache => self.cache.as_ref(),
            SurfaceKind::Logs => self.logs.as_ref(),
        }
    }
}

/// The user's profiles file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilesFile {
    /// Where the file is (or would be: a missing file is an empty one).
    pub path: PathBuf,
    /// Whether the file exists.
    pub exists: bool,
    /// Declared profiles, in file order.
    pub profiles: Vec<Profile>,
}

impl ProfilesFile {
    /// The profiles file path: `$SPARKWING_PROFILES` verbatim, else
    /// `$XDG_CONFIG_HOME/sparkwing/profiles.yaml`, else `$HOME/.config/sparkwing/profiles.yaml`.
    /// Empty variables count as unset.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// use std::path::Path;
    /// use sparkwing_config::ProfilesFile;
    ///
    /// let env = |k: &str| (k == "HOME").then(|| OsString::from("/home/ada"));
    /// let path = ProfilesFile::path_from_env(&env).unwrap();
    /// assert_eq!(path, Path::new("/home/ada/.config/sparkwing/profiles.yaml"));
    /// ```
    pub fn path_from_env(env: EnvLookup<'_>) -> Result<PathBuf, ConfigError> {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(p) = var(vars::PROFILES) {
            return Ok(PathBuf::from(p));
        }
        if let Some(x) = var("XDG_CONFIG_HOME") {
            return Ok(PathBuf::from(x).join("sparkwing").join("profiles.yaml"));
        }
        if let Some(h) = var("HOME") {
            return Ok(PathBuf::from(h)
                .join(".config")
                .join("sparkwing")
                .join("profiles.yaml"));
        }
        Err(ConfigError::NoLocation {
            what: "the profiles file",
            vars: vec![vars::PROFILES, "XDG_CONFIG_HOME", "HOME"],
        })
    }

    /// Loads the profiles file named by the environment (see [`ProfilesFile::path_from_env`]);
    /// `~` in paths expands to `$HOME`.
    pub fn load(env: EnvLookup<'_>) -> Result<ProfilesFile, ConfigError> {
        let path = Self::path_from_env(env)?;
        let home = home_dir(env);
        Self::load_from(&path, home.as_deref())
    }

    /// Loads a profiles file; a missing file is an empty one.
    pub fn load_from(path: &Path, home: Option<&Path>) -> Result<ProfilesFile, ConfigError> {
        match crate::yaml::read_config(path)? {
            Some(src) => Self::parse(&src, path, home),
            None => Ok(ProfilesFile {
                path: path.to_path_buf(),
                exists: false,
                profiles: Vec::new(),
            }),
        }
    }

    /// Parses profiles-file text; `path` is used in messages only.
    pub fn parse(src: &str, path: &Path, home: Option<&Path>) -> Result<ProfilesFile, ConfigError> {
        let doc = Doc {
            src,
            file: path,
            home,
        };
        let root = doc.parse()?;
        let top = YPath::default();
        let mut profiles = Vec::new();
        if let Some(map) = doc.mapping(&root, &top, "the profiles file")? {
            for (key, v) in doc.keys(map, &top, "the profiles file", &["profiles"])? {
                debug_assert_eq!(key, "profiles");
                profiles = parse_profiles(&doc, v, &top.key("profiles"))?;
            }
        }
        Ok(ProfilesFile {
            path: path.to_path_buf(),
            exists: true,
            profiles,
        })
    }

    /// The profile with that name.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }
}

/// `$HOME`, for `~` expansion.
pub fn home_dir(env: EnvLookup<'_>) -> Option<PathBuf> {
    env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// Parses a `profiles:` mapping (same shape in both files).
pub(crate) fn parse_profiles(
    doc: &Doc<'_>,
    v: &Value,
    path: &YPath,
) -> Result<Vec<Profile>, ConfigError> {
    let Some(map) = doc.mapping(v, path, "`profiles`")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, body) in doc.keys(map, path, "`profiles`", &[])? {
        let ppath = path.key(&name);
        if let Err(e) = id::validate_segment(&name) {
            return Err(doc.err(
                &ppath,
                Target::Key,
                Problem::Invalid(format!("profile name is not usable: {e}")),
                Some("use letters, digits, `-` or `_`".to_owned()),
            ));
        }
        out.push(parse_profile(doc, &name, body, &ppath)?);
    }
    Ok(out)
}

fn parse_profile(
    doc: &Doc<'_>,
    name: &str,
    body: &Value,
    path: &YPath,
) -> Result<Profile, ConfigError> {
    let within = format!("profile `{name}`");
    let empty = Mapping::new();
    let map = doc.mapping(body, path, &within)?.unwrap_or(&empty);
    let mut profile = Profile {
        name: name.to_owned(),
        state: None,
        cache: None,
        logs: None,
        cache_read_only: false,
        cache_trusted_keys: Vec::new(),
    };
    for (key, v) in doc.keys(map, path, &within, &["state", "cache", "logs"])? {
        let kind = match key.as_str() {
            "state" => SurfaceKind::State,
            "cache" => SurfaceKind::Cache,
            _ => SurfaceKind::Logs,
        };
        let (surface, rules) = parse_surface(doc, kind, name, v, &path.key(&key))?;
        match kind {
            SurfaceKind::State => profile.state = Some(surface),
            SurfaceKind::Cache => {
                profile.cache = Some(surface);
                profile.cache_read_only = rules.read_only;
                profile.cache_trusted_keys = rules.trusted_keys;
            }
            SurfaceKind::Logs => profile.logs = Some(surface),
        }
    }
    if profile.state.is_none() && profile.cache.is_none() && profile.logs.is_none() {
        return Err(doc.err(
            path,
            Target::Key,
            Problem::Invalid(format!("profile `{name}` declares no surface")),
            Some(
                "declare at least one of `state`, `cache`, `logs`, or remove the profile"
                    .to_owned(),
            ),
        ));
    }
    Ok(profile)
}
