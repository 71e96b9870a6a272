//! `sparkwing profile`: which profile resolves, and why.

use crate::cli::{Format, ProfileArgs};
use crate::error::CliResult;
use crate::profiles::resolve_here;

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
