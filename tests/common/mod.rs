//! Helpers shared by the integration tests: temp databases, request fixtures, the binary.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::{Value, json};
use signoff::model::{Policy, Request};
use signoff::store::{IngestItem, Store, StoreOptions};

/// A request payload with sensible defaults, overridden by `extra` (top-level keys; `ai`
/// and `raw` are merged one level deep).
pub fn request(ext: &str, extra: Value) -> Value {
    let mut v = json!({
        "source": "webform",
        "external_id": ext,
        "received_at": "2026-11-20T10:00:00Z",
        "raw": {"channel": "email", "from": "Dana <dana@example.com>", "subject": "Demo please", "body": "Hi, we would like a demo."},
        "ai": {"summary": "Wants a demo", "intent": "sales_lead", "priority": "normal", "confidence": 0.9,
               "recommended_next_step": "Book a call", "draft_reply": "Hello Dana, ..."}
    });
    if let Value::Object(extra) = extra {
        for (k, val) in extra {
            match (v.get_mut(&k), val) {
                (Some(Value::Object(base)), Value::Object(over)) => {
                    for (k2, v2) in over {
                        base.insert(k2, v2);
                    }
                }
                (_, val) => {
                    v[&k] = val;
                }
            }
        }
    }
    v
}

pub fn item(v: &Value) -> IngestItem {
    let text = v.to_string();
    let r = Request::from_value(v).expect("fixture is a request");
    IngestItem::new(text, v.clone(), r, "test:1".into())
}

pub fn open(path: &Path) -> Store {
    Store::open(path, Arc::new(Policy::default()), &StoreOptions::default()).expect("open store")
}

pub fn count(store: &Store, sql: &str) -> i64 {
    store
        .connection()
        .query_row(sql, [], |r| r.get(0))
        .expect("count query")
}

/// The signoff binary with an isolated config and data dir under `dir`.
pub fn signoff(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_signoff"));
    c.env("SIGNOFF_CONFIG_DIR", dir.join("config"))
        .env("SIGNOFF_DATA_DIR", dir.join("data"))
        .env_remove("SIGNOFF_DB")
        .env_remove("SIGNOFF_REVIEWER")
        .env_remove("SIGNOFF_CONFIG")
        .env_remove("SIGNOFF_REMOTE")
        .env_remove("SIGNOFF_TOKEN")
        // A host's /etc/signoff/config.toml (a `remote`) must not reach the tests.
        .env("SIGNOFF_SYSTEM_CONFIG", dir.join("no-system-config.toml"))
        .env("USER", "tester");
    c
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("data").join("queue.db")
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run signoff");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}
