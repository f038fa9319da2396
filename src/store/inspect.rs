//! Read-only views for the command line: the outbox by status or item, and the quarantine
//! of inputs that could not be queued.
use rusqlite::{OptionalExtension, params};

use super::{Result, Store};
use crate::clock::Millis;

/// One outbound action as the outbox holds it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub item: i64,
    pub action: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_error: Option<String>,
    /// What the API answered (ids of what it made), as stored.
    pub response: Option<serde_json::Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An input kept because it could not be queued.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub at: Millis,
    /// The file (or `stdin`, or the HTTP route) it came from.
    pub origin: String,
    pub line: Option<i64>,
    pub reason: String,
    pub raw: String,
}

impl Store {
    /// Outbox rows per status.
    pub fn outbox_totals(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, count(*) FROM outbox GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Outbox rows, oldest first, optionally of one status and one item.
    pub fn outbox_list(
        &self,
        status: Option<&str>,
        item: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, request_id, action, status, attempts, next_attempt_at, last_error,
                    response, created_at, updated_at
             FROM outbox
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR request_id = ?2)
             ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![status, item, i64::from(limit)], |r| {
                let response: Option<String> = r.get(7)?;
                Ok(OutboxEntry {
                    id: r.get(0)?,
                    item: r.get(1)?,
                    action: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    next_attempt_at: r.get(5)?,
                    last_error: r.get(6)?,
                    response: response.and_then(|s| serde_json::from_str(&s).ok()),
                    created_at: r.get(8)?,
                    updated_at: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Quarantined inputs, newest first.
    pub fn quarantine_list(&self, limit: u32) -> Result<Vec<QuarantineEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, origin, line, reason, raw FROM quarantine ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map(params![i64::from(limit)], quarantine_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn quarantine_get(&self, id: i64) -> Result<Option<QuarantineEntry>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, at, origin, line, reason, raw FROM quarantine WHERE id = ?1",
            )?
            .query_row(params![id], quarantine_row)
            .optional()?)
    }
}

fn quarantine_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantineEntry> {
    Ok(QuarantineEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        origin: r.get(2)?,
        line: r.get(3)?,
        reason: r.get(4)?,
        raw: r.get(5)?,
    })
}
