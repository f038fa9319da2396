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
        "[reviewer]\nname = \"from-file\"\n[policy]\nlease_seconds = 120\nundo_seconds = 10\n[server]\ntokens = [{ reviewer = \"ana\", token = \"hunter2\" }]\nwebhook_secret = \"env:SIGNOFF_TEST_WEBHOOK\"\n",
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
    assert!(line("tokens").contains("values hidden"), "{out}");
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
