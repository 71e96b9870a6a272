//! The batcher: one task owns every node's buffer and cuts a part when a buffer reaches
//! [`MAX_PART`] or its oldest line is about [`MAX_AGE`] old, never a part per line. Over a store
//! whose parts are cheap (a local directory), a buffer is also cut once its node has been quiet
//! for [`QUIET`], so a reader on the same machine sees a line within milliseconds.

use super::*;

struct Pending {
    data: Vec<u8>,
    since: Instant,
    /// When the last bytes arrived.
    last: Instant,
    permits: u32,
}

/// Owns every node's buffer; cuts parts and hands them to the delivery task.
struct Batcher {
    out: mpsc::UnboundedSender<Out>,
    bufs: HashMap<Arc<str>, Pending>,
}

impl Batcher {
    /// Hands the node's buffered lines on as a part. The buffer goes with them, so `bufs` holds
    /// only nodes with lines waiting and every scan of it stays short however many jobs the run
    /// has had.
    fn cut(&mut self, node: &Arc<str>) {
        if self.bufs.get(node).is_some_and(|p| !p.data.is_empty())
            && let Some(p) = self.bufs.remove(node)
        {
            let _ = self.out.send(Out::Part {
                node: node.clone(),
                data: p.data,
                permits: p.permits,
            });
        }
    }

    fn cut_all(&mut self, older_than: Option<Duration>) {
        let now = Instant::now();
        let due: Vec<Arc<str>> = self
            .bufs
            .iter()
            .filter(|(_, p)| !p.data.is_empty())
            .filter(|(_, p)| older_than.is_none_or(|age| now.duration_since(p.since) >= age))
            .map(|(n, _)| n.clone())
            .collect();
        for node in due {
            self.cut(&node);
        }
    }

    fn add(&mut self, node: Arc<str>, mut bytes: Vec<u8>, mut permits: u32) {
        if let Some(p) = self.bufs.get_mut(&node)
            && !p.data.is_empty()
            && p.data.len() + bytes.len() > MAX_PART
        {
            // The cut part carries the permits, so they return to the budget when it is delivered.
            p.permits += std::mem::take(&mut permits);
            // Fill the part up to the limit at a line boundary, so parts are full and the store
            // sees about one request per MiB.
            let room = MAX_PART - p.data.len();
            if let Some(end) = bytes[..room].iter().rposition(|&b| b == b'\n') {
                p.data.extend_from_slice(&bytes[..=end]);
                bytes.drain(..=end);
            }
            self.cut(&node);
            if bytes.is_empty() {
                return;
            }
        }
        if bytes.len() >= MAX_PART {
            let _ = self.out.send(Out::Part {
                node,
                data: bytes,
                permits,
            });
            return;
        }
        let now = Instant::now();
        let p = self.bufs.entry(node).or_insert_with(|| Pending {
            data: Vec::new(),
            since: now,
            last: now,
            permits: 0,
        });
        if p.data.is_empty() {
            p.since = now;
            p.data.reserve(bytes.len().max(64 * 1024));
        }
        p.last = now;
        p.data.extend_from_slice(&bytes);
        p.permits += permits;
    }

    /// When the earliest quiet buffer is due, if any buffer holds bytes.
    fn next_quiet(&self, quiet: Duration) -> Option<Instant> {
        self.bufs
            .values()
            .filter(|p| !p.data.is_empty())
            .map(|p| p.last + quiet)
            .min()
    }

    fn cut_quiet(&mut self, quiet: Duration) {
        let now = Instant::now();
        let due: Vec<Arc<str>> = self
            .bufs
            .iter()
            .filter(|(_, p)| !p.data.is_empty() && now.duration_since(p.last) >= quiet)
            .map(|(n, _)| n.clone())
            .collect();
        for node in due {
            self.cut(&node);
        }
    }
}

/// `quiet`: cut a buffer once its node wrote nothing for this long (cheap stores only).
pub(super) async fn batcher(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    out: mpsc::UnboundedSender<Out>,
    quiet: Option<Duration>,
) {
    let mut b = Batcher {
        out,
        bufs: HashMap::new(),
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let quiet_due = quiet.and_then(|q| b.next_quiet(q));
        tokio::select! {
            msg = rx.recv() => match msg {
                None => {
                    b.cut_all(None);
                    return;
                }
                Some(Msg::Data { node, bytes, permits }) => b.add(node, bytes, permits),
                #[cfg(test)]
                Some(Msg::Flush { node, done }) => {
                    match node {
                        Some(n) => b.cut(&n),
                        None => b.cut_all(None),
                    }
                    let _ = b.out.send(Out::Barrier(done));
                }
                Some(Msg::Cut(node)) => b.cut(&node),
                Some(Msg::Close(done)) => {
                    b.cut_all(None);
                    let _ = b.out.send(Out::Close(done));
                    return;
                }
            },
            _ = tick.tick() => b.cut_all(Some(MAX_AGE)),
            _ = tokio::time::sleep_until(quiet_due.unwrap_or_else(Instant::now)), if quiet_due.is_some() => {
                b.cut_quiet(quiet.unwrap_or(MAX_AGE));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_buffer_leaves_the_batcher_with_its_permits() {
        let (out, mut parts) = mpsc::unbounded_channel();
        let mut b = Batcher {
            out,
            bufs: HashMap::new(),
        };
        for i in 0..1000 {
            let node: Arc<str> = format!("job-{i}").into();
            b.add(node.clone(), b"{\"msg\":\"x\"}\n".to_vec(), 2);
            b.cut(&node);
        }
        // Every node's lines left as a part, and nothing stays behind to scan.
        assert!(b.bufs.is_empty());
        assert_eq!(b.next_quiet(Duration::from_millis(5)), None);
        let mut permits = 0;
        let mut n = 0;
        while let Ok(Out::Part { permits: p, .. }) = parts.try_recv() {
            permits += p;
            n += 1;
        }
        assert_eq!((n, permits), (1000, 2000));
        // A node with lines waiting is the one the quiet timer looks at.
        let node: Arc<str> = "late".into();
        b.add(node.clone(), b"{}\n".to_vec(), 1);
        assert_eq!(b.bufs.len(), 1);
        assert!(b.next_quiet(Duration::from_millis(5)).is_some());
    }
}
