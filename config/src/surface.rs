//! The three storage surfaces of a profile (`state`, `cache`, `logs`) and their backends.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_norway::Value;
use sparkwing_contract::url::{StoreUrl, UrlError};

use crate::error::{ConfigError, Problem};
use crate::yaml::{Doc, Target, YPath};

/// Which surface of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SurfaceKind {
    /// Run and node records.
    State,
    /// Artifacts, state dumps and pipeline binaries.
    Cache,
    /// Node log parts.
    Logs,
}

impl SurfaceKind {
    /// Every surface, in the order they are shown.
    pub const ALL: [SurfaceKind; 3] = [SurfaceKind::State, SurfaceKind::Logs, SurfaceKind::Cache];

    /// The key in a profile: `state`, `cache` or `logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            SurfaceKind::State => "state",
            SurfaceKind::Cache => "cache",
            SurfaceKind::Logs => "logs",
        }
    }

    /// The types this build can open for the surface.
    pub fn valid_types(self) -> &'static [&'static str] {
        match self {
            SurfaceKind::State => &["sqlite", "s3"],
            SurfaceKind::Cache => &["filesystem", "s3"],
            SurfaceKind::Logs => &["filesystem", "s3", "stdout"],
        }
    }

    /// Types sparkwing knows for the surface but this build does not provide.
    fn unbuilt_types(self) -> &'static [&'static str] {
        match self {
            SurfaceKind::State => &["postgres", "mysql", "gcs", "azure-blob", "controller"],
            SurfaceKind::Cache | SurfaceKind::Logs => &["gcs", "azure-blob", "controller"],
        }
    }

    /// The built-in laptop default for the surface, under `home` (`$SPARKWING_HOME`).
    pub fn built_in(self, home: &Path) -> Surface {
        let home = sparkwing_contract::Home::at(home);
        match self {
            SurfaceKind::State => Surface::Sqlite {
                path: Some(home.state_db()),
            },
            SurfaceKind::Logs => Surface::Filesystem {
                path: home.logs_dir(),
            },
            SurfaceKind::Cache => Surface::Filesystem {
                path: home.artifacts_dir(),
            },
        }
    }
}

impl fmt::Display for SurfaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one surface lives.
///
/// [`Surface::spec_string`] renders it in the form the storage openers and the pipeline binary
/// (`SPARKWING_BACKENDS`) take:
///
/// ```
/// use std::path::PathBuf;
/// use sparkwing_config::Surface;
///
/// let s3 = Surface::S3 { bucket: "team-ci".into(), prefix: "logs".into() };
/// assert_eq!(s3.spec_string(), "s3://team-ci/logs");
/// let fs = Surface::Filesystem { path: PathBuf::from("/var/sw/runs") };
/// assert_eq!(fs.spec_string(), "filesystem:/var/sw/runs");
/// assert_eq!(Surface::Sqlite { path: None }.spec_string(), "sqlite");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Surface {
    /// SQLite database (state only); `None` means the default `$SPARKWING_HOME/state.db`.
    /// Resolution always fills the path in.
    Sqlite {
        /// Absolute database path.
        path: Option<PathBuf>,
    },
    /// A directory (cache and logs).
    Filesystem {
        /// Absolute directory path.
        path: PathBuf,
    },
    /// An S3 bucket, optionally under a key prefix (no leading or trailing `/`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, possibly empty.
        prefix: String,
    },
    /// The console (logs only).
    Stdout,
}

impl Surface {
    /// The spec string: `sqlite`, `sqlite:/path`, `filesystem:/path`, `s3://bucket`,
    /// `s3://bucket/prefix` or `stdout`.
    pub fn spec_string(&self) -> String {
        match self {
            Surface::Sqlite { path: None } => "sqlite".to_owned(),
            Surface::Sqlite { path: Some(p) } => format!("sqlite:{}", p.display()),
            Surface::Filesystem { path } => format!("filesystem:{}", path.display()),
            Surface::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Surface::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Surface::Stdout => "stdout".to_owned(),
        }
    }

    /// The surface a store URL flag names (`fs:///abs/path`, `filesystem:/abs/path`,
    /// `s3://bucket/prefix`), parsed by [`StoreUrl`].
    ///
    /// ```
    /// use sparkwing_config::Surface;
    ///
    /// let s = Surface::from_store_url("s3://team-ci/logs/").unwrap();
    /// assert_eq!(s.spec_string(), "s3://team-ci/logs");
    /// assert!(Surface::from_store_url("fs://relative").is_err());
    /// ```
    pub fn from_store_url(raw: &str) -> Result<Surface, UrlError> {
        StoreUrl::parse(raw).map(Surface::from)
    }

    /// The `type:` this surface was declared with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Surface::Sqlite { .. } => "sqlite",
            Surface::Filesystem { .. } => "filesystem",
            Surface::S3 { .. } => "s3",
            Surface::Stdout => "stdout",
        }
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec_string())
    }
}

impl From<StoreUrl> for Surface {
    fn from(url: StoreUrl) -> Surface {
        match url {
            StoreUrl::Filesystem(path) => Surface::Filesystem { path },
            StoreUrl::S3 { bucket, prefix } => Surface::S3 { bucket, prefix },
        }
    }
}

/// Parses the surface at `path` (`profiles.<profile>.<kind>`).
pub(crate) fn parse_surface(
    doc: &Doc<'_>,
    kind: SurfaceKind,
    profile: &str,
    v: &Value,
    path: &YPath,
) -> Result<(Surface, CacheRules), ConfigError> {
    let within = format!("the `{kind}` surface of profile `{profile}`");
    let Some(map) = doc.mapping(v, path, &within)? else {
        return Err(missing_type(doc, kind, path, &within));
    };
    // Type first: which other keys are allowed depends on it.
    let Some(ty_value) = map.get("type") else {
        return Err(missing_type(doc, kind, path, &within));
    };
    let ty_path = path.key("type");
    let ty = doc.string(ty_value, &ty_path, &format!("`type` in {within}"))?;
    if kind.unbuilt_types().contains(&ty.as_str()) {
        return Err(doc.err(
            &ty_path,
            Target::Value,
            Problem::NotImplemented {
                surface: kind.as_str(),
                ty,
                profile: profile.to_owned(),
            },
            Some(format!("use one of: {}", kind.valid_types().join(", "))),
        ));
    }
    if !kind.valid_types().contains(&ty.as_str()) {
        return Err(doc.err(
            &ty_path,
            Target::Value,
            Problem::UnknownType {
                surface: kind.as_str(),
                ty,
                profile: profile.to_owned(),
                valid: kind.valid_types().to_vec(),
            },
            None,
        ));
    }
    // `read_only` only means something for the cache: it keeps CI jobs that must not write
    // (pull requests) from publishing pipeline binaries.
    let allowed: &[&'static str] = match (ty.as_str(), kind) {
        ("filesystem", SurfaceKind::Cache) => &["type", "path", "read_only", "trusted_keys"],
        ("s3", SurfaceKind::Cache) => &["type", "bucket", "prefix", "read_only", "trusted_keys"],
        ("sqlite" | "filesystem", _) => &["type", "path"],
        ("s3", _) => &["type", "bucket", "prefix"],
        _ => &["type"],
    };
    let entries = doc.keys(
        map,
        path,
        &format!("the `{ty}` {kind} surface of profile `{profile}`"),
        allowed,
    )?;
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let read_only = match get("read_only") {
        Some(v) => doc.boolean(
            v,
            &path.key("read_only"),
            &format!("`read_only` in {within}"),
        )?,
        None => false,
    };
    let mut trusted_keys = Vec::new();
    if let Some(v) = get("trusted_keys") {
        let kp = path.key("trusted_keys");
        let what = format!("`trusted_keys` in {within}");
        for (i, item) in doc.sequence(v, &kp, &what)?.iter().enumerate() {
            let ip = kp.index(i);
            let key = doc.string(item, &ip, &what)?;
            if !is_minisign_public_key(key.trim()) {
                return Err(doc.err(
                    &ip,
                    Target::Value,
                    Problem::Invalid(format!(
                        "`{}` is not a minisign public key",
                        key.escape_debug()
                    )),
                    Some(
                        "use the second line of a `minisign.pub` file (56 characters starting with `RW`), as printed by `sparkwing cache keygen` or `minisign -G`"
                            .to_owned(),
                    ),
                ));
            }
            trusted_keys.push(key.trim().to_owned());
        }
    }
    let rules = CacheRules {
        read_only,
        trusted_keys,
    };
    let because = Some(format!("type `{ty}` needs it"));
    let surface = match ty.as_str() {
        "sqlite" => {
            let path = match get("path") {
                None => None,
                Some(v) => {
                    let p = path.key("path");
                    let raw = doc.string(v, &p, &format!("`path` in {within}"))?;
                    Some(doc.fs_path(&raw, &p, &within)?)
                }
            };
            Ok(Surface::Sqlite { path })
        }
        "filesystem" => {
            let Some(v) = get("path") else {
                return Err(doc.err(
                    path,
                    Target::Value,
                    Problem::MissingKey {
                        key: "path",
                        within,
                        because,
                    },
                    Some("add `path: /absolute/dir` (or `~/dir`)".to_owned()),
                ));
            };
            let p = path.key("path");
            let raw = doc.string(v, &p, &format!("`path` in {within}"))?;
            let dir = doc.fs_path(&raw, &p, &within)?;
            let spec = Surface::Filesystem { path: dir }.spec_string();
            checked(doc, &spec, &p, &p, &within)
        }
        "s3" => {
            let Some(v) = get("bucket") else {
                return Err(doc.err(
                    path,
                    Target::Value,
                    Problem::MissingKey {
                        key: "bucket",
                        within,
                        because,
                    },
                    Some("add `bucket: <name>` (and optionally `prefix: <path>`)".to_owned()),
                ));
            };
            let bp = path.key("bucket");
            let bucket = doc.string(v, &bp, &format!("`bucket` in {within}"))?;
            // A `/` would silently move part of the name into the prefix of `s3://bucket/prefix`.
            if bucket.is_empty() || bucket.contains('/') {
                return Err(bad_bucket(doc, &bucket, &bp, &within));
            }
            let pp = path.key("prefix");
            let prefix = match get("prefix") {
                None => String::new(),
                Some(v) => doc.string(v, &pp, &format!("`prefix` in {within}"))?,
            };
            let spec = Surface::S3 { bucket, prefix }.spec_string();
            checked(doc, &spec, &bp, &pp, &within)
        }
        _ => Ok(Surface::Stdout),
    }?;
    Ok((surface, rules))
}

/// What a cache surface declares beyond where it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheRules {
    /// `read_only: true`: readers only, never publish to it.
    pub read_only: bool,
    /// `trusted_keys`: minisign public keys (base64); when any is set, only entries signed by
    /// one of them are believed.
    pub trusted_keys: Vec<String>,
}

/// A minisign public key line: base64 of 42 bytes (`Ed`, an 8-byte key id, a 32-byte key).
fn is_minisign_public_key(s: &str) -> bool {
    s.len() == 56
        && s.starts_with("RW")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn missing_type(doc: &Doc<'_>, kind: SurfaceKind, path: &YPath, within: &str) -> ConfigError {
    doc.err(
        path,
        Target::Value,
        Problem::MissingKey {
            key: "type",
            within: within.to_owned(),
            because: None,
        },
        Some(format!(
            "add `type:` with one of: {}",
            kind.valid_types().join(", ")
        )),
    )
}

/// Runs a filesystem or S3 spec through the one store-URL parser, so what loads here also opens
/// later, and paths print the same way everywhere (trailing `/` and `.` segments dropped).
fn checked(
    doc: &Doc<'_>,
    spec: &str,
    bucket_path: &YPath,
    prefix_path: &YPath,
    within: &str,
) -> Result<Surface, ConfigError> {
    match StoreUrl::parse(spec) {
        Ok(url) => Ok(Surface::from(url)),
        Err(UrlError::BadBucket { bucket, .. }) => {
            Err(bad_bucket(doc, &bucket, bucket_path, within))
        }
        Err(UrlError::BadPrefix { reason, .. }) => Err(doc.err(
            prefix_path,
            Target::Value,
            Problem::Invalid(format!("unsafe prefix in {within}: {reason}")),
            Some("write the prefix as `a/b/c`".to_owned()),
        )),
        Err(e) => {
            // The message alone: the URL's hint does not apply to a YAML mapping.
            let first = e.to_string();
            Err(doc.err(
                bucket_path,
                Target::Value,
                Problem::Invalid(format!("{within}: {first}")),
                None,
            ))
        }
    }
}

fn bad_bucket(doc: &Doc<'_>, bucket: &str, path: &YPath, within: &str) -> ConfigError {
    doc.err(
        path,
        Target::Value,
        Problem::Invalid(format!(
            "bucket `{}` in {within} is not a valid S3 bucket name",
            bucket.escape_debug()
        )),
        Some(
            "use 3-63 characters: lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit"
                .to_owned(),
        ),
    )
}
