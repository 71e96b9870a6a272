//! The one file-system error of this crate: what was being done, to which path, and why. Every
//! error enum here wraps it (`Io(FsError)`), so the message reads the same everywhere.

use std::path::{Path, PathBuf};

/// A file-system operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} `{path}`: {source}")]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A `map_err` adapter: `.map_err(io("read", &path))?` (the `?` converts into any error enum of
/// this crate).
pub(crate) fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError {
        op,
        path: path.to_path_buf(),
        source,
    }
}
