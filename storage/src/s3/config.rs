//! Where an S3 store connects to and with which credentials, resolved from the environment.

use crate::error::{Result, StoreError};
use ::s3::creds::Credentials;
use ::s3::region::Region;
use sparkwing_contract::env;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Region used with a custom endpoint when none is configured: S3-compatible servers accept any.
pub const DEFAULT_CUSTOM_REGION: &str = "us-east-1";

/// Endpoint, region and credentials of an S3 service.
///
/// [`S3Config::from_env`] follows the AWS conventions: `AWS_REGION` / `AWS_DEFAULT_REGION` (or a
/// region in `~/.aws/config`), `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN`, else the standard credential chain (profile files, web identity,
/// container and instance metadata). `SPARKWING_S3_ENDPOINT` points at any S3-compatible server
/// and switches to path-style addressing.
///
/// ```
/// use sparkwing_storage::s3::S3Config;
///
/// let cfg = S3Config::with_static_credentials(
///     Some("http://127.0.0.1:8333"),
///     None,
///     "access",
///     "secret",
///     None,
/// )
/// .unwrap();
/// assert_eq!(cfg.region(), "us-east-1");
/// assert!(!format!("{cfg:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct S3Config {
    endpoint: Option<String>,
    region: String,
    credentials: Credentials,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials never reach a log line, not even the key id.
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

impl S3Config {
    /// Resolves the configuration from the process environment.
    pub fn from_env() -> Result<S3Config> {
        S3Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Resolves the configuration from `lookup` (an environment). Profile files are read from
    /// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` or `$HOME/.aws/`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<S3Config> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let endpoint = get(env::S3_ENDPOINT);
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .or_else(|| region_from_config_file(&get));
        let region = match (region, &endpoint) {
            (Some(r), _) => r.trim().to_string(),
            (None, Some(_)) => DEFAULT_CUSTOM_REGION.to_string(),
            (None, None) => {
                return Err(StoreError::config_hint(
                    "open an s3 store: no AWS region configured",
                    format!(
                        "set AWS_REGION (or a region in ~/.aws/config); for a non-AWS S3-compatible store also set {} to its URL, and any region value will do",
                        env::S3_ENDPOINT
                    ),
                ));
            }
        };
        let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(ak), Some(sk)) => {
                let token = get("AWS_SESSION_TOKEN");
                static_credentials(&ak, &sk, token.as_deref())?
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(StoreError::config_hint(
                    "open an s3 store: only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set",
                    "set both, or neither to use a profile or instance credentials",
                ));
            }
            (None, None) => {
                let profile = get("AWS_PROFILE");
                Credentials::new(None, None, None, None, profile.as_deref()).map_err(|_| {
                    StoreError::config_hint(
                        "open an s3 store: no AWS credentials found",
                        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure a profile in ~/.aws/credentials",
                    )
                })?
            }
        };
        S3Config::build(endpoint, region, credentials)
    }

    /// A configuration with explicit credentials, e.g. for a test server. `region` defaults to
    /// `us-east-1` when an endpoint is given.
    pub fn with_static_credentials(
        endpoint: Option<&str>,
        region: Option<&str>,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
    ) -> Result<S3Config> {
        let region = match (region, endpoint) {
            (Some(r), _) => r.to_string(),
            (None, Some(_)) => DEFAULT_CUSTOM_REGION.to_string(),
            (None, None) => {
                return Err(StoreError::config_hint(
                    "open an s3 store: no region given and no endpoint",
                    "pass a region, or an endpoint for an S3-compatible server",
                ));
            }
        };
        let credentials = static_credentials(access_key, secret_key, session_token)?;
        S3Config::build(endpoint.map(str::to_string), region, credentials)
    }

    fn build(endpoint: Option<String>, region: String, credentials: Credentials) -> Result<Self> {
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(StoreError::config_hint(
                format!(
                    "open an s3 store: {} `{e}` is not an http(s) URL",
                    env::S3_ENDPOINT
                ),
                "use e.g. `http://127.0.0.1:8333`",
            ));
        }
        Ok(S3Config {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            region,
            credentials,
        })
    }

    /// The custom endpoint, if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The signing region.
    pub fn region(&self) -> &str {
        &self.region
    }

    pub(crate) fn credentials(&self) -> Credentials {
        self.credentials.clone()
    }

    /// The rust-s3 region: custom endpoints keep the configured region name for signing.
    pub(crate) fn s3_region(&self) -> Result<Region> {
        match &self.endpoint {
            Some(endpoint) => Ok(Region::Custom {
                region: self.region.clone(),
                endpoint: endpoint.clone(),
            }),
            None => match self.region.parse::<Region>() {
                // A region this rust-s3 does not list (a new AWS region): use the standard
                // regional endpoint instead of the library's placeholder.
                Ok(Region::Custom { region, .. }) => Ok(Region::Custom {
                    endpoint: format!("https://s3.{region}.amazonaws.com"),
                    region,
                }),
                Ok(r) => Ok(r),
                Err(e) => Err(StoreError::config_hint(
                    format!(
                        "open an s3 store: region `{}` is not usable: {e}",
                        self.region
                    ),
                    "set AWS_REGION to an AWS region such as `eu-west-1`",
                )),
            },
        }
    }
}

fn static_credentials(ak: &str, sk: &str, token: Option<&str>) -> Result<Credentials> {
    // The session token goes in both slots: rust-s3 signs `x-amz-security-token` from either.
    Credentials::new(Some(ak), Some(sk), token, token, None).map_err(|_| {
        StoreError::config(
            "open an s3 store: the AWS credentials from the environment are unusable",
        )
    })
}

/// `region = …` of the active profile in the AWS config file.
fn region_from_config_file(get: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let path = get("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".aws").join("config")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let profile = get("AWS_PROFILE").unwrap_or_else(|| "default".into());
    region_in_config(&text, &profile)
}

fn region_in_config(text: &str, profile: &str) -> Option<String> {
    let wanted = [format!("[{profile}]"), format!("[profile {profile}]")];
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            let header = line.split_whitespace().collect::<Vec<_>>().join(" ");
            in_section = wanted.contains(&header);
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "region"
            && !v.trim().is_empty()
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// Retry, timeout and transfer tuning of an S3 store. The defaults suit CI runners.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Upper bound of one HTTP request, body included; a stalled call fails and is retried.
    pub request_timeout: Duration,
    /// Attempts per call, the first included (retried: 5xx, 408, 429, connection errors).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled each time, with jitter.
    pub base_backoff: Duration,
    /// Ceiling of one backoff delay.
    pub max_backoff: Duration,
    /// Multipart part size and ranged-read size (S3 needs ≥ 5 MiB for all but the last part).
    pub part_size: usize,
    /// Parts in flight per streamed upload or download; memory is about this × `part_size` × 3.
    pub max_in_flight_parts: usize,
    /// Concurrent GETs when reading many small log parts.
    pub read_concurrency: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            request_timeout: Duration::from_secs(60),
            max_attempts: 5,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            part_size: 8 * 1024 * 1024,
            max_in_flight_parts: 2,
            read_concurrency: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const CREDS: [(&str, &str); 2] = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
    ];

    #[test]
    fn no_region_and_no_endpoint_is_a_clear_error() {
        let err = sparkwing_contract::hint::with_hint(
            &S3Config::from_lookup(lookup(&[CREDS[0], CREDS[1], ("HOME", "/nonexistent")]))
                .unwrap_err(),
        );
        assert!(err.contains("no AWS region configured"), "{err}");
        assert!(err.contains("AWS_REGION"), "{err}");
        assert!(err.contains("SPARKWING_S3_ENDPOINT"), "{err}");
    }

    #[test]
    fn endpoint_defaults_the_region() {
        let cfg = S3Config::from_lookup(lookup(&[
            CREDS[0],
            CREDS[1],
            ("HOME", "/nonexistent"),
            ("SPARKWING_S3_ENDPOINT", "http://127.0.0.1:9000/"),
        ]))
        .unwrap();
        assert_eq!(cfg.region(), "us-east-1");
        assert_eq!(cfg.endpoint(), Some("http://127.0.0.1:9000"));
        assert!(matches!(cfg.s3_region().unwrap(), Region::Custom { .. }));
    }

    #[test]
    fn region_precedence() {
        let cfg = S3Config::from_lookup(lookup(&[
            CREDS[0],
            CREDS[1],
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
        ]))
        .unwrap();
        assert_eq!(cfg.region(), "eu-west-1");
        let cfg = S3Config::from_lookup(lookup(&[
            CREDS[0],
            CREDS[1],
            ("AWS_DEFAULT_REGION", "us-west-2"),
        ]))
        .unwrap();
        assert_eq!(cfg.region(), "us-west-2");
        assert_eq!(cfg.s3_region().unwrap(), Region::UsWest2);
    }

    #[test]
    fn region_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            "[default]\nregion = eu-central-1\n\n[profile ci]\noutput=json\nregion=ap-south-1\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let cfg =
            S3Config::from_lookup(lookup(&[CREDS[0], CREDS[1], ("AWS_CONFIG_FILE", f)])).unwrap();
        assert_eq!(cfg.region(), "eu-central-1");
        let cfg = S3Config::from_lookup(lookup(&[
            CREDS[0],
            CREDS[1],
            ("AWS_CONFIG_FILE", f),
            ("AWS_PROFILE", "ci"),
        ]))
        .unwrap();
        assert_eq!(cfg.region(), "ap-south-1");
    }

    #[test]
    fn half_credentials_and_bad_endpoints_are_refused_without_echoing_secrets() {
        let err = S3Config::from_lookup(lookup(&[
            ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
            ("AWS_REGION", "us-east-1"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
        assert!(!err.contains("very-secret-value"), "{err}");
        let err = S3Config::from_lookup(lookup(&[
            CREDS[0],
            CREDS[1],
            ("SPARKWING_S3_ENDPOINT", "127.0.0.1:9000"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("`127.0.0.1:9000`"), "{err}");
        let cfg =
            S3Config::from_lookup(lookup(&[CREDS[0], CREDS[1], ("AWS_REGION", "x")])).unwrap();
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("very-secret-value") && !dbg.contains("AKIDEXAMPLE"),
            "{dbg}"
        );
    }
}
