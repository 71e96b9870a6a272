//! Content hashing of a source tree: relative paths with `/` plus blake3 of each file, with the
//! files git ignores left out.

use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

impl Candidate {
    fn rel(&self) -> &str {
        match self {
            Candidate::File { rel, .. } | Candidate::DirLink { rel, .. } => rel,
        }
    }
}

/// Hashes every file under `root` except `.git` (anywhere), directories holding a
/// `CACHEDIR.TAG` (cargo marks its target directories so), `exclude.root_names` directly under
/// the root, and what git ignores. Sorted by path.
pub(crate) fn hash_tree(root: &Path, exclude: &Exclude<'_>) -> Result<Vec<TreeFile>, FsError> {
    let mut candidates = Vec::new();
    walk(root, "", exclude, &mut candidates)?;
    let ignored = git_ignored(root, candidates.iter().map(Candidate::rel));
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        if ignored.contains(c.rel()) {
            continue;
        }
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

/// The subset of `rels` that git ignores, from one `git check-ignore -z --stdin` call in `root`.
/// Outside a work tree, or without git, nothing is ignored (everything counts — the safe side).
fn git_ignored<'a>(
    root: &Path,
    rels: impl Iterator<Item = &'a str>,
) -> std::collections::HashSet<String> {
    let mut input = Vec::new();
    for r in rels {
        input.extend_from_slice(r.as_bytes());
        input.push(0);
    }
    let mut set = std::collections::HashSet::new();
    if input.is_empty() {
        return set;
    }
    let child = Command::new("git")
        .args(["check-ignore", "-z", "--stdin"])
        .current_dir(root)
        // A hook or wrapper may point these at another repository.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return set;
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Write and read at once: a long list would fill both pipes and deadlock otherwise.
    let output = std::thread::scope(|s| {
        s.spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let Ok(status) = child.wait() else {
        return set;
    };
    // 0: some ignored; 1: none; anything else (128: not a repository) means "ignore nothing".
    if status.code() != Some(0) {
        return set;
    }
    for p in output.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        set.insert(String::from_utf8_lossy(p).into_owned());
    }
    set
}
