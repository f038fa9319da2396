//! An item's audit trail in words: one sentence per event ("10:42 dana changed priority
//! high → urgent", "10:43 dana approved · 2 actions queued", "10:43 crm sent · item
//! 9876543210"). Lease renewals and the start of each delivery attempt are left out: they
//! are bookkeeping, and the outcome of each attempt has its own line. `signoff audit
//! export` keeps every entry in full.
use serde_json::Value;

use super::fmt;
use crate::queue::{AuditEntry, Millis};

/// Text of at most this many cells is shown whole in an edit; longer text is counted.
const SHORT: usize = 40;

/// One line per event worth reading, oldest first, each with the day when it changes.
pub fn sentences(entries: &[AuditEntry]) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut day: Option<String> = None;
    for e in entries {
        let Some(what) = sentence(e) else { continue };
        let d = date(e.at);
        let new_day = (day.as_deref() != Some(d.as_str())).then(|| d.clone());
        day = Some(d);
        let actor = who(&e.actor, &e.kind);
        let line = if actor.is_empty() {
            format!("{} {what}", clock(e.at))
        } else {
            format!("{} {actor} {what}", clock(e.at))
        };
        out.push((new_day, line));
    }
    out
}

fn parts(ms: Millis) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn clock(ms: Millis) -> String {
    parts(ms).map_or_else(String::new, |t| {
        format!("{:02}:{:02}", t.hour(), t.minute())
    })
}

fn date(ms: Millis) -> String {
    parts(ms).map_or_else(String::new, |t| {
        format!(
            "{}-{:02}-{:02} (UTC)",
            t.year(),
            u8::from(t.month()),
            t.day()
        )
    })
}

/// The actor as a reader knows it: a delivery worker is the action it delivered.
fn who(actor: &str, kind: &str) -> String {
    if kind.starts_with("action_") {
        return String::new();
    }
    fmt::clean(actor, 24)
}

fn s<'a>(d: &'a Value, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str).filter(|v| !v.is_empty())
}

/// A value short enough to quote, or how long it is.
fn value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(empty)".into(),
        Some(Value::String(t)) if t.is_empty() => "(empty)".into(),
        Some(Value::String(t)) if fmt::cells(t) <= SHORT && !t.contains('\n') => {
            fmt::clean(t, SHORT)
        }
        Some(Value::String(t)) => format!("({} words)", t.split_whitespace().count()),
        Some(other) => fmt::clean(&other.to_string(), SHORT),
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The sentence for one entry, without time and actor; `None` for bookkeeping.
pub fn sentence(e: &AuditEntry) -> Option<String> {
    let d = &e.detail;
    let action = s(d, "action").unwrap_or("action").to_string();
    Some(match e.kind.as_str() {
        "lease_renewed" | "action_attempt" => return None,
        "ingested" => {
            let mut t = format!(
                "received from {}",
                fmt::clean(s(d, "source").unwrap_or("upstream"), 24)
            );
            if let Some(x) = s(d, "external_id") {
                t.push_str(&format!(" ({})", fmt::clean(x, 30)));
            }
            let flags = d.get("flags").and_then(Value::as_array).map_or(0, Vec::len);
            if flags > 0 {
                t.push_str(&format!(" · {} flagged", plural(flags, "problem")));
            }
            t
        }
        "revised" => format!(
            "received a new version (revision {})",
            d.get("revision").and_then(Value::as_i64).unwrap_or(0)
        ),
        "conflict" => "sent a different payload after the decision: refused".into(),
        "sampled" => "picked the item for a random audit sample".into(),
        "claimed" => "opened it for review".into(),
        "released" => "closed it without deciding".into(),
        "lease_expired" => format!(
            "ended {}'s review: the lease ran out",
            fmt::clean(s(d, "reviewer").unwrap_or("a reviewer"), 24)
        ),
        "edited" => {
            let field = s(d, "field").unwrap_or("a field").replace('_', " ");
            let (old, new) = (d.get("old"), d.get("new"));
            let long = |v: Option<&Value>| {
                v.and_then(Value::as_str)
                    .is_some_and(|t| fmt::cells(t) > SHORT || t.contains('\n'))
            };
            if long(old) || long(new) {
                format!("rewrote the {field} {} → {}", value(old), value(new))
            } else {
                format!("changed {field} {} → {}", value(old), value(new))
            }
        }
        "decided" => {
            let verb = s(d, "decision").unwrap_or("decided");
            let auto = d.get("auto").and_then(Value::as_bool).unwrap_or(false);
            let queued = d
                .get("actions")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let skipped = d
                .get("not_queued")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let mut t = match verb {
                "approve" if auto => "auto-approved".to_string(),
                "approve" => "approved".to_string(),
                "reject" => format!(
                    "rejected: {}",
                    fmt::clean(s(d, "reason").unwrap_or("no reason"), 30)
                ),
                "escalate" => format!(
                    "escalated to {}",
                    fmt::clean(s(d, "queue").unwrap_or("a queue"), 30)
                ),
                other => fmt::clean(other, 20),
            };
            if queued > 0 {
                t.push_str(&format!(" · {} queued", plural(queued, "action")));
            }
            if skipped > 0 {
                t.push_str(&format!(" · {} left out", plural(skipped, "action")));
            }
            if let Some(n) = s(d, "note") {
                t.push_str(&format!(" · “{}”", fmt::clean(n, SHORT)));
            }
            t
        }
        "undone" => "took the decision back".into(),
        "preview_rendered" => "looked at what approval would send".into(),
        "resend" => format!("sent the dead {action} action again"),
        "action_sent" => {
            let r = d.get("result").cloned().unwrap_or(Value::Null);
            let mut t = format!("{action} sent");
            if let Some(i) = s(&r, "item_id") {
                t.push_str(&format!(" · item {}", fmt::clean(i, 24)));
            } else if let Some(ts) = s(&r, "ts") {
                t.push_str(&format!(" · message {}", fmt::clean(ts, 24)));
            } else if let Some(id) = s(&r, "draft_id") {
                t.push_str(&format!(" · draft {}", fmt::clean(id, 24)));
            }
            if d.get("reconciled").and_then(Value::as_bool) == Some(true) {
                t.push_str(" (found already there, not sent twice)");
            }
            t
        }
        "action_sandbox" => format!("{action} rendered in sandbox mode: nothing sent"),
        "action_retry" => {
            let mut t = format!(
                "{action} failed ({}), will retry",
                fmt::clean(s(d, "error").unwrap_or("no answer"), 60)
            );
            if let Some(at) = d.get("next_attempt_at").and_then(Value::as_i64) {
                t.push_str(&format!(" at {}", clock(at)));
            }
            t
        }
        "action_dead" => format!(
            "{action} gave up after {}: {}",
            plural(
                usize::try_from(d.get("attempt").and_then(Value::as_i64).unwrap_or(0)).unwrap_or(0),
                "attempt"
            ),
            fmt::clean(s(d, "error").unwrap_or("no answer"), 60)
        ),
        "outcome_recorded" => {
            let mut t = format!(
                "recorded the outcome {}",
                fmt::clean(s(d, "outcome").unwrap_or("?"), 30)
            );
            if let Some(r) = s(d, "reason") {
                t.push_str(&format!(" · “{}”", fmt::clean(r, SHORT)));
            }
            t
        }
        "kill_switch_on" => "paused all outbound actions".into(),
        "kill_switch_off" => "resumed outbound actions".into(),
        "policy_rechecked" => "re-checked the item against a changed policy".into(),
        other => other.replace('_', " "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(at: Millis, actor: &str, kind: &str, detail: Value) -> AuditEntry {
        AuditEntry {
            seq: 1,
            at,
            actor: actor.into(),
            request_id: Some(9),
            kind: kind.into(),
            detail,
            os_user: None,
        }
    }

    #[test]
    fn entries_read_as_sentences() {
        // 2026-11-21 10:42 UTC
        let t = 1_795_257_720_000;
        let lines = sentences(&[
            entry(
                t,
                "dana",
                "edited",
                json!({"field": "priority", "old": "high", "new": "urgent", "fence": 3}),
            ),
            entry(t, "dana", "lease_renewed", json!({"fence": 3})),
            entry(
                t + 60_000,
                "dana",
                "decided",
                json!({"decision": "approve", "actions": ["a", "b"], "auto": false}),
            ),
            entry(t + 60_000, "w1", "action_attempt", json!({"action": "crm"})),
            entry(
                t + 60_000,
                "w1",
                "action_sent",
                json!({"action": "crm", "result": {"item_id": "9876543210"}}),
            ),
            entry(
                t + 120_000,
                "dana",
                "edited",
                json!({"field": "summary", "old": "short", "new": "a much longer summary that goes on and on for more than forty cells"}),
            ),
        ]);
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            text,
            vec![
                "10:42 dana changed priority high → urgent",
                "10:43 dana approved · 2 actions queued",
                "10:43 crm sent · item 9876543210",
                "10:44 dana rewrote the summary short → (14 words)",
            ]
        );
        assert_eq!(lines[0].0.as_deref(), Some("2026-11-21 (UTC)"));
        assert_eq!(lines[1].0, None);
    }
}
