//! The hash-chained, keyed audit log. Each row stores the hash of the row before it and
//! the hash of its own canonical content chained to that: editing, deleting, reordering or
//! inserting a row breaks the chain at that row. Each row also stores a MAC of its hash
//! under a key kept outside the database (`anchor`), so a row chained correctly but made
//! without the key is found too. Triggers refuse UPDATE and DELETE.
//!
//! Every row records the Unix user of the process that wrote it (`os_user`) beside the
//! name it acted under (`actor`).
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::anchor::{AuditKey, AuditState};
use super::{Result, Store};
use crate::queue::{AuditEntry, Millis};

/// The newest row.
pub(crate) const HEAD_SQL: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The newest row of the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// The hash of one row: SHA-256 over the previous hash, a newline, and the row's canonical
/// content: the JSON array `[seq, at, actor, request_id, kind, detail, os_user]` with
/// `detail` as its stored text (a JSON string). Rows written before the OS user was
/// recorded (`os_user` NULL) leave the last element out, as they were hashed then.
#[allow(clippy::too_many_arguments)]
pub fn canonical_hash(
    prev_hash: &str,
    seq: i64,
    at: Millis,
    actor: &str,
    request_id: Option<i64>,
    kind: &str,
    detail: &str,
    os_user: Option<&str>,
) -> String {
    let mut h = RowHasher::default();
    hex(&h.digest(prev_hash, seq, at, actor, request_id, kind, detail, os_user))
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
        os_user: Option<&str>,
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
        if let Some(u) = os_user {
            b.push(b',');
            let _ = serde_json::to_writer(&mut *b, u);
        }
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

/// The chain's newest row as a transaction sees it (seq 0 and the genesis hash when empty).
pub(crate) fn read_head(tx: &rusqlite::Connection) -> Result<AuditHead> {
    Ok(tx
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
        }))
}

/// The schema cookie (`PRAGMA schema_version`): changes with every schema change.
pub(crate) fn schema_cookie(tx: &rusqlite::Connection) -> Result<i64> {
    Ok(tx
        .prepare_cached("PRAGMA schema_version")?
        .query_row([], |r| r.get(0))?)
}

/// Appends audit rows inside a write transaction. The first append reads the chain's head
/// and checks it against the anchor ([`AuditState::check`]); a transaction that appends
/// nothing touches neither.
pub(crate) struct AuditWriter<'a> {
    state: &'a AuditState,
    os_user: &'a str,
    /// Another Unix user the rows are written for (one decision of a batch).
    acting: Option<String>,
    started: Option<Started>,
}

struct Started {
    head: AuditHead,
    first_seq: i64,
    schema: i64,
    key: AuditKey,
    hasher: RowHasher,
}

impl<'a> AuditWriter<'a> {
    pub fn new(state: &'a AuditState, os_user: &'a str) -> AuditWriter<'a> {
        AuditWriter {
            state,
            os_user,
            acting: None,
            started: None,
        }
    }

    /// Records `user` instead of the store's Unix user on the rows appended from now on
    /// (`None`: the store's again). Group commit sets it per decision.
    pub fn act_as(&mut self, user: Option<String>) {
        self.acting = user;
    }

    /// The head this transaction ended on and the schema cookie, when it appended.
    pub fn appended(&self) -> Option<(AuditHead, i64)> {
        self.started
            .as_ref()
            .filter(|s| s.head.seq >= s.first_seq)
            .map(|s| (s.head.clone(), s.schema))
    }

    /// Reads the chain's head and checks it against the anchor, once per transaction.
    fn start(&mut self, tx: &Transaction<'_>) -> Result<()> {
        if self.started.is_none() {
            let head = read_head(tx)?;
            let schema = schema_cookie(tx)?;
            let key = self.state.check(tx, &head, schema)?;
            self.started = Some(Started {
                first_seq: head.seq + 1,
                head,
                schema,
                key,
                hasher: RowHasher::default(),
            });
        }
        Ok(())
    }

    /// The head as it stands in this transaction, before a savepoint whose rows may be
    /// rolled back ([`AuditWriter::rewind`]).
    pub fn mark(&mut self, tx: &Transaction<'_>) -> Result<AuditHead> {
        self.start(tx)?;
        Ok(self
            .started
            .as_ref()
            .map(|s| s.head.clone())
            .unwrap_or_else(|| AuditHead {
                seq: 0,
                hash: String::new(),
            }))
    }

    /// Returns to a marked head after its savepoint was rolled back, so the next row
    /// links to the last one that is still there.
    pub fn rewind(&mut self, head: AuditHead) {
        if let Some(s) = self.started.as_mut() {
            s.head = head;
        }
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
        self.start(tx)?;
        let Some(s) = self.started.as_mut() else {
            return Ok(0);
        };
        let seq = s.head.seq + 1;
        let detail = serde_json::to_string(detail).unwrap_or_else(|_| "null".into());
        let os_user = Some(self.acting.as_deref().unwrap_or(self.os_user));
        let hash = hex(&s.hasher.digest(
            &s.head.hash,
            seq,
            at,
            actor,
            request_id,
            kind,
            &detail,
            os_user,
        ));
        let mac = s.key.row_mac(&hash);
        tx.prepare_cached(
            "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            seq,
            at,
            actor,
            request_id,
            kind,
            detail,
            s.head.hash,
            hash,
            os_user,
            mac
        ])?;
        s.head = AuditHead { seq, hash };
        Ok(seq)
    }
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
        self.write_audited(|tx, now, _, audit| {
            audit.append(tx, now, actor, request_id, kind, detail)
        })
    }

    /// An item's audit entries, oldest first.
    pub fn timeline(&self, request_id: i64) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, at, actor, request_id, kind, detail, os_user FROM audit
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
                os_user: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
