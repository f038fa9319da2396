//! The escape sequences the console writes, each with its exact length in bytes so that
//! the planner ([`super::plan`]) can pick the shortest way to say the same thing:
//! SGR colour and attribute changes (`ESC[36m`, not crossterm's `ESC[38;5;6m`; one combined
//! sequence per change; a reset when that is shorter), cursor moves (absolute `ESC[r;cH`,
//! column `ESC[cG`, relative `ESC[nC`, line feeds), and erases (`ESC[nX`, `ESC[K`).
//!
//! Only sequences that VT100-descended terminals and tmux all agree on; no empty
//! parameters except in the bare `ESC[m` (reset), `ESC[H`, `ESC[C` and friends.
use std::io::Write;

use ratatui::buffer::Cell;
use ratatui::style::{Color, Modifier};

/// Modifiers a blank cell shows (the same set ratatui's diff uses): a space with any of
/// these is not interchangeable with an erased cell.
pub const VISIBLE_ON_BLANK: Modifier = Modifier::REVERSED
    .union(Modifier::UNDERLINED)
    .union(Modifier::SLOW_BLINK)
    .union(Modifier::RAPID_BLINK)
    .union(Modifier::CROSSED_OUT);

/// The terminal's current SGR state: what the next glyph (or erase) is drawn with.
/// The underline colour is not tracked: the themes never set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pen {
    pub fg: Color,
    pub bg: Color,
    pub mods: Modifier,
}

impl Pen {
    pub const DEFAULT: Pen = Pen {
        fg: Color::Reset,
        bg: Color::Reset,
        mods: Modifier::empty(),
    };

    pub fn of(cell: &Cell) -> Pen {
        Pen {
            fg: cell.fg,
            bg: cell.bg,
            mods: cell.modifier,
        }
    }

    /// Erases (and spaces) drawn with this pen look like a blank cell of `bg`: no
    /// attribute that shows on a blank.
    pub fn blanks_as(&self, bg: Color) -> bool {
        self.bg == bg && !self.mods.intersects(VISIBLE_ON_BLANK)
    }
}

/// A space without an attribute that shows on blanks: on screen it is only its
/// background, so its foreground (and bold, italic…) can be anything, and an erase with
/// that background draws it too.
pub fn is_blank(cell: &Cell) -> bool {
    cell.symbol() == " " && !cell.modifier.intersects(VISIBLE_ON_BLANK)
}

pub fn digits(n: u32) -> usize {
    match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    }
}

// ---- SGR ----

const MODS: [(Modifier, u8, u8); 9] = [
    (Modifier::BOLD, 1, 22),
    (Modifier::DIM, 2, 22),
    (Modifier::ITALIC, 3, 23),
    (Modifier::UNDERLINED, 4, 24),
    (Modifier::SLOW_BLINK, 5, 25),
    (Modifier::RAPID_BLINK, 6, 25),
    (Modifier::REVERSED, 7, 27),
    (Modifier::HIDDEN, 8, 28),
    (Modifier::CROSSED_OUT, 9, 29),
];

#[derive(Clone, Copy)]
enum Param {
    Code(u8),
    Fg(Color),
    Bg(Color),
}

/// The 16 named colours as SGR codes (foreground; background adds 10).
fn ansi16(c: Color) -> Option<u8> {
    Some(match c {
        Color::Reset => 39,
        Color::Black => 30,
        Color::Red => 31,
        Color::Green => 32,
        Color::Yellow => 33,
        Color::Blue => 34,
        Color::Magenta => 35,
        Color::Cyan => 36,
        Color::Gray => 37,
        Color::DarkGray => 90,
        Color::LightRed => 91,
        Color::LightGreen => 92,
        Color::LightYellow => 93,
        Color::LightBlue => 94,
        Color::LightMagenta => 95,
        Color::LightCyan => 96,
        Color::White => 97,
        Color::Indexed(_) | Color::Rgb(..) => return None,
    })
}

fn color_len(c: Color, bg: bool) -> usize {
    match (ansi16(c), c) {
        (Some(n), _) => digits(u32::from(n) + if bg { 10 } else { 0 }),
        (None, Color::Indexed(i)) => 5 + digits(u32::from(i)),
        (None, Color::Rgb(r, g, b)) => {
            7 + digits(u32::from(r)) + digits(u32::from(g)) + digits(u32::from(b))
        }
        (None, _) => 0,
    }
}

fn write_color(out: &mut Vec<u8>, c: Color, bg: bool) {
    match (ansi16(c), c) {
        (Some(n), _) => {
            let _ = write!(out, "{}", n + if bg { 10 } else { 0 });
        }
        (None, Color::Indexed(i)) => {
            let _ = write!(out, "{};5;{i}", if bg { 48 } else { 38 });
        }
        (None, Color::Rgb(r, g, b)) => {
            let _ = write!(out, "{};2;{r};{g};{b}", if bg { 48 } else { 38 });
        }
        (None, _) => {}
    }
}

fn param_len(p: Param) -> usize {
    match p {
        Param::Code(n) => digits(u32::from(n)),
        Param::Fg(c) => color_len(c, false),
        Param::Bg(c) => color_len(c, true),
    }
}

/// The parameters that change `from` into `to` attribute by attribute.
fn incremental(from: Pen, to: Pen, mut f: impl FnMut(Param)) {
    let removed = from.mods - to.mods;
    let mut off_22 = false;
    let mut off_25 = false;
    for (flag, _, off) in MODS {
        if removed.contains(flag) {
            // 22 ends bold and dim, 25 both blinks: once is enough.
            match off {
                22 if off_22 => continue,
                22 => off_22 = true,
                25 if off_25 => continue,
                25 => off_25 = true,
                _ => {}
            }
            f(Param::Code(off));
        }
    }
    let mut added = to.mods - from.mods;
    // 22 turned off bold and dim together: put back whichever stays; likewise 25.
    if off_22 {
        added |= to.mods & (Modifier::BOLD | Modifier::DIM);
    }
    if off_25 {
        added |= to.mods & (Modifier::SLOW_BLINK | Modifier::RAPID_BLINK);
    }
    for (flag, on, _) in MODS {
        if added.contains(flag) {
            f(Param::Code(on));
        }
    }
    if to.fg != from.fg {
        f(Param::Fg(to.fg));
    }
    if to.bg != from.bg {
        f(Param::Bg(to.bg));
    }
}

/// The parameters that set `to` from scratch, after a reset (`0`).
fn from_reset(to: Pen, mut f: impl FnMut(Param)) {
    incremental(Pen::DEFAULT, to, &mut f);
}

/// Length of `ESC[` params `m`; `reset` prefixes `0` (alone it is `ESC[m`).
fn sgr_len_with(reset: bool, visit: impl FnOnce(&mut dyn FnMut(Param))) -> usize {
    let mut n = 0;
    let mut len = 0;
    visit(&mut |p| {
        n += 1;
        len += param_len(p);
    });
    match (reset, n) {
        (true, 0) => 3,
        (true, _) => 3 + 2 + len + (n - 1),
        (false, 0) => 0,
        (false, _) => 3 + len + (n - 1),
    }
}

/// Bytes of the shortest SGR sequence from `from` to `to` (0 when equal).
pub fn sgr_len(from: Pen, to: Pen) -> usize {
    if from == to {
        return 0;
    }
    let inc = sgr_len_with(false, |f| incremental(from, to, f));
    let reset = sgr_len_with(true, |f| from_reset(to, f));
    inc.min(reset)
}

/// Writes the shortest SGR sequence from `from` to `to` (nothing when equal).
pub fn write_sgr(out: &mut Vec<u8>, from: Pen, to: Pen) {
    if from == to {
        return;
    }
    let inc = sgr_len_with(false, |f| incremental(from, to, f));
    let reset = sgr_len_with(true, |f| from_reset(to, f));
    let start = out.len();
    out.extend_from_slice(b"\x1b[");
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, p: Param| {
        if !first {
            out.push(b';');
        }
        first = false;
        match p {
            Param::Code(n) => {
                let _ = write!(out, "{n}");
            }
            Param::Fg(c) => write_color(out, c, false),
            Param::Bg(c) => write_color(out, c, true),
        }
    };
    if reset < inc {
        if to != Pen::DEFAULT {
            put(out, Param::Code(0));
        }
        from_reset(to, |p| put(out, p));
    } else {
        incremental(from, to, |p| put(out, p));
    }
    out.push(b'm');
    debug_assert_eq!(out.len() - start, inc.min(reset));
}

// ---- Cursor ----

/// Where the terminal's cursor is, as far as the output so far tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// After a glyph whose width the terminal may see differently (emoji sequences),
    /// or at the start of a frame: only an absolute move is safe.
    Unknown,
    /// On row `y`. With `wrap`, the column may be past the last one (a glyph was just
    /// written into the last column, or the row's width is unknown): only absolute column
    /// moves are safe, as terminals differ on relative moves from the pending-wrap state.
    At { x: u16, y: u16, wrap: bool },
}

/// A horizontal part of a move on the cursor's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Horizontal {
    Stay,
    /// Carriage return: column 0.
    Cr,
    /// `ESC[cG`: absolute column.
    Cha(u16),
    /// `ESC[nC`.
    Forward(u16),
    /// `ESC[nD`.
    Back(u16),
    /// Carriage return, then forward.
    CrForward(u16),
}

/// A vertical part of a move, always downwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vertical {
    Stay,
    /// Line feeds. Under ONLCR a line feed also returns the carriage, so these are only
    /// ever followed by an absolute column.
    Lf(u16),
    /// `ESC[nB`: keeps the column.
    Down(u16),
}

/// One cursor move: absolute, or vertical then horizontal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    Cup(u16, u16),
    Rel(Vertical, Horizontal),
}

fn rel_len(n: u16) -> usize {
    if n == 1 { 3 } else { 3 + digits(u32::from(n)) }
}

fn cup_len(x: u16, y: u16) -> usize {
    match (x, y) {
        (0, 0) => 3,
        (0, _) => 3 + digits(u32::from(y) + 1),
        _ => 4 + digits(u32::from(y) + 1) + digits(u32::from(x) + 1),
    }
}

fn h_len(h: Horizontal) -> usize {
    match h {
        Horizontal::Stay => 0,
        Horizontal::Cr => 1,
        Horizontal::Cha(x) => 3 + digits(u32::from(x) + 1),
        Horizontal::Forward(n) | Horizontal::Back(n) => rel_len(n),
        Horizontal::CrForward(n) => 1 + rel_len(n),
    }
}

fn v_len(v: Vertical) -> usize {
    match v {
        Vertical::Stay => 0,
        Vertical::Lf(n) => usize::from(n),
        Vertical::Down(n) => rel_len(n),
    }
}

impl Move {
    /// Bytes of the move.
    pub fn bytes(self) -> usize {
        match self {
            Move::Cup(x, y) => cup_len(x, y),
            Move::Rel(v, h) => v_len(v) + h_len(h),
        }
    }

    pub fn write(self, out: &mut Vec<u8>) {
        match self {
            Move::Cup(0, 0) => out.extend_from_slice(b"\x1b[H"),
            Move::Cup(0, y) => {
                let _ = write!(out, "\x1b[{}H", y + 1);
            }
            Move::Cup(x, y) => {
                let _ = write!(out, "\x1b[{};{}H", y + 1, x + 1);
            }
            Move::Rel(v, h) => {
                match v {
                    Vertical::Stay => {}
                    Vertical::Lf(n) => out.extend(std::iter::repeat_n(b'\n', usize::from(n))),
                    Vertical::Down(n) => rel(out, n, b'B'),
                }
                match h {
                    Horizontal::Stay => {}
                    Horizontal::Cr => out.push(b'\r'),
                    Horizontal::Cha(x) => {
                        let _ = write!(out, "\x1b[{}G", x + 1);
                    }
                    Horizontal::Forward(n) => rel(out, n, b'C'),
                    Horizontal::Back(n) => rel(out, n, b'D'),
                    Horizontal::CrForward(n) => {
                        out.push(b'\r');
                        rel(out, n, b'C');
                    }
                }
            }
        }
    }
}

fn rel(out: &mut Vec<u8>, n: u16, f: u8) {
    if n == 1 {
        out.extend_from_slice(&[0x1b, b'[', f]);
    } else {
        let _ = write!(out, "\x1b[{n}{}", f as char);
    }
}

/// The shortest absolute way to column `x` on the cursor's row.
fn absolute_column(x: u16) -> Horizontal {
    if x == 0 {
        return Horizontal::Cr;
    }
    let cha = Horizontal::Cha(x);
    let crf = Horizontal::CrForward(x);
    if h_len(crf) < h_len(cha) { crf } else { cha }
}

/// The shortest way from column `px` to `x` on the same row; `wrap` rules out relative moves.
fn horizontal(px: u16, x: u16, wrap: bool) -> Horizontal {
    // Even in the pending-wrap state: a cell at `x` exists, so the cursor is on it.
    if px == x {
        return Horizontal::Stay;
    }
    let abs = absolute_column(x);
    if wrap {
        return abs;
    }
    let rel = match x.cmp(&px) {
        std::cmp::Ordering::Equal => return Horizontal::Stay,
        std::cmp::Ordering::Greater => Horizontal::Forward(x - px),
        std::cmp::Ordering::Less => Horizontal::Back(px - x),
    };
    if h_len(rel) <= h_len(abs) { rel } else { abs }
}

/// The shortest move from `from` to (`x`, `y`).
pub fn best_move(from: Cursor, x: u16, y: u16) -> Move {
    let cup = Move::Cup(x, y);
    let Cursor::At { x: px, y: py, wrap } = from else {
        return cup;
    };
    let best = if py == y {
        Move::Rel(Vertical::Stay, horizontal(px, x, wrap))
    } else if y > py {
        let dy = y - py;
        let down = Move::Rel(Vertical::Down(dy), horizontal(px, x, wrap));
        if dy <= 3 {
            let lf = Move::Rel(Vertical::Lf(dy), absolute_column(x));
            if lf.bytes() <= down.bytes() { lf } else { down }
        } else {
            down
        }
    } else {
        cup
    };
    if best.bytes() < cup.bytes() {
        best
    } else {
        cup
    }
}

/// `ESC[nX`: erase `n` cells from the cursor (which stays), in the pen's background.
pub fn ech_len(n: u16) -> usize {
    rel_len(n)
}

pub fn write_ech(out: &mut Vec<u8>, n: u16) {
    rel(out, n, b'X');
}

/// `ESC[K`: erase to the end of the row.
pub const EL: &[u8] = b"\x1b[K";

#[cfg(test)]
mod tests {
    use ratatui::style::Style;

    use super::*;

    fn pen(style: Style) -> Pen {
        let mut c = Cell::new("x");
        c.set_style(style);
        Pen::of(&c)
    }

    fn sgr(from: Pen, to: Pen) -> String {
        let mut v = Vec::new();
        write_sgr(&mut v, from, to);
        assert_eq!(v.len(), sgr_len(from, to));
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn shortest_sgr_one_sequence_per_change() {
        let cyan = pen(Style::default().fg(Color::Cyan));
        let sel = pen(Style::default()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD));
        let dim = pen(Style::default().add_modifier(Modifier::DIM));
        assert_eq!(sgr(Pen::DEFAULT, cyan), "\x1b[36m");
        assert_eq!(sgr(cyan, sel), "\x1b[1;30;46m");
        // Back to plain: a reset is shorter than undoing each part.
        assert_eq!(sgr(sel, Pen::DEFAULT), "\x1b[m");
        assert_eq!(sgr(sel, dim), "\x1b[0;2m");
        assert_eq!(sgr(dim, Pen::DEFAULT), "\x1b[m");
        let bold = pen(Style::default().add_modifier(Modifier::BOLD | Modifier::DIM));
        assert_eq!(sgr(bold, dim), "\x1b[0;2m");
        let cyan_bold = pen(Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD));
        assert_eq!(sgr(cyan_bold, cyan), "\x1b[22m");
        assert_eq!(sgr(cyan, cyan), "");
    }

    #[test]
    fn colours_of_every_kind() {
        let p = pen(Style::default()
            .fg(Color::Indexed(208))
            .bg(Color::Rgb(1, 2, 3)));
        assert_eq!(sgr(Pen::DEFAULT, p), "\x1b[38;5;208;48;2;1;2;3m");
        let q = pen(Style::default().bg(Color::LightBlue));
        assert_eq!(sgr(Pen::DEFAULT, q), "\x1b[104m");
    }

    fn mv(from: Cursor, x: u16, y: u16) -> String {
        let m = best_move(from, x, y);
        let mut v = Vec::new();
        m.write(&mut v);
        assert_eq!(v.len(), m.bytes(), "{m:?}");
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn shortest_cursor_moves() {
        let at = |x, y| Cursor::At { x, y, wrap: false };
        assert_eq!(mv(Cursor::Unknown, 4, 9), "\x1b[10;5H");
        assert_eq!(mv(Cursor::Unknown, 0, 0), "\x1b[H");
        assert_eq!(mv(at(4, 9), 5, 9), "\x1b[C");
        assert_eq!(mv(at(4, 9), 40, 9), "\x1b[36C");
        assert_eq!(mv(at(70, 9), 0, 10), "\n\r");
        assert_eq!(mv(at(70, 9), 1, 10), "\n\x1b[2G");
        assert_eq!(mv(at(70, 9), 61, 10), "\n\x1b[62G");
        assert_eq!(mv(at(70, 9), 70, 10), "\x1b[B");
        assert_eq!(mv(at(70, 9), 70, 20), "\x1b[11B");
        // Pending wrap: absolute columns only.
        let wrapped = Cursor::At {
            x: 120,
            y: 3,
            wrap: true,
        };
        assert_eq!(mv(wrapped, 119, 3), "\x1b[120G");
        assert_eq!(mv(wrapped, 0, 4), "\n\r");
        // A tie goes to the absolute move.
        assert_eq!(mv(wrapped, 60, 5), "\x1b[6;61H");
        let lower = Cursor::At {
            x: 120,
            y: 13,
            wrap: true,
        };
        assert_eq!(mv(lower, 9, 15), "\n\n\x1b[10G");
    }
}
