//! The reviewer's writes on PostgreSQL: claim order, claims on many handles at once
//! (`FOR UPDATE SKIP LOCKED`), leases and fences, stale revisions, decisions with their
//! audit and outbox rows, undo, the kill switch, resends and outcomes — and the same
//! decisions on SQLite and PostgreSQL giving the same rows.
//!
//! Runs against the server in `SIGNOFF_TEST_PG` (default: the dev cluster on port 55432),
//! a fresh database per test.
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use signoff::clock::Clock;
use signoff::model::{DecisionKind, EditableField, Policy, State};
use signoff::pg::{PgOptions, PgQueue};
use signoff::queue::{Decision, Queue, QueueError};

const T0: i64 = 1_800_000_000_000;
/// The default policy's lease.
const LEASE: i64 = 300_000;

fn base_url() -> String {
    std::env::var("SIGNOFF_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into())
}

/// `base` with its database replaced by `db`.
fn with_db(base: &str, db: &str) -> String {
    let (head, tail) = base.split_once("://").expect("a URL");
    let (authority, rest) = tail.split_once('/').unwrap_or((tail, ""));
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{head}://{authority}/{db}{query}")
}

/// A test's own database, empty.
struct TestDb {
    url: String,
    dir: tempfile::TempDir,
    clock: Clock,
}

async fn fresh(name: &str) -> TestDb {
    let db = format!("pgrev_{name}");
    let (client, conn) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL (SIGNOFF_TEST_PG) is reachable");
    tokio::spawn(conn);
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!("CREATE DATABASE {db}"),
    ] {
        client.batch_execute(&sql).await.unwrap();
    }
    TestDb {
        url: with_db(&base_url(), &db),
        dir: tempfile::tempdir().unwrap(),
        clock: Clock::fixed(T0),
    }
}

impl TestDb {
    async fn open(&self) -> PgQueue {
        self.open_with(Arc::new(Policy::default())).await
    }

    async fn open_with(&self, policy: Arc<Policy>) -> PgQueue {
        let opts = PgOptions {
            clock: self.clock.clone(),
            key_path: self.dir.path().join("audit.key"),
            pool_size: 20,
            ..PgOptions::default()
        };
        PgQueue::open(&self.url, policy, &opts).await.expect("open")
    }
}

async fn client(q: &PgQueue) -> deadpool_postgres::Object {
    q.db().client().await.unwrap()
}

async fn count(q: &PgQueue, sql: &str) -> i64 {
    client(q).await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Puts an item in the queue the way ingest leaves it: the request row and revision 1.
async fn seed(q: &PgQueue, payload: &Value, received_at: i64) -> i64 {
    let r = signoff::model::Request::from_value(payload).expect("a request");
    let ai = signoff::model::Request::triage_from_json(&payload.to_string()).unwrap_or_default();
    let policy = q.db().policy();
    let priority = ai.priority.clone();
    let c = client(q).await;
    let id: i64 = c
        .query_one(
            "INSERT INTO requests (source, external_id, payload_sha256, received_at, ingested_at,
                updated_at, priority_rank, intent, priority, summary)
             VALUES ($1, $2, 'x', $3, $4, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &r.source,
                &r.external_id,
                &received_at,
                &T0,
                &policy.priority_rank(priority.as_deref()),
                &ai.intent,
                &priority,
                &ai.summary,
            ],
        )
        .await
        .unwrap()
        .get(0);
    c.execute(
        "INSERT INTO revisions (request_id, revision, payload, payload_sha256, ingested_at)
         VALUES ($1, 1, $2, 'x', $3)",
        &[&id, &payload.to_string(), &T0],
    )
    .await
    .unwrap();
    id
}

fn approve() -> Decision {
    Decision {
        kind: DecisionKind::Approve,
        revision: Some(1),
        note: None,
        sets: vec![],
    }
}

fn reject(reason: &str) -> Decision {
    Decision {
        kind: DecisionKind::Reject {
            reason: reason.into(),
        },
        ..approve()
    }
}

fn escalate(queue: &str) -> Decision {
    Decision {
        kind: DecisionKind::Escalate {
            queue: queue.into(),
        },
        ..approve()
    }
}

/// The audit kinds of one item, oldest first.
async fn kinds(q: &PgQueue, id: i64) -> Vec<String> {
    client(q)
        .await
        .query(
            "SELECT kind FROM audit WHERE request_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every audit row links to the one before it, and the head names the last.
async fn assert_chain(q: &PgQueue) {
    let c = client(q).await;
    let broken: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM (SELECT seq, prev_hash, lag(hash) OVER (ORDER BY seq) AS before,
                lag(seq) OVER (ORDER BY seq) AS seq_before FROM audit) x
             WHERE seq > 1 AND (prev_hash IS DISTINCT FROM before OR seq_before <> seq - 1)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        broken, 0,
        "the audit chain links every row to the one before"
    );
    let head = signoff::pg::read_head(&c).await.unwrap();
    let last: Option<(i64, String)> = c
        .query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)));
    assert_eq!(Some((head.seq, head.hash)), last);
}

#[tokio::test]
async fn claims_follow_queue_order_priority_then_age_then_id() {
    let t = fresh("order").await;
    let q = t.open().await;
    let low = seed(
        &q,
        &common::request("low", json!({"ai": {"priority": "low"}})),
        T0 - 9000,
    )
    .await;
    let high_new = seed(
        &q,
        &common::request("hn", json!({"ai": {"priority": "high"}})),
        T0 - 1000,
    )
    .await;
    let high_old = seed(
        &q,
        &common::request("ho", json!({"ai": {"priority": "high"}})),
        T0 - 5000,
    )
    .await;
    let high_same = seed(
        &q,
        &common::request("hs", json!({"ai": {"priority": "high"}})),
        T0 - 5000,
    )
    .await;
    let urgent = seed(
        &q,
        &common::request("u", json!({"ai": {"priority": "urgent"}})),
        T0,
    )
    .await;
    let mut order = Vec::new();
    while let Some(c) = q.claim_next("ana").await.unwrap() {
        assert_eq!(c.fence, 1);
        assert_eq!(c.lease_expires, T0 + LEASE);
        order.push(c.id);
    }
    assert_eq!(order, vec![urgent, high_old, high_same, high_new, low]);
    assert_eq!(kinds(&q, urgent).await, vec!["claimed"]);
    let detail: String = client(&q)
        .await
        .query_one("SELECT detail FROM audit WHERE request_id = $1", &[&urgent])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        serde_json::from_str::<Value>(&detail).unwrap(),
        json!({"fence": 1, "lease_expires": T0 + LEASE})
    );
    assert_chain(&q).await;
}

#[tokio::test]
async fn a_held_item_is_refused_and_a_reclaim_makes_the_old_fence_stale() {
    let t = fresh("held").await;
    let q = t.open().await;
    let id = seed(&q, &common::request("a", json!({})), T0).await;
    let first = q.claim(id, "ana").await.unwrap();
    assert_eq!(first.fence, 1);
    match q.claim(id, "bo").await {
        Err(QueueError::HeldBy {
            reviewer, until, ..
        }) => {
            assert_eq!(reviewer, "ana");
            assert_eq!(until, T0 + LEASE);
        }
        other => panic!("expected HeldBy, got {other:?}"),
    }
    let second = q.claim(id, "ana").await.unwrap();
    assert_eq!(second.fence, 2);
    assert!(matches!(
        q.heartbeat(&first).await,
        Err(QueueError::LeaseLost { fence: 1, holder: Some(ref h), .. }) if h == "ana"
    ));
    assert!(matches!(
        q.decide(&first, &approve()).await,
        Err(QueueError::LeaseLost { .. })
    ));
    t.clock.advance(10_000);
    let renewed = q.heartbeat(&second).await.unwrap();
    assert_eq!(renewed.lease_expires, T0 + 10_000 + LEASE);
    q.decide(&renewed, &approve()).await.unwrap();
    assert!(matches!(
        q.claim(id, "ana").await,
        Err(QueueError::AlreadyDecided {
            state: State::Approved,
            ..
        })
    ));
    assert!(matches!(
        q.claim(999, "ana").await,
        Err(QueueError::NotFound(999))
    ));
    // A claim of a missing item changes nothing (the transaction rolls back).
    assert_eq!(
        kinds(&q, id).await,
        vec!["claimed", "claimed", "lease_renewed", "decided"]
    );
    // Release puts it back; a released claim is stale.
    let other = seed(&q, &common::request("b", json!({})), T0).await;
    let c = q.claim(other, "bo").await.unwrap();
    q.release(&c).await.unwrap();
    assert!(matches!(
        q.release(&c).await,
        Err(QueueError::LeaseLost { holder: None, .. })
    ));
    assert_eq!(
        q.claim_next("cy").await.unwrap().map(|c| (c.id, c.fence)),
        Some((other, 2))
    );
    assert_chain(&q).await;
}

#[tokio::test]
async fn an_expired_lease_goes_back_to_the_queue_with_its_audit_row() {
    let t = fresh("expiry").await;
    let q = t.open().await;
    let id = seed(&q, &common::request("a", json!({})), T0).await;
    let ana = q.claim_next("ana").await.unwrap().unwrap();
    // Still live: nothing else to claim.
    assert!(q.claim_next("bo").await.unwrap().is_none());
    t.clock.advance(LEASE);
    let bo = q.claim_next("bo").await.unwrap().unwrap();
    assert_eq!((bo.id, bo.fence), (id, 2));
    assert_eq!(
        kinds(&q, id).await,
        vec!["claimed", "lease_expired", "claimed"]
    );
    let row = client(&q)
        .await
        .query_one(
            "SELECT actor, detail FROM audit WHERE request_id = $1 AND kind = 'lease_expired'",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "system");
    assert_eq!(
        serde_json::from_str::<Value>(&row.get::<_, String>(1)).unwrap(),
        json!({"reviewer": "ana", "fence": 1})
    );
    match q.decide(&ana, &approve()).await {
        Err(QueueError::LeaseLost { fence, holder, .. }) => {
            assert_eq!(fence, 1);
            assert_eq!(holder.as_deref(), Some("bo"));
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    // Claiming an expired item by id returns it to the queue first, then takes it.
    t.clock.advance(LEASE);
    let cy = q.claim(id, "cy").await.unwrap();
    assert_eq!(cy.fence, 3);
    assert_eq!(
        kinds(&q, id).await,
        vec![
            "claimed",
            "lease_expired",
            "claimed",
            "lease_expired",
            "claimed"
        ]
    );
    // A lease that ran out refuses a heartbeat even before anyone else claims.
    t.clock.advance(LEASE);
    assert!(matches!(
        q.heartbeat(&cy).await,
        Err(QueueError::LeaseLost { holder: None, .. })
    ));
    assert_chain(&q).await;
}

#[tokio::test]
async fn a_decision_on_a_stale_revision_is_refused_and_changes_nothing() {
    let t = fresh("revision").await;
    let q = t.open().await;
    let id = seed(&q, &common::request("a", json!({})), T0).await;
    let c = q.claim(id, "ana").await.unwrap();
    let p2 = common::request("a", json!({"ai": {"summary": "v2"}}));
    let db = client(&q).await;
    db.execute(
        "INSERT INTO revisions (request_id, revision, payload, payload_sha256, ingested_at)
         VALUES ($1, 2, $2, 'y', $3)",
        &[&id, &p2.to_string(), &T0],
    )
    .await
    .unwrap();
    db.execute("UPDATE requests SET revision = 2 WHERE id = $1", &[&id])
        .await
        .unwrap();
    let audit_before = count(&q, "SELECT COUNT(*) FROM audit").await;
    match q.decide(&c, &approve()).await {
        Err(QueueError::StaleRevision { shown, current, .. }) => {
            assert_eq!((shown, current), (1, 2));
        }
        other => panic!("expected StaleRevision, got {other:?}"),
    }
    assert_eq!(count(&q, "SELECT COUNT(*) FROM decisions").await, 0);
    assert_eq!(count(&q, "SELECT COUNT(*) FROM audit").await, audit_before);
    let r = q
        .decide(
            &c,
            &Decision {
                revision: Some(2),
                ..approve()
            },
        )
        .await
        .unwrap();
    let fields: String = db
        .query_one(
            "SELECT fields FROM decisions WHERE id = $1",
            &[&r.decision_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(fields.contains("v2"), "decided on revision 2: {fields}");
}

#[tokio::test]
async fn every_decision_commits_with_its_audit_and_outbox_rows() {
    let t = fresh("decide").await;
    let q = t.open().await;
    let lead = seed(&q, &common::request("lead", json!({})), T0).await;
    let no_draft = seed(
        &q,
        &common::request("nodraft", json!({"ai": {"draft_reply": null}})),
        T0,
    )
    .await;
    let spam = seed(&q, &common::request("spam", json!({})), T0).await;
    let esc = seed(&q, &common::request("esc", json!({})), T0).await;
    let mut outbox_total = 0;
    let mut audit_total = 0;
    for (id, decision) in [
        (lead, approve()),
        (no_draft, approve()),
        (spam, reject("spam")),
        (esc, escalate("management")),
    ] {
        let c = q.claim(id, "ana").await.unwrap();
        audit_total += 1;
        let r = q.decide(&c, &decision).await.unwrap();
        audit_total += 1;
        outbox_total += r.actions.len() as i64;
        assert_eq!(r.undo_until, T0 + 30_000);
        assert_eq!(count(&q, "SELECT COUNT(*) FROM audit").await, audit_total);
        assert_eq!(count(&q, "SELECT COUNT(*) FROM outbox").await, outbox_total);
        let db = client(&q).await;
        let (state, decision_id): (String, Option<i64>) = {
            let row = db
                .query_one(
                    "SELECT state, decision_id FROM requests WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
            (row.get(0), row.get(1))
        };
        assert_eq!(state, r.state.as_str());
        assert_eq!(decision_id, Some(r.decision_id));
        for a in &r.actions {
            assert_eq!(
                a.idempotency_key,
                signoff::store::idempotency_key(id, r.decision_id, a.action)
            );
            let row = db
                .query_one(
                    "SELECT status, next_attempt_at, decision_id FROM outbox WHERE id = $1",
                    &[&a.id],
                )
                .await
                .unwrap();
            assert_eq!(row.get::<_, String>(0), "queued");
            assert_eq!(row.get::<_, i64>(1), T0 + 30_000);
            assert_eq!(row.get::<_, i64>(2), r.decision_id);
        }
        let detail: String = db
            .query_one(
                "SELECT detail FROM audit WHERE request_id = $1 AND kind = 'decided'",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        let detail: Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(detail["decision_id"], json!(r.decision_id));
        assert_eq!(
            detail["actions"],
            json!(
                r.actions
                    .iter()
                    .map(|a| a.idempotency_key.clone())
                    .collect::<Vec<_>>()
            )
        );
    }
    // The rules of which actions go out are the policy's: no Gmail draft without a
    // reply to draft, none at all for a rejection.
    let actions = |id: i64| {
        let q = &q;
        async move {
            client(q)
                .await
                .query(
                    "SELECT action FROM outbox WHERE request_id = $1 ORDER BY id",
                    &[&id],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    let lead_actions = actions(lead).await;
    assert!(
        lead_actions.contains(&"gmail".to_string()),
        "{lead_actions:?}"
    );
    assert!(!actions(no_draft).await.contains(&"gmail".to_string()));
    assert!(actions(spam).await.is_empty());
    // A refused decision (an unknown reason) writes nothing.
    let extra = seed(&q, &common::request("x", json!({})), T0).await;
    let c = q.claim(extra, "ana").await.unwrap();
    let before = count(&q, "SELECT COUNT(*) FROM audit").await;
    assert!(matches!(
        q.decide(&c, &reject("no such reason")).await,
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        q.decide(&c, &escalate("nowhere")).await,
        Err(QueueError::Invalid(_))
    ));
    assert_eq!(count(&q, "SELECT COUNT(*) FROM audit").await, before);
    assert_chain(&q).await;
}

#[tokio::test]
async fn edits_are_recorded_with_the_edited_flag_and_feed_the_decision() {
    let t = fresh("edit").await;
    let q = t.open().await;
    let id = seed(&q, &common::request("a", json!({})), T0).await;
    let c = q.claim(id, "ana").await.unwrap();
    q.edit(&c, EditableField::Priority, Some("High".into()))
        .await
        .unwrap();
    // The same value again writes nothing.
    q.edit(&c, EditableField::Priority, Some("high".into()))
        .await
        .unwrap();
    assert!(matches!(
        q.edit(&c, EditableField::Intent, Some("nonsense".into()))
            .await,
        Err(QueueError::Invalid(_))
    ));
    let db = client(&q).await;
    let row = db
        .query_one(
            "SELECT priority, priority_rank, edited FROM requests WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("high"));
    assert_eq!(
        row.get::<_, i64>(1),
        q.db().policy().priority_rank(Some("high"))
    );
    assert_eq!(row.get::<_, i64>(2), 1);
    assert_eq!(count(&q, "SELECT COUNT(*) FROM edits").await, 1);
    assert_eq!(kinds(&q, id).await, vec!["claimed", "edited"]);
    let r = q
        .decide(
            &c,
            &Decision {
                sets: vec![(EditableField::Summary, Some("Edited summary".into()))],
                ..approve()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        kinds(&q, id).await,
        vec!["claimed", "edited", "edited", "decided"]
    );
    let fields: String = db
        .query_one(
            "SELECT fields FROM decisions WHERE id = $1",
            &[&r.decision_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        fields.contains("Edited summary") && fields.contains("high"),
        "{fields}"
    );
    // An edit under a stale claim changes nothing.
    assert!(matches!(
        q.edit(&c, EditableField::Summary, Some("late".into()))
            .await,
        Err(QueueError::LeaseLost { .. })
    ));
}

#[tokio::test]
async fn undo_inside_the_window_cancels_the_actions_and_is_refused_after() {
    let t = fresh("undo").await;
    let q = t.open().await;
    let id = seed(&q, &common::request("a", json!({})), T0).await;
    let c = q.claim(id, "ana").await.unwrap();
    let r = q.decide(&c, &approve()).await.unwrap();
    assert!(!r.actions.is_empty());
    assert!(matches!(
        q.undo(id, "bo").await,
        Err(QueueError::CannotUndo { ref why, .. }) if why.contains("made by ana")
    ));
    t.clock.advance(20_000);
    let back = q.undo(id, "ana").await.unwrap();
    assert_eq!((back.id, back.fence), (id, 2));
    let db = client(&q).await;
    let cancelled: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM outbox WHERE decision_id = $1 AND status = 'cancelled'",
            &[&r.decision_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cancelled, r.actions.len() as i64);
    let row = db
        .query_one(
            "SELECT state, claimed_by, decision_id FROM requests WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "in_review");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("ana"));
    assert_eq!(row.get::<_, Option<i64>>(2), None);
    assert_eq!(
        kinds(&q, id).await,
        vec!["claimed", "decided", "undone", "claimed"]
    );
    assert!(matches!(
        q.undo(id, "ana").await,
        Err(QueueError::CannotUndo { ref why, .. }) if why.contains("no decision")
    ));
    // Decided again; past the window the undo is refused.
    let r2 = q.decide(&back, &approve()).await.unwrap();
    t.clock.advance(31_000);
    match q.undo(id, "ana").await {
        Err(QueueError::CannotUndo { why, .. }) => {
            assert_eq!(why, "the undo window closed 1s ago")
        }
        other => panic!("expected CannotUndo, got {other:?}"),
    }
    // Inside the window but with an action attempted: refused.
    let other = seed(&q, &common::request("b", json!({})), T0).await;
    let c = q.claim(other, "ana").await.unwrap();
    let r3 = q.decide(&c, &approve()).await.unwrap();
    db.execute(
        "UPDATE outbox SET attempts = 1 WHERE id = $1",
        &[&r3.actions[0].id],
    )
    .await
    .unwrap();
    assert!(matches!(
        q.undo(other, "ana").await,
        Err(QueueError::CannotUndo { ref why, .. }) if why.contains("started to go out")
    ));
    let queued: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM outbox WHERE decision_id = $1 AND status = 'queued'",
            &[&r2.decision_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, r2.actions.len() as i64);
    assert_chain(&q).await;
}

#[tokio::test]
async fn the_kill_switch_resend_and_outcomes_are_audited() {
    let t = fresh("switch").await;
    let q = t.open().await;
    q.set_actions_paused(true, "ana").await.unwrap();
    let db = client(&q).await;
    let row = db
        .query_one(
            "SELECT value, updated_by, updated_at FROM settings WHERE key = 'actions.paused'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "true");
    assert_eq!(row.get::<_, String>(1), "ana");
    assert_eq!(row.get::<_, i64>(2), T0);
    q.set_actions_paused(false, "bo").await.unwrap();
    let switched: Vec<String> = db
        .query(
            "SELECT kind FROM audit WHERE request_id IS NULL ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(switched, vec!["kill_switch_on", "kill_switch_off"]);

    // Resend: only a dead letter, queued now with its attempts kept.
    let id = seed(&q, &common::request("a", json!({})), T0).await;
    let c = q.claim(id, "ana").await.unwrap();
    let r = q.decide(&c, &approve()).await.unwrap();
    let action = r.actions[0].id;
    assert!(
        matches!(q.resend(action, "ana").await, Err(QueueError::Invalid(ref m)) if m.contains("is queued, not dead"))
    );
    assert!(
        matches!(q.resend(9999, "ana").await, Err(QueueError::Invalid(ref m)) if m == "no outbox entry 9999")
    );
    db.execute(
        "UPDATE outbox SET status = 'dead', attempts = 4, response = '{\"error\":\"gone\"}' WHERE id = $1",
        &[&action],
    )
    .await
    .unwrap();
    t.clock.advance(5_000);
    q.resend(action, "bo").await.unwrap();
    let row = db
        .query_one(
            "SELECT status, next_attempt_at, attempts, response FROM outbox WHERE id = $1",
            &[&action],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "queued");
    assert_eq!(row.get::<_, i64>(1), T0 + 5_000);
    assert_eq!(row.get::<_, i64>(2), 4);
    assert_eq!(
        row.get::<_, String>(3),
        r#"{"error":"gone","resent":true,"attempts_base":4}"#
    );
    let detail: String = db
        .query_one(
            "SELECT detail FROM audit WHERE kind = 'resend' AND request_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        serde_json::from_str::<Value>(&detail).unwrap(),
        json!({"outbox_id": action, "action": r.actions[0].action.as_str()})
    );

    // Outcomes: after a decision, from the policy's list, with a reason where needed.
    let pending = seed(&q, &common::request("p", json!({})), T0).await;
    assert!(matches!(
        q.record_outcome(pending, "won", None, "ana").await,
        Err(QueueError::Invalid(ref m)) if m.contains("outcomes are recorded after a decision")
    ));
    assert!(matches!(
        q.record_outcome(777, "won", None, "ana").await,
        Err(QueueError::NotFound(777))
    ));
    assert!(matches!(
        q.record_outcome(id, "lost", Some("  "), "ana").await,
        Err(QueueError::Invalid(ref m)) if m.contains("needs a reason")
    ));
    assert!(matches!(
        q.record_outcome(id, "bogus", None, "ana").await,
        Err(QueueError::Invalid(_))
    ));
    q.record_outcome(id, "lost", Some(" budget "), "ana")
        .await
        .unwrap();
    let row = db
        .query_one(
            "SELECT value, reason, reviewer, at FROM outcomes WHERE request_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "lost");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("budget"));
    assert_eq!(
        kinds(&q, id).await.last().map(String::as_str),
        Some("outcome_recorded")
    );

    // An event of its own.
    let seq = q
        .db()
        .audit_event("ana", Some(id), "preview_rendered", &json!({"digest": "d"}))
        .await
        .unwrap();
    assert_eq!(seq, count(&q, "SELECT MAX(seq) FROM audit").await);
    assert_chain(&q).await;
}

/// An outbox row as both stores keep it: item, decision, action, key, status, when due,
/// the rendered request.
type OutboxRow = (i64, i64, String, String, String, i64, Option<String>);
/// A decision row: item, kind, reason, queue, note, the reviewed fields.
type DecisionRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// The same items and decisions on SQLite and on PostgreSQL give the same decisions,
/// outbox rows (rendered payloads included) and audit details.
#[tokio::test]
async fn decisions_write_the_same_rows_as_the_sqlite_store() {
    let policy = Arc::new(Policy::default());
    let renderer =
        signoff::actions::renderer(&signoff::actions::ActionsConfig::default(), policy.clone())
            .unwrap();
    let t = fresh("parity").await;
    let pg = t
        .open_with(policy.clone())
        .await
        .with_renderer(renderer.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut lite = signoff::store::Store::open(
        &dir.path().join("q.db"),
        policy.clone(),
        &signoff::store::StoreOptions {
            clock: t.clock.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    lite.set_renderer(renderer);
    let payloads = vec![
        common::request("lead", json!({})),
        common::request("nodraft", json!({"ai": {"draft_reply": null}})),
        common::request(
            "support",
            json!({"ai": {"intent": "support", "priority": "urgent"}}),
        ),
        common::request("spam", json!({})),
        common::request("esc", json!({})),
        common::request("edited", json!({})),
    ];
    let items: Vec<_> = payloads.iter().map(common::item).collect();
    lite.ingest_batch(&items, "system").unwrap();
    for p in &payloads {
        seed(&pg, p, T0).await;
    }
    let decisions = [
        approve(),
        approve(),
        approve(),
        reject("spam"),
        escalate("management"),
        Decision {
            note: Some("checked".into()),
            sets: vec![
                (EditableField::Intent, Some("support".into())),
                (EditableField::Summary, Some("Edited".into())),
            ],
            ..approve()
        },
    ];
    for (i, d) in decisions.iter().enumerate() {
        let id = i as i64 + 1;
        let lc = lite.claim(id, "ana").unwrap();
        let pc = pg.claim(id, "ana").await.unwrap();
        assert_eq!(lc, pc);
        let lr = lite.decide(&lc, d);
        let pr = pg.decide(&pc, d).await;
        match (lr, pr) {
            (Ok(l), Ok(p)) => assert_eq!(format!("{l:?}"), format!("{p:?}")),
            (Err(l), Err(p)) => assert_eq!(QueueError::from(l).to_string(), p.to_string()),
            (l, p) => panic!("item {id}: SQLite {l:?}, PostgreSQL {p:?}"),
        }
    }
    let lite_outbox: Vec<OutboxRow> = lite
        .connection()
        .prepare(
            "SELECT request_id, decision_id, action, idempotency_key, status, next_attempt_at, payload
             FROM outbox ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let pg_outbox: Vec<OutboxRow> = client(&pg)
        .await
        .query(
            "SELECT request_id, decision_id, action, idempotency_key, status, next_attempt_at, payload
             FROM outbox ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
        .collect();
    assert!(!pg_outbox.is_empty());
    assert!(
        pg_outbox.iter().all(|r| r.6.is_some()),
        "every action rendered"
    );
    assert_eq!(lite_outbox, pg_outbox);
    // The audit rows of the reviews (SQLite's ingest rows aside).
    let lite_audit: Vec<(String, Option<i64>, String, String)> = lite
        .connection()
        .prepare(
            "SELECT actor, request_id, kind, detail FROM audit WHERE kind != 'ingested' ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let pg_audit: Vec<(String, Option<i64>, String, String)> = client(&pg)
        .await
        .query(
            "SELECT actor, request_id, kind, detail FROM audit ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(lite_audit, pg_audit);
    let lite_decisions: Vec<DecisionRow> = lite
        .connection()
        .prepare("SELECT request_id, kind, reason, queue, note, fields FROM decisions ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let pg_decisions: Vec<DecisionRow> = client(&pg)
        .await
        .query(
            "SELECT request_id, kind, reason, queue, note, fields FROM decisions ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(lite_decisions, pg_decisions);
}

/// Reviewers on two servers (two handles, two pools) claim and decide until the queue is
/// empty: each item is decided once, its fences only grow, and no live lease is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_claimers_on_two_handles_take_each_item_once() {
    let items: usize = std::env::var("SIGNOFF_PG_REVIEW_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let tasks = 32;
    let t = fresh("concurrent").await;
    let a = Arc::new(t.open().await);
    let b = Arc::new(t.open().await);
    {
        let c = client(&a).await;
        let payload = common::request("x", json!({}));
        // Items in bulk, as ingest would leave them (revision 1 of each).
        c.execute(
            "INSERT INTO requests (source, external_id, payload_sha256, received_at, ingested_at,
                updated_at, priority_rank, intent, priority, summary)
             SELECT 'webform', 'e' || g, 'x', $2 + g, $2, $2, (g % 3), 'sales_lead', 'medium', 's'
             FROM generate_series(1, $1::bigint) g",
            &[&(items as i64), &T0],
        )
        .await
        .unwrap();
        c.execute(
            "INSERT INTO revisions (request_id, revision, payload, payload_sha256, ingested_at)
             SELECT id, 1, $1, 'x', $2 FROM requests",
            &[&payload.to_string(), &T0],
        )
        .await
        .unwrap();
    }
    let lost = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let q = if i % 2 == 0 { a.clone() } else { b.clone() };
        let lost = lost.clone();
        handles.push(tokio::spawn(async move {
            let reviewer = format!("r{i}");
            let mut decided = Vec::new();
            while let Some(c) = q.claim_next(&reviewer).await.unwrap() {
                match q.decide(&c, &approve()).await {
                    Ok(r) => decided.push((r.id, c.fence)),
                    Err(QueueError::LeaseLost { .. }) => {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("decide: {e}"),
                }
            }
            decided
        }));
    }
    let mut seen: HashMap<i64, i64> = HashMap::new();
    for h in handles {
        for (id, fence) in h.await.unwrap() {
            assert!(seen.insert(id, fence).is_none(), "item {id} decided twice");
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(lost.load(Ordering::Relaxed), 0, "no live lease was lost");
    assert_eq!(seen.len(), items, "every item decided");
    assert!(seen.values().all(|f| *f == 1), "each item was claimed once");
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM decisions").await,
        items as i64
    );
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM requests WHERE state = 'approved'").await,
        items as i64
    );
    // Fences per item grow with the audit sequence.
    let unordered: i64 = count(
        &a,
        "SELECT COUNT(*) FROM (SELECT (detail::json->>'fence')::bigint AS fence,
            lag((detail::json->>'fence')::bigint) OVER (PARTITION BY request_id ORDER BY seq) AS before
            FROM audit WHERE kind = 'claimed') x WHERE fence <= before",
    )
    .await;
    assert_eq!(unordered, 0);
    let outbox = count(&a, "SELECT COUNT(*) FROM outbox").await;
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM audit").await,
        2 * items as i64
    );
    assert_chain(&a).await;
    eprintln!(
        "{items} items, {tasks} tasks on 2 handles: {:.0} claim+decide/s ({} outbox rows) in {:.2?}",
        items as f64 / elapsed.as_secs_f64(),
        outbox,
        elapsed
    );
}
