//! The `/v1` routes: one per [`Queue`] operation, each a thin call into the server's
//! [`LocalQueue`] with the caller's authenticated name. Types travel as they are.
use axum::Extension;
use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};

use super::Shared;
use super::auth::{Identity, Perm};
use super::error::{ApiError, ApiResult, parse_json, read_body};
use crate::queue::wire::{
    ChangeToken, DecideBody, DigestBody, EditBody, ErrorBody, FenceBody, KillSwitch, OutcomeBody,
    PreviewBody, Whoami,
};
use crate::queue::{
    ActionPreview, AuditEntry, Claim, Counts, ItemDetail, ListQuery, Page, Receipt,
};

/// A JSON body of at most `server.max_body_bytes`: 413 past it, 400 naming the line and
/// column when it is not JSON or not the shape the route takes.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<Shared> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, s: &Shared) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req.into_body(), s.max_body).await?;
        parse_json(&bytes).map(Body)
    }
}

/// The claim a request acts under: the item in its path, the fence in its body, the
/// caller's own name (never one from the body).
fn claim_of(me: &Identity, id: i64, fence: i64) -> Claim {
    Claim {
        id,
        reviewer: me.name.clone(),
        fence,
        lease_expires: 0,
    }
}

#[utoipa::path(get, path = "/healthz", tag = "server",
    responses((status = 200, description = "The server is up (no authentication)", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/openapi.json", tag = "server",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn openapi(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<serde_json::Value>> {
    me.require(Perm::Read)
        .or_else(|_| me.require(Perm::Ingest))?;
    Ok(Json(s.openapi.get().cloned().unwrap_or_default()))
}

#[utoipa::path(get, path = "/v1/whoami", tag = "server",
    responses((status = 200, body = Whoami), (status = 401, body = ErrorBody)))]
pub async fn whoami(State(s): State<Shared>, Extension(me): Extension<Identity>) -> Json<Whoami> {
    Json(Whoami {
        name: me.name.clone(),
        role: me.role,
        via: me.via.as_str().to_string(),
        database: s.db.clone(),
    })
}

#[utoipa::path(get, path = "/v1/policy", tag = "server",
    responses((status = 200, description = "The review policy the server enforces (the config's [policy])", body = Object)))]
pub async fn policy(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<serde_json::Value>> {
    me.require(Perm::Read)?;
    Ok(Json(
        serde_json::to_value(s.policy.as_ref()).unwrap_or_default(),
    ))
}

#[utoipa::path(post, path = "/v1/items/search", tag = "queue",
    request_body = ListQuery,
    responses((status = 200, body = Page), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Body(q): Body<ListQuery>,
) -> ApiResult<Json<Page>> {
    me.require(Perm::Read)?;
    Ok(Json(s.queue.list(&q).await?))
}

#[utoipa::path(get, path = "/v1/counts", tag = "queue", responses((status = 200, body = Counts)))]
pub async fn counts(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<Counts>> {
    me.require(Perm::Read)?;
    Ok(Json(s.queue.counts().await?))
}

#[utoipa::path(get, path = "/v1/items/{id}", tag = "queue",
    params(("id" = i64, Path, description = "The item")),
    responses((status = 200, body = ItemDetail), (status = 404, body = ErrorBody)))]
pub async fn get_item(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ItemDetail>> {
    me.require(Perm::Read)?;
    Ok(Json(s.queue.get(id).await?))
}

#[utoipa::path(post, path = "/v1/claims/next", tag = "review",
    responses((status = 200, description = "The claim, or null when nothing is pending", body = Option<Claim>),
        (status = 403, body = ErrorBody)))]
pub async fn claim_next(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<Option<Claim>>> {
    me.require(Perm::Review)?;
    let c = s.queue.claim_next(&me.name).await;
    s.feed.poke();
    Ok(Json(c?))
}

#[utoipa::path(post, path = "/v1/items/{id}/claim", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    responses((status = 200, body = Claim), (status = 409, description = "held_by, already_decided", body = ErrorBody)))]
pub async fn claim(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Claim>> {
    me.require(Perm::Review)?;
    let c = s.queue.claim(id, &me.name).await;
    s.feed.poke();
    Ok(Json(c?))
}

#[utoipa::path(post, path = "/v1/items/{id}/heartbeat", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    request_body = FenceBody,
    responses((status = 200, body = Claim), (status = 409, description = "lease_lost", body = ErrorBody)))]
pub async fn heartbeat(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
    Body(b): Body<FenceBody>,
) -> ApiResult<Json<Claim>> {
    me.require(Perm::Review)?;
    Ok(Json(s.queue.heartbeat(&claim_of(&me, id, b.fence)).await?))
}

#[utoipa::path(post, path = "/v1/items/{id}/release", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    request_body = FenceBody,
    responses((status = 200, description = "Released (null)"), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
    Body(b): Body<FenceBody>,
) -> ApiResult<Json<()>> {
    me.require(Perm::Review)?;
    let r = s.queue.release(&claim_of(&me, id, b.fence)).await;
    s.feed.poke();
    Ok(Json(r?))
}

#[utoipa::path(post, path = "/v1/items/{id}/edit", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    request_body = EditBody,
    responses((status = 200, description = "Saved (null)"), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn edit(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
    Body(b): Body<EditBody>,
) -> ApiResult<Json<()>> {
    me.require(Perm::Review)?;
    let r = s
        .queue
        .edit(&claim_of(&me, id, b.fence), b.field, b.value)
        .await;
    s.feed.poke();
    Ok(Json(r?))
}

#[utoipa::path(post, path = "/v1/items/{id}/decide", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    request_body = DecideBody,
    responses((status = 200, body = Receipt),
        (status = 409, description = "lease_lost, already_decided, stale_revision", body = ErrorBody),
        (status = 422, description = "invalid (the policy refuses it)", body = ErrorBody)))]
pub async fn decide(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
    Body(b): Body<DecideBody>,
) -> ApiResult<Json<Receipt>> {
    me.require(Perm::Review)?;
    let r = s
        .queue
        .decide(&claim_of(&me, id, b.fence), &b.decision)
        .await;
    s.feed.poke();
    Ok(Json(r?))
}

#[utoipa::path(post, path = "/v1/items/{id}/undo", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    responses((status = 200, description = "The item, claimed by the caller again", body = Claim),
        (status = 409, description = "cannot_undo", body = ErrorBody)))]
pub async fn undo(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Claim>> {
    me.require(Perm::Review)?;
    let r = s.queue.undo(id, &me.name).await;
    s.feed.poke();
    Ok(Json(r?))
}

#[utoipa::path(get, path = "/v1/items/{id}/timeline", tag = "queue",
    params(("id" = i64, Path, description = "The item")),
    responses((status = 200, body = Vec<AuditEntry>)))]
pub async fn timeline(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    me.require(Perm::Read)?;
    Ok(Json(s.queue.timeline(id).await?))
}

#[utoipa::path(get, path = "/v1/change_token", tag = "queue",
    responses((status = 200, body = ChangeToken)))]
pub async fn change_token(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<ChangeToken>> {
    me.require(Perm::Read)?;
    let t = s.queue.change_token().await?;
    Ok(Json(ChangeToken {
        token: t.to_string(),
    }))
}

#[utoipa::path(post, path = "/v1/items/{id}/preview", tag = "queue",
    params(("id" = i64, Path, description = "The item")),
    request_body = PreviewBody,
    responses((status = 200, description = "Each action as the decision would send it", body = Vec<ActionPreview>)))]
pub async fn preview(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
    Body(b): Body<PreviewBody>,
) -> ApiResult<Json<Vec<ActionPreview>>> {
    me.require(Perm::Read)?;
    Ok(Json(
        s.queue
            .preview(id, &b.kind, &me.name, b.note.as_deref())
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/items/{id}/preview_rendered", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    request_body = DigestBody,
    responses((status = 200, description = "Recorded (null)")))]
pub async fn preview_rendered(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
    Body(b): Body<DigestBody>,
) -> ApiResult<Json<()>> {
    me.require(Perm::Review)?;
    let r = s.queue.preview_rendered(id, &me.name, &b.digest).await;
    s.feed.poke();
    Ok(Json(r?))
}

#[utoipa::path(post, path = "/v1/items/{id}/outcome", tag = "review",
    params(("id" = i64, Path, description = "The item")),
    request_body = OutcomeBody,
    responses((status = 200, description = "Recorded (null)"), (status = 422, body = ErrorBody)))]
pub async fn outcome(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
    Body(b): Body<OutcomeBody>,
) -> ApiResult<Json<()>> {
    me.require(Perm::Review)?;
    let r = s
        .queue
        .record_outcome(id, &b.value, b.reason.as_deref(), &me.name)
        .await;
    s.feed.poke();
    Ok(Json(r?))
}

#[utoipa::path(get, path = "/v1/kill_switch", tag = "actions",
    responses((status = 200, body = KillSwitch)))]
pub async fn kill_switch(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<KillSwitch>> {
    me.require(Perm::Read)?;
    Ok(Json(KillSwitch {
        paused: s.queue.actions_paused().await?,
    }))
}

#[utoipa::path(put, path = "/v1/kill_switch", tag = "actions",
    request_body = KillSwitch,
    responses((status = 200, body = KillSwitch), (status = 403, body = ErrorBody)))]
pub async fn set_kill_switch(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Body(b): Body<KillSwitch>,
) -> ApiResult<Json<KillSwitch>> {
    me.require(Perm::Admin)?;
    let r = s.queue.set_actions_paused(b.paused, &me.name).await;
    s.feed.poke();
    r?;
    Ok(Json(b))
}

#[utoipa::path(post, path = "/v1/actions/{id}/resend", tag = "actions",
    params(("id" = i64, Path, description = "The outbox entry (a dead letter)")),
    responses((status = 200, description = "Queued again (null)"), (status = 403, body = ErrorBody)))]
pub async fn resend(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
) -> ApiResult<Json<()>> {
    me.require(Perm::Admin)?;
    let r = s.queue.resend(id, &me.name).await;
    s.feed.poke();
    Ok(Json(r?))
}

#[utoipa::path(get, path = "/v1/volume", tag = "stats",
    responses((status = 200, body = crate::stats::Volume)))]
pub async fn volume(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<crate::stats::Volume>> {
    me.require(Perm::Read)?;
    Ok(Json(s.queue.volume().await?))
}

/// `?since=` for the stats.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct Since {
    /// Milliseconds since the Unix epoch; all time when absent.
    pub since: Option<i64>,
}

#[utoipa::path(get, path = "/v1/stats", tag = "stats",
    params(Since),
    responses((status = 200, body = crate::stats::Stats)))]
pub async fn stats(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Query(q): Query<Since>,
) -> ApiResult<Json<crate::stats::Stats>> {
    me.require(Perm::Read)?;
    Ok(Json(s.queue.stats(q.since).await?))
}
