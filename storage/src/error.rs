//! Errors every store returns.

use sparkwing_contract::IdError;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist.
    #[error("`{0}` not found")]
    NotFound(String),
    /// A conditional write lost: the object exists (create-only) or changed (compare-and-swap).
    #[error("precondition failed for `{0}`: the object exists or changed")]
    PreconditionFailed(String),
    /// The store cannot do this (e.g. conditional writes on a server that ignores them).
    #[error("not supported by {store}: {what}")]
    NotSupported { store: String, what: String },
    /// A key or identifier was refused before any I/O.
    #[error("unsafe identifier: {0}")]
    BadId(#[from] IdError),
    /// A log part name that `next_part_name` would not make.
    #[error("invalid log part name `{0}`: expected `<20 digits>-<10 digits>.ndjson`")]
    BadPartName(String),
    /// Local I/O.
    #[error("{op} `{path}`: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A remote call failed after its retries.
    #[error("{op} `{key}` at {store}: {message}")]
    Remote {
        op: &'static str,
        key: String,
        store: String,
        message: String,
        /// What to check, when the answer says (403: credentials; no such bucket).
        hint: Option<String>,
    },
    /// A store URL that does not parse.
    #[error(transparent)]
    BadUrl(#[from] crate::url::UrlError),
    /// Bad configuration (credentials, region, endpoint).
    #[error("{message}")]
    Config {
        message: String,
        hint: Option<String>,
    },
}

impl sparkwing_contract::hint::Hinted for StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            StoreError::Remote { hint, .. } | StoreError::Config { hint, .. } => hint.clone(),
            StoreError::BadUrl(e) => e.hint(),
            _ => None,
        }
    }
}

impl StoreError {
    /// A configuration problem without an obvious fix.
    pub fn config(message: impl Into<String>) -> Self {
        StoreError::Config {
            message: message.into(),
            hint: None,
        }
    }

    /// A configuration problem and how to fix it.
    pub fn config_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        StoreError::Config {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// True for a missing object.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound(_))
    }

    /// Helper to build an `Io` error.
    pub fn io(op: &'static str, path: impl std::fmt::Display, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.to_string(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
