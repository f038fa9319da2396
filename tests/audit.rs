//! The audit log fails closed: tampering is found by `signoff audit verify` at the right
//! entry, and a writer after it refuses to write; rows say which Unix user acted; the
//! store's files are not open to other users.
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{db_path, item, open, request, run, signoff};
use serde_json::json;
use signoff::model::DecisionKind;
use signoff::queue::Decision;
use signoff::store::{AuditHead, GENESIS, Store, anchor_path, canonical_hash, key_path};

/// Entries in [`history`]: 5 ingests, then claim + decide for items 1 to 4.
const HEAD: i64 = 13;

fn approve() -> Decision {
    Decision {
        kind: DecisionKind::Approve,
        revision: None,
        note: None,
        sets: vec![],
    }
}

/// A database with a few decisions; item 5 is still pending.
fn history(dir: &Path) -> Store {
    let mut s = open(&db_path(dir));
    let items: Vec<_> = (0..5)
        .map(|i| item(&request(&format!("a{i}"), json!({}))))
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    for _ in 0..4 {
        let c = s.claim_next("ana").unwrap().unwrap();
        s.decide(&c, &approve()).unwrap();
    }
    s
}

/// What an attacker with the sqlite3 shell does first.
fn unlock(s: &Store) {
    s.connection()
        .execute_batch(
            "DROP TRIGGER audit_append_only_update; DROP TRIGGER audit_append_only_delete;",
        )
        .unwrap();
}

fn verify(dir: &Path) -> (i32, String) {
    let (code, out, err) = run(signoff(dir).args(["audit", "verify"]));
    (code, format!("{out}{err}"))
}

fn audit_rows(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db_path(dir)).unwrap();
    conn.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .unwrap()
}

/// `signoff decide 5 --approve` refuses, names the problem, and writes nothing.
fn decide_refused(dir: &Path, why: &str) {
    let before = audit_rows(dir);
    let (code, out, err) = run(signoff(dir).args(["decide", "5", "--approve"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("the audit log does not match its anchor (")
            && err.contains(why)
            && err.contains("run `signoff audit verify`; nothing was written"),
        "{err}"
    );
    assert_eq!(audit_rows(dir), before, "a refused decide wrote audit rows");
    let conn = rusqlite::Connection::open(db_path(dir)).unwrap();
    let state: String = conn
        .query_row("SELECT state FROM requests WHERE id = 5", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "pending");
}

/// Verify reports `expected`, exits 1, and still does after a refused decide.
fn found(dir: &Path, expected: &str, decide_why: &str) {
    let (code, out) = verify(dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(expected), "{out}");
    decide_refused(dir, decide_why);
    let (code, out) = verify(dir);
    assert_eq!(code, 1, "verify after a refused decide: {out}");
    assert!(out.contains(expected), "{out}");
}

fn head_of(s: &Store) -> i64 {
    s.connection()
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", [], |r| r.get(0))
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

#[test]
fn an_intact_chain_verifies_and_names_its_head_key_and_anchor() {
    let dir = tempfile::tempdir().unwrap();
    history(dir.path());
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("audit chain intact: {HEAD} entries, head {HEAD} ")),
        "{out}"
    );
    assert!(out.contains("every entry's MAC checked with"), "{out}");
    assert!(out.contains(&format!("anchored at entry {HEAD}")), "{out}");
    let anchor = signoff::store::read_anchor(&db_path(dir.path())).expect("anchor written");
    assert_eq!((anchor.v, anchor.seq), (2, HEAD));
    assert_eq!(anchor.mac.len(), 64);
    let (code, out, err) = run(signoff(dir.path()).args(["decide", "5", "--approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        signoff::store::read_anchor(&db_path(dir.path()))
            .unwrap()
            .seq,
        HEAD + 2
    );
}

#[test]
fn an_edited_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute(
            "UPDATE audit SET detail = replace(detail, 'approve', 'reject') WHERE seq = 7",
            [],
        )
        .unwrap();
    found(
        dir.path(),
        "BROKEN at entry 7: its content does not match its hash",
        "entry 7: its content does not match its hash",
    );
}

#[test]
fn a_deleted_middle_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute("DELETE FROM audit WHERE seq = 8", [])
        .unwrap();
    found(dir.path(), "BROKEN at entry 8: missing", "entry 8: missing");
}

#[test]
fn swapped_rows_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    // Swap everything but the sequence numbers of entries 6 and 7.
    s.connection()
        .execute_batch(
            "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (6, 7);
             UPDATE audit SET (at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac) =
               (SELECT at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac
                FROM t WHERE t.seq = 13 - audit.seq)
             WHERE seq IN (6, 7);",
        )
        .unwrap();
    found(
        dir.path(),
        "BROKEN at entry 6: its previous-hash does not match",
        "entry 6: its previous-hash does not match",
    );
}

#[test]
fn a_row_copied_from_a_real_one_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    let prev: String = s
        .connection()
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [HEAD], |r| {
            r.get(0)
        })
        .unwrap();
    // An approval that never happened, reusing a real row's hash and MAC (no trigger
    // stops an INSERT).
    s.connection()
        .execute(
            "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac)
             SELECT ?1 + 1, at, 'mallory', request_id, 'decided', detail, ?2, hash, os_user, mac
             FROM audit WHERE seq = ?1",
            rusqlite::params![HEAD, prev],
        )
        .unwrap();
    found(
        dir.path(),
        "BROKEN at entry 14: its content does not match its hash",
        "entry 14: its content does not match its hash",
    );
}

/// A row chained exactly as signoff chains it (SHA-256 over the previous hash and the
/// canonical content), by someone without the key.
fn forge_row(s: &Store, mac: Option<&str>) {
    let (prev, at): (String, i64) = s
        .connection()
        .query_row("SELECT hash, at FROM audit WHERE seq = ?1", [HEAD], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let seq = HEAD + 1;
    let detail = json!({"decision_id": 99, "decision": "approve", "fence": 1}).to_string();
    let hash = canonical_hash(
        &prev,
        seq,
        at + 1,
        "ana",
        Some(5),
        "decided",
        &detail,
        Some("ana"),
    );
    assert_eq!(hash.len(), 64);
    s.connection()
        .execute(
            "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac)
             VALUES (?1, ?2, 'ana', 5, 'decided', ?3, ?4, ?5, 'ana', ?6)",
            rusqlite::params![seq, at + 1, detail, prev, hash, mac],
        )
        .unwrap();
}

#[test]
fn a_forged_correctly_chained_row_without_a_mac_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    forge_row(&s, None);
    assert_eq!(
        s.verify_audit_with(&signoff::store::VerifyOptions { anchor: false }, |_| {})
            .unwrap()
            .broken
            .map(|b| b.0),
        Some(HEAD + 1),
        "the hash chain alone accepts it; the MAC does not"
    );
    found(
        dir.path(),
        "BROKEN at entry 14: it has no MAC",
        "entry 14: it has no MAC",
    );
}

#[test]
fn a_forged_correctly_chained_row_with_a_guessed_mac_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    // The attacker's best guess at a MAC: a hash of the hash.
    let guess = canonical_hash(GENESIS, 1, 1, "x", None, "x", "x", None);
    forge_row(&s, Some(&guess));
    found(
        dir.path(),
        "BROKEN at entry 14: its MAC does not match",
        "entry 14: its MAC does not match",
    );
}

#[test]
fn a_truncated_tail_is_found_through_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute("DELETE FROM audit WHERE seq > 10", [])
        .unwrap();
    found(
        dir.path(),
        "BROKEN at entry 11: missing: the log ends at entry 10 but the anchor file records entry 13",
        "the log ends at entry 10 but the anchor records entry 13",
    );
}

/// Opening a store re-checks open items when the policy changed, with an audit entry; on a
/// log that does not match its anchor that entry is refused, and the store still opens, so
/// `audit verify` reports the break instead of failing to open.
#[test]
fn verify_reports_a_break_even_when_the_policy_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute("DELETE FROM audit WHERE seq > 10", [])
        .unwrap();
    drop(s);
    let (code, out, err) = run(signoff(dir.path())
        // The pending item's intent is no longer allowed: its flags change.
        .env("SIGNOFF_POLICY__INTENTS", r#"["other", "spam"]"#)
        .args(["audit", "verify"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("BROKEN at entry 11: missing"), "{out}{err}");
    let logs = dir.path().join("data/state/logs");
    let log: String = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        log.contains("open items not checked again under the changed policy"),
        "{log}"
    );
}

/// Rewrites history from `from` on, recomputing every hash as a careful attacker would
/// (the MACs cannot be recomputed without the key).
fn rechain(s: &Store, from: i64) {
    type Row = (
        i64,
        i64,
        String,
        Option<i64>,
        String,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = s
        .connection()
        .prepare("SELECT seq, at, actor, request_id, kind, detail, os_user FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = GENESIS.to_string();
    for (seq, at, actor, rid, kind, detail, os_user) in rows {
        let h = canonical_hash(
            &prev,
            seq,
            at,
            &actor,
            rid,
            &kind,
            &detail,
            os_user.as_deref(),
        );
        if seq >= from {
            s.connection()
                .execute(
                    "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
                    rusqlite::params![prev, h, seq],
                )
                .unwrap();
        }
        prev = h;
    }
}

#[test]
fn a_rechained_rewrite_of_every_row_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute("UPDATE audit SET actor = 'mallory' WHERE seq = 8", [])
        .unwrap();
    rechain(&s, 1);
    found(
        dir.path(),
        "BROKEN at entry 8: its MAC does not match",
        "entry 8: its MAC does not match",
    );
}

#[test]
fn a_rechained_rewrite_with_a_new_anchor_and_key_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    // Everything an attacker without the key can do: rewrite, re-chain, MAC every row
    // with a key of their own, write an anchor for the new head with it.
    s.connection()
        .execute("UPDATE audit SET actor = 'mallory' WHERE seq = 8", [])
        .unwrap();
    rechain(&s, 1);
    let theirs = signoff::store::AuditKey::new(b"not the key of this log, 32 bytes");
    let (seq, hash): (i64, String) = s
        .connection()
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let anchor = json!({"v": 2, "seq": seq, "hash": hash, "schema": 1, "at": 1,
                        "mac": theirs.row_mac(&hash)});
    std::fs::write(anchor_path(&db_path(dir.path())), anchor.to_string()).unwrap();
    let rows: Vec<(i64, String)> = s
        .connection()
        .prepare("SELECT seq, hash FROM audit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (seq, hash) in rows {
        s.connection()
            .execute(
                "UPDATE audit SET mac = ?1 WHERE seq = ?2",
                rusqlite::params![theirs.row_mac(&hash), seq],
            )
            .unwrap();
    }
    found(
        dir.path(),
        "BROKEN at entry 1: its MAC does not match",
        "was not written with the audit key",
    );
}

#[test]
fn a_deleted_anchor_is_found_and_no_anchor_checks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    drop(history(dir.path()));
    std::fs::remove_file(anchor_path(&db_path(dir.path()))).unwrap();
    found(
        dir.path(),
        &format!("BROKEN at entry {HEAD}: the anchor file"),
        "is missing, and the log has 13 entries",
    );
    let (code, out, _) = run(signoff(dir.path()).args(["audit", "verify", "--no-anchor"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the anchor file was not checked (--no-anchor)"),
        "{out}"
    );
}

#[test]
fn a_garbled_anchor_is_found() {
    let dir = tempfile::tempdir().unwrap();
    drop(history(dir.path()));
    std::fs::write(anchor_path(&db_path(dir.path())), "{\"seq\": 13, \"ha").unwrap();
    found(
        dir.path(),
        &format!("BROKEN at entry {HEAD}: the anchor file"),
        "cannot be read as an anchor",
    );
}

#[test]
fn an_anchor_written_without_the_key_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    unlock(&s);
    s.connection()
        .execute("DELETE FROM audit WHERE seq > 10", [])
        .unwrap();
    let hash: String = s
        .connection()
        .query_row("SELECT hash FROM audit WHERE seq = 10", [], |r| r.get(0))
        .unwrap();
    // The tail's removal covered up with an anchor for the new head, MAC'd with a guess.
    let forged =
        json!({"v": 2, "seq": 10, "hash": hash, "schema": 1, "at": 1, "mac": "00".repeat(32)});
    std::fs::write(anchor_path(&db_path(dir.path())), forged.to_string()).unwrap();
    found(
        dir.path(),
        "BROKEN at entry 10: the anchor file",
        "was not written with the audit key",
    );
}

#[test]
fn a_deleted_key_is_found_and_no_anchor_checks_the_chain_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(history(dir.path()));
    std::fs::remove_file(key_path(&db_path(dir.path()))).unwrap();
    found(
        dir.path(),
        "BROKEN at entry 1: the audit key",
        "the audit key",
    );
    let (_, out) = verify(dir.path());
    assert!(
        out.contains("is missing: no entry's MAC can be checked"),
        "{out}"
    );
    let (code, out, _) = run(signoff(dir.path()).args(["audit", "verify", "--no-anchor"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("MACs not checked (--no-anchor)"), "{out}");
}

#[test]
fn a_replaced_key_is_found() {
    let dir = tempfile::tempdir().unwrap();
    drop(history(dir.path()));
    std::fs::write(key_path(&db_path(dir.path())), [7u8; 32]).unwrap();
    found(
        dir.path(),
        "BROKEN at entry 1: its MAC does not match",
        "was not written with the audit key",
    );
}

/// The attacker drops the triggers and edits a row under a console that is open: its next
/// write notices the schema changed and verifies the chain before appending.
#[test]
fn an_open_store_notices_a_changed_schema_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = history(dir.path());
    let other = open(&db_path(dir.path()));
    unlock(&other);
    other
        .connection()
        .execute("UPDATE audit SET actor = 'mallory' WHERE seq = 9", [])
        .unwrap();
    let err = s.claim_next("ana").unwrap_err().to_string();
    assert!(
        err.contains(
            "the audit log does not match its anchor (entry 9: its content does not match its hash"
        ),
        "{err}"
    );
    assert_eq!(head_of(&s), HEAD);
}

/// A writer that stopped between its commit and the anchor update leaves the anchor behind
/// the head: verify says so and passes, and the next writer follows the MAC'd rows and
/// moves the anchor on.
#[test]
fn an_anchor_behind_the_head_is_followed_through_macd_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path());
    let mut s = history(dir.path());
    let saved = std::fs::read(anchor_path(&db)).unwrap();
    s.ingest_batch(&[item(&request("late", json!({})))], "system")
        .unwrap();
    assert_eq!(signoff::store::read_anchor(&db).unwrap().seq, HEAD + 1);
    drop(s);
    std::fs::write(anchor_path(&db), &saved).unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the anchor file records entry 13; entries 14–14 follow it"),
        "{out}"
    );
    let (code, out, err) = run(signoff(dir.path()).args(["decide", "5", "--approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(signoff::store::read_anchor(&db).unwrap().seq, HEAD + 3);
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
}

/// Every commit that appends to the log moves the anchor to its head, not only decisions.
#[test]
fn every_audited_write_moves_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_path(dir.path());
    let mut s = open(&db);
    let anchored = |s: &Store, what: &str| {
        let a = signoff::store::read_anchor(&db).expect("anchor");
        assert_eq!(a.seq, head_of(s), "after {what}");
    };
    s.ingest_batch(
        &[
            item(&request("x1", json!({}))),
            item(&request("x2", json!({}))),
        ],
        "system",
    )
    .unwrap();
    anchored(&s, "ingest");
    let c = s.claim_next("ana").unwrap().unwrap();
    anchored(&s, "claim");
    s.edit(
        &c,
        signoff::model::EditableField::Summary,
        Some("Wants a demo soon".into()),
    )
    .unwrap();
    anchored(&s, "edit");
    let c = s.heartbeat(&c).unwrap();
    anchored(&s, "heartbeat");
    s.release(&c).unwrap();
    anchored(&s, "release");
    let c = s.claim(1, "ana").unwrap();
    s.decide(&c, &approve()).unwrap();
    anchored(&s, "decide");
    s.undo(1, "ana").unwrap();
    anchored(&s, "undo");
    let c = s.claim(1, "ana").unwrap();
    s.decide(&c, &approve()).unwrap();
    s.record_outcome(1, "qualified", None, "ana").unwrap();
    anchored(&s, "outcome");
    s.set_actions_paused(true, "ana").unwrap();
    anchored(&s, "kill switch");
    let dead: i64 = s
        .connection()
        .query_row("SELECT MAX(id) FROM outbox", [], |r| r.get(0))
        .unwrap();
    s.connection()
        .execute("UPDATE outbox SET status = 'dead' WHERE id = ?1", [dead])
        .unwrap();
    s.resend(dead, "ana").unwrap();
    anchored(&s, "resend");
    s.audit_event("ana", Some(1), "preview_rendered", &json!({"digest": "d"}))
        .unwrap();
    anchored(&s, "an event");
    let report = s.verify_audit(|_| {}).unwrap();
    assert_eq!(report.broken, None, "{report:?}");
    assert!(report.unaccounted.is_empty(), "{report:?}");
}

#[test]
fn decisions_and_outbox_rows_the_log_does_not_account_for_are_reported_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(dir.path());
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    // Rows slipped into the tables behind the log's back (no trigger guards them).
    s.connection()
        .execute(
            "INSERT INTO decisions (request_id, revision, fence, kind, reviewer, at, fields, undo_until)
             VALUES (5, 1, 1, 'approve', 'mallory', 1, '{}', 1)",
            [],
        )
        .unwrap();
    let decision = s.connection().last_insert_rowid();
    s.connection()
        .execute(
            "INSERT INTO outbox (request_id, decision_id, action, idempotency_key, next_attempt_at, created_at, updated_at)
             VALUES (1, 1, 'crm', 'signoff-1-1-crm-again', 1, 1, 1)",
            [],
        )
        .unwrap();
    let outbox = s.connection().last_insert_rowid();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("audit chain intact"), "{out}");
    assert!(
        out.contains(&format!(
            "decision {decision} (item 5, approve by mallory) has no matching `decided` entry"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("outbox row {outbox} (item 1, crm action")),
        "{out}"
    );
}

/// A database from before the log was keyed (schema 7, unkeyed anchor) is keyed when it is
/// first opened: the key is created, every row gets its MAC, and an entry says so.
#[test]
fn an_unkeyed_log_is_keyed_at_migration_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let db = old_log(dir.path(), 3);
    let s = open(&db);
    assert_eq!(mode(&key_path(&db)), 0o600);
    let (n, keyed, kind): (i64, i64, String) = s
        .connection()
        .query_row(
            "SELECT COUNT(*), COUNT(mac), (SELECT kind FROM audit ORDER BY seq DESC LIMIT 1) FROM audit",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((n, keyed, kind.as_str()), (4, 4, "audit_keyed"));
    drop(s);
    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("entry 4 records that the log was keyed when it was migrated: entries 1–3 were MAC'd then"),
        "{out}"
    );
    let a = signoff::store::read_anchor(&db).unwrap();
    assert_eq!((a.v, a.seq), (2, 4));
}

/// A log whose tail was removed before the migration is not keyed over: its rows stay
/// without a MAC, verify reports it, and writers refuse.
#[test]
fn an_unkeyed_log_that_disagrees_with_its_old_anchor_is_not_keyed_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = old_log(dir.path(), 3);
    let legacy = json!({"seq": 5, "hash": "ab".repeat(32), "at": 1}).to_string();
    std::fs::write(anchor_path(&db), legacy).unwrap();
    let mut s = open(&db);
    let detail: String = s
        .connection()
        .query_row("SELECT detail FROM audit WHERE seq = 4", [], |r| r.get(0))
        .unwrap();
    assert!(
        detail.contains("the anchor file recorded entry 5"),
        "{detail}"
    );
    let err = s
        .audit_event("ana", None, "note", &json!({}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not keyed"), "{err}");
    drop(s);
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at entry 1: it has no MAC"), "{out}");
}

/// A schema-7 database with `n` unkeyed audit rows and an unkeyed anchor at its head.
fn old_log(dir: &Path, n: i64) -> PathBuf {
    let db = db_path(dir);
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    signoff::store::migrate_to(&mut conn, &db, 7).unwrap();
    let mut prev = GENESIS.to_string();
    for seq in 1..=n {
        let detail = json!({"n": seq}).to_string();
        let hash = canonical_hash(&prev, seq, 1000 + seq, "ana", None, "note", &detail, None);
        conn.execute(
            "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash)
             VALUES (?1, ?2, 'ana', NULL, 'note', ?3, ?4, ?5)",
            rusqlite::params![seq, 1000 + seq, detail, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
    let head = AuditHead { seq: n, hash: prev };
    std::fs::write(
        anchor_path(&db),
        json!({"seq": head.seq, "hash": head.hash, "at": 1}).to_string(),
    )
    .unwrap();
    db
}

// ---- who did it -----------------------------------------------------------------------

fn last_entry(dir: &Path, kind: &str) -> (String, Option<String>) {
    let conn = rusqlite::Connection::open(db_path(dir)).unwrap();
    conn.query_row(
        "SELECT actor, os_user FROM audit WHERE kind = ?1 ORDER BY seq DESC LIMIT 1",
        [kind],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn every_entry_records_the_unix_user_beside_the_reviewer() {
    let dir = tempfile::tempdir().unwrap();
    drop(history(dir.path()));
    let me = signoff::identity::os_user();
    let conn = rusqlite::Connection::open(db_path(dir.path())).unwrap();
    let (n, mine): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE os_user = ?1) FROM audit",
            [me],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, mine), (HEAD, HEAD));
    // Through the binary, without a reviewer name: the Unix user on both sides. $USER is
    // not who you are.
    let (code, out, err) = run(signoff(dir.path()).args(["decide", "5", "--approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        last_entry(dir.path(), "decided"),
        (me.to_string(), Some(me.to_string()))
    );
    let (_, out, _) = run(signoff(dir.path()).args(["audit", "export", "--item", "5"]));
    assert!(out.contains(&format!("\"os_user\":\"{me}\"")), "{out}");
}

#[test]
fn a_reviewer_name_that_is_not_yours_is_refused_unless_allowed_and_then_both_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    drop(history(dir.path()));
    let me = signoff::identity::os_user();
    let before = audit_rows(dir.path());
    let (code, _, err) = run(signoff(dir.path()).args(["claim", "--reviewer", "dana-not-me"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("flag --reviewer")
            && err.contains(&format!(
                "reviewer 'dana-not-me' is not you: signoff runs as Unix user '{me}'"
            ))
            && err.contains("reviewer.allow_override = true"),
        "{err}"
    );
    let (code, _, err) = run(signoff(dir.path())
        .env("SIGNOFF_REVIEWER", "dana-not-me")
        .args(["decide", "5", "--approve"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("environment variable SIGNOFF_REVIEWER"),
        "{err}"
    );
    assert_eq!(
        audit_rows(dir.path()),
        before,
        "a refused name wrote nothing"
    );
    // Your own name is not an override; reading needs no name at all.
    let (code, _, err) = run(signoff(dir.path()).args(["list", "--reviewer", "dana-not-me"]));
    assert_eq!(code, 0, "{err}");
    // Allowed: both names are recorded.
    let (code, out, err) = run(signoff(dir.path())
        .env("SIGNOFF_REVIEWER__ALLOW_OVERRIDE", "true")
        .args(["decide", "5", "--approve", "--reviewer", "dana-not-me"]));
    assert_eq!(code, 0, "{out}{err}");
    for kind in ["claimed", "decided"] {
        assert_eq!(
            last_entry(dir.path(), kind),
            ("dana-not-me".to_string(), Some(me.to_string())),
            "{kind}"
        );
    }
}

// ---- files ------------------------------------------------------------------------------

#[test]
fn ingest_creates_the_database_wal_anchor_key_and_logs_for_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, request("m1", json!({})).to_string()).unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("ingest").arg(&input));
    assert_eq!(code, 0, "{out}{err}");
    let db = db_path(dir.path());
    assert_eq!(mode(&db), 0o600, "database");
    assert_eq!(mode(&anchor_path(&db)), 0o600, "anchor");
    assert_eq!(mode(&key_path(&db)), 0o600, "key");
    assert_eq!(std::fs::metadata(key_path(&db)).unwrap().len(), 32);
    assert_eq!(mode(db.parent().unwrap()), 0o700, "data dir");
    let logs = dir.path().join("data/state/logs");
    assert_eq!(mode(&logs), 0o700, "log dir");
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".log"))
        .expect("a log file");
    assert_eq!(mode(&log), 0o600, "{}", log.display());
    // The WAL and shared-memory files exist while a connection is open (this process's
    // umask is not the binary's: SQLite takes the database file's mode).
    let mut s = open(&db);
    s.ingest_batch(&[item(&request("m2", json!({})))], "system")
        .unwrap();
    assert_eq!(mode(&sibling(&db, "-wal")), 0o600, "wal");
    assert_eq!(mode(&sibling(&db, "-shm")), 0o600, "shm");
}

#[test]
fn a_store_group_shares_the_files_with_that_group() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: getgid cannot fail.
    let gid = unsafe { libc::getgid() };
    let group = signoff::identity::group_name(gid);
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, request("g1", json!({})).to_string()).unwrap();
    let db = dir.path().join("shared").join("q.db");
    let (code, out, err) = run(signoff(dir.path())
        .env("SIGNOFF_STORE__GROUP", &group)
        .arg("--db")
        .arg(&db)
        .arg("ingest")
        .arg(&input));
    assert_eq!(code, 0, "{out}{err}");
    for p in [db.clone(), anchor_path(&db), key_path(&db)] {
        assert_eq!(mode(&p), 0o660, "{}", p.display());
        assert_eq!(std::fs::metadata(&p).unwrap().gid(), gid, "{}", p.display());
    }
    assert_eq!(
        mode(db.parent().unwrap()),
        0o770,
        "the directory signoff created"
    );
    let (code, _, err) = run(signoff(dir.path())
        .env("SIGNOFF_STORE__GROUP", "no-such-group-here")
        .args(["list"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("store.group") && err.contains("'no-such-group-here' is not a Unix group"),
        "{err}"
    );
}

/// Someone else's database gets a message naming the file, its owner and mode, and what
/// to do, not "attempt to write a readonly database".
#[test]
fn a_database_you_may_not_write_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    drop(history(dir.path()));
    let db = db_path(dir.path());
    let mut cmd = signoff(dir.path());
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // Run as nobody: the database stays root's, 0600; nobody may pass through the dirs.
        use std::os::unix::process::CommandExt;
        for d in [dir.path().to_path_buf(), db.parent().unwrap().to_path_buf()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        cmd.uid(65534).gid(65534);
    } else {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    let (code, out, err) = run(cmd.args(["claim"]));
    assert_eq!(code, 1, "{out}{err}");
    let owner = signoff::identity::user_name(std::fs::metadata(&db).unwrap().uid()).unwrap();
    // Root's 0600 file: nobody may not even read it. Your own 0400 file: you may read it,
    // and --read-only is the way to.
    let (access, mode) = if root {
        ("read", "0600")
    } else {
        ("write", "0400")
    };
    assert!(
        err.contains(&format!("cannot {access} {}", db.display()))
            && err.contains(&format!("it belongs to {owner}"))
            && err.contains(&format!("mode {mode}"))
            && err.contains("`signoff serve`")
            && (root || err.contains("--read-only"))
            && !err.contains("readonly database"),
        "{err}"
    );
}

/// Past one batch (4,096 rows) the walk hashes on a second thread; a break is found in
/// the first batch and in the last.
#[test]
fn a_long_chain_is_checked_on_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&db_path(dir.path()));
    let items: Vec<_> = (0..5000)
        .map(|i| item(&request(&format!("l{i}"), json!({}))))
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    assert_eq!(s.verify_audit(|_| {}).unwrap().broken, None);
    unlock(&s);
    for seq in [4500, 100] {
        s.connection()
            .execute("UPDATE audit SET actor = 'mallory' WHERE seq = ?1", [seq])
            .unwrap();
        let report = s.verify_audit(|_| {}).unwrap();
        assert_eq!(report.broken.map(|b| b.0), Some(seq));
    }
}
