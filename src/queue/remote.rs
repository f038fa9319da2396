//! The remote queue: a `signoff serve` server, over its Unix socket or HTTP(S).
//!
//! Each [`Queue`] call is one request to the server's `/v1` API; the types travel as
//! JSON as they are. The server knows who is calling (the socket's peer credentials or the
//! bearer token), so the `reviewer` arguments of the trait are not sent: the server
//! records the name it authenticated. Changes arrive by Server-Sent Events
//! ([`Queue::changes`]); a server that cannot be reached is [`QueueError::Unavailable`]
//! ("offline — retrying") and the feed reconnects by itself.
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{
    ChangeToken, DecideBody, DigestBody, EditBody, ErrorBody, FenceBody, IngestAnswer, IssuedToken,
    KillSwitch, NewToken, OutcomeBody, PreviewBody, Whoami,
};
use super::{
    AuditEntry, Changes, Claim, Counts, Decision, ItemDetail, ListQuery, Millis, Page, Queue,
    QueueError, Receipt, Result,
};
use crate::model::{DecisionKind, EditableField};

/// Where the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteTarget {
    /// `unix:/run/signoff/signoff.sock`.
    Unix(PathBuf),
    /// `http://127.0.0.1:8787` or `https://host:port` (no trailing slash).
    Http(String),
}

impl RemoteTarget {
    /// Parses `unix:PATH`, `http://…` or `https://…`.
    pub fn parse(s: &str) -> std::result::Result<RemoteTarget, String> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(
                    "`unix:` needs the socket's path, e.g. unix:/run/signoff/signoff.sock".into(),
                );
            }
            return Ok(RemoteTarget::Unix(PathBuf::from(
                crate::secret::expand_home(path),
            )));
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            let url = reqwest::Url::parse(s).map_err(|e| format!("'{s}' is not a URL: {e}"))?;
            if url.host_str().is_none() {
                return Err(format!("'{s}' names no host"));
            }
            return Ok(RemoteTarget::Http(s.trim_end_matches('/').to_string()));
        }
        Err(format!(
            "'{s}' is not a queue server address; use unix:/path/to.sock, https://host:port or http://127.0.0.1:port"
        ))
    }

    /// The address as written.
    pub fn display(&self) -> String {
        match self {
            RemoteTarget::Unix(p) => format!("unix:{}", p.display()),
            RemoteTarget::Http(u) => u.clone(),
        }
    }
}

/// How to reach a server.
#[derive(Clone, Debug, Default)]
pub struct RemoteOptions {
    /// The bearer token (TCP); ignored on a Unix socket, where the kernel says who calls.
    pub token: Option<String>,
    /// A PEM CA certificate to trust besides the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Refuse every change locally (`--read-only`).
    pub read_only: bool,
}

/// [`Queue`] over a `signoff serve` server.
pub struct RemoteQueue {
    target: RemoteTarget,
    base: String,
    client: reqwest::Client,
    /// No overall time limit (the event stream lasts); a read timeout notices a dead peer.
    stream_client: reqwest::Client,
    token: Option<String>,
    read_only: bool,
    feed: Mutex<Option<Changes>>,
}

/// The server sends a keep-alive comment every 15 s; three missed ones mean it is gone.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl RemoteQueue {
    pub fn new(target: RemoteTarget, opts: RemoteOptions) -> std::result::Result<Self, String> {
        let build = |stream: bool| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .http1_only()
                .user_agent(concat!("signoff/", env!("CARGO_PKG_VERSION")));
            b = if stream {
                b.read_timeout(STREAM_READ_TIMEOUT)
            } else {
                b.timeout(REQUEST_TIMEOUT)
            };
            if let RemoteTarget::Unix(p) = &target {
                b = b.unix_socket(p.as_path());
            }
            if let Some(pem) = &opts.ca_pem {
                let cert = reqwest::Certificate::from_pem(pem)
                    .map_err(|e| format!("the CA certificate is not PEM: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))
        };
        let base = match &target {
            RemoteTarget::Unix(_) => "http://localhost".to_string(),
            RemoteTarget::Http(u) => u.clone(),
        };
        let token = match &target {
            RemoteTarget::Unix(_) => None,
            RemoteTarget::Http(_) => opts.token.clone(),
        };
        Ok(RemoteQueue {
            client: build(false)?,
            stream_client: build(true)?,
            target,
            base,
            token,
            read_only: opts.read_only,
            feed: Mutex::new(None),
        })
    }

    pub fn target(&self) -> &RemoteTarget {
        &self.target
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// One call: the JSON answer, or the server's error as a [`QueueError`].
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        let mut req = self.request(&self.client, method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        self.answer(resp).await
    }

    async fn answer<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                QueueError::Storage(format!(
                    "the queue server at {} sent an answer this signoff cannot read ({e}); are both the same version?",
                    self.target.display()
                ))
            });
        }
        Err(error_from(status, &bytes, &self.target))
    }

    fn unreachable(&self, e: &reqwest::Error) -> QueueError {
        // The innermost cause says the most ("Connection refused", "No such file").
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        QueueError::Unavailable(format!(
            "cannot reach the queue server at {}: {cause}",
            self.target.display()
        ))
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(QueueError::ReadOnly);
        }
        Ok(())
    }

    /// Refuses every change from now on.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The server's review policy (reject reasons, escalation queues, lease length).
    pub async fn policy(&self) -> Result<crate::model::Policy> {
        self.call(Method::GET, "/v1/policy", None::<&()>).await
    }

    /// Who the server takes this client for.
    pub async fn whoami(&self) -> Result<Whoami> {
        self.call(Method::GET, "/v1/whoami", None::<&()>).await
    }

    /// Sends requests to ingest (an object, an array or JSON Lines), as `signoff ingest`
    /// would read them.
    pub async fn ingest(
        &self,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> Result<IngestAnswer> {
        self.writable()?;
        let mut req = self
            .request(&self.client, Method::POST, "/v1/ingest")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        self.answer(resp).await
    }

    /// Makes a token (admin).
    pub async fn add_token(&self, new: &NewToken) -> Result<IssuedToken> {
        self.call(Method::POST, "/v1/tokens", Some(new)).await
    }

    pub async fn tokens(&self) -> Result<Vec<crate::store::TokenRecord>> {
        self.call(Method::GET, "/v1/tokens", None::<&()>).await
    }

    pub async fn revoke_token(&self, name: &str) -> Result<()> {
        self.call(
            Method::DELETE,
            &format!("/v1/tokens/{}", encode_segment(name)),
            None::<&()>,
        )
        .await
    }
}

/// What the event-stream task needs (it outlives no receiver).
struct StreamTask {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    target: RemoteTarget,
    tx: tokio::sync::watch::Sender<Result<u64>>,
}

/// Follows `/v1/events`, reconnecting after a loss, until every receiver is gone.
async fn follow(task: StreamTask) {
    let StreamTask {
        client,
        url,
        token,
        target,
        tx,
    } = task;
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut req = client
            .get(&url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let lost = tokio::select! {
            _ = tx.closed() => return,
            r = req.send() => match r {
                Ok(resp) if resp.status().is_success() => {
                    backoff = Duration::from_millis(200);
                    tokio::select! {
                        _ = tx.closed() => return,
                        why = read_events(resp, &tx) => why,
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    error_from(status, &body, &target)
                }
                Err(e) => {
                    let mut cause: &dyn std::error::Error = &e;
                    while let Some(next) = cause.source() {
                        cause = next;
                    }
                    QueueError::Unavailable(format!(
                        "cannot reach the queue server at {}: {cause}",
                        target.display()
                    ))
                }
            },
        };
        if tx.send(Err(lost)).is_err() {
            return;
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Reads `change` events until the stream ends; says why it ended.
async fn read_events(
    mut resp: reqwest::Response,
    tx: &tokio::sync::watch::Sender<Result<u64>>,
) -> QueueError {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                buf.extend_from_slice(&bytes);
                // Events end with a blank line.
                while let Some(end) = find_blank_line(&buf) {
                    let event: Vec<u8> = buf.drain(..end.1).collect();
                    if let Some(token) = parse_change(&event[..end.0]) {
                        let _ = tx.send_replace(Ok(token));
                    }
                }
                if buf.len() > 1 << 20 {
                    return QueueError::Storage("the event stream sent an oversized event".into());
                }
            }
            Ok(None) => {
                return QueueError::Unavailable("the queue server closed the event stream".into());
            }
            Err(e) => {
                return QueueError::Unavailable(format!("the event stream was cut: {e}"));
            }
        }
    }
}

/// The end of the first event in `buf`: (where its text ends, where the next begins).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' && buf[i + 1] == b'\n' {
            return Some((i, i + 2));
        }
        if i + 3 < buf.len() && &buf[i..i + 4] == b"\r\n\r\n" {
            return Some((i, i + 4));
        }
        i += 1;
    }
    None
}

/// The token of a `change` event (`event: change` + `data: {"token": "…"}`).
fn parse_change(event: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(event).ok()?;
    let mut name = "message";
    let mut data = String::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    if name != "change" {
        return None;
    }
    let t: ChangeToken = serde_json::from_str(&data).ok()?;
    t.token.parse().ok()
}

/// A server's error answer as a [`QueueError`]: queue errors come back as they were
/// raised; the server's own refusals as [`QueueError::Refused`] with its code and words.
fn error_from(status: StatusCode, body: &[u8], target: &RemoteTarget) -> QueueError {
    let Ok(e) = serde_json::from_slice::<ErrorBody>(body) else {
        // Not the server's JSON: a proxy in between, or something else on that port.
        return if status.is_server_error() {
            QueueError::Unavailable(format!(
                "the queue server at {} answered {status}",
                target.display()
            ))
        } else {
            QueueError::Refused {
                code: status.as_str().to_string(),
                message: format!(
                    "{} answered {status}: {}",
                    target.display(),
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            }
        };
    };
    let tagged = serde_json::json!({"code": e.code, "detail": e.detail});
    match serde_json::from_value::<QueueError>(tagged) {
        Ok(q) => q,
        Err(_) => QueueError::Refused {
            code: e.code,
            message: e.message,
        },
    }
}

/// Percent-encodes a path segment (token names are free text).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[async_trait::async_trait]
impl Queue for RemoteQueue {
    fn location(&self) -> String {
        self.target.display()
    }

    async fn list(&self, query: &ListQuery) -> Result<Page> {
        self.call(Method::POST, "/v1/items/search", Some(query))
            .await
    }

    async fn counts(&self) -> Result<Counts> {
        self.call(Method::GET, "/v1/counts", None::<&()>).await
    }

    async fn get(&self, id: i64) -> Result<ItemDetail> {
        self.call(Method::GET, &format!("/v1/items/{id}"), None::<&()>)
            .await
    }

    async fn claim_next(&self, _reviewer: &str) -> Result<Option<Claim>> {
        self.writable()?;
        self.call(Method::POST, "/v1/claims/next", None::<&()>)
            .await
    }

    async fn claim(&self, id: i64, _reviewer: &str) -> Result<Claim> {
        self.writable()?;
        self.call(Method::POST, &format!("/v1/items/{id}/claim"), None::<&()>)
            .await
    }

    async fn heartbeat(&self, claim: &Claim) -> Result<Claim> {
        self.writable()?;
        let body = FenceBody { fence: claim.fence };
        self.call(
            Method::POST,
            &format!("/v1/items/{}/heartbeat", claim.id),
            Some(&body),
        )
        .await
    }

    async fn release(&self, claim: &Claim) -> Result<()> {
        self.writable()?;
        let body = FenceBody { fence: claim.fence };
        self.call(
            Method::POST,
            &format!("/v1/items/{}/release", claim.id),
            Some(&body),
        )
        .await
    }

    async fn edit(&self, claim: &Claim, field: EditableField, value: Option<String>) -> Result<()> {
        self.writable()?;
        let body = EditBody {
            fence: claim.fence,
            field,
            value,
        };
        self.call(
            Method::POST,
            &format!("/v1/items/{}/edit", claim.id),
            Some(&body),
        )
        .await
    }

    async fn decide(&self, claim: &Claim, decision: &Decision) -> Result<Receipt> {
        self.writable()?;
        let body = DecideBody {
            fence: claim.fence,
            decision: decision.clone(),
        };
        self.call(
            Method::POST,
            &format!("/v1/items/{}/decide", claim.id),
            Some(&body),
        )
        .await
    }

    async fn undo(&self, id: i64, _reviewer: &str) -> Result<Claim> {
        self.writable()?;
        self.call(Method::POST, &format!("/v1/items/{id}/undo"), None::<&()>)
            .await
    }

    async fn timeline(&self, id: i64) -> Result<Vec<AuditEntry>> {
        self.call(
            Method::GET,
            &format!("/v1/items/{id}/timeline"),
            None::<&()>,
        )
        .await
    }

    async fn change_token(&self) -> Result<u64> {
        let t: ChangeToken = self
            .call(Method::GET, "/v1/change_token", None::<&()>)
            .await?;
        t.token.parse().map_err(|_| {
            QueueError::Storage(format!(
                "the server sent a change token that is not a number: {:?}",
                t.token
            ))
        })
    }

    fn changes(&self) -> Option<Changes> {
        let mut feed = self.feed.lock().ok()?;
        if let Some(rx) = feed.as_ref() {
            return Some(rx.clone());
        }
        // Started on first use, on the caller's runtime.
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = tokio::sync::watch::channel(Err(QueueError::Unavailable(
            "connecting to the queue server".into(),
        )));
        handle.spawn(follow(StreamTask {
            client: self.stream_client.clone(),
            url: format!("{}/v1/events", self.base),
            token: self.token.clone(),
            target: self.target.clone(),
            tx,
        }));
        *feed = Some(rx.clone());
        Some(rx)
    }

    async fn actions_paused(&self) -> Result<bool> {
        let k: KillSwitch = self
            .call(Method::GET, "/v1/kill_switch", None::<&()>)
            .await?;
        Ok(k.paused)
    }

    async fn set_actions_paused(&self, paused: bool, _reviewer: &str) -> Result<()> {
        self.writable()?;
        let _: KillSwitch = self
            .call(Method::PUT, "/v1/kill_switch", Some(&KillSwitch { paused }))
            .await?;
        Ok(())
    }

    async fn resend(&self, action_id: i64, _reviewer: &str) -> Result<()> {
        self.writable()?;
        self.call(
            Method::POST,
            &format!("/v1/actions/{action_id}/resend"),
            None::<&()>,
        )
        .await
    }

    async fn record_outcome(
        &self,
        id: i64,
        value: &str,
        reason: Option<&str>,
        _reviewer: &str,
    ) -> Result<()> {
        self.writable()?;
        let body = OutcomeBody {
            value: value.to_string(),
            reason: reason.map(str::to_owned),
        };
        self.call(
            Method::POST,
            &format!("/v1/items/{id}/outcome"),
            Some(&body),
        )
        .await
    }

    async fn preview_rendered(&self, id: i64, _reviewer: &str, digest: &str) -> Result<()> {
        self.writable()?;
        let body = DigestBody {
            digest: digest.to_string(),
        };
        self.call(
            Method::POST,
            &format!("/v1/items/{id}/preview_rendered"),
            Some(&body),
        )
        .await
    }

    async fn preview(
        &self,
        id: i64,
        kind: &DecisionKind,
        _reviewer: &str,
        note: Option<&str>,
    ) -> Result<Vec<super::ActionPreview>> {
        let body = PreviewBody {
            kind: kind.clone(),
            note: note.map(str::to_owned),
        };
        self.call(
            Method::POST,
            &format!("/v1/items/{id}/preview"),
            Some(&body),
        )
        .await
    }

    async fn volume(&self) -> Result<crate::stats::Volume> {
        self.call(Method::GET, "/v1/volume", None::<&()>).await
    }

    async fn stats(&self, since: Option<Millis>) -> Result<crate::stats::Stats> {
        let path = match since {
            Some(s) => format!("/v1/stats?since={s}"),
            None => "/v1/stats".to_string(),
        };
        self.call(Method::GET, &path, None::<&()>).await
    }
}

/// Reads a token file (first line, trimmed).
pub fn read_token_file(path: &Path) -> std::result::Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            RemoteTarget::parse("unix:/run/signoff/signoff.sock"),
            Ok(RemoteTarget::Unix("/run/signoff/signoff.sock".into()))
        );
        assert_eq!(
            RemoteTarget::parse("https://q.example.com:8787/"),
            Ok(RemoteTarget::Http("https://q.example.com:8787".into()))
        );
        assert!(RemoteTarget::parse("ftp://x").is_err());
        assert!(RemoteTarget::parse("unix:").is_err());
    }

    #[test]
    fn change_events_parse() {
        let buf = b"event: change\nid: 7\ndata: {\"token\":\"42\"}\n\n: keep-alive\n\n";
        let (end, next) = find_blank_line(buf).unwrap();
        assert_eq!(parse_change(&buf[..end]), Some(42));
        let rest = &buf[next..];
        let (end, _) = find_blank_line(rest).unwrap();
        assert_eq!(parse_change(&rest[..end]), None);
    }

    #[test]
    fn errors_come_back_as_raised() {
        let t = RemoteTarget::Http("http://x".into());
        let body = serde_json::json!({
            "code": "lease_lost", "message": "…",
            "detail": {"id": 41, "fence": 3, "holder": "carol"}
        });
        assert_eq!(
            error_from(StatusCode::CONFLICT, body.to_string().as_bytes(), &t),
            QueueError::LeaseLost {
                id: 41,
                fence: 3,
                holder: Some("carol".into())
            }
        );
        let body = serde_json::json!({"code": "forbidden", "message": "observers cannot decide"});
        assert_eq!(
            error_from(StatusCode::FORBIDDEN, body.to_string().as_bytes(), &t),
            QueueError::Refused {
                code: "forbidden".into(),
                message: "observers cannot decide".into()
            }
        );
        assert!(matches!(
            error_from(StatusCode::BAD_GATEWAY, b"<html>", &t),
            QueueError::Unavailable(_)
        ));
    }
}
