//! The monday.com fake: one `POST /v2`, raw token auth, arguments from `variables`,
//! `column_values` a JSON *string* checked per column type, app errors as HTTP 200 with
//! `errors[]` in the unified shape, ids as strings, `account_id` in every body; a search
//! lag (a new item is not found by its key for a while) and the 423 of a locked board.
use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Map, Value, json};
use signoff::clock::Millis;

use super::{Fault, Shared, after_apply, before_apply, json as reply_json, log};

pub const TOKEN: &str = "monday-token-123";
pub const BOARD: &str = "1234567890";

#[derive(Clone, Debug)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub values: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub struct Update {
    pub id: String,
    pub item: String,
    pub body: String,
}

#[derive(Default)]
pub struct Monday {
    /// column id → (type, known labels for status/dropdown)
    pub columns: BTreeMap<String, (String, Vec<String>)>,
    pub items: Vec<Item>,
    pub updates: Vec<Update>,
    pub next_id: u64,
    pub api_versions: Vec<String>,
    /// A new item stays out of `items_page_by_column_values` for this long after its
    /// create (monday's search index may lag behind a create), by the world's clock.
    pub search_lag: Duration,
    /// item id → when (ms, the world's clock) searches start finding it.
    pub searchable_at: BTreeMap<String, Millis>,
}

impl Monday {
    pub fn seeded() -> Monday {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let intents = labels(&[
            "sales_lead",
            "support_request",
            "billing_question",
            "complaint",
            "partnership",
            "job_application",
            "other",
        ]);
        Monday {
            columns: BTreeMap::from([
                ("text_ext_id".into(), ("text".into(), vec![])),
                ("status".into(), ("status".into(), intents)),
                (
                    "priority".into(),
                    (
                        "status".into(),
                        labels(&["urgent", "high", "normal", "low"]),
                    ),
                ),
                ("long_text_summary".into(), ("long_text".into(), vec![])),
                ("date4".into(), ("date".into(), vec![])),
                ("people".into(), ("people".into(), vec![])),
                ("tags".into(), ("dropdown".into(), labels(&["Hot", "EU"]))),
            ]),
            next_id: 9_876_543_210,
            ..Monday::default()
        }
    }

    /// Items whose key column holds `key`.
    pub fn items_with(&self, col: &str, key: &str) -> Vec<&Item> {
        self.items
            .iter()
            .filter(|i| i.values.get(col).and_then(Value::as_str) == Some(key))
            .collect()
    }

    fn mint(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    /// Checks a `column_values` argument; returns the parsed object or monday's error.
    fn columns_arg(
        &self,
        v: Option<&Value>,
        create_labels: bool,
    ) -> Result<Map<String, Value>, Value> {
        let err = |code: &str, msg: String, extra: Value| json!({"message": msg, "extensions": {"code": code, "status_code": 200, "error_data": extra}});
        let Some(Value::String(s)) = v else {
            return Err(err(
                "InvalidArgumentException",
                "column_values must be a JSON string".into(),
                json!({}),
            ));
        };
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(s) else {
            return Err(err(
                "InvalidArgumentException",
                "column_values is not a JSON object".into(),
                json!({}),
            ));
        };
        for (id, val) in &map {
            let Some((kind, labels)) = self.columns.get(id) else {
                return Err(err(
                    "InvalidColumnIdException",
                    format!("This column ID doesn't exist for the board: {id}"),
                    json!({"column_id": id}),
                ));
            };
            let bad = |why: &str| {
                err(
                    "ColumnValueException",
                    format!("invalid value - {why}"),
                    json!({"column_type": kind, "column_id": id}),
                )
            };
            let ok = match kind.as_str() {
                "text" => val.is_string(),
                "long_text" => val.get("text").is_some_and(Value::is_string),
                "status" => match (val.get("label").and_then(Value::as_str), val.get("index")) {
                    (Some(l), _) => {
                        if !create_labels && !labels.iter().any(|x| x == l) {
                            return Err(bad(&format!("label does not exist in column {id}: {l}")));
                        }
                        true
                    }
                    (None, Some(i)) => i.is_u64(),
                    _ => false,
                },
                "date" => val
                    .get("date")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.len() == 10 && d.as_bytes()[4] == b'-'),
                "people" => val
                    .get("personsAndTeams")
                    .and_then(Value::as_array)
                    .is_some_and(|a| {
                        a.iter().all(|p| {
                            p.get("id").is_some_and(Value::is_u64)
                                && matches!(
                                    p.get("kind").and_then(Value::as_str),
                                    Some("person" | "team")
                                )
                        })
                    }),
                "dropdown" => match val.get("labels").and_then(Value::as_array) {
                    Some(ls) => {
                        for l in ls {
                            let l = l.as_str().unwrap_or("");
                            if !create_labels && !labels.iter().any(|x| x == l) {
                                return Err(bad(&format!("dropdown label does not exist: {l}")));
                            }
                        }
                        true
                    }
                    None => val.get("ids").is_some_and(Value::is_array),
                },
                _ => false,
            };
            if !ok {
                return Err(bad(&format!("wrong shape for a {kind} column: {val}")));
            }
        }
        Ok(map)
    }
}

/// monday's answer while the board is locked by a concurrent update: HTTP 423 with the
/// legacy error body (INTEGRATIONS.md §1.4), and `Retry-After` when given. Nothing is
/// applied. The message wording is illustrative; the classifier keys on the status.
pub fn locked(retry_after: Option<&str>) -> Fault {
    Fault::Reply {
        status: 423,
        retry_after: retry_after.map(str::to_string),
        body: json!({"error_message": "The board is locked by another update, please try again", "status_code": 423})
            .to_string(),
        content_type: "application/json; charset=utf-8",
    }
}

pub fn routes() -> Router<Shared> {
    Router::new().route("/v2", post(handle))
}

/// The root field of a GraphQL document: the first name after the first `{`.
fn root_field(q: &str) -> String {
    let rest = q.split_once('{').map_or("", |(_, r)| r).trim_start();
    rest.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn error(code: &str, msg: &str, status_code: u16, field: &str) -> Value {
    json!({"data": {field: null}, "errors": [{"message": msg, "path": [field],
        "extensions": {"code": code, "status_code": status_code}}], "account_id": 1,
        "extensions": {"request_id": "fake"}})
}

async fn handle(
    State(world): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let query = parsed
        .as_ref()
        .and_then(|v| v.get("query"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let field = query.as_deref().map(root_field).unwrap_or_default();
    let route = format!("monday:{field}");
    let is_write = matches!(
        field.as_str(),
        "create_item" | "change_multiple_column_values" | "create_update"
    );
    let fault = {
        let mut w = world.lock().unwrap();
        log(&mut w, &route, "POST", &uri.to_string(), &headers, &body);
        if let Some(v) = headers.get("API-Version").and_then(|v| v.to_str().ok()) {
            w.monday.api_versions.push(v.to_string());
        }
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            return reply_json(
                401,
                json!({"error_message": "Not Authenticated", "status_code": 401}),
            );
        }
        let Some(_) = &query else {
            return reply_json(
                400,
                json!({"error_message": "No query string was present", "status_code": 400}),
            );
        };
        w.take_fault(&route, is_write)
    };
    if let Some(r) = before_apply(&fault).await {
        return r;
    }
    let vars = parsed
        .as_ref()
        .and_then(|v| v.get("variables"))
        .cloned()
        .unwrap_or(json!({}));
    let q = query.unwrap_or_default();
    let answer = {
        let mut w = world.lock().unwrap();
        let now = w.clock.now();
        let m = &mut w.monday;
        let s = |k: &str| vars.get(k).and_then(Value::as_str).map(str::to_string);
        let board_ok = |b: Option<String>| b.as_deref() == Some(BOARD);
        match field.as_str() {
            "items_page_by_column_values" => {
                if !board_ok(s("board")) {
                    error("InvalidBoardIdException", "Board not found", 200, &field)
                } else {
                    let (col, val) = (s("col").unwrap_or_default(), s("val").unwrap_or_default());
                    let mut items: Vec<Value> = m
                        .items_with(&col, &val)
                        .into_iter()
                        .filter(|i| m.searchable_at.get(&i.id).is_none_or(|at| *at <= now))
                        .map(|i| json!({"id": i.id, "name": i.name}))
                        .collect();
                    items.truncate(2);
                    json!({"data": {field.as_str(): {"cursor": null, "items": items}}, "account_id": 1})
                }
            }
            "create_item" => {
                if !board_ok(s("board")) {
                    error("InvalidBoardIdException", "Board not found", 200, &field)
                } else {
                    match m.columns_arg(
                        vars.get("cols"),
                        q.contains("create_labels_if_missing: true"),
                    ) {
                        Err(e) => {
                            json!({"data": {field.as_str(): null}, "errors": [e], "account_id": 1})
                        }
                        Ok(values) => {
                            let name = s("name").unwrap_or_default();
                            if name.chars().count() > 255 {
                                error(
                                    "ItemNameTooLongException",
                                    "Item name is too long",
                                    200,
                                    &field,
                                )
                            } else {
                                let id = m.mint();
                                if !m.search_lag.is_zero() {
                                    let lag = m.search_lag.as_millis() as Millis;
                                    m.searchable_at.insert(id.clone(), now + lag);
                                }
                                m.items.push(Item {
                                    id: id.clone(),
                                    name,
                                    values,
                                });
                                json!({"data": {field.as_str(): {"id": id}}, "account_id": 1})
                            }
                        }
                    }
                }
            }
            "change_multiple_column_values" => {
                let item = s("item").unwrap_or_default();
                match m.columns_arg(
                    vars.get("cols"),
                    q.contains("create_labels_if_missing: true"),
                ) {
                    Err(e) => {
                        json!({"data": {field.as_str(): null}, "errors": [e], "account_id": 1})
                    }
                    Ok(values) => match m.items.iter_mut().find(|i| i.id == item) {
                        None => error(
                            "InvalidItemIdException",
                            "Item not found in board",
                            200,
                            &field,
                        ),
                        Some(i) => {
                            i.values.extend(values);
                            json!({"data": {field.as_str(): {"id": item}}, "account_id": 1})
                        }
                    },
                }
            }
            "create_update" => {
                let item = s("item").unwrap_or_default();
                if !m.items.iter().any(|i| i.id == item) {
                    error("InvalidItemIdException", "Item not found", 200, &field)
                } else {
                    let id = m.mint();
                    m.updates.push(Update {
                        id: id.clone(),
                        item,
                        body: s("body").unwrap_or_default(),
                    });
                    json!({"data": {field.as_str(): {"id": id}}, "account_id": 1})
                }
            }
            "items" => {
                let item = s("item").unwrap_or_default();
                let ups: Vec<Value> = m
                    .updates
                    .iter()
                    .filter(|u| u.item == item)
                    .rev()
                    .take(10)
                    .map(|u| json!({"id": u.id, "text_body": strip_tags(&u.body)}))
                    .collect();
                json!({"data": {"items": [{"id": item, "updates": ups}]}, "account_id": 1})
            }
            "me" => json!({"data": {"me": {"id": "1", "name": "Signoff Bot"}}, "account_id": 1}),
            "boards" => {
                let cols: Vec<Value> = m
                    .columns
                    .iter()
                    .map(|(id, (t, _))| json!({"id": id, "title": id, "type": t}))
                    .collect();
                let wanted = vars.get("board").map(|b| b.to_string()).unwrap_or_default();
                let boards = if wanted.contains(BOARD) {
                    json!([{"id": BOARD, "name": "Leads", "columns": cols}])
                } else {
                    json!([])
                };
                json!({"data": {"boards": boards}, "account_id": 1})
            }
            other => error("ParseError", &format!("unknown field {other}"), 200, other),
        }
    };
    after_apply(&world, fault, reply_json(200, answer)).await
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}
