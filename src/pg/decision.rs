//! Recording a decision on PostgreSQL: the decision row, the item's new state, one outbox
//! row per action (rendered when a renderer is set) and the "decided" audit entry, inside
//! the caller's transaction (which holds the item's row).
use std::sync::Arc;

use crate::model::Policy;
use crate::queue::{ActionStatus, Millis, Receipt};
use crate::store::review::{NewDecision, decided_detail, render_actions};

use super::{PgAudit, Result};

/// The SQLite store's `record_decision` on PostgreSQL.
pub(crate) async fn record_decision(
    tx: &deadpool_postgres::Transaction<'_>,
    audit: &mut PgAudit,
    d: &NewDecision<'_>,
    now: Millis,
    policy: &Policy,
    renderer: Option<&Arc<dyn crate::store::ActionRenderer>>,
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
    for (action, key, rendered) in render_actions(d, decision_id, renderer)? {
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
    let detail = decided_detail(d, decision_id, &statuses);
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
