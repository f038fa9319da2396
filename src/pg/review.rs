//! Claims with fenced leases, edits, decisions with their audit and outbox rows, undo, the
//! kill switch, resends and outcomes on PostgreSQL.
//!
//! The rules are the SQLite store's (`crate::store` computes the verdicts, the audit
//! details and the rendered actions); the locking is this backend's own. Every write
//! locks the item rows it changes first (`FOR UPDATE`), the audit head last (in
//! [`PgAudit::append`]). A claim of the next item takes it with `FOR UPDATE SKIP LOCKED`,
//! so claimers on any number of servers never wait on one another nor take the same
//! row; expired leases go back to the queue the same way, each with its
//! `lease_expired` row, skipping any another transaction holds.
use deadpool_postgres::{GenericClient, Transaction};
use serde_json::json;

use crate::model::{EditableField, FieldValues, Policy, Triage};
use crate::queue::{ActionStatus, Claim, Decision, Millis, QueueError, Receipt};
use crate::store::{
    ActionRenderer, NewDecision, PAUSED_KEY, claim_verdict, decision_terms, edit_column,
    edit_value, edited_detail, expired_detail, fields_with_edits, kill_switch_kind, lease_detail,
    lease_until, lease_verdict, outcome_detail, outcome_reason, outcome_state, resend_detail,
    resend_verdict, revision_verdict, undo_too_late, undo_verdict, undone_detail,
};

use super::{PgAudit, PgDb, PgError, Result};

const SYSTEM: &str = "system";

/// The next pending item in queue order, from the open items' index (its condition
/// implies the index's); a row another transaction holds is passed over.
const CLAIM_NEXT_SQL: &str = "SELECT id FROM requests WHERE state = 'pending'
    ORDER BY priority_rank, received_at, id LIMIT 1
    FOR UPDATE SKIP LOCKED";

impl PgDb {
    /// Claims the next pending item in queue order (priority, then age, then id), after
    /// returning items whose lease ran out to the queue.
    pub async fn claim_next(&self, reviewer: &str) -> Result<Option<Claim>> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        reap_expired(&tx, &mut audit, now).await?;
        let next = tx
            .query_opt(&tx.prepare_cached(CLAIM_NEXT_SQL).await?, &[])
            .await?;
        let claim = match next {
            Some(row) => Some(
                take_lease(
                    &tx,
                    &mut audit,
                    row.get(0),
                    reviewer,
                    now,
                    self.policy(),
                    "claimed",
                )
                .await?,
            ),
            None => None,
        };
        self.commit(tx, audit).await?;
        Ok(claim)
    }

    /// Claims one item. Re-claiming your own item gives a new fence (the old one is stale).
    pub async fn claim(&self, id: i64, reviewer: &str) -> Result<Claim> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        // The item first: the only row this claim waits for (every other it takes is
        // skipped when held), so two claims never wait on each other in a cycle.
        let row = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT state, claimed_by, lease_expires FROM requests WHERE id = $1 FOR UPDATE",
                )
                .await?,
                &[&id],
            )
            .await?;
        let reaped = reap_expired(&tx, &mut audit, now).await?;
        let Some(row) = row else {
            return Err(QueueError::NotFound(id).into());
        };
        let (state, holder, expires): (String, Option<String>, Option<i64>) =
            if reaped.contains(&id) {
                ("pending".into(), None, None)
            } else {
                (row.get(0), row.get(1), row.get(2))
            };
        claim_verdict(id, reviewer, &state, holder, expires, now)?;
        let claim =
            take_lease(&tx, &mut audit, id, reviewer, now, self.policy(), "claimed").await?;
        self.commit(tx, audit).await?;
        Ok(claim)
    }

    /// Renews a lease.
    pub async fn heartbeat(&self, claim: &Claim) -> Result<Claim> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        check_claim(&tx, claim, now).await?;
        let expires = lease_until(now, self.policy());
        tx.execute(
            &tx.prepare_cached("UPDATE requests SET lease_expires = $2 WHERE id = $1")
                .await?,
            &[&claim.id, &expires],
        )
        .await?;
        audit.push(
            now,
            &claim.reviewer,
            Some(claim.id),
            "lease_renewed",
            &lease_detail(claim.fence, expires),
        );
        self.commit(tx, audit).await?;
        Ok(Claim {
            lease_expires: expires,
            ..claim.clone()
        })
    }

    /// Returns an item to the queue.
    pub async fn release(&self, claim: &Claim) -> Result<()> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        check_claim(&tx, claim, now).await?;
        tx.execute(
            &tx.prepare_cached(
                "UPDATE requests SET state = 'pending', claimed_by = NULL, lease_expires = NULL,
                    updated_at = $2 WHERE id = $1",
            )
            .await?,
            &[&claim.id, &now],
        )
        .await?;
        audit.push(
            now,
            &claim.reviewer,
            Some(claim.id),
            "released",
            &json!({"fence": claim.fence}),
        );
        self.commit(tx, audit).await
    }

    /// Saves one field edit (old → new) under the claim (nothing is written when the
    /// field already has that value).
    pub async fn edit(
        &self,
        claim: &Claim,
        field: EditableField,
        value: Option<String>,
    ) -> Result<()> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        check_claim(&tx, claim, now).await?;
        apply_edit(&tx, &mut audit, claim, field, value, now, self.policy()).await?;
        self.commit(tx, audit).await
    }

    /// Records a decision with its edits, audit rows and outbox rows, in one transaction.
    pub async fn decide(&self, claim: &Claim, decision: &Decision) -> Result<Receipt> {
        let now = self.now();
        let policy = self.policy().clone();
        let renderer = self.renderer();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        let current = check_claim(&tx, claim, now).await?;
        revision_verdict(claim.id, decision.revision, current)?;
        for (field, value) in &decision.sets {
            apply_edit(&tx, &mut audit, claim, *field, value.clone(), now, &policy).await?;
        }
        let (revision, payload, ai, fields) = reviewed(&tx, claim.id, &policy).await?;
        let (reason, queue) = decision_terms(claim.id, &decision.kind, &fields, &policy)?;
        let plan = policy.plan_actions(&decision.kind, &fields, &ai);
        let note = decision.note.as_deref().filter(|n| !n.trim().is_empty());
        let receipt = record_decision(
            &tx,
            &mut audit,
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
            &policy,
            renderer.as_ref(),
        )
        .await?;
        self.commit(tx, audit).await?;
        Ok(receipt)
    }

    /// Takes back the reviewer's latest decision on an item inside its undo window, while
    /// none of its actions has been attempted. The item returns claimed by the reviewer.
    pub async fn undo(&self, id: i64, reviewer: &str) -> Result<Claim> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        let last = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT d.id, d.reviewer, d.undo_until, d.undone_at FROM requests r
                     JOIN decisions d ON d.id = r.decision_id WHERE r.id = $1
                     FOR UPDATE OF r, d",
                )
                .await?,
                &[&id],
            )
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
        let decision_id = undo_verdict(id, reviewer, last, now)?;
        // Locked, so a dispatcher taking one of them now is seen (it waits, or this does).
        let rows = tx
            .query(
                &tx.prepare_cached(
                    "SELECT status, attempts FROM outbox WHERE decision_id = $1 ORDER BY id FOR UPDATE",
                )
                .await?,
                &[&decision_id],
            )
            .await?;
        let started = rows.iter().any(|r| {
            let (status, attempts): (&str, i64) = (r.get(0), r.get(1));
            status != "queued" || attempts > 0
        });
        if started {
            return Err(undo_too_late(id).into());
        }
        tx.execute(
            &tx.prepare_cached(
                "UPDATE outbox SET status = 'cancelled', updated_at = $2 WHERE decision_id = $1",
            )
            .await?,
            &[&decision_id, &now],
        )
        .await?;
        tx.execute(
            &tx.prepare_cached("UPDATE decisions SET undone_at = $2 WHERE id = $1")
                .await?,
            &[&decision_id, &now],
        )
        .await?;
        tx.execute(
            &tx.prepare_cached("UPDATE requests SET decision_id = NULL WHERE id = $1")
                .await?,
            &[&id],
        )
        .await?;
        audit.push(
            now,
            reviewer,
            Some(id),
            "undone",
            &undone_detail(decision_id),
        );
        let claim =
            take_lease(&tx, &mut audit, id, reviewer, now, self.policy(), "claimed").await?;
        self.commit(tx, audit).await?;
        Ok(claim)
    }

    /// Flips the kill switch, with an audit row.
    pub async fn set_actions_paused(&self, paused: bool, reviewer: &str) -> Result<()> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        tx.execute(
            "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            &[&PAUSED_KEY, &paused.to_string(), &now, &reviewer],
        )
        .await?;
        audit.push(
            now,
            reviewer,
            None,
            kill_switch_kind(paused),
            &json!({"paused": paused}),
        );
        self.commit(tx, audit).await
    }

    /// Sends a dead letter again: it is queued now, with its attempts kept for the record.
    pub async fn resend(&self, action_id: i64, reviewer: &str) -> Result<()> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        let row = tx
            .query_opt(
                "SELECT request_id, status, action, response, attempts FROM outbox
                 WHERE id = $1 FOR UPDATE",
                &[&action_id],
            )
            .await?;
        let (request_id, action) = resend_verdict(
            action_id,
            row.as_ref().map(|r| (r.get(0), r.get(1), r.get(2))),
        )?;
        let (response, attempts): (Option<String>, i64) = match &row {
            Some(r) => (r.get(3), r.get(4)),
            None => (None, 0),
        };
        tx.execute(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $2, updated_at = $2,
                response = $3 WHERE id = $1",
            &[
                &action_id,
                &now,
                &resent_response(response.as_deref(), attempts)?,
            ],
        )
        .await?;
        audit.push(
            now,
            reviewer,
            Some(request_id),
            "resend",
            &resend_detail(action_id, &action),
        );
        self.commit(tx, audit).await
    }

    /// Records an outcome for a decided item. The value must be in the policy's list; a
    /// value that needs a reason must have one.
    pub async fn record_outcome(
        &self,
        id: i64,
        value: &str,
        reason: Option<&str>,
        reviewer: &str,
    ) -> Result<()> {
        let now = self.now();
        let reason = outcome_reason(self.policy(), value, reason)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        let state: Option<String> = tx
            .query_opt("SELECT state FROM requests WHERE id = $1 FOR SHARE", &[&id])
            .await?
            .map(|r| r.get(0));
        outcome_state(id, state.as_deref())?;
        tx.execute(
            "INSERT INTO outcomes (request_id, value, reason, reviewer, at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &value, &reason, &reviewer, &now],
        )
        .await?;
        audit.push(
            now,
            reviewer,
            Some(id),
            "outcome_recorded",
            &outcome_detail(value, reason),
        );
        self.commit(tx, audit).await
    }

    /// Appends one audit entry in a transaction of its own.
    pub async fn audit_event(
        &self,
        actor: &str,
        request_id: Option<i64>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        let now = self.now();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut audit = self.audit();
        audit.push(now, actor, request_id, kind, detail);
        let seqs = audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        seqs.first()
            .copied()
            .ok_or_else(|| PgError::Queue(QueueError::Storage("no audit row was written".into())))
    }

    /// Ends a write: the audit entries (and the change announcement) last, then the commit.
    async fn commit(&self, tx: Transaction<'_>, mut audit: PgAudit) -> Result<()> {
        audit.append(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }
}

/// Puts items whose lease ran out back in the queue, with an audit row each; an item
/// another transaction holds is left to it. Returns the items put back.
async fn reap_expired(tx: &Transaction<'_>, audit: &mut PgAudit, now: Millis) -> Result<Vec<i64>> {
    let rows = tx
        .query(
            &tx.prepare_cached(
                "WITH expired AS (
                     SELECT id, claimed_by, fence, lease_expires FROM requests
                     WHERE state = 'in_review' AND lease_expires <= $1
                     FOR UPDATE SKIP LOCKED)
                 UPDATE requests r SET state = 'pending', claimed_by = NULL, lease_expires = NULL,
                     updated_at = $1
                 FROM expired WHERE r.id = expired.id
                 RETURNING r.id, expired.claimed_by, expired.fence, expired.lease_expires",
            )
            .await?,
            &[&now],
        )
        .await?;
    let mut expired: Vec<(i64, i64, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, Option<i64>>(3).unwrap_or_default(),
                r.get(0),
                r.get::<_, Option<String>>(1).unwrap_or_default(),
                r.get(2),
            )
        })
        .collect();
    expired.sort();
    let mut ids = Vec::with_capacity(expired.len());
    for (_, id, holder, fence) in expired {
        audit.push(
            now,
            SYSTEM,
            Some(id),
            "lease_expired",
            &expired_detail(&holder, fence),
        );
        ids.push(id);
    }
    Ok(ids)
}

/// Locks the item and checks that `claim` is its live claim; the item's current revision
/// when it is.
async fn check_claim(tx: &Transaction<'_>, claim: &Claim, now: Millis) -> Result<i64> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT state, claimed_by, fence, lease_expires, revision FROM requests
                 WHERE id = $1 FOR UPDATE",
            )
            .await?,
            &[&claim.id],
        )
        .await?
        .ok_or(QueueError::NotFound(claim.id))?;
    let state: String = row.get(0);
    lease_verdict(claim, &state, row.get(1), row.get(2), row.get(3), now)?;
    Ok(row.get(4))
}

/// Takes a fresh lease on a locked item: the fence moves on, the old one is stale.
async fn take_lease(
    tx: &Transaction<'_>,
    audit: &mut PgAudit,
    id: i64,
    reviewer: &str,
    now: Millis,
    policy: &Policy,
    kind: &str,
) -> Result<Claim> {
    let expires = lease_until(now, policy);
    let fence: i64 = tx
        .query_one(
            &tx.prepare_cached(
                "UPDATE requests SET state = 'in_review', claimed_by = $2, lease_expires = $3,
                    fence = fence + 1, updated_at = $4
                 WHERE id = $1 RETURNING fence",
            )
            .await?,
            &[&id, &reviewer, &expires, &now],
        )
        .await?
        .get(0);
    audit.push(now, reviewer, Some(id), kind, &lease_detail(fence, expires));
    Ok(Claim {
        id,
        reviewer: reviewer.to_string(),
        fence,
        lease_expires: expires,
    })
}

/// The item's current revision, its payload, the AI's output and the reviewed fields.
async fn reviewed(
    tx: &impl GenericClient,
    id: i64,
    policy: &Policy,
) -> Result<(i64, String, Triage, FieldValues)> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT r.revision, v.payload FROM requests r
                 JOIN revisions v ON v.request_id = r.id AND v.revision = r.revision
                 WHERE r.id = $1",
            )
            .await?,
            &[&id],
        )
        .await?
        .ok_or(QueueError::NotFound(id))?;
    let (revision, payload): (i64, String) = (row.get(0), row.get(1));
    let edits = tx
        .query(
            &tx.prepare_cached(
                "SELECT field, new_value FROM edits WHERE request_id = $1 ORDER BY id",
            )
            .await?,
            &[&id],
        )
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)));
    let (ai, fields) = fields_with_edits(&payload, policy, edits);
    Ok((revision, payload, ai, fields))
}

/// One field edit under a checked claim: the edit row, the item's mirrored column and
/// the `edited` flag, the audit entry. `false` when the value is unchanged.
async fn apply_edit(
    tx: &Transaction<'_>,
    audit: &mut PgAudit,
    claim: &Claim,
    field: EditableField,
    value: Option<String>,
    now: Millis,
    policy: &Policy,
) -> Result<bool> {
    let value = edit_value(field, value, policy)?;
    let (revision, _, _, fields) = reviewed(tx, claim.id, policy).await?;
    let old = fields.get(field).map(str::to_owned);
    if old == value {
        return Ok(false);
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO edits (request_id, revision, field, old_value, new_value, reviewer, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?,
        &[
            &claim.id,
            &revision,
            &field.as_str(),
            &old,
            &value,
            &claim.reviewer,
            &now,
        ],
    )
    .await?;
    if let Some(col) = edit_column(field) {
        tx.execute(
            &tx.prepare_cached(&format!(
                "UPDATE requests SET {col} = $2, edited = 1, updated_at = $3 WHERE id = $1"
            ))
            .await?,
            &[&claim.id, &value, &now],
        )
        .await?;
        if field == EditableField::Priority {
            tx.execute(
                &tx.prepare_cached("UPDATE requests SET priority_rank = $2 WHERE id = $1")
                    .await?,
                &[&claim.id, &policy.priority_rank(value.as_deref())],
            )
            .await?;
        }
    } else {
        tx.execute(
            &tx.prepare_cached("UPDATE requests SET edited = 1, updated_at = $2 WHERE id = $1")
                .await?,
            &[&claim.id, &now],
        )
        .await?;
    }
    audit.push(
        now,
        &claim.reviewer,
        Some(claim.id),
        "edited",
        &edited_detail(field, old.as_deref(), value.as_deref(), claim.fence),
    );
    Ok(true)
}

/// Writes a decision, the item's new state, one outbox row per action (rendered when a
/// renderer is set) and the audit entry, inside the caller's transaction (which holds the
/// item's row): the SQLite store's `record_decision`.
pub(crate) async fn record_decision(
    tx: &deadpool_postgres::Transaction<'_>,
    audit: &mut PgAudit,
    d: &NewDecision<'_>,
    now: Millis,
    policy: &Policy,
    renderer: Option<&std::sync::Arc<dyn ActionRenderer>>,
) -> Result<Receipt> {
    let undo_until = now + policy.undo_seconds as i64 * 1000;
    let fields_json = serde_json::to_string(d.fields).unwrap_or_else(|_| "{}".into());
    let decision_id: i64 = tx
        .query_one(
            "INSERT INTO decisions (request_id, revision, fence, kind, reason, queue, note, reviewer,
                at, fields, undo_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            &[
                &d.id,
                &d.revision,
                &d.fence,
                &d.kind.verb(),
                &d.reason,
                &d.queue,
                &d.note,
                &d.reviewer,
                &now,
                &fields_json,
                &undo_until,
            ],
        )
        .await?
        .get(0);
    let state = d.kind.state();
    tx.execute(
        "UPDATE requests SET state = $2, claimed_by = NULL, lease_expires = NULL,
            decision_id = $3, updated_at = $4 WHERE id = $1",
        &[&d.id, &state.as_str(), &decision_id, &now],
    )
    .await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO outbox (request_id, decision_id, action, idempotency_key, status,
                next_attempt_at, created_at, updated_at, payload)
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6, $7) RETURNING id",
        )
        .await?;
    let mut statuses = Vec::with_capacity(d.plan.queued.len());
    for (action, key, rendered) in crate::store::render_actions(d, decision_id, renderer)? {
        let id: i64 = tx
            .query_one(
                &insert,
                &[
                    &d.id,
                    &decision_id,
                    &action.as_str(),
                    &key,
                    &undo_until,
                    &now,
                    &rendered,
                ],
            )
            .await?
            .get(0);
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
    let detail = crate::store::decided_detail(d, decision_id, &statuses);
    audit.push(now, d.reviewer, Some(d.id), "decided", &detail);
    Ok(Receipt {
        decision_id,
        id: d.id,
        state,
        actions: statuses,
        skipped: d.plan.skipped.clone(),
        undo_until,
    })
}

/// A dead letter's response marked for its resend, as the SQLite store marks it:
/// `resent` lets the dispatcher repost what it could not look up (a person checked),
/// `attempts_base` gives the row a fresh attempt budget.
fn resent_response(response: Option<&str>, attempts: i64) -> Result<String> {
    let mut v: serde_json::Value = serde_json::from_str(response.unwrap_or("{}"))
        .map_err(|e| QueueError::Storage(format!("the outbox row's response is not JSON: {e}")))?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("resent".into(), json!(true));
        obj.insert("attempts_base".into(), json!(attempts));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::resent_response;

    #[test]
    fn a_resent_response_keeps_what_it_held_and_gains_the_marks() {
        assert_eq!(
            resent_response(None, 5).unwrap(),
            r#"{"resent":true,"attempts_base":5}"#
        );
        assert_eq!(
            resent_response(Some(r#"{"a": 1, "resent": false}"#), 2).unwrap(),
            r#"{"a":1,"resent":true,"attempts_base":2}"#
        );
        assert!(resent_response(Some("not json"), 1).is_err());
    }
}
