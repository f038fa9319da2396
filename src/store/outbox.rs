//! The outbox as the console and CLI see it: the kill switch and resending dead letters.
//! (The dispatcher's claims and attempt records live beside these.)
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::audit::AuditWriter;
use super::{Result, Store};
use crate::queue::QueueError;

const PAUSED_KEY: &str = "actions.paused";

impl Store {
    /// Whether outbound sending is paused for everyone using this database.
    pub fn actions_paused(&self) -> Result<bool> {
        let v: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([PAUSED_KEY], |r| r.get(0))
            .optional()?;
        Ok(v.as_deref() == Some("true"))
    }

    /// Flips the kill switch, with an audit row.
    pub fn set_actions_paused(&mut self, paused: bool, actor: &str) -> Result<()> {
        self.write(|tx, now, _| {
            tx.prepare_cached(
                "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                    updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )?
            .execute(params![PAUSED_KEY, paused.to_string(), now, actor])?;
            let mut audit = AuditWriter::new(tx)?;
            audit.append(
                tx,
                now,
                actor,
                None,
                if paused {
                    "kill_switch_on"
                } else {
                    "kill_switch_off"
                },
                &json!({"paused": paused}),
            )?;
            Ok(())
        })
    }

    /// Sends a dead letter again: it is queued now, with its attempts kept for the record.
    pub fn resend(&mut self, outbox_id: i64, actor: &str) -> Result<()> {
        self.write(|tx, now, _| {
            let row: Option<(i64, String, String)> = tx
                .prepare_cached("SELECT request_id, status, action FROM outbox WHERE id = ?1")?
                .query_row([outbox_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some((request_id, status, action)) = row else {
                return Err(QueueError::Invalid(format!("no outbox entry {outbox_id}")).into());
            };
            if status != "dead" {
                return Err(QueueError::Invalid(format!(
                    "the {action} action of item {request_id} is {status}, not dead; only dead letters are sent again"
                ))
                .into());
            }
            tx.prepare_cached(
                "UPDATE outbox SET status = 'queued', next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![outbox_id, now])?;
            let mut audit = AuditWriter::new(tx)?;
            audit.append(
                tx,
                now,
                actor,
                Some(request_id),
                "resend",
                &json!({"outbox_id": outbox_id, "action": action}),
            )?;
            Ok(())
        })
    }
}
