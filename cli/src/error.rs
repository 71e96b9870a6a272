//! The one top-level error of the binary; each variant maps to an exit code (`contract::exit`).

use sparkwing_contract::exit;
use std::fmt;

/// Everything that stops a command before or instead of a pipeline result.
#[derive(Debug)]
pub enum CliError {
    /// Bad flags, unknown names, invalid plans, malformed config: exit 2.
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// Could not do the work (build failed, store unreachable, I/O): exit 1.
    Failure {
        message: String,
        hint: Option<String>,
    },
}

impl CliError {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: None,
        }
    }

    /// A failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError::Failure {
            message: message.into(),
            hint: None,
        }
    }

    /// Takes the hint of `e`, when it has one (the message is the caller's).
    pub fn hinted(self, e: &dyn sparkwing_contract::hint::Hinted) -> Self {
        match e.hint() {
            Some(h) => self.with_hint(h),
            None => self,
        }
    }

    /// Adds a hint line telling the user how to fix it.
    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        match &mut self {
            CliError::Usage { hint, .. } | CliError::Failure { hint, .. } => *hint = Some(h.into()),
        }
        self
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } => exit::USAGE,
            CliError::Failure { .. } => exit::FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (message, hint) = match self {
            CliError::Usage { message, hint } | CliError::Failure { message, hint } => {
                (message, hint)
            }
        };
        write!(f, "error: {message}")?;
        if let Some(h) = hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

/// Result alias for commands: `Ok(code)` is the process exit code.
pub type CliResult<T = i32> = Result<T, CliError>;

/// A configuration error is a usage error (exit 2); its message already carries `path:line:col`.
pub fn config_error(e: sparkwing_config::ConfigError) -> CliError {
    CliError::usage(e.to_string()).hinted(&e)
}
