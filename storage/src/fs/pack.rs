//! Small log parts of the filesystem log store, appended to one file per writer and run.
//!
//! A run of many short jobs writes one small part per job. As a file of its own, each costs a
//! directory, a temporary file and a rename: on ext4 that work, not the bytes, is most of what the
//! log costs such a job. A part of at most [`MAX_PACKED`] bytes is instead appended to the
//! writer's pack, `<run>/.parts-<pid>-<n>.pack`:
//!
//! ```text
//! {"sparkwing_log_pack":1}                          once, first line
//! {"node":"build","part":"<name>.ndjson","len":N}   a record's header line
//! <N bytes of the part>                             its data, newline-terminated
//! ```
//!
//! One process appends to a pack and nobody else, so records never interleave; a record (or a
//! batch of them, the parts of many short jobs) is one `write` and a failed write is cut off
//! again, so only a crash mid-write can leave a torn record, and then only at the end. Readers
//! index packs incrementally (a pack only grows), stop at a record that is not complete yet and
//! read it on a later look, and read a part from the pack by offset. A part written twice (a
//! retry) is read once: the last record wins. A pack is a file at the top of the run directory,
//! where readers of node directories never look.

use crate::error::{Result, StoreError};
use crate::logs::validate_part_name;
use sparkwing_contract::id::validate_hierarchical;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Parts up to this size go into the pack; larger ones keep a file of their own.
pub(super) const MAX_PACKED: usize = 64 * 1024;
/// First line of every pack: the format and its version.
const MAGIC: &[u8] = b"{\"sparkwing_log_pack\":1}\n";
const PREFIX: &str = ".parts-";
const SUFFIX: &str = ".pack";

/// True for a file name a pack writer makes.
fn is_pack(name: &str) -> bool {
    name.starts_with(PREFIX) && name.ends_with(SUFFIX)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    node: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    part: std::borrow::Cow<'a, str>,
    len: u64,
}

/// This process's pack of one run.
#[derive(Debug)]
pub(super) struct Writer {
    file: File,
    path: PathBuf,
    /// Bytes written and kept: where a failed append is cut back to.
    len: u64,
}

impl Writer {
    /// A new pack in `run_dir` (made if missing), named after this process so no other writer
    /// ever appends to it.
    pub(super) fn create(run_dir: &Path) -> Result<Writer> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(run_dir)
            .map_err(|e| StoreError::io("create directory", run_dir.display(), e))?;
        // A pack of an earlier process that had the same pid may be there: take the next name.
        let (mut file, path) = loop {
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = run_dir.join(format!("{PREFIX}{}-{n}{SUFFIX}", std::process::id()));
            match std::fs::OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
                Err(e) => return Err(StoreError::io("create", path.display(), e)),
            }
        };
        file.write_all(MAGIC)
            .map_err(|e| StoreError::io("write", path.display(), e))?;
        Ok(Writer {
            file,
            path,
            len: MAGIC.len() as u64,
        })
    }

    /// False once the pack was removed behind this writer's back (the run's logs deleted by
    /// hand or by another process): appending to it would lose the part.
    pub(super) fn is_linked(&self) -> bool {
        self.file.metadata().is_ok_and(|m| m.nlink() > 0)
    }

    /// Appends parts `(node, part, data)` in order as a single write, each a record of its own;
    /// on failure the file is cut back, so no torn record stays behind.
    pub(super) fn append_all(&mut self, parts: &[(&str, &str, impl AsRef<[u8]>)]) -> Result<()> {
        let mut rec = Vec::with_capacity(parts.iter().map(|(_, _, d)| d.as_ref().len() + 96).sum());
        for (node, part, data) in parts {
            let data = data.as_ref();
            let header = Header {
                node: (*node).into(),
                part: (*part).into(),
                len: data.len() as u64,
            };
            serde_json::to_writer(&mut rec, &header)
                .map_err(|e| StoreError::config(format!("encode a log pack header: {e}")))?;
            rec.push(b'\n');
            rec.extend_from_slice(data);
        }
        if let Err(e) = self.file.write_all(&rec) {
            let _ = self.file.set_len(self.len);
            return Err(StoreError::io("write", self.path.display(), e));
        }
        self.len += rec.len() as u64;
        Ok(())
    }
}

/// Where one packed part is.
#[derive(Debug, Clone)]
struct Slot {
    pack: usize,
    offset: u64,
    len: u64,
}

/// One pack as a reader knows it.
#[derive(Debug)]
struct Pack {
    path: PathBuf,
    /// Bytes indexed so far (`None`: not a pack this version reads).
    read_to: Option<u64>,
}

/// What a reader knows of one run's packs: how far each was read, and where each part is.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// The run's packs; a [`Slot`] names its pack by position here.
    packs: Vec<Pack>,
    parts: BTreeMap<(String, String), Slot>,
    /// The run directory's modification time when it was last listed.
    listed: Option<SystemTime>,
}

/// A directory unchanged for this long is not listed again: a pack made since would have
/// changed its time, and a change within the clock's granularity is older than this.
const SETTLED: Duration = Duration::from_secs(2);

impl Index {
    /// Indexes what was appended to the run's packs since the last look. The run directory is
    /// listed again only when it may hold a pack not seen yet; known packs are read on from where
    /// the last look stopped.
    pub(super) fn refresh(&mut self, run_dir: &Path) -> Result<()> {
        let mtime = match std::fs::metadata(run_dir) {
            Ok(m) => m.modified().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Deleted (by another process, maybe): nothing of it is left to read.
                *self = Index::default();
                return Ok(());
            }
            Err(e) => return Err(StoreError::io("read directory", run_dir.display(), e)),
        };
        let settled = mtime
            .is_some_and(|t| self.listed == Some(t) && t.elapsed().is_ok_and(|age| age > SETTLED));
        if !settled {
            let rd = std::fs::read_dir(run_dir)
                .map_err(|e| StoreError::io("read directory", run_dir.display(), e))?;
            let mut found: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| e.file_name().to_str().is_some_and(is_pack))
                .map(|e| e.path())
                .collect();
            found.sort();
            if self.packs.iter().any(|p| !found.contains(&p.path)) {
                // A pack went away (the run was deleted and written again): start over.
                *self = Index::default();
            }
            for path in found {
                if !self.packs.iter().any(|p| p.path == path) {
                    self.packs.push(Pack {
                        path,
                        read_to: Some(0),
                    });
                }
            }
            self.listed = mtime;
        }
        for i in 0..self.packs.len() {
            let Some(from) = self.packs[i].read_to else {
                continue;
            };
            if std::fs::metadata(&self.packs[i].path).is_ok_and(|m| m.len() > from) {
                self.packs[i].read_to = self.scan(i, from)?;
            }
        }
        Ok(())
    }

    /// Reads pack `pack` from `from` on and indexes every complete record; returns how far it
    /// got, or `None` for a file that does not start as a pack of this version.
    fn scan(&mut self, pack: usize, from: u64) -> Result<Option<u64>> {
        let path = &self.packs[pack].path;
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(from)),
            Err(e) => return Err(StoreError::io("open", path.display(), e)),
        };
        let mut buf = Vec::new();
        file.seek(SeekFrom::Start(from))
            .and_then(|_| file.read_to_end(&mut buf))
            .map_err(|e| StoreError::io("read", path.display(), e))?;
        let mut pos = 0;
        if from == 0 {
            if buf.len() < MAGIC.len() {
                // The writer has not finished its first line yet.
                return Ok(Some(0));
            }
            if !buf.starts_with(MAGIC) {
                return Ok(None);
            }
            pos = MAGIC.len();
        }
        let (records, used) = records(&buf[pos..]);
        for (node, part, start, len) in records {
            let offset = from + (pos + start) as u64;
            self.parts.insert((node, part), Slot { pack, offset, len });
        }
        Ok(Some(from + (pos + used) as u64))
    }

    /// `(node, part)` of every packed part, sorted.
    pub(super) fn parts(&self) -> impl Iterator<Item = &(String, String)> {
        self.parts.keys()
    }

    /// Names of one node's packed parts, sorted.
    pub(super) fn node_parts<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a String> {
        self.parts
            .range((node.to_string(), String::new())..)
            .take_while(move |((n, _), _)| n == node)
            .map(|((_, part), _)| part)
    }

    /// The bytes of one packed part, if the index has it.
    pub(super) fn read(&self, node: &str, part: &str) -> Result<Option<Vec<u8>>> {
        let Some(slot) = self.parts.get(&(node.to_string(), part.to_string())) else {
            return Ok(None);
        };
        let path = &self.packs[slot.pack].path;
        let mut out = vec![0; slot.len as usize];
        match File::open(path).and_then(|f| f.read_exact_at(&mut out, slot.offset)) {
            Ok(()) => Ok(Some(out)),
            // Deleted since it was indexed: reads as a part deleted since it was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", path.display(), e)),
        }
    }

    /// True when the index knows `(node, part)`.
    pub(super) fn has(&self, node: &str, part: &str) -> bool {
        self.parts
            .contains_key(&(node.to_string(), part.to_string()))
    }
}

/// The complete records at the start of `buf` as `(node, part, data start, data length)`, and
/// how many bytes they take. Parsing stops at the first record that is incomplete (still being
/// written) or unreadable (a header that is not one, an unsafe id): nothing after it is trusted.
fn records(buf: &[u8]) -> (Vec<(String, String, usize, u64)>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let Ok(h) = serde_json::from_slice::<Header>(&buf[pos..pos + nl]) else {
            break;
        };
        let start = pos + nl + 1;
        let Some(end) = usize::try_from(h.len)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= buf.len())
        else {
            break;
        };
        if validate_hierarchical(&h.node).is_err() || validate_part_name(&h.part).is_err() {
            break;
        }
        out.push((h.node.into_owned(), h.part.into_owned(), start, h.len));
        pos = end;
    }
    (out, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &str = "00000000000000000001-0000000001.ndjson";
    const P2: &str = "00000000000000000002-0000000002.ndjson";

    fn rec(node: &str, part: &str, data: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "{{\"node\":{node:?},\"part\":{part:?},\"len\":{}}}\n",
            data.len()
        )
        .into_bytes();
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn complete_records_are_read_and_a_torn_one_waits() {
        let mut buf = rec("build", P1, b"one\n");
        buf.extend(rec("deploy/eu", P2, b"two\nthree\n"));
        let whole = buf.len();
        let (got, used) = records(&buf);
        assert_eq!(used, whole);
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("deploy/eu", P2));
        assert_eq!(
            &buf[got[1].2..got[1].2 + got[1].3 as usize],
            b"two\nthree\n"
        );
        // Every cut short of the end reads as the records before it, never as a broken one.
        for cut in 0..whole {
            let (got, used) = records(&buf[..cut]);
            let first = rec("build", P1, b"one\n").len();
            assert_eq!(got.len(), usize::from(cut >= first), "cut {cut}");
            assert_eq!(used, if cut >= first { first } else { 0 }, "cut {cut}");
        }
    }

    #[test]
    fn a_bad_record_ends_the_pack() {
        for bad in [
            b"not json\n".to_vec(),
            rec("../x", P1, b"a\n"),
            rec("build", "x.ndjson", b"a\n"),
            b"{\"node\":\"a\",\"part\":\"p\",\"len\":18446744073709551615}\n".to_vec(),
        ] {
            let mut buf = rec("build", P1, b"one\n");
            let good = buf.len();
            buf.extend(&bad);
            buf.extend(rec("build", P2, b"two\n"));
            let (got, used) = records(&buf);
            assert_eq!(
                (got.len(), used),
                (1, good),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
    }
}
