//! The outbox as the console and CLI see it (the kill switch, resending dead letters) and
//! as the dispatcher uses it: claiming due rows with a lease, recording each attempt's
//! outcome under that lease (a worker that lost its lease changes nothing), with an audit
//! entry for every attempt and every outcome.
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::{Result, Store};
use crate::queue::QueueError;

/// The `settings` key of the kill switch ("true" while sending is paused).
pub(crate) const PAUSED_KEY: &str = "actions.paused";

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
        self.write_audited(|tx, now, _, audit| {
            tx.prepare_cached(
                "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                    updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )?
            .execute(params![PAUSED_KEY, paused.to_string(), now, actor])?;
            audit.append(
                tx,
                now,
                actor,
                None,
                kill_switch_kind(paused),
                &json!({"paused": paused}),
            )?;
            Ok(())
        })
    }

    /// Sends a dead letter again: it is queued now, with its attempts kept for the record.
    pub fn resend(&mut self, outbox_id: i64, actor: &str) -> Result<()> {
        self.write_audited(|tx, now, _, audit| {
            let row: Option<(i64, String, String)> = tx
                .prepare_cached("SELECT request_id, status, action FROM outbox WHERE id = ?1")?
                .query_row([outbox_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let (request_id, action) = resend_verdict(outbox_id, row)?;
            // `resent` lets the dispatcher repost what it could not look up (a person checked);
            // `attempts_base` gives the row a fresh attempt budget.
            tx.prepare_cached(
                "UPDATE outbox SET status = 'queued', next_attempt_at = ?2, updated_at = ?2,
                    response = json_set(json_set(COALESCE(response, '{}'), '$.resent', json('true')),
                        '$.attempts_base', attempts)
                 WHERE id = ?1",
            )?
            .execute(params![outbox_id, now])?;
            audit.append(
                tx,
                now,
                actor,
                Some(request_id),
                "resend",
                &resend_detail(outbox_id, &action),
            )?;
            Ok(())
        })
    }
}

/// The audit kind of turning the kill switch on or off.
pub(crate) fn kill_switch_kind(paused: bool) -> &'static str {
    if paused {
        "kill_switch_on"
    } else {
        "kill_switch_off"
    }
}

/// Whether outbox row `outbox_id` (`row`: its item, status and action) may be sent again:
/// only a dead letter is. Its item and action when so.
pub(crate) fn resend_verdict(
    outbox_id: i64,
    row: Option<(i64, String, String)>,
) -> Result<(i64, String), QueueError> {
    let Some((request_id, status, action)) = row else {
        return Err(QueueError::Invalid(format!("no outbox entry {outbox_id}")));
    };
    if status != "dead" {
        return Err(QueueError::Invalid(format!(
            "the {action} action of item {request_id} is {status}, not dead; only dead letters are sent again"
        )));
    }
    Ok((request_id, action))
}

/// The detail of a `resend` audit row.
pub(crate) fn resend_detail(outbox_id: i64, action: &str) -> serde_json::Value {
    json!({"outbox_id": outbox_id, "action": action})
}

/// A row a dispatcher claimed: attempt number `attempts` is now its to make.
#[derive(Clone, Debug)]
pub struct ClaimedRow {
    pub id: i64,
    pub request_id: i64,
    pub action: String,
    pub idempotency_key: String,
    pub payload: Option<String>,
    pub response: Option<String>,
    /// Status before the claim: `sending` means a worker died mid-attempt.
    pub prior_status: String,
    /// Including this attempt.
    pub attempts: i64,
}

/// What became of an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Disposition {
    Sent,
    /// Try again at this time (ms).
    Retry(Millis),
    Dead,
    Sandbox,
}

impl Disposition {
    /// The outbox status the attempt leaves its row in.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Disposition::Sent => "sent",
            Disposition::Retry(_) => "retrying",
            Disposition::Dead => "dead",
            Disposition::Sandbox => "sandbox",
        }
    }

    /// The kind of the audit entry recording the attempt's outcome.
    pub(crate) fn audit_kind(&self) -> &'static str {
        match self {
            Disposition::Sent => "action_sent",
            Disposition::Retry(_) => "action_retry",
            Disposition::Dead => "action_dead",
            Disposition::Sandbox => "action_sandbox",
        }
    }

    /// The time a retry is due, for `next_attempt_at`.
    pub(crate) fn retry_at(&self) -> Option<Millis> {
        match self {
            Disposition::Retry(at) => Some(*at),
            _ => None,
        }
    }
}

impl ClaimedRow {
    /// The detail of the audit entry recording that this attempt was claimed.
    pub(crate) fn attempt_detail(&self) -> serde_json::Value {
        json!({
            "outbox_id": self.id, "action": self.action, "key": self.idempotency_key,
            "attempt": self.attempts,
            "after_crash": self.prior_status == "sending",
        })
    }
}

/// The record of one attempt.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub id: i64,
    pub request_id: i64,
    /// The attempt number from the claim (the lease's fence).
    pub attempt: i64,
    pub disposition: Disposition,
    pub error: Option<String>,
    /// What is known about the effect (ids, progress), JSON.
    pub response: String,
    /// The audit entry's detail.
    pub audit: serde_json::Value,
}

/// What a claim round found.
#[derive(Clone, Debug, Default)]
pub struct Claimed {
    pub rows: Vec<ClaimedRow>,
    pub paused: bool,
    /// When the next queued row falls due, if none is due now.
    pub next_due: Option<Millis>,
}

use crate::queue::Millis;

impl Store {
    /// Claims up to `limit` due rows for `worker` for `lease_ms`: queued or retrying rows
    /// whose time has come, and rows whose last worker died mid-attempt (lease run out).
    /// Claims nothing while the kill switch is on. A CRM row waits while another CRM row of
    /// the same item is being sent (any worker, any round): two monday writes for one item
    /// at once would both find nothing and both create it.
    pub fn claim_due(&mut self, worker: &str, lease_ms: i64, limit: u32) -> Result<Claimed> {
        self.write_audited(|tx, now, _, audit| {
            let paused: Option<String> = tx
                .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                .query_row([PAUSED_KEY], |r| r.get(0))
                .optional()?;
            if paused.as_deref() == Some("true") {
                return Ok(Claimed { paused: true, ..Claimed::default() });
            }
            let mut rows: Vec<ClaimedRow> = Vec::new();
            let map = |r: &rusqlite::Row<'_>| {
                Ok(ClaimedRow {
                    id: r.get(0)?,
                    request_id: r.get(1)?,
                    action: r.get(2)?,
                    idempotency_key: r.get(3)?,
                    payload: r.get(4)?,
                    response: r.get(5)?,
                    prior_status: r.get(6)?,
                    attempts: r.get::<_, i64>(7)? + 1,
                })
            };
            for sql in [
                "SELECT id, request_id, action, idempotency_key, payload, response, status, attempts
                 FROM outbox WHERE status = 'sending' AND lease_expires <= ?1 ORDER BY id LIMIT ?2",
                "SELECT id, request_id, action, idempotency_key, payload, response, status, attempts
                 FROM outbox WHERE status IN ('queued', 'retrying') AND next_attempt_at <= ?1
                   AND NOT (action = 'crm' AND EXISTS (
                       SELECT 1 FROM outbox o2 WHERE o2.request_id = outbox.request_id
                         AND o2.action = 'crm' AND o2.id != outbox.id
                         AND o2.status = 'sending' AND o2.lease_expires > ?1))
                 ORDER BY next_attempt_at, id LIMIT ?2",
            ] {
                let left = i64::from(limit) - rows.len() as i64;
                if left <= 0 {
                    break;
                }
                let mut stmt = tx.prepare_cached(sql)?;
                let found = stmt.query_map(params![now, left], map)?;
                for row in found {
                    rows.push(row?);
                }
            }
            if rows.is_empty() {
                let next_due: Option<Millis> = tx
                    .prepare_cached(
                        "SELECT MIN(t) FROM (
                            SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status IN ('queued', 'retrying')
                            UNION ALL SELECT MIN(lease_expires) FROM outbox WHERE status = 'sending')",
                    )?
                    .query_row([], |r| r.get(0))?;
                return Ok(Claimed { next_due, ..Claimed::default() });
            }
            let expires = now + lease_ms;
            let mut upd = tx.prepare_cached(
                "UPDATE outbox SET status = 'sending', attempts = ?2, lease_owner = ?3,
                    lease_expires = ?4, updated_at = ?5 WHERE id = ?1",
            )?;
            for row in &rows {
                upd.execute(params![row.id, row.attempts, worker, expires, now])?;
                audit.append(
                    tx,
                    now,
                    worker,
                    Some(row.request_id),
                    "action_attempt",
                    &row.attempt_detail(),
                )?;
            }
            Ok(Claimed { rows, ..Claimed::default() })
        })
    }

    /// Records attempts' outcomes, each only if `worker` still holds the row's lease for
    /// that attempt. Returns how many were recorded.
    pub fn record_attempts(&mut self, worker: &str, records: &[AttemptRecord]) -> Result<usize> {
        self.write_audited(|tx, now, _, audit| {
            let mut upd = tx.prepare_cached(
                "UPDATE outbox SET status = ?2, next_attempt_at = COALESCE(?3, next_attempt_at),
                    last_error = ?4, response = ?5, lease_owner = NULL, lease_expires = NULL,
                    updated_at = ?6
                 WHERE id = ?1 AND status = 'sending' AND lease_owner = ?7 AND attempts = ?8",
            )?;
            let mut n = 0;
            for rec in records {
                let at = rec.disposition.retry_at();
                let changed = upd.execute(params![
                    rec.id,
                    rec.disposition.status(),
                    at,
                    rec.error,
                    rec.response,
                    now,
                    worker,
                    rec.attempt
                ])?;
                if changed == 0 {
                    tracing::warn!(
                        outbox_id = rec.id,
                        worker,
                        "lease lost before the outcome was recorded"
                    );
                    continue;
                }
                n += 1;
                let kind = rec.disposition.audit_kind();
                audit.append(tx, now, worker, Some(rec.request_id), kind, &rec.audit)?;
            }
            Ok(n)
        })
    }
}

/// One outbox row in full, for the console's action lines and preview.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub decision_id: i64,
    pub action: String,
    pub idempotency_key: String,
    /// queued, sending, sent, retrying, dead, sandbox, cancelled.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_error: Option<String>,
    /// The rendered requests (JSON), as approved.
    pub payload: Option<String>,
    /// What is known about the effect (JSON: item id, Slack ts, draft id, …).
    pub response: Option<String>,
    pub updated_at: Millis,
}

impl Store {
    /// Every outbox row of an item, oldest first.
    pub fn outbox_rows(&self, request_id: i64) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, decision_id, action, idempotency_key, status, attempts, next_attempt_at,
                last_error, payload, response, updated_at
             FROM outbox WHERE request_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([request_id], |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                decision_id: r.get(1)?,
                action: r.get(2)?,
                idempotency_key: r.get(3)?,
                status: r.get(4)?,
                attempts: r.get(5)?,
                next_attempt_at: r.get(6)?,
                last_error: r.get(7)?,
                payload: r.get(8)?,
                response: r.get(9)?,
                updated_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// One action as it would be sent, rendered for a preview.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ActionPreview {
    pub action: crate::model::ActionKind,
    /// The key this preview used (the decision id is the next free one, so approval's key
    /// matches unless someone else decides first).
    pub idempotency_key: String,
    /// The rendered requests, or why the action cannot be rendered (approval would fail
    /// with this). Null for a skipped action. On the wire `{"Ok": <requests>}` or
    /// `{"Err": "<why>"}`.
    #[schema(value_type = Object)]
    pub rendered: std::result::Result<serde_json::Value, String>,
    /// Set when the policy names this action but the item rules it out: nothing is
    /// queued for it, and this says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<crate::model::Skip>,
}

impl Store {
    /// What deciding `kind` on item `id` now would send, rendered from the current fields
    /// with the store's renderer: the console's `p` preview. Writes nothing. Empty when no
    /// renderer is set or the decision queues no actions.
    pub fn preview_actions(
        &self,
        id: i64,
        kind: &crate::model::DecisionKind,
        reviewer: &str,
        note: Option<&str>,
    ) -> Result<Vec<ActionPreview>> {
        let Some(renderer) = self.renderer.clone() else {
            return Ok(Vec::new());
        };
        let (_, payload) = super::read::load_payload(&self.conn, id)?;
        let (ai, fields) = super::read::reviewed_fields(&self.conn, id, &payload, &self.policy)?;
        let plan = self.policy.plan_actions(kind, &fields, &ai);
        if plan.queued.is_empty() && plan.skipped.is_empty() {
            return Ok(Vec::new());
        }
        let decision_id: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM decisions", [], |r| {
                    r.get(0)
                })?;
        Ok(render_previews(
            renderer.as_ref(),
            plan,
            &Preview {
                id,
                decision_id,
                payload: &payload,
                fields: &fields,
                kind,
                reviewer,
                note,
            },
        )?)
    }
}

/// What a preview renders: the item, its reviewed fields and the decision it previews
/// under the next decision id.
pub(crate) struct Preview<'a> {
    pub id: i64,
    pub decision_id: i64,
    pub payload: &'a str,
    pub fields: &'a crate::model::FieldValues,
    pub kind: &'a crate::model::DecisionKind,
    pub reviewer: &'a str,
    pub note: Option<&'a str>,
}

/// The plan's queued actions rendered with `renderer`, then its skipped ones.
pub(crate) fn render_previews(
    renderer: &dyn super::ActionRenderer,
    plan: crate::model::ActionPlan,
    p: &Preview<'_>,
) -> std::result::Result<Vec<ActionPreview>, QueueError> {
    let Preview {
        id,
        decision_id,
        payload,
        fields,
        kind,
        reviewer,
        note,
    } = *p;
    let request = crate::model::Request::from_json(payload)
        .map(|(_, r)| r)
        .map_err(|e| QueueError::Storage(format!("item {id}: {e}")))?;
    let skipped = plan.skipped.iter().map(|(action, why)| ActionPreview {
        action: *action,
        idempotency_key: String::new(),
        rendered: Ok(serde_json::Value::Null),
        skipped: Some(*why),
    });
    Ok(plan
        .queued
        .into_iter()
        .map(|action| {
            let key = super::idempotency_key(id, decision_id, action);
            let rendered = renderer.render(&super::RenderContext {
                request_id: id,
                decision_id,
                action,
                idempotency_key: &key,
                request: &request,
                fields,
                decision: kind,
                note,
                reviewer,
            });
            ActionPreview {
                action,
                idempotency_key: key,
                rendered,
                skipped: None,
            }
        })
        .chain(skipped)
        .collect())
}
