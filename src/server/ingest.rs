//! `POST /v1/ingest`: the upstream AI service's webhook. The body is what `signoff ingest`
//! reads (one object, an array or JSON Lines) and goes through the same ingester, so the
//! totals and per-line problems match the command's. The caller is a signed request
//! (HMAC, checked by the auth layer) or a token or socket user with the ingest role.
//!
//! `Idempotency-Key`: the first answer to a key is kept with a digest of its body; the
//! same key with the same body gets that answer again, with another body a 422.
use axum::Extension;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Shared;
use super::auth::{Identity, Perm, hex};
use super::error::{ApiError, ApiResult, read_body};
use crate::queue::wire::{IngestAnswer, IngestProblem};
use crate::store::IdempotentAnswer;

/// The longest `Idempotency-Key` kept.
const MAX_KEY: usize = 256;

#[utoipa::path(post, path = "/v1/ingest", tag = "ingest",
    request_body(content = String, content_type = "application/json",
        description = "Ingest schema v1: one object, an array, or JSON Lines"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer to the same key and body"),
        ("X-Signoff-Timestamp" = Option<String>, Header, description = "Unix seconds, signed with the body"),
        ("X-Signoff-Signature" = Option<String>, Header, description = "sha256=<hex HMAC-SHA256 of `timestamp.body` with server.webhook_secret>"),
    ),
    responses(
        (status = 200, description = "Totals and each entry not taken (those are quarantined)", body = IngestAnswer),
        (status = 401, body = crate::queue::wire::ErrorBody),
        (status = 413, body = crate::queue::wire::ErrorBody),
        (status = 422, description = "idempotency_key_reused: the key was used with another body", body = crate::queue::wire::ErrorBody),
    ))]
pub async fn ingest(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Response> {
    me.require(Perm::Ingest)?;
    let body = read_body(req.into_body(), s.max_ingest).await?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= MAX_KEY)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"
                    ))
                })?;
            Some(k.to_string())
        }
    };
    let Some(key) = key else {
        let answer = run(&s, &me, body.to_vec()).await?;
        return Ok(Json(answer).into_response());
    };
    let digest = hex(&Sha256::digest(&body));
    // One keyed ingest at a time: a retry racing its original waits and replays it.
    let _one = s.ingest_lock.lock().await;
    let caller = format!("{}:{}", me.via.as_str(), me.name);
    let found = s.queue.idempotent_answer(&caller, &key).await?;
    if let Some(first) = found {
        if first.body_sha256 != digest {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!(
                    "Idempotency-Key '{key}' was used before with another body; use a new key for new content"
                ),
            ));
        }
        let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
        let mut resp = (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            first.answer,
        )
            .into_response();
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(resp);
    }
    let answer = run(&s, &me, body.to_vec()).await?;
    let text = serde_json::to_string(&answer).unwrap_or_default();
    let stored = IdempotentAnswer {
        body_sha256: digest,
        status: 200,
        answer: text.clone(),
    };
    s.queue
        .store_idempotent_answer(&caller, &key, &stored)
        .await?;
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

async fn run(s: &Shared, me: &Identity, body: Vec<u8>) -> ApiResult<IngestAnswer> {
    let actor = match me.via {
        super::auth::Via::Webhook => "webhook".to_string(),
        _ => me.name.clone(),
    };
    let result = s.queue.ingest("request", body, &actor).await;
    s.feed.poke();
    let (report, problems) = result?;
    tracing::info!(%report, by = %actor, "ingest over HTTP");
    Ok(IngestAnswer {
        ingested: report.ingested,
        duplicates: report.duplicates,
        revised: report.revised,
        rejected: report.rejected,
        conflicts: report.conflicts,
        summary: report.to_string(),
        problems: problems
            .into_iter()
            .map(|p| IngestProblem {
                line: p.line,
                reason: p.reason,
            })
            .collect(),
    })
}
