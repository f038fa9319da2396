//! The PostgreSQL queue's ingest, outbox leases, tokens and idempotency records, against the
//! tests' PostgreSQL cluster, a fresh database per test: the same results as the SQLite store for the same input, and
//! two dispatchers on one database sending every action exactly once.
mod support;

use std::sync::Arc;

use signoff::clock::Clock;
use signoff::ingest::Ingester;
use signoff::model::{Policy, ReviewRules};
use signoff::pg::{PgDb, PgOptions};
use signoff::store::{AttemptRecord, Disposition, IdempotentAnswer, Store, StoreOptions};

const T0: i64 = 1_767_000_000_000;

/// A fresh, empty database in the tests' own PostgreSQL cluster (`tests/support/pg.rs`); `None`
/// (the test skips, said loudly) where PostgreSQL is not installed, except under `CI`.
async fn fresh_database(_name: &str) -> Option<String> {
    support::pg::database().map(|d| d.url)
}

async fn open(url: &str, policy: Arc<Policy>, clock: &Clock, dir: &std::path::Path) -> PgDb {
    let opts = PgOptions {
        clock: clock.clone(),
        key_path: dir.join("audit.key"),
        pool_size: 4,
        ..PgOptions::default()
    };
    PgDb::open(url, policy, &opts).await.unwrap()
}

fn line(ext: &str, subject: &str) -> String {
    support::payload(ext, "sales_lead", "high", "ada@example.com", subject, "Hi").to_string()
}

/// Every column ingest derives, per item, in id order.
type ItemRow = (
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
    Option<f64>,
    String,
    i64,
    i64,
    Option<String>,
);

fn sqlite_items(store: &Store) -> Vec<ItemRow> {
    let mut stmt = store
        .connection()
        .prepare(
            "SELECT source, external_id, state, revision, payload_sha256, priority_rank, priority,
                confidence, flags, flag_count, sample, subject FROM requests ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

async fn pg_items(db: &PgDb) -> Vec<ItemRow> {
    let c = db.client().await.unwrap();
    c.query(
        "SELECT source, external_id, state, revision, payload_sha256, priority_rank, priority,
            confidence, flags, flag_count, sample, subject FROM requests ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
            r.get(9),
            r.get(10),
            r.get(11),
        )
    })
    .collect()
}

type Logged = (String, Option<i64>, String, serde_json::Value);

fn sqlite_audit(store: &Store) -> Vec<Logged> {
    let mut stmt = store
        .connection()
        .prepare("SELECT actor, request_id, kind, detail FROM audit ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        let d: String = r.get(3)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            serde_json::from_str(&d).unwrap(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

async fn pg_audit(db: &PgDb) -> Vec<Logged> {
    let c = db.client().await.unwrap();
    c.query(
        "SELECT actor, request_id, kind, detail FROM audit ORDER BY seq",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let d: String = r.get(3);
        (
            r.get(0),
            r.get(1),
            r.get(2),
            serde_json::from_str(&d).unwrap(),
        )
    })
    .collect()
}

type QRow = (String, Option<i64>, String, String);

fn sqlite_quarantine(store: &Store) -> Vec<QRow> {
    let mut stmt = store
        .connection()
        .prepare("SELECT origin, line, reason, raw FROM quarantine ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn pg_quarantine(db: &PgDb) -> Vec<QRow> {
    let c = db.client().await.unwrap();
    c.query(
        "SELECT origin, line, reason, raw FROM quarantine ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// The same inputs through the SQLite store and the PostgreSQL queue.
async fn ingest_both(
    store: &mut Store,
    db: &PgDb,
    origin: &str,
    body: &str,
) -> (signoff::ingest::Report, Vec<signoff::ingest::Problem>) {
    let mut problems = Vec::new();
    let report = {
        let mut ingester = Ingester::new(store, "tester").on_problem(|p| problems.push(p.clone()));
        ingester
            .read(origin, std::io::Cursor::new(body.as_bytes().to_vec()))
            .unwrap();
        ingester.report
    };
    let on_pg = db
        .ingest(origin, body.as_bytes().to_vec(), "tester")
        .await
        .unwrap();
    assert_eq!(on_pg, (report, problems.clone()), "PostgreSQL and SQLite");
    (report, problems)
}

#[tokio::test]
async fn ingest_gives_what_the_sqlite_store_gives() {
    let dir = tempfile::tempdir().unwrap();
    let policy = support::policy();
    let clock = Clock::fixed(T0);
    let mut store = Store::open(
        &dir.path().join("queue.db"),
        policy.clone(),
        &StoreOptions {
            clock: clock.clone(),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let Some(url) = fresh_database("parity").await else {
        return;
    };
    let db = open(&url, policy, &clock, dir.path()).await;

    // New items, a blank line, bad JSON, an entry that is not a request, a revision and
    // a duplicate (other key order, same canonical JSON).
    let b: serde_json::Value = serde_json::from_str(&line("b", "Hello")).unwrap();
    let mut reordered = String::from("{");
    let obj = b.as_object().unwrap();
    for (i, (k, v)) in obj.iter().rev().enumerate() {
        if i > 0 {
            reordered.push(',');
        }
        reordered.push_str(&format!("{}:{}", serde_json::to_string(k).unwrap(), v));
    }
    reordered.push('}');
    let body = [
        line("a", "Hello"),
        line("b", "Hello"),
        String::new(),
        "{not json".into(),
        r#"{"source": "web"}"#.into(),
        line("a", "Hello again"),
        reordered,
        line("c", "Third"),
    ]
    .join("\n");
    let (report, problems) = ingest_both(&mut store, &db, "in.jsonl", &body).await;
    assert_eq!(
        (
            report.ingested,
            report.revised,
            report.duplicates,
            report.rejected
        ),
        (3, 1, 1, 2),
        "{report}"
    );
    assert_eq!(
        problems.iter().map(|p| p.line).collect::<Vec<_>>(),
        vec![4, 5]
    );

    // A changed payload for a decided item is a conflict, kept in quarantine.
    store
        .connection()
        .execute(
            "UPDATE requests SET state = 'approved' WHERE external_id = 'c'",
            [],
        )
        .unwrap();
    db.client()
        .await
        .unwrap()
        .execute(
            "UPDATE requests SET state = 'approved' WHERE external_id = 'c'",
            &[],
        )
        .await
        .unwrap();
    let (report, _) = ingest_both(&mut store, &db, "more.jsonl", &line("c", "Changed")).await;
    assert_eq!(report.conflicts, 1, "{report}");

    // A JSON array, with its element lines.
    let array = format!(
        "[\n{},\n{}\n]",
        line("d", "Array one"),
        r#"{"source": "web", "external_id": 7}"#
    );
    ingest_both(&mut store, &db, "arr.json", &array).await;

    assert_eq!(pg_items(&db).await, sqlite_items(&store));
    assert_eq!(pg_quarantine(&db).await, sqlite_quarantine(&store));
    let (lite, pg) = (sqlite_audit(&store), pg_audit(&db).await);
    assert_eq!(
        pg.iter().map(|a| a.2.as_str()).collect::<Vec<_>>(),
        vec![
            "ingested", "ingested", "revised", "ingested", "conflict", "ingested"
        ]
    );
    assert_eq!(pg, lite);
    assert_eq!(db.quarantine_count().await.unwrap(), 4);
    let newest = db.quarantine_list(1).await.unwrap();
    assert_eq!(newest[0].origin, "arr.json");
    assert_eq!(
        db.quarantine_get(newest[0].id).await.unwrap().unwrap().line,
        Some(3)
    );
    assert_eq!(
        store.quarantine_list(1).unwrap()[0].line,
        newest[0].line,
        "the same line as SQLite"
    );
}

fn auto_policy() -> Arc<Policy> {
    Arc::new(Policy {
        undo_seconds: 0,
        auto_approve: true,
        sample_rate: 0.0,
        never_auto_send: vec![],
        review: ReviewRules {
            intents: vec![],
            priorities: vec![],
            escalation_reason: false,
            ai_requests_review: false,
            flagged: false,
        },
        ..Policy::default()
    })
}

#[tokio::test]
async fn auto_approval_queues_the_same_decisions_and_actions() {
    let dir = tempfile::tempdir().unwrap();
    let policy = auto_policy();
    let clock = Clock::fixed(T0);
    let mut store = Store::open(
        &dir.path().join("queue.db"),
        policy.clone(),
        &StoreOptions {
            clock: clock.clone(),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let Some(url) = fresh_database("auto").await else {
        return;
    };
    let db = open(&url, policy, &clock, dir.path()).await;
    let body = (0..5)
        .map(|i| line(&format!("x{i}"), "Hello"))
        .collect::<Vec<_>>()
        .join("\n");
    let (report, _) = ingest_both(&mut store, &db, "auto.jsonl", &body).await;
    assert_eq!(report.ingested, 5);
    assert_eq!(pg_items(&db).await, sqlite_items(&store));
    assert_eq!(pg_audit(&db).await, sqlite_audit(&store));
    let c = db.client().await.unwrap();
    let pg: Vec<(i64, String, String, String)> = c
        .query(
            "SELECT request_id, action, idempotency_key, status FROM outbox ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let lite: Vec<(i64, String, String, String)> = store
        .connection()
        .prepare("SELECT request_id, action, idempotency_key, status FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!pg.is_empty());
    assert_eq!(pg, lite);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_database_send_every_action_once() {
    let f = support::Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.batch = 4;
    let dir = tempfile::tempdir().unwrap();
    let policy = auto_policy();
    let clock = Clock::fixed(T0);
    let Some(url) = fresh_database("dispatch").await else {
        return;
    };
    let first = Arc::new(open(&url, policy.clone(), &clock, dir.path()).await);
    first.set_renderer(signoff::actions::renderer(&cfg, policy.clone()).unwrap());
    let n = 30;
    let body = (0..n)
        .map(|i| line(&format!("w{i}"), "Hello"))
        .collect::<Vec<_>>()
        .join("\n");
    let (report, problems) = first
        .ingest("leads.jsonl", body.into_bytes(), "tester")
        .await
        .unwrap();
    assert_eq!(report.ingested, n, "{problems:?}");
    let second = Arc::new(open(&url, policy, &clock, dir.path()).await);
    let queued: i64 = first
        .client()
        .await
        .unwrap()
        .query_one("SELECT COUNT(*) FROM outbox WHERE status = 'queued'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 3 * n as i64, "crm, slack and gmail for each lead");
    let run = |db: Arc<PgDb>, name: &'static str| {
        let (cfg, clock) = (cfg.clone(), clock.clone());
        tokio::spawn(async move {
            signoff::actions::run_on(db, clock, &cfg, true, name, std::future::pending())
                .await
                .unwrap()
        })
    };
    let (a, b) = (run(first.clone(), "host-a"), run(second.clone(), "host-b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.sent + b.sent, 3 * n, "{a} / {b}");
    assert_eq!(a.attempts + b.attempts, 3 * n, "no row was attempted twice");
    let rows: Vec<(String, i64)> = first
        .client()
        .await
        .unwrap()
        .query("SELECT status, attempts FROM outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(rows.iter().all(|r| r.0 == "sent" && r.1 == 1), "{rows:?}");
    assert_eq!(
        f.with(|w| (
            w.monday.items.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len()
        )),
        (n as usize, n as usize, n as usize)
    );
    // One effect per idempotency key at each fake.
    let keys: std::collections::HashSet<String> = first
        .client()
        .await
        .unwrap()
        .query("SELECT idempotency_key FROM outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys.len(), 3 * n as usize);
}

#[tokio::test]
async fn a_lease_taken_over_after_it_ran_out_is_not_overwritten_by_its_old_worker() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::fixed(T0);
    let Some(url) = fresh_database("lease").await else {
        return;
    };
    let db = open(&url, auto_policy(), &clock, dir.path()).await;
    db.ingest("one.jsonl", line("l1", "Hello").into_bytes(), "tester")
        .await
        .unwrap();
    let old = db.claim_due("old", 1_000, 10).await.unwrap();
    assert_eq!(old.rows.len(), 3);
    assert!(old.rows.iter().all(|r| r.attempts == 1));
    // Nothing more is due while the lease runs; the next thing due is its end.
    let none = db.claim_due("new", 1_000, 10).await.unwrap();
    assert!(none.rows.is_empty());
    assert_eq!(none.next_due, Some(T0 + 1_000));
    clock.advance(1_001);
    let new = db.claim_due("new", 1_000, 10).await.unwrap();
    assert_eq!(new.rows.len(), 3);
    assert!(
        new.rows
            .iter()
            .all(|r| r.attempts == 2 && r.prior_status == "sending")
    );
    let record = |rows: &[signoff::store::ClaimedRow], d: Disposition| -> Vec<AttemptRecord> {
        rows.iter()
            .map(|r| AttemptRecord {
                id: r.id,
                request_id: r.request_id,
                attempt: r.attempts,
                disposition: d.clone(),
                error: None,
                response: "{}".into(),
                audit: serde_json::json!({"outbox_id": r.id}),
            })
            .collect()
    };
    assert_eq!(
        db.record_attempts("old", &record(&old.rows, Disposition::Dead))
            .await
            .unwrap(),
        0,
        "the old worker lost its lease"
    );
    assert_eq!(
        db.record_attempts("new", &record(&new.rows, Disposition::Sent))
            .await
            .unwrap(),
        3
    );
    let c = db.client().await.unwrap();
    let statuses: Vec<(String, Option<String>)> = c
        .query("SELECT status, lease_owner FROM outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(statuses.iter().all(|s| s == &("sent".to_string(), None)));
    let kinds: Vec<(String, String)> = c
        .query(
            "SELECT actor, kind FROM audit WHERE kind LIKE 'action_%' ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let count =
        |actor: &str, kind: &str| kinds.iter().filter(|k| k.0 == actor && k.1 == kind).count();
    assert_eq!(count("old", "action_attempt"), 3);
    assert_eq!(count("new", "action_attempt"), 3);
    assert_eq!(count("new", "action_sent"), 3);
    assert_eq!(count("old", "action_dead"), 0);
    let after_crash: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM audit WHERE kind = 'action_attempt' AND detail LIKE '%\"after_crash\":true%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(after_crash, 3);
    // The kill switch stops claims.
    c.execute(
        "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('actions.paused', 'true', 0, 't')",
        &[],
    )
    .await
    .unwrap();
    assert!(db.claim_due("new", 1_000, 10).await.unwrap().paused);
}

#[tokio::test]
async fn tokens_and_idempotent_answers_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::fixed(T0);
    let Some(url) = fresh_database("tokens").await else {
        return;
    };
    let db = open(&url, support::policy(), &clock, dir.path()).await;
    db.add_token("ci", "ingest", "aa", None, "admin")
        .await
        .unwrap();
    let again = db
        .add_token("ci", "ingest", "bb", None, "admin")
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("a token named 'ci' exists"), "{again}");
    db.add_token("old", "observer", "cc", Some(T0 + 10), "admin")
        .await
        .unwrap();
    let tokens = db.tokens().await.unwrap();
    assert_eq!(
        tokens
            .iter()
            .map(|t| (t.name.as_str(), t.role.as_str(), t.sha256.as_str()))
            .collect::<Vec<_>>(),
        vec![("ci", "ingest", "aa"), ("old", "observer", "cc")]
    );
    assert_eq!(tokens[0].created_at, T0);
    // An expired name can be taken again.
    clock.advance(20);
    db.add_token("old", "admin", "dd", None, "admin")
        .await
        .unwrap();
    db.revoke_token("ci", "admin").await.unwrap();
    let gone = db
        .revoke_token("ci", "admin")
        .await
        .unwrap_err()
        .to_string();
    assert!(gone.contains("no live token named 'ci'"), "{gone}");
    let tokens = db.tokens().await.unwrap();
    assert_eq!(tokens[0].revoked_at, Some(T0 + 20));
    assert_eq!(
        (tokens[1].role.as_str(), tokens[1].sha256.as_str()),
        ("admin", "dd")
    );
    let kinds: Vec<String> = db
        .client()
        .await
        .unwrap()
        .query("SELECT kind FROM audit ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kinds,
        vec!["token_added", "token_added", "token_added", "token_revoked"]
    );

    assert_eq!(db.idempotent_answer("ci", "k1").await.unwrap(), None);
    let first = IdempotentAnswer {
        body_sha256: "s1".into(),
        status: 201,
        answer: "{\"ok\":true}".into(),
    };
    db.store_idempotent_answer("ci", "k1", &first)
        .await
        .unwrap();
    let later = IdempotentAnswer {
        status: 500,
        ..first.clone()
    };
    db.store_idempotent_answer("ci", "k1", &later)
        .await
        .unwrap();
    assert_eq!(
        db.idempotent_answer("ci", "k1").await.unwrap(),
        Some(first.clone()),
        "the first answer is kept"
    );
    // A week on, it is forgotten when the next answer is stored.
    clock.advance(7 * 24 * 3600 * 1000 + 1);
    db.store_idempotent_answer("ci", "k2", &first)
        .await
        .unwrap();
    assert_eq!(db.idempotent_answer("ci", "k1").await.unwrap(), None);
    assert!(db.idempotent_answer("ci", "k2").await.unwrap().is_some());
}

#[tokio::test]
async fn the_policy_recheck_updates_open_items_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::fixed(T0);
    let Some(url) = fresh_database("recheck").await else {
        return;
    };
    let db = open(&url, support::policy(), &clock, dir.path()).await;
    let body = [line("r1", "Hello"), line("r2", "Hello")].join("\n");
    db.ingest("r.jsonl", body.into_bytes(), "tester")
        .await
        .unwrap();
    // Recorded the first time; nothing to do the second.
    assert!(db.recheck_open_items().await.unwrap().is_some());
    assert_eq!(db.recheck_open_items().await.unwrap(), None);
    // A policy that no longer knows "high": the open items are flagged.
    let narrower = Arc::new(Policy {
        priorities: vec!["urgent".into(), "medium".into(), "low".into()],
        ..(*support::policy()).clone()
    });
    let other = open(&url, narrower, &clock, dir.path()).await;
    let done = other.recheck_open_items().await.unwrap().unwrap();
    assert_eq!((done.checked, done.changed), (2, 2));
    let flagged: Vec<i64> = other
        .client()
        .await
        .unwrap()
        .query("SELECT flag_count FROM requests ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(flagged.iter().all(|n| *n > 0), "{flagged:?}");
    assert_eq!(other.recheck_open_items().await.unwrap(), None);
}
