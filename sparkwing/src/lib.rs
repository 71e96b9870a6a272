//! The sparkwing pipeline SDK: pipelines are plain Rust.
//!
//! A repository keeps its pipelines in `.sparkwing/`, a small Cargo package whose binary
//! registers them by name. `sparkwing run <name>` builds that binary once per content key and runs
//! it; the binary builds the [`Plan`] (a DAG of jobs), dispatches it under the worker cap, routes
//! every job's output to the log store, records the run in SQLite, and exits 0 or 1.
//!
//! ```no_run
//! use sparkwing::prelude::*;
//!
//! fn main() -> std::process::ExitCode {
//!     Pipelines::new()
//!         .register("hello", "Build and test", |args: &Args| {
//!             let mut plan = Plan::new();
//!             plan.job("build").step_fn("version", |ctx: JobCtx| async move {
//!                 let version = ctx.capture(&Cmd::sh("echo 1.2.3")).await?;
//!                 ctx.set_output("version", &version)?;
//!                 Ok(())
//!             });
//!             plan.job("test")
//!                 .needs(["build"])
//!                 .retries(2)
//!                 .timeout(Duration::from_secs(60))
//!                 .step("unit", Cmd::new("cargo").args(["test"]));
//!             Ok(plan)
//!         })
//!         .main()
//! }
//! ```
//!
//! The package depends on this crate under the name `sparkwing`:
//! `sparkwing = "0.1"`.

mod args;
mod backends;
mod ctx;
mod dispatch;
mod error;
mod exec;
#[cfg(any(test, feature = "fuzz"))]
mod fuzz;
mod invocation;
mod log;
mod pipelines;
mod plan;
mod run;
mod settings;
mod shards;
mod state;

pub use args::{Args, ArgsError};
pub use ctx::{JobCtx, Upstream};
pub use error::{BoxError, JobError, StepResult};
pub use log::Level;
pub use pipelines::Pipelines;
pub use plan::{Cmd, IntoStep, Job, Plan, PlanError, PlanErrors, StepBody};
pub use settings::LogFormat;

/// The version of this SDK, reported by `--sw-describe` (defined once, in the contract).
pub use sparkwing_contract::SDK_VERSION;

/// Internal: the masking invariant for the fuzz target in `fuzz/`. Not part of the API; only
/// built with the `fuzz` feature, so no pipeline binary carries it.
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::fuzz::mask_invariant;
}

/// Everything a pipeline file usually needs: `use sparkwing::prelude::*;`.
pub mod prelude {
    pub use crate::{Args, BoxError, Cmd, Job, JobCtx, Pipelines, Plan, StepResult, Upstream};
    pub use std::time::Duration;
}
