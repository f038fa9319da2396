//! Reading a history file: requests in the ingest schema, each with `actual`, what people
//! really did with it. A JSON array, JSON Lines, or objects one after another. Every
//! problem names the file and line of its case.
use std::collections::HashMap;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::model::Request;

/// What really happened to a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActualDecision {
    Approve,
    Reject,
    Escalate,
}

impl ActualDecision {
    pub fn parse(s: &str) -> Option<ActualDecision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "approve" | "approved" => Some(ActualDecision::Approve),
            "reject" | "rejected" => Some(ActualDecision::Reject),
            "escalate" | "escalated" => Some(ActualDecision::Escalate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActualDecision::Approve => "approve",
            ActualDecision::Reject => "reject",
            ActualDecision::Escalate => "escalate",
        }
    }
}

/// The `actual` object of a case: the final fields and the decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Actual {
    pub decision: ActualDecision,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub summary: Option<String>,
    pub recommended_next_step: Option<String>,
    /// The reply that was sent, if any.
    pub reply: Option<String>,
}

/// One historical case.
#[derive(Clone, Debug)]
pub struct Case {
    /// `FILE:LINE` of the case.
    pub origin: String,
    pub request: Request,
    pub actual: Actual,
}

/// A case that cannot be used, and why.
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

/// Line numbers of byte offsets met in increasing order: counts only the bytes between
/// one offset and the next.
struct Lines<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl Lines<'_> {
    fn at(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.text[self.offset..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.offset = offset;
        self.line
    }
}

/// The cases of a history file's text (`name` names it in problems). Returns every case
/// that reads, and every problem (a case with a problem is left out).
pub fn read(name: &str, text: &str) -> (Vec<Case>, Vec<Problem>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    let at = |line: u64| format!("{name}:{line}");
    let offset_of = |raw: &RawValue| raw.get().as_ptr() as usize - text.as_ptr() as usize;
    let mut lines = Lines {
        text: text.as_bytes(),
        offset: 0,
        line: 1,
    };
    let mut line_of = |offset: usize| lines.at(offset);
    let mut entries: Vec<(u64, &RawValue)> = Vec::new();
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(v) => entries.extend(v.into_iter().map(|r| (line_of(offset_of(r)), r))),
            Err(e) => problems.push(Problem {
                origin: at(e.line() as u64),
                message: format!("not valid JSON: {e}"),
            }),
        }
    } else {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
        loop {
            match stream.next() {
                None => break,
                Some(Ok(r)) => entries.push((line_of(offset_of(r)), r)),
                Some(Err(e)) => {
                    problems.push(Problem {
                        origin: at(e.line() as u64),
                        message: format!("not valid JSON: {e}; the rest of the file was not read"),
                    });
                    break;
                }
            }
        }
    }
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    for (line, raw) in entries {
        match case(raw.get()) {
            Ok((request, actual)) => {
                let key = (request.source.clone(), request.external_id.clone());
                if let Some(first) = seen.get(&key) {
                    problems.push(Problem {
                        origin: at(line),
                        message: format!(
                            "the case {} / {} is already at line {first}; each case once",
                            crate::text::sanitize(&key.0),
                            crate::text::sanitize(&key.1)
                        ),
                    });
                    continue;
                }
                seen.insert(key, line);
                cases.push(Case {
                    origin: at(line),
                    request,
                    actual,
                });
            }
            Err(message) => problems.push(Problem {
                origin: at(line),
                message,
            }),
        }
    }
    (cases, problems)
}

fn case(text: &str) -> Result<(Request, Actual), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let request = Request::from_value(&value).map_err(|e| e.to_string())?;
    let actual = match value.get("actual") {
        Some(Value::Object(a)) => a,
        Some(other) => {
            return Err(format!(
                "'actual' must be an object (found {}); it says what people really did",
                crate::model::json_type_name(other)
            ));
        }
        None => {
            return Err(
                "missing 'actual': what people really did ({\"decision\": \"approve\", \"intent\": …, \"priority\": …})"
                    .into(),
            );
        }
    };
    let string = |key: &str| -> Result<Option<String>, String> {
        match actual.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "actual.{key} must be a string (found {})",
                crate::model::json_type_name(other)
            )),
        }
    };
    let decision = match string("decision")? {
        None => return Err("actual.decision is missing: approve, reject or escalate".into()),
        Some(d) => ActualDecision::parse(&d).ok_or_else(|| {
            format!(
                "actual.decision '{}' is not approve, reject or escalate",
                crate::text::sanitize(&d)
            )
        })?,
    };
    let actual = Actual {
        decision,
        intent: string("intent")?,
        priority: string("priority")?,
        summary: string("summary")?,
        recommended_next_step: string("recommended_next_step")?,
        reply: string("reply")?,
    };
    if decision == ActualDecision::Approve {
        for (key, v) in [("intent", &actual.intent), ("priority", &actual.priority)] {
            if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                return Err(format!(
                    "actual.{key} is missing: an approved case needs the final intent and priority"
                ));
            }
        }
    }
    Ok((request, actual))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = r#"{"source": "s", "external_id": "e1", "ai": {"intent": "other", "priority": "low", "confidence": 0.9},
  "actual": {"decision": "approved", "intent": "other", "priority": "low"}}"#;

    #[test]
    fn arrays_lines_and_pretty_objects_read_with_their_lines() {
        let lines = format!(
            "{}\n\n{}\n",
            CASE.replace('\n', ""),
            CASE.replace("e1", "e2").replace('\n', "")
        );
        let (cases, problems) = read("h.jsonl", &lines);
        assert_eq!(problems, vec![]);
        assert_eq!(
            cases.iter().map(|c| c.origin.as_str()).collect::<Vec<_>>(),
            ["h.jsonl:1", "h.jsonl:3"]
        );
        assert_eq!(cases[0].actual.decision, ActualDecision::Approve);

        let array = format!("[\n{CASE},\n{}\n]", CASE.replace("e1", "e2"));
        let (cases, problems) = read("h.json", &array);
        assert_eq!(problems, vec![]);
        assert_eq!(
            cases.iter().map(|c| c.origin.as_str()).collect::<Vec<_>>(),
            ["h.json:2", "h.json:4"]
        );

        let pretty = format!("{CASE}\n{}", CASE.replace("e1", "e2"));
        let (cases, _) = read("h.json", &pretty);
        assert_eq!(cases[1].origin, "h.json:3");
    }

    #[test]
    fn problems_name_the_line_and_the_field() {
        let text = [
            CASE.replace('\n', ""),
            r#"{"source": "s", "external_id": "e2", "ai": {}}"#.into(),
            r#"{"source": "s", "external_id": "e3", "actual": {"decision": "maybe"}}"#.into(),
            r#"{"source": "s", "external_id": "e4", "actual": {"decision": "approve", "intent": "x"}}"#.into(),
            CASE.replace('\n', ""),
            r#"{"external_id": "e5", "actual": {"decision": "reject"}}"#.into(),
            r#"{"source": "s", "external_id": "e6", "actual": {"decision": "reject"}}"#.into(),
        ]
        .join("\n");
        let (cases, problems) = read("h.jsonl", &text);
        assert_eq!(cases.len(), 2);
        let got: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got[0].starts_with("h.jsonl:2: missing 'actual'"), "{got:?}");
        assert!(
            got[1].starts_with("h.jsonl:3: actual.decision 'maybe' is not"),
            "{got:?}"
        );
        assert!(
            got[2].starts_with("h.jsonl:4: actual.priority is missing"),
            "{got:?}"
        );
        assert!(
            got[3].starts_with("h.jsonl:5: the case s / e1 is already at line 1"),
            "{got:?}"
        );
        assert!(
            got[4].starts_with("h.jsonl:6: missing required field 'source'"),
            "{got:?}"
        );
    }
}
