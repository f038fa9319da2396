//! `GET /metrics`: Prometheus text exposition of the server's requests, event streams,
//! the queue's depth and age, and the outbox by status. Labels are route templates
//! (`/v1/items/{id}`), never ids or callers, so the series stay few.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::Shared;
use super::auth::{Identity, Perm};
use super::error::ApiResult;

/// Requests by (method, route template, status): (answers, seconds spent).
type RequestCounts = BTreeMap<(String, String, u16), (u64, f64)>;

/// What the server counts as it runs.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<RequestCounts>,
    /// Event streams open now.
    pub streams: AtomicI64,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            let e = m
                .entry((method.to_string(), route.to_string(), status))
                .or_insert((0, 0.0));
            e.0 += 1;
            e.1 += seconds;
        }
    }
}

/// Counts an open event stream for as long as it lives.
pub struct StreamGuard(pub std::sync::Arc<super::AppState>);

impl StreamGuard {
    pub fn new(s: Shared) -> StreamGuard {
        s.metrics.streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(s)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.metrics.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, description = "Prometheus text format (0.0.4)", content_type = "text/plain", body = String),
        (status = 401, body = crate::queue::wire::ErrorBody)))]
pub async fn metrics(
    State(s): State<Shared>,
    Extension(me): Extension<Identity>,
) -> ApiResult<impl IntoResponse> {
    me.require(Perm::Read)?;
    let counts = s.queue.counts().await?;
    let outbox = s.queue.outbox_totals().await?;
    let now = crate::clock::Clock::process().now();
    let mut out = String::new();
    head(
        &mut out,
        "signoff_up",
        "gauge",
        "1 while the server answers.",
    );
    out.push_str("signoff_up 1\n");
    head(
        &mut out,
        "signoff_start_time_seconds",
        "gauge",
        "When the server started (Unix time).",
    );
    let _ = writeln!(out, "signoff_start_time_seconds {}", s.started_at / 1000);

    head(
        &mut out,
        "signoff_http_requests_total",
        "counter",
        "Requests answered, by route template and status.",
    );
    let mut durations = String::new();
    if let Ok(m) = s.metrics.requests.lock() {
        for ((method, route, status), (n, secs)) in m.iter() {
            let l = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                label(method),
                label(route)
            );
            let _ = writeln!(out, "signoff_http_requests_total{{{l}}} {n}");
            let _ = writeln!(
                durations,
                "signoff_http_request_duration_seconds_sum{{{l}}} {secs}"
            );
            let _ = writeln!(
                durations,
                "signoff_http_request_duration_seconds_count{{{l}}} {n}"
            );
        }
    }
    head(
        &mut out,
        "signoff_http_request_duration_seconds",
        "summary",
        "Time to answer, by route template and status.",
    );
    out.push_str(&durations);

    head(
        &mut out,
        "signoff_event_streams",
        "gauge",
        "Open /v1/events streams.",
    );
    let _ = writeln!(
        out,
        "signoff_event_streams {}",
        s.metrics.streams.load(Ordering::Relaxed)
    );
    head(&mut out, "signoff_queue_items", "gauge", "Items by state.");
    for (state, n) in [
        ("pending", counts.pending),
        ("in_review", counts.in_review),
        ("approved", counts.approved),
        ("rejected", counts.rejected),
        ("escalated", counts.escalated),
    ] {
        let _ = writeln!(out, "signoff_queue_items{{state=\"{state}\"}} {n}");
    }
    head(
        &mut out,
        "signoff_queue_oldest_open_age_seconds",
        "gauge",
        "Age of the oldest undecided item (0 when none).",
    );
    let age = counts.oldest_open.map_or(0, |t| (now - t).max(0) / 1000);
    let _ = writeln!(out, "signoff_queue_oldest_open_age_seconds {age}");
    head(
        &mut out,
        "signoff_queue_sla_breaches",
        "gauge",
        "Undecided items past their priority's SLA.",
    );
    let _ = writeln!(out, "signoff_queue_sla_breaches {}", counts.sla_breaches);
    head(
        &mut out,
        "signoff_actions_paused",
        "gauge",
        "1 while the actions kill switch is on.",
    );
    let _ = writeln!(
        out,
        "signoff_actions_paused {}",
        u8::from(counts.actions_paused)
    );
    head(
        &mut out,
        "signoff_outbox_actions",
        "gauge",
        "Outbound actions by status.",
    );
    for (status, n) in outbox {
        let _ = writeln!(
            out,
            "signoff_outbox_actions{{status=\"{}\"}} {n}",
            label(&status)
        );
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}
