//! Ceilings of the local cache and how long to wait for another process's build.

use serde::Serialize;
use sparkwing_contract::env;
use std::time::Duration;

/// Default byte ceiling: 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Default entry ceiling.
pub const DEFAULT_MAX_ENTRIES: u64 = 20;
/// Default wait for another process's build of the same key: 30 minutes, longer than a cold
/// build of a large pipeline.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(1800);

/// Bounds of the local cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Total bytes of all entries; `None` = unlimited.
    pub max_bytes: Option<u64>,
    /// Number of entries; `None` = unlimited.
    pub max_entries: Option<u64>,
    /// How long to wait for another process building the same key.
    #[serde(rename = "lock_timeout_secs", serialize_with = "secs")]
    pub lock_timeout: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: Some(DEFAULT_MAX_BYTES),
            max_entries: Some(DEFAULT_MAX_ENTRIES),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

/// A limit variable holds a value that is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read `{var}`: `{value}` is not {expected}")]
pub struct LimitsError {
    /// The variable name.
    pub var: &'static str,
    /// Its value (sizes and counts only; never a secret).
    pub value: String,
    expected: &'static str,
    hint: &'static str,
}

impl sparkwing_contract::hint::Hinted for LimitsError {
    fn hint(&self) -> Option<String> {
        Some(self.hint.to_string())
    }
}

impl Limits {
    /// Reads `SPARKWING_CACHE_MAX_BYTES`, `SPARKWING_CACHE_MAX_ENTRIES` and
    /// `SPARKWING_CACHE_LOCK_TIMEOUT` from the process environment.
    pub fn from_env() -> Result<Limits, LimitsError> {
        Limits::from_lookup(&|n| std::env::var(n).ok())
    }

    /// Like [`Limits::from_env`] with an explicit lookup.
    ///
    /// ```
    /// use sparkwing_bincache::Limits;
    /// let l = Limits::from_lookup(&|n| match n {
    ///     "SPARKWING_CACHE_MAX_BYTES" => Some("512MB".into()),
    ///     "SPARKWING_CACHE_MAX_ENTRIES" => Some("0".into()),
    ///     _ => None,
    /// }).unwrap();
    /// assert_eq!(l.max_bytes, Some(512_000_000));
    /// assert_eq!(l.max_entries, None);
    /// ```
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Limits, LimitsError> {
        let mut l = Limits::default();
        if let Some(v) = lookup(env::CACHE_MAX_BYTES).filter(|v| !v.trim().is_empty()) {
            let n = parse_size(&v).ok_or_else(|| LimitsError {
                var: env::CACHE_MAX_BYTES,
                value: v.clone(),
                expected: "a byte size",
                hint: "use a number of bytes with an optional unit, such as `512MB`, `4GiB` or `0` for unlimited",
            })?;
            l.max_bytes = (n > 0).then_some(n);
        }
        if let Some(v) = lookup(env::CACHE_MAX_ENTRIES).filter(|v| !v.trim().is_empty()) {
            let n: u64 = v.trim().parse().map_err(|_| LimitsError {
                var: env::CACHE_MAX_ENTRIES,
                value: v.clone(),
                expected: "a whole number",
                hint: "use a count such as `20`, or `0` for unlimited",
            })?;
            l.max_entries = (n > 0).then_some(n);
        }
        if let Some(v) = lookup(env::CACHE_LOCK_TIMEOUT).filter(|v| !v.trim().is_empty()) {
            let n: u64 = v.trim().parse().map_err(|_| LimitsError {
                var: env::CACHE_LOCK_TIMEOUT,
                value: v.clone(),
                expected: "a whole number of seconds",
                hint: "use seconds such as `1800`",
            })?;
            l.lock_timeout = Duration::from_secs(n);
        }
        Ok(l)
    }
}

/// Parses `123`, `512MB` (decimal), `4GiB` (binary), `1.5G`; case-insensitive, optional space,
/// `B` optional. `None` for anything else.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000_u64.pow(2),
        "g" | "gb" => 1000_u64.pow(3),
        "t" | "tb" => 1000_u64.pow(4),
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    };
    if num.contains('.') {
        let f: f64 = num.parse().ok()?;
        let v = f * mult as f64;
        if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
            return None;
        }
        Some(v.round() as u64)
    } else {
        num.parse::<u64>().ok()?.checked_mul(mult)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("512MB"), Some(512_000_000));
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("4 gib"), Some(4 << 30));
        assert_eq!(parse_size("1.5G"), Some(1_500_000_000));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("12kB"), Some(12_000));
        assert_eq!(parse_size("abc"), None);
        assert_eq!(parse_size("10 parsecs"), None);
        assert_eq!(parse_size("MB"), None);
        assert_eq!(parse_size("99999999999TiB"), None);
    }

    #[test]
    fn env_defaults_and_zero_means_unlimited() {
        let l = Limits::from_lookup(&|_| None).unwrap();
        assert_eq!(l, Limits::default());
        let l = Limits::from_lookup(&|n| {
            (n == env::CACHE_MAX_BYTES || n == env::CACHE_MAX_ENTRIES).then(|| "0".to_string())
        })
        .unwrap();
        assert_eq!((l.max_bytes, l.max_entries), (None, None));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Limits::from_lookup(&|n| (n == env::CACHE_MAX_BYTES).then(|| "lots".into()))
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`SPARKWING_CACHE_MAX_BYTES`") && msg.contains("`lots`"),
            "{msg}"
        );
        use sparkwing_contract::hint::Hinted;
        assert!(e.hint().is_some_and(|h| h.contains("4GiB")), "{e:?}");
        let e = Limits::from_lookup(&|n| (n == env::CACHE_MAX_ENTRIES).then(|| "-1".into()))
            .unwrap_err();
        assert_eq!(e.var, env::CACHE_MAX_ENTRIES);
        let e = Limits::from_lookup(&|n| (n == env::CACHE_LOCK_TIMEOUT).then(|| "1m".into()))
            .unwrap_err();
        assert_eq!(e.var, env::CACHE_LOCK_TIMEOUT);
    }
}
