//! `signoff audit verify` speed: walk, re-hash and check the MAC of a chain of 1,000,000
//! entries.
//! Target: ≤ 1 s (≥ 1M entries/s). Run: `cargo bench --bench audit`.
//!
//! The chain is built once through the store's own append path's hash function, with
//! details shaped like real ones (claims, edits, decisions), into a file under target/.
use std::sync::Arc;
use std::time::Instant;

use rusqlite::params;
use signoff::model::Policy;
use signoff::store::{AuditKey, Store, StoreOptions, VerifyOptions, canonical_hash, key_path};

const ENTRIES: i64 = 1_000_000;

fn build(path: &std::path::Path) {
    let store = Store::open(path, Arc::new(Policy::default()), &StoreOptions::default()).unwrap();
    let key_file = key_path(path);
    if !key_file.exists() {
        let bytes: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
        std::fs::write(&key_file, bytes).unwrap();
    }
    let key = AuditKey::load(&key_file).unwrap();
    let conn = store.connection();
    conn.execute_batch("PRAGMA synchronous = OFF; BEGIN")
        .unwrap();
    let mut prev = "0".repeat(64);
    {
        let mut stmt = conn
            .prepare(
                "INSERT INTO audit (seq, at, actor, request_id, kind, detail, prev_hash, hash, os_user, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .unwrap();
        for seq in 1..=ENTRIES {
            let at = 1_790_000_000_000 + seq * 137;
            let rid = seq / 3 + 1;
            let (actor, kind, detail) = match seq % 3 {
                0 => (
                    "system",
                    "ingested",
                    format!(
                        r#"{{"source":"webform","external_id":"wf-{seq}","revision":1,"payload_sha256":"{prev}","policy_version":"a1b2c3d4e5f6","ai":{{"summary":"Wants a demo for a 40-truck fleet","intent":"sales_lead","priority":"high","confidence":0.91}},"flags":[]}}"#
                    ),
                ),
                1 => (
                    "dana",
                    "claimed",
                    format!(r#"{{"fence":{seq},"lease_expires":{}}}"#, at + 300_000),
                ),
                _ => (
                    "dana",
                    "decided",
                    format!(
                        r#"{{"decision_id":{seq},"decision":"approve","reason":null,"queue":null,"note":null,"fence":3,"revision":1,"actions":["signoff-{rid}-{seq}-crm","signoff-{rid}-{seq}-slack"]}}"#
                    ),
                ),
            };
            let os_user = if actor == "system" { "signoff" } else { actor };
            let hash = canonical_hash(
                &prev,
                seq,
                at,
                actor,
                Some(rid),
                kind,
                &detail,
                Some(os_user),
            );
            let mac = key.row_mac(&hash);
            stmt.execute(params![
                seq, at, actor, rid, kind, detail, prev, hash, os_user, mac
            ])
            .unwrap();
            prev = hash;
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("audit-keyed-{ENTRIES}.db"));
    if !path.exists() {
        let t = Instant::now();
        build(&path);
        eprintln!(
            "built {ENTRIES} entries in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let store = Store::open(&path, Arc::new(Policy::default()), &StoreOptions::default()).unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        // The bench builds no anchor; the walk checks every row's MAC with the key.
        let report = store
            .verify_audit_with(&VerifyOptions { anchor: false }, |_| {})
            .unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(report.entries, ENTRIES as u64);
        assert!(report.broken.is_none());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "audit verify: {ENTRIES} entries, median {:.3} s ({:.2} M entries/s), best {:.3} s, worst {:.3} s",
        median,
        ENTRIES as f64 / median / 1e6,
        times[0],
        times[times.len() - 1]
    );
}
