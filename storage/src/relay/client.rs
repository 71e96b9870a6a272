//! The pipeline process's end: stores and a record writer whose calls travel to the supervisor.

use super::wire::{self, Answer, CHUNK, Call, Msg, Record, ToChild, WirePart, WireReadOpts};
use crate::artifact::ArtifactStore;
use crate::error::{Result, StoreError};
use crate::logs::{LogPart, LogStore, ReadOpts};
use async_trait::async_trait;
use sparkwing_contract::record::{NodeRecord, RunRecord};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc, oneshot};

/// How long a record waits for company before it leaves. A job that starts and ends within it
/// sends one record instead of two, and a burst of records leaves as one frame: each frame costs
/// the supervisor a wake-up and a commit, so 25 ms rather than 5 ms cut the supervisor's CPU for
/// 1,000 short jobs by about two thirds; a local reader sees a change at most 25 ms later.
const RECORDS_LINGER: Duration = Duration::from_millis(25);
/// Records that leave at once, without waiting out the linger.
const RECORDS_BATCH: usize = 2048;

/// What a call gets back: its answer or error, and the payload.
type Reply = std::result::Result<(Answer, Vec<u8>), StoreError>;

/// A connection to the supervisor's relay. Cheap to clone; every clone shares the connection.
#[derive(Clone)]
pub struct RelayClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient").finish_non_exhaustive()
    }
}

struct Inner {
    out: mpsc::UnboundedSender<Vec<u8>>,
    next: AtomicU64,
    /// Calls waiting for their reply.
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    /// Streamed downloads: where their chunks go.
    streams: Mutex<HashMap<u64, mpsc::Sender<Vec<u8>>>>,
    /// Why the connection ended, once it has.
    gone: Mutex<Option<String>>,
    /// Records not sent yet.
    outbox: Mutex<Outbox>,
    /// Wakes the task that sends the outbox after the linger.
    linger: Arc<Notify>,
}

/// Records waiting to leave, in the order first queued. A node queued again before they leave
/// goes once, as its latest record, in the place of its first: the database keeps only the
/// latest record of a node anyway.
#[derive(Default)]
struct Outbox {
    records: Vec<Record>,
    /// Where each node's record sits in `records`, by node id.
    nodes: HashMap<String, usize>,
}

impl Outbox {
    /// Queues `r`; whether the outbox was empty before.
    fn push(&mut self, r: Record) -> bool {
        let was_empty = self.records.is_empty();
        if let Record::Node(n) = &r {
            if let Some(&at) = self.nodes.get(&n.id)
                && matches!(&self.records[at], Record::Node(old) if old.run_id == n.run_id)
            {
                self.records[at] = r;
                return was_empty;
            }
            self.nodes.insert(n.id.clone(), self.records.len());
        }
        self.records.push(r);
        was_empty
    }
}

impl Inner {
    /// Sends every queued record in one frame. The frame is queued while the outbox is held, so
    /// frames leave in the order their records were queued.
    fn send_records(&self) -> bool {
        let mut outbox = lock(&self.outbox);
        if outbox.records.is_empty() {
            return true;
        }
        let payload = wire::encode_records(&outbox.records);
        outbox.records.clear();
        outbox.nodes.clear();
        self.out.send(wire::encode(&Msg::Records, &payload)).is_ok()
    }

    fn queue_record(&self, r: Record) {
        let (was_empty, full) = {
            let mut outbox = lock(&self.outbox);
            let was_empty = outbox.push(r);
            (was_empty, outbox.records.len() >= RECORDS_BATCH)
        };
        if full {
            self.send_records();
        } else if was_empty {
            self.linger.notify_one();
        }
    }
}

/// Sends the outbox a linger after its first record; ends with the client.
async fn linger_loop(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(RECORDS_LINGER).await;
        match inner.upgrade() {
            Some(inner) => {
                inner.send_records();
            }
            None => return,
        }
    }
}

impl RelayClient {
    /// Connects to the relay at `socket` and introduces itself with `token`.
    pub async fn connect(socket: &Path, token: &str) -> Result<RelayClient> {
        let stream = UnixStream::connect(socket).await.map_err(|e| {
            StoreError::config_hint(
                format!("connect to the supervisor at `{}`: {e}", socket.display()),
                "pipeline binaries reach their stores through `sparkwing run <pipeline>`",
            )
        })?;
        let (read, write) = stream.into_split();
        let (out, rx) = mpsc::unbounded_channel();
        let linger = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            out,
            next: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            gone: Mutex::new(None),
            outbox: Mutex::default(),
            linger: linger.clone(),
        });
        tokio::spawn(write_loop(write, rx));
        tokio::spawn(linger_loop(Arc::downgrade(&inner), linger));
        tokio::spawn(read_loop(read, inner.clone()));
        let client = RelayClient { inner };
        client.send(
            &Msg::Hello {
                token: token.to_string(),
            },
            &[],
        );
        Ok(client)
    }

    fn send(&self, msg: &Msg, payload: &[u8]) -> bool {
        self.inner.out.send(wire::encode(msg, payload)).is_ok()
    }

    fn gone_error(&self) -> StoreError {
        let why = lock(&self.inner.gone)
            .clone()
            .unwrap_or_else(|| "the connection closed".into());
        StoreError::config(format!("the supervisor's relay is gone: {why}"))
    }

    /// A reply slot for a new request. When the connection is already gone the slot is closed
    /// at once, so waiting on it fails instead of hanging: the reader marks the connection gone
    /// before it drops every slot, so a slot added after that drop still sees the mark.
    fn register(&self) -> (u64, oneshot::Receiver<Reply>) {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id, tx);
        if lock(&self.inner.gone).is_some() {
            lock(&self.inner.pending).remove(&id);
        }
        (id, rx)
    }

    /// The chunk channel of stream `id`, closed at once when the connection is gone (as
    /// [`RelayClient::register`]).
    fn register_stream(&self, id: u64, tx: mpsc::Sender<Vec<u8>>) {
        lock(&self.inner.streams).insert(id, tx);
        if lock(&self.inner.gone).is_some() {
            lock(&self.inner.streams).remove(&id);
        }
    }

    async fn wait(&self, rx: oneshot::Receiver<Reply>) -> Reply {
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.gone_error()),
        }
    }

    async fn call(&self, store: &str, call: Call, payload: &[u8]) -> Reply {
        let (id, rx) = self.register();
        let msg = Msg::Call {
            id,
            store: store.to_string(),
            call,
        };
        if !self.send(&msg, payload) {
            lock(&self.inner.pending).remove(&id);
            return Err(self.gone_error());
        }
        self.wait(rx).await
    }

    /// The artifact store `spec` of this run, reached through the supervisor.
    pub fn artifact_store(&self, spec: &str) -> Arc<dyn ArtifactStore> {
        Arc::new(RelayStore {
            client: self.clone(),
            spec: spec.to_string(),
        })
    }

    /// The log store `spec` of this run, reached through the supervisor.
    pub fn log_store(&self, spec: &str) -> Arc<dyn LogStore> {
        Arc::new(RelayStore {
            client: self.clone(),
            spec: spec.to_string(),
        })
    }

    /// Queues the run record for the supervisor's record database. Never blocks; records leave
    /// in batches within about 25 ms, or at the next [`RelayClient::sync`].
    pub fn put_run(&self, run: RunRecord) {
        self.inner.queue_record(Record::Run(run));
    }

    /// Queues a node record for the supervisor's record database, as
    /// [`RelayClient::put_run`]. A node's later record may replace an earlier one not yet sent.
    pub fn put_node(&self, node: NodeRecord) {
        self.inner.queue_record(Record::Node(node));
    }

    /// Sends every queued record and the request to commit them at once, when called; the
    /// returned future waits until the supervisor committed them and yields the first failure
    /// since the last sync, as the supervisor saw it. Records queued after the call leave with
    /// a later batch, so a caller can go on with other work while the commit is under way.
    pub fn sync(
        &self,
    ) -> impl std::future::Future<Output = std::result::Result<(), String>> + Send + 'static {
        let (id, rx) = self.register();
        if !self.inner.send_records() || !self.send(&Msg::Sync { id }, &[]) {
            lock(&self.inner.pending).remove(&id);
        }
        let client = self.clone();
        async move {
            match client.wait(rx).await {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    }

    async fn get_stream(
        &self,
        store: &str,
        key: &str,
        w: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        let (id, rx) = self.register();
        let (chunks_tx, mut chunks) = mpsc::channel::<Vec<u8>>(1);
        self.register_stream(id, chunks_tx);
        let msg = Msg::Call {
            id,
            store: store.to_string(),
            call: Call::GetStream {
                key: key.to_string(),
            },
        };
        let sent = self.send(&msg, &[]);
        let mut written = 0u64;
        let mut failed = None;
        if sent {
            while let Some(chunk) = chunks.recv().await {
                // Acknowledged only once written: the supervisor never runs ahead of the writer.
                if failed.is_none() {
                    match w.write_all(&chunk).await {
                        Ok(()) => written += chunk.len() as u64,
                        Err(e) => failed = Some(StoreError::io("write", key, e)),
                    }
                }
                self.send(&Msg::Ack { id }, &[]);
            }
        }
        lock(&self.inner.streams).remove(&id);
        if !sent {
            lock(&self.inner.pending).remove(&id);
            return Err(self.gone_error());
        }
        let reply = self.wait(rx).await;
        if let Some(e) = failed {
            return Err(e);
        }
        w.flush()
            .await
            .map_err(|e| StoreError::io("write", key, e))?;
        reply.map(|_| written)
    }

    async fn put_stream(
        &self,
        store: &str,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
        if_absent: bool,
    ) -> Result<(u64, String)> {
        let (id, rx) = self.register();
        // Registered before the call leaves: a reply that comes at once (a refused key) must
        // find the channel to close it.
        let (ack_tx, mut acks) = mpsc::channel::<Vec<u8>>(1);
        self.register_stream(id, ack_tx);
        let msg = Msg::Call {
            id,
            store: store.to_string(),
            call: Call::PutStream {
                key: key.to_string(),
                if_absent,
            },
        };
        if !self.send(&msg, &[]) {
            lock(&self.inner.pending).remove(&id);
            lock(&self.inner.streams).remove(&id);
            return Err(self.gone_error());
        }
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        let mut read_error = None;
        loop {
            let n = match read_full(r, &mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    read_error = Some(StoreError::io("read", key, e));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            total += n as u64;
            if !self.send(&Msg::Chunk { id }, &buf[..n]) || acks.recv().await.is_none() {
                // The supervisor ended the stream early (its upload failed): its reply says why.
                break;
            }
            if n < buf.len() {
                break;
            }
        }
        lock(&self.inner.streams).remove(&id);
        // A failed read ends the stream with `Abort`: the supervisor stores nothing.
        if read_error.is_none() {
            self.send(&Msg::End { id }, &[]);
        } else {
            self.send(&Msg::Abort { id }, &[]);
        }
        let reply = self.wait(rx).await;
        if let Some(e) = read_error {
            return Err(e);
        }
        let (answer, _) = reply?;
        Ok((total, answer.etag.unwrap_or_default()))
    }
}

/// Reads until `buf` is full or the reader ends.
async fn read_full(
    r: &mut (dyn AsyncRead + Send + Unpin),
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = r.read(&mut buf[n..]).await?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes queued frames, flushing whenever the queue runs dry: records sent in a burst leave in
/// few writes.
async fn write_loop(
    write: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut w = tokio::io::BufWriter::with_capacity(256 << 10, write);
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            return;
        }
        while let Ok(frame) = rx.try_recv() {
            if w.write_all(&frame).await.is_err() {
                return;
            }
        }
        if w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

async fn read_loop(mut read: tokio::net::unix::OwnedReadHalf, inner: Arc<Inner>) {
    let why = loop {
        let frame: wire::Frame<ToChild> = match wire::read_frame(&mut read).await {
            Ok(Some(f)) => f,
            Ok(None) => break "the supervisor closed the connection".to_string(),
            Err(e) => break e.to_string(),
        };
        let ToChild { t, id, ok, err } = frame.msg;
        match t.as_str() {
            "reply" => {
                let reply = match err {
                    Some(e) => Err(StoreError::from(e)),
                    None => Ok((ok.unwrap_or_default(), frame.payload)),
                };
                // A stream ends with its reply: its chunk channel closes first.
                lock(&inner.streams).remove(&id);
                if let Some(tx) = lock(&inner.pending).remove(&id) {
                    let _ = tx.send(reply);
                }
            }
            "chunk" | "ack" => {
                let tx = lock(&inner.streams).get(&id).cloned();
                if let Some(tx) = tx {
                    let _ = tx.send(frame.payload).await;
                }
            }
            _ => {}
        }
    };
    *lock(&inner.gone) = Some(why);
    lock(&inner.streams).clear();
    lock(&inner.pending).clear();
}

/// A store of the run, reached through the relay.
struct RelayStore {
    client: RelayClient,
    spec: String,
}

impl std::fmt::Debug for RelayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayStore")
            .field("spec", &self.spec)
            .finish()
    }
}

impl RelayStore {
    async fn call(&self, call: Call, payload: &[u8]) -> Reply {
        self.client.call(&self.spec, call, payload).await
    }
}

fn k(key: &str) -> String {
    key.to_string()
}

#[async_trait]
impl ArtifactStore for RelayStore {
    fn describe(&self) -> String {
        self.spec.clone()
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        Ok(self.call(Call::Get { key: k(key) }, &[]).await?.1)
    }
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        if data.len() > wire::MAX_PAYLOAD {
            let mut r: &[u8] = &data;
            self.client
                .put_stream(&self.spec, key, &mut r, false)
                .await?;
            return Ok(());
        }
        self.call(Call::Put { key: k(key) }, &data).await?;
        Ok(())
    }
    async fn has(&self, key: &str) -> Result<bool> {
        let (a, _) = self.call(Call::Has { key: k(key) }, &[]).await?;
        Ok(a.flag.unwrap_or(false))
    }
    async fn size(&self, key: &str) -> Result<u64> {
        let (a, _) = self.call(Call::Size { key: k(key) }, &[]).await?;
        Ok(a.count.unwrap_or(0))
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.call(Call::Delete { key: k(key) }, &[]).await?;
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let (a, _) = self.call(Call::List { prefix: k(prefix) }, &[]).await?;
        Ok(a.names)
    }
    async fn get_to_writer(
        &self,
        key: &str,
        w: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<u64> {
        self.client.get_stream(&self.spec, key, w).await
    }
    async fn put_from_reader(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        Ok(self.client.put_stream(&self.spec, key, r, false).await?.0)
    }
    async fn supports_conditional(&self) -> Result<bool> {
        let (a, _) = self.call(Call::SupportsConditional, &[]).await?;
        Ok(a.flag.unwrap_or(false))
    }
    async fn put_if_absent(&self, key: &str, data: Vec<u8>) -> Result<String> {
        let (a, _) = self.call(Call::PutIfAbsent { key: k(key) }, &data).await?;
        Ok(a.etag.unwrap_or_default())
    }
    async fn get_with_etag(&self, key: &str) -> Result<(Vec<u8>, String)> {
        let (a, data) = self.call(Call::GetWithEtag { key: k(key) }, &[]).await?;
        Ok((data, a.etag.unwrap_or_default()))
    }
    async fn put_if_match(&self, key: &str, data: Vec<u8>, etag: &str) -> Result<String> {
        let call = Call::PutIfMatch {
            key: k(key),
            etag: etag.to_string(),
        };
        let (a, _) = self.call(call, &data).await?;
        Ok(a.etag.unwrap_or_default())
    }
    async fn put_from_reader_if_absent(
        &self,
        key: &str,
        r: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(u64, String)> {
        self.client.put_stream(&self.spec, key, r, true).await
    }
}

#[async_trait]
impl LogStore for RelayStore {
    fn describe(&self) -> String {
        self.spec.clone()
    }
    async fn put_part(&self, run: &str, node: &str, part: &str, data: Vec<u8>) -> Result<()> {
        let call = Call::PutPart {
            run: k(run),
            node: k(node),
            part: k(part),
        };
        self.call(call, &data).await?;
        Ok(())
    }
    async fn put_parts(&self, run: &str, parts: &[LogPart]) -> Result<()> {
        let call = Call::PutParts {
            run: k(run),
            parts: parts
                .iter()
                .map(|p| WirePart {
                    node: k(&p.node),
                    part: k(&p.name),
                    len: p.data.len() as u64,
                })
                .collect(),
        };
        let payload = parts
            .iter()
            .map(|p| p.data.as_slice())
            .collect::<Vec<_>>()
            .concat();
        self.call(call, &payload).await?;
        Ok(())
    }
    async fn read(&self, run: &str, node: &str, opts: &ReadOpts) -> Result<Vec<u8>> {
        let call = Call::ReadLog {
            run: k(run),
            node: k(node),
            opts: WireReadOpts::from(opts),
        };
        Ok(self.call(call, &[]).await?.1)
    }
    async fn list_nodes(&self, run: &str) -> Result<Vec<String>> {
        let (a, _) = self.call(Call::ListNodes { run: k(run) }, &[]).await?;
        Ok(a.names)
    }
    async fn list_parts(&self, run: &str) -> Result<Vec<(String, String)>> {
        let (a, _) = self.call(Call::ListParts { run: k(run) }, &[]).await?;
        Ok(a.pairs)
    }
    async fn list_node_parts(&self, run: &str, node: &str) -> Result<Vec<String>> {
        let call = Call::ListNodeParts {
            run: k(run),
            node: k(node),
        };
        Ok(self.call(call, &[]).await?.0.names)
    }
    async fn read_part(&self, run: &str, node: &str, part: &str) -> Result<Vec<u8>> {
        let call = Call::ReadPart {
            run: k(run),
            node: k(node),
            part: k(part),
        };
        Ok(self.call(call, &[]).await?.1)
    }
    async fn delete_run(&self, run: &str) -> Result<()> {
        self.call(Call::DeleteRun { run: k(run) }, &[]).await?;
        Ok(())
    }
}
