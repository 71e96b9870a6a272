//! Errors a job's steps see.

use sparkwing_storage::StoreError;

/// Any error a step may return: `?` converts every `std::error::Error` and string into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a step function returns.
pub type StepResult = Result<(), BoxError>;

/// A failure inside a job: a command that failed, an output that could not be read, an artifact
/// that could not be stored. Messages read after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The program could not be started (not found, not executable, bad working directory).
    #[error("start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran and exited non-zero.
    #[error("run `{command}`: exit code {code}")]
    Exit { command: String, code: i32 },
    /// The command was killed by a signal.
    #[error("run `{command}`: killed by signal {signal}")]
    Signal { command: String, signal: i32 },
    /// Reading the command's output or waiting for it failed.
    #[error("wait for `{command}`: {source}")]
    Wait {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The job was asked to stop (timeout or cancelled run) before the command was started.
    #[error("start `{command}`: the job is stopping")]
    Stopping { command: String },
    /// An output value could not be encoded as JSON.
    #[error("encode output `{key}`: {source}")]
    EncodeOutput {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The job asked for an output of a job it does not `need`.
    #[error(
        "read outputs of `{job}`: it is not a dependency of this job\n  hint: add `.needs([\"{job}\"])` to this job"
    )]
    NotUpstream { job: String },
    /// The upstream job did not set the output.
    #[error("read output `{key}` of `{job}`: the job did not set it")]
    MissingOutput { job: String, key: String },
    /// The output exists but does not decode as the requested type.
    #[error("decode output `{key}` of `{job}`: {source}")]
    DecodeOutput {
        job: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// An artifact operation failed in the store.
    #[error("{op} artifact `{key}`: {source}")]
    Artifact {
        op: &'static str,
        key: String,
        #[source]
        source: Box<StoreError>,
    },
    /// Reading or writing a local file for an artifact failed.
    #[error("{op} `{path}`: {source}")]
    ArtifactFile {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl JobError {
    /// The exit code a failed command reported: its code, or 128+N for signal N.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            JobError::Exit { code, .. } => Some(*code),
            JobError::Signal { signal, .. } => Some(sparkwing_contract::exit::signal(*signal)),
            _ => None,
        }
    }
}
