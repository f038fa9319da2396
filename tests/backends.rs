//! One behavioural suite for every queue backend: each test below runs once per backend
//! (`sqlite::<name>`, `postgres::<name>`) against `Arc<dyn Queue>` on a fresh store, with
//! the store's clock pinned and moved by the test. Every test ends by verifying the audit
//! log with the backend's own verifier.
#[path = "support/backend.rs"]
mod backend;
mod common;
#[path = "support/pg.rs"]
mod pg;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use backend::{Backend, Harness, T0, err_of};
use common::request;
use serde_json::json;
use signoff::model::{DecisionKind, EditableField, State};
use signoff::queue::{Claim, Decision, ListQuery, Queue, QueueError, Sort};

/// Runs each named test once per backend, in a module named for the backend, then checks
/// the audit log.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(h) = super::Harness::open(super::Backend::Sqlite).await {
                        super::$name(&h).await;
                        h.finish().await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(h) = super::Harness::open(super::Backend::Postgres).await {
                        super::$name(&h).await;
                        h.finish().await;
                    }
                }
            )*
        }
    };
}

per_backend!(
    ingest_dedups_revises_quarantines_and_refuses_decided,
    lists_sort_filter_page_and_count,
    get_shows_the_item_as_ingested,
    claim_next_follows_priority_then_age,
    a_claim_held_by_another_is_refused_with_its_holder,
    an_expired_lease_goes_back_with_a_higher_fence,
    a_heartbeat_renews_the_lease,
    release_gives_the_item_back,
    edits_are_saved_with_old_and_new_values,
    an_approval_writes_decision_audit_and_outbox_together,
    reject_and_escalate_check_the_policy_and_queue_their_actions,
    a_stale_fence_is_lease_lost_and_writes_nothing,
    a_stale_revision_is_refused_and_writes_nothing,
    a_decided_item_is_already_decided,
    undo_works_inside_the_window_and_is_refused_after,
    the_kill_switch_is_shared_and_audited,
    resend_queues_a_dead_letter_again,
    outcomes_are_recorded_after_a_decision,
    the_timeline_lists_an_items_entries_oldest_first,
    the_change_token_moves_on_every_write,
    stats_and_volume_count_what_happened,
    sixteen_reviewers_on_one_queue_decide_each_item_once,
    two_handles_on_one_store_decide_each_item_once,
);

fn approve() -> Decision {
    Decision {
        kind: DecisionKind::Approve,
        revision: None,
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

/// `n` requests `e0..`, all alike.
fn plain(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| request(&format!("e{i}"), json!({})))
        .collect()
}

async fn kinds(q: &dyn Queue, id: i64) -> Vec<String> {
    q.timeline(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn state(q: &dyn Queue, id: i64) -> State {
    q.get(id).await.unwrap().summary.state
}

/// How many audit entries the items `ids` have, and their outbox rows: what a refused
/// write must leave as it was.
async fn footprint(q: &dyn Queue, ids: &[i64]) -> (usize, usize) {
    let mut audit = 0;
    let mut actions = 0;
    for &id in ids {
        audit += q.timeline(id).await.unwrap().len();
        actions += q.get(id).await.unwrap().actions.len();
    }
    (audit, actions)
}

async fn ingest_dedups_revises_quarantines_and_refuses_decided(h: &Harness) {
    let q = &*h.queue;
    let a = request("a", json!({}));
    let a2 = request("a", json!({"ai": {"summary": "Wants a demo next week"}}));
    let b = request("b", json!({}));
    let body = format!("{a}\n{b}\n{a}\n{{\"source\": \"webform\"}}\n{a2}\n");
    let (report, problems) = h.ingest(body).await;
    assert_eq!(
        (
            report.ingested,
            report.duplicates,
            report.revised,
            report.rejected,
            report.conflicts
        ),
        (2, 1, 1, 1, 0),
        "{report}"
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 4);
    assert!(problems[0].reason.contains("external_id"), "{problems:?}");
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.revision, 2);
    assert_eq!(d.fields.summary.as_deref(), Some("Wants a demo next week"));
    assert_eq!(d.summary.external_id, "a");
    assert_eq!(q.get(2).await.unwrap().summary.revision, 1);
    assert_eq!(q.counts().await.unwrap().pending, 2);

    let c = q.claim(1, "ana").await.unwrap();
    q.decide(&c, &approve()).await.unwrap();
    let a3 = request("a", json!({"ai": {"summary": "third"}}));
    let (report, problems) = h.ingest(format!("{a3}\n")).await;
    assert_eq!((report.ingested, report.conflicts), (0, 1), "{report}");
    assert_eq!(problems.len(), 1, "{problems:?}");
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.revision, 2, "a decided item keeps its revision");
    assert_eq!(d.summary.state, State::Approved);
    assert_eq!(kinds(q, 1).await[0], "ingested");
}

async fn lists_sort_filter_page_and_count(h: &Harness) {
    let q = &*h.queue;
    let requests: Vec<_> = (0..12)
        .map(|i| {
            let p = ["urgent", "high", "normal", "low"][i % 4];
            request(
                &format!("e{i:02}"),
                json!({"received_at": format!("2026-11-{:02}T10:00:00Z", 1 + i),
                       "ai": {"priority": p, "confidence": (i as f64) / 12.0,
                              "intent": if i % 3 == 0 { "billing_question" } else { "sales_lead" }},
                       "raw": {"from": format!("sender{i}@example.com")}}),
            )
        })
        .collect();
    h.seed(&requests).await;
    let ext = |page: &signoff::queue::Page| -> Vec<String> {
        page.items.iter().map(|i| i.external_id.clone()).collect()
    };
    // Queue order: priority, then oldest first.
    let page = q.list(&ListQuery::default()).await.unwrap();
    assert_eq!(page.total, 12);
    assert_eq!(
        ext(&page),
        [
            "e00", "e04", "e08", "e01", "e05", "e09", "e02", "e06", "e10", "e03", "e07", "e11"
        ]
    );
    let page = q
        .list(&ListQuery {
            sort: Sort::Newest,
            offset: 2,
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((page.total, page.offset), (12, 2));
    assert_eq!(ext(&page), ["e09", "e08", "e07"]);
    let page = q
        .list(&ListQuery {
            sort: Sort::Oldest,
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ext(&page), ["e00", "e01"]);
    let page = q
        .list(&ListQuery {
            sort: Sort::Confidence,
            ..Default::default()
        })
        .await
        .unwrap();
    let conf: Vec<f64> = page.items.iter().map(|i| i.confidence.unwrap()).collect();
    assert!(conf.windows(2).all(|w| w[0] <= w[1]), "{conf:?}");

    let mut filtered = ListQuery::default();
    filtered.filter.priorities = vec!["high".into()];
    filtered.filter.conf_below = Some(0.5);
    let page = q.list(&filtered).await.unwrap();
    assert_eq!(ext(&page), ["e01", "e05"]);
    let mut filtered = ListQuery::default();
    filtered.filter.text = Some("SENDER1".into());
    let page = q.list(&filtered).await.unwrap();
    assert_eq!(
        page.total,
        3,
        "sender1, sender10, sender11: {:?}",
        ext(&page)
    );
    let mut filtered = ListQuery::default();
    filtered.filter.intent = Some("billing_question".into());
    filtered.filter.conf_at_least = Some(0.5);
    let page = q.list(&filtered).await.unwrap();
    assert_eq!(ext(&page), ["e09", "e06"], "high before medium");

    // Decide a few: the default listing is what is still open; decided items list by state.
    let first = q.claim_next("ana").await.unwrap().unwrap();
    q.decide(&first, &approve()).await.unwrap();
    let second = q.claim_next("ana").await.unwrap().unwrap();
    q.decide(&second, &reject("spam")).await.unwrap();
    let _held = q.claim_next("ben").await.unwrap().unwrap();
    let counts = q.counts().await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.in_review,
            counts.approved,
            counts.rejected,
            counts.escalated
        ),
        (9, 1, 1, 1, 0)
    );
    assert!(!counts.actions_paused);
    // Received in November, looked at from 21 November noon: every open SLA is past.
    assert_eq!(counts.sla_breaches, 10);
    let oldest_open = q.get(2).await.unwrap().summary.received_at;
    assert_eq!(counts.oldest_open, Some(oldest_open));
    assert_eq!(q.list(&ListQuery::default()).await.unwrap().total, 10);
    let decided = q
        .list(&ListQuery {
            states: vec![State::Approved, State::Rejected],
            sort: Sort::RecentlyDecided,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(decided.total, 2);
    let who: Vec<_> = decided
        .items
        .iter()
        .map(|i| {
            let d = i.decided.as_ref().expect("a decided row says by whom");
            (i.id, d.kind.clone(), d.reviewer.clone())
        })
        .collect();
    assert!(
        who.contains(&(first.id, "approve".into(), "ana".into())),
        "{who:?}"
    );
    assert!(
        who.contains(&(second.id, "reject".into(), "ana".into())),
        "{who:?}"
    );
}

async fn get_shows_the_item_as_ingested(h: &Harness) {
    let q = &*h.queue;
    let r = request(
        "g1",
        json!({"correlation_id": "corr-7", "ai": {"intent": "refund", "confidence": 0.42}}),
    );
    h.seed(std::slice::from_ref(&r)).await;
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.id, 1);
    assert_eq!(d.summary.source, "webform");
    assert_eq!(d.summary.external_id, "g1");
    assert_eq!(d.summary.state, State::Pending);
    assert_eq!(d.summary.revision, 1);
    assert_eq!(d.summary.priority.as_deref(), Some("medium"), "an alias");
    assert_eq!(d.summary.confidence, Some(0.42));
    assert_eq!(d.summary.subject.as_deref(), Some("Demo please"));
    assert_eq!(d.summary.claimed_by, None);
    assert_eq!(d.summary.decided, None);
    let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
    assert_eq!(payload, r, "the payload as ingested");
    assert_eq!(d.flags.len(), 1);
    assert_eq!(
        d.flags[0].message,
        "intent 'refund' is not an allowed intent"
    );
    assert_eq!(d.summary.flag_count, 1);
    assert_eq!(d.fields.summary.as_deref(), Some("Wants a demo"));
    assert!(d.edits.is_empty() && d.actions.is_empty() && d.decision.is_none());
    assert_eq!(err_of(q.get(99).await), QueueError::NotFound(99));
}

async fn claim_next_follows_priority_then_age(h: &Harness) {
    let q = &*h.queue;
    let mk = |ext: &str, p: &str, at: &str| {
        request(ext, json!({"received_at": at, "ai": {"priority": p}}))
    };
    h.seed(&[
        mk("low-old", "low", "2026-11-01T00:00:00Z"),
        mk("high-new", "high", "2026-11-20T00:00:00Z"),
        mk("high-old", "high", "2026-11-19T00:00:00Z"),
        mk("urgent", "urgent", "2026-11-20T05:00:00Z"),
    ])
    .await;
    let mut order = Vec::new();
    while let Some(c) = q.claim_next("r").await.unwrap() {
        assert_eq!(c.reviewer, "r");
        assert_eq!(c.lease_expires, T0 + h.policy.lease_seconds as i64 * 1000);
        order.push(q.get(c.id).await.unwrap().summary.external_id);
    }
    assert_eq!(order, ["urgent", "high-old", "high-new", "low-old"]);
    assert_eq!(q.claim_next("r").await.unwrap(), None);
    assert_eq!(q.counts().await.unwrap().in_review, 4);
}

async fn a_claim_held_by_another_is_refused_with_its_holder(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let ana = q.claim(1, "ana").await.unwrap();
    h.clock.advance(10_000);
    match err_of(q.claim(1, "ben").await) {
        QueueError::HeldBy {
            id,
            reviewer,
            until,
            now,
        } => {
            assert_eq!((id, reviewer.as_str()), (1, "ana"));
            assert_eq!(until, ana.lease_expires);
            assert_eq!(now, T0 + 10_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        q.claim_next("ben").await.unwrap(),
        None,
        "nothing else to take"
    );
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.state, State::InReview);
    assert_eq!(d.summary.claimed_by.as_deref(), Some("ana"));
    assert_eq!(d.summary.lease_expires, Some(ana.lease_expires));
    // The holder opening it again gets a new fence: the old claim is stale.
    let again = q.claim(1, "ana").await.unwrap();
    assert_eq!(again.fence, ana.fence + 1);
    assert_eq!(q.get(1).await.unwrap().fence, again.fence);
}

async fn an_expired_lease_goes_back_with_a_higher_fence(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let ana = q.claim_next("ana").await.unwrap().unwrap();
    h.clock.advance(h.policy.lease_seconds as i64 * 1000 - 1);
    assert!(matches!(
        err_of(q.claim(1, "ben").await),
        QueueError::HeldBy { .. }
    ));
    h.clock.advance(1);
    let ben = q
        .claim_next("ben")
        .await
        .unwrap()
        .expect("an expired lease puts the item back");
    assert_eq!(ben.id, 1);
    assert!(ben.fence > ana.fence, "{ben:?} after {ana:?}");
    let before = footprint(q, &[1]).await;
    match err_of(q.decide(&ana, &approve()).await) {
        QueueError::LeaseLost { id, fence, holder } => {
            assert_eq!((id, fence), (1, ana.fence));
            assert_eq!(holder.as_deref(), Some("ben"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        err_of(q.heartbeat(&ana).await),
        QueueError::LeaseLost { .. }
    ));
    assert_eq!(footprint(q, &[1]).await, before);
    assert_eq!(
        kinds(q, 1).await,
        ["ingested", "claimed", "lease_expired", "claimed"]
    );
    q.decide(&ben, &approve()).await.unwrap();
}

async fn a_heartbeat_renews_the_lease(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let lease = h.policy.lease_seconds as i64 * 1000;
    let c = q.claim_next("ana").await.unwrap().unwrap();
    h.clock.advance(200_000);
    let renewed = q.heartbeat(&c).await.unwrap();
    assert_eq!(renewed.fence, c.fence, "a heartbeat keeps the fence");
    assert_eq!(renewed.lease_expires, T0 + 200_000 + lease);
    // Past the first lease's end, but inside the renewed one: still ana's.
    h.clock.advance(200_000);
    assert!(matches!(
        err_of(q.claim(1, "ben").await),
        QueueError::HeldBy { .. }
    ));
    let renewed = q.heartbeat(&renewed).await.unwrap();
    assert_eq!(renewed.lease_expires, T0 + 400_000 + lease);
    let stale = Claim {
        fence: c.fence + 5,
        ..c.clone()
    };
    assert!(matches!(
        err_of(q.heartbeat(&stale).await),
        QueueError::LeaseLost { .. }
    ));
    assert_eq!(
        kinds(q, 1).await,
        ["ingested", "claimed", "lease_renewed", "lease_renewed"]
    );
    q.decide(&renewed, &approve()).await.unwrap();
}

async fn release_gives_the_item_back(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let c = q.claim_next("ana").await.unwrap().unwrap();
    q.release(&c).await.unwrap();
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.state, State::Pending);
    assert_eq!(d.summary.claimed_by, None);
    assert!(q.release(&c).await.is_err(), "a released claim is gone");
    assert!(matches!(
        err_of(q.decide(&c, &approve()).await),
        QueueError::LeaseLost { .. }
    ));
    let ben = q.claim(1, "ben").await.unwrap();
    assert!(ben.fence > c.fence);
    assert_eq!(
        kinds(q, 1).await,
        ["ingested", "claimed", "released", "claimed"]
    );
}

async fn edits_are_saved_with_old_and_new_values(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let c = q.claim_next("ana").await.unwrap().unwrap();
    h.clock.advance(1_000);
    q.edit(
        &c,
        EditableField::Summary,
        Some("Wants a demo on Friday".into()),
    )
    .await
    .unwrap();
    q.edit(&c, EditableField::Priority, Some("high".into()))
        .await
        .unwrap();
    q.edit(&c, EditableField::DraftReply, None).await.unwrap();
    let err = err_of(
        q.edit(&c, EditableField::Intent, Some("refunds".into()))
            .await,
    );
    assert!(matches!(err, QueueError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("allowed: sales_lead"), "{err}");
    let d = q.get(1).await.unwrap();
    assert_eq!(d.fields.summary.as_deref(), Some("Wants a demo on Friday"));
    assert_eq!(d.fields.priority.as_deref(), Some("high"));
    assert_eq!(d.fields.draft_reply, None);
    assert!(d.summary.edited);
    let edits: Vec<_> = d
        .edits
        .iter()
        .map(|e| {
            (
                e.field.as_str(),
                e.old.as_deref(),
                e.new.as_deref(),
                e.reviewer.as_str(),
                e.at,
            )
        })
        .collect();
    assert_eq!(
        edits,
        [
            (
                "summary",
                Some("Wants a demo"),
                Some("Wants a demo on Friday"),
                "ana",
                T0 + 1_000
            ),
            ("priority", Some("medium"), Some("high"), "ana", T0 + 1_000),
            (
                "draft_reply",
                Some("Hello Dana, ..."),
                None,
                "ana",
                T0 + 1_000
            ),
        ]
    );
    // The payload as ingested is untouched.
    assert!(d.payload.contains("\"Wants a demo\""));
    assert_eq!(
        kinds(q, 1).await,
        ["ingested", "claimed", "edited", "edited", "edited"]
    );
    let stale = Claim {
        fence: c.fence - 1,
        ..c.clone()
    };
    assert!(matches!(
        err_of(
            q.edit(&stale, EditableField::Summary, Some("x".into()))
                .await
        ),
        QueueError::LeaseLost { .. }
    ));
    let r = q.decide(&c, &approve()).await.unwrap();
    assert_eq!(r.state, State::Approved);
}

async fn an_approval_writes_decision_audit_and_outbox_together(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(2)).await;
    let c = q.claim_next("ana").await.unwrap().unwrap();
    h.clock.advance(5_000);
    let receipt = q
        .decide(
            &c,
            &Decision {
                kind: DecisionKind::Approve,
                revision: Some(1),
                note: Some("looks right".into()),
                sets: vec![(EditableField::Priority, Some("high".into()))],
            },
        )
        .await
        .unwrap();
    let now = T0 + 5_000;
    let undo_until = now + h.policy.undo_seconds as i64 * 1000;
    assert_eq!((receipt.id, receipt.state), (c.id, State::Approved));
    assert_eq!(receipt.undo_until, undo_until);
    let wanted: Vec<&str> = h
        .policy
        .actions_for("sales_lead")
        .iter()
        .map(|a| a.as_str())
        .collect();
    let got: Vec<&str> = receipt.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(got, wanted);
    assert!(
        receipt.actions.iter().all(|a| a.status == "queued"
            && a.attempts == 0
            && a.next_attempt_at == Some(undo_until))
    );
    let keys: HashSet<&str> = receipt
        .actions
        .iter()
        .map(|a| a.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), receipt.actions.len(), "one key per action");

    let d = q.get(c.id).await.unwrap();
    assert_eq!(d.summary.state, State::Approved);
    assert_eq!(d.summary.claimed_by, None);
    assert_eq!(d.fields.priority.as_deref(), Some("high"));
    let decision = d.decision.expect("the decision");
    assert_eq!(decision.id, receipt.decision_id);
    assert_eq!(decision.kind, DecisionKind::Approve);
    assert_eq!(decision.note.as_deref(), Some("looks right"));
    assert_eq!((decision.reviewer.as_str(), decision.at), ("ana", now));
    assert_eq!((decision.undo_until, decision.undone), (undo_until, false));
    assert_eq!(d.actions, receipt.actions);
    let timeline = q.timeline(c.id).await.unwrap();
    let k: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(k, ["ingested", "claimed", "edited", "decided"]);
    let decided = timeline.last().unwrap();
    assert_eq!((decided.actor.as_str(), decided.at), ("ana", now));
    assert_eq!(decided.detail["fence"], json!(c.fence));
    // The other item saw none of it.
    let other = q.get(2).await.unwrap();
    assert!(other.actions.is_empty() && other.decision.is_none());
    assert_eq!(kinds(q, 2).await, ["ingested"]);
}

async fn reject_and_escalate_check_the_policy_and_queue_their_actions(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(3)).await;
    let c = q.claim(1, "ana").await.unwrap();
    let before = footprint(q, &[1]).await;
    let err = err_of(
        q.decide(
            &c,
            &Decision {
                sets: vec![(EditableField::Summary, Some("changed".into()))],
                ..reject("because")
            },
        )
        .await,
    );
    assert!(matches!(err, QueueError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("'because' is not a reject reason; reasons: wrong_intent"),
        "{err}"
    );
    let err = err_of(q.decide(&c, &escalate("nowhere")).await);
    assert!(err.to_string().contains("queues: legal, billing"), "{err}");
    assert_eq!(
        footprint(q, &[1]).await,
        before,
        "a refused decision writes nothing"
    );
    assert!(q.get(1).await.unwrap().edits.is_empty(), "nor its edits");

    let r = q
        .decide(
            &c,
            &Decision {
                note: Some("dupe of #2".into()),
                ..reject("duplicate")
            },
        )
        .await
        .unwrap();
    assert_eq!(r.state, State::Rejected);
    assert!(r.actions.is_empty(), "{:?}", r.actions);
    assert_eq!(
        q.get(1).await.unwrap().decision.unwrap().kind,
        DecisionKind::Reject {
            reason: "duplicate".into()
        }
    );

    let c = q.claim(2, "ana").await.unwrap();
    let r = q.decide(&c, &escalate("legal")).await.unwrap();
    assert_eq!(r.state, State::Escalated);
    let actions: Vec<&str> = r.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["slack"], "legal escalations alert Slack");
    let c = q.claim(3, "ana").await.unwrap();
    let r = q.decide(&c, &escalate("management")).await.unwrap();
    assert!(r.actions.is_empty());
    let counts = q.counts().await.unwrap();
    assert_eq!(
        (counts.rejected, counts.escalated, counts.pending),
        (1, 2, 0)
    );
}

async fn a_stale_fence_is_lease_lost_and_writes_nothing(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let first = q.claim(1, "ana").await.unwrap();
    // Ana opens the item again elsewhere: a new fence; the first claim is stale.
    let second = q.claim(1, "ana").await.unwrap();
    assert_eq!(second.fence, first.fence + 1);
    let before = footprint(q, &[1]).await;
    let token = settled(q).await;
    let err = err_of(
        q.decide(
            &first,
            &Decision {
                sets: vec![(EditableField::Summary, Some("x".into()))],
                ..approve()
            },
        )
        .await,
    );
    assert!(
        matches!(err, QueueError::LeaseLost { id: 1, fence, .. } if fence == first.fence),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(footprint(q, &[1]).await, before);
    assert_eq!(
        q.change_token().await.unwrap(),
        token,
        "nothing was written"
    );
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.state, State::InReview);
    assert!(d.edits.is_empty() && d.decision.is_none());
    q.decide(&second, &approve()).await.unwrap();
}

async fn a_stale_revision_is_refused_and_writes_nothing(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let c = q.claim(1, "ana").await.unwrap();
    let shown = q.get(1).await.unwrap().summary.revision;
    assert_eq!(shown, 1);
    // Upstream sends the request again with another summary: revision 2 of a claimed item.
    let (report, _) = h
        .ingest(format!(
            "{}\n",
            request("e0", json!({"ai": {"summary": "Cancel the demo"}}))
        ))
        .await;
    assert_eq!(report.revised, 1);
    let before = footprint(q, &[1]).await;
    let err = err_of(
        q.decide(
            &c,
            &Decision {
                revision: Some(shown),
                sets: vec![(EditableField::Priority, Some("high".into()))],
                ..approve()
            },
        )
        .await,
    );
    assert_eq!(
        err,
        QueueError::StaleRevision {
            id: 1,
            shown: 1,
            current: 2
        }
    );
    assert_eq!(footprint(q, &[1]).await, before);
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.state, State::InReview, "still claimed, undecided");
    assert_eq!(d.fields.priority.as_deref(), Some("medium"));
    assert_eq!(d.fields.summary.as_deref(), Some("Cancel the demo"));
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
    assert_eq!(r.state, State::Approved);
}

async fn a_decided_item_is_already_decided(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let c = q.claim(1, "ana").await.unwrap();
    q.decide(&c, &reject("spam")).await.unwrap();
    assert_eq!(
        err_of(q.claim(1, "ben").await),
        QueueError::AlreadyDecided {
            id: 1,
            state: State::Rejected
        }
    );
    let before = footprint(q, &[1]).await;
    let again = err_of(q.decide(&c, &approve()).await);
    assert!(
        matches!(
            again,
            QueueError::AlreadyDecided { .. } | QueueError::LeaseLost { .. }
        ),
        "{again:?}"
    );
    assert_eq!(footprint(q, &[1]).await, before);
    assert_eq!(q.claim_next("ben").await.unwrap(), None);
    assert_eq!(state(q, 1).await, State::Rejected);
}

async fn undo_works_inside_the_window_and_is_refused_after(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(2)).await;
    let c = q.claim(1, "ana").await.unwrap();
    q.decide(&c, &approve()).await.unwrap();
    assert!(matches!(
        err_of(q.undo(1, "ben").await),
        QueueError::CannotUndo { id: 1, .. }
    ));
    h.clock.advance(h.policy.undo_seconds as i64 * 1000 - 1);
    let again = q.undo(1, "ana").await.unwrap();
    assert_eq!((again.id, again.reviewer.as_str()), (1, "ana"));
    assert!(again.fence > c.fence);
    let d = q.get(1).await.unwrap();
    assert_eq!(d.summary.state, State::InReview);
    assert_eq!(d.summary.claimed_by.as_deref(), Some("ana"));
    let taken_back = d.decision.expect("the decision, marked undone");
    assert!(taken_back.undone, "{taken_back:?}");
    assert!(d.actions.is_empty(), "no live actions: {:?}", d.actions);
    let stats = q.stats(None).await.unwrap();
    let cancelled: u64 = stats.actions.iter().map(|a| a.cancelled).sum();
    assert_eq!(
        cancelled, 3,
        "its actions are cancelled: {:?}",
        stats.actions
    );
    assert!(matches!(
        err_of(q.undo(1, "ana").await),
        QueueError::CannotUndo { .. }
    ));
    let k = kinds(q, 1).await;
    assert_eq!(k[k.len() - 2..], ["undone", "claimed"]);
    q.decide(&again, &approve()).await.unwrap();

    let c = q.claim(2, "ana").await.unwrap();
    q.decide(&c, &approve()).await.unwrap();
    h.clock.advance(h.policy.undo_seconds as i64 * 1000 + 1);
    let err = err_of(q.undo(2, "ana").await);
    assert!(err.to_string().contains("undo window closed"), "{err}");
    assert_eq!(state(q, 2).await, State::Approved);
    let stats = q.stats(None).await.unwrap();
    assert_eq!((stats.decisions.total, stats.decisions.undone), (2, 1));
}

async fn the_kill_switch_is_shared_and_audited(h: &Harness) {
    let q = &*h.queue;
    let other = h.second_handle().await;
    h.seed(&plain(1)).await;
    assert!(!q.actions_paused().await.unwrap());
    q.set_actions_paused(true, "ana").await.unwrap();
    assert!(q.actions_paused().await.unwrap());
    assert!(other.actions_paused().await.unwrap(), "for everyone");
    assert!(other.counts().await.unwrap().actions_paused);
    // Decisions still queue their actions while sending is paused.
    let c = q.claim_next("ana").await.unwrap().unwrap();
    let r = q.decide(&c, &approve()).await.unwrap();
    assert!(r.actions.iter().all(|a| a.status == "queued"));
    other.set_actions_paused(false, "ben").await.unwrap();
    assert!(!q.actions_paused().await.unwrap());
    assert!(!q.counts().await.unwrap().actions_paused);
}

async fn resend_queues_a_dead_letter_again(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(1)).await;
    let c = q.claim_next("ana").await.unwrap().unwrap();
    let r = q.decide(&c, &approve()).await.unwrap();
    let target = r.actions[0].id;
    let err = err_of(q.resend(target, "ana").await);
    assert!(err.to_string().contains("only dead letters"), "{err}");
    assert!(matches!(
        err_of(q.resend(9_999, "ana").await),
        QueueError::Invalid(_)
    ));
    h.clock.advance(h.policy.undo_seconds as i64 * 1000);
    h.make_dead(target).await;
    let dead = q.get(1).await.unwrap().actions;
    let row = dead.iter().find(|a| a.id == target).unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("dead", 1));
    assert!(row.last_error.is_some());
    q.resend(target, "ana").await.unwrap();
    let row = q
        .get(1)
        .await
        .unwrap()
        .actions
        .into_iter()
        .find(|a| a.id == target)
        .unwrap();
    assert_eq!(row.status, "queued");
    assert_eq!(row.attempts, 1, "its attempts are kept for the record");
    assert_eq!(row.next_attempt_at, Some(h.clock.now()));
    let k = kinds(q, 1).await;
    assert!(
        k.contains(&"action_dead".to_string()) && k.last().unwrap() == "resend",
        "{k:?}"
    );
    let err = err_of(q.resend(target, "ana").await);
    assert!(err.to_string().contains("only dead letters"), "{err}");
}

async fn outcomes_are_recorded_after_a_decision(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(2)).await;
    let err = err_of(q.record_outcome(1, "qualified", None, "ana").await);
    assert!(
        err.to_string()
            .contains("outcomes are recorded after a decision"),
        "{err}"
    );
    assert_eq!(
        err_of(q.record_outcome(99, "qualified", None, "ana").await),
        QueueError::NotFound(99)
    );
    let c = q.claim(1, "ana").await.unwrap();
    q.decide(&c, &approve()).await.unwrap();
    let err = err_of(q.record_outcome(1, "great", None, "ana").await);
    assert!(
        err.to_string().contains("'great' is not an outcome"),
        "{err}"
    );
    let err = err_of(q.record_outcome(1, "lost", Some("  "), "ana").await);
    assert!(err.to_string().contains("needs a reason"), "{err}");
    q.record_outcome(1, "qualified", None, "ana").await.unwrap();
    q.record_outcome(1, "lost", Some("budget"), "ben")
        .await
        .unwrap();
    let timeline = q.timeline(1).await.unwrap();
    let recorded: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == "outcome_recorded")
        .map(|e| (e.actor.as_str(), e.detail.clone()))
        .collect();
    assert_eq!(
        recorded,
        [
            ("ana", json!({"outcome": "qualified", "reason": null})),
            ("ben", json!({"outcome": "lost", "reason": "budget"})),
        ]
    );
    let mut outcomes: Vec<_> = q
        .stats(None)
        .await
        .unwrap()
        .outcomes
        .into_iter()
        .map(|o| (o.intent, o.outcome, o.count))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [("sales_lead".into(), "lost".into(), 1)],
        "an item counts with its latest outcome"
    );
}

async fn the_timeline_lists_an_items_entries_oldest_first(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(2)).await;
    let c = q.claim(1, "ana").await.unwrap();
    h.clock.advance(1_000);
    let c = q.heartbeat(&c).await.unwrap();
    h.clock.advance(1_000);
    q.edit(&c, EditableField::Summary, Some("s".into()))
        .await
        .unwrap();
    q.preview_rendered(1, "ana", "digest-1").await.unwrap();
    h.clock.advance(1_000);
    q.decide(&c, &approve()).await.unwrap();
    let other = q.claim(2, "ben").await.unwrap();
    q.release(&other).await.unwrap();

    let t = q.timeline(1).await.unwrap();
    let rows: Vec<_> = t
        .iter()
        .map(|e| (e.kind.as_str(), e.actor.as_str(), e.at))
        .collect();
    assert_eq!(
        rows,
        [
            ("ingested", "system", T0),
            ("claimed", "ana", T0),
            ("lease_renewed", "ana", T0 + 1_000),
            ("edited", "ana", T0 + 2_000),
            ("preview_rendered", "ana", T0 + 2_000),
            ("decided", "ana", T0 + 3_000),
        ]
    );
    assert!(t.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    assert!(t.iter().all(|e| e.request_id == Some(1)));
    assert!(t.iter().all(|e| e.os_user.is_some()), "{t:?}");
    assert_eq!(t[4].detail["digest"], "digest-1");
    assert_eq!(t[1].detail["fence"], json!(c.fence));
    assert_eq!(kinds(q, 2).await, ["ingested", "claimed", "released"]);
    match q.timeline(99).await {
        Ok(t) => assert!(t.is_empty(), "{t:?}"),
        Err(e) => assert_eq!(e, QueueError::NotFound(99)),
    }
}

async fn the_change_token_moves_on_every_write(h: &Harness) {
    let q = &*h.queue;
    let other = h.second_handle().await;
    // Before each write the token has settled; after it, it moves.
    let t = settled(q).await;
    h.seed(&plain(2)).await;
    moves_from(q, t, "ingest").await;
    let t = settled(q).await;
    let c = q.claim_next("ana").await.unwrap().unwrap();
    moves_from(q, t, "claim").await;
    let t = settled(q).await;
    let c = q.heartbeat(&c).await.unwrap();
    moves_from(q, t, "heartbeat").await;
    let t = settled(q).await;
    q.edit(&c, EditableField::Summary, Some("s".into()))
        .await
        .unwrap();
    moves_from(q, t, "edit").await;
    let t = settled(q).await;
    q.decide(&c, &approve()).await.unwrap();
    moves_from(q, t, "decide").await;
    let t = settled(q).await;
    q.undo(c.id, "ana").await.unwrap();
    moves_from(q, t, "undo").await;
    let t = settled(q).await;
    q.set_actions_paused(true, "ana").await.unwrap();
    moves_from(q, t, "kill switch").await;
    // Another handle's writes move this one's token too.
    let t = settled(q).await;
    let c2 = other.claim_next("ben").await.unwrap().unwrap();
    moves_from(q, t, "another handle's claim").await;
    let t = settled(q).await;
    other.release(&c2).await.unwrap();
    moves_from(q, t, "another handle's release").await;
    // Reading changes nothing.
    let t = settled(q).await;
    q.list(&ListQuery::default()).await.unwrap();
    q.get(1).await.unwrap();
    q.counts().await.unwrap();
    q.timeline(1).await.unwrap();
    q.stats(None).await.unwrap();
    assert_eq!(q.change_token().await.unwrap(), t, "a read moved the token");
}

/// The change token once it has stopped moving (a backend told of changes by a
/// notification may move it a moment after the write).
async fn settled(q: &dyn Queue) -> u64 {
    let mut last = q.change_token().await.unwrap();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = q.change_token().await.unwrap();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the change token never settled");
}

/// Waits (a few seconds at most) for the change token to move from `from`.
async fn moves_from(q: &dyn Queue, from: u64, what: &str) {
    for _ in 0..500 {
        if q.change_token().await.unwrap() != from {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the change token did not move on {what}");
}

async fn stats_and_volume_count_what_happened(h: &Harness) {
    let q = &*h.queue;
    h.seed(&plain(5)).await;
    h.clock.advance(60_000);
    let c = q.claim(1, "ana").await.unwrap();
    h.clock.advance(30_000);
    q.decide(
        &c,
        &Decision {
            sets: vec![(EditableField::Summary, Some("edited".into()))],
            ..approve()
        },
    )
    .await
    .unwrap();
    let c = q.claim(2, "ben").await.unwrap();
    q.decide(&c, &reject("spam")).await.unwrap();
    let c = q.claim(3, "ben").await.unwrap();
    q.decide(&c, &escalate("legal")).await.unwrap();
    let _open = q.claim(4, "ana").await.unwrap();

    let s = q.stats(None).await.unwrap();
    assert_eq!(s.now, h.clock.now());
    assert_eq!(s.since, None);
    let d = &s.decisions;
    assert_eq!(
        (d.total, d.approved, d.rejected, d.escalated, d.undone),
        (3, 1, 1, 1, 0)
    );
    assert_eq!(
        (s.queue.pending, s.queue.in_review, s.queue.approved),
        (1, 1, 1)
    );
    let mut reviewers: Vec<_> = s
        .reviewers
        .iter()
        .map(|r| (r.reviewer.as_str(), r.decisions))
        .collect();
    reviewers.sort();
    assert_eq!(reviewers, [("ana", 1), ("ben", 2)]);
    let ana = s.reviewers.iter().find(|r| r.reviewer == "ana").unwrap();
    assert_eq!(ana.median_handle_ms, Some(30_000), "claim to decision");
    assert_eq!(s.reject_reasons, [("spam".to_string(), 1)]);
    assert_eq!(s.escalation_queues, [("legal".to_string(), 1)]);
    let summary = s.edits.iter().find(|e| e.field == "summary").unwrap();
    assert_eq!(summary.edited, 1);
    let queued: u64 = s.actions.iter().map(|a| a.pending).sum();
    assert_eq!(
        queued, 4,
        "crm, slack, gmail of the approval; slack of legal"
    );
    // Since a time after everything: nothing decided since.
    let later = q.stats(Some(h.clock.now() + 1)).await.unwrap();
    assert_eq!(later.decisions.total, 0);
    assert_eq!(
        later.queue, s.queue,
        "the queue is counted whatever the window"
    );

    let v = q.volume().await.unwrap();
    assert_eq!(v.per_hour.len(), 24);
    assert_eq!(v.per_hour.iter().sum::<u64>(), 5, "{:?}", v.per_hour);
    assert_eq!(*v.per_hour.last().unwrap(), 5, "all in the current hour");
    assert_eq!(v.escalations_per_hour.len(), 24);
    assert_eq!(v, s.volume);
}

/// Per item, from its timeline: claims and decisions alternate, each decision carries the
/// fence of the claim right before it, and it was decided exactly once.
async fn check_trail(q: &dyn Queue, ids: impl IntoIterator<Item = i64>) {
    for id in ids {
        let mut live: Option<i64> = None;
        let mut decided = 0;
        for e in q.timeline(id).await.unwrap() {
            match e.kind.as_str() {
                "claimed" => {
                    assert_eq!(live, None, "item {id} claimed while already claimed");
                    live = e.detail["fence"].as_i64();
                    assert!(live.is_some(), "{e:?}");
                }
                "decided" => {
                    assert_eq!(
                        live,
                        e.detail["fence"].as_i64(),
                        "item {id} decided with a fence that was not the live claim"
                    );
                    live = None;
                    decided += 1;
                }
                "released" | "lease_expired" => live = None,
                _ => {}
            }
        }
        assert_eq!(decided, 1, "item {id} decided {decided} times");
    }
}

const ITEMS: usize = 64;
const REVIEWERS: usize = 16;

/// `REVIEWERS` tasks, spread over `queues`, claim and decide until the queue is empty; a
/// stale fence is tried before each decision and must fail alone. Returns who decided
/// which item.
async fn reviewers_race(queues: &[Arc<dyn Queue>]) -> HashMap<i64, Vec<String>> {
    let decided: Arc<Mutex<HashMap<i64, Vec<String>>>> = Arc::default();
    // The clock stands still and nobody releases: an item is claimed once, ever.
    let claimed: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let tasks: Vec<_> = (0..REVIEWERS)
        .map(|w| {
            let q = queues[w % queues.len()].clone();
            let (decided, claimed) = (decided.clone(), claimed.clone());
            tokio::spawn(async move {
                let me = format!("r{w}");
                while let Some(c) = q.claim_next(&me).await.unwrap() {
                    assert!(
                        claimed.lock().unwrap().insert(c.id),
                        "item {} claimed a second time, by {me}",
                        c.id
                    );
                    let stale = Claim {
                        fence: c.fence + 1,
                        ..c.clone()
                    };
                    let d = if c.id % 2 == 0 {
                        approve()
                    } else {
                        reject("duplicate")
                    };
                    let bad = q.decide(&stale, &d).await;
                    assert!(matches!(bad, Err(QueueError::LeaseLost { .. })), "{bad:?}");
                    q.decide(&c, &d)
                        .await
                        .unwrap_or_else(|e| panic!("{me} deciding {}: {e}", c.id));
                    decided
                        .lock()
                        .unwrap()
                        .entry(c.id)
                        .or_default()
                        .push(me.clone());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a reviewer task panicked");
    }
    Arc::try_unwrap(decided).unwrap().into_inner().unwrap()
}

async fn check_all_decided_once(q: &dyn Queue, decided: &HashMap<i64, Vec<String>>) {
    assert_eq!(decided.len(), ITEMS, "every item decided");
    for (id, by) in decided {
        assert_eq!(by.len(), 1, "item {id} decided by {by:?}");
    }
    check_trail(q, 1..=ITEMS as i64).await;
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.pending, c.in_review, c.approved + c.rejected),
        (0, 0, ITEMS as u64)
    );
    assert_eq!(c.approved, ITEMS as u64 / 2);
}

fn many() -> Vec<serde_json::Value> {
    (0..ITEMS)
        .map(|i| {
            let p = ["urgent", "high", "normal", "low"][i % 4];
            request(&format!("c{i}"), json!({"ai": {"priority": p}}))
        })
        .collect()
}

async fn sixteen_reviewers_on_one_queue_decide_each_item_once(h: &Harness) {
    h.seed(&many()).await;
    let decided = reviewers_race(std::slice::from_ref(&h.queue)).await;
    check_all_decided_once(&*h.queue, &decided).await;
}

async fn two_handles_on_one_store_decide_each_item_once(h: &Harness) {
    h.seed(&many()).await;
    let queues = [h.queue.clone(), h.second_handle().await];
    let decided = reviewers_race(&queues).await;
    check_all_decided_once(&*h.queue, &decided).await;
}
