//! Reads: paged and filtered listings, counts and ages, one item in full.
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params_from_iter};

use super::{Result, Store};
use crate::model::{ActionKind, DecisionKind, EditableField, FieldValues, Flag, Request, State};
use crate::queue::{
    ActionStatus, Counts, DecisionRecord, Edit, Filter, ItemDetail, ItemSummary, ListQuery, Millis,
    Page, QueueError, Sort,
};

const SUMMARY_COLUMNS: &str =
    "id, source, external_id, state, revision, intent, priority, confidence,
    confidence_raw, channel, sender, subject, summary, received_at, ai_escalation, flag_count,
    hidden_chars, edited, sample, claimed_by, lease_expires";

fn summary_row(r: &Row<'_>) -> rusqlite::Result<ItemSummary> {
    let state: String = r.get(3)?;
    Ok(ItemSummary {
        id: r.get(0)?,
        source: r.get(1)?,
        external_id: r.get(2)?,
        state: state.parse().unwrap_or(State::Pending),
        revision: r.get(4)?,
        intent: r.get(5)?,
        priority: r.get(6)?,
        confidence: r.get(7)?,
        confidence_invalid: r.get(8)?,
        channel: r.get(9)?,
        sender: r.get(10)?,
        subject: r.get(11)?,
        summary: r.get(12)?,
        received_at: r.get(13)?,
        ai_escalation: r.get(14)?,
        flag_count: r.get(15)?,
        hidden_chars: r.get(16)?,
        edited: r.get(17)?,
        sample: r.get(18)?,
        claimed_by: r.get(19)?,
        lease_expires: r.get(20)?,
    })
}

/// The current revision and its verbatim payload.
pub(crate) fn load_payload(conn: &Connection, id: i64) -> Result<(i64, String)> {
    conn.prepare_cached(
        "SELECT r.revision, v.payload FROM requests r
         JOIN revisions v ON v.request_id = r.id AND v.revision = r.revision WHERE r.id = ?1",
    )?
    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()?
    .ok_or_else(|| QueueError::NotFound(id).into())
}

/// The AI's fields from the payload, with the latest edit of each field on top.
pub(crate) fn effective_fields(conn: &Connection, id: i64, payload: &str) -> Result<FieldValues> {
    let mut fields = match Request::from_json(payload) {
        Ok((_, r)) => FieldValues::from_ai(&r.ai),
        Err(_) => FieldValues::default(),
    };
    let mut stmt = conn
        .prepare_cached("SELECT field, new_value FROM edits WHERE request_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    for row in rows {
        let (field, value) = row?;
        if let Ok(f) = field.parse::<EditableField>() {
            fields.set(f, value);
        }
    }
    Ok(fields)
}

fn where_clause(q: &ListQuery, now: Millis) -> (String, Vec<Box<dyn ToSql>>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    let states: Vec<State> = if q.states.is_empty() {
        vec![State::Pending, State::InReview]
    } else {
        q.states.clone()
    };
    let marks = vec!["?"; states.len()].join(",");
    conds.push(format!("state IN ({marks})"));
    args.extend(
        states
            .iter()
            .map(|s| Box::new(s.as_str()) as Box<dyn ToSql>),
    );
    let f: &Filter = &q.filter;
    if let Some(t) = f.text.as_deref().filter(|t| !t.is_empty()) {
        let pat = format!(
            "%{}%",
            t.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        conds.push(
            "(sender LIKE ? ESCAPE '\\' OR subject LIKE ? ESCAPE '\\' OR summary LIKE ? ESCAPE '\\'
              OR external_id LIKE ? ESCAPE '\\')"
                .into(),
        );
        for _ in 0..4 {
            args.push(Box::new(pat.clone()));
        }
    }
    if !f.priorities.is_empty() {
        conds.push(format!(
            "priority IN ({})",
            vec!["?"; f.priorities.len()].join(",")
        ));
        args.extend(
            f.priorities
                .iter()
                .map(|p| Box::new(p.clone()) as Box<dyn ToSql>),
        );
    }
    if let Some(i) = &f.intent {
        conds.push("intent = ?".into());
        args.push(Box::new(i.clone()));
    }
    if let Some(c) = f.conf_below {
        conds.push("(confidence IS NULL OR confidence < ?)".into());
        args.push(Box::new(c));
    }
    if let Some(c) = f.conf_at_least {
        conds.push("confidence >= ?".into());
        args.push(Box::new(c));
    }
    if let Some(a) = f.older_than {
        conds.push("received_at < ?".into());
        args.push(Box::new(now - a));
    }
    if let Some(a) = f.newer_than {
        conds.push("received_at > ?".into());
        args.push(Box::new(now - a));
    }
    if f.escalation {
        conds.push("(ai_escalation = 1 OR flag_count > 0)".into());
    }
    if f.hidden {
        conds.push("hidden_chars = 1".into());
    }
    (conds.join(" AND "), args)
}

fn order_by(sort: Sort) -> &'static str {
    match sort {
        Sort::Queue => "priority_rank, received_at, id",
        Sort::Oldest => "received_at, id",
        Sort::Newest => "received_at DESC, id DESC",
        Sort::RecentlyDecided => "decision_id DESC, id DESC",
        Sort::Confidence => "confidence IS NOT NULL, confidence, priority_rank, received_at, id",
    }
}

impl Store {
    /// One page of the queue. Only the page's rows are read, plus a count of matches.
    pub fn list(&self, q: &ListQuery) -> Result<Page> {
        let now = self.now();
        let (cond, args) = where_clause(q, now);
        let limit = i64::from(if q.limit == 0 { 100 } else { q.limit });
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        // Limit and offset are bound, so paging reuses one cached statement per query shape.
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM requests WHERE {cond} ORDER BY {} LIMIT ? OFFSET ?",
            order_by(q.sort),
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let paging: [&dyn ToSql; 2] = [&limit, &offset];
        let items = stmt
            .query_map(
                params_from_iter(args.iter().map(|a| a.as_ref()).chain(paging)),
                summary_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // The total is a full count of the matches (a scan on a large queue): paging through
        // the same query reuses it until the database changes.
        let key = (q.filter.older_than.is_none() && q.filter.newer_than.is_none())
            .then(|| serde_json::to_string(&(&q.states, &q.filter)).unwrap_or_default());
        let token = self.change_token()?;
        let cached = self
            .count_cache
            .borrow()
            .as_ref()
            .filter(|(k, t, _)| Some(k) == key.as_ref() && *t == token)
            .map(|(_, _, n)| *n);
        let total = match cached {
            Some(n) => n,
            None => {
                let n: i64 = self
                    .conn
                    .prepare_cached(&format!("SELECT COUNT(*) FROM requests WHERE {cond}"))?
                    .query_row(params_from_iter(args.iter().map(|a| a.as_ref())), |r| {
                        r.get(0)
                    })?;
                if let Some(k) = key {
                    *self.count_cache.borrow_mut() = Some((k, token, n));
                }
                n
            }
        };
        Ok(Page {
            items,
            total: total as u64,
            offset: q.offset,
        })
    }

    /// Counts per state, the oldest undecided item and SLA breaches.
    pub fn counts(&self) -> Result<Counts> {
        let now = self.now();
        let mut c = Counts {
            actions_paused: self.actions_paused()?,
            ..Counts::default()
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM requests WHERE state = ?1")?;
        for s in State::ALL {
            let n: i64 = stmt.query_row([s.as_str()], |r| r.get(0))?;
            let slot = match s {
                State::Pending => &mut c.pending,
                State::InReview => &mut c.in_review,
                State::Approved => &mut c.approved,
                State::Rejected => &mut c.rejected,
                State::Escalated => &mut c.escalated,
            };
            *slot = n as u64;
        }
        let mut oldest = self
            .conn
            .prepare_cached("SELECT MIN(received_at) FROM requests WHERE state = ?1")?;
        for s in ["pending", "in_review"] {
            let o: Option<i64> = oldest.query_row([s], |r| r.get(0))?;
            c.oldest_open = match (c.oldest_open, o) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut breach = self.conn.prepare_cached(
            "SELECT COUNT(*) FROM requests WHERE state = ?1 AND priority_rank = ?2 AND received_at < ?3",
        )?;
        for (rank, p) in self.policy.priorities.iter().enumerate() {
            if let Some(min) = self.policy.sla_minutes.get(p) {
                let cutoff = now - (*min as i64) * 60_000;
                for s in ["pending", "in_review"] {
                    let n: i64 = breach
                        .query_row(rusqlite::params![s, rank as i64, cutoff], |r| r.get(0))?;
                    c.sla_breaches += n as u64;
                }
            }
        }
        Ok(c)
    }

    /// Everything about one item.
    pub fn get(&self, id: i64) -> Result<ItemDetail> {
        let summary = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM requests WHERE id = ?1"
            ))?
            .query_row([id], summary_row)
            .optional()?
            .ok_or(QueueError::NotFound(id))?;
        let (fence, flags_json, decision_id): (i64, String, Option<i64>) = self.conn.query_row(
            "SELECT fence, flags, decision_id FROM requests WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (_, payload) = load_payload(&self.conn, id)?;
        let request = Request::from_json(&payload).map(|(_, r)| r).map_err(|e| {
            QueueError::Storage(format!("item {id}: stored payload unreadable: {e}"))
        })?;
        let fields = effective_fields(&self.conn, id, &payload)?;
        let flags: Vec<Flag> = serde_json::from_str(&flags_json).unwrap_or_default();
        let edits = self
            .conn
            .prepare_cached(
                "SELECT field, old_value, new_value, reviewer, at FROM edits WHERE request_id = ?1 ORDER BY id",
            )?
            .query_map([id], |r| {
                Ok(Edit {
                    field: r.get(0)?,
                    old: r.get(1)?,
                    new: r.get(2)?,
                    reviewer: r.get(3)?,
                    at: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let decision = self
            .conn
            .prepare_cached(
                "SELECT id, kind, reason, queue, note, reviewer, at, undo_until, undone_at
                 FROM decisions WHERE request_id = ?1 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([id], |r| {
                let kind: String = r.get(1)?;
                let kind = match kind.as_str() {
                    "reject" => DecisionKind::Reject {
                        reason: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    },
                    "escalate" => DecisionKind::Escalate {
                        queue: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    },
                    _ => DecisionKind::Approve,
                };
                Ok(DecisionRecord {
                    id: r.get(0)?,
                    kind,
                    note: r.get(4)?,
                    reviewer: r.get(5)?,
                    at: r.get(6)?,
                    undo_until: r.get(7)?,
                    undone: r.get::<_, Option<i64>>(8)?.is_some(),
                })
            })
            .optional()?;
        let actions = self.actions_for(id, decision_id)?;
        Ok(ItemDetail {
            confidence: request.ai.confidence.clone(),
            summary,
            payload,
            request,
            flags,
            fields,
            edits,
            decision,
            actions,
            fence,
        })
    }

    fn actions_for(&self, id: i64, decision_id: Option<i64>) -> Result<Vec<ActionStatus>> {
        let Some(decision_id) = decision_id else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, action, idempotency_key, status, attempts, next_attempt_at, last_error,
                    response
             FROM outbox WHERE request_id = ?1 AND decision_id = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map([id, decision_id], |r| {
            let action: String = r.get(1)?;
            Ok(ActionStatus {
                id: r.get(0)?,
                action: ActionKind::parse(&action).unwrap_or(ActionKind::Crm),
                idempotency_key: r.get(2)?,
                status: r.get(3)?,
                attempts: r.get(4)?,
                next_attempt_at: r.get(5)?,
                last_error: r.get(6)?,
                response: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
