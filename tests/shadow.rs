//! A parallel run of the demo queue: reviewers decide in signoff with actions in shadow
//! mode (rendered and stored, never sent), the existing process's outcomes are imported,
//! and the report compares item by item. The real binary, a real database, a pinned clock.
mod common;

use std::path::Path;

use common::{run, signoff};
use serde_json::Value;

fn bin(dir: &Path, clock: &str) -> std::process::Command {
    let mut c = signoff(dir);
    c.current_dir(dir).env("SIGNOFF_CLOCK", clock);
    c
}

const DECIDED: &str = "2026-11-21T06:00:00Z";

#[test]
fn a_shadow_run_of_the_demo_queue_gives_the_expected_disagreement_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("config")).unwrap();
    std::fs::write(
        d.join("config/config.toml"),
        "[actions]\nmode = \"shadow\"\n",
    )
    .unwrap();
    std::fs::write(d.join("demo.jsonl"), signoff::demo::REQUESTS).unwrap();
    let (code, out, err) = run(bin(d, DECIDED).args(["ingest", "demo.jsonl"]));
    assert_eq!(code, 0, "{out}{err}");

    // Reviewers decide six of the demo items in signoff.
    for args in [
        vec!["decide", "5", "--approve"],
        vec!["decide", "11", "--approve", "--set", "priority=high"],
        vec!["decide", "12", "--reject", "spam"],
        vec!["decide", "14", "--approve"],
        vec!["decide", "18", "--escalate", "legal"],
        vec!["decide", "20", "--approve"],
    ] {
        let (code, out, err) = run(bin(d, DECIDED).args(&args));
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    // Past the undo window the dispatcher renders and stores every action, sends none.
    let (code, out, err) = run(bin(d, "2026-11-21T06:05:00Z").args(["dispatch", "--once"]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(bin(d, "2026-11-21T06:05:00Z").args(["outbox", "--json"]));
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r["status"], "sandbox", "{r}");
    }
    assert!(out.contains("actions.mode is shadow"), "{out}");

    // What the existing process did with the same requests, and when.
    let outcomes = "\
source,external_id,decision,intent,priority,summary,done_at,handle_seconds
gmail,msg-18f33d7a0b5e2c91,approve,partnership,medium,,2026-11-20T09:20:47Z,300
webform,wf-20261120-0198,approve,partnership,medium,,2026-11-20T13:48:03Z,240
gmail,msg-18f34c9e2d1a7b05,rejected,,,,2026-11-20T13:30:00Z,30
webform,wf-20261120-0231,approve,partnership,high,,2026-11-20T16:30:51Z,600
zendesk,zd-117955,approve,support_request,medium,,2026-11-21T08:15:49Z,420
webform,wf-20261120-0398,approve,job_application,low,\"Candidate for the warehouse shift lead role, \"\"urgent\"\"\",2026-11-21T10:14:09Z,90
zendesk,zd-118177,approve,support_request,high,,2026-11-21T04:00:00Z,120
webform,wf-never-seen,reject,,,,2026-11-21T05:00:00Z,10
";
    std::fs::write(d.join("outcomes.csv"), outcomes).unwrap();
    let (code, out, err) = run(bin(d, DECIDED).args(["shadow", "import", "outcomes.csv"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "imported 8 outcome(s) from outcomes.csv: 8 new, 0 replaced, 0 rejected\n"
    );

    let (code, out, err) = run(bin(d, DECIDED).args(["shadow", "report"]));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("shadow_report_demo", out);

    let (code, out, _) = run(bin(d, DECIDED).args(["shadow", "report", "--json"]));
    assert_eq!(code, 0);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            r["compared"].as_u64(),
            r["agreed"].as_u64(),
            r["disagreed"].as_u64()
        ),
        (Some(6), Some(2), Some(4))
    );
    assert_eq!(r["undecided"], serde_json::json!(["zendesk/zd-118177"]));
    assert_eq!(r["missing"], serde_json::json!(["webform/wf-never-seen"]));

    // A second import of the same key replaces it; the imports are audited and verify.
    std::fs::write(
        d.join("again.jsonl"),
        "{\"source\": \"zendesk\", \"external_id\": \"zd-117955\", \"decision\": \"escalate\"}\n{\"source\": \"zendesk\"}\n",
    )
    .unwrap();
    let (code, out, err) = run(bin(d, DECIDED).args(["shadow", "import", "again.jsonl"]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("again.jsonl:2: 'external_id' is missing"),
        "{err}"
    );
    assert!(
        out.contains("1 outcome(s) from again.jsonl: 0 new, 1 replaced, 1 rejected"),
        "{out}"
    );
    let (code, out, _) = run(bin(d, DECIDED).args(["shadow", "report", "--json"]));
    assert_eq!(code, 0);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["disagreed"], 3, "the escalation now agrees");
    let (code, out, err) = run(bin(d, DECIDED).args(["audit", "verify"]));
    assert_eq!(code, 0, "{out}{err}");
}
