//! A readable form of a stored (or freshly rendered) action for the console's `p` preview
//! and `signoff show`: each request's method, URL and headers, its body as indented JSON,
//! monday's double-encoded `column_values` decoded, and the Gmail message decoded from
//! base64url. The text holds request content: pass it through the sanitizer before it
//! reaches a terminal.
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::Value;

use super::payload::{Provider, Rendered};

/// The preview of a payload as stored in `outbox.payload`.
pub fn preview_text(payload: &str) -> String {
    let Ok(r) = serde_json::from_str::<Rendered>(payload) else {
        return format!("(not a rendered action)\n{payload}");
    };
    let mut out = String::new();
    let title = match r.provider {
        Provider::Monday => "monday.com item write",
        Provider::Slack => "Slack message (chat.postMessage)",
        Provider::SlackWebhook => "Slack message (incoming webhook)",
        Provider::Gmail => "Gmail draft (users.drafts.create)",
    };
    out.push_str(&format!("{title} — key {}\n", r.key));
    if let Some(m) = r.meta.as_object().filter(|m| !m.is_empty()) {
        for (k, v) in m {
            if !v.is_null() {
                out.push_str(&format!(
                    "  {k}: {}\n",
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                ));
            }
        }
    }
    for req in &r.requests {
        out.push_str(&format!("\n[{}] {} {}\n", req.step, req.method, req.url));
        for (k, v) in &req.headers {
            out.push_str(&format!("  {k}: {v}\n"));
        }
        if req.body.is_null() {
            continue;
        }
        let mut body = req.body.clone();
        // Show the JSON string of column_values as the object it encodes.
        if let Some(cols) = body.pointer_mut("/variables/cols")
            && let Some(decoded) = cols
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
        {
            *cols = decoded;
        }
        let raw = body
            .pointer("/message/raw")
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push_str(&indent(
            &serde_json::to_string_pretty(&body).unwrap_or_default(),
        ));
        if let Some(raw) = raw {
            let msg = URL_SAFE
                .decode(&raw)
                .or_else(|_| URL_SAFE_NO_PAD.decode(&raw));
            out.push_str("  message (decoded from raw):\n");
            match msg {
                Ok(m) => out.push_str(&indent(&String::from_utf8_lossy(&m).replace("\r\n", "\n"))),
                Err(e) => out.push_str(&format!("    (cannot decode: {e})\n")),
            }
        }
    }
    out
}

/// What a row's stored `response` says about its effect, for the console's action line:
/// `item 9876543210, note 9876543211`, `ts 1767225600.000200 in C0123ABCD`,
/// `draft r-812… in thread 18c2…`, `sandbox: actions.mode is sandbox`; with "found by
/// lookup" when a reconciliation found it rather than this attempt creating it; and
/// `duplicate monday items: 123, 456` when a lookup found more than one item with the key.
pub fn result_text(response: &str) -> Option<String> {
    let p: super::deliver::Progress = serde_json::from_str(response).ok()?;
    let mut parts = Vec::new();
    if let Some(why) = &p.sandbox {
        parts.push(format!("sandbox: {why}"));
    }
    if let Some(i) = &p.item_id {
        parts.push(format!("item {i}"));
    }
    if let Some(u) = &p.update_id {
        parts.push(format!("note {u}"));
    }
    if let Some(ts) = &p.ts {
        parts.push(match &p.channel {
            Some(c) => format!("ts {ts} in {c}"),
            None => format!("ts {ts}"),
        });
    }
    if let Some(d) = &p.draft_id {
        parts.push(match &p.thread_id {
            Some(t) => format!("draft {d} in thread {t}"),
            None => format!("draft {d}"),
        });
    }
    if parts.is_empty() && p.duplicates.is_empty() {
        return None;
    }
    let mut text = parts.join(", ");
    if p.reconciled {
        text.push_str(" (found by lookup)");
    }
    if !p.duplicates.is_empty() {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&format!(
            "duplicate monday items: {}",
            p.duplicates.join(", ")
        ));
    }
    Some(text)
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_read_as_ids() {
        assert_eq!(
            result_text(r#"{"item_id":"98","update_id":"99","reconciled":true}"#).as_deref(),
            Some("item 98, note 99 (found by lookup)")
        );
        assert_eq!(
            result_text(r#"{"ts":"1.000200","channel":"C1"}"#).as_deref(),
            Some("ts 1.000200 in C1")
        );
        assert_eq!(result_text("{}"), None);
        assert_eq!(
            result_text(r#"{"item_id":"456","update_id":"457","duplicates":["123","456"]}"#)
                .as_deref(),
            Some("item 456, note 457; duplicate monday items: 123, 456")
        );
        assert_eq!(
            result_text(r#"{"duplicates":["123","456"]}"#).as_deref(),
            Some("duplicate monday items: 123, 456")
        );
    }

    #[test]
    fn decodes_column_values_and_the_gmail_message() {
        let p = json!({"provider": "monday", "key": "k", "requests": [{"step": "create", "method": "POST",
            "url": "https://api.monday.com/v2", "headers": {"API-Version": "2025-04"},
            "body": {"query": "mutation", "variables": {"cols": "{\"status\":{\"label\":\"Done\"}}"}}}], "meta": {}});
        let t = preview_text(&p.to_string());
        assert!(t.contains("\"label\": \"Done\""), "{t}");
        let raw = URL_SAFE.encode("To: a@b.c\r\nSubject: Hi\r\n\r\nHello");
        let p = json!({"provider": "gmail", "key": "k", "requests": [{"step": "create", "method": "POST",
            "url": "u", "headers": {}, "body": {"message": {"raw": raw}}}], "meta": {}});
        let t = preview_text(&p.to_string());
        assert!(t.contains("    Subject: Hi\n    \n    Hello\n"), "{t}");
    }
}
