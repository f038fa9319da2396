//! A dispatcher killed with SIGKILL after its requests took effect but before it recorded
//! them: the next dispatcher finds the rows mid-attempt (lease run out), looks each effect
//! up, and records it — no second item, post or draft.
//!
//! The dispatcher under test is a real child process: the `signoff dispatch --once`
//! binary, and this test binary re-run with `SIGNOFF_CRASH_CHILD` set, executing only
//! [`child_dispatcher`].
mod common;
mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const CHILD_ENV: &str = "SIGNOFF_CRASH_CHILD";

/// Runs only as the child: a dispatcher over the database and config it was given.
#[test]
fn child_dispatcher() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // the normal test run: nothing to do here
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let db = std::path::PathBuf::from(spec["db"].as_str().unwrap());
    let cfg: signoff::actions::ActionsConfig = serde_json::from_value(spec["cfg"].clone()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        signoff::actions::dispatch_until(
            &db,
            policy(),
            &cfg,
            true,
            "child",
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    panic!("the child dispatcher should have been killed while its requests hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_between_sending_and_recording_resumes_without_duplicates() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.timeout_ms = 60_000;
    for route in [
        "monday:create_item",
        "slack:chat.postMessage",
        "gmail:drafts.create",
    ] {
        f.fault(route, Fault::ApplyThenHang);
    }
    let (_d, db) = temp_db();
    let store = approve_all(
        &db,
        &cfg,
        &[payload(
            "crash",
            "sales_lead",
            "high",
            "ada@example.com",
            "Hi",
            "Hello",
        )],
    );
    let spec = serde_json::json!({"db": db, "cfg": cfg});
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_dispatcher",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until all three writes took effect and their answers are being held back.
    for _ in 0..3_000 {
        if f.with(|w| w.applied_then_hung) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        f.with(|w| w.applied_then_hung),
        3,
        "the child never sent its requests"
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert_eq!(
        f.with(|w| (
            w.monday.items.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len()
        )),
        (1, 1, 1)
    );
    for (a, st, attempts, _, _) in rows(&store) {
        assert_eq!(
            (st.as_str(), attempts),
            ("sending", 1),
            "{a} is left mid-attempt"
        );
    }
    // The child's leases run out (time passes), and a new dispatcher takes over.
    store
        .connection()
        .execute(
            "UPDATE outbox SET lease_expires = 0 WHERE status = 'sending'",
            [],
        )
        .unwrap();
    let s = dispatch_once(&db, &cfg).await;
    assert_eq!((s.sent, s.reconciled), (3, 3), "{s}");
    for (a, st, attempts, _, resp) in rows(&store) {
        assert_eq!((st.as_str(), attempts), ("sent", 2), "{a}");
        assert_eq!(resp["reconciled"], true, "{a}");
    }
    assert_eq!(
        f.with(|w| (
            w.monday.items.len(),
            w.monday.updates.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len()
        )),
        (1, 1, 1, 1)
    );
    assert_eq!(f.requests("monday:create_item").len(), 1);
    assert_eq!(f.requests("slack:chat.postMessage").len(), 1);
    assert_eq!(f.requests("gmail:drafts.create").len(), 1);
    let after_crash: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM audit WHERE kind = 'action_attempt' AND json_extract(detail, '$.after_crash')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after_crash, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signoff_dispatch_killed_mid_send_resumes_without_duplicates() {
    let f = Fakes::start().await;
    for route in [
        "monday:create_item",
        "slack:chat.postMessage",
        "gmail:drafts.create",
    ] {
        f.fault(route, Fault::ApplyThenHang);
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &f, "live");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n",
            payload(
                "kill-1",
                "sales_lead",
                "high",
                "ada@example.com",
                "Hi",
                "Hello"
            )
        ),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        assert_eq!(
            common::run(common::signoff(&d).arg("ingest").arg(&input)).0,
            0
        );
        assert_eq!(
            common::run(common::signoff(&d).args(["decide", "1", "--approve"])).0,
            0
        );
    })
    .await
    .unwrap();
    let mut child = with_secrets(common::signoff(dir.path()))
        .args(["dispatch", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..3_000 {
        if f.with(|w| w.applied_then_hung) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        f.with(|w| w.applied_then_hung),
        3,
        "signoff dispatch never sent its requests"
    );
    child.kill().unwrap(); // SIGKILL
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    let store =
        signoff::store::Store::open(&common::db_path(dir.path()), policy(), &Default::default())
            .unwrap();
    assert!(rows(&store).iter().all(|r| r.1 == "sending"));
    store
        .connection()
        .execute(
            "UPDATE outbox SET lease_expires = 0 WHERE status = 'sending'",
            [],
        )
        .unwrap();
    let d = dir.path().to_path_buf();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        common::run(with_secrets(common::signoff(&d)).args(["dispatch", "--once"]))
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 sent (3 found already done)"), "{out}");
    assert_eq!(
        f.with(|w| (
            w.monday.items.len(),
            w.monday.updates.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len()
        )),
        (1, 1, 1, 1)
    );
}
