//! Store benchmark: claim+decide (with its audit and outbox rows) at `synchronous=FULL`
//! and `NORMAL`, and streaming ingest of 100k JSONL lines.
//!
//! Run with `cargo bench --bench store`. A custom `main` (no divan/criterion sampling)
//! because every operation consumes queue state and, at `FULL`, is bound by the disk's
//! flush rate: we time long loops over real, consumed items and measure that flush rate
//! ourselves, on the same disk, between the rounds.
//!
//! Everything lives in a temp dir under `target/tmp` (same disk as the project, never
//! tmpfs). Per-operation CPU time and run-queue wait come from `/proc/thread-self/schedstat`,
//! so a round slowed down by other processes shows it.
//!
//! Arguments (after `--`): `quick` shortens every phase; `full`, `normal`, `ingest` run
//! only the named phases (`full` includes the flush probes).
//!
//! What-if knobs (environment; all unset for the numbers in BENCHMARKS.md):
//! - `STORE_BENCH_SQL`: SQL run on every timed connection after `Store::open` (pragmas,
//!   index or table changes to try before proposing them);
//! - `STORE_BENCH_INLINE_CHECKPOINT=1`: checkpoint inside commits (SQLite's default) instead
//!   of on the store's background checkpoint thread, which heavy writers use.
use std::fs::{File, OpenOptions};
use std::io::{Cursor, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signoff::ingest::Ingester;
use signoff::model::{DecisionKind, Policy, Request};
use signoff::queue::Decision;
use signoff::store::{Durability, IngestItem, Store, StoreOptions};

/// Lines in the ingest corpus (the 100k).
const INGEST_LINES: usize = 100_000;
/// Targets from the issue.
const FULL_TARGET_OF_HALF: f64 = 0.90;
const NORMAL_TARGET: f64 = 10_000.0;
const INGEST_TARGET: f64 = 50_000.0;

struct Settings {
    rounds: usize,
    probe: Duration,
    full_budget: Duration,
    normal_budget: Duration,
    seed_items: usize,
    ingest_lines: usize,
    phases: Vec<String>,
}

impl Settings {
    fn from_args() -> Settings {
        // `cargo bench` passes `--bench`; anything else that starts with `-` is ignored too.
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        let quick = args.iter().any(|a| a == "quick");
        let phases = args.into_iter().filter(|a| a != "quick").collect();
        if quick {
            Settings {
                rounds: 1,
                probe: Duration::from_millis(500),
                full_budget: Duration::from_secs(1),
                normal_budget: Duration::from_secs(1),
                seed_items: 15_000,
                ingest_lines: 20_000,
                phases,
            }
        } else {
            Settings {
                rounds: 3,
                probe: Duration::from_secs(2),
                full_budget: Duration::from_secs(4),
                normal_budget: Duration::from_secs(3),
                seed_items: 40_000,
                ingest_lines: INGEST_LINES,
                phases,
            }
        }
    }

    fn runs(&self, phase: &str) -> bool {
        self.phases.is_empty() || self.phases.iter().any(|p| p == phase)
    }
}

fn main() {
    let s = Settings::from_args();
    let tmp = tempfile::Builder::new()
        .prefix("store-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir under target/tmp");
    let dir = tmp.path();
    machine(dir);
    let mut summary = Vec::new();
    if s.runs("full") || s.runs("normal") {
        summary.extend(decide_phase(dir, &s));
    }
    if s.runs("ingest") {
        summary.push(ingest_phase(dir, &s));
    }
    println!();
    println!("== summary ==");
    for line in summary {
        println!("{line}");
    }
}

// ---------------------------------------------------------------- machine and disk

fn machine(dir: &Path) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let fs = std::process::Command::new("df")
        .arg("-PT")
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|o| {
            let cols: Vec<&str> = o.lines().nth(1)?.split_whitespace().collect();
            Some(format!(
                "{} on {} ({})",
                cols.get(1)?,
                cols.get(6)?,
                cols.first()?
            ))
        })
        .unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("== machine ==");
    println!("cpus: {cpus} ({cpu})");
    println!("temp dir: {} — {fs}", dir.display());
    println!("sqlite: {}", rusqlite::version());
    println!("load average at start: {}", load.join(" "));
}

/// Time this thread spent on a CPU and waiting for one, from the scheduler (ns), and the
/// bytes and calls the process handed to `write`/`pwrite` (`/proc/self/io`).
#[derive(Clone, Copy, Default)]
struct Sched {
    /// This thread's CPU time (ns).
    on_cpu: u64,
    run_wait: u64,
    written: u64,
    writes: u64,
    /// The whole process's CPU time, every thread including finished ones (ns, in 10 ms
    /// ticks): the store's checkpoint thread and the ingest parser thread work beside the
    /// timed one.
    process_cpu: u64,
}

/// utime + stime of the process from /proc/self/stat, in ns.
fn process_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks * 10_000_000
}

impl Sched {
    fn now() -> Sched {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        let field = |name: &str| {
            io.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Sched {
            on_cpu: it.next().unwrap_or(0),
            run_wait: it.next().unwrap_or(0),
            written: field("wchar:"),
            writes: field("syscw:"),
            process_cpu: process_cpu_ns(),
        }
    }

    fn since(self, start: Sched) -> Sched {
        Sched {
            on_cpu: self.on_cpu.saturating_sub(start.on_cpu),
            run_wait: self.run_wait.saturating_sub(start.run_wait),
            process_cpu: self.process_cpu.saturating_sub(start.process_cpu),
            written: self.written.saturating_sub(start.written),
            writes: self.writes.saturating_sub(start.writes),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Probe {
    /// 4 KiB rewritten in place in a preallocated file, then `fdatasync`: a pure data
    /// flush, like a WAL that is reused after a checkpoint. The reference.
    OverwriteFdatasync,
    /// The same with `fsync`: what the bundled SQLite calls (built without HAVE_FDATASYNC).
    OverwriteFsync,
    /// 4 KiB appended, then `fdatasync` (the size change costs a journal commit).
    AppendFdatasync,
    /// 12 pages (48 KiB) rewritten in place, one `pwrite` each, then `fdatasync`: the
    /// size of one claim or decide commit in the WAL (see "written per op").
    CommitSizedFdatasync,
}

/// One probe's result: flushes per second, and per flush the time on a CPU, waiting for
/// one, and off CPU (the device).
#[derive(Clone, Copy)]
struct Flush {
    rate: f64,
    cpu_us: f64,
    wait_us: f64,
    io_us: f64,
}

impl Flush {
    fn wait_share(&self) -> f64 {
        self.wait_us / (self.cpu_us + self.wait_us + self.io_us)
    }

    /// One flush without the wait for a CPU.
    fn unwaited_us(&self) -> f64 {
        self.cpu_us + self.io_us
    }
}

impl std::fmt::Display for Flush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>6.0}/s  (per flush: on CPU {:.0} µs, waiting for a CPU {:.0} µs, off CPU (device) {:.0} µs)",
            self.rate, self.cpu_us, self.wait_us, self.io_us
        )
    }
}

/// Flushes per second of one probe, for `dur`, in `dir`.
fn flush_rate(dir: &Path, probe: Probe, dur: Duration) -> Flush {
    const SLOTS: u64 = 1024;
    let path = dir.join(format!("probe-{probe:?}"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("probe file");
    let block = [0x5au8; 4096];
    if !matches!(probe, Probe::AppendFdatasync) {
        for _ in 0..SLOTS {
            f.write_all(&block).expect("preallocate");
        }
        f.sync_all().expect("sync");
    }
    sync_dir(dir);
    let sched = Sched::now();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        match probe {
            Probe::OverwriteFdatasync => {
                f.write_all_at(&block, (n % SLOTS) * 4096).expect("write");
                f.sync_data().expect("fdatasync");
            }
            Probe::OverwriteFsync => {
                f.write_all_at(&block, (n % SLOTS) * 4096).expect("write");
                f.sync_all().expect("fsync");
            }
            Probe::AppendFdatasync => {
                f.write_all(&block).expect("write");
                f.sync_data().expect("fdatasync");
            }
            Probe::CommitSizedFdatasync => {
                for k in 0..12 {
                    f.write_all_at(&block, ((n * 12 + k) % SLOTS) * 4096)
                        .expect("write");
                }
                f.sync_data().expect("fdatasync");
            }
        }
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let sched = Sched::now().since(sched);
    drop(f);
    let _ = std::fs::remove_file(&path);
    let wall_us = secs * 1e6 / n as f64;
    let cpu_us = sched.on_cpu as f64 / 1e3 / n as f64;
    let wait_us = sched.run_wait as f64 / 1e3 / n as f64;
    Flush {
        rate: n as f64 / secs,
        cpu_us,
        wait_us,
        io_us: (wall_us - cpu_us - wait_us).max(0.0),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The reference flush rates, measured before the store rounds.
struct Probes {
    fdatasync: Flush,
    fsync: Flush,
}

fn flush_probes(dir: &Path, dur: Duration) -> Probes {
    println!();
    println!("-- disk flush rate, same directory as the databases --");
    let fdatasync = flush_rate(dir, Probe::OverwriteFdatasync, dur);
    println!("fdatasync, overwrite in place: {fdatasync}  <- reference for the FULL target");
    let fsync = flush_rate(dir, Probe::OverwriteFsync, dur);
    println!("fsync,     overwrite in place: {fsync}  <- the call SQLite makes");
    let append = flush_rate(dir, Probe::AppendFdatasync, dur);
    println!("fdatasync, append:             {append}");
    let commit = flush_rate(dir, Probe::CommitSizedFdatasync, dur);
    println!("fdatasync, 48 KiB in place:    {commit}  <- one commit's worth of WAL frames");
    Probes { fdatasync, fsync }
}

// ---------------------------------------------------------------- corpus

/// splitmix64: a fixed seed gives the same corpus every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn pick_string<'a>(&mut self, xs: &'a [String]) -> &'a str {
        &xs[self.below(xs.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const FIRST: &[&str] = &[
    "Amara", "Jonas", "Priya", "Mateo", "Chloe", "Kenji", "Fatima", "Lars", "Ines", "Tomasz",
];
const LAST: &[&str] = &[
    "Osei", "Becker", "Raman", "Silva", "Martin", "Sato", "Haddad", "Nilsen", "Costa", "Nowak",
];
const TOPICS: &[&str] = &[
    "fleet tracking",
    "the annual plan",
    "invoice 2611-0042",
    "route planning",
    "the driver app",
    "onboarding for 40 vehicles",
    "our API integration",
    "a partnership in the Nordics",
    "the Customer Success Manager role",
    "a late delivery last Tuesday",
];
const SENTENCES: &[&str] = &[
    "We have been evaluating a few options over the last quarter and your name keeps coming up.",
    "Our operations team currently runs everything from spreadsheets, which no longer scales.",
    "Could you tell me what the onboarding looks like and how long it usually takes?",
    "I tried to reach your support line twice this week but nobody picked up.",
    "We would need the data to stay in the EU, and our security team will ask for your audit reports.",
    "The invoice we received does not match the quote we signed in September.",
    "Please let me know whether a call on Thursday or Friday afternoon would work for you.",
    "Attached you will find the details of the shipment and the photos the driver took.",
    "Our budget for next year is approved, so timing is good if we can move before December.",
    "I am happy to share more context about our setup if that helps you prepare.",
    "Several of our drivers reported that the app logs them out in the middle of a route.",
    "We are a family business with 35 trucks and two depots, growing about 20% a year.",
];
const STEPS: &[&str] = &[
    "Book a discovery call and update the CRM with fleet size.",
    "Send the onboarding guide and open a support ticket.",
    "Forward to billing to reissue the invoice.",
    "Acknowledge and route to the partnerships lead.",
    "Forward the CV to Recruiting and send an acknowledgement.",
];

/// One realistic request payload as a JSON line (~1.5 KB, of which ~1 KB body).
/// `intent` forces an intent; `clean` keeps every field valid (approvable).
fn request_line(
    i: usize,
    rng: &mut Rng,
    policy: &Policy,
    intent: Option<&str>,
    clean: bool,
) -> String {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let topic = rng.pick(TOPICS);
    let mut body = format!("Hello,\n\nI am writing about {topic}. ");
    while body.len() < 900 + rng.below(250) {
        body.push_str(rng.pick(SENTENCES));
        body.push(if rng.chance(25) { '\n' } else { ' ' });
    }
    body.push_str(&format!("\n\nBest regards,\n{first} {last}"));
    let secs = (i as u64 * 13) % (28 * 86_400);
    let received_at = format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}Z",
        secs / 86_400 + 1,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    );
    let intent = intent.unwrap_or_else(|| rng.pick_string(&policy.intents));
    let priority = rng.pick_string(&policy.priorities);
    let mut confidence = json!((40 + rng.below(60)) as f64 / 100.0);
    let mut summary = json!(format!(
        "{first} {last} writes about {topic}; {}",
        rng.pick(SENTENCES).to_lowercase()
    ));
    if !clean && rng.chance(1) {
        confidence = json!("high");
    }
    if !clean && rng.chance(1) {
        summary = Value::Null;
    }
    let escalation = if rng.chance(8) {
        json!("Customer mentions a contract deadline.")
    } else {
        Value::Null
    };
    let v = json!({
        "source": rng.pick(&["gmail", "web-form", "crm-bridge", "zendesk"]),
        "external_id": format!("bench-{i:07}"),
        "received_at": received_at,
        "correlation_id": format!("corr-{:016x}", rng.next()),
        "raw": {
            "channel": rng.pick(&["email", "form", "chat"]),
            "from": format!("{first} {last} <{}.{}@mail.example>", first.to_lowercase(), last.to_lowercase()),
            "subject": format!("Question about {topic}"),
            "body": body,
        },
        "ai": {
            "summary": summary,
            "intent": intent,
            "priority": priority,
            "confidence": confidence,
            "recommended_next_step": rng.pick(STEPS),
            "escalation_reason": escalation,
            // A clean item gets every action its intent names (an item whose AI said no
            // CRM update would queue one fewer); the draw is made either way so the
            // corpus stays the same otherwise.
            "crm_update_required": rng.chance(60) || clean,
            "human_review_required": rng.chance(30),
            "missing_info": if rng.chance(20) { json!(["phone number"]) } else { json!([]) },
            "draft_reply": format!("Hi {first},\n\nThank you for reaching out about {topic}. {} We will get back to you within one business day.\n\nBest,\nThe team", rng.pick(SENTENCES)),
            "model": "triage-large-2026-10",
            "prompt_version": "triage-v7",
        }
    });
    v.to_string()
}

fn corpus(n: usize, seed: u64, intent: Option<&str>, clean: bool) -> Vec<u8> {
    let policy = Policy::default();
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n * 1600);
    for i in 0..n {
        out.extend_from_slice(request_line(i, &mut rng, &policy, intent, clean).as_bytes());
        out.push(b'\n');
    }
    out
}

fn open(path: &Path, durability: Durability) -> Store {
    let store = Store::open(
        path,
        Arc::new(Policy::default()),
        &StoreOptions {
            durability,
            // What the heavy writers (ingest, the dispatcher) use; the knob compares.
            background_checkpoint: std::env::var_os("STORE_BENCH_INLINE_CHECKPOINT").is_none(),
            ..Default::default()
        },
    )
    .expect("open store");
    // What-if knob: extra SQL run on every timed connection, e.g.
    // STORE_BENCH_SQL='PRAGMA cache_size=-65536'. Unset for the numbers in BENCHMARKS.md.
    if let Ok(sql) = std::env::var("STORE_BENCH_SQL") {
        store
            .connection()
            .execute_batch(&sql)
            .expect("STORE_BENCH_SQL");
    }
    store
}

/// Copies `from` to `to` and flushes it, so writeback of the copy does not land inside
/// the timed loop.
/// Before a round (untimed): write back everything earlier rounds and phases left dirty
/// (`sync()`), so the kernel's writeback of the last round's gigabyte does not run on the
/// CPUs and the disk during this one.
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(200));
}

fn fresh_copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy seed db");
    // The audit log's anchor goes with its database (the key is shared: same directory).
    let anchor = signoff::store::anchor_path(from);
    if anchor.exists() {
        std::fs::copy(&anchor, signoff::store::anchor_path(to)).expect("copy seed anchor");
    }
    File::open(to)
        .and_then(|f| f.sync_all())
        .expect("sync copy");
    sync_dir(to.parent().expect("parent"));
}

fn count(store: &Store, sql: &str) -> i64 {
    store
        .connection()
        .query_row(sql, [], |r| r.get(0))
        .expect("count")
}

// ---------------------------------------------------------------- claim + decide

struct DecideRun {
    ops: usize,
    secs: f64,
    claim: Vec<u64>,
    decide: Vec<u64>,
    sched: Sched,
}

impl DecideRun {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    fn cpu_us(&self) -> f64 {
        self.sched.on_cpu as f64 / 1e3 / self.ops.max(1) as f64
    }

    fn wait_us(&self) -> f64 {
        self.sched.run_wait as f64 / 1e3 / self.ops.max(1) as f64
    }

    fn wall_us(&self) -> f64 {
        self.secs * 1e6 / self.ops.max(1) as f64
    }

    /// Off CPU and not waiting for one: I/O (flushes, page-cache writeback throttling).
    fn io_us(&self) -> f64 {
        (self.wall_us() - self.cpu_us() - self.wait_us()).max(0.0)
    }

    /// Share of the wall time spent waiting for a CPU (other processes' load).
    fn wait_share(&self) -> f64 {
        self.wait_us() / self.wall_us()
    }

    /// The rate this loop would have had without waiting for a CPU: an estimate.
    fn unwaited_rate(&self) -> f64 {
        1e6 / (self.cpu_us() + self.io_us())
    }
}

/// A round counts as contended when it, or a flush probe beside it, spent more than this
/// share of its time waiting for a CPU.
const CONTENDED: f64 = 0.2;

/// Median per-op CPU and run-queue wait of some rounds, for the summary.
fn cpu_note(runs: &[(f64, f64)]) -> String {
    format!(
        "per op on CPU {:.0} µs, waiting for a CPU {:.0} µs",
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect())
    )
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e6
}

/// Claims and approves `sales_lead` items (3 outbox rows, 2 audit rows each) until the
/// budget runs out, then checks every row is there.
fn claim_decide(path: &Path, durability: Durability, budget: Duration) -> DecideRun {
    let mut store = open(path, durability);
    let approve = Decision {
        kind: DecisionKind::Approve,
        revision: None,
        note: None,
        sets: vec![],
    };
    let audit_before = count(&store, "SELECT COUNT(*) FROM audit");
    let mut claim_ns = Vec::with_capacity(50_000);
    let mut decide_ns = Vec::with_capacity(50_000);
    let sched = Sched::now();
    let start = Instant::now();
    while start.elapsed() < budget {
        let t0 = Instant::now();
        let Some(claim) = store.claim_next("bench").expect("claim") else {
            println!("  (seeded items ran out)");
            break;
        };
        let t1 = Instant::now();
        let receipt = store.decide(&claim, &approve).expect("decide");
        let t2 = Instant::now();
        assert_eq!(receipt.actions.len(), 3, "sales_lead approves 3 actions");
        claim_ns.push((t1 - t0).as_nanos() as u64);
        decide_ns.push((t2 - t1).as_nanos() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    let sched = Sched::now().since(sched);
    let ops = decide_ns.len();
    // Everything the decisions promised is in the database.
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM decisions") as usize,
        ops
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM outbox") as usize,
        3 * ops
    );
    assert_eq!(
        (count(&store, "SELECT COUNT(*) FROM audit") - audit_before) as usize,
        2 * ops
    );
    claim_ns.sort_unstable();
    decide_ns.sort_unstable();
    DecideRun {
        ops,
        secs,
        claim: claim_ns,
        decide: decide_ns,
        sched,
    }
}

fn print_run(label: &str, r: &DecideRun, extra: &str) {
    let wall = r.secs * 1e6 / r.ops.max(1) as f64;
    let cpu = r.cpu_us();
    let wait = r.wait_us();
    println!(
        "claim+decide {label}: {:>7.0}/s  ({} in {:.2}s){extra}",
        r.rate(),
        r.ops,
        r.secs
    );
    println!(
        "    per op {wall:.0} µs = on CPU {cpu:.0} µs + waiting for a CPU {wait:.0} µs + off CPU (I/O) {:.0} µs",
        (wall - cpu - wait).max(0.0)
    );
    println!(
        "    written per op {:.1} KiB in {:.1} write calls (WAL frames and checkpoints)",
        r.sched.written as f64 / 1024.0 / r.ops.max(1) as f64,
        r.sched.writes as f64 / r.ops.max(1) as f64,
    );
    println!(
        "    the whole process (the checkpoint thread too) on CPU {:.0} µs per op",
        r.sched.process_cpu as f64 / 1e3 / r.ops.max(1) as f64,
    );
    println!(
        "    claim p50 {:.3} ms p99 {:.3} ms max {:.3} ms | decide p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        pct(&r.claim, 0.5),
        pct(&r.claim, 0.99),
        pct(&r.claim, 1.0),
        pct(&r.decide, 0.5),
        pct(&r.decide, 0.99),
        pct(&r.decide, 1.0),
    );
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn decide_phase(dir: &Path, s: &Settings) -> Vec<String> {
    println!();
    println!(
        "== claim+decide: approve sales_lead (2 commits, 2 audit rows, 1 decision, 3 outbox rows) =="
    );
    let seed = dir.join("seed.db");
    let t = Instant::now();
    {
        let lines = corpus(s.seed_items, 7, Some("sales_lead"), true);
        let mut store = open(&seed, Durability::Normal);
        let report = {
            let mut ing = Ingester::new(&mut store, "seed");
            ing.read("seed.jsonl", Cursor::new(lines)).expect("seed");
            ing.report
        };
        assert_eq!(report.ingested as usize, s.seed_items, "{report}");
        store
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
    }
    println!(
        "seeded {} pending items in {:.1}s; each round starts from a fresh copy",
        s.seed_items,
        t.elapsed().as_secs_f64()
    );

    let mut out = Vec::new();
    if s.runs("full") {
        out.push(full_rounds(dir, s, &seed));
    }
    if s.runs("normal") {
        out.push(normal_rounds(dir, s, &seed));
    }
    out
}

fn full_rounds(dir: &Path, s: &Settings, seed: &Path) -> String {
    let probes = flush_probes(dir, s.probe);
    println!();
    println!(
        "-- synchronous=FULL, {} rounds of {:?} --",
        s.rounds, s.full_budget
    );
    let mut full_rates = Vec::new();
    let mut full_cpu = Vec::new();
    let mut refs = Vec::new();
    let mut ratios = Vec::new();
    let mut fsync_rates = vec![probes.fsync.rate];
    let mut estimates = Vec::new();
    let mut contended_rounds = 0;
    let mut before = probes.fdatasync;
    for round in 1..=s.rounds {
        settle();
        let db = dir.join(format!("full-{round}.db"));
        fresh_copy(seed, &db);
        let r = claim_decide(&db, Durability::Full, s.full_budget);
        // The flush rate again right after the round: the reference is the mean of the
        // probes on either side, so a disk (or CPU) that got busier shows in both.
        let after = flush_rate(dir, Probe::OverwriteFdatasync, s.probe);
        let fs = flush_rate(dir, Probe::OverwriteFsync, s.probe);
        let reference = (before.rate + after.rate) / 2.0;
        let ratio = r.rate() / (reference / 2.0);
        print_run(
            &format!("FULL   round {round}"),
            &r,
            &format!(
                "  fdatasync {reference:.0}/s (mean of the probes before and after), {:.0}% of half",
                ratio * 100.0
            ),
        );
        println!("    probe after: fdatasync {after}");
        println!("                 fsync     {fs}");
        // Without the waits for a CPU on either side: op time vs two flushes.
        let flush_us = (before.unwaited_us() + after.unwaited_us()) / 2.0;
        let op_us = r.cpu_us() + r.io_us();
        let estimate = 2.0 * flush_us / op_us;
        let contended = [r.wait_share(), before.wait_share(), after.wait_share()]
            .iter()
            .any(|w| *w > CONTENDED);
        println!(
            "    without the waits for a CPU: op {op_us:.0} µs, flush {flush_us:.0} µs -> estimate {:.0}% of half{}",
            estimate * 100.0,
            if contended {
                "  [contended round: the measured ratio is not trustworthy]"
            } else {
                ""
            }
        );
        estimates.push(estimate);
        contended_rounds += usize::from(contended);
        full_rates.push(r.rate());
        full_cpu.push((r.cpu_us(), r.wait_us()));
        refs.push(reference);
        ratios.push(ratio);
        fsync_rates.push(fs.rate);
        before = after;
        remove_db(&db);
    }
    let full = median(full_rates);
    let ratio = median(ratios);
    let fd = median(refs);
    let fs = median(fsync_rates);
    let estimate = median(estimates);
    let verdict = if contended_rounds * 2 > s.rounds {
        format!(
            "INCONCLUSIVE: {contended_rounds} of {} rounds waited for a CPU; without the waits {} ({:.0}% of half)",
            s.rounds,
            verdict(estimate >= FULL_TARGET_OF_HALF),
            estimate * 100.0
        )
    } else {
        verdict(ratio >= FULL_TARGET_OF_HALF).to_string()
    };
    format!(
        "claim+decide FULL: {full:.0}/s (fdatasync: {fd:.0}/s, ratio {:.0}% of half; fsync: {fs:.0}/s, {:.0}% of half) target >= {:.0}% of half: {verdict} ({})",
        ratio * 100.0,
        full / (fs / 2.0) * 100.0,
        FULL_TARGET_OF_HALF * 100.0,
        cpu_note(&full_cpu)
    )
}

fn normal_rounds(dir: &Path, s: &Settings, seed: &Path) -> String {
    println!();
    println!(
        "-- synchronous=NORMAL, {} rounds of up to {:?} --",
        s.rounds, s.normal_budget
    );
    let mut normal_rates = Vec::new();
    let mut normal_cpu = Vec::new();
    let mut normal_unwaited = Vec::new();
    for round in 1..=s.rounds {
        settle();
        let db = dir.join(format!("normal-{round}.db"));
        fresh_copy(seed, &db);
        let r = claim_decide(&db, Durability::Normal, s.normal_budget);
        print_run(&format!("NORMAL round {round}"), &r, "");
        normal_rates.push(r.rate());
        normal_cpu.push((r.cpu_us(), r.wait_us()));
        normal_unwaited.push(r.unwaited_rate());
        remove_db(&db);
    }
    let normal = median(normal_rates);
    format!(
        "claim+decide NORMAL: {normal:.0}/s target >= {NORMAL_TARGET:.0}/s: {} ({}; without the waits ~{:.0}/s)",
        verdict_of(normal, median(normal_unwaited.clone()), NORMAL_TARGET),
        cpu_note(&normal_cpu),
        median(normal_unwaited)
    )
}

fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".anchor"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// The same corpus in two timed parts, per batch of 2,000: parsing (JSON, typed view,
/// canonical hash: what `Ingester` does before the store) and `Store::ingest_batch` alone.
/// What `Ingester::read` costs beyond their sum is its own bookkeeping.
fn ingest_parts(dir: &Path, lines: &[u8], n: usize) {
    let db = dir.join("ingest-parts.db");
    let mut store = open(&db, Durability::Full);
    let (mut parse, mut write) = (Sched::default(), Sched::default());
    let (mut parse_s, mut write_s) = (0.0, 0.0);
    let add = |a: Sched, b: Sched| Sched {
        on_cpu: a.on_cpu + b.on_cpu,
        run_wait: a.run_wait + b.run_wait,
        written: a.written + b.written,
        writes: a.writes + b.writes,
        process_cpu: a.process_cpu + b.process_cpu,
    };
    let text = std::str::from_utf8(lines).expect("utf-8 corpus");
    let mut it = text.lines().enumerate().peekable();
    while it.peek().is_some() {
        let s0 = Sched::now();
        let t0 = Instant::now();
        let items: Vec<IngestItem> = it
            .by_ref()
            .take(2_000)
            .map(|(i, line)| {
                let (value, request) = Request::from_json(line).expect("valid line");
                IngestItem::new(line.to_string(), value, request, format!("parts:{i}"))
            })
            .collect();
        let s1 = Sched::now();
        let t1 = Instant::now();
        store.ingest_batch(&items, "bench").expect("ingest_batch");
        let s2 = Sched::now();
        parse = add(parse, s1.since(s0));
        write = add(write, s2.since(s1));
        parse_s += (t1 - t0).as_secs_f64();
        write_s += t1.elapsed().as_secs_f64();
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM requests") as usize, n);
    let us = |ns: u64| ns as f64 / 1e3 / n as f64;
    println!(
        "ingest in parts: parse+hash {:.0} µs/line on CPU ({:.0}/s of wall), Store::ingest_batch {:.0} µs/line on CPU ({:.0}/s of wall, {:.1} KiB written per line)",
        us(parse.on_cpu),
        n as f64 / parse_s,
        us(write.on_cpu),
        n as f64 / write_s,
        write.written as f64 / 1024.0 / n as f64,
    );
    drop(store);
    remove_db(&db);
}

/// Database pages per table and index after ingest (SQLite's `dbstat`), per line: where
/// the written bytes go.
fn space_per_line(store: &Store, lines: usize) {
    let mut stmt = store
        .connection()
        .prepare(
            "SELECT name, COUNT(*), SUM(pagetype = 'overflow'), SUM(payload) FROM dbstat
             GROUP BY name ORDER BY COUNT(*) DESC",
        )
        .expect("dbstat");
    let rows: Vec<(String, i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("dbstat")
        .collect::<Result<_, _>>()
        .expect("dbstat");
    let page: i64 = store
        .connection()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page_size");
    let total: i64 = rows.iter().map(|r| r.1).sum();
    println!(
        "    database: {:.0} bytes per line in {page}-byte pages; largest tables and indexes:",
        (total * page) as f64 / lines as f64
    );
    for (name, pages, overflow, payload) in rows.iter().take(6) {
        println!(
            "      {name:<18} {:>6.0} bytes/line in pages ({:.0} payload; {} of {} pages are overflow pages)",
            (pages * page) as f64 / lines as f64,
            *payload as f64 / lines as f64,
            overflow,
            pages
        );
    }
}

/// For throughput targets, where other processes can only slow a run down: a miss that the
/// run would have met without waiting for a CPU is not a miss of the code.
fn verdict_of(measured: f64, unwaited: f64, target: f64) -> &'static str {
    if measured >= target {
        "MET"
    } else if unwaited >= target {
        "INCONCLUSIVE (met only without the waits for a CPU)"
    } else {
        "NOT MET"
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

// ---------------------------------------------------------------- ingest

fn ingest_phase(dir: &Path, s: &Settings) -> String {
    println!();
    println!(
        "== ingest: {} JSONL lines through Ingester::read (parse, validate, hash, 2,000 per transaction), synchronous=FULL ==",
        s.ingest_lines
    );
    let t = Instant::now();
    let lines = corpus(s.ingest_lines, 42, None, false);
    println!(
        "corpus: {} lines, {:.1} MB ({:.0} bytes/line), generated in {:.1}s",
        s.ingest_lines,
        lines.len() as f64 / 1e6,
        lines.len() as f64 / s.ingest_lines as f64,
        t.elapsed().as_secs_f64()
    );
    let mut rates = Vec::new();
    let mut unwaited = Vec::new();
    let mut cpu = Vec::new();
    for round in 1..=s.rounds {
        settle();
        let db = dir.join(format!("ingest-{round}.db"));
        let mut store = open(&db, Durability::Full);
        let sched = Sched::now();
        let start = Instant::now();
        let report = {
            let mut ing = Ingester::new(&mut store, "bench");
            ing.read("bench.jsonl", Cursor::new(&lines[..]))
                .expect("ingest");
            ing.report
        };
        let secs = start.elapsed().as_secs_f64();
        let sched = Sched::now().since(sched);
        assert_eq!(report.ingested as usize, s.ingest_lines, "{report}");
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM requests") as usize,
            s.ingest_lines
        );
        let rate = s.ingest_lines as f64 / secs;
        println!(
            "ingest round {round}: {rate:>7.0} lines/s  ({:.1} MB/s, {:.2}s; on CPU {:.2}s, waiting for a CPU {:.2}s)",
            lines.len() as f64 / 1e6 / secs,
            secs,
            sched.on_cpu as f64 / 1e9,
            sched.run_wait as f64 / 1e9,
        );
        println!(
            "    written per line {:.1} KiB in {:.1} write calls (WAL frames and checkpoints)",
            sched.written as f64 / 1024.0 / s.ingest_lines as f64,
            sched.writes as f64 / s.ingest_lines as f64,
        );
        println!(
            "    the whole process (parser and checkpoint threads too) on CPU {:.1} µs per line",
            sched.process_cpu as f64 / 1e3 / s.ingest_lines as f64,
        );
        if round == 1 {
            space_per_line(&store, s.ingest_lines);
        }
        rates.push(rate);
        unwaited.push(s.ingest_lines as f64 / (secs - sched.run_wait as f64 / 1e9));
        cpu.push((
            sched.on_cpu as f64 / 1e3 / s.ingest_lines as f64,
            sched.run_wait as f64 / 1e3 / s.ingest_lines as f64,
        ));
        drop(store);
        remove_db(&db);
    }
    ingest_parts(dir, &lines, s.ingest_lines);
    let rate = median(rates);
    format!(
        "ingest {}k JSONL: {rate:.0} lines/s target >= {INGEST_TARGET:.0}/s: {} ({}; without the waits ~{:.0}/s)",
        s.ingest_lines / 1000,
        verdict_of(rate, median(unwaited.clone()), INGEST_TARGET),
        cpu_note(&cpu).replace("per op", "per line"),
        median(unwaited)
    )
}
