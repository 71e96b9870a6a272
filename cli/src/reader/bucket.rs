//! Runs read straight from an artifact store's `runs/<id>/state.ndjson` dumps, with a cache of
//! parsed dumps so a page of 50 runs out of 10,000 costs one key listing and 50 small reads.
//!
//! Bounds: a dump larger than [`Limits::max_dump`] is never read (its size is asked first); that
//! run is listed as unreadable, naming the size and the cap, and the other runs still list. The
//! cache holds parsed dumps up to about [`Limits::cache_bytes`] bytes of dump text, dropping the
//! least recently read ones first.
//!
//! Freshness: a dump of an in-flight run is re-read when its copy is older than [`LIVE_TTL`]; a
//! finished run's dump changes rarely (only when a supervisor finalizes it late), so it is kept
//! for [`DONE_TTL`]. The key listing is refreshed in the background once it is older than
//! [`LIVE_TTL`], and requests keep using the previous listing meanwhile, so a new run shows up
//! within about a second without making every request pay for a full listing. Before the first
//! full listing lands (10,000 runs are ten sequential list pages), the newest page is found by
//! listing the `runs/run-YYYYMMDD` prefixes of recent days, newest first.

use sparkwing_contract::{NodeRecord, RunRecord, StateDump, timefmt};
use sparkwing_storage::{ArtifactStore, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old a cached in-flight dump, or the key listing, may be before it is read again.
pub const LIVE_TTL: Duration = Duration::from_millis(900);
/// How long a finished run's dump (or an unreadable dump) is reused.
pub const DONE_TTL: Duration = Duration::from_secs(30);
/// A listing older than this is refreshed before answering, not in the background.
const STALE_LISTING: Duration = Duration::from_secs(30);
/// Dumps fetched at once.
const FETCH_BATCH: usize = 32;
/// Largest state dump read by default. A 1,000-job run's dump is well under 1 MiB.
pub const MAX_DUMP: u64 = 16 << 20;
/// Default budget of the dump cache, in bytes of dump text.
pub const CACHE_BYTES: usize = 64 << 20;
/// What an unreadable or oversized entry weighs in the cache budget.
const SMALL_ENTRY: usize = 256;

/// What the reader may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest `state.ndjson` read; a larger one is refused for its run.
    pub max_dump: u64,
    /// Bytes of dump text the cache keeps (about what the parsed runs take).
    pub cache_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_dump: MAX_DUMP,
            cache_bytes: CACHE_BYTES,
        }
    }
}
/// How far back the first page of a cold listing looks by day prefix.
const RECENT_DAYS: i64 = 62;
/// Largest page served from recent day prefixes before the full listing lands.
const QUICK_MAX: usize = 1_000;
/// Most day prefixes listed at once.
const MAX_DAYS_AT_ONCE: i64 = 16;

/// A parsed run and its nodes.
#[derive(Debug, Clone)]
pub struct RunState {
    pub run: Arc<RunRecord>,
    pub nodes: Arc<Vec<NodeRecord>>,
}

/// A run as a listing shows it.
#[derive(Debug, Clone)]
pub enum Listed {
    Run(RunState),
    /// A run whose dump is over [`Limits::max_dump`]: listed with the reason, never read.
    TooLarge(TooLarge),
}

/// A state dump over the cap.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "state dump `{key}` of run `{run}` is {}, over the {} the reader reads; it was not read",
    sparkwing_contract::human::bytes(*.size),
    sparkwing_contract::human::bytes(*.cap)
)]
pub struct TooLarge {
    pub run: String,
    pub key: String,
    pub size: u64,
    pub cap: u64,
}

impl sparkwing_contract::hint::Hinted for TooLarge {
    fn hint(&self) -> Option<String> {
        Some(format!(
            "its nodes' records are too large to show; remove or rewrite `{}` in the bucket",
            self.key
        ))
    }
}

/// Why one run could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    TooLarge(TooLarge),
}

#[derive(Debug, Clone)]
enum Entry {
    Ok(RunState),
    /// A dump that could not be read as a run (warned about once).
    Bad,
    TooLarge(TooLarge),
}

#[derive(Debug, Clone)]
struct Cached {
    entry: Entry,
    at: Instant,
    bad_lines: usize,
    /// Its weight in the cache budget.
    bytes: usize,
}

/// Parsed dumps, and what they weigh.
#[derive(Debug, Default)]
struct Dumps {
    map: HashMap<String, Cached>,
    bytes: usize,
}

impl Dumps {
    fn remove(&mut self, id: &str) {
        if let Some(c) = self.map.remove(id) {
            self.bytes -= c.bytes;
        }
    }

    /// Inserts, first dropping the least recently read entries until it fits in `budget` (down
    /// to three quarters of it, so a full cache is not sorted on every insert).
    fn insert(&mut self, id: &str, c: Cached, budget: usize) {
        self.remove(id);
        if c.bytes > budget {
            return;
        }
        if self.bytes + c.bytes > budget {
            let mut by_age: Vec<(Instant, String)> =
                self.map.iter().map(|(k, c)| (c.at, k.clone())).collect();
            by_age.sort();
            let target = (budget / 4 * 3).min(budget - c.bytes);
            for (_, k) in by_age {
                if self.bytes <= target {
                    break;
                }
                self.remove(&k);
            }
        }
        self.bytes += c.bytes;
        self.map.insert(id.to_string(), c);
    }
}

#[derive(Debug, Clone)]
struct Listing {
    /// Run ids, newest first.
    ids: Arc<Vec<String>>,
    at: Instant,
    /// False for the newest ids only (from recent day prefixes), while a full listing runs.
    complete: bool,
}

/// The bucket-backed run index.
#[derive(Debug)]
pub struct BucketRuns {
    store: Arc<dyn ArtifactStore>,
    listing: Mutex<Option<Listing>>,
    /// Serializes foreground listings so concurrent cold requests list once.
    list_lock: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
    dumps: Mutex<Dumps>,
    limits: Limits,
}

/// Which runs a listing wants.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub pipelines: Vec<String>,
    pub statuses: Vec<sparkwing_contract::RunStatus>,
    /// Unix nanoseconds: runs started at or after.
    pub since: Option<i64>,
    pub limit: usize,
}

impl Wanted {
    /// True when the run passes every filter.
    pub fn matches(&self, run: &RunRecord) -> bool {
        (self.pipelines.is_empty() || self.pipelines.contains(&run.pipeline))
            && (self.statuses.is_empty() || self.statuses.contains(&run.status))
            && self.since.is_none_or(|since| {
                timefmt::parse_rfc3339_nanos(&run.started_at).is_some_and(|t| t >= since)
            })
    }
}

impl BucketRuns {
    /// An index over `store`; nothing is read until the first request.
    pub fn new(store: Arc<dyn ArtifactStore>) -> Arc<BucketRuns> {
        BucketRuns::with_limits(store, Limits::default())
    }

    /// An index over `store` that holds at most what `limits` allow.
    pub fn with_limits(store: Arc<dyn ArtifactStore>, limits: Limits) -> Arc<BucketRuns> {
        Arc::new(BucketRuns {
            store,
            listing: Mutex::new(None),
            list_lock: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
            dumps: Mutex::new(Dumps::default()),
            limits,
        })
    }

    /// Bytes the dump cache weighs now.
    #[cfg(test)]
    pub fn cached_bytes(&self) -> usize {
        self.dumps.lock().map(|d| d.bytes).unwrap_or(0)
    }

    /// Runs passing `wanted`, newest first (run ids sort by start time). A run whose dump is too
    /// large to read is listed as such when no pipeline or status filter asks what it holds.
    pub async fn list(self: &Arc<Self>, wanted: &Wanted) -> Result<Vec<Listed>, StoreError> {
        let unfiltered = wanted.pipelines.is_empty() && wanted.statuses.is_empty();
        // The newest page of an unfiltered listing may come from recent day prefixes; a listing
        // of everything (`sparkwing runs list` without a limit) lists everything.
        let ids = self
            .ids((unfiltered && wanted.limit <= QUICK_MAX).then_some(wanted.limit))
            .await?;
        let mut out = Vec::new();
        let mut next = 0;
        while out.len() < wanted.limit && next < ids.len() {
            // Without filters a page needs exactly `limit` dumps; with filters read ahead.
            let want = if unfiltered {
                wanted.limit - out.len()
            } else {
                FETCH_BATCH
            };
            let end = (next + want.clamp(1, FETCH_BATCH)).min(ids.len());
            let mut batch = &ids[next..end];
            next = end;
            // Ids carry their start time: once they are older than `since`, nothing later can match.
            let mut past_since = false;
            if let Some(since) = wanted.since
                && let Some(cut) = batch
                    .iter()
                    .position(|id| id_time(id).is_some_and(|t| t < since - 1_000_000_000))
            {
                batch = &batch[..cut];
                past_since = true;
            }
            for listed in self.load_many(batch).await.into_iter().flatten() {
                let keep = match &listed {
                    Listed::Run(state) => wanted.matches(&state.run),
                    Listed::TooLarge(t) => {
                        unfiltered
                            && wanted
                                .since
                                .is_none_or(|since| id_time(&t.run).is_some_and(|t| t >= since))
                    }
                };
                if keep && out.len() < wanted.limit {
                    out.push(listed);
                }
            }
            if past_since {
                break;
            }
        }
        Ok(out)
    }

    /// One run, read fresh unless the cached copy is recent enough. `None` if it has no dump.
    pub async fn get(self: &Arc<Self>, id: &str) -> Result<Option<RunState>, ReadError> {
        let listed = match self.cached(id, |c| c.at.elapsed() < LIVE_TTL) {
            Some(l) => l,
            None => self.fetch(id).await?,
        };
        match listed {
            None => Ok(None),
            Some(Listed::Run(s)) => Ok(Some(s)),
            Some(Listed::TooLarge(t)) => Err(ReadError::TooLarge(t)),
        }
    }

    /// Run ids, newest first, from a listing at most about [`LIVE_TTL`] old.
    ///
    /// Without a listing yet, a full listing starts in the background; when `quick` asks for the
    /// newest N ids only, they come from the per-day prefixes of recent days (a few small
    /// concurrent listings) instead of waiting for every page of a long history.
    async fn ids(self: &Arc<Self>, quick: Option<usize>) -> Result<Arc<Vec<String>>, StoreError> {
        let current = self.listing.lock().map(|l| l.clone()).unwrap_or(None);
        if let Some(l) = &current {
            let age = l.at.elapsed();
            if l.complete {
                if age < LIVE_TTL {
                    return Ok(l.ids.clone());
                }
                if age < STALE_LISTING {
                    self.relist_in_background();
                    return Ok(l.ids.clone());
                }
            } else if age < LIVE_TTL && quick.is_some_and(|n| n <= l.ids.len()) {
                return Ok(l.ids.clone());
            }
        }
        if let Some(n) = quick {
            let recent = self.recent_ids(n).await;
            // Started after the day listings so they do not compete for the server.
            self.relist_in_background();
            match recent {
                Ok(Some(ids)) => {
                    let ids = Arc::new(ids);
                    if let Ok(mut l) = self.listing.lock()
                        && !l.as_ref().is_some_and(|l| l.complete)
                    {
                        *l = Some(Listing {
                            ids: ids.clone(),
                            at: Instant::now(),
                            complete: false,
                        });
                    }
                    return Ok(ids);
                }
                Ok(None) => {}
                Err(e) => eprintln!(
                    "warning: list recent runs in `{}`: {e}",
                    self.store.describe()
                ),
            }
        }
        let _guard = self.list_lock.lock().await;
        // The background listing (or another request) may have finished while this one waited.
        if let Some(l) = self.listing.lock().map(|l| l.clone()).unwrap_or(None)
            && l.complete
            && l.at.elapsed() < LIVE_TTL
        {
            return Ok(l.ids);
        }
        self.relist().await
    }

    /// Starts a full listing unless one is running.
    fn relist_in_background(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let guard = me.list_lock.lock().await;
            let fresh = me
                .listing
                .lock()
                .ok()
                .and_then(|l| l.as_ref().map(|l| l.complete && l.at.elapsed() < LIVE_TTL))
                .unwrap_or(false);
            if !fresh && let Err(e) = me.relist().await {
                eprintln!("warning: list runs in `{}`: {e}", me.store.describe());
            }
            drop(guard);
            me.refreshing.store(false, Ordering::Release);
        });
    }

    async fn relist(&self) -> Result<Arc<Vec<String>>, StoreError> {
        let keys = self.store.list("runs/").await?;
        let ids = Arc::new(ids_newest_first(&keys));
        if let Ok(mut l) = self.listing.lock() {
            *l = Some(Listing {
                ids: ids.clone(),
                at: Instant::now(),
                complete: true,
            });
        }
        Ok(ids)
    }

    /// At least `n` of the newest run ids, read from `runs/run-YYYYMMDD` prefixes backwards from
    /// tomorrow (clock skew): two days first, then ever wider rounds of concurrent listings.
    /// `None` when the last [`RECENT_DAYS`] days hold fewer.
    async fn recent_ids(&self, n: usize) -> Result<Option<Vec<String>>, StoreError> {
        let now = timefmt::now_unix_nanos();
        let mut out = Vec::new();
        let (mut day, mut width) = (-1i64, 2i64);
        while day < RECENT_DAYS {
            let mut tasks = tokio::task::JoinSet::new();
            for d in day..(day + width).min(RECENT_DAYS) {
                let stamp = timefmt::unix_nanos_to_rfc3339(now - d * 86_400_000_000_000);
                let ymd: String = stamp.chars().filter(char::is_ascii_digit).take(8).collect();
                let store = self.store.clone();
                tasks.spawn(async move { (d, store.list(&format!("runs/run-{ymd}")).await) });
            }
            let mut days = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                let Ok((d, listed)) = joined else { continue };
                days.push((d, listed?));
            }
            days.sort_by_key(|(d, _)| *d);
            for (_, keys) in days {
                out.extend(ids_newest_first(&keys));
            }
            if out.len() >= n {
                return Ok(Some(out));
            }
            day += width;
            width = (width * 2).min(MAX_DAYS_AT_ONCE);
        }
        Ok(None)
    }

    /// The cached state when `fresh` says the copy may be used; `Some(None)` for a cached bad dump.
    fn cached(&self, id: &str, fresh: impl Fn(&Cached) -> bool) -> Option<Option<Listed>> {
        let dumps = self.dumps.lock().ok()?;
        let c = dumps.map.get(id)?;
        if !fresh(c) {
            return None;
        }
        Some(c.entry.listed())
    }

    /// Dumps for `ids` in order (`None` for missing or unreadable ones), reading only stale ones.
    async fn load_many(self: &Arc<Self>, ids: &[String]) -> Vec<Option<Listed>> {
        let mut results: Vec<Option<Option<Listed>>> = ids
            .iter()
            .map(|id| {
                self.cached(id, |c| {
                    let ttl = match &c.entry {
                        Entry::Ok(s) if !s.run.status.is_terminal() => LIVE_TTL,
                        _ => DONE_TTL,
                    };
                    c.at.elapsed() < ttl
                })
            })
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, id) in ids.iter().enumerate() {
            if results[i].is_none() {
                let me = Arc::clone(self);
                let id = id.clone();
                tasks.spawn(async move { (i, me.fetch(&id).await) });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((i, fetched)) = joined else { continue };
            results[i] = Some(match fetched {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("warning: skipping run `{}`: {e}", ids[i]);
                    None
                }
            });
        }
        results.into_iter().map(Option::flatten).collect()
    }

    /// Reads and parses one dump, updating the cache. Its size is asked first, so a dump over
    /// the cap is never downloaded.
    async fn fetch(&self, id: &str) -> Result<Option<Listed>, StoreError> {
        let key = sparkwing_contract::surfaces::state_key(id);
        let gone = || {
            if let Ok(mut d) = self.dumps.lock() {
                d.remove(id);
            }
            Ok(None)
        };
        let size = match self.store.size(&key).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return self.fetch_sharded(id).await,
            Err(e) => return Err(e),
        };
        let bytes = if size > self.limits.max_dump {
            None
        } else {
            match self.store.get(&key).await {
                // Rewritten larger between the two requests: refused all the same.
                Ok(b) if b.len() as u64 > self.limits.max_dump => None,
                Ok(b) => Some(b),
                Err(e) if e.is_not_found() => return gone(),
                Err(e) => return Err(e),
            }
        };
        let Some(bytes) = bytes else {
            let too = TooLarge {
                run: id.to_string(),
                key: self.at(&key),
                size,
                cap: self.limits.max_dump,
            };
            let known = self.dumps.lock().ok().is_some_and(|d| {
                d.map
                    .get(id)
                    .is_some_and(|c| matches!(c.entry, Entry::TooLarge(_)))
            });
            if !known {
                eprintln!("warning: skipping run `{id}`: {too}");
            }
            self.remember(id, Entry::TooLarge(too.clone()), 0, SMALL_ENTRY);
            return Ok(Some(Listed::TooLarge(too)));
        };
        let weight = bytes.len().max(SMALL_ENTRY);
        let dump = StateDump::parse(&String::from_utf8_lossy(&bytes));
        drop(bytes);
        let previous_bad = self.dumps.lock().ok().and_then(|d| {
            d.map
                .get(id)
                .map(|c| (c.bad_lines, matches!(c.entry, Entry::Bad)))
        });
        let bad_lines = dump.bad_lines.len();
        // Warn when something new is wrong, not on every re-read of a live dump.
        let entry = match dump.run {
            Some(run) => {
                if bad_lines > 0 && previous_bad.is_none_or(|(n, _)| n != bad_lines) {
                    for (line, why) in &dump.bad_lines {
                        eprintln!("warning: `{}` line {line} skipped: {why}", self.at(&key));
                    }
                }
                Entry::Ok(RunState {
                    run: Arc::new(run),
                    nodes: Arc::new(dump.nodes),
                })
            }
            None => {
                if !previous_bad.is_some_and(|(_, bad)| bad) {
                    let why = dump
                        .bad_lines
                        .first()
                        .map(|(l, w)| format!("line {l}: {w}"))
                        .unwrap_or_else(|| "no run record in it".into());
                    eprintln!("warning: skipping `{}`: {why}", self.at(&key));
                }
                Entry::Bad
            }
        };
        let weight = if matches!(entry, Entry::Ok(_)) {
            weight
        } else {
            SMALL_ENTRY
        };
        self.remember(id, entry.clone(), bad_lines, weight);
        Ok(entry.listed())
    }

    /// A run split across CI jobs: its shards' files merged into one run with one graph.
    async fn fetch_sharded(&self, id: &str) -> Result<Option<Listed>, StoreError> {
        let Some((assignment, dumps)) = read_merged(self.store.as_ref(), id).await? else {
            if let Ok(mut d) = self.dumps.lock() {
                d.remove(id);
            }
            return Ok(None);
        };
        let bytes: usize = dumps
            .iter()
            .map(|(_, d)| d.nodes.len() * 256 + 512)
            .sum::<usize>()
            .max(SMALL_ENTRY);
        let entry = match sparkwing_contract::shard::merge(id, assignment.as_ref(), &dumps) {
            Some(StateDump {
                run: Some(run),
                nodes,
                ..
            }) => Entry::Ok(RunState {
                run: Arc::new(run),
                nodes: Arc::new(nodes),
            }),
            _ => Entry::Bad,
        };
        self.remember(id, entry.clone(), 0, bytes);
        Ok(entry.listed())
    }

    fn remember(&self, id: &str, entry: Entry, bad_lines: usize, bytes: usize) {
        if let Ok(mut d) = self.dumps.lock() {
            let c = Cached {
                entry,
                at: Instant::now(),
                bad_lines,
                bytes,
            };
            d.insert(id, c, self.limits.cache_bytes);
        }
    }

    fn at(&self, key: &str) -> String {
        format!("{}/{key}", self.store.describe())
    }
}

impl Entry {
    fn listed(&self) -> Option<Listed> {
        match self {
            Entry::Ok(s) => Some(Listed::Run(s.clone())),
            Entry::Bad => None,
            Entry::TooLarge(t) => Some(Listed::TooLarge(t.clone())),
        }
    }
}

/// Run ids of the state keys (and shard files of sharded runs) among `keys`, newest first, each
/// once.
fn ids_newest_first(keys: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            sparkwing_contract::surfaces::run_of_state_key(k)
                .or_else(|| sparkwing_contract::shard::of_shard_key(k).map(|(id, _)| id))
                .map(str::to_string)
        })
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids
}

/// The run's records as readers see them: the assignment and every shard's file, merged.
pub async fn read_merged(
    store: &dyn sparkwing_storage::ArtifactStore,
    run_id: &str,
) -> Result<
    Option<(
        Option<sparkwing_contract::shard::Assignment>,
        Vec<(u32, StateDump)>,
    )>,
    sparkwing_storage::StoreError,
> {
    let assignment = match store
        .get(&sparkwing_contract::shard::assignment_key(run_id))
        .await
    {
        Ok(b) => sparkwing_contract::shard::Assignment::parse(&b).ok(),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let keys = store
        .list(&sparkwing_contract::shard::shards_prefix(run_id))
        .await?;
    let mut dumps = Vec::new();
    for key in keys {
        let Some((_, i)) = sparkwing_contract::shard::of_shard_key(&key) else {
            continue;
        };
        match store.get(&key).await {
            Ok(b) => dumps.push((i, StateDump::parse(&String::from_utf8_lossy(&b)))),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if assignment.is_none() && dumps.is_empty() {
        return Ok(None);
    }
    Ok(Some((assignment, dumps)))
}

/// Start time encoded in a run id (`run-YYYYMMDD-HHMMSS-…`), as unix nanoseconds.
pub fn id_time(id: &str) -> Option<i64> {
    let rest = id.strip_prefix("run-")?;
    let (date, rest) = rest.split_once('-')?;
    let time = rest.get(..6)?;
    if date.len() != 8 || !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[..4],
        &date[4..6],
        &date[6..],
        &time[..2],
        &time[2..4],
        &time[4..]
    );
    timefmt::parse_rfc3339_nanos(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_contract::{NodeStatus, RunStatus};
    use sparkwing_storage::FsArtifactStore;

    fn run(id: &str, pipeline: &str, status: RunStatus) -> RunRecord {
        RunRecord::new(
            id,
            pipeline,
            status,
            timefmt::unix_nanos_to_rfc3339(id_time(id).unwrap()),
        )
    }

    fn st(l: &Listed) -> &RunState {
        match l {
            Listed::Run(s) => s,
            Listed::TooLarge(t) => panic!("{t}"),
        }
    }

    fn node(run: &str, id: &str) -> NodeRecord {
        NodeRecord::new(run, id, NodeStatus::Pending)
    }

    #[test]
    fn id_times() {
        let t = id_time("run-20260420-093112-a7f2c3d4").unwrap();
        assert_eq!(
            timefmt::unix_nanos_to_rfc3339(t).get(..19),
            Some("2026-04-20T09:31:12")
        );
        assert!(id_time("run-2026042-093112-a7").is_none());
        assert!(id_time("nope").is_none());
    }

    #[tokio::test]
    async fn lists_newest_first_filters_and_skips_bad_dumps() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        let ids = [
            ("run-20260101-000001-00000001", "build", RunStatus::Success),
            ("run-20260101-000002-00000002", "deploy", RunStatus::Failed),
            ("run-20260101-000003-00000003", "build", RunStatus::Running),
        ];
        for (id, p, s) in ids {
            let text = StateDump::render(&run(id, p, s), &[node(id, "a")]);
            store
                .put(&format!("runs/{id}/state.ndjson"), text.into_bytes())
                .await
                .unwrap();
        }
        store
            .put(
                "runs/run-20260101-000004-00000004/state.ndjson",
                b"{garbage\n".to_vec(),
            )
            .await
            .unwrap();
        store
            .put("runs/unrelated.txt", b"x".to_vec())
            .await
            .unwrap();
        let index = BucketRuns::new(store.clone());
        let all = index
            .list(&Wanted {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<&str> = all.iter().map(|s| st(s).run.id.as_str()).collect();
        assert_eq!(
            got,
            [
                "run-20260101-000003-00000003",
                "run-20260101-000002-00000002",
                "run-20260101-000001-00000001"
            ]
        );
        let builds = index
            .list(&Wanted {
                pipelines: vec!["build".into()],
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(builds.len(), 2);
        let failed = index
            .list(&Wanted {
                statuses: vec![RunStatus::Failed],
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(st(&failed[0]).run.pipeline, "deploy");
        let one = index
            .list(&Wanted {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        let since = id_time("run-20260101-000003-00000003").unwrap();
        let recent = index
            .list(&Wanted {
                since: Some(since),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(recent.len(), 1);
        assert!(
            index
                .get("run-20260101-000004-00000004")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            index
                .get("run-20991231-000000-00000000")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_cold_first_page_comes_from_recent_days() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        let now = timefmt::now_unix_nanos();
        let day = 86_400_000_000_000i64;
        let id_at = |nanos: i64, tag: u32| {
            let digits: String = timefmt::unix_nanos_to_rfc3339(nanos)
                .chars()
                .filter(char::is_ascii_digit)
                .take(14)
                .collect();
            format!("run-{}-{}-{tag:08x}", &digits[..8], &digits[8..])
        };
        let mut ids = vec![
            id_at(now, 1),
            id_at(now - day, 2),
            id_at(now - 3 * day, 3),
            id_at(now - 20 * day, 4),
        ];
        ids.push("run-20200101-000000-00000005".into());
        for id in &ids {
            let text = StateDump::render(&run(id, "p", RunStatus::Success), &[]);
            store
                .put(&format!("runs/{id}/state.ndjson"), text.into_bytes())
                .await
                .unwrap();
        }
        let index = BucketRuns::new(store);
        let recent = index.recent_ids(3).await.unwrap().unwrap();
        assert_eq!(recent[..3], ids[..3]);
        assert!(index.recent_ids(10).await.unwrap().is_none());
        let page = index
            .list(&Wanted {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<&str> = page.iter().map(|s| st(s).run.id.as_str()).collect();
        assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
        // Older pages wait for the full listing.
        let all = index
            .list(&Wanted {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(st(&all[4]).run.id, "run-20200101-000000-00000005");
    }

    /// An artifact store under a fresh prefix of the S3 test server, read through a counting
    /// proxy, and the same prefix written directly.
    fn through_proxy(
        label: &str,
    ) -> (
        sparkwing_storage_testing::Proxy,
        Arc<dyn ArtifactStore>,
        Arc<dyn ArtifactStore>,
    ) {
        use sparkwing_storage::s3::{S3ArtifactStore, S3Config, S3Options};
        let s3 = sparkwing_storage_testing::TestS3::from_env();
        let upstream = s3
            .endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the test endpoint is `http://<ip>:<port>`");
        let proxy = sparkwing_storage_testing::Proxy::start(upstream);
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let cfg = S3Config::with_static_credentials(
            Some(&proxy.endpoint()),
            std::env::var("AWS_REGION").ok().as_deref(),
            &env("AWS_ACCESS_KEY_ID"),
            &env("AWS_SECRET_ACCESS_KEY"),
            None,
        )
        .unwrap();
        let prefix = s3.unique_prefix(label);
        let open = |cfg: &S3Config| -> Arc<dyn ArtifactStore> {
            Arc::new(S3ArtifactStore::new(cfg, &s3.bucket, &prefix, S3Options::default()).unwrap())
        };
        let read = open(&cfg);
        let write = open(s3.config());
        (proxy, read, write)
    }

    /// A dump of `id` with `nodes` nodes, each carrying `pad` bytes of error text.
    fn dump(id: &str, nodes: usize, pad: usize) -> Vec<u8> {
        let nodes: Vec<NodeRecord> = (0..nodes)
            .map(|i| {
                let mut n = node(id, &format!("n{i}"));
                n.error = "e".repeat(pad);
                n
            })
            .collect();
        StateDump::render(&run(id, "p", RunStatus::Success), &nodes).into_bytes()
    }

    #[tokio::test]
    async fn an_oversized_dump_is_listed_as_such_and_never_downloaded() {
        let (proxy, read, write) = through_proxy("bucket-dump-cap");
        let small = "run-20260101-000001-00000001";
        let big = "run-20260101-000002-00000002";
        let other = "run-20260101-000003-00000003";
        for (id, bytes) in [
            (small, dump(small, 1, 10)),
            (big, dump(big, 10, 30 << 10)),
            (other, dump(other, 1, 10)),
        ] {
            write
                .put(&format!("runs/{id}/state.ndjson"), bytes)
                .await
                .unwrap();
        }
        let limits = Limits {
            max_dump: 64 << 10,
            cache_bytes: 1 << 20,
        };
        let index = BucketRuns::with_limits(read, limits);
        let listed = index
            .list(&Wanted {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<String> = listed
            .iter()
            .map(|l| match l {
                Listed::Run(s) => s.run.id.clone(),
                Listed::TooLarge(t) => format!("too large: {t}"),
            })
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], other);
        assert!(
            got[1].starts_with("too large: state dump `")
                && got[1].contains(&format!("runs/{big}/state.ndjson"))
                && got[1].contains(" KiB, over the 64.0 KiB the reader reads"),
            "{}",
            got[1]
        );
        assert_eq!(got[2], small);
        let err = index.get(big).await.unwrap_err();
        assert!(matches!(err, ReadError::TooLarge(_)), "{err}");
        // Filters cannot look inside it: it is left out of filtered listings.
        let filtered = index
            .list(&Wanted {
                pipelines: vec!["p".into()],
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(filtered.len(), 2);
        let down = proxy.counts().bytes_down;
        assert!(
            down < 64 << 10,
            "{down} bytes came from the bucket: the 300 KiB dump was downloaded"
        );
    }

    #[tokio::test]
    async fn the_dump_cache_is_bounded_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        let mut one = 0;
        for i in 0..20u32 {
            let id = format!("run-20260101-0000{i:02}-{i:08x}");
            let bytes = dump(&id, 4, 1000);
            one = bytes.len();
            store
                .put(&format!("runs/{id}/state.ndjson"), bytes)
                .await
                .unwrap();
        }
        let budget = 5 * one + one / 2;
        let index = BucketRuns::with_limits(
            store,
            Limits {
                max_dump: MAX_DUMP,
                cache_bytes: budget,
            },
        );
        let all = index
            .list(&Wanted {
                limit: 20,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 20);
        let held = index.cached_bytes();
        assert!(
            held <= budget && held >= one,
            "the cache holds {held} bytes for a budget of {budget}"
        );
    }

    #[tokio::test]
    async fn live_runs_are_reread_after_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ArtifactStore> = Arc::new(FsArtifactStore::new(dir.path()));
        let id = "run-20260101-000001-00000009";
        let key = format!("runs/{id}/state.ndjson");
        store
            .put(
                &key,
                StateDump::render(&run(id, "p", RunStatus::Running), &[]).into_bytes(),
            )
            .await
            .unwrap();
        let index = BucketRuns::new(store.clone());
        assert_eq!(
            index.get(id).await.unwrap().unwrap().run.status,
            RunStatus::Running
        );
        store
            .put(
                &key,
                StateDump::render(&run(id, "p", RunStatus::Success), &[]).into_bytes(),
            )
            .await
            .unwrap();
        tokio::time::sleep(LIVE_TTL + Duration::from_millis(50)).await;
        let listed = index
            .list(&Wanted {
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(st(&listed[0]).run.status, RunStatus::Success);
    }
}
