//! Render benchmarks for the review console (issue 3), on a queue of 1,000,000 items.
//!
//! `cargo bench --bench render` prints a report (p50/p99 of frame and key→frame times,
//! bytes written per `j`, start-up, RSS and idle CPU of the real binary) and then runs the
//! divan micro-benchmarks. The 1M-item database is seeded once into
//! `target/bench-render-1m.db` (a few minutes) and reused.
//!
//! Environment: `SIGNOFF_BENCH_ITEMS` (default 1000000), `SIGNOFF_BENCH_IDLE_SECS`
//! (default 60; 0 skips the process measurements), `SIGNOFF_BENCH_KEYS` (default 3000).
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::buffer::Buffer;
use serde_json::json;
use signoff::model::{Policy, Request};
use signoff::queue::{LocalQueue, Queue};
use signoff::store::{Durability, IngestItem, Store, StoreOptions};
use signoff::tui::action::{Action, Effect};
use signoff::tui::app::App;
use signoff::tui::backend::AnsiBackend;
use signoff::tui::{TuiOptions, UiConfig, effects, event_loop, update, view};

/// A terminal that counts what it is sent and throws it away (keeping the last bytes
/// when `SIGNOFF_BENCH_DUMP` names a file, to see where they go).
#[derive(Clone, Default)]
struct Counting(Arc<AtomicU64>, Option<Arc<std::sync::Mutex<Vec<u8>>>>);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        if let Some(m) = &self.1
            && let Ok(mut v) = m.lock()
        {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn items_wanted() -> u64 {
    std::env::var("SIGNOFF_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn db_path() -> PathBuf {
    let n = items_wanted();
    let name = if n == 1_000_000 {
        "bench-render-1m.db".to_string()
    } else {
        format!("bench-render-{n}.db")
    };
    target_dir().join(name)
}

/// The seeded database (created on first use).
fn seeded_db() -> PathBuf {
    let path = db_path();
    let want = items_wanted();
    let opts = StoreOptions {
        durability: Durability::Normal,
        ..StoreOptions::default()
    };
    let policy = Arc::new(Policy::default());
    if path.exists() {
        if let Ok(s) = Store::open(&path, policy.clone(), &opts)
            && let Ok(n) = s
                .connection()
                .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get::<_, i64>(0))
            && n as u64 >= want
        {
            return path;
        }
        let _ = std::fs::remove_file(&path);
    }
    eprintln!("seeding {want} items into {} (once)…", path.display());
    let t0 = Instant::now();
    let mut store = Store::open(&path, policy.clone(), &opts).expect("open bench db");
    // The 40 demo requests (realistic lengths, scripts and flags), cycled with new keys
    // and spread receipt times.
    let templates: Vec<serde_json::Value> = include_str!("../src/demo/requests.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!templates.is_empty(), "demo requests");
    let base = event_loop::now_ms() - 3 * 86_400_000;
    let mut i = 0u64;
    while i < want {
        let batch: Vec<IngestItem> = (i..(i + 10_000).min(want))
            .map(|k| {
                let received = base + (k as i64 * 259) % (3 * 86_400_000);
                let t = time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(received) * 1_000_000,
                )
                .expect("time")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("fmt");
                let mut v = templates[(k % templates.len() as u64) as usize].clone();
                v["external_id"] = json!(format!("b-{k}"));
                v["received_at"] = json!(t);
                let r = Request::from_value(&v).expect("request");
                IngestItem::new(v.to_string(), v, r, "bench".into())
            })
            .collect();
        store.ingest_batch(&batch, "bench").expect("ingest");
        i += batch.len() as u64;
        if i.is_multiple_of(100_000) {
            eprintln!("  {i} ({:.0?})", t0.elapsed());
        }
    }
    eprintln!("seeded in {:.1?}", t0.elapsed());
    path
}

fn options() -> TuiOptions {
    TuiOptions {
        reviewer: "bench".into(),
        read_only: false,
        policy: Arc::new(Policy::default()),
        ui: UiConfig::default(),
        actions_mode: "sandbox".into(),
        themes_dir: None,
        state_dir: None,
    }
}

/// Applies effects until none are left, like the event loop but synchronously.
fn settle(rt: &tokio::runtime::Runtime, q: &dyn Queue, app: &mut App, fx: Vec<Effect>) {
    let mut todo: std::collections::VecDeque<Effect> = fx.into();
    while let Some(e) = todo.pop_front() {
        if let Some(l) = rt.block_on(effects::perform(q, "bench", e)) {
            todo.extend(update::update(app, Action::Loaded(l)));
        }
    }
}

fn loaded_app(rt: &tokio::runtime::Runtime, q: &dyn Queue, w: u16, h: u16) -> App {
    let mut app = signoff::tui::initial_app(q, &options(), w, h);
    let fx = update::init(&mut app);
    settle(rt, q, &mut app, fx);
    app
}

/// `event_loop::draw_frame`, keeping the frame's buffer to count changed cells.
type Term = Terminal<AnsiBackend<io::BufWriter<Counting>>>;

/// The console's terminal over a counting writer. A fixed viewport: the real console asks
/// the tty for its size each frame (one ioctl); off a tty crossterm would run `tput`.
fn terminal(counter: &Counting, w: u16, h: u16) -> Term {
    Terminal::with_options(
        AnsiBackend::new(io::BufWriter::with_capacity(64 * 1024, counter.clone())),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, h)),
        },
    )
    .expect("terminal")
}

/// `event_loop::draw_frame`, returning the frame (copied after the clock stops: the
/// console does not copy it) and how long drawing and writing it took.
fn frame(term: &mut Term, app: &App) -> (Buffer, Duration) {
    let t = Instant::now();
    crossterm::queue!(
        term.backend_mut(),
        crossterm::terminal::BeginSynchronizedUpdate
    )
    .expect("sync");
    let sync = term.backend().needs_sync();
    let done = term.draw(|f| view::draw(app, f)).expect("draw");
    let took = t.elapsed();
    let copy = done.buffer.clone();
    if sync {
        term.backend_mut().sync_owned(copy.clone());
    }
    let t = Instant::now();
    crossterm::execute!(
        term.backend_mut(),
        crossterm::terminal::EndSynchronizedUpdate
    )
    .expect("sync");
    (copy, took + t.elapsed())
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn median_u64(v: &mut [u64]) -> u64 {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Bytes of the symbols of the cells that differ between two frames.
fn changed_cell_bytes(prev: &Buffer, next: &Buffer) -> (u64, u64) {
    let mut cells = 0;
    let mut bytes = 0;
    for (a, b) in prev.content.iter().zip(next.content.iter()) {
        if a != b {
            cells += 1;
            bytes += b.symbol().len() as u64;
        }
    }
    (cells, bytes)
}

/// Two frames as text, each row followed by a marker row (`^` symbol changed, `~` style
/// only), for `SIGNOFF_BENCH_DUMP`.
fn screens(prev: &Buffer, next: &Buffer) -> String {
    let mut out = String::new();
    for (name, b) in [("before", prev), ("after", next)] {
        out.push_str(&format!("--- {name}\n"));
        for y in 0..b.area.height {
            let mut line = String::new();
            let mut marks = String::new();
            for x in 0..b.area.width {
                let (p, n) = (&prev[(x, y)], &next[(x, y)]);
                line.push_str(b[(x, y)].symbol());
                marks.push(if p.symbol() != n.symbol() {
                    '^'
                } else if p != n {
                    '~'
                } else {
                    ' '
                });
            }
            out.push_str(&format!("{line}\n"));
            if name == "after" {
                out.push_str(&format!("{}\n", marks.trim_end()));
            }
        }
    }
    out
}

fn report() {
    let path = seeded_db();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let policy = Arc::new(Policy::default());

    // Start to first frame (in process: open the queue, build the state, draw).
    let t0 = Instant::now();
    let q = LocalQueue::open(&path, policy.clone(), &StoreOptions::default()).expect("queue");
    let mut app = signoff::tui::initial_app(&q, &options(), 120, 40);
    let fx = update::init(&mut app);
    let dump = std::env::var_os("SIGNOFF_BENCH_DUMP").map(PathBuf::from);
    let counter = Counting(
        Arc::new(AtomicU64::new(0)),
        dump.as_ref()
            .map(|_| Arc::new(std::sync::Mutex::new(Vec::new()))),
    );
    let mut term = terminal(&counter, 120, 40);
    event_loop::draw_frame(&mut term, &app).expect("draw");
    let first_frame = t0.elapsed();
    settle(&rt, &q, &mut app, fx);
    event_loop::draw_frame(&mut term, &app).expect("draw");
    let first_data = t0.elapsed();
    println!("## Render (items: {})\n", app.list.page.total);
    println!("start → first frame (in process, queue open + state + draw): {first_frame:.2?}");
    println!("start → first frame with the page, counts and details loaded: {first_data:.2?}");

    // One 120×40 frame: alternate between two states so every frame changes rows + detail.
    let mut a = loaded_app(&rt, &q, 120, 40);
    let mut b = a.clone();
    let fx = update::update(&mut b, Action::Cmd(signoff::tui::action::Cmd::Down));
    settle(&rt, &q, &mut b, fx);
    a.dirty = false;
    let mut frames = Vec::new();
    for i in 0..5000 {
        let app = if i % 2 == 0 { &a } else { &b };
        let t = Instant::now();
        let sync = term.backend().needs_sync();
        let done = term.draw(|f| view::draw(app, f)).expect("draw");
        let copy = sync.then(|| done.buffer.clone());
        if let Some(b) = copy {
            term.backend_mut().sync_owned(b);
        }
        term.backend_mut().flush().expect("flush");
        frames.push(t.elapsed());
    }
    println!(
        "one 120×40 frame (draw + diff + write), 1M-item queue: p50 {:.3?}  p99 {:.3?}  max {:.3?}",
        pct(&mut frames, 0.5),
        pct(&mut frames, 0.99),
        pct(&mut frames, 1.0)
    );

    // Key → frame flushed, bytes per j, against cells changed.
    let keys: usize = std::env::var("SIGNOFF_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut app = loaded_app(&rt, &q, 120, 40);
    let mut prev = frame(&mut term, &app).0;
    let mut key_frame = Vec::new();
    let mut fetch = Vec::new();
    let mut bytes = Vec::new();
    let mut ratios = Vec::new();
    let mut detail_changed = 0usize;
    let j = signoff::tui::keymap::Key::char('j');
    let jev = crossterm::event::KeyEvent::new(j.code, j.mods);
    for _ in 0..keys {
        let before = counter.0.load(Ordering::Relaxed);
        if let Some(m) = &counter.1
            && let Ok(mut v) = m.lock()
        {
            v.clear();
        }
        let was = app.current_id();
        let t = Instant::now();
        let fx = update::update(&mut app, Action::Key(jev));
        let updated = t.elapsed();
        let (next, drawn) = frame(&mut term, &app);
        key_frame.push(updated + drawn);
        let written = counter.0.load(Ordering::Relaxed) - before;
        let (_, changed) = changed_cell_bytes(&prev, &next);
        if app.current_id() != was && app.current_detail().is_some() {
            detail_changed += 1;
            if detail_changed == 100
                && let (Some(path), Some(m)) = (&dump, &counter.1)
                && let Ok(v) = m.lock()
            {
                let _ = std::fs::write(path, &*v);
                // Both screens as text, with `^` under each changed cell.
                let _ = std::fs::write(path.with_extension("screens.txt"), screens(&prev, &next));
            }
            bytes.push(written);
            if changed > 0 {
                ratios.push(written as f64 / changed as f64);
            }
        }
        prev = next;
        // The fetches run in tasks in the real loop; here after the measured frame.
        let t = Instant::now();
        let had = !fx.is_empty();
        settle(&rt, &q, &mut app, fx);
        if had {
            fetch.push(t.elapsed());
            if app.dirty {
                prev = frame(&mut term, &app).0;
            }
        }
    }
    ratios.sort_by(|x, y| x.total_cmp(y));
    if std::env::var_os("SIGNOFF_BENCH_SPREAD").is_some() {
        let mut v = bytes.clone();
        v.sort();
        let at = |p: f64| {
            v.get(((v.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "bytes per j: min {} p10 {} p25 {} p50 {} p75 {} p90 {} max {}",
            at(0.0),
            at(0.1),
            at(0.25),
            at(0.5),
            at(0.75),
            at(0.9),
            at(1.0)
        );
    }
    println!(
        "key j → frame flushed ({keys} presses through the 1M list): p50 {:.3?}  p99 {:.3?}  max {:.3?}",
        pct(&mut key_frame, 0.5),
        pct(&mut key_frame, 0.99),
        pct(&mut key_frame, 1.0)
    );
    if !fetch.is_empty() {
        println!(
            "  page/detail fetches after a j (async in the console, {} of them): p50 {:.3?}  p99 {:.3?}",
            fetch.len(),
            pct(&mut fetch, 0.5),
            pct(&mut fetch, 0.99)
        );
    }
    println!(
        "bytes written per j that moves the selection and changes the detail ({} samples): median {} B; \
         written / bytes of changed cells: median {:.2}×, p99 {:.2}×",
        detail_changed,
        median_u64(&mut bytes),
        ratios.get(ratios.len() / 2).copied().unwrap_or(0.0),
        ratios
            .get(((ratios.len() as f64 - 1.0) * 0.99) as usize)
            .copied()
            .unwrap_or(0.0)
    );
    // A redraw with no change: the loop does not draw at all (dirty is false) …
    let before = counter.0.load(Ordering::Relaxed);
    let fx = update::update(&mut app, Action::Poll);
    if app.dirty {
        event_loop::draw_frame(&mut term, &app).expect("draw");
    }
    let _ = fx;
    println!(
        "bytes for an event that changes nothing (Poll, same token): {} B",
        counter.0.load(Ordering::Relaxed) - before
    );
    // … and even a forced draw of an unchanged state writes only the frame envelope.
    let before = counter.0.load(Ordering::Relaxed);
    event_loop::draw_frame(&mut term, &app).expect("draw");
    println!(
        "bytes for a forced draw of an unchanged state: {} B",
        counter.0.load(Ordering::Relaxed) - before
    );
    drop(q);

    process_report(&path);
}

/// RSS, start-up and idle CPU of the real binary in tmux.
fn process_report(db: &Path) {
    let idle: u64 = std::env::var("SIGNOFF_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    if idle == 0 {
        return;
    }
    let have_tmux = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_tmux {
        println!("(tmux not found: no process measurements)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("signoff-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let socket = format!("signoff-bench-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux")
    };
    // `--read-only` leaves out the background outbox dispatcher the CLI starts beside the
    // console, to measure the console alone.
    let read_only = std::env::var_os("SIGNOFF_BENCH_READ_ONLY").is_some();
    println!(
        "process: signoff --db <1M db>{}",
        if read_only {
            " --read-only (console alone, no background dispatcher)"
        } else {
            " (console + the CLI's background outbox dispatcher)"
        }
    );
    let cmd = format!(
        "exec env SIGNOFF_CONFIG_DIR='{}' SIGNOFF_DATA_DIR='{}' SIGNOFF_REVIEWER__ALLOW_OVERRIDE=true '{}' --db '{}' --reviewer bench{}",
        dir.join("config").display(),
        dir.join("data").display(),
        env!("CARGO_BIN_EXE_signoff"),
        db.display(),
        if read_only { " --read-only" } else { "" }
    );
    let t0 = Instant::now();
    tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        "b",
        &cmd,
    ]);
    let mut first_frame = None;
    let mut first_data = None;
    while t0.elapsed() < Duration::from_secs(30) {
        let s =
            String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "b"]).stdout).into_owned();
        if first_frame.is_none() && s.contains("Queue ·") {
            first_frame = Some(t0.elapsed());
        }
        // Both on screen: the list's selected row and the status bar's counts (the bar
        // says "counting…" until they come).
        if s.contains("▶") && s.contains(" pending · ") && s.contains(" over SLA") {
            first_data = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = String::from_utf8_lossy(&tmux(&["display", "-p", "-t", "b", "#{pane_pid}"]).stdout)
        .trim()
        .to_string();
    println!(
        "binary in tmux 120×40, spawn → first frame on screen: {:.0?}; → list and counts on screen: {:.0?} (tmux capture polled every 2 ms)",
        first_frame.unwrap_or_default(),
        first_data.unwrap_or_default()
    );
    let status =
        |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |s: &str, k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(500));
    let st = status(&pid);
    println!(
        "RSS with the 1M-item queue open: {:.1} MB (peak {:.1} MB)",
        field(&st, "VmRSS:") as f64 / 1024.0,
        field(&st, "VmHWM:") as f64 / 1024.0
    );
    let ticks = |pid: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_string();
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0)
    };
    // Per thread: tokio's blocking threads come and go, so a plain sum can go down.
    type PerThread = std::collections::HashMap<String, u64>;
    let switches = |pid: &str| -> PerThread {
        let mut n = PerThread::new();
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in rd.flatten() {
                let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
                n.insert(
                    t.file_name().to_string_lossy().into_owned(),
                    field(&s, "voluntary_ctxt_switches:")
                        + field(&s, "nonvoluntary_ctxt_switches:"),
                );
            }
        }
        n
    };
    let delta = |a: &PerThread, b: &PerThread| -> u64 {
        b.iter()
            .map(|(tid, after)| after.saturating_sub(a.get(tid).copied().unwrap_or(0)))
            .sum()
    };
    // Let start-up settle, then measure idle.
    std::thread::sleep(Duration::from_secs(3));
    let (c0, w0, i0) = (ticks(&pid), switches(&pid), Instant::now());
    std::thread::sleep(Duration::from_secs(idle));
    let (c1, w1, el) = (ticks(&pid), switches(&pid), i0.elapsed());
    let woke = delta(&w0, &w1);
    let hz = 100.0; // USER_HZ on Linux
    let cpu = (c1 - c0) as f64 / hz / el.as_secs_f64() * 100.0;
    println!(
        "idle over {:.0?}: CPU {:.2}% ({} ticks of 10 ms); {} context switches in all threads = {:.2} wake-ups/s",
        el,
        cpu,
        c1.saturating_sub(c0),
        woke,
        woke as f64 / el.as_secs_f64()
    );
    tmux(&["send-keys", "-t", "b", "q"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux(&["kill-server"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `--list`, `--test`, or a filter naming divan benchmarks: divan alone.
    if std::env::args()
        .skip(1)
        .any(|a| a == "--list" || a == "--test" || !a.starts_with('-'))
    {
        divan::main();
        return;
    }
    report();
    divan::main();
}

/// The frame cost alone, divan's view (no database: the fixture page is cloned in memory).
#[divan::bench]
fn draw_list_and_detail_120x40(bencher: divan::Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let path = seeded_db();
    let q = LocalQueue::open(&path, Arc::new(Policy::default()), &StoreOptions::default())
        .expect("queue");
    let app = loaded_app(&rt, &q, 120, 40);
    let mut buf = Buffer::empty(ratatui::layout::Rect::new(0, 0, 120, 40));
    let backend = ratatui::backend::TestBackend::new(120, 40);
    let mut term = Terminal::new(backend).expect("terminal");
    bencher.bench_local(|| {
        buf.reset();
        term.draw(|f| view::draw(&app, f)).expect("draw");
    });
}

/// A hostile request selected: a 2 MB body in one line and a 200 KB AI summary. Only what
/// the screen shows is sanitised and wrapped (it was all of it, ~40 ms a frame).
#[divan::bench]
fn draw_a_2mb_request_120x40(bencher: divan::Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.db");
    let policy = Arc::new(Policy::default());
    {
        let mut store =
            Store::open(&path, policy.clone(), &StoreOptions::default()).expect("store");
        let v = json!({
            "source": "bench", "external_id": "big",
            "raw": {"subject": "huge", "body": format!("BEGIN {}", "A".repeat(2_000_000))},
            "ai": {"summary": "x".repeat(200_000), "intent": "sales_lead",
                   "priority": "normal", "confidence": 0.5}
        });
        let r = Request::from_value(&v).expect("request");
        store
            .ingest_batch(
                &[IngestItem::new(v.to_string(), v, r, "bench".into())],
                "bench",
            )
            .expect("ingest");
    }
    let q = LocalQueue::open(&path, policy, &StoreOptions::default()).expect("queue");
    let app = loaded_app(&rt, &q, 120, 40);
    let backend = ratatui::backend::TestBackend::new(120, 40);
    let mut term = Terminal::new(backend).expect("terminal");
    bencher.bench_local(|| {
        term.draw(|f| view::draw(&app, f)).expect("draw");
    });
}

/// The frame as the console draws it: view, ratatui's diff and the planner (into a sink),
/// alternating between two selected rows so every frame changes the list and the detail.
#[divan::bench]
fn frame_through_backend_120x40(bencher: divan::Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let path = seeded_db();
    let q = LocalQueue::open(&path, Arc::new(Policy::default()), &StoreOptions::default())
        .expect("queue");
    let a = loaded_app(&rt, &q, 120, 40);
    let mut b = a.clone();
    let fx = update::update(&mut b, Action::Cmd(signoff::tui::action::Cmd::Down));
    settle(&rt, &q, &mut b, fx);
    let mut term = terminal(&Counting::default(), 120, 40);
    let mut i = 0u64;
    bencher.bench_local(|| {
        i += 1;
        let app = if i.is_multiple_of(2) { &a } else { &b };
        let sync = term.backend().needs_sync();
        let done = term.draw(|f| view::draw(app, f)).expect("draw");
        let copy = sync.then(|| done.buffer.clone());
        if let Some(b) = copy {
            term.backend_mut().sync_owned(b);
        }
        term.backend_mut().flush().expect("flush");
    });
}
