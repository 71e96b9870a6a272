//! Which Rust toolchain will build the pipeline: an exact pin (no process started) or what
//! `rustc -vV` says.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The toolchain part of the key. A pinned channel and a probed one never collide because the
/// variant is part of the serialized form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Toolchain {
    /// An exact channel (`1.95.0`, `nightly-2026-01-15`) from a toolchain file or
    /// `RUSTUP_TOOLCHAIN`.
    Pinned { channel: String },
    /// The full `rustc -vV` output (release, commit hash, host, LLVM version).
    Probed { rustc_vv: String },
}

/// Where the toolchain answer came from, for `cache explain`.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub toolchain: Toolchain,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolchainError {
    #[error("read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse toolchain file `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("run `{rustc} -vV` in `{dir}`: {message}")]
    Probe {
        rustc: String,
        dir: PathBuf,
        message: String,
    },
}

impl sparkwing_contract::hint::Hinted for ToolchainError {
    fn hint(&self) -> Option<String> {
        match self {
            ToolchainError::Probe { .. } => Some(
                "install Rust (https://rustup.rs), or pin an exact version in `.sparkwing/rust-toolchain.toml` (`[toolchain] channel = \"1.95.0\"`)".into(),
            ),
            _ => None,
        }
    }
}

/// Resolves the toolchain the way rustup would for a build run in `sparkwing_dir`:
/// `RUSTUP_TOOLCHAIN`, else the nearest `rust-toolchain` / `rust-toolchain.toml` in that
/// directory or its ancestors. A `RUSTC` override or a channel that is not exact (`stable`,
/// `1.95`) falls back to asking the compiler.
pub(crate) fn resolve(
    sparkwing_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, ToolchainError> {
    let rustc_override = env("RUSTC").filter(|s| !s.is_empty());
    if rustc_override.is_none() {
        if let Some(ch) = env("RUSTUP_TOOLCHAIN").filter(|s| !s.is_empty()) {
            if is_exact(&ch) {
                return Ok(Resolved {
                    detail: format!("{ch} (pinned by `RUSTUP_TOOLCHAIN`)"),
                    toolchain: Toolchain::Pinned { channel: ch },
                });
            }
        } else if let Some((file, channel)) = find_pin(sparkwing_dir)?
            && let Some(ch) = channel.filter(|c| is_exact(c))
        {
            let shown = display_path(sparkwing_dir, &file);
            return Ok(Resolved {
                detail: format!("{ch} (pinned in `{shown}`)"),
                toolchain: Toolchain::Pinned { channel: ch },
            });
        }
    }
    let rustc = rustc_override.unwrap_or_else(|| "rustc".to_string());
    let probe_err = |message: String| ToolchainError::Probe {
        rustc: rustc.clone(),
        dir: sparkwing_dir.to_path_buf(),
        message,
    };
    let out = Command::new(&rustc)
        .arg("-vV")
        .current_dir(sparkwing_dir)
        .output()
        .map_err(|e| probe_err(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(probe_err(format!(
            "exited with {}: {}",
            out.status,
            stderr.trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let release = text
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap_or("unknown")
        .to_string();
    Ok(Resolved {
        detail: format!("rustc {release} (from `rustc -vV`; pin it to skip this probe)"),
        toolchain: Toolchain::Probed {
            rustc_vv: text.trim().to_string(),
        },
    })
}

fn display_path(sparkwing_dir: &Path, file: &Path) -> String {
    let base = sparkwing_dir.parent().unwrap_or(sparkwing_dir);
    file.strip_prefix(base)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The nearest toolchain file and the channel it names (`None` when it names none, e.g. only a
/// `path`). In one directory rustup prefers `rust-toolchain` over `rust-toolchain.toml`.
fn find_pin(start: &Path) -> Result<Option<(PathBuf, Option<String>)>, ToolchainError> {
    for dir in start.ancestors() {
        for name in ["rust-toolchain", "rust-toolchain.toml"] {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let channel = parse_channel(&path, name, &text)?;
                    return Ok(Some((path, channel)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // A directory named like the file, or unreadable: rustup would fail too.
                Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {}
                Err(source) => return Err(ToolchainError::Read { path, source }),
            }
        }
    }
    Ok(None)
}

fn parse_channel(path: &Path, name: &str, text: &str) -> Result<Option<String>, ToolchainError> {
    let trimmed = text.trim();
    // The legacy `rust-toolchain` file may hold just the channel on one line.
    if name == "rust-toolchain" && !trimmed.contains('[') && !trimmed.contains('\n') {
        return Ok((!trimmed.is_empty()).then(|| trimmed.to_string()));
    }
    let table: toml::Table = toml::from_str(text).map_err(|e| ToolchainError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim().to_string(),
    })?;
    Ok(table
        .get("toolchain")
        .and_then(|t| t.get("channel"))
        .and_then(|c| c.as_str())
        .map(str::to_string))
}

/// Exact channels name one build of the compiler: `1.95.0`, `1.96.0-beta.3`,
/// `nightly-2026-01-15`, `stable-2026-01-15`, optionally followed by a host triple.
/// `stable`, `nightly` or `1.95` move over time, so they are probed instead.
pub(crate) fn is_exact(channel: &str) -> bool {
    let mut parts = channel.split('-');
    let first = parts.next().unwrap_or("");
    let nums: Vec<&str> = first.split('.').collect();
    if nums.len() == 3
        && nums
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    if matches!(first, "nightly" | "beta" | "stable") {
        let date: Vec<&str> = parts.take(3).collect();
        return date.len() == 3
            && [4, 2, 2]
                .iter()
                .zip(&date)
                .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_digit()));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_channels() {
        for c in [
            "1.95.0",
            "1.96.0-beta.3",
            "nightly-2026-01-15",
            "stable-2026-01-15",
            "1.95.0-x86_64-unknown-linux-gnu",
        ] {
            assert!(is_exact(c), "{c}");
        }
        for c in [
            "stable",
            "nightly",
            "beta",
            "1.95",
            "nightly-2026-01",
            "my-toolchain",
        ] {
            assert!(!is_exact(c), "{c}");
        }
    }

    #[test]
    fn legacy_one_line_file() {
        let p = Path::new("rust-toolchain");
        assert_eq!(
            parse_channel(p, "rust-toolchain", "1.95.0\n").unwrap(),
            Some("1.95.0".into())
        );
        assert_eq!(
            parse_channel(p, "rust-toolchain", "[toolchain]\nchannel = \"1.94.1\"\n").unwrap(),
            Some("1.94.1".into())
        );
    }

    #[test]
    fn bad_toml_names_the_file() {
        let p = Path::new("/x/rust-toolchain.toml");
        let e = parse_channel(p, "rust-toolchain.toml", "[toolchain\n").unwrap_err();
        assert!(e.to_string().contains("`/x/rust-toolchain.toml`"), "{e}");
    }
}
