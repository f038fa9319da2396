//! The parts of the stats that compare: prompt versions and models by what reviewers did
//! with their output, and the last weeks against the signed-off validation the policy
//! stands on (drift). The SQLite reads are here; the tallies are shared with the
//! PostgreSQL backend, which reads the same rows.
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::validation::SignedOff;
use super::{Result, Store};
use crate::model::EditableField;
use crate::queue::Millis;
use crate::stats::{
    Baseline, Bucket, CONFIDENCE_BUCKETS, Drift, FieldEdits, GroupStats, Week, bucket_label,
    bucket_of, ratio,
};

const DAY: Millis = 86_400_000;
const WEEKS: i64 = 8;

/// What to group items by.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GroupBy {
    PromptVersion,
    Model,
}

impl GroupBy {
    /// The `requests` column holding the value grouped by.
    pub(crate) fn column(self) -> &'static str {
        match self {
            GroupBy::PromptVersion => "prompt_version",
            GroupBy::Model => "model",
        }
    }
}

pub(crate) use crate::stats::NO_VALUE as NONE_LABEL;

/// What [`tally_groups`] counts, as a backend reads it; group values are the column's,
/// [`NONE_LABEL`] where it is NULL.
#[derive(Default)]
pub(crate) struct GroupRows {
    /// Items ingested since `from`, per group value.
    pub items: Vec<(String, u64)>,
    /// Decisions in force made since `from`: item, group value, kind, and whether intent
    /// or priority were edited before.
    pub decided: Vec<(i64, String, String, bool)>,
    /// (item, field) for each field edited before a decision in force made since `from`.
    pub edited: Vec<(i64, String)>,
    /// Each item's latest outcome.
    pub outcomes: Vec<(i64, String)>,
}

/// Items, decisions, edit rates, agreement, escalations and outcomes per group value, in
/// the values' order.
pub(crate) fn tally_groups(rows: GroupRows) -> Vec<GroupStats> {
    let items: BTreeMap<String, u64> = rows.items.into_iter().collect();
    let mut edited: HashMap<i64, HashSet<String>> = HashMap::new();
    for (id, field) in rows.edited {
        edited.entry(id).or_default().insert(field);
    }
    let outcome: HashMap<i64, String> = rows.outcomes.into_iter().collect();

    #[derive(Default)]
    struct Acc {
        decided: u64,
        agreed: u64,
        approved: u64,
        rejected: u64,
        escalated: u64,
        edits: BTreeMap<String, u64>,
        outcomes: BTreeMap<String, u64>,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (id, value, kind, changed_class) in rows.decided {
        let a = acc.entry(value).or_default();
        a.decided += 1;
        match kind.as_str() {
            "approve" => {
                a.approved += 1;
                a.agreed += u64::from(!changed_class);
            }
            "reject" => a.rejected += 1,
            _ => a.escalated += 1,
        }
        for f in edited.get(&id).into_iter().flatten() {
            *a.edits.entry(f.clone()).or_default() += 1;
        }
        if let Some(o) = outcome.get(&id) {
            *a.outcomes.entry(o.clone()).or_default() += 1;
        }
    }
    let mut groups: BTreeMap<String, GroupStats> = BTreeMap::new();
    for value in items.keys().chain(acc.keys()) {
        groups.entry(value.clone()).or_insert_with(|| GroupStats {
            value: value.clone(),
            items: 0,
            decided: 0,
            edits: Vec::new(),
            agreement: 0.0,
            approved: 0,
            rejected: 0,
            escalated: 0,
            escalation_rate: 0.0,
            outcomes: Vec::new(),
        });
    }
    for (value, g) in groups.iter_mut() {
        g.items = items.get(value).copied().unwrap_or(0);
        let a = acc.remove(value).unwrap_or_default();
        g.decided = a.decided;
        g.approved = a.approved;
        g.rejected = a.rejected;
        g.escalated = a.escalated;
        g.agreement = ratio(a.agreed, a.decided);
        g.escalation_rate = ratio(a.escalated, a.decided);
        g.edits = EditableField::ALL
            .iter()
            .map(|f| {
                let n = a.edits.get(f.as_str()).copied().unwrap_or(0);
                FieldEdits {
                    field: f.as_str().to_string(),
                    edited: n,
                    rate: ratio(n, a.decided),
                }
            })
            .collect();
        let mut outcomes: Vec<(String, u64)> = a.outcomes.into_iter().collect();
        outcomes.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        g.outcomes = outcomes;
    }
    groups.into_values().collect()
}

/// The baseline a signed-off validation sets: its agreement, escalation rate and
/// agreement per confidence bucket, with the drift tolerance it was signed off with.
pub(crate) fn validated_baseline(v: SignedOff) -> Baseline {
    let r = &v.results;
    let f = |k: &str| r.get(k).and_then(Value::as_f64);
    let buckets = r
        .get("calibration")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|b| {
                    Some(Bucket {
                        bucket: b.get("bucket")?.as_str()?.to_string(),
                        decided: b.get("cases")?.as_u64()?,
                        agreed: b.get("agreed")?.as_u64()?,
                        rate: b.get("accuracy")?.as_f64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let defaults = crate::validate::ValidationConfig::default();
    Baseline {
        validation: v.seq,
        agreement: f("agreement").unwrap_or_default(),
        escalation_rate: f("escalation_rate").unwrap_or_default(),
        cases_per_week: f("cases_per_week"),
        buckets,
        tolerance: f("drift_tolerance").unwrap_or(defaults.drift_tolerance),
        min_cases: r
            .get("drift_min_cases")
            .and_then(Value::as_u64)
            .unwrap_or(defaults.drift_min_cases),
        signed_by: v.signed_by,
        at: v.at,
        input: v.input,
    }
}

/// Where the weeks [`tally_drift`] counts begin: items ingested and decisions made from
/// then on are what it needs.
pub(crate) fn drift_start(now: Millis) -> Millis {
    now - WEEKS * 7 * DAY
}

/// A decision in force made since [`drift_start`], as drift reads it.
pub(crate) struct DriftDecision {
    pub at: Millis,
    pub kind: String,
    pub confidence: Option<f64>,
    /// Intent or priority was edited before the decision.
    pub changed_class: bool,
}

/// Agreement, escalation rate and volume per week for the last 8 weeks, agreement by
/// confidence over the last 7 days, and the warnings against `baseline`, from the times
/// items were ingested and the decisions in force since [`drift_start`].
pub(crate) fn tally_drift(
    now: Millis,
    ingested: impl IntoIterator<Item = Millis>,
    decisions: &[DriftDecision],
    baseline: Option<Baseline>,
) -> Drift {
    let start = drift_start(now);
    let mut weeks: Vec<Week> = (0..WEEKS)
        .map(|k| Week {
            start: start + k * 7 * DAY,
            ..Week::default()
        })
        .collect();
    // Week k runs from its start (exclusive) 7 days on, so the last ends at now.
    let week_of = |at: Millis| -> Option<usize> {
        let back = (now - at).div_euclid(7 * DAY);
        (at <= now && back < WEEKS).then(|| (WEEKS - 1 - back) as usize)
    };
    for at in ingested {
        if let Some(k) = week_of(at) {
            weeks[k].volume += 1;
        }
    }
    let mut recent = vec![(0u64, 0u64); CONFIDENCE_BUCKETS.len() + 1];
    for d in decisions {
        let Some(k) = week_of(d.at) else { continue };
        let agreed = d.kind == "approve" && !d.changed_class;
        let w = &mut weeks[k];
        w.decided += 1;
        w.agreed += u64::from(agreed);
        w.escalated += u64::from(d.kind == "escalate");
        if d.at > now - 7 * DAY && d.at <= now {
            let b = &mut recent[bucket_of(d.confidence)];
            b.0 += 1;
            b.1 += u64::from(agreed);
        }
    }
    for w in &mut weeks {
        w.agreement = ratio(w.agreed, w.decided);
        w.escalation_rate = ratio(w.escalated, w.decided);
    }
    let recent: Vec<Bucket> = recent
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| *n > 0)
        .map(|(i, (n, ok))| Bucket {
            bucket: bucket_label(i).to_string(),
            decided: *n,
            agreed: *ok,
            rate: ratio(*ok, *n),
        })
        .collect();
    let mut warnings = Vec::new();
    if let Some(b) = &baseline {
        for r in &recent {
            let Some(v) = b.buckets.iter().find(|v| v.bucket == r.bucket) else {
                continue;
            };
            if r.decided >= b.min_cases && r.rate < v.rate - b.tolerance {
                warnings.push(format!(
                    "agreement at confidence {} is {:.0}% over the last 7 days ({} of {}), below the validated {:.0}% (tolerance {:.0} points)",
                    r.bucket,
                    r.rate * 100.0,
                    r.agreed,
                    r.decided,
                    v.rate * 100.0,
                    b.tolerance * 100.0
                ));
            }
        }
        if let Some(w) = weeks.last()
            && w.decided >= b.min_cases
            && w.escalation_rate > b.escalation_rate + b.tolerance
        {
            warnings.push(format!(
                "escalation rate {:.0}% over the last 7 days, above the validated {:.0}%",
                w.escalation_rate * 100.0,
                b.escalation_rate * 100.0
            ));
        }
    }
    Drift {
        weeks,
        baseline,
        recent,
        warnings,
    }
}

impl Store {
    /// Items, decisions, edit rates, agreement, escalations and outcomes per prompt
    /// version or model, over decisions since `from`.
    pub(crate) fn groups(&self, from: Millis, by: GroupBy) -> Result<Vec<GroupStats>> {
        let c = &self.conn;
        let col = by.column();
        let mut rows = GroupRows::default();
        let mut stmt = c.prepare(&format!(
            "SELECT COALESCE({col}, ?2), COUNT(*) FROM requests WHERE ingested_at >= ?1 GROUP BY 1"
        ))?;
        for row in stmt.query_map(rusqlite::params![from, NONE_LABEL], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })? {
            rows.items.push(row?);
        }
        // Decisions in force, with their group and whether intent or priority changed.
        let mut stmt = c.prepare(&format!(
            "SELECT d.request_id, COALESCE(r.{col}, ?2), d.kind,
                EXISTS (SELECT 1 FROM edits e WHERE e.request_id = d.request_id
                        AND e.field IN ('intent', 'priority') AND e.at <= d.at)
             FROM decisions d JOIN requests r ON r.id = d.request_id
             WHERE d.undone_at IS NULL AND d.at >= ?1"
        ))?;
        rows.decided = stmt
            .query_map(rusqlite::params![from, NONE_LABEL], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = c.prepare(
            "SELECT DISTINCT e.request_id, e.field FROM edits e
             JOIN decisions d ON d.request_id = e.request_id
             WHERE d.undone_at IS NULL AND d.at >= ?1 AND e.at <= d.at",
        )?;
        rows.edited = stmt
            .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = c.prepare(
            "SELECT o.request_id, o.value FROM outcomes o
             WHERE o.id = (SELECT MAX(id) FROM outcomes WHERE request_id = o.request_id)",
        )?;
        rows.outcomes = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(tally_groups(rows))
    }

    /// The baseline: the signed-off validation the threshold in force stands on, else the
    /// newest passing one.
    fn baseline(&self) -> Result<Option<Baseline>> {
        let in_force = self.policy_in_force()?;
        let v = match in_force.validation {
            Some(seq) => self.signed_off_validation(seq)?,
            None => None,
        };
        let v = match v {
            Some(v) => Some(v),
            None => self
                .signed_off_validations(None)?
                .into_iter()
                .find(|v| v.passed),
        };
        Ok(v.map(validated_baseline))
    }

    /// Agreement, escalation rate and volume per week for the last 8 weeks, agreement by
    /// confidence over the last 7 days, against the validated baseline.
    pub(crate) fn drift(&self) -> Result<Drift> {
        let now = self.now();
        let c = &self.conn;
        let start = drift_start(now);
        let ingested: Vec<Millis> = c
            .prepare("SELECT ingested_at FROM requests WHERE ingested_at >= ?1")?
            .query_map([start], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let decisions: Vec<DriftDecision> = c
            .prepare(
                "SELECT d.at, d.kind, r.confidence,
                    EXISTS (SELECT 1 FROM edits e WHERE e.request_id = d.request_id
                            AND e.field IN ('intent', 'priority') AND e.at <= d.at)
                 FROM decisions d JOIN requests r ON r.id = d.request_id
                 WHERE d.undone_at IS NULL AND d.at >= ?1",
            )?
            .query_map([start], |r| {
                Ok(DriftDecision {
                    at: r.get(0)?,
                    kind: r.get(1)?,
                    confidence: r.get(2)?,
                    changed_class: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(tally_drift(now, ingested, &decisions, self.baseline()?))
    }
}
