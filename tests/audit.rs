//! Tampering with the audit log is found by `signoff audit verify`, at the right entry.
mod common;

use common::{db_path, item, open, request, run, signoff};
use serde_json::json;
use signoff::model::DecisionKind;
use signoff::queue::Decision;
use signoff::store::{Store, canonical_hash};

/// A database with a few decisions: 4 ingests, then per item claim + decide.
fn history(dir: &std::path::Path) -> Store {
    let mut s = open(&db_path(dir));
    let items: Vec<_> = (0..4)
        .map(|i| item(&request(&format!("a{i}"), json!({}))))
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    for _ in 0..4 {
        let c = s.claim_next("ana").unwrap().unwrap();
        s.decide(
            &c,
            &Decision {
                kind: DecisionKind::Approve,
                revision: None,
                note: None,
                sets: vec![],
            },
        )
        .unwrap();
    }
    s
}

fn unlock(s: &Store) {
    s.connection()
        .execute_batch(
            "DROP TRIGGER audit_append_only_update; DROP TRIGGER audit_append_only_delete;",
        )
        .unwrap();
}

fn verify(dir: &std::path::Path) -> (i32, String) {
    let (code, out, err) = run(signoff(dir).args(["audit", "verify"]));
    (code, format!("{out}{err}"))
}

#[test]
fn an_intact_chain_verifies_and_names_its_head() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path());
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("audit chain intact: 12 entries, head 12 "),
        "{out}"
    );
    let anchor = signoff::store::read_anchor(&db_path(dir.path())).expect("anchor written");
    assert_eq!(anchor.seq, 12);
}

#[test]
fn an_edited_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute(
            "UPDATE audit SET detail = replace(detail, 'approve', 'reject') WHERE seq = 6",
            [],
        )
        .unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1);
    assert!(
        out.contains("BROKEN at entry 6: its content does not match its hash"),
        "{out}"
    );
}

#[test]
fn a_deleted_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute("DELETE FROM audit WHERE seq = 7", [])
        .unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("BROKEN at entry 7: missing"), "{out}");
}

#[test]
fn swapped_rows_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    // Swap everything but the sequence numbers of entries 5 and 6.
    s.connection()
        .execute_batch(
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (5, 6);
             UPDATE audit SET (at, actor, request_id, kind, detail, prev_hash, hash) =
               (SELECT at, actor, request_id, kind, detail, prev_hash, hash FROM t WHERE t.seq = 11 - audit.seq)
             WHERE seq IN (5, 6);",
        )
        .unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1);
    assert!(
        out.contains("BROKEN at entry 5: its previous-hash does not match"),
        "{out}"
    );
}

#[test]
fn a_forged_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    let (prev, _): (String, i64) = s
        .connection()
        .query_row("SELECT hash, seq FROM audit WHERE seq = 12", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    // Someone appends an approval that never happened, reusing a real row's hash.
    s.connection()
        .execute(
            "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash)
             SELECT 13, at, 'mallory', request_id, 'decided', detail, ?1, hash FROM audit WHERE seq = 12",
            [&prev],
        )
        .unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1);
    assert!(
        out.contains("BROKEN at entry 13: its content does not match its hash"),
        "{out}"
    );
}

#[test]
fn a_truncated_tail_is_found_through_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute("DELETE FROM audit WHERE seq > 9", [])
        .unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("BROKEN at entry 10: missing: the log ends at entry 9 but the anchor file records entry 12"), "{out}");
}

#[test]
fn a_rewritten_chain_is_found_through_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    // Rewrite history: change an actor and recompute every hash, as a careful attacker would.
    s.connection()
        .execute("UPDATE audit SET actor = 'mallory' WHERE seq = 8", [])
        .unwrap();
    let rows: Vec<(i64, i64, String, Option<i64>, String, String)> = s
        .connection()
        .prepare("SELECT seq, at, actor, request_id, kind, detail FROM audit ORDER BY seq")
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
    let mut prev = "0".repeat(64);
    for (seq, at, actor, rid, kind, detail) in rows {
        let h = canonical_hash(&prev, seq, at, &actor, rid, &kind, &detail);
        s.connection()
            .execute(
                "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
                rusqlite::params![prev, h, seq],
            )
            .unwrap();
        prev = h;
    }
    assert_eq!(
        s.verify_audit(|_| {}).unwrap().broken,
        None,
        "the chain itself is consistent"
    );
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1);
    assert!(
        out.contains("BROKEN at entry 12: its hash differs from the one in the anchor file"),
        "{out}"
    );
}
