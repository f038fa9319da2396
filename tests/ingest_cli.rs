//! `signoff ingest` end to end through the real binary: hostile input, formats, exit codes,
//! quarantine, and `show --json` keeping every byte of the text.
mod common;

use std::io::Write;
use std::process::Stdio;

use common::{db_path, open, run, signoff};
use serde_json::{Value, json};

fn line(ext: &str, extra: Value) -> String {
    common::request(ext, extra).to_string()
}

#[test]
fn hostile_jsonl_reports_every_broken_line_and_takes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let big_body: String = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. \n"
        .repeat(2 * 1024 * 1024 / 58 + 1);
    assert!(big_body.len() >= 2 * 1024 * 1024);
    let token = "x".repeat(10_000);
    let lines = [
        /* 1 */
        line(
            "esc",
            json!({"raw": {"body": "Hello \u{1b}[31mRED\u{1b}[0m \u{1b}]0;pwned\u{7} \u{9b}2J \u{202e}fdp.exe"}}),
        ),
        /* 2 */ line("big", json!({"raw": {"body": big_body}})),
        /* 3 */ line("token", json!({"raw": {"subject": token}})),
        /* 4 */ line("conf-str", json!({"ai": {"confidence": "high"}})),
        /* 5 */
        "{\"source\": \"webform\", \"external_id\": \"broken-1\", \"ai\": {".to_string(),
        /* 6 */ line("conf-big", json!({"ai": {"confidence": 1.3}})),
        /* 7 */ line("intent", json!({"ai": {"intent": "refund"}})),
        /* 8 */
        {
            let mut v = common::request("empty-ai", json!({}));
            v["ai"] = json!({});
            v.to_string()
        },
        /* 9 */ "[1, 2, 3]".to_string(),
        /* 10 */
        line(
            "esc",
            json!({"raw": {"body": "Hello \u{1b}[31mRED\u{1b}[0m \u{1b}]0;pwned\u{7} \u{9b}2J \u{202e}fdp.exe"}}),
        ),
        /* 11 */ String::new(),
        /* 12 */ "{\"source\": \"webform\", \"ai\": {}}".to_string(),
        /* 13 */ line("conf-null", json!({"ai": {"confidence": null}})),
        /* 14 */
        line(
            "cjk",
            json!({"raw": {"from": "山田 太郎 <taro@example.jp>", "body": "👩‍👩‍👧 مرحبا"}}),
        ),
    ];
    let file = dir.path().join("hostile.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (code, stdout, stderr) = run(signoff(dir.path()).arg("ingest").arg(&file));
    assert_eq!(
        code, 3,
        "some lines were rejected\nstdout: {stdout}\nstderr: {stderr}"
    );
    let f = file.display().to_string();
    let reported: Vec<&str> = stderr.lines().collect();
    assert_eq!(reported.len(), 3, "{stderr}");
    assert!(
        reported[0].starts_with(&format!("{f}:5: not valid JSON: EOF")),
        "{stderr}"
    );
    assert_eq!(
        reported[1],
        format!("{f}:9: not a JSON object (found an array)")
    );
    assert_eq!(
        reported[2],
        format!("{f}:12: missing required field 'external_id'")
    );
    assert_eq!(
        stdout.trim(),
        "ingested 9, duplicates 1, revised 0, rejected 3"
    );
    assert!(!stderr.contains('\u{1b}'), "reports are sanitized");

    let store = open(&db_path(dir.path()));
    let quarantined: Vec<(i64, String)> = store
        .connection()
        .prepare("SELECT line, raw FROM quarantine ORDER BY line")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        quarantined.iter().map(|q| q.0).collect::<Vec<_>>(),
        [5, 9, 12]
    );
    assert_eq!(quarantined[1].1, "[1, 2, 3]", "raw text kept");

    // The 2 MB body comes back byte-identical.
    let id: i64 = store
        .connection()
        .query_row(
            "SELECT id FROM requests WHERE external_id = 'big'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (code, out, _) = run(signoff(dir.path()).args(["show", "--json", &id.to_string()]));
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown["payload"]["raw"]["body"].as_str().unwrap().as_bytes(),
        big_body.as_bytes()
    );

    // Escape sequences: kept verbatim in JSON (escaped), neutralised in tables, badged.
    let (_, out, _) = run(signoff(dir.path()).args(["show", "--json", "1"]));
    assert!(!out.contains('\u{1b}') && !out.contains('\u{9b}') && !out.contains('\u{202e}'));
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown["payload"]["raw"]["body"],
        "Hello \u{1b}[31mRED\u{1b}[0m \u{1b}]0;pwned\u{7} \u{9b}2J \u{202e}fdp.exe"
    );
    assert_eq!(shown["hidden_chars"], true);
    let (_, table, _) = run(signoff(dir.path()).args(["show", "1"]));
    assert!(!table.contains('\u{1b}') && !table.contains('\u{7}') && !table.contains('\u{202e}'));
    assert!(table.contains("␛[31mRED"), "{table}");
    assert!(table.contains("hidden characters"));

    // Invalid values are kept and flagged.
    let flags = |ext: &str| -> Vec<String> {
        let id: i64 = store
            .connection()
            .query_row(
                "SELECT id FROM requests WHERE external_id = ?1",
                [ext],
                |r| r.get(0),
            )
            .unwrap();
        let (_, out, _) = run(signoff(dir.path()).args(["show", "--json", &id.to_string()]));
        let v: Value = serde_json::from_str(&out).unwrap();
        v["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(flags("conf-str"), ["confidence \"high\" is not a number"]);
    assert_eq!(flags("conf-big"), ["confidence 1.3 is outside 0..1"]);
    assert_eq!(
        flags("intent"),
        ["intent 'refund' is not an allowed intent"]
    );
    assert_eq!(
        flags("empty-ai"),
        [
            "intent is missing",
            "priority is missing",
            "summary is missing"
        ]
    );
    assert!(
        flags("conf-null").is_empty(),
        "a null confidence is unknown, not invalid"
    );

    let (code, list, _) = run(signoff(dir.path()).arg("list"));
    assert_eq!(code, 0);
    assert_eq!(list.lines().count(), 10, "header + 9 items\n{list}");
    assert!(!list.contains('\u{1b}'));
    assert!(
        list.lines().all(|l| l.chars().count() < 400),
        "the 10,000-char token is cut"
    );
}

#[test]
fn arrays_pretty_objects_and_stdin_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let array = format!(
        "\n\n[\n  {},\n  {},\n  42,\n  {}\n]\n",
        line("a1", json!({})),
        serde_json::to_string_pretty(&common::request("a2", json!({}))).unwrap(),
        line("a3", json!({}))
    );
    let f = dir.path().join("batch.json");
    std::fs::write(&f, array).unwrap();
    let pretty = dir.path().join("one.json");
    std::fs::write(
        &pretty,
        format!(
            "{}\n{}\n",
            serde_json::to_string_pretty(&common::request("p1", json!({}))).unwrap(),
            serde_json::to_string_pretty(&common::request("p2", json!({}))).unwrap()
        ),
    )
    .unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("ingest").arg(&f).arg(&pretty));
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        out.trim(),
        "ingested 5, duplicates 0, revised 0, rejected 1"
    );
    let line_of_42 = err.lines().next().unwrap();
    assert!(
        line_of_42.ends_with("batch.json:24: not a JSON object (found a number)"),
        "{err}"
    );

    let mut child = signoff(dir.path())
        .args(["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n{}\n", line("s1", json!({})), line("a1", json!({}))).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ingested 1, duplicates 1, revised 0, rejected 0"
    );
}

#[test]
fn revisions_and_conflicts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.jsonl");
    std::fs::write(&f, line("r", json!({}))).unwrap();
    assert_eq!(run(signoff(dir.path()).arg("ingest").arg(&f)).0, 0);
    std::fs::write(&f, line("r", json!({"ai": {"summary": "changed"}}))).unwrap();
    let (code, out, _) = run(signoff(dir.path()).arg("ingest").arg(&f));
    assert_eq!(
        (code, out.trim()),
        (0, "ingested 0, duplicates 0, revised 1, rejected 0")
    );
    // A decision on the revision read before the new one came is refused, and leaves the
    // item unclaimed and undecided.
    let (code, out, err) =
        run(signoff(dir.path()).args(["decide", "1", "--reject", "spam", "--revision", "1"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(
            "item 1 changed since you opened it (revision 1 → 2); reopen it to see the new version; nothing was changed"
        ),
        "{err}"
    );
    let (_, shown, _) = run(signoff(dir.path()).args(["show", "1", "--json"]));
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        (shown["state"].as_str(), shown["revision"].as_i64()),
        (Some("pending"), Some(2))
    );
    // Without --revision: the revision the command reads as it loads the item.
    let (code, out, err) =
        run(signoff(dir.path()).args(["decide", "1", "--reject", "spam", "--note", "bot"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("item 1 rejected"), "{out}");
    std::fs::write(&f, line("r", json!({"ai": {"summary": "third"}}))).unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("ingest").arg(&f));
    assert_eq!(code, 3);
    assert!(
        err.contains(":1: conflict: item 1 (webform / r) is already rejected"),
        "{err}"
    );
    assert_eq!(
        out.trim(),
        "ingested 0, duplicates 0, revised 0, rejected 0, conflicts 1"
    );
}

#[test]
fn a_missing_file_fails_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(signoff(dir.path()).args(["ingest", "/nonexistent/x.jsonl"]));
    assert_eq!(code, 1);
    assert!(err.contains("cannot read /nonexistent/x.jsonl"), "{err}");
}

/// The object the upstream triage service in the field returns, exactly, wrapped with the
/// natural key and the raw request.
fn case_study(ext: &str, crm_update_required: bool) -> Value {
    json!({
        "source": "field-triage",
        "external_id": ext,
        "raw": {"channel": "email", "from": "Priya Nair <priya@harbor-freight.example>",
                "subject": "Driver app keeps logging out",
                "body": "Since the update our drivers get logged out every hour. Can you help?"},
        "ai": {
            "summary": "Customer reports the driver app logs drivers out every hour since the last update.",
            "intent": "support_request",
            "priority": "medium",
            "recommended_next_step": "Check the session timeout setting for the account and reply with a fix.",
            "crm_update_required": crm_update_required,
            "human_review_required": true
        }
    })
}

/// `(action, status)` of every outbox row of an item.
fn outbox(dir: &std::path::Path, id: i64) -> Vec<(String, String)> {
    let store = open(&db_path(dir));
    store
        .outbox_rows(id)
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.status))
        .collect()
}

#[test]
fn the_case_study_object_ingests_unflagged_and_approves_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("case.json");
    std::fs::write(&file, case_study("cs-1", true).to_string()).unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("ingest").arg(&file));
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = run(signoff(dir.path()).args(["show", "1", "--json"]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["flags"], json!([]), "{v}");
    assert_eq!(v["fields"]["priority"], "medium");
    assert_eq!(v["crm_update_required"], true);
    assert_eq!(v["human_review_required"], true);
    assert!(v.get("priority_sent").is_none(), "{v}");
    let (_, list, _) = run(signoff(dir.path()).args(["list", "--json"]));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["flag_count"], 0, "{list}");

    let (code, out, _) = run(signoff(dir.path()).args(["show", "1"]));
    assert_eq!(code, 0);
    assert!(
        out.lines().any(
            |l| l.starts_with("AI flags") && l.ends_with("CRM update: yes · human review: yes")
        ),
        "{out}"
    );
    assert!(!out.contains("Flag "), "{out}");

    // No --set: approved as it came; no draft reply, so no Gmail draft (not a refusal).
    let (code, out, err) = run(signoff(dir.path()).args(["decide", "1", "--approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("item 1 approved, queued: crm;"), "{out}");
    assert!(
        out.contains("not queued: gmail: no Gmail draft: the AI wrote none"),
        "{out}"
    );
    assert_eq!(
        outbox(dir.path(), 1),
        [("crm".to_string(), "queued".to_string())]
    );
}

#[test]
fn crm_update_required_false_queues_no_crm_action() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("case.json");
    let mut with_draft = case_study("cs-2", false);
    with_draft["ai"]["draft_reply"] = json!("Hi Priya, we are looking into it.");
    std::fs::write(
        &file,
        format!("{}\n{}\n", case_study("cs-1", false), with_draft),
    )
    .unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("ingest").arg(&file));
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = run(signoff(dir.path()).args(["show", "1", "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["crm_update_required"], false);
    let (_, out, _) = run(signoff(dir.path()).args(["show", "1"]));
    assert!(out.contains("CRM update: no · human review: yes"), "{out}");

    let (code, out, err) = run(signoff(dir.path()).args(["decide", "1", "--approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("not queued: crm: no CRM update: the AI set crm_update_required to false"),
        "{out}"
    );
    assert!(outbox(dir.path(), 1).is_empty());

    let (code, out, err) = run(signoff(dir.path()).args(["decide", "2", "--approve"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("queued: gmail;"), "{out}");
    assert_eq!(
        outbox(dir.path(), 2),
        [("gmail".to_string(), "queued".to_string())]
    );
    let store = open(&db_path(dir.path()));
    let crm_rows: i64 = common::count(&store, "SELECT COUNT(*) FROM outbox WHERE action = 'crm'");
    assert_eq!(crm_rows, 0);
}

#[test]
fn a_priority_alias_is_read_and_shown_beside_the_value_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alias.json");
    let mut v = case_study("cs-3", true);
    v["ai"]["priority"] = json!("Normal");
    let mut upper = case_study("cs-4", true);
    upper["ai"]["priority"] = json!("HIGH");
    std::fs::write(&file, format!("{v}\n{upper}\n")).unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("ingest").arg(&file));
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = run(signoff(dir.path()).args(["show", "1", "--json"]));
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["flags"], json!([]), "{j}");
    assert_eq!(j["fields"]["priority"], "medium");
    assert_eq!(j["priority_sent"], "Normal");
    assert_eq!(
        j["payload"]["ai"]["priority"], "Normal",
        "the payload is kept as sent"
    );
    let (_, out, _) = run(signoff(dir.path()).args(["show", "1"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("Priority") && l.ends_with(r#"medium (sent "Normal")"#)),
        "{out}"
    );
    // Listed, sorted and filtered as the priority it was read as: HIGH before medium.
    let (_, out, _) = run(signoff(dir.path()).args(["list", "--json"]));
    let list: Value = serde_json::from_str(&out).unwrap();
    let order: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["external_id"].as_str().unwrap(),
                i["priority"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [("cs-4", "high"), ("cs-3", "medium")]);
    let (code, out, err) = run(signoff(dir.path()).args(["decide", "1", "--approve"]));
    assert_eq!(code, 0, "{out}{err}");
}
