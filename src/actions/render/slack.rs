//! Slack: `chat.postMessage` with a bot token (channel routed by intent, then priority,
//! then the default), or an incoming webhook (INTEGRATIONS.md §2). The outbox key rides
//! twice — in `metadata.event_payload.key` (beside `origin`, a hash of the request's
//! natural key: keys restart per database) and as the section's `block_id` — so an
//! ambiguous post can be found again in `conversations.history` (the `lookup` step; its
//! `oldest` is added at send time from when the post first left).
use minijinja::value::Value;
use serde_json::json;

use crate::actions::config::SlackConfig;
use crate::actions::payload::{HttpRequest, Provider, Rendered};
use crate::actions::templates::Templates;
use crate::model::FieldValues;

/// Slack's limit on a section's text.
const SECTION_MAX: usize = 3_000;
/// Slack truncates `text` past 40,000 characters; stay well below.
const TEXT_MAX: usize = 4_000;

/// The channel an item goes to: by intent, then priority, then the default.
pub fn route<'a>(cfg: &'a SlackConfig, fields: &FieldValues) -> &'a str {
    fields
        .intent
        .as_deref()
        .and_then(|i| cfg.intent_channels.get(i))
        .or_else(|| fields.priority.as_deref().and_then(|p| cfg.channels.get(p)))
        .map_or(cfg.default_channel.as_str(), String::as_str)
}

/// Whether this config posts through a webhook (a webhook and no bot token).
pub fn uses_webhook(cfg: &SlackConfig) -> bool {
    cfg.token.is_none() && cfg.webhook_url.is_some()
}

pub fn render(
    cfg: &SlackConfig,
    t: &Templates,
    ctx: &Value,
    fields: &FieldValues,
    key: &str,
    tag: &str,
) -> Result<Rendered, String> {
    let text = cut(t.render("actions.slack.text", ctx)?.trim(), TEXT_MAX);
    let section = cut(t.render("actions.slack.blocks", ctx)?.trim(), SECTION_MAX);
    if text.is_empty() && section.is_empty() {
        return Err("the Slack text and blocks templates both rendered empty".into());
    }
    let blocks = if section.is_empty() {
        json!([])
    } else {
        json!([{"type": "section", "block_id": key, "text": {"type": "mrkdwn", "text": section}}])
    };
    if uses_webhook(cfg) {
        let body = json!({"text": text, "blocks": blocks});
        return Ok(Rendered {
            provider: Provider::SlackWebhook,
            key: key.into(),
            requests: vec![HttpRequest::post_json(
                "post",
                "secret:actions.slack.webhook_url".into(),
                body,
            )],
            meta: json!({}),
        });
    }
    let channel = route(cfg, fields);
    let base = cfg.api_url.trim_end_matches('/');
    let body = json!({
        "channel": channel,
        "text": text,
        "blocks": blocks,
        "metadata": {"event_type": "signoff_action", "event_payload": {"key": key, "origin": tag}},
        "unfurl_links": false,
        "unfurl_media": false,
    });
    let mut requests = vec![
        HttpRequest::post_json("post", format!("{base}/chat.postMessage"), body),
        HttpRequest::get(
            "lookup",
            format!(
                "{base}/conversations.history?channel={channel}&include_all_metadata=true&limit=200"
            ),
        ),
    ];
    if cfg.join_channels {
        requests.push(HttpRequest::post_json(
            "join",
            format!("{base}/conversations.join"),
            json!({"channel": channel}),
        ));
    }
    Ok(Rendered {
        provider: Provider::Slack,
        key: key.into(),
        requests,
        meta: json!({"channel": channel, "origin": tag}),
    })
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}
