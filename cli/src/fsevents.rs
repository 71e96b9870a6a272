//! File events (notify) for the readers of local runs and for `run --watch`: what changed, as
//! soon as the kernel says so, instead of a listing every half second. Where events cannot be had
//! (no inotify/FSEvents, a watch limit reached, a store that is not a local directory) callers
//! fall back to polling.

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// A watcher and the paths its events name, in arrival order.
pub struct FileEvents {
    watcher: RecommendedWatcher,
    rx: mpsc::UnboundedReceiver<Vec<PathBuf>>,
}

impl FileEvents {
    /// A watcher with nothing watched yet.
    pub fn new() -> notify::Result<FileEvents> {
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            // Reads (opening, closing after reading) change nothing.
            if let EventKind::Access(kind) = ev.kind
                && kind != AccessKind::Close(AccessMode::Write)
            {
                return;
            }
            let _ = tx.send(ev.paths);
        })?;
        Ok(FileEvents { watcher, rx })
    }

    /// Watches `path` (and, when `recursive`, everything below it, directories created later
    /// included).
    pub fn watch(&mut self, path: &Path, recursive: bool) -> notify::Result<()> {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        self.watcher.watch(path, mode)
    }

    /// The next paths an event names; `None` once the watcher is gone.
    pub async fn next(&mut self) -> Option<Vec<PathBuf>> {
        self.rx.recv().await
    }

    /// Every path already waiting, without waiting.
    pub fn drain(&mut self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        while let Ok(paths) = self.rx.try_recv() {
            out.extend(paths);
        }
        out
    }
}

/// Events about one local run: its records in the state database (SQLite writes its `-wal` and
/// `-journal` files beside it) and its log parts under the filesystem log store.
pub struct RunEvents {
    events: FileEvents,
    db: Option<PathBuf>,
    run_dir: Option<PathBuf>,
    run_dir_watched: bool,
}

impl RunEvents {
    /// Watches what exists of `db` and `<log_root>/<run>`; `None` when neither can be watched, or
    /// `SPARKWING_NO_FILE_EVENTS=1` (then the caller polls).
    pub fn start(db: Option<&Path>, log_root: Option<&Path>, run: &str) -> Option<RunEvents> {
        if std::env::var(sparkwing_contract::env::NO_FILE_EVENTS).is_ok_and(|v| v == "1") {
            return None;
        }
        let mut events = FileEvents::new().ok()?;
        let mut any = false;
        if let Some(dir) = db.and_then(Path::parent)
            && events.watch(dir, false).is_ok()
        {
            any = true;
        }
        let run_dir = log_root.map(|r| r.join(run));
        if let Some(root) = log_root {
            // The run's directory appears with its first part: watch its parent until then.
            let _ = std::fs::create_dir_all(root);
            any |= events.watch(root, false).is_ok();
        }
        if !any {
            return None;
        }
        let mut me = RunEvents {
            events,
            db: db.map(Path::to_path_buf),
            run_dir,
            run_dir_watched: false,
        };
        me.watch_run_dir();
        Some(me)
    }

    fn watch_run_dir(&mut self) {
        if self.run_dir_watched {
            return;
        }
        if let Some(dir) = &self.run_dir
            && dir.is_dir()
            && self.events.watch(dir, true).is_ok()
        {
            self.run_dir_watched = true;
        }
    }

    fn concerns(&self, path: &Path) -> bool {
        let in_db = self.db.as_ref().is_some_and(|db| {
            path.parent() == db.parent()
                && path
                    .file_name()
                    .zip(db.file_name())
                    .is_some_and(|(f, d)| f.as_encoded_bytes().starts_with(d.as_encoded_bytes()))
        });
        in_db || self.run_dir.as_ref().is_some_and(|d| path.starts_with(d))
    }

    /// A short token that differs whenever the run's records or log files changed: the sizes and
    /// times of the database and its journal files, and every file under the run's log directory.
    /// Taken after watching began, so a change after it is either in the token or an event.
    pub fn stamp(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut file = |p: &Path| {
            if let Ok(m) = std::fs::metadata(p) {
                p.hash(&mut h);
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        };
        if let Some(db) = &self.db {
            for suffix in ["", "-wal", "-journal"] {
                let mut name = db.as_os_str().to_owned();
                name.push(suffix);
                file(Path::new(&name));
            }
        }
        let mut stack: Vec<PathBuf> = self.run_dir.iter().cloned().collect();
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    stack.push(p);
                } else {
                    file(&p);
                }
            }
        }
        format!("{:016x}", h.finish())
    }

    /// Waits until this run's records or logs change, or `idle` passes; true on a change. Events
    /// that arrive together are taken as one change.
    pub async fn changed(&mut self, idle: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + idle;
        loop {
            let paths = match tokio::time::timeout_at(deadline, self.events.next()).await {
                Ok(Some(paths)) => paths,
                // The watcher is gone: behave like a poll.
                Ok(None) => {
                    tokio::time::sleep_until(deadline).await;
                    return false;
                }
                Err(_) => return false,
            };
            self.watch_run_dir();
            if paths.iter().any(|p| self.concerns(p)) {
                self.events.drain();
                self.watch_run_dir();
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_part_written_after_watching_began_is_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("runs");
        let db = tmp.path().join("state.db");
        std::fs::write(&db, b"").unwrap();
        let mut ev = RunEvents::start(Some(&db), Some(&logs), "run-1").unwrap();
        // Nothing happens: the idle time passes without a change.
        assert!(!ev.changed(Duration::from_millis(50)).await);
        // The run's directory and first part appear (the directory did not exist when watching
        // began), then a later part in a node directory created after that.
        std::fs::create_dir_all(logs.join("run-1/build")).unwrap();
        std::fs::write(logs.join("run-1/build/p1.ndjson"), b"{}\n").unwrap();
        assert!(ev.changed(Duration::from_secs(5)).await);
        // Let the first burst settle before the second write.
        while ev.changed(Duration::from_millis(100)).await {}
        std::fs::create_dir_all(logs.join("run-1/test")).unwrap();
        std::fs::write(logs.join("run-1/test/p2.ndjson"), b"{}\n").unwrap();
        assert!(ev.changed(Duration::from_secs(5)).await);
        while ev.changed(Duration::from_millis(100)).await {}
        // Small parts are appended to a pack file of the run: an append is a change too.
        std::fs::write(logs.join("run-1/.parts-1-0.pack"), b"header\n").unwrap();
        assert!(ev.changed(Duration::from_secs(5)).await);
        while ev.changed(Duration::from_millis(100)).await {}
        let before = ev.stamp();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(logs.join("run-1/.parts-1-0.pack"))
                .unwrap();
            f.write_all(b"more\n").unwrap();
        }
        assert!(ev.changed(Duration::from_secs(5)).await);
        assert_ne!(ev.stamp(), before);
        while ev.changed(Duration::from_millis(100)).await {}
        // Another run's logs are not this run's change; the database's WAL is.
        std::fs::create_dir_all(logs.join("run-2/x")).unwrap();
        assert!(!ev.changed(Duration::from_millis(200)).await);
        std::fs::write(tmp.path().join("state.db-wal"), b"x").unwrap();
        assert!(ev.changed(Duration::from_secs(5)).await);
    }
}
