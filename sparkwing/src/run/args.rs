//! `sparkwing run <pipeline> [--sw-* flags] [--profile NAME] [pipeline args…]`.
//!
//! The pipeline name comes first. Flags sparkwing knows are taken out; everything else passes
//! through to the pipeline unchanged. `--sw-*` is sparkwing's namespace, so an unknown `--sw-*`
//! flag is an error rather than a silent pass-through.

use crate::error::CliError;
use std::path::PathBuf;

/// Execution mode (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Local,
    CiEmbedded,
}

impl Mode {
    /// The spelling passed to the child in `SPARKWING_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::CiEmbedded => "ci-embedded",
        }
    }
}

/// Parsed and validated `run` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    pub pipeline: String,
    pub mode: Mode,
    /// `None`: default to the CPU count.
    pub workers: Option<u32>,
    pub profile: Option<String>,
    pub no_cache_write: bool,
    /// Start the `.sparkwing/` search here instead of the current directory.
    pub dir: Option<PathBuf>,
    /// Arguments for the pipeline, in order.
    pub passthrough: Vec<String>,
}

const KNOWN: &[&str] = &[
    "--sw-mode",
    "--sw-workers",
    "--sw-no-cache-write",
    "--sw-cd",
    "--profile",
];

/// Help for `sparkwing run`.
pub const RUN_HELP: &str = "\
Run a pipeline

Usage: sparkwing run <PIPELINE> [OPTIONS] [PIPELINE ARGS]...

Options:
      --sw-mode <MODE>       local (default) or ci-embedded
      --sw-workers <N>       jobs running at once (integer >= 1; default: number of CPUs)
      --profile <NAME>       storage profile (default: the project's defaults.profile, else built-in)
      --sw-no-cache-write    never publish the pipeline binary to the remote cache
      --sw-cd <DIR>          look for .sparkwing/ from DIR instead of the current directory
  -h, --help                 print this help

Any other argument is passed to the pipeline unchanged.
";

/// Parses `args` (everything after `run`). `Ok(None)` means help was requested.
pub fn parse(args: &[String]) -> Result<Option<RunArgs>, CliError> {
    let Some(first) = args.first() else {
        return Err(CliError::usage("missing pipeline name").with_hint(
            "`sparkwing run <PIPELINE>`; `sparkwing pipeline list` shows the pipelines",
        ));
    };
    if first == "-h" || first == "--help" {
        return Ok(None);
    }
    if first.starts_with('-') {
        return Err(CliError::usage(format!(
            "the pipeline name must come first, got flag `{first}`"
        ))
        .with_hint(format!("`sparkwing run <PIPELINE> {first} …`")));
    }
    let mut out = RunArgs {
        pipeline: first.clone(),
        mode: Mode::Local,
        workers: None,
        profile: None,
        no_cache_write: false,
        dir: None,
        passthrough: Vec::new(),
    };
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            out.passthrough.extend(args[i + 1..].iter().cloned());
            break;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let is_ours = KNOWN.contains(&name);
        if !is_ours {
            if name.starts_with("--sw-") {
                return Err(CliError::usage(format!("unknown flag `{name}`"))
                    .with_hint(format!("sparkwing's flags are: {}; other flags pass through to the pipeline unless they start with `--sw-`", KNOWN.join(", "))));
            }
            out.passthrough.push(arg.clone());
            i += 1;
            continue;
        }
        if name == "--sw-no-cache-write" {
            if inline.is_some() {
                return Err(CliError::usage("`--sw-no-cache-write` takes no value")
                    .with_hint("write `--sw-no-cache-write` on its own"));
            }
            out.no_cache_write = true;
            i += 1;
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i).cloned().ok_or_else(|| {
                    CliError::usage(format!("`{name}` needs a value"))
                        .with_hint(format!("`{name}=VALUE` or `{name} VALUE`"))
                })?
            }
        };
        match name {
            "--sw-mode" => out.mode = parse_mode(&value)?,
            "--sw-workers" => out.workers = Some(parse_workers(&value)?),
            "--profile" => {
                if value.is_empty() {
                    return Err(CliError::usage("`--profile` needs a profile name")
                        .with_hint("`sparkwing profile` shows the profile that resolves; pass e.g. `--profile ci`"));
                }
                out.profile = Some(value)
            }
            "--sw-cd" => out.dir = Some(PathBuf::from(value)),
            _ => unreachable!("KNOWN and this match list the same flags"),
        }
        i += 1;
    }
    Ok(Some(out))
}

fn parse_mode(v: &str) -> Result<Mode, CliError> {
    match v {
        "local" => Ok(Mode::Local),
        "ci-embedded" => Ok(Mode::CiEmbedded),
        "distributed" => Err(CliError::usage(
            "`--sw-mode=distributed` is not part of sparkwing: the host CI is the orchestrator",
        )
        .with_hint("use `--sw-mode=ci-embedded` inside a CI job, or `local` (the default)")),
        other => Err(CliError::usage(format!(
            "invalid `--sw-mode` value `{}`",
            other.escape_debug()
        ))
        .with_hint("valid modes: `local` (default), `ci-embedded`")),
    }
}

/// `--sw-workers` must be an integer ≥ 1.
pub fn parse_workers(v: &str) -> Result<u32, CliError> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(CliError::usage(format!(
            "invalid `--sw-workers` value `{}`: expected an integer >= 1",
            v.escape_debug()
        ))
        .with_hint("for example `--sw-workers=4`; the default is the number of CPUs")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<RunArgs>, CliError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn takes_our_flags_and_passes_the_rest() {
        let a = p(&[
            "ci",
            "--sw-workers",
            "3",
            "--target",
            "x",
            "--profile=team",
            "--sw-mode=ci-embedded",
            "extra",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.pipeline, "ci");
        assert_eq!(a.workers, Some(3));
        assert_eq!(a.profile.as_deref(), Some("team"));
        assert_eq!(a.mode, Mode::CiEmbedded);
        assert_eq!(a.passthrough, vec!["--target", "x", "extra"]);
    }

    #[test]
    fn double_dash_passes_everything_after_it() {
        let a = p(&["ci", "--", "--sw-workers=9"]).unwrap().unwrap();
        assert_eq!(a.workers, None);
        assert_eq!(a.passthrough, vec!["--sw-workers=9"]);
    }

    #[test]
    fn rejects_bad_input_with_exit_2() {
        for bad in [
            vec!["ci", "--sw-workers=0"],
            vec!["ci", "--sw-workers=abc"],
            vec!["ci", "--sw-workers=-1"],
            vec!["ci", "--sw-workers"],
            vec!["ci", "--sw-mode=distributed"],
            vec!["ci", "--sw-mode=fast"],
            vec!["ci", "--sw-bogus"],
            vec!["--sw-mode=local", "ci"],
            vec![],
        ] {
            let err = p(&bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
        let msg = p(&["ci", "--sw-workers=abc"]).unwrap_err().to_string();
        assert!(msg.contains("integer >= 1"), "{msg}");
    }

    #[test]
    fn help() {
        assert!(p(&["--help"]).unwrap().is_none());
    }
}
