//! `signoff validate` on generated histories whose answers are known in advance, its
//! sign-off in the audit log, and the refusal of a threshold or auto-approval nobody
//! validated. The real binary on real files; the clock is pinned.
mod common;

use std::path::Path;

use common::{run, signoff};
use serde_json::{Value, json};

const CLOCK: &str = "2026-12-01T09:00:00Z";

/// One confidence bucket of the generated history: its cases are spread evenly over
/// `slices` slices of `width` from `lo` (each case at the middle of its slice), and in
/// every slice the same share is wrong: case `j` of a slice is wrong when
/// `j % modulus < wrong_below`.
struct Bucket {
    lo: f64,
    width: f64,
    cases: usize,
    modulus: usize,
    wrong_below: usize,
    accuracy: f64,
}

/// The buckets of the 10,000-case history. With a required accuracy of 0.97: at 0.80 the
/// auto-approved cases are the top two buckets, 5,500 cases with 30 + 100 wrong (97.6 %);
/// at 0.79 the slice 0.79–0.80 adds 200 cases with 60 wrong (96.7 %), and every lower
/// slice is wrong at least 30 % of the time, so no lower threshold passes: 0.80 is the
/// answer.
const BUCKETS: [Bucket; 6] = [
    Bucket {
        lo: 0.90,
        width: 0.01,
        cases: 3000,
        modulus: 100,
        wrong_below: 1,
        accuracy: 0.99,
    },
    Bucket {
        lo: 0.80,
        width: 0.01,
        cases: 2500,
        modulus: 25,
        wrong_below: 1,
        accuracy: 0.96,
    },
    Bucket {
        lo: 0.70,
        width: 0.01,
        cases: 2000,
        modulus: 10,
        wrong_below: 3,
        accuracy: 0.70,
    },
    Bucket {
        lo: 0.60,
        width: 0.01,
        cases: 1500,
        modulus: 10,
        wrong_below: 4,
        accuracy: 0.60,
    },
    Bucket {
        lo: 0.50,
        width: 0.01,
        cases: 700,
        modulus: 10,
        wrong_below: 5,
        accuracy: 0.50,
    },
    Bucket {
        lo: 0.00,
        width: 0.05,
        cases: 300,
        modulus: 10,
        wrong_below: 7,
        accuracy: 0.30,
    },
];

/// What the generator put in, to check the report against.
#[derive(Default, Debug)]
struct Truth {
    cases: usize,
    intent_wrong: usize,
    priority_wrong: usize,
    escalated: usize,
}

/// Intents no default review rule holds back (the others trigger a Gmail draft, which
/// never goes out unreviewed, or always need review).
const INTENTS: [&str; 3] = ["partnership", "other", "spam"];
const PRIORITIES: [&str; 3] = ["medium", "low", "high"];

/// The history as JSON Lines. Wrong cases take turns: another intent, another priority,
/// rejected, escalated.
fn history(buckets: &[Bucket]) -> (String, Truth) {
    let mut lines = Vec::new();
    let mut truth = Truth::default();
    let mut wrong_turn = 0usize;
    let base = 1_785_000_000i64; // 2026-07-25
    for b in buckets {
        let per_slice = b.cases / 10;
        for slice in 0..10 {
            for j in 0..per_slice {
                let n = truth.cases;
                truth.cases += 1;
                let conf = b.lo + slice as f64 * b.width + b.width / 2.0;
                let conf = (conf * 1000.0).round() / 1000.0;
                let intent = INTENTS[n % 3];
                let priority = PRIORITIES[(n / 3) % 3];
                let wrong = j % b.modulus < b.wrong_below;
                let (mut decision, mut a_intent, mut a_priority) = ("approve", intent, priority);
                if wrong {
                    match wrong_turn % 4 {
                        0 => {
                            a_intent = INTENTS[(n + 1) % 3];
                            truth.intent_wrong += 1;
                        }
                        1 => {
                            a_priority = PRIORITIES[((n / 3) + 1) % 3];
                            truth.priority_wrong += 1;
                        }
                        2 => decision = "reject",
                        _ => {
                            decision = "escalate";
                            truth.escalated += 1;
                        }
                    }
                    wrong_turn += 1;
                }
                let received = time::OffsetDateTime::from_unix_timestamp(base + n as i64 * 777)
                    .unwrap()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                lines.push(
                    json!({
                        "source": "history", "external_id": format!("h-{n:05}"),
                        "received_at": received,
                        "raw": {"channel": "email", "from": "someone@example.com", "subject": "Request", "body": "Hello"},
                        "ai": {"summary": format!("Partnership enquiry number {n}"), "intent": intent,
                               "priority": priority, "confidence": conf,
                               "recommended_next_step": "Reply within a day",
                               "crm_update_required": true, "human_review_required": false,
                               "model": "gpt-4.1-mini", "prompt_version": "triage-v7"},
                        "actual": {"decision": decision, "intent": a_intent, "priority": a_priority,
                                   "summary": format!("Partnership enquiry {n}"),
                                   "recommended_next_step": "Reply within a day"}
                    })
                    .to_string(),
                );
            }
        }
    }
    (lines.join("\n") + "\n", truth)
}

fn config(dir: &Path, body: &str) {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/config.toml"), body).unwrap();
}

fn bin(dir: &Path) -> std::process::Command {
    let mut c = signoff(dir);
    c.current_dir(dir).env("SIGNOFF_CLOCK", CLOCK);
    c
}

#[test]
fn validate_recommends_the_known_threshold_on_a_10000_case_history() {
    let dir = tempfile::tempdir().unwrap();
    let (text, truth) = history(&BUCKETS);
    assert_eq!(truth.cases, 10_000);
    std::fs::write(dir.path().join("history.jsonl"), &text).unwrap();
    let (code, out, err) = run(bin(dir.path()).args(["validate", "history.jsonl", "--json"]));
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["cases"], 10_000);

    // Accuracy per confidence bucket, within one point of what was built in.
    let cal = r["calibration"].as_array().unwrap();
    assert_eq!(cal.len(), BUCKETS.len());
    for (got, want) in cal.iter().zip(&BUCKETS) {
        let acc = got["accuracy"].as_f64().unwrap();
        assert!(
            (acc - want.accuracy).abs() <= 0.01,
            "{got} vs {}",
            want.accuracy
        );
        assert_eq!(got["cases"], want.cases);
    }
    // Accuracy per field.
    let field = |name: &str| {
        r["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == name)
            .unwrap()["accuracy"]
            .as_f64()
            .unwrap()
    };
    let n = truth.cases as f64;
    assert!((field("intent") - (1.0 - truth.intent_wrong as f64 / n)).abs() <= 0.01);
    assert!((field("priority") - (1.0 - truth.priority_wrong as f64 / n)).abs() <= 0.01);
    assert!((field("escalation") - (1.0 - truth.escalated as f64 / n)).abs() <= 0.01);
    assert_eq!(field("recommended_next_step"), 1.0);
    // "Partnership enquiry number 7" against "Partnership enquiry 7": 2·3 / (4 + 3).
    assert!((field("summary") - 1.0).abs() < 1e-9);

    // The threshold: exactly 0.80, sparing 55 % of the volume, with its 130 wrong cases.
    let rec = &r["recommendation"];
    assert_eq!(rec["threshold"], 0.8, "{rec}");
    assert_eq!(rec["auto_approved"], 5500);
    assert_eq!(rec["correct"], 5370);
    assert_eq!(rec["spared"], 0.55);
    assert_eq!(rec["wrong"].as_array().unwrap().len(), 130);
    assert!(
        rec["wrong"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["confidence"].as_f64().unwrap() >= 0.8)
    );
    // The default threshold 0.75 takes five slices of the 70 % bucket too: it fails.
    assert_eq!(r["at_policy_threshold"]["auto_approved"], 6500);
    assert_eq!(r["passed"], false);

    // The terminal report says the same in tables.
    let (code, out, _) = run(bin(dir.path()).args(["validate", "history.jsonl"]));
    assert_eq!(code, 0);
    assert!(out.contains("recommended threshold 0.80"), "{out}");
    assert!(
        out.contains("5500 auto-approved (55.0 % of all cases spared review), 5370 agree (97.6 %)"),
        "{out}"
    );
    assert!(
        out.contains("… 110 more (--json or --html lists them all)"),
        "{out}"
    );
    assert!(
        out.contains("  0.9–1.0     3000       0.95   99.0 %  ███████████████████▊"),
        "{out}"
    );
}

/// A small history with a bit of everything: every intent, unknown confidence, a review
/// rule, free text, hostile text.
fn small_history() -> String {
    let mut lines = Vec::new();
    for n in 0..48usize {
        let intent = INTENTS[n % 3];
        let conf = [
            json!(0.97),
            json!(0.91),
            json!(0.83),
            json!(0.64),
            json!(null),
            json!(0.42),
        ][n % 6]
            .clone();
        let wrong = n % 7 == 0;
        let decision = if n % 11 == 0 { "escalate" } else { "approve" };
        lines.push(
            json!({
                "source": "crm", "external_id": format!("s-{n}"),
                "received_at": format!("2026-10-{:02}T10:00:00Z", 1 + n % 28),
                "ai": {"summary": "Wants a partnership call next week", "intent": intent, "priority": "low",
                       "confidence": conf, "human_review_required": false,
                       "draft_reply": "Hello, thanks for reaching out"},
                "actual": {"decision": decision, "intent": if wrong { "sales_lead" } else { intent },
                           "priority": "low", "summary": "Wants a call about partnering",
                           "reply": "Hello, thanks for reaching out to us"}
            })
            .to_string(),
        );
    }
    lines.push(
        json!({
            "source": "crm", "external_id": "hostile-\u{1b}[31m\u{202e}",
            "ai": {"intent": "complaint\u{1b}]0;pwned\u{7}", "priority": "low", "confidence": 0.99},
            "actual": {"decision": "approve", "intent": "<script>alert(1)</script>", "priority": "low"}
        })
        .to_string(),
    );
    lines.join("\n")
}

#[test]
fn validate_json_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.jsonl"), small_history()).unwrap();
    config(
        dir.path(),
        "[validation]\nmin_cases = 5\nrequired_accuracy = 0.8\n",
    );
    let (code, out, err) = run(bin(dir.path()).args(["validate", "small.jsonl", "--json"]));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("validate_small_json", out);
}

#[test]
fn the_reports_neutralise_hostile_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.jsonl"), small_history()).unwrap();
    config(
        dir.path(),
        "[validation]\nmin_cases = 5\nrequired_accuracy = 0.9\n",
    );
    let (code, out, err) =
        run(bin(dir.path()).args(["validate", "small.jsonl", "--html", "r.html"]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{202e}') && !out.contains('\u{7}'));
    assert!(out.contains("complaint␛]0;pwned␇"), "{out}");
    assert!(out.contains("intent confusion"), "{out}");
    assert!(out.contains("HTML report: r.html"), "{out}");
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"));
    assert!(!html.contains('\u{1b}') && !html.contains('\u{202e}'));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("r.html"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the report holds request text: the owner's alone"
    );
}

#[test]
fn a_bad_history_is_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = json!({"source": "s", "external_id": "1", "ai": {"intent": "other"},
                      "actual": {"decision": "reject"}})
    .to_string();
    let text = format!(
        "{good}\n{}\n\n{}\n",
        json!({"source": "s", "external_id": "2", "actual": {"decision": "approve", "intent": "other"}}),
        json!({"source": "s", "external_id": "3", "actual": {"decision": "later"}})
    );
    std::fs::write(dir.path().join("h.jsonl"), text).unwrap();
    let (code, out, err) = run(bin(dir.path()).args(["validate", "h.jsonl"]));
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(
        err.contains("h.jsonl:2: actual.priority is missing"),
        "{err}"
    );
    assert!(
        err.contains("h.jsonl:4: actual.decision 'later' is not approve, reject or escalate"),
        "{err}"
    );
    assert!(
        err.contains("2 of the cases in h.jsonl cannot be used; nothing was judged"),
        "{err}"
    );
}

fn requests(n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"source": "web", "external_id": format!("r{i}"), "received_at": "2026-11-30T10:00:00Z",
                   "raw": {"channel": "form", "from": "x@example.com", "subject": "Partner", "body": "Hi"},
                   "ai": {"summary": "Partnership", "intent": "partnership", "priority": "low",
                          "confidence": 0.95, "human_review_required": false,
                          "model": "m1", "prompt_version": "p1"}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn audit_kinds(db: &Path) -> Vec<(String, Value)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c
        .prepare("SELECT kind, detail FROM audit WHERE kind IN ('validation_signed_off', 'policy_adopted') ORDER BY seq")
        .unwrap();
    s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (k, d) = r.unwrap();
            (k, serde_json::from_str(&d).unwrap())
        })
        .collect()
}

#[test]
fn auto_approval_needs_a_passing_signed_off_validation_and_the_sign_off_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (text, _) = history(&BUCKETS);
    std::fs::write(d.join("history.jsonl"), &text).unwrap();
    std::fs::write(d.join("in.jsonl"), requests(3)).unwrap();
    let db = common::db_path(d);

    // Turning auto-approval on at the recommended threshold, with no validation: refused.
    config(
        d,
        "[policy]\nauto_approve = true\nconfidence_threshold = 0.8\nsample_rate = 0.0\n",
    );
    let (code, _, err) = run(bin(d).args(["ingest", "in.jsonl"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refused: policy.confidence_threshold 0.8 (in force: 0.75) and policy.auto_approve = true (in force: off) has no passing signed-off validation for policy version"),
        "{err}"
    );
    assert!(err.contains("signoff validate HISTORY --sign-off"), "{err}");
    let (code, out, _) = run(bin(d).args(["policy"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("in force     threshold 0.75 · auto-approve off · the built-in defaults"),
        "{out}"
    );
    assert!(
        out.contains("refused      the configured threshold"),
        "{out}"
    );

    // A sign-off of a failing run (threshold 0.7) does not count.
    config(
        d,
        "[policy]\nauto_approve = true\nconfidence_threshold = 0.7\nsample_rate = 0.0\n",
    );
    let (code, out, err) = run(bin(d).args(["validate", "history.jsonl", "--sign-off"]));
    assert_eq!(code, 0, "{err}");
    let me = signoff::identity::os_user();
    assert!(
        out.contains(&format!("signed off by {me} as audit entry")),
        "{out}"
    );
    assert!(out.contains(": failed for policy version"), "{out}");
    let (code, _, err) = run(bin(d).args(["ingest", "in.jsonl"]));
    assert_eq!(code, 2, "{err}");

    // The validated threshold, signed off: passes, and ingest takes it into force.
    config(
        d,
        "[policy]\nauto_approve = true\nconfidence_threshold = 0.8\nsample_rate = 0.0\n",
    );
    let (code, out, err) = run(bin(d).args(["validate", "history.jsonl", "--sign-off"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": passed for policy version"), "{out}");
    let (code, out, err) = run(bin(d).args(["ingest", "in.jsonl"]));
    assert_eq!(code, 0, "{out}{err}");
    let kinds = audit_kinds(&db);
    let names: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "validation_signed_off",
            "validation_signed_off",
            "policy_adopted"
        ]
    );
    let signed = &kinds[1].1;
    assert_eq!(signed["passed"], true);
    assert_eq!(signed["required_accuracy"], 0.97);
    assert_eq!(signed["cases"], 10_000);
    assert_eq!(signed["input_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(signed["results"]["recommended_threshold"], 0.8);
    assert_eq!(kinds[2].1["forced"], false);
    assert!(kinds[2].1["validation"].as_i64().is_some());
    // Auto-approval acted: all three were approved by policy.
    let c = rusqlite::Connection::open(&db).unwrap();
    let auto: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM decisions WHERE reviewer = 'system'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(auto, 3);
    let (code, out, _) = run(bin(d).args(["policy"]));
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "in force     threshold 0.80 · auto-approve on · since 2026-12-01T09:00:00Z by {me}"
        )),
        "{out}"
    );
    assert!(
        out.contains("stands on    validation history.jsonl (10000 cases, sha256"),
        "{out}"
    );
    assert!(out.contains("): passed"), "{out}");

    // The log verifies with the sign-offs in it.
    let (code, out, err) = run(bin(d).args(["audit", "verify"]));
    assert_eq!(code, 0, "{out}{err}");

    // Another threshold without evidence: refused, and `policy adopt` too, unless forced.
    config(
        d,
        "[policy]\nauto_approve = true\nconfidence_threshold = 0.6\nsample_rate = 0.0\n",
    );
    let (code, _, err) = run(bin(d).args(["ingest", "in.jsonl"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(bin(d).args(["policy", "adopt"]));
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = run(bin(d).args(["policy", "adopt", "--force"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("WITHOUT a passing validation (--force)"),
        "{out}"
    );
    let kinds = audit_kinds(&db);
    let last = &kinds.last().unwrap().1;
    assert_eq!(last["forced"], true);
    assert_eq!(last["confidence_threshold"], 0.6);
    assert_eq!(last["previous"]["confidence_threshold"], 0.8);
    let (code, _, err) = run(bin(d).args(["ingest", "in.jsonl"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(bin(d).args(["policy"]));
    assert!(
        out.contains("stands on    nothing: taken into force with --force"),
        "{out}"
    );
    assert_eq!(code, 0);

    // Turning auto-approval off needs no evidence.
    config(d, "[policy]\nconfidence_threshold = 0.6\n");
    let (code, _, err) = run(bin(d).args(["ingest", "in.jsonl"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(bin(d).args(["audit", "verify"]));
    assert_eq!(code, 0, "{out}{err}");
}
