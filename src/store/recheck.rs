//! Keeps the columns of open items that depend on the policy (the priority as read, the
//! queue rank, the validation flags and their count) in step with the policy the store
//! runs with. They are computed at ingest; when a later start brings another policy (a
//! priority dropped, an alias added), the open items are checked again on open, in one
//! transaction, so no item keeps a flag or a queue position the current policy would not
//! give it. Nothing is dropped: a value the new policy does not allow becomes a flag.
//!
//! `meta` keeps the policy's [`Policy::validation_digest`] (only a different one costs a
//! pass) and its [`Policy::validation_rules`]. The pass walks open items in rowid windows.
//! An item no reviewer edited is re-checked from its columns alone: the AI's intent,
//! priority as sent (`ai_priority`) and summary are there, and its flags end with the
//! field checks of the old rules, which are replaced by those of the new. Edited items,
//! items from before the rules were recorded, and any whose flags do not end as the old
//! rules say are re-read from their payload. Only rows whose columns change are written.
//! Decided items keep the flags they were decided with.
use rusqlite::{OptionalExtension, Transaction, params};

use super::ingest::PolicyColumns;
use super::{Result, Store};
use crate::model::{EditableField, FieldValues, Flag, Policy, Request, check_fields};

pub(crate) const DIGEST_KEY: &str = "policy_digest";
pub(crate) const RULES_KEY: &str = "policy_rules";

/// Rowids read per window: bounds the memory a pass holds at once.
pub(crate) const WINDOW: i64 = 50_000;

/// What a re-check did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recheck {
    /// Open items looked at.
    pub checked: u64,
    /// Of those, items whose payload was read again.
    pub reread: u64,
    /// Items whose priority, rank or flags changed.
    pub changed: u64,
}

pub(crate) fn meta(conn: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

pub(crate) fn set_meta(
    conn: &rusqlite::Connection,
    key: &str,
    value: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

impl Store {
    /// The policy digest the open items were last checked under, if any.
    pub fn checked_policy_digest(&self) -> Result<Option<String>> {
        Ok(meta(&self.conn, DIGEST_KEY)?)
    }

    /// Checks the open items again under this store's policy when the digest recorded
    /// differs from the policy's (or none is recorded: a store from before the digest).
    /// Returns `None` when nothing had to be done.
    pub fn recheck_open_items(&mut self) -> Result<Option<Recheck>> {
        let digest = self.policy.validation_digest();
        if self.checked_policy_digest()?.as_deref() == Some(digest.as_str()) {
            return Ok(None);
        }
        self.write_audited(|tx, now, policy, audit| {
            // Another process may have done it while this one waited for the lock.
            let stored = meta(tx, DIGEST_KEY)?;
            if stored.as_deref() == Some(digest.as_str()) {
                return Ok(None);
            }
            let old = meta(tx, RULES_KEY)?
                .and_then(|r| serde_json::from_str(&r).ok())
                .and_then(|r| Policy::with_validation_rules(&r));
            let done = recheck(tx, old.as_ref(), policy)?;
            set_meta(tx, DIGEST_KEY, &digest)?;
            set_meta(tx, RULES_KEY, &policy.validation_rules().to_string())?;
            if done.changed > 0 {
                audit.append(
                    tx,
                    now,
                    "system",
                    None,
                    "policy_rechecked",
                    &done.detail(&digest, stored.as_deref()),
                )?;
            }
            Ok(Some(done))
        })
    }
}

impl Recheck {
    /// The detail of the audit entry of a pass that changed something.
    pub(crate) fn detail(&self, digest: &str, previous: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "policy_digest": digest,
            "previous_digest": previous,
            "checked": self.checked,
            "reread": self.reread,
            "changed": self.changed,
        })
    }
}

/// The columns of an item read again from its payload under `policy`; `priority_edit` is
/// the last reviewer's priority of an edited item (a reviewer's priority wins over the
/// AI's, in the column and the rank).
pub(crate) fn from_payload(
    request: &Request,
    priority_edit: Option<Option<String>>,
    policy: &Policy,
) -> PolicyColumns {
    let mut c = PolicyColumns::of(request, policy);
    if let Some(value) = priority_edit {
        c.priority_rank = policy.priority_rank(value.as_deref());
        c.priority = value.map(|v| policy.priority_as_read(&v).to_string());
    }
    c
}

/// Whether the stored columns differ from those computed now.
pub(crate) fn differs(now: &PolicyColumns, was: &PolicyColumns) -> bool {
    (&now.priority, now.priority_rank, &now.flags, now.flag_count)
        != (&was.priority, was.priority_rank, &was.flags, was.flag_count)
}

/// One open item's columns.
pub(crate) struct Row {
    pub id: i64,
    pub edited: bool,
    pub intent: Option<String>,
    pub ai_priority: Option<String>,
    pub summary: Option<String>,
    pub columns: PolicyColumns,
}

/// The columns of an unedited item under `new`, from its columns alone, if its flags end
/// with what the `old` rules' field checks gave (else its payload has to be read).
pub(crate) fn from_columns(row: &Row, old: &Policy, new: &Policy) -> Option<PolicyColumns> {
    let flags: Vec<Flag> = serde_json::from_str(&row.columns.flags).ok()?;
    let fields = FieldValues {
        intent: row.intent.clone(),
        priority: row.ai_priority.clone(),
        summary: row.summary.clone(),
        ..FieldValues::default()
    };
    // Field checks run only on an item with AI output (see `validate`).
    let ai_missing = flags.iter().any(|f| f.field == "ai");
    let (was, now) = if ai_missing {
        (Vec::new(), Vec::new())
    } else {
        (check_fields(&fields, old), check_fields(&fields, new))
    };
    let kept = flags.len().checked_sub(was.len())?;
    if flags[kept..] != was[..] {
        return None;
    }
    let flags: Vec<Flag> = flags[..kept].iter().cloned().chain(now).collect();
    let sent = row.ai_priority.as_deref();
    Some(PolicyColumns {
        priority: sent.map(|p| new.priority_as_read(p).to_string()),
        priority_rank: new.priority_rank(sent),
        flags: serde_json::to_string(&flags).unwrap_or_else(|_| "[]".into()),
        flag_count: flags.len(),
        flag_messages: Vec::new(),
    })
}

fn recheck(tx: &Transaction<'_>, old: Option<&Policy>, policy: &Policy) -> Result<Recheck> {
    let mut done = Recheck::default();
    let max: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM requests", [], |r| {
        r.get(0)
    })?;
    let mut select = tx.prepare_cached(
        "SELECT id, edited, intent, ai_priority, summary, priority, priority_rank, flags,
            flag_count
         FROM requests WHERE id > ?1 AND id <= ?2 AND state IN ('pending','in_review')",
    )?;
    let mut payload = tx.prepare_cached(
        "SELECT v.payload FROM requests r
         JOIN revisions v ON v.request_id = r.id AND v.revision = r.revision WHERE r.id = ?1",
    )?;
    let mut priority_edit = tx.prepare_cached(
        "SELECT new_value FROM edits WHERE request_id = ?1 AND field = ?2 ORDER BY id DESC LIMIT 1",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE requests SET priority = ?2, priority_rank = ?3, flags = ?4, flag_count = ?5
         WHERE id = ?1",
    )?;
    let mut fill_sent = tx.prepare_cached("UPDATE requests SET ai_priority = ?2 WHERE id = ?1")?;
    let mut from = 0i64;
    while from < max {
        let to = from.saturating_add(WINDOW);
        let rows = select
            .query_map([from, to], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    edited: r.get(1)?,
                    intent: r.get(2)?,
                    ai_priority: r.get(3)?,
                    summary: r.get(4)?,
                    columns: PolicyColumns {
                        priority: r.get(5)?,
                        priority_rank: r.get(6)?,
                        flags: r.get(7)?,
                        flag_count: r.get::<_, i64>(8)? as usize,
                        flag_messages: Vec::new(),
                    },
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for row in rows {
            done.checked += 1;
            let quick = match old {
                Some(old) if !row.edited => from_columns(&row, old, policy),
                _ => None,
            };
            let now = match quick {
                Some(c) => c,
                None => {
                    done.reread += 1;
                    let text: String = payload.query_row([row.id], |r| r.get(0))?;
                    // A payload that no longer reads is left as it is (ingest took it).
                    let Ok((_, request)) = Request::from_json(&text) else {
                        continue;
                    };
                    if request.ai.priority != row.ai_priority {
                        fill_sent.execute(params![row.id, request.ai.priority])?;
                    }
                    let edit: Option<Option<String>> = if row.edited {
                        priority_edit
                            .query_row(params![row.id, EditableField::Priority.as_str()], |r| {
                                r.get(0)
                            })
                            .optional()?
                    } else {
                        None
                    };
                    from_payload(&request, edit, policy)
                }
            };
            if differs(&now, &row.columns) {
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
