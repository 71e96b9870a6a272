//! Which profile (set of storage surfaces) a command uses: `--profile`, else the project's
//! `defaults.profile`, else built-in laptop defaults.

use crate::error::{CliError, config_error};
use crate::project::env_lookup;
use sparkwing_config::{ProfilesFile, ProjectConfig, Resolved};
use sparkwing_contract::Home;

/// The profile a command uses.
pub type Effective = Resolved;

/// Resolves `--profile` → project `defaults.profile` → built-in defaults.
pub fn resolve(
    flag: Option<&str>,
    project: Option<&ProjectConfig>,
    home: &Home,
) -> Result<Effective, CliError> {
    let user = ProfilesFile::load(&env_lookup).map_err(config_error)?;
    sparkwing_config::resolve(flag, project, &user, home.path()).map_err(config_error)
}

/// Resolves `--profile` for a command run from the current directory. The project is optional:
/// outside a repository only user profiles and the built-in defaults apply.
pub fn resolve_here(flag: Option<&str>, home: &Home) -> Result<Effective, CliError> {
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
