//! The real binary end to end against the fakes: `signoff ingest`, `signoff decide
//! --approve`, `signoff dispatch --once` and `signoff doctor`, with credentials given as
//! `env:` references.
mod common;
mod support;

use common::{db_path, run, signoff};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_approve_dispatch_through_the_binary() {
    let f = Fakes::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &f, "live");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n",
            payload(
                "cli-1",
                "sales_lead",
                "high",
                "Ada <ada@example.com>",
                "Pricing",
                "Hello Ada"
            )
        ),
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        let (c, o, e) = run(signoff(&d).arg("ingest").arg(&input));
        assert_eq!(c, 0, "{o}{e}");
        // A reviewer without the dispatcher's credentials approves: rendering needs none.
        run(signoff(&d).args(["decide", "1", "--approve"]))
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let d = dir.path().to_path_buf();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(with_secrets(signoff(&d)).args(["dispatch", "--once"]))
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 sent"), "{out}");
    assert_eq!(
        f.with(|w| (
            w.monday.items.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len()
        )),
        (1, 1, 1)
    );
    let store =
        signoff::store::Store::open(&db_path(dir.path()), policy(), &Default::default()).unwrap();
    assert!(rows(&store).iter().all(|r| r.1 == "sent"));

    let d = dir.path().to_path_buf();
    let (code, out, _) =
        tokio::task::spawn_blocking(move || run(with_secrets(signoff(&d)).arg("doctor")))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[ok  ] monday: token works") && out.contains("[ok  ] gmail: scope"),
        "{out}"
    );
    // Without the environment the same config is not an error: every provider stays in sandbox.
    let d = dir.path().to_path_buf();
    let (code, out, _) = tokio::task::spawn_blocking(move || run(signoff(&d).arg("doctor")))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "[skip] monday: credentials — actions.monday.token: env:TEST_MONDAY_TOKEN (missing)"
        ),
        "{out}"
    );
}
