//! Queue-server benchmark, three setups measured in one run on one disk:
//! 1. one process doing claim+decide on a local SQLite store at `FULL` (the single-process
//!    rate the server's group commit must beat by 2×);
//! 2. 50 reviewers on loopback against one `signoff serve` on SQLite at `FULL`;
//! 3. 50 reviewers split across **two** `signoff serve` instances on one PostgreSQL
//!    database (a throwaway cluster started here, `fsync` on).
//!
//! In 2 and 3 every approval queues three actions (monday, Slack, Gmail), which each
//! server's dispatcher sends to local fakes of the three APIs while the reviewers work,
//! with 10 % of the writes faulted (429, 503, or applied and then the connection dropped).
//!
//! Run with `cargo bench --bench serve` (`-- quick` for a short run). Each reviewer is
//! its own token (its own identity), over HTTP on 127.0.0.1, through `RemoteQueue` — the
//! client the console and the CLI use. Checked at the end, from the database and the
//! fakes: no item was claimed by two reviewers, every acknowledged decision is there
//! exactly once, none was made on a stale fence, every action produced exactly one effect,
//! and `audit verify` passes.
#[path = "../tests/support/mod.rs"]
mod support;

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
use support::{Fakes, Fault};

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

/// Request `i`: valid fields, a draft reply, a CRM update — three actions on approval. Its
/// priority is one the fake board's priority column has a label for.
fn item_json(i: usize) -> serde_json::Value {
    support::payload(
        &format!("e{i}"),
        "sales_lead",
        ["urgent", "high", "high", "low"][i % 4],
        "Ada <ada@example.com>",
        "Pricing question",
        "Thanks, the price list is attached.",
    )
}

fn items(n: usize) -> Vec<IngestItem> {
    (0..n)
        .map(|i| {
            let v = item_json(i);
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

/// The binary with its directories under `dir` and its queue at `db`.
fn signoff(dir: &Path, db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_signoff"));
    c.env("SIGNOFF_CONFIG_DIR", dir.join("config"))
        .env("SIGNOFF_DATA_DIR", dir.join("data"))
        .env("SIGNOFF_SYSTEM_CONFIG", dir.join("no-system-config.toml"))
        .env("SIGNOFF_DB", db)
        .env_remove("SIGNOFF_REVIEWER")
        .env_remove("SIGNOFF_CONFIG")
        .env_remove("SIGNOFF_REMOTE")
        .env_remove("SIGNOFF_TOKEN")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

/// Writes a server's config under `dir`: FULL durability, no rate limit in the way of a
/// load generator, decisions due at once (no undo window), and live actions against
/// `fakes` with short backoffs and no client-side quotas (the bench measures the servers,
/// not the providers' limits).
fn configure(dir: &Path, fakes: &Fakes, store: toml::Table) {
    let mut cfg = fakes.config();
    cfg.dispatch.batch = 64;
    cfg.dispatch.concurrency = 32;
    cfg.dispatch.poll_ms = 50;
    cfg.dispatch.backoff_base_ms = 1;
    cfg.dispatch.backoff_cap_ms = 5;
    cfg.dispatch.max_attempts = 50;
    cfg.monday.requests_per_minute = 0;
    cfg.slack.per_channel_per_second = 0.0;
    cfg.gmail.per_second = 0.0;
    let mut st = toml::Table::new();
    st.insert("durability".into(), "full".into());
    st.extend(store);
    let mut server = toml::Table::new();
    server.insert("rate_per_second".into(), 1_000_000.0.into());
    server.insert("rate_burst".into(), 1_000_000.into());
    let mut policy = toml::Table::new();
    policy.insert("undo_seconds".into(), 0.into());
    let mut root = toml::Table::new();
    root.insert("store".into(), st.into());
    root.insert("server".into(), server.into());
    root.insert("policy".into(), policy.into());
    root.insert(
        "actions".into(),
        toml::Value::try_from(&cfg).expect("the actions config as TOML"),
    );
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config").join("config.toml"),
        toml::to_string(&root).unwrap(),
    )
    .unwrap();
}

fn start_server(dir: &Path, db: &str) -> Server {
    let mut child = signoff(dir, db)
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

fn token(dir: &Path, db: &str, name: &str) -> String {
    let out = signoff(dir, db)
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

/// 50 reviewers, reviewer `i` on `urls[i % urls.len()]` with `tokens[i]`, for `budget`.
fn run_reviewers(
    rt: &tokio::runtime::Runtime,
    urls: &[String],
    tokens: &[String],
    budget: Duration,
) -> (Vec<Reviewer>, Duration) {
    rt.block_on(async {
        let until = Instant::now() + budget;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, tok) in tokens.iter().enumerate() {
            let q = RemoteQueue::new(
                RemoteTarget::Http(urls[i % urls.len()].clone()),
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
    })
}

/// What the database says after a run.
struct Found {
    /// Decision rows not undone.
    rows: i64,
    /// Items with more than one decision.
    decided_twice: i64,
    /// Acknowledged decisions whose row carries another fence than the claim's.
    stale: usize,
    /// Outbox rows by status.
    outbox: Vec<(String, i64)>,
    /// `None`: intact (with this many entries in `entries`); `Some(why)`: broken.
    broken: Option<String>,
    entries: u64,
}

/// Faults the fakes inject into 10 % of the writes.
fn faulty(fakes: &Fakes) {
    fakes.with(|w| {
        w.random_faults = Some((
            0.10,
            vec![
                Fault::json_retry(429, "0", json!({"ok": false, "error": "ratelimited"})),
                Fault::html(503, "<html>Service Unavailable</html>"),
                Fault::ApplyThenDrop,
            ],
        ))
    });
}

/// The effects at the fakes: (monday items, monday notes, Slack posts, Gmail drafts,
/// faults injected), and how many effects were made twice for one action (one monday item
/// per external key, one Slack post per idempotency key, one Gmail draft per Message-ID).
fn effects(fakes: &Fakes, key_column: &str) -> ((usize, usize, usize, usize, usize), usize) {
    fakes.with(|w| {
        let twice = |keys: Vec<String>| {
            let mut seen = std::collections::HashSet::new();
            keys.into_iter().filter(|k| !seen.insert(k.clone())).count()
        };
        let dup = twice(
            w.monday
                .items
                .iter()
                .map(|i| {
                    i.values
                        .get(key_column)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                })
                .collect(),
        ) + twice(
            w.slack
                .messages
                .iter()
                .map(|m| {
                    m.metadata
                        .pointer("/event_payload/key")
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                })
                .collect(),
        ) + twice(
            w.gmail
                .drafts
                .iter()
                .map(|d| d.message_id_header.clone())
                .collect(),
        );
        (
            (
                w.monday.items.len(),
                w.monday.updates.len(),
                w.slack.messages.len(),
                w.gmail.drafts.len(),
                w.injected,
            ),
            dup,
        )
    })
}

/// Prints a setup's figures and checks; true when every check holds.
#[allow(clippy::too_many_arguments)]
fn report(
    label: &str,
    results: &[Reviewer],
    elapsed: Duration,
    drained: Option<Duration>,
    found: &Found,
    fakes: &Fakes,
    baseline: f64,
) -> (bool, f64, Duration) {
    let mut claims: Vec<Duration> = results.iter().flat_map(|r| r.claims.clone()).collect();
    let mut decides: Vec<Duration> = results.iter().flat_map(|r| r.decides.clone()).collect();
    let decided = results.iter().map(|r| r.decided.len()).sum::<usize>();
    let errors: Vec<&String> = results.iter().flat_map(|r| &r.errors).collect();
    let mut claimed: HashMap<i64, u32> = HashMap::new();
    for id in results.iter().flat_map(|r| &r.claimed) {
        *claimed.entry(*id).or_default() += 1;
    }
    let twice = claimed.values().filter(|n| **n > 1).count();
    let ((crm, notes, posts, drafts, injected), duplicated) =
        effects(fakes, &fakes.config().monday.key_column);
    let dead: i64 = found
        .outbox
        .iter()
        .filter(|(st, _)| st == "dead")
        .map(|(_, n)| n)
        .sum();
    let rate = decided as f64 / elapsed.as_secs_f64();
    let p99 = pct(&mut claims, 0.99);
    println!(
        "{label}: {rate:.0} decisions/s ({decided} in {:.1} s), {:.2}x the local rate",
        elapsed.as_secs_f64(),
        rate / baseline
    );
    println!(
        "  claim latency p50 {} p99 {} max {}; decide p50 {} p99 {}",
        ms(pct(&mut claims, 0.5)),
        ms(p99),
        ms(pct(&mut claims, 1.0)),
        ms(pct(&mut decides, 0.5)),
        ms(pct(&mut decides, 0.99)),
    );
    println!(
        "  actions: {} outbox rows {:?}; effects at the fakes: {crm} CRM items, {notes} notes, {posts} Slack posts, {drafts} Gmail drafts for {decided} approvals, {duplicated} made twice; {injected} faults injected; outbox drained {}",
        found.outbox.iter().map(|(_, n)| n).sum::<i64>(),
        found.outbox,
        match drained {
            Some(d) => format!("{:.1} s after the reviewers stopped", d.as_secs_f64()),
            None => "NOT within the wait".into(),
        }
    );
    println!(
        "  checks: {twice} items claimed twice; {} acknowledged decisions not on their claim's fence; {} decision rows for {decided} acknowledged ({} items decided twice); {} errors; audit verify: {}",
        found.stale,
        found.rows,
        found.decided_twice,
        errors.len(),
        match &found.broken {
            None => format!("intact, {} entries", found.entries),
            Some(why) => format!("BROKEN: {why}"),
        }
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    let ok = twice == 0
        && found.stale == 0
        && found.decided_twice == 0
        && found.rows == decided as i64
        && errors.is_empty()
        && found.broken.is_none()
        && duplicated == 0
        && [crm, notes, posts, drafts].iter().all(|n| *n <= decided)
        // Once drained, every action took effect except dead letters: those whose answer
        // was lost and whose effect could not be looked up stop rather than risk a second.
        && (drained.is_none()
            || [crm, notes, posts, drafts]
                .iter()
                .all(|n| *n as i64 + dead >= decided as i64));
    (ok, rate, p99)
}

fn sqlite_found(path: &Path, decided: &[(i64, i64)]) -> Found {
    let store = Store::open(path, Arc::new(Policy::default()), &full()).expect("open the db");
    let conn = store.connection();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    let rows = one("SELECT COUNT(*) FROM decisions WHERE undone_at IS NULL");
    let decided_twice = one(
        "SELECT COUNT(*) FROM (SELECT request_id FROM decisions WHERE undone_at IS NULL GROUP BY request_id HAVING COUNT(*) > 1)",
    );
    let mut stale = 0;
    for (id, fence) in decided {
        let f: i64 = conn
            .query_row(
                "SELECT fence FROM decisions WHERE request_id = ?1 AND undone_at IS NULL",
                [id],
                |r| r.get(0),
            )
            .unwrap_or(-1);
        stale += usize::from(f != *fence);
    }
    let outbox = store.outbox_totals().expect("outbox totals");
    let verify = store.verify_audit(|_| {}).expect("verify");
    Found {
        rows,
        decided_twice,
        stale,
        outbox,
        broken: verify.broken.map(|(seq, why)| format!("at {seq}: {why}")),
        entries: verify.entries,
    }
}

/// Waits until no outbox row is queued, sending or retrying; how long that took.
fn wait_drained(open: impl Fn() -> i64) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) {
        if open() == 0 {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Two `signoff serve` on one PostgreSQL database, each with its own config dir and data
/// dir (as on two hosts) and the same audit key; reviewer `i` talks to server `i % 2`.
fn two_servers_on_postgres(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    url: &str,
    s: &Settings,
    local: f64,
) -> (bool, f64, Duration) {
    let dir = root.join("postgres");
    let key = dir.join("audit.key");
    let dirs = [dir.join("a"), dir.join("b")];
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let opts = signoff::pg::PgOptions {
        key_path: key.clone(),
        ..Default::default()
    };
    let setup = Instant::now();
    rt.block_on(async {
        let q = signoff::pg::PgQueue::open(url, Arc::new(Policy::default()), &opts)
            .await
            .expect("open the PostgreSQL queue");
        for chunk in (0..s.items).collect::<Vec<_>>().chunks(5_000) {
            let body: String = chunk
                .iter()
                .map(|i| item_json(*i).to_string() + "\n")
                .collect();
            let (report, problems) = q
                .ingest("bench", body.into_bytes(), "system")
                .await
                .expect("ingest");
            assert!(problems.is_empty(), "{report}: {problems:?}");
        }
    });
    println!(
        "postgres: {} items ingested in {:.1} s",
        s.items,
        setup.elapsed().as_secs_f64()
    );
    let fakes = rt.block_on(Fakes::start());
    let mut store = toml::Table::new();
    store.insert("audit_key".into(), key.display().to_string().into());
    store.insert("pool_size".into(), 16.into());
    for d in &dirs {
        configure(d, &fakes, store.clone());
    }
    let tokens: Vec<String> = (0..REVIEWERS)
        .map(|i| token(&dirs[i % 2], url, &format!("r{i:02}")))
        .collect();
    faulty(&fakes);
    let servers = [start_server(&dirs[0], url), start_server(&dirs[1], url)];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let (results, elapsed) = run_reviewers(rt, &urls, &tokens, s.serve_budget);
    let drained = wait_drained(|| {
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let conn = tokio::spawn(conn);
            let n: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending', 'retrying')",
                    &[],
                )
                .await
                .expect("count")
                .get(0);
            drop(client);
            let _ = conn.await;
            n
        })
    });
    drop(servers);
    let decided: Vec<(i64, i64)> = results.iter().flat_map(|r| r.decided.clone()).collect();
    let found = rt.block_on(postgres_found(url, &opts, &decided));
    report(
        &format!(
            "PostgreSQL, two servers, {REVIEWERS} reviewers split across them over HTTP on loopback"
        ),
        &results,
        elapsed,
        drained,
        &found,
        &fakes,
        local,
    )
}

async fn postgres_found(url: &str, opts: &signoff::pg::PgOptions, decided: &[(i64, i64)]) -> Found {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    let one = async |sql: &str| -> i64 {
        client
            .query_one(sql, &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1)
    };
    let rows = one("SELECT COUNT(*) FROM decisions WHERE undone_at IS NULL").await;
    let decided_twice = one(
        "SELECT COUNT(*) FROM (SELECT request_id FROM decisions WHERE undone_at IS NULL GROUP BY request_id HAVING COUNT(*) > 1) t",
    )
    .await;
    let fences: HashMap<i64, i64> = client
        .query(
            "SELECT request_id, fence FROM decisions WHERE undone_at IS NULL",
            &[],
        )
        .await
        .expect("fences")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let stale = decided
        .iter()
        .filter(|(id, fence)| fences.get(id) != Some(fence))
        .count();
    let outbox = client
        .query(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status",
            &[],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    drop(client);
    let _ = conn.await;
    let q = signoff::pg::PgQueue::open(url, Arc::new(Policy::default()), opts)
        .await
        .expect("open for verify");
    let verify = q.verify_audit().await.expect("verify");
    Found {
        rows,
        decided_twice,
        stale,
        outbox,
        broken: verify.broken.map(|(seq, why)| format!("at {seq}: {why}")),
        entries: verify.entries,
    }
}

fn main() {
    let s = settings();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let local = local_rate(&root, &s);
    println!("local, one process, FULL: {local:.0} decisions/s");

    let mut all_ok = true;
    let mut figures = Vec::new();

    // 2. One server on SQLite.
    {
        let dir = root.join("served");
        std::fs::create_dir_all(&dir).unwrap();
        let db_path = dir.join("served.db");
        let db = db_path.display().to_string();
        seed(&db_path, s.items);
        let fakes = rt.block_on(Fakes::start());
        configure(&dir, &fakes, toml::Table::new());
        let tokens: Vec<String> = (0..REVIEWERS)
            .map(|i| token(&dir, &db, &format!("r{i:02}")))
            .collect();
        faulty(&fakes);
        let server = start_server(&dir, &db);
        let (results, elapsed) = run_reviewers(
            &rt,
            std::slice::from_ref(&server.url),
            &tokens,
            s.serve_budget,
        );
        let drained = wait_drained(|| {
            let store = Store::open(&db_path, Arc::new(Policy::default()), &full()).unwrap();
            store
                .outbox_totals()
                .unwrap()
                .iter()
                .filter(|(st, _)| matches!(st.as_str(), "queued" | "sending" | "retrying"))
                .map(|(_, n)| n)
                .sum()
        });
        drop(server);
        let decided: Vec<(i64, i64)> = results.iter().flat_map(|r| r.decided.clone()).collect();
        let found = sqlite_found(&db_path, &decided);
        let (ok, rate, p99) = report(
            &format!("SQLite, one server, {REVIEWERS} reviewers over HTTP on loopback, FULL"),
            &results,
            elapsed,
            drained,
            &found,
            &fakes,
            local,
        );
        all_ok &= ok;
        figures.push(("sqlite", rate, p99));
    }

    // 3. Two servers on one PostgreSQL database.
    match support::pg::database() {
        None => println!("PostgreSQL: skipped (not installed here)"),
        Some(tdb) => {
            let (ok, rate, p99) = two_servers_on_postgres(&rt, &root, &tdb.url, &s, local);
            all_ok &= ok;
            figures.push(("postgres", rate, p99));
        }
    }

    let (_, sqlite_rate, sqlite_p99) = figures[0];
    println!(
        "targets (SQLite server): decisions/s >= 2x local: {}; p99 claim <= 10 ms: {}",
        if sqlite_rate >= 2.0 * local {
            "met"
        } else {
            "MISSED"
        },
        if sqlite_p99 <= Duration::from_millis(10) {
            "met"
        } else {
            "MISSED"
        },
    );
    if let Some((_, pg_rate, pg_p99)) = figures.iter().find(|f| f.0 == "postgres") {
        println!(
            "PostgreSQL, two servers: {pg_rate:.0} decisions/s ({:.2}x the SQLite server), claim p99 {}",
            pg_rate / sqlite_rate,
            ms(*pg_p99)
        );
    }
    println!("correctness: {}", if all_ok { "ok" } else { "FAILED" });
    if !all_ok {
        std::process::exit(1);
    }
}
