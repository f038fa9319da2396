//! The hash-chained audit log. Each row stores the hash of the row before it and the hash
//! of its own canonical content chained to that: editing, deleting, reordering or inserting
//! a row breaks the chain at that row. Triggers refuse UPDATE and DELETE.
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Result, Store};
use crate::queue::{AuditEntry, Millis};

/// The newest row.
const HEAD_SQL: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

/// Size of the anchor file's one record (JSON padded with spaces).
const ANCHOR_RECORD: usize = 256;

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The newest row of the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// The hash of one row: SHA-256 over the previous hash, a newline, and the row's canonical
/// content: the JSON array `[seq, at, actor, request_id, kind, detail]` with `detail` as
/// its stored text (a JSON string).
pub fn canonical_hash(
    prev_hash: &str,
    seq: i64,
    at: Millis,
    actor: &str,
    request_id: Option<i64>,
    kind: &str,
    detail: &str,
) -> String {
    let mut h = RowHasher::default();
    hex(&h.digest(prev_hash, seq, at, actor, request_id, kind, detail))
}

/// Hashes rows with one reused buffer (verification walks millions of them).
#[derive(Default)]
pub(crate) struct RowHasher {
    buf: Vec<u8>,
}

impl RowHasher {
    #[allow(clippy::too_many_arguments)]
    pub fn digest(
        &mut self,
        prev_hash: &str,
        seq: i64,
        at: Millis,
        actor: &str,
        request_id: Option<i64>,
        kind: &str,
        detail: &str,
    ) -> [u8; 32] {
        use std::io::Write;
        let b = &mut self.buf;
        b.clear();
        let _ = write!(b, "[{seq},{at},");
        let _ = serde_json::to_writer(&mut *b, actor);
        match request_id {
            Some(id) => {
                let _ = write!(b, ",{id},");
            }
            None => b.extend_from_slice(b",null,"),
        }
        let _ = serde_json::to_writer(&mut *b, kind);
        b.push(b',');
        let _ = serde_json::to_writer(&mut *b, detail);
        b.push(b']');
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(b"\n");
        h.update(&*b);
        h.finalize().into()
    }
}

/// Lower-case hex of a digest into a fixed buffer (no allocation).
pub(crate) fn hex_into(bytes: &[u8; 32], out: &mut [u8; 64]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Appends audit rows inside a write transaction, keeping the chain head in memory.
pub(crate) struct AuditWriter {
    head: AuditHead,
}

impl AuditWriter {
    pub fn new(tx: &Transaction<'_>) -> Result<AuditWriter> {
        let head = tx
            .prepare_cached(HEAD_SQL)?
            .query_row([], |r| {
                Ok(AuditHead {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })
            .optional()?
            .unwrap_or(AuditHead {
                seq: 0,
                hash: GENESIS.to_string(),
            });
        Ok(AuditWriter { head })
    }

    /// The newest row, this transaction's appends included.
    pub fn head(&self) -> &AuditHead {
        &self.head
    }

    pub fn append(
        &mut self,
        tx: &Transaction<'_>,
        at: Millis,
        actor: &str,
        request_id: Option<i64>,
        kind: &str,
        detail: &impl serde::Serialize,
    ) -> Result<i64> {
        let seq = self.head.seq + 1;
        let detail = serde_json::to_string(detail).unwrap_or_else(|_| "null".into());
        let hash = canonical_hash(&self.head.hash, seq, at, actor, request_id, kind, &detail);
        tx.prepare_cached(
            "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            seq,
            at,
            actor,
            request_id,
            kind,
            detail,
            self.head.hash,
            hash
        ])?;
        self.head = AuditHead { seq, hash };
        Ok(seq)
    }
}

/// A text column, borrowed.
fn text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'a str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

const EDITED: &str = "its content does not match its hash: the row was edited";

/// A range of a batch's text buffer.
#[derive(Clone, Copy)]
struct Span(u32, u32);

/// One row queued for re-hashing; text lives in the batch's buffer.
struct RowRef {
    seq: i64,
    at: Millis,
    request_id: Option<i64>,
    actor: Span,
    kind: Span,
    detail: Span,
    prev: Span,
    hash: Span,
}

/// Rows handed to the hashing thread, their text in one buffer (no allocation per row).
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    rows: Vec<RowRef>,
}

impl Batch {
    fn cleared(mut self) -> Batch {
        self.buf.clear();
        self.rows.clear();
        self
    }

    fn add(&mut self, s: &str) -> Span {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(s.as_bytes());
        Span(start, self.buf.len() as u32)
    }

    fn push(&mut self, r: RowRef) {
        self.rows.push(r);
    }

    fn bytes(&self, s: Span) -> &[u8] {
        &self.buf[s.0 as usize..s.1 as usize]
    }

    fn text(&self, s: Span) -> &str {
        // Copied from &str, so always UTF-8.
        std::str::from_utf8(self.bytes(s)).unwrap_or_default()
    }
}

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub head: Option<AuditHead>,
    /// The first broken link: its sequence number and what is wrong.
    pub broken: Option<(i64, String)>,
}

/// The chain head recorded outside the database, so truncating the table or rewriting
/// the whole chain is noticed too.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    pub at: Millis,
}

/// Where the anchor of a database lives: beside it (`queue.db` → `queue.db.anchor`; the
/// default database is in the data dir).
pub fn anchor_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".anchor");
    db.with_file_name(name)
}

pub fn read_anchor(db: &std::path::Path) -> Option<Anchor> {
    let text = std::fs::read_to_string(anchor_path(db)).ok()?;
    serde_json::from_str(&text).ok()
}

impl Store {
    /// Records the current chain head in the anchor file: one fixed-size record
    /// overwritten in place (a single small write, no temp file or rename, so it is cheap
    /// enough for every decision). Several processes may write it; the last one wins, and
    /// an anchor a little behind the head still pins everything up to it.
    pub fn write_anchor(&self) -> Result<()> {
        let head: Option<AuditHead> = self
            .conn
            .prepare_cached(HEAD_SQL)?
            .query_row([], |r| {
                Ok(AuditHead {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })
            .optional()?;
        match head {
            Some(head) => self.write_anchor_head(head),
            None => Ok(()),
        }
    }

    /// Records `head` (the head a committed transaction of this store ended on).
    pub(crate) fn write_anchor_head(&self, head: AuditHead) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let AuditHead { seq, hash } = head;
        if self.anchored_seq.get() >= seq {
            return Ok(());
        }
        let io = |e: std::io::Error| {
            super::StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        let mut file = self.anchor_file.borrow_mut();
        if file.is_none() {
            *file = Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(anchor_path(&self.path))
                    .map_err(io)?,
            );
        }
        let anchor = Anchor {
            seq,
            hash,
            at: self.now(),
        };
        let mut record = serde_json::to_vec(&anchor).unwrap_or_default();
        record.resize(ANCHOR_RECORD - 1, b' ');
        record.push(b'\n');
        if let Some(f) = file.as_ref() {
            f.write_all_at(&record, 0).map_err(io)?;
        }
        self.anchored_seq.set(seq);
        Ok(())
    }

    /// Verifies the chain and then checks it against the anchor file.
    pub fn verify_audit_anchored(&self, progress: impl FnMut(u64)) -> Result<VerifyReport> {
        let mut report = self.verify_audit(progress)?;
        if report.broken.is_some() {
            return Ok(report);
        }
        let Some(anchor) = read_anchor(&self.path) else {
            return Ok(report);
        };
        let head_seq = report.head.as_ref().map_or(0, |h| h.seq);
        if head_seq < anchor.seq {
            report.broken = Some((
                head_seq + 1,
                format!(
                    "missing: the log ends at entry {head_seq} but the anchor file records entry {}; the tail was removed",
                    anchor.seq
                ),
            ));
            return Ok(report);
        }
        let hash: Option<String> = self
            .conn
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [anchor.seq], |r| {
                r.get(0)
            })
            .optional()?;
        if hash.as_deref() != Some(anchor.hash.as_str()) {
            report.broken = Some((
                anchor.seq,
                "its hash differs from the one in the anchor file: the chain was rewritten at or before this entry".into(),
            ));
        }
        Ok(report)
    }

    /// Appends one audit row in its own transaction (events outside a decision).
    pub fn audit_event(
        &mut self,
        actor: &str,
        request_id: Option<i64>,
        kind: &str,
        detail: &Value,
    ) -> Result<i64> {
        self.write(|tx, now, _| {
            let mut w = AuditWriter::new(tx)?;
            w.append(tx, now, actor, request_id, kind, detail)
        })
    }

    /// An item's audit entries, oldest first.
    pub fn timeline(&self, request_id: i64) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, at, actor, request_id, kind, detail FROM audit
             WHERE request_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([request_id], |r| {
            let detail: String = r.get(5)?;
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                request_id: r.get(3)?,
                kind: r.get(4)?,
                detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Walks the whole chain in sequence order and reports the first broken link.
    /// `progress` is called with the number of rows checked so far, every 64k rows.
    ///
    /// Two threads: this one reads rows and checks the links (sequence numbers and each
    /// row's previous-hash against the row before), a second re-hashes each row's content
    /// against its stored hash. Together that is the sequential walk; the first broken
    /// entry is the lower of the two findings.
    pub fn verify_audit(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
        const BATCH: usize = 4096;
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, actor, request_id, kind, detail, prev_hash, hash FROM audit ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        let (to_worker, batches) = std::sync::mpsc::sync_channel::<Batch>(4);
        let (recycle, spare) = std::sync::mpsc::channel::<Batch>();
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || -> Option<i64> {
                let mut hasher = RowHasher::default();
                let mut computed = [0u8; 64];
                for batch in batches {
                    for r in &batch.rows {
                        let digest = hasher.digest(
                            batch.text(r.prev),
                            r.seq,
                            r.at,
                            batch.text(r.actor),
                            r.request_id,
                            batch.text(r.kind),
                            batch.text(r.detail),
                        );
                        hex_into(&digest, &mut computed);
                        if batch.bytes(r.hash) != computed {
                            return Some(r.seq);
                        }
                    }
                    let _ = recycle.send(batch);
                }
                None
            });

            let mut prev_seq = 0i64;
            let mut prev_hash = [0u8; 64];
            prev_hash.copy_from_slice(GENESIS.as_bytes());
            let mut n = 0u64;
            let mut link_break: Option<(i64, String)> = None;
            let mut batch = Batch::default();
            let mut read_error = None;
            loop {
                let r = match rows.next() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => {
                        read_error = Some(e);
                        break;
                    }
                };
                let res = (|| -> rusqlite::Result<Option<(i64, String)>> {
                    let seq: i64 = r.get(0)?;
                    if seq != prev_seq + 1 {
                        return Ok(Some((
                            prev_seq + 1,
                            format!(
                                "missing: the log jumps from entry {prev_seq} to {seq}; entries were deleted"
                            ),
                        )));
                    }
                    let row_prev = text(r, 6)?;
                    if row_prev.as_bytes() != prev_hash {
                        return Ok(Some((
                            seq,
                            "its previous-hash does not match the row before it: a row was deleted, inserted or swapped".into(),
                        )));
                    }
                    let hash = text(r, 7)?;
                    let row = RowRef {
                        seq,
                        at: r.get(1)?,
                        request_id: r.get(3)?,
                        actor: batch.add(text(r, 2)?),
                        kind: batch.add(text(r, 4)?),
                        detail: batch.add(text(r, 5)?),
                        prev: batch.add(row_prev),
                        hash: batch.add(hash),
                    };
                    batch.push(row);
                    prev_seq = seq;
                    if hash.len() == 64 {
                        prev_hash.copy_from_slice(hash.as_bytes());
                    } else {
                        prev_hash = [b'?'; 64];
                    }
                    Ok(None)
                })();
                match res {
                    Ok(None) => {}
                    Ok(Some(b)) => {
                        link_break = Some(b);
                        break;
                    }
                    Err(e) => {
                        read_error = Some(e);
                        break;
                    }
                }
                n += 1;
                if batch.rows.len() == BATCH {
                    let next = spare.try_recv().map(Batch::cleared).unwrap_or_default();
                    if to_worker.send(std::mem::replace(&mut batch, next)).is_err() {
                        break; // the worker found a broken row and stopped
                    }
                }
                if n.is_multiple_of(65_536) {
                    progress(n);
                }
            }
            let _ = to_worker.send(batch);
            drop(to_worker);
            let content_break = worker.join().unwrap_or(None);
            if let Some(e) = read_error {
                return Err(e.into());
            }
            let broken = match (link_break, content_break) {
                (Some(l), Some(c)) if c < l.0 => Some((c, EDITED.to_string())),
                (Some(l), _) => Some(l),
                (None, Some(c)) => Some((c, EDITED.to_string())),
                (None, None) => None,
            };
            let head = (prev_seq > 0 && broken.is_none()).then(|| AuditHead {
                seq: prev_seq,
                hash: String::from_utf8_lossy(&prev_hash).into_owned(),
            });
            Ok(VerifyReport {
                entries: n,
                head,
                broken,
            })
        })
    }
}
