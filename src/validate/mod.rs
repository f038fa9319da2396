//! Validating the AI against history before it is trusted, and after: each historical case
//! is a request in the ingest schema plus `actual`, what people really did. The report says
//! how often the AI's fields matched the final ones, how well its confidence is calibrated,
//! and the lowest confidence threshold at which the items auto-approval would have taken
//! reached the required accuracy. Nothing is queued or sent.
//!
//! A case **agrees** with the AI when people approved it with the intent and priority the
//! AI proposed: what an auto-approval would have done. Accuracy at a threshold is the
//! share of agreeing cases among those auto-approval would have taken at it: a known
//! confidence at or above the threshold and no review rule of the policy holding the item
//! back (an intent or priority that always needs review, an escalation reason, the AI
//! asking for review, a validation flag, an action that never goes out unreviewed).
mod history;
mod html;
mod report;
mod similarity;

pub use history::{Actual, ActualDecision, Case, Problem, read};
pub use html::html;
pub use similarity::similarity;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Policy, review_reasons, validate};
use crate::stats::{CONFIDENCE_BUCKETS, bucket_label, bucket_of};

/// `[validation]`: what a validation must show, and when the stats warn of drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// The share of auto-approved items that must agree with what people did (0..1).
    pub required_accuracy: f64,
    /// A threshold is judged only on at least this many auto-approved cases.
    pub min_cases: u64,
    /// Free text (summary, next step, reply) counts as matching at this similarity or
    /// more (the word-level Dice coefficient, 0..1).
    pub similarity_match: f64,
    /// The stats warn when agreement in a confidence bucket over the last 7 days falls
    /// more than this below the validated level...
    pub drift_tolerance: f64,
    /// ... on at least this many decisions in the bucket.
    pub drift_min_cases: u64,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            required_accuracy: 0.97,
            min_cases: 30,
            similarity_match: 0.5,
            drift_tolerance: 0.05,
            drift_min_cases: 20,
        }
    }
}

impl ValidationConfig {
    /// Problems as (key, message).
    pub fn check(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        for (key, v) in [
            ("required_accuracy", self.required_accuracy),
            ("similarity_match", self.similarity_match),
            ("drift_tolerance", self.drift_tolerance),
        ] {
            if !(0.0..=1.0).contains(&v) {
                errs.push((
                    format!("validation.{key}"),
                    format!("{v} is outside 0..1; use a share like 0.97"),
                ));
            }
        }
        if self.min_cases == 0 {
            errs.push((
                "validation.min_cases".into(),
                "must be at least 1; use a number like 30".into(),
            ));
        }
        errs
    }
}

/// Accuracy of one field over the cases where the final value is known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldAccuracy {
    pub field: String,
    /// Cases where both the AI's and the final value are known.
    pub cases: u64,
    pub matched: u64,
    pub accuracy: f64,
    /// For free text: the mean word similarity.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_similarity: Option<f64>,
}

/// Intent confusion: `counts[i][j]` cases people gave `labels[i]` the AI called `labels[j]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

/// Calibration of one confidence bucket: is 0.9 right 90 % of the time?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBucket {
    pub bucket: String,
    pub cases: u64,
    /// The mean confidence the AI gave (None for "unknown").
    pub mean_confidence: Option<f64>,
    pub agreed: u64,
    pub accuracy: f64,
}

/// What auto-approval would have done at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdPoint {
    pub threshold: f64,
    /// Cases it would have approved without a person.
    pub auto_approved: u64,
    /// Of those, cases people approved as proposed.
    pub correct: u64,
    pub accuracy: f64,
    /// The share of all cases it would have spared reviewers.
    pub spared: f64,
}

/// A case auto-approval would have got wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WrongCase {
    pub origin: String,
    pub source: String,
    pub external_id: String,
    pub confidence: f64,
    pub ai_intent: Option<String>,
    pub ai_priority: Option<String>,
    pub decision: ActualDecision,
    pub intent: Option<String>,
    pub priority: Option<String>,
}

/// The lowest threshold that reaches the required accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    #[serde(flatten)]
    pub point: ThresholdPoint,
    /// The cases it would have got wrong.
    pub wrong: Vec<WrongCase>,
}

/// Everything `signoff validate` reports (also the results a sign-off records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The history file as named on the command line.
    pub input: String,
    pub input_sha256: String,
    pub cases: u64,
    /// The policy this run judged ([`Policy::version`]).
    pub policy_version: String,
    pub confidence_threshold: f64,
    pub auto_approve: bool,
    pub required_accuracy: f64,
    pub min_cases: u64,
    pub similarity_match: f64,
    pub fields: Vec<FieldAccuracy>,
    /// Share of all cases approved with the AI's intent and priority.
    pub agreement: f64,
    /// Share of cases people escalated.
    pub escalation_rate: f64,
    /// Mean cases per week over the span of `received_at`, when it spans a day or more.
    pub cases_per_week: Option<f64>,
    pub intents: Confusion,
    pub calibration: Vec<CalibrationBucket>,
    /// Cases no review rule holds back (the threshold aside).
    pub eligible: u64,
    /// Auto-approval every 0.05 from 0.50.
    pub curve: Vec<ThresholdPoint>,
    /// The policy's own threshold.
    pub at_policy_threshold: ThresholdPoint,
    pub recommendation: Option<Recommendation>,
    /// The policy's threshold reaches the required accuracy on enough cases.
    pub passed: bool,
    pub verdict: String,
}

/// Rounded to 4 places, so reports compare and print stably.
fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn share(n: u64, d: u64) -> f64 {
    r4(crate::stats::ratio(n, d))
}

fn same_word(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

struct Scored<'a> {
    case: &'a Case,
    confidence: Option<f64>,
    agreed: bool,
    eligible: bool,
}

/// Auto-approval at `threshold` (hundredths) over the eligible cases.
fn point(scored: &[Scored<'_>], total: u64, hundredths: u32) -> ThresholdPoint {
    let t = f64::from(hundredths) / 100.0;
    let (mut n, mut ok) = (0u64, 0u64);
    for s in scored {
        if s.eligible && s.confidence.is_some_and(|c| c >= t) {
            n += 1;
            ok += u64::from(s.agreed);
        }
    }
    ThresholdPoint {
        threshold: t,
        auto_approved: n,
        correct: ok,
        accuracy: share(ok, n),
        spared: share(n, total),
    }
}

fn passes(p: &ThresholdPoint, cfg: &ValidationConfig) -> bool {
    p.auto_approved >= cfg.min_cases
        && crate::stats::ratio(p.correct, p.auto_approved) >= cfg.required_accuracy
}

/// Judges `cases` under `policy`. `input` names the file, `sha256` its bytes.
pub fn evaluate(
    input: &str,
    sha256: &str,
    cases: &[Case],
    policy: &Policy,
    cfg: &ValidationConfig,
) -> Report {
    let total = cases.len() as u64;
    // Every review rule but the threshold, which is what is being chosen.
    let rules = Policy {
        confidence_threshold: 0.0,
        ..policy.clone()
    };
    let prio = |p: &Option<String>| p.as_deref().map(|p| policy.priority_as_read(p).to_string());
    let scored: Vec<Scored<'_>> = cases
        .iter()
        .map(|case| {
            let r = &case.request;
            let a = &case.actual;
            let intent_ok = matches!((&r.ai.intent, &a.intent), (Some(x), Some(y)) if same_word(x, y));
            let prio_ok = matches!((prio(&r.ai.priority), prio(&a.priority)), (Some(x), Some(y)) if same_word(&x, &y));
            let flags = validate(r, &rules);
            Scored {
                case,
                confidence: r.ai.confidence.value(),
                agreed: a.decision == ActualDecision::Approve && intent_ok && prio_ok,
                eligible: review_reasons(r, &flags, &rules).is_empty(),
            }
        })
        .collect();

    // Exact fields.
    let mut fields = Vec::new();
    let mut exact = |field: &str, pairs: Vec<(Option<String>, Option<String>)>| {
        let known: Vec<_> = pairs
            .into_iter()
            .filter_map(|(x, y)| Some((x?, y?)))
            .collect();
        let matched = known.iter().filter(|(x, y)| same_word(x, y)).count() as u64;
        fields.push(FieldAccuracy {
            field: field.into(),
            cases: known.len() as u64,
            matched,
            accuracy: share(matched, known.len() as u64),
            mean_similarity: None,
        });
    };
    exact(
        "intent",
        cases
            .iter()
            .map(|c| (c.request.ai.intent.clone(), c.actual.intent.clone()))
            .collect(),
    );
    exact(
        "priority",
        cases
            .iter()
            .map(|c| (prio(&c.request.ai.priority), prio(&c.actual.priority)))
            .collect(),
    );
    exact(
        "escalation",
        cases
            .iter()
            .map(|c| {
                let ai = c
                    .request
                    .ai
                    .escalation_reason
                    .as_deref()
                    .is_some_and(|e| !e.trim().is_empty());
                let people = c.actual.decision == ActualDecision::Escalate;
                (Some(ai.to_string()), Some(people.to_string()))
            })
            .collect(),
    );
    // Free text.
    type Pair<'c> = (Option<&'c String>, Option<&'c String>);
    type Text = (&'static str, fn(&Case) -> Pair<'_>);
    let texts: [Text; 3] = [
        ("summary", |c| {
            (c.request.ai.summary.as_ref(), c.actual.summary.as_ref())
        }),
        ("recommended_next_step", |c| {
            (
                c.request.ai.recommended_next_step.as_ref(),
                c.actual.recommended_next_step.as_ref(),
            )
        }),
        ("draft_reply", |c| {
            (c.request.ai.draft_reply.as_ref(), c.actual.reply.as_ref())
        }),
    ];
    for (field, get) in texts {
        let sims: Vec<f64> = cases
            .iter()
            .filter_map(|c| match get(c) {
                (Some(a), Some(b)) => Some(similarity(a, b)),
                _ => None,
            })
            .collect();
        if sims.is_empty() {
            continue;
        }
        let matched = sims.iter().filter(|s| **s >= cfg.similarity_match).count() as u64;
        fields.push(FieldAccuracy {
            field: field.into(),
            cases: sims.len() as u64,
            matched,
            accuracy: share(matched, sims.len() as u64),
            mean_similarity: Some(r4(sims.iter().sum::<f64>() / sims.len() as f64)),
        });
    }

    // Intent confusion: the policy's intents first, then others as they are met.
    let mut labels: Vec<String> = policy.intents.clone();
    let mut index: BTreeMap<String, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i))
        .collect();
    let mut pairs = Vec::new();
    for c in cases {
        let (Some(ai), Some(actual)) = (&c.request.ai.intent, &c.actual.intent) else {
            continue;
        };
        let mut idx = |s: &str| {
            let s = s.trim().to_string();
            *index.entry(s.clone()).or_insert_with(|| {
                labels.push(s);
                labels.len() - 1
            })
        };
        let (i, j) = (idx(actual), idx(ai));
        pairs.push((i, j));
    }
    let mut counts = vec![vec![0u64; labels.len()]; labels.len()];
    for (i, j) in pairs {
        counts[i][j] += 1;
    }
    // Drop intents that appear in neither role.
    let used: Vec<usize> = (0..labels.len())
        .filter(|&k| counts[k].iter().any(|n| *n > 0) || counts.iter().any(|row| row[k] > 0))
        .collect();
    let intents = Confusion {
        labels: used.iter().map(|&k| labels[k].clone()).collect(),
        counts: used
            .iter()
            .map(|&i| used.iter().map(|&j| counts[i][j]).collect())
            .collect(),
    };

    // Calibration.
    let mut buckets = vec![(0u64, 0.0f64, 0u64); CONFIDENCE_BUCKETS.len() + 1];
    for s in &scored {
        let b = &mut buckets[bucket_of(s.confidence)];
        b.0 += 1;
        b.1 += s.confidence.unwrap_or(0.0);
        b.2 += u64::from(s.agreed);
    }
    let unknown = CONFIDENCE_BUCKETS.len();
    let calibration = buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| b.0 > 0)
        .map(|(i, (n, sum, ok))| CalibrationBucket {
            bucket: bucket_label(i).into(),
            cases: *n,
            mean_confidence: (i != unknown).then(|| r4(sum / *n as f64)),
            agreed: *ok,
            accuracy: share(*ok, *n),
        })
        .collect();

    // Thresholds, in hundredths.
    let curve = (50..=95)
        .step_by(5)
        .map(|h| point(&scored, total, h))
        .collect();
    let policy_t = (policy.confidence_threshold * 100.0)
        .round()
        .clamp(0.0, 100.0) as u32;
    let mut at_policy = point(&scored, total, policy_t);
    at_policy.threshold = policy.confidence_threshold;
    // The policy's own threshold exactly (it may not be a whole hundredth).
    {
        let (mut n, mut ok) = (0u64, 0u64);
        for s in &scored {
            if s.eligible
                && s.confidence
                    .is_some_and(|c| c >= policy.confidence_threshold)
            {
                n += 1;
                ok += u64::from(s.agreed);
            }
        }
        at_policy.auto_approved = n;
        at_policy.correct = ok;
        at_policy.accuracy = share(ok, n);
        at_policy.spared = share(n, total);
    }
    let recommendation = (0..=100)
        .map(|h| point(&scored, total, h))
        .find(|p| passes(p, cfg))
        .map(|p| {
            let wrong = scored
                .iter()
                .filter(|s| {
                    s.eligible && !s.agreed && s.confidence.is_some_and(|c| c >= p.threshold)
                })
                .map(|s| {
                    let c = s.case;
                    WrongCase {
                        origin: c.origin.clone(),
                        source: c.request.source.clone(),
                        external_id: c.request.external_id.clone(),
                        confidence: s.confidence.unwrap_or_default(),
                        ai_intent: c.request.ai.intent.clone(),
                        ai_priority: c.request.ai.priority.clone(),
                        decision: c.actual.decision,
                        intent: c.actual.intent.clone(),
                        priority: c.actual.priority.clone(),
                    }
                })
                .collect();
            Recommendation { point: p, wrong }
        });
    let passed = passes(&at_policy, cfg);
    let verdict = if passed {
        format!(
            "PASS: at the policy's threshold {:.2}, {} of {} auto-approved cases agree ({:.1} %, required {:.1} %)",
            policy.confidence_threshold,
            at_policy.correct,
            at_policy.auto_approved,
            at_policy.accuracy * 100.0,
            cfg.required_accuracy * 100.0
        )
    } else if at_policy.auto_approved < cfg.min_cases {
        format!(
            "FAIL: at the policy's threshold {:.2} only {} case(s) would be auto-approved; at least {} are needed to judge",
            policy.confidence_threshold, at_policy.auto_approved, cfg.min_cases
        )
    } else {
        format!(
            "FAIL: at the policy's threshold {:.2}, {} of {} auto-approved cases agree ({:.1} %, required {:.1} %)",
            policy.confidence_threshold,
            at_policy.correct,
            at_policy.auto_approved,
            at_policy.accuracy * 100.0,
            cfg.required_accuracy * 100.0
        )
    };
    let agreed = scored.iter().filter(|s| s.agreed).count() as u64;
    let escalated = cases
        .iter()
        .filter(|c| c.actual.decision == ActualDecision::Escalate)
        .count() as u64;
    Report {
        input: input.to_string(),
        input_sha256: sha256.to_string(),
        cases: total,
        policy_version: policy.version(),
        confidence_threshold: policy.confidence_threshold,
        auto_approve: policy.auto_approve,
        required_accuracy: cfg.required_accuracy,
        min_cases: cfg.min_cases,
        similarity_match: cfg.similarity_match,
        fields,
        agreement: share(agreed, total),
        escalation_rate: share(escalated, total),
        cases_per_week: cases_per_week(cases),
        intents,
        calibration,
        eligible: scored.iter().filter(|s| s.eligible).count() as u64,
        curve,
        at_policy_threshold: at_policy,
        recommendation,
        passed,
        verdict,
    }
}

fn cases_per_week(cases: &[Case]) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    let times: Vec<i64> = cases
        .iter()
        .filter_map(|c| c.request.received_at.as_deref())
        .filter_map(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(|t| t.unix_timestamp())
        .collect();
    let (min, max) = (times.iter().min()?, times.iter().max()?);
    let days = (max - min) as f64 / 86_400.0;
    (days >= 1.0).then(|| r4(times.len() as f64 / days * 7.0))
}

/// The SHA-256 of the input, hex.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: usize, conf: f64, ai: (&str, &str), actual: (&str, &str, &str)) -> String {
        serde_json::json!({
            "source": "t", "external_id": format!("c{id}"),
            "ai": {"intent": ai.0, "priority": ai.1, "confidence": conf, "summary": "Wants a demo",
                   "human_review_required": false},
            "actual": {"decision": actual.0, "intent": actual.1, "priority": actual.2,
                       "summary": "wants a demo soon"}
        })
        .to_string()
    }

    #[test]
    fn the_lowest_threshold_that_reaches_the_required_accuracy_is_recommended() {
        // 40 cases at 0.95, all right; 40 at 0.85 with 2 wrong (95 %); 40 at 0.75 with 20
        // wrong. Required 0.97 on at least 30: 0.85 and up is 78/80 = 97.5 %; 0.80 takes
        // the same cases; 0.76 too; 0.75 adds 40 with 20 wrong.
        let mut lines = Vec::new();
        for i in 0..120 {
            let conf = [0.95, 0.85, 0.75][i / 40];
            let wrong = match i / 40 {
                0 => false,
                1 => i % 40 < 2,
                _ => i % 2 == 0,
            };
            let actual = if wrong {
                ("approve", "other", "low")
            } else {
                ("approve", "partnership", "medium")
            };
            lines.push(line(i, conf, ("partnership", "medium"), actual));
        }
        let (cases, problems) = read("h", &lines.join("\n"));
        assert!(problems.is_empty(), "{problems:?}");
        let policy = Policy::default();
        let r = evaluate("h", "x", &cases, &policy, &ValidationConfig::default());
        let rec = r.recommendation.expect("a threshold passes");
        assert_eq!(rec.point.threshold, 0.76);
        assert_eq!((rec.point.auto_approved, rec.point.correct), (80, 78));
        assert_eq!(rec.wrong.len(), 2);
        assert_eq!(r.at_policy_threshold.auto_approved, 120);
        assert!(!r.passed, "{}", r.verdict);
        assert_eq!(r.calibration[1].accuracy, 0.95);
        let intent = &r.fields[0];
        assert_eq!(
            (intent.field.as_str(), intent.cases, intent.matched),
            ("intent", 120, 98)
        );
        let summary = r.fields.iter().find(|f| f.field == "summary").unwrap();
        assert_eq!(summary.mean_similarity, Some(0.8571));
        assert_eq!(r.intents.labels, ["partnership", "other"]);
        assert_eq!(r.intents.counts, [[98, 0], [22, 0]]);
    }

    #[test]
    fn items_a_review_rule_holds_back_are_never_counted_as_auto_approved() {
        let lines: Vec<String> = (0..40)
            .map(|i| {
                line(
                    i,
                    0.99,
                    ("complaint", "medium"),
                    ("approve", "complaint", "medium"),
                )
            })
            .collect();
        let (cases, _) = read("h", &lines.join("\n"));
        let r = evaluate(
            "h",
            "x",
            &cases,
            &Policy::default(),
            &ValidationConfig::default(),
        );
        assert_eq!(r.eligible, 0);
        assert_eq!(r.recommendation, None);
        assert!(
            r.verdict
                .starts_with("FAIL: at the policy's threshold 0.75 only 0 case(s)"),
            "{}",
            r.verdict
        );
    }
}
