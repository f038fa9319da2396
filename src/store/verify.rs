//! Verifying the audit log: the chain walk (sequence, links, content hashes, MACs) that a
//! writer runs over rows past the anchor, or over everything when the schema changed, and
//! `signoff audit verify` runs in full with the key and anchor checks and a cross-check of
//! the decisions and outbox tables against the log.
use rusqlite::{Connection, OptionalExtension};

use super::anchor::{self, AnchorFile, AuditKey};
use super::audit::{AuditHead, GENESIS, RowHasher, hex_into, read_head};
use super::{Result, Store};
use crate::queue::Millis;

/// A text column, borrowed.
fn text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'a str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

const EDITED: &str = "its content does not match its hash: the row was edited";
const NO_MAC: &str = "it has no MAC: it was added without the audit key (or the log did not verify when it was keyed at migration)";
const BAD_MAC: &str = "its MAC does not match: it was written or rewritten without the audit key";

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
    os_user: Option<Span>,
    mac: Option<Span>,
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

/// Re-hashes rows and checks their MACs.
struct RowCheck {
    hasher: RowHasher,
    computed: [u8; 64],
    key: Option<AuditKey>,
}

impl RowCheck {
    fn new(key: Option<AuditKey>) -> RowCheck {
        RowCheck {
            hasher: RowHasher::default(),
            computed: [0u8; 64],
            key,
        }
    }

    /// The first row of the batch whose content or MAC is wrong.
    fn batch(&mut self, batch: &Batch) -> Option<(i64, &'static str)> {
        for r in &batch.rows {
            let digest = self.hasher.digest(
                batch.text(r.prev),
                r.seq,
                r.at,
                batch.text(r.actor),
                r.request_id,
                batch.text(r.kind),
                batch.text(r.detail),
                r.os_user.map(|s| batch.text(s)),
            );
            hex_into(&digest, &mut self.computed);
            if batch.bytes(r.hash) != self.computed {
                return Some((r.seq, EDITED));
            }
            if let Some(key) = &self.key {
                match r.mac {
                    None => return Some((r.seq, NO_MAC)),
                    Some(m) if !key.row_mac_ok(&self.computed, batch.bytes(m)) => {
                        return Some((r.seq, BAD_MAC));
                    }
                    Some(_) => {}
                }
            }
        }
        None
    }
}

/// The outcome of verifying the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub head: Option<AuditHead>,
    /// The first broken link: its sequence number and what is wrong.
    pub broken: Option<(i64, String)>,
    /// Decisions and outbox rows the log does not account for, one line each.
    pub unaccounted: Vec<String>,
    /// What the verdict rests on: the key, the anchor, entries keyed at a migration.
    pub notes: Vec<String>,
    /// Entries that record the log being keyed at a migration (`audit_keyed`).
    #[serde(skip)]
    pub keyed_at: Vec<i64>,
}

/// What `verify` requires.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Require the key and the anchor (`--no-anchor` turns this off: the hash chain is
    /// checked, and MACs when the key is there).
    pub anchor: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { anchor: true }
    }
}

/// One audit row as read from a database, its text borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AuditRowRef<'a> {
    pub seq: i64,
    pub at: Millis,
    pub actor: &'a str,
    pub request_id: Option<i64>,
    pub kind: &'a str,
    pub detail: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
    pub os_user: Option<&'a str>,
    pub mac: Option<&'a str>,
}

/// Rows re-hashed together on the hashing thread.
const WALK_BATCH: usize = 4096;

/// The chain walk over rows fed in sequence order, from any database: this side checks the
/// links (sequence numbers and each row's previous-hash against the row before), a second
/// thread, started with the first full batch, re-hashes each row's content against its
/// stored hash and checks its MAC. Together that is the sequential walk; the first broken
/// entry is the lower of the two findings. A short walk (the rows past the anchor that a
/// writer checks) runs on the caller's thread alone.
pub(crate) struct ChainWalk {
    key: Option<AuditKey>,
    prev_seq: i64,
    prev_hash: [u8; 64],
    entries: u64,
    link_break: Option<(i64, String)>,
    keyed_at: Vec<i64>,
    batch: Batch,
    worker: Option<std::thread::JoinHandle<Option<(i64, &'static str)>>>,
    to_worker: Option<std::sync::mpsc::SyncSender<Batch>>,
    recycle: std::sync::mpsc::Sender<Batch>,
    spare: std::sync::mpsc::Receiver<Batch>,
    stopped: bool,
}

impl ChainWalk {
    /// A walk of the rows after entry `from_seq`, whose hash is `from_hash` (0 and the
    /// genesis hash for all of them); with a key, every row's MAC is checked too.
    pub fn new(from_seq: i64, from_hash: &str, key: Option<&AuditKey>) -> ChainWalk {
        let mut prev_hash = [b'?'; 64];
        if from_hash.len() == 64 {
            prev_hash.copy_from_slice(from_hash.as_bytes());
        }
        let (recycle, spare) = std::sync::mpsc::channel::<Batch>();
        ChainWalk {
            key: key.cloned(),
            prev_seq: from_seq,
            prev_hash,
            entries: 0,
            link_break: None,
            keyed_at: Vec::new(),
            batch: Batch::default(),
            worker: None,
            to_worker: None,
            recycle,
            spare,
            stopped: false,
        }
    }

    /// Rows taken so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Takes the next row; false once the walk has found a break (the rest need not be read).
    pub fn push(&mut self, r: AuditRowRef<'_>) -> bool {
        if self.stopped {
            return false;
        }
        if r.seq != self.prev_seq + 1 {
            let prev_seq = self.prev_seq;
            self.link_break = Some((
                prev_seq + 1,
                format!(
                    "missing: the log jumps from entry {prev_seq} to {}; entries were deleted",
                    r.seq
                ),
            ));
            self.stopped = true;
            return false;
        }
        if r.prev_hash.as_bytes() != self.prev_hash {
            self.link_break = Some((
                r.seq,
                "its previous-hash does not match the row before it: a row was deleted, inserted or swapped".into(),
            ));
            self.stopped = true;
            return false;
        }
        if r.kind == super::schema::KEYED_KIND {
            self.keyed_at.push(r.seq);
        }
        let b = &mut self.batch;
        let row = RowRef {
            seq: r.seq,
            at: r.at,
            request_id: r.request_id,
            actor: b.add(r.actor),
            kind: b.add(r.kind),
            detail: b.add(r.detail),
            prev: b.add(r.prev_hash),
            hash: b.add(r.hash),
            os_user: r.os_user.map(|u| b.add(u)),
            mac: r.mac.map(|m| b.add(m)),
        };
        b.push(row);
        self.prev_seq = r.seq;
        if r.hash.len() == 64 {
            self.prev_hash.copy_from_slice(r.hash.as_bytes());
        } else {
            self.prev_hash = [b'?'; 64];
        }
        self.entries += 1;
        if self.batch.rows.len() == WALK_BATCH {
            let sender = self.to_worker.get_or_insert_with(|| {
                let (tx, batches) = std::sync::mpsc::sync_channel::<Batch>(4);
                let (key, recycle) = (self.key.clone(), self.recycle.clone());
                self.worker = Some(std::thread::spawn(move || {
                    let mut check = RowCheck::new(key);
                    for batch in batches {
                        if let Some(b) = check.batch(&batch) {
                            return Some(b);
                        }
                        let _ = recycle.send(batch);
                    }
                    None
                }));
                tx
            });
            let next = self
                .spare
                .try_recv()
                .map(Batch::cleared)
                .unwrap_or_default();
            if sender
                .send(std::mem::replace(&mut self.batch, next))
                .is_err()
            {
                // The worker found a broken row and stopped.
                self.stopped = true;
                return false;
            }
        }
        true
    }

    /// The verdict on the rows taken.
    pub fn finish(mut self) -> VerifyReport {
        let batch = std::mem::take(&mut self.batch);
        let content_break = match (self.to_worker.take(), self.worker.take()) {
            (Some(sender), Some(worker)) => {
                let _ = sender.send(batch);
                drop(sender);
                worker.join().unwrap_or(None)
            }
            _ => RowCheck::new(self.key.clone()).batch(&batch),
        };
        let broken = match (self.link_break.take(), content_break) {
            (Some(l), Some(c)) if c.0 < l.0 => Some((c.0, c.1.to_string())),
            (Some(l), _) => Some(l),
            (None, Some(c)) => Some((c.0, c.1.to_string())),
            (None, None) => None,
        };
        let head = (self.prev_seq > 0 && broken.is_none()).then(|| AuditHead {
            seq: self.prev_seq,
            hash: String::from_utf8_lossy(&self.prev_hash).into_owned(),
        });
        VerifyReport {
            entries: self.entries,
            head,
            broken,
            keyed_at: std::mem::take(&mut self.keyed_at),
            ..VerifyReport::default()
        }
    }
}

/// Walks the chain after entry `from_seq` (whose hash is `from_hash`; 0 and the genesis
/// hash for all of it) in sequence order and reports the first broken entry. With a key,
/// every row's MAC is checked too. `progress` is called every 64k rows.
pub(crate) fn walk(
    conn: &Connection,
    from_seq: i64,
    from_hash: &str,
    key: Option<&AuditKey>,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac
         FROM audit WHERE seq > ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([from_seq])?;
    let mut chain = ChainWalk::new(from_seq, from_hash, key);
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
        let res = (|| -> rusqlite::Result<bool> {
            let os_user = match r.get_ref(8)? {
                rusqlite::types::ValueRef::Null => None,
                _ => Some(text(r, 8)?),
            };
            let mac = match r.get_ref(9)? {
                rusqlite::types::ValueRef::Null => None,
                _ => Some(text(r, 9)?),
            };
            Ok(chain.push(AuditRowRef {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: text(r, 2)?,
                request_id: r.get(3)?,
                kind: text(r, 4)?,
                detail: text(r, 5)?,
                prev_hash: text(r, 6)?,
                hash: text(r, 7)?,
                os_user,
                mac,
            }))
        })();
        match res {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        if chain.entries().is_multiple_of(65_536) {
            progress(chain.entries());
        }
    }
    let report = chain.finish();
    if let Some(e) = read_error {
        return Err(e.into());
    }
    Ok(report)
}

/// Lists at most this many unaccounted rows of each kind.
pub(crate) const UNACCOUNTED_SHOWN: usize = 20;

/// The line after the first [`UNACCOUNTED_SHOWN`] of `n` unaccounted rows of one kind.
pub(crate) fn more_like_it(n: usize) -> Option<String> {
    (n > UNACCOUNTED_SHOWN).then(|| format!("… and {} more like it", n - UNACCOUNTED_SHOWN))
}

pub(crate) fn unaccounted_decision(id: i64, request_id: i64, kind: &str, reviewer: &str) -> String {
    format!(
        "decision {id} (item {request_id}, {kind} by {}) has no matching `decided` entry in the audit log",
        crate::text::sanitize(reviewer)
    )
}

pub(crate) fn unaccounted_undo(id: i64, request_id: i64) -> String {
    format!(
        "decision {id} (item {request_id}) is marked taken back, but the audit log has no `undone` entry for it"
    )
}

pub(crate) fn unaccounted_outbox(
    id: i64,
    request_id: i64,
    action: &str,
    key: &str,
    decision_id: i64,
) -> String {
    format!(
        "outbox row {id} (item {request_id}, {} action, key {}) is not among the actions of decision {decision_id}'s `decided` entry in the audit log",
        crate::text::sanitize(action),
        crate::text::sanitize(key),
    )
}

/// The note on an `audit_keyed` entry (`detail` is its stored detail).
pub(crate) fn keyed_note(seq: i64, detail: Option<&str>) -> String {
    let through = detail
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|d| d["keyed_through"].as_i64())
        .unwrap_or(0);
    format!(
        "entry {seq} records that the log was keyed when it was migrated: entries 1–{through} were MAC'd then, so their MACs show only that nothing changed after that"
    )
}

/// Decisions and outbox rows that no audit entry accounts for.
fn cross_check(conn: &Connection) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut collect =
        |sql: &str, what: &dyn Fn(&rusqlite::Row<'_>) -> rusqlite::Result<String>| -> Result<()> {
            let mut stmt = conn.prepare(sql)?;
            let mut rows = stmt.query([])?;
            let mut n = 0usize;
            while let Some(r) = rows.next()? {
                if n < UNACCOUNTED_SHOWN {
                    out.push(what(r)?);
                }
                n += 1;
            }
            if let Some(more) = more_like_it(n) {
                out.push(more);
            }
            Ok(())
        };
    collect(
        "SELECT d.id, d.request_id, d.kind, d.reviewer FROM decisions d
         WHERE NOT EXISTS (
            SELECT 1 FROM audit a WHERE a.request_id = d.request_id AND a.kind = 'decided'
              AND json_extract(a.detail, '$.decision_id') = d.id
              AND json_extract(a.detail, '$.decision') = d.kind
              AND a.actor = d.reviewer)
         ORDER BY d.id",
        &|r| {
            Ok(unaccounted_decision(
                r.get(0)?,
                r.get(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
            ))
        },
    )?;
    collect(
        "SELECT d.id, d.request_id FROM decisions d
         WHERE d.undone_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM audit a WHERE a.request_id = d.request_id AND a.kind = 'undone'
              AND json_extract(a.detail, '$.decision_id') = d.id)
         ORDER BY d.id",
        &|r| Ok(unaccounted_undo(r.get(0)?, r.get(1)?)),
    )?;
    collect(
        "SELECT o.id, o.request_id, o.action, o.idempotency_key, o.decision_id FROM outbox o
         WHERE NOT EXISTS (
            SELECT 1 FROM audit a, json_each(a.detail, '$.actions') j
            WHERE a.request_id = o.request_id AND a.kind = 'decided'
              AND json_extract(a.detail, '$.decision_id') = o.decision_id
              AND j.value = o.idempotency_key)
         ORDER BY o.id",
        &|r| {
            Ok(unaccounted_outbox(
                r.get(0)?,
                r.get(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                r.get(4)?,
            ))
        },
    )?;
    Ok(out)
}

impl Store {
    /// Verifies the whole log: the chain, every row's MAC with the key, the head against
    /// the anchor, and the decisions and outbox tables against the log.
    pub fn verify_audit(&self, progress: impl FnMut(u64)) -> Result<VerifyReport> {
        self.verify_audit_with(&VerifyOptions::default(), progress)
    }

    /// [`Store::verify_audit`] with options (`--no-anchor`).
    pub fn verify_audit_with(
        &self,
        opts: &VerifyOptions,
        progress: impl FnMut(u64),
    ) -> Result<VerifyReport> {
        let key_path = anchor::key_path(&self.path);
        let anchor_path = anchor::anchor_path(&self.path);
        // The anchor is read before the snapshot the walk reads: a writer moves it only
        // after its commit, so the snapshot holds at least the anchored entry.
        let anchor_file = anchor::read_anchor_file(&anchor_path);
        let tx = self.conn.unchecked_transaction()?;
        let last = read_head(&tx)?;
        let (key, key_problem) = match AuditKey::load(&key_path) {
            Ok(k) => (Some(k), None),
            Err(p) => (None, Some(p.describe(&key_path))),
        };
        let mut report = walk(&tx, 0, GENESIS, key.as_ref(), progress)?;
        let earliest = |report: &mut VerifyReport, seq: i64, why: String| {
            if report.broken.as_ref().is_none_or(|b| seq < b.0) {
                report.broken = Some((seq, why));
                report.head = None;
            }
        };
        match (&key_problem, last.seq > 0) {
            (Some(why), true) if opts.anchor => earliest(
                &mut report,
                1,
                format!(
                    "{why}: no entry's MAC can be checked; restore the key from a backup, or run `signoff audit verify --no-anchor` to check the hash chain alone"
                ),
            ),
            (Some(why), true) => report
                .notes
                .push(format!("{why}: MACs not checked (--no-anchor)")),
            (None, true) => report.notes.push(format!(
                "every entry's MAC checked with {}",
                key_path.display()
            )),
            _ => {}
        }
        if !opts.anchor {
            report
                .notes
                .push("the anchor file was not checked (--no-anchor)".into());
        } else if report.broken.is_none()
            && let Some(key) = &key
        {
            let found = match anchor_file {
                Ok(f) => f,
                Err(e) => AnchorFile::Garbled(format!("it cannot be read: {e}")),
            };
            let shown = anchor_path.display();
            let head = last.seq;
            match found {
                AnchorFile::Missing if head == 0 => {}
                AnchorFile::Missing => earliest(
                    &mut report,
                    head,
                    format!(
                        "the anchor file {shown} is missing: nothing outside the database pins the log's head (entry {head}), so entries removed from the end would not show; `signoff audit verify --no-anchor` checks the rest"
                    ),
                ),
                AnchorFile::Garbled(why) => earliest(
                    &mut report,
                    head.max(1),
                    format!("the anchor file {shown} cannot be read as an anchor: {why}"),
                ),
                AnchorFile::Found(a) if a.v < 2 => earliest(
                    &mut report,
                    head.max(1),
                    format!(
                        "the anchor file {shown} is not keyed: it was written before the audit key existed"
                    ),
                ),
                AnchorFile::Found(a) => {
                    if !key.anchor_ok(&a) {
                        earliest(
                            &mut report,
                            a.seq.clamp(1, head.max(1)),
                            format!(
                                "the anchor file {shown} (recording entry {}) was not written with the audit key",
                                a.seq
                            ),
                        );
                    } else if a.seq > head {
                        earliest(
                            &mut report,
                            head + 1,
                            format!(
                                "missing: the log ends at entry {head} but the anchor file records entry {}; the tail was removed (or lost in a power cut under store.durability = \"normal\")",
                                a.seq
                            ),
                        );
                    } else {
                        let hash: Option<String> = tx
                            .query_row("SELECT hash FROM audit WHERE seq = ?1", [a.seq], |r| {
                                r.get(0)
                            })
                            .optional()?;
                        let expected = if a.seq == 0 {
                            Some(GENESIS.to_string())
                        } else {
                            hash
                        };
                        if expected.as_deref() != Some(a.hash.as_str()) {
                            earliest(
                                &mut report,
                                a.seq,
                                "its hash differs from the one in the anchor file: the chain was rewritten at or before this entry".into(),
                            );
                        } else if a.seq < head {
                            report.notes.push(format!(
                                "the anchor file records entry {}; entries {}–{head} follow it, chained and MAC'd (a writer stopped before moving the anchor)",
                                a.seq,
                                a.seq + 1
                            ));
                        } else {
                            report
                                .notes
                                .push(format!("anchored at entry {head} ({shown})"));
                        }
                    }
                }
            }
        }
        for seq in std::mem::take(&mut report.keyed_at) {
            let detail: Option<String> = tx
                .query_row("SELECT detail FROM audit WHERE seq = ?1", [seq], |r| {
                    r.get(0)
                })
                .optional()?;
            report.notes.push(keyed_note(seq, detail.as_deref()));
        }
        report.unaccounted = cross_check(&tx)?;
        drop(tx);
        Ok(report)
    }
}
