//! Queue-server benchmark: 50 reviewers on loopback against one `signoff serve`, each
//! claiming the next item and approving it in a loop, at `synchronous=FULL`; and, in the
//! same run on the same disk, one process doing claim+decide on a local store at `FULL`
//! (the single-process rate the server's group commit must beat by 2×).
//!
//! Run with `cargo bench --bench serve` (`-- quick` for a short run). Each reviewer is
//! its own token (its own identity), over HTTP on 127.0.0.1, through `RemoteQueue` — the
//! client the console and the CLI use. Checked at the end, from the database: no item was
//! claimed by two reviewers, every acknowledged decision is there exactly once, none was
//! made on a stale fence, and `audit verify` passes.
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use signoff::model::{DecisionKind, Policy, Request};
use signoff::queue::{Decision, Queue, RemoteOptions, RemoteQueue, RemoteTarget};
use signoff::store::{Durability, IngestItem, Store, StoreOptions};

const REVIEWERS: usize = 50;

struct Settings {
    items: usize,
    local_budget: Duration,
    serve_budget: Duration,
}

fn settings() -> Settings {
    let quick = std::env::args().skip(1).any(|a| a == "quick");
    if quick {
        Settings {
            items: 6_000,
            local_budget: Duration::from_secs(2),
            serve_budget: Duration::from_secs(3),
        }
    } else {
        Settings {
            items: 30_000,
            local_budget: Duration::from_secs(6),
            serve_budget: Duration::from_secs(10),
        }
    }
}

fn approve() -> Decision {
    Decision {
        kind: DecisionKind::Approve,
        revision: None,
        note: None,
        sets: vec![],
    }
}

/// `n` approvable requests: valid fields, a draft reply, a CRM update (three actions each).
fn items(n: usize) -> Vec<IngestItem> {
    (0..n)
        .map(|i| {
            let priority = ["urgent", "high", "medium", "low"][i % 4];
            let v = json!({
                "source": "bench", "external_id": format!("e{i}"),
                "received_at": "2026-11-01T10:00:00Z",
                "raw": {"channel": "email", "from": format!("sender{i}@example.com"),
                        "subject": "Pricing question", "body": "Hello, ".repeat(40)},
                "ai": {"summary": "Asks for pricing for 40 trucks", "intent": "sales_lead",
                       "priority": priority,
                       "confidence": 0.9, "recommended_next_step": "Send the price list",
                       "crm_update_required": true, "human_review_required": true,
                       "draft_reply": "Thanks, the price list is attached."}
            });
            let r = Request::from_value(&v).expect("bench request");
            IngestItem::new(v.to_string(), v, r, "bench:1".into())
        })
        .collect()
}

fn seed(path: &Path, n: usize) {
    let mut s = Store::open(path, Arc::new(Policy::default()), &full()).expect("open");
    for chunk in items(n).chunks(2_000) {
        s.ingest_batch(chunk, "system").expect("ingest");
    }
}

fn full() -> StoreOptions {
    StoreOptions {
        durability: Durability::Full,
        ..StoreOptions::default()
    }
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One process, one connection: claim the next item, approve it, for `budget`.
fn local_rate(dir: &Path, s: &Settings) -> f64 {
    let path = dir.join("local.db");
    seed(&path, s.items);
    let mut store = Store::open(&path, Arc::new(Policy::default()), &full()).expect("open");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < s.local_budget {
        let Some(c) = store.claim_next("solo").expect("claim") else {
            break;
        };
        store.decide(&c, &approve()).expect("decide");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we spawned.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn signoff(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_signoff"));
    c.env("SIGNOFF_CONFIG_DIR", dir.join("config"))
        .env("SIGNOFF_DATA_DIR", dir.join("data"))
        .env("SIGNOFF_SYSTEM_CONFIG", dir.join("no-system-config.toml"))
        .env("SIGNOFF_DB", dir.join("served.db"))
        .env_remove("SIGNOFF_REVIEWER")
        .env_remove("SIGNOFF_CONFIG")
        .env_remove("SIGNOFF_REMOTE")
        .env_remove("SIGNOFF_TOKEN")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

fn start_server(dir: &Path) -> Server {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    // Callers here are a load generator, not people: no rate limit in the way.
    std::fs::write(
        dir.join("config").join("config.toml"),
        "[store]\ndurability = \"full\"\n\n[server]\nrate_per_second = 1000000.0\nrate_burst = 1000000\n",
    )
    .unwrap();
    let mut child = signoff(dir)
        .args(["serve", "--no-socket", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start signoff serve");
    let out = child.stdout.take().unwrap();
    let first = BufReader::new(out)
        .lines()
        .next()
        .and_then(Result::ok)
        .expect("signoff serve says where it listens");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|w| w.trim_end_matches([';', ',']).to_string())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    Server { child, url }
}

fn token(dir: &Path, name: &str) -> String {
    let out = signoff(dir)
        .args(["token", "add", name, "--role", "reviewer"])
        .output()
        .expect("token add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[derive(Default)]
struct Reviewer {
    claims: Vec<Duration>,
    decides: Vec<Duration>,
    /// (item, fence) of every acknowledged decision.
    decided: Vec<(i64, i64)>,
    claimed: Vec<i64>,
    errors: Vec<String>,
}

async fn review(q: RemoteQueue, name: String, until: Instant) -> Reviewer {
    let mut r = Reviewer::default();
    while Instant::now() < until {
        let t = Instant::now();
        let claim = match q.claim_next(&name).await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                r.errors.push(format!("claim: {e}"));
                continue;
            }
        };
        r.claims.push(t.elapsed());
        r.claimed.push(claim.id);
        let t = Instant::now();
        match q.decide(&claim, &approve()).await {
            Ok(_) => {
                r.decides.push(t.elapsed());
                r.decided.push((claim.id, claim.fence));
            }
            Err(e) => r.errors.push(format!("decide #{}: {e}", claim.id)),
        }
    }
    r
}

fn main() {
    let s = settings();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();

    let local = local_rate(&root, &s);
    println!("local, one process, FULL: {local:.0} decisions/s");

    let sdir = root.join("served");
    std::fs::create_dir_all(&sdir).unwrap();
    seed(&sdir.join("served.db"), s.items);
    let tokens: Vec<String> = (0..REVIEWERS)
        .map(|i| token(&sdir, &format!("r{i:02}")))
        .collect();
    let server = start_server(&sdir);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (results, elapsed) = rt.block_on(async {
        let until = Instant::now() + s.serve_budget;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, tok) in tokens.iter().enumerate() {
            let q = RemoteQueue::new(
                RemoteTarget::Http(server.url.clone()),
                RemoteOptions {
                    token: Some(tok.clone()),
                    ..Default::default()
                },
            )
            .expect("client");
            tasks.spawn(review(q, format!("r{i:02}"), until));
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.push(r.expect("reviewer task"));
        }
        (all, start.elapsed())
    });
    drop(server);

    let mut claims: Vec<Duration> = results.iter().flat_map(|r| r.claims.clone()).collect();
    let mut decides: Vec<Duration> = results.iter().flat_map(|r| r.decides.clone()).collect();
    let decided: Vec<(i64, i64)> = results.iter().flat_map(|r| r.decided.clone()).collect();
    let errors: Vec<&String> = results.iter().flat_map(|r| &r.errors).collect();
    let mut claimed: HashMap<i64, u32> = HashMap::new();
    for id in results.iter().flat_map(|r| &r.claimed) {
        *claimed.entry(*id).or_default() += 1;
    }
    let twice = claimed.values().filter(|n| **n > 1).count();

    // The database's word for it.
    let store = Store::open(
        &sdir.join("served.db"),
        Arc::new(Policy::default()),
        &full(),
    )
    .expect("open the served database");
    let conn = store.connection();
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM decisions WHERE undone_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap_or(-1);
    let dup_decisions: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM (SELECT request_id FROM decisions GROUP BY request_id HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap_or(-1);
    let mut stale = 0usize;
    for (id, fence) in &decided {
        let f: i64 = conn
            .query_row(
                "SELECT fence FROM decisions WHERE request_id = ?1 AND undone_at IS NULL",
                [id],
                |r| r.get(0),
            )
            .unwrap_or(-1);
        if f != *fence {
            stale += 1;
        }
    }
    let verify = store.verify_audit(|_| {}).expect("verify");

    let rate = decided.len() as f64 / elapsed.as_secs_f64();
    println!(
        "served, {REVIEWERS} reviewers over HTTP on loopback, FULL: {rate:.0} decisions/s ({} in {:.1} s), {:.2}x the local rate",
        decided.len(),
        elapsed.as_secs_f64(),
        rate / local
    );
    println!(
        "claim latency p50 {} p99 {} max {}; decide p50 {} p99 {}",
        ms(pct(&mut claims, 0.5)),
        ms(pct(&mut claims, 0.99)),
        ms(pct(&mut claims, 1.0)),
        ms(pct(&mut decides, 0.5)),
        ms(pct(&mut decides, 0.99)),
    );
    println!(
        "checks: {twice} items claimed twice; {stale} acknowledged decisions not on their claim's fence; \
{} decision rows for {} acknowledged ({} items decided twice); {} errors; audit verify: {}",
        rows,
        decided.len(),
        dup_decisions,
        errors.len(),
        match &verify.broken {
            None => format!("intact, {} entries", verify.entries),
            Some((seq, why)) => format!("BROKEN at {seq}: {why}"),
        }
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    let ok = twice == 0
        && stale == 0
        && dup_decisions == 0
        && rows == decided.len() as i64
        && errors.is_empty()
        && verify.broken.is_none();
    println!(
        "targets: decisions/s >= 2x local: {}; p99 claim <= 10 ms: {}; correctness: {}",
        if rate >= 2.0 * local { "met" } else { "MISSED" },
        if pct(&mut claims, 0.99) <= Duration::from_millis(10) {
            "met"
        } else {
            "MISSED"
        },
        if ok { "ok" } else { "FAILED" }
    );
    if !ok {
        std::process::exit(1);
    }
}
