//! Local fakes of monday.com, Slack and Gmail (+ Google's token endpoint) on 127.0.0.1:0,
//! behaving as INTEGRATIONS.md describes (auth checks, monday's double-encoded
//! `column_values` and HTTP-200 errors, Slack's `ok:false`, Google's error envelope,
//! base64url, Gmail's threading rule), with a scripted fault queue and a request log.
//! Plus helpers to build a queue database with approved items.
#![allow(dead_code)]
// Handlers return ready-made error responses; boxing them would only add noise to the fakes.
#![allow(clippy::result_large_err)]

pub mod gmail;
pub mod monday;
pub mod pg;
pub mod slack;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use signoff::actions::{ActionsConfig, Mode};
use signoff::model::{DecisionKind, Policy, Request};
use signoff::queue::Decision;
use signoff::secret::Secret;
use signoff::store::{IngestItem, Store, StoreOptions};

/// A scripted misbehaviour, applied to the next request of its route.
#[derive(Clone, Debug)]
pub enum Fault {
    /// HTTP status + headers + body, without applying anything.
    Reply {
        status: u16,
        retry_after: Option<String>,
        body: String,
        content_type: &'static str,
    },
    /// Apply the write, then break the connection before the answer.
    ApplyThenDrop,
    /// Apply the write, tell the test (via `notify`), then never answer.
    ApplyThenHang,
    /// Apply, then answer with this (Slack internal_error after storing).
    ApplyThenReply { status: u16, body: String },
    /// Apply nothing and never answer (a client timeout).
    Hang,
}

impl Fault {
    pub fn json(status: u16, body: serde_json::Value) -> Fault {
        Fault::Reply {
            status,
            retry_after: None,
            body: body.to_string(),
            content_type: "application/json",
        }
    }
    pub fn json_retry(status: u16, retry_after: &str, body: serde_json::Value) -> Fault {
        Fault::Reply {
            status,
            retry_after: Some(retry_after.into()),
            body: body.to_string(),
            content_type: "application/json",
        }
    }
    pub fn html(status: u16, body: &str) -> Fault {
        Fault::Reply {
            status,
            retry_after: None,
            body: body.into(),
            content_type: "text/html",
        }
    }
}

/// One logged request.
#[derive(Clone, Debug)]
pub struct Logged {
    pub route: String,
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Logged {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Everything the fakes know.
#[derive(Default)]
pub struct World {
    pub monday: monday::Monday,
    pub slack: slack::Slack,
    pub gmail: gmail::Gmail,
    /// (route, fault): the first entry whose route matches the request is used and removed.
    pub faults: VecDeque<(String, Fault)>,
    /// Random faults for the benchmark: share of writes, and the kinds to pick from.
    pub random_faults: Option<(f64, Vec<Fault>)>,
    pub log: Vec<Logged>,
    pub applied_then_hung: usize,
    /// Random faults injected so far.
    pub injected: usize,
    pub hung: Arc<tokio::sync::Notify>,
    /// The fakes' "now" where they model time (monday's search lag): the system clock
    /// unless a test shares its pinned clock with them.
    pub clock: signoff::clock::Clock,
}

pub type Shared = Arc<Mutex<World>>;

impl World {
    /// The fault for a request of `route` (scripted first, then random ones for writes).
    pub fn take_fault(&mut self, route: &str, is_write: bool) -> Option<Fault> {
        if let Some(i) = self.faults.iter().position(|(r, _)| {
            r == route || (r.ends_with('*') && route.starts_with(&r[..r.len() - 1]))
        }) {
            return self.faults.remove(i).map(|(_, f)| f);
        }
        if is_write
            && let Some((rate, kinds)) = &self.random_faults
            && fastrand::f64() < *rate
        {
            self.injected += 1;
            return Some(kinds[fastrand::usize(..kinds.len())].clone());
        }
        None
    }
}

/// Running fakes.
pub struct Fakes {
    pub addr: SocketAddr,
    pub world: Shared,
}

impl Fakes {
    /// Starts all fakes on one port (routes: `/v2`, `/api/…`, `/services/…`, `/gmail/…`, `/token`).
    pub async fn start() -> Fakes {
        let world: Shared = Arc::new(Mutex::new(World::default()));
        {
            let mut w = world.lock().unwrap();
            w.monday = monday::Monday::seeded();
            w.slack = slack::Slack::seeded();
            w.gmail = gmail::Gmail::seeded();
        }
        let app = Router::new()
            .merge(monday::routes())
            .merge(slack::routes())
            .merge(gmail::routes())
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fakes { addr, world }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn fault(&self, route: &str, f: Fault) {
        self.world
            .lock()
            .unwrap()
            .faults
            .push_back((route.into(), f));
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.world.lock().unwrap())
    }

    /// Requests logged on `route`.
    pub fn requests(&self, route: &str) -> Vec<Logged> {
        self.with(|w| w.log.iter().filter(|l| l.route == route).cloned().collect())
    }

    /// A live config pointing every provider at these fakes, with short timeouts.
    pub fn config(&self) -> ActionsConfig {
        let mut cfg = ActionsConfig {
            mode: Mode::Live,
            ..ActionsConfig::default()
        };
        cfg.dispatch.connect_timeout_ms = 2_000;
        cfg.dispatch.timeout_ms = 5_000;
        // Retries wait a minute of (pretend) time: a test moves them forward with make_due.
        cfg.dispatch.backoff_base_ms = 60_000;
        cfg.dispatch.backoff_cap_ms = 120_000;
        cfg.monday.api_url = self.url("/v2");
        cfg.monday.token = Some(Secret::new(monday::TOKEN));
        cfg.monday.board_id = monday::BOARD.into();
        cfg.monday.key_column = "text_ext_id".into();
        // The fakes find a new item at once unless a test gives them a search lag: no
        // lookup window unless a test sets one.
        cfg.monday.lookup_window_secs = 0;
        cfg.slack.api_url = self.url("/api/");
        cfg.slack.token = Some(Secret::new(slack::TOKEN));
        cfg.slack.default_channel = slack::GENERAL.into();
        cfg.slack
            .channels
            .insert("urgent".into(), slack::URGENT.into());
        cfg.slack.per_channel_per_second = 0.0;
        cfg.gmail.api_url = self.url("");
        cfg.gmail.token_url = self.url("/token");
        cfg.gmail.client_id = Some(Secret::new(gmail::CLIENT_ID));
        cfg.gmail.client_secret = Some(Secret::new(gmail::CLIENT_SECRET));
        cfg.gmail.refresh_token = Some(Secret::new(gmail::REFRESH_TOKEN));
        cfg.gmail.from = "Support <support@example.com>".into();
        cfg
    }
}

/// Logs a request; `route` names it for faults and assertions.
pub fn log(
    w: &mut World,
    route: &str,
    method: &str,
    uri: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) {
    w.log.push(Logged {
        route: route.into(),
        method: method.into(),
        uri: uri.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    });
}

/// The answer of a scripted reply fault.
pub fn reply(status: u16, retry_after: Option<&str>, body: String, content_type: &str) -> Response {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", content_type);
    if let Some(ra) = retry_after {
        r = r.header("retry-after", ra);
    }
    r.body(Body::from(body)).unwrap()
}

pub fn json(status: u16, v: serde_json::Value) -> Response {
    reply(
        status,
        None,
        v.to_string(),
        "application/json; charset=utf-8",
    )
}

/// A response whose body breaks off: the client sees the connection drop.
pub fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by the fake"))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Applies the after-apply part of a fault to a successful answer.
pub async fn after_apply(world: &Shared, fault: Option<Fault>, ok: Response) -> Response {
    match fault {
        Some(Fault::ApplyThenDrop) => dropped(),
        Some(Fault::ApplyThenHang) => {
            let notify = {
                let mut w = world.lock().unwrap();
                w.applied_then_hung += 1;
                w.hung.clone()
            };
            notify.notify_waiters();
            std::future::pending::<()>().await;
            unreachable!()
        }
        Some(Fault::ApplyThenReply { status, body }) => {
            reply(status, None, body, "application/json")
        }
        _ => ok,
    }
}

/// Answers a fault that happens before anything is applied, if it is one.
pub async fn before_apply(fault: &Option<Fault>) -> Option<Response> {
    match fault {
        Some(Fault::Reply {
            status,
            retry_after,
            body,
            content_type,
        }) => Some(reply(
            *status,
            retry_after.as_deref(),
            body.clone(),
            content_type,
        )),
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Some(StatusCode::GATEWAY_TIMEOUT.into_response())
        }
        _ => None,
    }
}

/// A policy whose decisions are due at once (no undo window).
pub fn policy() -> Arc<Policy> {
    Arc::new(Policy {
        undo_seconds: 0,
        ..Policy::default()
    })
}

/// A request payload.
pub fn payload(
    ext: &str,
    intent: &str,
    priority: &str,
    from: &str,
    subject: &str,
    draft: &str,
) -> serde_json::Value {
    serde_json::json!({
        "source": "web", "external_id": ext, "received_at": "2026-01-15T09:30:00Z",
        "raw": {"channel": "email", "from": from, "subject": subject, "body": "Hello"},
        "ai": {"summary": format!("Summary of {ext}"), "intent": intent, "priority": priority, "confidence": 0.9,
               "recommended_next_step": "Call back", "crm_update_required": true,
               "human_review_required": false, "draft_reply": draft},
    })
}

/// Opens a store at `db` rendering with `cfg`, ingests `payloads` and approves each.
pub fn approve_all(db: &Path, cfg: &ActionsConfig, payloads: &[serde_json::Value]) -> Store {
    let policy = policy();
    let mut store = Store::open(db, policy.clone(), &StoreOptions::default()).unwrap();
    store.set_renderer(signoff::actions::renderer(cfg, policy).unwrap());
    let items: Vec<IngestItem> = payloads
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let text = v.to_string();
            let (value, request) = Request::from_json(&text).unwrap();
            IngestItem::new(text, value, request, format!("test:{i}"))
        })
        .collect();
    let outcomes = store.ingest_batch(&items, "test").unwrap();
    for o in outcomes {
        let id = match o {
            signoff::store::IngestOutcome::Inserted { id } => id,
            other => panic!("{other:?}"),
        };
        let claim = store.claim(id, "sam").unwrap();
        store
            .decide(
                &claim,
                &Decision {
                    kind: DecisionKind::Approve,
                    revision: None,
                    note: None,
                    sets: vec![],
                },
            )
            .unwrap();
    }
    store
}

/// Makes every waiting row due now ("time passes").
pub fn make_due(store: &Store) {
    store
        .connection()
        .execute(
            "UPDATE outbox SET next_attempt_at = 0 WHERE status IN ('queued', 'retrying')",
            [],
        )
        .unwrap();
}

/// Runs the dispatcher until nothing is due.
pub async fn dispatch_once(db: &Path, cfg: &ActionsConfig) -> signoff::actions::DispatchSummary {
    signoff::actions::dispatch_until(
        db,
        policy(),
        cfg,
        true,
        "test-worker",
        std::future::pending(),
    )
    .await
    .unwrap()
}

/// Runs the dispatcher on `clock` (shared with the fakes by a test that pins time) until
/// nothing is due by it.
pub async fn dispatch_once_at(
    db: &Path,
    cfg: &ActionsConfig,
    clock: &signoff::clock::Clock,
) -> signoff::actions::DispatchSummary {
    let opts = StoreOptions {
        clock: clock.clone(),
        ..StoreOptions::default()
    };
    signoff::actions::dispatch_with(
        db,
        policy(),
        &opts,
        cfg,
        true,
        "test-worker",
        std::future::pending(),
    )
    .await
    .unwrap()
}

/// When the row of `action` is next due (ms).
pub fn next_due(store: &Store, action: &str) -> i64 {
    store
        .connection()
        .query_row(
            "SELECT next_attempt_at FROM outbox WHERE action = ?1 ORDER BY id LIMIT 1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}

/// Dispatches, making retries due between rounds, until every row is settled (≤ `rounds`).
pub async fn dispatch_settled(db: &Path, store: &Store, cfg: &ActionsConfig, rounds: usize) {
    for _ in 0..rounds {
        make_due(store);
        dispatch_once(db, cfg).await;
        let open: i64 = store
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'retrying', 'sending')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if open == 0 {
            return;
        }
    }
}

/// (action, status, attempts, last_error, response) of every outbox row, by id.
pub fn rows(store: &Store) -> Vec<(String, String, i64, Option<String>, serde_json::Value)> {
    let mut stmt = store
        .connection()
        .prepare("SELECT action, status, attempts, last_error, response FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        let resp: Option<String> = r.get(4)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            resp.and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// How long after its attempt began the row of `action` is next due (ms); the first
/// such row when there are several.
pub fn retry_gap(store: &Store, action: &str) -> i64 {
    store
        .connection()
        .query_row(
            "SELECT o.next_attempt_at - (SELECT MAX(a.at) FROM audit a WHERE a.kind = 'action_attempt'
                AND json_extract(a.detail, '$.outbox_id') = o.id)
             FROM outbox o WHERE o.action = ?1 ORDER BY o.id LIMIT 1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}

pub fn row(store: &Store, action: &str) -> (String, i64, Option<String>, serde_json::Value) {
    let r = rows(store).into_iter().find(|r| r.0 == action).unwrap();
    (r.1, r.2, r.3, r.4)
}

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    (dir, db)
}

/// Writes `<dir>/config/config.toml`: the fakes' URLs, credentials as `env:` references.
pub fn write_config(dir: &std::path::Path, f: &Fakes, mode: &str) {
    let cfg = format!(
        r#"
[policy]
undo_seconds = 0

[actions]
mode = "{mode}"

[actions.monday]
api_url = "{monday}"
token = "env:TEST_MONDAY_TOKEN"
board_id = "{board}"
key_column = "text_ext_id"

[actions.slack]
api_url = "{slack}"
token = "env:TEST_SLACK_TOKEN"
default_channel = "{general}"

[actions.gmail]
api_url = "{gmail}"
token_url = "{token}"
client_id = "env:TEST_GMAIL_CLIENT_ID"
client_secret = "env:TEST_GMAIL_CLIENT_SECRET"
refresh_token = "env:TEST_GMAIL_REFRESH_TOKEN"
"#,
        monday = f.url("/v2"),
        board = monday::BOARD,
        slack = f.url("/api/"),
        general = slack::GENERAL,
        gmail = f.url(""),
        token = f.url("/token"),
    );
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config").join("config.toml"), cfg).unwrap();
}

/// Sets the environment variables `write_config`'s references name.
pub fn with_secrets(mut c: std::process::Command) -> std::process::Command {
    c.env("TEST_MONDAY_TOKEN", monday::TOKEN)
        .env("TEST_SLACK_TOKEN", slack::TOKEN)
        .env("TEST_GMAIL_CLIENT_ID", gmail::CLIENT_ID)
        .env("TEST_GMAIL_CLIENT_SECRET", gmail::CLIENT_SECRET)
        .env("TEST_GMAIL_REFRESH_TOKEN", gmail::REFRESH_TOKEN);
    c
}
