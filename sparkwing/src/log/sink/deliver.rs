//! Delivery of cut parts: each part goes to the store under the name it was given when first cut;
//! a part the store refuses is spooled to a local file and retried in order in the background,
//! and whatever is still undelivered at close stays in the spool and is counted.

use super::*;

/// A part waiting in the spool: its bytes are in `path`, its name in the store is `part`.
struct Spooled {
    node: Arc<str>,
    part: String,
    path: PathBuf,
    len: u64,
}

/// Parts the store refused, in the order they must be delivered. Once one part is spooled, every
/// later part goes through the spool too, so the store sees each node's parts in write order.
/// A part is named once, when it is first offered to the store, and keeps that name through every
/// retry: an attempt that timed out but landed is overwritten by its retry, never duplicated.
struct Spool {
    dir: PathBuf,
    queue: VecDeque<Spooled>,
}

impl Spool {
    /// `<dir>/logs/<node>/<part>`, the store layout, so whoever delivers it later (this sink, or
    /// the supervisor after a crash) uses the same part name.
    fn put(&mut self, node: &Arc<str>, part: String, data: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join("logs").join(&**node);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(&part);
        // Through a temporary name: a process killed mid-write leaves no half part that the
        // supervisor would then put over the whole one already in the store. (Temporary names
        // are not part names, so nobody delivers them.)
        let tmp = dir.join(format!(".{part}.tmp"));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &path)?;
        self.queue.push_back(Spooled {
            node: node.clone(),
            part,
            path,
            len: data.len() as u64,
        });
        Ok(())
    }
}

pub(super) struct Delivery {
    store: Arc<dyn LogStore>,
    describe: String,
    run: String,
    stats: SinkStats,
    budget: Arc<Semaphore>,
    closing: watch::Receiver<Option<Instant>>,
    spool: Spool,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Delivery {
    pub(super) fn new(
        store: Arc<dyn LogStore>,
        run: String,
        budget: Arc<Semaphore>,
        closing: watch::Receiver<Option<Instant>>,
        spool_dir: PathBuf,
    ) -> Delivery {
        Delivery {
            describe: store.describe(),
            store,
            run,
            stats: SinkStats::default(),
            budget,
            closing,
            spool: Spool {
                dir: spool_dir,
                queue: VecDeque::new(),
            },
            retry_at: None,
            backoff: RETRY_MIN,
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Delivery {
    /// One bounded delivery attempt of one part.
    async fn append(&self, node: &str, part: &str, data: Vec<u8>) -> Result<(), String> {
        self.bounded(1, self.store.put_part(&self.run, node, part, data))
            .await
    }

    /// Runs `put` of `parts` parts for at most [`PART_TIMEOUT`] per [`PARTS_PER_TIMEOUT`] parts,
    /// and never past the close deadline, even when the close comes while it is in flight.
    async fn bounded(
        &self,
        parts: usize,
        put: impl std::future::Future<Output = sparkwing_storage::error::Result<()>>,
    ) -> Result<(), String> {
        let rounds = parts.div_ceil(PARTS_PER_TIMEOUT).max(1) as u32;
        let limit = Instant::now() + PART_TIMEOUT * rounds;
        let mut closing = self.closing.clone();
        tokio::pin!(put);
        loop {
            let at = match *closing.borrow_and_update() {
                Some(d) => d.min(limit),
                None => limit,
            };
            tokio::select! {
                r = &mut put => return r.map_err(|e| e.to_string()),
                _ = tokio::time::sleep_until(at) => {
                    return Err("the log store did not answer in time".into());
                }
                changed = closing.changed() => {
                    if changed.is_err() {
                        // The sender is gone: no deadline will come; keep the time limit.
                        return match tokio::time::timeout_at(limit, &mut put).await {
                            Ok(r) => r.map_err(|e| e.to_string()),
                            Err(_) => Err("the log store did not answer in time".into()),
                        };
                    }
                }
            }
        }
    }

    fn note_error(&mut self, node: &str, e: String) {
        if self.stats.first_error.is_none() {
            eprintln!(
                "warning: failed to deliver a log part of `{node}` to {}: {e}\n  note: keeping parts in `{}` and retrying in the background",
                self.describe,
                self.spool.dir.display()
            );
            self.stats.first_error = Some(e);
        }
    }

    fn spool(&mut self, node: &Arc<str>, part: String, data: &[u8]) {
        match self.spool.put(node, part, data) {
            Ok(()) => self.stats.spooled_parts += 1,
            Err(e) => {
                // Neither the store nor the disk took it: lost, and counted as such.
                self.note_error(
                    node,
                    format!("spool to `{}`: {e}", self.spool.dir.display()),
                );
                self.stats.failed_parts += 1;
                self.stats.failed_bytes += data.len() as u64;
            }
        }
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + self.backoff);
        }
    }

    /// Delivers cut parts in one request. Each is named once, here; when the store refuses the
    /// request, every part of it goes to the spool in order under that name (a part that did
    /// land is then written again, which replaces it).
    async fn deliver(&mut self, cuts: Vec<Cut>) {
        let (nodes, batch): (Vec<Arc<str>>, Vec<LogPart>) = cuts
            .into_iter()
            .filter(|c| !c.data.is_empty())
            .map(|c| {
                let part = LogPart {
                    node: c.node.to_string(),
                    name: sparkwing_storage::next_part_name(),
                    data: c.data,
                };
                (c.node, part)
            })
            .unzip();
        if batch.is_empty() {
            return;
        }
        if self.spool.queue.is_empty() {
            let put = self.store.put_parts(&self.run, &batch);
            match self.bounded(batch.len(), put).await {
                Ok(()) => {
                    self.stats.parts += batch.len() as u64;
                    self.stats.bytes += batch.iter().map(|p| p.data.len() as u64).sum::<u64>();
                    return;
                }
                Err(e) => self.note_error(&nodes[0], e),
            }
        }
        for (node, p) in nodes.iter().zip(batch) {
            self.spool(node, p.name, &p.data);
        }
    }

    /// Delivers spooled parts in order until one fails. Returns whether the spool is empty.
    async fn retry(&mut self) -> bool {
        let mut delivered = 0u64;
        while let Some(head) = self.spool.queue.front() {
            let node = head.node.clone();
            let part = head.part.clone();
            let path = head.path.clone();
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) => {
                    // The file vanished or cannot be read: it is lost, not retried forever.
                    self.note_error(
                        &node,
                        format!("read spooled part `{}`: {e}", path.display()),
                    );
                    let lost = self.spool.queue.pop_front().map_or(0, |s| s.len);
                    self.stats.failed_parts += 1;
                    self.stats.failed_bytes += lost;
                    continue;
                }
            };
            let len = data.len() as u64;
            match self.append(&node, &part, data).await {
                Ok(()) => {
                    let _ = std::fs::remove_file(&path);
                    self.spool.queue.pop_front();
                    self.stats.parts += 1;
                    self.stats.bytes += len;
                    delivered += 1;
                }
                Err(_) => {
                    self.backoff = (self.backoff * 2).min(RETRY_MAX);
                    self.retry_at = Some(Instant::now() + self.backoff);
                    return false;
                }
            }
        }
        self.retry_at = None;
        self.backoff = RETRY_MIN;
        if delivered > 0 {
            eprintln!(
                "sparkwing: {} reachable again: delivered {delivered} spooled log part(s)",
                self.describe
            );
            remove_empty_dirs(&self.spool.dir);
        }
        true
    }

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Out>) {
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Out::Parts(cuts)) => {
                        let permits: usize = cuts.iter().map(|c| c.permits as usize).sum();
                        self.deliver(cuts).await;
                        self.budget.add_permits(permits);
                    }
                    #[cfg(test)]
                    Some(Out::Barrier(done)) => {
                        let _ = done.send(());
                    }
                    Some(Out::Close(done)) => {
                        let _ = done.send(self.finish().await);
                        return;
                    }
                    None => return,
                },
                _ = sleep_until_opt(self.retry_at), if self.retry_at.is_some() => {
                    self.retry().await;
                }
            }
        }
    }

    /// Retries the spool until it is empty or the close deadline passes; counts what is left.
    async fn finish(&mut self) -> SinkStats {
        let deadline = self.closing.borrow().unwrap_or_else(Instant::now);
        while !self.spool.queue.is_empty() && Instant::now() < deadline {
            if self.retry().await {
                break;
            }
            let at = self.retry_at.unwrap_or(deadline).min(deadline);
            tokio::time::sleep_until(at).await;
        }
        if !self.spool.queue.is_empty() {
            self.stats.failed_parts += self.spool.queue.len() as u64;
            self.stats.failed_bytes += self.spool.queue.iter().map(|s| s.len).sum::<u64>();
        }
        if self.stats.failed_parts > 0 {
            self.stats.spool_dir = Some(self.spool.dir.join("logs"));
        }
        std::mem::take(&mut self.stats)
    }
}

/// Removes `dir` and its empty subdirectories (what a drained spool leaves behind).
fn remove_empty_dirs(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
