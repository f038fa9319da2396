//! Faults against the fakes (Gmail's own are in actions_gmail.rs): every one ends in the
//! right state, never before the server's wait, and never with a duplicated effect
//! (exactly one item, post and draft).
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signoff::clock::Clock;
use support::*;

fn lead(ext: &str) -> Value {
    payload(
        ext,
        "sales_lead",
        "high",
        "Ada <ada@example.com>",
        "Pricing",
        "Hello Ada",
    )
}

/// (items, notes, Slack posts, drafts) in the fakes.
fn counts(f: &Fakes) -> (usize, usize, usize, usize) {
    f.with(|w| {
        (
            w.monday.items.len(),
            w.monday.updates.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len(),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_wait_at_least_retry_after_then_succeed_once() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.fault("monday:create_item", Fault::json_retry(429, "7", json!({"errors": [{"message": "Complexity budget exhausted",
        "extensions": {"code": "COMPLEXITY_BUDGET_EXHAUSTED", "retry_in_seconds": 7}}], "account_id": 1})));
    f.fault(
        "slack:chat.postMessage",
        Fault::json_retry(429, "30", json!({"ok": false, "error": "ratelimited"})),
    );
    f.fault(
        "gmail:drafts.create",
        Fault::json(
            429,
            json!({"error": {"code": 429, "message": "Too many requests",
        "errors": [{"reason": "rateLimitExceeded", "domain": "usageLimits"}]}}),
        ),
    );
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[lead("rl")]);
    let s = dispatch_once(&db, &cfg).await;
    assert_eq!(s.retrying, 3, "{s}");
    assert!(
        retry_gap(&store, "crm") >= 7_000,
        "monday retry before Retry-After"
    );
    assert!(
        retry_gap(&store, "slack") >= 30_000,
        "Slack retry before Retry-After"
    );
    let (st, attempts, err, _) = row(&store, "slack");
    assert_eq!((st.as_str(), attempts), ("retrying", 1));
    assert_eq!(err.as_deref(), Some("Slack: ratelimited"));
    // Not due yet: a run now sends nothing.
    assert_eq!(dispatch_once(&db, &cfg).await.attempts, 0);
    dispatch_settled(&db, &store, &cfg, 3).await;
    for (a, st, attempts, _, _) in rows(&store) {
        assert_eq!((st.as_str(), attempts), ("sent", 2), "{a}");
    }
    assert_eq!(counts(&f), (1, 1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monday_423_5xx_and_concurrency_limits_are_retried() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.fault(
        "monday:items_page_by_column_values",
        support::monday::locked(None),
    );
    let (_d, db) = temp_db();
    let mut only_crm = lead("m1");
    only_crm["ai"]["intent"] = json!("other");
    let store = approve_all(&db, &cfg, &[only_crm]);
    dispatch_once(&db, &cfg).await;
    assert_eq!(row(&store, "crm").0, "retrying");
    let gap = retry_gap(&store, "crm");
    assert!(
        (1_000..3_000).contains(&gap),
        "a 423 waits 1-2 s, not the backoff: {gap} ms"
    );
    f.fault(
        "monday:create_item",
        Fault::json(
            500,
            json!({"error_message": "Internal server error", "status_code": 500}),
        ),
    );
    make_due(&store);
    dispatch_once(&db, &cfg).await;
    let (st, _, err, resp) = row(&store, "crm");
    assert_eq!(st, "retrying");
    assert!(err.unwrap().contains("Internal server error"));
    assert_eq!(resp["maybe_sent"], true, "a 5xx may have been applied");
    f.fault("monday:create_item", Fault::json(429, json!({"errors": [{"message": "Max concurrency exceeded",
        "extensions": {"code": "maxConcurrencyExceeded", "retry_in_seconds": 3}}], "account_id": 1})));
    make_due(&store);
    dispatch_once(&db, &cfg).await;
    assert!(retry_gap(&store, "crm") >= 3_000);
    dispatch_settled(&db, &store, &cfg, 3).await;
    assert_eq!(row(&store, "crm").0, "sent");
    assert_eq!(f.with(|w| w.monday.items.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_limit_and_bad_values_are_dead_letters_in_mondays_words() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    f.fault(
        "monday:items_page_by_column_values",
        Fault::json(
            200,
            json!({"errors": [{"message": "Daily limit exceeded",
        "extensions": {"code": "DAILY_LIMIT_EXCEEDED"}}], "account_id": 1}),
        ),
    );
    let (_d, db) = temp_db();
    let mut a = lead("d1");
    a["ai"]["intent"] = json!("other");
    let store = approve_all(&db, &cfg, &[a]);
    dispatch_once(&db, &cfg).await;
    let (st, attempts, err, _) = row(&store, "crm");
    assert_eq!(
        (st.as_str(), attempts),
        ("dead", 1),
        "DAILY_LIMIT is not retried today"
    );
    assert!(err.unwrap().contains("DAILY_LIMIT_EXCEEDED"));

    // A label the board doesn't have: HTTP 200 + ColumnValueException.
    cfg.monday.columns.insert(
        "tags".into(),
        signoff::actions::ColumnMap {
            kind: signoff::actions::ColumnType::Dropdown,
            value: "Cold".into(),
        },
    );
    let (_d2, db2) = temp_db();
    let mut b = lead("d2");
    b["ai"]["intent"] = json!("other");
    let store2 = approve_all(&db2, &cfg, &[b]);
    dispatch_once(&db2, &cfg).await;
    let (st, _, err, _) = row(&store2, "crm");
    assert_eq!(st, "dead");
    assert!(
        err.as_deref()
            .unwrap()
            .contains("ColumnValueException: invalid value - dropdown label does not exist: Cold"),
        "{err:?}"
    );
    assert_eq!(f.with(|w| w.monday.items.len()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_items_with_the_key_are_a_conflict_for_a_person() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.with(|w| {
        for id in ["1", "2"] {
            let values = serde_json::from_value(json!({"text_ext_id": "web:dup"})).unwrap();
            w.monday.items.push(support::monday::Item {
                id: id.into(),
                name: "dup".into(),
                values,
            });
        }
    });
    let (_d, db) = temp_db();
    let mut a = lead("dup");
    a["ai"]["intent"] = json!("other");
    let store = approve_all(&db, &cfg, &[a]);
    dispatch_once(&db, &cfg).await;
    let (st, _, err, resp) = row(&store, "crm");
    assert_eq!(st, "dead");
    assert!(err.unwrap().contains("conflict: 2 monday items"));
    assert_eq!(
        signoff::actions::result_text(&resp.to_string()).as_deref(),
        Some("duplicate monday items: 1, 2")
    );
    // Merged in monday, sent again: the one item left is updated, the report is gone.
    f.with(|w| w.monday.items.retain(|i| i.id == "1"));
    let mut store = store;
    let id: i64 = store
        .connection()
        .query_row("SELECT id FROM outbox WHERE action = 'crm'", [], |r| {
            r.get(0)
        })
        .unwrap();
    store.resend(id, "sam").unwrap();
    dispatch_once(&db, &cfg).await;
    let (st, _, _, resp) = row(&store, "crm");
    assert_eq!(st, "sent");
    assert_eq!(
        signoff::actions::result_text(&resp.to_string()).as_deref(),
        Some("item 1, note 9876543211")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_drop_leaves_exactly_one_item_post_and_draft() {
    let f = Fakes::start().await;
    let cfg = f.config();
    for route in [
        "monday:create_item",
        "monday:create_update",
        "slack:chat.postMessage",
        "gmail:drafts.create",
    ] {
        f.fault(route, Fault::ApplyThenDrop);
    }
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[lead("drop")]);
    let s = dispatch_once(&db, &cfg).await;
    assert_eq!(s.retrying, 3, "{s}");
    for (a, st, _, err, resp) in rows(&store) {
        assert_eq!(st, "retrying", "{a}");
        assert!(err.unwrap().contains("may have been applied"), "{a}");
        assert_eq!(resp["maybe_sent"], true);
    }
    dispatch_settled(&db, &store, &cfg, 5).await;
    for (a, st, _, _, resp) in rows(&store) {
        assert_eq!(st, "sent", "{a}");
        assert_eq!(resp["reconciled"], true, "{a} was found, not redone");
    }
    // The CRM row: create dropped → found by key → update; note dropped → found by key.
    assert_eq!(counts(&f), (1, 1, 1, 1));
    assert_eq!(f.requests("monday:create_item").len(), 1);
    assert_eq!(
        f.requests("monday:create_update").len(),
        1,
        "the dropped note was found by its key"
    );
    assert_eq!(f.requests("slack:chat.postMessage").len(), 1);
    assert_eq!(f.requests("gmail:drafts.create").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_internal_error_after_storing_and_503_reconcile_through_history() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.fault(
        "slack:chat.postMessage",
        Fault::ApplyThenReply {
            status: 200,
            body: json!({"ok": false, "error": "internal_error"}).to_string(),
        },
    );
    let (_d, db) = temp_db();
    let mut a = lead("s1");
    a["ai"]["intent"] = json!("partnership");
    let store = approve_all(&db, &cfg, &[a]);
    dispatch_once(&db, &cfg).await;
    assert_eq!(row(&store, "slack").0, "retrying");
    dispatch_settled(&db, &store, &cfg, 3).await;
    assert_eq!(row(&store, "slack").0, "sent");
    assert_eq!(
        f.with(|w| w.slack.messages.len()),
        1,
        "found in history, not reposted"
    );
    let history = f.requests("slack:conversations.history");
    assert_eq!(history.len(), 1);
    assert!(
        ["include_all_metadata=true", "oldest=", "latest="]
            .iter()
            .all(|p| history[0].uri.contains(p)),
        "{}",
        history[0].uri
    );

    // 503 with an HTML body before anything was stored: looked up, absent, posted once.
    // (A fresh workspace: keys restart with each database.)
    let f = Fakes::start().await;
    let cfg = f.config();
    f.fault(
        "slack:chat.postMessage",
        Fault::html(503, "<html>Service Unavailable</html>"),
    );
    f.fault(
        "slack:chat.postMessage",
        Fault::json(200, json!({"ok": false, "error": "rate_limited"})),
    );
    let (_d2, db2) = temp_db();
    let mut b = lead("s2");
    b["ai"]["intent"] = json!("partnership");
    let store2 = approve_all(&db2, &cfg, &[b]);
    dispatch_settled(&db2, &store2, &cfg, 5).await;
    let (st, attempts, _, _) = row(&store2, "slack");
    assert_eq!((st.as_str(), attempts), ("sent", 3));
    assert_eq!(f.with(|w| w.slack.messages.len()), 1);
    assert_eq!(f.requests("slack:conversations.history").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_refusals_are_dead_letters_with_slacks_code() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.slack.default_channel = support::slack::OUTSIDE.into();
    let (_d, db) = temp_db();
    let mut a = lead("s3");
    a["ai"]["intent"] = json!("partnership");
    let store = approve_all(&db, &cfg, &[a]);
    dispatch_once(&db, &cfg).await;
    let (st, _, err, _) = row(&store, "slack");
    assert_eq!(st, "dead");
    assert!(
        err.unwrap()
            .starts_with("Slack: not_in_channel: invite the bot")
    );

    // With join_channels the bot joins the public channel and posts.
    cfg.slack.join_channels = true;
    let (_d2, db2) = temp_db();
    let mut b = lead("s4");
    b["ai"]["intent"] = json!("partnership");
    let store2 = approve_all(&db2, &cfg, &[b]);
    dispatch_once(&db2, &cfg).await;
    let (st, attempts, _, _) = row(&store2, "slack");
    assert_eq!((st.as_str(), attempts), ("sent", 1));
    assert_eq!(f.requests("slack:conversations.join").len(), 1);
    assert_eq!(f.with(|w| w.slack.messages.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_ambiguous_and_reconciled() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.timeout_ms = 1_000;
    cfg.dispatch.connect_timeout_ms = 1_000;
    for route in [
        "monday:create_item",
        "slack:chat.postMessage",
        "gmail:drafts.create",
    ] {
        f.fault(route, Fault::Hang);
    }
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[lead("t1")]);
    dispatch_once(&db, &cfg).await;
    for (a, st, _, err, _) in rows(&store) {
        assert_eq!(st, "retrying", "{a}");
        assert!(err.unwrap().contains("no answer"), "{a}");
    }
    dispatch_settled(&db, &store, &cfg, 3).await;
    assert!(rows(&store).iter().all(|r| r.1 == "sent"));
    assert_eq!(counts(&f), (1, 1, 1, 1));
    assert_eq!(
        f.requests("gmail:drafts.list").len(),
        1,
        "the draft was looked up before creating again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_timeout_is_never_reposted_without_a_person() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.slack.token = None;
    cfg.slack.webhook_url = Some(signoff::secret::Secret::new(
        f.url(support::slack::WEBHOOK_PATH),
    ));
    cfg.dispatch.timeout_ms = 1_000;
    cfg.dispatch.connect_timeout_ms = 1_000;
    f.fault("slack:webhook", Fault::Hang);
    let (_d, db) = temp_db();
    let mut a = lead("w1");
    a["ai"]["intent"] = json!("partnership");
    let mut store = approve_all(&db, &cfg, &[a]);
    // The stored payload names the secret URL, never contains it.
    let payload: String = store
        .connection()
        .query_row(
            "SELECT payload FROM outbox WHERE action = 'slack'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        !payload.contains("XXXXSECRET") && payload.contains("secret:actions.slack.webhook_url")
    );
    dispatch_settled(&db, &store, &cfg, 3).await;
    let (st, _, err, _) = row(&store, "slack");
    assert_eq!(st, "dead");
    assert!(err.unwrap().contains("cannot be looked up"));
    assert_eq!(f.requests("slack:webhook").len(), 1);
    // The webhook URL (a secret) appears in no error, response or audit entry.
    let leaked: i64 = store
        .connection()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM audit WHERE detail LIKE '%XXXXSECRET%')
                  + (SELECT COUNT(*) FROM outbox WHERE last_error LIKE '%XXXXSECRET%' OR response LIKE '%XXXXSECRET%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaked, 0);
    // A person checked the channel and sends it again: posted once more, as asked.
    let id: i64 = store
        .connection()
        .query_row("SELECT id FROM outbox WHERE action = 'slack'", [], |r| {
            r.get(0)
        })
        .unwrap();
    store.resend(id, "sam").unwrap();
    dispatch_once(&db, &cfg).await;
    assert_eq!(row(&store, "slack").0, "sent");
    assert_eq!(
        f.with(|w| w.slack.webhook_posts.len()),
        1,
        "the hung post was never applied; the resend posted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_bounded_then_a_dead_letter_that_r_sends_again() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.max_attempts = 3;
    for _ in 0..3 {
        f.fault(
            "slack:chat.postMessage",
            Fault::json(200, json!({"ok": false, "error": "rate_limited"})),
        );
    }
    let (_d, db) = temp_db();
    let mut a = lead("max");
    a["ai"]["intent"] = json!("partnership");
    let mut store = approve_all(&db, &cfg, &[a]);
    dispatch_settled(&db, &store, &cfg, 5).await;
    let (st, attempts, err, _) = row(&store, "slack");
    assert_eq!((st.as_str(), attempts), ("dead", 3));
    assert!(
        err.unwrap()
            .starts_with("gave up after 3 attempts: Slack: rate_limited")
    );
    let id: i64 = store
        .connection()
        .query_row("SELECT id FROM outbox WHERE action = 'slack'", [], |r| {
            r.get(0)
        })
        .unwrap();
    store.resend(id, "sam").unwrap();
    dispatch_once(&db, &cfg).await;
    let (st, attempts, _, _) = row(&store, "slack");
    assert_eq!((st.as_str(), attempts), ("sent", 4));
    assert_eq!(f.with(|w| w.slack.messages.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_stops_all_sending() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    let (_d, db) = temp_db();
    let mut store = approve_all(&db, &cfg, &[lead("ks")]);
    store.set_actions_paused(true, "sam").unwrap();
    let s = dispatch_once(&db, &cfg).await;
    assert!(s.paused && s.attempts == 0, "{s}");
    store.set_actions_paused(false, "sam").unwrap();
    cfg.paused = true;
    let s = dispatch_once(&db, &cfg).await;
    assert!(s.paused && s.attempts == 0, "{s}");
    assert!(f.with(|w| w.log.is_empty()));
    cfg.paused = false;
    assert_eq!(dispatch_once(&db, &cfg).await.sent, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_post_is_found_in_a_busy_channel_past_the_first_history_page() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.fault("slack:chat.postMessage", Fault::ApplyThenDrop);
    let (_d, db) = temp_db();
    let mut a = lead("busy");
    a["ai"]["intent"] = json!("partnership");
    let store = approve_all(&db, &cfg, &[a]);
    dispatch_once(&db, &cfg).await;
    assert_eq!(row(&store, "slack").0, "retrying");
    // Others keep posting: our message is now behind 450 newer ones.
    f.with(|w| {
        let ts = w.slack.messages[0].ts.clone();
        for i in 0..450 {
            w.slack.messages.push(support::slack::Message {
                channel: support::slack::GENERAL.into(),
                ts: format!("{ts}{i}"),
                text: "chatter".into(),
                blocks: Value::Null,
                metadata: Value::Null,
            });
        }
    });
    make_due(&store);
    dispatch_once(&db, &cfg).await;
    let (st, _, _, resp) = row(&store, "slack");
    assert_eq!(
        (st.as_str(), resp["reconciled"].clone()),
        ("sent", json!(true))
    );
    assert_eq!(f.with(|w| w.slack.with_key("signoff-1-1-slack").len()), 1);
    assert_eq!(
        f.requests("slack:conversations.history").len(),
        3,
        "three pages of 200"
    );
}

/// A lead that only writes the CRM.
fn crm_only(ext: &str) -> Value {
    let mut a = lead(ext);
    a["ai"]["intent"] = json!("other");
    a
}

/// Moves `clock` to when the CRM row is next due and runs the dispatcher on it, until the
/// row and its response satisfy `done` (at most `rounds` runs). Each due time is checked
/// with `due` first.
async fn follow_crm(
    db: &std::path::Path,
    store: &signoff::store::Store,
    cfg: &signoff::actions::ActionsConfig,
    clock: &Clock,
    rounds: usize,
    due: impl Fn(i64),
    done: impl Fn(&str, &Value) -> bool,
) {
    for round in 0..=rounds {
        let (st, _, _, resp) = row(store, "crm");
        if done(&st, &resp) {
            return;
        }
        if round == rounds {
            break;
        }
        assert_eq!(st, "retrying", "{resp}");
        let next = next_due(store, "crm");
        due(next);
        clock.advance((next - clock.now()).max(0));
        dispatch_once_at(db, cfg, clock).await;
    }
    let (st, _, err, resp) = row(store, "crm");
    panic!("the CRM row is still {st} after {rounds} runs: {err:?} {resp}");
}

/// A pinned clock at the store's now, shared with the fakes.
fn pin(f: &Fakes, store: &signoff::store::Store) -> Clock {
    let clock = Clock::fixed(store.now());
    f.with(|w| w.clock = clock.clone());
    clock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_board_is_retried_after_retry_after_or_1_to_2_s_then_written_once() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.fault("monday:create_item", support::monday::locked(Some("5")));
    f.fault("monday:create_item", support::monday::locked(None));
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[crm_only("locked")]);
    let clock = pin(&f, &store);
    // The lock says to wait 5 s: then, not before, and not after the (minute-long) backoff.
    let s = dispatch_once_at(&db, &cfg, &clock).await;
    assert_eq!((s.retrying, s.dead), (1, 0), "{s}");
    let (st, _, err, resp) = row(&store, "crm");
    assert_eq!(st, "retrying");
    assert!(err.unwrap().contains("locked"));
    assert_ne!(resp["maybe_sent"], true, "a 423 applied nothing: {resp}");
    assert_eq!(retry_gap(&store, "crm"), 5_000);
    clock.advance(4_999);
    assert_eq!(dispatch_once_at(&db, &cfg, &clock).await.attempts, 0);
    clock.advance(1);
    // Locked again, without Retry-After: 1-2 s.
    dispatch_once_at(&db, &cfg, &clock).await;
    assert_eq!(row(&store, "crm").0, "retrying");
    let gap = retry_gap(&store, "crm");
    assert!((1_000..=2_000).contains(&gap), "{gap} ms");
    clock.advance(gap - 1);
    assert_eq!(dispatch_once_at(&db, &cfg, &clock).await.attempts, 0);
    clock.advance(1);
    let s = dispatch_once_at(&db, &cfg, &clock).await;
    assert_eq!(s.sent, 1, "{s}");
    let (st, attempts, _, _) = row(&store, "crm");
    assert_eq!((st.as_str(), attempts), ("sent", 3));
    assert_eq!(f.requests("monday:create_item").len(), 3);
    assert_eq!(
        f.with(|w| (w.monday.items.len(), w.monday.updates.len())),
        (1, 1)
    );
}

/// The dispatcher's own timing (2 s backoff doubling) and the default lookup window.
fn real_timing(f: &Fakes) -> signoff::actions::ActionsConfig {
    let mut cfg = f.config();
    let defaults = signoff::actions::ActionsConfig::default();
    cfg.dispatch.backoff_base_ms = defaults.dispatch.backoff_base_ms;
    cfg.dispatch.backoff_cap_ms = defaults.dispatch.backoff_cap_ms;
    cfg.dispatch.max_attempts = defaults.dispatch.max_attempts;
    cfg.monday.lookup_window_secs = defaults.monday.lookup_window_secs;
    assert_eq!(cfg.monday.lookup_window_secs, 30);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncertain_create_is_looked_up_through_the_search_lag_not_recreated() {
    let f = Fakes::start().await;
    let cfg = real_timing(&f);
    f.fault("monday:create_item", Fault::ApplyThenDrop);
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[crm_only("lag")]);
    let clock = pin(&f, &store);
    // The dropped create's item is not searchable for 20 s: a lookup that gave up before
    // then would create a second item.
    f.with(|w| w.monday.search_lag = Duration::from_secs(20));
    dispatch_once_at(&db, &cfg, &clock).await;
    let (st, _, _, resp) = row(&store, "crm");
    assert_eq!(
        (st.as_str(), &resp["maybe_sent"]),
        ("retrying", &json!(true))
    );
    let uncertain_at = resp["create_uncertain_at"].as_i64().unwrap();
    assert_eq!(uncertain_at, clock.now());
    follow_crm(
        &db,
        &store,
        &cfg,
        &clock,
        8,
        |next| assert!(next <= uncertain_at + 30_000, "a look past the window"),
        |st, _| st == "sent",
    )
    .await;
    let (_, attempts, _, resp) = row(&store, "crm");
    assert_eq!(resp["reconciled"], true, "{resp}");
    assert!(clock.now() >= uncertain_at + 20_000);
    assert!(attempts <= 8);
    assert_eq!(f.with(|w| w.monday.items.len()), 1);
    assert_eq!(f.requests("monday:create_item").len(), 1);
    assert_eq!(f.requests("monday:change_multiple_column_values").len(), 1);
    let looks = f.requests("monday:items_page_by_column_values").len() as i64;
    assert_eq!(looks, attempts, "one look per attempt");
    assert!(looks >= 4, "it looked again while the item lagged: {looks}");
    let waiting: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE kind = 'action_retry'
               AND json_extract(detail, '$.error') LIKE '%may still become searchable: looking again until 30 s after it'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(waiting, looks - 2, "every look in the window but the last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lookup_window_reschedules_the_row_and_holds_up_nothing_else() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.monday.lookup_window_secs = 30;
    f.with(|w| w.monday.search_lag = Duration::from_secs(600));
    f.fault("monday:create_item", Fault::ApplyThenDrop);
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[crm_only("slow")]);
    dispatch_once(&db, &cfg).await;
    let uncertain_at = row(&store, "crm").3["create_uncertain_at"]
        .as_i64()
        .unwrap();
    // Another item is approved meanwhile; a run sends it while the first row waits.
    let _other = approve_all(&db, &cfg, &[crm_only("fresh")]);
    make_due(&store);
    let started = Instant::now();
    let s = dispatch_once(&db, &cfg).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the run waited for the window: {:?}",
        started.elapsed()
    );
    assert_eq!((s.sent, s.retrying), (1, 1), "{s}");
    let rows = rows(&store);
    assert_eq!(
        (rows[0].1.as_str(), rows[1].1.as_str()),
        ("retrying", "sent")
    );
    assert!(
        rows[0]
            .3
            .as_deref()
            .unwrap()
            .ends_with("may still become searchable: looking again until 30 s after it"),
        "{:?}",
        rows[0].3
    );
    // Its next look is due inside the window, at its end at the latest.
    let next: i64 = store
        .connection()
        .query_row("SELECT next_attempt_at FROM outbox WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        next > store.now() && next <= uncertain_at + 30_000,
        "next {next}, window {uncertain_at} + 30 s"
    );
    assert_eq!(f.requests("monday:create_item").len(), 2, "one each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_that_lands_after_the_window_is_reported_in_the_rows_result() {
    let f = Fakes::start().await;
    let cfg = real_timing(&f);
    f.fault("monday:create_item", Fault::ApplyThenDrop);
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[crm_only("late")]);
    let clock = pin(&f, &store);
    // The dropped create becomes searchable only 45 s later, after the 30 s window.
    f.with(|w| w.monday.search_lag = Duration::from_secs(45));
    dispatch_once_at(&db, &cfg, &clock).await;
    let uncertain_at = clock.now();
    f.with(|w| w.monday.search_lag = Duration::ZERO);
    // The window passes with nothing found: the item is created again, and the row stays
    // open to look once more a window later.
    follow_crm(
        &db,
        &store,
        &cfg,
        &clock,
        8,
        |_| {},
        |_, resp| resp["item_id"].is_string(),
    )
    .await;
    assert!(
        clock.now() >= uncertain_at + 30_000,
        "created again inside the window"
    );
    let (st, _, err, resp) = row(&store, "crm");
    assert_eq!(st, "retrying", "{resp}");
    assert!(err.unwrap().contains("looking once more"));
    assert_eq!(resp["recheck_at"], json!(clock.now() + 30_000), "{resp}");
    assert_eq!(next_due(&store, "crm"), clock.now() + 30_000);
    let (first, second) = f.with(|w| (w.monday.items[0].id.clone(), w.monday.items[1].id.clone()));
    assert_eq!(resp["item_id"], json!(second));
    // A window later the first item is searchable too: the look finds both.
    follow_crm(&db, &store, &cfg, &clock, 1, |_| {}, |st, _| st == "sent").await;
    let (_, _, err, resp) = row(&store, "crm");
    assert_eq!(err, None);
    assert_eq!(resp["duplicates"], json!([first, second]), "{resp}");
    assert!(resp.get("recheck_at").is_none(), "{resp}");
    let text = signoff::actions::result_text(&resp.to_string()).unwrap();
    assert!(
        text.ends_with(&format!("duplicate monday items: {first}, {second}")),
        "{text}"
    );
    assert_eq!(
        f.with(|w| (w.monday.items.len(), w.monday.updates.len())),
        (2, 1)
    );
    assert_eq!(f.requests("monday:create_item").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_item_seen_alone_a_window_later_is_no_duplicate() {
    let f = Fakes::start().await;
    let cfg = real_timing(&f);
    // Applied nothing, answered nothing: the window finds nothing because there is nothing.
    f.fault("monday:create_item", Fault::Hang);
    let mut cfg = cfg;
    cfg.dispatch.timeout_ms = 300;
    cfg.dispatch.connect_timeout_ms = 300;
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[crm_only("alone")]);
    let clock = pin(&f, &store);
    dispatch_once_at(&db, &cfg, &clock).await;
    assert!(row(&store, "crm").3["create_uncertain_at"].is_i64());
    follow_crm(&db, &store, &cfg, &clock, 9, |_| {}, |st, _| st == "sent").await;
    let (_, _, _, resp) = row(&store, "crm");
    assert!(resp.get("duplicates").is_none(), "{resp}");
    assert!(resp.get("recheck_at").is_none(), "{resp}");
    assert_eq!(
        signoff::actions::result_text(&resp.to_string()),
        Some(format!(
            "item {}, note {}",
            resp["item_id"].as_str().unwrap(),
            resp["update_id"].as_str().unwrap()
        ))
    );
    assert_eq!(
        f.with(|w| (w.monday.items.len(), w.monday.updates.len())),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_window_the_attempts_cannot_cover_is_refused() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.max_attempts = 3;
    // Halves of the 60 s and 120 s waits before attempts 2 and 3: 90 s.
    cfg.monday.lookup_window_secs = 120;
    let (_d, db) = temp_db();
    let err =
        signoff::actions::dispatch_until(&db, policy(), &cfg, true, "w", std::future::pending())
            .await
            .unwrap_err()
            .to_string();
    assert!(
        err.starts_with("invalid [actions] config: actions.monday.lookup_window_secs: 120 s does not fit inside the dispatcher's attempt budget of 90 s"),
        "{err}"
    );
    cfg.monday.lookup_window_secs = 90;
    dispatch_once(&db, &cfg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_dead_letters_saying_what_to_check() {
    use signoff::secret::Secret;
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.monday.token = Some(Secret::new("Bearer monday-token-123"));
    cfg.slack.token = Some(Secret::new("xoxb-wrong"));
    cfg.gmail.client_secret = Some(Secret::new("wrong-secret"));
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[lead("auth")]);
    dispatch_once(&db, &cfg).await;
    let err = |a: &str| row(&store, a).2.unwrap();
    assert_eq!(rows(&store).iter().filter(|r| r.1 == "dead").count(), 3);
    assert!(
        err("crm").contains("monday rejected the token (HTTP 401")
            && err("crm").contains("no Bearer")
    );
    assert_eq!(
        err("slack"),
        "Slack: invalid_auth: check actions.slack.token"
    );
    assert!(
        err("gmail").contains("invalid_client")
            && err("gmail").contains("actions.gmail.client_id and client_secret")
    );
    assert_eq!(counts(&f), (0, 0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_installations_message_with_the_same_key_is_not_taken_for_ours() {
    let f = Fakes::start().await;
    let cfg = f.config();
    // Another signoff (its own database, so the same key) posted to the channel just now.
    f.with(|w| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        w.slack.messages.push(support::slack::Message {
            channel: support::slack::GENERAL.into(),
            ts: format!("{now}.000001"),
            text: "theirs".into(),
            blocks: json!([{"type": "section", "block_id": "signoff-1-1-slack"}]),
            metadata: json!({"event_type": "signoff_action", "event_payload": {"key": "signoff-1-1-slack", "origin": "feedbeef"}}),
        });
    });
    f.fault(
        "slack:chat.postMessage",
        Fault::html(503, "<html>unavailable</html>"),
    );
    let (_d, db) = temp_db();
    let mut a = lead("ours");
    a["ai"]["intent"] = json!("partnership");
    let store = approve_all(&db, &cfg, &[a]);
    dispatch_settled(&db, &store, &cfg, 3).await;
    let (st, _, _, resp) = row(&store, "slack");
    assert_eq!(st, "sent");
    assert_ne!(resp["reconciled"], true, "their message is not ours");
    assert_eq!(f.with(|w| w.slack.with_key("signoff-1-1-slack").len()), 2);
}
