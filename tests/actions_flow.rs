//! Approval to effect against the local fakes: one CRM item (key inside create_item's
//! double-encoded column_values), one Slack post (string ts, key in metadata and block_id),
//! one Gmail draft (base64url, CRLF, threading); the stored request is the bytes sent;
//! sandbox sends nothing; every attempt and outcome is audited.
mod support;

use serde_json::{Value, json};
use support::*;

fn lead(ext: &str) -> Value {
    payload(
        ext,
        "sales_lead",
        "high",
        "Ada Lovelace <ada@example.com>",
        "Pricing question",
        "Hello Ada,\nhere are our prices.",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_creates_one_item_one_post_one_draft() {
    let fakes = Fakes::start().await;
    let cfg = fakes.config();
    let (_dir, db) = temp_db();
    let store = approve_all(&db, &cfg, &[lead("lead-1")]);
    let s = dispatch_once(&db, &cfg).await;
    assert_eq!((s.sent, s.dead, s.retrying), (3, 0, 0), "{s}");

    let (status, attempts, err, resp) = row(&store, "crm");
    assert_eq!((status.as_str(), attempts, err), ("sent", 1, None));
    let item_id = resp["item_id"].as_str().unwrap().to_string();
    fakes.with(|w| {
        let items = w.monday.items_with("text_ext_id", "web:lead-1");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].id, item_id);
        assert_eq!(items[0].values["status"], json!({"label": "sales_lead"}));
        assert_eq!(w.monday.updates.len(), 1);
        assert!(
            w.monday.updates[0]
                .body
                .contains("signoff ref signoff-1-1-crm")
        );
        assert!(w.monday.api_versions.iter().all(|v| v == "2025-04"));
    });
    // The create carried the key inside the JSON-string column_values.
    let create = &fakes.requests("monday:create_item")[0];
    let body: Value = serde_json::from_slice(&create.body).unwrap();
    let cols = body["variables"]["cols"]
        .as_str()
        .expect("column_values is a string");
    let cols: Value = serde_json::from_str(cols).unwrap();
    assert_eq!(cols["text_ext_id"], "web:lead-1");
    assert_eq!(create.header("authorization"), Some(support::monday::TOKEN));

    let (status, _, _, resp) = row(&store, "slack");
    assert_eq!(status, "sent");
    let ts = resp["ts"].as_str().expect("ts stays a string");
    fakes.with(|w| {
        let posts = w.slack.with_key("signoff-1-1-slack");
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].ts, ts);
        assert_eq!(posts[0].channel, support::slack::GENERAL);
        assert_eq!(posts[0].blocks[0]["block_id"], "signoff-1-1-slack");
    });

    let (status, _, _, resp) = row(&store, "gmail");
    assert_eq!(status, "sent");
    fakes.with(|w| {
        assert_eq!(w.gmail.drafts.len(), 1);
        let d = &w.gmail.drafts[0];
        assert_eq!(resp["draft_id"], d.id.as_str());
        let tag = signoff::actions::render::origin_tag("web", "lead-1");
        assert_eq!(
            d.message_id_header,
            format!("<signoff-1-1-gmail.{tag}@signoff.invalid>")
        );
        assert!(
            d.message
                .contains("\r\nTo: \"Ada Lovelace\" <ada@example.com>\r\n")
        );
        assert!(d.message.contains("Subject: Re: Pricing question\r\n"));
        assert!(d.message.ends_with("Hello Ada,\r\nhere are our prices."));
        assert_eq!(w.gmail.refreshes, 1);
    });

    // The console's view of the item's actions.
    let lines: Vec<String> = store
        .outbox_rows(1)
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.action,
                r.status,
                signoff::actions::result_text(r.response.as_deref().unwrap_or("{}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        lines[0],
        format!(
            "crm sent item {item_id}, note {}",
            fakes.with(|w| w.monday.updates[0].id.clone())
        )
    );
    assert!(
        lines[1].starts_with("slack sent ts ") && lines[1].ends_with(" in C0GENERAL1"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("gmail sent draft r-"), "{lines:?}");

    // Audit: an attempt and an outcome entry per action.
    let kinds: Vec<String> = store
        .connection()
        .prepare("SELECT kind FROM audit WHERE kind LIKE 'action_%' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds.iter().filter(|k| *k == "action_attempt").count(), 3);
    assert_eq!(kinds.iter().filter(|k| *k == "action_sent").count(), 3);
    assert!(store.verify_audit(|_| {}).unwrap().broken.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_request_is_the_bytes_the_fake_receives() {
    let fakes = Fakes::start().await;
    let cfg = fakes.config();
    let (_dir, db) = temp_db();
    let store = approve_all(&db, &cfg, &[lead("lead-2")]);
    let stored: Vec<(String, Value)> = store
        .connection()
        .prepare("SELECT action, payload FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                serde_json::from_str(&r.get::<_, String>(1)?).unwrap(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    dispatch_once(&db, &cfg).await;
    let step = |action: &str, step: &str| -> Value {
        let p = &stored.iter().find(|(a, _)| a == action).unwrap().1;
        p["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["step"] == step)
            .unwrap()
            .clone()
    };
    let sent = |route: &str| fakes.requests(route)[0].clone();
    for (action, st, route) in [
        ("crm", "find", "monday:items_page_by_column_values"),
        ("crm", "create", "monday:create_item"),
        ("slack", "post", "slack:chat.postMessage"),
        ("gmail", "create", "gmail:drafts.create"),
    ] {
        let want = step(action, st);
        let got = sent(route);
        assert_eq!(
            got.body,
            serde_json::to_vec(&want["body"]).unwrap(),
            "{action}/{st}"
        );
        assert_eq!(
            got.uri,
            want["url"]
                .as_str()
                .unwrap()
                .split_once(&fakes.addr.to_string())
                .unwrap()
                .1
        );
        for (k, v) in want["headers"].as_object().unwrap() {
            assert_eq!(got.header(k), v.as_str(), "{action}/{st} header {k}");
        }
        // No credential is stored in the payload.
        assert!(
            !want.to_string().contains("xoxb-")
                && !want.to_string().contains(support::monday::TOKEN)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_renders_and_stores_and_sends_nothing() {
    let fakes = Fakes::start().await;
    let mut cfg = fakes.config();
    cfg.mode = signoff::actions::Mode::Sandbox;
    let (_dir, db) = temp_db();
    let store = approve_all(&db, &cfg, &[lead("lead-3")]);
    let s = dispatch_once(&db, &cfg).await;
    assert_eq!(s.sandbox, 3, "{s}");
    assert!(
        fakes.with(|w| w.log.is_empty()),
        "nothing may leave the machine"
    );
    for (action, status, _, _, resp) in rows(&store) {
        assert_eq!(status, "sandbox", "{action}");
        assert_eq!(resp["sandbox"], "actions.mode is sandbox");
    }
    // Live mode without credentials for one provider keeps just that one in sandbox.
    let mut cfg = fakes.config();
    cfg.slack.token = None;
    let (_dir2, db2) = temp_db();
    let store2 = approve_all(&db2, &cfg, &[lead("lead-4")]);
    dispatch_once(&db2, &cfg).await;
    assert_eq!(row(&store2, "slack").0, "sandbox");
    assert_eq!(row(&store2, "crm").0, "sent");
    // A credential that is configured but unreadable is not "absent": in live mode the
    // dispatcher refuses to run rather than finish those rows as sandbox.
    let mut cfg = fakes.config();
    cfg.slack.token = Some(signoff::secret::Secret::new("env:SIGNOFF_TEST_NO_SUCH_VAR"));
    let (_dir3, db3) = temp_db();
    let store3 = approve_all(&db3, &cfg, &[lead("lead-7")]);
    let err = signoff::actions::dispatch_with(
        &db3,
        std::sync::Arc::new(signoff::model::Policy::default()),
        &signoff::store::StoreOptions::default(),
        &cfg,
        true,
        "test",
        std::future::pending(),
    )
    .await
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains("actions.slack.token is configured but cannot be read"),
        "{err}"
    );
    assert_eq!(
        row(&store3, "slack").0,
        "queued",
        "left for a dispatcher that has the secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_joins_the_thread_only_with_matching_headers() {
    let fakes = Fakes::start().await;
    let cfg = fakes.config();
    let (_dir, db) = temp_db();
    let mut threaded = lead("lead-5");
    threaded["raw"]["fields"] = json!({"gmail_thread_id": "18c2f0e1a2b3c4d5", "message_id": "<inbound-1@mail.example.com>"});
    let mut no_parent = lead("lead-6");
    no_parent["raw"]["fields"] = json!({"gmail_thread_id": "18c2f0e1a2b3c4d5"});
    let store = approve_all(&db, &cfg, &[threaded, no_parent]);
    dispatch_once(&db, &cfg).await;
    let drafts = fakes.with(|w| w.gmail.drafts.clone());
    assert_eq!(drafts.len(), 2);
    let d5 = drafts
        .iter()
        .find(|d| d.message_id_header.contains("signoff-1-"))
        .unwrap();
    assert_eq!(d5.thread_id, "18c2f0e1a2b3c4d5");
    assert!(
        d5.message
            .contains("In-Reply-To: <inbound-1@mail.example.com>\r\n")
    );
    let d6 = drafts
        .iter()
        .find(|d| d.message_id_header.contains("signoff-2-"))
        .unwrap();
    assert_ne!(
        d6.thread_id, "18c2f0e1a2b3c4d5",
        "without the parent's Message-ID Gmail starts a new thread"
    );
    let _ = store;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_whose_standard_base64_has_plus_and_slash_is_sent_url_safe() {
    use base64::Engine;
    let fakes = Fakes::start().await;
    let cfg = fakes.config();
    let (_dir, db) = temp_db();
    // "?>" and "~~~" encode to '/' and '+' in standard base64.
    let body = "Prices?>\nAll ~~~ included ÿÿÿ";
    let p = payload(
        "lead-7",
        "sales_lead",
        "high",
        "ada@example.com",
        "Prices?",
        body,
    );
    let store = approve_all(&db, &cfg, &[p]);
    let payload: String = store
        .connection()
        .query_row(
            "SELECT payload FROM outbox WHERE action = 'gmail'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    let raw = payload["requests"][0]["body"]["message"]["raw"]
        .as_str()
        .unwrap();
    let message = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .unwrap();
    let standard = base64::engine::general_purpose::STANDARD.encode(&message);
    assert!(
        standard.contains('+') && standard.contains('/'),
        "the test body must exercise both characters"
    );
    dispatch_once(&db, &cfg).await;
    assert_eq!(row(&store, "gmail").0, "sent");
    fakes.with(|w| {
        assert!(w.gmail.rejected.is_empty());
        assert!(
            w.gmail.drafts[0]
                .message
                .ends_with("Prices?>\r\nAll ~~~ included ÿÿÿ")
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_injection_from_the_request_is_refused_at_approval() {
    let fakes = Fakes::start().await;
    let cfg = fakes.config();
    let (_dir, db) = temp_db();
    let policy = policy();
    let mut store = signoff::store::Store::open(&db, policy.clone(), &Default::default()).unwrap();
    store.set_renderer(signoff::actions::renderer(&cfg, policy).unwrap());
    let p = payload(
        "evil",
        "job_application",
        "high",
        "x@example.com\r\nBcc: all@example.com",
        "Hi",
        "Thanks",
    );
    let text = p.to_string();
    let (v, r) = signoff::model::Request::from_json(&text).unwrap();
    store
        .ingest_batch(
            &[signoff::store::IngestItem::new(text, v, r, "t".into())],
            "t",
        )
        .unwrap();
    let claim = store.claim(1, "sam").unwrap();
    let err = store
        .decide(
            &claim,
            &signoff::queue::Decision {
                kind: signoff::model::DecisionKind::Approve,
                revision: None,
                note: None,
                sets: vec![],
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("header injection"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_is_what_approval_stores() {
    let fakes = Fakes::start().await;
    let cfg = fakes.config();
    let (_dir, db) = temp_db();
    let policy = policy();
    let mut store = signoff::store::Store::open(&db, policy.clone(), &Default::default()).unwrap();
    store.set_renderer(signoff::actions::renderer(&cfg, policy).unwrap());
    let text = lead("lead-8").to_string();
    let (v, r) = signoff::model::Request::from_json(&text).unwrap();
    store
        .ingest_batch(
            &[signoff::store::IngestItem::new(text, v, r, "t".into())],
            "t",
        )
        .unwrap();
    let claim = store.claim(1, "sam").unwrap();
    let approve = signoff::model::DecisionKind::Approve;
    let preview = store.preview_actions(1, &approve, "sam", None).unwrap();
    assert_eq!(
        preview
            .iter()
            .map(|p| p.action.as_str())
            .collect::<Vec<_>>(),
        ["crm", "slack", "gmail"]
    );
    let text = signoff::actions::preview_text(&preview[1].rendered.as_ref().unwrap().to_string());
    assert!(
        text.starts_with("Slack message (chat.postMessage) — key signoff-1-1-slack"),
        "{text}"
    );
    store
        .decide(
            &claim,
            &signoff::queue::Decision {
                kind: approve,
                revision: None,
                note: None,
                sets: vec![],
            },
        )
        .unwrap();
    let stored = store.outbox_rows(1).unwrap();
    for (p, s) in preview.iter().zip(&stored) {
        assert_eq!(p.idempotency_key, s.idempotency_key);
        let s: Value = serde_json::from_str(s.payload.as_deref().unwrap()).unwrap();
        let p = p.rendered.as_ref().unwrap();
        if s["provider"] == "gmail" {
            // Same message but for its Date header (rendered at a different second).
            assert_eq!(p["meta"], s["meta"]);
        } else {
            assert_eq!(p, &s);
        }
    }
    // An item without a draft reply gets no Gmail draft: the preview says why before
    // anyone approves, and the approval queues the rest.
    let mut no_draft = lead("lead-9");
    no_draft["ai"]["draft_reply"] = Value::Null;
    let text = no_draft.to_string();
    let (v, r) = signoff::model::Request::from_json(&text).unwrap();
    store
        .ingest_batch(
            &[signoff::store::IngestItem::new(text, v, r, "t".into())],
            "t",
        )
        .unwrap();
    let preview = store
        .preview_actions(2, &signoff::model::DecisionKind::Approve, "sam", None)
        .unwrap();
    assert_eq!(preview.len(), 3);
    assert_eq!(preview[2].action.as_str(), "gmail");
    assert_eq!(preview[2].skipped, Some(signoff::model::Skip::NoDraft));
    assert_eq!(
        preview[2].skipped.unwrap().reason(),
        "no Gmail draft: the AI wrote none"
    );
    assert!(
        preview[..2]
            .iter()
            .all(|p| p.skipped.is_none() && p.rendered.is_ok())
    );
    let claim = store.claim(2, "sam").unwrap();
    let receipt = store
        .decide(
            &claim,
            &signoff::queue::Decision {
                kind: signoff::model::DecisionKind::Approve,
                revision: None,
                note: None,
                sets: vec![],
            },
        )
        .unwrap();
    let queued: Vec<&str> = receipt.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(queued, ["crm", "slack"]);
    assert_eq!(
        receipt.skipped,
        vec![(
            signoff::model::ActionKind::Gmail,
            signoff::model::Skip::NoDraft
        )]
    );
    let stored: Vec<String> = store
        .outbox_rows(2)
        .unwrap()
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.iter().all(|k| !k.ends_with("gmail")), "{stored:?}");
}
