//! Streaming and measurement helpers: a pattern reader and digest writer for big objects, and
//! heap and resident-memory peaks.

use super::*;

// Streaming helpers.

/// An `AsyncRead` of `len` pseudo-random bytes made on the fly (nothing but a 1 MiB table is
/// held), hashing what it hands out so the reader can be compared with what comes back. Each
/// MiB is a different rotation of the table, so a lost, repeated or reordered part changes the
/// digest.
pub struct PatternReader {
    remaining: u64,
    pos: u64,
    table: Vec<u8>,
    hasher: blake3::Hasher,
}

const TABLE: usize = 1 << 20;

impl PatternReader {
    /// `len` bytes from `seed`.
    pub fn new(len: u64, seed: u64) -> Self {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut table = vec![0u8; TABLE];
        for w in table.chunks_exact_mut(8) {
            // xorshift64: incompressible enough that no layer can shortcut the transfer.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        PatternReader {
            remaining: len,
            pos: 0,
            table,
            hasher: blake3::Hasher::new(),
        }
    }

    /// Digest of the bytes produced so far.
    pub fn digest(&self) -> blake3::Hash {
        self.hasher.finalize()
    }
}

impl AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let block = (this.pos / TABLE as u64) as usize;
        let within = (this.pos % TABLE as u64) as usize;
        let n = (buf.remaining() as u64)
            .min(this.remaining)
            .min((TABLE - within) as u64) as usize;
        // Byte `within` of block `block` is table[(within + block * 7919) % TABLE].
        let start = (within + block.wrapping_mul(7919)) % TABLE;
        let first = n.min(TABLE - start);
        let (a, b) = (&this.table[start..start + first], &this.table[..n - first]);
        this.hasher.update(a);
        this.hasher.update(b);
        buf.put_slice(a);
        buf.put_slice(b);
        this.remaining -= n as u64;
        this.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// An `AsyncWrite` that keeps only a digest, the byte count and the largest single write.
#[derive(Default)]
pub struct DigestWriter {
    hasher: blake3::Hasher,
    /// Bytes written.
    pub len: u64,
    /// Largest single write.
    pub max_write: usize,
}

impl DigestWriter {
    /// Digest of everything written.
    pub fn digest(&self) -> blake3::Hash {
        self.hasher.finalize()
    }
}

impl AsyncWrite for DigestWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        self.max_write = self.max_write.max(buf.len());
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A global allocator that forwards to the system allocator and tracks live heap bytes, so
/// the big-transfer case can measure what a transfer holds (RSS also counts memory the
/// allocator keeps after a free). Install it in a test or benchmark binary:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: sparkwing_storage_testing::conformance::CountingAlloc =
///     sparkwing_storage_testing::conformance::CountingAlloc;
/// ```
pub struct CountingAlloc;

static HEAP_LIVE: AtomicU64 = AtomicU64::new(0);
static HEAP_PEAK: AtomicU64 = AtomicU64::new(0);
static HEAP_COUNTING: AtomicBool = AtomicBool::new(false);

#[expect(
    unsafe_code,
    reason = "GlobalAlloc is an unsafe trait; every call forwards to System unchanged"
)]
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's; forwarded unchanged.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as u64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's; forwarded unchanged.
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        HEAP_LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's; forwarded unchanged.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size() as u64);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's; forwarded unchanged.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if !p.is_null() {
            HEAP_LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            grew(new as u64);
        }
        p
    }
}

fn grew(n: u64) {
    HEAP_COUNTING.store(true, Ordering::Relaxed);
    let live = HEAP_LIVE.fetch_add(n, Ordering::Relaxed) + n;
    HEAP_PEAK.fetch_max(live, Ordering::Relaxed);
}

/// Measures the peak growth of live heap bytes between `start` and `stop`, when
/// [`CountingAlloc`] is the global allocator. Process-wide: concurrent work counts too.
pub struct HeapPeak {
    base: u64,
}

impl HeapPeak {
    /// Starts a measurement (`None` without [`CountingAlloc`]).
    pub fn start() -> Option<HeapPeak> {
        if !HEAP_COUNTING.load(Ordering::Relaxed) {
            return None;
        }
        let base = HEAP_LIVE.load(Ordering::Relaxed);
        HEAP_PEAK.store(base, Ordering::Relaxed);
        Some(HeapPeak { base })
    }

    /// Peak growth in bytes since `start`.
    pub fn stop(self) -> u64 {
        HEAP_PEAK.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}

/// Samples the process's resident memory every few milliseconds; `stop` returns the peak growth
/// over the starting value (`None` where `/proc` is unavailable).
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    base: Option<u64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Resident set size in bytes, from `/proc/self/status`.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl RssSampler {
    /// Starts sampling.
    pub fn start() -> Self {
        let base = rss_bytes();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(base.unwrap_or(0)));
        let thread = base.map(|_| {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(r) = rss_bytes() {
                        peak.fetch_max(r, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        });
        RssSampler {
            stop,
            peak,
            base,
            thread,
        }
    }

    /// Stops sampling; peak growth in bytes.
    pub fn stop(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(r) = rss_bytes() {
            self.peak.fetch_max(r, Ordering::Relaxed);
        }
        self.base
            .map(|b| self.peak.load(Ordering::Relaxed).saturating_sub(b))
    }
}
