//! Turns `dashboard start` flags into a validated plan: where runs, logs and artifacts come from,
//! and whether writes are mounted. Nothing here touches the network.

use super::StartArgs;
use crate::error::CliError;
use sparkwing_config::{Resolved, Source, Surface, SurfaceKind};
use sparkwing_storage::{ArtifactStore, LogStore};
use std::net::SocketAddr;
use std::sync::Arc;

/// A validated `dashboard start`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub addr: SocketAddr,
    /// No write route is mounted (`--read-only`, or implied by `--no-local-store`).
    pub read_only: bool,
    /// Where runs are listed from.
    pub runs: crate::reader::Runs,
    pub logs: Option<Arc<dyn LogStore>>,
    /// The log store's directory when it is one on this machine: with local runs, the page's
    /// live view waits on file events there instead of polling.
    pub log_root: Option<std::path::PathBuf>,
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    /// `$SPARKWING_HOME`: pid file, log file, active-run markers.
    pub home: sparkwing_contract::Home,
    /// The profile that supplied the stores (`built-in` when none did).
    pub profile: String,
    /// Host names (lowercase, no port) answered besides loopback names and the bound address.
    pub allowed_hosts: Vec<String>,
}

impl Plan {
    /// Resolves the profile and the store flags, and opens the stores (no request is made).
    pub fn from_args(args: &StartArgs) -> Result<Plan, CliError> {
        let home = crate::home::sparkwing_home()?;
        if !(args.addr.ip().is_loopback() || args.read_only || args.no_local_store) {
            return Err(CliError::usage(format!(
                "`--addr {}` would let anyone who can reach this machine read every log and artifact and cancel runs: the dashboard has no authentication",
                args.addr
            ))
            .with_hint("bind to 127.0.0.1 (the default), or add `--read-only` to serve reads only on that address"));
        }
        let allowed_hosts = args
            .allowed_hosts
            .iter()
            .map(|h| allowed_host(h))
            .collect::<Result<Vec<_>, _>>()?;
        let profile = crate::profiles::resolve_here(args.profile.as_deref(), &home)?;
        let log_flag = args
            .log_store
            .as_deref()
            .map(|u| flag_surface("--log-store", u))
            .transpose()?;
        let art_flag = args
            .artifact_store
            .as_deref()
            .map(|u| flag_surface("--artifact-store", u))
            .transpose()?;

        let (logs, cache, runs) = if args.no_local_store {
            let logs = log_flag.or_else(|| declared(&profile, SurfaceKind::Logs));
            let cache = art_flag.or_else(|| declared(&profile, SurfaceKind::Cache));
            let (Some(logs), Some(cache)) = (logs, cache) else {
                return Err(CliError::usage(
                    "start the dashboard: `--no-local-store` needs both a log store and an artifact store",
                )
                .with_hint(
                    "pass `--log-store URL` and `--artifact-store URL`, or a `--profile NAME` whose `logs:` and `cache:` surfaces supply them",
                ));
            };
            // Without `--artifact-store`, dumps live where the runtime streams them.
            let dumps = match (&args.artifact_store, &profile.state) {
                (None, Surface::S3 { .. }) => profile.state.clone(),
                _ => cache.clone(),
            };
            let spec = dumps.spec_string();
            let store = sparkwing_storage::open_artifact_store(&spec).map_err(|e| {
                CliError::failure(format!("open the artifact store `{spec}`: {e}")).hinted(&e)
            })?;
            (Some(logs), Some(cache), crate::reader::Runs::bucket(store))
        } else {
            let db = crate::source::state_db_path(&profile, &home);
            let logs = log_flag.unwrap_or_else(|| profile.logs.clone());
            let cache = art_flag.unwrap_or_else(|| profile.cache.clone());
            (Some(logs), Some(cache), crate::reader::Runs::local(db))
        };

        let log_root = match &logs {
            Some(Surface::Filesystem { path }) => Some(path.clone()),
            _ => None,
        };
        let logs = match logs {
            // Logs that went to a console were never stored: show runs without logs.
            Some(Surface::Stdout) => None,
            Some(s) => Some(
                sparkwing_storage::open_log_store(&s.spec_string()).map_err(|e| {
                    CliError::failure(format!("open the log store `{}`: {e}", s.spec_string()))
                        .hinted(&e)
                })?,
            ),
            None => None,
        };
        let artifacts = match cache {
            Some(s) => Some(
                sparkwing_storage::open_artifact_store(&s.spec_string()).map_err(|e| {
                    CliError::failure(format!(
                        "open the artifact store `{}`: {e}",
                        s.spec_string()
                    ))
                    .hinted(&e)
                })?,
            ),
            None => None,
        };
        Ok(Plan {
            addr: args.addr,
            read_only: args.read_only || args.no_local_store,
            runs,
            logs,
            log_root,
            artifacts,
            home,
            profile: profile.name.clone(),
            allowed_hosts,
        })
    }
}

/// An `--allowed-host` value: a DNS name or an IP address, without scheme, port or path.
fn allowed_host(given: &str) -> Result<String, CliError> {
    let host = given.trim().to_ascii_lowercase();
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let ip_ok = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host)
        .parse::<std::net::IpAddr>()
        .is_ok();
    if let Ok(std::net::IpAddr::V6(ip)) = host.parse::<std::net::IpAddr>() {
        // As it appears in a `Host` header.
        return Ok(format!("[{ip}]"));
    }
    if name_ok || ip_ok {
        Ok(host)
    } else {
        Err(CliError::usage(format!(
            "`--allowed-host {}`: expected a host name or IP address",
            given.escape_debug()
        ))
        .with_hint("pass the name alone, as browsers send it: `--allowed-host dash.example.com` (no scheme, port or path)"))
    }
}

fn flag_surface(flag: &str, url: &str) -> Result<Surface, CliError> {
    Surface::from_store_url(url).map_err(|e| CliError::usage(format!("{flag}: {e}")).hinted(&e))
}

/// The surface only when a selected profile declares it (not a built-in default, not stdout):
/// `--no-local-store` must read what a CI machine wrote, never an empty local directory.
fn declared(profile: &Resolved, kind: SurfaceKind) -> Option<Surface> {
    if profile.source == Source::BuiltIn || profile.defaulted.contains(&kind) {
        return None;
    }
    match profile.surface(kind) {
        Surface::Stdout => None,
        s => Some(s.clone()),
    }
}
