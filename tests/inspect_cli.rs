//! The command line does what the console shows: the outbox by status or item, the
//! quarantine, shell completions, the man page, and `stats --since` with a date.
mod common;

use common::*;
use serde_json::{Value, json};

/// A database with two approved items (their actions queued), one of them made a dead
/// letter, and one input quarantined.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    let lines = [
        request("a-1", json!({})).to_string(),
        request("a-2", json!({})).to_string(),
        "{\"source\": \"webform\"".to_string(),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("ingest").arg(&file));
    assert_eq!(code, 3, "one bad line: partly done\n{out}{err}");
    for id in ["1", "2"] {
        let (code, out, err) = run(signoff(dir.path()).args(["decide", id, "--approve"]));
        assert_eq!(code, 0, "{out}{err}");
    }
    let store = open(&db_path(dir.path()));
    store
        .connection()
        .execute(
            "UPDATE outbox SET status = 'dead', attempts = 5, last_error = 'monday said no'
             WHERE request_id = 2 AND action = 'crm'",
            [],
        )
        .unwrap();
    dir
}

fn json_of(args: &[&str], dir: &std::path::Path) -> Value {
    let (code, out, err) = run(signoff(dir).args(args));
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn outbox_lists_by_status_and_item() {
    let dir = setup();
    let dead = json_of(&["outbox", "--status", "dead", "--json"], dir.path());
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["item"], 2);
    assert_eq!(dead[0]["action"], "crm");
    assert_eq!(dead[0]["last_error"], "monday said no");
    let all = json_of(&["outbox", "--json"], dir.path());
    assert!(all.as_array().unwrap().len() >= 3, "{all}");
    let one = json_of(&["outbox", "--item", "1", "--json"], dir.path());
    assert!(
        one.as_array().unwrap().iter().all(|r| r["item"] == 1),
        "{one}"
    );
    let (code, out, _) = run(signoff(dir.path()).args(["outbox", "--status", "dead"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("ID"), "{out}");
    assert!(out.contains("monday said no"), "{out}");
    let (code, _, err) = run(signoff(dir.path()).args(["outbox", "--status", "lost"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn quarantine_lists_and_shows() {
    let dir = setup();
    let list = json_of(&["quarantine", "list", "--json"], dir.path());
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["line"], 3);
    assert!(list[0]["origin"].as_str().unwrap().ends_with("in.jsonl"));
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let one = json_of(&["quarantine", "show", &id, "--json"], dir.path());
    assert_eq!(one["raw"], "{\"source\": \"webform\"");
    let (code, out, _) = run(signoff(dir.path()).args(["quarantine", "show", &id]));
    assert_eq!(code, 0);
    assert!(out.contains("reason") && out.contains(":3"), "{out}");
    let (code, _, err) = run(signoff(dir.path()).args(["quarantine", "show", "99"]));
    assert_eq!(code, 1);
    assert!(err.contains("no quarantined input 99"), "{err}");
}

#[test]
fn completions_and_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(signoff(dir.path()).args(["completions", "bash"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("_signoff()") && out.contains("complete -F"),
        "{out}"
    );
    assert!(
        out.contains("quarantine") && out.contains("outbox"),
        "{out}"
    );
    for shell in ["zsh", "fish"] {
        let (code, out, _) = run(signoff(dir.path()).args(["completions", shell]));
        assert_eq!(code, 0);
        assert!(out.contains("signoff"), "{shell}");
    }
    let (code, out, _) = run(signoff(dir.path()).arg("man"));
    assert_eq!(code, 0);
    assert!(out.contains(".TH signoff"), "{out}");
}

#[test]
fn stats_since_takes_a_date() {
    let dir = setup();
    let s = json_of(&["stats", "--since", "2026-01-01", "--json"], dir.path());
    assert!(s.is_object(), "{s}");
    let (code, _, err) = run(signoff(dir.path()).args(["stats", "--since", "2026-13-01"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("or a date (2026-12-01)"), "{err}");
}

#[test]
fn pause_and_resume_turn_the_kill_switch_for_everyone_on_the_database() {
    let dir = setup();
    let paused = |dir: &std::path::Path| open(&db_path(dir)).actions_paused().unwrap();
    assert!(!paused(dir.path()));
    let (code, out, err) = run(signoff(dir.path()).arg("pause"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(paused(dir.path()), "{out}");
    // The dispatcher sends nothing while it is on.
    let (code, out, err) = run(signoff(dir.path()).args(["dispatch", "--once"]));
    assert!(code == 0 || code == 3, "{out}{err}");
    assert!(out.contains("paused"), "{out}");
    let (code, out, err) = run(signoff(dir.path()).arg("resume"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!paused(dir.path()));
}

#[test]
fn resend_dead_asks_first_and_queues_every_dead_letter_with_yes() {
    let dir = setup();
    let dead = |dir: &std::path::Path| {
        json_of(&["outbox", "--status", "dead", "--json"], dir)
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(dead(dir.path()), 1);
    // No terminal to ask at and no --yes: nothing is sent.
    let (code, out, err) = run(signoff(dir.path()).args(["resend", "--dead"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("1 dead letter; nothing sent: add --yes"),
        "{err}"
    );
    assert_eq!(dead(dir.path()), 1);
    let sent = json_of(&["resend", "--dead", "--yes", "--json"], dir.path());
    assert_eq!(sent.as_array().unwrap().len(), 1, "{sent}");
    assert_eq!(sent[0]["queued"], true, "{sent}");
    assert_eq!(dead(dir.path()), 0);
    let (code, out, _) = run(signoff(dir.path()).args(["resend", "--dead", "--yes"]));
    assert_eq!((code, out.trim()), (0, "no dead letters"));
    // Ids and --dead do not mix; --yes needs --dead.
    let (code, _, _) = run(signoff(dir.path()).args(["resend", "7", "--dead"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(signoff(dir.path()).args(["resend", "7", "--yes"]));
    assert_eq!(code, 2);
}

#[test]
fn show_says_when_each_waiting_action_is_tried_next() {
    let dir = setup();
    let (code, out, err) = run(signoff(dir.path()).args(["show", "1"]));
    assert_eq!(code, 0, "{err}");
    let actions: Vec<&str> = out.lines().filter(|l| l.contains("Action")).collect();
    assert!(!actions.is_empty(), "{out}");
    // Approved a moment ago: each waits out the undo window.
    for l in &actions {
        assert!(l.contains("queued") && l.contains("next attempt in"), "{l}");
    }
    // The dead one says why, and is not "next".
    let (_, out, _) = run(signoff(dir.path()).args(["show", "2"]));
    let dead = out
        .lines()
        .find(|l| l.contains("dead"))
        .expect("the dead action");
    assert!(
        dead.contains("monday said no") && !dead.contains("next attempt"),
        "{dead}"
    );
}
