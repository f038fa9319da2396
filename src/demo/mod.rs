//! `signoff demo`: a realistic sample queue bundled in the binary, seeded when the demo
//! database is empty. Timestamps are moved so the newest request arrived minutes ago and
//! the spacing between them is kept: the queue shows real ages and SLA colours.
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;

use crate::config::Loaded;
use crate::ingest::Ingester;
use crate::store::Store;

/// The bundled requests, JSON Lines.
pub const REQUESTS: &str = include_str!("requests.jsonl");

/// Seeds the database at `db` when it holds no requests; returns how many were added.
pub fn seed(db: &Path, loaded: &Loaded) -> anyhow::Result<u64> {
    let policy = Arc::new(loaded.config.policy.clone());
    let mut store = Store::open(db, policy, &crate::cli::store_options(loaded))
        .with_context(|| format!("opening the demo queue {}", db.display()))?;
    let existing: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))?;
    if existing > 0 {
        return Ok(0);
    }
    let text = rebased(REQUESTS, crate::clock::Clock::process().now() - 3 * 60_000);
    let mut ingester = Ingester::new(&mut store, "system");
    ingester.read("demo", text.as_bytes())?;
    Ok(ingester.report.ingested)
}

/// The JSON Lines with every `received_at` shifted so the newest is at `newest_ms`.
pub fn rebased(jsonl: &str, newest_ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    let parse = |v: &Value| {
        v.get("received_at")
            .and_then(Value::as_str)
            .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
    };
    let mut values: Vec<Value> = jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let Some(max) = values.iter().filter_map(parse).max() else {
        return jsonl.to_string();
    };
    let target = time::OffsetDateTime::from_unix_timestamp(newest_ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let shift = target - max;
    for v in &mut values {
        if let Some(t) = parse(v)
            && let Ok(s) = (t + shift).format(&Rfc3339)
        {
            v["received_at"] = Value::String(s);
        }
    }
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_requests_cover_the_policy() {
        let policy = crate::model::Policy::default();
        let mut intents = std::collections::BTreeSet::new();
        let mut priorities = std::collections::BTreeSet::new();
        let mut n = 0;
        for line in REQUESTS.lines() {
            let (_, r) = crate::model::Request::from_json(line).expect("demo line parses");
            intents.extend(r.ai.intent.clone());
            priorities.extend(r.ai.priority.clone());
            n += 1;
        }
        assert!((35..=50).contains(&n), "{n} demo requests");
        for i in &policy.intents {
            assert!(intents.contains(i), "demo lacks intent {i}");
        }
        for p in &policy.priorities {
            assert!(priorities.contains(p), "demo lacks priority {p}");
        }
    }

    #[test]
    fn rebasing_keeps_spacing() {
        let text = "{\"received_at\":\"2026-01-01T00:00:00Z\"}\n{\"received_at\":\"2026-01-01T01:00:00Z\"}";
        let out = rebased(text, 1_800_000_000_000);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[1]["received_at"], "2027-01-15T08:00:00Z");
        assert_eq!(lines[0]["received_at"], "2027-01-15T07:00:00Z");
    }
}
