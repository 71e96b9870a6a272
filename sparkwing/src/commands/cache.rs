//! `sparkwing cache info | explain | prune`.

use crate::cli::{CacheCommand, Format};
use crate::error::{CliError, CliResult};
use crate::run::binary::{BuildContext, open_cache};
use sparkwing_bincache::{PruneOpts, render_explain, render_info, render_prune};

pub fn execute(cmd: CacheCommand) -> CliResult {
    let home = crate::home::sparkwing_home()?;
    match cmd {
        CacheCommand::Info { output } => {
            let cache = open_cache(&home)?;
            let info = cache
                .info()
                .map_err(|e| CliError::failure(format!("read the pipeline cache: {e}")))?;
            match output {
                Format::Pretty => print!("{}", render_info(&info)),
                Format::Json => crate::output::print_json(
                    &serde_json::to_value(&info)
                        .map_err(|e| CliError::failure(format!("encode cache info: {e}")))?,
                )?,
            }
        }
        CacheCommand::Explain { output } => {
            let cwd = std::env::current_dir()
                .map_err(|e| CliError::failure(format!("read the current directory: {e}")))?;
            let project = crate::project::find(&cwd)?;
            let ctx = BuildContext::new(&project.sparkwing_dir, &home);
            let key = ctx.key()?;
            match output {
                Format::Pretty => print!("{}", render_explain(&key)),
                Format::Json => crate::output::print_json(
                    &serde_json::to_value(&key)
                        .map_err(|e| CliError::failure(format!("encode the key: {e}")))?,
                )?,
            }
        }
        CacheCommand::Prune { all, older_than } => {
            let cache = open_cache(&home)?;
            let opts = match (all, older_than) {
                (true, _) => PruneOpts::All,
                (false, Some(age)) => PruneOpts::OlderThan(age),
                (false, None) => PruneOpts::ToLimits,
            };
            let report = cache
                .prune(opts)
                .map_err(|e| CliError::failure(format!("prune the pipeline cache: {e}")))?;
            print!("{}", render_prune(&report));
        }
    }
    Ok(0)
}
