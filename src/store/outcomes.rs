//! Outcomes: what happened after a decision (qualified, meeting booked, lost…), recorded
//! by a reviewer, audited, and counted in stats.
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::{Result, Store};
use crate::model::Policy;
use crate::queue::{Millis, QueueError};

/// A recorded outcome.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub value: String,
    pub reason: Option<String>,
    pub reviewer: String,
    pub at: Millis,
}

impl Store {
    /// Records an outcome for a decided item. The value must be in the policy's list; a
    /// value that needs a reason must have one.
    pub fn record_outcome(
        &mut self,
        id: i64,
        value: &str,
        reason: Option<&str>,
        reviewer: &str,
    ) -> Result<Outcome> {
        self.write_audited(|tx, now, policy, audit| {
            let reason = outcome_reason(policy, value, reason)?;
            let state: Option<String> = tx
                .prepare_cached("SELECT state FROM requests WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            outcome_state(id, state.as_deref())?;
            tx.prepare_cached(
                "INSERT INTO outcomes (request_id, value, reason, reviewer, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, value, reason, reviewer, now])?;
            audit.append(
                tx,
                now,
                reviewer,
                Some(id),
                "outcome_recorded",
                &outcome_detail(value, reason),
            )?;
            Ok(Outcome {
                value: value.to_string(),
                reason: reason.map(str::to_owned),
                reviewer: reviewer.to_string(),
                at: now,
            })
        })
    }

    /// An item's outcomes, oldest first.
    pub fn outcomes(&self, id: i64) -> Result<Vec<Outcome>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT value, reason, reviewer, at FROM outcomes WHERE request_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(Outcome {
                value: r.get(0)?,
                reason: r.get(1)?,
                reviewer: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The reason an outcome is recorded with (trimmed; none when empty), or why `value` is
/// refused: not one of the policy's outcomes, or one that needs a reason given none.
pub(crate) fn outcome_reason<'a>(
    policy: &Policy,
    value: &str,
    reason: Option<&'a str>,
) -> Result<Option<&'a str>, QueueError> {
    let Some(kind) = policy.outcome(value) else {
        return Err(QueueError::Invalid(format!(
            "'{value}' is not an outcome; outcomes: {}",
            policy
                .outcomes
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if kind.needs_reason && reason.is_none() {
        return Err(QueueError::Invalid(format!(
            "the outcome '{value}' needs a reason (--reason TEXT)"
        )));
    }
    Ok(reason)
}

/// Outcomes are recorded for decided items only (`state`: none when there is no item `id`).
pub(crate) fn outcome_state(id: i64, state: Option<&str>) -> Result<(), QueueError> {
    match state {
        None => Err(QueueError::NotFound(id)),
        Some("approved" | "rejected" | "escalated") => Ok(()),
        Some(s) => Err(QueueError::Invalid(format!(
            "item {id} is {s}: outcomes are recorded after a decision"
        ))),
    }
}

/// The detail of an `outcome_recorded` audit row.
pub(crate) fn outcome_detail(value: &str, reason: Option<&str>) -> serde_json::Value {
    json!({"outcome": value, "reason": reason})
}
