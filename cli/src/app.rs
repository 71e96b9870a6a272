//! Entry point behind `main`: parse, dispatch, map errors to exit codes. Only `main` exits.

use crate::cli::{Cli, Command};
use crate::commands;
use crate::error::CliError;
use clap::Parser;

/// Runs the CLI and returns the process exit code.
pub fn main_impl() -> i32 {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Run { args } => crate::run::execute(&args),
        Command::Pipeline(cmd) => commands::pipeline::execute(cmd),
        Command::Runs(cmd) => commands::runs::execute(cmd),
        Command::Cache(cmd) => commands::cache::execute(cmd),
        Command::Profile(args) => commands::profile::execute(args),
        Command::Doctor(args) => commands::doctor::execute(args),
        Command::Dashboard(cmd) => crate::dashboard::execute(cmd),
        Command::Completions { shell } => commands::completions::execute(shell),
        Command::SdkFiles => {
            for rel in crate::sdk::embedded_paths() {
                println!("{rel}");
            }
            Ok(sparkwing_contract::exit::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

fn report(e: &CliError) -> i32 {
    eprintln!("{e}");
    e.exit_code()
}

/// Diagnostics for sparkwing itself go to stderr, filtered by `RUST_LOG` (default: warnings).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}
