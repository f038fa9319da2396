//! Dispatch throughput against the local fakes with 10 % injected faults (429 with
//! Retry-After: 0, 503, and "apply the write, then drop the connection"), checking that no
//! effect is duplicated. Run: `cargo bench --bench dispatch` (BENCHMARKS.md "## Dispatch").
//!
//! Setup (ingest + approval of the items) is not timed; the timed part is the dispatcher
//! draining the outbox: claim with leases, send, classify, reconcile, record + audit, on a
//! real SQLite file with `synchronous=FULL`. Client-side rate limits are off (the real
//! APIs allow far less than this; the bench measures the dispatcher, not the quotas).
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use serde_json::json;
use support::*;

fn main() {
    let items: usize = std::env::var("DISPATCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let runs: usize = std::env::var("DISPATCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "dispatch: {items} approved items x 3 actions (monday + Slack + Gmail), 10% faults, {runs} runs"
    );
    for run in 1..=runs {
        rt.block_on(one_run(run, items));
    }
}

async fn one_run(run: usize, items: usize) {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.batch = 256;
    cfg.dispatch.concurrency = 64;
    cfg.dispatch.backoff_base_ms = 1;
    cfg.dispatch.backoff_cap_ms = 5;
    cfg.dispatch.max_attempts = 50;
    cfg.monday.requests_per_minute = 0;
    cfg.slack.per_channel_per_second = 0.0;
    cfg.gmail.per_second = 0.0;
    let (_dir, db) = temp_db();
    let payloads: Vec<_> = (0..items)
        .map(|i| {
            payload(
                &format!("bench-{i}"),
                "sales_lead",
                "high",
                "Ada <ada@example.com>",
                "Pricing",
                "Hello Ada,\nprices attached.",
            )
        })
        .collect();
    let setup = Instant::now();
    let store = tokio::task::block_in_place(|| approve_all(&db, &cfg, &payloads));
    let setup = setup.elapsed();
    f.with(|w| {
        w.random_faults = Some((
            std::env::var("DISPATCH_FAULT_RATE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.10),
            vec![
                Fault::json_retry(429, "0", json!({"ok": false, "error": "ratelimited"})),
                Fault::html(503, "<html>Service Unavailable</html>"),
                Fault::ApplyThenDrop,
            ],
        ))
    });
    let started = Instant::now();
    let mut summary = signoff::actions::DispatchSummary::default();
    loop {
        let s = dispatch_once(&db, &cfg).await;
        summary.attempts += s.attempts;
        summary.sent += s.sent;
        summary.reconciled += s.reconciled;
        summary.retrying += s.retrying;
        summary.dead += s.dead;
        let open: i64 = store
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE status NOT IN ('sent', 'dead')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if open == 0 {
            break;
        }
        make_due(&store);
    }
    let elapsed = started.elapsed();
    let actions = items * 3;
    let (found, notes, posts, drafts, requests, injected) = f.with(|w| {
        (
            w.monday.items.len(),
            w.monday.updates.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len(),
            w.log.len(),
            w.injected,
        )
    });
    assert_eq!(summary.dead, 0, "{summary}");
    assert_eq!(
        (found, notes, posts, drafts),
        (items, items, items, items),
        "an effect was duplicated or lost"
    );
    println!(
        "run {run}: {actions} actions in {:.3} s = {:.0} actions/s; {} attempts ({} retries, {} found already done after a dropped answer); {} HTTP requests, {} faults injected; 0 duplicates; setup {:.1} s",
        elapsed.as_secs_f64(),
        actions as f64 / elapsed.as_secs_f64(),
        summary.attempts,
        summary.retrying,
        summary.reconciled,
        requests,
        injected,
        setup.as_secs_f64()
    );
}
