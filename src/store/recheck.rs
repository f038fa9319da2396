//! Keeps the columns of open items that depend on the policy (the priority as read, the
//! queue rank, the validation flags and their count) in step with the policy the store
//! runs with. They are computed at ingest; when a later start brings another policy (a
//! priority dropped, an alias added), the open items are checked again on open, in one
//! transaction, so no item keeps a flag or a queue position the current policy would not
//! give it. Nothing is dropped: a value the new policy does not allow becomes a flag.
//!
//! The policy's [`Policy::validation_digest`] is kept in `meta`; only a different digest
//! costs a pass. The pass walks open items in rowid windows, parses each payload once and
//! writes only rows whose columns change. Decided items keep the flags they were decided
//! with.
use rusqlite::{OptionalExtension, Transaction, params};

use super::audit::AuditWriter;
use super::ingest::PolicyColumns;
use super::{Result, Store};
use crate::model::{EditableField, Policy, Request};

const DIGEST_KEY: &str = "policy_digest";

/// Rowids read per window: bounds the memory a pass holds at once.
const WINDOW: i64 = 20_000;

/// What a re-check did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recheck {
    /// Open items looked at.
    pub checked: u64,
    /// Items whose priority, rank or flags changed.
    pub changed: u64,
}

impl Store {
    /// The policy digest the open items were last checked under, if any.
    pub fn checked_policy_digest(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([DIGEST_KEY], |r| r.get(0))
            .optional()?)
    }

    /// Checks the open items again under this store's policy when the digest recorded
    /// differs from the policy's (or none is recorded: a store from before the digest).
    /// Returns `None` when nothing had to be done.
    pub fn recheck_open_items(&mut self) -> Result<Option<Recheck>> {
        let digest = self.policy.validation_digest();
        if self.checked_policy_digest()?.as_deref() == Some(digest.as_str()) {
            return Ok(None);
        }
        self.write(|tx, now, policy| {
            // Another process may have done it while this one waited for the lock.
            let stored: Option<String> = tx
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([DIGEST_KEY], |r| r.get(0))
                .optional()?;
            if stored.as_deref() == Some(digest.as_str()) {
                return Ok(None);
            }
            let done = recheck(tx, policy)?;
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![DIGEST_KEY, digest])?;
            if done.changed > 0 {
                let mut audit = AuditWriter::new(tx)?;
                audit.append(
                    tx,
                    now,
                    "system",
                    None,
                    "policy_rechecked",
                    &serde_json::json!({
                        "policy_digest": digest,
                        "previous_digest": stored,
                        "checked": done.checked,
                        "changed": done.changed,
                    }),
                )?;
            }
            Ok(Some(done))
        })
    }
}

/// One open item as stored.
struct Row {
    id: i64,
    edited: bool,
    columns: PolicyColumns,
    payload: String,
}

fn recheck(tx: &Transaction<'_>, policy: &Policy) -> Result<Recheck> {
    let mut done = Recheck::default();
    let max: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM requests", [], |r| {
        r.get(0)
    })?;
    let mut select = tx.prepare_cached(
        "SELECT r.id, r.edited, r.priority, r.priority_rank, r.flags, r.flag_count, v.payload
         FROM requests r JOIN revisions v ON v.request_id = r.id AND v.revision = r.revision
         WHERE r.id > ?1 AND r.id <= ?2 AND r.state IN ('pending','in_review')",
    )?;
    let mut priority_edit = tx.prepare_cached(
        "SELECT new_value FROM edits WHERE request_id = ?1 AND field = ?2 ORDER BY id DESC LIMIT 1",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE requests SET priority = ?2, priority_rank = ?3, flags = ?4, flag_count = ?5
         WHERE id = ?1",
    )?;
    let mut from = 0i64;
    while from < max {
        let to = from.saturating_add(WINDOW);
        let rows = select
            .query_map([from, to], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    edited: r.get(1)?,
                    columns: PolicyColumns {
                        priority: r.get(2)?,
                        priority_rank: r.get(3)?,
                        flags: r.get(4)?,
                        flag_count: r.get::<_, i64>(5)? as usize,
                        flag_messages: Vec::new(),
                    },
                    payload: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for row in rows {
            done.checked += 1;
            // A payload that no longer reads is left as it is (ingest accepted it).
            let Ok((_, request)) = Request::from_json(&row.payload) else {
                continue;
            };
            let mut now = PolicyColumns::of(&request, policy);
            if row.edited {
                // A reviewer's priority wins over the AI's, in the column and the rank.
                let edit: Option<Option<String>> = priority_edit
                    .query_row(params![row.id, EditableField::Priority.as_str()], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if let Some(value) = edit {
                    now.priority_rank = policy.priority_rank(value.as_deref());
                    now.priority = value.map(|v| policy.priority_as_read(&v).to_string());
                }
            }
            let was = &row.columns;
            if (&now.priority, now.priority_rank, &now.flags, now.flag_count)
                != (&was.priority, was.priority_rank, &was.flags, was.flag_count)
            {
                update.execute(params![
                    row.id,
                    now.priority,
                    now.priority_rank,
                    now.flags,
                    now.flag_count as i64
                ])?;
                done.changed += 1;
            }
        }
        from = to;
    }
    Ok(done)
}
