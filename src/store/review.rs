//! Claims (leases with a fencing counter), heartbeats, releases, field edits, decisions and
//! undo. A change presents the claim's fence; a stale fence changes nothing.
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use super::audit::AuditWriter;
use super::read::{effective_fields, load_payload, reviewed_fields};
use super::{RenderContext, Result, Store};
use crate::model::{
    ActionKind, ActionPlan, DecisionKind, EditableField, FieldValues, Policy, Request, State,
    check_fields,
};
use crate::queue::{ActionStatus, Claim, Decision, Millis, QueueError, Receipt};

const SYSTEM: &str = "system";

/// Puts items whose lease ran out back in the queue, with an audit row each.
fn reap_expired(tx: &Transaction<'_>, audit: &mut AuditWriter, now: Millis) -> Result<()> {
    let expired: Vec<(i64, String, i64)> = {
        let mut sel = tx.prepare_cached(
            "SELECT id, claimed_by, fence FROM requests WHERE state = 'in_review' AND lease_expires <= ?1",
        )?;
        let rows = sel.query_map([now], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                r.get(2)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if expired.is_empty() {
        return Ok(());
    }
    let mut upd = tx.prepare_cached(
        "UPDATE requests SET state = 'pending', claimed_by = NULL, lease_expires = NULL, updated_at = ?2
         WHERE id = ?1",
    )?;
    for (id, holder, fence) in expired {
        upd.execute(params![id, now])?;
        audit.append(
            tx,
            now,
            SYSTEM,
            Some(id),
            "lease_expired",
            &expired_detail(&holder, fence),
        )?;
    }
    Ok(())
}

/// The live claim on an item, or why the presented one is not it.
fn check_claim(tx: &Transaction<'_>, claim: &Claim, now: Millis) -> Result<()> {
    let row: Option<(String, Option<String>, i64, Option<i64>)> = tx
        .prepare_cached(
            "SELECT state, claimed_by, fence, lease_expires FROM requests WHERE id = ?1",
        )?
        .query_row([claim.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((state, holder, fence, expires)) = row else {
        return Err(QueueError::NotFound(claim.id).into());
    };
    Ok(lease_verdict(claim, &state, holder, fence, expires, now)?)
}

/// Whether `claim` is the live claim on an item in `state`, held by `holder` with `fence`
/// until `expires`; [`QueueError::LeaseLost`] (naming a live holder) when it is not.
pub(crate) fn lease_verdict(
    claim: &Claim,
    state: &str,
    holder: Option<String>,
    fence: i64,
    expires: Option<Millis>,
    now: Millis,
) -> Result<(), QueueError> {
    let live = state == "in_review"
        && holder.as_deref() == Some(claim.reviewer.as_str())
        && fence == claim.fence
        && expires.is_some_and(|e| e > now);
    if live {
        return Ok(());
    }
    let holder = match (state, holder) {
        ("in_review", Some(h)) if expires.is_some_and(|e| e > now) => Some(h),
        _ => None,
    };
    Err(QueueError::LeaseLost {
        id: claim.id,
        fence: claim.fence,
        holder,
    })
}

/// Refuses a decision made on another revision than the item's current one: a payload
/// ingested after the decider read the item is a different request, and nobody has read it.
fn check_revision(tx: &Transaction<'_>, id: i64, shown: Option<i64>) -> Result<()> {
    let Some(shown) = shown else {
        return Ok(());
    };
    let current: i64 = tx
        .prepare_cached("SELECT revision FROM requests WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(QueueError::NotFound(id))?;
    Ok(revision_verdict(id, Some(shown), current)?)
}

/// Refuses a decision on revision `shown` of an item now at `current` (no revision shown:
/// nothing to check).
pub(crate) fn revision_verdict(
    id: i64,
    shown: Option<i64>,
    current: i64,
) -> Result<(), QueueError> {
    match shown {
        Some(shown) if shown != current => Err(QueueError::StaleRevision { id, shown, current }),
        _ => Ok(()),
    }
}

/// The detail of a `claimed` or `lease_renewed` audit row.
pub(crate) fn lease_detail(fence: i64, expires: Millis) -> serde_json::Value {
    json!({"fence": fence, "lease_expires": expires})
}

/// The detail of a `lease_expired` audit row (the item went back to the queue).
pub(crate) fn expired_detail(holder: &str, fence: i64) -> serde_json::Value {
    json!({"reviewer": holder, "fence": fence})
}

/// When a lease taken or renewed `now` runs out.
pub(crate) fn lease_until(now: Millis, policy: &Policy) -> Millis {
    now + policy.lease_seconds as i64 * 1000
}

fn take_lease(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    id: i64,
    reviewer: &str,
    now: Millis,
    policy: &Policy,
    kind: &str,
) -> Result<Claim> {
    let expires = lease_until(now, policy);
    // (No RETURNING: SQLite buffers its rows in an ephemeral table, which costs more than
    // reading the row again from the page the update just touched.)
    tx.prepare_cached(
        "UPDATE requests SET state = 'in_review', claimed_by = ?2, lease_expires = ?3,
            fence = fence + 1, updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, reviewer, expires, now])?;
    let fence: i64 = tx
        .prepare_cached("SELECT fence FROM requests WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    audit.append(
        tx,
        now,
        reviewer,
        Some(id),
        kind,
        &lease_detail(fence, expires),
    )?;
    Ok(Claim {
        id,
        reviewer: reviewer.to_string(),
        fence,
        lease_expires: expires,
    })
}

fn apply_edit(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    claim: &Claim,
    field: EditableField,
    value: Option<String>,
    now: Millis,
    policy: &Policy,
) -> Result<bool> {
    let value = edit_value(field, value, policy)?;
    let (revision, fields) = current_fields(tx, claim.id, policy)?;
    let old = fields.get(field).map(str::to_owned);
    if old == value {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO edits (request_id, revision, field, old_value, new_value, reviewer, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        claim.id,
        revision,
        field.as_str(),
        old,
        value,
        claim.reviewer,
        now
    ])?;
    if let Some(col) = edit_column(field) {
        tx.execute(
            &format!("UPDATE requests SET {col} = ?2, edited = 1, updated_at = ?3 WHERE id = ?1"),
            params![claim.id, value, now],
        )?;
        if field == EditableField::Priority {
            tx.execute(
                "UPDATE requests SET priority_rank = ?2 WHERE id = ?1",
                params![claim.id, policy.priority_rank(value.as_deref())],
            )?;
        }
    } else {
        tx.execute(
            "UPDATE requests SET edited = 1, updated_at = ?2 WHERE id = ?1",
            params![claim.id, now],
        )?;
    }
    audit.append(
        tx,
        now,
        &claim.reviewer,
        Some(claim.id),
        "edited",
        &edited_detail(field, old.as_deref(), value.as_deref(), claim.fence),
    )?;
    Ok(true)
}

/// An edit's new value as stored: empty is none, an intent must be the policy's, a
/// priority is stored as the priority it is read as ("Normal" is saved as "medium").
pub(crate) fn edit_value(
    field: EditableField,
    value: Option<String>,
    policy: &Policy,
) -> Result<Option<String>, QueueError> {
    let mut value = value.filter(|v| !v.is_empty());
    if let Some(v) = &value {
        let refused = |allowed: &[String]| {
            QueueError::Invalid(format!(
                "{} '{v}' is not allowed; allowed: {}",
                field.as_str(),
                allowed.join(", ")
            ))
        };
        match field {
            EditableField::Intent if !policy.intents.contains(v) => {
                return Err(refused(&policy.intents));
            }
            EditableField::Priority => match policy.read_priority(v) {
                Some(p) => value = Some(p.to_string()),
                None => return Err(refused(&policy.priorities)),
            },
            _ => {}
        }
    }
    Ok(value)
}

/// The `requests` column that mirrors an edited field, if one does.
pub(crate) fn edit_column(field: EditableField) -> Option<&'static str> {
    match field {
        EditableField::Intent => Some("intent"),
        EditableField::Priority => Some("priority"),
        EditableField::Summary => Some("summary"),
        _ => None,
    }
}

/// The detail of an `edited` audit row.
pub(crate) fn edited_detail(
    field: EditableField,
    old: Option<&str>,
    new: Option<&str>,
    fence: i64,
) -> serde_json::Value {
    json!({"field": field.as_str(), "old": old, "new": new, "fence": fence})
}

fn current_fields(tx: &Transaction<'_>, id: i64, policy: &Policy) -> Result<(i64, FieldValues)> {
    let (revision, payload) = load_payload(tx, id)?;
    let fields = effective_fields(tx, id, &payload, policy)?;
    Ok((revision, fields))
}

/// A decision about to be recorded.
pub(crate) struct NewDecision<'a> {
    pub id: i64,
    pub revision: i64,
    pub fence: i64,
    pub reviewer: &'a str,
    pub kind: &'a DecisionKind,
    pub reason: Option<&'a str>,
    pub queue: Option<&'a str>,
    pub note: Option<&'a str>,
    /// The revision's payload (for rendering actions).
    pub payload: &'a str,
    /// The reviewed fields.
    pub fields: &'a FieldValues,
    /// The actions to queue, and those the item rules out.
    pub plan: &'a ActionPlan,
    /// Approved by policy, not a person.
    pub auto: bool,
}

/// The one decision the policy makes on its own.
static APPROVE: DecisionKind = DecisionKind::Approve;

impl<'a> NewDecision<'a> {
    /// The policy's own approval of new item `id` (auto-approval): by "system", on its
    /// first revision, under no claim.
    pub(crate) fn auto_approval(
        id: i64,
        payload: &'a str,
        fields: &'a FieldValues,
        plan: &'a ActionPlan,
        note: &'a str,
    ) -> NewDecision<'a> {
        NewDecision {
            id,
            revision: 1,
            fence: 0,
            reviewer: "system",
            kind: &APPROVE,
            reason: None,
            queue: None,
            note: Some(note),
            payload,
            fields,
            plan,
            auto: true,
        }
    }
}

/// Writes a decision, the item's new state, one outbox row per action (rendered when a
/// renderer is set) and the audit row, inside the caller's transaction.
pub(crate) fn record_decision(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    d: &NewDecision<'_>,
    now: Millis,
    policy: &Policy,
    renderer: Option<&std::sync::Arc<dyn super::ActionRenderer>>,
) -> Result<Receipt> {
    let undo_until = now + policy.undo_seconds as i64 * 1000;
    let fields_json = serde_json::to_string(d.fields).unwrap_or_else(|_| "{}".into());
    let decision_id: i64 = tx
        .prepare_cached(
            "INSERT INTO decisions (request_id, revision, fence, kind, reason, queue, note, reviewer,
                at, fields, undo_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .insert(params![
            d.id,
            d.revision,
            d.fence,
            d.kind.verb(),
            d.reason,
            d.queue,
            d.note,
            d.reviewer,
            now,
            fields_json,
            undo_until
        ])?;
    let state = d.kind.state();
    tx.prepare_cached(
        "UPDATE requests SET state = ?2, claimed_by = NULL, lease_expires = NULL,
            decision_id = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![d.id, state.as_str(), decision_id, now])?;
    let mut statuses = Vec::with_capacity(d.plan.queued.len());
    let mut insert = tx.prepare_cached(
        "INSERT INTO outbox (request_id, decision_id, action, idempotency_key, status,
            next_attempt_at, created_at, updated_at, payload)
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?6, ?7)",
    )?;
    for (action, key, rendered) in render_actions(d, decision_id, renderer)? {
        let id = insert.insert(params![
            d.id,
            decision_id,
            action.as_str(),
            key,
            undo_until,
            now,
            rendered
        ])?;
        statuses.push(ActionStatus {
            id,
            action,
            idempotency_key: key,
            status: "queued".into(),
            attempts: 0,
            next_attempt_at: Some(undo_until),
            last_error: None,
            response: None,
        });
    }
    let detail = decided_detail(d, decision_id, &statuses);
    audit.append(tx, now, d.reviewer, Some(d.id), "decided", &detail)?;
    Ok(Receipt {
        decision_id,
        id: d.id,
        state,
        actions: statuses,
        skipped: d.plan.skipped.clone(),
        undo_until,
    })
}

/// Each action a decision queues: its kind, its idempotency key and its rendered requests
/// (JSON; none without a renderer).
pub(crate) fn render_actions(
    d: &NewDecision<'_>,
    decision_id: i64,
    renderer: Option<&std::sync::Arc<dyn super::ActionRenderer>>,
) -> std::result::Result<Vec<(ActionKind, String, Option<String>)>, QueueError> {
    let request = match renderer {
        Some(_) if !d.plan.queued.is_empty() => Some(
            Request::from_json(d.payload)
                .map(|(_, r)| r)
                .map_err(|e| QueueError::Storage(format!("item {}: {e}", d.id)))?,
        ),
        _ => None,
    };
    let mut out = Vec::with_capacity(d.plan.queued.len());
    for action in &d.plan.queued {
        let key = idempotency_key(d.id, decision_id, *action);
        let rendered = match (renderer, &request) {
            (Some(r), Some(request)) => Some(
                r.render(&RenderContext {
                    request_id: d.id,
                    decision_id,
                    action: *action,
                    idempotency_key: &key,
                    request,
                    fields: d.fields,
                    decision: d.kind,
                    note: d.note,
                    reviewer: d.reviewer,
                })
                .map_err(|e| {
                    QueueError::Invalid(format!(
                        "cannot render the {} action of item {}: {e}",
                        action.as_str(),
                        d.id
                    ))
                })?
                .to_string(),
            ),
            _ => None,
        };
        out.push((*action, key, rendered));
    }
    Ok(out)
}

/// The detail of a decision's "decided" audit entry.
pub(crate) fn decided_detail(
    d: &NewDecision<'_>,
    decision_id: i64,
    statuses: &[ActionStatus],
) -> serde_json::Value {
    let mut detail = json!({
        "decision_id": decision_id, "decision": d.kind.verb(),
        "reason": d.reason, "queue": d.queue, "note": d.note, "fence": d.fence,
        "revision": d.revision, "fields": d.fields, "auto": d.auto,
        "actions": statuses.iter().map(|s| &s.idempotency_key).collect::<Vec<_>>(),
    });
    if !d.plan.skipped.is_empty() {
        detail["not_queued"] = d
            .plan
            .skipped
            .iter()
            .map(|(a, why)| json!({"action": a, "why": why.reason()}))
            .collect();
    }
    detail
}

/// A stable idempotency key for one action of one decision.
pub fn idempotency_key(request_id: i64, decision_id: i64, action: ActionKind) -> String {
    format!("signoff-{request_id}-{decision_id}-{}", action.as_str())
}

/// The next pending item in queue order, read from the open items' index (its own
/// condition repeated so SQLite uses it).
pub(crate) const CLAIM_NEXT_SQL: &str = "SELECT id FROM requests
    WHERE state IN ('pending','in_review') AND state = 'pending'
    ORDER BY priority_rank, received_at, id LIMIT 1";

impl Store {
    /// Claims the next pending item in queue order (priority, then age).
    pub fn claim_next(&mut self, reviewer: &str) -> Result<Option<Claim>> {
        self.write_audited(|tx, now, policy, audit| claim_next_in(tx, audit, reviewer, now, policy))
    }

    /// Claims one item. Re-claiming your own item gives a new fence (the old one is stale).
    pub fn claim(&mut self, id: i64, reviewer: &str) -> Result<Claim> {
        self.write_audited(|tx, now, policy, audit| claim_in(tx, audit, id, reviewer, now, policy))
    }

    /// Renews a lease.
    pub fn heartbeat(&mut self, claim: &Claim) -> Result<Claim> {
        self.write_audited(|tx, now, policy, audit| heartbeat_in(tx, audit, claim, now, policy))
    }

    /// Returns an item to the queue.
    pub fn release(&mut self, claim: &Claim) -> Result<()> {
        self.write_audited(|tx, now, _, audit| {
            check_claim(tx, claim, now)?;
            tx.prepare_cached(
                "UPDATE requests SET state = 'pending', claimed_by = NULL, lease_expires = NULL,
                    updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![claim.id, now])?;
            audit.append(
                tx,
                now,
                &claim.reviewer,
                Some(claim.id),
                "released",
                &json!({"fence": claim.fence}),
            )?;
            Ok(())
        })
    }

    /// Saves one field edit (old → new) under the claim.
    pub fn edit(
        &mut self,
        claim: &Claim,
        field: EditableField,
        value: Option<String>,
    ) -> Result<bool> {
        self.write_audited(|tx, now, policy, audit| {
            check_claim(tx, claim, now)?;
            apply_edit(tx, audit, claim, field, value.clone(), now, policy)
        })
    }

    /// Records a decision with its edits, audit rows and outbox rows, in one transaction.
    pub fn decide(&mut self, claim: &Claim, decision: &Decision) -> Result<Receipt> {
        let renderer = self.renderer.clone();
        self.write_audited(|tx, now, policy, audit| {
            decide_in(tx, audit, claim, decision, now, policy, renderer.as_ref())
        })
    }

    /// Records several decisions in one transaction (group commit); see [`Store::write_batch`].
    pub fn decide_batch(
        &mut self,
        batch: &[(Claim, Decision, Option<String>)],
    ) -> Result<Vec<Result<Receipt>>> {
        let ops: Vec<(BatchOp, Option<String>)> = batch
            .iter()
            .map(|(c, d, u)| (BatchOp::Decide(c.clone(), d.clone()), u.clone()))
            .collect();
        Ok(self
            .write_batch(&ops)?
            .into_iter()
            .map(|r| match r {
                Ok(BatchAnswer::Receipt(receipt)) => Ok(receipt),
                Ok(other) => {
                    Err(QueueError::Storage(format!("a decision answered {other:?}")).into())
                }
                Err(e) => Err(e),
            })
            .collect())
    }

    /// Group commit: runs several claims, heartbeats and decisions in one transaction, each
    /// in a savepoint of its own: one that is refused (a lost lease, a stale revision, a
    /// policy refusal, nothing left to claim) is rolled back alone and the others commit.
    /// Results are in the order given, and every one that is `Ok` is durable when this
    /// returns. Each may name the Unix user it is recorded for (a server acting for the
    /// peer of a connection).
    pub fn write_batch(
        &mut self,
        batch: &[(BatchOp, Option<String>)],
    ) -> Result<Vec<Result<BatchAnswer>>> {
        let renderer = self.renderer.clone();
        self.write_audited(|tx, now, policy, audit| {
            let mut results = Vec::with_capacity(batch.len());
            for (op, os_user) in batch {
                audit.act_as(os_user.clone());
                // Where the chain stands before this write, to return to if it is refused.
                let mark = audit.mark(tx)?;
                tx.execute_batch("SAVEPOINT batched")?;
                let res = match op {
                    BatchOp::Decide(claim, decision) => {
                        decide_in(tx, audit, claim, decision, now, policy, renderer.as_ref())
                            .map(BatchAnswer::Receipt)
                    }
                    BatchOp::ClaimNext(reviewer) => {
                        claim_next_in(tx, audit, reviewer, now, policy).map(BatchAnswer::Claim)
                    }
                    BatchOp::Claim(id, reviewer) => claim_in(tx, audit, *id, reviewer, now, policy)
                        .map(|c| BatchAnswer::Claim(Some(c))),
                    BatchOp::Heartbeat(claim) => heartbeat_in(tx, audit, claim, now, policy)
                        .map(|c| BatchAnswer::Claim(Some(c))),
                };
                match res {
                    Ok(answer) => {
                        tx.execute_batch("RELEASE batched")?;
                        results.push(Ok(answer));
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO batched; RELEASE batched")?;
                        audit.rewind(mark);
                        results.push(Err(e));
                    }
                }
            }
            audit.act_as(None);
            Ok(results)
        })
    }

    /// Takes back the reviewer's latest decision on an item inside its undo window, while
    /// none of its actions has been attempted. The item returns claimed by the reviewer.
    pub fn undo(&mut self, id: i64, reviewer: &str) -> Result<Claim> {
        self.write_audited(|tx, now, policy, audit| {
            let last: Option<(i64, String, i64, Option<i64>)> = tx
                .prepare_cached(
                    "SELECT d.id, d.reviewer, d.undo_until, d.undone_at FROM requests r
                     JOIN decisions d ON d.id = r.decision_id WHERE r.id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            let decision_id = undo_verdict(id, reviewer, last, now)?;
            let started: i64 = tx.query_row(
                "SELECT COUNT(*) FROM outbox WHERE decision_id = ?1 AND (status != 'queued' OR attempts > 0)",
                [decision_id],
                |r| r.get(0),
            )?;
            if started > 0 {
                return Err(undo_too_late(id).into());
            }
            tx.execute(
                "UPDATE outbox SET status = 'cancelled', updated_at = ?2 WHERE decision_id = ?1",
                params![decision_id, now],
            )?;
            tx.execute(
                "UPDATE decisions SET undone_at = ?2 WHERE id = ?1",
                params![decision_id, now],
            )?;
            tx.execute(
                "UPDATE requests SET decision_id = NULL WHERE id = ?1",
                [id],
            )?;
            audit.append(tx, now, reviewer, Some(id), "undone", &undone_detail(decision_id))?;
            take_lease(tx, audit, id, reviewer, now, policy, "claimed")
        })
    }
}

/// Whether `reviewer` may take back an item's latest decision (`last`: its id, who made
/// it, when its window closes, when it was taken back) at `now`; its id when so.
pub(crate) fn undo_verdict(
    id: i64,
    reviewer: &str,
    last: Option<(i64, String, Millis, Option<Millis>)>,
    now: Millis,
) -> Result<i64, QueueError> {
    let cannot = |why: String| QueueError::CannotUndo { id, why };
    let Some((decision_id, by, undo_until, undone)) = last else {
        return Err(cannot("it has no decision".into()));
    };
    if undone.is_some() {
        return Err(cannot("its decision was already taken back".into()));
    }
    if by != reviewer {
        return Err(cannot(format!("the decision was made by {by}")));
    }
    if now > undo_until {
        return Err(cannot(format!(
            "the undo window closed {}s ago",
            (now - undo_until) / 1000
        )));
    }
    Ok(decision_id)
}

/// An undo refused because an action of the decision was attempted.
pub(crate) fn undo_too_late(id: i64) -> QueueError {
    QueueError::CannotUndo {
        id,
        why: "its actions have started to go out".into(),
    }
}

/// The detail of an `undone` audit row.
pub(crate) fn undone_detail(decision_id: i64) -> serde_json::Value {
    json!({"decision_id": decision_id})
}

/// A write that can share a group commit's transaction.
#[derive(Clone, Debug)]
pub enum BatchOp {
    Decide(Claim, Decision),
    /// Claim the next item for this reviewer.
    ClaimNext(String),
    Claim(i64, String),
    Heartbeat(Claim),
}

/// What a [`BatchOp`] gave.
#[derive(Clone, Debug)]
pub enum BatchAnswer {
    Receipt(Receipt),
    Claim(Option<Claim>),
}

/// Claims the next item in queue order, if any (inside a write).
fn claim_next_in(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter<'_>,
    reviewer: &str,
    now: Millis,
    policy: &Policy,
) -> Result<Option<Claim>> {
    reap_expired(tx, audit, now)?;
    let next: Option<i64> = tx
        .prepare_cached(CLAIM_NEXT_SQL)?
        .query_row([], |r| r.get(0))
        .optional()?;
    next.map(|id| take_lease(tx, audit, id, reviewer, now, policy, "claimed"))
        .transpose()
}

/// Claims one item (inside a write).
fn claim_in(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter<'_>,
    id: i64,
    reviewer: &str,
    now: Millis,
    policy: &Policy,
) -> Result<Claim> {
    reap_expired(tx, audit, now)?;
    let row: Option<(String, Option<String>, Option<i64>)> = tx
        .prepare_cached("SELECT state, claimed_by, lease_expires FROM requests WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((state, holder, expires)) = row else {
        return Err(QueueError::NotFound(id).into());
    };
    claim_verdict(id, reviewer, &state, holder, expires, now)?;
    take_lease(tx, audit, id, reviewer, now, policy, "claimed")
}

/// Whether `reviewer` may claim an item in `state` (expired leases already returned to the
/// queue), held by `holder` until `expires`: a pending item or their own, not another's
/// or a decided one.
pub(crate) fn claim_verdict(
    id: i64,
    reviewer: &str,
    state: &str,
    holder: Option<String>,
    expires: Option<Millis>,
    now: Millis,
) -> Result<(), QueueError> {
    let state: State = state.parse().map_err(QueueError::Storage)?;
    match state {
        State::Pending => Ok(()),
        State::InReview if holder.as_deref() == Some(reviewer) => Ok(()),
        State::InReview => Err(QueueError::HeldBy {
            id,
            reviewer: holder.unwrap_or_default(),
            until: expires.unwrap_or(now),
            now,
        }),
        decided => Err(QueueError::AlreadyDecided { id, state: decided }),
    }
}

/// Renews a lease (inside a write).
fn heartbeat_in(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter<'_>,
    claim: &Claim,
    now: Millis,
    policy: &Policy,
) -> Result<Claim> {
    check_claim(tx, claim, now)?;
    let expires = lease_until(now, policy);
    tx.prepare_cached("UPDATE requests SET lease_expires = ?2 WHERE id = ?1")?
        .execute(params![claim.id, expires])?;
    audit.append(
        tx,
        now,
        &claim.reviewer,
        Some(claim.id),
        "lease_renewed",
        &lease_detail(claim.fence, expires),
    )?;
    Ok(Claim {
        lease_expires: expires,
        ..claim.clone()
    })
}

/// One decision inside a write transaction: the claim and revision checked, the edits, the
/// decision with its audit and outbox rows.
fn decide_in(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter<'_>,
    claim: &Claim,
    decision: &Decision,
    now: Millis,
    policy: &Policy,
    renderer: Option<&std::sync::Arc<dyn super::ActionRenderer>>,
) -> Result<Receipt> {
    check_claim(tx, claim, now)?;
    check_revision(tx, claim.id, decision.revision)?;
    for (field, value) in &decision.sets {
        apply_edit(tx, audit, claim, *field, value.clone(), now, policy)?;
    }
    let (revision, payload) = load_payload(tx, claim.id)?;
    let (ai, fields) = reviewed_fields(tx, claim.id, &payload, policy)?;
    let (reason, queue) = decision_terms(claim.id, &decision.kind, &fields, policy)?;
    let plan = policy.plan_actions(&decision.kind, &fields, &ai);
    let note = decision.note.as_deref().filter(|n| !n.trim().is_empty());
    record_decision(
        tx,
        audit,
        &NewDecision {
            id: claim.id,
            revision,
            fence: claim.fence,
            reviewer: &claim.reviewer,
            kind: &decision.kind,
            reason,
            queue,
            note,
            payload: &payload,
            fields: &fields,
            plan: &plan,
            auto: false,
        },
        now,
        policy,
        renderer,
    )
}

/// The reject reason or escalation queue a decision names, checked against the policy; an
/// approval is refused while a reviewed field breaks a rule.
pub(crate) fn decision_terms<'a>(
    id: i64,
    kind: &'a DecisionKind,
    fields: &FieldValues,
    policy: &Policy,
) -> Result<(Option<&'a str>, Option<&'a str>), QueueError> {
    Ok(match kind {
        DecisionKind::Approve => {
            let problems = check_fields(fields, policy);
            if !problems.is_empty() {
                let list: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
                return Err(QueueError::Invalid(format!(
                    "cannot approve item {id}: {}; edit the field first, or reject or escalate it",
                    list.join("; ")
                )));
            }
            (None, None)
        }
        DecisionKind::Reject { reason } => {
            if policy.reject_reason(reason).is_none() {
                return Err(QueueError::Invalid(format!(
                    "'{reason}' is not a reject reason; reasons: {}",
                    policy
                        .reject_reasons
                        .iter()
                        .map(|r| r.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            (Some(reason.as_str()), None)
        }
        DecisionKind::Escalate { queue } => {
            if policy.escalation_queue(queue).is_none() {
                return Err(QueueError::Invalid(format!(
                    "'{queue}' is not an escalation queue; queues: {}",
                    policy
                        .escalation_queues
                        .iter()
                        .map(|q| q.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            (None, Some(queue.as_str()))
        }
    })
}
