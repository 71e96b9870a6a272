//! The project file, `.sparkwing/sparkwing.yaml`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_norway::Value;
use sparkwing_contract::id;

use crate::error::{ConfigError, Problem};
use crate::profile::{EnvLookup, Profile, home_dir, parse_profiles};
use crate::yaml::{Doc, Target, YPath};

/// The project file's path relative to the repository root.
pub const PROJECT_FILE: &str = ".sparkwing/sparkwing.yaml";

/// A pipeline the project offers (`pipelines:` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineEntry {
    /// What users type after `sparkwing run`.
    pub name: String,
    /// The pipeline in the project's code that runs for this name.
    pub entrypoint: String,
    /// One line for `sparkwing pipeline list`.
    pub description: Option<String>,
    /// Left out of listings (still runnable by name).
    pub hidden: bool,
}

/// A pipeline library crate the project's pipelines depend on (`sparks:` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spark {
    /// The crate's name on crates.io.
    pub name: String,
    /// A Cargo version requirement as written, e.g. `^0.3` or `>=1.2, <2`.
    pub version: String,
    /// The parsed requirement.
    pub requirement: semver::VersionReq,
}

/// `.sparkwing/sparkwing.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// `defaults.profile`: a profile declared in [`ProjectConfig::profiles`].
    pub default_profile: Option<String>,
    /// Project profiles, in file order.
    pub profiles: Vec<Profile>,
    /// Declared pipelines, in file order.
    pub pipelines: Vec<PipelineEntry>,
    /// Declared sparks, in file order.
    pub sparks: Vec<Spark>,
}

impl ProjectConfig {
    /// Loads the project file at `path`; a missing file is an error that says how to create one.
    /// `~` in paths expands to `$HOME` from `env`.
    pub fn load(path: &Path, env: EnvLookup<'_>) -> Result<ProjectConfig, ConfigError> {
        Self::load_optional(path, env)?.ok_or_else(|| ConfigError::Missing {
            path: path.to_path_buf(),
            hint: Some(
                "run `sparkwing pipeline new --name NAME` in the repository root to create `.sparkwing/`"
                    .to_owned(),
            ),
        })
    }

    /// Loads the project file at `path`, or `None` when it does not exist.
    pub fn load_optional(
        path: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Option<ProjectConfig>, ConfigError> {
        crate::yaml::read_config(path)?
            .map(|src| Self::parse(&src, path, home_dir(env).as_deref()))
            .transpose()
    }

    /// Parses project-file text; `path` is used in messages only, `home` expands `~`.
    ///
    /// ```
    /// use std::path::Path;
    /// use sparkwing_config::ProjectConfig;
    ///
    /// let src = "pipelines:\n  - name: build\n    entrypoint: Build\n";
    /// let cfg = ProjectConfig::parse(src, Path::new("/repo/.sparkwing/sparkwing.yaml"), None).unwrap();
    /// assert_eq!(cfg.pipelines[0].entrypoint, "Build");
    ///
    /// let bad = "pipelines:\n  - name: build\n    colour: red\n";
    /// let err = ProjectConfig::parse(bad, Path::new("/repo/.sparkwing/sparkwing.yaml"), None).unwrap_err();
    /// assert!(err.to_string().starts_with("/repo/.sparkwing/sparkwing.yaml:3:5: unknown key `colour`"));
    /// ```
    pub fn parse(
        src: &str,
        path: &Path,
        home: Option<&Path>,
    ) -> Result<ProjectConfig, ConfigError> {
        let doc = Doc {
            src,
            file: path,
            home,
        };
        let root = doc.parse()?;
        let top = YPath::default();
        let mut cfg = ProjectConfig {
            path: path.to_path_buf(),
            default_profile: None,
            profiles: Vec::new(),
            pipelines: Vec::new(),
            sparks: Vec::new(),
        };
        let Some(map) = doc.mapping(&root, &top, "the project file")? else {
            return Ok(cfg);
        };
        let entries = doc.keys(
            map,
            &top,
            "the project file",
            &["defaults", "profiles", "pipelines", "sparks"],
        )?;
        // Profiles first: `defaults.profile` is checked against them wherever it is written.
        for (key, v) in &entries {
            if key == "profiles" {
                cfg.profiles = parse_profiles(&doc, v, &top.key("profiles"))?;
            }
        }
        for (key, v) in &entries {
            let path = top.key(key);
            match key.as_str() {
                "defaults" => cfg.default_profile = parse_defaults(&doc, v, &path, &cfg.profiles)?,
                "pipelines" => cfg.pipelines = parse_pipelines(&doc, v, &path)?,
                "sparks" => cfg.sparks = parse_sparks(&doc, v, &path)?,
                _ => {}
            }
        }
        Ok(cfg)
    }

    /// The project profile with that name.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The pipeline entry with that name.
    pub fn pipeline(&self, name: &str) -> Option<&PipelineEntry> {
        self.pipelines.iter().find(|p| p.name == name)
    }
}

fn parse_defaults(
    doc: &Doc<'_>,
    v: &Value,
    path: &YPath,
    profiles: &[Profile],
) -> Result<Option<String>, ConfigError> {
    let Some(map) = doc.mapping(v, path, "`defaults`")? else {
        return Ok(None);
    };
    let mut default = None;
    for (_, v) in doc.keys(map, path, "`defaults`", &["profile"])? {
        let p = path.key("profile");
        let name = doc.string(v, &p, "`defaults.profile`")?;
        if !profiles.iter().any(|pr| pr.name == name) {
            let declared: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
            let hint = if declared.is_empty() {
                format!(
                    "declare `{name}` under `profiles:` in this file, or remove `defaults.profile`"
                )
            } else {
                format!(
                    "name one of the declared profiles, or declare `{name}` under `profiles:` in this file (a default cannot name a user profile)"
                )
            };
            return Err(doc.err(
                &p,
                Target::Value,
                Problem::UndeclaredDefault { name, declared },
                Some(hint),
            ));
        }
        default = Some(name);
    }
    Ok(default)
}

const PIPELINE_KEYS: &[&str] = &["name", "entrypoint", "description", "hidden"];
const SPARK_KEYS: &[&str] = &["name", "version"];

fn parse_pipelines(
    doc: &Doc<'_>,
    v: &Value,
    path: &YPath,
) -> Result<Vec<PipelineEntry>, ConfigError> {
    let items = doc.sequence(v, path, "`pipelines`")?;
    let mut out: Vec<PipelineEntry> = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let ip = path.index(i);
        let within = "a pipeline entry";
        let map = match doc.mapping(item, &ip, within)? {
            Some(m) => m,
            None => return Err(doc.wrong_type(&ip, within, "a mapping", item)),
        };
        let entries = doc.keys(map, &ip, within, PIPELINE_KEYS)?;
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let required = |k: &'static str| {
            get(k).ok_or_else(|| {
                doc.err(
                    &ip,
                    Target::Value,
                    Problem::MissingKey {
                        key: k,
                        within: within.to_owned(),
                        because: None,
                    },
                    Some("every pipeline entry needs `name` and `entrypoint`".to_owned()),
                )
            })
        };
        let name_v = required("name")?;
        let np = ip.key("name");
        let name = doc.string(name_v, &np, "`name` in a pipeline entry")?;
        if let Err(e) = id::validate_segment(&name) {
            return Err(doc.err(
                &np,
                Target::Value,
                Problem::Invalid(format!("pipeline name is not usable: {e}")),
                None,
            ));
        }
        if name.starts_with('-') || name.chars().any(char::is_whitespace) {
            return Err(doc.err(
                &np,
                Target::Value,
                Problem::Invalid(format!(
                    "pipeline name `{name}` starts with `-` or contains whitespace, so it cannot be typed after `sparkwing run`"
                )),
                None,
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(doc.err(
                &np,
                Target::Value,
                Problem::Invalid(format!("duplicate pipeline name `{name}`")),
                Some("each entry under `pipelines:` needs its own name".to_owned()),
            ));
        }
        let ep = ip.key("entrypoint");
        let entrypoint = doc.string(
            required("entrypoint")?,
            &ep,
            "`entrypoint` in a pipeline entry",
        )?;
        if entrypoint.trim().is_empty() {
            return Err(doc.err(
                &ep,
                Target::Value,
                Problem::Invalid(format!("empty `entrypoint` for pipeline `{name}`")),
                None,
            ));
        }
        let description = get("description")
            .map(|v| {
                doc.string(
                    v,
                    &ip.key("description"),
                    "`description` in a pipeline entry",
                )
            })
            .transpose()?;
        let hidden = get("hidden")
            .map(|v| doc.boolean(v, &ip.key("hidden"), "`hidden` in a pipeline entry"))
            .transpose()?
            .unwrap_or(false);
        out.push(PipelineEntry {
            name,
            entrypoint,
            description,
            hidden,
        });
    }
    Ok(out)
}

fn parse_sparks(doc: &Doc<'_>, v: &Value, path: &YPath) -> Result<Vec<Spark>, ConfigError> {
    let items = doc.sequence(v, path, "`sparks`")?;
    let mut out = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let ip = path.index(i);
        let within = "a spark entry";
        let map = match doc.mapping(item, &ip, within)? {
            Some(m) => m,
            None => return Err(doc.wrong_type(&ip, within, "a mapping", item)),
        };
        let entries = doc.keys(map, &ip, within, SPARK_KEYS)?;
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let missing = |k: &'static str| {
            doc.err(
                &ip,
                Target::Value,
                Problem::MissingKey {
                    key: k,
                    within: within.to_owned(),
                    because: None,
                },
                Some("write a spark as `{ name: <crate>, version: \"<requirement>\" }`".to_owned()),
            )
        };
        let np = ip.key("name");
        let name = doc.string(
            get("name").ok_or_else(|| missing("name"))?,
            &np,
            "`name` in a spark entry",
        )?;
        if let Some(why) = bad_crate_name(&name) {
            return Err(doc.err(
                &np,
                Target::Value,
                Problem::Invalid(format!(
                    "spark name `{}` is not a crate name: {why}",
                    name.escape_debug()
                )),
                None,
            ));
        }
        // Cargo treats `-` and `_` in crate names as the same name.
        if !seen.insert(name.replace('_', "-")) {
            return Err(doc.err(
                &np,
                Target::Value,
                Problem::Invalid(format!("duplicate spark `{name}`")),
                Some("list each crate once".to_owned()),
            ));
        }
        let vp = ip.key("version");
        let version = doc.string(
            get("version").ok_or_else(|| missing("version"))?,
            &vp,
            "`version` in a spark entry",
        )?;
        let requirement = semver::VersionReq::parse(&version).map_err(|e| {
            doc.err(
                &vp,
                Target::Value,
                Problem::Invalid(format!(
                    "version `{}` of spark `{name}` is not a Cargo version requirement: {e}",
                    version.escape_debug()
                )),
                Some(
                    "write a requirement such as `\"^0.3\"`, `\"~1.2\"` or `\">=1.0, <2\"`"
                        .to_owned(),
                ),
            )
        })?;
        out.push(Spark {
            name,
            version,
            requirement,
        });
    }
    Ok(out)
}

/// Cargo's rules for a crate name on crates.io.
fn bad_crate_name(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("it is empty"),
        Some(c) if !c.is_ascii_alphabetic() => Some("it must start with an ASCII letter"),
        _ if name.len() > 64 => Some("it is longer than 64 characters"),
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            Some("only ASCII letters, digits, `-` and `_` are allowed")
        }
        _ => None,
    }
}
