//! `$SPARKWING_HOME` and the paths under it.

use crate::error::CliError;
use sparkwing_contract::env;
use std::path::PathBuf;

/// `$SPARKWING_HOME`, else `~/.sparkwing`.
pub fn sparkwing_home() -> Result<PathBuf, CliError> {
    if let Some(h) = std::env::var_os(env::HOME).filter(|h| !h.is_empty()) {
        let p = PathBuf::from(h);
        if p.is_relative() {
            let cwd = std::env::current_dir()
                .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?;
            return Ok(cwd.join(p));
        }
        return Ok(p);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".sparkwing")),
        None => Err(
            CliError::failure("neither `SPARKWING_HOME` nor `HOME` is set").with_hint(
                "set `SPARKWING_HOME` to the directory sparkwing should keep runs and caches in",
            ),
        ),
    }
}

/// The cargo target directory shared by every pipeline build on this machine.
pub fn cargo_target_dir(home: &std::path::Path) -> PathBuf {
    match std::env::var_os(env::CARGO_TARGET_DIR).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => home.join("cache").join("target"),
    }
}
