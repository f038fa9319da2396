//! `signoff audit verify` on PostgreSQL: the chain walk of the SQLite store (links, content
//! hashes, every MAC with the audit key), the `audit_head` row (its MAC, and that it names
//! the last entry), and the decisions and outbox tables against the log. One repeatable-read
//! snapshot; the log is read through a portal, a page at a time.
use deadpool_postgres::GenericClient;

use super::audit::head_ok;
use super::{PgDb, Result};
use crate::store::verify::{
    AuditRowRef, ChainWalk, UNACCOUNTED_SHOWN, keyed_note, more_like_it, unaccounted_decision,
    unaccounted_outbox, unaccounted_undo,
};
use crate::store::{GENESIS, VerifyReport};

/// Audit rows fetched from the portal at a time.
const PAGE: i32 = 10_000;

impl PgDb {
    /// Verifies the whole log: the chain and every row's MAC, the head row, and the
    /// decisions and outbox tables against the log.
    pub async fn verify_audit(&self) -> Result<VerifyReport> {
        self.verify_audit_with(|_| {}).await
    }

    /// [`PgDb::verify_audit`], calling `progress` with the entries walked every 64k rows.
    pub async fn verify_audit_with(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let head_row = tx
            .query_opt("SELECT seq, hash, mac FROM audit_head WHERE id = 1", &[])
            .await?
            .map(|r| {
                (
                    r.get::<_, i64>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                )
            });
        let stmt = tx
            .prepare(
                "SELECT seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac
                 FROM audit ORDER BY seq",
            )
            .await?;
        let portal = tx.bind(&stmt, &[]).await?;
        let mut chain = ChainWalk::new(0, GENESIS, Some(self.key()));
        let mut last_progress = 0u64;
        'pages: loop {
            let rows = tx.query_portal(&portal, PAGE).await?;
            let done = rows.len() < PAGE as usize;
            for r in &rows {
                let taken = chain.push(AuditRowRef {
                    seq: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    request_id: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    prev_hash: r.try_get(6)?,
                    hash: r.try_get(7)?,
                    os_user: r.try_get(8)?,
                    mac: r.try_get(9)?,
                });
                if !taken {
                    break 'pages;
                }
            }
            let n = chain.entries();
            if n / 65_536 > last_progress / 65_536 {
                progress(n);
            }
            last_progress = n;
            if done {
                break;
            }
        }
        let mut report = chain.finish();
        let earliest = |report: &mut VerifyReport, seq: i64, why: String| {
            if report.broken.as_ref().is_none_or(|b| seq < b.0) {
                report.broken = Some((seq, why));
                report.head = None;
            }
        };
        report
            .notes
            .push("every entry's MAC checked with the audit key".into());
        let last_seq = report.head.as_ref().map_or(0, |h| h.seq);
        match head_row {
            None if report.entries == 0 => {}
            None => earliest(
                &mut report,
                1,
                "the head row of the audit log is missing: nothing pins the log's last entry"
                    .into(),
            ),
            Some((seq, hash, mac)) => {
                if !head_ok(self.key(), seq, &hash, &mac) {
                    earliest(
                        &mut report,
                        seq.max(1),
                        format!(
                            "the head row (recording entry {seq}) was not written with the audit key"
                        ),
                    );
                } else if report.broken.is_none() {
                    let last_hash = report
                        .head
                        .as_ref()
                        .map_or(GENESIS.to_string(), |h| h.hash.clone());
                    if seq > last_seq {
                        earliest(
                            &mut report,
                            last_seq + 1,
                            format!(
                                "missing: the log ends at entry {last_seq} but the head row records entry {seq}; the tail was removed"
                            ),
                        );
                    } else if seq < last_seq {
                        earliest(
                            &mut report,
                            seq + 1,
                            format!(
                                "the log holds entries {}–{last_seq} after the head row's entry {seq}: they were added without moving the head",
                                seq + 1
                            ),
                        );
                    } else if hash != last_hash {
                        earliest(
                            &mut report,
                            seq.max(1),
                            "its hash differs from the one in the head row: the chain was rewritten at or before this entry".into(),
                        );
                    } else {
                        report.notes.push(format!("the head row names entry {seq}"));
                    }
                }
            }
        }
        for seq in std::mem::take(&mut report.keyed_at) {
            let detail: Option<String> = tx
                .query_opt("SELECT detail FROM audit WHERE seq = $1", &[&seq])
                .await?
                .map(|r| r.get(0));
            report.notes.push(keyed_note(seq, detail.as_deref()));
        }
        report.unaccounted = cross_check(&tx).await?;
        tx.commit().await?;
        Ok(report)
    }
}

/// Decisions and outbox rows that no audit entry accounts for (the SQLite store's checks).
async fn cross_check(tx: &impl GenericClient) -> Result<Vec<String>> {
    let limit = UNACCOUNTED_SHOWN as i64;
    let mut out = Vec::new();
    let total = |rows: &[tokio_postgres::Row]| -> usize {
        rows.first()
            .map_or(0, |r| r.get::<_, i64>("total") as usize)
    };
    let rows = tx
        .query(
            "SELECT d.id, d.request_id, d.kind, d.reviewer, COUNT(*) OVER () AS total
             FROM decisions d
             WHERE NOT EXISTS (
                SELECT 1 FROM audit a WHERE a.request_id = d.request_id AND a.kind = 'decided'
                  AND a.detail::jsonb ->> 'decision_id' = d.id::text
                  AND a.detail::jsonb ->> 'decision' = d.kind
                  AND a.actor = d.reviewer)
             ORDER BY d.id LIMIT $1",
            &[&limit],
        )
        .await?;
    for r in &rows {
        out.push(unaccounted_decision(
            r.get(0),
            r.get(1),
            r.get::<_, &str>(2),
            r.get::<_, &str>(3),
        ));
    }
    out.extend(more_like_it(total(&rows)));
    let rows = tx
        .query(
            "SELECT d.id, d.request_id, COUNT(*) OVER () AS total FROM decisions d
             WHERE d.undone_at IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM audit a WHERE a.request_id = d.request_id AND a.kind = 'undone'
                  AND a.detail::jsonb ->> 'decision_id' = d.id::text)
             ORDER BY d.id LIMIT $1",
            &[&limit],
        )
        .await?;
    for r in &rows {
        out.push(unaccounted_undo(r.get(0), r.get(1)));
    }
    out.extend(more_like_it(total(&rows)));
    let rows = tx
        .query(
            "SELECT o.id, o.request_id, o.action, o.idempotency_key, o.decision_id,
                    COUNT(*) OVER () AS total
             FROM outbox o
             WHERE NOT EXISTS (
                SELECT 1 FROM audit a WHERE a.request_id = o.request_id AND a.kind = 'decided'
                  AND a.detail::jsonb ->> 'decision_id' = o.decision_id::text
                  AND jsonb_typeof(a.detail::jsonb -> 'actions') = 'array'
                  AND (a.detail::jsonb -> 'actions') @> jsonb_build_array(o.idempotency_key))
             ORDER BY o.id LIMIT $1",
            &[&limit],
        )
        .await?;
    for r in &rows {
        out.push(unaccounted_outbox(
            r.get(0),
            r.get(1),
            r.get::<_, &str>(2),
            r.get::<_, &str>(3),
            r.get(4),
        ));
    }
    out.extend(more_like_it(total(&rows)));
    Ok(out)
}

impl PgDb {
    /// `signoff audit export` of audit entries, oldest first, read a page at a time;
    /// returns how many were written.
    pub async fn export_audit(
        &self,
        q: &crate::store::ExportQuery,
        format: crate::store::Format,
        out: &mut dyn std::io::Write,
    ) -> Result<u64> {
        use crate::store::export::{AuditExportRow, write_audit_header, write_audit_row};
        let io = |e: std::io::Error| {
            super::PgError::Queue(crate::queue::QueueError::Storage(format!(
                "writing the export: {e}"
            )))
        };
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let stmt = tx
            .prepare(
                "SELECT seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user
                 FROM audit WHERE at >= $1 AND ($2::bigint IS NULL OR request_id = $2)
                 ORDER BY seq",
            )
            .await?;
        let since = q.since.unwrap_or(i64::MIN);
        let portal = tx.bind(&stmt, &[&since, &q.item]).await?;
        write_audit_header(out, format).map_err(io)?;
        let mut n = 0u64;
        loop {
            let rows = tx.query_portal(&portal, PAGE).await?;
            for r in &rows {
                let row = AuditExportRow {
                    seq: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    item: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    prev_hash: r.try_get(6)?,
                    hash: r.try_get(7)?,
                    os_user: r.try_get(8)?,
                };
                write_audit_row(out, format, row).map_err(io)?;
                n += 1;
            }
            if rows.len() < PAGE as usize {
                break;
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}
