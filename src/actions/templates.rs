//! The configured templates (minijinja), compiled and test-rendered once at config load so
//! a typo is a config error naming its key, not a failed approval.
//!
//! What a template sees: `request` (the inbound message: `source`, `external_id`, `from`,
//! `subject`, `body`, `channel`, `received_at`, `correlation_id`, `fields`), `fields` (the
//! *reviewed* triage fields: `summary`, `intent`, `priority`, `recommended_next_step`,
//! `escalation_reason`, `draft_reply`), `decision` (`kind`, `queue`, `reason`, `note`,
//! `reviewer`) and `key` (the outbox idempotency key). Undefined names are errors.
//!
//! Values are escaped for where they land: HTML for the monday note, Slack's `&<>` for
//! Slack text, nothing for plain fields and the email body.
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::json;

use super::config::ActionsConfig;
use crate::store::RenderContext;

/// Config keys of the templates whose values are escaped as HTML.
const HTML: &[&str] = &["actions.monday.note"];
/// … and as Slack mrkdwn.
const SLACK: &[&str] = &["actions.slack.text", "actions.slack.blocks"];

/// All configured templates, compiled.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Compiles every template of `cfg` and renders each against a sample item. Errors are
    /// `(config key, message)`.
    pub fn compile(cfg: &ActionsConfig) -> Result<Templates, Vec<(String, String)>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if HTML.contains(&name) {
                AutoEscape::Html
            } else if SLACK.contains(&name) {
                AutoEscape::Custom("slack")
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            // `none` renders as nothing, not as the word "none".
            if value.is_none() || value.is_undefined() {
                return Ok(());
            }
            if state.auto_escape() == AutoEscape::Custom("slack") && !value.is_safe() {
                out.write_str(&slack_escape(&value.to_string()))?;
                return Ok(());
            }
            minijinja::escape_formatter(out, state, value)
        });
        let mut errors = Vec::new();
        let mut names = Vec::new();
        for (key, source) in sources(cfg) {
            match env.add_template_owned(key.clone(), source) {
                Ok(()) => names.push(key),
                Err(e) => errors.push((key, template_error(&e))),
            }
        }
        let t = Templates { env };
        let sample = sample_context();
        for key in names {
            if let Err(e) = t.render(&key, &sample) {
                errors.push((key, e));
            }
        }
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    /// Renders the template configured at `key`.
    pub fn render(&self, key: &str, ctx: &Value) -> Result<String, String> {
        let t = self
            .env
            .get_template(key)
            .map_err(|e| format!("template {key}: {}", template_error(&e)))?;
        t.render(ctx)
            .map_err(|e| format!("template {key}: {}", template_error(&e)))
    }
}

/// Every template of the config, by its dotted key.
fn sources(cfg: &ActionsConfig) -> Vec<(String, String)> {
    let mut v = vec![
        ("actions.monday.key".to_string(), cfg.monday.key.clone()),
        (
            "actions.monday.item_name".into(),
            cfg.monday.item_name.clone(),
        ),
        ("actions.monday.note".into(), cfg.monday.note.clone()),
        ("actions.slack.text".into(), cfg.slack.text.clone()),
        ("actions.slack.blocks".into(), cfg.slack.blocks.clone()),
        ("actions.gmail.subject".into(), cfg.gmail.subject.clone()),
        ("actions.gmail.body".into(), cfg.gmail.body.clone()),
    ];
    for (id, col) in &cfg.monday.columns {
        v.push((column_key(id), col.value.clone()));
    }
    v
}

/// The config key of a mapped column's template.
pub fn column_key(id: &str) -> String {
    format!("actions.monday.columns.{id}.value")
}

fn template_error(e: &minijinja::Error) -> String {
    let mut s = e.kind().to_string();
    if let Some(detail) = e.detail() {
        s.push_str(": ");
        s.push_str(detail);
    }
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
}

/// Slack mrkdwn control characters (docs: "escaping text").
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The template context of one action: reviewed fields, never the AI's raw output.
pub fn context(rc: &RenderContext<'_>) -> Value {
    let raw = &rc.request.raw;
    let form: serde_json::Map<String, serde_json::Value> = raw.fields.iter().cloned().collect();
    let (queue, reason) = match rc.decision {
        crate::model::DecisionKind::Approve => (None, None),
        crate::model::DecisionKind::Reject { reason } => (None, Some(reason.as_str())),
        crate::model::DecisionKind::Escalate { queue } => (Some(queue.as_str()), None),
    };
    Value::from_serialize(json!({
        "request": {
            "id": rc.request_id,
            "source": rc.request.source,
            "external_id": rc.request.external_id,
            "received_at": rc.request.received_at,
            "correlation_id": rc.request.correlation_id,
            "channel": raw.channel,
            "from": raw.from,
            "subject": raw.subject,
            "body": raw.body,
            "fields": form,
        },
        "fields": rc.fields,
        "decision": {
            "kind": rc.decision.verb(),
            "queue": queue,
            "reason": reason,
            "note": rc.note,
            "reviewer": rc.reviewer,
        },
        "key": rc.idempotency_key,
    }))
}

/// A made-up item every template must render against.
pub fn sample_context() -> Value {
    Value::from_serialize(json!({
        "request": {
            "id": 1, "source": "web", "external_id": "sample-1",
            "received_at": "2026-01-15T09:30:00Z", "correlation_id": null,
            "channel": "email", "from": "Ada Lovelace <ada@example.com>",
            "subject": "Pricing for 40 seats", "body": "Hello,\nwhat would 40 seats cost?",
            "fields": {},
        },
        "fields": {
            "summary": "Asks for pricing for 40 seats", "intent": "sales_lead",
            "priority": "high", "recommended_next_step": "Send the price list",
            "escalation_reason": null, "draft_reply": "Hello Ada,\nthe price list is attached.",
        },
        "decision": {"kind": "approve", "queue": null, "reason": null, "note": null, "reviewer": "sam"},
        "key": "signoff-1-1-crm",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_compile_and_escape_by_destination() {
        let t = Templates::compile(&ActionsConfig::default()).unwrap();
        let ctx = Value::from_serialize(json!({
            "request": {"from": "a<b>", "source": "s", "external_id": "e", "subject": null, "fields": {}},
            "fields": {"summary": "x & <y>", "intent": "i", "priority": "p", "recommended_next_step": null},
            "decision": {"reviewer": "r", "note": null},
            "key": "k",
        }));
        let note = t.render("actions.monday.note", &ctx).unwrap();
        assert!(note.contains("x &amp; &lt;y&gt;"), "{note}");
        let text = t.render("actions.slack.text", &ctx).unwrap();
        assert_eq!(text, "p i: x &amp; &lt;y&gt;");
        assert_eq!(t.render("actions.monday.key", &ctx).unwrap(), "s:e");
    }

    #[test]
    fn typos_are_config_errors_naming_the_key() {
        let mut cfg = ActionsConfig::default();
        cfg.slack.text = "{{ fields.sumary }}".into();
        cfg.gmail.body = "{% if %}".into();
        let errs = Templates::compile(&cfg).err().unwrap();
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"actions.slack.text"), "{errs:?}");
        assert!(keys.contains(&"actions.gmail.body"), "{errs:?}");
    }
}
