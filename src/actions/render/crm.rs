//! monday.com: the GraphQL requests of one CRM write (INTEGRATIONS.md §1). All arguments go
//! in `variables`; `column_values` is a JSON *string* (double-encoded); the item's key goes
//! inside the same `create_item` call, so no item ever exists without it.
//!
//! Steps: `find` (items_page_by_column_values, limit 2), then `create` (0 hits) or `update`
//! (1 hit), then `note` (create_update) and, after an ambiguous note, `find_note`. The
//! item id is filled into `variables.item` at send time, once the lookup found it.
use minijinja::value::Value;
use serde_json::{Map, json};

use crate::actions::config::{ColumnType, MondayConfig};
use crate::actions::payload::{HttpRequest, Provider, Rendered};
use crate::actions::templates::{Templates, column_key};

pub const FIND: &str = "query ($board: ID!, $col: String!, $val: String!) { items_page_by_column_values(board_id: $board, limit: 2, columns: [{column_id: $col, column_values: [$val]}]) { cursor items { id name } } }";
pub const CREATE: &str = "mutation ($board: ID!, $name: String!, $cols: JSON!) { create_item(board_id: $board, item_name: $name, column_values: $cols) { id } }";
pub const CREATE_LABELS: &str = "mutation ($board: ID!, $name: String!, $cols: JSON!) { create_item(board_id: $board, item_name: $name, column_values: $cols, create_labels_if_missing: true) { id } }";
pub const CREATE_IN_GROUP: &str = "mutation ($board: ID!, $group: String!, $name: String!, $cols: JSON!) { create_item(board_id: $board, group_id: $group, item_name: $name, column_values: $cols) { id } }";
pub const CREATE_IN_GROUP_LABELS: &str = "mutation ($board: ID!, $group: String!, $name: String!, $cols: JSON!) { create_item(board_id: $board, group_id: $group, item_name: $name, column_values: $cols, create_labels_if_missing: true) { id } }";
pub const UPDATE: &str = "mutation ($board: ID!, $item: ID!, $cols: JSON!) { change_multiple_column_values(board_id: $board, item_id: $item, column_values: $cols) { id } }";
pub const UPDATE_LABELS: &str = "mutation ($board: ID!, $item: ID!, $cols: JSON!) { change_multiple_column_values(board_id: $board, item_id: $item, column_values: $cols, create_labels_if_missing: true) { id } }";
pub const NOTE: &str =
    "mutation ($item: ID!, $body: String!) { create_update(item_id: $item, body: $body) { id } }";
pub const FIND_NOTE: &str =
    "query ($item: ID!) { items(ids: [$item]) { id updates(limit: 10) { id text_body } } }";
/// monday caps item names at 255 characters.
const NAME_MAX: usize = 255;

pub fn render(
    cfg: &MondayConfig,
    t: &Templates,
    ctx: &Value,
    key: &str,
) -> Result<Rendered, String> {
    let ext = t.render("actions.monday.key", ctx)?.trim().to_string();
    if ext.is_empty() {
        return Err("actions.monday.key rendered empty; the item could not be found again".into());
    }
    let mut cols = Map::new();
    for (id, col) in &cfg.columns {
        let v = t.render(&column_key(id), ctx)?;
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let value = column_value(col.kind, v)
            .map_err(|e| format!("monday column {id} ({}): {e}", col.kind.as_str()))?;
        cols.insert(id.clone(), value);
    }
    cols.insert(cfg.key_column.clone(), json!(ext));
    let cols = serde_json::Value::Object(cols).to_string();
    let name = truncate(t.render("actions.monday.item_name", ctx)?.trim(), NAME_MAX);
    let name = if name.is_empty() { ext.clone() } else { name };
    let url = cfg.api_url.clone();
    let req = |step: &str, query: &str, variables: serde_json::Value| {
        let mut r = HttpRequest::post_json(
            step,
            url.clone(),
            json!({"query": query, "variables": variables}),
        );
        r.headers
            .insert("API-Version".into(), cfg.api_version.clone());
        r
    };
    let labels = cfg.create_labels_if_missing;
    let create = if cfg.group_id.is_empty() {
        req(
            "create",
            if labels { CREATE_LABELS } else { CREATE },
            json!({"board": cfg.board_id, "name": name, "cols": cols}),
        )
    } else {
        req(
            "create",
            if labels {
                CREATE_IN_GROUP_LABELS
            } else {
                CREATE_IN_GROUP
            },
            json!({"board": cfg.board_id, "group": cfg.group_id, "name": name, "cols": cols}),
        )
    };
    let mut requests = vec![
        req(
            "find",
            FIND,
            json!({"board": cfg.board_id, "col": cfg.key_column, "val": ext}),
        ),
        create,
        req(
            "update",
            if labels { UPDATE_LABELS } else { UPDATE },
            json!({"board": cfg.board_id, "item": null, "cols": cols}),
        ),
    ];
    let note = t.render("actions.monday.note", ctx)?;
    if !note.trim().is_empty() {
        // The key in the note is how an ambiguous note is recognised later.
        let body = format!("{}<p>signoff ref {key}</p>", note.trim());
        requests.push(req("note", NOTE, json!({"item": null, "body": body})));
        requests.push(req("find_note", FIND_NOTE, json!({"item": null})));
    }
    Ok(Rendered {
        provider: Provider::Monday,
        key: key.into(),
        requests,
        meta: json!({"board": cfg.board_id, "key_column": cfg.key_column, "ext_key": ext}),
    })
}

/// A column's value in monday's per-type shape (INTEGRATIONS.md §1.3).
pub fn column_value(kind: ColumnType, v: &str) -> Result<serde_json::Value, String> {
    Ok(match kind {
        ColumnType::Text => json!(v.replace(['\r', '\n'], " ")),
        ColumnType::LongText => json!({"text": v}),
        ColumnType::Status => json!({"label": v}),
        ColumnType::Date => date_value(v)?,
        ColumnType::People => {
            let mut people = Vec::new();
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (kind, id) = match part.split_once(':') {
                    Some(("team", id)) => ("team", id),
                    Some(("person", id)) => ("person", id),
                    Some((other, _)) => {
                        return Err(format!(
                            "'{other}' is not a people kind; use person:ID or team:ID"
                        ));
                    }
                    None => ("person", part),
                };
                let id: u64 = id
                    .trim()
                    .parse()
                    .map_err(|_| format!("'{part}' is not a user or team id (digits)"))?;
                people.push(json!({"id": id, "kind": kind}));
            }
            json!({"personsAndTeams": people})
        }
        ColumnType::Dropdown => {
            let labels: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            json!({"labels": labels})
        }
    })
}

/// `2026-01-15`, `2026-01-15 09:30[:00]` or RFC 3339 (converted to UTC).
fn date_value(v: &str) -> Result<serde_json::Value, String> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let bad = || format!("'{v}' is not a date; use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS");
    if let Ok(dt) = time::OffsetDateTime::parse(v, &Rfc3339) {
        let dt = dt.to_offset(time::UtcOffset::UTC);
        return Ok(json!({
            "date": dt.date().format(format_description!("[year]-[month]-[day]")).map_err(|_| bad())?,
            "time": dt.time().format(format_description!("[hour]:[minute]:[second]")).map_err(|_| bad())?,
        }));
    }
    let (d, t) = match v.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    time::Date::parse(d, format_description!("[year]-[month]-[day]")).map_err(|_| bad())?;
    match t {
        None => Ok(json!({"date": d})),
        Some(t) => {
            let t = if t.len() == 5 {
                format!("{t}:00")
            } else {
                t.to_string()
            };
            time::Time::parse(&t, format_description!("[hour]:[minute]:[second]"))
                .map_err(|_| bad())?;
            Ok(json!({"date": d, "time": t}))
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_values_follow_the_per_type_shapes() {
        assert_eq!(
            column_value(ColumnType::Status, "Done").unwrap(),
            json!({"label": "Done"})
        );
        assert_eq!(
            column_value(ColumnType::People, "12, team:9").unwrap(),
            json!({"personsAndTeams": [{"id": 12, "kind": "person"}, {"id": 9, "kind": "team"}]})
        );
        assert_eq!(
            column_value(ColumnType::Dropdown, "Hot, EU").unwrap(),
            json!({"labels": ["Hot", "EU"]})
        );
        assert_eq!(
            column_value(ColumnType::Date, "2026-01-15").unwrap(),
            json!({"date": "2026-01-15"})
        );
        assert_eq!(
            column_value(ColumnType::Date, "2026-01-15T10:30:00+01:00").unwrap(),
            json!({"date": "2026-01-15", "time": "09:30:00"})
        );
        assert!(column_value(ColumnType::Date, "soon").is_err());
        assert!(column_value(ColumnType::People, "bob").is_err());
        assert_eq!(
            column_value(ColumnType::LongText, "a\nb").unwrap(),
            json!({"text": "a\nb"})
        );
    }
}
