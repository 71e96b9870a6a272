//! The contract shared by the `sparkwing` supervisor, the pipeline runtime (the child) and the
//! dashboard: environment variable names, exit codes, identifiers and the on-disk / on-bucket
//! record formats. It is deliberately small so that a reader of records does not have to link the
//! runtime's stack just to know a name.

pub mod env;
pub mod exit;
pub mod glob;
pub mod hint;
pub mod home;
pub mod human;
pub mod id;
pub mod record;
pub mod shard;
pub mod surfaces;
pub mod text;
pub mod timefmt;
pub mod url;

pub use home::{Home, HomeError};
pub use id::{IdError, RunId};
pub use record::{
    Envelope, Invocation, LogRecord, NodeRecord, NodeStatus, Outcome, RunRecord, RunStatus,
};
pub use url::{StoreUrl, UrlError};

/// The version of the SDK (the `sparkwing` crate and its companion crates) this build belongs to.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
pub use record::StateDump;
