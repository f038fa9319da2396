//! Validation against policy. Nothing is dropped: an invalid value stays as it came and
//! becomes a flag, which the reviewer sees as an escalation reason.
use super::{Confidence, EditableField, FieldValues, Policy, Request};

/// One problem with a request, shown to the reviewer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Flag {
    /// The field concerned (`ai.intent`, `received_at`, …).
    pub field: String,
    pub message: String,
}

impl Flag {
    fn new(field: &str, message: impl Into<String>) -> Flag {
        Flag {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Flags for an ingested request.
pub fn validate(req: &Request, policy: &Policy) -> Vec<Flag> {
    let mut flags = Vec::new();
    if req.ai_missing {
        flags.push(Flag::new(
            "ai",
            "the request carries no AI triage ('ai' is missing)",
        ));
    }
    for e in &req.type_errors {
        let field = e.split(':').next().unwrap_or("");
        flags.push(Flag::new(field, e.clone()));
    }
    if let Some(at) = &req.received_at
        && time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_err()
    {
        flags.push(Flag::new(
            "received_at",
            format!("received_at '{at}' is not an RFC 3339 time"),
        ));
    }
    match &req.ai.confidence {
        Confidence::Invalid(raw) if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
            flags.push(Flag::new(
                "ai.confidence",
                format!("confidence {raw} is outside 0..1"),
            ))
        }
        Confidence::Invalid(raw) => flags.push(Flag::new(
            "ai.confidence",
            format!("confidence {raw} is not a number"),
        )),
        _ => {}
    }
    if !req.ai_missing {
        flags.extend(check_fields(&FieldValues::from_ai(&req.ai), policy));
    }
    flags
}

/// Why an item needs a person, under the policy's review rules (empty: it may be
/// auto-approved where the policy turns that on).
pub fn review_reasons(req: &Request, flags: &[Flag], policy: &Policy) -> Vec<String> {
    let mut why = Vec::new();
    match req.ai.confidence.value() {
        None => why.push("confidence unknown".to_string()),
        Some(c) if c < policy.confidence_threshold => why.push(format!(
            "confidence {c:.2} below the threshold {:.2}",
            policy.confidence_threshold
        )),
        _ => {}
    }
    let r = &policy.review;
    if let Some(i) = req.ai.intent.as_deref() {
        if r.intents.iter().any(|x| x == i) {
            why.push(format!("intent '{i}' always needs review"));
        }
        for a in policy.actions_for(i) {
            if policy.never_auto_send.contains(a) {
                why.push(format!(
                    "intent '{i}' triggers {}, which never goes out without review",
                    a.as_str()
                ));
            }
        }
    }
    if let Some(p) = req
        .ai
        .priority
        .as_deref()
        .and_then(|p| policy.read_priority(p))
        && r.priorities.iter().any(|x| x == p)
    {
        why.push(format!("priority '{p}' always needs review"));
    }
    if r.escalation_reason
        && req
            .ai
            .escalation_reason
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty())
    {
        why.push("the AI gave an escalation reason".into());
    }
    if r.ai_requests_review && req.ai.human_review_required == Some(true) {
        why.push("the AI asked for human review".into());
    }
    if r.flagged && !flags.is_empty() {
        why.push(format!("{} validation flag(s)", flags.len()));
    }
    why
}

/// Flags for field values (the AI's, or after a reviewer's edits). A priority is allowed
/// when the policy reads it as one of its priorities (any case, or an alias).
pub fn check_fields(v: &FieldValues, policy: &Policy) -> Vec<Flag> {
    let mut flags = Vec::new();
    match v.get(EditableField::Intent) {
        None => flags.push(Flag::new("ai.intent", "intent is missing")),
        Some(i) if !policy.intents.iter().any(|x| x == i) => flags.push(Flag::new(
            "ai.intent",
            format!("intent '{i}' is not an allowed intent"),
        )),
        _ => {}
    }
    match v.get(EditableField::Priority) {
        None => flags.push(Flag::new("ai.priority", "priority is missing")),
        Some(p) if policy.read_priority(p).is_none() => flags.push(Flag::new(
            "ai.priority",
            format!("priority '{p}' is not an allowed priority"),
        )),
        _ => {}
    }
    if v.get(EditableField::Summary)
        .is_none_or(|s| s.trim().is_empty())
    {
        flags.push(Flag::new("ai.summary", "summary is missing"));
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags(v: serde_json::Value) -> Vec<String> {
        let r = Request::from_value(&v).unwrap();
        validate(&r, &Policy::default())
            .into_iter()
            .map(|f| f.message)
            .collect()
    }

    #[test]
    fn a_clean_request_has_no_flags() {
        let f = flags(
            json!({"source":"s","external_id":"e","received_at":"2026-11-20T10:00:00Z",
            "ai":{"summary":"x","intent":"billing_question","priority":"low","confidence":0.9}}),
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn invalid_values_become_readable_flags() {
        let f = flags(
            json!({"source":"s","external_id":"e","received_at":"yesterday",
            "ai":{"intent":"refund","priority":"asap","confidence":1.3}}),
        );
        assert_eq!(
            f,
            vec![
                "received_at 'yesterday' is not an RFC 3339 time",
                "confidence 1.3 is outside 0..1",
                "intent 'refund' is not an allowed intent",
                "priority 'asap' is not an allowed priority",
                "summary is missing",
            ]
        );
    }

    #[test]
    fn a_string_confidence_is_not_a_number() {
        let f = flags(json!({"source":"s","external_id":"e",
            "ai":{"summary":"x","intent":"other","priority":"low","confidence":"high"}}));
        assert_eq!(f, vec!["confidence \"high\" is not a number"]);
    }

    #[test]
    fn an_empty_ai_object_flags_each_missing_field() {
        let f = flags(json!({"source":"s","external_id":"e","ai":{}}));
        assert_eq!(
            f,
            vec![
                "intent is missing",
                "priority is missing",
                "summary is missing"
            ]
        );
    }
}
