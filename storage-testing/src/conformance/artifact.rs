//! Artifact-store cases, and the conditional-write cases (create-only, compare-and-swap).

use super::*;

// Artifact cases (upstream conformance §3.2 plus the product's promises).

pub(super) async fn put_get_round_trip(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
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

pub(super) async fn put_overwrite_last_wins(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    s.put("k", b"first".to_vec()).await?;
    s.put("k", b"second, longer".to_vec()).await?;
    let got = s.get("k").await?;
    ensure!(got == b"second, longer", "got {}", show(&got));
    Ok(())
}

pub(super) async fn has_after_put(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("present", b"x".to_vec()).await?;
    ensure!(s.has("present").await?, "has() is false after put");
    Ok(())
}

pub(super) async fn size_is_the_stored_length(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
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

pub(super) async fn has_missing_is_false(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    ensure!(!s.has("missing").await?, "has() is true for a missing key");
    s.put("dir/child", b"x".to_vec()).await?;
    ensure!(!s.has("dir").await?, "a key prefix is not an object");
    Ok(())
}

pub(super) async fn get_missing_is_not_found(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    match s.get("missing").await {
        Err(StoreError::NotFound(k)) => {
            ensure!(k == "missing", "NotFound names `{k}`");
            Ok(())
        }
        other => Err(CaseErr::Fail(format!("expected NotFound, got {other:?}"))),
    }
}

pub(super) async fn delete_removes_key(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    s.put("gone", b"x".to_vec()).await?;
    s.delete("gone").await?;
    ensure!(!s.has("gone").await?, "has() true after delete");
    ensure!(
        matches!(s.get("gone").await, Err(StoreError::NotFound(_))),
        "get after delete is not NotFound"
    );
    Ok(())
}

pub(super) async fn delete_missing_is_idempotent(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    s.delete("never-written").await?;
    s.delete("never/written/either").await?;
    Ok(())
}

pub(super) async fn list_empty_store(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    let keys = s.list("").await?;
    ensure!(keys.is_empty(), "empty store lists {keys:?}");
    Ok(())
}

pub(super) async fn list_prefix_filters_keys(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
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

pub(super) async fn put_empty_payload(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
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
pub(super) async fn keys_are_literal(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
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

pub(super) async fn unsafe_keys_are_refused(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
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

pub(super) async fn many_keys_listed(s: Arc<dyn ArtifactStore>, o: SuiteOptions) -> CaseResult {
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

pub(super) async fn stream_small_and_empty(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
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

pub(super) async fn stream_missing_is_not_found(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
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

pub(super) async fn big_object_streams_with_bounded_memory(
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

// Conditional writes.

pub(super) async fn conditional_or_skip(s: &Arc<dyn ArtifactStore>) -> CaseResult {
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
pub(super) async fn conditional_capability_is_honest(
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

pub(super) async fn put_if_absent_creates_when_missing(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let etag = s.put_if_absent("fresh", b"created".to_vec()).await?;
    ensure!(!etag.is_empty(), "empty ETag");
    ensure!(s.get("fresh").await? == b"created", "content not readable");
    Ok(())
}

pub(super) async fn put_if_absent_fails_when_present(
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

pub(super) async fn put_if_match_swaps_on_match(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let e1 = s.put_if_absent("cas", b"one".to_vec()).await?;
    let e2 = s.put_if_match("cas", b"two".to_vec(), &e1).await?;
    ensure!(e1 != e2, "ETag unchanged after a swap");
    ensure!(s.get("cas").await? == b"two", "content not swapped");
    Ok(())
}

pub(super) async fn put_if_match_fails_on_stale_etag(
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

pub(super) async fn put_if_match_fails_when_absent(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
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

pub(super) async fn get_with_etag_missing_is_not_found(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let r = s.get_with_etag("missing").await;
    ensure!(matches!(r, Err(StoreError::NotFound(_))), "got {r:?}");
    Ok(())
}

pub(super) async fn get_with_etag_matches_put_etag(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
    conditional_or_skip(&s).await?;
    let put = s.put_if_absent("tagged", b"body".to_vec()).await?;
    let (data, got) = s.get_with_etag("tagged").await?;
    ensure!(data == b"body", "content {}", show(&data));
    ensure!(got == put, "get ETag {got} != put ETag {put}");
    Ok(())
}

/// Several writers increment one counter with read-modify-write loops; no increment is lost.
pub(super) async fn read_modify_write_converges(
    s: Arc<dyn ArtifactStore>,
    _: SuiteOptions,
) -> CaseResult {
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

pub(super) async fn concurrent_creates_have_one_winner(
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
pub(super) async fn streamed_create_only(s: Arc<dyn ArtifactStore>, _: SuiteOptions) -> CaseResult {
    conditional_or_skip(&s).await?;
    const SIZE: u64 = 12 * 1024 * 1024;
    let mut first = PatternReader::new(SIZE, 1);
    let (n, etag) = s
        .put_from_reader_if_absent("published/tool", &mut first)
        .await?;
    ensure!(
        n == SIZE && !etag.is_empty(),
        "first streamed create: {n} bytes, ETag {etag:?}"
    );
    let mut second = PatternReader::new(SIZE, 2);
    let r = s
        .put_from_reader_if_absent("published/tool", &mut second)
        .await;
    ensure!(
        matches!(r, Err(StoreError::PreconditionFailed(_))),
        "second streamed create = {r:?}"
    );
    let mut w = DigestWriter::default();
    s.get_to_writer("published/tool", &mut w).await?;
    ensure!(
        w.digest() == first.digest(),
        "the first upload was replaced"
    );
    Ok(())
}
