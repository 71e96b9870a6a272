//! Subcommands other than `run`.

pub mod cache;
pub mod completions;
pub mod doctor;
pub mod pipeline;
pub mod profile;
pub mod runs;
