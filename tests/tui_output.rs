//! The bytes the console writes, replayed through a terminal model (the `vt100` crate):
//! after every frame the screen must show what ratatui drew, whatever the planner chose
//! (relative moves, erases, reprinted gaps, blanks printed with any foreground).
//!
//! Compared cell by cell as a terminal shows them: a blank cell is only its background
//! (or its foreground when reversed, or underlined), a glyph is its text and its style.
//! Emoji sequences are drawn by the model (as by many terminals) wider than ratatui lays
//! them out; there the rule is that the planned output is right wherever output that
//! places every changed cell absolutely (what ratatui intends) is right.
mod tui_common;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use ratatui::Terminal;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use signoff::tui::ansi::{self, Pen};
use signoff::tui::backend::AnsiBackend;
use signoff::tui::update::update;

#[derive(Clone, Default)]
struct Sink(Rc<RefCell<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// How a cell looks.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Look {
    Blank(vt100::Color),
    /// Right half of a wide glyph.
    Covered,
    Glyph {
        text: String,
        fg: vt100::Color,
        bg: vt100::Color,
        bold: bool,
        dim: bool,
        italic: bool,
        underline: bool,
        inverse: bool,
    },
}

fn vt_color(c: Color) -> vt100::Color {
    use vt100::Color::{Default, Idx, Rgb};
    match c {
        Color::Reset => Default,
        Color::Black => Idx(0),
        Color::Red => Idx(1),
        Color::Green => Idx(2),
        Color::Yellow => Idx(3),
        Color::Blue => Idx(4),
        Color::Magenta => Idx(5),
        Color::Cyan => Idx(6),
        Color::Gray => Idx(7),
        Color::DarkGray => Idx(8),
        Color::LightRed => Idx(9),
        Color::LightGreen => Idx(10),
        Color::LightYellow => Idx(11),
        Color::LightBlue => Idx(12),
        Color::LightMagenta => Idx(13),
        Color::LightCyan => Idx(14),
        Color::White => Idx(15),
        Color::Indexed(i) => Idx(i),
        Color::Rgb(r, g, b) => Rgb(r, g, b),
    }
}

/// What ratatui means a cell to look like.
fn intended(buf: &Buffer) -> Vec<Vec<Look>> {
    let a = buf.area;
    let mut rows = Vec::new();
    for y in 0..a.height {
        let mut row = Vec::new();
        let mut covered = 0;
        for x in 0..a.width {
            let c = &buf[(x, y)];
            if covered > 0 {
                covered -= 1;
                row.push(Look::Covered);
                continue;
            }
            covered = ratatui::buffer::CellWidth::cell_width(c).saturating_sub(1);
            // The model keeps no blink or crossed-out: a space with those is a blank too.
            let shows = Modifier::REVERSED | Modifier::UNDERLINED;
            row.push(if c.symbol() == " " && !c.modifier.intersects(shows) {
                Look::Blank(vt_color(c.bg))
            } else {
                Look::Glyph {
                    text: c.symbol().to_string(),
                    fg: vt_color(c.fg),
                    bg: vt_color(c.bg),
                    bold: c.modifier.contains(Modifier::BOLD),
                    dim: c.modifier.contains(Modifier::DIM),
                    italic: c.modifier.contains(Modifier::ITALIC),
                    underline: c.modifier.contains(Modifier::UNDERLINED),
                    inverse: c.modifier.contains(Modifier::REVERSED),
                }
            });
        }
        rows.push(row);
    }
    rows
}

/// What the terminal model shows.
fn shown(p: &vt100::Parser, w: u16, h: u16) -> Vec<Vec<Look>> {
    let s = p.screen();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| {
                    let Some(c) = s.cell(y, x) else {
                        return Look::Blank(vt100::Color::Default);
                    };
                    if c.is_wide_continuation() {
                        return Look::Covered;
                    }
                    let text = c.contents();
                    if (text.is_empty() || text == " ") && !c.inverse() && !c.underline() {
                        return Look::Blank(c.bgcolor());
                    }
                    Look::Glyph {
                        text: if text.is_empty() { " " } else { text }.to_string(),
                        fg: c.fgcolor(),
                        bg: c.bgcolor(),
                        bold: c.bold(),
                        dim: c.dim(),
                        italic: c.italic(),
                        underline: c.underline(),
                        inverse: c.inverse(),
                    }
                })
                .collect()
        })
        .collect()
}

/// Every changed cell at an absolute position with its whole style: what ratatui asks for.
fn reference(prev: &Buffer, next: &Buffer) -> Vec<u8> {
    let mut out = Vec::new();
    for (x, y, c) in prev.diff(next) {
        let _ = write!(out, "\x1b[{};{}H\x1b[0m", y + 1, x + 1);
        ansi::write_sgr(&mut out, Pen::DEFAULT, Pen::of(c));
        out.extend_from_slice(c.symbol().as_bytes());
    }
    out.extend_from_slice(b"\x1b[0m");
    out
}

/// Rows below the frame in the models: an emoji the model draws wider than ratatui lays it
/// out may run past the last column, and would scroll the screen from the last row.
const SPARE: u16 = 4;

fn model(w: u16, h: u16) -> vt100::Parser {
    let nz = |n: u16| std::num::NonZeroU16::new(n).expect("a screen has a size");
    vt100::Parser::new(nz(h), nz(w), 0)
}

/// Draws frames through the console's backend and, beside it, through the reference, into
/// two terminal models.
struct Replay {
    term: Terminal<AnsiBackend<Sink>>,
    sink: Sink,
    planned: vt100::Parser,
    naive: vt100::Parser,
    prev: Buffer,
    w: u16,
    h: u16,
    /// Frames where the planned and reference screens were compared.
    frames: usize,
    /// Cells compared, and those the reference showed right (the others say nothing).
    cells: usize,
    agree: usize,
    planned_bytes: usize,
    plain_bytes: usize,
    /// Every planned output, to check which sequences were exercised.
    all: Vec<u8>,
}

impl Replay {
    fn new(w: u16, h: u16) -> Replay {
        let sink = Sink::default();
        let term = Terminal::with_options(
            AnsiBackend::new(sink.clone()),
            ratatui::TerminalOptions {
                viewport: ratatui::Viewport::Fixed(Rect::new(0, 0, w, h)),
            },
        )
        .expect("terminal");
        Replay {
            term,
            sink,
            planned: model(w, h + SPARE),
            naive: model(w, h + SPARE),
            prev: Buffer::empty(Rect::new(0, 0, w, h)),
            w,
            h,
            frames: 0,
            cells: 0,
            agree: 0,
            planned_bytes: 0,
            plain_bytes: 0,
            all: Vec::new(),
        }
    }

    /// Draws one frame; `strict`: the model agrees with ratatui on every glyph's width, so
    /// the screen must equal the frame everywhere.
    fn frame(&mut self, strict: bool, what: &str, draw: impl FnOnce(&mut ratatui::Frame)) {
        // As the console: the backend keeps its copy of the screen itself, once it has one.
        let sync = self.term.backend().needs_sync();
        let next = self.term.draw(|f| draw(f)).expect("draw").buffer.clone();
        if sync {
            self.term.backend_mut().sync_owned(next.clone());
        }
        let bytes = self.sink.take();
        self.planned.process(&bytes);
        let naive = reference(&self.prev, &next);
        self.naive.process(&naive);
        // What crossterm-style output would have cost (absolute moves, shortest SGR).
        let updates = self.prev.diff(&next);
        let mut plain = Vec::new();
        signoff::tui::plan::plain(&mut plain, &updates);
        self.plain_bytes += plain.len();
        self.planned_bytes += bytes.len();
        self.all.extend_from_slice(&bytes);

        let want = intended(&next);
        let got = shown(&self.planned, self.w, self.h);
        let base = shown(&self.naive, self.w, self.h);
        let mut agree = 0;
        for y in 0..usize::from(self.h) {
            for x in 0..usize::from(self.w) {
                let ok = base[y][x] == want[y][x];
                agree += usize::from(ok);
                if strict || ok {
                    assert_eq!(
                        got[y][x],
                        want[y][x],
                        "{what}: cell ({x}, {y}) after {:?}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
        }
        self.agree += agree;
        self.cells += usize::from(self.w) * usize::from(self.h);
        self.frames += 1;
        self.prev = next;
    }

    /// As `Terminal::clear` does (which also asks the tty for the cursor, absent here).
    fn clear(&mut self) {
        use ratatui::backend::{Backend, ClearType};
        self.term
            .backend_mut()
            .clear_region(ClearType::All)
            .expect("clear");
        self.term.current_buffer_mut().reset();
        self.term.swap_buffers();
        let bytes = self.sink.take();
        self.planned.process(&bytes);
        self.naive.process(b"\x1b[0m\x1b[2J");
        self.prev = Buffer::empty(self.prev.area);
    }

    /// Sequences that must have been used over the run (the paths under test).
    fn used(&self, seq: &[u8]) -> bool {
        self.all.windows(seq.len()).any(|w| w == seq)
    }
}

/// `ESC [ digits;… final` somewhere in `out`.
fn has_csi(out: &[u8], f: u8) -> bool {
    out.windows(2).enumerate().any(|(i, w)| {
        w == b"\x1b["
            && out[i + 2..]
                .iter()
                .find(|b| !(b.is_ascii_digit() || **b == b';'))
                .is_some_and(|b| *b == f)
    })
}

/// A deterministic source of rows of styled text.
struct Gen(fastrand::Rng);

const TRUSTED: &[&str] = &[
    "a",
    "b",
    "Z",
    "0",
    " ",
    " ",
    " ",
    "  ",
    "    ",
    "日本",
    "語",
    "한",
    "ｱ",
    "e\u{301}",
    "─",
    "│",
    "…",
    "▰",
    "▱",
    "مرحبا",
    "שלום",
    ".",
    "@",
];
const WIDE_EMOJI: &[&str] = &["👩‍💻", "🏳️‍🌈", "👍🏽", "👨‍👩‍👧", "🚐", "⚠️"];

fn styles() -> Vec<Style> {
    vec![
        Style::default(),
        Style::default().fg(Color::Cyan),
        Style::default().fg(Color::DarkGray),
        // The model keeps one intensity (bold or dim), terminals both: never both here.
        Style::default()
            .fg(Color::Red)
            .add_modifier(Modifier::BOLD)
            .remove_modifier(Modifier::DIM),
        Style::default().bg(Color::Blue),
        Style::default()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
            .remove_modifier(Modifier::DIM),
        Style::default().add_modifier(Modifier::REVERSED),
        Style::default().add_modifier(Modifier::UNDERLINED),
        Style::default()
            .fg(Color::Indexed(208))
            .bg(Color::Indexed(236)),
        Style::default().fg(Color::Rgb(200, 10, 40)),
        Style::default()
            .add_modifier(Modifier::DIM | Modifier::ITALIC)
            .remove_modifier(Modifier::BOLD),
        Style::default()
            .bg(Color::Blue)
            .add_modifier(Modifier::CROSSED_OUT),
    ]
}

impl Gen {
    fn text(&mut self, emoji: bool, max: usize) -> String {
        let mut s = String::new();
        for _ in 0..self.0.usize(1..=max) {
            if emoji && self.0.u8(..) < 20 {
                s.push_str(WIDE_EMOJI[self.0.usize(..WIDE_EMOJI.len())]);
            } else {
                s.push_str(TRUSTED[self.0.usize(..TRUSTED.len())]);
            }
        }
        s
    }

    /// A screen of spans at random places, some rows left blank, some filled to the edge.
    fn screen(&mut self, buf: &mut Buffer, emoji: bool) {
        let styles = styles();
        let a = buf.area;
        for y in 0..a.height {
            match self.0.u8(..4) {
                0 => continue,
                1 => {
                    // A bar of one background across the row.
                    let st = styles[self.0.usize(..styles.len())];
                    buf.set_style(Rect::new(0, y, a.width, 1), st);
                }
                _ => {}
            }
            let mut x = self.0.u16(..a.width / 2);
            while x < a.width {
                let st = styles[self.0.usize(..styles.len())];
                let t = self.text(emoji, 8);
                let (nx, _) = buf.set_stringn(x, y, &t, usize::from(a.width - x), st);
                x = nx.saturating_add(self.0.u16(..6));
            }
        }
    }

    /// The previous screen with a few cells changed.
    fn touch(&mut self, buf: &mut Buffer, emoji: bool) {
        let styles = styles();
        let a = buf.area;
        for _ in 0..self.0.usize(1..6) {
            let y = self.0.u16(..a.height);
            let x = self.0.u16(..a.width);
            let st = styles[self.0.usize(..styles.len())];
            let t = self.text(emoji, 2);
            buf.set_stringn(x, y, &t, usize::from(a.width - x), st);
        }
    }
}

fn random_run(seed: u64, emoji: bool, w: u16, h: u16, frames: usize) -> Replay {
    let mut g = Gen(fastrand::Rng::with_seed(seed));
    let mut r = Replay::new(w, h);
    let mut last = Buffer::empty(Rect::new(0, 0, w, h));
    for i in 0..frames {
        let mut next = if i % 3 == 2 {
            last.clone()
        } else {
            Buffer::empty(last.area)
        };
        if i % 3 == 2 {
            g.touch(&mut next, emoji);
        } else {
            g.screen(&mut next, emoji);
        }
        if i == frames / 2 {
            r.clear();
        }
        let what = format!("seed {seed} frame {i}");
        let b = next.clone();
        r.frame(!emoji, &what, |f| {
            f.buffer_mut().content.clone_from(&b.content)
        });
        last = next;
    }
    r
}

#[test]
fn random_frames_without_emoji_come_out_exactly() {
    let mut planned = 0;
    let mut plain = 0;
    let mut all = Vec::new();
    for seed in 0..40 {
        let r = random_run(seed, false, 37, 9, 12);
        planned += r.planned_bytes;
        plain += r.plain_bytes;
        all.extend(r.all);
    }
    // The paths under test were taken: erase to the end of the row, erase n cells, moves
    // forward, to a column, down, line feeds, a reset.
    for f in [b'K', b'X', b'C', b'G', b'B', b'H'] {
        assert!(has_csi(&all, f), "no CSI {}", f as char);
    }
    assert!(all.contains(&b'\n'), "no line feed");
    assert!(all.windows(3).any(|w| w == b"\x1b[m"), "no reset");
    assert!(planned < plain, "planned {planned} B vs plain {plain} B");
}

#[test]
fn random_frames_with_emoji_are_never_worse_than_absolute_placement() {
    let (mut agree, mut cells) = (0, 0);
    for seed in 100..130 {
        let r = random_run(seed, true, 41, 8, 12);
        agree += r.agree;
        cells += r.cells;
    }
    // The comparison means something only where the reference is right.
    eprintln!("the reference showed {agree} of {cells} cells right");
    assert!(agree * 10 >= cells * 7, "{agree} of {cells}");
}

/// The console itself at three sizes, through keys that move, switch panes, open overlays
/// and scroll (fixtures with CJK, emoji ZWJ, right-to-left text and escape sequences).
#[test]
fn console_frames_replay_to_the_same_screen() {
    for (w, h) in [(80, 24), (120, 40), (200, 50)] {
        let mut app = tui_common::loaded_app(w, h);
        let mut r = Replay::new(w, h);
        let keys = "j j j k tab j j j tab G g g ? esc j d esc L esc j j ctrl-d ctrl-u k s s";
        r.frame(false, "first", |f| signoff::tui::view::draw(&app, f));
        for (i, k) in tui_common::parse_keys(keys).into_iter().enumerate() {
            let _ = update(&mut app, signoff::tui::action::Action::Key(k));
            let what = format!("{w}x{h} key {i}");
            r.frame(false, &what, |f| signoff::tui::view::draw(&app, f));
        }
        assert!(r.planned_bytes < r.plain_bytes, "{w}x{h}");
        assert!(
            r.agree * 10 >= r.cells * 9,
            "{w}x{h}: {} of {}",
            r.agree,
            r.cells
        );
        assert!(r.used(b"\x1b["), "{w}x{h}");
    }
}

/// The demo queue (40 requests of realistic lengths and scripts) against a real SQLite
/// queue, through keys that page, sort, filter and open overlays.
#[tokio::test]
async fn demo_queue_replays_to_the_same_screen() {
    use signoff::store::{IngestItem, Store, StoreOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("demo.db");
    let mut store =
        Store::open(&path, tui_common::policy(), &StoreOptions::default()).expect("open");
    let items: Vec<IngestItem> = include_str!("../src/demo/requests.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("demo request");
            let r = signoff::model::Request::from_value(&v).expect("request");
            IngestItem::new(v.to_string(), v, r, "demo".into())
        })
        .collect();
    store.ingest_batch(&items, "test").expect("ingest");
    drop(store);
    let db = tui_common::Db {
        dir,
        path: path.clone(),
    };
    for (w, h) in [(80, 24), (120, 40), (200, 50)] {
        let mut hl = tui_common::Headless::new(&db, w, h).await;
        let mut r = Replay::new(w, h);
        r.frame(false, "first", |f| signoff::tui::view::draw(&hl.app, f));
        let keys = "j j j k tab j j tab G g g j ctrl-d ctrl-u ? esc j d esc p esc L esc j s s j \
                    x esc r esc / a b esc j k esc tab ctrl-d j j";
        for (i, k) in keys.split_whitespace().enumerate() {
            hl.keys(k).await;
            let what = format!("{w}x{h} key {i} ({k})");
            r.frame(false, &what, |f| signoff::tui::view::draw(&hl.app, f));
        }
        assert!(
            r.agree * 10 >= r.cells * 9,
            "{w}x{h}: {} of {}",
            r.agree,
            r.cells
        );
    }
}
