//! What the supervisor tells the child through the environment, parsed and validated before the
//! run touches disk.

use crate::invocation::{CiInfo, ci_info};
use sparkwing_contract::{RunId, env};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How the console shows a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Coloured per-node view (the default on a terminal).
    Pretty,
    /// The same view without colour (the default when stdout is not a terminal).
    Plain,
    /// One `LogRecord` JSON object per line.
    Json,
}

/// A setting that could not be read. A usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error(
        "read `{name}`: `{value}` is not an integer ≥ 1\n  hint: set it to the number of jobs that may run at once, e.g. `2`"
    )]
    Workers { name: &'static str, value: String },
    #[error("read `{name}`: `{value}` is not one of `pretty`, `plain`, `json`")]
    LogFormat { name: &'static str, value: String },
    #[error("read `{name}`: `{value}` is not a number of milliseconds")]
    Grace { name: &'static str, value: String },
    #[error("read `{name}`: `{value}` is not a mode; valid modes: `local`, `ci-embedded`")]
    Mode { name: &'static str, value: String },
    #[error("read `{name}`: {reason}")]
    Backends { name: &'static str, reason: String },
    #[error("read `{name}`: {source}")]
    RunId {
        name: &'static str,
        #[source]
        source: sparkwing_contract::IdError,
    },
    #[error("read `{name}`: {reason}")]
    Shard { name: &'static str, reason: String },
    #[error("find the sparkwing home: neither `{name}` nor `HOME` is set")]
    NoHome { name: &'static str },
    #[error("read the working directory: {0}")]
    Cwd(std::io::Error),
}

/// The storage surfaces (`SPARKWING_BACKENDS`), each a spec string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backends {
    pub state: String,
    pub logs: String,
    pub cache: String,
    /// Every key the supervisor sent, for the run record.
    pub all: BTreeMap<String, String>,
}

/// Variables whose values are masked in every sink even when `SPARKWING_SECRET_ENV` leaves
/// them out.
const ALWAYS_SECRET: &[&str] = &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

/// The child's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub mode: sparkwing_contract::env::Mode,
    /// Where the supervisor took `mode` from (`flag`, `env`, `default`); empty without one.
    pub mode_from: String,
    pub workers: usize,
    /// Where the supervisor took `workers` from; empty without one.
    pub workers_from: String,
    pub run_id: RunId,
    pub home: sparkwing_contract::Home,
    pub profile: String,
    pub backends: Backends,
    pub work_dir: PathBuf,
    pub binary_source: String,
    pub log_format: LogFormat,
    pub kill_grace: Duration,
    /// How often a held-back CI console says which jobs run ([`env::PROGRESS_MS`]); `None` is off.
    pub progress_every: Option<Duration>,
    /// Values of the variables named in `SPARKWING_SECRET_ENV`.
    pub secrets: Vec<String>,
    /// What the CI environment tells about the job (empty outside CI).
    pub ci: CiInfo,
    /// The supervisor's relay: socket path and token ([`env::RELAY`]); `None` when the binary
    /// runs on its own.
    pub relay: Option<(PathBuf, String)>,
    /// This process's shard of a run split across CI jobs ([`env::SHARD`], `I/N`); `None` runs
    /// every job.
    pub shard: Option<sparkwing_contract::shard::Shard>,
    /// How often a running run rewrites its state in a bucket ([`env::HEARTBEAT_MS`]).
    pub heartbeat: Duration,
}

/// Default grace between SIGTERM and SIGKILL for a node's process group.
const DEFAULT_GRACE: Duration = Duration::from_millis(2000);
/// Default of [`env::PROGRESS_MS`].
const DEFAULT_PROGRESS: Duration = Duration::from_secs(30);

impl Settings {
    /// Whether the console folds each node's lines into a CI group: only in `ci-embedded` mode,
    /// on a vendor whose console has groups, and not in JSON format (machines read that).
    pub fn console_grouping(&self) -> Option<crate::log::Grouping> {
        if self.mode != sparkwing_contract::env::Mode::CiEmbedded
            || self.log_format == LogFormat::Json
        {
            return None;
        }
        self.ci.console_groups()
    }

    /// Reads the settings through `get` (the process environment in production).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let nonempty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let workers = match nonempty(env::WORKERS) {
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(SettingsError::Workers {
                        name: env::WORKERS,
                        value: v,
                    });
                }
            },
        };
        let run_id = match nonempty(env::RUN_ID) {
            None => RunId::generate(),
            Some(v) => RunId::parse(v.trim()).map_err(|source| SettingsError::RunId {
                name: env::RUN_ID,
                source,
            })?,
        };
        let home = sparkwing_contract::Home::resolve(
            &|k| get(k).map(std::ffi::OsString::from),
            &std::env::current_dir,
        )
        .map_err(|e| match e {
            sparkwing_contract::HomeError::NotSet => SettingsError::NoHome { name: env::HOME },
            sparkwing_contract::HomeError::Cwd(e) => SettingsError::Cwd(e),
        })?;
        let work_dir = match nonempty(env::WORK_DIR) {
            Some(d) => PathBuf::from(d),
            None => std::env::current_dir().map_err(SettingsError::Cwd)?,
        };
        let log_format = match nonempty(env::LOG_FORMAT).as_deref().map(str::trim) {
            None => {
                use std::io::IsTerminal;
                if std::io::stdout().is_terminal() {
                    LogFormat::Pretty
                } else {
                    LogFormat::Plain
                }
            }
            Some("pretty") => LogFormat::Pretty,
            Some("plain") => LogFormat::Plain,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(SettingsError::LogFormat {
                    name: env::LOG_FORMAT,
                    value: other.into(),
                });
            }
        };
        let kill_grace = match nonempty(env::KILL_GRACE_MS) {
            None => DEFAULT_GRACE,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| SettingsError::Grace {
                    name: env::KILL_GRACE_MS,
                    value: v,
                })?,
        };
        let progress_every = match nonempty(env::PROGRESS_MS) {
            None => Some(DEFAULT_PROGRESS),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(ms) => Some(Duration::from_millis(ms)),
                Err(_) => {
                    return Err(SettingsError::Grace {
                        name: env::PROGRESS_MS,
                        value: v,
                    });
                }
            },
        };
        // The storage credentials every job inherits are secrets whether or not the user lists
        // them: a job running `env` or `set -x` must not write them into the bucket it logs to.
        let secrets = nonempty(env::SECRET_ENV)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .chain(ALWAYS_SECRET.iter().copied())
            .filter_map(&get)
            .filter(|v| !v.is_empty())
            .collect();
        let backends = parse_backends(nonempty(env::BACKENDS).as_deref(), &home)?;
        let shard = match nonempty(env::SHARD) {
            None => None,
            Some(v) => Some(
                sparkwing_contract::shard::Shard::parse(&v).map_err(|reason| {
                    SettingsError::Shard {
                        name: env::SHARD,
                        reason,
                    }
                })?,
            ),
        };
        let heartbeat = match nonempty(env::HEARTBEAT_MS) {
            None => sparkwing_contract::record::HEARTBEAT_INTERVAL,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms >= 100 => Duration::from_millis(ms),
                _ => {
                    return Err(SettingsError::Shard {
                        name: env::HEARTBEAT_MS,
                        reason: format!(
                            "`{}` is not a number of milliseconds ≥ 100",
                            v.escape_debug()
                        ),
                    });
                }
            },
        };
        Ok(Settings {
            shard,
            heartbeat,
            mode: match nonempty(env::MODE) {
                None => env::Mode::Local,
                Some(v) => env::Mode::parse(&v).ok_or(SettingsError::Mode {
                    name: env::MODE,
                    value: v,
                })?,
            },
            mode_from: get(env::MODE_FROM).unwrap_or_default(),
            workers,
            workers_from: get(env::WORKERS_FROM).unwrap_or_default(),
            run_id,
            home,
            profile: get(env::PROFILE).unwrap_or_default(),
            backends,
            work_dir,
            binary_source: get(env::BINARY_SOURCE).unwrap_or_default(),
            log_format,
            kill_grace,
            progress_every,
            secrets,
            ci: ci_info(&get),
            relay: nonempty(env::RELAY)
                .map(|p| (PathBuf::from(p), get(env::RELAY_TOKEN).unwrap_or_default())),
        })
    }
}

fn parse_backends(
    json: Option<&str>,
    home: &sparkwing_contract::Home,
) -> Result<Backends, SettingsError> {
    let mut all: BTreeMap<String, String> = match json {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| SettingsError::Backends {
            name: env::BACKENDS,
            reason: format!("expected a JSON object of spec strings: {e}"),
        })?,
    };
    let (state, logs, cache) = sparkwing_contract::surfaces::built_in_specs(home);
    for (k, v) in [("state", state), ("logs", logs), ("cache", cache)] {
        all.entry(k.to_string()).or_insert(v);
    }
    Ok(Backends {
        state: all["state"].clone(),
        logs: all["logs"].clone(),
        cache: all["cache"].clone(),
        all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_fill_in_what_the_supervisor_did_not_send() {
        let s = settings(&[("HOME", "/home/u"), (env::WORK_DIR, "/repo")]).unwrap();
        assert_eq!(s.home.path(), std::path::Path::new("/home/u/.sparkwing"));
        assert_eq!(s.backends.state, "sqlite:/home/u/.sparkwing/state.db");
        assert!(s.workers >= 1);
        assert_eq!(s.mode, env::Mode::Local);
        assert_eq!(s.backends.logs, "filesystem:/home/u/.sparkwing/runs");
        assert_eq!(s.backends.cache, "filesystem:/home/u/.sparkwing/artifacts");
        assert_eq!(s.kill_grace, DEFAULT_GRACE);
        assert!(RunId::parse(s.run_id.as_str()).is_ok());
    }

    #[test]
    fn an_unknown_mode_is_an_error_naming_the_valid_ones() {
        let e = settings(&[(env::HOME, "/h"), (env::MODE, "fast")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "read `SPARKWING_MODE`: `fast` is not a mode; valid modes: `local`, `ci-embedded`"
        );
        let s = settings(&[(env::HOME, "/h"), (env::MODE, "ci-embedded")]).unwrap();
        assert_eq!(s.mode, env::Mode::CiEmbedded);
    }

    #[test]
    fn workers_must_be_a_positive_integer() {
        for bad in ["0", "-1", "two", "1.5"] {
            let e = settings(&[(env::HOME, "/h"), (env::WORKERS, bad)]).unwrap_err();
            assert!(e.to_string().contains("integer ≥ 1"), "{e}");
        }
        let s = settings(&[(env::HOME, "/h"), (env::WORKERS, "3")]).unwrap();
        assert_eq!(s.workers, 3);
    }

    #[test]
    fn secrets_come_from_the_named_variables() {
        let s = settings(&[
            (env::HOME, "/h"),
            (env::SECRET_ENV, "TOKEN, EMPTY,MISSING"),
            ("TOKEN", "abcdef"),
            ("EMPTY", ""),
        ])
        .unwrap();
        assert_eq!(s.secrets, ["abcdef"]);
        let s = settings(&[
            (env::HOME, "/h"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3tkey"),
            ("AWS_ACCESS_KEY_ID", "AKIDPUBLIC"),
        ])
        .unwrap();
        assert_eq!(
            s.secrets,
            ["s3cr3tkey"],
            "storage credentials are always masked"
        );
    }

    #[test]
    fn backends_json_overrides_defaults() {
        let s = settings(&[
            (env::HOME, "/h"),
            (
                env::BACKENDS,
                r#"{"logs":"filesystem:/l","state":"sqlite"}"#,
            ),
        ])
        .unwrap();
        assert_eq!(s.backends.logs, "filesystem:/l");
        assert_eq!(s.backends.cache, "filesystem:/h/artifacts");
        assert!(settings(&[(env::HOME, "/h"), (env::BACKENDS, "[1]")]).is_err());
    }
}
