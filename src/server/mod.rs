//! `signoff serve`: the queue server for a team (DESIGN.md "Serving a team").
//!
//! It owns the store (the SQLite file, never readable by anyone but the service's user)
//! and runs the dispatcher; consoles and scripts are clients. It listens on a Unix socket,
//! where the kernel says who each caller is, and optionally on TCP, where callers present a
//! bearer token. The API is JSON under `/v1`, one route per [`crate::queue::Queue`]
//! operation, with change events over SSE and an OpenAPI document generated from the
//! handlers ([`router`]).
//!
//! Writes go through the server's one queue: a SQLite [`LocalQueue`] with its one writing
//! connection, or PostgreSQL ([`crate::pg::PgQueue`]) shared with other instances. On SQLite
//! decisions use group commit: those that arrive while a transaction is committing share
//! the next one, a savepoint each, and each caller is answered once its batch is durable.
pub mod auth;
mod backend;
mod error;
mod events;
mod ingest;
mod limit;
mod listen;
mod metrics;
mod routes;
mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Identity, Via, new_token, parse_age, sign, token_sha256};
pub use error::status_of;
pub use listen::Peer;
pub use tokens::check_name as check_token_name;

use crate::config::{AccessConfig, Loaded};
use crate::queue::{LocalQueue, Queue};
use error::ApiError;

/// The most decisions one group-commit transaction takes.
const GROUP_COMMIT_MAX: usize = 64;
/// How stale the token cache may be (see `tokens_now`).
const TOKENS_FRESH_MS: u64 = 250;

/// What `signoff serve` was asked for on its command line (config fills the rest).
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    pub socket: Option<PathBuf>,
    pub no_socket: bool,
    pub bind: Option<String>,
    pub behind_proxy: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// The server's state, shared by every request.
pub struct AppState {
    queue: backend::Served,
    /// The database, as messages name it (a path, or a URL without its password).
    db: String,
    policy: Arc<crate::model::Policy>,
    access: AccessConfig,
    own_uid: u32,
    users: auth::UserCache,
    tokens: auth::TokenCache,
    webhook_secret: Option<String>,
    limiter: limit::RateLimiter,
    feed: Arc<events::ChangeFeed>,
    max_body: usize,
    max_ingest: usize,
    timeout: Duration,
    shutdown: watch::Receiver<bool>,
    ingest_lock: tokio::sync::Mutex<()>,
    openapi: OnceLock<serde_json::Value>,
    metrics: metrics::Metrics,
    /// When the server started (epoch ms).
    started_at: i64,
}

pub(crate) type Shared = Arc<AppState>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "signoff queue server",
        description = "The review queue over HTTP: one route per queue operation, change events over SSE, webhook ingest. \
On the Unix socket the caller is the peer's Unix user ([server.access] gives the role); over TCP a bearer token from `signoff token add`. \
Errors are {\"code\", \"message\", \"detail\"} with a stable code."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "queue", description = "Reading the queue"),
        (name = "review", description = "Claims, edits, decisions (reviewer role)"),
        (name = "actions", description = "The kill switch and resends (admin to change)"),
        (name = "stats", description = "Analytics"),
        (name = "ingest", description = "The upstream webhook"),
        (name = "tokens", description = "Bearer tokens (admin)"),
        (name = "server", description = "Health, identity, this document"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        api.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::default(),
        ]);
    }
}

/// Every route, each registered with its documentation in one call: a route cannot be
/// served without being in `/openapi.json`.
pub fn api() -> (Router<Shared>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::healthz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(routes::openapi))
        .routes(routes!(routes::whoami))
        .routes(routes!(routes::policy))
        .routes(routes!(routes::list))
        .routes(routes!(routes::counts))
        .routes(routes!(routes::get_item))
        .routes(routes!(routes::claim_next))
        .routes(routes!(routes::claim))
        .routes(routes!(routes::heartbeat))
        .routes(routes!(routes::release))
        .routes(routes!(routes::edit))
        .routes(routes!(routes::decide))
        .routes(routes!(routes::undo))
        .routes(routes!(routes::timeline))
        .routes(routes!(routes::change_token))
        .routes(routes!(routes::preview))
        .routes(routes!(routes::preview_rendered))
        .routes(routes!(routes::outcome))
        .routes(routes!(routes::kill_switch, routes::set_kill_switch))
        .routes(routes!(routes::resend))
        .routes(routes!(routes::volume))
        .routes(routes!(routes::stats))
        .routes(routes!(events::events))
        .routes(routes!(ingest::ingest))
        .routes(routes!(tokens::list, tokens::add))
        .routes(routes!(tokens::revoke))
        .split_for_parts()
}

/// The OpenAPI document (also served at `/openapi.json`).
pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(api().1).unwrap_or_default()
}

/// The router with its layers, on `state`.
pub fn router(state: Shared) -> Router {
    let (routes, doc) = api();
    let _ = state
        .openapi
        .set(serde_json::to_value(&doc).unwrap_or_default());
    routes
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// The name the log gives a request's caller (a response extension).
#[derive(Clone)]
struct Caller(String);

/// Who is calling: the socket peer's user, a signed webhook, or a bearer token. Sets the
/// [`Identity`] for the handlers, or answers 401/403 itself. Then the caller's rate limit.
async fn authenticate(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let (ident, mut req) = match identify(&s, &peer, req).await {
        Ok(x) => x,
        Err(e) => {
            // Refused callers share one bucket per address: guessing is slowed down too.
            if let Peer::Tcp(addr) = &peer
                && let Err(wait) = s.limiter.take(&format!("refused:{}", addr.ip()))
            {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many refused requests from {}; retry in {wait} s",
                        addr.ip()
                    ),
                );
                e.retry_after = Some(wait);
                return e.into_response();
            }
            return e.into_response();
        }
    };
    if let Err(wait) = s
        .limiter
        .take(&format!("{}:{}", ident.via.as_str(), ident.name))
    {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "{} is sending requests faster than this server allows; retry in {wait} s",
                ident.name
            ),
        );
        e.retry_after = Some(wait);
        return e.into_response();
    }
    let caller = Caller(format!("{}:{}", ident.via.as_str(), ident.name));
    // A socket peer is a Unix user: the audit log records them as the one who acted. A
    // token holder has no Unix user here; the rows then carry the server's own.
    let os_user = (ident.via == Via::Unix).then(|| ident.name.clone());
    req.extensions_mut().insert(ident);
    let mut resp = match os_user {
        Some(user) => crate::queue::acting_for(user, next.run(req)).await,
        None => next.run(req).await,
    };
    resp.extensions_mut().insert(caller);
    resp
}

async fn identify(s: &Shared, peer: &Peer, req: Request) -> Result<(Identity, Request), ApiError> {
    match peer {
        Peer::Unix { uid, .. } => {
            let user = s.users.user(*uid).await.ok_or_else(|| {
                ApiError::forbidden(format!(
                    "uid {uid} has no name in this host's user database; signoff records names"
                ))
            })?;
            let role = auth::role_for(&s.access, &user, *uid == s.own_uid).ok_or_else(|| {
                ApiError::forbidden(format!(
                    "{} is not in [server.access] of this server; ask its admin to add the user or one of its groups",
                    user.name
                ))
            })?;
            Ok((
                Identity {
                    name: user.name,
                    role,
                    via: Via::Unix,
                },
                req,
            ))
        }
        Peer::Tcp(_) => {
            let headers = req.headers();
            if req.uri().path() == "/v1/ingest" && headers.contains_key("x-signoff-signature") {
                return webhook(s, req).await;
            }
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|t| t.trim().to_string());
            let Some(presented) = presented.filter(|t| !t.is_empty()) else {
                return Err(unauthorized(
                    "this server needs a bearer token over TCP (Authorization: Bearer …); an admin makes one with `signoff token add NAME --role ROLE`",
                ));
            };
            let now = crate::clock::Clock::process().now();
            let records = tokens_now(s).await?;
            let ident = match auth::check_token(&presented, &records, now) {
                // A token made a moment ago on this host (`signoff token add`) may be newer
                // than the cache: look once more before refusing.
                Err(auth::TokenRefusal::Unknown) => {
                    s.tokens.clear();
                    auth::check_token(&presented, &tokens_now(s).await?, now)
                }
                other => other,
            }
            .map_err(|why| unauthorized(&why.message()))?;
            Ok((ident, req))
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::unauthorized(message)
}

/// The stored tokens, from a cache at most [`TOKENS_FRESH_MS`] old. Keyed by time, not by
/// the queue's change token: that moves with every claim and decision, and a busy queue
/// would read the token table again for nearly every request. Tokens added or revoked
/// through this server clear the cache at once; an unknown token reads the table again
/// before it is refused; one revoked with `signoff token revoke` on the host is refused
/// within that time.
async fn tokens_now(s: &Shared) -> Result<Arc<Vec<crate::store::TokenRecord>>, ApiError> {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let at = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        / TOKENS_FRESH_MS;
    if let Some(t) = s.tokens.get(at) {
        return Ok(t);
    }
    let records = s.queue.tokens().await?;
    Ok(s.tokens.put(at, records))
}

/// A signed webhook request: the body is read here (within the ingest limit) to check
/// the HMAC, then handed on.
async fn webhook(s: &Shared, req: Request) -> Result<(Identity, Request), ApiError> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (timestamp, signature) = (header("x-signoff-timestamp"), header("x-signoff-signature"));
    let bytes = error::read_body(body, s.max_ingest).await?;
    let now = crate::clock::Clock::process().now() / 1000;
    auth::check_signature(
        s.webhook_secret.as_deref(),
        &timestamp,
        &signature,
        &bytes,
        now,
    )
    .map_err(|why| unauthorized(&why.message()))?;
    let ident = Identity {
        name: "webhook".into(),
        role: crate::config::Role::Ingest,
        via: Via::Webhook,
    };
    Ok((
        ident,
        Request::from_parts(parts, axum::body::Body::from(bytes)),
    ))
}

/// Answers 503 when a request runs past `server.request_timeout_seconds` (the event
/// stream lasts by design and is exempt).
async fn time_limit(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/v1/events" {
        return next.run(req).await;
    }
    match tokio::time::timeout(s.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s; it may still complete, so look before retrying",
                s.timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

/// One log line per request: route, status, caller, time. Never a body, a query string
/// or a header value. The same go to the metrics.
async fn log_request(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(no route)".into());
    let resp = next.run(req).await;
    let caller = resp
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .unwrap_or_else(|| "-".into());
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    s.metrics
        .observe(method.as_str(), &route, status, elapsed.as_secs_f64());
    let ms = elapsed.as_millis() as u64;
    if status >= 500 {
        tracing::warn!(%method, %route, status, %caller, ms, "request");
    } else {
        tracing::info!(%method, %route, status, %caller, ms, "request");
    }
    resp
}

/// The default socket: `$XDG_RUNTIME_DIR/signoff.sock`.
pub fn default_socket() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(|d| PathBuf::from(d).join("signoff.sock"))
}

/// The name of the user this process runs as.
pub fn current_user() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    auth::user_name(uid)
        .map(|(n, _)| n)
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Makes the database and its WAL files readable by the service's user only.
fn restrict(db: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o077 != 0
        {
            match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => tracing::warn!(file = %p.display(), "was readable by others; now 0600"),
                Err(e) => tracing::warn!(file = %p.display(), "cannot make it 0600: {e}"),
            }
        }
    }
}

/// Where TCP goes, checked: loopback, TLS, or a proxy said to terminate TLS.
enum Tcp {
    None,
    Plain(SocketAddr),
    Tls(SocketAddr, Arc<tokio_rustls::rustls::ServerConfig>),
}

async fn resolve_bind(addr: &str) -> anyhow::Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host(addr).await.map_err(|e| {
        anyhow::anyhow!("--bind {addr}: {e} (write HOST:PORT, e.g. 127.0.0.1:8787)")
    })?;
    addrs
        .next()
        .ok_or_else(|| anyhow::anyhow!("--bind {addr}: the name resolves to no address"))
}

/// Runs the server until SIGTERM or SIGINT. Returns the exit code.
pub fn run(loaded: &Loaded, opts: ServeOptions) -> anyhow::Result<i32> {
    // Every file this process creates (database, WAL, anchor, logs) is the service
    // user's alone; the socket is opened to its group explicitly.
    // SAFETY: umask only sets this process's file mode mask.
    unsafe {
        libc::umask(0o077);
    }
    let rt = crate::cli::runtime()?;
    rt.block_on(serve(loaded, opts))
}

async fn serve(loaded: &Loaded, opts: ServeOptions) -> anyhow::Result<i32> {
    let cfg = &loaded.config.server;
    let socket = if opts.no_socket {
        None
    } else {
        Some(
            opts.socket
                .clone()
                .or_else(|| cfg.socket.clone())
                .or_else(default_socket)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no socket path: $XDG_RUNTIME_DIR is unset; pass --socket PATH (or --no-socket with --bind)"
                    )
                })?,
        )
    };
    let bind = opts.bind.clone().or_else(|| cfg.bind.clone());
    let behind_proxy = opts.behind_proxy || cfg.behind_proxy;
    let tls_files = match (
        opts.tls_cert.clone().or_else(|| cfg.tls_cert.clone()),
        opts.tls_key.clone().or_else(|| cfg.tls_key.clone()),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!(
            "TLS needs both a certificate and a key (server.tls_cert, server.tls_key)"
        ),
    };
    if socket.is_none() && bind.is_none() {
        anyhow::bail!("nothing to listen on: --no-socket needs --bind ADDR");
    }
    let tcp = match &bind {
        None => Tcp::None,
        Some(b) => {
            let addr = resolve_bind(b).await?;
            match &tls_files {
                Some((c, k)) => Tcp::Tls(addr, listen::tls_config(c, k)?),
                None if addr.ip().is_loopback() || behind_proxy => Tcp::Plain(addr),
                None => anyhow::bail!(
                    "refusing plain HTTP on {addr}: tokens would cross the network in the clear. \
Set server.tls_cert and server.tls_key, or pass --behind-proxy when a proxy in front terminates TLS"
                ),
            }
        }
    };
    let webhook_secret = match &cfg.webhook_secret {
        None => None,
        Some(s) => Some(
            s.resolve()
                .map_err(|e| anyhow::anyhow!("server.webhook_secret: {e}"))?,
        ),
    };

    let db = loaded.paths.db.clone();
    let policy = Arc::new(loaded.config.policy.clone());
    let renderer = crate::actions::renderer(&loaded.config.actions, policy.clone())?;
    let (queue, outbox, shown): (backend::Served, crate::actions::OutboxStore, String) =
        match db.to_str().filter(|s| crate::pg::is_url(s)) {
            Some(url) => {
                let q =
                    crate::pg::PgQueue::open(url, policy.clone(), &crate::cli::pg_options(loaded))
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .with_renderer(renderer);
                let outbox = crate::actions::OutboxStore::Postgres(q.db().clone());
                let shown = q.location();
                (Arc::new(q), outbox, shown)
            }
            None => {
                restrict(&db);
                // Both writers here are heavy (every reviewer's claims and decisions go
                // through the queue's group commit; the dispatcher sends them): each
                // checkpoints on a thread of its own, as `signoff dispatch` does, so no
                // commit pays for copying the log into the database file (a batch that did
                // made the claims behind it wait).
                let store_opts = crate::store::StoreOptions {
                    background_checkpoint: true,
                    ..crate::cli::store_options(loaded)
                };
                let q = LocalQueue::open(&db, policy.clone(), &store_opts)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .with_renderer(renderer)
                    .with_group_commit(GROUP_COMMIT_MAX);
                restrict(&db);
                let outbox = crate::actions::OutboxStore::Sqlite(db.clone(), store_opts);
                (Arc::new(q), outbox, db.display().to_string())
            }
        };
    let initial = queue.change_token().await.unwrap_or(0);
    let feed = Arc::new(events::ChangeFeed::new(initial));
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(AppState {
        queue: queue.clone(),
        db: shown.clone(),
        policy: policy.clone(),
        access: cfg.access.clone(),
        // SAFETY: geteuid has no preconditions.
        own_uid: unsafe { libc::geteuid() },
        users: Default::default(),
        tokens: Default::default(),
        webhook_secret,
        limiter: limit::RateLimiter::new(cfg.rate_per_second, cfg.rate_burst),
        feed: feed.clone(),
        max_body: cfg.max_body_bytes.max(1024),
        max_ingest: cfg.max_ingest_bytes.max(1024),
        timeout: Duration::from_secs(cfg.request_timeout_seconds.max(1)),
        shutdown: stop_rx.clone(),
        ingest_lock: tokio::sync::Mutex::new(()),
        openapi: OnceLock::new(),
        metrics: Default::default(),
        started_at: crate::clock::Clock::process().now(),
    });
    let app = router(state.clone()).into_make_service_with_connect_info::<Peer>();

    let mut servers = tokio::task::JoinSet::new();
    // One server task per listener (their types differ), each ending with the stop signal.
    macro_rules! serve_until_stopped {
        ($listener:expr) => {{
            let (listener, app, mut stop) = ($listener, app.clone(), stop_rx.clone());
            servers.spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
            });
        }};
    }
    let mut wheres = Vec::new();
    let mut socket_file = None;
    if let Some(path) = &socket {
        let (listener, file) = listen::bind_unix(path)?;
        socket_file = Some(file);
        wheres.push(format!("unix:{}", path.display()));
        serve_until_stopped!(listener);
    }
    match tcp {
        Tcp::None => {}
        Tcp::Plain(addr) => {
            let listener = listen::TcpPeerListener::bind(addr).await?;
            let local = listener.local()?;
            wheres.push(format!("http://{local}"));
            if behind_proxy && !local.ip().is_loopback() {
                println!(
                    "signoff serve: plain HTTP on {local} for a proxy: the proxy must terminate TLS, and nothing else may reach this port"
                );
            }
            serve_until_stopped!(listener);
        }
        Tcp::Tls(addr, config) => {
            let listener = listen::TcpPeerListener::bind(addr).await?;
            let local = listener.local()?;
            wheres.push(format!("https://{local}"));
            let listener = listener.tls(config);
            serve_until_stopped!(listener);
        }
    }

    let watcher = tokio::spawn(events::follow_store(
        queue.clone(),
        feed.clone(),
        stop_rx.clone(),
    ));
    let dispatcher = {
        let cfg = loaded.config.actions.clone();
        let worker = format!("serve:{}", crate::cli::worker_name(loaded));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let res = outbox
                .dispatch(policy, &cfg, false, &worker, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            match res {
                Ok(summary) => tracing::info!(%summary, "dispatcher stopped"),
                Err(e) => tracing::error!("the dispatcher stopped: {e:#}"),
            }
        })
    };

    let access = if cfg.access.is_empty() {
        format!("; no [server.access]: only {} may connect", current_user())
    } else {
        String::new()
    };
    println!(
        "signoff serve: listening on {}; database {}{access}",
        wheres.join(" and "),
        shown
    );
    tracing::info!(listen = %wheres.join(" "), db = %shown, "serving");

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let failed = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        r = servers.join_next() => Some(r),
    };
    let _ = stop_tx.send(true);
    tracing::info!("stopping: finishing requests in flight");
    let mut code = crate::cli::EXIT_OK;
    if let Some(r) = failed {
        code = crate::cli::EXIT_FAILED;
        match r {
            Some(Ok(Err(e))) => eprintln!("signoff serve: a listener failed: {e}"),
            Some(Err(e)) => eprintln!("signoff serve: a listener task failed: {e}"),
            _ => {}
        }
    }
    while let Some(r) = servers.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!("a listener ended with an error: {e}");
        }
    }
    let _ = watcher.await;
    let _ = dispatcher.await;
    drop(state);
    drop(socket_file);
    if Arc::strong_count(&queue) > 1 {
        tracing::warn!("the queue is still in use at shutdown");
    }
    drop(queue);
    println!("signoff serve: stopped");
    Ok(code)
}
