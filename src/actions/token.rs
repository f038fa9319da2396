//! Gmail access tokens, refreshed from the refresh token (INTEGRATIONS.md §3.4): before
//! expiry (under 60 s left) and once after a 401. `invalid_grant` means a person must
//! re-authorize; it is remembered for the run so every Gmail row dead-letters with it
//! instead of hammering the token endpoint.
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;

use super::classify::Outcome;

/// Refresh this long before the token expires.
const EARLY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    access: Option<(String, Instant)>,
    /// Set by `invalid_grant` / `invalid_client`: nothing will work until a person acts.
    dead: Option<String>,
    scope: Option<String>,
}

/// The access token of one Gmail account.
pub struct Tokens {
    http: Client,
    url: String,
    client_id: String,
    client_secret: String,
    refresh_token: String,
    state: tokio::sync::Mutex<State>,
}

impl Tokens {
    pub fn new(
        http: Client,
        url: String,
        client_id: String,
        client_secret: String,
        refresh_token: String,
    ) -> Tokens {
        Tokens {
            http,
            url,
            client_id,
            client_secret,
            refresh_token,
            state: Default::default(),
        }
    }

    /// A token with at least a minute left, refreshing when needed.
    pub async fn get(&self) -> Result<String, Outcome> {
        let mut st = self.state.lock().await;
        if let Some(dead) = &st.dead {
            return Err(Outcome::Permanent(dead.clone()));
        }
        if let Some((tok, exp)) = &st.access
            && exp.saturating_duration_since(Instant::now()) > EARLY
        {
            return Ok(tok.clone());
        }
        self.refresh(&mut st).await
    }

    /// After a 401: drops `used` (unless another task already replaced it) and refreshes.
    pub async fn refresh_after_401(&self, used: &str) -> Result<String, Outcome> {
        let mut st = self.state.lock().await;
        if let Some(dead) = &st.dead {
            return Err(Outcome::Permanent(dead.clone()));
        }
        if let Some((tok, _)) = &st.access
            && tok != used
        {
            return Ok(tok.clone());
        }
        self.refresh(&mut st).await
    }

    /// The scope the last refresh reported (for `doctor`).
    pub async fn scope(&self) -> Option<String> {
        self.state.lock().await.scope.clone()
    }

    async fn refresh(&self, st: &mut State) -> Result<String, Outcome> {
        st.access = None;
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("refresh_token", self.refresh_token.as_str()),
            ("grant_type", "refresh_token"),
        ];
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", super::render::gmail::query_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        let host = super::http::host_of(&self.url);
        let resp = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Outcome::Retry {
                after: None,
                why: format!(
                    "cannot refresh the Gmail token at {host}: {}",
                    e.without_url()
                ),
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 200
            && let Some(tok) = json.get("access_token").and_then(Value::as_str)
        {
            let secs = json
                .get("expires_in")
                .and_then(Value::as_u64)
                .unwrap_or(3600);
            st.access = Some((tok.to_string(), Instant::now() + Duration::from_secs(secs)));
            st.scope = json
                .get("scope")
                .and_then(Value::as_str)
                .map(str::to_string);
            return Ok(tok.to_string());
        }
        let error = json.get("error").and_then(Value::as_str).unwrap_or("");
        let desc = json
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or(text.trim());
        let dead = match error {
            "invalid_grant" => Some(format!(
                "Gmail refused the refresh token (invalid_grant: {desc}): re-authorize the Gmail account and put the new refresh token in actions.gmail.refresh_token, then press R"
            )),
            "invalid_client" => Some(format!(
                "the token endpoint refused the OAuth client (invalid_client: {desc}): check actions.gmail.client_id and client_secret"
            )),
            _ => None,
        };
        if let Some(d) = dead {
            st.dead = Some(d.clone());
            return Err(Outcome::Permanent(d));
        }
        if status >= 500 || status == 429 {
            return Err(Outcome::Retry {
                after: None,
                why: format!("token endpoint HTTP {status}: {desc}"),
            });
        }
        Err(Outcome::Permanent(format!(
            "token endpoint HTTP {status} {error}: {desc}"
        )))
    }
}
