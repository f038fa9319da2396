//! Error answers: `{"code": "...", "message": "...", "detail": {...}}` with a stable code
//! and the matching status, for queue errors, the server's own refusals, and whatever
//! axum itself rejects (a bad path, a wrong method), so a client meets one shape only.
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::queue::QueueError;
use crate::queue::wire::ErrorBody;

/// An error answer (boxed: handlers return it on their error path only).
#[derive(Debug)]
pub struct ApiError(Box<ErrorParts>);

/// What an error answer says.
#[derive(Debug)]
pub struct ErrorParts {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorParts;
    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorParts {
        &mut self.0
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError(Box::new(ErrorParts {
            status,
            code: code.to_string(),
            message: message.into(),
            detail: None,
            retry_after: None,
        }))
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than this server takes ({limit} bytes)"),
        )
    }
}

/// The status of a queue error's code. A code not listed (a variant added later) is a
/// 500 until it is.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "not_found" => StatusCode::NOT_FOUND,
        "lease_lost" | "held_by" | "already_decided" | "cannot_undo" | "stale_revision" => {
            StatusCode::CONFLICT
        }
        "invalid" => StatusCode::UNPROCESSABLE_ENTITY,
        "read_only" => StatusCode::FORBIDDEN,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "refused" => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> ApiError {
        let message = e.to_string();
        // The code is the variant's serde tag: every variant has one, new ones included.
        let (code, detail) = match serde_json::to_value(&e) {
            Ok(serde_json::Value::Object(mut m)) => (
                m.remove("code")
                    .and_then(|c| c.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "storage".into()),
                m.remove("detail"),
            ),
            _ => ("storage".to_string(), None),
        };
        let status = status_of(&code);
        if status.is_server_error() {
            tracing::error!(code, "queue error: {message}");
        }
        ApiError(Box::new(ErrorParts {
            status,
            code,
            message,
            detail,
            retry_after: None,
        }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = *self.0;
        let body = ErrorBody {
            code: e.code,
            message: e.message,
            detail: e.detail,
        };
        let mut resp = (e.status, axum::Json(body)).into_response();
        if let Some(s) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The code of a status that axum (or a layer) answered without one of ours.
fn code_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "no_route",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => "timeout",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Rewrites any error answer that is not JSON (axum's own rejections: a path segment
/// that is not a number, an unknown route, a wrong method) into the error shape.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        match status {
            StatusCode::NOT_FOUND => "no such route; GET /openapi.json lists them".to_string(),
            StatusCode::METHOD_NOT_ALLOWED => {
                "this route does not take that method; GET /openapi.json lists them".to_string()
            }
            s => s.canonical_reason().unwrap_or("error").to_string(),
        }
    } else {
        text
    };
    let mut out = ApiError::new(status, code_of_status(status), message).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Reads a body of at most `limit` bytes: 413 past it.
pub async fn read_body(body: Body, limit: usize) -> ApiResult<axum::body::Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return ApiError::too_large(limit);
            }
            source = s.source();
        }
        ApiError::bad_request(format!("the request body could not be read: {e}"))
    })
}

/// Parses a JSON body, naming the line and column of what is wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof => "malformed JSON",
            Category::Data => "the JSON does not fit this route",
            Category::Io => "the body could not be read",
        };
        // serde_json's message already ends "at line L column C".
        ApiError::bad_request(format!("{what}: {e}"))
    })
}
