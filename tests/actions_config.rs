//! The `[actions]` example in config.example.toml is `actions::EXAMPLE` verbatim, and
//! config problems name their key and what is allowed.
use signoff::actions::{ActionsConfig, EXAMPLE, Mode, check_config};
use signoff::secret::Secret;

#[test]
fn config_example_toml_holds_the_actions_example_verbatim() {
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    assert!(
        file.contains(EXAMPLE),
        "paste signoff::actions::EXAMPLE into config.example.toml"
    );
}

#[test]
fn live_mode_names_missing_targets_but_not_unreadable_secrets() {
    let mut cfg = ActionsConfig {
        mode: Mode::Live,
        ..ActionsConfig::default()
    };
    cfg.monday.token = Some(Secret::new("env:SIGNOFF_TEST_UNSET_MONDAY_TOKEN"));
    cfg.slack.token = Some(Secret::new("xoxb-inline"));
    cfg.slack
        .intent_channels
        .insert("complaint".into(), "complaints".into());
    cfg.monday.columns.get_mut("status").unwrap().value = "{{ fields.intnt }}".into();
    let errs = check_config(&cfg);
    let find = |k: &str| {
        errs.iter()
            .find(|(key, _)| key == k)
            .map(|(_, m)| m.clone())
    };
    assert!(
        find("actions.monday.token").is_none(),
        "an unreadable secret is not a config error (reviewers run without it): {errs:?}"
    );
    assert!(
        find("actions.monday.board_id")
            .unwrap()
            .contains("required in live mode")
    );
    assert!(find("actions.slack.default_channel").is_some());
    assert!(
        find("actions.slack.intent_channels.complaint")
            .unwrap()
            .contains("not a Slack channel ID")
    );
    assert!(
        find("actions.monday.columns.status.value")
            .unwrap()
            .contains("undefined"),
        "{errs:?}"
    );
    // Nothing in the messages is a secret value.
    assert!(!format!("{errs:?}").contains("xoxb-inline"));
}
