//! Dispatchers as the console and servers run them: in the background until told to stop,
//! and several at once on one database without sending anything twice.
mod support;

use std::time::Duration;

use support::*;

fn leads(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            payload(
                &format!("w{i}"),
                "sales_lead",
                "high",
                "ada@example.com",
                "Hi",
                "Hello",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_dispatcher_sends_then_stops_when_told() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.poll_ms = 20;
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &leads(3));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let (db, cfg) = (db.clone(), cfg.clone());
        tokio::spawn(async move {
            signoff::actions::dispatch_until(&db, policy(), &cfg, false, "console", async {
                let _ = stopped.await;
            })
            .await
        })
    };
    for _ in 0..500 {
        if rows(&store).iter().all(|r| r.1 == "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rows(&store).iter().all(|r| r.1 == "sent"));
    stop.send(()).unwrap();
    let summary = worker.await.unwrap().unwrap();
    assert_eq!(summary.sent, 9, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_database_send_everything_once() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.batch = 4;
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &leads(30));
    let run = |name: &'static str| {
        let (db, cfg) = (db.clone(), cfg.clone());
        tokio::spawn(async move {
            signoff::actions::dispatch_until(
                &db,
                policy(),
                &cfg,
                true,
                name,
                std::future::pending(),
            )
            .await
            .unwrap()
        })
    };
    let (a, b) = (run("host-a"), run("host-b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.sent + b.sent, 90, "{a} / {b}");
    assert_eq!(a.attempts + b.attempts, 90, "no row was attempted twice");
    assert!(rows(&store).iter().all(|r| r.1 == "sent" && r.2 == 1));
    assert_eq!(
        f.with(|w| (
            w.monday.items.len(),
            w.slack.messages.len(),
            w.gmail.drafts.len()
        )),
        (30, 30, 30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hung_request_does_not_hold_up_the_others() {
    let f = Fakes::start().await;
    let mut cfg = f.config();
    cfg.dispatch.timeout_ms = 6_000;
    cfg.dispatch.poll_ms = 20;
    f.fault("slack:chat.postMessage", Fault::Hang);
    let (_d, db) = temp_db();
    let store = approve_all(&db, &cfg, &leads(3));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let (db, cfg) = (db.clone(), cfg.clone());
        tokio::spawn(async move {
            signoff::actions::dispatch_until(&db, policy(), &cfg, false, "console", async {
                let _ = stopped.await;
            })
            .await
        })
    };
    // The other eight are sent and recorded while the hung post is still out.
    let mut seen = false;
    for _ in 0..1_000 {
        let r = rows(&store);
        let sent = r.iter().filter(|r| r.1 == "sent").count();
        let sending = r.iter().filter(|r| r.1 == "sending").count();
        if sent == 8 && sending == 1 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen, "{:?}", rows(&store));
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    // Stopping let the hung request end (timeout) and recorded it.
    assert_eq!(rows(&store).iter().filter(|r| r.1 == "retrying").count(), 1);
}
