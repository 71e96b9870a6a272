//! What the cache holds and letting go of it: listing entries with their state, LRU pruning to the
//! byte and entry ceilings (or everything not in use, or by age), and removing what crashed
//! builds left behind.

use super::*;

impl LocalCache {
    /// Every entry with its size and last use, most recently used first.
    pub fn info(&self) -> Result<CacheInfo, CacheError> {
        let mut entries = Vec::new();
        for (key, bytes, used) in self.scan()? {
            let meta = self.read_meta(&key);
            let problem = self.quick_check(&key, &meta).err();
            let lp = self.lease_path(&key);
            let in_use = matches!(lock::try_lock(&lp, Mode::Exclusive), Ok(None));
            let (created, source) = match &meta {
                Ok(m) => (Some(m.created.clone()), Some(m.source)),
                Err(_) => (None, None),
            };
            entries.push((
                used,
                EntryInfo {
                    key,
                    bytes,
                    created,
                    last_used: rfc3339(used),
                    source,
                    in_use,
                    problem,
                },
            ));
        }
        entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
        let entries: Vec<EntryInfo> = entries.into_iter().map(|(_, e)| e).collect();
        Ok(CacheInfo {
            root: self.root.clone(),
            total_bytes: entries.iter().map(|e| e.bytes).sum(),
            entries,
            limits: self.limits,
        })
    }

    /// Metadata and binary presence, without hashing (for listings).
    fn quick_check(&self, key: &str, meta: &Result<Meta, String>) -> Result<(), String> {
        let meta = meta.as_ref().map_err(Clone::clone)?;
        if meta.format_version != ENTRY_FORMAT_VERSION {
            return Err(format!("entry format {}", meta.format_version));
        }
        match fs::symlink_metadata(self.entry_dir(key).join(BINARY_FILE)) {
            Ok(m) if m.is_file() && m.len() == meta.binary_size => Ok(()),
            Ok(_) => Err("binary size or type changed".into()),
            Err(_) => Err("binary missing".into()),
        }
    }

    /// `(key, bytes, last used)` of every entry directory.
    fn scan(&self) -> Result<Vec<(String, u64, SystemTime)>, CacheError> {
        let dir = self.root.join("entries");
        let rd = fs::read_dir(&dir).map_err(io("read directory", &dir))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(key) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_key(&key).is_err() {
                continue;
            }
            let path = e.path();
            let bytes = dir_size(&path);
            let used = [USED_FILE, META_FILE, ""]
                .iter()
                .find_map(|f| {
                    let p = if f.is_empty() {
                        path.clone()
                    } else {
                        path.join(f)
                    };
                    fs::metadata(p).and_then(|m| m.modified()).ok()
                })
                .unwrap_or(UNIX_EPOCH);
            out.push((key, bytes, used));
        }
        Ok(out)
    }

    /// Removes entries per `opts`, never one with a live lease or a build in progress; also
    /// clears what crashed processes left in `staging/` and `trash/`.
    pub fn prune(&self, opts: PruneOpts) -> Result<PruneReport, CacheError> {
        self.prune_inner(opts, true).map(|r| r.unwrap_or_default())
    }

    /// `Ok(None)` when `wait` is false and another prune is running (it will do the work).
    pub(super) fn prune_inner(
        &self,
        opts: PruneOpts,
        wait: bool,
    ) -> Result<Option<PruneReport>, CacheError> {
        let pl = self.root.join("locks").join("prune.lock");
        let _prune_lock = if wait {
            match lock::lock_with_timeout(&pl, Mode::Exclusive, self.limits.lock_timeout, |_| {})
                .map_err(io("lock", &pl))?
            {
                Ok(h) => h,
                Err(holder) => {
                    return Err(CacheError::LockTimeout {
                        lock: pl,
                        holder,
                        waited_secs: self.limits.lock_timeout.as_secs(),
                    });
                }
            }
        } else {
            match lock::try_lock(&pl, Mode::Exclusive).map_err(io("lock", &pl))? {
                Some(h) => h,
                None => return Ok(None),
            }
        };

        let mut report = PruneReport::default();
        let mut entries = self.scan()?;
        // Unusable entries go first, then least recently used.
        entries.sort_by_key(|(key, _, used)| (self.read_meta(key).is_ok(), *used));
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        let mut count = entries.len() as u64;
        let now = SystemTime::now();
        for (key, bytes, used) in &entries {
            let selected = match opts {
                PruneOpts::All => true,
                PruneOpts::OlderThan(age) => now.duration_since(*used).unwrap_or_default() >= age,
                PruneOpts::ToLimits => {
                    self.limits.max_bytes.is_some_and(|m| total > m)
                        || self.limits.max_entries.is_some_and(|m| count > m)
                }
            };
            if !selected {
                // Sorted oldest first: under ToLimits nothing later is needed either.
                if opts == PruneOpts::ToLimits {
                    break;
                }
                continue;
            }
            if self.remove_entry(key)? {
                total = total.saturating_sub(*bytes);
                count -= 1;
                report.freed_bytes += bytes;
                report.removed.push(PrunedEntry {
                    key: key.clone(),
                    bytes: *bytes,
                });
            } else {
                report.kept_in_use.push(key.clone());
            }
        }
        report.remaining_entries = count;
        report.remaining_bytes = total;
        report.stale_staging_removed = self.clear_leftovers(&entries)?;
        Ok(Some(report))
    }

    /// Deletes an entry unless it is leased or being built. Its lock files go too, unlinked
    /// while held so no process can keep using an orphaned lock.
    fn remove_entry(&self, key: &str) -> Result<bool, CacheError> {
        let lp = self.lease_path(key);
        let Some(lease) = lock::try_lock(&lp, Mode::Exclusive).map_err(io("lock", &lp))? else {
            return Ok(false);
        };
        let bp = self.build_path(key);
        let Some(builder) = lock::try_lock(&bp, Mode::Exclusive).map_err(io("lock", &bp))? else {
            return Ok(false);
        };
        let dir = self.entry_dir(key);
        let trash = self
            .root
            .join("trash")
            .join(format!("{key}.{}", unique_suffix()));
        match fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("move aside", &dir)(e).into()),
        }
        lease.unlink();
        builder.unlink();
        drop(builder);
        drop(lease);
        let _ = fs::remove_dir_all(&trash);
        Ok(true)
    }

    /// Removes staging directories whose build lock nobody holds (their process died), the
    /// contents of `trash/`, and lock files of keys that have no entry.
    fn clear_leftovers(&self, entries: &[(String, u64, SystemTime)]) -> Result<u64, CacheError> {
        let mut removed = 0;
        let staging = self.root.join("staging");
        if let Ok(rd) = fs::read_dir(&staging) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let key = name.split('.').next().unwrap_or("");
                if validate_key(key).is_err() {
                    continue;
                }
                let bp = self.build_path(key);
                if let Ok(Some(_held)) = lock::try_lock(&bp, Mode::Exclusive)
                    && fs::remove_dir_all(e.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.root.join("trash")) {
            for e in rd.flatten() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let locks = self.root.join("locks");
        if let Ok(rd) = fs::read_dir(&locks) {
            let mut orphans: Vec<String> = rd
                .flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".lease")
                        .or_else(|| n.strip_suffix(".build"))
                        .map(str::to_string)
                })
                .filter(|k| validate_key(k).is_ok())
                .filter(|k| !entries.iter().any(|(e, _, _)| e == k))
                .filter(|k| !self.entry_dir(k).exists())
                .collect();
            orphans.sort();
            orphans.dedup();
            for k in orphans {
                self.remove_entry(&k)?;
            }
        }
        Ok(removed)
    }
}
