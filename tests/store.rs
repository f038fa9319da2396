//! The store against a real SQLite file: migrations, claims and fences, leases, decisions
//! with their audit and outbox rows, undo, edits, ingest outcomes, the audit chain.
mod common;

use common::{count, item, open, request};
use serde_json::json;
use signoff::model::{DecisionKind, EditableField, Policy, State};
use signoff::queue::{Decision, ListQuery, QueueError, Sort};
use signoff::store::{IngestOutcome, MIGRATIONS, SCHEMA_VERSION, Store, StoreError, migrate_to};

fn approve() -> Decision {
    Decision {
        kind: DecisionKind::Approve,
        revision: None,
        note: None,
        sets: vec![],
    }
}

fn queue_err(e: StoreError) -> QueueError {
    QueueError::from(e)
}

fn seeded(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("q.db"));
    let items: Vec<_> = (0..n)
        .map(|i| item(&request(&format!("e{i}"), json!({}))))
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    (dir, s)
}

#[test]
fn migrates_an_empty_file_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("q.db"));
    let v: i64 = s
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mode: String = s
        .connection()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = s
        .connection()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[test]
fn migrates_from_each_earlier_version_keeping_data() {
    for from in 1..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            migrate_to(&mut conn, &path, from).unwrap();
            conn.execute(
                "INSERT INTO requests (source, external_id, payload_sha256, received_at, ingested_at,
                    updated_at, priority_rank, summary) VALUES ('s', 'old', 'x', 1, 1, 1, 2, 'kept')",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO revisions (request_id, revision, payload, payload_sha256, ingested_at)
                 VALUES (1, 1, '{\"source\":\"s\",\"external_id\":\"old\"}', 'x', 1)",
                [],
            )
            .unwrap();
        }
        let s = open(&path);
        let v: i64 = s
            .connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION, "from v{from}");
        let d = s.get(1).unwrap();
        assert_eq!(d.summary.summary.as_deref(), Some("kept"), "from v{from}");
        assert!(!d.summary.edited);
        assert_eq!(s.counts().unwrap().pending, 1, "from v{from}");
        assert_counters_match_a_recount(&s, 0, &format!("migrating from v{from}"));
    }
    assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
}

#[test]
fn a_newer_database_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&path, Default::default(), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("schema version 99") && err.contains("upgrade signoff"),
        "{err}"
    );
}

#[test]
fn claims_follow_priority_then_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("q.db"));
    let mk = |ext: &str, p: &str, at: &str| {
        item(&request(
            ext,
            json!({"received_at": at, "ai": {"priority": p}}),
        ))
    };
    s.ingest_batch(
        &[
            mk("low-old", "low", "2026-11-01T00:00:00Z"),
            mk("high-new", "high", "2026-11-20T00:00:00Z"),
            mk("high-old", "high", "2026-11-19T00:00:00Z"),
            mk("urgent", "urgent", "2026-11-20T05:00:00Z"),
        ],
        "system",
    )
    .unwrap();
    let mut order = Vec::new();
    while let Some(c) = s.claim_next("r").unwrap() {
        order.push(s.get(c.id).unwrap().summary.external_id);
    }
    assert_eq!(order, ["urgent", "high-old", "high-new", "low-old"]);
    assert_eq!(s.claim_next("r").unwrap(), None);
}

#[test]
fn a_stale_fence_changes_nothing_and_says_lease_lost() {
    let (_d, mut s) = seeded(1);
    let first = s.claim(1, "ana").unwrap();
    // Ana re-opens the item elsewhere: a new fence; the old claim is stale.
    let second = s.claim(1, "ana").unwrap();
    assert_eq!(second.fence, first.fence + 1);
    let before = (
        count(&s, "SELECT COUNT(*) FROM audit"),
        count(&s, "SELECT COUNT(*) FROM outbox"),
    );
    let err = queue_err(s.decide(&first, &approve()).unwrap_err());
    assert!(matches!(err, QueueError::LeaseLost { id: 1, .. }), "{err}");
    assert!(err.to_string().contains("lease lost"));
    let err = queue_err(
        s.edit(&first, EditableField::Summary, Some("x".into()))
            .unwrap_err(),
    );
    assert!(matches!(err, QueueError::LeaseLost { .. }));
    assert_eq!(
        before,
        (
            count(&s, "SELECT COUNT(*) FROM audit"),
            count(&s, "SELECT COUNT(*) FROM outbox")
        )
    );
    assert_eq!(s.get(1).unwrap().summary.state, State::InReview);
    s.decide(&second, &approve()).unwrap();
}

#[test]
fn someone_elses_claim_blocks_until_its_lease_expires() {
    let (_d, mut s) = seeded(1);
    let ana = s.claim(1, "ana").unwrap();
    match queue_err(s.claim(1, "ben").unwrap_err()) {
        QueueError::HeldBy { reviewer, .. } => assert_eq!(reviewer, "ana"),
        other => panic!("{other}"),
    }
    assert_eq!(s.claim_next("ben").unwrap(), None);
    // Heartbeat keeps it.
    s.advance_clock(200_000);
    let ana = s.heartbeat(&ana).unwrap();
    s.advance_clock(200_000);
    assert!(s.claim(1, "ben").is_err());
    // No heartbeat for longer than the lease: back in the queue.
    s.advance_clock(Policy::default().lease_seconds as i64 * 1000);
    let ben = s
        .claim_next("ben")
        .unwrap()
        .expect("expired lease puts the item back");
    assert!(ben.fence > ana.fence);
    let err = queue_err(s.decide(&ana, &approve()).unwrap_err());
    match err {
        QueueError::LeaseLost { holder, .. } => assert_eq!(holder.as_deref(), Some("ben")),
        other => panic!("{other}"),
    }
    let kinds: Vec<String> = s.timeline(1).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            "ingested",
            "claimed",
            "lease_renewed",
            "lease_expired",
            "claimed"
        ]
    );
    s.decide(&ben, &approve()).unwrap();
}

#[test]
fn release_returns_the_item() {
    let (_d, mut s) = seeded(1);
    let c = s.claim_next("ana").unwrap().unwrap();
    s.release(&c).unwrap();
    assert_eq!(s.get(1).unwrap().summary.state, State::Pending);
    assert!(s.release(&c).is_err(), "a released claim is gone");
    assert!(s.claim(1, "ben").is_ok());
}

#[test]
fn an_approval_writes_decision_audit_and_one_outbox_row_per_action_together() {
    let (_d, mut s) = seeded(1);
    let c = s.claim_next("ana").unwrap().unwrap();
    let receipt = s
        .decide(
            &c,
            &Decision {
                kind: DecisionKind::Approve,
                revision: None,
                note: Some("looks right".into()),
                sets: vec![(EditableField::Priority, Some("high".into()))],
            },
        )
        .unwrap();
    assert_eq!(receipt.state, State::Approved);
    let actions: Vec<&str> = receipt.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        Policy::default()
            .actions_for("sales_lead")
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM outbox WHERE status = 'queued'"),
        3
    );
    assert_eq!(
        count(&s, "SELECT COUNT(DISTINCT idempotency_key) FROM outbox"),
        3
    );
    let d = s.get(1).unwrap();
    assert_eq!(d.fields.priority.as_deref(), Some("high"));
    assert_eq!(d.edits.len(), 1);
    // The AI sent "normal", an alias: the edit's old value is the priority it was read as.
    assert_eq!(d.edits[0].old.as_deref(), Some("medium"));
    assert_eq!(d.summary.claimed_by, None);
    let kinds: Vec<String> = s.timeline(1).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["ingested", "claimed", "edited", "decided"]);
    // Outbox rows wait out the undo window.
    let next: i64 = s
        .connection()
        .query_row("SELECT MIN(next_attempt_at) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(next, receipt.undo_until);
}

#[test]
fn a_refused_decision_rolls_back_its_edits_too() {
    let (_d, mut s) = seeded(1);
    let c = s.claim_next("ana").unwrap().unwrap();
    let audit_before = count(&s, "SELECT COUNT(*) FROM audit");
    let err = queue_err(
        s.decide(
            &c,
            &Decision {
                kind: DecisionKind::Reject {
                    reason: "because".into(),
                },
                revision: None,
                note: None,
                sets: vec![(EditableField::Summary, Some("changed".into()))],
            },
        )
        .unwrap_err(),
    );
    assert!(
        err.to_string()
            .contains("'because' is not a reject reason; reasons: wrong_intent"),
        "{err}"
    );
    assert_eq!(count(&s, "SELECT COUNT(*) FROM edits"), 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM audit"), audit_before);
    let err = queue_err(
        s.decide(
            &c,
            &Decision {
                kind: DecisionKind::Escalate {
                    queue: "nowhere".into(),
                },
                revision: None,
                note: None,
                sets: vec![],
            },
        )
        .unwrap_err(),
    );
    assert!(err.to_string().contains("queues: legal, billing"), "{err}");
    let receipt = s
        .decide(
            &c,
            &Decision {
                kind: DecisionKind::Escalate {
                    queue: "legal".into(),
                },
                revision: None,
                note: Some("threat".into()),
                sets: vec![],
            },
        )
        .unwrap();
    assert_eq!(receipt.state, State::Escalated);
    assert_eq!(receipt.actions.len(), 1, "legal escalations alert Slack");
}

#[test]
fn an_invalid_intent_cannot_be_approved_until_edited() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("q.db"));
    s.ingest_batch(
        &[item(&request("bad", json!({"ai": {"intent": "refund"}})))],
        "system",
    )
    .unwrap();
    let d = s.get(1).unwrap();
    assert_eq!(
        d.flags[0].message,
        "intent 'refund' is not an allowed intent"
    );
    assert_eq!(d.summary.flag_count, 1);
    let c = s.claim_next("ana").unwrap().unwrap();
    let err = queue_err(s.decide(&c, &approve()).unwrap_err());
    assert!(
        err.to_string()
            .contains("intent 'refund' is not an allowed intent"),
        "{err}"
    );
    let err = queue_err(
        s.edit(&c, EditableField::Intent, Some("refunds".into()))
            .unwrap_err(),
    );
    assert!(err.to_string().contains("allowed: sales_lead"), "{err}");
    assert!(
        s.edit(&c, EditableField::Intent, Some("billing_question".into()))
            .unwrap()
    );
    assert!(
        !s.edit(&c, EditableField::Intent, Some("billing_question".into()))
            .unwrap(),
        "no-op edit"
    );
    let r = s.decide(&c, &approve()).unwrap();
    assert_eq!(r.actions.len(), 2);
    // The raw payload is untouched.
    assert!(s.get(1).unwrap().payload.contains("\"refund\""));
}

#[test]
fn undo_inside_the_window_reopens_the_item_and_cancels_its_actions() {
    let (_d, mut s) = seeded(2);
    let c = s.claim(1, "ana").unwrap();
    s.decide(&c, &approve()).unwrap();
    assert!(matches!(
        queue_err(s.undo(1, "ben").unwrap_err()),
        QueueError::CannotUndo { .. }
    ));
    let again = s.undo(1, "ana").unwrap();
    assert_eq!(s.get(1).unwrap().summary.state, State::InReview);
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM outbox WHERE status = 'cancelled'"),
        3
    );
    assert!(s.undo(1, "ana").is_err(), "nothing left to undo");
    s.decide(&again, &approve()).unwrap();

    let c = s.claim(2, "ana").unwrap();
    s.decide(&c, &approve()).unwrap();
    s.advance_clock(Policy::default().undo_seconds as i64 * 1000 + 1);
    let err = queue_err(s.undo(2, "ana").unwrap_err()).to_string();
    assert!(err.contains("undo window closed"), "{err}");
}

#[test]
fn undo_is_refused_once_an_action_has_started() {
    let (_d, mut s) = seeded(1);
    let c = s.claim(1, "ana").unwrap();
    s.decide(&c, &approve()).unwrap();
    s.connection()
        .execute(
            "UPDATE outbox SET attempts = 1, status = 'retrying' WHERE action = 'slack'",
            [],
        )
        .unwrap();
    let err = queue_err(s.undo(1, "ana").unwrap_err()).to_string();
    assert!(err.contains("started to go out"), "{err}");
}

#[test]
fn ingest_counts_duplicates_revises_pending_and_refuses_decided() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("q.db"));
    let v1 = request("a", json!({}));
    // Same payload, other key order and spacing: a duplicate.
    let reordered: serde_json::Value = serde_json::from_str(&format!(" {} ", v1)).unwrap();
    let v2 = request("a", json!({"ai": {"summary": "Wants a demo next week"}}));
    let out = s
        .ingest_batch(&[item(&v1), item(&reordered), item(&v2)], "system")
        .unwrap();
    assert_eq!(
        out,
        [
            IngestOutcome::Inserted { id: 1 },
            IngestOutcome::Duplicate { id: 1 },
            IngestOutcome::Revised { id: 1, revision: 2 }
        ]
    );
    assert_eq!(
        s.get(1).unwrap().fields.summary.as_deref(),
        Some("Wants a demo next week")
    );
    let c = s.claim_next("ana").unwrap().unwrap();
    s.decide(&c, &approve()).unwrap();
    let v3 = request("a", json!({"ai": {"summary": "third"}}));
    let out = s.ingest_batch(&[item(&v3)], "system").unwrap();
    assert_eq!(
        out,
        [IngestOutcome::Conflict {
            id: 1,
            state: State::Approved
        }]
    );
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM quarantine"),
        1,
        "nothing is lost"
    );
    assert_eq!(count(&s, "SELECT COUNT(*) FROM revisions"), 2);
}

#[test]
fn the_audit_log_refuses_update_and_delete_and_verifies() {
    let (_d, mut s) = seeded(3);
    let c = s.claim_next("ana").unwrap().unwrap();
    s.decide(&c, &approve()).unwrap();
    for sql in [
        "UPDATE audit SET actor = 'mallory'",
        "DELETE FROM audit WHERE seq = 1",
    ] {
        let err = s.connection().execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{err}");
    }
    let err = s
        .connection()
        .execute("UPDATE revisions SET payload = '{}'", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("immutable"), "{err}");
    let report = s.verify_audit(|_| {}).unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.entries, 5);
    // Someone with the file drops the trigger and edits a row: detected at that row.
    s.connection()
        .execute_batch(
            "DROP TRIGGER audit_append_only_update; UPDATE audit SET actor = 'mallory' WHERE seq = 4;",
        )
        .unwrap();
    let report = s.verify_audit(|_| {}).unwrap();
    assert_eq!(report.broken.as_ref().map(|b| b.0), Some(4), "{report:?}");
}

#[test]
fn lists_are_paged_filtered_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("q.db"));
    let items: Vec<_> = (0..30)
        .map(|i| {
            let p = ["urgent", "high", "normal", "low"][i % 4];
            item(&request(
                &format!("e{i:02}"),
                json!({"received_at": "2020-01-01T00:00:00Z",
                       "ai": {"priority": p, "confidence": (i as f64) / 30.0,
                              "intent": if i % 5 == 0 { "billing_question" } else { "sales_lead" }},
                       "raw": {"from": format!("sender{i}@example.com")}}),
            ))
        })
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    let page = s
        .list(&ListQuery {
            limit: 10,
            offset: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 30);
    assert_eq!(page.items.len(), 10);
    assert!(page.items.windows(2).all(|w| w[0].state == State::Pending));
    let mut q = ListQuery::default();
    q.filter.priorities = vec!["high".into()];
    q.filter.conf_below = Some(0.5);
    let page = s.list(&q).unwrap();
    assert!(
        page.items
            .iter()
            .all(|i| i.priority.as_deref() == Some("high") && i.confidence.unwrap() < 0.5)
    );
    assert_eq!(page.total, 4);
    let mut q = ListQuery::default();
    q.filter.text = Some("SENDER1".into());
    assert_eq!(s.list(&q).unwrap().total, 11, "sender1, sender10..19");
    let mut q = ListQuery {
        sort: Sort::Confidence,
        ..Default::default()
    };
    q.filter.intent = Some("billing_question".into());
    let page = s.list(&q).unwrap();
    assert_eq!(page.total, 6);
    assert!(
        page.items
            .windows(2)
            .all(|w| w[0].confidence <= w[1].confidence)
    );
    let counts = s.counts().unwrap();
    assert_eq!(counts.pending, 30);
    assert!(counts.oldest_open.is_some());
    assert_eq!(
        counts.sla_breaches, 30,
        "received in 2020: every SLA is breached"
    );
}

#[test]
fn the_kill_switch_and_resend_are_audited() {
    let (_d, mut s) = seeded(1);
    assert!(!s.actions_paused().unwrap());
    s.set_actions_paused(true, "ana").unwrap();
    assert!(s.actions_paused().unwrap());
    let c = s.claim_next("ana").unwrap().unwrap();
    s.decide(&c, &approve()).unwrap();
    let err = queue_err(s.resend(1, "ana").unwrap_err()).to_string();
    assert!(err.contains("only dead letters"), "{err}");
    s.connection()
        .execute("UPDATE outbox SET status = 'dead' WHERE id = 1", [])
        .unwrap();
    s.resend(1, "ana").unwrap();
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM audit WHERE kind IN ('kill_switch_on', 'resend')"
        ),
        2
    );
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
}

#[test]
fn auto_approval_is_off_by_default_and_samples_when_on() {
    // Off by default: everything waits for a person.
    let (_d, s) = seeded(5);
    assert_eq!(s.counts().unwrap().pending, 5);

    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        auto_approve: true,
        sample_rate: 0.5,
        ..Default::default()
    };
    let mut s = Store::open(
        &dir.path().join("q.db"),
        std::sync::Arc::new(policy),
        &Default::default(),
    )
    .unwrap();
    // partnership (crm + slack: nothing that must never auto-send), confident, no rules.
    let clean = |i: usize| {
        item(&request(
            &format!("p{i}"),
            json!({"ai": {"intent": "partnership", "confidence": 0.97, "priority": "normal"}}),
        ))
    };
    let mut items: Vec<_> = (0..40).map(clean).collect();
    items.push(item(&request(
        "low",
        json!({"ai": {"intent": "partnership", "confidence": 0.4}}),
    )));
    items.push(item(&request(
        "gmail",
        json!({"ai": {"intent": "sales_lead", "confidence": 0.99}}),
    )));
    items.push(item(&request("esc", json!({"ai": {"intent": "partnership", "confidence": 0.99, "escalation_reason": "legal threat"}}))));
    s.ingest_batch(&items, "system").unwrap();
    let sampled = count(&s, "SELECT COUNT(*) FROM requests WHERE sample = 1");
    let auto = count(
        &s,
        "SELECT COUNT(*) FROM decisions WHERE reviewer = 'system'",
    );
    assert_eq!(
        sampled + auto,
        40,
        "every clean item is sampled or auto-approved"
    );
    assert!((8..=32).contains(&sampled), "about half sampled: {sampled}");
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM requests WHERE state = 'pending' AND sample = 0"
        ),
        3,
        "low confidence, a gmail intent and an escalation reason all wait for a person"
    );
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM outbox WHERE action = 'gmail'"),
        0
    );
    let (id,): (i64,) = s
        .connection()
        .query_row(
            "SELECT request_id FROM decisions WHERE reviewer = 'system' LIMIT 1",
            [],
            |r| Ok((r.get(0)?,)),
        )
        .unwrap();
    let decided = s.timeline(id).unwrap().pop().unwrap();
    assert_eq!(decided.kind, "decided");
    assert_eq!(decided.detail["auto"], true);
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
}

#[test]
fn a_listing_total_is_reused_until_the_queue_changes() {
    let (dir, s) = seeded(3);
    let q = ListQuery {
        limit: 1,
        ..Default::default()
    };
    assert_eq!(s.list(&q).unwrap().total, 3);
    assert_eq!(
        s.list(&ListQuery {
            offset: 1,
            ..q.clone()
        })
        .unwrap()
        .total,
        3
    );
    // Another connection (another reviewer, an ingest) adds an item: the count follows.
    let mut other = open(&dir.path().join("q.db"));
    other
        .ingest_batch(&[item(&request("late", json!({})))], "system")
        .unwrap();
    assert_eq!(s.list(&q).unwrap().total, 4);
    let mut filtered = q.clone();
    filtered.filter.text = Some("nobody".into());
    assert_eq!(
        s.list(&filtered).unwrap().total,
        0,
        "another query, another count"
    );
}

#[test]
fn decided_items_list_by_most_recent_decision() {
    let (_d, mut s) = seeded(3);
    for id in [2, 3, 1] {
        let c = s.claim(id, "ana").unwrap();
        s.decide(&c, &approve()).unwrap();
    }
    let page = s
        .list(&ListQuery {
            states: vec![State::Approved],
            sort: Sort::RecentlyDecided,
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<i64> = page.items.iter().map(|i| i.id).collect();
    assert_eq!(ids, [1, 3, 2]);
}

#[test]
fn a_crm_row_waits_while_another_for_the_same_item_is_being_sent() {
    let (_d, mut s) = seeded(1);
    let c = s.claim(1, "ana").unwrap();
    s.decide(&c, &approve()).unwrap();
    // A second CRM write for the same item (say, after an undo and a new decision).
    s.connection()
        .execute_batch(
            "UPDATE outbox SET next_attempt_at = 0;
             INSERT INTO outbox (request_id, decision_id, action, idempotency_key, status,
                 next_attempt_at, created_at, updated_at)
             VALUES (1, 1, 'crm', 'second-crm-write', 'queued', 0, 0, 0);",
        )
        .unwrap();
    // One worker takes the first CRM write (the dispatcher sends the CRM rows of one item
    // it claims together in one task, in order).
    let first = s.claim_due("w1", 60_000, 1).unwrap();
    assert_eq!(first.rows.len(), 1);
    assert_eq!(first.rows[0].action, "crm");
    // Another worker, another round: still not while the first is sending.
    let second = s.claim_due("w2", 60_000, 10).unwrap();
    assert!(
        second.rows.iter().all(|r| r.action != "crm"),
        "{:?}",
        second.rows.len()
    );
    s.connection()
        .execute(
            "UPDATE outbox SET status = 'sent' WHERE status = 'sending' AND action = 'crm'",
            [],
        )
        .unwrap();
    let third = s.claim_due("w2", 60_000, 10).unwrap();
    assert_eq!(third.rows.iter().filter(|r| r.action == "crm").count(), 1);
}

#[test]
fn the_background_checkpointer_copies_commits_into_the_database_file() {
    use signoff::store::StoreOptions;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut s = Store::open(
        &path,
        std::sync::Arc::new(Policy::default()),
        &StoreOptions {
            background_checkpoint: true,
            ..Default::default()
        },
    )
    .unwrap();
    for b in 0..20 {
        let items: Vec<_> = (0..50)
            .map(|i| item(&request(&format!("b{b}-{i}"), json!({}))))
            .collect();
        s.ingest_batch(&items, "system").unwrap();
    }
    for _ in 0..100 {
        let c = s.claim_next("rita").unwrap().unwrap();
        s.decide(&c, &approve()).unwrap();
    }
    // Far below the writer's own auto-checkpoint: only the background thread copies frames
    // into the database file. Read that file alone, ignoring the WAL.
    let uri = format!("file:{}?immutable=1", path.display());
    let in_file = || -> i64 {
        rusqlite::Connection::open_with_flags(
            &uri,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get(0)))
        .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while in_file() < 100 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(in_file(), 100, "the checkpointer copied every decision");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM requests"), 1000);
    assert!(s.verify_audit(|_| {}).unwrap().broken.is_none());
    drop(s); // joins the thread
}

/// Writers coalesce each commit's WAL frames into one write (`src/store/vfs.rs`). A commit
/// must be in the WAL file when it returns: a process that dies right after (here: a store
/// leaked without closing, so nothing is written at close) loses nothing, and a connection
/// through SQLite's default VFS reads it all back intact. A tiny page cache forces frames
/// to spill mid-transaction and be rewritten in place, the VFS's other path.
#[test]
fn commits_are_in_the_wal_file_when_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    // NORMAL: no sync at commit, so nothing but the VFS's own rule writes the frames out.
    let mut s = Store::open(
        &path,
        std::sync::Arc::new(Policy::default()),
        &signoff::store::StoreOptions {
            durability: signoff::store::Durability::Normal,
            ..Default::default()
        },
    )
    .unwrap();
    s.connection().pragma_update(None, "cache_size", 8).unwrap();
    for b in 0..6 {
        let items: Vec<_> = (0..120)
            .map(|i| {
                let body = format!("{b}-{i} {}", "lorem ipsum ".repeat(i % 40));
                item(&request(
                    &format!("w{b}-{i}"),
                    json!({"raw": {"body": body}}),
                ))
            })
            .collect();
        s.ingest_batch(&items, "system").unwrap();
    }
    for _ in 0..40 {
        let c = s.claim_next("rita").unwrap().unwrap();
        s.decide(&c, &approve()).unwrap();
    }
    // The last commit is a claim: nothing reads the WAL after it (a decision's anchor
    // update would), so only the commit itself can have written its frames.
    s.claim_next("rita").unwrap().unwrap();
    std::mem::forget(s);
    let plain = rusqlite::Connection::open(&path).unwrap();
    let check: String = plain
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n = |sql: &str| -> i64 { plain.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(n("SELECT COUNT(*) FROM requests"), 720);
    assert_eq!(n("SELECT COUNT(*) FROM decisions"), 40);
    assert_eq!(n("SELECT COUNT(*) FROM outbox"), 40 * 3);
    assert_eq!(
        n("SELECT COUNT(*) FROM requests WHERE state = 'in_review'"),
        1
    );
    drop(plain);
    let reopened = open(&path);
    let report = reopened.verify_audit(|_| {}).unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.entries, 720 + 81);
}

/// Every row write of a claim, a decision and an ingest runs without building an
/// ephemeral b-tree (SQLite builds one per run for an IN list of three or more
/// constants, in a CHECK or a partial index's WHERE), and the constraints still refuse
/// what they refused before.
#[test]
fn row_writes_build_no_ephemeral_tables_and_checks_still_hold() {
    let (dir, s) = seeded(1);
    drop(s);
    // A new connection to a migrated database, as every later process has.
    let s = open(&dir.path().join("q.db"));
    let conn = s.connection();
    for sql in [
        "UPDATE requests SET state = 'in_review', claimed_by = 'x', lease_expires = 1, fence = fence + 1 WHERE id = 1",
        "UPDATE requests SET state = 'approved', decision_id = 1 WHERE id = 1",
        "INSERT INTO requests (source, external_id, payload_sha256, received_at, ingested_at, updated_at, priority_rank) VALUES ('s', 'e', 'h', 1, 1, 1, 0)",
        "INSERT INTO decisions (request_id, revision, fence, kind, reviewer, at, fields, undo_until) VALUES (1, 1, 1, 'approve', 'r', 1, '{}', 1)",
        "INSERT INTO outbox (request_id, decision_id, action, idempotency_key, next_attempt_at, created_at, updated_at) VALUES (1, 1, 'crm', 'k', 1, 1, 1)",
    ] {
        let mut st = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let ops: Vec<String> = st
            .query_map([], |r| r.get(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!ops.iter().any(|o| o == "OpenEphemeral"), "{sql}");
    }
    for bad in [
        "UPDATE requests SET state = 'done'",
        "INSERT INTO decisions (request_id, revision, fence, kind, reviewer, at, fields, undo_until) VALUES (1, 1, 1, 'maybe', 'r', 1, '{}', 1)",
        "INSERT INTO outbox (request_id, decision_id, action, idempotency_key, status, next_attempt_at, created_at, updated_at) VALUES (1, 1, 'crm', 'k', 'lost', 1, 1, 1)",
    ] {
        assert!(conn.execute(bad, []).is_err(), "{bad} must be refused");
    }
    assert_eq!(
        conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
}

/// A new payload for an item arrives after the reviewer claimed and read it: a decision
/// naming the revision read is refused, and nothing of it is written.
#[test]
fn a_decision_on_a_revision_that_is_no_longer_current_is_refused_and_writes_nothing() {
    let (dir, mut s) = seeded(1);
    let c = s.claim(1, "ana").unwrap();
    let shown = s.get(1).unwrap().summary.revision;
    assert_eq!(shown, 1);
    // Upstream re-sends the request with another summary: revision 2 of the claimed item.
    let mut other = open(&dir.path().join("q.db"));
    let out = other
        .ingest_batch(
            &[item(&request(
                "e0",
                json!({"ai": {"summary": "Cancel the demo"}}),
            ))],
            "system",
        )
        .unwrap();
    assert_eq!(out, [IngestOutcome::Revised { id: 1, revision: 2 }]);
    let rows = |s: &Store| {
        [
            "SELECT COUNT(*) FROM decisions",
            "SELECT COUNT(*) FROM outbox",
            "SELECT COUNT(*) FROM audit",
            "SELECT COUNT(*) FROM edits",
        ]
        .map(|q| count(s, q))
    };
    let before = rows(&s);
    let err = queue_err(
        s.decide(
            &c,
            &Decision {
                kind: DecisionKind::Approve,
                revision: Some(shown),
                note: None,
                sets: vec![(EditableField::Priority, Some("high".into()))],
            },
        )
        .unwrap_err(),
    );
    assert_eq!(
        err,
        QueueError::StaleRevision {
            id: 1,
            shown: 1,
            current: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "item 1 changed since you opened it (revision 1 → 2); reopen it to see the new version; nothing was changed"
    );
    assert_eq!(rows(&s), before, "no decision, outbox, audit or edit row");
    let d = s.get(1).unwrap();
    assert_eq!(d.summary.state, State::InReview, "still claimed, undecided");
    assert_eq!(d.fields.priority.as_deref(), Some("medium"));
    // Decided on the revision now current, it goes through, and records that revision.
    let receipt = s
        .decide(
            &c,
            &Decision {
                revision: Some(2),
                ..approve()
            },
        )
        .unwrap();
    assert_eq!(receipt.state, State::Approved);
    assert_eq!(
        count(&s, "SELECT revision FROM decisions WHERE request_id = 1"),
        2
    );
}

/// A page asked for around an item holds it wherever the query puts it; an item the query
/// does not match leaves the page where it was asked for.
#[test]
fn a_page_asked_around_an_item_holds_it_wherever_it_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("q.db"));
    // Orders that disagree with each other and with the ids.
    let items: Vec<_> = (0..40)
        .map(|i| {
            let p = ["low", "normal", "high", "urgent"][(i * 3) % 4];
            item(&request(
                &format!("e{i}"),
                json!({"received_at": format!("2026-11-{:02}T10:00:00Z", 1 + (i * 7) % 28),
                       "ai": {"priority": p, "confidence": ((i * 11) % 40) as f64 / 40.0}}),
            ))
        })
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    let q = ListQuery {
        limit: 10,
        offset: 0,
        ..Default::default()
    };
    for (sort, around) in [
        (Sort::Queue, 33),
        (Sort::Newest, 2),
        (Sort::Confidence, 27),
        (Sort::Oldest, 5),
    ] {
        let asked = ListQuery {
            sort,
            around: Some(around),
            ..q.clone()
        };
        let page = s.list(&asked).unwrap();
        let plain = s
            .list(&ListQuery {
                limit: 40,
                ..asked.clone()
            })
            .unwrap();
        let pos = plain.items.iter().position(|i| i.id == around).unwrap() as u64;
        let at = page.items.iter().position(|i| i.id == around);
        assert_eq!(
            at.map(|i| page.offset + i as u64),
            Some(pos),
            "{sort:?}: the page holds the item at its place in the whole list"
        );
        assert_eq!(page.total, 40);
        assert_eq!(
            page.items,
            plain.items[page.offset as usize..page.offset as usize + page.items.len()],
            "{sort:?}: the same rows as a plain page there"
        );
    }
    // Not in the list (filtered out): the page asked for, without it.
    let mut filtered = ListQuery {
        around: Some(7),
        ..q.clone()
    };
    filtered.filter.text = Some("nobody".into());
    let page = s.list(&filtered).unwrap();
    assert_eq!((page.total, page.offset, page.items.len()), (0, 0, 0));
}

fn open_with(path: &std::path::Path, policy: Policy) -> Store {
    Store::open(path, std::sync::Arc::new(policy), &Default::default()).unwrap()
}

/// `(external_id, priority column, rank, flag messages)` of every open item in queue order.
fn open_items(s: &Store) -> Vec<(String, Option<String>, i64, Vec<String>)> {
    let page = s.list(&ListQuery::default()).unwrap();
    page.items
        .iter()
        .map(|i| {
            let rank: i64 = s
                .connection()
                .query_row(
                    "SELECT priority_rank FROM requests WHERE id = ?1",
                    [i.id],
                    |r| r.get(0),
                )
                .unwrap();
            let flags: String = s
                .connection()
                .query_row("SELECT flags FROM requests WHERE id = ?1", [i.id], |r| {
                    r.get(0)
                })
                .unwrap();
            let flags: Vec<signoff::model::Flag> = serde_json::from_str(&flags).unwrap();
            assert_eq!(flags.len() as u32, i.flag_count);
            (
                i.external_id.clone(),
                i.priority.clone(),
                rank,
                flags.into_iter().map(|f| f.message).collect(),
            )
        })
        .collect()
}

#[test]
fn open_items_are_checked_again_when_the_policy_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    // A store written under the old defaults: "normal" was a priority, with no aliases.
    let old = Policy {
        priorities: ["urgent", "high", "normal", "low"]
            .map(String::from)
            .to_vec(),
        priority_aliases: Default::default(),
        sla_minutes: Default::default(),
        ..Policy::default()
    };
    {
        let mut s = open_with(&path, old.clone());
        let items: Vec<_> = [
            ("n", "normal"),
            ("l", "low"),
            ("a", "asap"),
            ("d", "normal"),
        ]
        .iter()
        .map(|(ext, p)| item(&request(ext, json!({"ai": {"priority": p}}))))
        .collect();
        s.ingest_batch(&items, "system").unwrap();
        // One item decided: it keeps the flags it was decided with.
        let c = s.claim(4, "ana").unwrap();
        s.decide(&c, &approve()).unwrap();
        assert_eq!(
            open_items(&s),
            [
                (
                    "a".into(),
                    Some("asap".into()),
                    0,
                    vec!["priority 'asap' is not an allowed priority".to_string()]
                ),
                ("n".into(), Some("normal".into()), 2, vec![]),
                ("l".into(), Some("low".into()), 3, vec![]),
            ]
        );
    }
    // Today's defaults: "normal" is read as "medium"; nothing else changes.
    {
        let s = open_with(&path, Policy::default());
        assert_eq!(
            open_items(&s),
            [
                (
                    "a".into(),
                    Some("asap".into()),
                    0,
                    vec!["priority 'asap' is not an allowed priority".to_string()]
                ),
                ("n".into(), Some("medium".into()), 2, vec![]),
                ("l".into(), Some("low".into()), 3, vec![]),
            ]
        );
        assert_eq!(
            s.checked_policy_digest().unwrap(),
            Some(Policy::default().validation_digest())
        );
        let kinds: Vec<String> = s
            .connection()
            .prepare("SELECT kind FROM audit WHERE request_id IS NULL")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(kinds, ["policy_rechecked"]);
        // A filter by an alias finds the items it is read as.
        let q = ListQuery {
            filter: signoff::queue::Filter {
                priorities: vec!["normal".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let found: Vec<String> = s
            .list(&q)
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.external_id)
            .collect();
        assert_eq!(found, ["n"]);
    }
    // A policy that drops "medium" and the alias: the item is flagged, not dropped, and
    // sorts first (with "asap", now allowed and first in the list, which loses its flag).
    let mut strict = Policy {
        priorities: ["asap", "urgent", "high", "low"].map(String::from).to_vec(),
        priority_aliases: Default::default(),
        sla_minutes: Default::default(),
        ..Policy::default()
    };
    strict.review.priorities.clear();
    {
        let s = open_with(&path, strict.clone());
        assert_eq!(
            open_items(&s),
            [
                (
                    "n".into(),
                    Some("normal".into()),
                    0,
                    vec!["priority 'normal' is not an allowed priority".to_string()]
                ),
                ("a".into(), Some("asap".into()), 0, vec![]),
                ("l".into(), Some("low".into()), 3, vec![]),
            ]
        );
        let d = s.get(4).unwrap();
        assert_eq!(d.summary.state, State::Approved);
        assert_eq!(d.summary.flag_count, 0, "decided items keep their flags");
        // The detail is checked under the current policy whatever the columns say.
        assert_eq!(d.flags.len(), 1, "{:?}", d.flags);
    }
    // Back to the defaults: the same as before the detour, and the chain still verifies.
    let s = open_with(&path, Policy::default());
    let items = open_items(&s);
    assert_eq!(items[1].0, "n");
    assert_eq!(items[1].1.as_deref(), Some("medium"));
    assert_eq!(items[1].3, Vec::<String>::new());
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
    // An unchanged policy does no pass.
    drop(s);
    let mut s = open_with(&path, Policy::default());
    assert_eq!(s.recheck_open_items().unwrap(), None);
    // With the rules it last ran under on record, a pass re-checks unedited items from
    // their columns alone, without reading a payload, to the same result.
    s.connection()
        .execute("DELETE FROM meta WHERE key = 'policy_digest'", [])
        .unwrap();
    let before = open_items(&s);
    let done = s.recheck_open_items().unwrap().unwrap();
    assert_eq!((done.checked, done.reread, done.changed), (3, 0, 0));
    assert_eq!(open_items(&s), before);
    drop(s);
    let s = open_with(&path, strict);
    assert_eq!(open_items(&s)[0].3.len(), 1, "{:?}", open_items(&s));
    let reread: i64 = count(
        &s,
        "SELECT COUNT(*) FROM requests WHERE ai_priority IS NULL",
    );
    assert_eq!(reread, 0);
}

#[test]
fn a_recheck_keeps_a_reviewers_priority() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let mut s = open_with(&path, Policy::default());
        s.ingest_batch(
            &[item(&request("e", json!({"ai": {"priority": "low"}})))],
            "t",
        )
        .unwrap();
        let c = s.claim(1, "ana").unwrap();
        // Typed in another case: saved as the priority it is read as.
        s.edit(&c, EditableField::Priority, Some("Urgent".into()))
            .unwrap();
        assert_eq!(open_items(&s)[0].1.as_deref(), Some("urgent"));
    }
    let mut p = Policy::default();
    p.priorities.push("someday".into());
    let s = open_with(&path, p);
    assert_eq!(
        open_items(&s),
        [("e".into(), Some("urgent".into()), 0, vec![])]
    );
    assert_eq!(s.get(1).unwrap().fields.priority.as_deref(), Some("urgent"));
}

#[test]
fn a_recheck_from_columns_equals_a_fresh_ingest_under_the_new_policy() {
    let payloads = vec![
        request("plain", json!({})),
        request("alias", json!({"ai": {"priority": "Normal"}})),
        request(
            "upper",
            json!({"ai": {"priority": "HIGH", "intent": "Sales_Lead"}}),
        ),
        request(
            "asap",
            json!({"ai": {"priority": "asap", "intent": "refund"}}),
        ),
        request("number", json!({"ai": {"priority": 5, "summary": null}})),
        request(
            "conf",
            json!({"ai": {"confidence": "high", "intent": null}}),
        ),
        request(
            "late",
            json!({"received_at": "yesterday", "ai": {"priority": "low"}}),
        ),
        request("empty-ai", json!({"ai": {"summary": "   "}})),
        {
            let mut v = request("no-ai", json!({}));
            v.as_object_mut().unwrap().remove("ai");
            v
        },
        {
            let mut v = request("ai-empty", json!({}));
            v["ai"] = json!({});
            v
        },
    ];
    let items: Vec<_> = payloads.iter().map(item).collect();
    let a = Policy::default();
    let mut b = Policy {
        priorities: ["asap", "high", "low"].map(String::from).to_vec(),
        priority_aliases: [("normal".to_string(), "low".to_string())].into(),
        sla_minutes: Default::default(),
        ..Policy::default()
    };
    b.intents.retain(|i| i != "sales_lead");
    b.intents.push("refund".into());
    b.actions.remove("sales_lead");
    b.review.priorities.clear();
    let columns = |s: &Store| -> Vec<(String, Option<String>, i64, String, i64)> {
        s.connection()
            .prepare(
                "SELECT external_id, priority, priority_rank, flags, flag_count FROM requests ORDER BY external_id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let fresh = |p: &Policy, name: &str| {
        let mut s = open_with(&dir.path().join(name), p.clone());
        s.ingest_batch(&items, "t").unwrap();
        columns(&s)
    };
    let under_a = fresh(&a, "a.db");
    let under_b = fresh(&b, "b.db");
    assert_ne!(under_a, under_b, "the policies disagree on these items");
    let path = dir.path().join("moving.db");
    let mut s = open_with(&path, a.clone());
    s.ingest_batch(&items, "t").unwrap();
    drop(s);
    for (p, want) in [(&b, &under_b), (&a, &under_a), (&b, &under_b)] {
        let mut s = open_with(&path, p.clone());
        assert_eq!(&columns(&s), want);
        // Done from the columns: no payload was read.
        let detail: String = s
            .connection()
            .query_row(
                "SELECT detail FROM audit WHERE kind = 'policy_rechecked' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(detail["reread"], 0, "{detail}");
        // The same again, read from the payloads.
        s.connection().execute("DELETE FROM meta", []).unwrap();
        let done = s.recheck_open_items().unwrap().unwrap();
        assert_eq!((done.reread, done.changed), (payloads.len() as u64, 0));
    }
}

#[test]
fn a_batch_of_decisions_commits_together_and_a_refused_one_alone_rolls_back() {
    let (_d, mut s) = seeded(3);
    let a = s.claim(1, "ana").unwrap();
    let b = s.claim(2, "ben").unwrap();
    let c = s.claim(3, "cy").unwrap();
    let stale_b = signoff::queue::Claim {
        fence: b.fence + 1,
        ..b.clone()
    };
    let edit_and_approve = Decision {
        kind: DecisionKind::Approve,
        revision: None,
        note: None,
        sets: vec![(EditableField::Priority, Some("high".into()))],
    };
    let results = s
        .decide_batch(&[
            (a.clone(), edit_and_approve.clone(), Some("ana-unix".into())),
            (stale_b, edit_and_approve.clone(), None),
            (c.clone(), approve(), None),
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    match results[1].as_ref().map_err(|e| e.to_string()) {
        Err(m) => assert!(m.contains("lease lost"), "{m}"),
        Ok(r) => panic!("{r:?}"),
    }
    assert_eq!(s.get(1).unwrap().summary.state, State::Approved);
    assert_eq!(s.get(3).unwrap().summary.state, State::Approved);
    // The refused one left nothing: no edit, no decision, still ben's.
    let two = s.get(2).unwrap();
    assert_eq!(two.summary.state, State::InReview);
    assert!(two.edits.is_empty() && two.decision.is_none());
    assert_eq!(count(&s, "SELECT count(*) FROM decisions"), 2);
    assert_eq!(
        count(&s, "SELECT count(*) FROM decisions WHERE request_id = 2"),
        0
    );
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
    // Each decision's rows name the Unix user it was made for.
    let users: Vec<Option<String>> = s
        .timeline(1)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "decided")
        .map(|e| e.os_user)
        .collect();
    assert_eq!(users, [Some("ana-unix".to_string())]);
    let own = s.os_user().to_string();
    assert!(
        s.timeline(3)
            .unwrap()
            .iter()
            .filter(|e| e.kind == "decided")
            .all(|e| e.os_user.as_deref() == Some(own.as_str()))
    );
    // And ben can still decide with his real claim.
    s.decide(&b, &approve()).unwrap();
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
}

/// Claims and heartbeats share a group commit's transaction with decisions: two reviewers
/// asking for the next item in one batch get different items, a claim on an item someone
/// holds and a heartbeat on a stale fence fail alone, and the chain stays whole.
#[test]
fn claims_and_heartbeats_in_a_batch_are_each_their_own() {
    use signoff::store::{BatchAnswer, BatchOp};
    let (_d, mut s) = seeded(4);
    let held = s.claim(4, "dora").unwrap();
    let mine = s.claim(3, "ana").unwrap();
    let stale = signoff::queue::Claim {
        fence: mine.fence + 1,
        ..mine.clone()
    };
    let results = s
        .write_batch(&[
            (BatchOp::ClaimNext("ana".into()), None),
            (BatchOp::ClaimNext("ben".into()), None),
            (BatchOp::Claim(4, "cy".into()), None),
            (BatchOp::Heartbeat(stale), None),
            (BatchOp::Heartbeat(mine.clone()), None),
            (BatchOp::ClaimNext("cy".into()), None),
        ])
        .unwrap();
    let claim = |i: usize| match &results[i] {
        Ok(BatchAnswer::Claim(c)) => c.clone(),
        other => panic!("result {i}: {other:?}"),
    };
    let (ana, ben) = (claim(0).unwrap(), claim(1).unwrap());
    assert_ne!(ana.id, ben.id, "two claims in one transaction, two items");
    assert_eq!(
        (ana.reviewer.as_str(), ben.reviewer.as_str()),
        ("ana", "ben")
    );
    let err = |i: usize| match &results[i] {
        Err(e) => queue_err_ref(e),
        other => panic!("result {i}: {other:?}"),
    };
    assert!(matches!(err(2), QueueError::HeldBy { id: 4, ref reviewer, .. } if reviewer == "dora"));
    assert!(matches!(err(3), QueueError::LeaseLost { id: 3, .. }));
    assert_eq!(
        claim(4).map(|c| c.fence),
        Some(mine.fence),
        "the live lease renewed"
    );
    assert_eq!(claim(5), None, "nothing left for cy");
    assert_eq!(
        s.get(4).unwrap().summary.claimed_by.as_deref(),
        Some("dora")
    );
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
    s.decide(&held, &approve()).unwrap();
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
}

fn queue_err_ref(e: &StoreError) -> QueueError {
    match e {
        StoreError::Queue(q) => q.clone(),
        other => QueueError::Storage(other.to_string()),
    }
}

/// `queue_counts` and `open_hours` against a recount from `requests`, and `counts()` and
/// the unfiltered list totals against plain counts over the items.
fn assert_counters_match_a_recount(s: &Store, step: usize, what: &str) {
    let rows = |sql: &str| -> Vec<(String, i64, i64)> {
        s.connection()
            .prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let at = format!("after step {step} ({what})");
    assert_eq!(
        rows("SELECT state, priority_rank, n FROM queue_counts WHERE n <> 0 ORDER BY 1, 2"),
        rows("SELECT state, priority_rank, COUNT(*) FROM requests GROUP BY 1, 2 ORDER BY 1, 2"),
        "queue_counts {at}"
    );
    assert_eq!(
        rows(
            "SELECT CAST(priority_rank AS TEXT), hour, n FROM open_hours ORDER BY priority_rank, hour"
        ),
        rows(
            "SELECT CAST(priority_rank AS TEXT), received_at / 3600000, COUNT(*) FROM requests
             WHERE state IN ('pending','in_review') GROUP BY priority_rank, 2
             ORDER BY priority_rank, 2"
        ),
        "open_hours {at}"
    );
    assert_eq!(
        rows("SELECT 'i', hour, n FROM ingest_hours WHERE n <> 0 ORDER BY hour"),
        rows("SELECT 'i', ingested_at / 3600000, COUNT(*) FROM requests GROUP BY 2 ORDER BY 2"),
        "ingest_hours {at}"
    );
    let c = s.counts().unwrap();
    let n = |sql: &str| count(s, sql) as u64;
    let by_state = |st: &str| {
        n(&format!(
            "SELECT COUNT(*) FROM requests WHERE state = '{st}'"
        ))
    };
    assert_eq!(
        (c.pending, c.in_review, c.approved, c.rejected, c.escalated),
        (
            by_state("pending"),
            by_state("in_review"),
            by_state("approved"),
            by_state("rejected"),
            by_state("escalated")
        ),
        "counts {at}"
    );
    let oldest: Option<i64> = s
        .connection()
        .query_row(
            "SELECT MIN(received_at) FROM requests WHERE state IN ('pending','in_review')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(c.oldest_open, oldest, "oldest open {at}");
    let now = s.now();
    let mut breaches = 0;
    for (rank, p) in s.policy().priorities.iter().enumerate() {
        if let Some(min) = s.policy().sla_minutes.get(p) {
            breaches += n(&format!(
                "SELECT COUNT(*) FROM requests WHERE state IN ('pending','in_review')
                 AND priority_rank = {rank} AND received_at < {}",
                now - *min as i64 * 60_000
            ));
        }
    }
    assert_eq!(c.sla_breaches, breaches, "SLA breaches {at}");
    let open = s.list(&ListQuery::default()).unwrap();
    assert_eq!(open.total, c.pending + c.in_review, "open total {at}");
    // A page asked around an open item is read where the item sits in the queue order.
    let places: Vec<(i64, u64)> = s
        .connection()
        .prepare(
            "SELECT id, ROW_NUMBER() OVER (ORDER BY priority_rank, received_at, id) - 1
             FROM requests WHERE state IN ('pending','in_review')",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for &(id, place) in places.iter().step_by(5) {
        let page = s
            .list(&ListQuery {
                around: Some(id),
                limit: 4,
                ..ListQuery::default()
            })
            .unwrap();
        assert!(page.items.iter().any(|i| i.id == id), "item {id} {at}");
        let offset = if place < 4 { 0 } else { place - 2 };
        assert_eq!(page.offset, offset, "item {id} at {place} {at}");
    }
    let decided = ListQuery {
        states: vec![State::Approved, State::Escalated],
        ..ListQuery::default()
    };
    assert_eq!(
        s.list(&decided).unwrap().total,
        c.approved + c.escalated,
        "decided total {at}"
    );
}

#[test]
fn maintained_counts_equal_a_recount_after_random_changes() {
    use signoff::clock::Clock;
    use signoff::store::{Durability, StoreOptions};
    // A fixed seed: the same walk every run (xorshift64*).
    let mut seed: u64 = 0x5eed_c0de_2026_1121;
    let mut rnd = move |n: u64| {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    // Two policies that rank priorities differently: reopening under the other one makes
    // the store check the open items again (new priorities and ranks).
    let a = Policy::default();
    let b = Policy {
        priorities: ["low", "urgent", "high"].map(String::from).to_vec(),
        priority_aliases: [("normal".to_string(), "low".to_string())].into(),
        sla_minutes: [("urgent".to_string(), 30), ("low".to_string(), 600)].into(),
        ..Policy::default()
    };
    let opts = StoreOptions {
        durability: Durability::Normal,
        // 2026-11-21T00:00:00Z; items arrive over the three days before.
        clock: Clock::fixed(1_795_219_200_000),
        ..StoreOptions::default()
    };
    let reopen = |p: &Policy| Store::open(&path, std::sync::Arc::new(p.clone()), &opts).unwrap();
    let mut s = reopen(&a);
    let mut under_a = true;
    let priorities = [
        "urgent", "high", "normal", "medium", "low", "asap", "whenever",
    ];
    let mut claims: Vec<signoff::queue::Claim> = Vec::new();
    let mut decided: Vec<(i64, String)> = Vec::new();
    let mut next = 0u64;
    let ingest = |s: &mut Store, rnd: &mut dyn FnMut(u64) -> u64, ext: String| {
        let minutes = rnd(3 * 24 * 60) as i64;
        let at = 1_795_219_200_000 - minutes * 60_000 - rnd(60_000) as i64;
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let p = priorities[rnd(priorities.len() as u64) as usize];
        let v = request(&ext, json!({"received_at": at, "ai": {"priority": p}}));
        s.ingest_batch(&[item(&v)], "system").unwrap();
    };
    for i in 0..40 {
        ingest(&mut s, &mut rnd, format!("e{i}"));
        next += 1;
    }
    assert_counters_match_a_recount(&s, 0, "first items");
    let reviewers = ["ana", "ben"];
    for step in 1..=400 {
        let total = count(&s, "SELECT COUNT(*) FROM requests");
        let id = 1 + rnd(total as u64) as i64;
        let who = reviewers[rnd(2) as usize];
        let what = match rnd(100) {
            0..=14 => {
                // New items, or a new revision of one (another priority and receipt time).
                let ext = if rnd(3) == 0 {
                    format!("e{}", rnd(next))
                } else {
                    next += 1;
                    format!("e{}", next - 1)
                };
                ingest(&mut s, &mut rnd, ext);
                "ingest"
            }
            15..=34 => {
                let c = if rnd(2) == 0 {
                    s.claim(id, who).ok()
                } else {
                    s.claim_next(who).unwrap()
                };
                claims.extend(c);
                "claim"
            }
            35..=44 => {
                if !claims.is_empty() {
                    let c = claims.swap_remove(rnd(claims.len() as u64) as usize);
                    let _ = s.release(&c);
                }
                "release"
            }
            45..=51 => {
                // Past every lease: the next claim puts them back in the queue.
                s.advance_clock(Policy::default().lease_seconds as i64 * 1000 + 1);
                claims.extend(s.claim_next(who).unwrap());
                "lease expiry"
            }
            52..=71 => {
                if !claims.is_empty() {
                    let c = claims.swap_remove(rnd(claims.len() as u64) as usize);
                    let p = s.policy();
                    let kind = match rnd(3) {
                        0 => DecisionKind::Approve,
                        1 => DecisionKind::Reject {
                            reason: p.reject_reasons[0].key.clone(),
                        },
                        _ => DecisionKind::Escalate {
                            queue: p.escalation_queues[0].name.clone(),
                        },
                    };
                    let d = Decision { kind, ..approve() };
                    if s.decide(&c, &d).is_ok() {
                        decided.push((c.id, c.reviewer.clone()));
                    }
                }
                "decide"
            }
            72..=81 => {
                if !decided.is_empty() {
                    let (id, who) = decided.swap_remove(rnd(decided.len() as u64) as usize);
                    claims.extend(s.undo(id, &who).ok());
                }
                "undo"
            }
            82..=87 => {
                if let Some(c) = claims.last() {
                    let p = priorities[rnd(priorities.len() as u64) as usize];
                    let _ = s.edit(c, EditableField::Priority, Some(p.into()));
                }
                "priority edit"
            }
            88..=92 => {
                drop(s);
                under_a = !under_a;
                s = reopen(if under_a { &a } else { &b });
                "policy recheck"
            }
            _ => {
                s.advance_clock(rnd(90 * 60_000) as i64);
                "time passes"
            }
        };
        assert_counters_match_a_recount(&s, step, what);
    }
    // The walk went everywhere it should have.
    let c = s.counts().unwrap();
    assert!(c.pending > 0 && c.in_review > 0, "{c:?}");
    assert!(c.approved + c.rejected + c.escalated > 0, "{c:?}");
    assert!(c.sla_breaches > 0, "{c:?}");
    assert!(count(&s, "SELECT COUNT(*) FROM audit WHERE kind = 'undone'") > 0);
    assert!(
        count(
            &s,
            "SELECT COUNT(*) FROM audit WHERE kind = 'lease_expired'"
        ) > 0
    );
    assert!(count(&s, "SELECT COUNT(*) FROM audit WHERE kind = 'revised'") > 0);
    assert!(
        count(
            &s,
            "SELECT COUNT(*) FROM audit WHERE kind = 'policy_rechecked'"
        ) > 0
    );
}
