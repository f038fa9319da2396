//! The outbox on PostgreSQL: due rows leased with `FOR UPDATE SKIP LOCKED`, so every
//! instance's dispatcher attempts each row alone.
//!
//! A claim locks the rows it takes (another instance's claim skips them, and once the
//! claim commits they are `sending` under a live lease, which no claim takes); an outcome
//! is written only while the row is still leased to the worker for that attempt, so a
//! worker whose lease ran out and was taken over changes nothing.
//!
//! CRM rows of one item are never sent by two workers at once (monday has no unique key:
//! two creates would make two items). The SQLite store gets that from its single writer;
//! here a claim takes a transaction-scoped advisory lock on the item (key `-id`) and checks
//! again, under it, that no other CRM row of the item is being sent.
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{PgDb, Result};
use crate::queue::Millis;
use crate::store::outbox::PAUSED_KEY;
use crate::store::{AttemptRecord, Claimed, ClaimedRow};

const CLAIM_COLUMNS: &str =
    "id, request_id, action, idempotency_key, payload, response, status, attempts";

fn claimed_row(r: &Row) -> ClaimedRow {
    ClaimedRow {
        id: r.get(0),
        request_id: r.get(1),
        action: r.get(2),
        idempotency_key: r.get(3),
        payload: r.get(4),
        response: r.get(5),
        prior_status: r.get(6),
        attempts: r.get::<_, i64>(7) + 1,
    }
}

/// Whether another CRM row of item `request_id` is being sent under a live lease.
const CRM_BUSY_SQL: &str = "SELECT EXISTS (SELECT 1 FROM outbox o2 WHERE o2.request_id = $1
    AND o2.action = 'crm' AND o2.id <> ALL($2) AND o2.status = 'sending'
    AND o2.lease_expires > $3)";

/// Whether outbound sending is paused for everyone using this database.
async fn paused(c: &impl GenericClient) -> Result<bool> {
    let v: Option<String> = c
        .query_opt("SELECT value FROM settings WHERE key = $1", &[&PAUSED_KEY])
        .await?
        .map(|r| r.get(0));
    Ok(v.as_deref() == Some("true"))
}

impl PgDb {
    /// Claims up to `limit` due rows for `worker` for `lease_ms`: queued or retrying rows
    /// whose time has come, and rows whose last worker died mid-attempt (lease run out).
    /// Claims nothing while the kill switch is on. A CRM row waits while another CRM row of
    /// the same item is being sent (any worker, any instance).
    pub async fn claim_due(&self, worker: &str, lease_ms: i64, limit: u32) -> Result<Claimed> {
        self.writable()?;
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if paused(&tx).await? {
            return Ok(Claimed {
                paused: true,
                ..Claimed::default()
            });
        }
        let mut rows: Vec<ClaimedRow> = Vec::new();
        let crashed = format!(
            "SELECT {CLAIM_COLUMNS} FROM outbox WHERE status = 'sending' AND lease_expires <= $1
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
        );
        let due = format!(
            "SELECT {CLAIM_COLUMNS} FROM outbox o WHERE status IN ('queued', 'retrying')
               AND next_attempt_at <= $1
               AND NOT (action = 'crm' AND EXISTS (
                   SELECT 1 FROM outbox o2 WHERE o2.request_id = o.request_id
                     AND o2.action = 'crm' AND o2.id <> o.id
                     AND o2.status = 'sending' AND o2.lease_expires > $1))
             ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
        );
        for (sql, crm_rule) in [(&crashed, false), (&due, true)] {
            let left = i64::from(limit) - rows.len() as i64;
            if left <= 0 {
                break;
            }
            let stmt = tx.prepare_cached(sql).await?;
            let found: Vec<ClaimedRow> = tx
                .query(&stmt, &[&now, &left])
                .await?
                .iter()
                .map(claimed_row)
                .collect();
            for row in found {
                if crm_rule && row.action == "crm" && !crm_free(&tx, &row, &rows, now).await? {
                    continue;
                }
                rows.push(row);
            }
        }
        if rows.is_empty() {
            let next_due: Option<Millis> = tx
                .query_one(
                    "SELECT LEAST(
                        (SELECT MIN(next_attempt_at) FROM outbox WHERE status IN ('queued', 'retrying')),
                        (SELECT MIN(lease_expires) FROM outbox WHERE status = 'sending'))",
                    &[],
                )
                .await?
                .get(0);
            return Ok(Claimed {
                next_due,
                ..Claimed::default()
            });
        }
        let expires = now + lease_ms;
        let upd = tx
            .prepare_cached(
                "UPDATE outbox SET status = 'sending', attempts = $2, lease_owner = $3,
                    lease_expires = $4, updated_at = $5 WHERE id = $1",
            )
            .await?;
        let mut audit = self.audit();
        for row in &rows {
            tx.execute(&upd, &[&row.id, &row.attempts, &worker, &expires, &now])
                .await?;
            audit.push(
                now,
                worker,
                Some(row.request_id),
                "action_attempt",
                &row.attempt_detail(),
            );
        }
        audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(Claimed {
            rows,
            ..Claimed::default()
        })
    }

    /// Records attempts' outcomes, each only if `worker` still holds the row's lease for
    /// that attempt. Returns how many were recorded.
    pub async fn record_attempts(&self, worker: &str, records: &[AttemptRecord]) -> Result<usize> {
        self.writable()?;
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let upd = tx
            .prepare_cached(
                "UPDATE outbox SET status = $2, next_attempt_at = COALESCE($3, next_attempt_at),
                    last_error = $4, response = $5, lease_owner = NULL, lease_expires = NULL,
                    updated_at = $6
                 WHERE id = $1 AND status = 'sending' AND lease_owner = $7 AND attempts = $8",
            )
            .await?;
        let mut audit = self.audit();
        let mut n = 0;
        for rec in records {
            let changed = tx
                .execute(
                    &upd,
                    &[
                        &rec.id,
                        &rec.disposition.status(),
                        &rec.disposition.retry_at(),
                        &rec.error,
                        &rec.response,
                        &now,
                        &worker,
                        &rec.attempt,
                    ],
                )
                .await?;
            if changed == 0 {
                tracing::warn!(
                    outbox_id = rec.id,
                    worker,
                    "lease lost before the outcome was recorded"
                );
                continue;
            }
            n += 1;
            audit.push(
                now,
                worker,
                Some(rec.request_id),
                rec.disposition.audit_kind(),
                &rec.audit,
            );
        }
        audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(n)
    }
}

/// Whether CRM row `row` may be claimed: this transaction holds its item's advisory lock
/// (or already claims a CRM row of that item), and, checked under that lock with a fresh
/// snapshot, no other CRM row of the item is being sent.
async fn crm_free(
    tx: &deadpool_postgres::Transaction<'_>,
    row: &ClaimedRow,
    taken: &[ClaimedRow],
    now: Millis,
) -> Result<bool> {
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&-row.request_id])
        .await?
        .get(0);
    if !locked {
        return Ok(false);
    }
    let mine: Vec<i64> = taken
        .iter()
        .filter(|t| t.request_id == row.request_id && t.action == "crm")
        .map(|t| t.id)
        .chain([row.id])
        .collect();
    let busy: bool = tx
        .query_one(CRM_BUSY_SQL, &[&row.request_id, &mine, &now])
        .await?
        .get(0);
    Ok(!busy)
}

/// The dispatcher's outbox on this database: any number of instances may run one.
#[async_trait::async_trait]
impl crate::actions::Outbox for PgDb {
    async fn claim_due(
        &self,
        worker: &str,
        lease_ms: i64,
        limit: u32,
    ) -> std::result::Result<Claimed, String> {
        PgDb::claim_due(self, worker, lease_ms, limit)
            .await
            .map_err(|e| e.to_string())
    }

    async fn record_attempts(
        &self,
        worker: &str,
        records: Vec<AttemptRecord>,
    ) -> std::result::Result<usize, String> {
        PgDb::record_attempts(self, worker, &records)
            .await
            .map_err(|e| e.to_string())
    }
}
