//! Stats on a seeded history with known answers.
mod common;

use common::{item, open, request, run, signoff};
use serde_json::json;
use signoff::model::{DecisionKind, EditableField};
use signoff::queue::Decision;
use signoff::store::Store;

fn decide(
    s: &mut Store,
    id: i64,
    who: &str,
    secs: i64,
    kind: DecisionKind,
    sets: Vec<(EditableField, &str)>,
) {
    let c = s.claim(id, who).unwrap();
    s.advance_clock(secs * 1000);
    s.decide(
        &c,
        &Decision {
            kind,
            revision: None,
            note: None,
            sets: sets
                .into_iter()
                .map(|(f, v)| (f, Some(v.to_string())))
                .collect(),
        },
    )
    .unwrap();
}

fn reject(r: &str) -> DecisionKind {
    DecisionKind::Reject { reason: r.into() }
}

/// Ten items; nine decided by two reviewers with known handle times and edits; one
/// decided and undone.
fn history(path: &std::path::Path) -> Store {
    let mut s = open(path);
    s.freeze_clock();
    let confs = [
        json!(0.95),
        json!(0.92),
        json!(0.85),
        json!(0.85),
        json!(0.72),
        json!(0.65),
        json!(0.55),
        json!(0.3),
        json!(null),
        json!(0.99),
    ];
    let items: Vec<_> = confs
        .iter()
        .enumerate()
        .map(|(i, c)| item(&request(&format!("s{i}"), json!({"ai": {"confidence": c}}))))
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    use DecisionKind::Approve;
    use EditableField::*;
    decide(&mut s, 1, "ana", 60, Approve, vec![]);
    decide(
        &mut s,
        2,
        "ana",
        120,
        Approve,
        vec![(Intent, "support_request")],
    );
    decide(
        &mut s,
        3,
        "ben",
        30,
        Approve,
        vec![(Summary, "A better summary")],
    );
    decide(&mut s, 4, "ben", 90, reject("wrong_intent"), vec![]);
    decide(
        &mut s,
        5,
        "ana",
        10,
        DecisionKind::Escalate {
            queue: "legal".into(),
        },
        vec![],
    );
    decide(&mut s, 6, "ana", 200, Approve, vec![(Priority, "urgent")]);
    decide(&mut s, 7, "ben", 20, reject("spam"), vec![]);
    decide(&mut s, 8, "ben", 50, reject("spam"), vec![]);
    decide(&mut s, 9, "ana", 40, Approve, vec![]);
    decide(&mut s, 10, "ana", 5, Approve, vec![]);
    s.undo(10, "ana").unwrap();
    s.record_outcome(1, "meeting_booked", None, "ana").unwrap();
    s.record_outcome(3, "won", None, "ben").unwrap();
    s.record_outcome(3, "lost", Some("went with a competitor"), "ben")
        .unwrap();
    s.record_outcome(4, "wrong_intent", Some("was a partnership"), "ben")
        .unwrap();
    s.connection()
        .execute_batch(
            "UPDATE outbox SET status = 'sent' WHERE action = 'crm' AND request_id IN (1, 2, 3);
             UPDATE outbox SET status = 'dead', last_error = 'InvalidBoardIdException' WHERE action = 'crm' AND request_id = 6;",
        )
        .unwrap();
    s
}

#[test]
fn stats_match_the_known_history() {
    let dir = tempfile::tempdir().unwrap();
    let s = history(&dir.path().join("q.db"));
    let st = s.stats(None).unwrap();
    let d = &st.decisions;
    assert_eq!(
        (d.total, d.approved, d.rejected, d.escalated, d.undone),
        (9, 5, 3, 1, 1)
    );
    assert_eq!(
        st.queue.in_review, 1,
        "the undone item is back with its reviewer"
    );
    let reviewers: Vec<(&str, u64, Option<i64>)> = st
        .reviewers
        .iter()
        .map(|r| (r.reviewer.as_str(), r.decisions, r.median_handle_ms))
        .collect();
    assert_eq!(
        reviewers,
        [("ana", 5, Some(60_000)), ("ben", 4, Some(30_000))]
    );
    assert_eq!(
        st.reject_reasons,
        [("spam".to_string(), 2), ("wrong_intent".to_string(), 1)]
    );
    assert_eq!(st.escalation_queues, [("legal".to_string(), 1)]);
    let edited: Vec<(&str, u64)> = st
        .edits
        .iter()
        .map(|e| (e.field.as_str(), e.edited))
        .collect();
    assert_eq!(
        edited,
        [
            ("summary", 1),
            ("intent", 1),
            ("priority", 1),
            ("recommended_next_step", 0),
            ("escalation_reason", 0),
            ("draft_reply", 0)
        ]
    );
    assert!((st.edits[0].rate - 1.0 / 9.0).abs() < 1e-9);
    let buckets: Vec<(&str, u64, u64)> = st
        .agreement
        .iter()
        .map(|b| (b.bucket.as_str(), b.decided, b.agreed))
        .collect();
    assert_eq!(
        buckets,
        [
            ("0.9–1.0", 2, 1),
            ("0.8–0.9", 2, 1),
            ("0.7–0.8", 1, 0),
            ("0.6–0.7", 1, 0),
            ("0.5–0.6", 1, 0),
            ("< 0.5", 1, 0),
            ("unknown", 1, 1)
        ]
    );
    let crm = st.actions.iter().find(|a| a.action == "crm").unwrap();
    assert_eq!(
        (crm.total, crm.sent, crm.dead, crm.pending, crm.cancelled),
        (6, 3, 1, 1, 1)
    );
    assert!((crm.success_rate - 0.75).abs() < 1e-9);
    let slack = st.actions.iter().find(|a| a.action == "slack").unwrap();
    assert_eq!(
        (slack.total, slack.pending, slack.cancelled),
        (6, 5, 1),
        "4 approvals + legal escalation + undone"
    );
    let outcomes: Vec<(&str, &str, u64)> = st
        .outcomes
        .iter()
        .map(|o| (o.intent.as_str(), o.outcome.as_str(), o.count))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("sales_lead", "lost", 1),
            ("sales_lead", "meeting_booked", 1),
            ("sales_lead", "wrong_intent", 1)
        ]
    );
    assert_eq!(st.volume.per_hour.len(), 24);
    assert_eq!(st.volume.per_hour.iter().sum::<u64>(), 10);
    assert_eq!(
        st.volume.alert, None,
        "10 requests is under the alert minimum"
    );

    // A window that starts after everything counts nothing.
    let later = s.stats(Some(s.now() + 1)).unwrap();
    assert_eq!(later.decisions.total, 0);
}

#[test]
fn an_hour_far_above_the_baseline_raises_a_volume_alert() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("q.db"));
    // 7 days of 2 requests an hour, then 40 in the current hour.
    let base: Vec<_> = (0..336)
        .map(|i| item(&request(&format!("b{i}"), json!({}))))
        .collect();
    s.ingest_batch(&base, "system").unwrap();
    let now = s.now();
    let this_hour = now - now % 3_600_000;
    s.connection()
        .execute(
            "UPDATE requests SET ingested_at = ?1 - (24 + (id - 1) / 2) * 3600000",
            [this_hour],
        )
        .unwrap();
    let burst: Vec<_> = (0..40)
        .map(|i| item(&request(&format!("x{i}"), json!({}))))
        .collect();
    s.ingest_batch(&burst, "system").unwrap();
    let st = s.stats(None).unwrap();
    assert_eq!(st.volume.baseline_per_hour, 2.0);
    assert_eq!(*st.volume.per_hour.last().unwrap(), 40);
    let alert = st.volume.alert.clone().expect("alert");
    assert!(
        alert.contains("this hour: 40 requests in an hour, 20.0× the baseline of 2/h"),
        "{alert}"
    );
}

#[test]
fn outcomes_and_exports_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    history(&db);
    let so = || {
        let mut c = signoff(dir.path());
        c.arg("--db").arg(&db);
        c
    };
    let (code, _, err) = run(so().args(["outcome", "1", "lost"]));
    assert_eq!(code, 2);
    assert!(err.contains("the outcome 'lost' needs a reason"), "{err}");
    let (code, _, err) = run(so().args(["outcome", "10", "won"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("item 10 is in_review: outcomes are recorded after a decision"),
        "{err}"
    );
    let (code, out, err) = run(so().args(["outcome", "9", "qualified"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "item 9: outcome qualified recorded");

    let (code, out, _) = run(so().args(["stats", "--json"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decisions"]["total"], 9);
    let (code, out, _) = run(so().arg("stats"));
    assert_eq!(code, 0);
    assert!(
        out.contains("decisions   9  approve 56%  reject 33%  escalate 11%  (undone 1)"),
        "{out}"
    );

    let (code, out, _) = run(so().args(["audit", "export", "--items", "--item", "2"]));
    assert_eq!(code, 0);
    let rec: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(rec["ai"]["intent"], "sales_lead");
    assert_eq!(rec["final"]["intent"], "support_request");
    assert_eq!(rec["edits"][0]["field"], "intent");
    assert_eq!(rec["decision"], "approve");

    let (code, out, _) = run(so().args(["audit", "export", "--items", "--format", "csv"]));
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "header + 9 decided items\n{out}");
    assert!(lines[0].starts_with("item,source,external_id,received_at,decision"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("sales_lead,support_request,true")),
        "{out}"
    );

    let (code, out, _) = run(so().args(["audit", "export", "--item", "10"]));
    assert_eq!(code, 0);
    let kinds: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        ["ingested", "claimed", "decided", "undone", "claimed"]
    );
    let (code, _, err) = run(so().args(["audit", "export", "--since", "yesterday"]));
    assert_eq!(code, 2);
    assert!(err.contains("expected an RFC 3339 time or an age"), "{err}");
}

#[test]
fn csv_cells_are_quoted_and_never_formulas() {
    use signoff::store::csv_cell;
    assert_eq!(csv_cell("plain"), "plain");
    assert_eq!(csv_cell("a,b"), "\"a,b\"");
    assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv_cell("-1"), "'-1");
}

#[test]
fn prompt_versions_compare_and_drift_warns_below_the_validated_level() {
    use signoff::clock::Clock;
    use signoff::model::Policy;
    use signoff::store::StoreOptions;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    // 2026-11-20T10:00:00Z
    let now = 1_795_168_800_000;
    let opts = StoreOptions {
        clock: Clock::fixed(now),
        ..Default::default()
    };
    let mut s = Store::open(&db, std::sync::Arc::new(Policy::default()), &opts).unwrap();
    let items: Vec<_> = (0..40)
        .map(|i| {
            let v = if i < 20 { "triage-v1" } else { "triage-v2" };
            item(&request(
                &format!("p{i}"),
                json!({"ai": {"confidence": 0.95, "prompt_version": v, "model": "m"}}),
            ))
        })
        .collect();
    s.ingest_batch(&items, "system").unwrap();
    use DecisionKind::Approve;
    for id in 1..=20 {
        decide(&mut s, id, "ana", 10, Approve, vec![]);
    }
    for id in 21..=30 {
        decide(
            &mut s,
            id,
            "ana",
            10,
            Approve,
            vec![(EditableField::Intent, "partnership")],
        );
    }
    for id in 31..=35 {
        decide(
            &mut s,
            id,
            "ana",
            10,
            DecisionKind::Escalate {
                queue: "legal".into(),
            },
            vec![],
        );
    }
    for id in 36..=40 {
        decide(&mut s, id, "ana", 10, Approve, vec![]);
    }

    // A validation where everything at 0.9 and up agreed, signed off.
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
    let report = signoff::validate::evaluate("h.jsonl", "x", &cases, s.policy(), &cfg);
    assert!(report.passed, "{}", report.verdict);
    s.sign_off_validation("dana", &report, &cfg).unwrap();

    let st = s.stats(None).unwrap();
    let by: Vec<(&str, u64, u64, f64, f64)> = st
        .by_prompt_version
        .iter()
        .map(|g| {
            (
                g.value.as_str(),
                g.items,
                g.decided,
                g.agreement,
                g.escalation_rate,
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("triage-v1", 20, 20, 1.0, 0.0),
            ("triage-v2", 20, 20, 0.25, 0.25)
        ]
    );
    let v2 = &st.by_prompt_version[1];
    let intent = v2.edits.iter().find(|e| e.field == "intent").unwrap();
    assert_eq!((intent.edited, intent.rate), (10, 0.5));
    assert_eq!(st.by_model.len(), 1);

    let drift = &st.drift;
    assert_eq!(drift.weeks.len(), 8);
    let last = drift.weeks.last().unwrap();
    assert_eq!(
        (last.volume, last.decided, last.agreed, last.escalated),
        (40, 40, 25, 5)
    );
    let b = drift.baseline.as_ref().expect("the signed-off validation");
    assert_eq!((b.agreement, b.signed_by.as_str()), (1.0, "dana"));
    assert_eq!(
        drift.warnings,
        [
            "agreement at confidence 0.9–1.0 is 62% over the last 7 days (25 of 40), below the validated 100% (tolerance 5 points)",
            "escalation rate 12% over the last 7 days, above the validated 0%"
        ]
    );
    let text = st.report();
    assert!(text.contains("by prompt version"), "{text}");
    assert!(
        text.contains("DRIFT       agreement at confidence 0.9–1.0"),
        "{text}"
    );
    drop(s);

    // The same through the binary.
    let (code, out, err) = run(signoff(dir.path())
        .env("SIGNOFF_CLOCK", "2026-11-20T10:00:00Z")
        .args([
            "--db",
            db.to_str().unwrap(),
            "stats",
            "--by",
            "prompt_version",
        ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("by prompt version"), "{out}");
    let row = out.lines().find(|l| l.contains("triage-v2")).unwrap();
    assert!(row.contains("    20      20       25%       25%"), "{row}");
}
