//! `sparkwing profile`: which profile resolves, and why.

use crate::cli::{Format, ProfileArgs};
use crate::error::{CliError, CliResult};
use sparkwing_config::{ConfigError, ProfilesFile, ProjectConfig, Resolved};
use std::path::Path;

/// The profile a command uses.
pub type Effective = Resolved;

/// Process environment as the config crate wants it.
pub fn env_lookup(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

/// Maps a config error to a usage error (exit 2); the message already carries `path:line:col`.
pub fn config_error(e: ConfigError) -> CliError {
    let text = e.to_string();
    match text.split_once("\nhint: ") {
        Some((msg, hint)) => CliError::usage(msg.to_string()).with_hint(hint.to_string()),
        None => CliError::usage(text),
    }
}

/// Resolves `--profile` → project `defaults.profile` → built-in defaults.
pub fn resolve(
    flag: Option<&str>,
    project: Option<&ProjectConfig>,
    home: &Path,
) -> Result<Effective, CliError> {
    let user = ProfilesFile::load(&env_lookup).map_err(config_error)?;
    sparkwing_config::resolve(flag, project, &user, home).map_err(config_error)
}

/// Resolves `--profile` for a command run from the current directory. The project is optional:
/// outside a repository only user profiles and the built-in defaults apply.
pub fn resolve_here(flag: Option<&str>, home: &Path) -> Result<Effective, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?;
    let project = match crate::project::find(&cwd) {
        Ok(p) => {
            ProjectConfig::load_optional(&p.config_path(), &env_lookup).map_err(config_error)?
        }
        Err(_) => None,
    };
    resolve(flag, project.as_ref(), home)
}

/// `sparkwing profile [--profile NAME] [-o pretty|json]`
pub fn execute(args: ProfileArgs) -> CliResult {
    let home = crate::home::sparkwing_home()?;
    let resolved = resolve_here(args.profile.as_deref(), &home)?;
    match args.output {
        Format::Pretty => print!("{}", sparkwing_config::render_pretty(&resolved)),
        Format::Json => crate::output::print_json(&sparkwing_config::to_json(&resolved))?,
    }
    Ok(0)
}
