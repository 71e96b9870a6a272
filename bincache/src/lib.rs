//! The pipeline cache key and the pipeline binary cache (`docs/cache.md`).
//!
//! - [`key`]: the content key of a `.sparkwing/` package — every input that can change the
//!   compiled binary, hashed with blake3, explainable input by input.
//! - [`local`]: the machine-local cache under `$SPARKWING_HOME/cache/pipelines/v1`, with
//!   staging + rename publication, a per-key cross-process build lock, leases that keep a running
//!   binary from being pruned, and LRU pruning to byte and entry ceilings.
//! - [`build`]: `cargo build` of the pipeline package into the shared target directory.
//! - [`deps`]: compiled dependency sets (`bin/deps/<key>`), so a new key compiles only the
//!   pipeline package on a machine that restores them.
//! - [`remote`]: `bin/<key>` + `bin/<key>.json` in an artifact store, verified before use.
//! - [`sparks`]: the resolved overlay `.sparkwing/.resolved.lock` that pins the `sparks:`
//!   crates of `sparkwing.yaml` for builds.

pub mod build;
pub mod deps;
mod fs_error;
pub mod key;
pub mod limits;
pub mod local;
mod lock;
pub mod process;
pub mod profile;
pub mod remote;
pub mod signing;
pub mod sparks;
mod toolchain;
mod tree;

pub use build::{BuildError, BuildReport, BuildRequest, binary_name, cargo_build, ensure_lockfile};
pub use deps::{DepsError, DepsStats, deps_key};
pub use fs_error::FsError;
pub use key::{
    BuildProfile, CacheKey, KEY_FORMAT_VERSION, KeyError, KeyInput, KeyRequest, KeyedRoot,
    changed_inputs, compute_key, render_explain, rustc_env_names,
};
pub use limits::{Limits, LimitsError};
pub use local::{
    CacheError, CacheInfo, EntryInfo, GetError, Lease, LocalCache, Notice, PruneOpts, PruneReport,
    Source, render_info, render_prune,
};
pub use remote::{
    FetchOutcome, Manifest, ManifestFields, PublishOptions, PublishOutcome, RemoteError,
};
pub use signing::{BadPublicKey, BadSigningKey, Signer, Trust, generate_keypair};
pub use sparks::{
    OVERLAY_FILE, OverlayChange, SparkVersion, SparksError, SparksReport, check_manifest,
    render_report, resolve as resolve_sparks, use_committed as use_committed_sparks,
};

/// File name of the pipeline executable inside a cache entry (and a staging directory).
pub const BINARY_FILE: &str = "pipeline";
