//! The machine-local pipeline binary cache.
//!
//! ```text
//! <root>/                               $SPARKWING_HOME/cache/pipelines/v1
//!   entries/<key>/pipeline              the executable (0755)
//!   entries/<key>/meta.json             format version, key inputs, sizes, blake3, stat fingerprint
//!   entries/<key>/used                  its mtime is the last use (LRU order)
//!   staging/<key>.<pid>.<nanos>/        a build in progress, renamed to entries/<key> when done
//!   trash/                              entries being deleted
//!   locks/<key>.lease                   shared while a binary runs; exclusive to delete the entry
//!   locks/<key>.build                   exclusive while one process materializes the key
//!   locks/prune.lock                    one pruner at a time
//! ```
//!
//! A hit costs a handful of syscalls: lock the lease, read `meta.json`, `stat` the binary, touch
//! `used`. The binary's blake3 is checked when its stat fingerprint (device, inode, size, mtime)
//! differs from the one recorded at publication, so a modified binary is never executed while an
//! untouched one is not re-read on every run.
//!
//! ```no_run
//! use sparkwing_bincache::{CacheKey, Limits, LocalCache, Source};
//! use std::path::PathBuf;
//!
//! let cache = LocalCache::open(PathBuf::from("/home/me/.sparkwing/cache/pipelines/v1"), Limits::from_env()?)?;
//! let key = CacheKey { key: "0123456789abcdef0123456789abcdef".into(), inputs: vec![], roots: vec![] };
//! let (lease, source) = cache.get_or_materialize(&key, |staging| {
//!     std::fs::copy("/tmp/built-pipeline", staging.join("pipeline"))?;
//!     Ok::<_, std::io::Error>(Source::Compiled)
//! })?;
//! println!("{} ({})", lease.binary().display(), source.as_str());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::BINARY_FILE;
use crate::fs_error::io;
use crate::key::{CacheKey, KeyInput};
use crate::limits::Limits;
use crate::lock::{self, Held, Mode};

mod evict;
mod render;
pub use render::{render_info, render_prune};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Version of the entry layout and `meta.json`; an entry of another version is rebuilt.
pub const ENTRY_FORMAT_VERSION: u32 = 1;

const META_FILE: &str = "meta.json";
const USED_FILE: &str = "used";

/// Where a pipeline binary came from (the values of `SPARKWING_BINARY_SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Already in the local cache.
    Cached,
    /// Downloaded from the remote cache and verified.
    RemoteCache,
    /// Built with cargo on this machine.
    Compiled,
}

impl Source {
    /// `cached`, `remote-cache` or `compiled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cached => "cached",
            Source::RemoteCache => "remote-cache",
            Source::Compiled => "compiled",
        }
    }
}

/// Something the user should see while the cache works (waiting, a discarded entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Another process holds the build lock for this key; this one waits for its result.
    Waiting {
        key: String,
        holder: String,
        lock: PathBuf,
    },
    /// An entry failed its checks and is rebuilt instead of executed.
    CorruptEntry { key: String, reason: String },
    /// Pruning after a publication failed; the run goes on.
    PruneFailed { message: String },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Waiting { key, holder, lock } => write!(
                f,
                "waiting for {holder} to finish building pipeline {key} (lock `{}`)",
                lock.display()
            ),
            Notice::CorruptEntry { key, reason } => write!(
                f,
                "warning: cached pipeline {key} is unusable ({reason}); rebuilding it"
            ),
            Notice::PruneFailed { message } => {
                write!(f, "warning: failed to prune the pipeline cache: {message}")
            }
        }
    }
}

type Reporter = Box<dyn Fn(&Notice) + Send + Sync>;

/// A cache operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// File-system trouble.
    #[error(transparent)]
    Io(#[from] crate::FsError),
    /// A key that is not 16–64 lowercase hex characters (it becomes a directory name).
    #[error("use `{0}` as a pipeline cache key: expected 16 to 64 lowercase hex characters")]
    BadKey(String),
    /// Waiting for another process's build took too long.
    #[error(
        "wait for the pipeline build lock `{lock}` held by {holder}: gave up after {waited_secs} s"
    )]
    LockTimeout {
        lock: PathBuf,
        holder: String,
        waited_secs: u64,
    },
    /// The materializer returned success without leaving an executable.
    #[error("publish the pipeline binary: `{path}` {what}")]
    NoBinary { path: PathBuf, what: &'static str },
}

impl sparkwing_contract::hint::Hinted for CacheError {
    fn hint(&self) -> Option<String> {
        match self {
            CacheError::LockTimeout { .. } => Some(
                "let that build finish, or raise `SPARKWING_CACHE_LOCK_TIMEOUT` (seconds)".into(),
            ),
            CacheError::NoBinary { .. } => {
                Some("the materializer must leave the executable at `<staging>/pipeline`".into())
            }
            _ => None,
        }
    }
}

/// [`LocalCache::get_or_materialize`] failed in the cache or in the materializer.
#[derive(Debug)]
pub enum GetError<E> {
    /// The cache itself failed.
    Cache(CacheError),
    /// The materializer (build or fetch) failed; its error is passed through unchanged.
    Materialize(E),
}

impl<E: std::fmt::Display> std::fmt::Display for GetError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::Cache(e) => e.fmt(f),
            GetError::Materialize(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for GetError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Cache(e) => e.source(),
            GetError::Materialize(e) => e.source(),
        }
    }
}

impl<E> From<CacheError> for GetError<E> {
    fn from(e: CacheError) -> Self {
        GetError::Cache(e)
    }
}

impl<E> From<crate::FsError> for GetError<E> {
    fn from(e: crate::FsError) -> Self {
        GetError::Cache(e.into())
    }
}

/// A shared hold on a cache entry: while it lives, no prune deletes the entry. Keep it for as
/// long as the binary runs.
#[derive(Debug)]
pub struct Lease {
    _lock: Held,
    key: String,
    entry_dir: PathBuf,
    binary: PathBuf,
}

impl Lease {
    /// The executable.
    pub fn binary(&self) -> &Path {
        &self.binary
    }
    /// `entries/<key>/`.
    pub fn entry_dir(&self) -> &Path {
        &self.entry_dir
    }
    /// The cache key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

#[cfg(unix)]
fn fingerprint(m: &fs::Metadata) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    Fingerprint {
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    }
}

/// `entries/<key>/meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format_version: u32,
    key: String,
    created: String,
    source: Source,
    binary_size: u64,
    binary_blake3: String,
    fingerprint: Fingerprint,
    inputs: Vec<KeyInput>,
}

enum Check {
    Valid,
    Missing,
    Corrupt(String),
}

/// One entry as `cache info` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryInfo {
    /// The cache key.
    pub key: String,
    /// Bytes on disk.
    pub bytes: u64,
    /// When it was published (RFC 3339), if its metadata is readable.
    pub created: Option<String>,
    /// Last use (RFC 3339).
    pub last_used: String,
    /// How it got here.
    pub source: Option<Source>,
    /// A binary from this entry is running now.
    pub in_use: bool,
    /// Why the entry would be rebuilt instead of used, if it would.
    pub problem: Option<String>,
}

/// `sparkwing cache info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheInfo {
    /// The cache root.
    pub root: PathBuf,
    /// Entries, most recently used first.
    pub entries: Vec<EntryInfo>,
    /// Sum of entry sizes.
    pub total_bytes: u64,
    /// The ceilings in force.
    pub limits: Limits,
}

/// What [`LocalCache::prune`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneOpts {
    /// Every entry not in use.
    All,
    /// Least recently used entries until the byte and entry ceilings hold.
    ToLimits,
    /// Entries not used for at least this long.
    OlderThan(Duration),
}

/// One removed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunedEntry {
    /// Its key.
    pub key: String,
    /// Bytes freed.
    pub bytes: u64,
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Entries removed, oldest first.
    pub removed: Vec<PrunedEntry>,
    /// Entries that would have gone but are in use (or being rebuilt) and were kept.
    pub kept_in_use: Vec<String>,
    /// Total bytes freed.
    pub freed_bytes: u64,
    /// Entries left.
    pub remaining_entries: u64,
    /// Bytes left.
    pub remaining_bytes: u64,
    /// Abandoned build directories of crashed processes that were removed.
    pub stale_staging_removed: u64,
}

/// The local cache. Cheap to open; all coordination between processes goes through lock files.
pub struct LocalCache {
    root: PathBuf,
    limits: Limits,
    reporter: Reporter,
}

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache")
            .field("root", &self.root)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn validate_key(key: &str) -> Result<(), CacheError> {
    if crate::key::is_cache_key(key) {
        Ok(())
    } else {
        Err(CacheError::BadKey(key.escape_debug().to_string()))
    }
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}.{}", std::process::id(), nanos)
}

fn fsync_dir(dir: &Path) -> Result<(), CacheError> {
    Ok(File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("sync directory", dir))?)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn rfc3339(t: SystemTime) -> String {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    sparkwing_contract::timefmt::unix_nanos_to_rfc3339(nanos)
}

impl LocalCache {
    /// The limits from `SPARKWING_CACHE_MAX_BYTES`, `SPARKWING_CACHE_MAX_ENTRIES` and
    /// `SPARKWING_CACHE_LOCK_TIMEOUT`; a value that cannot be read is an error naming it.
    pub fn limits_from_env() -> Result<Limits, crate::LimitsError> {
        Limits::from_env()
    }

    /// Opens (creating if needed) the cache at `root`. Notices go to stderr until
    /// [`LocalCache::with_reporter`] says otherwise.
    pub fn open(root: PathBuf, limits: Limits) -> Result<Self, CacheError> {
        for sub in ["entries", "staging", "locks", "trash"] {
            let d = root.join(sub);
            let mut b = fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&d).map_err(io("create directory", &d))?;
        }
        Ok(LocalCache {
            root,
            limits,
            reporter: Box::new(|n| eprintln!("sparkwing: {n}")),
        })
    }

    /// Routes notices (waiting for another build, a discarded entry) to `f`.
    pub fn with_reporter(mut self, f: impl Fn(&Notice) + Send + Sync + 'static) -> Self {
        self.reporter = Box::new(f);
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ceilings in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join("entries").join(key)
    }
    fn lease_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.lease"))
    }
    fn build_path(&self, key: &str) -> PathBuf {
        self.root.join("locks").join(format!("{key}.build"))
    }

    fn read_meta(&self, key: &str) -> Result<Meta, String> {
        let path = self.entry_dir(key).join(META_FILE);
        let bytes = fs::read(&path).map_err(|e| format!("unreadable `{META_FILE}`: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("bad `{META_FILE}`: {e}"))
    }

    /// Validates an entry. Only a changed stat fingerprint triggers re-hashing the binary.
    fn check(&self, key: &str) -> Check {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Check::Missing;
        }
        let meta = match self.read_meta(key) {
            Ok(m) => m,
            Err(reason) => return Check::Corrupt(reason),
        };
        if meta.format_version != ENTRY_FORMAT_VERSION {
            return Check::Corrupt(format!(
                "entry format {}, expected {ENTRY_FORMAT_VERSION}",
                meta.format_version
            ));
        }
        if meta.key != key {
            return Check::Corrupt(format!("metadata names key {}", meta.key));
        }
        let bin = dir.join(BINARY_FILE);
        let m = match fs::symlink_metadata(&bin) {
            Ok(m) => m,
            Err(_) => return Check::Corrupt("binary missing".into()),
        };
        if !m.is_file() {
            return Check::Corrupt("binary is not a regular file".into());
        }
        if m.len() != meta.binary_size {
            return Check::Corrupt(format!(
                "binary is {} bytes, expected {}",
                m.len(),
                meta.binary_size
            ));
        }
        if fingerprint(&m) != meta.fingerprint {
            match crate::tree::hash_file(&bin) {
                Ok(h) if h == meta.binary_blake3 => {}
                Ok(_) => return Check::Corrupt("binary content does not match its blake3".into()),
                Err(e) => return Check::Corrupt(e.to_string()),
            }
        }
        Check::Valid
    }

    fn touch(&self, key: &str) {
        let path = self.entry_dir(key).join(USED_FILE);
        if let Ok(f) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    fn lease(&self, key: &str, lock: Held) -> Lease {
        let entry_dir = self.entry_dir(key);
        Lease {
            _lock: lock,
            key: key.to_string(),
            binary: entry_dir.join(BINARY_FILE),
            entry_dir,
        }
    }

    /// A lease on a valid entry, or `None` (a corrupt entry counts as absent, with a notice).
    pub fn lookup(&self, key: &str) -> Result<Option<Lease>, CacheError> {
        validate_key(key)?;
        let lp = self.lease_path(key);
        let held = lock::lock(&lp, Mode::Shared).map_err(io("lock", &lp))?;
        match self.check(key) {
            Check::Valid => {
                self.touch(key);
                Ok(Some(self.lease(key, held)))
            }
            Check::Missing => Ok(None),
            Check::Corrupt(reason) => {
                (self.reporter)(&Notice::CorruptEntry {
                    key: key.to_string(),
                    reason,
                });
                Ok(None)
            }
        }
    }

    /// The binary for `key`: from the cache on a hit, else produced once by `materialize` under
    /// a per-key build lock (a concurrent process waits and then uses the result), published by
    /// rename, then the cache is pruned to its limits.
    ///
    /// `materialize` receives an empty staging directory and must leave the executable at
    /// `<staging>/pipeline`; it returns where the binary came from.
    pub fn get_or_materialize<E>(
        &self,
        key: &CacheKey,
        materialize: impl FnOnce(&Path) -> Result<Source, E>,
    ) -> Result<(Lease, Source), GetError<E>> {
        let k = key.key.as_str();
        validate_key(k)?;
        let lp = self.lease_path(k);
        let lease_lock = lock::lock(&lp, Mode::Shared).map_err(io("lock", &lp))?;
        match self.check(k) {
            Check::Valid => {
                self.touch(k);
                return Ok((self.lease(k, lease_lock), Source::Cached));
            }
            Check::Missing => {}
            Check::Corrupt(reason) => (self.reporter)(&Notice::CorruptEntry {
                key: k.to_string(),
                reason,
            }),
        }

        let bp = self.build_path(k);
        let waited = lock::lock_with_timeout(&bp, Mode::Exclusive, self.limits.lock_timeout, |h| {
            (self.reporter)(&Notice::Waiting {
                key: k.to_string(),
                holder: h.to_string(),
                lock: bp.clone(),
            })
        })
        .map_err(io("lock", &bp))?;
        let mut builder = waited.map_err(|holder| CacheError::LockTimeout {
            lock: bp.clone(),
            holder,
            waited_secs: self.limits.lock_timeout.as_secs(),
        })?;
        builder.write_holder(&lock::holder_text());

        // Whoever held the build lock before us may have published the entry.
        match self.check(k) {
            Check::Valid => {
                self.touch(k);
                return Ok((self.lease(k, lease_lock), Source::Cached));
            }
            Check::Missing => {}
            Check::Corrupt(_) => {
                let dir = self.entry_dir(k);
                let trash = self
                    .root
                    .join("trash")
                    .join(format!("{k}.{}", unique_suffix()));
                fs::rename(&dir, &trash).map_err(io("move aside", &dir))?;
                let _ = fs::remove_dir_all(&trash);
            }
        }

        let staging = self
            .root
            .join("staging")
            .join(format!("{k}.{}", unique_suffix()));
        fs::create_dir(&staging).map_err(io("create directory", &staging))?;
        let source = match materialize(&staging) {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(GetError::Materialize(e));
            }
        };
        if let Err(e) = self.publish(key, &staging, source) {
            let _ = fs::remove_dir_all(&staging);
            return Err(e.into());
        }
        self.touch(k);
        drop(builder);

        if let Err(e) = self.prune_inner(PruneOpts::ToLimits, false) {
            (self.reporter)(&Notice::PruneFailed {
                message: e.to_string(),
            });
        }
        Ok((self.lease(k, lease_lock), source))
    }

    fn publish(&self, key: &CacheKey, staging: &Path, source: Source) -> Result<(), CacheError> {
        let bin = staging.join(BINARY_FILE);
        let m = match fs::symlink_metadata(&bin) {
            Ok(m) => m,
            Err(_) => {
                return Err(CacheError::NoBinary {
                    path: bin,
                    what: "is missing",
                });
            }
        };
        if !m.is_file() {
            return Err(CacheError::NoBinary {
                path: bin,
                what: "is not a regular file",
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))
                .map_err(io("set permissions on", &bin))?;
        }
        let f = File::open(&bin).map_err(io("open", &bin))?;
        f.sync_all().map_err(io("sync", &bin))?;
        drop(f);
        let blake3 = crate::tree::hash_file(&bin).map_err(|e| io("hash", &bin)(e.source))?;
        let m = fs::metadata(&bin).map_err(io("stat", &bin))?;
        let meta = Meta {
            format_version: ENTRY_FORMAT_VERSION,
            key: key.key.clone(),
            created: sparkwing_contract::timefmt::now_rfc3339(),
            source,
            binary_size: m.len(),
            binary_blake3: blake3,
            fingerprint: fingerprint(&m),
            inputs: key.inputs.clone(),
        };
        let meta_path = staging.join(META_FILE);
        let bytes = serde_json::to_vec_pretty(&meta).expect("meta serializes");
        let mut f = File::create(&meta_path).map_err(io("write", &meta_path))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(io("write", &meta_path))?;
        fsync_dir(staging)?;
        let dest = self.entry_dir(&key.key);
        fs::rename(staging, &dest).map_err(io("publish", &dest))?;
        fsync_dir(&self.root.join("entries"))?;
        Ok(())
    }
}
