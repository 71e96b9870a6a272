//! Where a run's records live, decided once for the supervisor, the pipeline process and every
//! reader. Surfaces are passed across the process boundary as spec strings (`sqlite:/path`,
//! `filesystem:/dir`, `s3://bucket/prefix`, `stdout`).

use crate::home::Home;
use std::path::PathBuf;

/// The object key of a run's state dump in an artifact store.
pub fn state_key(run_id: &str) -> String {
    format!("runs/{run_id}/state.ndjson")
}

/// The run id of a state-dump key (`runs/<id>/state.ndjson`, one segment), else `None`.
pub fn run_of_state_key(key: &str) -> Option<&str> {
    key.strip_prefix("runs/")?
        .strip_suffix("/state.ndjson")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The SQLite file of the run record: the path of a `sqlite:/abs/path` state surface, else the
/// home's `state.db`.
pub fn state_db(state_spec: &str, home: &Home) -> PathBuf {
    match state_spec.strip_prefix("sqlite:") {
        Some(path) if path.starts_with('/') => PathBuf::from(path),
        _ => home.state_db(),
    }
}

/// Whether a spec names a bucket.
pub fn is_bucket(spec: &str) -> bool {
    spec.starts_with("s3://")
}

/// Where `runs/<id>/state.ndjson` is streamed and read: the state surface when it is a bucket,
/// otherwise the cache surface.
pub fn state_dump_spec<'a>(state_spec: &'a str, cache_spec: &'a str) -> &'a str {
    if is_bucket(state_spec) {
        state_spec
    } else {
        cache_spec
    }
}

/// The built-in laptop surfaces under `home`: `(state, logs, cache)` spec strings.
pub fn built_in_specs(home: &Home) -> (String, String, String) {
    (
        format!("sqlite:{}", home.state_db().display()),
        format!("filesystem:{}", home.logs_dir().display()),
        format!("filesystem:{}", home.artifacts_dir().display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn rules() {
        assert_eq!(state_key("run-1"), "runs/run-1/state.ndjson");
        assert_eq!(run_of_state_key("runs/run-1/state.ndjson"), Some("run-1"));
        assert_eq!(run_of_state_key("runs/a/b/state.ndjson"), None);
        assert_eq!(run_of_state_key("runs//state.ndjson"), None);
        let home = Home::at("/h");
        assert_eq!(
            state_db("sqlite:/data/s.db", &home),
            Path::new("/data/s.db")
        );
        assert_eq!(state_db("sqlite", &home), Path::new("/h/state.db"));
        assert_eq!(state_db("s3://b/state", &home), Path::new("/h/state.db"));
        assert_eq!(
            state_dump_spec("s3://b/state", "s3://b/cache"),
            "s3://b/state"
        );
        assert_eq!(
            state_dump_spec("sqlite:/h/state.db", "s3://b/cache"),
            "s3://b/cache"
        );
        let (s, l, c) = built_in_specs(&home);
        assert_eq!(
            (s.as_str(), l.as_str(), c.as_str()),
            (
                "sqlite:/h/state.db",
                "filesystem:/h/runs",
                "filesystem:/h/artifacts"
            )
        );
    }
}
