//! The PostgreSQL queue's reads against the SQLite store's: the same items (made by the
//! SQLite store, then copied row for row) give the same pages, counts, items, timelines,
//! previews and stats. And the change feed: a change through one queue reaches another
//! queue on the same database, also after its listening connection was killed.
//!
//! Each test makes a database of its own in the tests' PostgreSQL cluster.
mod common;
#[path = "support/pg.rs"]
mod pg;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{item, request};
use serde_json::json;
use signoff::clock::Clock;
use signoff::model::{DecisionKind, EditableField, Policy, State};
use signoff::pg::{PgOptions, PgQueue};
use signoff::queue::{Decision, Filter, ListQuery, Queue, QueueError, Sort};
use signoff::store::{ActionRenderer, RenderContext, Store, StoreOptions};
use tokio_postgres::types::ToSql;

/// 2026-11-20T12:00:00Z.
const T0: i64 = 1_795_176_000_000;
const HOUR: i64 = 3_600_000;

/// A fresh, empty database in the tests' own PostgreSQL cluster (`tests/support/pg.rs`); `None`
/// (the test skips, said loudly) where PostgreSQL is not installed, except under `CI`.
async fn fresh_db(_hint: &str) -> Option<String> {
    pg::database().map(|d| d.url)
}

fn pg_options(dir: &std::path::Path, clock: &Clock) -> PgOptions {
    PgOptions {
        clock: clock.clone(),
        key_path: dir.join("audit.key"),
        pool_size: 4,
        ..PgOptions::default()
    }
}

/// Renders what it is given, so previews show the context both backends built.
struct Echo;

impl ActionRenderer for Echo {
    fn render(&self, ctx: &RenderContext<'_>) -> Result<serde_json::Value, String> {
        if ctx.request.external_id == "unrenderable" {
            return Err("no template".into());
        }
        Ok(json!({
            "request_id": ctx.request_id,
            "decision_id": ctx.decision_id,
            "key": ctx.idempotency_key,
            "fields": format!("{:?}", ctx.fields),
            "decision": ctx.decision.verb(),
            "note": ctx.note,
            "reviewer": ctx.reviewer,
        }))
    }
}

/// Items of every shape the listing tells apart, ingested over ten days, some claimed,
/// edited, decided, undone and given outcomes; the kill switch on.
fn seed(store: &mut Store, clock: &Clock) {
    let priorities = [
        Some("urgent"),
        Some("high"),
        Some("normal"),
        Some("low"),
        Some("weird"),
        None,
    ];
    let intents = [
        "sales_lead",
        "support_request",
        "billing_question",
        "spam",
        "unheard_of",
    ];
    let senders = [
        "Dana <dana@example.com>",
        "ÄRGER GmbH <ärger@example.de>",
        "ärger kunde <k@example.de>",
        "Pat_100% <pat@example.com>",
        "x\\y <xy@example.com>",
    ];
    let mut n = 0;
    for day in 0..10 {
        let mut batch = Vec::new();
        for k in 0..6 {
            n += 1;
            let received = format!(
                "2026-11-{:02}T{:02}:{:02}:00Z",
                10 + day,
                (k * 4) % 24,
                n % 60
            );
            let mut ai = json!({
                "intent": intents[n % intents.len()],
                "summary": if n % 7 == 0 { "Needs a 50% discount" } else { "Wants a demo" },
            });
            match priorities[n % priorities.len()] {
                Some(p) => ai["priority"] = json!(p),
                None => ai["priority"] = serde_json::Value::Null,
            }
            ai["confidence"] = match n % 5 {
                0 => serde_json::Value::Null,
                1 => json!("very"),
                2 => json!(0.55),
                3 => json!(0.8),
                _ => json!(0.95),
            };
            if n % 9 == 0 {
                ai["escalation_reason"] = json!("legal threat");
            }
            let body = if n % 11 == 0 {
                "Hi\u{200b} there"
            } else {
                "Hi, we would like a demo."
            };
            let ext = if n == 13 {
                "unrenderable".to_string()
            } else {
                format!("E-{n}")
            };
            batch.push(item(&request(
                &ext,
                json!({
                    "received_at": received,
                    "raw": {"from": senders[n % senders.len()], "subject": format!("Subject {n}"), "body": body},
                    "ai": ai,
                }),
            )));
        }
        store.ingest_batch(&batch, "system").unwrap();
        clock.advance(24 * HOUR);
    }
    // A second revision of one item.
    store
        .ingest_batch(
            &[item(&request(
                "E-2",
                json!({"received_at": "2026-11-10T00:02:00Z", "ai": {"summary": "Changed its mind"}}),
            ))],
            "system",
        )
        .unwrap();
    clock.advance(HOUR);
    let decide = |store: &mut Store, id: i64, who: &str, kind: DecisionKind, edit: bool| {
        let claim = store.claim(id, who).unwrap();
        clock.advance(90_000);
        if edit {
            store
                .edit(&claim, EditableField::Priority, Some("urgent".into()))
                .unwrap();
            clock.advance(1_000);
        }
        // Approvals need an allowed intent and priority: set them where the AI's were not.
        let sets = if kind == DecisionKind::Approve {
            vec![
                (EditableField::Intent, Some("sales_lead".to_string())),
                (EditableField::Priority, Some("high".to_string())),
            ]
        } else {
            vec![]
        };
        store
            .decide(
                &claim,
                &Decision {
                    kind,
                    revision: None,
                    note: Some(format!("by {who}")),
                    sets,
                },
            )
            .unwrap();
        clock.advance(10_000);
    };
    let reject = |r: &str| DecisionKind::Reject { reason: r.into() };
    let escalate = |q: &str| DecisionKind::Escalate { queue: q.into() };
    for id in [3, 8, 21, 30, 44] {
        decide(store, id, "ann", DecisionKind::Approve, id == 8);
    }
    for id in [5, 9, 33] {
        decide(store, id, "bob", reject("spam"), false);
    }
    decide(store, 12, "ann", reject("duplicate"), true);
    for id in [14, 50] {
        decide(store, id, "cy", escalate("legal"), false);
    }
    decide(store, 15, "cy", escalate("billing"), false);
    decide(store, 27, "cy", escalate("legal"), false);
    // Taken back: pending again, the decision undone.
    store.undo(27, "cy").unwrap();
    clock.advance(60_000);
    // Claimed, one of them edited.
    store.claim(1, "ann").unwrap();
    let c = store.claim(17, "bob").unwrap();
    store
        .edit(&c, EditableField::Intent, Some("complaint".into()))
        .unwrap();
    store.claim(40, "cy").unwrap();
    for (id, value, reason) in [
        (3, "qualified", None),
        (3, "won", None),
        (8, "lost", Some("price")),
        (5, "wrong_intent", Some("was support")),
        (14, "no_response", None),
    ] {
        store.record_outcome(id, value, reason, "ann").unwrap();
    }
    store.set_actions_paused(true, "ann").unwrap();
    // And a few in the last hours, for the volume line.
    let recent: Vec<_> = (0..3)
        .map(|i| item(&request(&format!("late-{i}"), json!({}))))
        .collect();
    store.ingest_batch(&recent, "system").unwrap();
    clock.advance(2 * HOUR);
}

/// Copies the store's rows into the PostgreSQL queue's tables, column for column (what
/// both schemas have), and moves the id sequences past the copied ids.
async fn copy(store: &Store, pg: &tokio_postgres::Client) {
    let sqlite = store.connection();
    for table in [
        "requests",
        "revisions",
        "edits",
        "decisions",
        "outbox",
        "outcomes",
        "audit",
        "settings",
    ] {
        let pg_cols: Vec<(String, String)> = pg
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let lite_cols: Vec<String> = sqlite
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let cols: Vec<&(String, String)> = pg_cols
            .iter()
            .filter(|(c, _)| lite_cols.contains(c))
            .collect();
        let names = cols
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let marks = (1..=cols.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = pg
            .prepare(&format!("INSERT INTO {table} ({names}) VALUES ({marks})"))
            .await
            .unwrap();
        let mut stmt = sqlite
            .prepare(&format!("SELECT {names} FROM {table}"))
            .unwrap();
        let rows: Vec<Vec<Box<dyn ToSql + Sync + Send>>> = stmt
            .query_map([], |r| {
                cols.iter()
                    .enumerate()
                    .map(|(i, (_, ty))| {
                        Ok(match ty.as_str() {
                            "bigint" => Box::new(r.get::<_, Option<i64>>(i)?)
                                as Box<dyn ToSql + Sync + Send>,
                            "integer" => Box::new(r.get::<_, Option<i64>>(i)?.map(|v| v as i32)),
                            "double precision" => Box::new(r.get::<_, Option<f64>>(i)?),
                            _ => Box::new(r.get::<_, Option<String>>(i)?),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for row in &rows {
            let args: Vec<&(dyn ToSql + Sync)> = row
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            pg.execute(&insert, &args).await.unwrap();
        }
    }
    // The threshold in force, and the signed-off validation it stands on.
    let in_force: Vec<String> = sqlite
        .prepare("SELECT value FROM meta WHERE key = 'policy_in_force'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for v in &in_force {
        pg.execute(
            "INSERT INTO meta (key, value) VALUES ('policy_in_force', $1)",
            &[v],
        )
        .await
        .unwrap();
    }
    for table in ["requests", "edits", "decisions", "outbox", "outcomes"] {
        pg.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}
                 HAVING MAX(id) IS NOT NULL"
            ),
            &[],
        )
        .await
        .unwrap();
    }
}

struct Pair {
    _dir: tempfile::TempDir,
    store: Store,
    pg: PgQueue,
}

async fn pair(hint: &str) -> Option<Pair> {
    paired(hint, Clock::fixed(T0 - 12 * 24 * HOUR), seed).await
}

/// A SQLite store seeded by `seed` and a PostgreSQL queue holding a copy of its rows, on
/// one clock.
async fn paired(hint: &str, clock: Clock, seed: impl FnOnce(&mut Store, &Clock)) -> Option<Pair> {
    let dir = tempfile::tempdir().unwrap();
    let policy = Arc::new(Policy::default());
    let mut store = Store::open(
        &dir.path().join("q.db"),
        policy.clone(),
        &StoreOptions {
            clock: clock.clone(),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store.set_renderer(Arc::new(Echo));
    seed(&mut store, &clock);
    let url = fresh_db(hint).await?;
    let pg = PgQueue::open(&url, policy, &pg_options(dir.path(), &clock))
        .await
        .unwrap()
        .with_renderer(Arc::new(Echo));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    copy(&store, &client).await;
    Some(Pair {
        _dir: dir,
        store,
        pg,
    })
}

fn ids(store: &Store) -> Vec<i64> {
    store
        .connection()
        .prepare("SELECT id FROM requests ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_match_the_sqlite_store_for_every_sort_state_filter_and_page() {
    let Some(p) = pair("list").await else {
        return;
    };
    let sorts = [
        Sort::Queue,
        Sort::Oldest,
        Sort::Newest,
        Sort::Confidence,
        Sort::RecentlyDecided,
        Sort::LeastUrgent,
        Sort::MostConfident,
        Sort::SlaDue,
        Sort::SlaLast,
    ];
    let state_sets = [
        vec![],
        vec![State::Pending],
        vec![State::InReview],
        vec![State::Approved],
        vec![State::Approved, State::Rejected, State::Escalated],
        vec![State::Pending, State::Approved, State::Escalated],
    ];
    let text = |t: &str| Filter {
        text: Some(t.into()),
        ..Filter::default()
    };
    let filters = [
        Filter::default(),
        text("dana"),
        text("DANA"),
        text("ärger"),
        text("ÄRGER"),
        text("%"),
        text("_1"),
        text("50%"),
        text("x\\y"),
        text("e-1"),
        text(""),
        Filter {
            priorities: vec!["normal".into(), "urgent".into()],
            ..Filter::default()
        },
        Filter {
            intent: Some("support_request".into()),
            ..Filter::default()
        },
        Filter {
            conf_below: Some(0.8),
            ..Filter::default()
        },
        Filter {
            conf_at_least: Some(0.8),
            ..Filter::default()
        },
        Filter {
            older_than: Some(5 * 24 * HOUR),
            ..Filter::default()
        },
        Filter {
            newer_than: Some(6 * 24 * HOUR),
            ..Filter::default()
        },
        Filter {
            escalation: true,
            ..Filter::default()
        },
        Filter {
            hidden: true,
            ..Filter::default()
        },
        Filter {
            text: Some("demo".into()),
            priorities: vec!["low".into()],
            conf_below: Some(0.9),
            escalation: false,
            ..Filter::default()
        },
    ];
    let mut checked = 0;
    let mut check = async |q: ListQuery| {
        let want = p.store.list(&q).unwrap();
        let got = p.pg.list(&q).await.unwrap();
        assert_eq!(got, want, "{q:?}");
        checked += 1;
    };
    for states in &state_sets {
        for sort in sorts {
            for (offset, limit) in [(0, 0), (0, 7), (5, 4), (200, 10)] {
                check(ListQuery {
                    states: states.clone(),
                    sort,
                    offset,
                    limit,
                    ..ListQuery::default()
                })
                .await;
            }
        }
        for filter in &filters {
            for sort in [Sort::Queue, Sort::Confidence, Sort::SlaDue] {
                check(ListQuery {
                    states: states.clone(),
                    filter: filter.clone(),
                    sort,
                    limit: 5,
                    ..ListQuery::default()
                })
                .await;
            }
        }
    }
    // The page that holds an item, wherever the item sits (or the first page when it is
    // not in the list).
    for id in ids(&p.store).into_iter().chain([9999]) {
        for states in [vec![], vec![State::Pending], state_sets[5].clone()] {
            for sort in [Sort::Queue, Sort::Newest, Sort::SlaLast, Sort::Confidence] {
                for filter in [Filter::default(), text("a"), filters[13].clone()] {
                    check(ListQuery {
                        states: states.clone(),
                        filter,
                        sort,
                        limit: 4,
                        around: Some(id),
                        ..ListQuery::default()
                    })
                    .await;
                }
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_items_timelines_and_previews_match_the_sqlite_store() {
    let Some(p) = pair("detail").await else {
        return;
    };
    assert_eq!(p.pg.counts().await.unwrap(), p.store.counts().unwrap());
    assert!(p.pg.actions_paused().await.unwrap());
    for id in ids(&p.store) {
        let want = p.store.get(id).unwrap();
        let got = p.pg.get(id).await.unwrap();
        assert_eq!(got, want, "item {id}");
        assert_eq!(
            p.pg.timeline(id).await.unwrap(),
            p.store.timeline(id).unwrap(),
            "timeline {id}"
        );
        assert_eq!(
            p.pg.db().outbox_rows(id).await.unwrap(),
            p.store.outbox_rows(id).unwrap(),
            "outbox {id}"
        );
        assert_eq!(
            p.pg.db().outcomes(id).await.unwrap(),
            p.store.outcomes(id).unwrap(),
            "outcomes {id}"
        );
        for kind in [
            DecisionKind::Approve,
            DecisionKind::Reject {
                reason: "spam".into(),
            },
            DecisionKind::Escalate {
                queue: "legal".into(),
            },
        ] {
            assert_eq!(
                p.pg.preview(id, &kind, "ann", Some("n")).await.unwrap(),
                p.store
                    .preview_actions(id, &kind, "ann", Some("n"))
                    .unwrap(),
                "preview {id} {kind:?}"
            );
        }
    }
    // Something was decided, edited, undone and sent.
    let detail = p.pg.get(8).await.unwrap();
    assert!(!detail.edits.is_empty() && detail.decision.is_some() && !detail.actions.is_empty());
    assert!(p.pg.get(27).await.unwrap().decision.unwrap().undone);
    assert!(p.pg.timeline(27).await.unwrap().len() > 3);
    let missing = |e: QueueError| e.to_string();
    assert_eq!(
        missing(p.pg.get(9999).await.unwrap_err()),
        missing(p.store.get(9999).unwrap_err().into())
    );
    assert_eq!(
        missing(
            p.pg.preview(9999, &DecisionKind::Approve, "ann", None)
                .await
                .unwrap_err()
        ),
        missing(
            p.store
                .preview_actions(9999, &DecisionKind::Approve, "ann", None)
                .unwrap_err()
                .into()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_volume_match_the_sqlite_store() {
    let Some(p) = pair("stats").await else {
        return;
    };
    assert_eq!(p.pg.volume().await.unwrap(), p.store.volume().unwrap());
    for since in [None, Some(T0 - 3 * HOUR), Some(T0 + HOUR)] {
        let want = p.store.stats(since).unwrap();
        let got = p.pg.stats(since).await.unwrap();
        assert_eq!(got, want, "since {since:?}");
    }
    let s = p.pg.stats(None).await.unwrap();
    assert!(s.decisions.total > 5 && s.decisions.undone == 1 && !s.outcomes.is_empty());
    assert!(s.reviewers.iter().any(|r| r.median_handle_ms.is_some()));
    assert!(s.volume.per_hour.iter().sum::<u64>() > 0 && s.volume.baseline_per_hour >= 0.0);
}

/// Items carrying the model and prompt version of their AI output (some without), decided
/// over two weeks with and without a changed intent, and two passing signed-off
/// validations with the older one in force.
fn seed_versions(store: &mut Store, clock: &Clock) {
    let items: Vec<_> = (0..44)
        .map(|i| {
            let mut ai = json!({"confidence": 0.95});
            if i < 40 {
                ai["prompt_version"] = json!(if i < 20 { "triage-v1" } else { "triage-v2" });
            }
            if i % 4 != 0 {
                ai["model"] = json!(if i % 2 == 0 { "m-large" } else { "m-small" });
            }
            item(&request(&format!("p{i}"), json!({"ai": ai})))
        })
        .collect();
    store.ingest_batch(&items, "system").unwrap();
    let decide = |store: &mut Store, id: i64, kind: DecisionKind, intent: Option<&str>| {
        let claim = store.claim(id, "ana").unwrap();
        clock.advance(10_000);
        let sets = intent
            .map(|v| (EditableField::Intent, Some(v.to_string())))
            .into_iter()
            .collect();
        store
            .decide(
                &claim,
                &Decision {
                    kind,
                    revision: None,
                    note: None,
                    sets,
                },
            )
            .unwrap();
    };
    for id in 1..=10 {
        decide(store, id, DecisionKind::Approve, None);
    }
    clock.advance(8 * 24 * HOUR);
    for id in 11..=20 {
        decide(store, id, DecisionKind::Approve, None);
    }
    for id in 21..=30 {
        decide(store, id, DecisionKind::Approve, Some("partnership"));
    }
    for id in 31..=35 {
        let queue = "legal".to_string();
        decide(store, id, DecisionKind::Escalate { queue }, None);
    }
    for id in [36, 41] {
        let reason = "spam".to_string();
        decide(store, id, DecisionKind::Reject { reason }, None);
    }
    for id in [37, 38, 39, 40, 42] {
        decide(store, id, DecisionKind::Approve, None);
    }
    store.record_outcome(21, "won", None, "ana").unwrap();
    store
        .record_outcome(22, "lost", Some("price"), "ana")
        .unwrap();

    // Validations where everything at 0.9 and up agreed.
    let history: String = (0..40)
        .map(|i| {
            json!({"source": "h", "external_id": format!("h{i}"),
                   "ai": {"intent": "partnership", "priority": "low", "confidence": 0.95,
                          "summary": "Partner", "recommended_next_step": "Call",
                          "crm_update_required": true, "human_review_required": false},
                   "actual": {"decision": "approve", "intent": "partnership", "priority": "low"}})
            .to_string()
                + "\n"
        })
        .collect();
    let (cases, problems) = signoff::validate::read("h.jsonl", &history);
    assert!(problems.is_empty());
    let cfg = signoff::validate::ValidationConfig::default();
    let report = signoff::validate::evaluate("h.jsonl", "x", &cases, store.policy(), &cfg);
    assert!(report.passed, "{}", report.verdict);
    let first = store.sign_off_validation("dana", &report, &cfg).unwrap();
    store.adopt_policy("dana", Some(first), false).unwrap();
    clock.advance(HOUR);
    store.sign_off_validation("eli", &report, &cfg).unwrap();
    clock.advance(HOUR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_versions_models_and_drift_match_the_sqlite_store() {
    let Some(p) = paired("compare", Clock::fixed(T0), seed_versions).await else {
        return;
    };
    for since in [None, Some(T0 + 24 * HOUR)] {
        let want = p.store.stats(since).unwrap();
        let got = p.pg.stats(since).await.unwrap();
        assert_eq!(
            got.by_prompt_version, want.by_prompt_version,
            "since {since:?}"
        );
        assert_eq!(got.by_model, want.by_model, "since {since:?}");
        assert_eq!(got.drift, want.drift, "since {since:?}");
        assert_eq!(got, want, "since {since:?}");
    }
    let s = p.pg.stats(None).await.unwrap();
    let versions: Vec<(&str, u64, u64)> = s
        .by_prompt_version
        .iter()
        .map(|g| (g.value.as_str(), g.items, g.decided))
        .collect();
    assert_eq!(
        versions,
        [
            ("(none)", 4, 2),
            ("triage-v1", 20, 20),
            ("triage-v2", 20, 20)
        ]
    );
    let models: Vec<&str> = s.by_model.iter().map(|g| g.value.as_str()).collect();
    assert_eq!(models, ["(none)", "m-large", "m-small"]);
    let v2 = &s.by_prompt_version[2];
    assert_eq!((v2.agreement, v2.escalation_rate), (0.2, 0.25));
    assert_eq!(
        v2.outcomes,
        [("lost".to_string(), 1), ("won".to_string(), 1)]
    );
    // The baseline is the validation in force (dana's), not the newer one.
    let b = s
        .drift
        .baseline
        .as_ref()
        .expect("the signed-off validation");
    assert_eq!((b.signed_by.as_str(), b.agreement), ("dana", 1.0));
    let decided: Vec<u64> = s.drift.weeks.iter().map(|w| w.decided).collect();
    assert_eq!(decided, [0, 0, 0, 0, 0, 0, 10, 32]);
    assert_eq!(s.drift.warnings.len(), 2, "{:?}", s.drift.warnings);
}

/// Waits (polling, up to `limit`) until `f` holds.
async fn eventually(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The listening connections on database `db`.
async fn listening(admin: &tokio_postgres::Client, db: &str) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
            &[&db],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i32>(0))
        .collect()
}

/// An audited write through `q`, as every write transaction makes one.
async fn audited_write(q: &PgQueue) {
    let db = q.db();
    let mut client = db.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let mut audit = db.audit();
    audit.push(db.now(), "ann", None, "test_event", &json!({"x": 1}));
    audit.append(&tx).await.unwrap();
    tx.commit().await.unwrap();
    db.changed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_queue_reaches_another_also_after_its_listener_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::fixed(T0);
    let Some(url) = fresh_db("notify").await else {
        return;
    };
    let policy = Arc::new(Policy::default());
    let opts = pg_options(dir.path(), &clock);
    let q1 = PgQueue::open(&url, policy.clone(), &opts).await.unwrap();
    let q2 = PgQueue::open(&url, policy, &opts).await.unwrap();
    let mut feed = q2.changes().unwrap();
    let before1 = q1.change_token().await.unwrap();
    let before2 = q2.change_token().await.unwrap();

    audited_write(&q1).await;
    // The writer sees its own commit at once; the other queue once told.
    assert!(q1.change_token().await.unwrap() > before1);
    eventually(Duration::from_secs(10), "q2's token moves", async || {
        q2.change_token().await.unwrap() > before2
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if matches!(*feed.borrow_and_update(), Ok(t) if t > before2) {
                break;
            }
            feed.changed().await.unwrap();
        }
    })
    .await
    .expect("q2's feed carries the new token");

    // Kill q2's listening connection (q1's too: both listen): the feed says so, comes
    // back, and the token moves for what may have been missed.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("a superuser connection to the test cluster");
    tokio::spawn(conn);
    let path = url.split('?').next().unwrap_or(&url);
    let db_name = path.rsplit('/').next().unwrap().to_string();
    let old = listening(&admin, &db_name).await;
    assert_eq!(old.len(), 2, "{old:?}");
    let token = q2.change_token().await.unwrap();
    for pid in &old {
        admin
            .execute("SELECT pg_terminate_backend($1)", &[pid])
            .await
            .unwrap();
    }
    let mut saw_down = false;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match &*feed.borrow_and_update() {
                Err(QueueError::Unavailable(_)) => saw_down = true,
                Ok(t) if *t > token => break,
                _ => {}
            }
            feed.changed().await.unwrap();
        }
    })
    .await
    .expect("q2's feed comes back with a new token");
    assert!(saw_down, "the feed said the listener was down");
    assert!(q2.change_token().await.unwrap() > token);
    eventually(Duration::from_secs(20), "both listen again", async || {
        let now = listening(&admin, &db_name).await;
        now.len() == 2 && now.iter().all(|p| !old.contains(p))
    })
    .await;

    // And it hears changes again.
    let token = q2.change_token().await.unwrap();
    audited_write(&q1).await;
    eventually(
        Duration::from_secs(10),
        "q2 hears the next change",
        async || q2.change_token().await.unwrap() > token,
    )
    .await;

    // Dropping a queue ends its listener.
    drop(q2);
    eventually(Duration::from_secs(10), "q2's listener goes", async || {
        listening(&admin, &db_name).await.len() == 1
    })
    .await;
}

/// Counts over 100 000 items stay fast without counter tables (the time is printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_over_a_hundred_thousand_items_stay_fast() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::fixed(T0);
    let Some(url) = fresh_db("scale").await else {
        return;
    };
    let policy = Arc::new(Policy::default());
    let q = PgQueue::open(&url, policy.clone(), &pg_options(dir.path(), &clock))
        .await
        .unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // 100 000 items over 30 days, four priorities, one in ten decided, one in a hundred
    // claimed.
    client
        .batch_execute(&format!(
            "INSERT INTO requests (source, external_id, state, payload_sha256, received_at,
                 ingested_at, updated_at, priority_rank, priority, confidence, sender, subject,
                 summary, decision_id)
             SELECT 'webform', 'E-' || i,
                    CASE WHEN i % 10 = 0 THEN 'approved' WHEN i % 100 = 1 THEN 'in_review'
                         ELSE 'pending' END,
                    'x', {T0} - (i::BIGINT * 25920), {T0} - (i::BIGINT * 25920), {T0},
                    i % 4, (ARRAY['urgent','high','medium','low'])[i % 4 + 1],
                    (i % 100) / 100.0, 'Sender ' || i, 'Subject ' || i, 'Summary',
                    CASE WHEN i % 10 = 0 THEN i END
             FROM generate_series(1, 100000) AS i"
        ))
        .await
        .unwrap();
    client
        .batch_execute("VACUUM ANALYZE requests")
        .await
        .unwrap();
    let mut counts_time = Duration::MAX;
    let mut counts = None;
    for _ in 0..5 {
        let start = Instant::now();
        counts = Some(q.counts().await.unwrap());
        counts_time = counts_time.min(start.elapsed());
    }
    let c = counts.unwrap();
    assert_eq!(c.pending + c.in_review + c.approved, 100_000);
    assert_eq!(c.approved, 10_000);
    assert_eq!(c.in_review, 1_000);
    assert_eq!(c.oldest_open, Some(T0 - 99_999 * 25920));
    // urgent 15 min, high 1 h, medium 4 h, low 24 h: everything older is past its SLA.
    let expect: i64 = client
        .query_one(
            &format!(
                "SELECT COUNT(*) FROM requests WHERE state IN ('pending','in_review') AND
                   received_at < {T0} - (ARRAY[15, 60, 240, 1440])[priority_rank + 1] * 60000"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(c.sla_breaches, expect as u64);
    let mut report = vec![format!("counts {:.1} ms", counts_time.as_secs_f64() * 1e3)];
    for (what, query) in [
        ("first page", ListQuery::default()),
        (
            "page around the last item",
            ListQuery {
                around: Some(99_999),
                limit: 50,
                ..ListQuery::default()
            },
        ),
        (
            "decided, most recent first",
            ListQuery {
                states: vec![State::Approved],
                limit: 50,
                ..ListQuery::default()
            },
        ),
        (
            "text filter",
            ListQuery {
                filter: Filter {
                    text: Some("sender 4242".into()),
                    ..Filter::default()
                },
                ..ListQuery::default()
            },
        ),
    ] {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            let page = q.list(&query).await.unwrap();
            best = best.min(start.elapsed());
            assert!(!page.items.is_empty(), "{what}");
        }
        report.push(format!("{what} {:.1} ms", best.as_secs_f64() * 1e3));
    }
    let start = Instant::now();
    q.stats(None).await.unwrap();
    report.push(format!(
        "stats {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    ));
    eprintln!("100k items: {}", report.join(", "));
    assert!(counts_time < Duration::from_secs(2), "{report:?}");
}
