//! Pipeline arguments: what follows the pipeline name on the command line.

use std::collections::BTreeMap;
use std::str::FromStr;

/// A bad pipeline argument. Returned from a pipeline's plan function, it makes the run a usage
/// error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// A value did not parse as the expected type.
    #[error("parse `--{key}` value `{value}`: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    /// A required argument was not given.
    #[error("read `--{key}`: the argument is required\n  hint: pass `--{key} <value>`")]
    Missing { key: String },
    /// An argument this pipeline does not know.
    #[error("read arguments: unknown argument `--{key}`\n  hint: this pipeline accepts {known}")]
    Unknown { key: String, known: String },
}

/// Arguments given after the pipeline name: `--key value`, `--key=value`, bare `--flag`, and
/// positional words. `--` ends option parsing. A `--key` followed by a word that does not start
/// with `--` takes that word as its value; write `--flag=true` before positional words.
///
/// ```
/// use sparkwing::Args;
/// let args = Args::from_words(["--count", "3", "--dry-run", "--target=prod"]);
/// assert_eq!(args.parse_or("count", 1u32).unwrap(), 3);
/// assert!(args.flag("dry-run"));
/// assert_eq!(args.get("target"), Some("prod"));
/// assert!(args.parse::<u32>("missing").unwrap().is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    named: BTreeMap<String, Option<String>>,
    positional: Vec<String>,
}

impl Args {
    /// Parses raw words (what follows the pipeline name).
    pub fn from_words<I, S>(words: I) -> Args
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let words: Vec<String> = words.into_iter().map(Into::into).collect();
        let mut args = Args::default();
        let mut i = 0;
        let mut options_done = false;
        while i < words.len() {
            let w = &words[i];
            i += 1;
            if options_done || !w.starts_with("--") || w == "--" {
                if w == "--" && !options_done {
                    options_done = true;
                } else {
                    args.positional.push(w.clone());
                }
                continue;
            }
            let body = &w[2..];
            if let Some((k, v)) = body.split_once('=') {
                args.named.insert(k.to_string(), Some(v.to_string()));
            } else if i < words.len() && !words[i].starts_with("--") {
                args.named.insert(body.to_string(), Some(words[i].clone()));
                i += 1;
            } else {
                args.named.insert(body.to_string(), None);
            }
        }
        args
    }

    /// The value of `--key`, if it was given with one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.named.get(key).and_then(|v| v.as_deref())
    }

    /// True for a bare `--key`, or `--key=true|1|yes`.
    pub fn flag(&self, key: &str) -> bool {
        match self.named.get(key) {
            Some(None) => true,
            Some(Some(v)) => matches!(v.as_str(), "true" | "1" | "yes"),
            None => false,
        }
    }

    /// Whether `--key` was given at all.
    pub fn has(&self, key: &str) -> bool {
        self.named.contains_key(key)
    }

    /// `--key` parsed as `T`; `Ok(None)` when absent.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, ArgsError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.named.get(key) {
            None => Ok(None),
            Some(None) => Err(ArgsError::Invalid {
                key: key.into(),
                value: String::new(),
                reason: "a value is required".into(),
            }),
            Some(Some(v)) => v.parse().map(Some).map_err(|e: T::Err| ArgsError::Invalid {
                key: key.into(),
                value: v.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// `--key` parsed as `T`, or `default` when absent.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, ArgsError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// `--key` parsed as `T`; absent is [`ArgsError::Missing`].
    pub fn require<T>(&self, key: &str) -> Result<T, ArgsError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.parse(key)?
            .ok_or_else(|| ArgsError::Missing { key: key.into() })
    }

    /// Positional words, in order.
    pub fn positional(&self) -> &[String] {
        &self.positional
    }

    /// Fails on any `--key` not in `known`, so a typo is not silently ignored.
    ///
    /// ```
    /// use sparkwing::Args;
    /// let err = Args::from_words(["--cuont", "3"]).deny_unknown(&["count"]).unwrap_err();
    /// assert!(err.to_string().contains("--cuont"));
    /// ```
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), ArgsError> {
        match self.named.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(ArgsError::Unknown {
                key: k.clone(),
                known: if known.is_empty() {
                    "no arguments".into()
                } else {
                    known
                        .iter()
                        .map(|k| format!("`--{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
        }
    }

    /// The arguments as the run record keeps them: `key → value` (`true` for a bare flag) and
    /// positional words as `#1`, `#2`, ….
    pub(crate) fn to_record(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .named
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_else(|| "true".into())))
            .collect();
        for (i, p) in self.positional.iter().enumerate() {
            out.insert(format!("#{}", i + 1), p.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let a = Args::from_words(["build", "--n", "2", "--x=y=z", "--quiet", "--", "--raw"]);
        assert_eq!(a.get("n"), Some("2"));
        assert_eq!(a.get("x"), Some("y=z"));
        assert!(a.flag("quiet"));
        assert!(!a.flag("n"));
        assert_eq!(a.positional(), ["build", "--raw"]);
        let rec = a.to_record();
        assert_eq!(rec["quiet"], "true");
        assert_eq!(rec["#2"], "--raw");
    }

    #[test]
    fn bad_values_name_the_argument() {
        let a = Args::from_words(["--count", "many", "--bare"]);
        let e = a.parse::<u32>("count").unwrap_err();
        assert!(e.to_string().contains("`--count` value `many`"), "{e}");
        assert!(a.parse::<u32>("bare").is_err());
        assert!(matches!(
            a.require::<u32>("other"),
            Err(ArgsError::Missing { .. })
        ));
    }
}
