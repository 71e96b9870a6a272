//! sparkwing configuration: the user's `profiles.yaml`, a project's `.sparkwing/sparkwing.yaml`,
//! and which profile (set of storage surfaces) a command uses.
//!
//! ```
//! use std::path::Path;
//! use sparkwing_config::{ProfilesFile, ProjectConfig, render_pretty, resolve};
//!
//! let project = ProjectConfig::parse(
//!     "defaults: { profile: shared }\n\
//!      profiles:\n  shared:\n    cache: { type: s3, bucket: team, prefix: cache }\n",
//!     Path::new("/repo/.sparkwing/sparkwing.yaml"),
//!     None,
//! ).unwrap();
//! let user = ProfilesFile::parse("", Path::new("/home/ada/.config/sparkwing/profiles.yaml"), None).unwrap();
//! let resolved = resolve(None, Some(&project), &user, Path::new("/home/ada/.sparkwing")).unwrap();
//! assert_eq!(resolved.name, "shared");
//! assert_eq!(resolved.cache.spec_string(), "s3://team/cache");
//! assert!(render_pretty(&resolved).starts_with("effective profile: shared\n"));
//! ```
//!
//! Every problem in a file is reported as `path:line:col: message`, with a `hint:` line when
//! there is an obvious fix; unknown keys are errors at any depth in both files.

mod error;
mod profile;
mod project;
mod render;
mod resolve;
mod surface;
mod yaml;

pub use error::{AvailableProfile, ConfigError, Location, Problem};
pub use profile::{EnvLookup, Profile, ProfilesFile, home_dir};
pub use project::{PROJECT_FILE, PipelineEntry, ProjectConfig, Spark};
pub use render::{render_pretty, to_json};
pub use resolve::{BUILT_IN, Considered, Resolved, Source, resolve};
pub use surface::{CacheRules, Surface, SurfaceKind};
