//! Where sparkwing keeps bytes: artifact stores (pipeline binaries, state dumps, job artifacts)
//! and log stores (rolling NDJSON log parts), for the filesystem and S3.
//!
//! One set of traits serves the runtime, the binary cache and the dashboard. Layout (DESIGN §6):
//!
//! ```text
//! <artifact store>/runs/<runID>/state.ndjson
//! <artifact store>/bin/<key>, bin/<key>.json
//! <log store>/<runID>/<nodeID>/<20-digit unix-ns>-<10-digit seq>.ndjson
//! ```

pub mod artifact;
pub mod error;
pub mod fs;
pub mod logs;

pub use artifact::ArtifactStore;
pub use error::StoreError;
pub use fs::{FsArtifactStore, FsLogStore};
pub use logs::{LogStore, ReadOpts};
