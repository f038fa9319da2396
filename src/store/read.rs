//! Reads: paged and filtered listings, counts and ages, one item in full.
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params_from_iter};

use super::schema::HOUR_MS;
use super::{Result, Store};
use crate::model::{
    ActionKind, DecisionKind, EditableField, FieldValues, Policy, Request, State, Triage, validate,
};
use crate::queue::{
    ActionStatus, Counts, DecisionRecord, Edit, Filter, ItemDetail, ItemSummary, ListQuery, Millis,
    Page, QueueError, Sort,
};

const SUMMARY_COLUMNS: &str =
    "id, source, external_id, state, revision, intent, priority, confidence,
    confidence_raw, channel, sender, subject, summary, received_at, ai_escalation, flag_count,
    hidden_chars, edited, sample, claimed_by, lease_expires,
    (SELECT d.kind || char(31) || COALESCE(d.reason, d.queue, '') || char(31) || d.reviewer
            || char(31) || d.at
       FROM decisions d WHERE d.id = requests.decision_id AND d.undone_at IS NULL)";

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
        decided: r.get::<_, Option<String>>(21)?.and_then(|s| {
            let mut p = s.split('\u{1f}');
            let (kind, detail, reviewer, at) = (p.next()?, p.next()?, p.next()?, p.next()?);
            Some(crate::queue::Decided {
                kind: kind.to_string(),
                detail: Some(detail.to_string()).filter(|d| !d.is_empty()),
                reviewer: reviewer.to_string(),
                at: at.parse().ok()?,
            })
        }),
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

/// The AI's fields from the payload as the policy reads them, with the latest edit of
/// each field on top.
pub(crate) fn effective_fields(
    conn: &Connection,
    id: i64,
    payload: &str,
    policy: &Policy,
) -> Result<FieldValues> {
    reviewed_fields(conn, id, payload, policy).map(|(_, fields)| fields)
}

/// The AI's output as sent, and the reviewed fields ([`effective_fields`]).
pub(crate) fn reviewed_fields(
    conn: &Connection,
    id: i64,
    payload: &str,
    policy: &Policy,
) -> Result<(Triage, FieldValues)> {
    let mut stmt = conn
        .prepare_cached("SELECT field, new_value FROM edits WHERE request_id = ?1 ORDER BY id")?;
    let edits = stmt
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(fields_with_edits(payload, policy, edits))
}

/// The AI's output in `payload`, and its fields as the policy reads them with `edits`
/// (field, new value; oldest first) on top.
pub(crate) fn fields_with_edits(
    payload: &str,
    policy: &Policy,
    edits: impl IntoIterator<Item = (String, Option<String>)>,
) -> (Triage, FieldValues) {
    let ai = Request::triage_from_json(payload).unwrap_or_default();
    let mut fields = FieldValues::read_from_ai(&ai, policy);
    for (field, value) in edits {
        if let Ok(f) = field.parse::<EditableField>() {
            fields.set(f, value);
        }
    }
    (ai, fields)
}

/// A stored decision's kind from its columns.
pub(crate) fn decision_kind(
    kind: &str,
    reason: Option<String>,
    queue: Option<String>,
) -> DecisionKind {
    match kind {
        "reject" => DecisionKind::Reject {
            reason: reason.unwrap_or_default(),
        },
        "escalate" => DecisionKind::Escalate {
            queue: queue.unwrap_or_default(),
        },
        _ => DecisionKind::Approve,
    }
}

/// An item in full from what is stored: its payload is parsed and its flags are checked
/// now, under `policy` (the stored flags are what listings count; a read-only store cannot
/// bring them up to date).
pub(crate) struct DetailParts {
    pub summary: ItemSummary,
    pub payload: String,
    pub fields: FieldValues,
    pub edits: Vec<Edit>,
    pub decision: Option<DecisionRecord>,
    pub actions: Vec<ActionStatus>,
    pub fence: i64,
}

impl DetailParts {
    pub(crate) fn into_detail(self, policy: &Policy) -> Result<ItemDetail, QueueError> {
        let id = self.summary.id;
        let request = Request::from_json(&self.payload)
            .map(|(_, r)| r)
            .map_err(|e| {
                QueueError::Storage(format!("item {id}: stored payload unreadable: {e}"))
            })?;
        let flags = validate(&request, policy);
        Ok(ItemDetail {
            confidence: request.ai.confidence.clone(),
            summary: self.summary,
            payload: self.payload,
            request,
            flags,
            fields: self.fields,
            edits: self.edits,
            decision: self.decision,
            actions: self.actions,
            fence: self.fence,
        })
    }
}

fn where_clause(q: &ListQuery, now: Millis) -> (String, Vec<Box<dyn ToSql>>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    let states: Vec<State> = if q.states.is_empty() {
        vec![State::Pending, State::InReview]
    } else {
        q.states.clone()
    };
    conds.push(state_condition(&states));
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
        args.push(Box::new(now.saturating_sub(a)));
    }
    if let Some(a) = f.newer_than {
        conds.push("received_at > ?".into());
        args.push(Box::new(now.saturating_sub(a)));
    }
    if f.escalation {
        conds.push("(ai_escalation = 1 OR flag_count > 0)".into());
    }
    if f.hidden {
        conds.push("hidden_chars = 1".into());
    }
    (conds.join(" AND "), args)
}

/// A filter that lets every item of the listed states through. (Every field is named:
/// a new one must be considered here.)
fn unfiltered(f: &Filter) -> bool {
    let Filter {
        text,
        priorities,
        intent,
        conf_below,
        conf_at_least,
        older_than,
        newer_than,
        escalation,
        hidden,
    } = f;
    text.as_deref().is_none_or(str::is_empty)
        && priorities.is_empty()
        && intent.is_none()
        && conf_below.is_none()
        && conf_at_least.is_none()
        && older_than.is_none()
        && newer_than.is_none()
        && !escalation
        && !hidden
}

/// SQL for open items, exactly as the partial index `requests_open` is declared.
pub(crate) const OPEN: &str = "state IN ('pending','in_review')";
/// SQL for decided items, exactly as the partial index `requests_closed` is declared.
pub(crate) const CLOSED: &str = "state NOT IN ('pending','in_review')";

/// The state filter as literals (from the enum, never from input), repeating a partial
/// index's own condition when the states fall inside it so SQLite can use that index
/// (it cannot for bound parameters).
fn state_condition(states: &[State]) -> String {
    let list = states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    let exact = format!("state IN ({list})");
    if states.iter().all(|s| !s.is_decided()) {
        format!("{OPEN} AND {exact}")
    } else if states.iter().all(|s| s.is_decided()) {
        format!("{CLOSED} AND {exact}")
    } else {
        exact
    }
}

fn order_by(sort: Sort, policy: &Policy) -> String {
    match sort {
        Sort::Queue => "priority_rank, received_at, id".into(),
        Sort::LeastUrgent => "priority_rank DESC, received_at DESC, id DESC".into(),
        Sort::Oldest => "received_at, id".into(),
        Sort::Newest => "received_at DESC, id DESC".into(),
        Sort::RecentlyDecided => "decision_id DESC, id DESC".into(),
        Sort::Confidence => {
            "confidence IS NOT NULL, confidence, priority_rank, received_at, id".into()
        }
        Sort::MostConfident => {
            "confidence IS NULL, confidence DESC, priority_rank, received_at, id".into()
        }
        Sort::SlaDue | Sort::SlaLast => {
            // The deadline from the policy's SLA minutes per priority rank (numbers only,
            // so the text is safe to splice into the SQL).
            let mut case = String::from("CASE priority_rank");
            for (rank, p) in policy.priorities.iter().enumerate() {
                if let Some(min) = policy.sla_minutes.get(p) {
                    let ms = i64::try_from(*min).unwrap_or(i64::MAX / 120_000) * 60_000;
                    case.push_str(&format!(" WHEN {rank} THEN received_at + {ms}"));
                }
            }
            case.push_str(" ELSE NULL END");
            if sort == Sort::SlaDue {
                format!("({case}) IS NULL, {case}, id")
            } else {
                format!("({case}) IS NULL, {case} DESC, id DESC")
            }
        }
    }
}

/// Decided items have no place in the queue: their queue order is the most recent
/// decision first.
fn list_sort(q: &ListQuery) -> Sort {
    let decided_only = !q.states.is_empty() && q.states.iter().all(|s| s.is_decided());
    match q.sort {
        Sort::Queue if decided_only => Sort::RecentlyDecided,
        other => other,
    }
}

/// One page's SQL. Limit and offset are bound, so paging reuses one cached statement per
/// query shape.
fn list_sql(cond: &str, sort: Sort, policy: &Policy) -> String {
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM requests WHERE {cond} ORDER BY {} LIMIT ? OFFSET ?",
        order_by(sort, policy),
    )
}

/// Open items of one priority received in a time range (a range of `requests_open`).
fn open_range_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM requests WHERE {OPEN} AND priority_rank = ?1
         AND received_at >= ?2 AND received_at < ?3"
    )
}

/// Where one item sits in a query's order (0-based), if it matches the query.
fn position_sql(cond: &str, sort: Sort, policy: &Policy) -> String {
    format!(
        "SELECT n FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY {}) - 1 AS n FROM requests
         WHERE {cond}) WHERE id = ?",
        order_by(sort, policy),
    )
}

impl Store {
    /// One page of the queue. Only the page's rows are read, plus a count of matches. With
    /// `around`, a page that misses that item is read again where the item is (one read
    /// transaction, so the page, its total and the item's place agree).
    pub fn list(&self, q: &ListQuery) -> Result<Page> {
        // Priorities filter as the policy reads them ("normal" finds the "medium" items).
        let read;
        let q = if q
            .filter
            .priorities
            .iter()
            .any(|p| self.policy.priority_as_read(p) != p)
        {
            let mut r = q.clone();
            for p in &mut r.filter.priorities {
                *p = self.policy.priority_as_read(p).to_string();
            }
            read = r;
            &read
        } else {
            q
        };
        let now = self.now();
        let Some(around) = q.around else {
            return self.list_page(q, now);
        };
        let tx = self.conn.unchecked_transaction()?;
        let mut page = self.list_page(q, now)?;
        if !page.items.iter().any(|i| i.id == around) {
            let pos: Option<i64> =
                if q.states.is_empty() && list_sort(q) == Sort::Queue && unfiltered(&q.filter) {
                    self.queue_position(around)?
                } else {
                    let (cond, args) = where_clause(q, now);
                    let id: [&dyn ToSql; 1] = [&around];
                    self.conn
                        .prepare_cached(&position_sql(&cond, list_sort(q), &self.policy))?
                        .query_row(
                            params_from_iter(args.iter().map(|a| a.as_ref()).chain(id)),
                            |r| r.get(0),
                        )
                        .optional()?
                };
            if let Some(pos) = pos {
                let limit = u64::from(if q.limit == 0 { 100 } else { q.limit });
                page = self.list_page(
                    &ListQuery {
                        offset: (pos as u64).saturating_sub(limit / 2),
                        ..q.clone()
                    },
                    now,
                )?;
            }
        }
        tx.finish()?;
        Ok(page)
    }

    fn list_page(&self, q: &ListQuery, now: Millis) -> Result<Page> {
        let (cond, args) = where_clause(q, now);
        let limit = i64::from(if q.limit == 0 { 100 } else { q.limit });
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let sql = list_sql(&cond, list_sort(q), &self.policy);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let paging: [&dyn ToSql; 2] = [&limit, &offset];
        let items = stmt
            .query_map(
                params_from_iter(args.iter().map(|a| a.as_ref()).chain(paging)),
                summary_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // Without a filter the total is the states' sum in `queue_counts`.
        if unfiltered(&q.filter) {
            let states = if q.states.is_empty() {
                &[State::Pending, State::InReview][..]
            } else {
                &q.states[..]
            };
            return Ok(Page {
                items,
                total: self.state_total(states)?,
                offset: q.offset,
            });
        }
        // With a filter the total is a full count of the matches (a scan on a large
        // queue): paging through the same query reuses it until the database changes.
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

    /// Items in `states`, from the counters the triggers keep (`queue_counts`).
    fn state_total(&self, states: &[State]) -> Result<u64> {
        let list = states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let n: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COALESCE(SUM(n), 0) FROM queue_counts WHERE state IN ({list})"
            ))?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Counts per state, the oldest undecided item and SLA breaches. The counts come from
    /// the counters the triggers keep (see the v11 migration), the oldest item from one
    /// seek per priority, and the breaches from the open items per hour of receipt plus a
    /// count within the hour each cutoff falls in: nothing here reads every item.
    pub fn counts(&self) -> Result<Counts> {
        let now = self.now();
        // One read transaction: the counters and the index agree.
        let tx = self.conn.unchecked_transaction()?;
        let mut c = Counts {
            actions_paused: self.actions_paused()?,
            ..Counts::default()
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, SUM(n) FROM queue_counts GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let slot = match state.parse::<State>().map_err(QueueError::Storage)? {
                State::Pending => &mut c.pending,
                State::InReview => &mut c.in_review,
                State::Approved => &mut c.approved,
                State::Rejected => &mut c.rejected,
                State::Escalated => &mut c.escalated,
            };
            *slot = n.max(0) as u64;
        }
        // The oldest open item: the first entry of each priority in the queue order (a
        // skip-scan over the few priorities, each a seek).
        let mut next = self.conn.prepare_cached(&format!(
            "SELECT priority_rank, received_at FROM requests WHERE {OPEN} AND priority_rank > ?1
             ORDER BY priority_rank, received_at, id LIMIT 1"
        ))?;
        let mut after = i64::MIN;
        while let Some((rank, received)) = next
            .query_row([after], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
        {
            c.oldest_open = Some(c.oldest_open.map_or(received, |o: i64| o.min(received)));
            after = rank;
        }
        for (rank, p) in self.policy.priorities.iter().enumerate() {
            if let Some(min) = self.policy.sla_minutes.get(p) {
                let cutoff = now.saturating_sub((*min as i64).saturating_mul(60_000));
                c.sla_breaches += self.open_received_before(rank as i64, cutoff)?;
            }
        }
        drop(stmt);
        drop(next);
        tx.finish()?;
        Ok(c)
    }

    /// Where an open item sits in the queue order (0-based), or `None` when it is not
    /// open: the open items of higher priorities from `queue_counts`, those of its priority
    /// received in earlier hours from `open_hours`, and those ahead of it within its hour
    /// through the queue index. A window over the whole queue would read every open item.
    fn queue_position(&self, id: i64) -> Result<Option<i64>> {
        let Some((rank, received)) = self
            .conn
            .prepare_cached(&format!(
                "SELECT priority_rank, received_at FROM requests WHERE id = ?1 AND {OPEN}"
            ))?
            .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
        else {
            return Ok(None);
        };
        let higher: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COALESCE(SUM(n), 0) FROM queue_counts WHERE {OPEN} AND priority_rank < ?1"
            ))?
            .query_row([rank], |r| r.get(0))?;
        let hour = received / HOUR_MS;
        // Before 1970 `open_hours`' hours are truncated, not floored: count the rank's items.
        let (earlier, from) = if hour < 1 {
            (0, i64::MIN)
        } else {
            let n: i64 = self
                .conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(n), 0) FROM open_hours WHERE priority_rank = ?1 AND hour < ?2",
                )?
                .query_row(rusqlite::params![rank, hour], |r| r.get(0))?;
            (n, hour * HOUR_MS)
        };
        let within: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM requests WHERE {OPEN} AND priority_rank = ?1
                 AND received_at >= ?2 AND received_at <= ?3
                 AND (received_at < ?3 OR id < ?4)"
            ))?
            .query_row(rusqlite::params![rank, from, received, id], |r| r.get(0))?;
        Ok(Some(higher + earlier + within))
    }

    /// Open items of priority `rank` received before `cutoff`: the whole hours before the
    /// cutoff's hour from `open_hours`, and the items of that hour through the queue index
    /// (at most one hour's items of one priority).
    fn open_received_before(&self, rank: i64, cutoff: Millis) -> Result<u64> {
        let hour = cutoff / HOUR_MS;
        let range = open_range_sql();
        if hour < 1 {
            // Before 1970 `open_hours`' hours are truncated, not floored: count it all.
            let n: i64 = self
                .conn
                .prepare_cached(&range)?
                .query_row(rusqlite::params![rank, i64::MIN, cutoff], |r| r.get(0))?;
            return Ok(n.max(0) as u64);
        }
        let whole: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(n), 0) FROM open_hours WHERE priority_rank = ?1 AND hour < ?2",
            )?
            .query_row(rusqlite::params![rank, hour], |r| r.get(0))?;
        let part: i64 = self
            .conn
            .prepare_cached(&range)?
            .query_row(rusqlite::params![rank, hour * HOUR_MS, cutoff], |r| {
                r.get(0)
            })?;
        Ok((whole + part).max(0) as u64)
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
        let (fence, decision_id): (i64, Option<i64>) = self.conn.query_row(
            "SELECT fence, decision_id FROM requests WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (_, payload) = load_payload(&self.conn, id)?;
        let fields = effective_fields(&self.conn, id, &payload, &self.policy)?;
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
                let kind = decision_kind(&r.get::<_, String>(1)?, r.get(2)?, r.get(3)?);
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
        Ok(DetailParts {
            summary,
            payload,
            fields,
            edits,
            decision,
            actions,
            fence,
        }
        .into_detail(&self.policy)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Policy;
    use crate::store::StoreOptions;
    use std::sync::Arc;

    /// The query plan of `sql`, one line per step.
    fn plan(store: &Store, sql: &str, args: &[Box<dyn ToSql>]) -> String {
        let mut stmt = store
            .connection()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let n = stmt.parameter_count();
        let rows = stmt
            .query_map(
                params_from_iter(
                    (0..n).map(|i| args.get(i).map_or(&0i64 as &dyn ToSql, |a| a.as_ref())),
                ),
                |r| r.get::<_, String>(3),
            )
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn queue_reads_use_the_partial_indexes_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("q.db"),
            Arc::new(Policy::default()),
            &StoreOptions::default(),
        )
        .unwrap();
        let query = |states: Vec<State>, sort: Sort| ListQuery {
            states,
            sort,
            ..Default::default()
        };
        let decided = vec![State::Approved, State::Rejected, State::Escalated];
        for (q, index) in [
            (query(vec![], Sort::Queue), "requests_open"),
            (query(vec![State::Pending], Sort::Queue), "requests_open"),
            (query(vec![State::Approved], Sort::Queue), "requests_closed"),
            (query(decided, Sort::RecentlyDecided), "requests_closed"),
        ] {
            let (cond, args) = where_clause(&q, 0);
            let p = plan(
                &store,
                &list_sql(&cond, list_sort(&q), &store.policy),
                &args,
            );
            assert!(p.contains(index) && !p.contains("TEMP B-TREE"), "{p}");
        }
        let p = plan(&store, crate::store::review::CLAIM_NEXT_SQL, &[]);
        assert!(
            p.contains("requests_open") && !p.contains("TEMP B-TREE"),
            "{p}"
        );
        // SLA breaches within the cutoff's hour: a range of the open items' index.
        let p = plan(&store, &open_range_sql(), &[]);
        assert!(
            p.contains(
                "COVERING INDEX requests_open (priority_rank=? AND received_at>? AND received_at<?)"
            ),
            "{p}"
        );
    }
}
