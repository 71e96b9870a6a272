//! The batcher: every node's buffer, cut into a part when it reaches [`MAX_PART`] or its oldest
//! line is about [`MAX_AGE`] old, never a part per line. Over a store whose parts are cheap (a
//! local directory), a buffer is also cut once its node has been quiet for [`QUIET`], so a reader
//! on the same machine sees a line within milliseconds. The parts of jobs that ended leave
//! together [`LINGER`] after the first; lines cut for their age or a pause leave at once.
//!
//! The buffers are changed in place by whoever writes a line or ends a job, under one lock: a job
//! that writes a line or two costs no task wake-up. A timer task does what is due by a clock
//! (aged and quiet buffers, the linger) and is woken only when a change brings a deadline earlier
//! than the one it sleeps toward.

use super::*;

struct Pending {
    data: Vec<u8>,
    since: Instant,
    /// When the last bytes arrived.
    last: Instant,
    permits: u32,
}

impl Pending {
    /// When the buffer is to be cut: its oldest line about [`MAX_AGE`] old, or (over a cheap
    /// store) its node `quiet` for that long.
    fn due_at(&self, quiet: Option<Duration>) -> Instant {
        let aged = self.since + MAX_AGE;
        quiet.map_or(aged, |q| aged.min(self.last + q))
    }
}

/// Every node's buffer, and the parts cut and not handed to the delivery task yet.
pub(super) struct Batcher {
    out: mpsc::UnboundedSender<Out>,
    bufs: HashMap<Arc<str>, Pending>,
    /// Parts cut and not handed on yet: they leave together [`LINGER`] after the first.
    ready: Vec<Cut>,
    ready_bytes: usize,
    linger_until: Option<Instant>,
    /// Cut a buffer once its node wrote nothing for this long (cheap stores only).
    quiet: Option<Duration>,
    /// When the timer task wakes next (`None`: only when told); never later than the earliest
    /// deadline.
    armed: Option<Instant>,
    /// Set when a change brought a deadline before `armed`: the timer task is to be woken.
    poke: bool,
    /// Set once the sink closed: later lines are dropped and the timer task ends.
    pub(super) closed: bool,
}

impl Batcher {
    pub(super) fn new(out: mpsc::UnboundedSender<Out>, quiet: Option<Duration>) -> Batcher {
        Batcher {
            out,
            bufs: HashMap::new(),
            ready: Vec::new(),
            ready_bytes: 0,
            linger_until: None,
            quiet,
            armed: None,
            poke: false,
            closed: false,
        }
    }

    /// Something is due by `at`: the timer task must wake by then.
    fn due_by(&mut self, at: Instant) {
        if self.armed.is_none_or(|a| at < a) {
            self.armed = Some(at);
            self.poke = true;
        }
    }

    /// Whether the timer task is to be woken; clears the request.
    pub(super) fn take_poke(&mut self) -> bool {
        std::mem::take(&mut self.poke)
    }

    /// Cuts the node's buffered lines as a part. The buffer goes with them, so `bufs` holds
    /// only nodes with lines waiting and every scan of it stays short however many jobs the run
    /// has had.
    pub(super) fn cut(&mut self, node: &Arc<str>) {
        if self.bufs.get(node).is_some_and(|p| !p.data.is_empty())
            && let Some(p) = self.bufs.remove(node)
        {
            self.queue(node.clone(), p.data, p.permits);
        }
    }

    /// Queues a cut part; the queue leaves once it holds a part's worth of bytes or [`MAX_BATCH`]
    /// parts, else after the linger.
    fn queue(&mut self, node: Arc<str>, data: Vec<u8>, permits: u32) {
        if self.ready.is_empty() {
            let at = Instant::now() + LINGER;
            self.linger_until = Some(at);
            self.due_by(at);
        }
        self.ready_bytes += data.len();
        self.ready.push(Cut {
            node,
            data,
            permits,
        });
        if self.ready_bytes >= MAX_PART || self.ready.len() >= MAX_BATCH {
            self.send_ready();
        }
    }

    /// Hands every queued part to the delivery task.
    pub(super) fn send_ready(&mut self) {
        self.linger_until = None;
        self.ready_bytes = 0;
        if !self.ready.is_empty() {
            let _ = self.out.send(Out::Parts(std::mem::take(&mut self.ready)));
        }
    }

    /// Hands `msg` to the delivery task after everything cut so far.
    pub(super) fn send_after(&mut self, msg: Out) {
        self.send_ready();
        let _ = self.out.send(msg);
    }

    /// Cuts every buffer that holds lines.
    pub(super) fn cut_all(&mut self) {
        let all: Vec<Arc<str>> = self.bufs.keys().cloned().collect();
        for node in all {
            self.cut(&node);
        }
    }

    pub(super) fn add(&mut self, node: Arc<str>, mut bytes: Vec<u8>, mut permits: u32) {
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
            self.queue(node, bytes, permits);
            return;
        }
        let now = Instant::now();
        let quiet = self.quiet;
        let p = self.bufs.entry(node).or_insert_with(|| Pending {
            data: Vec::new(),
            since: now,
            last: now,
            permits: 0,
        });
        let fresh = p.data.is_empty();
        if fresh {
            p.since = now;
            p.data.reserve(bytes.len().max(4096));
        }
        p.last = now;
        p.data.extend_from_slice(&bytes);
        p.permits += permits;
        // A buffer that was empty brings the earliest deadlines it can have; a write to one
        // that was not only moves its quiet deadline later.
        if fresh {
            let at = p.due_at(quiet);
            self.due_by(at);
        }
    }

    /// Does what is due at `now`: cuts aged and quiet buffers, hands on the linger's parts.
    fn run_due(&mut self, now: Instant) {
        let quiet = self.quiet;
        let due: Vec<Arc<str>> = self
            .bufs
            .iter()
            .filter(|(_, p)| !p.data.is_empty() && p.due_at(quiet) <= now)
            .map(|(n, _)| n.clone())
            .collect();
        // Lines cut for their age or a pause have waited enough (a reader may be waiting for
        // them): they leave at once, with whatever else is ready.
        let waited = !due.is_empty();
        for node in due {
            self.cut(&node);
        }
        if waited || self.linger_until.is_some_and(|at| at <= now) {
            self.send_ready();
        }
    }

    /// The earliest deadline: the linger, or a buffer's age or quiet limit.
    fn next_due(&self) -> Option<Instant> {
        let quiet = self.quiet;
        self.bufs
            .values()
            .filter(|p| !p.data.is_empty())
            .map(|p| p.due_at(quiet))
            .chain(self.linger_until)
            .min()
    }
}

/// The buffers and the timer task's wake-up.
pub(super) struct Shared {
    pub(super) batcher: std::sync::Mutex<Batcher>,
    pub(super) wake: tokio::sync::Notify,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Batcher> {
        self.batcher.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Does what falls due by the clock, until the sink closes.
pub(super) async fn timer(shared: Arc<Shared>) {
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        let next = {
            let mut b = shared.lock();
            if b.closed {
                return;
            }
            b.run_due(Instant::now());
            let next = b.next_due();
            b.armed = next;
            b.poke = false;
            next
        };
        // A change after the lock was let go wakes this through `wake`, which keeps the wake-up
        // for the wait below even when it comes first.
        match next {
            Some(at) => {
                sleep.as_mut().reset(at);
                tokio::select! {
                    () = &mut sleep => {}
                    _ = shared.wake.notified() => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_buffers_leave_together_with_their_permits_and_wake_the_timer_once() {
        let (out, mut parts) = mpsc::unbounded_channel();
        let mut b = Batcher::new(out, None);
        for i in 0..1000 {
            let node: Arc<str> = format!("job-{i}").into();
            b.add(node.clone(), b"{\"msg\":\"x\"}\n".to_vec(), 2);
            b.cut(&node);
        }
        // Every node's lines were cut, and nothing stays behind to scan.
        assert!(b.bufs.is_empty());
        // The first line and the first cut brought deadlines; the other 999 jobs none earlier,
        // so the timer task is woken once, not per job.
        assert!(b.take_poke());
        assert!(
            b.armed.is_some() && b.armed <= b.linger_until,
            "the timer wakes in time"
        );
        assert!(!b.take_poke());
        // The parts leave in batches of at most MAX_BATCH; the rest waits for the linger (or a
        // part's worth of bytes).
        let mut batches = Vec::new();
        while let Ok(Out::Parts(batch)) = parts.try_recv() {
            batches.push(batch);
        }
        assert_eq!(
            batches.len(),
            1000 / MAX_BATCH,
            "full batches leave at once"
        );
        assert_eq!(b.next_due(), b.linger_until);
        b.run_due(b.linger_until.unwrap());
        let Ok(Out::Parts(last)) = parts.try_recv() else {
            panic!("no batch after the linger");
        };
        batches.push(last);
        let all: Vec<&Cut> = batches.iter().flatten().collect();
        let permits: u32 = all.iter().map(|c| c.permits).sum();
        assert_eq!((all.len(), permits), (1000, 2000));
        assert!(batches.iter().all(|b| b.len() <= MAX_BATCH));
        assert_eq!(&*all[0].node, "job-0");
        assert_eq!(&*all[999].node, "job-999");
        assert_eq!(b.next_due(), None);
        // A node with lines waiting is cut when they are about a second old.
        let node: Arc<str> = "late".into();
        b.add(node.clone(), b"{}\n".to_vec(), 1);
        let aged = b.next_due().expect("a deadline for the waiting lines");
        b.run_due(aged - Duration::from_millis(1));
        assert_eq!(b.bufs.len(), 1, "cut too early");
        b.run_due(aged);
        assert!(b.bufs.is_empty());
        assert!(matches!(parts.try_recv(), Ok(Out::Parts(p)) if p.len() == 1));
        // A part's worth of cut bytes leaves at once, without waiting for the linger.
        let big: Arc<str> = "big".into();
        b.add(big.clone(), vec![b'x'; MAX_PART / 2], 1);
        b.cut(&big);
        assert!(
            parts.try_recv().is_err(),
            "half a part waits for the linger"
        );
        b.add(big.clone(), vec![b'x'; MAX_PART / 2], 1);
        b.cut(&big);
        assert!(matches!(parts.try_recv(), Ok(Out::Parts(p)) if p.len() == 2));
    }

    #[test]
    fn over_a_cheap_store_a_pause_cuts_and_sends_the_lines_at_once() {
        let (out, mut parts) = mpsc::unbounded_channel();
        let quiet = Duration::from_millis(15);
        let mut b = Batcher::new(out, Some(quiet));
        let node: Arc<str> = "job".into();
        b.add(node.clone(), b"{}\n".to_vec(), 0);
        let first = b.next_due().unwrap();
        assert!(b.take_poke());
        assert_eq!(b.armed, Some(first));
        b.run_due(first);
        assert!(b.bufs.is_empty(), "cut once quiet");
        // Cut for a pause, the lines leave at once: a reader on this machine may be waiting.
        assert!(matches!(parts.try_recv(), Ok(Out::Parts(p)) if p.len() == 1));
        assert_eq!(b.linger_until, None);
    }
}
