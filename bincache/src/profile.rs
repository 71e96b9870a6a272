//! The build settings sparkwing adds to a release build of pipeline code.

use std::path::Path;

/// The settings a release build of a pipeline gets unless `.sparkwing/Cargo.toml` has a
/// `[profile]` table of its own: optimisation level 1 for every crate but tokio and mio (3), no
/// debug info, and no link-time optimisation between a crate's codegen units.
///
/// Pipelines are glue, and their cold build is what a team waits for on every new dependency
/// set; opt-level 3 spends most of that build optimising the SDK. Measured on the sample
/// pipelines (2-core machine, docs/benchmarks.md): opt-level 1 builds with 14 % less CPU than 3
/// and dispatches 26,000–29,000 no-op jobs/s (3: 30,000); opt-level 0 needs a third of the CPU
/// but dispatches under 8,000 jobs/s, and 0 for the SDK with 1 for the rest 13,000 (at levels 0
/// and 1 crates share their generic code, so the SDK's hot paths would run code built at 0).
/// Turning off cargo's default thin LTO between codegen units takes another 15 % off the cold
/// build's CPU and about 10 % off the dispatch rate. tokio and mio at 3 cost no measurable build
/// time (their code that is not generic is small) and take about a tenth off the pipeline
/// process's CPU per short command: the runtime's scheduler, I/O driver and process reaping
/// run for every job.
pub const PIPELINE_PROFILE: &[(&str, &str)] = &[
    ("opt-level", "1"),
    ("debug", "false"),
    ("lto", "\"off\""),
    ("package.tokio.opt-level", "3"),
    ("package.mio.opt-level", "3"),
];

/// The settings sparkwing adds to a build of the package whose parsed `Cargo.toml` is
/// `manifest`: [`PIPELINE_PROFILE`] for a release build whose manifest has no `[profile]` table,
/// else none. Part of both the binary key and the dependency-set key.
pub fn default_profile(manifest: &toml::Table, release: bool) -> Vec<(String, String)> {
    if !release || manifest.contains_key("profile") {
        return Vec::new();
    }
    PIPELINE_PROFILE
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether `.sparkwing/Cargo.toml` declares any `[profile.*]` settings (then they apply as
/// written and [`PIPELINE_PROFILE`] is not passed, since cargo's `--config` would override them).
pub fn manifest_sets_profile(sparkwing_dir: &Path) -> bool {
    std::fs::read_to_string(sparkwing_dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .is_some_and(|t| t.contains_key("profile"))
}
