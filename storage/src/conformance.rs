//! One conformance suite for every backend: the same cases run against the filesystem stores,
//! the S3 stores on the test server, and (through `scripts/s3-compat.sh`) every S3-compatible
//! server we can start.
//!
//! A factory hands each case a fresh, empty store. Cases that need a capability the store
//! reports it lacks (conditional writes) are skipped and say why; everything else must pass.
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use sparkwing_storage::conformance::{self, SuiteOptions};
//! use sparkwing_storage::{ArtifactStore, FsArtifactStore};
//!
//! let root = tempfile::tempdir().unwrap();
//! let dir = root.path().to_path_buf();
//! let n = std::sync::atomic::AtomicU64::new(0);
//! let factory = move || -> Arc<dyn ArtifactStore> {
//!     let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!     Arc::new(FsArtifactStore::new(dir.join(format!("case-{i}"))))
//! };
//! let report = conformance::run_artifact_suite("fs", &factory, &SuiteOptions::default()).await;
//! report.assert_passed();
//! # }
//! ```

use crate::artifact::ArtifactStore;
use crate::error::StoreError;
use crate::logs::{LogStore, ReadOpts};
use futures_util::future::BoxFuture;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Sizes of the heavy cases. The defaults are the product's promises; the compatibility run
/// may use the same.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Size of the object streamed both ways with bounded memory.
    pub big_object_bytes: u64,
    /// Memory growth the big transfer may cause (it must not hold the object): live heap where
    /// [`CountingAlloc`] is installed, else resident memory.
    pub max_memory_growth: u64,
    /// Keys written and listed back (beyond one S3 listing page of 1,000).
    pub many_keys: usize,
    /// Parts appended to one node's log and read back in order.
    pub log_parts: usize,
    /// Concurrent create-only writers of one key.
    pub racers: usize,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            big_object_bytes: 200 * 1024 * 1024,
            max_memory_growth: 96 * 1024 * 1024,
            many_keys: 1500,
            log_parts: 200,
            racers: 16,
        }
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Not applicable to this store (the reason says why).
    Skip(String),
    Fail(String),
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// `artifact`, `conditional` or `log`.
    pub group: &'static str,
    pub name: &'static str,
    pub outcome: Outcome,
    /// A measurement worth showing (e.g. memory held by a big transfer).
    pub note: Option<String>,
    pub elapsed: Duration,
}

tokio::task_local! {
    static NOTE: std::cell::RefCell<Option<String>>;
}

/// Attaches a measurement to the running case's report line.
fn note(text: String) {
    let _ = NOTE.try_with(|n| *n.borrow_mut() = Some(text));
}

/// Results of a suite run against one backend.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was tested (e.g. `fs`, `s3 (SeaweedFS)`).
    pub backend: String,
    pub cases: Vec<CaseReport>,
}

impl Report {
    /// Failed cases.
    pub fn failures(&self) -> Vec<&CaseReport> {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .collect()
    }

    /// A plain-text table: one line per case.
    pub fn table(&self) -> String {
        let mut s = String::new();
        for c in &self.cases {
            let (mark, detail) = match &c.outcome {
                Outcome::Pass => (
                    "PASS",
                    c.note
                        .as_ref()
                        .map(|n| format!("  {n}"))
                        .unwrap_or_default(),
                ),
                Outcome::Skip(w) => ("SKIP", format!("  ({w})")),
                Outcome::Fail(w) => ("FAIL", format!("  {w}")),
            };
            let _ = writeln!(
                s,
                "{:<8} {:<12} {:<44} {mark} {:>7.2}s{detail}",
                self.backend,
                c.group,
                c.name,
                c.elapsed.as_secs_f64()
            );
        }
        s
    }

    /// Panics listing every failed case (with the whole table) unless all passed or skipped.
    pub fn assert_passed(&self) {
        let failures = self.failures();
        assert!(
            failures.is_empty(),
            "{} of {} conformance cases failed for {}:\n{}",
            failures.len(),
            self.cases.len(),
            self.backend,
            self.table()
        );
    }

    /// Merges another report's cases into this one.
    pub fn extend(&mut self, other: Report) {
        self.cases.extend(other.cases);
    }
}

/// Why a case did not pass.
enum CaseErr {
    Skip(String),
    Fail(String),
}

impl From<StoreError> for CaseErr {
    fn from(e: StoreError) -> Self {
        CaseErr::Fail(format!("unexpected error: {e}"))
    }
}

type CaseResult = Result<(), CaseErr>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(CaseErr::Fail(format!($($fmt)+)));
        }
    };
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned();
    format!("{s:?}{}", if b.len() > 200 { "…" } else { "" })
}

type CaseFn<S> = fn(Arc<S>, SuiteOptions) -> BoxFuture<'static, CaseResult>;
type ArtifactCase = CaseFn<dyn ArtifactStore>;
type LogCase = CaseFn<dyn LogStore>;

macro_rules! cases {
    ($store:ty; $($name:ident),* $(,)?) => {
        vec![$((stringify!($name), {
            fn case(s: Arc<$store>, o: SuiteOptions) -> BoxFuture<'static, CaseResult> {
                Box::pin($name(s, o))
            }
            case as fn(Arc<$store>, SuiteOptions) -> BoxFuture<'static, CaseResult>
        })),*]
    };
}

async fn run_cases<S: ?Sized>(
    backend: &str,
    group: &'static str,
    cases: Vec<(&'static str, CaseFn<S>)>,
    factory: &(dyn Fn() -> Arc<S> + Send + Sync),
    opts: &SuiteOptions,
) -> Report {
    let mut report = Report {
        backend: backend.to_string(),
        cases: Vec::new(),
    };
    for (name, case) in cases {
        let store = factory();
        let started = Instant::now();
        // A panicking case is a failure of that case, not of the whole run.
        let fut = case(store, opts.clone());
        let res = tokio::spawn(NOTE.scope(std::cell::RefCell::new(None), async move {
            let r = fut.await;
            (r, NOTE.with(|n| n.borrow_mut().take()))
        }))
        .await;
        let (outcome, note) = match res {
            Ok((Ok(()), note)) => (Outcome::Pass, note),
            Ok((Err(CaseErr::Skip(w)), note)) => (Outcome::Skip(w), note),
            Ok((Err(CaseErr::Fail(w)), note)) => (Outcome::Fail(w), note),
            Err(e) => (Outcome::Fail(format!("panicked: {e}")), None),
        };
        report.cases.push(CaseReport {
            group,
            name,
            outcome,
            note,
            elapsed: started.elapsed(),
        });
    }
    report
}

/// Runs the artifact and conditional-write cases, each against a fresh store from `factory`.
pub async fn run_artifact_suite(
    backend: &str,
    factory: &(dyn Fn() -> Arc<dyn ArtifactStore> + Send + Sync),
    opts: &SuiteOptions,
) -> Report {
    let artifact: Vec<(&'static str, ArtifactCase)> = cases![dyn ArtifactStore;
        put_get_round_trip,
        put_overwrite_last_wins,
        has_after_put,
        has_missing_is_false,
        size_is_the_stored_length,
        get_missing_is_not_found,
        delete_removes_key,
        delete_missing_is_idempotent,
        list_empty_store,
        list_prefix_filters_keys,
        put_empty_payload,
        keys_are_literal,
        unsafe_keys_are_refused,
        many_keys_listed,
        stream_small_and_empty,
        stream_missing_is_not_found,
        big_object_streams_with_bounded_memory,
    ];
    let conditional: Vec<(&'static str, ArtifactCase)> = cases![dyn ArtifactStore;
        conditional_capability_is_honest,
        put_if_absent_creates_when_missing,
        put_if_absent_fails_when_present,
        put_if_match_swaps_on_match,
        put_if_match_fails_on_stale_etag,
        put_if_match_fails_when_absent,
        get_with_etag_missing_is_not_found,
        get_with_etag_matches_put_etag,
        read_modify_write_converges,
        concurrent_creates_have_one_winner,
        streamed_create_only,
    ];
    let mut report = run_cases(backend, "artifact", artifact, factory, opts).await;
    report.extend(run_cases(backend, "conditional", conditional, factory, opts).await);
    report
}

/// Runs the log-store cases, each against a fresh store from `factory`.
pub async fn run_log_suite(
    backend: &str,
    factory: &(dyn Fn() -> Arc<dyn LogStore> + Send + Sync),
    opts: &SuiteOptions,
) -> Report {
    let cases: Vec<(&'static str, LogCase)> = cases![dyn LogStore;
        append_read_round_trip,
        read_empty_node,
        read_with_tail,
        read_with_head,
        read_with_grep,
        read_with_line_range,
        read_run_returns_all_nodes,
        delete_run_removes_logs,
        delete_run_missing_is_idempotent,
        append_after_delete_works,
        many_parts_read_in_order,
        part_written_twice_is_stored_once,
        parts_are_listed_and_read_one_by_one,
        bad_part_names_are_refused,
        hierarchical_nodes,
        runs_are_isolated,
        missing_newline_is_added,
        unsafe_ids_are_refused,
    ];
    run_cases(backend, "log", cases, factory, opts).await
}

// ---------------------------------------------------------------------------------------------
// Artifact cases (upstream conformance §3.2 plus the product's promises).

async fn put_get_round_trip(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("alpha", b"hello sparkwing".to_vec()).await?;
    let got = s.get("alpha").await?;
    ensure!(got == b"hello sparkwing", "get returned {}", show(&got));
    s.put("nested/dir/beta", b"deep".to_vec()).await?;
    ensure!(
        s.get("nested/dir/beta").await? == b"deep",
        "nested key lost"
    );
    Ok(())
}

async fn put_overwrite_last_wins(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("k", b"first".to_vec()).await?;
    s.put("k", b"second, longer".to_vec()).await?;
    let got = s.get("k").await?;
    ensure!(got == b"second, longer", "got {}", show(&got));
    Ok(())
}

async fn has_after_put(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("present", b"x".to_vec()).await?;
    ensure!(s.has("present").await?, "has() is false after put");
    Ok(())
}

async fn size_is_the_stored_length(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("sized", vec![7u8; 12_345]).await?;
    s.put("empty", Vec::new()).await?;
    ensure!(s.size("sized").await? == 12_345, "size of 12,345 bytes");
    ensure!(s.size("empty").await? == 0, "size of an empty object");
    s.put("dir/child", b"x".to_vec()).await?;
    for missing in ["missing", "dir"] {
        match s.size(missing).await {
            Err(StoreError::NotFound(_)) => {}
            other => ensure!(false, "size(`{missing}`) gave {other:?}"),
        }
    }
    Ok(())
}

async fn has_missing_is_false(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    ensure!(!s.has("missing").await?, "has() is true for a missing key");
    s.put("dir/child", b"x".to_vec()).await?;
    ensure!(!s.has("dir").await?, "a key prefix is not an object");
    Ok(())
}

async fn get_missing_is_not_found(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    match s.get("missing").await {
        Err(StoreError::NotFound(k)) => {
            ensure!(k == "missing", "NotFound names `{k}`");
            Ok(())
        }
        other => Err(CaseErr::Fail(format!("expected NotFound, got {other:?}"))),
    }
}

async fn delete_removes_key(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("gone", b"x".to_vec()).await?;
    s.delete("gone").await?;
    ensure!(!s.has("gone").await?, "has() true after delete");
    ensure!(
        matches!(s.get("gone").await, Err(StoreError::NotFound(_))),
        "get after delete is not NotFound"
    );
    Ok(())
}

async fn delete_missing_is_idempotent(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.delete("never-written").await?;
    s.delete("never/written/either").await?;
    Ok(())
}

async fn list_empty_store(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    let keys = s.list("").await?;
    ensure!(keys.is_empty(), "empty store lists {keys:?}");
    Ok(())
}

async fn list_prefix_filters_keys(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    for k in ["build/abc", "build/def", "test/ghi", "buildx/q"] {
        s.put(k, k.as_bytes().to_vec()).await?;
    }
    let keys = s.list("build/").await?;
    ensure!(
        keys == ["build/abc", "build/def"],
        "list(\"build/\") = {keys:?}"
    );
    let keys = s.list("build").await?;
    ensure!(
        keys == ["build/abc", "build/def", "buildx/q"],
        "list(\"build\") is a plain string prefix: {keys:?}"
    );
    let all = s.list("").await?;
    ensure!(all.len() == 4, "list(\"\") = {all:?}");
    Ok(())
}

async fn put_empty_payload(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("empty", Vec::new()).await?;
    ensure!(s.has("empty").await?, "empty object missing");
    let got = s.get("empty").await?;
    ensure!(
        got.is_empty(),
        "empty object read back as {} bytes",
        got.len()
    );
    Ok(())
}

/// Keys are opaque strings: `%2F` is three characters, not a separator; spaces, `+` and
/// non-ASCII survive a round trip and a listing.
async fn keys_are_literal(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    let keys = [
        "lit/a%2Fb",
        "lit/with space",
        "lit/plus+sign",
        "lit/ünïcödé",
        "lit/semi;colon=eq&amp",
        "lit/.hidden",
    ];
    for k in keys {
        s.put(k, k.as_bytes().to_vec()).await?;
    }
    for k in keys {
        let got = s.get(k).await?;
        ensure!(got == k.as_bytes(), "`{k}` read back as {}", show(&got));
    }
    let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    want.sort();
    let listed = s.list("lit/").await?;
    ensure!(listed == want, "listing {listed:?}, want {want:?}");
    ensure!(
        !s.has("lit/a/b").await?,
        "`%2F` was decoded into a separator"
    );
    Ok(())
}

async fn unsafe_keys_are_refused(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    let bad = [
        "",
        "..",
        ".",
        "a/../b",
        "../escape",
        "a/./b",
        "/abs",
        "trailing/",
        "a//b",
        "a\\b",
        "ctl\nchar",
        "nul\0",
        "tab\tkey",
        "del\u{7f}",
    ];
    for k in bad {
        let refused = |r: &Result<(), StoreError>| matches!(r, Err(StoreError::BadId(_)));
        let put = s.put(k, b"x".to_vec()).await;
        ensure!(refused(&put), "put({k:?}) = {put:?}");
        let get = s.get(k).await.map(|_| ());
        ensure!(refused(&get), "get({k:?}) = {get:?}");
        let has = s.has(k).await.map(|_| ());
        ensure!(refused(&has), "has({k:?}) = {has:?}");
        let del = s.delete(k).await;
        ensure!(refused(&del), "delete({k:?}) = {del:?}");
        let mut r: &[u8] = b"x";
        let pr = s.put_from_reader(k, &mut r).await.map(|_| ());
        ensure!(refused(&pr), "put_from_reader({k:?}) = {pr:?}");
    }
    let listed = s.list("").await?;
    ensure!(listed.is_empty(), "a refused key was written: {listed:?}");
    Ok(())
}

async fn many_keys_listed(s: Arc<dyn ArtifactStore>, o: SuiteOptions) -> CaseResult {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let keys: Vec<String> = (0..o.many_keys).map(|i| format!("many/{i:05}")).collect();
    stream::iter(keys.clone())
        .map(|k| {
            let s = s.clone();
            async move { s.put(&k, k.as_bytes().to_vec()).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    s.put("other/x", b"x".to_vec()).await?;
    let listed = s.list("many/").await?;
    ensure!(
        listed.len() == keys.len(),
        "listed {} of {} keys",
        listed.len(),
        keys.len()
    );
    ensure!(listed == keys, "listing is not the sorted key set");
    let some = s.list("many/0149").await?;
    let want: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("many/0149"))
        .cloned()
        .collect();
    ensure!(some == want, "list(\"many/0149\") = {some:?}");
    Ok(())
}

async fn stream_small_and_empty(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    let data = b"streamed but small\n".repeat(100);
    let mut r: &[u8] = &data;
    let n = s.put_from_reader("small", &mut r).await?;
    ensure!(n == data.len() as u64, "put_from_reader counted {n}");
    let mut out = Vec::new();
    let n = s.get_to_writer("small", &mut out).await?;
    ensure!(n == data.len() as u64 && out == data, "read back {n} bytes");
    ensure!(
        s.get("small").await? == data,
        "get disagrees with the stream"
    );
    let mut empty: &[u8] = b"";
    s.put_from_reader("empty", &mut empty).await?;
    let mut out = Vec::new();
    let n = s.get_to_writer("empty", &mut out).await?;
    ensure!(n == 0 && out.is_empty(), "empty stream read back {n} bytes");
    Ok(())
}

async fn stream_missing_is_not_found(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    let mut out = Vec::new();
    let r = s.get_to_writer("missing", &mut out).await;
    ensure!(
        matches!(r, Err(StoreError::NotFound(_))),
        "get_to_writer(missing) = {r:?}"
    );
    ensure!(out.is_empty(), "bytes written for a missing object");
    Ok(())
}

/// Only one big transfer at a time per process, so its memory measurement is its own.
static BIG_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn big_object_streams_with_bounded_memory(
    s: Arc<dyn ArtifactStore>,
    o: SuiteOptions,
) -> CaseResult {
    let _guard = BIG_LOCK.lock().await;
    let size = o.big_object_bytes;
    let mut reader = PatternReader::new(size, 0x5eed);
    let (sampler, heap) = (RssSampler::start(), HeapPeak::start());
    let n = s.put_from_reader("big/object.bin", &mut reader).await?;
    let put_growth = measured(sampler, heap);
    ensure!(n == size, "put_from_reader counted {n} of {size} bytes");
    let want = reader.digest();

    let mut writer = DigestWriter::default();
    let (sampler, heap) = (RssSampler::start(), HeapPeak::start());
    let n = s.get_to_writer("big/object.bin", &mut writer).await?;
    let get_growth = measured(sampler, heap);
    ensure!(n == size, "get_to_writer counted {n} of {size} bytes");
    ensure!(
        writer.len == size,
        "writer received {} of {size} bytes",
        writer.len
    );
    ensure!(
        writer.digest() == want,
        "content differs after the round trip"
    );
    ensure!(
        writer.max_write <= 64 * 1024 * 1024,
        "one write carried {} bytes: the object was buffered",
        writer.max_write
    );
    if let (Some((what, p)), Some((_, g))) = (put_growth, get_growth) {
        note(format!("{what} +{} MiB put, +{} MiB get", p >> 20, g >> 20));
        ensure!(
            p <= o.max_memory_growth && g <= o.max_memory_growth,
            "{what} grew by {} MiB (put) / {} MiB (get) for a {} MiB object; limit {} MiB",
            p >> 20,
            g >> 20,
            size >> 20,
            o.max_memory_growth >> 20
        );
    }
    s.delete("big/object.bin").await?;
    Ok(())
}

/// Live-heap growth where the counting allocator is installed (precise), else RSS growth.
fn measured(rss: RssSampler, heap: Option<HeapPeak>) -> Option<(&'static str, u64)> {
    let rss = rss.stop();
    match heap {
        Some(h) => Some(("live heap", h.stop())),
        None => rss.map(|r| ("resident memory", r)),
    }
}

// ---------------------------------------------------------------------------------------------
// Conditional writes.

async fn conditional_or_skip(s: &Arc<dyn ArtifactStore>) -> CaseResult {
    if s.supports_conditional().await? {
        Ok(())
    } else {
        Err(CaseErr::Skip(
            "the store does not enforce conditional writes".into(),
        ))
    }
}

/// Whatever the probe says, the conditional methods must agree with it: enforced when
/// supported, `NotSupported` (never a silent overwrite) when not.
async fn conditional_capability_is_honest(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    let first = s.supports_conditional().await?;
    let again = s.supports_conditional().await?;
    ensure!(first == again, "the capability changed between calls");
    s.put("k", b"v1".to_vec()).await?;
    let r = s.put_if_absent("k", b"v2".to_vec()).await;
    if first {
        ensure!(
            matches!(r, Err(StoreError::PreconditionFailed(_))),
            "create-only over an existing key = {r:?}"
        );
    } else {
        ensure!(
            matches!(r, Err(StoreError::NotSupported { .. })),
            "unsupported store answered {r:?}"
        );
    }
    ensure!(s.get("k").await? == b"v1", "the object was overwritten");
    let keys = s.list("").await?;
    ensure!(keys == ["k"], "the probe left objects behind: {keys:?}");
    Ok(())
}

async fn put_if_absent_creates_when_missing(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let etag = s.put_if_absent("fresh", b"created".to_vec()).await?;
    ensure!(!etag.is_empty(), "empty ETag");
    ensure!(s.get("fresh").await? == b"created", "content not readable");
    Ok(())
}

async fn put_if_absent_fails_when_present(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    s.put_if_absent("once", b"original".to_vec()).await?;
    let r = s.put_if_absent("once", b"intruder".to_vec()).await;
    ensure!(
        matches!(r, Err(StoreError::PreconditionFailed(_))),
        "second create = {r:?}"
    );
    ensure!(s.get("once").await? == b"original", "original content lost");
    Ok(())
}

async fn put_if_match_swaps_on_match(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    conditional_or_skip(&s).await?;
    let e1 = s.put_if_absent("cas", b"one".to_vec()).await?;
    let e2 = s.put_if_match("cas", b"two".to_vec(), &e1).await?;
    ensure!(e1 != e2, "ETag unchanged after a swap");
    ensure!(s.get("cas").await? == b"two", "content not swapped");
    Ok(())
}

async fn put_if_match_fails_on_stale_etag(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let e1 = s.put_if_absent("cas", b"one".to_vec()).await?;
    s.put_if_match("cas", b"two".to_vec(), &e1).await?;
    let r = s.put_if_match("cas", b"three".to_vec(), &e1).await;
    ensure!(
        matches!(r, Err(StoreError::PreconditionFailed(_))),
        "stale swap = {r:?}"
    );
    ensure!(
        s.get("cas").await? == b"two",
        "content changed by a stale swap"
    );
    Ok(())
}

async fn put_if_match_fails_when_absent(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    conditional_or_skip(&s).await?;
    let r = s
        .put_if_match("nothing", b"x".to_vec(), "\"0123456789abcdef\"")
        .await;
    ensure!(
        matches!(r, Err(StoreError::PreconditionFailed(_))),
        "swap of a missing object = {r:?}"
    );
    ensure!(!s.has("nothing").await?, "a swap created the object");
    Ok(())
}

async fn get_with_etag_missing_is_not_found(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let r = s.get_with_etag("missing").await;
    ensure!(matches!(r, Err(StoreError::NotFound(_))), "got {r:?}");
    Ok(())
}

async fn get_with_etag_matches_put_etag(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    conditional_or_skip(&s).await?;
    let put = s.put_if_absent("tagged", b"body".to_vec()).await?;
    let (data, got) = s.get_with_etag("tagged").await?;
    ensure!(data == b"body", "content {}", show(&data));
    ensure!(got == put, "get ETag {got} != put ETag {put}");
    Ok(())
}

/// Several writers increment one counter with read-modify-write loops; no increment is lost.
async fn read_modify_write_converges(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    conditional_or_skip(&s).await?;
    const WORKERS: usize = 6;
    const EACH: usize = 3;
    s.put_if_absent("counter", b"0".to_vec()).await?;
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                let mut tries = 0;
                loop {
                    tries += 1;
                    if tries > 200 {
                        return Err("no progress after 200 attempts".to_string());
                    }
                    let (data, etag) = s
                        .get_with_etag("counter")
                        .await
                        .map_err(|e| e.to_string())?;
                    let n: usize = String::from_utf8_lossy(&data)
                        .parse()
                        .map_err(|e| format!("counter {}: {e}", show(&data)))?;
                    match s
                        .put_if_match("counter", (n + 1).to_string().into_bytes(), &etag)
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::PreconditionFailed(_)) => continue,
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| CaseErr::Fail(format!("worker panicked: {e}")))?
            .map_err(CaseErr::Fail)?;
    }
    let got = s.get("counter").await?;
    let want = (WORKERS * EACH).to_string();
    ensure!(
        got == want.as_bytes(),
        "counter = {}, want {want}",
        show(&got)
    );
    Ok(())
}

async fn concurrent_creates_have_one_winner(
    s: Arc<dyn ArtifactStore>,
    o: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let start = Arc::new(tokio::sync::Barrier::new(o.racers));
    let mut tasks = Vec::new();
    for i in 0..o.racers {
        let s = s.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let body = format!("racer-{i}").into_bytes();
            (i, s.put_if_absent("race", body).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t
            .await
            .map_err(|e| CaseErr::Fail(format!("racer panicked: {e}")))?;
        match r {
            Ok(_) => winners.push(i),
            Err(StoreError::PreconditionFailed(_)) => {}
            Err(e) => return Err(CaseErr::Fail(format!("racer {i}: {e}"))),
        }
    }
    ensure!(
        winners.len() == 1,
        "{} of {} racers won ({winners:?}); the store's create-only is not atomic",
        winners.len(),
        o.racers
    );
    let got = s.get("race").await?;
    let want = format!("racer-{}", winners[0]);
    ensure!(
        got == want.as_bytes(),
        "stored {} but the winner was {want}",
        show(&got)
    );
    Ok(())
}

/// Create-only for a streamed object larger than one multipart part (pipeline binaries).
async fn streamed_create_only(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    conditional_or_skip(&s).await?;
    const SIZE: u64 = 12 * 1024 * 1024;
    let mut first = PatternReader::new(SIZE, 1);
    let (n, etag) = s.put_from_reader_if_absent("bin/tool", &mut first).await?;
    ensure!(
        n == SIZE && !etag.is_empty(),
        "first streamed create: {n} bytes, ETag {etag:?}"
    );
    let mut second = PatternReader::new(SIZE, 2);
    let r = s.put_from_reader_if_absent("bin/tool", &mut second).await;
    ensure!(
        matches!(r, Err(StoreError::PreconditionFailed(_))),
        "second streamed create = {r:?}"
    );
    let mut w = DigestWriter::default();
    s.get_to_writer("bin/tool", &mut w).await?;
    ensure!(
        w.digest() == first.digest(),
        "the first upload was replaced"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Log cases.

const RUN: &str = "run-20260420-093112-a7f2c3d4";

fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(str::to_string)
        .collect()
}

async fn five_lines(s: &Arc<dyn LogStore>) -> Result<(), StoreError> {
    s.append_part(RUN, "n", b"a\nb\nc\n".to_vec()).await?;
    s.append_part(RUN, "n", b"d\ne\n".to_vec()).await?;
    Ok(())
}

async fn append_read_round_trip(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "build", b"alpha\nbeta\ngamma\n".to_vec())
        .await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got == b"alpha\nbeta\ngamma\n", "read {}", show(&got));
    Ok(())
}

async fn read_empty_node(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    let got = s.read(RUN, "nothing", &ReadOpts::default()).await?;
    ensure!(got.is_empty(), "read {}", show(&got));
    ensure!(
        s.list_nodes(RUN).await?.is_empty(),
        "nodes listed for an empty run"
    );
    Ok(())
}

async fn read_with_tail(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    five_lines(&s).await?;
    let o = ReadOpts {
        tail: 2,
        ..Default::default()
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(got == ["d", "e"], "tail 2 = {got:?}");
    Ok(())
}

async fn read_with_head(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    five_lines(&s).await?;
    let o = ReadOpts {
        head: 2,
        ..Default::default()
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(got == ["a", "b"], "head 2 = {got:?}");
    Ok(())
}

async fn read_with_grep(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "n", b"hello\nworld\n".to_vec()).await?;
    s.append_part(RUN, "n", b"hello again\nbye\nHELLO\n".to_vec())
        .await?;
    let o = ReadOpts {
        grep: Some("hello".into()),
        ..Default::default()
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(got == ["hello", "hello again"], "grep = {got:?}");
    Ok(())
}

async fn read_with_line_range(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    five_lines(&s).await?;
    let read = |from, to| {
        let s = s.clone();
        async move {
            let o = ReadOpts {
                lines: Some((from, to)),
                ..Default::default()
            };
            s.read(RUN, "n", &o).await.map(|b| lines(&b))
        }
    };
    let got = read(2, 4).await?;
    ensure!(got == ["b", "c", "d"], "lines 2:4 = {got:?}");
    let got = read(4, 99).await?;
    ensure!(got == ["d", "e"], "lines 4:99 (clamped) = {got:?}");
    let got = read(9, 12).await?;
    ensure!(got.is_empty(), "lines 9:12 = {got:?}");
    let o = ReadOpts {
        lines: Some((1, 4)),
        grep: Some("c".into()),
        tail: 5,
        head: 1,
    };
    let got = lines(&s.read(RUN, "n", &o).await?);
    ensure!(
        got == ["c"],
        "range then grep then tail then head = {got:?}"
    );
    Ok(())
}

async fn read_run_returns_all_nodes(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "test", b"t1\n".to_vec()).await?;
    s.append_part(RUN, "build", b"b1\n".to_vec()).await?;
    s.append_part(RUN, "build", b"b2\n".to_vec()).await?;
    let all = s.read_run(RUN).await?;
    let got: Vec<(String, Vec<String>)> = all.iter().map(|(n, b)| (n.clone(), lines(b))).collect();
    let want = vec![
        (
            "build".to_string(),
            vec!["b1".to_string(), "b2".to_string()],
        ),
        ("test".to_string(), vec!["t1".to_string()]),
    ];
    ensure!(got == want, "read_run = {got:?}");
    Ok(())
}

async fn delete_run_removes_logs(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "build", b"x\n".to_vec()).await?;
    s.append_part(RUN, "p/child", b"y\n".to_vec()).await?;
    s.delete_run(RUN).await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got.is_empty(), "read after delete_run = {}", show(&got));
    let nodes = s.list_nodes(RUN).await?;
    ensure!(nodes.is_empty(), "nodes after delete_run = {nodes:?}");
    Ok(())
}

async fn delete_run_missing_is_idempotent(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.delete_run(RUN).await?;
    s.delete_run(RUN).await?;
    Ok(())
}

async fn append_after_delete_works(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "build", b"old\n".to_vec()).await?;
    s.delete_run(RUN).await?;
    s.append_part(RUN, "build", b"new\n".to_vec()).await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got == b"new\n", "read = {}", show(&got));
    Ok(())
}

/// A writer that names a part once and retries it (after a timeout that actually landed) must
/// not duplicate its lines.
async fn part_written_twice_is_stored_once(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    let first = crate::next_part_name();
    let second = crate::next_part_name();
    s.put_part(RUN, "build", &first, b"one\n".to_vec()).await?;
    s.put_part(RUN, "build", &second, b"two\n".to_vec()).await?;
    s.put_part(RUN, "build", &first, b"one\n".to_vec()).await?;
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got == b"one\ntwo\n", "read = {}", show(&got));
    Ok(())
}

async fn parts_are_listed_and_read_one_by_one(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    ensure!(
        s.list_parts(RUN).await?.is_empty(),
        "an empty run has parts"
    );
    let b1 = s.append_part(RUN, "build", b"b1\n".to_vec()).await?;
    let e1 = s.append_part(RUN, "deploy/eu", b"e1".to_vec()).await?;
    let b2 = s.append_part(RUN, "build", b"b2\n".to_vec()).await?;
    s.append_part("run-other", "build", b"x\n".to_vec()).await?;
    let listed = s.list_parts(RUN).await?;
    let want = vec![
        ("build".to_string(), b1.clone()),
        ("build".to_string(), b2.clone()),
        ("deploy/eu".to_string(), e1.clone()),
    ];
    ensure!(listed == want, "list_parts = {listed:?}, want {want:?}");
    let got = s.read_part(RUN, "build", &b2).await?;
    ensure!(got == b"b2\n", "read_part = {}", show(&got));
    // Stored as written by append_part: the missing newline was added.
    let got = s.read_part(RUN, "deploy/eu", &e1).await?;
    ensure!(got == b"e1\n", "read_part = {}", show(&got));
    let missing = crate::next_part_name();
    ensure!(
        s.read_part(RUN, "build", &missing).await?.is_empty(),
        "a missing part reads as empty"
    );
    match s.read_part(RUN, "../build", &b1).await {
        Err(StoreError::BadId(_)) => {}
        other => ensure!(false, "unsafe node gave {other:?}"),
    }
    match s.read_part(RUN, "build", "../../x").await {
        Err(StoreError::BadPartName(_)) => {}
        other => ensure!(false, "unsafe part gave {other:?}"),
    }
    s.delete_run("run-other").await?;
    Ok(())
}

async fn bad_part_names_are_refused(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    for bad in [
        "",
        "../x.ndjson",
        "00000000000000000001-0000000001.json",
        "0000000000000000000a-0000000001.ndjson",
        "00000000000000000001/0000000001.ndjson",
        "1-1.ndjson",
    ] {
        match s.put_part(RUN, "build", bad, b"x\n".to_vec()).await {
            Err(StoreError::BadPartName(_)) => {}
            other => ensure!(false, "`{bad}` gave {other:?}"),
        }
    }
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(got.is_empty(), "something was written: {}", show(&got));
    Ok(())
}

async fn many_parts_read_in_order(s: Arc<dyn LogStore>, o: SuiteOptions) -> CaseResult {
    let mut want = Vec::new();
    for i in 0..o.log_parts {
        let part =
            format!("{{\"msg\":\"part {i:05} line 1\"}}\n{{\"msg\":\"part {i:05} line 2\"}}\n");
        want.extend_from_slice(part.as_bytes());
        s.append_part(RUN, "build", part.into_bytes()).await?;
    }
    let got = s.read(RUN, "build", &ReadOpts::default()).await?;
    ensure!(
        got.len() == want.len(),
        "read {} of {} bytes",
        got.len(),
        want.len()
    );
    ensure!(got == want, "parts came back out of order");
    let tail = s
        .read(
            RUN,
            "build",
            &ReadOpts {
                tail: 1,
                ..Default::default()
            },
        )
        .await?;
    let last = format!("{{\"msg\":\"part {:05} line 2\"}}\n", o.log_parts - 1);
    ensure!(tail == last.as_bytes(), "tail 1 = {}", show(&tail));
    Ok(())
}

/// `parent/child` nodes are listed on their own; reading the parent shows only its lines.
async fn hierarchical_nodes(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "deploy", b"parent line\n".to_vec())
        .await?;
    s.append_part(RUN, "deploy/eu", b"child line\n".to_vec())
        .await?;
    s.append_part(RUN, "build", b"b\n".to_vec()).await?;
    let nodes = s.list_nodes(RUN).await?;
    ensure!(
        nodes == ["build", "deploy", "deploy/eu"],
        "nodes = {nodes:?}"
    );
    let parent = lines(&s.read(RUN, "deploy", &ReadOpts::default()).await?);
    ensure!(parent == ["parent line"], "parent read = {parent:?}");
    let child = lines(&s.read(RUN, "deploy/eu", &ReadOpts::default()).await?);
    ensure!(child == ["child line"], "child read = {child:?}");
    Ok(())
}

/// `run-1` must not see `run-10`'s logs, nor `build` see `build-x`'s.
async fn runs_are_isolated(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part("run-1", "build", b"one\n".to_vec()).await?;
    s.append_part("run-10", "build", b"ten\n".to_vec()).await?;
    s.append_part("run-1", "build-x", b"x\n".to_vec()).await?;
    let got = lines(&s.read("run-1", "build", &ReadOpts::default()).await?);
    ensure!(got == ["one"], "run-1/build = {got:?}");
    let nodes = s.list_nodes("run-1").await?;
    ensure!(nodes == ["build", "build-x"], "run-1 nodes = {nodes:?}");
    s.delete_run("run-1").await?;
    let ten = lines(&s.read("run-10", "build", &ReadOpts::default()).await?);
    ensure!(ten == ["ten"], "deleting run-1 touched run-10: {ten:?}");
    Ok(())
}

async fn missing_newline_is_added(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    s.append_part(RUN, "n", b"no newline".to_vec()).await?;
    s.append_part(RUN, "n", b"second".to_vec()).await?;
    let got = s.read(RUN, "n", &ReadOpts::default()).await?;
    ensure!(got == b"no newline\nsecond\n", "read = {}", show(&got));
    Ok(())
}

async fn unsafe_ids_are_refused(s: Arc<dyn LogStore>, _: SuiteOptions) -> CaseResult {
    let refused = |r: &Result<(), StoreError>| matches!(r, Err(StoreError::BadId(_)));
    for run in ["", ".", "..", "a/b", "a\\b", "r\nx", "../run"] {
        let r = s
            .append_part(run, "build", b"x\n".to_vec())
            .await
            .map(|_| ());
        ensure!(refused(&r), "append_part(run {run:?}) = {r:?}");
        let r = s.read(run, "build", &ReadOpts::default()).await.map(|_| ());
        ensure!(refused(&r), "read(run {run:?}) = {r:?}");
        let r = s.list_nodes(run).await.map(|_| ());
        ensure!(refused(&r), "list_nodes(run {run:?}) = {r:?}");
        let r = s.delete_run(run).await;
        ensure!(refused(&r), "delete_run(run {run:?}) = {r:?}");
    }
    for node in [
        "",
        "..",
        "a/../b",
        "/abs",
        "a//b",
        "trailing/",
        "n\u{1b}[31m",
        "a\\b",
    ] {
        let r = s.append_part(RUN, node, b"x\n".to_vec()).await.map(|_| ());
        ensure!(refused(&r), "append_part(node {node:?}) = {r:?}");
        let r = s.read(RUN, node, &ReadOpts::default()).await.map(|_| ());
        ensure!(refused(&r), "read(node {node:?}) = {r:?}");
    }
    let nodes = s.list_nodes(RUN).await?;
    ensure!(nodes.is_empty(), "a refused id was written: {nodes:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
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
/// static ALLOC: sparkwing_storage::conformance::CountingAlloc =
///     sparkwing_storage::conformance::CountingAlloc;
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
