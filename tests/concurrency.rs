//! Several reviewers on one database file: 8 processes running `signoff claim` and
//! `signoff decide` in a loop. No item is claimed by two at once, no decision lands with a
//! stale fence, and no SQLITE_BUSY reaches a user.
mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{db_path, item, open, request, run, signoff};
use serde_json::{Value, json};
use signoff::model::{DecisionKind, Policy};
use signoff::queue::Decision;
use signoff::store::{Store, StoreOptions};

const ITEMS: usize = 96;
const WORKERS: usize = 8;

fn seed(path: &std::path::Path) {
    let mut s = open(path);
    let items: Vec<_> = (0..ITEMS)
        .map(|i| {
            let p = ["urgent", "high", "normal", "low"][i % 4];
            item(&request(&format!("c{i}"), json!({"ai": {"priority": p}})))
        })
        .collect();
    s.ingest_batch(&items, "system").unwrap();
}

/// Checks the audit trail: per item, claims and decisions alternate, and each decision
/// carries the fence of the claim right before it.
fn check_trail(s: &Store) {
    let mut by_item: HashMap<i64, Vec<(String, Value)>> = HashMap::new();
    let mut stmt = s
        .connection()
        .prepare(
            "SELECT request_id, kind, detail FROM audit WHERE request_id IS NOT NULL ORDER BY seq",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, kind, detail) = row.unwrap();
        by_item
            .entry(id)
            .or_default()
            .push((kind, serde_json::from_str(&detail).unwrap()));
    }
    assert_eq!(by_item.len(), ITEMS);
    for (id, events) in by_item {
        let mut live: Option<i64> = None;
        let mut decided = 0;
        for (kind, detail) in events {
            match kind.as_str() {
                "claimed" => {
                    assert_eq!(live, None, "item {id} claimed while already claimed");
                    live = Some(detail["fence"].as_i64().unwrap());
                }
                "decided" => {
                    assert_eq!(
                        live,
                        detail["fence"].as_i64(),
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
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
}

#[test]
fn eight_processes_claim_and_decide_without_collisions() {
    let dir = tempfile::tempdir().unwrap();
    let root = Arc::new(dir.path().to_path_buf());
    seed(&db_path(&root));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let root = root.clone();
            std::thread::spawn(move || {
                let me = format!("reviewer{w}");
                let mut decided = Vec::new();
                loop {
                    let (code, out, err) = run(signoff(&root)
                        .env("SIGNOFF_REVIEWER__ALLOW_OVERRIDE", "true")
                        .args(["claim", "--json", "--reviewer", &me]));
                    assert_eq!(code, 0, "claim failed: {err}");
                    assert!(
                        !err.to_lowercase().contains("busy") && !err.contains("locked"),
                        "{err}"
                    );
                    let claim: Value = serde_json::from_str(&out).unwrap();
                    if claim.is_null() {
                        return decided;
                    }
                    let id = claim["id"].as_i64().unwrap().to_string();
                    let fence = claim["fence"].as_i64().unwrap();
                    // A decision with a wrong fence changes nothing and says so.
                    let (code, _, err) = run(signoff(&root)
                        .env("SIGNOFF_REVIEWER__ALLOW_OVERRIDE", "true")
                        .args([
                            "decide",
                            &id,
                            "--approve",
                            "--reviewer",
                            &me,
                            "--fence",
                            &(fence + 1).to_string(),
                        ]));
                    assert_eq!(code, 1);
                    assert!(err.contains("lease lost"), "{err}");
                    let (code, out, err) = run(signoff(&root)
                        .env("SIGNOFF_REVIEWER__ALLOW_OVERRIDE", "true")
                        .args([
                            "decide",
                            &id,
                            "--reject",
                            "duplicate",
                            "--reviewer",
                            &me,
                            "--fence",
                            &fence.to_string(),
                        ]));
                    assert_eq!(code, 0, "decide {id} fence {fence}: {out}{err}");
                    assert!(err.is_empty(), "{err}");
                    decided.push(id);
                }
            })
        })
        .collect();
    let mut all: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker panicked"))
        .collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (n, all.len()),
        (ITEMS, ITEMS),
        "every item decided exactly once"
    );
    let s = open(&db_path(&root));
    check_trail(&s);
}

#[test]
fn eight_connections_hammering_one_file_never_surface_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("q.db"));
    seed(&path);
    let threads: Vec<_> = (0..WORKERS)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s =
                    Store::open(&path, Arc::new(Policy::default()), &StoreOptions::default())
                        .unwrap();
                let me = format!("t{w}");
                let mut n = 0;
                while let Some(c) = s.claim_next(&me).expect("claim never fails with busy") {
                    let c = s.heartbeat(&c).expect("heartbeat");
                    s.decide(
                        &c,
                        &Decision {
                            kind: DecisionKind::Approve,
                            revision: None,
                            note: None,
                            sets: vec![],
                        },
                    )
                    .expect("decide never fails with busy");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, ITEMS);
    check_trail(&open(&path));
}

#[test]
fn decisions_through_group_commit_land_once_each_and_a_stale_one_fails_alone() {
    use signoff::queue::{LocalQueue, Queue, QueueError};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    seed(&path);
    let queue = Arc::new(
        LocalQueue::open(&path, Arc::new(Policy::default()), &StoreOptions::default())
            .unwrap()
            .with_group_commit(16),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let decided: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| {
                let q = queue.clone();
                tokio::spawn(async move {
                    let me = format!("r{w}");
                    let mut n = 0;
                    while let Some(c) = q.claim_next(&me).await.unwrap() {
                        let approve = Decision {
                            kind: DecisionKind::Approve,
                            revision: None,
                            note: None,
                            sets: vec![],
                        };
                        // Sent together: the stale fence fails alone, the good one lands.
                        let stale = signoff::queue::Claim {
                            fence: c.fence + 1,
                            ..c.clone()
                        };
                        let (bad, good) =
                            tokio::join!(q.decide(&stale, &approve), q.decide(&c, &approve));
                        assert!(matches!(bad, Err(QueueError::LeaseLost { .. })), "{bad:?}");
                        good.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    assert_eq!(decided, ITEMS);
    drop(queue);
    check_trail(&open(&path));
}
