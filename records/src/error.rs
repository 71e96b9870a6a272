//! Errors of the run record.

/// A run-record operation failed. Messages read after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The database file does not exist (nothing was recorded with this home yet).
    #[error(
        "open run records `{path}`: the file does not exist\n  hint: no run has been recorded with this SPARKWING_HOME yet"
    )]
    Missing { path: String },
    /// SQLite refused an operation.
    #[error("{op} `{path}`: {source}")]
    Sqlite {
        op: &'static str,
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer sparkwing.
    #[error(
        "read run records `{path}`: schema version {found} is newer than this build understands ({known})\n  hint: upgrade sparkwing, or point SPARKWING_HOME elsewhere"
    )]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    /// A stored JSON column could not be read back.
    #[error("decode `{column}` of {what} in `{path}`: {source}")]
    Decode {
        column: &'static str,
        what: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The writer thread is gone (it panicked or was closed).
    #[error("write run records `{path}`: the writer thread has stopped")]
    WriterGone { path: String },
    /// Creating the directory that holds the database failed.
    #[error("create directory `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl RecordsError {
    pub(crate) fn sqlite(
        op: &'static str,
        path: &std::path::Path,
        source: rusqlite::Error,
    ) -> Self {
        RecordsError::Sqlite {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}
