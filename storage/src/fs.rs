//! Filesystem stores: the same keys as S3, mirrored under a root directory.
//!
//! Writes go to a temporary file in the target directory and are renamed into place, so a reader
//! never sees half an object.

use crate::artifact::ArtifactStore;
use crate::error::{Result, StoreError};
use crate::logs::{LogPart, LogStore, ReadOpts, end_line, validate_part_name, whole_lines};
use async_trait::async_trait;
use sparkwing_contract::id::{validate_hierarchical, validate_key, validate_segment};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Artifacts under `<root>/<key>`.
#[derive(Debug)]
pub struct FsArtifactStore {
    root: PathBuf,
    /// Serializes conditional writes within this process; cross-process create-only uses
    /// `O_EXCL` via a hard link, which the filesystem makes atomic.
    cas: Mutex<()>,
}

impl FsArtifactStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsArtifactStore {
            root: root.into(),
            cas: Mutex::new(()),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", blake3::hash(data).to_hex())
}

/// Writes `data` to a temp file beside `path`; returns the temp path (caller renames or links).
async fn write_temp(path: &Path, data: &[u8]) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| StoreError::io("create directory", dir.display(), e))?;
    let tmp = temp_path(path);
    tokio::fs::write(&tmp, data)
        .await
        .map_err(|e| StoreError::io("write", tmp.display(), e))?;
    Ok(tmp)
}

fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Runs a whole file operation on the blocking pool (one thread hand-off, not one per call).
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::config(format!("{what} task failed: {e}")))?
}

async fn rename(from: &Path, to: &Path) -> Result<()> {
    tokio::fs::rename(from, to)
        .await
        .map_err(|e| StoreError::io("rename", to.display(), e))
}

#[async_trait]
impl ArtifactStore for FsArtifactStore {
    fn describe(&self) -> String {
        format!("filesystem:{}", self.root.display())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let p = self.path(key)?;
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                Err(StoreError::NotFound(key.into()))
            }
            Err(e) => Err(StoreError::io("read", p.display(), e)),
        }
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let p = self.path(key)?;
        // One trip to the blocking pool for the directory, the file and the rename: each trip
        // is a thread wake-up, and the run's last state is written while its process ends.
        blocking("write", move || write_atomically(&p, &data, false)).await
    }

    async fn has(&self, key: &str) -> Result<bool> {
        let p = self.path(key)?;
        Ok(tokio::fs::metadata(&p)
            .await
            .map(|m| m.is_file())
            .unwrap_or(false))
    }

    async fn size(&self, key: &str) -> Result<u64> {
        let p = self.path(key)?;
        match tokio::fs::metadata(&p).await {
            Ok(m) if m.is_file() => Ok(m.len()),
            Ok(_) => Err(StoreError::NotFound(key.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.to_string()))
            }
            Err(e) => Err(StoreError::io("stat", p.display(), e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let p = self.path(key)?;
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", p.display(), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking("list", move || {
            let mut out = Vec::new();
            walk(&root, &root, &mut out)?;
            out.retain(|k| k.starts_with(&prefix));
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn get_to_writer(
        &self,
        key: &str,
        w: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        let p = self.path(key)?;
        let mut f = match tokio::fs::File::open(&p).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.into()));
            }
            Err(e) => return Err(StoreError::io("open", p.display(), e)),
        };
        let n = tokio::io::copy(&mut f, w)
            .await
            .map_err(|e| StoreError::io("copy from", p.display(), e))?;
        w.flush()
            .await
            .map_err(|e| StoreError::io("flush", key, e))?;
        Ok(n)
    }

    async fn put_from_reader(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        let p = self.path(key)?;
        let dir = p.parent().unwrap_or(Path::new(".")).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| StoreError::io("create directory", dir.display(), e))?;
        let tmp = temp_path(&p);
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| StoreError::io("create", tmp.display(), e))?;
        let n = match tokio::io::copy(r, &mut f).await {
            Ok(n) => n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(StoreError::io("write", tmp.display(), e));
            }
        };
        f.flush()
            .await
            .map_err(|e| StoreError::io("flush", tmp.display(), e))?;
        drop(f);
        rename(&tmp, &p).await?;
        Ok(n)
    }

    async fn supports_conditional(&self) -> Result<bool> {
        Ok(true)
    }

    async fn put_if_absent(&self, key: &str, data: Vec<u8>) -> Result<String> {
        let p = self.path(key)?;
        let etag = etag_of(&data);
        let tmp = write_temp(&p, &data).await?;
        // hard_link fails with EEXIST if the target exists: atomic create-only across processes.
        let res = tokio::fs::hard_link(&tmp, &p).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match res {
            Ok(()) => Ok(etag),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StoreError::PreconditionFailed(key.into()))
            }
            Err(e) => Err(StoreError::io("link", p.display(), e)),
        }
    }

    async fn get_with_etag(&self, key: &str) -> Result<(Vec<u8>, String)> {
        let data = self.get(key).await?;
        let etag = etag_of(&data);
        Ok((data, etag))
    }

    async fn put_if_match(&self, key: &str, data: Vec<u8>, etag: &str) -> Result<String> {
        let p = self.path(key)?;
        let tmp = write_temp(&p, &data).await?;
        let new = etag_of(&data);
        let _guard = self.cas.lock().unwrap_or_else(|e| e.into_inner());
        let current = std::fs::read(&p).ok().map(|b| etag_of(&b));
        if current.as_deref() != Some(etag) {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::PreconditionFailed(key.into()));
        }
        std::fs::rename(&tmp, &p).map_err(|e| StoreError::io("rename", p.display(), e))?;
        Ok(new)
    }

    async fn put_from_reader_if_absent(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(u64, String)> {
        let p = self.path(key)?;
        let dir = p.parent().unwrap_or(Path::new(".")).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| StoreError::io("create directory", dir.display(), e))?;
        let tmp = temp_path(&p);
        let res = async {
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| StoreError::io("create", tmp.display(), e))?;
            // Hash while copying so the ETag costs no second pass over a large file.
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0u64;
            loop {
                let got = r
                    .read(&mut buf)
                    .await
                    .map_err(|e| StoreError::io("read source for", key, e))?;
                if got == 0 {
                    break;
                }
                hasher.update(&buf[..got]);
                f.write_all(&buf[..got])
                    .await
                    .map_err(|e| StoreError::io("write", tmp.display(), e))?;
                n += got as u64;
            }
            f.flush()
                .await
                .map_err(|e| StoreError::io("flush", tmp.display(), e))?;
            drop(f);
            match tokio::fs::hard_link(&tmp, &p).await {
                Ok(()) => Ok((n, format!("\"{}\"", hasher.finalize().to_hex()))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(StoreError::PreconditionFailed(key.into()))
                }
                Err(e) => Err(StoreError::io("link", p.display(), e)),
            }
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        res
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("read directory", dir.display(), e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| StoreError::io("read directory", dir.display(), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_temp(name) {
            continue;
        }
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| StoreError::io("stat", path.display(), e))?;
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            let key: Vec<&str> = rel.iter().filter_map(|s| s.to_str()).collect();
            out.push(key.join("/"));
        }
    }
    Ok(())
}

mod pack;

/// Log parts under `<root>/<runID>/<nodeID>/<part>.ndjson`; small parts appended to a pack file
/// of the run instead (see [`pack`]).
#[derive(Debug)]
pub struct FsLogStore {
    root: PathBuf,
    /// Node directories this store has created (or found) since it was opened: later parts of a
    /// node skip the `mkdir`, which on a large run directory is not free.
    made: Mutex<std::collections::HashSet<PathBuf>>,
    /// This store's pack per run it writes.
    writers: Mutex<HashMap<String, pack::Writer>>,
    /// What this store has read of each run's packs.
    indexes: Arc<Mutex<HashMap<String, pack::Index>>>,
}

/// Runs whose pack index a store keeps; past this it starts over (a dashboard open for days).
const INDEXED_RUNS: usize = 64;

impl FsLogStore {
    /// A log store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsLogStore {
            root: root.into(),
            made: Mutex::default(),
            writers: Mutex::default(),
            indexes: Arc::default(),
        }
    }

    /// `run`'s packs, for a blocking task to read.
    fn packs(&self, run: &str) -> RunPacks {
        RunPacks {
            indexes: self.indexes.clone(),
            run: run.to_string(),
            dir: self.root.join(run),
        }
    }

    /// Appends a small part to this store's pack of `run`, making the pack on first use and
    /// again when it was removed behind the store's back.
    fn put_packed(&self, run: &str, node: &str, part: &str, data: &[u8]) -> Result<()> {
        self.put_packed_all(run, &[(node, part, data)])
    }

    /// Appends parts `(node, part, data)` to this process's pack of `run` in one write.
    fn put_packed_all(&self, run: &str, parts: &[(&str, &str, impl AsRef<[u8]>)]) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let mut writers = self
            .writers
            .lock()
            .map_err(|_| StoreError::config("log pack writer lock poisoned"))?;
        if writers.get(run).is_some_and(|w| !w.is_linked()) {
            writers.remove(run);
        }
        let writer = match writers.entry(run.to_string()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(pack::Writer::create(&self.root.join(run))?)
            }
        };
        writer.append_all(parts)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn node_dir(&self, run: &str, node: &str) -> Result<PathBuf> {
        validate_segment(run)?;
        validate_hierarchical(node)?;
        Ok(self.root.join(run).join(node))
    }
}

/// Writes a file (an object or a log part) through a temporary file and a rename, so readers
/// never see half of it. Its directory is made first unless it is `known` to exist; a known
/// directory that was removed since (a concurrent `delete_run`) is made again.
fn write_atomically(path: &Path, data: &[u8], known: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let make_dir = || {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("create directory", dir.display(), e))
    };
    if !known {
        make_dir()?;
    }
    let tmp = temp_path(path);
    if let Err(e) = std::fs::write(&tmp, data) {
        if !(known && e.kind() == std::io::ErrorKind::NotFound) {
            return Err(StoreError::io("write", tmp.display(), e));
        }
        make_dir()?;
        std::fs::write(&tmp, data).map_err(|e| StoreError::io("write", tmp.display(), e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        StoreError::io("rename", path.display(), e)
    })
}

/// Part files directly inside `dir`, sorted by name.
fn parts_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("read directory", dir.display(), e)),
    };
    let mut parts: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".ndjson") && !is_temp(n))
        })
        .collect();
    parts.sort();
    Ok(parts)
}

#[async_trait]
impl LogStore for FsLogStore {
    fn describe(&self) -> String {
        format!("filesystem:{}", self.root.display())
    }

    fn parts_are_cheap(&self) -> bool {
        true
    }

    async fn put_part(&self, run: &str, node: &str, part: &str, mut data: Vec<u8>) -> Result<()> {
        validate_part_name(part)?;
        let dir = self.node_dir(run, node)?;
        end_line(&mut data);
        if data.len() <= pack::MAX_PACKED {
            // A small write to the page cache: cheaper here than a hop to the blocking pool.
            return self.put_packed(run, node, part, &data);
        }
        let path = dir.join(part);
        let known = self.made.lock().is_ok_and(|m| m.contains(&dir));
        // One blocking call per part (not one per file operation): a run of many short jobs
        // writes a part per job, and every hop to the blocking pool is a thread wake-up.
        blocking("write", move || write_atomically(&path, &data, known)).await?;
        if !known && let Ok(mut m) = self.made.lock() {
            m.insert(dir);
        }
        Ok(())
    }

    async fn put_parts(&self, run: &str, parts: &[LogPart]) -> Result<()> {
        // Every name is checked before the first write, so a bad one writes nothing.
        for p in parts {
            validate_part_name(&p.name)?;
            self.node_dir(run, &p.node)?;
        }
        // Small parts go into the pack together, in one write; a large one keeps a file of its
        // own, written after the parts before it, so a node's parts land in the order cut (a
        // follower of the log never sees a later part before an earlier one).
        let mut packed = Vec::new();
        for p in parts {
            let data = whole_lines(&p.data);
            if data.len() <= pack::MAX_PACKED {
                packed.push((&*p.node, &*p.name, data));
            } else {
                self.put_packed_all(run, &packed)?;
                packed.clear();
                self.put_part(run, &p.node, &p.name, data.into_owned())
                    .await?;
            }
        }
        self.put_packed_all(run, &packed)
    }

    async fn read(&self, run: &str, node: &str, opts: &ReadOpts) -> Result<Vec<u8>> {
        let dir = self.node_dir(run, node)?;
        let (opts, node) = (opts.clone(), node.to_string());
        let packs = self.packs(run);
        blocking("read", move || {
            packs.with(|index| {
                let mut all = Vec::new();
                for (name, source) in node_parts(&dir, index, &node)? {
                    let mut b = match source {
                        Source::File(p) => {
                            std::fs::read(&p).map_err(|e| StoreError::io("read", p.display(), e))?
                        }
                        Source::Pack => index.read(&node, &name)?.unwrap_or_default(),
                    };
                    end_line(&mut b);
                    all.extend_from_slice(&b);
                }
                Ok(opts.apply(&all))
            })
        })
        .await
    }

    async fn list_parts(&self, run: &str) -> Result<Vec<(String, String)>> {
        validate_segment(run)?;
        let packs = self.packs(run);
        blocking("list", move || {
            let mut out = Vec::new();
            collect_parts(&packs.dir, &packs.dir, &mut out)?;
            packs.with(|index| {
                out.extend(index.parts().cloned());
                Ok(())
            })?;
            out.sort();
            out.dedup();
            Ok(out)
        })
        .await
    }

    async fn list_node_parts(&self, run: &str, node: &str) -> Result<Vec<String>> {
        let dir = self.node_dir(run, node)?;
        let node = node.to_string();
        let packs = self.packs(run);
        blocking("list", move || {
            packs.with(|index| {
                Ok(node_parts(&dir, index, &node)?
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect())
            })
        })
        .await
    }

    async fn read_part(&self, run: &str, node: &str, part: &str) -> Result<Vec<u8>> {
        validate_part_name(part)?;
        let path = self.node_dir(run, node)?.join(part);
        match tokio::fs::read(&path).await {
            Ok(b) => return Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("read", path.display(), e)),
        }
        let (node, part) = (node.to_string(), part.to_string());
        let packs = self.packs(run);
        blocking("read", move || packs.read_part(&node, &part)).await
    }

    async fn delete_run(&self, run: &str) -> Result<()> {
        validate_segment(run)?;
        let dir = self.root.join(run);
        if let Ok(mut m) = self.made.lock() {
            m.retain(|d| !d.starts_with(&dir));
        }
        if let Ok(mut w) = self.writers.lock() {
            w.remove(run);
        }
        if let Ok(mut i) = self.indexes.lock() {
            i.remove(run);
        }
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", dir.display(), e)),
        }
    }
}

/// Where a part of a node is kept.
enum Source {
    File(PathBuf),
    Pack,
}

/// A node's parts, from its directory and from the run's packs, in name order; a part in both
/// (written again after a retry) is read from its file.
fn node_parts(dir: &Path, index: &pack::Index, node: &str) -> Result<Vec<(String, Source)>> {
    let mut out: Vec<(String, Source)> = parts_in(dir)?
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            Some((name, Source::File(p)))
        })
        .collect();
    let files: std::collections::HashSet<String> = out.iter().map(|(n, _)| n.clone()).collect();
    let mut packed: Vec<(String, Source)> = index
        .node_parts(node)
        .filter(|part| !files.contains(*part))
        .map(|part| (part.clone(), Source::Pack))
        .collect();
    out.append(&mut packed);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// One run's packs as a blocking task reads them.
struct RunPacks {
    indexes: Arc<Mutex<HashMap<String, pack::Index>>>,
    run: String,
    dir: PathBuf,
}

impl RunPacks {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, pack::Index>>> {
        let mut all = self
            .indexes
            .lock()
            .map_err(|_| StoreError::config("log pack index lock poisoned"))?;
        if !all.contains_key(&self.run) && all.len() >= INDEXED_RUNS {
            all.clear();
        }
        Ok(all)
    }

    /// Runs `f` with the run's pack index, first read on from where it stopped.
    fn with<T>(&self, f: impl FnOnce(&pack::Index) -> Result<T>) -> Result<T> {
        let mut all = self.lock()?;
        let index = all.entry(self.run.clone()).or_default();
        index.refresh(&self.dir)?;
        f(index)
    }

    /// One packed part. A reader lists parts before it reads them, so the index usually has it
    /// already and the run's packs are looked at again only when it does not.
    fn read_part(&self, node: &str, part: &str) -> Result<Vec<u8>> {
        let mut all = self.lock()?;
        let index = all.entry(self.run.clone()).or_default();
        if !index.has(node, part) {
            index.refresh(&self.dir)?;
        }
        Ok(index.read(node, part)?.unwrap_or_default())
    }
}

/// `(node id, part name)` of every part below `dir`.
fn collect_parts(run_dir: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("read directory", dir.display(), e)),
    };
    for entry in rd.filter_map(|e| e.ok()) {
        let path = entry.path();
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if let Ok(rel) = path.strip_prefix(run_dir) {
            let id: Vec<&str> = rel.iter().filter_map(|s| s.to_str()).collect();
            let id = id.join("/");
            for p in parts_in(&path)? {
                if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                    out.push((id.clone(), name.to_string()));
                }
            }
        }
        collect_parts(run_dir, &path, out)?;
    }
    Ok(())
}
