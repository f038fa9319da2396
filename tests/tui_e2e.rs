//! End-to-end: the real binary in a pseudo-terminal (tmux): start on a seeded DB, approve
//! one item, reject one with a reason, quit; then check the DB and that the terminal was
//! restored (alternate screen left, tty back in cooked mode). Also: a panic restores it;
//! SIGTERM and SIGHUP release the claim of an open item and exit cleanly.
//!
//! Needs tmux (`.ci/run` installs it). Without tmux the tests say so and pass, unless `CI`
//! is set, where a missing tmux fails them.
mod tui_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use signoff::model::Policy;
use signoff::store::{Store, StoreOptions};

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn available() -> bool {
        let ok = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "tmux is required for the end-to-end console tests"
            );
            eprintln!("tmux not found: skipping the end-to-end console test");
        }
        ok
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn start(name: &str, dir: &Path, shell_cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("signoff-e2e-{}-{name}", std::process::id()),
            session: "e2e".into(),
        };
        let status = t
            .tmux()
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "100",
                "-y",
                "30",
            ])
            .args(["-s", &t.session, "-c"])
            .arg(dir)
            .arg(shell_cmd)
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux starts");
        assert!(status.success());
        t
    }

    fn capture(&self) -> String {
        let o = self
            .tmux()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn alternate_on(&self) -> String {
        let o = self
            .tmux()
            .args(["display", "-p", "-t", &self.session, "#{alternate_on}"])
            .output()
            .expect("display");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(status.success());
    }

    /// Waits (up to 15 s; no timing is asserted) until `pred` holds on the screen.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "waited for {what}; the screen is:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

fn wait_file(path: &Path) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shell line tmux runs: the console, then its exit status and the tty's mode.
fn console_cmd(dir: &Path, db: &Path, extra_env: &str) -> String {
    let q = |p: &Path| format!("'{}'", p.display());
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_signoff"));
    format!(
        "env SIGNOFF_CONFIG_DIR={cfg} SIGNOFF_DATA_DIR={data} SIGNOFF_REVIEWER__ALLOW_OVERRIDE=true {extra_env} {bin} --db {db} --reviewer e2e 2>{err}; \
         rc=$?; stty -a > {stty}; echo $rc > {status}; sleep 30",
        cfg = q(&dir.join("config")),
        data = q(&dir.join("data")),
        bin = q(&bin),
        db = q(db),
        err = q(&dir.join("stderr.txt")),
        status = q(&dir.join("status.txt")),
        stty = q(&dir.join("stty.txt")),
    )
}

fn assert_tty_sane(dir: &Path) {
    let stty = std::fs::read_to_string(dir.join("stty.txt")).expect("stty output");
    for flag in ["icanon", "echo", "isig"] {
        assert!(
            stty.split_whitespace().any(|w| w == flag),
            "tty not restored ({flag} missing):\n{stty}"
        );
    }
}

#[test]
fn approve_reject_quit_in_a_real_terminal() {
    if !Tmux::available() {
        return;
    }
    let db = tui_common::seeded_db();
    let dir = db.dir.path();
    let t = Tmux::start("flow", dir, &console_cmd(dir, &db.path, ""));
    let s = t.wait("the queue", |s| s.contains("Queue · 6") && s.contains("▶"));
    assert!(s.contains("pending"), "{s}");
    assert_eq!(t.alternate_on(), "1");
    // The first item (invalid fields) cannot be approved: the console says why and keeps going.
    t.keys(&["a"]);
    t.wait("the refusal", |s| s.contains("cannot approve"));
    // Move to the second item (RTL complaint) and, once it is on screen, approve it with
    // one key.
    t.keys(&["j"]);
    t.wait("the second item", |s| s.contains("Request #1"));
    t.keys(&["a"]);
    t.wait("the approval", |s| s.contains("approved #1"));
    // Reject the item now selected (CJK invoice) with reason 1: two keys.
    t.keys(&["r"]);
    t.wait("the reason picker", |s| s.contains("Reject: why?"));
    t.keys(&["1"]);
    t.wait("the rejection", |s| s.contains("rejected #3"));
    t.keys(&["q"]);
    let status = wait_file(&dir.join("status.txt"));
    assert_eq!(status.trim(), "0", "exit status");
    assert_eq!(t.alternate_on(), "0", "alternate screen left");
    assert_tty_sane(dir);

    let store = Store::open(
        &db.path,
        std::sync::Arc::new(Policy::default()),
        &StoreOptions::default(),
    )
    .expect("open db");
    let q = |sql: &str| -> String {
        store
            .connection()
            .query_row(sql, [], |r| r.get::<_, String>(0))
            .expect(sql)
    };
    assert_eq!(q("SELECT state FROM requests WHERE id = 1"), "approved");
    assert_eq!(q("SELECT state FROM requests WHERE id = 3"), "rejected");
    assert_eq!(
        q("SELECT reason FROM decisions WHERE request_id = 3"),
        "wrong_intent"
    );
    assert_eq!(
        q("SELECT reviewer FROM decisions WHERE request_id = 1"),
        "e2e"
    );
    let open: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM requests WHERE state = 'in_review'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(open, 0, "quitting left no claim behind");
}

#[test]
fn a_panic_restores_the_terminal() {
    if !Tmux::available() {
        return;
    }
    let db = tui_common::seeded_db();
    let dir = db.dir.path();
    let t = Tmux::start(
        "panic",
        dir,
        &console_cmd(dir, &db.path, "SIGNOFF_TUI_TEST_PANIC=1"),
    );
    let status = wait_file(&dir.join("status.txt"));
    assert_eq!(status.trim(), "101", "a panic exits with 101");
    assert_eq!(t.alternate_on(), "0");
    assert_tty_sane(dir);
    let err = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    assert!(err.contains("SIGNOFF_TUI_TEST_PANIC"), "{err}");
}

#[test]
fn sigterm_and_sighup_release_the_claim() {
    if !Tmux::available() {
        return;
    }
    for (name, signal) in [("term", "TERM"), ("hup", "HUP")] {
        let db = tui_common::seeded_db();
        let dir = db.dir.path();
        let t = Tmux::start(name, dir, &console_cmd(dir, &db.path, ""));
        t.wait("the queue", |s| s.contains("Queue · 6") && s.contains("▶"));
        t.keys(&["Enter"]);
        t.wait("the claim", |s| s.contains("is yours while it is open"));
        let store = Store::open(
            &db.path,
            std::sync::Arc::new(Policy::default()),
            &StoreOptions::default(),
        )
        .expect("open db");
        let in_review = || -> i64 {
            store
                .connection()
                .query_row(
                    "SELECT COUNT(*) FROM requests WHERE state = 'in_review'",
                    [],
                    |r| r.get(0),
                )
                .expect("count")
        };
        assert_eq!(in_review(), 1);
        // The shell tmux runs is the pane's process; the console is its child.
        let o = t
            .tmux()
            .args(["display", "-p", "-t", &t.session, "#{pane_pid}"])
            .output()
            .expect("pane pid");
        let shell = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let o = Command::new("pgrep")
            .args(["-P", &shell])
            .output()
            .expect("pgrep");
        let pid = String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        assert!(!pid.is_empty(), "console process not found");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let rc = wait_file(&dir.join("status.txt"));
        assert_eq!(rc.trim(), "0", "{signal}: a clean exit");
        assert_eq!(in_review(), 0, "{signal}: the claim was released");
        assert_tty_sane(dir);
    }
}

#[test]
fn colon_q_quits() {
    if !Tmux::available() {
        return;
    }
    let db = tui_common::seeded_db();
    let dir = db.dir.path();
    let t = Tmux::start("colonq", dir, &console_cmd(dir, &db.path, ""));
    t.wait("the queue", |s| s.contains("Queue · 6") && s.contains("▶"));
    t.keys(&[":"]);
    t.wait("the command line", |s| s.contains(" :█"));
    t.keys(&["q", "Enter"]);
    let status = wait_file(&dir.join("status.txt"));
    assert_eq!(status.trim(), "0", "exit status");
    assert_eq!(t.alternate_on(), "0", "alternate screen left");
    assert_tty_sane(dir);
}

#[test]
fn a_sort_chosen_on_the_command_line_survives_a_restart() {
    if !Tmux::available() {
        return;
    }
    let db = tui_common::seeded_db();
    let dir = db.dir.path();
    {
        let t = Tmux::start("sort1", dir, &console_cmd(dir, &db.path, ""));
        t.wait("the queue", |s| s.contains("Queue · 6 · priority, age"));
        t.keys(&[":"]);
        t.wait("the command line", |s| s.contains(" :█"));
        t.keys(&["sort age", "Enter"]);
        t.wait("the new order", |s| s.contains("Queue · 6 · oldest first"));
        t.keys(&["q"]);
        assert_eq!(wait_file(&dir.join("status.txt")).trim(), "0");
    }
    std::fs::remove_file(dir.join("status.txt")).expect("status file");
    let t = Tmux::start("sort2", dir, &console_cmd(dir, &db.path, ""));
    let s = t.wait("the queue, sorted as it was left", |s| {
        s.contains("Queue · 6") && s.contains("▶")
    });
    assert!(s.contains("Queue · 6 · oldest first"), "{s}");
    t.keys(&["q"]);
    assert_eq!(wait_file(&dir.join("status.txt")).trim(), "0");
}

fn open_store(path: &Path) -> Store {
    Store::open(
        path,
        std::sync::Arc::new(Policy::default()),
        &StoreOptions::default(),
    )
    .expect("open db")
}

#[test]
fn three_marked_items_are_rejected_and_no_others() {
    if !Tmux::available() {
        return;
    }
    let db = tui_common::seeded_db();
    let dir = db.dir.path();
    let t = Tmux::start("bulk", dir, &console_cmd(dir, &db.path, ""));
    t.wait("the queue", |s| s.contains("Queue · 6") && s.contains("▶"));
    // The first three rows in queue order: #2 (asap), #1 (urgent), #3 (high).
    t.keys(&["v"]);
    t.wait("one mark", |s| s.contains("1 item marked"));
    t.keys(&["v"]);
    t.wait("two marks", |s| s.contains("2 items marked"));
    t.keys(&["v"]);
    t.wait("three marks", |s| s.contains("3 items marked"));
    t.keys(&["r"]);
    t.wait("the reason picker", |s| s.contains("Reject: why?"));
    t.keys(&["1"]);
    let s = t.wait("the confirmation", |s| s.contains("reject 3 items as"));
    for id in ["#1 ", "#2 ", "#3 "] {
        assert!(s.contains(id), "{id} listed:\n{s}");
    }
    t.keys(&["y"]);
    t.wait("the result", |s| s.contains("reject: 3 items done"));
    t.keys(&["q"]);
    assert_eq!(wait_file(&dir.join("status.txt")).trim(), "0");
    let store = open_store(&db.path);
    let rejected: Vec<i64> = store
        .connection()
        .prepare("SELECT id FROM requests WHERE state = 'rejected' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rejected, vec![1, 2, 3]);
    let others: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM requests WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(others, 3);
}

#[test]
fn a_bad_filter_and_an_unbound_key_say_so() {
    if !Tmux::available() {
        return;
    }
    let db = tui_common::seeded_db();
    let dir = db.dir.path();
    let t = Tmux::start("badfilter", dir, &console_cmd(dir, &db.path, ""));
    t.wait("the queue", |s| s.contains("Queue · 6") && s.contains("▶"));
    t.keys(&["f"]);
    t.wait("the filter line", |s| s.contains("filter: █"));
    t.keys(&["prio:high", "Enter"]);
    t.wait("the filter's error", |s| {
        s.contains("filter not applied: unknown filter 'prio:'")
    });
    t.keys(&["Escape"]);
    // Esc and the next key arriving together read as alt-key: wait for the list first.
    t.wait("the list again", |s| !s.contains("filter: prio"));
    t.keys(&["z"]);
    t.wait("the unbound key", |s| {
        s.contains("z is not bound here · ? lists keys")
    });
    t.keys(&["q"]);
    assert_eq!(wait_file(&dir.join("status.txt")).trim(), "0");
}
