//! Finding an effect that may already exist, before sending again (none of the three APIs
//! takes an idempotency key): monday items by the key column and notes by the key in their
//! text, Slack messages by the key in their metadata or block id, Gmail drafts by our own
//! `Message-ID`. These read the lookup responses; the dispatcher makes the calls.
use serde_json::Value;

/// Item ids from `items_page_by_column_values`.
pub fn monday_items(page: &Value) -> Vec<String> {
    page.get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| id_string(i.get("id")))
                .collect()
        })
        .unwrap_or_default()
}

/// The id of an update on the item whose text carries `key`, from `items { updates }`.
pub fn monday_note(items: &Value, key: &str) -> Option<String> {
    items
        .as_array()?
        .iter()
        .flat_map(|i| {
            i.get("updates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|u| {
            ["text_body", "body"].iter().any(|f| {
                u.get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.contains(key))
            })
        })
        .and_then(|u| id_string(u.get("id")))
}

/// The `ts` of a message in a `conversations.history` answer carrying `key` (and, in its
/// metadata, our `origin`; a message without metadata is matched by its block id).
pub fn slack_message(history: &Value, key: &str, origin: Option<&str>) -> Option<String> {
    history
        .get("messages")
        .and_then(Value::as_array)?
        .iter()
        .find(|m| match m.pointer("/metadata/event_payload") {
            Some(p) => {
                p.get("key").and_then(Value::as_str) == Some(key)
                    && (origin.is_none() || p.get("origin").and_then(Value::as_str) == origin)
            }
            None => m.get("blocks").and_then(Value::as_array).is_some_and(|bs| {
                bs.iter()
                    .any(|b| b.get("block_id").and_then(Value::as_str) == Some(key))
            }),
        })
        .and_then(|m| m.get("ts").and_then(Value::as_str).map(str::to_string))
}

/// The first draft of a `drafts.list` answer (`{}` when none matched), with its thread.
pub fn gmail_draft(list: &Value) -> Option<(String, Option<String>)> {
    let d = list.get("drafts").and_then(Value::as_array)?.first()?;
    let id = id_string(d.get("id"))?;
    let thread = d
        .pointer("/message/threadId")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((id, thread))
}

/// monday ids are strings; tolerate numbers without losing digits.
pub fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_find_by_key() {
        assert_eq!(
            monday_items(&json!({"items": [{"id": "1"}, {"id": 2}]})),
            vec!["1", "2"]
        );
        let items = json!([{"updates": [{"id": "7", "text_body": "hi signoff ref k-1"}]}]);
        assert_eq!(monday_note(&items, "k-1"), Some("7".into()));
        assert_eq!(monday_note(&items, "k-2"), None);
        let h = json!({"messages": [
            {"ts": "1.000100", "metadata": {"event_payload": {"key": "k", "origin": "other"}}},
            {"ts": "1.000200", "metadata": {"event_payload": {"key": "k", "origin": "ours"}}},
        ]});
        assert_eq!(
            slack_message(&h, "k", Some("ours")),
            Some("1.000200".into())
        );
        assert_eq!(slack_message(&h, "k", Some("none")), None);
        assert_eq!(gmail_draft(&json!({})), None);
    }
}
