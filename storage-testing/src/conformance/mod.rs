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
//! use sparkwing_storage_testing::conformance::{self, SuiteOptions};
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

use artifact::*;
use logs::*;
pub use measure::{CountingAlloc, DigestWriter, HeapPeak, PatternReader, RssSampler};

use futures_util::future::BoxFuture;
use sparkwing_storage::ArtifactStore;
use sparkwing_storage::StoreError;
use sparkwing_storage::{LogStore, ReadOpts};
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
        parts_written_together_read_as_written,
        parts_are_listed_and_read_one_by_one,
        bad_part_names_are_refused,
        hierarchical_nodes,
        runs_are_isolated,
        missing_newline_is_added,
        unsafe_ids_are_refused,
    ];
    run_cases(backend, "log", cases, factory, opts).await
}

// After the macros above: a `macro_rules!` is visible only to modules declared after it.
mod artifact;
mod logs;
mod measure;
