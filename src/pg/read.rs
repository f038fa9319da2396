//! Listings, counts, item detail, timelines, previews and statistics on PostgreSQL: the
//! SQLite store's answers (`crate::store::read`, `stats`, `outbox`, `outcomes`) from this
//! database's SQL. Each call that reads more than one statement runs in one read-only
//! `REPEATABLE READ` transaction, so a page, its total and an item's place agree. Counts
//! are aggregates over the partial indexes (there are no counter tables to keep here).
use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgDb, Result};
use crate::model::{ActionKind, DecisionKind, Policy, State};
use crate::queue::{
    ActionPreview, ActionStatus, AuditEntry, Counts, Decided, DecisionRecord, Edit, ItemDetail,
    ItemSummary, ListQuery, Millis, Page, QueueError, Sort,
};
use crate::store::read::{DetailParts, decision_kind, fields_with_edits};
use crate::store::{OutboxRow, Outcome};

/// A bound parameter.
type Arg = Box<dyn ToSql + Sync + Send>;

/// Open items, exactly as the partial index `requests_open` is declared.
const OPEN: &str = "r.state IN ('pending','in_review')";
/// Decided items, exactly as the partial index `requests_closed` is declared.
const CLOSED: &str = "r.state NOT IN ('pending','in_review')";

/// The columns of an [`ItemSummary`], from `requests r` and the standing decision `d`.
const SUMMARY_COLUMNS: &str = "r.id, r.source, r.external_id, r.state, r.revision, r.intent,
    r.priority, r.confidence, r.confidence_raw, r.channel, r.sender, r.subject, r.summary,
    r.received_at, r.ai_escalation, r.flag_count, r.hidden_chars, r.edited, r.sample,
    r.claimed_by, r.lease_expires, d.kind, COALESCE(d.reason, d.queue, ''), d.reviewer, d.at";
const SUMMARY_FROM: &str = "requests r
    LEFT JOIN decisions d ON d.id = r.decision_id AND d.undone_at IS NULL";

/// SQLite's `LIKE` folds ASCII letters only: the column's ASCII capitals are lowered and
/// the pattern is lowered in Rust the same way.
const ASCII_LOWER: &str = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'";

fn summary_row(r: &Row) -> Result<ItemSummary> {
    let state: String = r.try_get(3)?;
    let kind: Option<String> = r.try_get(21)?;
    let decided = match kind {
        Some(kind) => {
            let detail: String = r.try_get(22)?;
            Some(Decided {
                kind,
                detail: Some(detail).filter(|d| !d.is_empty()),
                reviewer: r.try_get(23)?,
                at: r.try_get(24)?,
            })
        }
        None => None,
    };
    Ok(ItemSummary {
        id: r.try_get(0)?,
        source: r.try_get(1)?,
        external_id: r.try_get(2)?,
        state: state.parse().unwrap_or(State::Pending),
        revision: r.try_get(4)?,
        intent: r.try_get(5)?,
        priority: r.try_get(6)?,
        confidence: r.try_get(7)?,
        confidence_invalid: r.try_get(8)?,
        channel: r.try_get(9)?,
        sender: r.try_get(10)?,
        subject: r.try_get(11)?,
        summary: r.try_get(12)?,
        received_at: r.try_get(13)?,
        ai_escalation: r.try_get::<_, i64>(14)? != 0,
        flag_count: u32::try_from(r.try_get::<_, i64>(15)?).unwrap_or(u32::MAX),
        hidden_chars: r.try_get::<_, i64>(16)? != 0,
        edited: r.try_get::<_, i64>(17)? != 0,
        sample: r.try_get::<_, i64>(18)? != 0,
        claimed_by: r.try_get(19)?,
        lease_expires: r.try_get(20)?,
        decided,
    })
}

/// A query's conditions with their bound values (`$1`, `$2`, … in order).
#[derive(Default)]
struct Where {
    conds: Vec<String>,
    args: Vec<Arg>,
}

impl Where {
    /// Binds `v` and names its placeholder.
    fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.args.push(Box::new(v));
        format!("${}", self.args.len())
    }

    fn sql(&self) -> String {
        self.conds.join(" AND ")
    }

    /// The bound values, then `more`.
    fn params<'a>(&'a self, more: &[&'a (dyn ToSql + Sync)]) -> Vec<&'a (dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .chain(more.iter().copied())
            .collect()
    }

    /// The placeholder the next bound value gets.
    fn next(&self, k: usize) -> String {
        format!("${}", self.args.len() + k)
    }
}

/// The listing's conditions: the states as literals (from the enum, never from input,
/// and repeating a partial index's own condition when the states fall inside it), and
/// every filter value bound.
fn where_clause(q: &ListQuery, now: Millis) -> Where {
    let mut w = Where::default();
    let states: Vec<State> = if q.states.is_empty() {
        vec![State::Pending, State::InReview]
    } else {
        q.states.clone()
    };
    w.conds.push(state_condition(&states));
    let f = &q.filter;
    if let Some(t) = f.text.as_deref().filter(|t| !t.is_empty()) {
        let pat = format!(
            "%{}%",
            t.to_ascii_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let p = w.bind(pat);
        // `ILIKE` (which folds more than ASCII) picks the candidates cheaply; the exact
        // ASCII-folded match decides.
        let like = |col: &str| {
            format!("(r.{col} ILIKE {p} AND translate(r.{col}, {ASCII_LOWER}) LIKE {p})")
        };
        w.conds.push(format!(
            "({} OR {} OR {} OR {})",
            like("sender"),
            like("subject"),
            like("summary"),
            like("external_id")
        ));
    }
    if !f.priorities.is_empty() {
        let p = w.bind(f.priorities.clone());
        w.conds.push(format!("r.priority = ANY({p}::text[])"));
    }
    if let Some(i) = &f.intent {
        let p = w.bind(i.clone());
        w.conds.push(format!("r.intent = {p}"));
    }
    if let Some(c) = f.conf_below {
        let p = w.bind(c);
        w.conds
            .push(format!("(r.confidence IS NULL OR r.confidence < {p})"));
    }
    if let Some(c) = f.conf_at_least {
        let p = w.bind(c);
        w.conds.push(format!("r.confidence >= {p}"));
    }
    if let Some(a) = f.older_than {
        let p = w.bind(now.saturating_sub(a));
        w.conds.push(format!("r.received_at < {p}"));
    }
    if let Some(a) = f.newer_than {
        let p = w.bind(now.saturating_sub(a));
        w.conds.push(format!("r.received_at > {p}"));
    }
    if f.escalation {
        w.conds
            .push("(r.ai_escalation = 1 OR r.flag_count > 0)".into());
    }
    if f.hidden {
        w.conds.push("r.hidden_chars = 1".into());
    }
    w
}

fn state_condition(states: &[State]) -> String {
    let list = states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    let exact = format!("r.state IN ({list})");
    if states.iter().all(|s| !s.is_decided()) {
        format!("{OPEN} AND {exact}")
    } else if states.iter().all(|s| s.is_decided()) {
        format!("{CLOSED} AND {exact}")
    } else {
        exact
    }
}

fn decided_only(q: &ListQuery) -> bool {
    !q.states.is_empty() && q.states.iter().all(|s| s.is_decided())
}

/// Decided items have no place in the queue: their queue order is the most recent
/// decision first.
fn list_sort(q: &ListQuery) -> Sort {
    match q.sort {
        Sort::Queue if decided_only(q) => Sort::RecentlyDecided,
        other => other,
    }
}

/// The order as SQLite sorts: there NULL is the smallest value, here the largest, so
/// every nullable key says where its NULLs go. (Decided items always carry their
/// decision, so a listing of decided items only reads `requests_closed` backwards.)
fn order_by(sort: Sort, policy: &Policy, decided_only: bool) -> String {
    let r = "r.priority_rank, r.received_at, r.id";
    match sort {
        Sort::Queue => r.into(),
        Sort::LeastUrgent => "r.priority_rank DESC, r.received_at DESC, r.id DESC".into(),
        Sort::Oldest => "r.received_at, r.id".into(),
        Sort::Newest => "r.received_at DESC, r.id DESC".into(),
        Sort::RecentlyDecided if decided_only => "r.decision_id DESC, r.id DESC".into(),
        Sort::RecentlyDecided => "r.decision_id DESC NULLS LAST, r.id DESC".into(),
        Sort::Confidence => format!("r.confidence IS NOT NULL, r.confidence, {r}"),
        Sort::MostConfident => format!("r.confidence IS NULL, r.confidence DESC, {r}"),
        Sort::SlaDue | Sort::SlaLast => {
            // The deadline from the policy's SLA minutes per priority rank (numbers only,
            // so the text is safe to splice into the SQL).
            let mut case = String::from("CASE r.priority_rank");
            for (rank, p) in policy.priorities.iter().enumerate() {
                if let Some(min) = policy.sla_minutes.get(p) {
                    let ms = i64::try_from(*min).unwrap_or(i64::MAX / 120_000) * 60_000;
                    case.push_str(&format!(" WHEN {rank} THEN r.received_at + {ms}"));
                }
            }
            case.push_str(" ELSE NULL END");
            if sort == Sort::SlaDue {
                format!("({case}) IS NULL, {case}, r.id")
            } else {
                format!("({case}) IS NULL, {case} DESC, r.id DESC")
            }
        }
    }
}

fn page_limit(q: &ListQuery) -> i64 {
    i64::from(if q.limit == 0 { 100 } else { q.limit })
}

/// Runs `body` in a read-only `REPEATABLE READ` transaction: one snapshot for every
/// statement in it.
macro_rules! snapshot {
    ($db:expr, |$tx:ident| $body:expr) => {{
        let mut client = $db.client().await?;
        let $tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let out = $body;
        $tx.commit().await?;
        out
    }};
}

impl PgDb {
    /// One page of the queue, with the count of matches. With `around`, a page that
    /// misses that item is read again where the item is (one snapshot, so the page, its
    /// total and the item's place agree).
    pub async fn list(&self, q: &ListQuery) -> Result<Page> {
        // Priorities filter as the policy reads them ("normal" finds the "medium" items).
        let mut q = q.clone();
        for p in &mut q.filter.priorities {
            *p = self.policy().priority_as_read(p).to_string();
        }
        let now = self.now();
        let w = where_clause(&q, now);
        let page = snapshot!(self, |tx| {
            let mut page = self.list_page(&tx, &q, &w).await?;
            if let Some(around) = q.around
                && !page.items.iter().any(|i| i.id == around)
                && let Some(pos) = self.position(&tx, &q, &w, around).await?
            {
                let offset = (pos as u64).saturating_sub(page_limit(&q) as u64 / 2);
                page = self
                    .list_page(
                        &tx,
                        &ListQuery {
                            offset,
                            ..q.clone()
                        },
                        &w,
                    )
                    .await?;
            }
            page
        });
        Ok(page)
    }

    async fn list_page(&self, c: &impl GenericClient, q: &ListQuery, w: &Where) -> Result<Page> {
        let limit = page_limit(q);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let cond = w.sql();
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM} WHERE {cond} ORDER BY {} LIMIT {} OFFSET {}",
            order_by(list_sort(q), self.policy(), decided_only(q)),
            w.next(1),
            w.next(2),
        );
        let count_sql = format!("SELECT COUNT(*) FROM requests r WHERE {cond}");
        let (page, count) = (
            c.prepare_cached(&sql).await?,
            c.prepare_cached(&count_sql).await?,
        );
        let (page_args, count_args) = (w.params(&[&limit, &offset]), w.params(&[]));
        let (rows, total) =
            tokio::try_join!(c.query(&page, &page_args), c.query_one(&count, &count_args),)?;
        let items = rows.iter().map(summary_row).collect::<Result<Vec<_>>>()?;
        let total: i64 = total.try_get(0)?;
        Ok(Page {
            items,
            total: total.max(0) as u64,
            offset: q.offset,
        })
    }

    /// Where item `id` sits in the query's order (0-based), if it matches the query. In
    /// the queue order that is a count of the matches before it (a range of
    /// `requests_open`); other orders number the matches.
    async fn position(
        &self,
        c: &impl GenericClient,
        q: &ListQuery,
        w: &Where,
        id: i64,
    ) -> Result<Option<i64>> {
        let cond = w.sql();
        let k = w.next(1);
        let sort = list_sort(q);
        let sql = if sort == Sort::Queue {
            format!(
                "SELECT (SELECT COUNT(*) FROM requests r WHERE {cond}
                           AND (r.priority_rank, r.received_at, r.id)
                             < (t.priority_rank, t.received_at, t.id))
                 FROM requests t WHERE t.id = {k}
                   AND EXISTS (SELECT 1 FROM requests r WHERE r.id = t.id AND {cond})"
            )
        } else {
            format!(
                "SELECT n FROM (SELECT r.id, ROW_NUMBER() OVER (ORDER BY {}) - 1 AS n
                                FROM requests r WHERE {cond}) w WHERE w.id = {k}",
                order_by(sort, self.policy(), decided_only(q)),
            )
        };
        let stmt = c.prepare_cached(&sql).await?;
        let args = w.params(&[&id]);
        Ok(match c.query_opt(&stmt, &args).await? {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    /// Counts per state, the oldest undecided item and SLA breaches, from one snapshot:
    /// the items per state and priority from `requests_state_rank` (an index-only scan), the
    /// oldest open item by one seek per priority of `requests_open`, and the breaches as a
    /// priority's open items less those still within its SLA (the newest end of a range of
    /// `requests_open`).
    pub async fn counts(&self) -> Result<Counts> {
        let now = self.now();
        Ok(snapshot!(self, |tx| self.counts_in(&tx, now).await?))
    }

    async fn counts_in(&self, c: &impl GenericClient, now: Millis) -> Result<Counts> {
        let (mut ranks, mut cutoffs) = (Vec::new(), Vec::new());
        for (rank, p) in self.policy().priorities.iter().enumerate() {
            if let Some(min) = self.policy().sla_minutes.get(p) {
                ranks.push(rank as i64);
                cutoffs.push(now.saturating_sub((*min as i64).saturating_mul(60_000)));
            }
        }
        let states = c
            .prepare_cached(
                "SELECT state, priority_rank, COUNT(*) FROM requests GROUP BY state, priority_rank",
            )
            .await?;
        let oldest = c
            .prepare_cached(&format!(
                "WITH RECURSIVE firsts (priority_rank, received_at) AS (
                     (SELECT r.priority_rank, r.received_at FROM requests r WHERE {OPEN}
                      ORDER BY r.priority_rank, r.received_at, r.id LIMIT 1)
                     UNION ALL
                     SELECT n.priority_rank, n.received_at FROM firsts f,
                       LATERAL (SELECT r.priority_rank, r.received_at FROM requests r
                                WHERE {OPEN} AND r.priority_rank > f.priority_rank
                                ORDER BY r.priority_rank, r.received_at, r.id LIMIT 1) n
                 )
                 SELECT MIN(received_at) FROM firsts"
            ))
            .await?;
        // The open items of each priority still within its SLA: the newest part of a range
        // of `requests_open` (the rest of the rank's open items, counted above, are past it).
        let within = c
            .prepare_cached(&format!(
                "SELECT s.rank, x.n FROM unnest($1::BIGINT[], $2::BIGINT[]) s (rank, cutoff),
                   LATERAL (SELECT COUNT(*) AS n FROM requests r WHERE {OPEN}
                            AND r.priority_rank = s.rank AND r.received_at >= s.cutoff) x"
            ))
            .await?;
        let sla: [&(dyn ToSql + Sync); 2] = [&ranks, &cutoffs];
        let (states, oldest, within, paused) = tokio::try_join!(
            pg(c.query(&states, &[])),
            pg(c.query_one(&oldest, &[])),
            pg(c.query(&within, &sla)),
            self.paused_in(c),
        )?;
        let mut counts = Counts {
            actions_paused: paused,
            oldest_open: oldest.try_get(0)?,
            ..Counts::default()
        };
        let mut open_by_rank: BTreeMap<i64, i64> = BTreeMap::new();
        for row in &states {
            let state: String = row.try_get(0)?;
            let rank: i64 = row.try_get(1)?;
            let n: i64 = row.try_get(2)?;
            let state = state.parse::<State>().map_err(QueueError::Storage)?;
            if !state.is_decided() {
                *open_by_rank.entry(rank).or_default() += n;
            }
            let slot = match state {
                State::Pending => &mut counts.pending,
                State::InReview => &mut counts.in_review,
                State::Approved => &mut counts.approved,
                State::Rejected => &mut counts.rejected,
                State::Escalated => &mut counts.escalated,
            };
            *slot += n.max(0) as u64;
        }
        for row in &within {
            let (rank, n): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            let open = open_by_rank.get(&rank).copied().unwrap_or(0);
            counts.sla_breaches += (open - n).max(0) as u64;
        }
        Ok(counts)
    }

    /// Everything about one item.
    pub async fn get(&self, id: i64) -> Result<ItemDetail> {
        let parts = snapshot!(self, |tx| self.detail_parts(&tx, &id).await?);
        Ok(parts.into_detail(self.policy())?)
    }

    async fn detail_parts(&self, c: &impl GenericClient, key: &i64) -> Result<DetailParts> {
        let id = *key;
        let summary = c
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS}, r.fence, r.decision_id, v.payload FROM {SUMMARY_FROM}
                 LEFT JOIN revisions v ON v.request_id = r.id AND v.revision = r.revision
                 WHERE r.id = $1"
            ))
            .await?;
        let edits = c
            .prepare_cached(
                "SELECT field, old_value, new_value, reviewer, at FROM edits
                 WHERE request_id = $1 ORDER BY id",
            )
            .await?;
        let decision = c
            .prepare_cached(
                "SELECT id, kind, reason, queue, note, reviewer, at, undo_until, undone_at
                 FROM decisions WHERE request_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .await?;
        let actions = c
            .prepare_cached(
                "SELECT o.id, o.action, o.idempotency_key, o.status, o.attempts,
                        o.next_attempt_at, o.last_error, o.response
                 FROM outbox o JOIN requests r ON r.id = o.request_id
                 WHERE o.request_id = $1 AND o.decision_id = r.decision_id ORDER BY o.id",
            )
            .await?;
        let id: [&(dyn ToSql + Sync); 1] = [&id];
        let (summary, edits, decision, actions) = tokio::try_join!(
            c.query_opt(&summary, &id),
            c.query(&edits, &id),
            c.query_opt(&decision, &id),
            c.query(&actions, &id),
        )?;
        let row = summary.ok_or(QueueError::NotFound(*key))?;
        let payload: Option<String> = row.try_get(27)?;
        let payload = payload.ok_or(QueueError::NotFound(*key))?;
        let edits = edits
            .iter()
            .map(|r| {
                Ok(Edit {
                    field: r.try_get(0)?,
                    old: r.try_get(1)?,
                    new: r.try_get(2)?,
                    reviewer: r.try_get(3)?,
                    at: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (_, fields) = fields_with_edits(
            &payload,
            self.policy(),
            edits.iter().map(|e| (e.field.clone(), e.new.clone())),
        );
        let decision = match decision {
            Some(r) => Some(DecisionRecord {
                id: r.try_get(0)?,
                kind: decision_kind(&r.try_get::<_, String>(1)?, r.try_get(2)?, r.try_get(3)?),
                note: r.try_get(4)?,
                reviewer: r.try_get(5)?,
                at: r.try_get(6)?,
                undo_until: r.try_get(7)?,
                undone: r.try_get::<_, Option<i64>>(8)?.is_some(),
            }),
            None => None,
        };
        let actions = actions
            .iter()
            .map(|r| {
                Ok(ActionStatus {
                    id: r.try_get(0)?,
                    action: ActionKind::parse(&r.try_get::<_, String>(1)?)
                        .unwrap_or(ActionKind::Crm),
                    idempotency_key: r.try_get(2)?,
                    status: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                    next_attempt_at: r.try_get(5)?,
                    last_error: r.try_get(6)?,
                    response: r.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DetailParts {
            summary: summary_row(&row)?,
            payload,
            fields,
            edits,
            decision,
            actions,
            fence: row.try_get(25)?,
        })
    }

    /// An item's audit entries, oldest first.
    pub async fn timeline(&self, id: i64) -> Result<Vec<AuditEntry>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT seq, at, actor, request_id, kind, detail, os_user FROM audit
                 WHERE request_id = $1 ORDER BY seq",
            )
            .await?;
        c.query(&stmt, &[&id])
            .await?
            .iter()
            .map(|r| {
                let detail: String = r.try_get(5)?;
                Ok(AuditEntry {
                    seq: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    request_id: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                    os_user: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Whether outbound sending is paused for everyone using this database.
    pub async fn actions_paused(&self) -> Result<bool> {
        let c = self.client().await?;
        self.paused_in(&c).await
    }

    async fn paused_in(&self, c: &impl GenericClient) -> Result<bool> {
        let stmt = c
            .prepare_cached("SELECT value FROM settings WHERE key = $1")
            .await?;
        let v: Option<String> = match c
            .query_opt(&stmt, &[&crate::store::outbox::PAUSED_KEY])
            .await?
        {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        Ok(v.as_deref() == Some("true"))
    }

    /// Every outbox row of an item, oldest first.
    pub async fn outbox_rows(&self, request_id: i64) -> Result<Vec<OutboxRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT id, decision_id, action, idempotency_key, status, attempts,
                    next_attempt_at, last_error, payload, response, updated_at
                 FROM outbox WHERE request_id = $1 ORDER BY id",
            )
            .await?;
        c.query(&stmt, &[&request_id])
            .await?
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get(0)?,
                    decision_id: r.try_get(1)?,
                    action: r.try_get(2)?,
                    idempotency_key: r.try_get(3)?,
                    status: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    next_attempt_at: r.try_get(6)?,
                    last_error: r.try_get(7)?,
                    payload: r.try_get(8)?,
                    response: r.try_get(9)?,
                    updated_at: r.try_get(10)?,
                })
            })
            .collect()
    }

    /// An item's outcomes, oldest first.
    pub async fn outcomes(&self, id: i64) -> Result<Vec<Outcome>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT value, reason, reviewer, at FROM outcomes WHERE request_id = $1 ORDER BY id",
            )
            .await?;
        c.query(&stmt, &[&id])
            .await?
            .iter()
            .map(|r| {
                Ok(Outcome {
                    value: r.try_get(0)?,
                    reason: r.try_get(1)?,
                    reviewer: r.try_get(2)?,
                    at: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// What deciding `kind` on item `id` now would send, rendered from the current fields:
    /// the console's preview. Writes nothing. Empty when no renderer is set or the decision
    /// queues no actions. The decision id is the one the next decision takes unless
    /// another comes first.
    pub async fn preview_actions(
        &self,
        id: i64,
        kind: &DecisionKind,
        reviewer: &str,
        note: Option<&str>,
    ) -> Result<Vec<ActionPreview>> {
        let Some(renderer) = self.renderer() else {
            return Ok(Vec::new());
        };
        let (payload, edits, decision_id) = snapshot!(self, |tx| {
            let payload = tx
                .prepare_cached(
                    "SELECT v.payload FROM requests r
                     JOIN revisions v ON v.request_id = r.id AND v.revision = r.revision
                     WHERE r.id = $1",
                )
                .await?;
            let edits = tx
                .prepare_cached(
                    "SELECT field, new_value FROM edits WHERE request_id = $1 ORDER BY id",
                )
                .await?;
            let next = tx
                .prepare_cached(
                    "SELECT GREATEST(
                         (SELECT COALESCE(MAX(id), 0) FROM decisions),
                         COALESCE(pg_sequence_last_value(
                             pg_get_serial_sequence('decisions', 'id')::regclass), 0)) + 1",
                )
                .await?;
            let key: [&(dyn ToSql + Sync); 1] = [&id];
            let (payload, edits, next) = tokio::try_join!(
                tx.query_opt(&payload, &key),
                tx.query(&edits, &key),
                tx.query_one(&next, &[]),
            )?;
            let payload: String = payload.ok_or(QueueError::NotFound(id))?.try_get(0)?;
            let edits = edits
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<(String, Option<String>)>>>()?;
            (payload, edits, next.try_get::<_, i64>(0)?)
        });
        let (ai, fields) = fields_with_edits(&payload, self.policy(), edits);
        let plan = self.policy().plan_actions(kind, &fields, &ai);
        if plan.queued.is_empty() && plan.skipped.is_empty() {
            return Ok(Vec::new());
        }
        Ok(crate::store::outbox::render_previews(
            renderer.as_ref(),
            plan,
            &crate::store::outbox::Preview {
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

    /// Ingests per hour over the last 24 hours against the median hour of the 7 days
    /// before, escalations per hour, and the alert: one range of `requests_ingested` and
    /// one of `decisions_at`.
    pub async fn volume(&self) -> Result<crate::stats::Volume> {
        let c = self.client().await?;
        self.volume_in(&c, self.now()).await
    }

    async fn volume_in(&self, c: &impl GenericClient, now: Millis) -> Result<crate::stats::Volume> {
        use crate::store::stats::{HOUR, add_to_hour, baseline_of, volume_of};
        let this_hour = now - now.rem_euclid(HOUR);
        let start = this_hour - 23 * HOUR;
        let base_start = start - 7 * 24 * HOUR;
        let end = start + 24 * HOUR;
        let ingests = c
            .prepare_cached(
                "SELECT ingested_at / 3600000 * 3600000, COUNT(*) FROM requests
                 WHERE ingested_at >= $1 AND ingested_at < $2 GROUP BY 1",
            )
            .await?;
        let escalations = c
            .prepare_cached(
                "SELECT at - (at - $1) % 3600000, COUNT(*) FROM decisions
                 WHERE kind = 'escalate' AND undone_at IS NULL AND at >= $1 AND at < $2
                 GROUP BY 1",
            )
            .await?;
        let (base_range, range): ([&(dyn ToSql + Sync); 2], [&(dyn ToSql + Sync); 2]) =
            ([&base_start, &end], [&start, &end]);
        let (ingests, escalations) = tokio::try_join!(
            c.query(&ingests, &base_range),
            c.query(&escalations, &range),
        )?;
        let (mut per_hour, mut base) = (vec![0u64; 24], vec![0u64; 7 * 24]);
        for r in &ingests {
            let (at, n): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            if at >= start {
                add_to_hour(&mut per_hour, start, at, n);
            } else {
                add_to_hour(&mut base, base_start, at, n);
            }
        }
        let mut escalated = vec![0u64; 24];
        for r in &escalations {
            add_to_hour(&mut escalated, start, r.try_get(0)?, r.try_get(1)?);
        }
        let (baseline, has_history) = baseline_of(base);
        Ok(volume_of(
            self.policy(),
            per_hour,
            baseline,
            has_history,
            escalated,
        ))
    }

    /// Stats over decisions, edits, actions and outcomes since `since` (all time if None),
    /// from one snapshot.
    pub async fn stats(&self, since: Option<Millis>) -> Result<crate::stats::Stats> {
        let now = self.now();
        Ok(snapshot!(self, |tx| self.stats_in(&tx, now, since).await?))
    }

    async fn stats_in(
        &self,
        c: &impl GenericClient,
        now: Millis,
        since: Option<Millis>,
    ) -> Result<crate::stats::Stats> {
        use crate::stats::{OutcomeCount, Percentiles, Stats};
        use crate::store::compare::GroupBy;
        use crate::store::stats::{DecisionRow, providers, tally_decisions};
        let from = since.unwrap_or(i64::MIN);
        let ages = c
            .prepare_cached(&format!(
                "SELECT $1::BIGINT - r.received_at FROM requests r WHERE {OPEN}"
            ))
            .await?;
        // Decisions in force, with the time from the claim they were made under, the AI's
        // confidence and whether intent or priority were changed before them.
        let decisions = c
            .prepare_cached(
                "SELECT d.kind, d.reason, d.queue, d.reviewer,
                    d.at - (SELECT MAX(a.at) FROM audit a WHERE a.request_id = d.request_id
                            AND a.kind = 'claimed' AND a.detail::jsonb -> 'fence' = to_jsonb(d.fence)
                            AND a.at <= d.at),
                    r.confidence,
                    EXISTS (SELECT 1 FROM edits e WHERE e.request_id = d.request_id
                            AND e.field IN ('intent', 'priority') AND e.at <= d.at)
                 FROM decisions d JOIN requests r ON r.id = d.request_id
                 WHERE d.undone_at IS NULL AND d.at >= $1",
            )
            .await?;
        let undone = c
            .prepare_cached(
                "SELECT COUNT(*) FROM decisions WHERE undone_at IS NOT NULL AND at >= $1",
            )
            .await?;
        let edited = c
            .prepare_cached(
                "SELECT e.field, COUNT(DISTINCT e.request_id) FROM edits e
                 JOIN decisions d ON d.request_id = e.request_id
                 WHERE d.undone_at IS NULL AND d.at >= $1 AND e.at <= d.at GROUP BY e.field",
            )
            .await?;
        let actions = c
            .prepare_cached(
                "SELECT action, status, COUNT(*) FROM outbox WHERE created_at >= $1
                 GROUP BY action, status",
            )
            .await?;
        // Outcomes by (reviewed) intent: the latest outcome of each item, in SQLite's
        // (byte) order.
        let outcomes = c
            .prepare_cached(
                "SELECT COALESCE(r.intent, '?'), o.value, COUNT(*) FROM outcomes o
                 JOIN requests r ON r.id = o.request_id
                 WHERE o.id = (SELECT MAX(id) FROM outcomes WHERE request_id = o.request_id)
                   AND o.at >= $1
                 GROUP BY 1, 2
                 ORDER BY COALESCE(r.intent, '?') COLLATE \"C\", 3 DESC, o.value COLLATE \"C\"",
            )
            .await?;
        let (at, since_p): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) = ([&now], [&from]);
        let (
            (queue, ages, decisions, undone, edited, actions, outcomes, volume),
            (by_prompt_version, by_model, drift),
        ) = tokio::try_join!(
            async {
                tokio::try_join!(
                    self.counts_in(c, now),
                    pg(c.query(&ages, &at)),
                    pg(c.query(&decisions, &since_p)),
                    pg(c.query_one(&undone, &since_p)),
                    pg(c.query(&edited, &since_p)),
                    pg(c.query(&actions, &since_p)),
                    pg(c.query(&outcomes, &since_p)),
                    self.volume_in(c, now),
                )
            },
            async {
                tokio::try_join!(
                    self.groups_in(c, from, GroupBy::PromptVersion),
                    self.groups_in(c, from, GroupBy::Model),
                    self.drift_in(c, now),
                )
            },
        )?;
        let mut s = Stats {
            now,
            since,
            queue,
            open_age: Percentiles::of(
                ages.iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?,
            ),
            volume,
            by_prompt_version,
            by_model,
            drift,
            ..Default::default()
        };
        let rows = decisions
            .iter()
            .map(|r| {
                Ok(DecisionRow {
                    kind: r.try_get(0)?,
                    reason: r.try_get(1)?,
                    queue: r.try_get(2)?,
                    reviewer: r.try_get(3)?,
                    handle: r.try_get(4)?,
                    confidence: r.try_get(5)?,
                    changed_class: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let edited = edited
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64)))
            .collect::<Result<BTreeMap<String, u64>>>()?;
        tally_decisions(
            &mut s,
            &rows,
            undone.try_get::<_, i64>(0)?.max(0) as u64,
            edited,
        );
        s.actions = providers(
            actions
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get::<_, i64>(2)?.max(0) as u64,
                    ))
                })
                .collect::<Result<_>>()?,
        );
        s.outcomes = outcomes
            .iter()
            .map(|r| {
                Ok(OutcomeCount {
                    intent: r.try_get(0)?,
                    outcome: r.try_get(1)?,
                    count: r.try_get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .collect::<Result<_>>()?;
        Ok(s)
    }
}

/// A statement's result with this backend's error, to join with other reads.
pub(super) async fn pg<T>(
    f: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    Ok(f.await?)
}
