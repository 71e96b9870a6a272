//! Commands a job runs.

use std::fmt;
use std::path::PathBuf;

/// A program with arguments, or a bash line, with its own environment and working directory.
///
/// Every command runs in its own process group with stdin closed; stdout and stderr are captured
/// line by line into the job's log. Relative working directories are resolved against the
/// repository root.
///
/// ```
/// use sparkwing::Cmd;
/// let build = Cmd::new("cargo").args(["build", "--release"]).env("CARGO_TERM_COLOR", "always");
/// let script = Cmd::sh("make -j2 && ls target | wc -l").dir("frontend");
/// assert_eq!(build.to_string(), "cargo build --release");
/// assert_eq!(script.to_string(), "make -j2 && ls target | wc -l");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) dir: Option<PathBuf>,
    /// The bash line, when built with [`Cmd::sh`]; shown instead of the bash invocation.
    pub(crate) line: Option<String>,
}

impl Cmd {
    /// Runs `program` (looked up on `PATH`) with no arguments yet.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            line: None,
        }
    }

    /// Runs `line` with `bash --noprofile --norc -eo pipefail -c`, as GitHub Actions runs `run:`
    /// steps: the line fails at its first failing command or pipeline.
    pub fn sh(line: impl Into<String>) -> Cmd {
        let line = line.into();
        Cmd {
            program: "bash".into(),
            args: vec![
                "--noprofile".into(),
                "--norc".into(),
                "-eo".into(),
                "pipefail".into(),
                "-c".into(),
                line.clone(),
            ],
            env: Vec::new(),
            dir: None,
            line: Some(line),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for this command (over the job's and the process's).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the command in `dir` (relative paths are under the repository root).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }
}

impl Cmd {
    /// The command line as logs and errors show it, with `mask` applied to each word before it is
    /// quoted (quoting rewrites a `'` inside a secret, which could then no longer be found) and to
    /// the whole line after.
    pub(crate) fn display_masked(&self, mask: impl Fn(&str) -> String) -> String {
        let shown = match &self.line {
            Some(line) => mask(line),
            None => {
                let mut s = quote(&mask(&self.program));
                for a in &self.args {
                    s.push(' ');
                    s.push_str(&quote(&mask(a)));
                }
                s
            }
        };
        mask(&shown)
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_masked(str::to_string))
    }
}

/// Shell-style quoting for display, so a copied command line runs as shown.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let c = Cmd::new("echo").args(["a b", "it's", ""]);
        assert_eq!(c.to_string(), r"echo 'a b' 'it'\''s' ''");
    }

    #[test]
    fn words_are_masked_before_they_are_quoted() {
        let mask = |s: &str| s.replace("it's", "***");
        let c = Cmd::new("echo").args(["it's", "a it's b"]);
        assert_eq!(c.display_masked(mask), "echo '***' 'a *** b'");
    }
}
