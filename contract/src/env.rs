//! Every `SPARKWING_*` environment variable, in one place.
//!
//! The supervisor (`sparkwing run`) sets the `CHILD_*`-documented ones for the pipeline binary;
//! the others are read by whichever process documents them.

/// `local` or `ci-embedded`. Read by `sparkwing run` when `--sw-mode` is absent; set by the
/// supervisor for the child.
pub const MODE: &str = "SPARKWING_MODE";
/// Worker cap (integer ≥ 1). Read by `sparkwing run` when `--sw-workers` is absent; set by the
/// supervisor for the child.
pub const WORKERS: &str = "SPARKWING_WORKERS";
/// Where the supervisor took the mode from (`flag`, `env` or `default`), for the run record.
pub const MODE_FROM: &str = "SPARKWING_MODE_FROM";
/// Where the supervisor took the worker cap from (`flag`, `env` or `default`), for the record.
pub const WORKERS_FROM: &str = "SPARKWING_WORKERS_FROM";
/// Run id allocated by the supervisor (`run-YYYYMMDD-HHMMSS-<8 hex>`).
pub const RUN_ID: &str = "SPARKWING_RUN_ID";
/// Root of local state: `state.db`, `runs/`, `cache/`. Defaults to `~/.sparkwing`.
pub const HOME: &str = "SPARKWING_HOME";
/// Name of the resolved profile, for the child's records.
pub const PROFILE: &str = "SPARKWING_PROFILE";
/// JSON of the resolved storage surfaces (`{"state":…,"logs":…,"cache":…}` spec strings) the
/// supervisor hands to the child so that both agree on where a run is written.
pub const BACKENDS: &str = "SPARKWING_BACKENDS";
/// Repository root (the directory holding `.sparkwing/`); the child's working directory.
pub const WORK_DIR: &str = "SPARKWING_WORK_DIR";
/// Path of the `sparkwing` CLI that spawned the child.
pub const CLI_BIN: &str = "SPARKWING_CLI_BIN";
/// Where the pipeline binary came from: `cached`, `remote-cache` or `compiled`.
pub const BINARY_SOURCE: &str = "SPARKWING_BINARY_SOURCE";
/// Path of the supervisor's relay socket: the child makes its bucket store calls and hands its
/// run records over it (the pipeline binary links neither an S3 client nor SQLite). Set by the
/// supervisor for the child only; jobs never see it.
pub const RELAY: &str = "SPARKWING_RELAY";
/// The token the child presents on the relay socket. Set with [`RELAY`].
pub const RELAY_TOKEN: &str = "SPARKWING_RELAY_TOKEN";
/// Console format for the child: `pretty` (default on a TTY), `plain` or `json`.
pub const LOG_FORMAT: &str = "SPARKWING_LOG_FORMAT";
/// Custom S3 endpoint (forces path-style addressing).
pub const S3_ENDPOINT: &str = "SPARKWING_S3_ENDPOINT";
/// `1`: trust the committed sparks overlay and never resolve.
pub const NO_SPARKS_RESOLVE: &str = "SPARKWING_NO_SPARKS_RESOLVE";
/// Local pipeline cache ceiling in bytes (`512MB`, `4GiB`, `0` = unlimited). Default 2 GiB.
pub const CACHE_MAX_BYTES: &str = "SPARKWING_CACHE_MAX_BYTES";
/// Local pipeline cache ceiling in entries (`0` = unlimited). Default 20.
pub const CACHE_MAX_ENTRIES: &str = "SPARKWING_CACHE_MAX_ENTRIES";
/// Seconds to wait for another process's build of the same key before giving up. Default 1800.
pub const CACHE_LOCK_TIMEOUT: &str = "SPARKWING_CACHE_LOCK_TIMEOUT";
/// Cargo target directory used for pipeline builds (shared by every pipeline on this machine).
/// Defaults to `$SPARKWING_HOME/cache/target`.
pub const CARGO_TARGET_DIR: &str = "SPARKWING_CARGO_TARGET_DIR";
/// Path of the `cargo` executable to build pipelines with. Defaults to `cargo` on `PATH`.
pub const CARGO: &str = "SPARKWING_CARGO";
/// Grace period in milliseconds between SIGTERM and SIGKILL for a node's process group.
pub const KILL_GRACE_MS: &str = "SPARKWING_KILL_GRACE_MS";
/// On a CI console that holds each job's lines until it ends (several workers), how often, in
/// milliseconds, a line says each running job is alive: its lines so far and the last one.
/// Default 30000; `0` turns it off.
pub const PROGRESS_MS: &str = "SPARKWING_PROGRESS_MS";
/// Comma-separated names of environment variables whose values are secrets to mask.
pub const SECRET_ENV: &str = "SPARKWING_SECRET_ENV";
/// A minisign secret key (the text of the key file) that signs published cache manifests.
/// Read by the supervisor only; never passed to the pipeline process.
pub const CACHE_SIGNING_KEY: &str = "SPARKWING_CACHE_SIGNING_KEY";
/// Path of a minisign secret key file, when `SPARKWING_CACHE_SIGNING_KEY` is unset.
pub const CACHE_SIGNING_KEY_FILE: &str = "SPARKWING_CACHE_SIGNING_KEY_FILE";
/// Password of an encrypted signing key.
pub const CACHE_SIGNING_KEY_PASSWORD: &str = "SPARKWING_CACHE_SIGNING_KEY_PASSWORD";
/// `1`: never publish to the remote binary cache (untrusted jobs).
pub const NO_CACHE_WRITE: &str = "SPARKWING_NO_CACHE_WRITE";
/// `1`: neither restore nor publish compiled dependency sets (`bin/deps/<key>` of the cache
/// surface); a build of a new key then compiles every dependency it does not find locally.
pub const NO_DEPS_CACHE: &str = "SPARKWING_NO_DEPS_CACHE";
/// Profiles file override (else `$XDG_CONFIG_HOME/sparkwing/profiles.yaml`, else
/// `~/.config/sparkwing/profiles.yaml`).
pub const PROFILES: &str = "SPARKWING_PROFILES";
/// Path of a JUnit XML report of the run, written by `sparkwing run` after the pipeline exits
/// (one test case per job), when `--junit` is absent.
pub const JUNIT: &str = "SPARKWING_JUNIT";
/// `1`: `runs logs --follow` and the dashboard look for changes of local runs every half second
/// instead of waiting on file events (for a home on a network filesystem, whose remote writes
/// raise no events here).
pub const NO_FILE_EVENTS: &str = "SPARKWING_NO_FILE_EVENTS";
/// Base URL of a sparkwing dashboard that reads this run's stores: the CI page's summary links
/// the run there (`<url>/#/runs/<id>`).
pub const DASHBOARD_URL: &str = "SPARKWING_DASHBOARD_URL";
/// This process's shard of a run split across several CI jobs: `I/N` (1-based `I`), `auto`
/// (read the CI vendor's parallel-job variables) or `wait` (wait for the whole run). Read by
/// `sparkwing run` when `--sw-shard` is absent; set to `I/N` by the supervisor for the child.
pub const SHARD: &str = "SPARKWING_SHARD";
/// With `--sw-shard=auto`: this job's shard index, 1-based, for a vendor whose index is not in
/// the environment (GitHub Actions: a 1-based matrix value, `${{ matrix.shard }}`).
pub const SHARD_INDEX: &str = "SPARKWING_SHARD_INDEX";
/// With `--sw-shard=auto`: the number of shards (GitHub Actions: `strategy.job-total`).
pub const SHARD_TOTAL: &str = "SPARKWING_SHARD_TOTAL";
/// The run id every shard of one run shares, when `--sw-run-id` is absent.
pub const RUN_ID_OVERRIDE: &str = "SPARKWING_SHARD_RUN_ID";
/// How often, in milliseconds, a run in flight rewrites its state in a bucket even when nothing
/// changed (default 30000). A shard whose state goes unwritten for four intervals is taken as
/// gone: the jobs that wait on it fail.
pub const HEARTBEAT_MS: &str = "SPARKWING_HEARTBEAT_MS";

/// The execution mode (`SPARKWING_MODE`): `local`, or `ci-embedded` inside a CI job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Local,
    CiEmbedded,
}

impl Mode {
    /// The spelling in `SPARKWING_MODE`, flags and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::CiEmbedded => "ci-embedded",
        }
    }

    /// Parses a spelling (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "local" => Some(Mode::Local),
            "ci-embedded" => Some(Mode::CiEmbedded),
            _ => None,
        }
    }
}
