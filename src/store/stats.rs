//! Review analytics computed from the store's tables (see `crate::stats` for the types).
use std::collections::BTreeMap;

use rusqlite::params;

use super::{Result, Store};
use crate::model::EditableField;
use crate::queue::Millis;
use crate::stats::{
    Bucket, CONFIDENCE_BUCKETS, Decisions, FieldEdits, OutcomeCount, Percentiles, ProviderStats,
    ReviewerStats, Stats, Volume, bucket_of, ratio,
};

pub(crate) const HOUR: Millis = 3_600_000;

impl Store {
    /// Ingest and escalation volume per hour over the last 24 hours against the 7-day
    /// baseline, with the alert. Cheap enough for a status bar: the ingests per hour come
    /// from the counters the triggers keep (`ingest_hours`), and the baseline is computed
    /// once per hour and kept.
    pub fn volume(&self) -> Result<Volume> {
        let now = self.now();
        let c = &self.conn;
        let this_hour = now - now.rem_euclid(HOUR);
        let start = this_hour - 23 * HOUR;
        let base_start = start - 7 * 24 * HOUR;
        let hourly = |sql: &str, from: Millis, hours: usize| -> Result<Vec<u64>> {
            let mut v = vec![0u64; hours];
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params![from, from + hours as i64 * HOUR], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (at, n) = row?;
                add_to_hour(&mut v, from, at, n);
            }
            Ok(v)
        };
        // Items ingested per hour, as the triggers keep them (both bounds are whole hours).
        let ingest_sql = "SELECT hour * 3600000, n FROM ingest_hours
                          WHERE hour >= ?1 / 3600000 AND hour < ?2 / 3600000";
        let per_hour = hourly(ingest_sql, start, 24)?;
        let cached = self
            .baseline_cache
            .get()
            .filter(|(hour, _, _)| *hour == this_hour);
        let (baseline, has_history) = match cached {
            Some((_, b, h)) => (b, h),
            None => {
                let (baseline, has_history) = baseline_of(hourly(ingest_sql, base_start, 7 * 24)?);
                self.baseline_cache
                    .set(Some((this_hour, baseline, has_history)));
                (baseline, has_history)
            }
        };
        let escalations = hourly(
            "SELECT at - (at - ?1) % 3600000, COUNT(*) FROM decisions
             WHERE kind = 'escalate' AND undone_at IS NULL AND at >= ?1 AND at < ?2 GROUP BY 1",
            start,
            24,
        )?;
        Ok(volume_of(
            &self.policy,
            per_hour,
            baseline,
            has_history,
            escalations,
        ))
    }

    /// Stats over decisions, edits, actions and outcomes since `since` (all time if None).
    pub fn stats(&self, since: Option<Millis>) -> Result<Stats> {
        let now = self.now();
        let from = since.unwrap_or(i64::MIN);
        let c = &self.conn;
        let mut s = Stats {
            now,
            since,
            queue: self.counts()?,
            ..Default::default()
        };

        let ages: Vec<Millis> = c
            .prepare(
                "SELECT ?1 - received_at FROM requests WHERE state IN ('pending','in_review')",
            )?
            .query_map([now], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        s.open_age = Percentiles::of(ages);

        // Decisions in force (not undone), with the AI's confidence and whether intent or
        // priority were changed before them.
        let rows: Vec<DecisionRow> = c
            .prepare(
                "SELECT d.kind, d.reason, d.queue, d.reviewer,
                    d.at - (SELECT MAX(a.at) FROM audit a WHERE a.request_id = d.request_id
                            AND a.kind = 'claimed' AND json_extract(a.detail, '$.fence') = d.fence
                            AND a.at <= d.at),
                    r.confidence,
                    EXISTS (SELECT 1 FROM edits e WHERE e.request_id = d.request_id
                            AND e.field IN ('intent', 'priority') AND e.at <= d.at)
                 FROM decisions d JOIN requests r ON r.id = d.request_id
                 WHERE d.undone_at IS NULL AND d.at >= ?1",
            )?
            .query_map([from], |r| {
                Ok(DecisionRow {
                    kind: r.get(0)?,
                    reason: r.get(1)?,
                    queue: r.get(2)?,
                    reviewer: r.get(3)?,
                    handle: r.get(4)?,
                    confidence: r.get(5)?,
                    changed_class: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let undone = c.query_row(
            "SELECT COUNT(*) FROM decisions WHERE undone_at IS NOT NULL AND at >= ?1",
            [from],
            |r| r.get(0),
        )?;
        let edited: BTreeMap<String, u64> = c
            .prepare(
                "SELECT e.field, COUNT(DISTINCT e.request_id) FROM edits e
                 JOIN decisions d ON d.request_id = e.request_id
                 WHERE d.undone_at IS NULL AND d.at >= ?1 AND e.at <= d.at GROUP BY e.field",
            )?
            .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        tally_decisions(&mut s, &rows, undone, edited);

        s.volume = self.volume()?;

        // Actions per provider.
        let mut stmt = c.prepare(
            "SELECT action, status, COUNT(*) FROM outbox WHERE created_at >= ?1 GROUP BY action, status",
        )?;
        let rows = stmt.query_map([from], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        s.actions = providers(rows.collect::<rusqlite::Result<Vec<_>>>()?);

        // Outcomes by (reviewed) intent: the latest outcome of each item.
        s.outcomes = c
            .prepare(
                "SELECT COALESCE(r.intent, '?'), o.value, COUNT(*) FROM outcomes o
                 JOIN requests r ON r.id = o.request_id
                 WHERE o.id = (SELECT MAX(id) FROM outcomes WHERE request_id = o.request_id)
                   AND o.at >= ?1
                 GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
            )?
            .query_map([from], |r| {
                Ok(OutcomeCount {
                    intent: r.get(0)?,
                    outcome: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        s.by_prompt_version = self.groups(from, super::compare::GroupBy::PromptVersion)?;
        s.by_model = self.groups(from, super::compare::GroupBy::Model)?;
        s.drift = self.drift()?;
        Ok(s)
    }
}

/// One decision in force as stats reads it.
pub(crate) struct DecisionRow {
    pub kind: String,
    pub reason: Option<String>,
    pub queue: Option<String>,
    pub reviewer: String,
    /// From the claim the decision was made under to the decision.
    pub handle: Option<Millis>,
    pub confidence: Option<f64>,
    /// Intent or priority was edited before the decision.
    pub changed_class: bool,
}

/// Fills the decision counts, reviewers, reasons, queues, agreement and edit rates from the
/// decisions in force, the undone ones' count and the decided items edited per field.
pub(crate) fn tally_decisions(
    s: &mut Stats,
    rows: &[DecisionRow],
    undone: u64,
    mut edited: BTreeMap<String, u64>,
) {
    let mut d = Decisions::default();
    let mut reviewers: BTreeMap<String, (u64, Vec<Millis>)> = BTreeMap::new();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut queues: BTreeMap<String, u64> = BTreeMap::new();
    let mut buckets: Vec<(u64, u64)> = vec![(0, 0); CONFIDENCE_BUCKETS.len() + 1];
    for r in rows {
        d.total += 1;
        match r.kind.as_str() {
            "approve" => d.approved += 1,
            "reject" => {
                d.rejected += 1;
                *reasons
                    .entry(r.reason.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            _ => {
                d.escalated += 1;
                *queues
                    .entry(r.queue.clone().unwrap_or_default())
                    .or_default() += 1;
            }
        }
        let e = reviewers.entry(r.reviewer.clone()).or_default();
        e.0 += 1;
        e.1.extend(r.handle);
        let b = bucket_of(r.confidence);
        buckets[b].0 += 1;
        if r.kind == "approve" && !r.changed_class {
            buckets[b].1 += 1;
        }
    }
    s.reviewers = reviewers
        .into_iter()
        .map(|(reviewer, (n, handles))| ReviewerStats {
            reviewer,
            decisions: n,
            median_handle_ms: Percentiles::of(handles).map(|p| p.p50),
        })
        .collect();
    let by_count = |m: BTreeMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    };
    s.reject_reasons = by_count(reasons);
    s.escalation_queues = by_count(queues);
    s.agreement = CONFIDENCE_BUCKETS
        .iter()
        .map(|b| b.0)
        .chain(["unknown"])
        .zip(&buckets)
        .filter(|(_, (n, _))| *n > 0)
        .map(|(label, (n, agreed))| Bucket {
            bucket: label.to_string(),
            decided: *n,
            agreed: *agreed,
            rate: ratio(*agreed, *n),
        })
        .collect();
    d.undone = undone;
    s.edits = EditableField::ALL
        .iter()
        .map(|f| {
            let n = edited.remove(f.as_str()).unwrap_or(0);
            FieldEdits {
                field: f.as_str().to_string(),
                edited: n,
                rate: ratio(n, d.total),
            }
        })
        .collect();
    s.decisions = d;
}

/// Actions per provider from (action, status, count) rows.
pub(crate) fn providers(rows: Vec<(String, String, u64)>) -> Vec<ProviderStats> {
    let mut providers: BTreeMap<String, ProviderStats> = BTreeMap::new();
    for row in rows {
        let (action, status, n) = row;
        let p = providers.entry(action.clone()).or_insert(ProviderStats {
            action,
            total: 0,
            sent: 0,
            dead: 0,
            pending: 0,
            sandbox: 0,
            cancelled: 0,
            success_rate: 0.0,
            dead_rate: 0.0,
        });
        p.total += n;
        match status.as_str() {
            "sent" => p.sent += n,
            "dead" => p.dead += n,
            "sandbox" => p.sandbox += n,
            "cancelled" => p.cancelled += n,
            _ => p.pending += n,
        }
    }
    providers
        .into_values()
        .map(|mut p| {
            p.success_rate = ratio(p.sent, p.sent + p.dead);
            p.dead_rate = ratio(p.dead, p.sent + p.dead);
            p
        })
        .collect()
}

/// Adds `n` items at time `at` to the hour slot of `v` (slots from `from`) it falls in.
pub(crate) fn add_to_hour(v: &mut [u64], from: Millis, at: Millis, n: i64) {
    let h = ((at - from) / HOUR) as usize;
    if let Some(slot) = v.get_mut(h) {
        *slot += n as u64;
    }
}

/// The median of the baseline hours, and whether there is any history at all (a new
/// queue, a demo: then there is no baseline).
pub(crate) fn baseline_of(mut hours: Vec<u64>) -> (f64, bool) {
    let has_history = hours.iter().any(|&n| n > 0);
    hours.sort_unstable();
    let baseline = hours.get(hours.len() / 2).copied().unwrap_or(0) as f64;
    (baseline, has_history)
}

/// The volume line with its alert.
pub(crate) fn volume_of(
    policy: &crate::model::Policy,
    per_hour: Vec<u64>,
    baseline: f64,
    has_history: bool,
    escalations: Vec<u64>,
) -> Volume {
    let alert = per_hour
        .iter()
        .rev()
        .take(2)
        .enumerate()
        .find_map(|(i, &n)| {
            let limit = policy.volume_alert_factor * baseline.max(1.0);
            (has_history && n >= policy.volume_alert_min && n as f64 > limit).then(|| {
                format!(
                    "{} {n} requests in an hour, {:.1}× the baseline of {baseline:.0}/h",
                    if i == 0 { "this hour:" } else { "last hour:" },
                    n as f64 / baseline.max(1.0)
                )
            })
        });
    Volume {
        per_hour,
        baseline_per_hour: baseline,
        escalations_per_hour: escalations,
        alert,
    }
}
