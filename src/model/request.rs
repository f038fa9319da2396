//! The ingest schema, version 1 (DESIGN.md "The request").
//!
//! A request is kept verbatim as its JSON text; this module reads a typed view of it.
//! Reading never fails on a bad field value: a value of the wrong type is kept as its JSON
//! text and noted in [`Request::type_errors`], so validation can flag it for the reviewer.
//! Only a payload that is not an object or lacks its natural key is refused ([`IngestError`]).
use serde_json::{Map, Value};

/// Why a payload cannot be queued at all (it goes to quarantine instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object (found {0})")]
    NotAnObject(&'static str),
    #[error("missing required field '{0}'")]
    MissingKey(&'static str),
    #[error("field '{field}' must be a non-empty string (found {found})")]
    BadKey { field: &'static str, found: String },
}

/// What came in, untouched.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Raw {
    pub channel: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    /// Form fields in their original order, values as JSON.
    pub fields: Vec<(String, Value)>,
}

/// The model's confidence: unknown (absent or null), a number, or something that is not
/// a number in 0..1 (kept as its JSON text).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Confidence {
    Unknown,
    Value(f64),
    Invalid(String),
}

impl Confidence {
    /// The usable number, if any.
    pub fn value(&self) -> Option<f64> {
        match self {
            Confidence::Value(v) => Some(*v),
            _ => None,
        }
    }

    pub fn display(&self) -> String {
        match self {
            Confidence::Unknown => "unknown".into(),
            Confidence::Value(v) => format!("{v:.2}"),
            Confidence::Invalid(s) => s.clone(),
        }
    }
}

/// The AI's structured output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Triage {
    pub summary: Option<String>,
    pub intent: Option<String>,
    pub priority: Option<String>,
    pub confidence: Confidence,
    pub recommended_next_step: Option<String>,
    pub escalation_reason: Option<String>,
    pub crm_update_required: Option<bool>,
    pub human_review_required: Option<bool>,
    pub missing_info: Vec<String>,
    pub draft_reply: Option<String>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
}

impl Default for Triage {
    fn default() -> Self {
        Triage {
            summary: None,
            intent: None,
            priority: None,
            confidence: Confidence::Unknown,
            recommended_next_step: None,
            escalation_reason: None,
            crm_update_required: None,
            human_review_required: None,
            missing_info: Vec::new(),
            draft_reply: None,
            model: None,
            prompt_version: None,
        }
    }
}

impl Triage {
    /// The AI's two yes/no flags in words, as the console and `signoff show` print them:
    /// `CRM update: yes · human review: not said`.
    pub fn flags_text(&self) -> String {
        let yes_no = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not said",
        };
        format!(
            "CRM update: {} · human review: {}",
            yes_no(self.crm_update_required),
            yes_no(self.human_review_required)
        )
    }
}

/// A typed view of one ingested payload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Request {
    pub source: String,
    pub external_id: String,
    pub received_at: Option<String>,
    pub correlation_id: Option<String>,
    pub raw: Raw,
    pub ai: Triage,
    /// `true` when the payload had no `ai` object at all.
    pub ai_missing: bool,
    /// Fields present with the wrong JSON type, as "path: expected X, found Y".
    pub type_errors: Vec<String>,
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads fields from one JSON object, recording type errors instead of failing.
struct Reader<'a> {
    obj: Option<&'a Map<String, Value>>,
    prefix: &'static str,
    errors: &'a mut Vec<String>,
}

impl<'a> Reader<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.and_then(|o| o.get(key)).filter(|v| !v.is_null())
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.errors.push(format!(
                    "{}{key}: expected a string, found {}",
                    self.prefix,
                    json_type(other)
                ));
                // Kept verbatim so nothing is lost.
                Some(other.to_string())
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.errors.push(format!(
                    "{}{key}: expected true or false, found {}",
                    self.prefix,
                    json_type(other)
                ));
                None
            }
        }
    }
}

impl Request {
    /// Reads a payload. Fails only when it is not an object or lacks `source`/`external_id`.
    pub fn from_value(v: &Value) -> Result<Request, IngestError> {
        let obj = match v {
            Value::Object(o) => o,
            other => return Err(IngestError::NotAnObject(json_type(other))),
        };
        let key = |field: &'static str| -> Result<String, IngestError> {
            match obj.get(field) {
                None | Some(Value::Null) => Err(IngestError::MissingKey(field)),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                Some(Value::String(_)) => Err(IngestError::BadKey {
                    field,
                    found: "an empty string".into(),
                }),
                Some(other) => Err(IngestError::BadKey {
                    field,
                    found: json_type(other).into(),
                }),
            }
        };
        let source = key("source")?;
        let external_id = key("external_id")?;

        let mut errors = Vec::new();
        let mut top = Reader {
            obj: Some(obj),
            prefix: "",
            errors: &mut errors,
        };
        let received_at = top.string("received_at");
        let correlation_id = top.string("correlation_id");
        let raw_obj = sub_object(obj, "raw", &mut errors);
        let ai_missing = obj.get("ai").is_none_or(Value::is_null);
        let ai_obj = sub_object(obj, "ai", &mut errors);

        let mut r = Reader {
            obj: raw_obj,
            prefix: "raw.",
            errors: &mut errors,
        };
        let mut raw = Raw {
            channel: r.string("channel"),
            from: r.string("from"),
            subject: r.string("subject"),
            body: r.string("body"),
            fields: Vec::new(),
        };
        match r.get("fields") {
            Some(Value::Object(f)) => {
                raw.fields = f.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            Some(other) => r.errors.push(format!(
                "raw.fields: expected an object, found {}",
                json_type(other)
            )),
            None => {}
        }

        let ai = triage_from(ai_obj, &mut errors);
        Ok(Request {
            source,
            external_id,
            received_at,
            correlation_id,
            raw,
            ai,
            ai_missing,
            type_errors: errors,
        })
    }

    /// Only the AI's fields of a payload, without building the rest (a decision reads
    /// them from the stored payload). Same values as `from_json(text)?.1.ai`.
    pub fn triage_from_json(text: &str) -> Result<Triage, IngestError> {
        #[derive(serde::Deserialize)]
        struct AiOnly {
            #[serde(default)]
            ai: Value,
        }
        match serde_json::from_str::<AiOnly>(text) {
            Ok(only) => Ok(triage_from(only.ai.as_object(), &mut Vec::new())),
            // A payload serde's derive refuses but a full read takes (a duplicate "ai"
            // key: the last one wins there).
            Err(_) => Request::from_json(text).map(|(_, r)| r.ai),
        }
    }

    /// Parses JSON text and reads it.
    pub fn from_json(text: &str) -> Result<(Value, Request), IngestError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| IngestError::NotJson(e.to_string()))?;
        let r = Request::from_value(&v)?;
        Ok((v, r))
    }
}

fn sub_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    errors: &mut Vec<String>,
) -> Option<&'a Map<String, Value>> {
    match obj.get(key) {
        Some(Value::Object(o)) => Some(o),
        None | Some(Value::Null) => None,
        Some(other) => {
            errors.push(format!(
                "{key}: expected an object, found {}",
                json_type(other)
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_minimal_object_from_the_field_is_accepted() {
        let v = json!({"source":"crm-bridge","external_id":"42","ai":{
            "summary":"Wants a demo","intent":"sales_lead","priority":"high",
            "recommended_next_step":"Book a call","crm_update_required":true,
            "human_review_required":false}});
        let r = Request::from_value(&v).unwrap();
        assert_eq!(r.ai.confidence, Confidence::Unknown);
        assert_eq!(r.ai.intent.as_deref(), Some("sales_lead"));
        assert_eq!(r.ai.crm_update_required, Some(true));
        assert!(r.type_errors.is_empty());
        assert!(!r.ai_missing);
    }

    #[test]
    fn wrong_types_are_kept_verbatim_and_noted() {
        let v = json!({"source":"s","external_id":"e","ai":{"confidence":"high","summary":7,
            "missing_info":{"a":1}}, "raw": {"fields": [1]}});
        let r = Request::from_value(&v).unwrap();
        assert_eq!(r.ai.confidence, Confidence::Invalid("\"high\"".into()));
        assert_eq!(r.ai.summary.as_deref(), Some("7"));
        assert_eq!(r.type_errors.len(), 3, "{:?}", r.type_errors);
        assert!(r.type_errors[0].contains("raw.fields"));
    }

    #[test]
    fn out_of_range_confidence_is_invalid_not_clamped() {
        let r =
            Request::from_value(&json!({"source":"s","external_id":"e","ai":{"confidence":1.3}}))
                .unwrap();
        assert_eq!(r.ai.confidence, Confidence::Invalid("1.3".into()));
    }

    #[test]
    fn payloads_without_a_natural_key_are_refused() {
        assert_eq!(
            Request::from_value(&json!([1])).unwrap_err(),
            IngestError::NotAnObject("an array")
        );
        assert_eq!(
            Request::from_value(&json!({"source":"s"})).unwrap_err(),
            IngestError::MissingKey("external_id")
        );
        let err = Request::from_value(&json!({"source":"s","external_id":5})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 'external_id' must be a non-empty string (found a number)"
        );
    }

    #[test]
    fn an_empty_ai_object_is_not_missing_but_empty() {
        let r = Request::from_value(&json!({"source":"s","external_id":"e","ai":{}})).unwrap();
        assert!(!r.ai_missing);
        assert_eq!(r.ai, Triage::default());
        let r = Request::from_value(&json!({"source":"s","external_id":"e"})).unwrap();
        assert!(r.ai_missing);
    }
}

/// The AI's fields from the `ai` object (None: missing or not an object; type errors are
/// recorded in `errors`).
fn triage_from(ai_obj: Option<&Map<String, Value>>, errors: &mut Vec<String>) -> Triage {
    let mut a = Reader {
        obj: ai_obj,
        prefix: "ai.",
        errors,
    };
    let confidence = match a.get("confidence") {
        None => Confidence::Unknown,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if (0.0..=1.0).contains(&f) => Confidence::Value(f),
            _ => Confidence::Invalid(n.to_string()),
        },
        Some(other) => Confidence::Invalid(other.to_string()),
    };
    let mut ai = Triage {
        summary: a.string("summary"),
        intent: a.string("intent"),
        priority: a.string("priority"),
        confidence,
        recommended_next_step: a.string("recommended_next_step"),
        escalation_reason: a.string("escalation_reason"),
        crm_update_required: a.boolean("crm_update_required"),
        human_review_required: a.boolean("human_review_required"),
        missing_info: Vec::new(),
        draft_reply: a.string("draft_reply"),
        model: a.string("model"),
        prompt_version: a.string("prompt_version"),
    };
    match a.get("missing_info") {
        Some(Value::Array(items)) => {
            ai.missing_info = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        }
        Some(Value::String(s)) => ai.missing_info = vec![s.clone()],
        Some(other) => a.errors.push(format!(
            "ai.missing_info: expected a list of strings, found {}",
            json_type(other)
        )),
        None => {}
    }
    ai
}

#[cfg(test)]
mod triage_tests {
    use super::*;

    #[test]
    fn reading_only_the_ai_fields_gives_what_a_full_read_gives() {
        let demo = include_str!("../demo/requests.jsonl");
        let mut extra = vec![
            r#"{"source":"s","external_id":"e"}"#.to_string(),
            r#"{"source":"s","external_id":"e","ai":null}"#.to_string(),
            r#"{"source":"s","external_id":"e","ai":"text"}"#.to_string(),
            r#"{"source":"s","external_id":"e","ai":{"intent":"a"},"ai":{"intent":"b","confidence":"high"}}"#.to_string(),
            r#"{"source":"s","external_id":"e","ai":{"confidence":7,"missing_info":"phone"}}"#.to_string(),
        ];
        extra.extend(demo.lines().map(str::to_string));
        for text in extra {
            let full = Request::from_json(&text).unwrap().1.ai;
            assert_eq!(Request::triage_from_json(&text).unwrap(), full, "{text}");
        }
    }
}
