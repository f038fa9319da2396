//! A parallel (shadow) run: reviewers work in signoff with `actions.mode = "shadow"`
//! (actions rendered and stored, never sent) while the existing process keeps going. What
//! the existing process did is imported from CSV or JSON Lines keyed by `source` and
//! `external_id`, and compared item by item with signoff's decisions: where the two
//! disagreed, on which fields, and how long each took.
//!
//! An outcome row: `source`, `external_id` (required), `decision` (approve, reject or
//! escalate), `intent`, `priority`, `summary`, `next_step` (or `recommended_next_step`),
//! `started_at` and `done_at` (RFC 3339), `handle_seconds`. Every problem names the file
//! and line.
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::queue::Millis;
use crate::validate::{ActualDecision, similarity};

/// What the existing process did with one request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExistingOutcome {
    /// `FILE:LINE`.
    pub origin: String,
    pub source: String,
    pub external_id: String,
    pub decision: Option<String>,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub summary: Option<String>,
    pub next_step: Option<String>,
    pub started_at: Option<Millis>,
    pub done_at: Option<Millis>,
    /// Time someone spent on it, when known.
    pub handle_ms: Option<Millis>,
}

/// A line that could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub origin: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Splits CSV text (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes)
/// into records, each with the line it starts on.
/// CSV records, each with the line it starts on.
type Records = Vec<(u64, Vec<String>)>;

fn csv_records(text: &str) -> Result<Records, (u64, String)> {
    let mut out = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1u64;
    let mut start = 1u64;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                any = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if any || !field.is_empty() {
                    record.push(std::mem::take(&mut field));
                    out.push((start, std::mem::take(&mut record)));
                }
                any = false;
                line += 1;
                start = line;
            }
            c => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err((start, "a quoted field is not closed".into()));
    }
    if any || !field.is_empty() {
        record.push(field);
        out.push((start, record));
    }
    Ok(out)
}

fn time_ms(key: &str, v: &str) -> Result<Option<Millis>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| Some((t.unix_timestamp_nanos() / 1_000_000) as Millis))
        .map_err(|_| {
            format!(
                "{key} '{}' is not an RFC 3339 time",
                crate::text::sanitize(v)
            )
        })
}

/// One outcome from its named values.
fn outcome(
    origin: String,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<ExistingOutcome, String> {
    let key = |k: &str| -> Result<String, String> {
        get(k).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            format!("'{k}' is missing: each outcome names its request by source and external_id")
        })
    };
    let opt = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let decision = match opt("decision") {
        None => None,
        Some(d) => Some(
            ActualDecision::parse(&d)
                .ok_or_else(|| {
                    format!(
                        "decision '{}' is not approve, reject or escalate",
                        crate::text::sanitize(&d)
                    )
                })?
                .as_str()
                .to_string(),
        ),
    };
    let handle_ms = match opt("handle_seconds") {
        None => None,
        Some(s) => Some(
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .map(|x| (x * 1000.0).round() as Millis)
                .ok_or_else(|| {
                    format!(
                        "handle_seconds '{}' is not a number of seconds",
                        crate::text::sanitize(&s)
                    )
                })?,
        ),
    };
    let started_at = time_ms("started_at", &opt("started_at").unwrap_or_default())?;
    let done_at = time_ms("done_at", &opt("done_at").unwrap_or_default())?;
    Ok(ExistingOutcome {
        origin,
        source: key("source")?,
        external_id: key("external_id")?,
        decision,
        intent: opt("intent"),
        priority: opt("priority"),
        summary: opt("summary"),
        next_step: opt("next_step").or_else(|| opt("recommended_next_step")),
        started_at,
        done_at,
        handle_ms: handle_ms.or(match (started_at, done_at) {
            (Some(s), Some(d)) if d >= s => Some(d - s),
            _ => None,
        }),
    })
}

/// The outcomes of a CSV (a header row naming the columns) or JSON Lines file; `name`
/// names it in problems. CSV when the name ends in `.csv` or the first character is not
/// `{`.
pub fn read(name: &str, text: &str) -> (Vec<ExistingOutcome>, Vec<Problem>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let at = |line: u64| format!("{name}:{line}");
    let is_csv = name.to_ascii_lowercase().ends_with(".csv") || !text.trim_start().starts_with('{');
    if is_csv {
        let records = match csv_records(text) {
            Ok(r) => r,
            Err((line, why)) => {
                problems.push(Problem {
                    origin: at(line),
                    message: why,
                });
                return (rows, problems);
            }
        };
        let mut it = records.into_iter();
        let Some((_, header)) = it.next() else {
            return (rows, problems);
        };
        let header: Vec<String> = header
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        for (line, record) in it {
            if record.len() != header.len() {
                problems.push(Problem {
                    origin: at(line),
                    message: format!(
                        "{} field(s), the header names {}",
                        record.len(),
                        header.len()
                    ),
                });
                continue;
            }
            let get = |k: &str| {
                header
                    .iter()
                    .position(|h| h == k)
                    .map(|i| record[i].clone())
            };
            match outcome(at(line), &get) {
                Ok(o) => rows.push(o),
                Err(message) => problems.push(Problem {
                    origin: at(line),
                    message,
                }),
            }
        }
    } else {
        for (i, l) in text.lines().enumerate() {
            let line = i as u64 + 1;
            if l.trim().is_empty() {
                continue;
            }
            let v: Value = match serde_json::from_str(l) {
                Ok(Value::Object(o)) => Value::Object(o),
                Ok(_) => {
                    problems.push(Problem {
                        origin: at(line),
                        message: "not a JSON object".into(),
                    });
                    continue;
                }
                Err(e) => {
                    problems.push(Problem {
                        origin: at(line),
                        message: format!("not valid JSON: {e}"),
                    });
                    continue;
                }
            };
            let get = |k: &str| match v.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            match outcome(at(line), &get) {
                Ok(o) => rows.push(o),
                Err(message) => problems.push(Problem {
                    origin: at(line),
                    message,
                }),
            }
        }
    }
    (rows, problems)
}

/// signoff's side of one item: its decision in force and the reviewed fields.
#[derive(Clone, Debug, PartialEq)]
pub struct SignoffSide {
    pub id: i64,
    pub received_at: Millis,
    /// None while undecided.
    pub decision: Option<String>,
    pub decided_at: Option<Millis>,
    /// From the claim to the decision.
    pub handle_ms: Option<Millis>,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub summary: Option<String>,
    pub next_step: Option<String>,
}

/// One field on which the two disagreed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub field: String,
    pub signoff: Option<String>,
    pub existing: Option<String>,
}

/// One item decided on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compared {
    pub id: i64,
    pub source: String,
    pub external_id: String,
    pub differences: Vec<Difference>,
    /// From receipt to signoff's decision.
    pub signoff_ms: Option<Millis>,
    /// From receipt to the existing process's `done_at`.
    pub existing_ms: Option<Millis>,
    pub signoff_handle_ms: Option<Millis>,
    pub existing_handle_ms: Option<Millis>,
}

/// `signoff shadow report`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub imported: u64,
    pub compared: u64,
    pub agreed: u64,
    pub disagreed: u64,
    /// Disagreements per field, in field order.
    pub by_field: Vec<(String, u64)>,
    /// Imported outcomes whose item signoff has not decided yet (`source/external_id`).
    pub undecided: Vec<String>,
    /// Imported outcomes with no item in signoff.
    pub missing: Vec<String>,
    pub signoff_median_ms: Option<Millis>,
    pub existing_median_ms: Option<Millis>,
    pub signoff_median_handle_ms: Option<Millis>,
    pub existing_median_handle_ms: Option<Millis>,
    /// Every compared item, disagreements first.
    pub items: Vec<Compared>,
}

/// The fields compared, in order.
pub const FIELDS: [&str; 5] = ["decision", "intent", "priority", "summary", "next_step"];

/// Compares each imported outcome with signoff's side (`None`: no such item). Intent and
/// priority compare without regard to case (priorities as the policy reads them); summary
/// and next step by word similarity at `similarity_match`, when both sides have one.
pub fn compare(
    pairs: Vec<(ExistingOutcome, Option<SignoffSide>)>,
    policy: &crate::model::Policy,
    similarity_match: f64,
) -> Report {
    let mut r = Report {
        imported: pairs.len() as u64,
        ..Report::default()
    };
    let mut counts = [0u64; FIELDS.len()];
    let (mut s_times, mut e_times, mut s_handles, mut e_handles) = (vec![], vec![], vec![], vec![]);
    for (e, s) in pairs {
        let key = format!("{}/{}", e.source, e.external_id);
        let Some(s) = s else {
            r.missing.push(key);
            continue;
        };
        if s.decision.is_none() {
            r.undecided.push(key);
            continue;
        }
        let prio =
            |p: &Option<String>| p.as_deref().map(|p| policy.priority_as_read(p).to_string());
        let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
            // The existing process did not say: nothing to disagree with.
            (_, None) => true,
            (None, Some(_)) => false,
        };
        let alike = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => similarity(a, b) >= similarity_match,
            _ => true,
        };
        let sides = [
            (
                s.decision.clone(),
                e.decision.clone(),
                same(&s.decision, &e.decision),
            ),
            (
                s.intent.clone(),
                e.intent.clone(),
                same(&s.intent, &e.intent),
            ),
            (
                s.priority.clone(),
                e.priority.clone(),
                same(&prio(&s.priority), &prio(&e.priority)),
            ),
            (
                s.summary.clone(),
                e.summary.clone(),
                alike(&s.summary, &e.summary),
            ),
            (
                s.next_step.clone(),
                e.next_step.clone(),
                alike(&s.next_step, &e.next_step),
            ),
        ];
        let mut differences = Vec::new();
        for (i, (sv, ev, ok)) in sides.into_iter().enumerate() {
            if !ok {
                counts[i] += 1;
                differences.push(Difference {
                    field: FIELDS[i].to_string(),
                    signoff: sv,
                    existing: ev,
                });
            }
        }
        let signoff_ms = s.decided_at.map(|d| d - s.received_at);
        let existing_ms = e.done_at.map(|d| d - s.received_at);
        s_times.extend(signoff_ms);
        e_times.extend(existing_ms);
        s_handles.extend(s.handle_ms);
        e_handles.extend(e.handle_ms);
        r.compared += 1;
        if differences.is_empty() {
            r.agreed += 1;
        } else {
            r.disagreed += 1;
        }
        r.items.push(Compared {
            id: s.id,
            source: e.source,
            external_id: e.external_id,
            differences,
            signoff_ms,
            existing_ms,
            signoff_handle_ms: s.handle_ms,
            existing_handle_ms: e.handle_ms,
        });
    }
    // Disagreements first, then by item.
    r.items.sort_by_key(|i| (i.differences.is_empty(), i.id));
    r.by_field = FIELDS
        .iter()
        .zip(counts)
        .map(|(f, n)| (f.to_string(), n))
        .collect();
    let median = |v: Vec<Millis>| crate::stats::Percentiles::of(v).map(|p| p.p50);
    r.signoff_median_ms = median(s_times);
    r.existing_median_ms = median(e_times);
    r.signoff_median_handle_ms = median(s_handles);
    r.existing_median_handle_ms = median(e_handles);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_reads_quotes_doubled_quotes_and_line_breaks() {
        let text = "source,external_id,decision,summary\r\nweb,1,approve,\"Says \"\"hi\"\",\nthen more\"\nweb,2,REJECTED,\n\nweb,3,maybe,x\nweb,4\n";
        let (rows, problems) = read("o.csv", text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].origin, "o.csv:2");
        assert_eq!(rows[0].summary.as_deref(), Some("Says \"hi\",\nthen more"));
        assert_eq!(rows[1].origin, "o.csv:4");
        assert_eq!(rows[1].decision.as_deref(), Some("reject"));
        let got: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            got,
            [
                "o.csv:6: decision 'maybe' is not approve, reject or escalate",
                "o.csv:7: 2 field(s), the header names 4"
            ]
        );
    }

    #[test]
    fn json_lines_name_their_line() {
        let text = "{\"source\":\"a\",\"external_id\":\"1\",\"done_at\":\"2026-11-20T10:00:00Z\",\"started_at\":\"2026-11-20T09:50:00Z\"}\n{\"source\":\"a\"}\n";
        let (rows, problems) = read("o.jsonl", text);
        assert_eq!(rows[0].handle_ms, Some(600_000));
        assert_eq!(problems[0].origin, "o.jsonl:2");
        assert!(problems[0].message.contains("'external_id' is missing"));
    }
}
