//! The HTTP client: explicit connect and total timeouts, no redirects, and no retries of
//! its own (the outbox owns attempts). Transport failures are classified here: a request
//! that provably never left (connect error) may be retried; anything after the body left
//! (timeout, reset, a dropped connection) is ambiguous.
use std::time::{Duration, SystemTime};

use reqwest::Client;

use super::backoff::parse_retry_after;
use super::classify::{Outcome, Response};
use super::config::DispatchConfig;
use super::payload::HttpRequest;

/// The shared client.
pub fn client(cfg: &DispatchConfig) -> reqwest::Result<Client> {
    Client::builder()
        .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(cfg.concurrency.max(1) as usize)
        .user_agent(concat!("signoff/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends `req` to `url` with an optional credential header and body override.
pub async fn send(
    client: &Client,
    req: &HttpRequest,
    url: &str,
    auth: Option<(&str, &str)>,
    body: Option<Vec<u8>>,
) -> Result<Response, Outcome> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| {
        Outcome::Permanent(format!("bad method '{}' in the stored request", req.method))
    })?;
    let mut b = client.request(method, url);
    for (k, v) in &req.headers {
        b = b.header(k, v);
    }
    if let Some((k, v)) = auth {
        b = b.header(k, v);
    }
    if let Some(body) = body.or_else(|| req.body_bytes()) {
        b = b.body(body);
    }
    let host = host_of(url);
    // Errors drop their URL: a webhook URL is itself a secret.
    let resp = b
        .send()
        .await
        .map_err(|e| transport(&host, &e.without_url()))?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = resp.bytes().await.map_err(|e| {
        Outcome::Ambiguous(format!(
            "{host} answered HTTP {status} but the connection broke before the body arrived ({}); the request may have been applied",
            root_cause(&e.without_url())
        ))
    })?;
    Ok(Response {
        status,
        retry_after,
        body: body.to_vec(),
    })
}

/// A response's `Retry-After` (delta-seconds or an HTTP-date), as a wait from now.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// One exchange as the dispatcher and the doctor read it (INTEGRATIONS.md §0): sends `req`
/// (see [`send`]) and classifies the answer with the provider's `classify`
/// ([`super::classify`]); a request that failed in transport is already its outcome.
pub async fn exchange(
    client: &Client,
    req: &HttpRequest,
    url: &str,
    auth: Option<(&str, &str)>,
    body: Option<Vec<u8>>,
    classify: impl FnOnce(&Response) -> Outcome,
) -> Outcome {
    match send(client, req, url, auth, body).await {
        Ok(resp) => classify(&resp),
        Err(transport) => transport,
    }
}

fn transport(host: &str, e: &reqwest::Error) -> Outcome {
    if e.is_connect() {
        Outcome::Retry {
            after: None,
            why: format!("cannot connect to {host}: {}", root_cause(e)),
        }
    } else if e.is_timeout() {
        Outcome::Ambiguous(format!(
            "no answer from {host} in time; the request may have been applied"
        ))
    } else if e.is_builder() {
        Outcome::Permanent(format!(
            "cannot build the request to {host}: {}",
            root_cause(e)
        ))
    } else {
        Outcome::Ambiguous(format!(
            "the connection to {host} broke ({}); the request may have been applied",
            root_cause(e)
        ))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `https://host:port/…` → `host:port`, for messages that must not show a secret path.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}
