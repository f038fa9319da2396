//! The Gmail + OAuth fakes: a form-encoded token endpoint (client and refresh-token checks,
//! tiny configurable `expires_in`, refresh count), `drafts.create` with Google's error
//! envelope (401 for a missing/expired/unknown bearer, 403 without a compose scope, 400 for
//! a missing raw, standard instead of URL-safe base64, no CRLF header/body split or a bad
//! `To`), Gmail's threading rule, `drafts.list?q=rfc822msgid:`, `drafts.delete`, profile.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::{Shared, after_apply, before_apply, json as reply_json, log};

pub const CLIENT_ID: &str = "client-123.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "client-secret";
pub const REFRESH_TOKEN: &str = "1//0g-refresh";
pub const COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";

#[derive(Clone, Debug)]
pub struct Draft {
    pub id: String,
    pub message_id_header: String,
    pub thread_id: String,
    /// The decoded RFC 2822 message.
    pub message: String,
}

pub struct Gmail {
    /// access token → (expiry, scope)
    pub tokens: BTreeMap<String, (Instant, String)>,
    pub expires_in: u64,
    pub scope: String,
    pub refreshes: u32,
    pub drafts: Vec<Draft>,
    /// Messages already in the mailbox: Message-ID → (thread id, subject).
    pub inbox: BTreeMap<String, (String, String)>,
    pub seq: u64,
    /// Refused raw values (for the base64 test).
    pub rejected: Vec<String>,
}

impl Default for Gmail {
    fn default() -> Self {
        Gmail::seeded()
    }
}

impl Gmail {
    pub fn seeded() -> Gmail {
        Gmail {
            tokens: BTreeMap::new(),
            expires_in: 3599,
            scope: COMPOSE.into(),
            refreshes: 0,
            drafts: Vec::new(),
            inbox: BTreeMap::from([(
                "<inbound-1@mail.example.com>".to_string(),
                (
                    "18c2f0e1a2b3c4d5".to_string(),
                    "Pricing question".to_string(),
                ),
            )]),
            seq: 0,
            rejected: Vec::new(),
        }
    }

    /// Forgets every access token (they "expired").
    pub fn expire_all(&mut self) {
        self.tokens.clear();
    }

    pub fn drafts_with(&self, message_id: &str) -> Vec<&Draft> {
        self.drafts
            .iter()
            .filter(|d| d.message_id_header == message_id)
            .collect()
    }
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/token", post(token))
        .route("/gmail/v1/users/{user}/drafts", post(create).get(list))
        .route("/gmail/v1/users/{user}/drafts/{id}", delete(remove))
        .route("/gmail/v1/users/{user}/profile", get(profile))
}

fn envelope(code: u16, status: &str, reason: &str, message: &str) -> Response {
    reply_json(
        code,
        json!({"error": {"code": code, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}], "status": status}}),
    )
}

fn check_bearer(g: &Gmail, headers: &HeaderMap) -> Result<String, Response> {
    let unauth = || {
        envelope(
            401,
            "UNAUTHENTICATED",
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        )
    };
    let tok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauth)?;
    match g.tokens.get(tok) {
        Some((exp, scope)) if *exp > Instant::now() => Ok(scope.clone()),
        _ => Err(unauth()),
    }
}

async fn token(State(world): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let fault = {
        let mut w = world.lock().unwrap();
        log(
            &mut w,
            "gmail:token",
            "POST",
            &uri.to_string(),
            &headers,
            &body,
        );
        w.take_fault("gmail:token", false)
    };
    if let Some(r) = before_apply(&fault).await {
        return r;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return reply_json(
            400,
            json!({"error": "invalid_request", "error_description": "Bad Request"}),
        );
    }
    let form: BTreeMap<String, String> = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if f("grant_type") != "refresh_token" {
        return reply_json(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}),
        );
    }
    if f("client_id") != CLIENT_ID || f("client_secret") != CLIENT_SECRET {
        return reply_json(
            401,
            json!({"error": "invalid_client", "error_description": "Unauthorized"}),
        );
    }
    if f("refresh_token") != REFRESH_TOKEN {
        return reply_json(
            400,
            json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        );
    }
    let mut w = world.lock().unwrap();
    let g = &mut w.gmail;
    g.refreshes += 1;
    g.seq += 1;
    let tok = format!("ya29.fake-{}", g.seq);
    g.tokens.insert(
        tok.clone(),
        (
            Instant::now() + Duration::from_secs(g.expires_in),
            g.scope.clone(),
        ),
    );
    reply_json(
        200,
        json!({"access_token": tok, "expires_in": g.expires_in, "scope": g.scope, "token_type": "Bearer"}),
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Header value by name from an RFC 2822 head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|l| {
        l.split_once(": ")
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn bare_subject(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 3 && s[..3].eq_ignore_ascii_case("re:") {
        s[3..].trim().to_string()
    } else {
        s.to_string()
    }
}

async fn create(
    State(world): State<Shared>,
    Path(_user): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut w = world.lock().unwrap();
        log(
            &mut w,
            "gmail:drafts.create",
            "POST",
            &uri.to_string(),
            &headers,
            &body,
        );
        let scope = match check_bearer(&w.gmail, &headers) {
            Ok(s) => s,
            Err(r) => return r,
        };
        if !scope
            .split(' ')
            .any(|s| s == COMPOSE || s.ends_with("gmail.modify") || s == "https://mail.google.com/")
        {
            return reply_json(
                403,
                json!({"error": {"code": 403, "message": "Request had insufficient authentication scopes.",
                "errors": [{"message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions"}],
                "status": "PERMISSION_DENIED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}}),
            );
        }
        w.take_fault("gmail:drafts.create", true)
    };
    if let Some(r) = before_apply(&fault).await {
        return r;
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(raw) = v.pointer("/message/raw").and_then(Value::as_str) else {
        return envelope(
            400,
            "INVALID_ARGUMENT",
            "invalidArgument",
            "'raw' RFC822 payload message string or uploading message via /upload/* URL required",
        );
    };
    let decoded = if raw.contains(['+', '/']) {
        None
    } else {
        URL_SAFE
            .decode(raw)
            .or_else(|_| URL_SAFE_NO_PAD.decode(raw))
            .ok()
    };
    let Some(decoded) = decoded else {
        world.lock().unwrap().gmail.rejected.push(raw.to_string());
        return envelope(
            400,
            "INVALID_ARGUMENT",
            "invalidArgument",
            "Invalid value at 'draft.message.raw' (TYPE_BYTES), Base64 decoding failed",
        );
    };
    let msg = String::from_utf8_lossy(&decoded).into_owned();
    let Some((head, _)) = msg.split_once("\r\n\r\n") else {
        return envelope(
            400,
            "INVALID_ARGUMENT",
            "invalidArgument",
            "Missing the CRLF between headers and body",
        );
    };
    let to_ok = header(head, "To").is_some_and(|t| {
        let addr = t
            .rsplit_once('<')
            .map_or(t, |(_, a)| a.trim_end_matches('>'));
        addr.split('@').count() == 2 && !addr.contains(' ')
    });
    if !to_ok {
        return envelope(
            400,
            "INVALID_ARGUMENT",
            "invalidArgument",
            "Invalid To header",
        );
    }
    let answer = {
        let mut w = world.lock().unwrap();
        let g = &mut w.gmail;
        g.seq += 1;
        // Threading: keep threadId only when the reply headers and subject match.
        let wanted = v.pointer("/message/threadId").and_then(Value::as_str);
        let subject = header(head, "Subject").unwrap_or("");
        let in_reply = header(head, "In-Reply-To").unwrap_or("");
        let refs = header(head, "References").unwrap_or("");
        let thread = wanted
            .filter(|tid| {
                g.inbox.iter().any(|(mid, (t, subj))| {
                    t == tid
                        && in_reply.contains(mid.as_str())
                        && refs.contains(mid.as_str())
                        && bare_subject(subj) == bare_subject(subject)
                })
            })
            .map(str::to_string)
            .unwrap_or_else(|| format!("thread-{:012x}", g.seq));
        let id = format!("r-{}", 8_123_456_789_012_345_000u64 + g.seq);
        g.drafts.push(Draft {
            id: id.clone(),
            message_id_header: header(head, "Message-ID").unwrap_or("").to_string(),
            thread_id: thread.clone(),
            message: msg.clone(),
        });
        json!({"id": id, "message": {"id": format!("18c2f1aa{:08x}", g.seq), "threadId": thread, "labelIds": ["DRAFT"]}})
    };
    after_apply(&world, fault, reply_json(200, answer)).await
}

async fn list(State(world): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut w = world.lock().unwrap();
    log(
        &mut w,
        "gmail:drafts.list",
        "GET",
        &uri.to_string(),
        &headers,
        b"",
    );
    if let Err(r) = check_bearer(&w.gmail, &headers) {
        return r;
    }
    let q = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("q="))
        .map(percent_decode)
        .unwrap_or_default();
    let found: Vec<Value> = match q.strip_prefix("rfc822msgid:") {
        Some(mid) => {
            let mid = mid.trim();
            w.gmail
                .drafts
                .iter()
                .filter(|d| {
                    d.message_id_header == mid
                        || d.message_id_header.trim_matches(['<', '>'])
                            == mid.trim_matches(['<', '>'])
                })
                .map(|d| json!({"id": d.id, "message": {"id": "m", "threadId": d.thread_id}}))
                .collect()
        }
        None => vec![],
    };
    if found.is_empty() {
        reply_json(200, json!({"resultSizeEstimate": 0}))
    } else {
        reply_json(
            200,
            json!({"drafts": found, "resultSizeEstimate": found.len()}),
        )
    }
}

async fn remove(
    State(world): State<Shared>,
    Path((_user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut w = world.lock().unwrap();
    if let Err(r) = check_bearer(&w.gmail, &headers) {
        return r;
    }
    let before = w.gmail.drafts.len();
    w.gmail.drafts.retain(|d| d.id != id);
    if w.gmail.drafts.len() == before {
        return envelope(
            404,
            "NOT_FOUND",
            "notFound",
            "Requested entity was not found.",
        );
    }
    reply_json(204, json!({}))
}

async fn profile(State(world): State<Shared>, headers: HeaderMap) -> Response {
    let w = world.lock().unwrap();
    if let Err(r) = check_bearer(&w.gmail, &headers) {
        return r;
    }
    reply_json(
        200,
        json!({"emailAddress": "support@example.com", "messagesTotal": 1}),
    )
}
