//! Review analytics: what the queue looks like, how reviewers decide, how often they
//! change what the AI proposed, whether the confidence threshold is calibrated, how the
//! actions fare, and what happened afterwards. Backend-neutral types and a text report.
use std::fmt::Write as _;

use crate::queue::{Counts, Millis};

/// Confidence buckets, high to low: (label, lower bound inclusive, upper bound exclusive).
/// Items with no usable confidence fall in one more bucket after these, "unknown".
pub const CONFIDENCE_BUCKETS: [(&str, f64, f64); 6] = [
    ("0.9–1.0", 0.9, 1.01),
    ("0.8–0.9", 0.8, 0.9),
    ("0.7–0.8", 0.7, 0.8),
    ("0.6–0.7", 0.6, 0.7),
    ("0.5–0.6", 0.5, 0.6),
    ("< 0.5", -0.01, 0.5),
];

/// The index in [`CONFIDENCE_BUCKETS`] of a confidence; `CONFIDENCE_BUCKETS.len()` for
/// none (or one outside every bucket).
pub fn bucket_of(confidence: Option<f64>) -> usize {
    confidence
        .and_then(|c| {
            CONFIDENCE_BUCKETS
                .iter()
                .position(|(_, lo, hi)| c >= *lo && c < *hi)
        })
        .unwrap_or(CONFIDENCE_BUCKETS.len())
}

/// The label of a bucket index from [`bucket_of`].
pub fn bucket_label(i: usize) -> &'static str {
    CONFIDENCE_BUCKETS.get(i).map_or("unknown", |b| b.0)
}

/// Percentiles of a duration, in milliseconds.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Percentiles {
    pub p50: Millis,
    pub p90: Millis,
    pub p99: Millis,
    pub max: Millis,
}

impl Percentiles {
    /// From unsorted samples (nearest-rank).
    pub fn of(mut v: Vec<Millis>) -> Option<Percentiles> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v[v.len() - 1],
        })
    }
}

#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Decisions {
    pub total: u64,
    pub approved: u64,
    pub rejected: u64,
    pub escalated: u64,
    /// Decisions taken back inside the undo window (not counted above).
    pub undone: u64,
}

impl Decisions {
    pub fn rate(&self, n: u64) -> f64 {
        ratio(n, self.total)
    }
}

pub fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReviewerStats {
    pub reviewer: String,
    pub decisions: u64,
    /// From the claim to the decision.
    pub median_handle_ms: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldEdits {
    pub field: String,
    /// Decided items where a reviewer changed this field.
    pub edited: u64,
    pub rate: f64,
}

/// Agreement with the AI in one confidence bucket: approved with intent and priority as
/// proposed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Bucket {
    /// "0.9–1.0", …, "unknown".
    pub bucket: String,
    pub decided: u64,
    pub agreed: u64,
    pub rate: f64,
}

#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Volume {
    /// Requests ingested per hour over the last 24 hours, oldest first; the last is the
    /// current (partial) hour.
    pub per_hour: Vec<u64>,
    /// Median hourly volume over the 7 days before those 24 hours.
    pub baseline_per_hour: f64,
    /// Escalations per hour over the same 24 hours.
    pub escalations_per_hour: Vec<u64>,
    /// Set when an hour of the last two is far above the baseline.
    pub alert: Option<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProviderStats {
    pub action: String,
    pub total: u64,
    pub sent: u64,
    pub dead: u64,
    pub pending: u64,
    pub sandbox: u64,
    pub cancelled: u64,
    /// sent / (sent + dead)
    pub success_rate: f64,
    pub dead_rate: f64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OutcomeCount {
    pub intent: String,
    pub outcome: String,
    pub count: u64,
}

/// The group of items whose AI output named no prompt version (or model).
pub const NO_VALUE: &str = "(none)";

/// How the items of one prompt version (or model) fared with reviewers.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct GroupStats {
    /// The prompt version or model ("(none)" when the AI did not say).
    pub value: String,
    /// Items ingested with it.
    pub items: u64,
    pub decided: u64,
    /// Edit rate per field over its decided items.
    pub edits: Vec<FieldEdits>,
    /// Approved with intent and priority as proposed.
    pub agreement: f64,
    pub approved: u64,
    pub rejected: u64,
    pub escalated: u64,
    pub escalation_rate: f64,
    /// The latest outcome of its decided items, most frequent first.
    pub outcomes: Vec<(String, u64)>,
}

/// One week of the queue, oldest first in [`Drift::weeks`].
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Week {
    /// The week's first instant; it runs 7 days (the last ends now).
    pub start: Millis,
    /// Items ingested.
    pub volume: u64,
    pub decided: u64,
    pub agreed: u64,
    /// Approved with intent and priority as proposed, of decided.
    pub agreement: f64,
    pub escalated: u64,
    pub escalation_rate: f64,
}

/// What the signed-off validation the policy stands on measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Baseline {
    /// The sign-off's audit entry.
    pub validation: i64,
    pub signed_by: String,
    pub at: Millis,
    pub input: String,
    pub agreement: f64,
    pub escalation_rate: f64,
    pub cases_per_week: Option<f64>,
    /// Agreement per confidence bucket in the validation.
    pub buckets: Vec<Bucket>,
    /// How far below the validated level a bucket may fall before a warning...
    pub tolerance: f64,
    /// ... on at least this many decisions.
    pub min_cases: u64,
}

/// Accuracy, escalation rate and volume per week against the validated baseline.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Drift {
    /// The last 8 weeks, oldest first.
    pub weeks: Vec<Week>,
    pub baseline: Option<Baseline>,
    /// Agreement by confidence bucket over the last 7 days.
    pub recent: Vec<Bucket>,
    /// Where the last 7 days fell below the validated level.
    pub warnings: Vec<String>,
}

/// Everything `signoff stats` and the console's stats screen show.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Stats {
    pub now: Millis,
    /// Decisions, edits, actions and outcomes are counted from here (None: all time).
    pub since: Option<Millis>,
    pub queue: Counts,
    /// Age of undecided items.
    pub open_age: Option<Percentiles>,
    pub decisions: Decisions,
    pub reviewers: Vec<ReviewerStats>,
    pub reject_reasons: Vec<(String, u64)>,
    pub escalation_queues: Vec<(String, u64)>,
    pub edits: Vec<FieldEdits>,
    pub agreement: Vec<Bucket>,
    pub volume: Volume,
    pub actions: Vec<ProviderStats>,
    pub outcomes: Vec<OutcomeCount>,
    /// Per prompt version of the AI output.
    #[serde(default)]
    pub by_prompt_version: Vec<GroupStats>,
    /// Per model.
    #[serde(default)]
    pub by_model: Vec<GroupStats>,
    #[serde(default)]
    pub drift: Drift,
}

/// "3m", "2h 5m", "4d 3h".
pub fn duration(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

/// A sparkline of counts (▁▂▃▄▅▆▇█).
pub fn sparkline(v: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = v.iter().copied().max().unwrap_or(0).max(1);
    v.iter()
        .map(|&x| {
            if x == 0 {
                ' '
            } else {
                BARS[((x * 7) / max) as usize]
            }
        })
        .collect()
}

impl Stats {
    /// The plain-text report of `signoff stats`. Names from requests pass the sanitizer.
    pub fn report(&self) -> String {
        let clean = |s: &str| crate::text::sanitize(s).into_owned();
        let mut o = String::new();
        let q = &self.queue;
        let _ = writeln!(
            o,
            "queue       pending {}  in review {}  escalated {}  approved {}  rejected {}",
            q.pending, q.in_review, q.escalated, q.approved, q.rejected
        );
        if let Some(a) = &self.open_age {
            let _ = writeln!(
                o,
                "open age    p50 {}  p90 {}  p99 {}  oldest {}",
                duration(a.p50),
                duration(a.p90),
                duration(a.p99),
                duration(a.max)
            );
        }
        let _ = writeln!(o, "SLA         {} undecided past their SLA", q.sla_breaches);
        let d = &self.decisions;
        let _ = writeln!(
            o,
            "decisions   {}  approve {}  reject {}  escalate {}  (undone {})",
            d.total,
            pct(d.rate(d.approved)),
            pct(d.rate(d.rejected)),
            pct(d.rate(d.escalated)),
            d.undone
        );
        if !self.reviewers.is_empty() {
            let _ = writeln!(o, "\nreviewers   decisions  median handle time");
            for r in &self.reviewers {
                let _ = writeln!(
                    o,
                    "  {:<20} {:>6}  {}",
                    clean(&r.reviewer),
                    r.decisions,
                    r.median_handle_ms
                        .map(duration)
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        if !self.reject_reasons.is_empty() {
            let _ = writeln!(o, "\nreject reasons");
            for (r, n) in &self.reject_reasons {
                let _ = writeln!(o, "  {:<20} {n:>6}", clean(r));
            }
        }
        if !self.escalation_queues.is_empty() {
            let _ = writeln!(o, "\nescalated to");
            for (r, n) in &self.escalation_queues {
                let _ = writeln!(o, "  {:<20} {n:>6}", clean(r));
            }
        }
        let _ = writeln!(
            o,
            "\nedit rate   (decided items where a person changed the field)"
        );
        for f in &self.edits {
            let _ = writeln!(o, "  {:<22} {:>5}  {:>6}", f.field, pct(f.rate), f.edited);
        }
        let _ = writeln!(
            o,
            "\nagreement with the AI by confidence (approved with intent and priority as proposed)"
        );
        for b in &self.agreement {
            let _ = writeln!(
                o,
                "  {:<9} {:>5} of {:>6}  {}",
                b.bucket,
                pct(b.rate),
                b.decided,
                "█".repeat((b.rate * 20.0).round() as usize)
            );
        }
        let v = &self.volume;
        let _ = writeln!(
            o,
            "\nvolume/h    {}  last 24 h (now {}, baseline {:.1}/h)",
            sparkline(&v.per_hour),
            v.per_hour.last().copied().unwrap_or(0),
            v.baseline_per_hour
        );
        let _ = writeln!(o, "escalated/h {}", sparkline(&v.escalations_per_hour));
        if let Some(a) = &v.alert {
            let _ = writeln!(o, "ALERT       {a}");
        }
        if !self.actions.is_empty() {
            let _ = writeln!(
                o,
                "\nactions     total  sent  dead  pending  sandbox  success  dead-letter"
            );
            for a in &self.actions {
                let _ = writeln!(
                    o,
                    "  {:<9} {:>5} {:>5} {:>5} {:>8} {:>8} {:>8} {:>12}",
                    a.action,
                    a.total,
                    a.sent,
                    a.dead,
                    a.pending,
                    a.sandbox,
                    pct(a.success_rate),
                    pct(a.dead_rate)
                );
            }
        }
        if self.by_prompt_version.len() > 1
            || self
                .by_prompt_version
                .first()
                .is_some_and(|g| g.value != NO_VALUE)
        {
            let _ = write!(
                o,
                "\n{}",
                groups_report("prompt version", &self.by_prompt_version)
            );
        }
        o.push_str(&self.drift.report());
        if !self.outcomes.is_empty() {
            let _ = writeln!(o, "\noutcomes by intent");
            for c in &self.outcomes {
                let _ = writeln!(
                    o,
                    "  {:<20} {:<16} {:>6}",
                    clean(&c.intent),
                    clean(&c.outcome),
                    c.count
                );
            }
        }
        o
    }
}

/// The comparison table of `stats --by`: one row per prompt version (or model). Values
/// from requests pass the sanitizer.
pub fn groups_report(what: &str, groups: &[GroupStats]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "by {what} (decided items: agreement = approved with intent and priority as proposed)"
    );
    let fields: Vec<&str> = groups
        .first()
        .map(|g| g.edits.iter().map(|e| e.field.as_str()).collect())
        .unwrap_or_default();
    let short = |f: &str| match f {
        "recommended_next_step" => "next_step".to_string(),
        f => f.to_string(),
    };
    let mut head = format!(
        "  {:<18} {:>6} {:>7} {:>9} {:>9}",
        what, "items", "decided", "agreement", "escalated"
    );
    for f in &fields {
        let _ = write!(head, " {:>11}", format!("{} ed.", short(f)));
    }
    let _ = writeln!(o, "{head}  outcomes");
    for g in groups {
        let mut line = format!(
            "  {:<18} {:>6} {:>7} {:>9} {:>9}",
            crate::text::truncate(&crate::text::sanitize(&g.value), 18),
            g.items,
            g.decided,
            pct(g.agreement),
            pct(g.escalation_rate)
        );
        for e in &g.edits {
            let _ = write!(line, " {:>11}", pct(e.rate));
        }
        let outcomes: Vec<String> = g
            .outcomes
            .iter()
            .take(4)
            .map(|(k, n)| format!("{} {n}", crate::text::sanitize(k)))
            .collect();
        let _ = writeln!(o, "{line}  {}", outcomes.join(", "));
    }
    o
}

impl Drift {
    /// The weekly lines against the baseline, and the warnings.
    pub fn report(&self) -> String {
        let mut o = String::new();
        if self.weeks.iter().all(|w| w.volume == 0 && w.decided == 0) && self.baseline.is_none() {
            return o;
        }
        let _ = writeln!(o, "\nper week (last 8, oldest first)");
        let _ = writeln!(
            o,
            "  {:<10} {:>7} {:>7} {:>9} {:>9}",
            "week of", "volume", "decided", "agreement", "escalated"
        );
        for w in &self.weeks {
            let _ = writeln!(
                o,
                "  {:<10} {:>7} {:>7} {:>9} {:>9}",
                day(w.start),
                w.volume,
                w.decided,
                if w.decided > 0 {
                    pct(w.agreement)
                } else {
                    "-".into()
                },
                if w.decided > 0 {
                    pct(w.escalation_rate)
                } else {
                    "-".into()
                },
            );
        }
        match &self.baseline {
            Some(b) => {
                let _ = writeln!(
                    o,
                    "  {:<10} {:>7} {:>7} {:>9} {:>9}  validation {} (audit entry {}) signed off by {}",
                    "validated",
                    b.cases_per_week
                        .map_or_else(|| "-".to_string(), |v| format!("{v:.0}")),
                    "",
                    pct(b.agreement),
                    pct(b.escalation_rate),
                    crate::text::sanitize(&b.input),
                    b.validation,
                    crate::text::sanitize(&b.signed_by)
                );
                let _ = writeln!(
                    o,
                    "  agreement by confidence, last 7 days against the validation"
                );
                for r in &self.recent {
                    let validated = b
                        .buckets
                        .iter()
                        .find(|v| v.bucket == r.bucket)
                        .map_or_else(|| "-".to_string(), |v| pct(v.rate));
                    let _ = writeln!(
                        o,
                        "    {:<9} {:>5} of {:>5}  validated {validated}",
                        r.bucket,
                        pct(r.rate),
                        r.decided
                    );
                }
            }
            None => {
                let _ = writeln!(
                    o,
                    "  no signed-off validation to compare with (`signoff validate HISTORY --sign-off`)"
                );
            }
        }
        for w in &self.warnings {
            let _ = writeln!(o, "DRIFT       {w}");
        }
        o
    }
}

/// `2026-11-20` (UTC) of a time.
pub fn day(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let p = Percentiles::of((1..=100).collect()).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
        assert_eq!(Percentiles::of(vec![]), None);
        let p = Percentiles::of(vec![7]).unwrap();
        assert_eq!((p.p50, p.max), (7, 7));
    }

    #[test]
    fn sparklines_scale_to_the_max() {
        assert_eq!(sparkline(&[0, 1, 4, 8]), " ▁▄█");
    }
}
