//! Plans: jobs, their steps and `needs` edges, validated into a DAG before anything runs.

mod cmd;
mod graph;
mod job;
pub(crate) mod shard;

pub use cmd::Cmd;
pub(crate) use graph::ValidPlan;
pub use graph::{Plan, PlanError, PlanErrors};
pub(crate) use job::StepKind;
pub use job::{IntoStep, Job, StepBody};
