//! `sparkwing dashboard start | stop | status`: a web page and JSON API over run records.
//!
//! The server reads the same records as `sparkwing runs`: local SQLite runs with the profile's
//! log and artifact stores, or, with `--no-local-store`, the `runs/<id>/state.ndjson` dumps of an
//! artifact store (read-only by construction).

mod api;
mod assets;
mod cancel;
mod daemon;
mod logs;
mod pidfiles;
mod plan;
mod port;
mod server;
mod state;

use crate::error::CliResult;
use clap::{Args, Subcommand};
use std::net::SocketAddr;

/// The address the dashboard binds unless `--addr` says otherwise (loopback only).
pub const DEFAULT_ADDR: &str = "127.0.0.1:4343";

#[derive(Debug, Subcommand)]
pub enum DashboardCommand {
    /// Start the dashboard (detached; prints its URL)
    Start(StartArgs),
    /// Stop a running dashboard
    Stop,
    /// Is a dashboard running, and where
    Status,
}

/// Flags of `sparkwing dashboard start`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Read logs and artifacts from this profile's `logs:` and `cache:` surfaces
    #[arg(long)]
    pub profile: Option<String>,
    /// Mount no write endpoint (cancel); every write request gets 405
    #[arg(long)]
    pub read_only: bool,
    /// Open no SQLite: list runs from `<artifact-store>/runs/*/state.ndjson` (read-only)
    #[arg(long)]
    pub no_local_store: bool,
    /// Log store URL (`fs:///abs/path`, `s3://bucket/prefix`); wins over `--profile`
    #[arg(long, value_name = "URL")]
    pub log_store: Option<String>,
    /// Artifact store URL (`fs:///abs/path`, `s3://bucket/prefix`); wins over `--profile`
    #[arg(long, value_name = "URL")]
    pub artifact_store: Option<String>,
    /// Address to bind
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Also answer requests whose `Host` names HOST (repeatable); loopback names and the bound
    /// address are always answered
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Serve in this process instead of detaching (containers, tests)
    #[arg(long, hide = true)]
    pub foreground: bool,
}

/// Runs a `sparkwing dashboard` subcommand.
pub fn execute(cmd: DashboardCommand) -> CliResult {
    match cmd {
        DashboardCommand::Start(args) => {
            let plan = plan::Plan::from_args(&args)?;
            if args.foreground {
                server::serve_foreground(plan)
            } else {
                daemon::start(&args, &plan)
            }
        }
        DashboardCommand::Stop => daemon::stop(),
        DashboardCommand::Status => daemon::status(),
    }
}
