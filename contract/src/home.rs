//! `$SPARKWING_HOME` and everything sparkwing keeps under it, resolved one way for every process.
//!
//! ```text
//! $SPARKWING_HOME/                 (default ~/.sparkwing)
//!   state.db                        local run records (SQLite)
//!   runs/<run>/<node>/<part>        local log parts (the built-in logs surface)
//!   artifacts/                      the built-in cache surface (artifacts, state dumps)
//!   spool/<run>/                    what a run could not deliver yet
//!   active/<run>.json               the marker of a local run whose processes live
//!   cache/pipelines/v1/             the pipeline binary cache
//!   cache/target/                   cargo's target directory for pipeline builds
//!   cache/inputs/<pipeline>/<job>.json  the last result of a job with declared inputs
//!   dashboard.pid|addr|log          a running dashboard
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The sparkwing home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

/// Neither `SPARKWING_HOME` nor `HOME` tells where the home is.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("locate the sparkwing home: neither `SPARKWING_HOME` nor `HOME` is set")]
    NotSet,
    #[error(
        "locate the sparkwing home: `SPARKWING_HOME` is relative and the current directory cannot be read: {0}"
    )]
    Cwd(#[source] std::io::Error),
}

impl Home {
    /// A home at exactly `root`.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// `SPARKWING_HOME` when set and non-empty — `~` and `~/…` expand against `HOME`, a relative
    /// path is taken from the current directory — else `$HOME/.sparkwing`.
    pub fn resolve(
        get: &dyn Fn(&str) -> Option<OsString>,
        cwd: &dyn Fn() -> std::io::Result<PathBuf>,
    ) -> Result<Home, HomeError> {
        let home_dir = get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        if let Some(sw) = get(crate::env::HOME).filter(|v| !v.is_empty()) {
            let sw = PathBuf::from(sw);
            if let (Ok(rest), Some(h)) = (sw.strip_prefix("~"), home_dir.as_deref()) {
                return Ok(Home::at(h.join(rest)));
            }
            if sw.is_relative() {
                return Ok(Home::at(cwd().map_err(HomeError::Cwd)?.join(sw)));
            }
            return Ok(Home::at(sw));
        }
        home_dir
            .map(|h| Home::at(h.join(".sparkwing")))
            .ok_or(HomeError::NotSet)
    }

    /// [`Home::resolve`] with the process environment and current directory.
    pub fn from_env() -> Result<Home, HomeError> {
        Home::resolve(&|k| std::env::var_os(k), &std::env::current_dir)
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `state.db`: the local run record.
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// `runs/`: the built-in logs surface.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// `artifacts/`: the built-in cache surface.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// `spool/<run>/`: what a run could not deliver yet.
    pub fn spool_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("spool").join(run_id)
    }

    /// `active/<run>.json`: the marker of a local run whose processes live.
    pub fn active_marker(&self, run_id: &str) -> PathBuf {
        self.root.join("active").join(format!("{run_id}.json"))
    }

    /// `cache/pipelines/v1/`: the pipeline binary cache.
    pub fn pipeline_cache(&self) -> PathBuf {
        self.root.join("cache").join("pipelines").join("v1")
    }

    /// `cache/target/`: cargo's target directory for pipeline builds, unless
    /// `SPARKWING_CARGO_TARGET_DIR` names another.
    pub fn default_cargo_target(&self) -> PathBuf {
        self.root.join("cache").join("target")
    }

    /// `cache/inputs/<pipeline>/`: the last successful result of each job of `pipeline` that
    /// declares its inputs, kept so that a later run reuses it while those inputs are unchanged.
    pub fn job_inputs_dir(&self, pipeline: &str) -> PathBuf {
        self.root.join("cache").join("inputs").join(pipeline)
    }

    /// `dashboard.<ext>` (`pid`, `addr`, `log`).
    pub fn dashboard_file(&self, ext: &str) -> PathBuf {
        self.root.join(format!("dashboard.{ext}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(vars: &[(&str, &str)]) -> Result<Home, HomeError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Home::resolve(
            &move |k| {
                vars.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| OsString::from(v))
            },
            &|| Ok(PathBuf::from("/work")),
        )
    }

    #[test]
    fn one_rule_for_every_spelling() {
        let h = |v: &[(&str, &str)]| resolve(v).unwrap().path().to_path_buf();
        assert_eq!(
            h(&[("HOME", "/home/ada")]),
            Path::new("/home/ada/.sparkwing")
        );
        assert_eq!(
            h(&[("HOME", "/home/ada"), ("SPARKWING_HOME", "~/sw")]),
            Path::new("/home/ada/sw")
        );
        assert_eq!(
            h(&[("HOME", "/home/ada"), ("SPARKWING_HOME", "~")]),
            Path::new("/home/ada")
        );
        assert_eq!(
            h(&[("SPARKWING_HOME", "rel/sw")]),
            Path::new("/work/rel/sw")
        );
        assert_eq!(h(&[("SPARKWING_HOME", "/abs")]), Path::new("/abs"));
        assert_eq!(
            h(&[("HOME", "/home/ada"), ("SPARKWING_HOME", "")]),
            Path::new("/home/ada/.sparkwing"),
            "empty counts as unset"
        );
        assert!(matches!(resolve(&[]), Err(HomeError::NotSet)));
    }

    #[test]
    fn layout() {
        let h = Home::at("/h");
        assert_eq!(h.state_db(), Path::new("/h/state.db"));
        assert_eq!(h.active_marker("run-1"), Path::new("/h/active/run-1.json"));
        assert_eq!(h.pipeline_cache(), Path::new("/h/cache/pipelines/v1"));
        assert_eq!(h.spool_dir("run-1"), Path::new("/h/spool/run-1"));
        assert_eq!(h.dashboard_file("pid"), Path::new("/h/dashboard.pid"));
    }
}
