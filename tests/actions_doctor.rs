//! `signoff doctor` against the fakes: says what works and exactly what is wrong.
mod support;

use signoff::actions::{ColumnMap, ColumnType, DoctorStatus, doctor};
use signoff::secret::Secret;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_setup_passes_every_check() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.slack.default_channel = support::slack::GENERAL.into();
    let report = doctor(&cfg).await;
    let text: Vec<String> = report.iter().map(ToString::to_string).collect();
    assert!(
        report.iter().all(|c| c.status == DoctorStatus::Ok),
        "{text:#?}"
    );
    for want in [
        "monday: token works",
        "monday: board",
        "monday: column text_ext_id",
        "slack: channel C0URGENT01",
        "gmail: scope",
        "gmail: mailbox",
    ] {
        assert!(
            text.iter().any(|t| t.contains(want)),
            "missing '{want}' in {text:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_are_named_precisely() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.monday.columns.insert(
        "status".into(),
        ColumnMap {
            kind: ColumnType::Date,
            value: "{{ fields.intent }}".into(),
        },
    );
    cfg.monday.columns.insert(
        "nope".into(),
        ColumnMap {
            kind: ColumnType::Text,
            value: "x".into(),
        },
    );
    cfg.slack
        .channels
        .insert("low".into(), support::slack::OUTSIDE.into());
    cfg.gmail.refresh_token = Some(Secret::new("1//revoked"));
    let report = doctor(&cfg).await;
    let fails: Vec<String> = report
        .iter()
        .filter(|c| c.status == DoctorStatus::Fail)
        .map(ToString::to_string)
        .collect();
    let has = |s: &str| fails.iter().any(|f| f.contains(s));
    assert!(
        has("column status — is a status column, the mapping says date"),
        "{fails:#?}"
    );
    assert!(
        has("column nope — not on the board; columns:"),
        "{fails:#?}"
    );
    assert!(has("the bot is not in #outside: invite it"), "{fails:#?}");
    assert!(has("invalid_grant") && has("re-authorize"), "{fails:#?}");

    // Wrong monday token; no Slack or Gmail credentials at all.
    cfg.monday.token = Some(Secret::new("wrong"));
    cfg.slack.token = None;
    cfg.gmail.client_id = None;
    let report = doctor(&cfg).await;
    let text: Vec<String> = report.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|t| t.contains("[FAIL] monday: token works — monday rejected the token (HTTP 401")), "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.starts_with("[skip] slack: credentials")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("[skip] gmail: credentials")),
        "{text:#?}"
    );
}
