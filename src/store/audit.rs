//! The hash-chained audit log. Each row stores the hash of the row before it and the hash
//! of its own canonical content chained to that: editing, deleting, reordering or inserting
//! a row breaks the chain at that row. Triggers refuse UPDATE and DELETE.
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Result, Store};
use crate::queue::{AuditEntry, Millis};

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The newest row of the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// The hash of one row: SHA-256 over the previous hash and the row's canonical content
/// (a JSON array of its fields, `detail` as stored text).
pub fn canonical_hash(
    prev_hash: &str,
    seq: i64,
    at: Millis,
    actor: &str,
    request_id: Option<i64>,
    kind: &str,
    detail: &str,
) -> String {
    let content = serde_json::json!([seq, at, actor, request_id, kind, detail]).to_string();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(content.as_bytes());
    hex(&h.finalize())
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
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(AuditHead {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()?
            .unwrap_or(AuditHead {
                seq: 0,
                hash: GENESIS.to_string(),
            });
        Ok(AuditWriter { head })
    }

    pub fn append(
        &mut self,
        tx: &Transaction<'_>,
        at: Millis,
        actor: &str,
        request_id: Option<i64>,
        kind: &str,
        detail: &Value,
    ) -> Result<i64> {
        let seq = self.head.seq + 1;
        let detail = detail.to_string();
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

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub head: Option<AuditHead>,
    /// The first broken link: its sequence number and what is wrong.
    pub broken: Option<(i64, String)>,
}

impl Store {
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
    pub fn verify_audit(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, actor, request_id, kind, detail, prev_hash, hash FROM audit ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut prev = AuditHead {
            seq: 0,
            hash: GENESIS.to_string(),
        };
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let at: i64 = r.get(1)?;
            let actor: String = r.get(2)?;
            let request_id: Option<i64> = r.get(3)?;
            let kind: String = r.get(4)?;
            let detail: String = r.get(5)?;
            let prev_hash: String = r.get(6)?;
            let hash: String = r.get(7)?;
            n += 1;
            let broken = |why: String| VerifyReport {
                entries: n,
                head: Some(prev.clone()),
                broken: Some((seq, why)),
            };
            if seq != prev.seq + 1 {
                return Ok(broken(format!(
                    "sequence jumps from {} to {seq}: rows are missing or were reordered",
                    prev.seq
                )));
            }
            if prev_hash != prev.hash {
                return Ok(broken(
                    "its previous-hash does not match the row before it: a row was deleted, inserted or swapped".into(),
                ));
            }
            let expect = canonical_hash(&prev_hash, seq, at, &actor, request_id, &kind, &detail);
            if expect != hash {
                return Ok(broken(
                    "its content does not match its hash: the row was edited".into(),
                ));
            }
            prev = AuditHead { seq, hash };
            if n.is_multiple_of(65_536) {
                progress(n);
            }
        }
        Ok(VerifyReport {
            entries: n,
            head: (n > 0).then_some(prev),
            broken: None,
        })
    }
}
