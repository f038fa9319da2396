//! What a response means (INTEGRATIONS.md §0): sent, a permanent failure in the API's own
//! words, retry after a wait, refresh the token then retry, or ambiguous (maybe applied:
//! look the effect up before sending again). monday and Slack report most errors with
//! HTTP 200, so the body decides, the status only second.
use std::time::Duration;

use serde_json::Value;

use super::backoff::seconds_in_message;

/// The meaning of one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Done; the response body (or the part that matters).
    Ok(Value),
    /// Will not succeed as is; the API's words and what to do.
    Permanent(String),
    /// Not applied; try again, not before `after` when given.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Not applied; the target is momentarily busy (monday's 423, a board locked by a
    /// concurrent update): try again after `after` itself, not after a backed-off wait.
    Busy { after: Duration, why: String },
    /// Gmail 401: refresh the access token once and retry once.
    AuthRefresh(String),
    /// Maybe applied: reconcile before sending again.
    Ambiguous(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Permanent(_) => "permanent",
            Outcome::Retry { .. } | Outcome::Busy { .. } => "retry",
            Outcome::AuthRefresh(_) => "refresh",
            Outcome::Ambiguous(_) => "ambiguous",
        }
    }

    /// The value of `Ok`, or this outcome as the error (for `?` after an exchange).
    pub fn into_result(self) -> Result<Value, Outcome> {
        match self {
            Outcome::Ok(v) => Ok(v),
            other => Err(other),
        }
    }

    pub fn message(&self) -> String {
        match self {
            Outcome::Ok(_) => "ok".into(),
            Outcome::Permanent(m) | Outcome::AuthRefresh(m) | Outcome::Ambiguous(m) => m.clone(),
            Outcome::Retry { why, .. } | Outcome::Busy { why, .. } => why.clone(),
        }
    }
}

/// A response as the classifiers see it.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// `Retry-After`, parsed.
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        let s = s.trim();
        if s.chars().count() > 300 {
            format!("{}…", s.chars().take(300).collect::<String>())
        } else {
            s.to_string()
        }
    }
}

fn secs(v: Option<&Value>) -> Option<Duration> {
    v.and_then(Value::as_f64)
        .and_then(super::backoff::hint_secs)
}

/// monday.com: `field` is the root field whose value means success.
pub fn monday(r: &Response, field: &str) -> Outcome {
    let json = r.json();
    // The wait, in monday's order of sources (§1.5).
    let wait = |err: Option<&Value>| -> Option<Duration> {
        r.retry_after
            .or_else(|| secs(err.and_then(|e| e.pointer("/extensions/retry_in_seconds"))))
            .or_else(|| {
                secs(err.and_then(|e| e.pointer("/extensions/error_data/retry_in_seconds")))
            })
            .or_else(|| secs(err.and_then(|e| e.pointer("/error_data/retry_in_seconds"))))
            .or_else(|| {
                err.and_then(|e| e.get("message").or_else(|| e.get("error_message")))
                    .and_then(Value::as_str)
                    .and_then(seconds_in_message)
            })
    };
    if r.status == 401 {
        // The body of a 401 is not documented: key on the status.
        return Outcome::Permanent(format!(
            "monday rejected the token (HTTP 401{}): check actions.monday.token (sent bare, no Bearer) and IP restrictions",
            body_suffix(r)
        ));
    }
    // A board locked by a concurrent update (HTTP 423, in the legacy body shape or any
    // other): monday says to retry in 1–2 s. Its own wait when it names one, else a
    // jittered 1–2 s so that writers which collided do not collide again.
    let locked = r.status == 423
        || json.as_ref().is_some_and(|j| {
            j.get("status_code").and_then(Value::as_u64) == Some(423)
                || j.pointer("/errors/0/extensions/status_code")
                    .and_then(Value::as_u64)
                    == Some(423)
        });
    if locked {
        let err = json.as_ref().and_then(|j| {
            j.pointer("/errors/0")
                .or_else(|| j.get("error_message").map(|_| j))
        });
        let msg = err
            .and_then(|e| e.get("message").or_else(|| e.get("error_message")))
            .and_then(Value::as_str)
            .unwrap_or("board locked by a concurrent update");
        return Outcome::Busy {
            after: wait(err).unwrap_or_else(lock_wait),
            why: format!("monday: {msg} (board locked, HTTP {})", r.status),
        };
    }
    if let Some(j) = &json {
        // Unified errors (≥ 2025-01), by code first.
        if let Some(err) = j
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            let code = err
                .pointer("/extensions/code")
                .and_then(Value::as_str)
                .unwrap_or("");
            let msg = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error");
            let text = if code.is_empty() {
                format!("monday: {msg}")
            } else {
                format!("monday {code}: {msg}")
            };
            return match code {
                "COMPLEXITY_BUDGET_EXHAUSTED"
                | "maxConcurrencyExceeded"
                | "FIELD_LIMIT_EXCEEDED"
                | "IP_RATE_LIMIT_EXCEEDED"
                | "RATE_LIMIT_EXCEEDED"
                | "ComplexityException" => Outcome::Retry {
                    after: wait(Some(err)),
                    why: text,
                },
                "DAILY_LIMIT_EXCEEDED" => Outcome::Permanent(format!(
                    "{text} (the daily call limit resets at 00:00 UTC; press R after that)"
                )),
                "INTERNAL_SERVER_ERROR" => Outcome::Ambiguous(text),
                "UserUnauthorizedException" | "missingRequiredPermissions" => {
                    Outcome::Permanent(format!(
                        "{text} (the token's user lacks access to the board: check actions.monday.token and board permissions)"
                    ))
                }
                _ if r.status == 429 => Outcome::Retry {
                    after: wait(Some(err)),
                    why: text,
                },
                _ if r.status >= 500 => Outcome::Ambiguous(text),
                _ => Outcome::Permanent(text),
            };
        }
        // Legacy shapes (≤ 2024-10).
        if let Some(msg) = j.get("error_message").and_then(Value::as_str) {
            let code = j.get("error_code").and_then(Value::as_str).unwrap_or("");
            let status = j
                .get("status_code")
                .and_then(Value::as_u64)
                .unwrap_or(u64::from(r.status));
            let text = format!("monday {code}: {msg}").replace("monday : ", "monday: ");
            return match status {
                429 => Outcome::Retry {
                    after: wait(Some(j)),
                    why: text,
                },
                500.. => Outcome::Ambiguous(text),
                _ if code == "ComplexityException" => Outcome::Retry {
                    after: wait(Some(j)),
                    why: text,
                },
                _ => Outcome::Permanent(text),
            };
        }
    }
    match r.status {
        200 => match json
            .as_ref()
            .and_then(|j| j.pointer(&format!("/data/{field}")))
        {
            Some(v) if !v.is_null() => Outcome::Ok(v.clone()),
            _ if json.is_none() => Outcome::Ambiguous(format!(
                "monday answered 200 with an unreadable body: {}",
                r.text()
            )),
            _ => Outcome::Permanent(format!("monday returned no {field} and no error")),
        },
        429 => Outcome::Retry {
            after: wait(None),
            why: format!("monday rate limit (HTTP 429{})", body_suffix(r)),
        },
        500.. => Outcome::Ambiguous(format!("monday HTTP {}{}", r.status, body_suffix(r))),
        s => Outcome::Permanent(format!("monday HTTP {s}{}", body_suffix(r))),
    }
}

/// The wait after a 423 without a hint: 1–2 s (INTEGRATIONS.md §1.4), jittered.
fn lock_wait() -> Duration {
    Duration::from_millis(fastrand::u64(1_000..=2_000))
}

fn body_suffix(r: &Response) -> String {
    let t = r.text();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// Slack Web API (chat.postMessage, conversations.history).
pub fn slack(r: &Response) -> Outcome {
    let json = r.json();
    let error = json.as_ref().and_then(|j| {
        (j.get("ok") == Some(&Value::Bool(false))).then(|| {
            j.get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error")
                .to_string()
        })
    });
    if r.status == 429 {
        return Outcome::Retry {
            after: r.retry_after,
            why: format!("Slack: {}", error.as_deref().unwrap_or("ratelimited")),
        };
    }
    if r.status >= 500 {
        return Outcome::Ambiguous(format!("Slack HTTP {}{}", r.status, body_suffix(r)));
    }
    match (r.status, json, error) {
        (200, Some(j), None) if j.get("ok") == Some(&Value::Bool(true)) => Outcome::Ok(j),
        (_, Some(j), Some(e)) => {
            let text = format!("Slack: {e}");
            match e.as_str() {
                "ratelimited" | "rate_limited" => Outcome::Retry {
                    after: r.retry_after,
                    why: text,
                },
                "internal_error" | "fatal_error" | "request_timeout" | "service_unavailable" => {
                    Outcome::Ambiguous(text)
                }
                "missing_scope" => Outcome::Permanent(format!(
                    "{text} (needed {}, provided {}): add the scope to the Slack app and reinstall it",
                    j.get("needed").and_then(Value::as_str).unwrap_or("?"),
                    j.get("provided").and_then(Value::as_str).unwrap_or("?")
                )),
                "not_in_channel" => Outcome::Permanent(format!(
                    "{text}: invite the bot to the channel, then press R"
                )),
                "channel_not_found" => Outcome::Permanent(format!(
                    "{text}: check the channel IDs in actions.slack (IDs like C0123ABCD, not names)"
                )),
                "not_authed" | "invalid_auth" | "account_inactive" | "token_revoked"
                | "token_expired" => {
                    Outcome::Permanent(format!("{text}: check actions.slack.token"))
                }
                _ => Outcome::Permanent(text),
            }
        }
        (200, _, _) => Outcome::Ambiguous(format!(
            "Slack answered 200 with an unreadable body{}",
            body_suffix(r)
        )),
        (s, _, _) => Outcome::Permanent(format!("Slack HTTP {s}{}", body_suffix(r))),
    }
}

/// Slack incoming webhook: plain-text answers; success is 200 `ok`.
pub fn slack_webhook(r: &Response) -> Outcome {
    let text = r.text();
    match r.status {
        200 if text == "ok" => Outcome::Ok(Value::Null),
        429 => Outcome::Retry {
            after: r.retry_after,
            why: "Slack webhook: rate limited (HTTP 429)".into(),
        },
        500.. => Outcome::Ambiguous(format!("Slack webhook HTTP {}: {text}", r.status)),
        200 => Outcome::Ambiguous(format!(
            "Slack webhook answered 200 '{text}' instead of 'ok'"
        )),
        403 | 404 | 410 => Outcome::Permanent(format!(
            "Slack webhook HTTP {}: {text} (the webhook or its channel is gone or restricted: check actions.slack.webhook_url)",
            r.status
        )),
        s => Outcome::Permanent(format!("Slack webhook HTTP {s}: {text}")),
    }
}

/// Gmail API (Google's error envelope).
pub fn gmail(r: &Response) -> Outcome {
    let json = r.json();
    if (200..300).contains(&r.status) {
        return match json {
            Some(j) => Outcome::Ok(j),
            None => Outcome::Ambiguous(format!(
                "Gmail answered {} with an unreadable body",
                r.status
            )),
        };
    }
    let err = json.as_ref().and_then(|j| j.get("error"));
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| r.text());
    let reasons: Vec<&str> = err
        .and_then(|e| e.get("errors"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.get("reason").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let details_scope = err
        .and_then(|e| e.get("details"))
        .is_some_and(|d| d.to_string().contains("ACCESS_TOKEN_SCOPE_INSUFFICIENT"));
    let reason = reasons.first().copied().unwrap_or("");
    let text = if reason.is_empty() {
        format!("Gmail HTTP {}: {message}", r.status)
    } else {
        format!("Gmail HTTP {} {reason}: {message}", r.status)
    };
    match r.status {
        401 => Outcome::AuthRefresh(text),
        403 if reasons
            .iter()
            .any(|r| *r == "userRateLimitExceeded" || *r == "rateLimitExceeded") =>
        {
            Outcome::Retry {
                after: r.retry_after,
                why: text,
            }
        }
        403 if details_scope || reason == "insufficientPermissions" => Outcome::Permanent(format!(
            "{text}: the token lacks a compose scope; re-authorize with https://www.googleapis.com/auth/gmail.compose"
        )),
        429 => Outcome::Retry {
            after: r.retry_after,
            why: text,
        },
        500.. => Outcome::Ambiguous(text),
        _ => Outcome::Permanent(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(status: u16, body: Value) -> Response {
        Response {
            status,
            retry_after: None,
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn monday_errors_arrive_with_http_200() {
        let r = resp(
            200,
            json!({"data": {"create_item": null}, "errors": [{"message": "label does not exist",
            "extensions": {"code": "ColumnValueException", "status_code": 200}}], "account_id": 1}),
        );
        assert!(
            matches!(monday(&r, "create_item"), Outcome::Permanent(m) if m.contains("ColumnValueException"))
        );
        let r = resp(
            200,
            json!({"errors": [{"message": "Complexity budget exhausted",
            "extensions": {"code": "COMPLEXITY_BUDGET_EXHAUSTED", "retry_in_seconds": 7}}]}),
        );
        assert_eq!(
            monday(&r, "x"),
            Outcome::Retry {
                after: Some(Duration::from_secs(7)),
                why: "monday COMPLEXITY_BUDGET_EXHAUSTED: Complexity budget exhausted".into()
            }
        );
        let r = resp(
            200,
            json!({"error_code": "ComplexityException", "status_code": 429,
            "error_message": "Complexity budget exhausted, reset in 3 seconds", "error_data": {}}),
        );
        assert!(
            matches!(monday(&r, "x"), Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(3))
        );
        let r = resp(
            500,
            json!({"error_message": "Internal server error", "status_code": 500}),
        );
        assert!(matches!(monday(&r, "x"), Outcome::Ambiguous(_)));
        let r = resp(
            200,
            json!({"errors": [{"message": "Daily limit", "extensions": {"code": "DAILY_LIMIT_EXCEEDED"}}]}),
        );
        assert!(matches!(monday(&r, "x"), Outcome::Permanent(m) if m.contains("00:00 UTC")));
        let r = resp(
            200,
            json!({"data": {"create_item": {"id": "9876543210"}}, "account_id": 1}),
        );
        assert_eq!(
            monday(&r, "create_item"),
            Outcome::Ok(json!({"id": "9876543210"}))
        );
    }

    #[test]
    fn monday_423_is_retried_in_one_to_two_seconds_or_at_its_retry_after() {
        let locked =
            json!({"error_message": "Board is locked, please try again", "status_code": 423});
        for _ in 0..100 {
            match monday(&resp(423, locked.clone()), "create_item") {
                Outcome::Busy { after, why } => {
                    assert!(
                        (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&after),
                        "{after:?}"
                    );
                    assert_eq!(
                        why,
                        "monday: Board is locked, please try again (board locked, HTTP 423)"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let mut r = resp(423, locked);
        r.retry_after = Some(Duration::from_secs(5));
        assert!(
            matches!(monday(&r, "create_item"), Outcome::Busy { after, .. } if after == Duration::from_secs(5))
        );
        // A bare 423 (no JSON), and the lock inside the unified shape.
        let bare = Response {
            status: 423,
            retry_after: None,
            body: b"Locked".to_vec(),
        };
        assert!(
            matches!(monday(&bare, "x"), Outcome::Busy { after, .. } if after >= Duration::from_secs(1) && after <= Duration::from_secs(2))
        );
        let unified = resp(
            200,
            json!({"data": {"create_item": null}, "errors": [{"message": "Board is locked",
            "extensions": {"code": "ResourceLocked", "status_code": 423}}], "account_id": 1}),
        );
        assert!(matches!(
            monday(&unified, "create_item"),
            Outcome::Busy { .. }
        ));
        assert_eq!(monday(&bare, "x").label(), "retry");
    }

    #[test]
    fn slack_ok_false_is_classified_by_code() {
        assert!(matches!(
            slack(&resp(
                200,
                json!({"ok": false, "error": "channel_not_found"})
            )),
            Outcome::Permanent(_)
        ));
        assert!(matches!(
            slack(&resp(200, json!({"ok": false, "error": "internal_error"}))),
            Outcome::Ambiguous(_)
        ));
        assert!(matches!(
            slack(&resp(200, json!({"ok": false, "error": "rate_limited"}))),
            Outcome::Retry { .. }
        ));
        let mut r = resp(429, json!({"ok": false, "error": "ratelimited"}));
        r.retry_after = Some(Duration::from_secs(30));
        assert!(matches!(slack(&r), Outcome::Retry { after: Some(d), .. } if d.as_secs() == 30));
    }

    #[test]
    fn gmail_403_depends_on_the_reason() {
        let env = |code: u16, reason: &str| {
            resp(
                code,
                json!({"error": {"code": code, "message": "m",
            "errors": [{"reason": reason, "domain": "usageLimits"}]}}),
            )
        };
        assert!(matches!(
            gmail(&env(403, "userRateLimitExceeded")),
            Outcome::Retry { .. }
        ));
        assert!(
            matches!(gmail(&env(403, "insufficientPermissions")), Outcome::Permanent(m) if m.contains("re-authorize"))
        );
        assert!(matches!(
            gmail(&env(403, "dailyLimitExceeded")),
            Outcome::Permanent(_)
        ));
        assert!(matches!(
            gmail(&env(401, "authError")),
            Outcome::AuthRefresh(_)
        ));
        assert!(matches!(
            gmail(&env(503, "backendError")),
            Outcome::Ambiguous(_)
        ));
    }
}
