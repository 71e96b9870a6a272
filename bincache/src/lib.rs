//! The pipeline cache key and the pipeline binary cache (DESIGN §5).
//!
//! - [`key`]: the content key of a `.sparkwing/` package — every input that can change the
//!   compiled binary, hashed with blake3, explainable input by input.
//! - [`local`]: the machine-local cache under `$SPARKWING_HOME/cache/pipelines/v1`, with
//!   staging + rename publication, a per-key cross-process build lock, leases that keep a running
//!   binary from being pruned, and LRU pruning to byte and entry ceilings.
//! - [`build`]: `cargo build` of the pipeline package into the shared target directory.
//! - [`remote`]: `bin/<key>` + `bin/<key>.json` in an artifact store, verified before use.

pub mod build;
pub mod key;
pub mod limits;
pub mod local;
mod lock;
pub mod remote;
mod toolchain;
mod tree;

pub use build::{BuildError, BuildReport, BuildRequest, binary_name, cargo_build, ensure_lockfile};
pub use key::{
    BuildProfile, CacheKey, KEY_FORMAT_VERSION, KeyError, KeyInput, KeyRequest, changed_inputs,
    compute_key, render_explain,
};
pub use limits::{Limits, LimitsError};
pub use local::{
    CacheError, CacheInfo, EntryInfo, GetError, Lease, LocalCache, Notice, PruneOpts, PruneReport,
    Source, render_info, render_prune,
};
pub use remote::{FetchOutcome, Manifest, ManifestFields, PublishOutcome, RemoteError};

/// File name of the pipeline executable inside a cache entry (and a staging directory).
pub const BINARY_FILE: &str = "pipeline";
