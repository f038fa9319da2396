//! Gmail access tokens, refreshed from the refresh token (INTEGRATIONS.md §3.4): before
//! expiry (under 60 s left) and once after a 401. `invalid_grant` means a person must
//! re-authorize; it is remembered for the run so every Gmail row dead-letters with it
//! instead of hammering the token endpoint. A 429 or 5xx is retried, never before its
//! `Retry-After` (delta-seconds or an HTTP-date), which is remembered too: no row asks
//! the endpoint again before then.
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
    /// The token endpoint refused for now (429, 5xx) and said how long to wait: until
    /// then no row asks it again, each is retried after the rest of that wait.
    wait: Option<(Instant, String)>,
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
        if let Some((until, why)) = &st.wait {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(Outcome::Retry {
                    after: Some(whole_ms(left)),
                    why: why.clone(),
                });
            }
            st.wait = None;
        }
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
        let retry_after = super::http::retry_after(resp.headers());
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
        let body: String = text.trim().chars().take(300).collect();
        let desc = json
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or(&body);
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
            // Nothing was refreshed: retry, not before the endpoint's own wait.
            let why = format!("token endpoint HTTP {status}: {desc}");
            if let Some(after) = retry_after {
                st.wait = Some((Instant::now() + after, why.clone()));
            }
            return Err(Outcome::Retry {
                after: retry_after,
                why,
            });
        }
        Err(Outcome::Permanent(format!(
            "token endpoint HTTP {status} {error}: {desc}"
        )))
    }
}

/// `d` rounded up to whole milliseconds (the outbox keeps times in ms: never early).
fn whole_ms(d: Duration) -> Duration {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}
