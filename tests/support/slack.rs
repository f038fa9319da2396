//! The Slack fake: `chat.postMessage` (Bearer bot token, JSON or form bodies, HTTP 200 for
//! every `ok:false`, string `ts`, channel/member/archived/blocks/metadata checks, the
//! `missing_charset` warning), `conversations.history` (oldest, limit,
//! include_all_metadata), `auth.test`, `conversations.info`, and an incoming webhook
//! answering in plain text.
use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Shared, after_apply, before_apply, json as reply_json, log, reply};

pub const TOKEN: &str = "xoxb-fake-bot-token";
pub const GENERAL: &str = "C0GENERAL1";
pub const URGENT: &str = "C0URGENT01";
pub const OUTSIDE: &str = "C0OUTSIDE1";
pub const WEBHOOK_PATH: &str = "/services/T000/B000/XXXXSECRET";

#[derive(Clone, Debug)]
pub struct Channel {
    pub name: String,
    pub member: bool,
    pub archived: bool,
}

#[derive(Clone, Debug)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub text: String,
    pub blocks: Value,
    pub metadata: Value,
}

#[derive(Default)]
pub struct Slack {
    pub channels: BTreeMap<String, Channel>,
    pub messages: Vec<Message>,
    pub webhook_posts: Vec<Value>,
    pub seq: u64,
    pub warnings: Vec<String>,
}

impl Slack {
    pub fn seeded() -> Slack {
        let ch = |name: &str, member| Channel {
            name: name.into(),
            member,
            archived: false,
        };
        Slack {
            channels: BTreeMap::from([
                (GENERAL.to_string(), ch("general", true)),
                (URGENT.to_string(), ch("urgent", true)),
                (OUTSIDE.to_string(), ch("outside", false)),
            ]),
            ..Slack::default()
        }
    }

    /// Messages carrying `key` in their metadata.
    pub fn with_key(&self, key: &str) -> Vec<&Message> {
        self.messages
            .iter()
            .filter(|m| {
                m.metadata
                    .pointer("/event_payload/key")
                    .and_then(Value::as_str)
                    == Some(key)
            })
            .collect()
    }
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/conversations.history", get(history).post(history))
        .route("/api/auth.test", post(auth_test))
        .route("/api/conversations.join", post(join))
        .route("/api/conversations.info", get(info))
        .route("/services/{t}/{b}/{x}", post(webhook))
}

fn ok_false(e: &str) -> Response {
    reply_json(200, json!({"ok": false, "error": e}))
}

fn auth(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => Err(ok_false("not_authed")),
        Some(v) if v == format!("Bearer {TOKEN}") => Ok(()),
        Some(_) => Err(ok_false("invalid_auth")),
    }
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%40", "@")))
        .collect()
}

async fn post_message(
    State(world): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut w = world.lock().unwrap();
        log(
            &mut w,
            "slack:chat.postMessage",
            "POST",
            &uri.to_string(),
            &headers,
            &body,
        );
        if let Err(r) = auth(&headers) {
            return r;
        }
        w.take_fault("slack:chat.postMessage", true)
    };
    if let Some(r) = before_apply(&fault).await {
        return r;
    }
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let msg: Value = if ctype.starts_with("application/json") {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return ok_false("invalid_json"),
        }
    } else if ctype.starts_with("application/x-www-form-urlencoded") {
        // Form bodies carry blocks and metadata as JSON strings.
        let mut m = serde_json::Map::new();
        for kv in String::from_utf8_lossy(&body).split('&') {
            if let Some((k, v)) = kv.split_once('=') {
                let v = v.replace('+', " ");
                let v = if k == "blocks" || k == "metadata" {
                    serde_json::from_str(&v).unwrap_or(Value::String(v))
                } else {
                    Value::String(v)
                };
                m.insert(k.to_string(), v);
            }
        }
        Value::Object(m)
    } else {
        return ok_false("invalid_form_data");
    };
    let answer = {
        let mut w = world.lock().unwrap();
        let s = &mut w.slack;
        let mut warnings = Vec::new();
        if !ctype.contains("charset") {
            warnings.push("missing_charset");
        }
        let channel = msg
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(ch) = s.channels.get(&channel) else {
            return ok_false("channel_not_found");
        };
        if ch.archived {
            return ok_false("is_archived");
        }
        if !ch.member {
            return ok_false("not_in_channel");
        }
        let text = msg
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let blocks = msg.get("blocks").cloned().unwrap_or(Value::Null);
        let has_blocks = blocks.as_array().is_some_and(|b| !b.is_empty());
        if text.is_empty() && !has_blocks {
            return ok_false("no_text");
        }
        if !blocks.is_null() {
            let Some(bs) = blocks.as_array() else {
                return ok_false("invalid_blocks_format");
            };
            if bs.len() > 50
                || bs
                    .iter()
                    .any(|b| !b.get("type").is_some_and(Value::is_string))
            {
                return ok_false("invalid_blocks");
            }
        }
        let metadata = msg.get("metadata").cloned().unwrap_or(Value::Null);
        let metadata_ok = metadata.is_null()
            || (metadata.get("event_type").is_some_and(Value::is_string)
                && metadata.get("event_payload").is_some_and(Value::is_object));
        if !metadata_ok {
            return ok_false("invalid_metadata_format");
        }
        s.seq += 1;
        // "<secs>.<6 digits>", unique and increasing, near the real clock.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let ts = format!("{now}.{:06}", s.seq % 1_000_000);
        s.messages.push(Message {
            channel: channel.clone(),
            ts: ts.clone(),
            text: text.clone(),
            blocks,
            metadata,
        });
        let mut v = json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "bot_id": "B0FAKE", "text": text, "ts": ts}});
        if !warnings.is_empty() {
            v["response_metadata"] = json!({"warnings": warnings});
        }
        v
    };
    after_apply(&world, fault, reply_json(200, answer)).await
}

async fn history(State(world): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut w = world.lock().unwrap();
    log(
        &mut w,
        "slack:conversations.history",
        "GET",
        &uri.to_string(),
        &headers,
        b"",
    );
    if let Err(r) = auth(&headers) {
        return r;
    }
    if let Some(super::Fault::Reply {
        status,
        retry_after,
        body,
        content_type,
    }) = w.take_fault("slack:conversations.history", false)
    {
        return reply(status, retry_after.as_deref(), body, content_type);
    }
    let q = query(&uri);
    let channel = q.get("channel").cloned().unwrap_or_default();
    if !w.slack.channels.contains_key(&channel) {
        return ok_false("channel_not_found");
    }
    let oldest: f64 = q.get("oldest").and_then(|o| o.parse().ok()).unwrap_or(0.0);
    let latest: f64 = q
        .get("latest")
        .and_then(|o| o.parse().ok())
        .unwrap_or(f64::MAX);
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let all_meta = q.get("include_all_metadata").map(String::as_str) == Some("true");
    let skip: usize = q
        .get("cursor")
        .and_then(|c| c.strip_prefix("page-"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let matching: Vec<&Message> = w
        .slack
        .messages
        .iter()
        .rev()
        .filter(|m| {
            let ts = m.ts.parse::<f64>().unwrap_or(0.0);
            m.channel == channel && ts > oldest && ts < latest
        })
        .collect();
    let has_more = matching.len() > skip + limit;
    let msgs: Vec<Value> = matching
        .into_iter()
        .skip(skip)
        .take(limit.min(999))
        .map(|m| {
            let mut v = json!({"type": "message", "ts": m.ts, "text": m.text, "bot_id": "B0FAKE", "blocks": m.blocks});
            if all_meta && !m.metadata.is_null() {
                v["metadata"] = m.metadata.clone();
            }
            v
        })
        .collect();
    let next = if has_more {
        format!("page-{}", skip + limit)
    } else {
        String::new()
    };
    reply_json(
        200,
        json!({"ok": true, "messages": msgs, "has_more": has_more,
        "response_metadata": {"next_cursor": next}}),
    )
}

async fn auth_test(State(world): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut w = world.lock().unwrap();
    log(
        &mut w,
        "slack:auth.test",
        "POST",
        &uri.to_string(),
        &headers,
        b"",
    );
    if let Err(r) = auth(&headers) {
        return r;
    }
    reply_json(
        200,
        json!({"ok": true, "team": "Fake Team", "user": "signoff", "bot_id": "B0FAKE"}),
    )
}

async fn info(State(world): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let w = world.lock().unwrap();
    if let Err(r) = auth(&headers) {
        return r;
    }
    let q = query(&uri);
    match w
        .slack
        .channels
        .get(q.get("channel").map(String::as_str).unwrap_or(""))
    {
        Some(c) => reply_json(
            200,
            json!({"ok": true, "channel": {"name": c.name, "is_member": c.member, "is_archived": c.archived}}),
        ),
        None => ok_false("channel_not_found"),
    }
}

async fn webhook(
    State(world): State<Shared>,
    Path((t, b, x)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |status: u16, s: &str| reply(status, None, s.to_string(), "text/html");
    let fault = {
        let mut w = world.lock().unwrap();
        log(
            &mut w,
            "slack:webhook",
            "POST",
            &uri.to_string(),
            &headers,
            &body,
        );
        if format!("/services/{t}/{b}/{x}") != WEBHOOK_PATH {
            return text(404, "no_service");
        }
        w.take_fault("slack:webhook", true)
    };
    if let Some(r) = before_apply(&fault).await {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return text(400, "invalid_payload");
    };
    let has_text = v
        .get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let has_blocks = v
        .get("blocks")
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty());
    if !has_text && !has_blocks {
        return text(400, "no_text");
    }
    world.lock().unwrap().slack.webhook_posts.push(v);
    after_apply(&world, fault, text(200, "ok")).await
}

async fn join(State(world): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut w = world.lock().unwrap();
    log(
        &mut w,
        "slack:conversations.join",
        "POST",
        &uri.to_string(),
        &headers,
        &body,
    );
    if let Err(r) = auth(&headers) {
        return r;
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let channel = v.get("channel").and_then(Value::as_str).unwrap_or("");
    match w.slack.channels.get_mut(channel) {
        None => ok_false("channel_not_found"),
        Some(c) if c.archived => ok_false("is_archived"),
        Some(c) if c.name.starts_with("private") => {
            ok_false("method_not_supported_for_channel_type")
        }
        Some(c) => {
            c.member = true;
            reply_json(
                200,
                json!({"ok": true, "channel": {"id": channel, "name": c.name}}),
            )
        }
    }
}
