//! `sparkwing run <pipeline> [--sw-* flags] [--profile NAME] [--junit PATH] [pipeline args…]`.
//!
//! The pipeline name comes first. Flags sparkwing knows are taken out; everything else passes
//! through to the pipeline unchanged. `--sw-*` is sparkwing's namespace, so an unknown `--sw-*`
//! flag is an error rather than a silent pass-through; `--profile`, `--junit`, `--watch` and
//! `--watch-path` are the exact names outside it (a pipeline cannot take them for itself).

use crate::error::CliError;
use std::path::PathBuf;

pub use sparkwing_contract::env::Mode;

/// Where a run setting came from: its flag, its environment variable, or the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    Default,
}

impl Origin {
    /// The spelling recorded in the run's invocation (`flag`, `env`, `default`).
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Flag => "flag",
            Origin::Env => "env",
            Origin::Default => "default",
        }
    }
}

/// Parsed and validated `run` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    pub pipeline: String,
    /// `--sw-mode`, when given.
    pub mode: Option<Mode>,
    /// `--sw-workers`, when given.
    pub workers: Option<u32>,
    pub profile: Option<String>,
    pub no_cache_write: bool,
    /// Start the `.sparkwing/` search here instead of the current directory.
    pub dir: Option<PathBuf>,
    /// `--junit`: where to write the run's JUnit XML report, when given.
    pub junit: Option<PathBuf>,
    /// `--watch`: run again whenever the repository changes.
    pub watch: bool,
    /// `--watch-path`: only changes to paths matching one of these start a run.
    pub watch_paths: Vec<sparkwing_contract::glob::Glob>,
    /// `--sw-shard`: `I/N`, `auto` or `wait`.
    pub shard: Option<sparkwing_contract::shard::ShardArg>,
    /// `--sw-run-id`: the run id every shard of one run shares.
    pub run_id: Option<sparkwing_contract::RunId>,
    /// Arguments for the pipeline, in order.
    pub passthrough: Vec<String>,
}

const KNOWN: &[&str] = &[
    "--sw-mode",
    "--sw-workers",
    "--sw-no-cache-write",
    "--sw-cd",
    "--sw-shard",
    "--sw-run-id",
    "--profile",
    "--junit",
    "--watch",
    "--watch-path",
];

/// `run` as shell completions see it. Its flags are parsed by hand (anything else passes through
/// to the pipeline), so they are declared here, from [`KNOWN`], for completion only.
pub fn completion_command() -> clap::Command {
    use clap::{Arg, ArgAction, ValueHint};
    let mut cmd = clap::Command::new("run")
        .about("Run a pipeline")
        .arg(Arg::new("pipeline").value_name("PIPELINE"));
    for &flag in KNOWN {
        let name = flag.trim_start_matches("--");
        let arg = Arg::new(name).long(name);
        let arg = match flag {
            "--sw-mode" => arg.value_parser([Mode::Local.as_str(), Mode::CiEmbedded.as_str()]),
            "--sw-no-cache-write" | "--watch" => arg.action(ArgAction::SetTrue),
            "--watch-path" => arg.action(ArgAction::Append).value_hint(ValueHint::AnyPath),
            "--sw-cd" => arg.value_hint(ValueHint::DirPath),
            "--junit" => arg.value_hint(ValueHint::FilePath),
            _ => arg.value_hint(ValueHint::Other),
        };
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        Arg::new("args")
            .num_args(0..)
            .trailing_var_arg(true)
            .allow_hyphen_values(true)
            .value_name("PIPELINE ARGS"),
    )
}

/// Help for `sparkwing run`.
pub const RUN_HELP: &str = "\
Run a pipeline

Usage: sparkwing run <PIPELINE> [OPTIONS] [PIPELINE ARGS]...

Options:
      --sw-mode <MODE>       local (default) or ci-embedded          [env: SPARKWING_MODE]
      --sw-workers <N>       jobs running at once (integer >= 1;      [env: SPARKWING_WORKERS]
                             default: number of CPUs)
      --profile <NAME>       storage profile (default: the project's defaults.profile, else built-in)
      --sw-no-cache-write    never publish the pipeline binary to the remote cache
      --sw-cd <DIR>          look for .sparkwing/ from DIR instead of the current directory
      --sw-shard <I/N>       run shard I of N of the pipeline (ci-embedded): [env: SPARKWING_SHARD]
                             `I/N`, `auto` (the CI vendor's parallel-job
                             variables) or `wait` (run no job: wait for
                             every shard, exit with the run's verdict)
      --sw-run-id <ID>       the run id all shards share       [env: SPARKWING_SHARD_RUN_ID]
                             (default: derived from the CI run's id)
      --junit <PATH>         write a JUnit XML report of the jobs    [env: SPARKWING_JUNIT]
                             to PATH after the run (one test case per job)
      --watch                run, then run again on every change to the repository
                             (not .gitignored paths, target/ or the sparkwing home);
                             a change during a run cancels it; Ctrl-C stops
      --watch-path <GLOB>    with --watch: only changes matching GLOB start a run
                             (relative to the repository, e.g. `src/**`; repeatable)
  -h, --help                 print this help

A flag wins over its environment variable; an empty variable counts as unset.
Any other argument is passed to the pipeline unchanged.
After the run, a summary is appended to $GITHUB_STEP_SUMMARY when it is set, and
posted with `buildkite-agent annotate` when BUILDKITE=true.
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
        mode: None,
        workers: None,
        profile: None,
        no_cache_write: false,
        dir: None,
        junit: None,
        watch: false,
        watch_paths: Vec::new(),
        shard: None,
        run_id: None,
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
        if name == "--sw-no-cache-write" || name == "--watch" {
            if inline.is_some() {
                return Err(CliError::usage(format!("`{name}` takes no value"))
                    .with_hint(format!("write `{name}` on its own")));
            }
            match name {
                "--watch" => out.watch = true,
                _ => out.no_cache_write = true,
            }
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
            "--sw-mode" => out.mode = Some(parse_mode(&value, "--sw-mode")?),
            "--sw-workers" => out.workers = Some(parse_workers(&value, "--sw-workers")?),
            "--profile" => {
                if value.is_empty() {
                    return Err(CliError::usage("`--profile` needs a profile name")
                        .with_hint("`sparkwing profile` shows the profile that resolves; pass e.g. `--profile ci`"));
                }
                out.profile = Some(value)
            }
            "--sw-cd" => out.dir = Some(PathBuf::from(value)),
            "--sw-shard" => out.shard = Some(parse_shard(&value, "--sw-shard")?),
            "--sw-run-id" => out.run_id = Some(parse_run_id(&value, "--sw-run-id")?),
            "--junit" => {
                if value.is_empty() {
                    return Err(CliError::usage("`--junit` needs a file path")
                        .with_hint("for example `--junit target/sparkwing-junit.xml`"));
                }
                out.junit = Some(PathBuf::from(value))
            }
            "--watch-path" => {
                let glob = sparkwing_contract::glob::Glob::parse(&value).map_err(|e| {
                    CliError::usage(e.to_string())
                        .with_hint("for example `--watch-path 'src/**' --watch-path Cargo.toml`")
                })?;
                out.watch_paths.push(glob)
            }
            _ => unreachable!("KNOWN and this match list the same flags"),
        }
        i += 1;
    }
    if !out.watch_paths.is_empty() && !out.watch {
        return Err(
            CliError::usage("`--watch-path` only narrows `--watch`").with_hint(
                "add `--watch`, e.g. `sparkwing run <PIPELINE> --watch --watch-path 'src/**'`",
            ),
        );
    }
    Ok(Some(out))
}

/// A shard from `source` (`--sw-shard` or `SPARKWING_SHARD`), named in the error.
pub fn parse_shard(v: &str, source: &str) -> Result<sparkwing_contract::shard::ShardArg, CliError> {
    sparkwing_contract::shard::ShardArg::parse(v).map_err(|e| {
        CliError::usage(format!("{source}: {e}"))
            .with_hint("for example `--sw-shard=2/3` in the second of three parallel CI jobs")
    })
}

/// A run id from `source` (`--sw-run-id` or `SPARKWING_SHARD_RUN_ID`), named in the error.
pub fn parse_run_id(v: &str, source: &str) -> Result<sparkwing_contract::RunId, CliError> {
    sparkwing_contract::RunId::parse(v.trim()).map_err(|e| {
        CliError::usage(format!("{source}: {e}")).with_hint(
            "a run id looks like `run-20261203-042500-1a2b3c4d` (date, time, up to 16 hex digits); give every shard of one run the same one",
        )
    })
}

/// A mode from `source` (`--sw-mode` or `SPARKWING_MODE`), named in the error.
fn parse_mode(v: &str, source: &str) -> Result<Mode, CliError> {
    if let Some(mode) = Mode::parse(v) {
        return Ok(mode);
    }
    match v.trim() {
        "distributed" => Err(CliError::usage(format!(
            "`{source}` value `distributed` is not part of sparkwing: the host CI is the orchestrator"
        ))
        .with_hint("use `ci-embedded` inside a CI job, or `local` (the default)")),
        other => Err(CliError::usage(format!(
            "invalid `{source}` value `{}`",
            other.escape_debug()
        ))
        .with_hint("valid modes: `local` (default), `ci-embedded`")),
    }
}

/// Workers from `source` (`--sw-workers` or `SPARKWING_WORKERS`): an integer ≥ 1.
pub fn parse_workers(v: &str, source: &str) -> Result<u32, CliError> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(CliError::usage(format!(
            "invalid `{source}` value `{}`: expected an integer >= 1",
            v.escape_debug()
        ))
        .with_hint("for example `4`; the default is the number of CPUs")),
    }
}

/// The effective mode: `--sw-mode`, else a non-empty `SPARKWING_MODE`, else `local`.
pub fn effective_mode(
    flag: Option<Mode>,
    get: impl Fn(&str) -> Option<String>,
) -> Result<(Mode, Origin), CliError> {
    if let Some(m) = flag {
        return Ok((m, Origin::Flag));
    }
    match get(sparkwing_contract::env::MODE).filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok((parse_mode(&v, sparkwing_contract::env::MODE)?, Origin::Env)),
        None => Ok((Mode::Local, Origin::Default)),
    }
}

/// Where the JUnit report goes: `--junit`, else a non-empty `SPARKWING_JUNIT`, else nowhere. A
/// relative path is taken from `cwd` (where `sparkwing run` was started, as a CI step's paths are).
pub fn effective_junit(
    flag: Option<&std::path::Path>,
    cwd: &std::path::Path,
    get: impl Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    let path = match flag {
        Some(p) => p.to_path_buf(),
        None => {
            PathBuf::from(get(sparkwing_contract::env::JUNIT).filter(|v| !v.trim().is_empty())?)
        }
    };
    Some(cwd.join(path))
}

/// The effective worker cap: `--sw-workers`, else a non-empty `SPARKWING_WORKERS`, else
/// `default`.
pub fn effective_workers(
    flag: Option<u32>,
    default: u32,
    get: impl Fn(&str) -> Option<String>,
) -> Result<(u32, Origin), CliError> {
    if let Some(n) = flag {
        return Ok((n, Origin::Flag));
    }
    match get(sparkwing_contract::env::WORKERS).filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok((
            parse_workers(&v, sparkwing_contract::env::WORKERS)?,
            Origin::Env,
        )),
        None => Ok((default, Origin::Default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<RunArgs>, CliError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    /// The CI examples in `examples/ci/` are what users copy: each is valid YAML of its vendor's
    /// shape, every `sparkwing run` line in them parses with this CLI, and the docs show each
    /// file whole.
    #[test]
    fn ci_examples_parse_and_are_shown_whole_in_the_docs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let docs = std::fs::read_to_string(root.join("docs/ci-embedded.md")).unwrap();
        let files = [
            ("buildkite/pipeline.yml", "steps"),
            ("gitlab/.gitlab-ci.yml", "sparkwing"),
            ("circleci/config.yml", "workflows"),
        ];
        for (file, top) in files {
            let text = std::fs::read_to_string(root.join("examples/ci").join(file)).unwrap();
            let yaml: serde_norway::Value =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("examples/ci/{file}: {e}"));
            assert!(yaml.get(top).is_some(), "examples/ci/{file} has no `{top}`");
            assert!(
                docs.contains(&format!("```yaml\n{text}```")),
                "docs/ci-embedded.md does not show examples/ci/{file} whole"
            );
            let mut runs = 0;
            for line in text.lines() {
                let line = line.trim().trim_start_matches("- ").trim();
                let Some(rest) = line.strip_prefix("sparkwing run ") else {
                    continue;
                };
                // The words as the shell passes them, with the profile variable filled in.
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .map(|w| match w.trim_matches('"') {
                        "$profile" | "$$profile" => "ci",
                        other => other,
                    })
                    .collect();
                let parsed = p(&words)
                    .unwrap_or_else(|e| panic!("examples/ci/{file}: `{line}`: {e:?}"))
                    .expect("not a help request");
                assert_eq!(parsed.mode, Some(Mode::CiEmbedded), "{file}: {line}");
                assert_eq!(parsed.profile.as_deref(), Some("ci"), "{file}: {line}");
                assert!(parsed.junit.is_some(), "{file}: {line}");
                assert!(parsed.passthrough.is_empty(), "{file}: {line}");
                runs += 1;
            }
            assert_eq!(runs, 1, "examples/ci/{file} runs sparkwing once");
        }
    }

    /// The sharded examples of `docs/shards.md` are valid YAML, and every sparkwing command in
    /// them (a `sparkwing run` line, or the action's `args`) parses with this CLI and names a
    /// shard.
    #[test]
    fn sharded_examples_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let docs = std::fs::read_to_string(root.join("docs/shards.md")).unwrap();
        let mut blocks = 0;
        let mut commands = 0;
        for block in docs.split("```yaml\n").skip(1) {
            let text = block.split("```").next().unwrap();
            let _: serde_norway::Value = serde_norway::from_str(text)
                .unwrap_or_else(|e| panic!("docs/shards.md: {e}\n{text}"));
            blocks += 1;
            for line in text.lines() {
                let line = line.trim().trim_start_matches("- ").trim();
                let line = line
                    .trim_start_matches("run: ")
                    .trim_start_matches("command: ");
                let words: Vec<String> = if let Some(rest) = line.strip_prefix("sparkwing run ") {
                    rest.split_whitespace().map(str::to_string).collect()
                } else if let Some(rest) = line.strip_prefix("args: ") {
                    let rest = rest.replace("${{ matrix.shard }}", "1");
                    ["ci", "--sw-mode=ci-embedded", "--profile", "ci"]
                        .iter()
                        .map(|s| s.to_string())
                        .chain(rest.split_whitespace().map(str::to_string))
                        .collect()
                } else {
                    continue;
                };
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                let parsed = p(&words)
                    .unwrap_or_else(|e| panic!("docs/shards.md: `{line}`: {e:?}"))
                    .expect("not a help request");
                assert_eq!(parsed.mode, Some(Mode::CiEmbedded), "{line}");
                assert!(parsed.shard.is_some(), "{line}");
                assert!(parsed.passthrough.is_empty(), "{line}");
                commands += 1;
            }
        }
        assert!(
            blocks >= 4 && commands >= 6,
            "{blocks} blocks, {commands} commands"
        );
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
        assert_eq!(a.mode, Some(Mode::CiEmbedded));
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

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn environment_fills_in_absent_flags_and_never_beats_them() {
        let e = env(&[
            ("SPARKWING_MODE", "ci-embedded"),
            ("SPARKWING_WORKERS", "3"),
        ]);
        assert_eq!(
            effective_mode(None, &e).unwrap(),
            (Mode::CiEmbedded, Origin::Env)
        );
        assert_eq!(
            effective_mode(Some(Mode::Local), &e).unwrap(),
            (Mode::Local, Origin::Flag)
        );
        assert_eq!(effective_workers(None, 8, &e).unwrap(), (3, Origin::Env));
        assert_eq!(
            effective_workers(Some(1), 8, &e).unwrap(),
            (1, Origin::Flag)
        );
        let empty = env(&[("SPARKWING_MODE", " "), ("SPARKWING_WORKERS", "")]);
        assert_eq!(
            effective_mode(None, &empty).unwrap(),
            (Mode::Local, Origin::Default)
        );
        assert_eq!(
            effective_workers(None, 8, &empty).unwrap(),
            (8, Origin::Default)
        );
    }

    #[test]
    fn a_bad_environment_value_is_a_usage_error_naming_the_variable() {
        let bad = env(&[("SPARKWING_MODE", "bogus"), ("SPARKWING_WORKERS", "abc")]);
        let err = effective_workers(None, 2, &bad).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("invalid `SPARKWING_WORKERS` value `abc`"),
            "{err}"
        );
        let err = effective_mode(None, &bad).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("invalid `SPARKWING_MODE` value `bogus`"),
            "{err}"
        );
        // A flag never reads the variable, so a bad variable does not matter then.
        assert!(effective_mode(Some(Mode::Local), &bad).is_ok());
    }

    #[test]
    fn junit_flag_takes_a_path_and_the_variable_fills_in() {
        let a = p(&["ci", "--junit", "out/j.xml", "--junit-x"])
            .unwrap()
            .unwrap();
        assert_eq!(a.junit.as_deref(), Some(std::path::Path::new("out/j.xml")));
        // Not ours: only the exact flag is sparkwing's.
        assert_eq!(a.passthrough, vec!["--junit-x"]);
        let a = p(&["ci", "--junit=/abs/j.xml"]).unwrap().unwrap();
        assert_eq!(a.junit.as_deref(), Some(std::path::Path::new("/abs/j.xml")));
        for bad in [vec!["ci", "--junit"], vec!["ci", "--junit="]] {
            assert_eq!(p(&bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        let cwd = std::path::Path::new("/ci/work");
        let e = env(&[("SPARKWING_JUNIT", "reports/junit.xml")]);
        assert_eq!(
            effective_junit(None, cwd, &e),
            Some(PathBuf::from("/ci/work/reports/junit.xml"))
        );
        assert_eq!(
            effective_junit(Some(std::path::Path::new("mine.xml")), cwd, &e),
            Some(PathBuf::from("/ci/work/mine.xml"))
        );
        assert_eq!(
            effective_junit(None, cwd, env(&[("SPARKWING_JUNIT", " ")])),
            None
        );
        assert_eq!(effective_junit(None, cwd, env(&[])), None);
    }

    #[test]
    fn watch_flags() {
        let a = p(&[
            "ci",
            "--watch",
            "--watch-path",
            "src/**",
            "--watch-path=docs",
            "x",
        ])
        .unwrap()
        .unwrap();
        assert!(a.watch);
        let globs: Vec<&str> = a.watch_paths.iter().map(|g| g.as_str()).collect();
        assert_eq!(globs, ["src/**", "docs"]);
        assert_eq!(a.passthrough, vec!["x"]);
        for (bad, msg) in [
            (
                vec!["ci", "--watch-path", "src/**"],
                "`--watch-path` only narrows `--watch`",
            ),
            (vec!["ci", "--watch=yes"], "`--watch` takes no value"),
            (
                vec!["ci", "--watch", "--watch-path", "../x"],
                "invalid path glob `../x`",
            ),
            (
                vec!["ci", "--watch", "--watch-path"],
                "`--watch-path` needs a value",
            ),
        ] {
            let err = p(&bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
            assert!(err.to_string().contains(msg), "{bad:?}: {err}");
        }
    }

    #[test]
    fn help() {
        assert!(p(&["--help"]).unwrap().is_none());
    }
}
