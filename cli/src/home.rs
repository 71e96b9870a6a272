//! `$SPARKWING_HOME`, resolved by the contract's one rule (`sparkwing_contract::Home`).

use crate::error::CliError;
use sparkwing_contract::{Home, env};
use std::path::PathBuf;

/// `$SPARKWING_HOME` (`~` expanded, relative taken from the current directory), else
/// `~/.sparkwing`.
pub fn sparkwing_home() -> Result<Home, CliError> {
    Home::from_env().map_err(|e| {
        CliError::failure(e.to_string()).with_hint(
            "set `SPARKWING_HOME` to the directory sparkwing should keep runs and caches in",
        )
    })
}

/// The cargo target directory shared by every pipeline build on this machine:
/// `SPARKWING_CARGO_TARGET_DIR`, else `$SPARKWING_HOME/cache/target`.
pub fn cargo_target_dir(home: &Home) -> PathBuf {
    match std::env::var_os(env::CARGO_TARGET_DIR).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => home.default_cargo_target(),
    }
}
