//! Command-line definitions. `run` is parsed by hand (see `run::args`) because unknown flags pass
//! through to the pipeline.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `sparkwing --version`: the release, the commit it was built from, the SDK it embeds (whose
/// content hash is part of every pipeline's cache key), and the toolchain and target it was built
/// with.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SPARKWING_BUILD_COMMIT"),
    ", sdk ",
    env!("SPARKWING_SDK_HASH"),
    ", rustc ",
    env!("SPARKWING_BUILD_RUSTC"),
    ", ",
    env!("SPARKWING_BUILD_TARGET"),
    ")"
);

/// Pipelines as real Rust code: run them on a laptop or inside any CI job.
#[derive(Debug, Parser)]
#[command(name = "sparkwing", version = VERSION, about, long_about = None, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Output format for reader commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: `sparkwing run <PIPELINE> [--sw-mode=local|ci-embedded] [--sw-workers=N] [--profile NAME] [ARGS…]`
    #[command(disable_help_flag = true)]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Create and list pipelines
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Read run records and logs
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Inspect and prune the pipeline binary cache
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Show which storage profile resolves, and why
    Profile(ProfileArgs),
    /// Check what a run needs on this machine: project, toolchain, profile, bucket access
    Doctor(DoctorArgs),
    /// Serve the web dashboard and JSON API over local and bucket runs
    #[command(subcommand)]
    Dashboard(crate::dashboard::DashboardCommand),
    /// Internal: the SDK source files this CLI embeds, one path per line (packaging copies them)
    #[command(hide = true)]
    SdkFiles,
    /// Print shell completions: `sparkwing completions bash > ~/.local/share/bash-completion/completions/sparkwing`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Create a pipeline (and the `.sparkwing/` package if there is none)
    New {
        /// Pipeline name: lowercase letters, digits and single dashes, starting with a letter
        #[arg(long)]
        name: String,
        /// One-line description shown by `pipeline list`
        #[arg(long)]
        description: Option<String>,
    },
    /// List the pipelines of this repository
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Pipeline library crates (`sparks:` in sparkwing.yaml)
    #[command(subcommand)]
    Sparks(SparksCommand),
}

#[derive(Debug, Subcommand)]
pub enum SparksCommand {
    /// Resolve the sparks to the newest versions their requirements allow and refresh
    /// `.sparkwing/.resolved.lock` (commit it)
    Update,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Read records from this profile's stores instead of the local ones
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first
    List {
        #[arg(long)]
        pipeline: Option<String>,
        /// running, success, failed or cancelled
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one run and its nodes
    Show {
        /// Run id (`run-…`; the prefix may be omitted), or `latest`
        run: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a run's logs
    Logs {
        /// Run id (`run-…`; the prefix may be omitted), or `latest`
        run: String,
        /// Only this node
        #[arg(long)]
        node: Option<String>,
        /// Keep printing new lines until the run ends (with `--tail`: start from the last N)
        #[arg(short = 'f', long, conflicts_with_all = ["head", "lines"])]
        follow: bool,
        /// Only the last N lines
        #[arg(long, conflicts_with = "head")]
        tail: Option<usize>,
        /// Only the first N lines
        #[arg(long)]
        head: Option<usize>,
        /// Only lines containing this text
        #[arg(long)]
        grep: Option<String>,
        /// Only lines A to B (1-based, inclusive), as `A:B`
        #[arg(long)]
        lines: Option<String>,
        /// `pretty` prints messages; `json` prints the log records
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Where the cache is, its entries and limits
    Info {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Every input of this project's pipeline cache key, with its own digest
    Explain {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Format,
    },
    /// Remove cache entries (least recently used first) down to the limits, or all
    Prune {
        /// Remove every entry that is not in use
        #[arg(long, conflicts_with = "older_than")]
        all: bool,
        /// Remove entries not used for this long (`90m`, `12h`, `7d`)
        #[arg(long, value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
    },
    /// Make a minisign key pair for signing the remote cache's binaries
    Keygen {
        /// Where to write the secret key (created; never overwritten). The public key goes
        /// beside it with `.pub` appended.
        #[arg(long, default_value = "sparkwing-cache.key")]
        out: std::path::PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check this profile's stores instead of the one that resolves by default
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// `90s`, `90m`, `12h`, `7d`.
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like `12h` or `7d`"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "`{s}` is not a duration like `12h` or `7d` (units: s, m, h, d)"
            ));
        }
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages() {
        assert_eq!(super::parse_age("7d").unwrap().as_secs(), 7 * 86_400);
        assert_eq!(super::parse_age("90m").unwrap().as_secs(), 5400);
        assert!(super::parse_age("7").is_err());
        assert!(super::parse_age("d").is_err());
    }
}
