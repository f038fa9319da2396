//! `signoff migrate`: a SQLite queue copied into PostgreSQL through the real binary, both
//! audit logs verified, interrupted copies resumed, foreign targets and broken sources
//! refused. Each test makes a database of its own in the tests' PostgreSQL cluster.
mod common;
#[path = "support/pg.rs"]
mod pg;

use std::path::{Path, PathBuf};

use common::run;

fn signoff(dir: &Path) -> std::process::Command {
    common::signoff(dir)
}

/// A fresh, empty database in the tests' own PostgreSQL cluster (`tests/support/pg.rs`); `None`
/// (the test skips, said loudly) where PostgreSQL is not installed, except under `CI`.
async fn fresh_db(_name: &str) -> Option<String> {
    pg::database().map(|d| d.url)
}

async fn query_i64(url: &str, sql: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// A test's directory: the SQLite queue under `src/`, the PostgreSQL servers' key under `pg/`.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("src")).expect("mkdir");
        Setup { _tmp: tmp, dir }
    }

    fn db(&self) -> PathBuf {
        self.dir.join("src").join("queue.db")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("pg").join("audit.key")
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = signoff(&self.dir);
        c.arg("--db").arg(self.db()).args(args);
        run(&mut c)
    }

    fn migrate(&self, url: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut c = signoff(&self.dir);
        c.args(["migrate", "--from"])
            .arg(self.db())
            .args(["--to", url, "--key"])
            .arg(self.key())
            .args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c)
    }

    /// The demo queue with decisions, an edit and outbox rows.
    fn demo(&self) {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo/requests.jsonl");
        let (code, out, err) = self.cli(&["ingest", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        for args in [
            &[
                "decide",
                "--approve",
                "--set",
                "summary=edited by the test",
                "3",
            ][..],
            &["decide", "--approve", "7"],
            &["decide", "--reject", "spam", "5"],
            &["decide", "--escalate", "legal", "9"],
            &["decide", "--approve", "11"],
        ] {
            let (code, out, err) = self.cli(args);
            assert_eq!(code, 0, "{args:?}: {out}{err}");
        }
    }
}

#[tokio::test]
async fn demo_queue_moves_whole_and_verifies_on_both_sides() {
    let s = Setup::new();
    s.demo();
    let Some(url) = fresh_db("demo").await else {
        return;
    };
    let (code, out, err) = s.migrate(&url, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("source audit log intact"), "{out}");
    assert!(out.contains("target audit log intact"), "{out}");
    assert!(!out.contains("DIFFERENT"), "{out}");
    // The servers' key is the source's.
    assert_eq!(
        std::fs::read(s.key()).unwrap(),
        std::fs::read(s.dir.join("src").join("audit.key")).unwrap()
    );
    // Row for row: the same counts and the same head on both sides.
    let source = common::open(&s.db());
    for table in [
        "requests",
        "revisions",
        "edits",
        "decisions",
        "outbox",
        "audit",
    ] {
        let n = common::count(&source, &format!("SELECT COUNT(*) FROM {table}"));
        assert!(n > 0 || table == "edits", "{table}");
        assert_eq!(
            query_i64(&url, &format!("SELECT COUNT(*) FROM {table}")).await,
            n,
            "{table}"
        );
    }
    let head = common::count(&source, "SELECT MAX(seq) FROM audit");
    assert_eq!(
        query_i64(&url, "SELECT seq FROM audit_head WHERE id = 1").await,
        head
    );
    // New ids continue past the copied ones.
    let max_req = common::count(&source, "SELECT MAX(id) FROM requests");
    assert_eq!(
        query_i64(
            &url,
            "SELECT nextval(pg_get_serial_sequence('requests', 'id'))"
        )
        .await,
        max_req + 1
    );
    // `audit verify` and `audit export` reach the PostgreSQL log through --db.
    let mut c = signoff(&s.dir);
    c.args(["--db", &url, "audit", "verify"]);
    c.env("SIGNOFF_DATA_DIR", s.dir.join("pg"));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("audit chain intact: {head} entries")),
        "{out}"
    );
    let mut c = signoff(&s.dir);
    c.args(["--db", &url, "audit", "export"]);
    c.env("SIGNOFF_DATA_DIR", s.dir.join("pg"));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count() as i64, head);
    // The same copy again: nothing to do, still whole.
    let (code, out, err) = s.migrate(&url, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resumed"), "{out}");
}

#[tokio::test]
async fn an_interrupted_copy_resumes_where_it_stopped() {
    let s = Setup::new();
    s.demo();
    let Some(url) = fresh_db("resume").await else {
        return;
    };
    let (code, out, err) = s.migrate(
        &url,
        &["--batch-rows", "7"],
        &[("SIGNOFF_MIGRATE_STOP_AFTER", "3")],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("stopped after 3 batches"), "{err}");
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM requests").await, 21);
    // Killed mid-way through the audit log.
    let (code, out, err) = s.migrate(
        &url,
        &["--batch-rows", "7"],
        &[("SIGNOFF_MIGRATE_STOP_AFTER", "16")],
    );
    assert_ne!(code, 0, "{out}{err}");
    let copied = query_i64(&url, "SELECT COUNT(*) FROM audit").await;
    assert!(copied > 0, "{err}");
    assert_eq!(
        query_i64(&url, "SELECT seq FROM audit_head WHERE id = 1").await,
        copied
    );
    let (code, out, err) = s.migrate(&url, &["--batch-rows", "7"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resumed"), "{out}");
    assert!(!out.contains("DIFFERENT"), "{out}");
    let source = common::open(&s.db());
    assert_eq!(
        query_i64(&url, "SELECT COUNT(*) FROM audit").await,
        common::count(&source, "SELECT COUNT(*) FROM audit")
    );
}

#[tokio::test]
async fn a_target_holding_another_log_is_refused() {
    let a = Setup::new();
    a.demo();
    let Some(url) = fresh_db("foreign").await else {
        return;
    };
    let (code, out, err) = a.migrate(&url, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    // Another queue with the same key: its log is not the one the target holds.
    let b = Setup::new();
    std::fs::copy(a.dir.join("src/audit.key"), b.dir.join("src/audit.key")).unwrap();
    b.demo();
    std::fs::create_dir_all(b.dir.join("pg")).unwrap();
    std::fs::copy(a.key(), b.key()).unwrap();
    let (code, out, err) = b.migrate(&url, &[], &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("holds another audit log"), "{err}");
    assert!(err.contains("migrate into an empty database"), "{err}");
    // A key other than the source's is refused before anything is written.
    let c = Setup::new();
    c.demo();
    std::fs::create_dir_all(c.dir.join("pg")).unwrap();
    std::fs::write(c.key(), [7u8; 32]).unwrap();
    let Some(url2) = fresh_db("otherkey").await else {
        return;
    };
    let (code, _, err) = c.migrate(&url2, &[], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("is not the source's"), "{err}");
}

#[tokio::test]
async fn a_broken_source_is_refused_unless_forced() {
    let s = Setup::new();
    s.demo();
    {
        let conn = rusqlite::Connection::open(s.db()).unwrap();
        let triggers: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'audit'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for t in triggers {
            conn.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
        }
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 4", [])
            .unwrap();
    }
    let Some(url) = fresh_db("broken").await else {
        return;
    };
    let (code, out, err) = s.migrate(&url, &[], &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("does not verify"), "{err}");
    assert!(err.contains("entry 4"), "{err}");
    // Refused before the target was touched.
    assert_eq!(
        query_i64(
            &url,
            "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'requests'"
        )
        .await,
        0
    );
    let (code, out, err) = s.migrate(&url, &["--force"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("target audit log BROKEN at entry 4"), "{out}");
    assert_eq!(
        query_i64(
            &url,
            "SELECT COUNT(*) FROM audit WHERE kind = 'migrated_unverified'"
        )
        .await,
        1
    );
}

/// `cargo test --release --test pg_migrate -- --ignored --nocapture`: a 100k-item queue
/// (a decision on every tenth) copied, timed.
#[tokio::test]
#[ignore]
async fn bench_migrate_100k() {
    use signoff::model::DecisionKind;
    use signoff::queue::Decision;
    let s = Setup::new();
    let t0 = std::time::Instant::now();
    {
        let mut store = common::open(&s.db());
        for chunk in 0..100 {
            let items: Vec<_> = (0..1000)
                .map(|i| {
                    common::item(&common::request(
                        &format!("bench-{}", chunk * 1000 + i),
                        serde_json::json!({}),
                    ))
                })
                .collect();
            store.ingest_batch(&items, "bench").unwrap();
        }
        for _ in 0..10_000 {
            let claim = store.claim_next("bench").unwrap().unwrap();
            store
                .decide(
                    &claim,
                    &Decision {
                        kind: DecisionKind::Approve,
                        revision: None,
                        note: None,
                        sets: vec![],
                    },
                )
                .unwrap();
        }
    }
    eprintln!("built the source in {:.1}s", t0.elapsed().as_secs_f64());
    let Some(url) = fresh_db("bench").await else {
        return;
    };
    let t = std::time::Instant::now();
    let (code, out, err) = s.migrate(&url, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    eprintln!("{out}");
    eprintln!(
        "migrate took {:.1}s (wall, the command)",
        t.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn verify_on_postgres_finds_an_edited_entry_and_a_removed_tail() {
    let s = Setup::new();
    s.demo();
    let Some(url) = fresh_db("tamper").await else {
        return;
    };
    let (code, out, err) = s.migrate(&url, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let verify = || {
        let mut c = signoff(&s.dir);
        c.args(["--db", &url, "audit", "verify"]);
        c.env("SIGNOFF_DATA_DIR", s.dir.join("pg"));
        run(&mut c)
    };
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let head = query_i64(&url, "SELECT MAX(seq) FROM audit").await;
    client
        .batch_execute(&format!(
            "ALTER TABLE audit DISABLE TRIGGER audit_append_only;
             DELETE FROM audit WHERE seq = {head};"
        ))
        .await
        .unwrap();
    let (code, out, _) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("BROKEN at entry {head}: missing")),
        "{out}"
    );
    client
        .batch_execute("UPDATE audit SET actor = 'mallory' WHERE seq = 6")
        .await
        .unwrap();
    let (code, out, _) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BROKEN at entry 6: its content does not match"),
        "{out}"
    );
}
