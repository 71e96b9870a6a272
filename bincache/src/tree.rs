//! Content hashing of a source tree: relative paths with `/` plus blake3 of each file.
//!
//! Every file counts, whether git ignores it or not: cargo reads `build.rs`, modules and
//! `include!`d files regardless of `.gitignore`, `.git/info/exclude` or a global excludes file,
//! so a rule local to one machine must never leave out something that can change the binary.

use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file of a hashed tree. Paths are relative with `/` separators so two checkouts at
/// different places hash alike; no timestamp is recorded, so touching a file changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TreeFile {
    pub path: String,
    /// blake3 of the content (for a symlink to a directory: of the link text).
    pub blake3: String,
    /// The executable bit is part of what git records, and a build script may run the file.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dir_link: bool,
}

/// What a walk leaves out.
pub(crate) struct Exclude<'a> {
    /// Names skipped only directly under the root (`target`, lockfiles counted elsewhere).
    pub root_names: &'a [&'a str],
}

use crate::FsError;
use crate::fs_error::io;

enum Candidate {
    File {
        rel: String,
        abs: PathBuf,
        exec: bool,
    },
    DirLink {
        rel: String,
        target: String,
    },
}

/// Hashes every file under `root` except `.git` (anywhere), directories holding a
/// `CACHEDIR.TAG` (cargo marks its target directories so) and `exclude.root_names` directly
/// under the root. Sorted by path.
pub(crate) fn hash_tree(root: &Path, exclude: &Exclude<'_>) -> Result<Vec<TreeFile>, FsError> {
    let mut candidates = Vec::new();
    walk(root, "", exclude, &mut candidates)?;
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        out.push(match c {
            Candidate::File { rel, abs, exec } => TreeFile {
                blake3: hash_file(&abs)?,
                path: rel,
                exec,
                dir_link: false,
            },
            Candidate::DirLink { rel, target } => TreeFile {
                blake3: blake3::hash(target.as_bytes()).to_hex().to_string(),
                path: rel,
                exec: false,
                dir_link: true,
            },
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// blake3 of a file's content, streamed.
pub(crate) fn hash_file(path: &Path) -> Result<String, FsError> {
    let mut f = std::fs::File::open(path).map_err(io("open", path))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

fn walk(
    dir: &Path,
    rel_dir: &str,
    exclude: &Exclude<'_>,
    out: &mut Vec<Candidate>,
) -> Result<(), FsError> {
    let rd = std::fs::read_dir(dir).map_err(io("read directory", dir))?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io("read directory", dir))?;
        names.push(entry.file_name());
    }
    if !rel_dir.is_empty() && names.iter().any(|n| n == "CACHEDIR.TAG") {
        return Ok(());
    }
    names.sort();
    for name in names {
        let name_str = name.to_string_lossy().into_owned();
        if name_str == ".git" {
            continue;
        }
        if rel_dir.is_empty() && exclude.root_names.contains(&name_str.as_str()) {
            continue;
        }
        let abs = dir.join(&name);
        let rel = if rel_dir.is_empty() {
            name_str
        } else {
            format!("{rel_dir}/{name_str}")
        };
        let lmeta = std::fs::symlink_metadata(&abs).map_err(io("stat", &abs))?;
        if lmeta.file_type().is_symlink() {
            // A link to a file counts by the content cargo will read; a link to a directory is
            // recorded by its text so a cycle can never make the walk endless.
            match std::fs::metadata(&abs) {
                Ok(m) if m.is_file() => out.push(Candidate::File {
                    rel,
                    abs,
                    exec: is_exec(&m),
                }),
                _ => {
                    let target = std::fs::read_link(&abs).map_err(io("read link", &abs))?;
                    out.push(Candidate::DirLink {
                        rel,
                        target: target.to_string_lossy().replace('\\', "/"),
                    });
                }
            }
        } else if lmeta.is_dir() {
            walk(&abs, &rel, exclude, out)?;
        } else if lmeta.is_file() {
            out.push(Candidate::File {
                rel,
                abs,
                exec: is_exec(&lmeta),
            });
        }
        // Sockets, FIFOs and devices are not sources.
    }
    Ok(())
}

#[cfg(unix)]
fn is_exec(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_exec(_m: &std::fs::Metadata) -> bool {
    false
}
