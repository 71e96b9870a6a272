//! Reusing a job's last result while nothing it depends on changed ([`Job::inputs`]).
//!
//! A job's *input key* is a blake3 digest of the run's salt (the pipeline binary's content, the
//! pipeline's name, the run's arguments as recorded), the job's id and input globs, every file
//! matching those globs (its path and content), and the outputs of the jobs it needs. After a
//! success the key and the result are kept in `cache/inputs/<pipeline>/<job>.json` under the
//! sparkwing home; a later run that computes the same key for the job records it `cached` and
//! hands its dependents the kept outputs instead of running it.
//!
//! The walk for matching files starts at each glob's literal base and never enters `.git` or a
//! directory holding a `CACHEDIR.TAG` (cargo's `target/`, other tools' caches): what lives there
//! is output, not input.

use crate::ctx::Upstream;
use crate::plan::Job;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sparkwing_contract::glob::Glob;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// Bumped when what goes into a key changes, so that no older entry is ever taken as current.
const KEY_FORMAT: &[u8] = b"sparkwing job inputs v1\0";

/// Where a run looks up and keeps the results of jobs with inputs.
pub(crate) struct Reuse {
    dir: PathBuf,
    work_dir: PathBuf,
    salt: blake3::Hash,
}

/// A kept result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub key: String,
    /// The run that ran the job and produced this result.
    pub run_id: String,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub artifacts: Vec<String>,
}

impl Reuse {
    /// The store for `pipeline` under `home`, salted with the running binary's content and the
    /// run's (masked) arguments. Reads the whole binary once.
    pub(crate) fn open(
        home: &sparkwing_contract::Home,
        pipeline: &str,
        work_dir: &Path,
        args: &BTreeMap<String, String>,
    ) -> io::Result<Reuse> {
        let exe = std::env::current_exe()?;
        let mut h = blake3::Hasher::new();
        h.update(KEY_FORMAT);
        h.update_reader(std::fs::File::open(&exe)?)?;
        field(&mut h, pipeline.as_bytes());
        for (k, v) in args {
            field(&mut h, k.as_bytes());
            field(&mut h, v.as_bytes());
        }
        Ok(Reuse {
            dir: home.job_inputs_dir(pipeline),
            work_dir: work_dir.to_path_buf(),
            salt: h.finalize(),
        })
    }

    /// The input key of `job` given its upstream outputs. Reads every matching file.
    pub(crate) fn key(&self, job: &Job, upstream: &Upstream) -> io::Result<String> {
        let globs: Vec<&Glob> = job.inputs.iter().filter_map(|g| g.as_ref().ok()).collect();
        let mut h = blake3::Hasher::new();
        h.update(self.salt.as_bytes());
        field(&mut h, job.id.as_bytes());
        for g in &globs {
            field(&mut h, g.as_str().as_bytes());
        }
        for rel in matching_files(&self.work_dir, &globs)? {
            let path = self.work_dir.join(&rel);
            field(&mut h, rel.as_bytes());
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.file_type().is_symlink() {
                field(&mut h, b"symlink");
                field(
                    &mut h,
                    std::fs::read_link(&path)?.as_os_str().as_encoded_bytes(),
                );
            } else {
                let mut file = blake3::Hasher::new();
                file.update_reader(std::fs::File::open(&path)?)?;
                field(&mut h, file.finalize().as_bytes());
            }
        }
        for (id, outputs) in upstream.sorted() {
            field(&mut h, id.as_bytes());
            field(&mut h, &serde_json::to_vec(outputs).unwrap_or_default());
        }
        Ok(h.finalize().to_hex().to_string())
    }

    fn entry_path(&self, job_id: &str) -> PathBuf {
        // Job ids are validated hierarchical safe identifiers (`lint/rust`): each segment is a
        // plain file name.
        self.dir.join(format!("{job_id}.json"))
    }

    /// The kept result of `job_id` when its key is `key`; `None` when there is none, it is for
    /// another key, or it cannot be read (the job then simply runs).
    pub(crate) fn lookup(&self, job_id: &str, key: &str) -> Option<Entry> {
        let bytes = std::fs::read(self.entry_path(job_id)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (entry.key == key).then_some(entry)
    }

    /// Keeps `entry` as the result of `job_id`, replacing what was there in one rename so that
    /// a concurrent run reads either the old entry or the new one.
    pub(crate) fn remember(&self, job_id: &str, entry: &Entry) -> io::Result<()> {
        let path = self.entry_path(job_id);
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            std::process::id()
        ));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(entry).map_err(io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// Length-prefixed, so that `("ab", "c")` and `("a", "bc")` hash differently.
fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Paths (relative to `root`, `/`-separated, sorted) of the files and symlinks any glob matches.
fn matching_files(root: &Path, globs: &[&Glob]) -> io::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let bases: BTreeSet<String> = globs.iter().map(|g| g.base()).collect();
    let mut walked: Vec<&str> = Vec::new();
    for base in &bases {
        // A base below one already walked adds nothing.
        if walked
            .iter()
            .any(|w| w.is_empty() || base == w || base.starts_with(&format!("{w}/")))
        {
            continue;
        }
        walked.push(base);
        let start = if base.is_empty() {
            root.to_path_buf()
        } else {
            root.join(base)
        };
        let meta = match std::fs::symlink_metadata(&start) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            walk(&start, base, globs, &mut found)?;
        } else if globs.iter().any(|g| g.matches(base)) {
            found.insert(base.clone());
        }
    }
    Ok(found)
}

fn walk(dir: &Path, rel: &str, globs: &[&Glob], found: &mut BTreeSet<String>) -> io::Result<()> {
    if dir.join("CACHEDIR.TAG").exists() {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue; // not a path a glob can name
        };
        if name == ".git" {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &child, globs, found)?;
        } else if globs.iter().any(|g| g.matches(&child)) {
            found.insert(child);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn job(globs: &[&str]) -> Job {
        let mut plan = crate::plan::Plan::new();
        plan.job("build").inputs(globs);
        plan.jobs()[0].clone()
    }

    fn reuse(root: &Path) -> Reuse {
        let home = sparkwing_contract::Home::at(root.join("home"));
        Reuse::open(&home, "ci", &root.join("repo"), &BTreeMap::new()).unwrap()
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join("repo").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn the_key_follows_matching_files_and_upstream_outputs_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "src/lib.rs", "fn a() {}");
        write(root, "docs/guide.md", "guide");
        write(
            root,
            "src/target/CACHEDIR.TAG",
            "Signature: 8a477f597d28d172789f06886806bc55",
        );
        write(root, "src/target/debug/out", "1");
        let r = reuse(root);
        let j = job(&["src/**"]);
        let none = Upstream::new(HashMap::new());
        let k1 = r.key(&j, &none).unwrap();
        assert_eq!(r.key(&j, &none).unwrap(), k1, "stable");

        write(root, "docs/guide.md", "edited");
        write(root, "src/target/debug/out", "2");
        assert_eq!(
            r.key(&j, &none).unwrap(),
            k1,
            "outside the globs or in a cache dir"
        );

        write(root, "src/lib.rs", "fn b() {}");
        let k2 = r.key(&j, &none).unwrap();
        assert_ne!(k2, k1, "an edited input");
        write(root, "src/new.rs", "");
        let k3 = r.key(&j, &none).unwrap();
        assert_ne!(k3, k2, "an added input");
        std::fs::remove_file(root.join("repo/src/new.rs")).unwrap();
        assert_eq!(r.key(&j, &none).unwrap(), k2, "removed again");

        let up = |v: &str| {
            let outputs = BTreeMap::from([("version".to_string(), Value::from(v))]);
            Upstream::new(HashMap::from([("setup".to_string(), Arc::new(outputs))]))
        };
        let k4 = r.key(&j, &up("1.0")).unwrap();
        assert_ne!(k4, k2, "upstream outputs count");
        assert_eq!(r.key(&j, &up("1.0")).unwrap(), k4);
        assert_ne!(r.key(&j, &up("1.1")).unwrap(), k4);

        assert_ne!(
            r.key(&job(&["src/**", "docs/**"]), &none).unwrap(),
            k2,
            "the globs themselves count"
        );
    }

    #[test]
    fn kept_results_are_found_only_under_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let r = reuse(dir.path());
        assert_eq!(r.lookup("lint/rust", "k"), None);
        let entry = Entry {
            key: "k".into(),
            run_id: "run-1".into(),
            outputs: BTreeMap::from([("n".to_string(), Value::from(3))]),
            artifacts: vec!["out/report.txt".into()],
        };
        r.remember("lint/rust", &entry).unwrap();
        assert_eq!(r.lookup("lint/rust", "k"), Some(entry.clone()));
        assert_eq!(r.lookup("lint/rust", "other"), None);
        assert_eq!(r.lookup("lint", "k"), None);

        std::fs::write(r.entry_path("lint/rust"), "{not json").unwrap();
        assert_eq!(r.lookup("lint/rust", "k"), None, "unreadable: the job runs");
        r.remember("lint/rust", &entry).unwrap();
        assert_eq!(r.lookup("lint/rust", "k"), Some(entry));
    }
}
