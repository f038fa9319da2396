//! Gmail faults against the fakes: a 401 refreshes the token once and retries once,
//! tokens near expiry are refreshed first, `invalid_grant` dead-letters every Gmail row
//! with "re-authorize", throttling 403s and 429s are retried, backend errors reconciled.
mod support;

use serde_json::{Value, json};
use support::*;

fn lead(ext: &str) -> Value {
    payload(
        ext,
        "sales_lead",
        "high",
        "Ada <ada@example.com>",
        "Pricing",
        "Hello Ada",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_401_refreshes_once_and_retries_once() {
    let f = Fakes::start().await;
    let cfg = f.config();
    let (_d, db) = temp_db();
    let mut a = lead("g1");
    a["ai"]["intent"] = json!("job_application");
    let store = approve_all(&db, &cfg, &[a]);
    // The first token is issued, then "expires" server-side: the create gets a 401.
    f.with(|w| w.gmail.expires_in = 3599);
    f.fault("gmail:drafts.create", Fault::json(401, json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.",
        "errors": [{"reason": "authError", "domain": "global"}], "status": "UNAUTHENTICATED"}})));
    dispatch_once(&db, &cfg).await;
    let (st, attempts, _, _) = row(&store, "gmail");
    assert_eq!(
        (st.as_str(), attempts),
        ("sent", 1),
        "refresh + retry happen inside the attempt"
    );
    assert_eq!(f.with(|w| w.gmail.refreshes), 2);
    assert_eq!(f.requests("gmail:drafts.create").len(), 2);
    assert_eq!(f.with(|w| w.gmail.drafts.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_near_expiry_are_refreshed_before_use() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.with(|w| w.gmail.expires_in = 30); // under the 60 s margin: every use refreshes
    let (_d, db) = temp_db();
    let mut a = lead("g2");
    a["ai"]["intent"] = json!("job_application");
    let mut b = lead("g3");
    b["ai"]["intent"] = json!("job_application");
    let store = approve_all(&db, &cfg, &[a, b]);
    dispatch_once(&db, &cfg).await;
    assert!(rows(&store).iter().all(|r| r.1 == "sent"));
    assert_eq!(f.with(|w| w.gmail.refreshes), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_dead_letters_every_gmail_row_with_reauthorize() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.gmail.refresh_token = Some(signoff::secret::Secret::new("1//revoked"));
    let (_d, db) = temp_db();
    let payloads: Vec<Value> = (0..3)
        .map(|i| {
            let mut p = lead(&format!("ig{i}"));
            p["ai"]["intent"] = json!("job_application");
            p
        })
        .collect();
    let store = approve_all(&db, &cfg, &payloads);
    dispatch_once(&db, &cfg).await;
    for (_, st, attempts, err, _) in rows(&store) {
        assert_eq!((st.as_str(), attempts), ("dead", 1));
        let err = err.unwrap();
        assert!(
            err.contains("invalid_grant") && err.contains("re-authorize"),
            "{err}"
        );
    }
    assert_eq!(
        f.requests("gmail:token").len(),
        1,
        "the refusal is remembered, not retried per row"
    );
    assert_eq!(f.requests("gmail:drafts.create").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_throttling_403_and_backend_errors() {
    let f = Fakes::start().await;
    let cfg = f.config();
    f.fault(
        "gmail:drafts.create",
        Fault::json(
            403,
            json!({"error": {"code": 403, "message": "User-rate limit exceeded",
        "errors": [{"reason": "userRateLimitExceeded", "domain": "usageLimits"}]}}),
        ),
    );
    f.fault(
        "gmail:drafts.create",
        Fault::json(
            503,
            json!({"error": {"code": 503, "message": "Backend Error",
        "errors": [{"reason": "backendError", "domain": "global"}]}}),
        ),
    );
    let (_d, db) = temp_db();
    let mut a = lead("g4");
    a["ai"]["intent"] = json!("job_application");
    let store = approve_all(&db, &cfg, &[a]);
    dispatch_once(&db, &cfg).await;
    assert_eq!(row(&store, "gmail").0, "retrying");
    make_due(&store);
    dispatch_once(&db, &cfg).await;
    let (st, _, err, _) = row(&store, "gmail");
    assert_eq!(st, "retrying");
    assert!(err.unwrap().contains("backendError"));
    dispatch_settled(&db, &store, &cfg, 3).await;
    assert_eq!(row(&store, "gmail").0, "sent");
    assert_eq!(f.with(|w| w.gmail.drafts.len()), 1);

    // A token without a compose scope: dead, re-consent.
    f.with(|w| {
        w.gmail.scope = "https://www.googleapis.com/auth/gmail.readonly".into();
        w.gmail.expire_all();
    });
    let (_d2, db2) = temp_db();
    let mut b = lead("g5");
    b["ai"]["intent"] = json!("job_application");
    let store2 = approve_all(&db2, &cfg, &[b]);
    dispatch_once(&db2, &cfg).await;
    let (st, _, err, _) = row(&store2, "gmail");
    assert_eq!(st, "dead");
    assert!(
        err.unwrap()
            .contains("re-authorize with https://www.googleapis.com/auth/gmail.compose")
    );
}
