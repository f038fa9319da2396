//! Dead letters and `R` (resend): a resend grants the row new attempts until one may have
//! taken effect — an attempt that provably applied nothing (a 429, a 4xx) does not spend
//! it, an ambiguous one or a crash mid-attempt does — and a row that runs out of attempts
//! says whether its last attempt left an unknown effect behind, in its error and its audit
//! entry.
mod support;

use serde_json::{Value, json};
use support::*;

/// An approval that writes the CRM and posts to Slack (these tests watch the Slack row).
fn partnership(ext: &str) -> Value {
    payload(
        ext,
        "partnership",
        "high",
        "Ada <ada@example.com>",
        "Pricing",
        "Hello Ada",
    )
}

/// A config posting Slack through the fake's incoming webhook (no lookups possible).
fn webhook_config(f: &Fakes) -> signoff::actions::ActionsConfig {
    let mut cfg = f.config();
    cfg.slack.token = None;
    cfg.slack.webhook_url = Some(signoff::secret::Secret::new(
        f.url(support::slack::WEBHOOK_PATH),
    ));
    cfg.dispatch.timeout_ms = 1_000;
    cfg.dispatch.connect_timeout_ms = 1_000;
    cfg
}

fn slack_id(store: &signoff::store::Store) -> i64 {
    store
        .connection()
        .query_row("SELECT id FROM outbox WHERE action = 'slack'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// The detail of the last `action_dead` audit entry of the Slack row.
fn last_dead_audit(store: &signoff::store::Store) -> Value {
    let id = slack_id(store);
    let detail: String = store
        .connection()
        .query_row(
            "SELECT detail FROM audit WHERE kind = 'action_dead'
               AND json_extract(detail, '$.outbox_id') = ?1 ORDER BY seq DESC LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&detail).unwrap()
}

/// The Slack row is a dead letter whose error starts with `error`, and the last attempt's
/// audit entry says `outcome` and `maybe_applied`.
fn assert_gave_up(store: &signoff::store::Store, error: &str, outcome: &str, maybe_applied: bool) {
    let (st, _, err, _) = row(store, "slack");
    assert_eq!(st, "dead");
    assert!(err.as_deref().unwrap_or("").starts_with(error), "{err:?}");
    let audit = last_dead_audit(store);
    assert_eq!(
        (&audit["outcome"], &audit["maybe_applied"]),
        (&json!(outcome), &json!(maybe_applied)),
        "{audit}"
    );
}

/// A webhook post that hung (may have posted, cannot be looked up) is a dead letter; a
/// person checks the channel and sends it again.
async fn hung_webhook_dead_letter(
    f: &Fakes,
    cfg: &signoff::actions::ActionsConfig,
    db: &std::path::Path,
) -> signoff::store::Store {
    f.fault("slack:webhook", Fault::Hang);
    let mut store = approve_all(db, cfg, &[partnership("w")]);
    dispatch_settled(db, &store, cfg, 3).await;
    let (st, _, err, _) = row(&store, "slack");
    assert_eq!(st, "dead");
    assert!(err.unwrap().contains("cannot be looked up"));
    assert_eq!(f.requests("slack:webhook").len(), 1);
    store.resend(slack_id(&store), "sam").unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_webhook_that_is_rate_limited_keeps_its_permission_and_posts_once() {
    let f = Fakes::start().await;
    let cfg = webhook_config(&f);
    let (_d, db) = temp_db();
    let store = hung_webhook_dead_letter(&f, &cfg, &db).await;
    // The resent post is refused with a 429: nothing was posted.
    f.fault(
        "slack:webhook",
        Fault::Reply {
            status: 429,
            retry_after: Some("1".into()),
            body: "rate limited".into(),
            content_type: "text/html",
        },
    );
    dispatch_once(&db, &cfg).await;
    let (st, _, err, resp) = row(&store, "slack");
    assert_eq!(st, "retrying", "{err:?}");
    assert_eq!(resp["resent"], true, "a 429 applied nothing: {resp}");
    // Its retry posts, as the person asked — not a second dead letter.
    make_due(&store);
    dispatch_once(&db, &cfg).await;
    let (st, _, err, resp) = row(&store, "slack");
    assert_eq!(st, "sent", "{err:?}");
    assert_ne!(resp["resent"], true, "spent by the post that went out");
    assert_eq!(f.with(|w| w.slack.webhook_posts.len()), 1);
    assert_eq!(f.requests("slack:webhook").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_webhook_refused_with_a_4xx_keeps_its_permission() {
    let f = Fakes::start().await;
    let cfg = webhook_config(&f);
    let (_d, db) = temp_db();
    let mut store = hung_webhook_dead_letter(&f, &cfg, &db).await;
    f.fault("slack:webhook", Fault::html(400, "invalid_payload"));
    dispatch_once(&db, &cfg).await;
    let (st, _, err, resp) = row(&store, "slack");
    assert_eq!(st, "dead");
    assert!(err.unwrap().contains("invalid_payload"));
    assert_eq!(resp["resent"], true, "a 400 applied nothing: {resp}");
    let audit = last_dead_audit(&store);
    assert_eq!(audit["outcome"], "permanent");
    assert_eq!(
        audit["maybe_applied"], true,
        "the first, hung post is still unverified: {audit}"
    );
    // The fix is made; R once more, and it posts once.
    store.resend(slack_id(&store), "sam").unwrap();
    dispatch_once(&db, &cfg).await;
    assert_eq!(row(&store, "slack").0, "sent");
    assert_eq!(f.with(|w| w.slack.webhook_posts.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_webhook_that_may_have_posted_is_not_posted_again() {
    let f = Fakes::start().await;
    let cfg = webhook_config(&f);
    let (_d, db) = temp_db();
    let store = hung_webhook_dead_letter(&f, &cfg, &db).await;
    f.fault("slack:webhook", Fault::ApplyThenDrop);
    dispatch_settled(&db, &store, &cfg, 3).await;
    let (st, _, err, resp) = row(&store, "slack");
    assert_eq!(st, "dead");
    assert!(err.unwrap().contains("cannot be looked up"));
    assert_ne!(resp["resent"], true);
    assert_eq!(last_dead_audit(&store)["maybe_applied"], true);
    assert_eq!(f.with(|w| w.slack.webhook_posts.len()), 1);
    assert_eq!(f.requests("slack:webhook").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_attempt_whose_worker_died_is_not_reposted_without_a_person() {
    let f = Fakes::start().await;
    let cfg = webhook_config(&f);
    let (_d, db) = temp_db();
    let mut store = hung_webhook_dead_letter(&f, &cfg, &db).await;
    // A worker claims the resent row and dies mid-attempt: it may have posted.
    let claimed = store.claim_due("gone", 60_000, 10).unwrap();
    assert_eq!(claimed.rows.len(), 1);
    store
        .connection()
        .execute(
            "UPDATE outbox SET lease_expires = 0 WHERE status = 'sending'",
            [],
        )
        .unwrap();
    dispatch_settled(&db, &store, &cfg, 3).await;
    let (st, _, err, _) = row(&store, "slack");
    assert_eq!(st, "dead");
    assert!(err.unwrap().contains("cannot be looked up"));
    assert_eq!(
        f.requests("slack:webhook").len(),
        1,
        "nothing posted after the crash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_that_fails_after_a_crash_keeps_the_row_reconciling() {
    let f = Fakes::start().await;
    let cfg = f.config();
    let (_d, db) = temp_db();
    let mut store = approve_all(&db, &cfg, &[partnership("c")]);
    // A worker claims the Slack row and dies: its post may have gone out (it did).
    let claimed = store.claim_due("gone", 60_000, 10).unwrap();
    assert!(claimed.rows.iter().any(|r| r.action == "slack"));
    // The post's ts on the store's clock, the one the dispatcher's lookup window uses.
    let now = store.now() / 1000;
    f.with(|w| {
        w.slack.messages.push(support::slack::Message {
            channel: support::slack::GENERAL.into(),
            ts: format!("{now}.000001"),
            text: "posted by the worker that died".into(),
            blocks: json!([{"type": "section", "block_id": "signoff-1-1-slack"}]),
            metadata: Value::Null,
        });
    });
    store
        .connection()
        .execute(
            "UPDATE outbox SET lease_expires = 0 WHERE status = 'sending'",
            [],
        )
        .unwrap();
    // The lookup after the crash is rate limited: the row must look again next time.
    f.fault(
        "slack:conversations.history",
        Fault::json_retry(429, "1", json!({"ok": false, "error": "ratelimited"})),
    );
    dispatch_once(&db, &cfg).await;
    let (st, _, _, resp) = row(&store, "slack");
    assert_eq!(st, "retrying");
    assert_eq!(resp["maybe_sent"], true, "{resp}");
    dispatch_settled(&db, &store, &cfg, 3).await;
    let (st, _, _, resp) = row(&store, "slack");
    assert_eq!((st.as_str(), &resp["reconciled"]), ("sent", &json!(true)));
    assert_eq!(f.requests("slack:chat.postMessage").len(), 0);
    assert_eq!(f.with(|w| w.slack.messages.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_attempts_after_a_definite_failure_is_not_called_ambiguous() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.max_attempts = 2;
    // Attempt 1: 503 (may have posted). Attempt 2: history says it did not; the post is
    // then refused with rate_limited (not posted).
    f.fault(
        "slack:chat.postMessage",
        Fault::html(503, "<html>unavailable</html>"),
    );
    f.fault(
        "slack:chat.postMessage",
        Fault::json(200, json!({"ok": false, "error": "rate_limited"})),
    );
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[partnership("m")]);
    dispatch_settled(&db, &store, &cfg, 3).await;
    assert_eq!(row(&store, "slack").1, 2);
    assert_gave_up(
        &store,
        "gave up after 2 attempts: Slack: rate_limited",
        "retry",
        false,
    );
    assert_eq!(
        row(&store, "slack").2.as_deref(),
        Some("gave up after 2 attempts: Slack: rate_limited")
    );
    assert_eq!(f.with(|w| w.slack.messages.len()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_attempts_with_an_unknown_effect_says_so() {
    // The last attempt ambiguous.
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.max_attempts = 2;
    for _ in 0..2 {
        f.fault(
            "slack:chat.postMessage",
            Fault::html(503, "<html>unavailable</html>"),
        );
    }
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[partnership("a")]);
    dispatch_settled(&db, &store, &cfg, 3).await;
    assert_gave_up(
        &store,
        "gave up after 2 attempts (an attempt may have taken effect: check before sending again): Slack HTTP 503",
        "ambiguous",
        true,
    );

    // An earlier attempt ambiguous, and the last one could not look it up (history
    // rate limited): still unknown, whatever the last error was.
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.max_attempts = 2;
    f.fault(
        "slack:chat.postMessage",
        Fault::html(503, "<html>unavailable</html>"),
    );
    f.fault(
        "slack:conversations.history",
        Fault::json_retry(429, "1", json!({"ok": false, "error": "ratelimited"})),
    );
    let (_d2, db2) = temp_db();
    let store2 = approve_all(&db2, &cfg, &[partnership("b")]);
    dispatch_settled(&db2, &store2, &cfg, 3).await;
    assert_gave_up(
        &store2,
        "gave up after 2 attempts (an attempt may have taken effect: check before sending again): Slack: ratelimited",
        "retry",
        true,
    );
}

/// An attempt cut off while it still waited for the rate limit sent nothing: it is retried,
/// not taken for "may have posted" (a webhook cannot be looked up, so that would have made
/// a dead letter for a person to check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_cut_off_waiting_for_the_rate_limit_is_retried_not_ambiguous() {
    let f = Fakes::start().await;
    let mut cfg = webhook_config(&f);
    // Four request timeouts, 400 ms, per attempt; the second post waits a second.
    cfg.dispatch.timeout_ms = 100;
    cfg.slack.per_channel_per_second = 1.0;
    cfg.slack.burst = 1;
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &[partnership("r1"), partnership("r2")]);
    dispatch_settled(&db, &store, &cfg, 4).await;
    let statuses: Vec<String> = store
        .connection()
        .prepare("SELECT status FROM outbox WHERE action = 'slack' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses, ["sent", "sent"]);
    assert_eq!(f.with(|w| w.slack.webhook_posts.len()), 2);
    let cut: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE detail LIKE '%before it sent anything%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        cut >= 1,
        "the test's premise: an attempt was cut off in the rate limiter"
    );
}
