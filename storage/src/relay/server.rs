//! The supervisor's end: serves the child's store calls with the real stores and hands its
//! records to the record database.

use super::wire::{self, Answer, CHUNK, Call, Msg, Record, WireError};
use crate::artifact::ArtifactStore;
use crate::error::{Result, StoreError};
use crate::logs::LogStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// What a [`RecordHost`] calls once a sync is done: with the first failure since the last sync,
/// or none.
pub type SyncDone = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// Where the child's records go (the supervisor's SQLite writer).
pub trait RecordHost: Send + Sync {
    /// Queues one batch of records, in the order the child sent them: the whole batch at once,
    /// so a host on another thread is woken once per batch rather than once per record.
    fn records(&self, batch: Vec<Record>);
    /// Calls `done` once everything queued before is committed. Never blocks: `done` may run on
    /// the host's own thread, which then answers the child directly.
    fn sync(&self, done: SyncDone);
}

/// The stores a child may use, by spec string, opened on first use.
pub struct RelayStores {
    allowed: Vec<String>,
    artifacts: Mutex<HashMap<String, Arc<dyn ArtifactStore>>>,
    logs: Mutex<HashMap<String, Arc<dyn LogStore>>>,
}

impl RelayStores {
    /// Stores named by `specs` (the run's surfaces); any other spec is refused.
    pub fn new(specs: impl IntoIterator<Item = String>) -> RelayStores {
        RelayStores {
            allowed: specs.into_iter().collect(),
            artifacts: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
        }
    }

    /// Serves `spec` with an already opened artifact store (a test's own S3 settings).
    pub fn with_artifact(mut self, spec: &str, store: Arc<dyn ArtifactStore>) -> RelayStores {
        self.allowed.push(spec.to_string());
        lock(&self.artifacts).insert(spec.to_string(), store);
        self
    }

    /// Serves `spec` with an already opened log store.
    pub fn with_log(mut self, spec: &str, store: Arc<dyn LogStore>) -> RelayStores {
        self.allowed.push(spec.to_string());
        lock(&self.logs).insert(spec.to_string(), store);
        self
    }

    fn check(&self, spec: &str) -> Result<()> {
        if self.allowed.iter().any(|a| a == spec) {
            Ok(())
        } else {
            Err(StoreError::config(format!(
                "`{spec}` is not one of this run's stores"
            )))
        }
    }

    fn artifact(&self, spec: &str) -> Result<Arc<dyn ArtifactStore>> {
        self.check(spec)?;
        let mut m = lock(&self.artifacts);
        if let Some(s) = m.get(spec) {
            return Ok(s.clone());
        }
        let s = crate::open_artifact_store(spec)?;
        m.insert(spec.to_string(), s.clone());
        Ok(s)
    }

    fn log(&self, spec: &str) -> Result<Arc<dyn LogStore>> {
        self.check(spec)?;
        let mut m = lock(&self.logs);
        if let Some(s) = m.get(spec) {
            return Ok(s.clone());
        }
        let s = crate::open_log_store(spec)?;
        m.insert(spec.to_string(), s.clone());
        Ok(s)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the relay did, for the supervisor's account of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    /// Store calls served.
    pub calls: u64,
    /// Records handed to the record host.
    pub records: u64,
}

/// Serves one child connection until it closes. The first frame must carry `token`; anything
/// else ends the connection at once.
pub async fn serve(
    stream: UnixStream,
    token: &str,
    stores: Arc<RelayStores>,
    records: Arc<dyn RecordHost>,
) -> std::io::Result<RelayStats> {
    let (mut read, write) = stream.into_split();
    match wire::read_frame::<Msg>(&mut read).await? {
        Some(wire::Frame {
            msg: Msg::Hello { token: t },
            ..
        }) if t == token => {}
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "relay: a connection without the run's token",
            ));
        }
    }
    let (out, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_loop(write, rx));
    let mut stats = RelayStats::default();
    // Uploads in progress: where their chunks go.
    let mut uploads: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
    // Downloads in progress: where their acknowledgements go.
    let downloads: Arc<Mutex<HashMap<u64, mpsc::Sender<()>>>> = Arc::default();
    let result = loop {
        let frame: wire::Frame = match wire::read_frame(&mut read).await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match frame.msg {
            Msg::Records => {
                let batch = match wire::decode_records(&frame.payload) {
                    Ok(b) => b,
                    Err(e) => break Err(e),
                };
                stats.records += batch.len() as u64;
                records.records(batch);
            }
            Msg::Sync { id } => {
                let out = out.clone();
                records.sync(Box::new(move |r| {
                    let err = r.err().map(|m| WireError::from(&StoreError::config(m)));
                    let _ = out.send(wire::encode(&Msg::Reply { id, ok: None, err }, &[]));
                }));
            }
            Msg::Call { id, store, call } => {
                stats.calls += 1;
                match call {
                    Call::PutStream { key, if_absent } => {
                        let (tx, chunks) = mpsc::channel(1);
                        uploads.insert(id, tx);
                        let (stores, out) = (stores.clone(), out.clone());
                        tokio::spawn(async move {
                            let r =
                                upload(&stores, &store, &key, if_absent, chunks, &out, id).await;
                            reply(
                                &out,
                                id,
                                r.map(|etag| {
                                    (
                                        Answer {
                                            etag: Some(etag),
                                            ..Default::default()
                                        },
                                        Vec::new(),
                                    )
                                }),
                            );
                        });
                    }
                    Call::GetStream { key } => {
                        let (tx, acks) = mpsc::channel(1);
                        lock(&downloads).insert(id, tx);
                        let (stores, out, downloads) =
                            (stores.clone(), out.clone(), downloads.clone());
                        tokio::spawn(async move {
                            let r = download(&stores, &store, &key, acks, &out, id).await;
                            lock(&downloads).remove(&id);
                            reply(
                                &out,
                                id,
                                r.map(|n| {
                                    (
                                        Answer {
                                            count: Some(n),
                                            ..Default::default()
                                        },
                                        Vec::new(),
                                    )
                                }),
                            );
                        });
                    }
                    call => {
                        let (stores, out) = (stores.clone(), out.clone());
                        tokio::spawn(async move {
                            let r = one_call(&stores, &store, call, frame.payload).await;
                            reply(&out, id, r);
                        });
                    }
                }
            }
            Msg::Chunk { id } => {
                let delivered = match uploads.get(&id) {
                    Some(tx) if !frame.payload.is_empty() => tx.send(frame.payload).await.is_ok(),
                    _ => false,
                };
                if !delivered {
                    uploads.remove(&id);
                }
            }
            Msg::End { id } => {
                if let Some(tx) = uploads.remove(&id) {
                    let _ = tx.send(Vec::new()).await;
                }
            }
            Msg::Abort { id } => {
                uploads.remove(&id);
            }
            Msg::Ack { id } => {
                let tx = lock(&downloads).get(&id).cloned();
                if let Some(tx) = tx {
                    let _ = tx.send(()).await;
                }
            }
            Msg::Hello { .. } | Msg::Reply { .. } => {}
        }
    };
    // Uploads the child abandoned end without their `End`: dropping the senders fails them.
    drop(uploads);
    drop(out);
    let _ = writer.await;
    result.map(|()| stats)
}

fn reply(out: &mpsc::UnboundedSender<Vec<u8>>, id: u64, r: Result<(Answer, Vec<u8>)>) {
    let frame = match r {
        Ok((answer, payload)) => wire::encode(
            &Msg::Reply {
                id,
                ok: Some(answer),
                err: None,
            },
            &payload,
        ),
        Err(e) => wire::encode(
            &Msg::Reply {
                id,
                ok: None,
                err: Some(WireError::from(&e)),
            },
            &[],
        ),
    };
    let _ = out.send(frame);
}

/// The child may read anything of its stores but never write the binary cache.
fn check_write(call: &Call) -> Result<()> {
    match call.written_key() {
        Some(key) if sparkwing_contract::id::reserved_namespace(key) == Some("bin") => {
            Err(StoreError::config(format!(
                "`{key}`: the pipeline process may not write under `bin/` (the binary cache)"
            )))
        }
        _ => Ok(()),
    }
}

async fn one_call(
    stores: &RelayStores,
    spec: &str,
    call: Call,
    payload: Vec<u8>,
) -> Result<(Answer, Vec<u8>)> {
    check_write(&call)?;
    let none = || (Answer::default(), Vec::new());
    let flag = |b: bool| {
        (
            Answer {
                flag: Some(b),
                ..Default::default()
            },
            Vec::new(),
        )
    };
    let etag = |e: String| {
        (
            Answer {
                etag: Some(e),
                ..Default::default()
            },
            Vec::new(),
        )
    };
    let names = |n: Vec<String>| {
        (
            Answer {
                names: n,
                ..Default::default()
            },
            Vec::new(),
        )
    };
    Ok(match call {
        Call::Get { key } => (Answer::default(), stores.artifact(spec)?.get(&key).await?),
        Call::Put { key } => {
            stores.artifact(spec)?.put(&key, payload).await?;
            none()
        }
        Call::Has { key } => flag(stores.artifact(spec)?.has(&key).await?),
        Call::Size { key } => (
            Answer {
                count: Some(stores.artifact(spec)?.size(&key).await?),
                ..Default::default()
            },
            Vec::new(),
        ),
        Call::Delete { key } => {
            stores.artifact(spec)?.delete(&key).await?;
            none()
        }
        Call::List { prefix } => names(stores.artifact(spec)?.list(&prefix).await?),
        Call::SupportsConditional => flag(stores.artifact(spec)?.supports_conditional().await?),
        Call::PutIfAbsent { key } => {
            etag(stores.artifact(spec)?.put_if_absent(&key, payload).await?)
        }
        Call::GetWithEtag { key } => {
            let (data, e) = stores.artifact(spec)?.get_with_etag(&key).await?;
            (
                Answer {
                    etag: Some(e),
                    ..Default::default()
                },
                data,
            )
        }
        Call::PutIfMatch { key, etag: tag } => etag(
            stores
                .artifact(spec)?
                .put_if_match(&key, payload, &tag)
                .await?,
        ),
        Call::PutPart { run, node, part } => {
            stores
                .log(spec)?
                .put_part(&run, &node, &part, payload)
                .await?;
            none()
        }
        Call::PutParts { run, parts } => {
            let parts = wire::split_parts(parts, payload)?;
            stores.log(spec)?.put_parts(&run, &parts).await?;
            none()
        }
        Call::ReadLog { run, node, opts } => (
            Answer::default(),
            stores.log(spec)?.read(&run, &node, &opts.into()).await?,
        ),
        Call::ListNodes { run } => names(stores.log(spec)?.list_nodes(&run).await?),
        Call::ListParts { run } => (
            Answer {
                pairs: stores.log(spec)?.list_parts(&run).await?,
                ..Default::default()
            },
            Vec::new(),
        ),
        Call::ListNodeParts { run, node } => {
            names(stores.log(spec)?.list_node_parts(&run, &node).await?)
        }
        Call::ReadPart { run, node, part } => (
            Answer::default(),
            stores.log(spec)?.read_part(&run, &node, &part).await?,
        ),
        Call::DeleteRun { run } => {
            stores.log(spec)?.delete_run(&run).await?;
            none()
        }
        Call::GetStream { .. } | Call::PutStream { .. } => {
            return Err(StoreError::config("a stream call outside a stream"));
        }
    })
}

/// Feeds the child's chunks into the store's streamed write, acknowledging each once taken.
async fn upload(
    stores: &RelayStores,
    spec: &str,
    key: &str,
    if_absent: bool,
    chunks: mpsc::Receiver<Vec<u8>>,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    id: u64,
) -> Result<String> {
    check_write(&Call::PutStream {
        key: key.to_string(),
        if_absent,
    })?;
    let store = stores.artifact(spec)?;
    let mut r = ChunkReader {
        rx: chunks,
        buf: Vec::new(),
        pos: 0,
        done: false,
        out: out.clone(),
        id,
    };
    if if_absent {
        store
            .put_from_reader_if_absent(key, &mut r)
            .await
            .map(|(_, e)| e)
    } else {
        store
            .put_from_reader(key, &mut r)
            .await
            .map(|_| String::new())
    }
}

/// The child's chunks as a reader. An empty chunk is the end; a channel closed without it (the
/// child abandoned the upload or died) is an error, so the store never keeps a partial object.
struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    out: mpsc::UnboundedSender<Vec<u8>>,
    id: u64,
}

impl tokio::io::AsyncRead for ChunkReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        dst: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let me = self.get_mut();
        loop {
            if me.pos < me.buf.len() {
                let n = (me.buf.len() - me.pos).min(dst.remaining());
                dst.put_slice(&me.buf[me.pos..me.pos + n]);
                me.pos += n;
                return Poll::Ready(Ok(()));
            }
            if me.done {
                return Poll::Ready(Ok(()));
            }
            match me.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(chunk)) if chunk.is_empty() => me.done = true,
                Poll::Ready(Some(chunk)) => {
                    let _ = me.out.send(wire::encode(&Msg::Ack { id: me.id }, &[]));
                    me.buf = chunk;
                    me.pos = 0;
                }
                Poll::Ready(None) => {
                    return Poll::Ready(Err(std::io::Error::other(
                        "the pipeline process abandoned the upload",
                    )));
                }
            }
        }
    }
}

/// Streams the object to the child in acknowledged chunks; the byte count.
async fn download(
    stores: &RelayStores,
    spec: &str,
    key: &str,
    mut acks: mpsc::Receiver<()>,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    id: u64,
) -> Result<u64> {
    let store = stores.artifact(spec)?;
    let (mut pipe_w, mut pipe_r) = tokio::io::duplex(CHUNK);
    let get = async {
        let r = store.get_to_writer(key, &mut pipe_w).await;
        let _ = pipe_w.shutdown().await;
        r
    };
    let send = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let mut n = 0;
            while n < buf.len() {
                match pipe_r.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(got) => n += got,
                }
            }
            if n == 0 {
                return;
            }
            if out
                .send(wire::encode(&Msg::Chunk { id }, &buf[..n]))
                .is_err()
                || acks.recv().await.is_none()
            {
                return;
            }
        }
    };
    let (r, ()) = tokio::join!(get, send);
    r
}

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
}
