//! The frames on the relay socket: a 4-byte big-endian header length, a JSON header, then the
//! header's `n` bytes of payload (object bodies, log parts, stream chunks).

use crate::error::StoreError;
use crate::logs::{LogPart, ReadOpts};
use serde::{Deserialize, Serialize};
use sparkwing_contract::IdError;
use sparkwing_contract::record::{NodeRecord, RunRecord};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest header a peer may send (a node record with large outputs still fits).
pub(crate) const MAX_HEADER: usize = 16 << 20;
/// Largest payload of one frame: whole-object calls carry the object, streams carry chunks.
pub(crate) const MAX_PAYLOAD: usize = 1 << 30;
/// Size of one chunk of a streamed object; each chunk is acknowledged before the next is sent,
/// so a stream holds at most this much in flight.
pub(crate) const CHUNK: usize = 1 << 20;

/// One frame's header.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Msg {
    /// First frame from the child: proves it was handed the token.
    Hello { token: String },
    /// A store call; `store` is the spec string of a store the run was given.
    Call { id: u64, store: String, call: Call },
    /// The next chunk of a streamed object (payload); answered by `Ack`.
    Chunk { id: u64 },
    /// A chunk was taken.
    Ack { id: u64 },
    /// The end of a streamed upload: store what was sent.
    End { id: u64 },
    /// A streamed upload given up (its source failed): store nothing.
    Abort { id: u64 },
    /// Records for the record database, in order: the payload holds one per line (see
    /// [`encode_records`]).
    Records,
    /// Waits until every record sent before it is committed.
    Sync { id: u64 },
    /// The answer to `Call` or `Sync`; payload for calls that return bytes.
    Reply {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ok: Option<Answer>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        err: Option<WireError>,
    },
}

/// A header as the pipeline process reads it. The supervisor only ever sends it `Reply`, `Chunk`
/// and `Ack`, so the child decodes one flat struct instead of the tagged [`Msg`]: serde reads an
/// internally tagged enum through a buffered copy of every variant, code that every pipeline build
/// would otherwise compile. The JSON on the wire is the same.
#[derive(Debug, Deserialize)]
pub(crate) struct ToChild {
    /// `reply`, `chunk` or `ack`; anything else is skipped.
    pub t: String,
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub ok: Option<Answer>,
    #[serde(default)]
    pub err: Option<WireError>,
}

/// The store calls: every method of `ArtifactStore` and `LogStore` that does I/O.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Call {
    Get {
        key: String,
    },
    Put {
        key: String,
    },
    Has {
        key: String,
    },
    Size {
        key: String,
    },
    Delete {
        key: String,
    },
    List {
        prefix: String,
    },
    /// Streams the object back in `Chunk` frames, then replies with the byte count.
    GetStream {
        key: String,
    },
    /// The object follows in `Chunk` frames and an `End`.
    PutStream {
        key: String,
        if_absent: bool,
    },
    SupportsConditional,
    PutIfAbsent {
        key: String,
    },
    GetWithEtag {
        key: String,
    },
    PutIfMatch {
        key: String,
        etag: String,
    },
    PutPart {
        run: String,
        node: String,
        part: String,
    },
    /// Several parts of one run; their data follows in the payload, one after the other.
    PutParts {
        run: String,
        parts: Vec<WirePart>,
    },
    ReadLog {
        run: String,
        node: String,
        opts: WireReadOpts,
    },
    ListNodes {
        run: String,
    },
    ListParts {
        run: String,
    },
    ListNodeParts {
        run: String,
        node: String,
    },
    ReadPart {
        run: String,
        node: String,
        part: String,
    },
    DeleteRun {
        run: String,
    },
}

impl Call {
    /// The artifact key a call writes or deletes, for the supervisor's namespace check.
    pub(crate) fn written_key(&self) -> Option<&str> {
        match self {
            Call::Put { key }
            | Call::Delete { key }
            | Call::PutStream { key, .. }
            | Call::PutIfAbsent { key }
            | Call::PutIfMatch { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// One part of a [`Call::PutParts`]: its data is the next `len` bytes of the payload.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WirePart {
    pub node: String,
    pub part: String,
    pub len: u64,
}

/// The parts of a [`Call::PutParts`]: each takes its `len` bytes of `payload` in turn, and the
/// lengths must add up to the payload's.
pub(crate) fn split_parts(
    parts: Vec<WirePart>,
    mut payload: Vec<u8>,
) -> Result<Vec<LogPart>, StoreError> {
    let mismatch = |said: String| {
        StoreError::config(format!(
            "relay: a batch of log parts says {said} bytes but carries {}",
            payload.len()
        ))
    };
    // Checked: the lengths come from the other process and must not wrap around to a match.
    let total = parts
        .iter()
        .try_fold(0u64, |sum, p| sum.checked_add(p.len))
        .ok_or_else(|| mismatch("more than 2^64".into()))?;
    if total != payload.len() as u64 {
        return Err(mismatch(total.to_string()));
    }
    let mut out = Vec::with_capacity(parts.len());
    // From the end, so each part's bytes are split off without copying the rest. Each length is
    // at most what is left: together they are exactly the payload.
    for p in parts.into_iter().rev() {
        let data = payload.split_off(payload.len() - p.len as usize);
        out.push(LogPart {
            node: p.node,
            name: p.part,
            data,
        });
    }
    out.reverse();
    Ok(out)
}

/// `ReadOpts` on the wire.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct WireReadOpts {
    tail: usize,
    head: usize,
    lines: Option<(usize, usize)>,
    grep: Option<String>,
}

impl From<&ReadOpts> for WireReadOpts {
    fn from(o: &ReadOpts) -> Self {
        WireReadOpts {
            tail: o.tail,
            head: o.head,
            lines: o.lines,
            grep: o.grep.clone(),
        }
    }
}

impl From<WireReadOpts> for ReadOpts {
    fn from(o: WireReadOpts) -> Self {
        ReadOpts {
            tail: o.tail,
            head: o.head,
            lines: o.lines,
            grep: o.grep,
        }
    }
}

/// What a successful call returns besides its payload.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<(String, String)>,
}

/// A `StoreError` on the wire; turned back into the same variant on the other side.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireError {
    kind: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    op: String,
    message: String,
    #[serde(default)]
    hint: Option<String>,
}

/// Operation names a remote error may carry (`StoreError::Remote::op` is static).
const OPS: &[&str] = &[
    "get", "put", "head", "delete", "list", "copy", "stream", "upload", "download", "read", "write",
];

fn static_op(op: &str) -> &'static str {
    OPS.iter().find(|o| **o == op).copied().unwrap_or("call")
}

impl From<&StoreError> for WireError {
    fn from(e: &StoreError) -> Self {
        let plain = |kind: &str| WireError {
            kind: kind.into(),
            key: String::new(),
            store: String::new(),
            op: String::new(),
            message: e.to_string(),
            hint: sparkwing_contract::hint::Hinted::hint(e),
        };
        match e {
            StoreError::NotFound(k) => WireError {
                key: k.clone(),
                ..plain("not_found")
            },
            StoreError::PreconditionFailed(k) => WireError {
                key: k.clone(),
                ..plain("precondition")
            },
            StoreError::NotSupported { store, what } => WireError {
                store: store.clone(),
                message: what.clone(),
                ..plain("not_supported")
            },
            StoreError::BadId(id) => {
                let (kind, value) = match id {
                    IdError::Empty => ("id_empty", String::new()),
                    IdError::PathReference(v) => ("id_path_reference", v.clone()),
                    IdError::Separator(v) => ("id_separator", v.clone()),
                    IdError::NotRunId(v) => ("id_not_run_id", v.clone()),
                };
                WireError {
                    key: value,
                    ..plain(kind)
                }
            }
            StoreError::BadPartName(p) => WireError {
                key: p.clone(),
                ..plain("bad_part_name")
            },
            StoreError::Remote {
                op,
                key,
                store,
                message,
                hint,
            } => WireError {
                kind: "remote".into(),
                key: key.clone(),
                store: store.clone(),
                op: (*op).into(),
                message: message.clone(),
                hint: hint.clone(),
            },
            _ => plain("other"),
        }
    }
}

impl From<WireError> for StoreError {
    fn from(w: WireError) -> Self {
        match w.kind.as_str() {
            "not_found" => StoreError::NotFound(w.key),
            "precondition" => StoreError::PreconditionFailed(w.key),
            "id_empty" => StoreError::BadId(IdError::Empty),
            "id_path_reference" => StoreError::BadId(IdError::PathReference(w.key)),
            "id_separator" => StoreError::BadId(IdError::Separator(w.key)),
            "id_not_run_id" => StoreError::BadId(IdError::NotRunId(w.key)),
            "bad_part_name" => StoreError::BadPartName(w.key),
            "not_supported" => StoreError::NotSupported {
                store: w.store,
                what: w.message,
            },
            "remote" => StoreError::Remote {
                op: static_op(&w.op),
                key: w.key,
                store: w.store,
                message: w.message,
                hint: w.hint,
            },
            _ => StoreError::Config {
                message: w.message,
                hint: w.hint,
            },
        }
    }
}

/// A record on its way to the supervisor's record database. Node records are the many; run
/// records are few, so neither is boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The run's own record.
    Run(RunRecord),
    /// One node's record.
    Node(NodeRecord),
}

/// The payload of a `Records` frame: per record one line, `r` or `n` and the record's JSON.
/// Compact JSON has no raw newline, and each record decodes straight into its type.
pub(crate) fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 256);
    for r in records {
        let written = match r {
            Record::Run(run) => {
                out.push(b'r');
                serde_json::to_writer(&mut out, run)
            }
            Record::Node(node) => {
                out.push(b'n');
                serde_json::to_writer(&mut out, node)
            }
        };
        written.expect("records serialize");
        out.push(b'\n');
    }
    out
}

/// Reads a `Records` payload back; an unreadable line fails the whole frame.
pub(crate) fn decode_records(payload: &[u8]) -> std::io::Result<Vec<Record>> {
    let mut records = Vec::new();
    for (i, line) in payload.split(|&b| b == b'\n').enumerate() {
        let decoded = match line.split_first() {
            None => continue,
            Some((b'r', json)) => serde_json::from_slice(json).map(Record::Run),
            Some((b'n', json)) => serde_json::from_slice(json).map(Record::Node),
            Some((k, _)) => {
                return Err(bad(format!(
                    "record {} of a batch has the unknown kind {:?}",
                    i + 1,
                    char::from(*k)
                )));
            }
        };
        records.push(decoded.map_err(|e| bad(format!("record {} of a batch: {e}", i + 1)))?);
    }
    Ok(records)
}

/// One frame as read: the header and its payload.
pub(crate) struct Frame<H = Msg> {
    pub msg: H,
    pub payload: Vec<u8>,
}

/// Encodes a frame: header length, payload length, header, payload.
pub(crate) fn encode(msg: &Msg, payload: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(msg).expect("relay headers serialize");
    let mut out = Vec::with_capacity(8 + header.len() + payload.len());
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    out
}

/// Reads the next frame; `Ok(None)` at a clean end of stream.
pub(crate) async fn read_frame<H: serde::de::DeserializeOwned>(
    r: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Option<Frame<H>>> {
    let mut lens = [0u8; 8];
    match r.read_exact(&mut lens).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
    let n = u32::from_be_bytes([lens[4], lens[5], lens[6], lens[7]]) as usize;
    if len > MAX_HEADER {
        return Err(bad(format!(
            "a frame header of {len} bytes (at most {MAX_HEADER})"
        )));
    }
    if n > MAX_PAYLOAD {
        return Err(bad(format!(
            "a payload of {n} bytes (at most {MAX_PAYLOAD})"
        )));
    }
    let mut header = vec![0u8; len];
    r.read_exact(&mut header).await?;
    let msg = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("an unreadable frame header: {e}")))?;
    let mut payload = vec![0u8; n];
    r.read_exact(&mut payload).await?;
    Ok(Some(Frame { msg, payload }))
}

fn bad(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("relay: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkwing_contract::record::{NodeStatus, RunStatus};

    #[test]
    fn a_batch_of_parts_is_split_as_its_lengths_say_and_refused_when_they_do_not_add_up() {
        let part = |node: &str, len: u64| WirePart {
            node: node.into(),
            part: format!("{node}.ndjson"),
            len,
        };
        let parts = split_parts(
            vec![part("a", 2), part("b", 0), part("c", 3)],
            b"a\nbc\n".to_vec(),
        )
        .unwrap();
        let got: Vec<(&str, &[u8])> = parts.iter().map(|p| (&*p.node, &p.data[..])).collect();
        assert_eq!(got, [("a", &b"a\n"[..]), ("b", b""), ("c", b"bc\n")]);
        // Too many bytes, too few, and lengths that wrap around to the payload's: refused, no
        // panic.
        assert!(split_parts(vec![part("a", 2)], b"abc".to_vec()).is_err());
        assert!(split_parts(vec![part("a", 4)], b"abc".to_vec()).is_err());
        let wraps = vec![part("a", u64::MAX), part("b", 1)];
        assert!(split_parts(wraps, Vec::new()).is_err());
    }

    #[test]
    fn the_child_reads_every_header_the_host_sends_it() {
        let header = |m: &Msg| -> ToChild {
            let frame = encode(m, b"");
            serde_json::from_slice(&frame[8..]).expect("the child reads the header")
        };
        let answer = Answer {
            etag: Some("\"e\"".into()),
            names: vec!["a".into()],
            ..Answer::default()
        };
        let got = header(&Msg::Reply {
            id: 7,
            ok: Some(answer),
            err: None,
        });
        assert_eq!((got.t.as_str(), got.id), ("reply", 7));
        let ok = got.ok.expect("ok");
        assert_eq!(
            (ok.etag.as_deref(), ok.names),
            (Some("\"e\""), vec!["a".to_string()])
        );
        let got = header(&Msg::Reply {
            id: 8,
            ok: None,
            err: Some(WireError::from(&StoreError::NotFound("k".into()))),
        });
        assert!(
            matches!(StoreError::from(got.err.expect("err")), StoreError::NotFound(k) if k == "k")
        );
        assert_eq!(header(&Msg::Chunk { id: 9 }).t, "chunk");
        assert_eq!(header(&Msg::Ack { id: 10 }).id, 10);
        // A header the child has no use for still reads (and is skipped by its read loop).
        assert_eq!(header(&Msg::Sync { id: 11 }).t, "sync");
    }

    #[test]
    fn records_round_trip_and_a_bad_line_names_itself() {
        let mut node = NodeRecord::new("run-20261202-000000-00000000", "build", NodeStatus::Done);
        node.error = "line one\nline two".into();
        let run = RunRecord::new(
            "run-20261202-000000-00000000",
            "ci",
            RunStatus::Running,
            "2026-12-02T00:00:00Z",
        );
        let batch = vec![Record::Node(node), Record::Run(run)];
        let payload = encode_records(&batch);
        assert_eq!(payload.iter().filter(|&&b| b == b'\n').count(), 2);
        assert_eq!(decode_records(&payload).unwrap(), batch);
        assert!(decode_records(b"").unwrap().is_empty());

        let mut bad = payload.clone();
        bad.extend_from_slice(b"x{}\n");
        let e = decode_records(&bad).unwrap_err().to_string();
        assert!(
            e.contains("record 3") && e.contains("unknown kind 'x'"),
            "{e}"
        );
        let e = decode_records(b"n{\"id\":1}\n").unwrap_err().to_string();
        assert!(e.contains("record 1 of a batch"), "{e}");
    }
}
