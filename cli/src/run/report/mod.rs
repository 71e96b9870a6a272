//! What a finished run leaves where CI users look, written by the supervisor after the pipeline
//! exits: a Markdown summary for the CI vendor's page (GitHub Actions' job summary, a Buildkite
//! annotation) and a JUnit XML report for its test view. Everything is read back from the run's
//! records and logs through the same reader `sparkwing runs show` uses, so the page says what the
//! stores say; logs were masked by the pipeline before they were stored and are never read from
//! anywhere else.

pub mod junit;
pub mod markdown;
pub mod publish;
pub mod results;

pub use publish::{Request, publish};
