//! The terminal backend: crossterm's, except that cells are written with the shortest
//! SGR codes (`ESC[36m` for cyan where crossterm writes `ESC[38;5;6m`, one combined code
//! per style change, `ESC[0m` once at the end). Over a slow SSH link that is a fifth of
//! what a `j` costs.
use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

/// Draws cells itself; everything else is crossterm's.
pub struct AnsiBackend<W: Write> {
    inner: CrosstermBackend<W>,
}

impl<W: Write> AnsiBackend<W> {
    pub fn new(writer: W) -> Self {
        AnsiBackend {
            inner: CrosstermBackend::new(writer),
        }
    }
}

/// SGR parameter of a colour (foreground, or background with `bg`).
fn color_code(out: &mut Vec<u8>, c: Color, bg: bool) {
    let base: u8 = if bg { 10 } else { 0 };
    let ansi = |out: &mut Vec<u8>, n: u8| {
        let _ = write!(out, "{}", n + base);
    };
    match c {
        Color::Reset => ansi(out, 39),
        Color::Black => ansi(out, 30),
        Color::Red => ansi(out, 31),
        Color::Green => ansi(out, 32),
        Color::Yellow => ansi(out, 33),
        Color::Blue => ansi(out, 34),
        Color::Magenta => ansi(out, 35),
        Color::Cyan => ansi(out, 36),
        Color::Gray => ansi(out, 37),
        Color::DarkGray => ansi(out, 90),
        Color::LightRed => ansi(out, 91),
        Color::LightGreen => ansi(out, 92),
        Color::LightYellow => ansi(out, 93),
        Color::LightBlue => ansi(out, 94),
        Color::LightMagenta => ansi(out, 95),
        Color::LightCyan => ansi(out, 96),
        Color::White => ansi(out, 97),
        Color::Indexed(i) => {
            let _ = write!(out, "{};5;{i}", if bg { 48 } else { 38 });
        }
        Color::Rgb(r, g, b) => {
            let _ = write!(out, "{};2;{r};{g};{b}", if bg { 48 } else { 38 });
        }
    }
}

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

/// One SGR sequence taking the terminal from (`from` style) to `cell`'s style.
fn sgr(out: &mut Vec<u8>, from: (Color, Color, Modifier), cell: &Cell) {
    let (fg, bg, m) = from;
    let mut params: Vec<Vec<u8>> = Vec::new();
    let removed = m - cell.modifier;
    let mut off: Vec<u8> = Vec::new();
    for (flag, _, reset) in MODS {
        if removed.contains(flag) && !off.contains(&reset) {
            off.push(reset);
        }
    }
    for r in &off {
        params.push(r.to_string().into_bytes());
    }
    // 22 turns off both bold and dim: put back whichever stays.
    let mut added = cell.modifier - m;
    if off.contains(&22) {
        added |= cell.modifier & (Modifier::BOLD | Modifier::DIM);
    }
    for (flag, on, _) in MODS {
        if added.contains(flag) {
            params.push(on.to_string().into_bytes());
        }
    }
    if cell.fg != fg {
        let mut p = Vec::new();
        color_code(&mut p, cell.fg, false);
        params.push(p);
    }
    if cell.bg != bg {
        let mut p = Vec::new();
        color_code(&mut p, cell.bg, true);
        params.push(p);
    }
    if params.is_empty() {
        return;
    }
    out.extend_from_slice(b"\x1b[");
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(p);
    }
    out.push(b'm');
}

/// The bytes that draw `content`, starting from the default style.
pub fn encode<'a>(content: impl Iterator<Item = (u16, u16, &'a Cell)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    let mut style = (Color::Reset, Color::Reset, Modifier::empty());
    let mut last: Option<(u16, u16)> = None;
    let mut any = false;
    for (x, y, cell) in content {
        any = true;
        if !matches!(last, Some((lx, ly)) if ly == y && lx + 1 == x) {
            let _ = write!(out, "\x1b[{};{}H", y + 1, x + 1);
        }
        last = Some((x, y));
        sgr(&mut out, style, cell);
        style = (cell.fg, cell.bg, cell.modifier);
        out.extend_from_slice(cell.symbol().as_bytes());
    }
    if any && style != (Color::Reset, Color::Reset, Modifier::empty()) {
        out.extend_from_slice(b"\x1b[0m");
    }
    out
}

impl<W: Write> Backend for AnsiBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let bytes = encode(content);
        self.inner.write_all(&bytes)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

impl<W: Write> Write for AnsiBackend<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::Style;

    use super::*;

    fn cell(sym: &'static str, style: Style) -> Cell {
        let mut c = Cell::new(sym);
        c.set_style(style);
        c
    }

    #[test]
    fn short_codes_one_sequence_per_change() {
        let a = cell("a", Style::default().fg(Color::Cyan));
        let b = cell(
            "b",
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        );
        let c = cell("c", Style::default().add_modifier(Modifier::DIM));
        let d = cell("d", Style::default());
        let cells = [(0, 0, &a), (1, 0, &b), (2, 0, &c), (5, 1, &d)];
        let out = encode(cells.into_iter());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\u{1b}[1;1H\u{1b}[36ma\u{1b}[1;30;46mb\u{1b}[22;2;39;49mc\u{1b}[2;6H\u{1b}[22md"
        );
    }

    #[test]
    fn colours_of_every_kind() {
        let mut v = Vec::new();
        color_code(&mut v, Color::Indexed(208), false);
        v.push(b' ');
        color_code(&mut v, Color::Rgb(1, 2, 3), true);
        v.push(b' ');
        color_code(&mut v, Color::LightBlue, true);
        assert_eq!(String::from_utf8(v).unwrap(), "38;5;208 48;2;1;2;3 104");
        assert!(encode(std::iter::empty()).is_empty());
    }
}
