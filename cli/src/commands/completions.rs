//! `sparkwing completions <shell>`: completion scripts generated from the command line itself.

use crate::cli::Cli;
use crate::error::CliResult;
use clap::CommandFactory;

/// Prints the completion script for `shell` to stdout.
pub fn execute(shell: clap_complete::Shell) -> CliResult {
    clap_complete::generate(shell, &mut command(), "sparkwing", &mut std::io::stdout());
    Ok(sparkwing_contract::exit::SUCCESS)
}

/// The command line as completions see it: `run`'s hand-parsed flags declared for completion.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("run", |_| crate::run::args::completion_command())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: clap_complete::Shell) -> String {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command(), "sparkwing", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn completions_know_the_subcommands_and_runs_own_flags() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let s = script(shell);
            for word in [
                "runs",
                "dashboard",
                "sw-mode",
                "ci-embedded",
                "junit",
                "sw-cd",
            ] {
                assert!(s.contains(word), "{shell}: no `{word}`");
            }
        }
    }

    /// The bash script loads in a real bash and registers the completion.
    #[test]
    fn the_bash_script_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparkwing.bash");
        std::fs::write(&path, script(clap_complete::Shell::Bash)).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && complete -p sparkwing",
                path.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("sparkwing"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
