//! Finding the `.sparkwing/` package a command works on.

use crate::error::CliError;
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
