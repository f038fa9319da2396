//! The rendered form of an action, stored in `outbox.payload` at approval: the exact HTTP
//! requests the dispatcher will send (method, URL, headers without secrets, JSON body).
//! The preview shows it; the dispatcher sends it. Credentials are added at send time; a
//! few values only known then are filled into named slots and documented where they are
//! (monday's `variables.item` after the lookup; Slack history's `oldest`).
use std::collections::BTreeMap;

/// Which API a rendered action talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Monday,
    Slack,
    SlackWebhook,
    Gmail,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Monday => "monday",
            Provider::Slack => "slack",
            Provider::SlackWebhook => "slack_webhook",
            Provider::Gmail => "gmail",
        }
    }
}

/// One HTTP request, as sent.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HttpRequest {
    /// What the request is for (`find`, `create`, `post`, `lookup`, …).
    pub step: String,
    pub method: String,
    /// The URL, or `secret:<config key>` when the URL itself is the secret (webhooks).
    pub url: String,
    /// Headers other than credentials.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`null` for a GET).
    #[serde(default)]
    pub body: serde_json::Value,
}

impl HttpRequest {
    pub fn post_json(step: &str, url: String, body: serde_json::Value) -> HttpRequest {
        HttpRequest {
            step: step.into(),
            method: "POST".into(),
            url,
            headers: BTreeMap::from([(
                "Content-Type".to_string(),
                "application/json; charset=utf-8".to_string(),
            )]),
            body,
        }
    }

    pub fn get(step: &str, url: String) -> HttpRequest {
        HttpRequest {
            step: step.into(),
            method: "GET".into(),
            url,
            headers: BTreeMap::new(),
            body: serde_json::Value::Null,
        }
    }

    /// The body's bytes on the wire.
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        (!self.body.is_null()).then(|| serde_json::to_vec(&self.body).unwrap_or_default())
    }
}

/// One rendered action.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    pub provider: Provider,
    /// The outbox idempotency key.
    pub key: String,
    /// The requests, by step; which are sent depends on what the lookups find.
    pub requests: Vec<HttpRequest>,
    /// Facts the dispatcher needs (monday's key column value, Slack's channel, Gmail's
    /// Message-ID) and the preview shows.
    #[serde(default)]
    pub meta: serde_json::Value,
}

impl Rendered {
    pub fn step(&self, name: &str) -> Option<&HttpRequest> {
        self.requests.iter().find(|r| r.step == name)
    }

    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.meta.get(key).and_then(|v| v.as_str())
    }
}
