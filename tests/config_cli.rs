//! Configuration through the binary: the example, errors with file/line/key, precedence
//! and provenance, secrets masked, resolved paths.
mod common;

use common::{run, signoff};
use signoff::config::{Config, EXAMPLE};

#[test]
fn config_example_prints_config_example_toml_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(signoff(dir.path()).args(["config", "example"]));
    assert_eq!(code, 0);
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    assert_eq!(out, file);
}

#[test]
fn the_example_parses_and_documents_the_defaults() {
    let parsed: Config = toml::from_str(EXAMPLE).expect("the example is valid config");
    let defaults = Config::default();
    // Sections whose example shows the defaults must equal them exactly.
    assert_eq!(parsed.store, defaults.store);
    assert_eq!(parsed.policy, defaults.policy);
    assert_eq!(parsed.log, defaults.log);
    assert_eq!(parsed.ui, defaults.ui);
    assert_eq!(parsed.server.bind, defaults.server.bind);
    // Every default key is mentioned (set or commented) in the example.
    let value = toml::Value::try_from(&defaults).unwrap();
    for key in signoff::config::leaf_keys(&value) {
        let last = key.rsplit('.').next().unwrap();
        assert!(
            EXAMPLE.contains(&format!("{last} =")) || EXAMPLE.contains(&format!("[{key}]")),
            "config.example.toml does not document `{key}`"
        );
    }
}

#[test]
fn an_unknown_key_names_file_line_key_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[policy]\nconfidence_threshold = 0.8\nlease_secs = 60\n",
    )
    .unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2, "{err}");
    let c = cfg.display().to_string();
    assert!(
        err.contains(&format!("config error in {c}:3: key `policy.lease_secs`")),
        "{err}"
    );
    assert!(
        err.contains("unknown field `lease_secs`") && err.contains("lease_seconds"),
        "{err}"
    );
}

#[test]
fn a_wrong_type_and_a_contradiction_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[store]\ndurability = \"sometimes\"\n").unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2);
    assert!(
        err.contains(":2: key `store.durability`")
            && err.contains("full")
            && err.contains("normal"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "# team policy\n[policy]\nintents = [\"sales_lead\", \"other\"]\n\n[policy.review]\nintents = [\"complaint\"]\n",
    )
    .unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2);
    assert!(err.contains(":6: key `policy.review.intents`"), "{err}");
    assert!(
        err.contains("'complaint' is not an allowed intent; allowed: sales_lead, other"),
        "{err}"
    );
}

#[test]
fn an_explicit_config_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(signoff(dir.path()).args(["--config", "/nope/signoff.toml", "info"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("/nope/signoff.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn precedence_is_flags_then_env_then_file_then_defaults_and_print_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_dir = dir.path().join("config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(
        cfg_dir.join("config.toml"),
        "remote_token = \"hunter2\"\n[reviewer]\nname = \"from-file\"\n[policy]\nlease_seconds = 120\nundo_seconds = 10\n[server]\nwebhook_secret = \"env:SIGNOFF_TEST_WEBHOOK\"\n",
    )
    .unwrap();
    let (code, out, err) = run(signoff(dir.path())
        .env("SIGNOFF_POLICY__LEASE_SECONDS", "90")
        .env("SIGNOFF_REVIEWER", "from-env")
        .env("SIGNOFF_TEST_WEBHOOK", "whsec-very-secret")
        .args(["--reviewer", "from-flag", "config", "print"]));
    assert_eq!(code, 0, "{err}");
    let line = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{k} = ")))
            .unwrap_or_else(|| panic!("no {k} in\n{out}"))
            .to_string()
    };
    assert!(line("name").contains("\"from-flag\"") && line("name").contains("# flag --reviewer"));
    assert!(
        line("lease_seconds").contains("90")
            && line("lease_seconds").contains("# env SIGNOFF_POLICY__LEASE_SECONDS")
    );
    assert!(line("undo_seconds").contains("10") && line("undo_seconds").contains("# file "));
    assert!(line("confidence_threshold").contains("# default"));
    assert!(
        !out.contains("hunter2") && !out.contains("whsec-very-secret"),
        "{out}"
    );
    assert!(
        line("webhook_secret").contains("env:SIGNOFF_TEST_WEBHOOK (set)"),
        "{out}"
    );
    assert!(line("remote_token").contains("******** (inline)"), "{out}");
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(signoff(dir.path())
        .env("SIGNOFF_POLICY__CONFIDENCE_THRESHOLD", "very")
        .arg("info"));
    assert_eq!(code, 2);
    assert!(
        err.contains("environment variable SIGNOFF_POLICY__CONFIDENCE_THRESHOLD"),
        "{err}"
    );
    let (code, _, err) = run(signoff(dir.path())
        .env("SIGNOFF_POLICY__CONFIDENCE_THRESHOLD", "3")
        .arg("info"));
    assert_eq!(code, 2);
    assert!(err.contains("3 is outside 0..1"), "{err}");
}

#[test]
fn info_prints_every_resolved_path() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(signoff(dir.path()).arg("info"));
    assert_eq!(code, 0);
    let root = dir.path().display().to_string();
    for (label, path) in [
        ("config file", format!("{root}/config/config.toml")),
        ("themes dir", format!("{root}/config/themes")),
        ("data dir", format!("{root}/data")),
        ("database", format!("{root}/data/queue.db")),
        ("logs", format!("{root}/data/state/logs")),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(label) && l.contains(&path)),
            "{label} {path} missing in\n{out}"
        );
    }
    // The Unix user from the uid, not $USER (the tests set USER=tester).
    assert!(
        out.contains(&format!("reviewer     {}", signoff::identity::os_user())),
        "{out}"
    );
}

#[test]
fn the_db_flag_works_everywhere_and_logs_go_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("elsewhere.db");
    let f = dir.path().join("a.jsonl");
    std::fs::write(&f, common::request("x", serde_json::json!({})).to_string()).unwrap();
    let (code, out, _) = run(signoff(dir.path())
        .arg("--db")
        .arg(&db)
        .arg("ingest")
        .arg(&f));
    assert_eq!(code, 0, "{out}");
    assert!(db.exists());
    let (_, out, _) = run(signoff(dir.path())
        .arg("--db")
        .arg(&db)
        .args(["list", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, out, _) = run(signoff(dir.path()).args(["list", "--json"]));
    assert_eq!(out.trim(), "[]", "the default db is another file");
    let logs = dir.path().join("data/state/logs");
    let names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("signoff") && n.ends_with(".log")),
        "{names:?}"
    );
}

/// `config print`'s line for a key (`rest = value   # source`), by its text before ` = `.
fn print_line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"))
}

#[test]
fn a_file_overrides_only_the_keys_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[policy.sla_minutes]\nurgent = 10\n").unwrap();
    let (code, out, err) = run(signoff(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["config", "print"]));
    assert_eq!(code, 0, "{err}");
    let urgent = print_line(&out, "sla_minutes.urgent");
    assert!(
        urgent.contains("= 10") && urgent.contains("# file "),
        "{urgent}"
    );
    for (p, m) in [("high", 60), ("medium", 240), ("low", 1440)] {
        let l = print_line(&out, &format!("sla_minutes.{p}"));
        assert!(
            l.contains(&format!("= {m}")) && l.contains("# default"),
            "{l}"
        );
    }
}

#[test]
fn an_empty_action_list_for_one_intent_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[policy.actions]\nother = []\n").unwrap();
    let (code, out, err) = run(signoff(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["config", "print"]));
    assert_eq!(code, 0, "{err}");
    assert!(print_line(&out, "actions.other").contains("= []"), "{out}");
    assert!(
        print_line(&out, "actions.sales_lead").contains(r#"["crm", "slack", "gmail"]"#),
        "{out}"
    );
    assert!(
        print_line(&out, "actions.support_request").contains(r#"["crm", "gmail"]"#),
        "{out}"
    );
    // The same through the library: the loaded policy has every other intent's actions.
    let loaded = signoff::config::load_with(
        &signoff::config::Flags {
            config: Some(cfg),
            ..Default::default()
        },
        &[],
    )
    .unwrap();
    let policy = &loaded.config.policy;
    assert!(policy.actions_for("other").is_empty());
    assert_eq!(policy.actions_for("complaint").len(), 3);
}

#[test]
fn a_type_error_names_the_users_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("team.toml");
    let c = cfg.display().to_string();
    std::fs::write(
        &cfg,
        "# team overrides\n[policy]\nundo_seconds = 20\n\n[policy.sla_minutes]\nurgent = \"soon\"\n",
    )
    .unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "config error in {c}:6: key `policy.sla_minutes.urgent`"
        )),
        "{err}"
    );
    // A table the defaults complete is no error; a wrong value in it is, at its line.
    std::fs::write(
        &cfg,
        "[actions.monday.columns.priority]\nvalue = \"{{ fields.priority }}!\"\n",
    )
    .unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 0, "{err}");
    std::fs::write(&cfg, "[actions.monday.columns.priority]\n\nvalue = 5\n").unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{c}:3: key `actions.monday.columns.priority.value`"
        )),
        "{err}"
    );
    // Replacing the priorities drops the default SLAs of the ones left out, silently; an
    // SLA the user wrote for a priority they left out is theirs, reported at its line.
    std::fs::write(&cfg, "[policy]\npriorities = [\"p1\", \"p2\"]\n").unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        &cfg,
        "[policy]\npriorities = [\"p1\", \"p2\"]\n[policy.sla_minutes]\np1 = 5\nurgent = 5\n",
    )
    .unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{c}:5: key `policy.sla_minutes.urgent`"))
            && err.contains("'urgent' is not an allowed priority; allowed: p1, p2"),
        "{err}"
    );
}

#[test]
fn config_print_has_no_empty_header_and_masks_only_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[actions.slack]\ntoken = \"xoxb-inline-secret\"\n[actions.gmail]\nrefresh_token = \"1//refresh-secret\"\ntoken_url = \"https://oauth.example/token\"\n",
    )
    .unwrap();
    let (code, out, err) = run(signoff(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["config", "print"]));
    assert_eq!(code, 0, "{err}");
    assert!(!out.lines().any(|l| l.trim() == "[]"), "{out}");
    // Every header names a section.
    for l in out.lines().filter(|l| l.starts_with('[')) {
        assert!(l.len() > 2 && l.ends_with(']'), "{l}");
    }
    assert!(out.contains("\n[reviewer]\n"), "{out}");
    assert!(
        print_line(&out, "gmail.token_url").contains("\"https://oauth.example/token\""),
        "{out}"
    );
    assert!(
        !out.contains("xoxb-inline-secret") && !out.contains("refresh-secret"),
        "{out}"
    );
    assert!(
        print_line(&out, "slack.token").contains("******** (inline)"),
        "{out}"
    );
    assert!(
        print_line(&out, "gmail.refresh_token").contains("******** (inline)"),
        "{out}"
    );
    // The default token_url, not set by the user, is shown as it is too.
    let (_, out, _) = run(signoff(dir.path()).args(["config", "print"]));
    assert!(
        print_line(&out, "gmail.token_url").contains("\"https://oauth2.googleapis.com/token\""),
        "{out}"
    );
}

#[test]
fn saved_views_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[[ui.views]]\nname = \"urgent billing\"\nfilter = \"p:urgent intent:billing_question\"\nsort = \"age desc\"\n",
    )
    .unwrap();
    let (code, out, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(
        &cfg,
        "[[ui.views]]\nname = \"x\"\nfilter = \"prio:high\"\nsort = \"colour\"\n",
    )
    .unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2);
    assert!(
        err.contains("ui.views[0].filter") && err.contains("unknown filter 'prio:'"),
        "{err}"
    );
    std::fs::write(&cfg, "[[ui.views]]\nname = \"x\"\nsort = \"colour\"\n").unwrap();
    let (code, _, err) = run(signoff(dir.path()).arg("--config").arg(&cfg).arg("info"));
    assert_eq!(code, 2);
    assert!(
        err.contains("ui.views[0].sort") && err.contains("cannot sort by 'colour'"),
        "{err}"
    );
}
