//! `/v1/tokens`: admins make, list and revoke the bearer tokens of TCP callers.
use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::Shared;
use super::auth::{Identity, Perm, new_token, parse_age};
use super::error::{ApiError, ApiResult};
use super::routes::Body;
use crate::queue::wire::{ErrorBody, IssuedToken, NewToken};
use crate::store::TokenRecord;

/// Checks a new token's name: something a person can type and read in the audit log.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a token name: 1 to 64 of a-z, A-Z, 0-9, '-', '_', '.', '@'"
        ))
    }
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    request_body = NewToken,
    responses((status = 201, description = "The token, shown this once", body = IssuedToken),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Body(b): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    me.require(Perm::Admin)?;
    check_name(&b.name)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m))?;
    let expires_at = match &b.expires {
        None => None,
        Some(e) => Some(
            crate::clock::Clock::process().now()
                + parse_age(e).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        format!("expires '{e}' is not an age like 90d, 12h, 30m or 45s"),
                    )
                })?,
        ),
    };
    let (token, hash) = new_token().map_err(|e| {
        ApiError::from(crate::queue::QueueError::Storage(format!(
            "no randomness: {e}"
        )))
    })?;
    let (name, role, by) = (b.name.clone(), b.role.as_str(), me.name.clone());
    let record = s
        .queue
        .add_token(&name, role, &hash, expires_at, &by)
        .await?;
    s.tokens.clear();
    s.feed.poke();
    tracing::info!(name = %record.name, role = %record.role, by = %me.name, "token added");
    Ok((StatusCode::CREATED, Json(IssuedToken { token, record })))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, description = "Every token (never the token itself)", body = Vec<TokenRecord>),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<Json<Vec<TokenRecord>>> {
    me.require(Perm::Admin)?;
    Ok(Json(s.queue.tokens().await?))
}

#[utoipa::path(delete, path = "/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "The token's name")),
    responses((status = 200, description = "Revoked (null)"), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn revoke(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Json<()>> {
    me.require(Perm::Admin)?;
    let by = me.name.clone();
    let r = s.queue.revoke_token(&name, &by).await;
    s.tokens.clear();
    s.feed.poke();
    r?;
    tracing::info!(%name, by = %me.name, "token revoked");
    Ok(Json(()))
}
