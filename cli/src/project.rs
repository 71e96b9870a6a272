//! Finding the `.sparkwing/` package a command works on.

use crate::error::{CliError, config_error};
use sparkwing_config::ProjectConfig;
use std::path::{Path, PathBuf};

/// A repository that holds a `.sparkwing/` package.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding `.sparkwing/` (the pipelines' working directory).
    pub root: PathBuf,
    /// The `.sparkwing/` package itself.
    pub sparkwing_dir: PathBuf,
}

impl Project {
    /// `.sparkwing/sparkwing.yaml`.
    pub fn config_path(&self) -> PathBuf {
        self.sparkwing_dir.join("sparkwing.yaml")
    }
}

/// Walks up from `start` to the first directory containing `.sparkwing/Cargo.toml`.
pub fn find(start: &Path) -> Result<Project, CliError> {
    let start = if start.is_absolute() {
        start.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?
            .join(start)
    };
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        let candidate = d.join(".sparkwing");
        if candidate.join("Cargo.toml").is_file() {
            return Ok(Project {
                root: d.to_path_buf(),
                sparkwing_dir: candidate,
            });
        }
        dir = d.parent();
    }
    Err(CliError::usage(format!(
        "no `.sparkwing/` package found in `{}` or any parent directory (looked for `.sparkwing/Cargo.toml`)",
        start.display()
    ))
    .with_hint("create one with `sparkwing pipeline new --name NAME` in your repository, or run from inside it"))
}

/// Process environment as the config crate wants it.
pub fn env_lookup(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

/// Reads `.sparkwing/sparkwing.yaml` (errors carry `path:line:col`).
pub fn load_config(project: &Project) -> Result<ProjectConfig, CliError> {
    ProjectConfig::load(&project.config_path(), &env_lookup).map_err(config_error)
}

/// Unknown pipeline → usage error that lists the known ones.
pub fn check_pipeline_known(
    project: &Project,
    config: &ProjectConfig,
    name: &str,
) -> Result<(), CliError> {
    if config.pipeline(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = config
        .pipelines
        .iter()
        .filter(|p| !p.hidden)
        .map(|p| p.name.as_str())
        .collect();
    let listing = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    Err(CliError::usage(format!(
        "unknown pipeline `{}`; `{}` declares: {listing}",
        name.escape_debug(),
        project.config_path().display()
    ))
    .with_hint("`sparkwing pipeline list` shows the pipelines; `sparkwing pipeline new --name NAME` adds one"))
}

/// The name the binary registers for a declared pipeline (its `entrypoint`).
pub fn entrypoint<'a>(config: &'a ProjectConfig, name: &'a str) -> &'a str {
    config
        .pipeline(name)
        .map(|p| p.entrypoint.as_str())
        .unwrap_or(name)
}
