//! The existing process's outcomes of a shadow run, and signoff's side of the same items.
use rusqlite::params;
use serde_json::json;

use super::{Result, Store};
use crate::model::FieldValues;
use crate::shadow::{ExistingOutcome, SignoffSide};

impl Store {
    /// Keeps the existing process's outcomes (a later import of the same key replaces
    /// it) and records the import in the audit log. Returns (new, replaced).
    pub fn import_shadow(
        &mut self,
        actor: &str,
        file: &str,
        sha256: &str,
        rows: &[ExistingOutcome],
    ) -> Result<(u64, u64)> {
        self.write_audited(|tx, now, _, audit| {
            let (mut new, mut replaced) = (0u64, 0u64);
            let mut exists = tx.prepare_cached(
                "SELECT COUNT(*) FROM shadow_outcomes WHERE source = ?1 AND external_id = ?2",
            )?;
            let mut put = tx.prepare_cached(
                "INSERT INTO shadow_outcomes (source, external_id, origin, imported_at, decision,
                    intent, priority, summary, next_step, started_at, done_at, handle_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (source, external_id) DO UPDATE SET origin = excluded.origin,
                    imported_at = excluded.imported_at, decision = excluded.decision,
                    intent = excluded.intent, priority = excluded.priority,
                    summary = excluded.summary, next_step = excluded.next_step,
                    started_at = excluded.started_at, done_at = excluded.done_at,
                    handle_ms = excluded.handle_ms",
            )?;
            for r in rows {
                let n: i64 = exists.query_row(params![r.source, r.external_id], |x| x.get(0))?;
                if n > 0 {
                    replaced += 1;
                } else {
                    new += 1;
                }
                put.execute(params![
                    r.source,
                    r.external_id,
                    r.origin,
                    now,
                    r.decision,
                    r.intent,
                    r.priority,
                    r.summary,
                    r.next_step,
                    r.started_at,
                    r.done_at,
                    r.handle_ms
                ])?;
            }
            audit.append(
                tx,
                now,
                actor,
                None,
                "shadow_imported",
                &json!({"file": file, "sha256": sha256, "rows": rows.len(), "new": new, "replaced": replaced}),
            )?;
            Ok((new, replaced))
        })
    }

    /// Every imported outcome with signoff's side of its item (None: no such item).
    pub fn shadow_pairs(&self) -> Result<Vec<(ExistingOutcome, Option<SignoffSide>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.origin, s.source, s.external_id, s.decision, s.intent, s.priority, s.summary,
                    s.next_step, s.started_at, s.done_at, s.handle_ms,
                    r.id, r.received_at, d.kind, d.at, d.fields,
                    d.at - (SELECT MAX(a.at) FROM audit a WHERE a.request_id = d.request_id
                            AND a.kind = 'claimed' AND json_extract(a.detail, '$.fence') = d.fence
                            AND a.at <= d.at)
             FROM shadow_outcomes s
             LEFT JOIN requests r ON r.source = s.source AND r.external_id = s.external_id
             LEFT JOIN decisions d ON d.id = (SELECT MAX(id) FROM decisions
                                              WHERE request_id = r.id AND undone_at IS NULL)
             ORDER BY r.id IS NULL, r.id, s.source, s.external_id",
        )?;
        let rows = stmt.query_map([], |x| {
            let existing = ExistingOutcome {
                origin: x.get(0)?,
                source: x.get(1)?,
                external_id: x.get(2)?,
                decision: x.get(3)?,
                intent: x.get(4)?,
                priority: x.get(5)?,
                summary: x.get(6)?,
                next_step: x.get(7)?,
                started_at: x.get(8)?,
                done_at: x.get(9)?,
                handle_ms: x.get(10)?,
            };
            let id: Option<i64> = x.get(11)?;
            let fields: Option<String> = x.get(15)?;
            let f: FieldValues = fields
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or_default();
            let side = match id {
                None => None,
                Some(id) => Some(SignoffSide {
                    id,
                    received_at: x.get(12)?,
                    decision: x.get(13)?,
                    decided_at: x.get(14)?,
                    handle_ms: x.get(16)?,
                    intent: f.intent,
                    priority: f.priority,
                    summary: f.summary,
                    next_step: f.recommended_next_step,
                }),
            };
            Ok((existing, side))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
